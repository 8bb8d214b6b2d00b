//! Retries done right for CXone: a 401 once with a fresh token, 429 and 503
//! after the wait the server asked for, within a budget.
//!
//! [`CxoneRetryLayer`] wraps any tower HTTP service whose requests are
//! `http::Request<B>` (with a [`ReplayBody`]) or, with the `reqwest` feature,
//! `reqwest::Request`. What it does, per answer:
//!
//! | answer | what happens |
//! | --- | --- |
//! | 401 | one replay per request, through the auth layer, which attaches the token it fetched after invalidating the refused one |
//! | 429 | wait `Retry-After` (seconds or HTTP-date, capped at 60 s) or a jittered exponential backoff, then replay; the host cools down for every clone of the client meanwhile |
//! | 503 | as 429 without the cool-down, for idempotent methods only unless [`retry_503_for_non_idempotent`](CxoneRetryLayerBuilder::retry_503_for_non_idempotent) |
//! | anything else, or an error | returned as it is |
//!
//! Limits: [`DEFAULT_MAX_ATTEMPTS`] sends per request for 429/503 (the 401
//! replay comes on top), and a retry budget shared by all clones (tower's
//! `TpsBudget`, 20% extra load) so that retries cannot multiply the load on a
//! struggling server. Errors of the inner service (the auth layer's typed
//! errors, timeouts, connection failures) are never retried: the request may
//! have reached the server, and the auth layer already retries what it can.
//!
//! A request is replayed only if it can be copied before it is sent: a
//! buffered body under [`DEFAULT_MAX_REPLAY_BODY_BYTES`] (see [`ReplayBody`]),
//! or a `reqwest::Request` whose `try_clone`
//! succeeds. Any other request is sent once, and its 401/429/503 is returned
//! to the caller as it is.
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
//! use cxone_auth::retry::CxoneRetryLayer;
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
//!     .layer(CxoneRetryLayer::default())
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
//! The retry layer goes **outside** the auth layer, because:
//!
//! - it copies each request before the auth layer sees it, so the copy has
//!   no token, and a replay passes through the auth layer again and gets the
//!   current one;
//! - the auth layer sees the 401 first and invalidates the refused token
//!   before the retry layer replays, so the replay carries a fresh token (one
//!   refresh for a burst of 401s);
//! - waits for `Retry-After` happen before the auth layer, so a replay after
//!   a long wait gets a token that is fresh then, not one read before it.
//!
//! If the auth layer were outside, a replay would carry the refused token
//! again. (Should a request reach the retry layer already carrying a token
//! the auth layer set, the retry layer removes that header before a 401
//! replay; a header the caller set is never touched, and not replayed.)
//!
//! A `TimeoutLayer` outside the retry layer bounds the whole call, waits
//! included; inside it, each attempt (a timed-out attempt is an error and is
//! not retried). A `RateLimitLayer` belongs inside, so that replays count
//! against the rate too. The retry layer needs a `Clone` inner service; a
//! `BufferLayer` makes any service `Clone`.
//!
//! # Runtime
//!
//! Waits use `tokio::time`: the layer needs a Tokio runtime with time
//! enabled, and tests can pause time (`#[tokio::test(start_paused = true)]`).

pub(crate) mod backoff;
mod cooldown;
pub mod future;
mod layer;
mod policy;
mod replay;
mod service;

pub use backoff::{DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_MAX};
pub use layer::{
    CxoneRetryLayer, CxoneRetryLayerBuilder, DEFAULT_BUDGET_MIN_PER_SEC,
    DEFAULT_BUDGET_RETRY_PERCENT, DEFAULT_BUDGET_TTL, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_AFTER_CAP,
};
pub use policy::CxoneRetryPolicy;
pub use replay::{DEFAULT_MAX_REPLAY_BODY_BYTES, ReplayBody, RetryRequest, RetryResponse};
pub use service::CxoneRetry;
