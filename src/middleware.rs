//! [`CxoneAuthMiddleware`]: CXone authentication for
//! [`reqwest-middleware`](reqwest_middleware) chains.
//!
//! It runs [`CxoneRetryLayer`] outside [`CxoneAuthLayer`] on the rest of the
//! chain, as a tower stack does; it needs a Tokio runtime with time enabled.
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
//! Put it last (innermost), after `TracingMiddleware` and
//! `RetryTransientMiddleware`: each attempt of reqwest-retry then carries
//! the token current then, and this middleware sees a 429 first and waits
//! its `Retry-After` (reqwest-retry does not read it). Leave 429 to it and
//! connection errors and 5xx to reqwest-retry, to retry nothing twice.
//!
//! Its own failures are `reqwest_middleware::Error::Middleware` around a
//! [`cxone_auth::Error`](crate::Error), which says what to fix; the errors
//! of the client and of the middlewares after it come back as they were:
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
//! The chain's `http::Extensions` pass through both ways; a replay sees what
//! the previous attempt left. They carry the key of a
//! [keyed](CxoneAuthLayer::keyed) layer
//! (`CxoneAuthMiddleware::from_layers(CxoneAuthLayer::keyed(caches), retry)`,
//! then `.with_extension(key)` on each request): the cache is chosen once
//! per request, and its replays use it too.

use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::Extensions;
use reqwest_middleware::{Middleware, Next};
use tower::{Layer as _, ServiceExt as _};
use tower_service::Service;

use crate::error::BoxError;
use crate::{CxoneAuthLayer, CxoneRetryLayer, Error, TokenCache};

/// A `reqwest-middleware` [`Middleware`] running [`CxoneRetryLayer`] and
/// [`CxoneAuthLayer`] ([module docs](self)). Cheap to clone; clones share
/// the token cache, the retry budget and the hosts cooling down.
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
    /// `retry`; clones of a tower stack's layers share their token cache,
    /// budget and cool-downs with it.
    pub fn from_layers(auth: CxoneAuthLayer, retry: CxoneRetryLayer) -> Self {
        Self { auth, retry }
    }

    /// Allows another host over https, as [`CxoneAuthLayer::allow_host`].
    pub fn allow_host(mut self, pattern: &str) -> Self {
        self.auth = self.auth.allow_host(pattern);
        self
    }

    /// Allows loopback hosts over plain http, as
    /// [`CxoneAuthLayer::allow_loopback_http`]. Off by default.
    pub fn allow_loopback_http(mut self, allow: bool) -> Self {
        self.auth = self.auth.allow_loopback_http(allow);
        self
    }

    /// Replaces the retries (attempts, `Retry-After` cap, backoff, budget).
    pub fn retry(mut self, retry: CxoneRetryLayer) -> Self {
        self.retry = retry;
        self
    }

    /// The token cache this middleware draws from; `None` when it was made
    /// from a [keyed](CxoneAuthLayer::keyed) layer.
    pub fn tokens(&self) -> Option<&TokenCache> {
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
        // A keyed layer's key is in the chain's extensions, which the
        // reqwest::Request does not carry: the cache is chosen here, once for
        // the request and its replays.
        let auth = self.auth.for_extensions(extensions);
        let rest = NextService {
            next,
            extensions: Arc::new(Mutex::new(std::mem::take(extensions))),
        };
        let client = self.retry.layer(auth.layer(rest.clone()));
        let result = client.oneshot(request).await;
        *extensions = std::mem::take(&mut *lock(&rest.extensions));
        result.map_err(middleware_error)
    }
}

/// The chain's own errors as they were; this crate's wrapped, so callers can
/// downcast them.
fn middleware_error(err: BoxError) -> reqwest_middleware::Error {
    match err.downcast::<reqwest_middleware::Error>() {
        Ok(err) => *err,
        Err(err) => reqwest_middleware::Error::middleware(match err.downcast::<Error>() {
            Ok(err) => *err,
            // The stack returns only the two kinds above; keep anything
            // else as the source of a transport error rather than lose it.
            Err(err) => Error::transport("the request failed in the CXone middleware", err),
        }),
    }
}

/// The rest of the chain as a tower `Service`, so the layers run on it
/// unchanged. The retry layer sends a request and its replays one after
/// another, each through a clone; every attempt takes the extensions the
/// previous one left, as if it held the `&mut Extensions` itself.
#[derive(Clone)]
struct NextService<'a> {
    next: Next<'a>,
    extensions: Arc<Mutex<Extensions>>,
}

fn lock(extensions: &Mutex<Extensions>) -> std::sync::MutexGuard<'_, Extensions> {
    // Extensions are handed over whole; a panic elsewhere cannot leave one
    // half-written.
    extensions.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<'a> Service<reqwest::Request> for NextService<'a> {
    type Response = reqwest::Response;
    type Error = reqwest_middleware::Error;
    type Future = BoxFuture<'a, reqwest_middleware::Result<reqwest::Response>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: reqwest::Request) -> Self::Future {
        let next = self.next.clone();
        let slot = Arc::clone(&self.extensions);
        Box::pin(async move {
            let mut extensions = std::mem::take(&mut *lock(&slot));
            let result = next.run(request, &mut extensions).await;
            *lock(&slot) = extensions;
            result
        })
    }
}
