//! Where tokens are asked for: [`Environment`], [`TokenEndpoint`], the URL
//! rule, and OIDC discovery of the token URL. The examples are on
//! [`TokenEndpoint`].

use std::fmt;
use std::net::IpAddr;

use serde_json::Value;
use url::{Host, Url};

use crate::Error;
use crate::token::transport::HttpClient;

/// The issuer of CXone's commercial environment (all areas).
const CXONE_ISSUER: &str = "https://cxone.niceincontact.com";

/// The issuer of CXone's FedRAMP environment.
const CXONE_GOV_ISSUER: &str = "https://cxone-gov.niceincontact.com";

/// The issuers of CXone's sovereign clouds.
const SOVEREIGN_AU_ISSUER: &str = "https://nicecxone-sov1.au";
const SOVEREIGN_EU_ISSUER: &str = "https://nicecxone-sov1.eu";

/// The path of the token endpoint under a CXone issuer.
const CXONE_TOKEN_PATH: &str = "/auth/token";

/// Where OpenID Connect Discovery §4 puts the configuration, under the issuer.
const OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";

/// A CXone environment, named by its issuer.
///
/// The OIDC issuers are not per area: every tenant of an environment gets its
/// tokens from the same issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Environment {
    /// Commercial CXone, `https://cxone.niceincontact.com` (the default).
    #[default]
    Cxone,
    /// CXone for US government (FedRAMP), `https://cxone-gov.niceincontact.com`.
    CxoneGov,
    /// CXone's Australian sovereign cloud, `https://nicecxone-sov1.au`.
    SovereignAu,
    /// CXone's European Union sovereign cloud, `https://nicecxone-sov1.eu`.
    SovereignEu,
}

impl Environment {
    /// The issuer URL.
    pub fn issuer(self) -> Url {
        let issuer = match self {
            Self::Cxone => CXONE_ISSUER,
            Self::CxoneGov => CXONE_GOV_ISSUER,
            Self::SovereignAu => SOVEREIGN_AU_ISSUER,
            Self::SovereignEu => SOVEREIGN_EU_ISSUER,
        };
        // Never panics: the tests below parse every constant.
        Url::parse(issuer).expect("the CXone issuer URLs are valid")
    }

    /// The token URL, `<issuer>/auth/token`.
    pub fn token_url(self) -> Url {
        join_path(&self.issuer(), CXONE_TOKEN_PATH)
    }
}

/// Where a token source asks for tokens.
///
/// Built from an [`Environment`] (its `/auth/token`), a token URL
/// ([`TokenEndpoint::url`]), or an issuer whose OpenID configuration names the
/// token URL ([`TokenEndpoint::discover`], NICE's advice).
///
/// Every URL follows one rule, checked when it is configured, so a bad URL
/// fails then and not on the first fetch: `https`, except on loopback hosts
/// (`127.0.0.0/8`, `::1`, `localhost`) where `http` is allowed for tests and
/// local proxies; no user name or password. A discovered token URL must
/// follow it too: a discovery document cannot downgrade where the client
/// secret is sent.
///
/// ```
/// use cxone_auth::ErrorKind;
/// use cxone_auth::token::{Environment, TokenEndpoint};
///
/// let cxone = TokenEndpoint::from(Environment::Cxone);
/// assert_eq!(cxone.token_url().unwrap().as_str(), "https://cxone.niceincontact.com/auth/token");
///
/// let local = TokenEndpoint::url("http://127.0.0.1:8080/auth/token")?;
/// assert_eq!(local.base_url().as_str(), "http://127.0.0.1:8080/");
///
/// let err = TokenEndpoint::url("http://auth.example.com/token").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Config);
///
/// let discovered = TokenEndpoint::discover("https://cxone-gov.niceincontact.com")?;
/// assert_eq!(discovered.token_url(), None); // known after the first fetch
/// # Ok::<(), cxone_auth::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenEndpoint(Kind);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Kind {
    /// A known token URL, and the base URL its server's `.well-known`
    /// documents live under.
    Fixed { token_url: Url, base: Url },
    /// An issuer whose OpenID configuration names the token URL.
    Discover { issuer: Url },
}

impl TokenEndpoint {
    /// A fixed token URL.
    ///
    /// Tenant discovery then asks the URL's origin (scheme, host and port).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when `token_url` is not
    /// a URL, is not `https` on a non-loopback host, or carries a user name or
    /// password.
    pub fn url(token_url: impl AsRef<str>) -> Result<Self, Error> {
        let token_url = checked_url("token URL", token_url.as_ref())?;
        let base = origin(&token_url);
        Ok(Self(Kind::Fixed { token_url, base }))
    }

    /// An issuer whose `/.well-known/openid-configuration` names the token
    /// URL. The document is read on the first fetch and remembered; the token
    /// URL it names must follow the same rule.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) as for
    /// [`url`](Self::url), and when the issuer has a query or fragment.
    pub fn discover(issuer: impl AsRef<str>) -> Result<Self, Error> {
        let issuer = checked_url("issuer URL", issuer.as_ref())?;
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(Error::config(
                "the issuer URL must not have a query or fragment",
            ));
        }
        Ok(Self(Kind::Discover { issuer }))
    }

    /// The token URL, when it is known without discovery.
    pub fn token_url(&self) -> Option<&Url> {
        match &self.0 {
            Kind::Fixed { token_url, .. } => Some(token_url),
            Kind::Discover { .. } => None,
        }
    }

    /// The issuer to discover the token URL from, if this endpoint is one.
    pub fn issuer(&self) -> Option<&Url> {
        match &self.0 {
            Kind::Fixed { .. } => None,
            Kind::Discover { issuer } => Some(issuer),
        }
    }

    /// The URL `.well-known` documents (tenant discovery) are read under: the
    /// issuer, or the origin of a fixed token URL.
    pub fn base_url(&self) -> &Url {
        match &self.0 {
            Kind::Fixed { base, .. } => base,
            Kind::Discover { issuer } => issuer,
        }
    }

    /// A stable text naming this endpoint, for [`shared_key`](crate::TokenSource::shared_key).
    pub(crate) fn identity(&self) -> String {
        match &self.0 {
            Kind::Fixed { token_url, .. } => format!("token_url={token_url}"),
            Kind::Discover { issuer } => format!("issuer={issuer}"),
        }
    }
}

impl Default for TokenEndpoint {
    /// [`Environment::Cxone`].
    fn default() -> Self {
        Environment::default().into()
    }
}

impl From<Environment> for TokenEndpoint {
    fn from(environment: Environment) -> Self {
        let (token_url, base) = (environment.token_url(), environment.issuer());
        Self(Kind::Fixed { token_url, base })
    }
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, url) = match &self.0 {
            Kind::Fixed { token_url, .. } => ("token_url", token_url),
            Kind::Discover { issuer } => ("issuer", issuer),
        };
        f.debug_struct("TokenEndpoint")
            .field(name, &url.as_str())
            .finish()
    }
}

/// Reads the issuer's OpenID configuration and returns its `token_endpoint`.
pub(crate) async fn discover_token_endpoint(http: &HttpClient, issuer: &Url) -> Result<Url, Error> {
    let url = join_path(issuer, OPENID_CONFIGURATION_PATH);
    let not_found = "the issuer has no OpenID configuration (HTTP 404): check the issuer URL";
    let document = http
        .get_json(&url, "the OpenID configuration", not_found)
        .await?;
    let token_endpoint = document.get("token_endpoint").and_then(Value::as_str);
    let token_endpoint = token_endpoint
        .ok_or_else(|| Error::discovery("the OpenID configuration names no `token_endpoint`"))?;
    let token_endpoint = Url::parse(token_endpoint).map_err(|err| {
        Error::discovery(format!(
            "the OpenID configuration's `token_endpoint` is not a URL: {err}"
        ))
    })?;
    check_url_rule("discovered token_endpoint", &token_endpoint).map_err(Error::discovery)?;
    Ok(token_endpoint)
}

/// Parses `url` and checks the crate's URL rule: `https`, or `http` on a
/// loopback host; no user name or password. `what` names the URL in errors.
///
/// The URL itself is never quoted in the error: a mistyped one may hold a
/// secret pasted into the wrong variable.
pub(crate) fn checked_url(what: &str, url: &str) -> Result<Url, Error> {
    let url = url.trim();
    if url.is_empty() {
        return Err(Error::config(format!("the {what} is empty")));
    }
    let parsed =
        Url::parse(url).map_err(|err| Error::config(format!("the {what} is not a URL: {err}")))?;
    check_url_rule(what, &parsed).map_err(Error::config)?;
    Ok(parsed)
}

/// The URL rule alone, for URLs that arrive from a server. Returns what is
/// wrong.
pub(crate) fn check_url_rule(what: &str, url: &Url) -> Result<(), String> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "the {what} must not contain a user name or password"
        ));
    }
    let Some(host) = url.host() else {
        return Err(format!("the {what} has no host"));
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&host) => Ok(()),
        "http" => Err(format!(
            "the {what} must use https (http is allowed only for loopback hosts: 127.0.0.0/8, ::1, localhost)"
        )),
        scheme => Err(format!(
            "the {what} must use https, not the scheme `{scheme}`"
        )),
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(domain) => domain.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).to_canonical().is_loopback(),
    }
}

/// `scheme://host[:port]/` of `url`.
fn origin(url: &Url) -> Url {
    let mut base = url.clone();
    base.set_path("/");
    base.set_query(None);
    base.set_fragment(None);
    base
}

/// `base` with `path` (starting with `/`) appended to its path, as OpenID
/// Connect Discovery §4 appends `/.well-known/openid-configuration` to an
/// issuer that may itself have a path.
pub(crate) fn join_path(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}{path}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url.set_query(None);
    url.set_fragment(None);
    url
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::Full;

    use super::*;
    use crate::ErrorKind;
    use crate::token::ServiceTransport;

    /// A server answering `body`, and the URIs it was asked for.
    fn server(body: &'static str) -> (HttpClient, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let service = tower::service_fn(move |req: Request<Full<Bytes>>| {
            log.lock().unwrap().push(req.uri().to_string());
            let body = Full::new(Bytes::from_static(body.as_bytes()));
            async move { Ok::<_, Infallible>(Response::new(body)) }
        });
        let mut http = HttpClient::new();
        http.set_transport(ServiceTransport::new(service));
        (http, seen)
    }

    fn issuer() -> Url {
        Url::parse("https://issuer.example.com/realm").unwrap()
    }

    #[tokio::test]
    async fn discovery_reads_token_endpoint() {
        let (http, seen) = server(
            r#"{"issuer":"https://issuer.example.com","token_endpoint":"https://issuer.example.com/auth/token"}"#,
        );
        let url = discover_token_endpoint(&http, &issuer()).await.unwrap();
        assert_eq!(url.as_str(), "https://issuer.example.com/auth/token");
        assert_eq!(
            *seen.lock().unwrap(),
            ["https://issuer.example.com/realm/.well-known/openid-configuration"]
        );
    }

    #[tokio::test]
    async fn bad_discovery_documents_are_discovery_errors() {
        for (body, says) in [
            (r#"{"issuer":"x"}"#, "names no `token_endpoint`"),
            (r#"{"token_endpoint":"/auth/token"}"#, "is not a URL"),
            (
                r#"{"token_endpoint":"http://issuer.example.com/auth/token"}"#,
                "discovered token_endpoint must use https",
            ),
        ] {
            let (http, _) = server(body);
            let err = discover_token_endpoint(&http, &issuer()).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Discovery, "{body}");
            assert!(err.to_string().contains(says), "{err}");
        }
        let (http, _) = server("<html>");
        let err = discover_token_endpoint(&http, &issuer()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);
        assert!(err.to_string().contains("OpenID configuration"), "{err}");
    }

    #[test]
    fn cxone_environments() {
        assert_eq!(
            Environment::Cxone.token_url().as_str(),
            "https://cxone.niceincontact.com/auth/token"
        );
        assert_eq!(
            Environment::CxoneGov.token_url().as_str(),
            "https://cxone-gov.niceincontact.com/auth/token"
        );
        assert_eq!(
            Environment::CxoneGov.issuer().as_str(),
            "https://cxone-gov.niceincontact.com/"
        );
        assert_eq!(
            Environment::SovereignAu.token_url().as_str(),
            "https://nicecxone-sov1.au/auth/token"
        );
        assert_eq!(
            Environment::SovereignEu.issuer().as_str(),
            "https://nicecxone-sov1.eu/"
        );
        let default = TokenEndpoint::default();
        assert_eq!(default.token_url(), Some(&Environment::Cxone.token_url()));
        assert_eq!(default.base_url(), &Environment::Cxone.issuer());
    }

    #[test]
    fn https_required_except_loopback() {
        for ok in [
            "https://auth.example.com/token",
            "https://auth.example.com:8443/oauth2/token?p=policy",
            "http://127.0.0.1:3000/auth/token",
            "http://127.8.9.10/auth/token",
            "http://[::1]:3000/auth/token",
            "http://localhost/auth/token",
            "http://LOCALHOST:1/auth/token",
            "http://[::ffff:127.0.0.1]/auth/token",
        ] {
            assert!(TokenEndpoint::url(ok).is_ok(), "{ok}");
        }
        for (bad, says) in [
            ("http://auth.example.com/token", "must use https"),
            ("http://10.0.0.1/token", "must use https"),
            ("http://[::2]/token", "must use https"),
            ("http://localhost.example.com/token", "must use https"),
            ("ftp://auth.example.com/token", "not the scheme `ftp`"),
            ("auth.example.com/token", "is not a URL"),
            ("", "is empty"),
            ("   ", "is empty"),
            ("https://", "is not a URL"),
            (
                "https://user:hunter2@auth.example.com/token",
                "user name or password",
            ),
            ("file:///etc/passwd", "no host"),
        ] {
            let err = TokenEndpoint::url(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
            let text = err.to_string();
            assert!(text.contains("token URL"), "{text}");
            assert!(text.contains(says), "{bad}: {text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn issuers_follow_the_same_rule() {
        let err = TokenEndpoint::discover("http://issuer.example.com").unwrap_err();
        assert!(
            err.to_string().contains("issuer URL must use https"),
            "{err}"
        );
        let err = TokenEndpoint::discover("https://issuer.example.com/?x=1").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        let issuer = TokenEndpoint::discover("https://issuer.example.com/realms/a/").unwrap();
        assert_eq!(issuer.token_url(), None);
        assert_eq!(
            issuer.issuer().map(Url::as_str),
            Some("https://issuer.example.com/realms/a/")
        );
    }

    #[test]
    fn base_of_a_token_url_is_its_origin() {
        let endpoint = TokenEndpoint::url("https://auth.example.com:8443/a/b/token?x=1").unwrap();
        assert_eq!(
            endpoint.base_url().as_str(),
            "https://auth.example.com:8443/"
        );
    }

    #[test]
    fn well_known_paths_append_to_issuer_paths() {
        let root = Url::parse("https://issuer.example.com").unwrap();
        assert_eq!(
            join_path(&root, "/.well-known/openid-configuration").as_str(),
            "https://issuer.example.com/.well-known/openid-configuration"
        );
        let realm = Url::parse("https://issuer.example.com/realms/a/").unwrap();
        assert_eq!(
            join_path(&realm, "/.well-known/openid-configuration").as_str(),
            "https://issuer.example.com/realms/a/.well-known/openid-configuration"
        );
    }

    #[test]
    fn identity_distinguishes_endpoints() {
        let a = TokenEndpoint::url("https://a.example.com/token").unwrap();
        let b = TokenEndpoint::discover("https://a.example.com").unwrap();
        assert_ne!(a.identity(), b.identity());
        assert_eq!(
            format!("{a:?}"),
            "TokenEndpoint { token_url: \"https://a.example.com/token\" }"
        );
    }
}
