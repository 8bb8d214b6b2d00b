//! Tenant discovery: which API host serves the tenant of a token.
//!
//! A CXone access token names its tenant in the `tenantId` claim. The issuer
//! answers `GET /.well-known/cxone-configuration?tenantId=<id>` (no
//! authentication) with the tenant's area, cluster and `api_endpoint`, the
//! base URL of every API call, which must follow the URL rule of
//! [`TokenEndpoint`] since it will receive the token.

use std::fmt;
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tracing::Instrument as _;
use tracing::field::Empty;
use url::Url;

use crate::token::endpoint::{check_url_rule, checked_url, join_path};
use crate::token::transport::HttpClient;
use crate::token::{Environment, HttpTransport, TokenEndpoint};
use crate::{AccessToken, Error};

/// Where the tenant configuration lives, under the issuer.
const CXONE_CONFIGURATION_PATH: &str = "/.well-known/cxone-configuration";

/// The longest tenant id sent. CXone's are UUIDs (36 characters).
const MAX_TENANT_ID_CHARS: usize = 128;

/// What `/.well-known/cxone-configuration` says about a tenant, serialized
/// with the document's own field names; unknown fields are ignored, and
/// every field but `api_endpoint` is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantConfig {
    #[serde(deserialize_with = "checked_api_endpoint", serialize_with = "url_str")]
    api_endpoint: Url,
    #[serde(default, deserialize_with = "lenient_url", serialize_with = "url_opt")]
    ui_endpoint: Option<Url>,
    #[serde(default, deserialize_with = "lenient_url", serialize_with = "url_opt")]
    auth_endpoint: Option<Url>,
    #[serde(rename = "tenantId")]
    tenant_id: Option<String>,
    area: Option<String>,
    cluster: Option<String>,
    region: Option<String>,
    domain: Option<String>,
    #[serde(rename = "acdDomain")]
    acd_domain: Option<String>,
    #[serde(rename = "uhDomain")]
    uh_domain: Option<String>,
    #[serde(rename = "globaldomain")]
    global_domain: Option<String>,
    #[serde(default)]
    private: bool,
}

impl TenantConfig {
    /// The base URL of the tenant's API calls, e.g.
    /// `https://api-na1.niceincontact.com`.
    pub fn api_endpoint(&self) -> &Url {
        &self.api_endpoint
    }

    /// The tenant's web UI, when given (and a valid URL).
    pub fn ui_endpoint(&self) -> Option<&Url> {
        self.ui_endpoint.as_ref()
    }

    /// The tenant's authentication host, when given (and a valid URL).
    pub fn auth_endpoint(&self) -> Option<&Url> {
        self.auth_endpoint.as_ref()
    }

    /// The tenant id, as the document states it.
    pub fn tenant_id(&self) -> Option<&str> {
        self.tenant_id.as_deref()
    }

    /// The area (`na1`, `au1`, `eu1`, `uk1`, ...).
    pub fn area(&self) -> Option<&str> {
        self.area.as_deref()
    }

    /// The cluster (`B32`, ...).
    pub fn cluster(&self) -> Option<&str> {
        self.cluster.as_deref()
    }

    /// The region, when given.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The tenant's domain (`niceincontact.com`).
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The ACD domain (`acdDomain`).
    pub fn acd_domain(&self) -> Option<&str> {
        self.acd_domain.as_deref()
    }

    /// The UserHub domain (`uhDomain`).
    pub fn uh_domain(&self) -> Option<&str> {
        self.uh_domain.as_deref()
    }

    /// The global domain (`globaldomain`), when given.
    pub fn global_domain(&self) -> Option<&str> {
        self.global_domain.as_deref()
    }

    /// Whether the tenant is on a private cloud.
    pub fn is_private(&self) -> bool {
        self.private
    }
}

/// `api_endpoint` will receive the token: it must be present and follow the
/// crate's URL rule.
fn checked_api_endpoint<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Url, D::Error> {
    let Some(url) = Option::<String>::deserialize(deserializer)? else {
        return Err(D::Error::custom("no `api_endpoint`"));
    };
    let url = Url::parse(&url)
        .map_err(|err| D::Error::custom(format!("`api_endpoint` is not a URL: {err}")))?;
    check_url_rule("tenant's api_endpoint", &url).map_err(D::Error::custom)?;
    Ok(url)
}

/// Informational URLs: kept when they parse, dropped otherwise.
fn lenient_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Url>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(value.as_str().and_then(|url| Url::parse(url).ok()))
}

fn url_str<S: Serializer>(url: &Url, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(url.as_str())
}

fn url_opt<S: Serializer>(url: &Option<Url>, serializer: S) -> Result<S::Ok, S::Error> {
    url.as_ref().map(Url::as_str).serialize(serializer)
}

/// Reads tenant configurations from an issuer; each call asks.
///
/// The OAuth sources have [`discover_tenant`](crate::token::OAuthSource::discover_tenant)
/// with their own issuer and transport; this type serves tokens from
/// elsewhere, and the tenant routing layer.
///
/// ```no_run
/// use cxone_auth::TokenSource as _;
/// use cxone_auth::token::AccessKeyGrant;
///
/// # async fn run() -> Result<(), cxone_auth::Error> {
/// let source = AccessKeyGrant::from_env()?;
/// let token = source.fetch().await?;
/// let tenant = source.discover_tenant(&token).await?;
/// println!("{} serves area {:?}", tenant.api_endpoint(), tenant.area());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TenantDiscovery {
    base: Url,
    http: HttpClient,
}

impl TenantDiscovery {
    /// Discovery at a CXone environment's issuer.
    pub fn new(environment: Environment) -> Self {
        Self::with_client(environment.issuer(), HttpClient::new())
    }

    /// Discovery under `base_url` (an issuer, or the mock server's base URL).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when `base_url` is
    /// not a URL or breaks the URL rule of [`TokenEndpoint`].
    pub fn from_url(base_url: impl AsRef<str>) -> Result<Self, Error> {
        Ok(Self::with_client(
            checked_url("tenant discovery URL", base_url.as_ref())?,
            HttpClient::new(),
        ))
    }

    /// Discovery under `endpoint`'s [`base_url`](TokenEndpoint::base_url).
    pub fn for_endpoint(endpoint: &TokenEndpoint) -> Self {
        Self::with_client(endpoint.base_url().clone(), HttpClient::new())
    }

    pub(crate) fn with_client(base: Url, http: HttpClient) -> Self {
        Self { base, http }
    }

    /// Sends requests through `transport` instead of the default `reqwest`
    /// client. As for [`AccessKeyGrant::transport`](crate::AccessKeyGrant::transport),
    /// a client of your own should not follow redirects: one that does sends
    /// the token wherever a 307 or 308 points.
    pub fn transport(mut self, transport: impl HttpTransport) -> Self {
        self.http.set_transport(transport);
        self
    }

    /// The total time one discovery may take. Defaults to 10 s, as
    /// [`OAuthSource::timeout`](crate::token::OAuthSource::timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.http.set_timeout(timeout);
        self
    }

    /// The base URL the configuration is read under.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The configuration of the tenant `token` belongs to (its `tenantId`
    /// claim).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Discovery`](crate::ErrorKind::Discovery) when the token
    /// has no usable `tenantId` claim, the tenant is unknown (404), or the
    /// document has no valid `api_endpoint`; transient kinds for timeouts,
    /// 429 and 5xx answers; [`ErrorKind::InvalidResponse`](crate::ErrorKind::InvalidResponse)
    /// when the body is not JSON.
    pub async fn discover(&self, token: &AccessToken) -> Result<TenantConfig, Error> {
        let Some(tenant_id) = token.tenant_id() else {
            return Err(Error::discovery(
                "the access token (and its id token) has no `tenantId` claim; is it a CXone token?",
            ));
        };
        self.tenant(tenant_id).await
    }

    /// The configuration of the tenant `tenant_id`.
    ///
    /// # Errors
    ///
    /// As [`discover`](Self::discover).
    pub async fn tenant(&self, tenant_id: &str) -> Result<TenantConfig, Error> {
        if tenant_id.is_empty()
            || tenant_id.chars().count() > MAX_TENANT_ID_CHARS
            || !tenant_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::discovery("the tenant id is not a valid tenant id"));
        }
        let mut url = join_path(&self.base, CXONE_CONFIGURATION_PATH);
        url.query_pairs_mut().append_pair("tenantId", tenant_id);

        let span = tracing::info_span!(
            "cxone_auth.discover_tenant",
            host = self.base.host_str(),
            outcome = Empty,
            area = Empty,
        );
        let result = self
            .http
            .within_timeout("tenant discovery", self.read(&url, tenant_id))
            .instrument(span.clone())
            .await;
        match &result {
            Ok(config) => span.record("outcome", "ok").record("area", config.area()),
            Err(err) => span.record("outcome", tracing::field::debug(err.kind())),
        };
        result
    }

    async fn read(&self, url: &Url, tenant_id: &str) -> Result<TenantConfig, Error> {
        let not_found = "unknown tenant (HTTP 404): the issuer does not know this tenant id";
        let document = self
            .http
            .get_json(url, "the tenant configuration", not_found)
            .await?;
        let config = TenantConfig::deserialize(serde_json::Value::Object(document));
        let config = config.map_err(|err| {
            Error::discovery(format!("the tenant configuration is not usable: {err}"))
        })?;
        if let Some(stated) = config.tenant_id()
            && !stated.eq_ignore_ascii_case(tenant_id)
        {
            return Err(Error::discovery(
                "the tenant configuration describes another tenant",
            ));
        }
        Ok(config)
    }
}

impl fmt::Debug for TenantDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantDiscovery")
            .field("base_url", &self.base.as_str())
            .field("http", &self.http)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::ErrorKind;

    const NICE_EXAMPLE: &str = r#"{"private":false,"area":"na1","cluster":"B32","domain":"niceincontact.com",
        "acdDomain":"nice-incontact.com","uhDomain":"nice-incontact.com",
        "ui_endpoint":"https://na1.nice-incontact.com","auth_endpoint":"https://na1.nice-incontact.com",
        "api_endpoint":"https://api-na1.niceincontact.com","tenantId":"11eb0358-2a5b-4a60-a2c4-0242ac110003",
        "somethingNew":{"nested":[1,2]}}"#;

    #[test]
    fn reads_nice_example() {
        let config: TenantConfig = serde_json::from_str(NICE_EXAMPLE).unwrap();
        assert_eq!(
            config.api_endpoint().as_str(),
            "https://api-na1.niceincontact.com/"
        );
        assert_eq!(config.area(), Some("na1"));
        assert_eq!(config.cluster(), Some("B32"));
        assert_eq!(config.domain(), Some("niceincontact.com"));
        assert_eq!(config.acd_domain(), Some("nice-incontact.com"));
        assert_eq!(
            config.tenant_id(),
            Some("11eb0358-2a5b-4a60-a2c4-0242ac110003")
        );
        assert_eq!(
            config.ui_endpoint().map(Url::as_str),
            Some("https://na1.nice-incontact.com/")
        );
        assert!(!config.is_private());

        let round_trip: TenantConfig =
            serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(round_trip, config);
    }

    /// Discovery under a server that answers every request with `body`.
    fn answering(body: String) -> TenantDiscovery {
        let service = tower::service_fn(move |_: http::Request<http_body_util::Full<Bytes>>| {
            let body = http_body_util::Full::new(Bytes::from(body.clone()));
            async move { Ok::<_, std::convert::Infallible>(http::Response::new(body)) }
        });
        let discovery = TenantDiscovery::from_url("https://issuer.example.com").unwrap();
        discovery.transport(crate::token::ServiceTransport::new(service))
    }

    #[tokio::test]
    async fn unusable_documents_are_discovery_errors() {
        for (document, says) in [
            (
                r#"{"api_endpoint":"not a url"}"#,
                "`api_endpoint` is not a URL",
            ),
            (
                r#"{"api_endpoint":"http://api.example.com"}"#,
                "must use https",
            ),
            (
                r#"{"api_endpoint":"https://user:pw@api.example.com"}"#,
                "user name or password",
            ),
            (r#"{"api_endpoint":null}"#, "no `api_endpoint`"),
            (r#"{"area":"na1"}"#, "missing field `api_endpoint`"),
            (
                r#"{"api_endpoint":"https://a.example.com","area":5}"#,
                "invalid type",
            ),
            (
                r#"{"api_endpoint":"https://a.example.com","tenantId":"t-2"}"#,
                "another tenant",
            ),
        ] {
            let err = answering(document.to_owned())
                .tenant("t-1")
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Discovery, "{document}");
            assert!(err.to_string().contains(says), "{document}: {err}");
        }
        let found =
            answering(r#"{"api_endpoint":"http://127.0.0.1:4000","tenantId":"T-1"}"#.into());
        let config = found.tenant("t-1").await.unwrap();
        assert_eq!(config.api_endpoint().as_str(), "http://127.0.0.1:4000/");
        assert_eq!(config.area(), None);
    }

    #[test]
    fn informational_urls_are_lenient() {
        let config: TenantConfig = serde_json::from_str(
            r#"{"api_endpoint":"https://api.example.com","ui_endpoint":"??","auth_endpoint":7}"#,
        )
        .unwrap();
        assert_eq!(config.ui_endpoint(), None);
        assert_eq!(config.auth_endpoint(), None);
    }

    #[tokio::test]
    async fn tokens_without_tenant_are_refused_before_any_request() {
        let token = AccessToken::new("opaque").unwrap();
        let err = TenantDiscovery::new(Environment::Cxone)
            .discover(&token)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Discovery);
        assert!(err.to_string().contains("no `tenantId` claim"), "{err}");

        for bad in ["", "a&b=c", "x/../y", &"a".repeat(200)] {
            let err = TenantDiscovery::new(Environment::Cxone)
                .tenant(bad)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Discovery, "{bad}");
        }
    }
}
