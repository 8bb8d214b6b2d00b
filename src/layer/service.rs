//! [`CxoneAuthLayer`] and its service [`CxoneAuth`].

use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::AUTHORIZATION;
use tower_layer::Layer;
use tower_service::Service;
use url::Url;

use super::future::{Authorized, ResponseFuture};
use super::hosts::AllowedHosts;
use super::request::{AuthRequest, AuthResponse};
use crate::cache::TokenReader;
use crate::error::BoxError;
use crate::{Error, TokenCache};

/// Attaches `Authorization: Bearer` from a [`TokenCache`] to the requests of
/// the wrapped service.
///
/// See the [module docs](crate::layer) for what it does and in which order to
/// stack it.
#[derive(Debug, Clone)]
pub struct CxoneAuthLayer {
    tokens: TokenCache,
    config: Arc<Config>,
}

/// Where the token may go; shared by every service a layer builds.
#[derive(Debug, Clone, Default)]
struct Config {
    hosts: AllowedHosts,
    base_url: Option<Url>,
}

impl Config {
    /// Refuses requests that must not carry the token.
    fn check<R: AuthRequest>(&self, request: &R) -> Result<(), Error> {
        let (scheme, host) = match (request.scheme(), request.host()) {
            (Some(scheme), Some(host)) => (scheme, host),
            _ => match &self.base_url {
                Some(base) => (base.scheme(), base.host_str().unwrap_or_default()),
                None => {
                    return Err(Error::host_not_allowed(
                        "the request has only a path; set the layer's base URL to say where such requests go",
                    ));
                }
            },
        };
        if self.hosts.allows(scheme, host) {
            Ok(())
        } else {
            tracing::debug!(scheme, host, "refused to send a CXone token to this host");
            Err(Error::host_not_allowed(format!(
                "refused to send the CXone token to {scheme}://{host}"
            )))
        }
    }
}

impl CxoneAuthLayer {
    /// A layer attaching tokens from `tokens` to https requests for CXone's
    /// domains ([`AllowedHosts::default`]).
    pub fn new(tokens: TokenCache) -> Self {
        Self {
            tokens,
            config: Arc::default(),
        }
    }

    /// Allows another host over https: `api.example.com`, or `*.example.com`
    /// for a domain and its subdomains.
    pub fn allow_host(mut self, pattern: &str) -> Self {
        let config = Arc::make_mut(&mut self.config);
        config.hosts = std::mem::take(&mut config.hosts).allow_host(pattern);
        self
    }

    /// Allows loopback hosts over plain http, for tests and local mocks. Off
    /// by default.
    pub fn allow_loopback_http(mut self, allow: bool) -> Self {
        let config = Arc::make_mut(&mut self.config);
        config.hosts = std::mem::take(&mut config.hosts).allow_loopback_http(allow);
        self
    }

    /// Replaces the allowed hosts.
    pub fn allowed_hosts(mut self, hosts: AllowedHosts) -> Self {
        Arc::make_mut(&mut self.config).hosts = hosts;
        self
    }

    /// Declares where requests that carry only a path go, such as the
    /// requests a tonic `Channel` sends (it adds its origin itself). Such
    /// requests get the token when this base is an allowed host; without a
    /// base they are refused.
    pub fn base_url(mut self, base: Url) -> Self {
        Arc::make_mut(&mut self.config).base_url = Some(base);
        self
    }

    /// The token cache this layer draws from.
    pub fn tokens(&self) -> &TokenCache {
        &self.tokens
    }
}

impl<S> Layer<S> for CxoneAuthLayer {
    type Service = CxoneAuth<S>;

    fn layer(&self, inner: S) -> CxoneAuth<S> {
        CxoneAuth::with_config(inner, self.tokens.reader(), Arc::clone(&self.config))
    }
}

/// The service [`CxoneAuthLayer`] builds: attaches the token, refuses hosts
/// that may not receive it, and invalidates a token the server rejects.
///
/// Its error type is [`BoxError`](tower::BoxError): the inner service's
/// errors as they are, or a [`cxone_auth::Error`](crate::Error) when the
/// token could not be obtained or the host is not allowed.
#[derive(Debug)]
pub struct CxoneAuth<S> {
    inner: S,
    tokens: TokenReader,
    config: Arc<Config>,
    /// Whether `inner` has been driven to readiness for the next call.
    inner_ready: bool,
}

impl<S> CxoneAuth<S> {
    /// Wraps `inner` with the default host rules; see [`CxoneAuthLayer`] for
    /// the options.
    pub fn new(inner: S, tokens: TokenCache) -> Self {
        CxoneAuthLayer::new(tokens).layer(inner)
    }

    fn with_config(inner: S, tokens: TokenReader, config: Arc<Config>) -> Self {
        Self {
            inner,
            tokens,
            config,
            inner_ready: false,
        }
    }

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

impl<S: Clone> Clone for CxoneAuth<S> {
    /// A clone has not reserved capacity in its inner service, whatever the
    /// original has.
    fn clone(&self) -> Self {
        Self::with_config(
            self.inner.clone(),
            self.tokens.clone(),
            Arc::clone(&self.config),
        )
    }
}

impl<S: Clone> CxoneAuth<S> {
    /// Takes the inner service for a call that must wait (for a token or for
    /// readiness) before it is sent, leaving a clone behind. When `inner` was
    /// already driven to readiness it goes along, so the capacity it holds is
    /// used by this call instead of staying reserved in `self`.
    fn take_inner(&mut self) -> S {
        if std::mem::take(&mut self.inner_ready) {
            let clone = self.inner.clone();
            std::mem::replace(&mut self.inner, clone)
        } else {
            self.inner.clone()
        }
    }
}

impl<S, R> Service<R> for CxoneAuth<S>
where
    S: Service<R> + Clone,
    S::Response: AuthResponse,
    S::Error: Into<BoxError>,
    R: AuthRequest,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, S, R>;

    /// Ready at once when no token is cached: the call will load one first and
    /// only then drive the inner service to readiness, so a buffered inner
    /// service (a tonic `Channel`, `BufferLayer`) holds no slot while a token
    /// loads.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.inner_ready || !self.tokens.has_token() {
            return Poll::Ready(Ok(()));
        }
        ready!(self.inner.poll_ready(cx)).map_err(Into::into)?;
        self.inner_ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: R) -> Self::Future {
        // A request that already carries `Authorization` is the caller's
        // choice: it is sent as it is, wherever it goes.
        let authorized = if request.headers().contains_key(AUTHORIZATION) {
            None
        } else {
            if let Err(error) = self.config.check(&request) {
                return ResponseFuture::refused(error);
            }
            // The token is read here, not kept from `poll_ready`: a call can
            // come long after its `poll_ready` (a retry layer holds requests
            // through a cool-down while the ready service waits), by when
            // that token may have been invalidated or have expired.
            let Some((header, id)) = self.tokens.cached_header() else {
                return ResponseFuture::loading(self.take_inner(), request, self.tokens.cache());
            };
            request.headers_mut().insert(AUTHORIZATION, header);
            Some(Authorized::new(self.tokens.cache(), id))
        };
        if std::mem::take(&mut self.inner_ready) {
            ResponseFuture::called(self.inner.call(request), authorized)
        } else {
            ResponseFuture::readying(self.inner.clone(), request, authorized)
        }
    }
}
