//! Tenant routing: requests that carry only a path go to the API host of the
//! token's tenant.
//!
//! [`TenantRoutingLayer`], stacked outside the [`CxoneAuthLayer`] it was made
//! from, runs [`TenantDiscovery`] once per tenant and rewrites each path-only
//! request (`/inContactAPI/services/v34.0/agents`) to an absolute one on the
//! tenant's `api_endpoint`. Requests with an absolute URL pass through
//! untouched.
//!
//! A tenant has more hosts than the API facade; NICE's agent SDK derives them
//! from the same document ([`HostFamily`]): the area host
//! `https://{area}.{uhDomain}` (UserHub, regional auth, data extraction),
//! Digital `https://api-de-{area}.{domain}` and the websocket host
//! `wss://websocket-{area}.{domain}`. Every one of their origins joins the
//! auth layer's allowed hosts under the rules configured ones follow (`wss`
//! counting as https), so absolute URLs to them carry the token.
//! [`route_prefix`](TenantRoutingLayer::route_prefix) sends path-only
//! requests under a prefix to another family than the facade:
//! `.route_prefix("/dfo/", HostFamily::Digital)`.
//!
//! ```
//! use std::convert::Infallible;
//! use cxone_auth::mock::MockCxone;
//! use cxone_auth::{AccessKeyGrant, CxoneAuthLayer, HostFamily, ServiceTransport, TenantDiscovery, TenantRoutingLayer, TokenCache};
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt as _};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower::BoxError> {
//! // In memory: the mock CXone answers token and discovery requests.
//! let cxone = MockCxone::builder().api_endpoint("https://api-na1.niceincontact.com").build();
//! let source = AccessKeyGrant::new(
//!     cxone_auth::mock::CLIENT_ID, cxone_auth::mock::CLIENT_SECRET,
//!     cxone_auth::mock::ACCESS_KEY_ID, cxone_auth::mock::ACCESS_KEY_SECRET,
//! )?
//! .token_url(cxone.token_url())?
//! .transport(ServiceTransport::new(cxone.router()));
//! let discovery = TenantDiscovery::from_url(cxone.base_url())?
//!     .transport(ServiceTransport::new(cxone.router()));
//!
//! let auth = CxoneAuthLayer::new(TokenCache::new(source));
//! let client = ServiceBuilder::new()
//!     .layer(TenantRoutingLayer::new(&auth, discovery).route_prefix("/dfo/", HostFamily::Digital))
//!     .layer(auth)
//!     .service_fn(|request: Request<()>| async move {
//!         // Stands for an HTTP client: answers with the URI it was sent to.
//!         Ok::<_, Infallible>(Response::new(request.uri().to_string()))
//!     });
//!
//! let request = Request::get("/inContactAPI/services/v34.0/agents?top=10").body(())?;
//! let response = client.clone().oneshot(request).await?;
//! assert_eq!(
//!     response.body(),
//!     "https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents?top=10"
//! );
//! let digital = client.oneshot(Request::get("/dfo/3.0/contacts").body(())?).await?;
//! assert_eq!(digital.body(), "https://api-de-na1.niceincontact.com/dfo/3.0/contacts");
//! # Ok(())
//! # }
//! ```
//!
//! # Failures
//!
//! Nothing is sent when the tenant cannot be found: a token without a
//! `tenantId` claim, an unknown tenant, an `api_endpoint` that is not a
//! plain base URL the token may go to, or an `area` or domain that makes no
//! host name fail the request with
//! [`ErrorKind::Discovery`](crate::ErrorKind::Discovery) (a timeout or a 5xx
//! with its transient kind). A failure is handed to every routed request for
//! 5 s, doubling with each failure in a row up to a minute (at least the
//! `Retry-After` sent), so a broken issuer is asked once per interval.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures_util::future::BoxFuture;
use http::uri::{Authority, Scheme};
use pin_project_lite::pin_project;
use tower::ServiceExt as _;
use tower_layer::Layer;
use tower_service::Service;
use url::Url;

use crate::backoff::Backoff;
use crate::cache::TokenCache;
use crate::error::BoxError;
use crate::flight::{self, Flight, Next};
use crate::http::HttpRequest;
use crate::layer::{CxoneAuthLayer, Hosts};
use crate::token::{TenantConfig, TenantDiscovery};
use crate::{AccessToken, Error};

/// The first wait after a failed discovery, and the longest: see the
/// module's "Failures".
const DISCOVERY_BACKOFF: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(60));

/// Routes path-only requests to the token's tenant; see the
/// [module docs](self).
#[derive(Clone, Debug)]
pub struct TenantRoutingLayer {
    router: Arc<Router>,
    prefixes: Prefixes,
}

/// Path prefixes sent to another host family than the API facade, in the
/// order they were added.
type Prefixes = Arc<Vec<(String, HostFamily)>>;

/// One of a tenant's hosts, as its configuration names or derives it; see
/// [`TenantRoutingLayer::route_prefix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HostFamily {
    /// The REST API facade, `api_endpoint` (`/inContactAPI/...`): where
    /// path-only requests go unless a prefix says otherwise.
    Api,
    /// The area host, `https://{area}.{uhDomain}`: UserHub, regional
    /// authentication, data extraction.
    Area,
    /// Digital Engagement, `https://api-de-{area}.{domain}` (`/dfo/3.0/...`).
    Digital,
    /// The websocket host, `wss://websocket-{area}.{domain}`.
    Websocket,
}

/// The discovery state of one layer, shared by every service it builds.
#[derive(Debug)]
struct Router {
    /// `None` when made from a keyed auth layer: routing needs one token's
    /// tenant, and refuses path-only requests.
    tokens: Option<TokenCache>,
    discovery: TenantDiscovery,
    hosts: Arc<Hosts>,
    /// The route of the tenant discovered last. One cache is one
    /// credential, so almost always one tenant.
    route: ArcSwapOption<Route>,
    flight: Arc<Flight<Arc<Route>>>,
}

impl TenantRoutingLayer {
    /// Routing for the requests `auth` authorizes: its token's tenant is
    /// found through `discovery`, and the discovered host joins `auth`'s
    /// allowed hosts. Stack it outside `auth`.
    ///
    /// Made from a [keyed](CxoneAuthLayer::keyed) layer, which has no one
    /// tenant, it sends absolute requests on untouched and fails path-only
    /// ones with [`ErrorKind::Config`](crate::ErrorKind::Config), before
    /// anything is sent.
    pub fn new(auth: &CxoneAuthLayer, discovery: TenantDiscovery) -> Self {
        let (base, max) = DISCOVERY_BACKOFF;
        Self {
            router: Arc::new(Router {
                tokens: auth.tokens().cloned(),
                discovery,
                hosts: Arc::clone(auth.hosts()),
                route: ArcSwapOption::empty(),
                flight: Flight::new(Backoff::new(base, max, 0.0)),
            }),
            prefixes: Prefixes::default(),
        }
    }

    /// Sends path-only requests whose path starts with `prefix` (compared
    /// exactly, the first added that matches wins) to the tenant's `family`
    /// host instead of the API facade: `.route_prefix("/dfo/",
    /// HostFamily::Digital)`. The path is kept whole. A request for a
    /// family the tenant's configuration does not name (no `area`, say)
    /// fails with [`ErrorKind::Discovery`](crate::ErrorKind::Discovery).
    pub fn route_prefix(mut self, prefix: impl Into<String>, family: HostFamily) -> Self {
        Arc::make_mut(&mut self.prefixes).push((prefix.into(), family));
        self
    }
}

impl<S> Layer<S> for TenantRoutingLayer {
    type Service = TenantRouting<S>;

    fn layer(&self, inner: S) -> TenantRouting<S> {
        TenantRouting {
            inner,
            router: Arc::clone(&self.router),
            prefixes: Arc::clone(&self.prefixes),
        }
    }
}

/// The service [`TenantRoutingLayer`] builds.
#[derive(Clone, Debug)]
pub struct TenantRouting<S> {
    inner: S,
    router: Arc<Router>,
    prefixes: Prefixes,
}

impl<S> TenantRouting<S> {
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

impl Router {
    /// The route of `token`'s tenant, if it is known without waiting.
    fn cached(&self, token: &AccessToken) -> Option<Arc<Route>> {
        let tenant_id = token.tenant_id()?;
        self.route
            .load_full()
            .filter(|route| route.tenant_id == tenant_id)
    }

    /// The route of the current token's tenant, discovering it if needed.
    async fn route(self: Arc<Self>) -> Result<Arc<Route>, Error> {
        let Some(tokens) = &self.tokens else {
            return Err(Error::config(
                "tenant routing was made from a keyed auth layer, whose requests have no one tenant to find; \
                 send absolute URLs (each tenant's API host), or route with a layer per tenant",
            ));
        };
        let token = tokens.token().await?;
        let Some(tenant_id) = token.tenant_id() else {
            return Err(Error::discovery(
                "the access token has no `tenantId` claim, so its tenant's API host cannot be found; \
                 tenant routing needs a CXone token (or send absolute URLs)",
            ));
        };
        let tenant_id = tenant_id.to_owned();
        let discover = {
            let router = Arc::clone(&self);
            let tenant_id = tenant_id.clone();
            move || async move {
                let config = router.discovery.tenant(&tenant_id).await;
                match config.and_then(|config| Route::new(&config, tenant_id, &router.hosts)) {
                    Ok(route) => {
                        tracing::debug!(host = %route.bases[0].1.authority, "tenant discovered: routing path-only requests to its API host");
                        let route = Arc::new(route);
                        router.route.store(Some(Arc::clone(&route)));
                        Ok(route)
                    }
                    Err(error) => {
                        tracing::debug!(kind = ?error.kind(), "tenant discovery failed; routed requests fail until the backoff ends");
                        Err(error)
                    }
                }
            }
        };
        let current = || self.cached(&token);
        match self.flight.join(current, discover)? {
            Next::Ready(route) => Ok(route),
            Next::Wait(receiver) => flight::wait(receiver).await,
        }
    }
}

impl<S, R> Service<R> for TenantRouting<S>
where
    S: Service<R> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    R: HttpRequest + Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: R) -> Self::Future {
        let path_only = request.scheme().is_none() && request.host().is_none();
        let cached = || self.router.cached(&*self.router.tokens.as_ref()?.cached()?);
        let route = if path_only { cached() } else { None };
        let path = if path_only { request.path() } else { "" };
        let family = (self.prefixes.iter())
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map_or(HostFamily::Api, |(_, family)| *family);
        if !path_only || route.is_some() {
            if let Some(route) = route
                && let Err(error) = route.apply(&mut request, family)
            {
                return ResponseFuture::routing(Box::pin(async move { Err(error.into()) }));
            }
            return ResponseFuture::called(self.inner.call(request));
        }
        // Release whatever `poll_ready` reserved while the route loads.
        self.inner = self.inner.clone();
        let mut inner = self.inner.clone();
        let router = Arc::clone(&self.router);
        ResponseFuture::routing(Box::pin(async move {
            let route = router.route().await?;
            route.apply(&mut request, family)?;
            inner.ready().await.map_err(Into::into)?;
            inner.call(request).await.map_err(Into::into)
        }))
    }
}

pin_project! {
    /// The response future of [`TenantRouting`].
    pub struct ResponseFuture<F, T> {
        #[pin]
        state: State<F, T>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, T> {
        /// Sent as it was, or routed at once to a known tenant.
        Called {
            #[pin]
            future: F,
        },
        /// Waiting for the tenant's discovery, then sent. Boxed: it is off
        /// the path of every request after the first.
        Routing {
            future: BoxFuture<'static, Result<T, BoxError>>,
        },
    }
}

impl<F, T> ResponseFuture<F, T> {
    fn called(future: F) -> Self {
        let state = State::Called { future };
        Self { state }
    }

    fn routing(future: BoxFuture<'static, Result<T, BoxError>>) -> Self {
        let state = State::Routing { future };
        Self { state }
    }
}

impl<F, T, E> Future for ResponseFuture<F, T>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called { future } => future.poll(cx).map_err(Into::into),
            StateProj::Routing { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, T> fmt::Debug for ResponseFuture<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Called { .. } => "Called",
            State::Routing { .. } => "Routing",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

/// A tenant's hosts: where its path-only requests are sent.
#[derive(Debug)]
struct Route {
    tenant_id: String,
    /// The API facade first, then the hosts derived from the configuration.
    bases: Vec<(HostFamily, Base)>,
}

/// One host's base URL, split for a request's URI.
#[derive(Debug)]
struct Base {
    scheme: Scheme,
    authority: Authority,
    /// The base URL's path without its trailing `/`; usually empty.
    prefix: String,
}

impl Route {
    /// Checks the tenant's hosts and allows their origins in `hosts`; a
    /// malformed one allows none.
    fn new(config: &TenantConfig, tenant_id: String, hosts: &Hosts) -> Result<Self, Error> {
        let derived = derived_hosts(config)?;
        let mut bases = Vec::with_capacity(1 + derived.len());
        let api = Base::new(config.api_endpoint(), "`api_endpoint`", hosts)?;
        bases.push((HostFamily::Api, api));
        for (family, url) in &derived {
            bases.push((*family, Base::new(url, "derived host", hosts)?));
        }
        Ok(Self { tenant_id, bases })
    }

    /// Points the path-only `request` at the tenant's `family` host.
    fn apply<R: HttpRequest>(&self, request: &mut R, family: HostFamily) -> Result<(), Error> {
        let Some((_, base)) = self.bases.iter().find(|(f, _)| *f == family) else {
            return Err(Error::discovery(format!(
                "the tenant's configuration names no {family:?} host (it needs `area` and a domain); no request was sent"
            )));
        };
        request.set_origin(base.scheme.clone(), base.authority.clone(), &base.prefix)
    }
}

/// The hosts NICE's agent SDK derives from `area`, `uhDomain` and `domain`,
/// for the fields the configuration has.
fn derived_hosts(config: &TenantConfig) -> Result<Vec<(HostFamily, Url)>, Error> {
    let Some(area) = config.area() else {
        return Ok(Vec::new());
    };
    let families = [
        (HostFamily::Area, "https://", config.uh_domain()),
        (HostFamily::Digital, "https://api-de-", config.domain()),
        (HostFamily::Websocket, "wss://websocket-", config.domain()),
    ];
    let mut derived = Vec::with_capacity(families.len());
    for (family, start, domain) in families {
        let Some(domain) = domain else { continue };
        // Checked before parsing: `Url` would read `na1/x` or `a@b` as
        // another host, or a path.
        if area.contains('.') || !is_dns_name(area) || !is_dns_name(domain) {
            return Err(Error::discovery(format!(
                "the tenant's `area` {area:?} or domain {domain:?} is not a DNS name, so its {family:?} host cannot be derived; no request was sent"
            )));
        }
        let url = Url::parse(&format!("{start}{area}.{domain}")).map_err(|err| {
            Error::discovery(format!("the tenant's {family:?} host is not a URL")).with_source(err)
        })?;
        derived.push((family, url));
    }
    Ok(derived)
}

/// Letters, digits and inner hyphens, in dot-separated labels of at most
/// 63 characters.
fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl Base {
    /// Checks that `url` is a base URL the token may be sent to, and allows
    /// its origin in `hosts`.
    fn new(url: &Url, what: &str, hosts: &Hosts) -> Result<Self, Error> {
        let malformed =
            |why: &str| Error::discovery(format!("the tenant's {what} {why}; no request was sent"));
        if url.query().is_some() || url.fragment().is_some() {
            return Err(malformed(
                "has a query or a fragment, so it is not a base URL",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(malformed("carries credentials"));
        }
        let scheme = match url.scheme() {
            "https" => Scheme::HTTPS,
            "http" => Scheme::HTTP,
            "wss" => Scheme::try_from("wss")
                .map_err(|err| malformed("has an invalid scheme").with_source(err))?,
            _ => return Err(malformed("is not an http(s) URL")),
        };
        let Some(host) = url.host_str().filter(|host| !host.is_empty()) else {
            return Err(malformed("has no host"));
        };
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let authority = Authority::try_from(authority)
            .map_err(|err| malformed("has a host that is not valid in a URI").with_source(err))?;
        hosts.discover(url)?;
        Ok(Self {
            scheme,
            authority,
            prefix: url.path().trim_end_matches('/').to_owned(),
        })
    }
}
