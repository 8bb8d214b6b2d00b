//! [`CxoneRetryLayer`] and its builder.
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::retry::CxoneRetryLayer;
//!
//! let layer = CxoneRetryLayer::builder()
//!     .max_attempts(4)
//!     .retry_after_cap(Duration::from_secs(30))
//!     .retry_503_for_non_idempotent(true)
//!     .build();
//! let same_state = layer.clone(); // shares the budget and the cool-downs
//! # let _ = same_state;
//! ```

use std::sync::Arc;
use std::time::Duration;

use tower::retry::budget::TpsBudget;
use tower_layer::Layer;

use super::backoff::{Backoff, DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_MAX};
use super::cooldown::Cooldowns;
use super::policy::{Config, CxoneRetryPolicy, Shared};
use super::replay::DEFAULT_MAX_REPLAY_BODY_BYTES;
use super::service::CxoneRetry;

/// How many times a request is sent for 429 and 503 answers, the first send
/// included.
///
/// Three sends cover a brief overload without letting one request hammer a
/// server that keeps refusing; the budget limits retries across requests.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The longest wait a `Retry-After` header can impose.
///
/// A caller waiting longer than a minute is better told the server is busy;
/// it also bounds a hostile or mistaken `Retry-After: 86400`.
pub const DEFAULT_RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

/// How long a request counts towards the retry budget.
///
/// Tower's default: long enough to smooth bursts, short enough that a calm
/// minute restores retries after a storm.
pub const DEFAULT_BUDGET_TTL: Duration = Duration::from_secs(10);

/// Retries per second the budget allows even without recent requests.
///
/// Tower's default: a client that sends little still gets a few retries.
pub const DEFAULT_BUDGET_MIN_PER_SEC: u32 = 10;

/// Retries allowed as a fraction of recent requests (0.2 = one retry per five
/// requests).
///
/// Tower's and reqwest's default: retries add at most 20% load on top of the
/// traffic, so a struggling server is not pushed over by its clients.
pub const DEFAULT_BUDGET_RETRY_PERCENT: f32 = 0.2;

/// A tower [`Layer`] that retries 401 once and honours 429 and 503.
///
/// Put it **outside** the auth layer (`CxoneAuthLayer`): the retry layer keeps a copy
/// of each request before the auth layer adds the token, so a replay after a
/// 401 goes back through the auth layer and gets the fresh token. See the
/// [module documentation](super) for the full stack.
///
/// State shared by every service it builds (the retry budget, the hosts
/// cooling down) is created once, when the layer is built; clones of the
/// layer share it. Build one layer per upstream API and clone it.
///
/// See [`CxoneRetryPolicy`] for exactly what is retried.
#[derive(Debug, Clone)]
pub struct CxoneRetryLayer {
    policy: CxoneRetryPolicy,
}

impl CxoneRetryLayer {
    /// A layer with the defaults (see [`CxoneRetryLayerBuilder`]).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to change the defaults.
    pub fn builder() -> CxoneRetryLayerBuilder {
        CxoneRetryLayerBuilder::new()
    }

    /// The retry policy, sharing this layer's budget and cool-downs, for use
    /// with [`tower::retry::RetryLayer`] directly.
    ///
    /// Prefer the layer itself: with a bare `RetryLayer` the first send of a
    /// request does not wait for its host's cool-down.
    pub fn policy(&self) -> CxoneRetryPolicy {
        self.policy.clone()
    }
}

impl Default for CxoneRetryLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for CxoneRetryLayer {
    type Service = CxoneRetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CxoneRetry::new(inner, self.policy.clone())
    }
}

/// Builds a [`CxoneRetryLayer`]. Every setting has a default, named by a
/// constant that gives the reason for it.
#[derive(Debug, Clone)]
pub struct CxoneRetryLayerBuilder {
    max_attempts: u32,
    retry_after_cap: Duration,
    backoff_base: Duration,
    backoff_max: Duration,
    budget_ttl: Duration,
    budget_min_per_sec: u32,
    budget_retry_percent: f32,
    max_replay_body_bytes: usize,
    retry_503_for_non_idempotent: bool,
}

impl CxoneRetryLayerBuilder {
    fn new() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_after_cap: DEFAULT_RETRY_AFTER_CAP,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_max: DEFAULT_BACKOFF_MAX,
            budget_ttl: DEFAULT_BUDGET_TTL,
            budget_min_per_sec: DEFAULT_BUDGET_MIN_PER_SEC,
            budget_retry_percent: DEFAULT_BUDGET_RETRY_PERCENT,
            max_replay_body_bytes: DEFAULT_MAX_REPLAY_BODY_BYTES,
            retry_503_for_non_idempotent: false,
        }
    }

    /// How many times a request may be sent for 429 and 503 answers, the
    /// first send included. Default [`DEFAULT_MAX_ATTEMPTS`]; `1` turns those
    /// retries off.
    ///
    /// The one replay after a 401 comes on top and is not counted here: it
    /// answers a token change, not an overloaded server.
    ///
    /// # Panics
    ///
    /// If `attempts` is 0: a request is always sent at least once.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        assert!(attempts >= 1, "max_attempts must be at least 1");
        self.max_attempts = attempts;
        self
    }

    /// The longest wait a `Retry-After` header can impose; longer asks wait
    /// this long. Also bounds a host's cool-down. Default
    /// [`DEFAULT_RETRY_AFTER_CAP`].
    pub fn retry_after_cap(mut self, cap: Duration) -> Self {
        self.retry_after_cap = cap;
        self
    }

    /// The backoff when a 429 or 503 has no readable `Retry-After`: the n-th
    /// retry waits a random time up to `min(max, base × 2ⁿ)`. Defaults
    /// [`DEFAULT_BACKOFF_BASE`] and [`DEFAULT_BACKOFF_MAX`].
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    /// The retry budget shared by every service of the layer (tower's
    /// [`TpsBudget`]): each request deposits, each 429/503 retry withdraws,
    /// and a retry the budget cannot pay for is not made.
    ///
    /// - `ttl`: how long a request counts (1 to 60 s). Default
    ///   [`DEFAULT_BUDGET_TTL`].
    /// - `min_per_sec`: retries per second allowed regardless of traffic.
    ///   Default [`DEFAULT_BUDGET_MIN_PER_SEC`].
    /// - `retry_percent`: retries allowed per request (0.0 to 1000.0; 0.2 is
    ///   one retry per five requests). Default [`DEFAULT_BUDGET_RETRY_PERCENT`].
    ///
    /// # Panics
    ///
    /// If `ttl` is outside 1 to 60 s, `retry_percent` outside 0.0 to 1000.0
    /// (or NaN), or `min_per_sec` is `i32::MAX` or more.
    pub fn budget(mut self, ttl: Duration, min_per_sec: u32, retry_percent: f32) -> Self {
        assert!(
            (Duration::from_secs(1)..=Duration::from_secs(60)).contains(&ttl),
            "the budget ttl must be between 1 and 60 seconds"
        );
        assert!(
            (0.0..=1000.0).contains(&retry_percent),
            "the budget retry_percent must be between 0.0 and 1000.0"
        );
        assert!(
            min_per_sec < i32::MAX as u32,
            "the budget min_per_sec must be below i32::MAX"
        );
        self.budget_ttl = ttl;
        self.budget_min_per_sec = min_per_sec;
        self.budget_retry_percent = retry_percent;
        self
    }

    /// The longest request body kept for a replay, in bytes; a request with a
    /// longer body is sent once. Default [`DEFAULT_MAX_REPLAY_BODY_BYTES`].
    pub fn max_replay_body_bytes(mut self, max: usize) -> Self {
        self.max_replay_body_bytes = max;
        self
    }

    /// Whether a 503 to a non-idempotent request (POST, PATCH) is retried.
    /// Default `false`: a 503 does not prove the server did nothing, and
    /// sending a POST twice may act twice. Turn it on for APIs that promise
    /// a 503 means "not processed". (A 429 is retried for every method.)
    pub fn retry_503_for_non_idempotent(mut self, enabled: bool) -> Self {
        self.retry_503_for_non_idempotent = enabled;
        self
    }

    /// Builds the layer, creating the state its services share.
    pub fn build(self) -> CxoneRetryLayer {
        let shared = Shared {
            config: Config {
                max_attempts: self.max_attempts,
                retry_after_cap: self.retry_after_cap,
                backoff: Backoff::new(self.backoff_base, self.backoff_max),
                max_replay_body_bytes: self.max_replay_body_bytes,
                retry_503_for_non_idempotent: self.retry_503_for_non_idempotent,
            },
            budget: TpsBudget::new(
                self.budget_ttl,
                self.budget_min_per_sec,
                self.budget_retry_percent,
            ),
            cooldowns: Cooldowns::new(),
        };
        CxoneRetryLayer {
            policy: CxoneRetryPolicy::new(Arc::new(shared)),
        }
    }
}

impl Default for CxoneRetryLayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}
