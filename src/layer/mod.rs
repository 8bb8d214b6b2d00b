//! [`CxoneAuthLayer`]: attaches CXone tokens to the requests of any tower
//! service.
//!
//! For each request the layer
//! - leaves it alone if it already carries `Authorization`;
//! - refuses it with [`ErrorKind::HostNotAllowed`](crate::ErrorKind::HostNotAllowed),
//!   before anything is sent, unless it goes over https to an allowed host
//!   (CXone's domains, [`allow_host`](CxoneAuthLayer::allow_host), hosts
//!   [tenant routing](crate::routing) discovered) or over plain http to
//!   loopback when [`allow_loopback_http`](CxoneAuthLayer::allow_loopback_http)
//!   is on;
//! - with a [keyed](CxoneAuthLayer::keyed) layer, picks the [`TokenCache`]
//!   of the key in the request's extensions, or refuses the request, before
//!   anything is sent, when it has none;
//! - adds `Accept: application/json` if the request has no `Accept`: CXone's
//!   REST API answers `200` with the text `No known way to render data`
//!   without it (turn it off with [`accept_json`](CxoneAuthLayer::accept_json));
//! - with a cached token, inserts the header and calls the inner service at
//!   once; without one, waits for the [`TokenCache`] before the inner
//!   service's readiness, so a buffered inner service holds no slot meanwhile;
//! - on a 401, or a gRPC `UNAUTHENTICATED`, from the token's audience
//!   (CXone's domains, loopback, the base URL, discovered hosts) invalidates
//!   the token it carried; from a partner host added with
//!   [`allow_host`](CxoneAuthLayer::allow_host), returns it as it is.
//!
//! Stack [`CxoneRetryLayer`](crate::CxoneRetryLayer) outside it for the
//! replay after a 401 and the waits after a 429:
//!
//! ```
//! use std::convert::Infallible;
//! use cxone_auth::{CxoneAuthLayer, ErrorKind, StaticToken, TokenCache};
//! use http::{Request, Response, header::AUTHORIZATION};
//! use tower::{ServiceBuilder, ServiceExt as _};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower::BoxError> {
//! let tokens = TokenCache::new(StaticToken::new("example-token"));
//! let client = ServiceBuilder::new()
//!     .layer(CxoneAuthLayer::new(tokens))
//!     .service_fn(|request: Request<()>| async move {
//!         // Stands for an HTTP client: echoes the header it received.
//!         let header = request.headers()[AUTHORIZATION].to_str().unwrap().to_owned();
//!         Ok::<_, Infallible>(Response::new(header))
//!     });
//!
//! let request = Request::get("https://api-na1.niceincontact.com/inContactAPI/services/v34.0/server-time")
//!     .body(())?;
//! let response = client.clone().oneshot(request).await?;
//! assert_eq!(response.body(), "Bearer example-token");
//!
//! let elsewhere = Request::get("https://example.com/").body(())?;
//! let err = client.oneshot(elsewhere).await.unwrap_err();
//! let err = err.downcast_ref::<cxone_auth::Error>().unwrap();
//! assert_eq!(err.kind(), ErrorKind::HostNotAllowed);
//! # Ok(())
//! # }
//! ```

pub mod future;
pub(crate) mod hosts;

use std::hash::Hash;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll, ready};

use http::header::{ACCEPT, AUTHORIZATION};
use http::{Extensions, HeaderValue};
use tower_layer::Layer;
use tower_service::Service;
use url::Url;

use self::future::ResponseFuture;
use self::hosts::AllowedHosts;
use crate::Error;
use crate::cache::{CacheLookup, KeyedCaches, TokenCache};
use crate::error::BoxError;
use crate::http::{HttpRequest, HttpResponse};

/// Attaches `Authorization: Bearer` from a [`TokenCache`] to the requests of
/// the wrapped service; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct CxoneAuthLayer {
    tokens: Tokens,
    hosts: Arc<Hosts>,
    accept_json: bool,
}

/// Where a layer's tokens come from.
#[derive(Debug, Clone)]
enum Tokens {
    /// One cache for every request.
    One(TokenCache),
    /// The cache of the key each request carries in its extensions.
    Keyed(Arc<dyn CacheLookup>),
    /// The reason a keyed layer found no cache for the request this layer
    /// serves (the reqwest-middleware integration chooses before the layer
    /// runs), given to it when it needs a token.
    #[cfg(feature = "reqwest-middleware")]
    Refused(Error),
}

impl Tokens {
    /// The cache the token of a request with `extensions` comes from.
    #[inline]
    fn cache_for(&self, extensions: Option<&Extensions>) -> Result<TokenCache, Error> {
        match self {
            Tokens::One(cache) => Ok(cache.clone()),
            Tokens::Keyed(caches) => caches.cache_for(extensions),
            #[cfg(feature = "reqwest-middleware")]
            Tokens::Refused(error) => Err(error.clone()),
        }
    }
}

/// A constant, so adding it allocates nothing.
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Where the token may go; shared by every service a layer builds, and by
/// the tenant routing made from it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hosts {
    rules: AllowedHosts,
    /// Where requests that carry only a path go (a tonic `Channel` adds it).
    base_url: Option<Url>,
    /// Origins that tenant discovery named; shared by the layer's clones,
    /// whatever is configured on them later.
    discovered: Arc<RwLock<Vec<Origin>>>,
}

/// Scheme, host (lower-cased) and port.
type Origin = (String, String, Option<u16>);

impl Hosts {
    /// Whether a request may carry the token (an absolute URI to an allowed
    /// origin, or a path-only one when the base URL is allowed) and, if so,
    /// whether it goes to the token's audience: CXone's domains, loopback,
    /// the base URL's origin and discovered origins, not hosts added with
    /// `allow_host`.
    fn check<R: HttpRequest>(&self, request: &R) -> Result<bool, Error> {
        let (scheme, host, to_base_url) = match (request.scheme(), request.host()) {
            (Some(scheme), Some(host)) => (scheme, host, false),
            (None, None) => match &self.base_url {
                Some(base) => (base.scheme(), base.host_str().unwrap_or_default(), true),
                None => {
                    return Err(Error::host_not_allowed(
                        "the request has only a path; set the layer's base URL, or stack tenant routing outside it, to say where such requests go",
                    ));
                }
            },
            _ => {
                return Err(Error::host_not_allowed(
                    "the request's URI has a host but no scheme (authority-form); only absolute and path-only URIs may carry the token",
                ));
            }
        };
        // Read only when the cheaper checks did not decide.
        let port = || match &self.base_url {
            Some(base) if to_base_url => base.port_or_known_default(),
            _ => request.port(),
        };
        if self.rules.allows(scheme, host) {
            return Ok(to_base_url
                || hosts::is_cxone_or_loopback(host)
                || self.is_base_url(scheme, host, port())
                || self.is_discovered(scheme, host, port()));
        }
        if self.is_discovered(scheme, host, port()) {
            return Ok(true);
        }
        tracing::debug!(scheme, host, "refused to send a CXone token to this host");
        Err(Error::host_not_allowed(format!(
            "refused to send the CXone token to {scheme}://{host}"
        )))
    }

    fn is_base_url(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        self.base_url.as_ref().is_some_and(|base| {
            base.scheme().eq_ignore_ascii_case(scheme)
                && base
                    .host_str()
                    .is_some_and(|h| h.eq_ignore_ascii_case(host))
                && base.port_or_known_default() == port
        })
    }

    #[cold]
    fn is_discovered(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let discovered = self
            .discovered
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        discovered.iter().any(|(s, h, p)| {
            s.eq_ignore_ascii_case(scheme) && h.eq_ignore_ascii_case(host) && *p == port
        })
    }

    /// Allows the origin of a tenant's discovered host, if it obeys the
    /// rules configured hosts obey: https (`wss` for the websocket host), or
    /// plain http to loopback when that is on.
    pub(crate) fn discover(&self, url: &Url) -> Result<(), Error> {
        let (scheme, host) = (url.scheme(), url.host_str().unwrap_or_default());
        let scheme_allowed = matches!(scheme, "https" | "wss") || self.rules.allows(scheme, host);
        if !scheme_allowed {
            return Err(Error::discovery(format!(
                "tenant discovery named {scheme}://{host}, which may not receive the token (https only)"
            )));
        }
        let origin = (
            scheme.to_owned(),
            host.to_ascii_lowercase(),
            url.port_or_known_default(),
        );
        let mut discovered = self
            .discovered
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if !discovered.contains(&origin) {
            discovered.push(origin);
        }
        Ok(())
    }
}

impl CxoneAuthLayer {
    /// A layer attaching tokens from `tokens` to https requests for CXone's
    /// domains.
    pub fn new(tokens: TokenCache) -> Self {
        Self {
            tokens: Tokens::One(tokens),
            hosts: Arc::default(),
            accept_json: true,
        }
    }

    /// A layer attaching tokens from the cache of each request's key: the
    /// `K` in the request's `http::Extensions`
    /// (`request.extensions_mut().insert(key)`), as [`KeyedCaches`] says.
    ///
    /// Nothing is sent, and the request fails with a
    /// [`cxone_auth::Error`](crate::Error), when the request carries no `K`
    /// ([`ErrorKind::Config`](crate::ErrorKind::Config)), when the set's
    /// closure refuses its key (the closure's error), or when it is a
    /// `reqwest::Request`, whose extensions reqwest keeps private
    /// ([`ErrorKind::Config`](crate::ErrorKind::Config): send
    /// `http::Request`, or use the reqwest-middleware integration, whose
    /// extensions carry the key). A request that carries its own
    /// `Authorization` needs no key. A 401 invalidates the token of the
    /// cache its request used, and no other.
    ///
    /// [Tenant routing](crate::routing) needs one token to find its tenant:
    /// made from a keyed layer, it refuses path-only requests.
    pub fn keyed<K>(caches: KeyedCaches<K>) -> Self
    where
        K: Clone + Eq + Hash + Send + Sync + 'static,
    {
        Self {
            tokens: Tokens::Keyed(caches.into_lookup()),
            hosts: Arc::default(),
            accept_json: true,
        }
    }

    /// Whether a request that carries the token and has no `Accept` header
    /// gets `Accept: application/json`; a request's own `Accept` is never
    /// changed. Defaults to on: without it CXone's REST API answers `200`
    /// with the text `No known way to render data`, and a bare hyper
    /// request sends no `Accept`.
    pub fn accept_json(mut self, accept_json: bool) -> Self {
        self.accept_json = accept_json;
        self
    }

    /// Allows a partner host over https: `api.example.com`, or
    /// `*.example.com` for a domain and its subdomains.
    ///
    /// A partner receives the token but is not its audience: a 401 from it
    /// is returned as it is, the token is not invalidated and the retry
    /// layer does not replay the request, so a partner refusing the token
    /// never costs CXone traffic its token. A host that fronts CXone (a
    /// gateway passing the token on) is the audience: name it in
    /// [`base_url`](Self::base_url) as well, and its 401s invalidate the
    /// token as CXone's do.
    pub fn allow_host(mut self, pattern: &str) -> Self {
        let hosts = Arc::make_mut(&mut self.hosts);
        hosts.rules = std::mem::take(&mut hosts.rules).allow_host(pattern);
        self
    }

    /// Allows loopback hosts over plain http, for tests and local mocks.
    ///
    /// Defaults to off: a token sent in clear is a password sent in clear.
    pub fn allow_loopback_http(mut self, allow: bool) -> Self {
        let hosts = Arc::make_mut(&mut self.hosts);
        hosts.rules = std::mem::take(&mut hosts.rules).allow_loopback_http(allow);
        self
    }

    /// Declares where requests that carry only a path go (a tonic `Channel`
    /// adds its origin itself); they get the token when this base is an
    /// allowed host. Defaults to none: path-only requests are refused.
    ///
    /// Its origin (scheme, host, port) is the token's audience, as CXone's
    /// domains are: a 401 from it, to a path-only or an absolute request,
    /// invalidates the token (see [`allow_host`](Self::allow_host)).
    pub fn base_url(mut self, base: Url) -> Self {
        Arc::make_mut(&mut self.hosts).base_url = Some(base);
        self
    }

    /// The token cache this layer draws from; `None` for a
    /// [keyed](Self::keyed) layer, which draws from the cache of each
    /// request's key.
    pub fn tokens(&self) -> Option<&TokenCache> {
        match &self.tokens {
            Tokens::One(cache) => Some(cache),
            Tokens::Keyed(_) => None,
            #[cfg(feature = "reqwest-middleware")]
            Tokens::Refused(_) => None,
        }
    }

    /// This layer for one request whose extensions travel apart from it
    /// (reqwest-middleware's): drawing from the cache their key chooses,
    /// or refusing, when it needs a token, as the keyed layer would.
    #[cfg(feature = "reqwest-middleware")]
    pub(crate) fn for_extensions(&self, extensions: &Extensions) -> Self {
        let Tokens::Keyed(caches) = &self.tokens else {
            return self.clone();
        };
        let tokens = match caches.cache_for(Some(extensions)) {
            Ok(cache) => Tokens::One(cache),
            Err(error) => Tokens::Refused(error),
        };
        Self {
            tokens,
            hosts: Arc::clone(&self.hosts),
            accept_json: self.accept_json,
        }
    }

    pub(crate) fn hosts(&self) -> &Arc<Hosts> {
        &self.hosts
    }
}

impl<S> Layer<S> for CxoneAuthLayer {
    type Service = CxoneAuth<S>;

    fn layer(&self, inner: S) -> CxoneAuth<S> {
        CxoneAuth {
            inner,
            layer: self.clone(),
            inner_ready: false,
        }
    }
}

/// The service [`CxoneAuthLayer`] builds; see the [module docs](self).
///
/// Its error type is [`BoxError`](tower::BoxError): the inner service's
/// errors as they are, or a [`cxone_auth::Error`](crate::Error) when the
/// token could not be obtained or the host is not allowed.
#[derive(Debug)]
pub struct CxoneAuth<S> {
    inner: S,
    layer: CxoneAuthLayer,
    /// Whether `inner` has been driven to readiness for the next call.
    inner_ready: bool,
}

impl<S> CxoneAuth<S> {
    /// Wraps `inner`; see [`CxoneAuthLayer`] for the options.
    pub fn new(inner: S, tokens: TokenCache) -> Self {
        CxoneAuthLayer::new(tokens).layer(inner)
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
        self.layer.layer(self.inner.clone())
    }
}

impl<S, R> Service<R> for CxoneAuth<S>
where
    S: Service<R> + Clone,
    S::Response: HttpResponse,
    S::Error: Into<BoxError>,
    R: HttpRequest,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, S, R>;

    /// Drives the inner service to readiness. A call that then finds no
    /// token releases that readiness (it keeps a fresh clone of the inner
    /// service) while the token loads, so no slot is held meanwhile.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.inner_ready {
            ready!(self.inner.poll_ready(cx)).map_err(Into::into)?;
            self.inner_ready = true;
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: R) -> Self::Future {
        let ready = std::mem::take(&mut self.inner_ready);
        // The caller's own `Authorization` is sent as it is, wherever it goes.
        if request.headers().contains_key(AUTHORIZATION) {
            return ResponseFuture::forward(&mut self.inner, ready, request, None);
        }
        let audience = match self.layer.hosts.check(&request) {
            Ok(audience) => audience,
            Err(refused) => {
                self.inner_ready = ready;
                return ResponseFuture::refused(refused);
            }
        };
        let tokens = match self.layer.tokens.cache_for(request.extensions()) {
            Ok(tokens) => tokens,
            Err(refused) => {
                self.inner_ready = ready;
                return ResponseFuture::refused(refused);
            }
        };
        if self.layer.accept_json && !request.headers().contains_key(ACCEPT) {
            request.headers_mut().insert(ACCEPT, APPLICATION_JSON);
        }
        // The token is read here, not at `poll_ready`: a call can come long
        // after its readiness, by when that token may have been replaced.
        let Some((header, id)) = tokens.cached_header() else {
            if ready {
                // Release the capacity `poll_ready` reserved while the token loads.
                self.inner = self.inner.clone();
            }
            return ResponseFuture::loading(self.inner.clone(), request, tokens, audience);
        };
        request.headers_mut().insert(AUTHORIZATION, header);
        let sent = (id, tokens, audience);
        ResponseFuture::forward(&mut self.inner, ready, request, Some(sent))
    }
}
