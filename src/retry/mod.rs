//! Retries done right for CXone: a 401 once with a fresh token, 429 and 503
//! after the wait the server asked for, within a budget.
//!
//! [`CxoneRetryLayer`] wraps any tower HTTP service whose requests are
//! `http::Request<B>` (with a [`ReplayBody`]) or, with the `reqwest` feature,
//! `reqwest::Request`. What it does, per answer:
//!
//! | answer | what happens |
//! | --- | --- |
//! | 401 | one replay per request (not counted in the attempts, not paid from the budget), through the auth layer, which attaches the token it fetched after invalidating the refused one; none for a request that carries its own `Authorization`, nor for a 401 from a partner host (see [`CxoneAuthLayer::allow_host`](crate::CxoneAuthLayer::allow_host)) |
//! | 429 | wait `Retry-After` (seconds or HTTP-date, capped at 60 s) or a jittered exponential backoff, then replay, up to three sends in all ([`max_attempts`](CxoneRetryLayerBuilder::max_attempts)); the host cools down for every clone of the client meanwhile |
//! | 503 | as 429 without the cool-down, for idempotent methods only unless [`retry_503_for_non_idempotent`](CxoneRetryLayerBuilder::retry_503_for_non_idempotent) |
//! | anything else, or an error | returned as it is |
//!
//! Errors of the inner service (the auth layer's typed errors, timeouts,
//! connection failures) are never retried: the request may have reached the
//! server, and the auth layer already retries what it can.
//!
//! # Per request
//!
//! A request that carries [`NoReplay`] in its extensions is sent once: its
//! 401, 429 or 503 is returned as it is (a 401 still makes the auth layer
//! drop the token). A response the layer replayed or waited for carries
//! [`RetryInfo`] in its extensions: how many sends it took and how long the
//! layer waited. A response without it was sent once, with no wait.
//!
//! ```
//! use std::convert::Infallible;
//! use cxone_auth::CxoneRetryLayer;
//! use cxone_auth::retry::{NoReplay, RetryInfo};
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let busy = tower::service_fn(|_: Request<()>| async {
//!     Ok::<_, Infallible>(Response::builder().status(429).header("retry-after", "1").body(()).unwrap())
//! });
//! let client = ServiceBuilder::new().layer(CxoneRetryLayer::new()).service(busy);
//!
//! let url = "https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents";
//! let response = client.clone().oneshot(Request::get(url).body(()).unwrap()).await.unwrap();
//! let info = response.extensions().get::<RetryInfo>().unwrap();
//! assert_eq!((info.attempts, info.waited.as_secs()), (3, 2));
//!
//! let mut once = Request::get(url).body(()).unwrap();
//! once.extensions_mut().insert(NoReplay);
//! let response = client.oneshot(once).await.unwrap();
//! assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
//! # }
//! ```
//!
//! `reqwest::Request` keeps its extensions to itself, so `NoReplay` works
//! with `http::Request` only; `RetryInfo` is on both kinds of response.
//!
//! A request is replayed only from a copy taken before it is sent: a buffered
//! body of at most 1 MiB (see [`ReplayBody`]), or a `reqwest::Request`
//! whose `try_clone` succeeds. Any other request is sent once, and its
//! 401/429/503 is returned as it is, with a `tracing` debug line saying why.
//!
//! # Example
//!
//! A server that rate-limits the first call: the caller sees only the
//! success, two seconds (of paused test time) later.
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::time::Duration;
//!
//! use cxone_auth::CxoneRetryLayer;
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let calls = Arc::new(AtomicUsize::new(0));
//! let counter = calls.clone();
//! let api = tower::service_fn(move |_req: Request<String>| {
//!     let response = if counter.fetch_add(1, Ordering::SeqCst) == 0 {
//!         Response::builder().status(StatusCode::TOO_MANY_REQUESTS).header("retry-after", "2")
//!     } else {
//!         Response::builder().status(StatusCode::OK)
//!     };
//!     async move { Ok::<_, Infallible>(response.body(()).unwrap()) }
//! });
//!
//! let client = ServiceBuilder::new()
//!     .layer(CxoneRetryLayer::builder().max_attempts(4).build())
//!     .service(api);
//!
//! let start = tokio::time::Instant::now();
//! let request = Request::post("https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents")
//!     .body(String::from("{}"))
//!     .unwrap();
//! let response = client.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(calls.load(Ordering::SeqCst), 2);
//! assert_eq!(start.elapsed(), Duration::from_secs(2));
//! # }
//! ```
//!
//! # Where it goes in the stack
//!
//! ```text
//! ServiceBuilder::new()
//!     .layer(TimeoutLayer::new(total))           // 1. bounds the whole call, waits included
//!     .layer(CxoneRetryLayer::default())         // 2. replays
//!     .layer(CxoneAuthLayer::new(tokens))        // 3. attaches the Bearer token
//!     .layer(BufferLayer::new(1024))             // 4. optional: shares a rate limit
//!     .layer(RateLimitLayer::new(n, per))        //    across clones
//!     .service(http_client)
//! ```
//!
//! The retry layer goes **outside** the auth layer: it copies each request
//! before the auth layer attaches a token, the auth layer sees a 401 first
//! and invalidates the refused token, and waits happen before the auth layer,
//! so each replay carries the token that is fresh when it is sent (one
//! refresh for a burst of 401s). A request that reaches the retry layer
//! already carrying `Authorization` (its own, or from an auth layer stacked
//! outside by mistake) is not replayed after a 401: the same credentials
//! would be refused again.
//!
//! A `TimeoutLayer` outside bounds the whole call; inside, each attempt (a
//! timed-out attempt is an error, not retried). A `RateLimitLayer` belongs
//! inside, so replays count against the rate too. The inner service must be
//! `Clone`; a `BufferLayer` makes any service `Clone`.
//!
//! # The budget, and why each request pays into it
//!
//! Retries multiply load exactly when a server can least take it: if every
//! client retries every 503 twice, an overloaded server gets three times the
//! traffic. So all services of one layer share tower's `TpsBudget`: each
//! request deposits, each 429/503 retry withdraws, and a retry the budget
//! cannot pay for is not made (by default, 20% of the last 10 s of traffic
//! plus 10 per second). The one 401 replay is not paid from the budget: it
//! follows a token change, not an overload, and comes once per request.
//!
//! # Why not `tower::retry::Retry`
//!
//! tower's `Retry` sends each request at once; here a request to a host
//! cooling down waits before its first send, with an unready clone of the
//! inner service, so it holds no slot of a `Buffer` meanwhile. A request that
//! succeeds costs a budget deposit, one atomic load and, when a replay could
//! follow, the copy and a clone of the inner service; nothing is boxed.
//! Waits use `tokio::time` (a runtime with time enabled; tests can pause it).

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::retry::budget::{Budget as _, TpsBudget};
use tower_layer::Layer;
use tower_service::Service;

use self::cooldown::Cooldowns;
use self::future::ResponseFuture;
use self::policy::Policy;
use crate::backoff::Backoff;
use crate::http::{HttpRequest, HttpResponse, ReplayBody};

mod cooldown;
pub mod future;
mod policy;

const DEFAULT_MAX_ATTEMPTS: u32 = 3;
const DEFAULT_RETRY_AFTER_CAP: Duration = Duration::from_secs(60);
const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(500);
const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(10);
const DEFAULT_BUDGET_TTL: Duration = Duration::from_secs(10);
const DEFAULT_BUDGET_MIN_PER_SEC: u32 = 10;
const DEFAULT_BUDGET_RETRY_PERCENT: f32 = 0.2;
const DEFAULT_MAX_REPLAY_BODY_BYTES: usize = 1024 * 1024;

/// Put in a request's extensions, sends it once: no replay after a 401, a
/// 429 or a 503. See [Per request](self#per-request).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReplay;

/// On a response's extensions, what the retry layer did for it, when it
/// replayed or waited. See [Per request](self#per-request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryInfo {
    /// How many times the request was sent, the first send included.
    pub attempts: u32,
    /// How long the layer waited in all: `Retry-After`s, backoffs and host
    /// cool-downs.
    pub waited: std::time::Duration,
}

/// A tower [`Layer`] that replays a 401 once and honours 429 and 503; put it
/// **outside** the auth layer (see the [module documentation](self)).
///
/// The state its services share (the retry budget, the hosts cooling down)
/// is created when the layer is built; clones of the layer share it. Build
/// one layer per upstream API and clone it.
#[derive(Debug, Clone)]
pub struct CxoneRetryLayer {
    policy: Arc<Policy>,
}

impl CxoneRetryLayer {
    /// A layer with the defaults (see [`CxoneRetryLayerBuilder`]).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to change the defaults.
    pub fn builder() -> CxoneRetryLayerBuilder {
        CxoneRetryLayerBuilder {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_after_cap: DEFAULT_RETRY_AFTER_CAP,
            backoff: (DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_MAX),
            budget: (
                DEFAULT_BUDGET_TTL,
                DEFAULT_BUDGET_MIN_PER_SEC,
                DEFAULT_BUDGET_RETRY_PERCENT,
            ),
            max_replay_body_bytes: DEFAULT_MAX_REPLAY_BODY_BYTES,
            retry_503_for_non_idempotent: false,
        }
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
        CxoneRetry {
            inner,
            policy: Arc::clone(&self.policy),
        }
    }
}

/// Builds a [`CxoneRetryLayer`]; every setting has a default, given with its
/// reason on the setter.
///
/// ```
/// use std::time::Duration;
/// use cxone_auth::CxoneRetryLayer;
///
/// let layer = CxoneRetryLayer::builder()
///     .max_attempts(4)
///     .retry_after_cap(Duration::from_secs(30))
///     .retry_503_for_non_idempotent(true)
///     .build();
/// let same_state = layer.clone(); // shares the budget and the cool-downs
/// # let _ = same_state;
/// ```
#[derive(Debug, Clone)]
pub struct CxoneRetryLayerBuilder {
    max_attempts: u32,
    retry_after_cap: Duration,
    backoff: (Duration, Duration),
    budget: (Duration, u32, f32),
    max_replay_body_bytes: usize,
    retry_503_for_non_idempotent: bool,
}

impl CxoneRetryLayerBuilder {
    /// How many times a request may be sent for 429 and 503 answers, the
    /// first send included; `1` turns those retries off, `0` counts as `1`.
    /// The one replay after a 401 comes on top.
    ///
    /// Defaults to 3: three sends cover a brief overload without letting one
    /// request hammer a server that keeps refusing; the budget limits
    /// retries across requests.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The longest wait a `Retry-After` header can impose; longer asks wait
    /// this long. It also bounds a host's cool-down. `Duration::MAX` lifts
    /// the cap (a wait past the clock's range lasts a year).
    ///
    /// Defaults to 60 s, because a caller waiting longer than a minute is
    /// better told the server is busy; it also bounds a hostile or mistaken
    /// `Retry-After: 86400`.
    pub fn retry_after_cap(mut self, cap: Duration) -> Self {
        self.retry_after_cap = cap;
        self
    }

    /// The backoff when a 429 or 503 has no readable `Retry-After`: retry
    /// number n (from 0) waits a random time up to `min(max, base × 2ⁿ)`
    /// ("full jitter", so that clients refused together do not come back
    /// together).
    ///
    /// Defaults to 500 ms and 10 s: half a second lets a briefly overloaded
    /// server recover without making a caller wait noticeably, and with the
    /// default three attempts the doubling never reaches the maximum, which
    /// bounds the wait when the attempts are raised.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = (base, max);
        self
    }

    /// The retry budget shared by every service of the layer (tower's
    /// [`TpsBudget`]; see the [module documentation](self#the-budget-and-why-each-request-pays-into-it)):
    ///
    /// - `ttl`: how long a request counts, from 1 to 60 s (clamped to that
    ///   range). Defaults to 10 s, tower's: long enough to smooth bursts,
    ///   short enough that a calm spell restores retries after a storm.
    /// - `min_per_sec`: retries per second allowed regardless of traffic
    ///   (at most `i32::MAX - 1`). Defaults to 10, tower's: a client that
    ///   sends little still gets a few retries.
    /// - `retry_percent`: retries allowed per request, from 0.0 to 1000.0
    ///   (clamped; NaN counts as 0.0); 0.2 is one retry per five requests.
    ///   Defaults to 0.2, tower's and reqwest's: retries add at most 20% to
    ///   the traffic, so a struggling server is not pushed over by its
    ///   clients.
    pub fn budget(mut self, ttl: Duration, min_per_sec: u32, retry_percent: f32) -> Self {
        let ttl = ttl.clamp(Duration::from_secs(1), Duration::from_secs(60));
        let min_per_sec = min_per_sec.min(i32::MAX as u32 - 1);
        let retry_percent = if retry_percent.is_nan() {
            0.0
        } else {
            retry_percent.clamp(0.0, 1000.0)
        };
        self.budget = (ttl, min_per_sec, retry_percent);
        self
    }

    /// The longest request body kept for a replay, in bytes; a request with a
    /// longer body is sent once.
    ///
    /// Defaults to 1 MiB: API requests to CXone are small JSON documents, and
    /// a copy of a larger upload doubles its memory.
    pub fn max_replay_body_bytes(mut self, max: usize) -> Self {
        self.max_replay_body_bytes = max;
        self
    }

    /// Whether a 503 to a non-idempotent request (POST, PATCH) is retried.
    ///
    /// Defaults to `false`, because a 503 does not prove the server did
    /// nothing, and sending a POST twice may act twice. Turn it on for APIs
    /// that promise a 503 means "not processed". (A 429 is retried for every
    /// method.)
    pub fn retry_503_for_non_idempotent(mut self, enabled: bool) -> Self {
        self.retry_503_for_non_idempotent = enabled;
        self
    }

    /// Builds the layer, creating the state its services share.
    pub fn build(self) -> CxoneRetryLayer {
        let (base, max) = self.backoff;
        let (ttl, min_per_sec, retry_percent) = self.budget;
        let policy = Policy {
            max_attempts: self.max_attempts,
            retry_after_cap: self.retry_after_cap,
            // `max` is a hard cap, even below `base`.
            backoff: Backoff::new(base.min(max), max, 1.0),
            max_replay_body_bytes: self.max_replay_body_bytes,
            retry_503_for_non_idempotent: self.retry_503_for_non_idempotent,
            budget: TpsBudget::new(ttl, min_per_sec, retry_percent),
            cooldowns: Cooldowns::default(),
        };
        CxoneRetryLayer {
            policy: Arc::new(policy),
        }
    }
}

impl Default for CxoneRetryLayerBuilder {
    fn default() -> Self {
        CxoneRetryLayer::builder()
    }
}

/// The service [`CxoneRetryLayer`] builds; see the [module documentation](self).
/// The inner service must be `Clone`: a request that may be replayed keeps a
/// handle to send its replay through.
#[derive(Debug, Clone)]
pub struct CxoneRetry<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl<S> CxoneRetry<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req> Service<Req> for CxoneRetry<S>
where
    S: Service<Req> + Clone,
    Req: HttpRequest,
    Req::Body: ReplayBody,
    S::Response: HttpResponse,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // Every request earns retries for others; only retries spend them.
        self.policy.budget.deposit();
        let policy = Arc::clone(&self.policy);
        if let Some(until) = policy.cooldowns.until(&request) {
            // The ready service stays here for the next call; the request
            // waits with an unready clone and readies it after the wait, so
            // no slot of a bounded inner service is held while it waits.
            return ResponseFuture::cooling_down(policy, self.inner.clone(), request, until);
        }
        let kept = policy.keep(&Default::default(), &request);
        let future = self.inner.call(request);
        ResponseFuture::called(policy, future, kept, || self.inner.clone())
    }
}
