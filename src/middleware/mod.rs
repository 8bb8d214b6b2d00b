//! [`CxoneAuthMiddleware`]: CXone authentication for
//! [`reqwest-middleware`](reqwest_middleware) chains.
//!
//! The middleware is the crate's tower stack run on the rest of the chain:
//! [`CxoneRetryLayer`] outside [`CxoneAuthLayer`], exactly as a tower user
//! stacks them. So it behaves the same, by the same code:
//!
//! - the token goes only to https requests for allowed hosts (see
//!   [`CxoneAuthLayer`]); any other request fails with
//!   [`ErrorKind::HostNotAllowed`](crate::ErrorKind::HostNotAllowed)
//!   before anything is sent;
//! - a 401 invalidates the token it carried, and the request is replayed once
//!   with a fresh token;
//! - a 429 (and a 503 to an idempotent request) is replayed after its
//!   `Retry-After` (or a jittered backoff), a few times at most and within a
//!   retry budget, and the host cools down for every request meanwhile;
//! - a request whose body cannot be cloned (a stream, or a body over
//!   [`max_replay_body_bytes`](crate::retry::CxoneRetryLayerBuilder::max_replay_body_bytes))
//!   is sent once: its 401, 429 or 503 is returned as it is (a 401 still
//!   invalidates the token, a 429 still cools the host down).
//!
//! ```
//! use cxone_auth::middleware::CxoneAuthMiddleware;
//! use cxone_auth::mock::{self, MockCxone};
//! use cxone_auth::token::AccessKeyGrant;
//! use cxone_auth::TokenCache;
//! use reqwest_middleware::ClientBuilder;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A mock CXone on 127.0.0.1; with real credentials, use
//! // `AccessKeyGrant::from_env()?` and drop `allow_loopback_http`.
//! let cxone = MockCxone::new().serve().await?;
//! let source = AccessKeyGrant::new(
//!     mock::CLIENT_ID, mock::CLIENT_SECRET, mock::ACCESS_KEY_ID, mock::ACCESS_KEY_SECRET,
//! )?
//! .token_url(cxone.token_url())?;
//!
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(CxoneAuthMiddleware::new(TokenCache::new(source)).allow_loopback_http(true))
//!     .build();
//! let agents = client
//!     .get(format!("{}/inContactAPI/services/v34.0/agents", cxone.api_endpoint()))
//!     .send()
//!     .await?;
//! assert_eq!(agents.status(), 200);
//! # Ok(())
//! # }
//! ```
//!
//! # With reqwest-retry and reqwest-tracing
//!
//! Put it **last** (innermost), after `TracingMiddleware` and
//! `RetryTransientMiddleware`:
//!
//! ```text
//! ClientBuilder::new(reqwest::Client::new())
//!     .with(TracingMiddleware::default())                    // 1. one span per call, retries inside it
//!     .with(RetryTransientMiddleware::new_with_policy(policy)) // 2. connection errors, 5xx
//!     .with(CxoneAuthMiddleware::new(tokens))                // 3. token, 401, 429
//!     .build()
//! ```
//!
//! - Every attempt reqwest-retry makes passes through this middleware again,
//!   so it carries the token that is current then, not the one a 401 refused.
//! - This middleware sees a 429 first and honours its `Retry-After`
//!   (reqwest-retry does not read it); reqwest-retry sees the 429 only when
//!   this middleware gave up (attempts or budget used up), and its next
//!   attempt still waits here for the host's cool-down.
//! - A 401 is not transient for reqwest-retry, so it does not retry it; this
//!   middleware replays it once with a fresh token.
//!
//! To avoid retrying twice, leave 429 to this middleware (its attempts are
//! [`CxoneRetryLayerBuilder::max_attempts`](crate::retry::CxoneRetryLayerBuilder::max_attempts))
//! and let reqwest-retry handle connection errors and 5xx.
//!
//! # Errors
//!
//! Failures of this middleware come back as
//! `reqwest_middleware::Error::Middleware` around a
//! [`cxone_auth::Error`](crate::Error), which says what to fix:
//!
//! ```
//! # use cxone_auth::{ErrorKind, TokenCache, middleware::CxoneAuthMiddleware, token::StaticToken};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//! #     .with(CxoneAuthMiddleware::new(TokenCache::new(StaticToken::new("t"))))
//! #     .build();
//! let err = client.get("https://example.com/").send().await.unwrap_err();
//! let reqwest_middleware::Error::Middleware(err) = err else { panic!() };
//! let err = err.downcast_ref::<cxone_auth::Error>().unwrap();
//! assert_eq!(err.kind(), ErrorKind::HostNotAllowed);
//! # }
//! ```
//!
//! Errors of the client and of the middlewares after this one come back as
//! they were.
//!
//! # Extensions
//!
//! The `http::Extensions` of the chain pass through: the middlewares after
//! this one see them, and what they insert is there for the middlewares
//! before it once the call returns. Replays see what the previous attempt
//! left.
//!
//! # Runtime
//!
//! Waits use `tokio::time`: a Tokio runtime with time enabled is required,
//! and tests can pause time.

mod next;

use http::Extensions;
use reqwest_middleware::{Middleware, Next};
use tower::{Layer as _, ServiceExt as _};

use self::next::NextService;
use crate::error::BoxError;
use crate::{CxoneAuthLayer, CxoneRetryLayer, Error, TokenCache};

/// A `reqwest-middleware` [`Middleware`] that authenticates requests with
/// CXone tokens from a [`TokenCache`], replays a 401 once with a fresh
/// token, and honours `Retry-After` on 429 and 503.
///
/// See the [module docs](self) for what it does and where it goes in a chain.
///
/// Cheap to clone; clones share the token cache, the retry budget and the
/// hosts cooling down.
#[derive(Debug, Clone)]
pub struct CxoneAuthMiddleware {
    auth: CxoneAuthLayer,
    retry: CxoneRetryLayer,
}

impl CxoneAuthMiddleware {
    /// A middleware attaching tokens from `tokens` to https requests for
    /// CXone's domains, with the default retries
    /// ([`CxoneRetryLayer::default`]).
    pub fn new(tokens: TokenCache) -> Self {
        Self::from_layers(CxoneAuthLayer::new(tokens), CxoneRetryLayer::default())
    }

    /// A middleware with the host rules of `auth` and the retries of
    /// `retry`. Pass clones of the layers a tower stack uses, and the two
    /// clients share the token cache, the retry budget and the cool-downs:
    /// a 429 seen by one makes the other wait too.
    pub fn from_layers(auth: CxoneAuthLayer, retry: CxoneRetryLayer) -> Self {
        Self { auth, retry }
    }

    /// Allows another host over https: `api.example.com`, or `*.example.com`
    /// for a domain and its subdomains.
    pub fn allow_host(mut self, pattern: &str) -> Self {
        self.auth = self.auth.allow_host(pattern);
        self
    }

    /// Allows loopback hosts over plain http, for tests and local mocks. Off
    /// by default.
    pub fn allow_loopback_http(mut self, allow: bool) -> Self {
        self.auth = self.auth.allow_loopback_http(allow);
        self
    }

    /// Replaces the retries (attempts, `Retry-After` cap, backoff, budget).
    pub fn retry(mut self, retry: CxoneRetryLayer) -> Self {
        self.retry = retry;
        self
    }

    /// The token cache this middleware draws from.
    pub fn tokens(&self) -> &TokenCache {
        self.auth.tokens()
    }
}

#[async_trait::async_trait]
impl Middleware for CxoneAuthMiddleware {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let rest = NextService::new(next, std::mem::take(extensions));
        let client = self.retry.layer(self.auth.layer(rest.clone()));
        let result = client.oneshot(request).await;
        *extensions = rest.take_extensions();
        result.map_err(middleware_error)
    }
}

/// The chain's own errors as they were; this crate's wrapped, so callers can
/// downcast them.
fn middleware_error(err: BoxError) -> reqwest_middleware::Error {
    let err = match err.downcast::<reqwest_middleware::Error>() {
        Ok(err) => return *err,
        Err(err) => err,
    };
    match err.downcast::<Error>() {
        Ok(err) => reqwest_middleware::Error::middleware(*err),
        // The stack returns only the two kinds above; keep anything else
        // as the source of a transport error rather than lose it.
        Err(err) => reqwest_middleware::Error::middleware(Error::transport(
            "the request failed in the CXone middleware",
            err,
        )),
    }
}
