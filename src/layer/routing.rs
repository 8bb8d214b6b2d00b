//! Tenant routing: requests that carry only a path go to the API host of the
//! token's tenant.
//!
//! CXone serves each tenant from one API host (`api-na1.niceincontact.com`,
//! `api-eu1...`), named by tenant discovery: the token's `tenantId` claim,
//! then `GET <issuer>/.well-known/cxone-configuration?tenantId=..`, whose
//! `api_endpoint` is the base URL of every API call. With
//! [`CxoneAuthLayer::tenant_routing`](super::CxoneAuthLayer::tenant_routing),
//! the layer does this once per tenant and rewrites each path-only request
//! (`/inContactAPI/services/v34.0/agents`) to an absolute one on that host.
//! The discovered host joins the hosts allowed to receive the token, so
//! absolute URLs built from it work too.
//!
//! ```
//! use std::convert::Infallible;
//! use cxone_auth::mock::MockCxone;
//! use cxone_auth::token::{AccessKeyGrant, ServiceTransport, TenantDiscovery};
//! use cxone_auth::{CxoneAuthLayer, TokenCache};
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
//! let client = ServiceBuilder::new()
//!     .layer(CxoneAuthLayer::new(TokenCache::new(source)).tenant_routing(discovery))
//!     .service_fn(|request: Request<()>| async move {
//!         // Stands for an HTTP client: answers with the URI it was sent to.
//!         Ok::<_, Infallible>(Response::new(request.uri().to_string()))
//!     });
//!
//! let request = Request::get("/inContactAPI/services/v34.0/agents?top=10").body(())?;
//! let response = client.oneshot(request).await?;
//! assert_eq!(
//!     response.body(),
//!     "https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents?top=10"
//! );
//! # Ok(())
//! # }
//! ```
//!
//! # Failures
//!
//! Nothing is sent when the tenant cannot be found: a token without a
//! `tenantId` claim, an unknown tenant, or an `api_endpoint` that is not a
//! plain `https` base URL (not a URL, another scheme, credentials, a query or
//! a fragment) fail the request with
//! [`ErrorKind::Discovery`](crate::ErrorKind::Discovery); a discovery that
//! timed out or met a 5xx fails it with its transient kind. A failure is
//! remembered for [`DEFAULT_DISCOVERY_BACKOFF`] (or the `Retry-After` the
//! issuer sent, if longer) and handed to every routed request meanwhile, so a
//! broken issuer is asked once per interval, not once per request.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::Uri;
use http::uri::{Authority, PathAndQuery, Scheme};
use tokio::time::Instant;

use super::request::AuthRequest;
use crate::cache::{TokenId, TokenReader};
use crate::token::{TenantConfig, TenantDiscovery};
use crate::{Error, TokenCache};

/// How long a failed tenant discovery is handed to routed requests before the
/// next one is tried.
///
/// Long enough that a burst of requests against a broken or unreachable
/// issuer costs it one request, short enough that a transient failure clears
/// within seconds. A longer `Retry-After` from the issuer wins.
pub const DEFAULT_DISCOVERY_BACKOFF: Duration = Duration::from_secs(5);

/// The longest `Retry-After` from the issuer that is honoured; past it the
/// next discovery is tried anyway.
const MAX_DISCOVERY_BACKOFF: Duration = Duration::from_secs(60);

/// Where path-only requests of one layer go, per tenant; shared by every
/// service the layer builds.
pub(crate) struct TenantRouter {
    discovery: TenantDiscovery,
    backoff: Duration,
    /// The route of the token seen last: routed requests on a cached token
    /// read it with one atomic load.
    latest: ArcSwapOption<Latest>,
    tenants: Mutex<HashMap<String, Arc<TenantSlot>>>,
    /// The origins discovery named, allowed to receive the token.
    discovered: RwLock<Vec<(Scheme, String)>>,
}

struct Latest {
    id: TokenId,
    route: Arc<Route>,
}

/// One tenant's route, discovered at most once at a time.
#[derive(Default)]
struct TenantSlot {
    route: OnceLock<Arc<Route>>,
    /// Held by the one discovery in flight; keeps the last failure and until
    /// when it stands.
    flight: tokio::sync::Mutex<Option<(Error, Instant)>>,
}

impl TenantRouter {
    pub(crate) fn new(discovery: TenantDiscovery, backoff: Duration) -> Self {
        Self {
            discovery,
            backoff,
            latest: ArcSwapOption::empty(),
            tenants: Mutex::new(HashMap::new()),
            discovered: RwLock::new(Vec::new()),
        }
    }

    /// Whether discovery named this scheme and host as a tenant's API host.
    pub(crate) fn allows(&self, scheme: &str, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        self.discovered
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|(s, h)| s.as_str().eq_ignore_ascii_case(scheme) && h.eq_ignore_ascii_case(host))
    }

    /// The route for the token `id`, if it is known without waiting.
    pub(crate) fn cached_route(&self, id: TokenId, tokens: &mut TokenReader) -> Option<Arc<Route>> {
        if let Some(latest) = &*self.latest.load()
            && latest.id == id
        {
            return Some(Arc::clone(&latest.route));
        }
        // The token read here may be newer than `id`; every token of one
        // cache is for one credential, so for one tenant.
        let token = tokens.cached()?;
        let tenant_id = token.claims()?.tenant_id()?;
        let route = Arc::clone(self.slot(tenant_id).route.get()?);
        self.remember(id, &route);
        Some(route)
    }

    /// The route for the token `id`, discovering its tenant if needed.
    pub(crate) async fn route(
        &self,
        id: TokenId,
        tokens: &TokenCache,
    ) -> Result<Arc<Route>, Error> {
        let token = tokens.token().await?;
        let Some(tenant_id) = token.claims().and_then(|claims| claims.tenant_id()) else {
            return Err(Error::discovery(
                "the access token has no `tenantId` claim, so its tenant's API host cannot be found; \
                 tenant routing needs a CXone token (or send absolute URLs)",
            ));
        };
        let slot = self.slot(tenant_id);
        let route = match slot.route.get() {
            Some(route) => Arc::clone(route),
            None => self.discover(&slot, tenant_id).await?,
        };
        self.remember(id, &route);
        Ok(route)
    }

    fn remember(&self, id: TokenId, route: &Arc<Route>) {
        self.latest.store(Some(Arc::new(Latest {
            id,
            route: Arc::clone(route),
        })));
    }

    fn slot(&self, tenant_id: &str) -> Arc<TenantSlot> {
        let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = tenants.get(tenant_id) {
            return Arc::clone(slot);
        }
        let slot = Arc::new(TenantSlot::default());
        tenants.insert(tenant_id.to_owned(), Arc::clone(&slot));
        slot
    }

    /// One discovery at a time per tenant; callers that waited for it take
    /// its route, or its failure while that stands.
    async fn discover(&self, slot: &TenantSlot, tenant_id: &str) -> Result<Arc<Route>, Error> {
        let mut failure = slot.flight.lock().await;
        if let Some(route) = slot.route.get() {
            return Ok(Arc::clone(route));
        }
        if let Some((error, until)) = &*failure
            && Instant::now() < *until
        {
            return Err(error.clone());
        }
        let result = match self.discovery.tenant(tenant_id).await {
            Ok(config) => Route::from_config(&config),
            Err(error) => Err(error),
        };
        match result {
            Ok(route) => {
                let route = Arc::clone(slot.route.get_or_init(|| Arc::new(route)));
                self.discovered
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((route.scheme.clone(), route.host.clone()));
                *failure = None;
                tracing::debug!(host = %route.host, "tenant discovered: routing path-only requests to its API host");
                Ok(route)
            }
            Err(error) => {
                let wait = error.retry_after().map_or(self.backoff, |asked| {
                    asked.min(MAX_DISCOVERY_BACKOFF).max(self.backoff)
                });
                tracing::debug!(kind = ?error.kind(), "tenant discovery failed; routed requests fail until the backoff ends");
                *failure = Some((error.clone(), Instant::now() + wait));
                Err(error)
            }
        }
    }
}

impl fmt::Debug for TenantRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let discovered = self
            .discovered
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(scheme, host)| format!("{scheme}://{host}"))
            .collect::<Vec<_>>();
        f.debug_struct("TenantRouter")
            .field("discovery", &self.discovery)
            .field("backoff", &self.backoff)
            .field("discovered", &discovered)
            .finish_non_exhaustive()
    }
}

/// A tenant's API base: where a path-only request is sent.
#[derive(Debug)]
pub(crate) struct Route {
    scheme: Scheme,
    authority: Authority,
    /// The host alone, for the allow-list.
    host: String,
    /// The base URL's path without its trailing `/`; usually empty.
    prefix: String,
}

impl Route {
    /// Checks that `api_endpoint` is a base URL a request can be sent to.
    fn from_config(config: &TenantConfig) -> Result<Self, Error> {
        let url = config.api_endpoint();
        let malformed = |why: &str| {
            Error::discovery(format!(
                "the tenant's `api_endpoint` {why}; no request was sent"
            ))
        };
        if url.query().is_some() || url.fragment().is_some() {
            return Err(malformed(
                "has a query or a fragment, so it is not a base URL",
            ));
        }
        let scheme = match url.scheme() {
            "https" => Scheme::HTTPS,
            "http" => Scheme::HTTP,
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
        let prefix = url.path().trim_end_matches('/').to_owned();
        PathAndQuery::try_from(format!("{prefix}/"))
            .map_err(|err| malformed("has a path that is not valid in a URI").with_source(err))?;
        Ok(Self {
            scheme,
            authority,
            host: host.to_ascii_lowercase(),
            prefix,
        })
    }

    /// Points the path-only `request` at this base.
    pub(crate) fn apply<R: AuthRequest>(&self, request: &mut R) -> Result<(), Error> {
        let Some(uri) = request.uri_mut() else {
            return Err(Error::config(
                "tenant routing rewrites `http::Request` URIs only; send this request type with an absolute URL",
            ));
        };
        let path_and_query = match (uri.path_and_query(), self.prefix.is_empty()) {
            (Some(path), true) => path.clone(),
            (None, true) => PathAndQuery::from_static("/"),
            (path, false) => {
                let path = path.map_or("/", PathAndQuery::as_str);
                PathAndQuery::try_from(format!("{}{path}", self.prefix)).map_err(|err| {
                    Error::config("the routed request's path is not valid in a URI")
                        .with_source(err)
                })?
            }
        };
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(path_and_query);
        *uri = Uri::from_parts(parts).map_err(|err| {
            Error::config("the routed request's URI could not be built").with_source(err)
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn config(api_endpoint: &str) -> Result<TenantConfig, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "api_endpoint": api_endpoint }))
    }

    fn route(api_endpoint: &str) -> Result<Route, Error> {
        Route::from_config(&config(api_endpoint).unwrap())
    }

    fn routed(api_endpoint: &str, path: &str) -> String {
        let mut request = http::Request::get(path).body(()).unwrap();
        route(api_endpoint).unwrap().apply(&mut request).unwrap();
        request.uri().to_string()
    }

    #[test]
    fn paths_and_queries_are_kept_under_the_base() {
        assert_eq!(
            routed(
                "https://api-na1.niceincontact.com",
                "/inContactAPI/services/v34.0/agents?top=5"
            ),
            "https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents?top=5"
        );
        assert_eq!(
            routed("https://api.example.com:8443/base/", "/x?y=1"),
            "https://api.example.com:8443/base/x?y=1"
        );
        assert_eq!(
            routed("http://127.0.0.1:4000", "/a"),
            "http://127.0.0.1:4000/a"
        );
        assert_eq!(routed("http://[::1]:4000", "/a"), "http://[::1]:4000/a");
    }

    #[test]
    fn malformed_api_endpoints_are_discovery_errors() {
        // Refused by the tenant configuration itself (a `Discovery` error
        // when read through `TenantDiscovery`).
        for bad in [
            "not a url",
            "ftp://api.example.com",
            "http://api.example.com",
            "https://user:pw@api.example.com",
            "mailto:x@example.com",
        ] {
            assert!(config(bad).is_err(), "{bad}");
        }
        // Valid URLs, but not base URLs.
        for bad in [
            "https://api.example.com/?tenant=x",
            "https://api.example.com/#x",
        ] {
            let err = route(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Discovery, "{bad}");
            assert!(err.to_string().contains("no request was sent"), "{err}");
        }
    }

    #[test]
    fn other_request_types_are_refused() {
        struct Opaque(http::HeaderMap);
        impl AuthRequest for Opaque {
            fn scheme(&self) -> Option<&str> {
                None
            }
            fn authority(&self) -> Option<&str> {
                None
            }
            fn headers(&self) -> &http::HeaderMap {
                &self.0
            }
            fn headers_mut(&mut self) -> &mut http::HeaderMap {
                &mut self.0
            }
        }
        let err = route("https://api.example.com")
            .unwrap()
            .apply(&mut Opaque(http::HeaderMap::new()))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    }
}
