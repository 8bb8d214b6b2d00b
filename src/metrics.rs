//! Metrics through the [`metrics`](https://docs.rs/metrics) facade, with the
//! `metrics` feature: each is recorded where its event already happens,
//! labelled `cache` with the name the user gave the cache
//! ([`TokenCacheBuilder::name`](crate::TokenCacheBuilder::name)). Without the
//! feature every function here is empty. `docs/operations.md` lists them.
//!
//! Names follow OpenTelemetry's conventions: dotted, units out of the name
//! (durations and lifetimes in seconds), `error.type` and
//! `http.response.status_code` as OpenTelemetry names those attributes.
#![cfg_attr(not(feature = "metrics"), allow(unused_variables, dead_code))]

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

#[cfg(feature = "metrics")]
use ::metrics::{SharedString, counter, gauge, histogram};

use crate::Error;
use crate::http::HttpResponse;

/// Histogram, s: token fetches, by `outcome` (`ok`, `error`), `origin`
/// (`source`, `store`) and, for failures, `error.type`.
pub(crate) const FETCH_DURATION: &str = "cxone_auth.token.fetch.duration";
/// Histogram, s: callers that found no usable token and waited, by `outcome`.
pub(crate) const WAIT_DURATION: &str = "cxone_auth.token.wait.duration";
/// Counter: tokens dropped after the server rejected them.
pub(crate) const INVALIDATIONS: &str = "cxone_auth.token.invalidations";
/// Counter: refreshes started ahead of expiry.
pub(crate) const REFRESHES_AHEAD: &str = "cxone_auth.token.refreshes_ahead";
/// Gauge, s: the current token's remaining lifetime (0 without one).
pub(crate) const REMAINING_LIFETIME: &str = "cxone_auth.token.remaining_lifetime";
/// Gauge: 1 while the shared token store answers, 0 after it failed.
pub(crate) const STORE_AVAILABLE: &str = "cxone_auth.store.available";
/// Counter: requests replayed once after a 401.
pub(crate) const UNAUTHORIZED_REPLAYS: &str = "cxone_auth.retry.unauthorized_replays";
/// Histogram, s: waits before a replay or a send, by
/// `http.response.status_code` (429 or 503; 429 for a host's cool-down).
pub(crate) const RETRY_WAIT_DURATION: &str = "cxone_auth.retry.wait.duration";
/// Counter: 429/503 retries the budget refused, by `http.response.status_code`.
pub(crate) const RETRIES_REFUSED: &str = "cxone_auth.retry.budget_exhausted";

/// The `cache` label's value: the cache's name, shared by its events.
pub(crate) type CacheName = Arc<str>;

#[cfg(feature = "metrics")]
fn label(cache: &CacheName) -> SharedString {
    SharedString::from_shared(Arc::clone(cache))
}

pub(crate) fn fetched<T>(
    cache: &CacheName,
    result: &Result<T, Error>,
    from_store: bool,
    took: Duration,
) {
    #[cfg(feature = "metrics")]
    {
        let origin = if from_store { "store" } else { "source" };
        let histogram = match result {
            Ok(_) => {
                histogram!(FETCH_DURATION, "cache" => label(cache), "outcome" => "ok", "origin" => origin)
            }
            Err(error) => {
                histogram!(FETCH_DURATION, "cache" => label(cache), "outcome" => "error", "origin" => origin,
                "error.type" => format!("{:?}", error.kind()))
            }
        };
        histogram.record(took.as_secs_f64());
    }
}

pub(crate) fn waited<T>(cache: &CacheName, result: &Result<T, Error>, took: Duration) {
    #[cfg(feature = "metrics")]
    histogram!(WAIT_DURATION, "cache" => label(cache), "outcome" => if result.is_ok() { "ok" } else { "error" })
        .record(took.as_secs_f64());
}

pub(crate) fn invalidated(cache: &CacheName) {
    #[cfg(feature = "metrics")]
    counter!(INVALIDATIONS, "cache" => label(cache)).increment(1);
}

pub(crate) fn refreshing_ahead(cache: &CacheName) {
    #[cfg(feature = "metrics")]
    counter!(REFRESHES_AHEAD, "cache" => label(cache)).increment(1);
}

pub(crate) fn store_available(cache: &CacheName, available: bool) {
    #[cfg(feature = "metrics")]
    gauge!(STORE_AVAILABLE, "cache" => label(cache)).set(f64::from(u8::from(available)));
}

pub(crate) fn replayed_unauthorized(cache: Option<&CacheName>) {
    #[cfg(feature = "metrics")]
    counter!(UNAUTHORIZED_REPLAYS, "cache" => optional(cache)).increment(1);
}

pub(crate) fn retry_wait(cache: Option<&CacheName>, status: u16, wait: Duration) {
    #[cfg(feature = "metrics")]
    histogram!(RETRY_WAIT_DURATION, "cache" => optional(cache), "http.response.status_code" => status.to_string())
        .record(wait.as_secs_f64());
}

pub(crate) fn retry_refused(cache: Option<&CacheName>, status: u16) {
    #[cfg(feature = "metrics")]
    counter!(RETRIES_REFUSED, "cache" => optional(cache), "http.response.status_code" => status.to_string())
        .increment(1);
}

/// The cache that authorized a request, on its response when the retry
/// layer may act on it (401, 429, 503), to label the retry layer's metrics.
#[cfg(feature = "metrics")]
#[derive(Debug, Clone)]
struct AuthorizedBy(CacheName);

/// Marks a 401, 429 or 503 response with the cache whose token its request
/// carried.
pub(crate) fn mark_response<R: HttpResponse>(response: &mut R, cache: &CacheName) {
    #[cfg(feature = "metrics")]
    if matches!(response.status().as_u16(), 401 | 429 | 503) {
        response
            .extensions_mut()
            .insert(AuthorizedBy(Arc::clone(cache)));
    }
}

/// The cache [`mark_response`] named on `response`.
pub(crate) fn response_cache<R: HttpResponse>(response: &R) -> Option<&CacheName> {
    #[cfg(feature = "metrics")]
    return response.extensions().get::<AuthorizedBy>().map(|by| &by.0);
    #[cfg(not(feature = "metrics"))]
    None
}

/// A retry layer's event names the cache of the auth layer inside it, which
/// the response carries; a request waiting for a host's cool-down before it
/// reached the auth layer has none (an empty label).
#[cfg(feature = "metrics")]
fn optional(cache: Option<&CacheName>) -> SharedString {
    cache.map_or(SharedString::const_str(""), label)
}

/// The remaining-lifetime gauge of one token, registered when the token
/// lands and set as reads see the clock move, at most once a second: a read
/// then costs a comparison, not a write every other core must see.
#[derive(Debug)]
pub(crate) struct LifetimeGauge {
    #[cfg(feature = "metrics")]
    gauge: ::metrics::Gauge,
    #[cfg(feature = "metrics")]
    last_secs: std::sync::atomic::AtomicU64,
}

impl LifetimeGauge {
    pub(crate) fn new(cache: &CacheName, expires_at: Instant) -> Self {
        let gauge = Self {
            #[cfg(feature = "metrics")]
            gauge: gauge!(REMAINING_LIFETIME, "cache" => label(cache)),
            #[cfg(feature = "metrics")]
            last_secs: std::sync::atomic::AtomicU64::new(u64::MAX),
        };
        gauge.observe(expires_at, Instant::now());
        gauge
    }

    #[inline]
    pub(crate) fn observe(&self, expires_at: Instant, now: Instant) {
        #[cfg(feature = "metrics")]
        {
            use std::sync::atomic::Ordering::Relaxed;
            let secs = expires_at.saturating_duration_since(now).as_secs();
            if self.last_secs.load(Relaxed) != secs {
                self.last_secs.store(secs, Relaxed);
                self.gauge.set(secs as f64);
            }
        }
    }

    /// The token is gone (invalidated): no lifetime left.
    pub(crate) fn clear(&self) {
        let now = Instant::now();
        self.observe(now, now);
    }
}
