//! [`CxoneRetryPolicy`]: which answers are retried, how long to wait, and
//! the state every clone of one layer shares.
//!
//! The policy is a [`tower::retry::Policy`], so it also works on its own with
//! [`tower::retry::RetryLayer`] (without the cool-down before first sends,
//! which needs [`CxoneRetry`](super::CxoneRetry)):
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! use cxone_auth::retry::CxoneRetryLayer;
//! use http::{Request, Response, StatusCode};
//! use tower::ServiceExt;
//! use tower::retry::RetryLayer;
//! use tower::Layer;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let calls = Arc::new(AtomicUsize::new(0));
//! let counter = calls.clone();
//! let server = tower::service_fn(move |_req: Request<()>| {
//!     let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
//!     let status = if first { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
//!     async move { Ok::<_, Infallible>(Response::builder().status(status).body(()).unwrap()) }
//! });
//!
//! let policy = CxoneRetryLayer::default().policy();
//! let client = RetryLayer::new(policy).layer(server);
//! let response = client.oneshot(Request::new(())).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(calls.load(Ordering::SeqCst), 2);
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use tokio::time::Instant;
use tower::retry::Policy;
use tower::retry::budget::{Budget as _, TpsBudget};

use super::backoff::Backoff;
use super::cooldown::{Cooldowns, HostKey};
use super::future::Delay;
use super::replay::{RetryRequest, RetryResponse};
use crate::backoff::later;
use crate::retry_after::retry_after;

/// What a layer was built with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) max_attempts: u32,
    pub(crate) retry_after_cap: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) max_replay_body_bytes: usize,
    pub(crate) retry_503_for_non_idempotent: bool,
}

/// Everything the services built from one layer share: created once when the
/// layer is built, so clones of the layer and of its services see the same
/// budget and the same cool-downs.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) budget: TpsBudget,
    pub(crate) cooldowns: Cooldowns,
}

impl Shared {
    /// When the cool-down of the request's host ends, if it is cooling down.
    pub(crate) fn cooldown_for<R: RetryRequest>(&self, request: &R) -> Option<Instant> {
        if self.cooldowns.is_idle() {
            return None;
        }
        self.cooldowns.until(&request.host_key(), Instant::now())
    }
}

/// The retry policy of [`CxoneRetryLayer`](super::CxoneRetryLayer).
///
/// - **401**: replayed once per request, so the auth layer inside can attach
///   a fresh token (it invalidated the refused one when it saw the 401). Not
///   replayed when the caller set `Authorization` itself: the same
///   credentials would be refused again. The replay is not counted against
///   the attempts or the budget: it follows a token change, not an overload,
///   and there is at most one per request.
/// - **429** (any method) and **503** (idempotent methods, unless
///   [`retry_503_for_non_idempotent`](super::CxoneRetryLayerBuilder::retry_503_for_non_idempotent)):
///   replayed after `Retry-After` (capped), or after an exponential backoff
///   with full jitter when the header is missing or unreadable, while the
///   attempts and the shared retry budget allow. A 429 also cools down its
///   host for every service sharing this policy's state.
/// - Anything else, and every error from the inner service (the auth layer's
///   typed errors, timeouts, connection failures), is returned as it is.
///
/// Obtain one with [`CxoneRetryLayer::policy`](super::CxoneRetryLayer::policy).
/// Clones share the budget and the cool-downs; each request works on its own
/// copy of the attempt counters.
#[derive(Debug, Clone)]
pub struct CxoneRetryPolicy {
    pub(crate) shared: Arc<Shared>,
    /// Replays made for 429 and 503 answers so far.
    throttled_retries: u32,
    /// Whether the one replay after a 401 was used.
    unauthorized_replayed: bool,
}

impl CxoneRetryPolicy {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            throttled_retries: 0,
            unauthorized_replayed: false,
        }
    }

    fn is_first_attempt(&self) -> bool {
        self.throttled_retries == 0 && !self.unauthorized_replayed
    }

    fn retry_unauthorized<R: RetryRequest>(&mut self, request: &mut R) -> Option<Delay> {
        if self.unauthorized_replayed {
            tracing::debug!("second 401 for one request: returned as is");
            return None;
        }
        if !request.can_replay_unauthorized() {
            tracing::debug!("401 for a request that carries its own Authorization: not replayed");
            return None;
        }
        self.unauthorized_replayed = true;
        let now = Instant::now();
        let until = self.shared.cooldown_for(request).unwrap_or(now);
        tracing::debug!("401: replaying once with a fresh token");
        Some(Delay::until(until, now))
    }

    fn retry_throttled<R: RetryRequest>(
        &mut self,
        request: &mut R,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Option<Delay> {
        let shared = &*self.shared;
        let config = &shared.config;
        if status == StatusCode::SERVICE_UNAVAILABLE
            && !request.method().is_idempotent()
            && !config.retry_503_for_non_idempotent
        {
            tracing::debug!(method = %request.method(), "503 for a non-idempotent request: not retried");
            return None;
        }

        let now = Instant::now();
        let wait = self.throttle_wait(headers);
        let key = request.host_key();
        if status == StatusCode::TOO_MANY_REQUESTS {
            // Even when this request gives up, the others wait.
            shared.cooldowns.extend(key.clone(), later(now, wait), now);
        }

        if self.throttled_retries + 1 >= config.max_attempts {
            tracing::debug!(%status, attempts = config.max_attempts, "attempts used up: returned as is");
            return None;
        }
        if !shared.budget.withdraw() {
            tracing::debug!(%status, "retry budget exhausted: returned as is");
            return None;
        }
        self.throttled_retries += 1;
        let until = self.until_host_is_free(&key, later(now, wait), now);
        tracing::debug!(
            %status,
            retry = self.throttled_retries,
            wait_ms = until.saturating_duration_since(now).as_millis() as u64,
            "retrying"
        );
        Some(Delay::until(until, now))
    }

    /// How long a 429 or 503 asks to wait: its `Retry-After`, capped, else
    /// this request's next backoff.
    fn throttle_wait(&self, headers: &HeaderMap) -> Duration {
        let config = &self.shared.config;
        match retry_after(headers) {
            Some(asked) => asked.min(config.retry_after_cap),
            None => config.backoff.delay(self.throttled_retries),
        }
    }

    /// Lets a 429 to a request that could not be copied (so is not retried)
    /// still cool its host down for the other requests.
    pub(crate) fn observe_unreplayable<Res: RetryResponse, E>(
        &self,
        host: HostKey,
        result: &Result<Res, E>,
    ) {
        if let Ok(response) = result
            && response.status() == StatusCode::TOO_MANY_REQUESTS
        {
            let now = Instant::now();
            let wait = self.throttle_wait(response.headers());
            self.shared.cooldowns.extend(host, later(now, wait), now);
        }
    }

    /// The later of `own` and the end of the host's cool-down, which another
    /// request may have made longer.
    fn until_host_is_free(&self, key: &HostKey, own: Instant, now: Instant) -> Instant {
        self.shared
            .cooldowns
            .until(key, now)
            .map_or(own, |cooldown| cooldown.max(own))
    }
}

impl<Req, Res, E> Policy<Req, Res, E> for CxoneRetryPolicy
where
    Req: RetryRequest,
    Res: RetryResponse,
{
    type Future = Delay;

    fn retry(&mut self, req: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        // Errors are not retried: the auth layer's errors are final, and a
        // transport error may have reached the server after all.
        let response = result.as_ref().ok()?;
        match response.status() {
            StatusCode::UNAUTHORIZED => self.retry_unauthorized(req),
            status @ (StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) => {
                self.retry_throttled(req, status, response.headers())
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        if self.is_first_attempt() {
            // Every request earns retries for others; only retries spend them.
            self.shared.budget.deposit();
        } else if self.unauthorized_replayed
            && self.throttled_retries + 1 >= self.shared.config.max_attempts
        {
            // Nothing left to replay for: skip the copy.
            return None;
        }
        req.try_replay(self.shared.config.max_replay_body_bytes)
    }
}
