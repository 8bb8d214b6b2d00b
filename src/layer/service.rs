//! [`CxoneAuthLayer`] and its service [`CxoneAuth`].

use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::AUTHORIZATION;
use tower_layer::Layer;
use tower_service::Service;
use url::Url;

use super::future::ResponseFuture;
use super::hosts::AllowedHosts;
use super::request::{AuthRequest, AuthResponse, host_of};
use super::routing::{DEFAULT_DISCOVERY_BACKOFF, TenantRouter};
use crate::cache::{TokenId, TokenReader};
use crate::error::BoxError;
use crate::token::TenantDiscovery;
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
    path_only: PathOnly,
}

/// What becomes of requests that carry only a path.
#[derive(Debug, Clone, Default)]
enum PathOnly {
    /// Refused: the layer cannot tell where they go.
    #[default]
    Refused,
    /// Sent as they are; they go to this base (a tonic `Channel` adds it).
    BaseUrl(Url),
    /// Rewritten to the API host of the token's tenant.
    Tenant(Arc<TenantRouter>),
}

/// Where an allowed request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    /// Where its URI says (or, path-only, to the base URL).
    AsIs,
    /// Path-only, to the API host of the token's tenant.
    Tenant,
}

impl Config {
    /// Refuses a request to `scheme://authority` that must not carry the
    /// token; `None` for a path-only request, which goes to the base URL or,
    /// with tenant routing, to the tenant's API host.
    fn check(&self, origin: Option<(&str, &str)>) -> Result<Destination, Error> {
        let (scheme, host) = match origin {
            Some((scheme, authority)) => (scheme, host_of(authority)),
            None => match &self.path_only {
                PathOnly::Tenant(_) => return Ok(Destination::Tenant),
                PathOnly::BaseUrl(base) => (base.scheme(), base.host_str().unwrap_or_default()),
                PathOnly::Refused => {
                    return Err(Error::host_not_allowed(
                        "the request has only a path; set the layer's base URL or tenant routing to say where such requests go",
                    ));
                }
            },
        };
        if self.hosts.allows(scheme, host) || self.discovered(scheme, host) {
            Ok(Destination::AsIs)
        } else {
            tracing::debug!(scheme, host, "refused to send a CXone token to this host");
            Err(Error::host_not_allowed(format!(
                "refused to send the CXone token to {scheme}://{host}"
            )))
        }
    }

    /// Whether tenant discovery named this host as a tenant's API host.
    fn discovered(&self, scheme: &str, host: &str) -> bool {
        match &self.path_only {
            PathOnly::Tenant(router) => router.allows(scheme, host),
            _ => false,
        }
    }

    fn router(&self) -> Option<&Arc<TenantRouter>> {
        match &self.path_only {
            PathOnly::Tenant(router) => Some(router),
            _ => None,
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
    /// base (or [tenant routing](Self::tenant_routing)) they are refused.
    /// Replaces tenant routing.
    pub fn base_url(mut self, base: Url) -> Self {
        Arc::make_mut(&mut self.config).path_only = PathOnly::BaseUrl(base);
        self
    }

    /// Sends requests that carry only a path
    /// (`/inContactAPI/services/v34.0/agents`) to the API host of the token's
    /// tenant, found by `discovery` from the token's `tenantId` claim once per
    /// tenant; the discovered host also joins the allowed hosts. Replaces a
    /// [`base_url`](Self::base_url).
    ///
    /// Requests with an absolute URL are not touched, and cost nothing more.
    /// A failed discovery fails the routed requests, before anything is sent,
    /// for [`DEFAULT_DISCOVERY_BACKOFF`](super::DEFAULT_DISCOVERY_BACKOFF); see
    /// the [routing docs](super::routing) for what counts as a failure.
    ///
    /// The discovery state is created here, once, and shared by every service
    /// this layer (and its clones) builds.
    pub fn tenant_routing(mut self, discovery: TenantDiscovery) -> Self {
        Arc::make_mut(&mut self.config).path_only = PathOnly::Tenant(Arc::new(TenantRouter::new(
            discovery,
            DEFAULT_DISCOVERY_BACKOFF,
        )));
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
    /// The last origin allowed: most clients talk to one host, so the host
    /// check is mostly this comparison.
    allowed_origin: Option<AllowedOrigin>,
    /// Whether `inner` has been driven to readiness for the next call.
    inner_ready: bool,
    /// Whether the last call found a usable token. `poll_ready` drives
    /// `inner` to readiness only then (or when the cache has one again), so
    /// a buffered inner service holds no slot while a token loads.
    token_seen: bool,
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
            allowed_origin: None,
            inner_ready: false,
            token_seen: false,
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

/// A scheme and authority the host rules allowed.
#[derive(Debug)]
struct AllowedOrigin {
    /// https, else http (the only other scheme the rules can allow).
    https: bool,
    authority: Box<str>,
}

impl AllowedOrigin {
    fn new(scheme: &str, authority: &str) -> Option<Self> {
        let https = match scheme {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        let authority = authority.into();
        Some(Self { https, authority })
    }

    /// Compares with constants, which the compiler inlines: no call to
    /// `memcmp` for the scheme.
    #[inline]
    fn is(&self, scheme: &str, authority: &str) -> bool {
        let same_scheme = if self.https {
            scheme == "https"
        } else {
            scheme == "http"
        };
        same_scheme && *self.authority == *authority
    }
}

impl<S> CxoneAuth<S> {
    /// Refuses requests that must not carry the token, and says where an
    /// allowed one goes.
    #[inline]
    fn check<R: AuthRequest>(&mut self, request: &R) -> Result<Destination, Error> {
        let origin = request.scheme().zip(request.authority());
        if let (Some((scheme, authority)), Some(allowed)) = (origin, &self.allowed_origin)
            && allowed.is(scheme, authority)
        {
            return Ok(Destination::AsIs);
        }
        self.check_rules(origin)
    }

    /// The host rules, for an origin other than the last one allowed.
    #[inline(never)]
    fn check_rules(&mut self, origin: Option<(&str, &str)>) -> Result<Destination, Error> {
        let destination = self.config.check(origin)?;
        if let Some((scheme, authority)) = origin {
            self.allowed_origin = AllowedOrigin::new(scheme, authority);
        }
        Ok(destination)
    }
}

/// Whether the request carries its own `Authorization`. A request often has
/// no headers at all when it reaches the layer (clients add theirs later), so
/// that is checked first, inline.
#[inline]
fn has_authorization<R: AuthRequest>(request: &R) -> bool {
    let headers = request.headers();
    !headers.is_empty() && headers.contains_key(AUTHORIZATION)
}

/// What [`CxoneAuth::authorize`] did to a request.
enum Authorize {
    /// Inserted the cached token, this one.
    Inserted(TokenId),
    /// Nothing: the request carries its own `Authorization`.
    Preset,
    /// Nothing: no usable token is cached.
    NoToken,
}

impl<S: Clone> CxoneAuth<S> {
    /// Inserts the cached token, unless the request already carries
    /// `Authorization`: that is the caller's choice, sent as it is.
    ///
    /// The token is read here, at the call, not kept from `poll_ready`: a
    /// call can come long after its `poll_ready` (a retry layer holds
    /// requests through a cool-down while the ready service waits), by when
    /// that token may have been invalidated or have expired.
    #[inline]
    fn authorize<R: AuthRequest>(&mut self, request: &mut R) -> Authorize {
        if has_authorization(request) {
            return Authorize::Preset;
        }
        let Some((header, id)) = self.tokens.cached_header() else {
            self.token_seen = false;
            return Authorize::NoToken;
        };
        self.token_seen = true;
        request.headers_mut().insert(AUTHORIZATION, header);
        Authorize::Inserted(id)
    }

    /// Calls the inner service with `request`, or first waits for its
    /// readiness if `poll_ready` did not drive it.
    #[inline]
    fn forward<R>(&mut self, request: R, token: Option<TokenId>) -> ResponseFuture<S::Future, S, R>
    where
        S: Service<R>,
    {
        if std::mem::take(&mut self.inner_ready) {
            ResponseFuture::called(self.inner.call(request), token)
        } else {
            ResponseFuture::readying(self.inner.clone(), request, token)
        }
    }

    /// A call that waits for a token first and, with a `router`, for the
    /// route to the token's tenant. Capacity `inner` reserved in
    /// `poll_ready` is released (the reserved instance is dropped) rather
    /// than held through the wait.
    #[inline(never)]
    fn call_loading<R>(
        &mut self,
        request: R,
        router: Option<Arc<TenantRouter>>,
    ) -> ResponseFuture<S::Future, S, R>
    where
        S: Service<R>,
    {
        if std::mem::take(&mut self.inner_ready) {
            self.inner = self.inner.clone();
        }
        ResponseFuture::loading(self.inner.clone(), request, self.tokens.cache(), router)
    }

    /// A request the host rules refuse: sent as it is if it carries its own
    /// `Authorization` (the caller's choice, wherever it goes), else refused.
    #[cold]
    #[inline(never)]
    fn call_refused<R>(&mut self, request: R, refused: Error) -> ResponseFuture<S::Future, S, R>
    where
        S: Service<R>,
        R: AuthRequest,
    {
        if has_authorization(&request) {
            self.forward(request, None)
        } else {
            ResponseFuture::refused(refused)
        }
    }

    /// A path-only request with tenant routing: sent to the API host of the
    /// token's tenant, waiting for the token or the tenant's discovery if
    /// need be. A request with its own `Authorization` is sent as it is.
    #[inline(never)]
    fn call_routed<R>(&mut self, mut request: R) -> ResponseFuture<S::Future, S, R>
    where
        S: Service<R>,
        R: AuthRequest,
    {
        let router = self.config.router().cloned();
        let id = match self.authorize(&mut request) {
            Authorize::Inserted(id) => id,
            Authorize::Preset => return self.forward(request, None),
            Authorize::NoToken => return self.call_loading(request, router),
        };
        if let Some(router) = router {
            let Some(route) = router.cached_route(id, &mut self.tokens) else {
                // The token goes along; the load puts in the one it gets.
                return self.call_loading(request, Some(router));
            };
            if let Err(error) = route.apply(&mut request) {
                return ResponseFuture::refused(error);
            }
        }
        self.forward(request, Some(id))
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

    /// Ready at once when there is no token: the call will load one first and
    /// only then drive the inner service to readiness, so a buffered inner
    /// service (a tonic `Channel`, `BufferLayer`) holds no slot while a token
    /// loads. The cache is asked only when the last call found no token; a
    /// call that finds none after all releases the capacity reserved here.
    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.inner_ready || !(self.token_seen || self.tokens.has_token()) {
            return Poll::Ready(Ok(()));
        }
        ready!(self.inner.poll_ready(cx)).map_err(Into::into)?;
        self.inner_ready = true;
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn call(&mut self, mut request: R) -> Self::Future {
        match self.check(&request) {
            Ok(Destination::AsIs) => {}
            Ok(Destination::Tenant) => return self.call_routed(request),
            Err(refused) => return self.call_refused(request, refused),
        }
        let token = match self.authorize(&mut request) {
            Authorize::Inserted(id) => Some(id),
            Authorize::Preset => None,
            Authorize::NoToken => return self.call_loading(request, None),
        };
        self.forward(request, token)
    }
}
