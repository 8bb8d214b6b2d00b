//! [`OAuthSource`]: one OAuth 2.0 token source over a grant. The grants
//! differ only in their form fields (`grant.rs`); everything else is written
//! once here. The examples are on [`OAuthSource`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Request};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tracing::Instrument as _;
use tracing::field::Empty;
use url::{Url, form_urlencoded};

use crate::token::endpoint::discover_token_endpoint;
use crate::token::grant::{
    AccessKey, AccessKeyJson, ClientCredentialsGrant, OAuthGrant, no_endpoint,
};
use crate::token::response::token_from_response;
use crate::token::transport::HttpClient;
use crate::token::{Environment, HttpTransport, TenantConfig, TenantDiscovery, TokenEndpoint};
use crate::{AccessToken, Error, ErrorKind, TokenSource};

/// CXone's back-end flow: the OAuth 2.0 password grant with an access key.
/// Built with `AccessKeyGrant::new(..)` or `AccessKeyGrant::from_env()`.
pub type AccessKeyGrant = OAuthSource<AccessKey>;

/// The access key alone, no app registration: `POST
/// https://{area}.nice-incontact.com/authentication/v1/token/access-key` with
/// JSON `{"accessKeyId", "accessKeySecret"}`, the flow most third-party code
/// uses. Built with `AccessKeyOnly::new(id, secret)?` (area na1), then
/// `.area("eu1")?` or `.token_url(..)?` (the older
/// `https://api.incontact.com/InContactAuthorizationServer/token/access-key`
/// takes the same body), or with `AccessKeyOnly::from_env()` (`CXONE_AREA`
/// or `CXONE_TOKEN_URL`). Client authentication, scopes and refresh tokens
/// do not apply: the token is re-fetched with the key.
///
/// ```
/// use cxone_auth::token::AccessKeyOnly;
///
/// let source = AccessKeyOnly::new("KEYID", "c2VjcmV0+/x====")?.area("eu1")?;
/// let url = source.token_endpoint().and_then(|e| e.token_url()).unwrap();
/// assert_eq!(url.as_str(), "https://eu1.nice-incontact.com/authentication/v1/token/access-key");
/// assert!(AccessKeyOnly::new("KEYID", "x")?.area("mars1").is_err());
/// # Ok::<(), cxone_auth::Error>(())
/// ```
pub type AccessKeyOnly = OAuthSource<AccessKeyJson>;

/// The OAuth 2.0 client credentials grant (RFC 6749 §4.4). Built with
/// `ClientCredentials::new(..)` or `ClientCredentials::from_env()`.
pub type ClientCredentials = OAuthSource<ClientCredentialsGrant>;

/// A [`TokenSource`] speaking OAuth 2.0 to a token endpoint, for one grant;
/// you name it [`AccessKeyGrant`] or [`ClientCredentials`].
///
/// Defaults: [`Environment::Cxone`] ([`AccessKeyGrant`] only: CXone's issuers
/// do not offer the client credentials grant, so a [`ClientCredentials`]
/// needs a token URL or an issuer), [`ClientAuth::Basic`], no scopes, a 10 s
/// timeout, a `reqwest` client built on first use. Clones share the
/// discovered token URL and that client. `Debug` shows no secret. The access
/// key grant's request, as CXone documents it:
///
/// ```text
/// POST /auth/token
/// Authorization: Basic base64(client_id:client_secret)
/// Content-Type: application/x-www-form-urlencoded
///
/// grant_type=password&username=<access key id>&password=<access key secret>
/// ```
///
/// ```
/// use std::time::Duration;
/// use cxone_auth::TokenSource as _;
/// use cxone_auth::token::{AccessKeyGrant, ClientAuth, ClientCredentials, Environment};
///
/// let source = AccessKeyGrant::new("client-id", "client-secret", "KEYID", "c2VjcmV0+/x====")?
///     .environment(Environment::CxoneGov)
///     .timeout(Duration::from_secs(20));
/// assert_eq!(source.access_key_id(), "KEYID");
/// assert_eq!(source.shared_key().unwrap().len(), 64);
/// assert!(!format!("{source:?}").contains("c2VjcmV0"));
///
/// // Any OAuth 2.0 server; NICE's token endpoint does not offer this grant.
/// let other = ClientCredentials::new("my-app", "my-secret")?
///     .token_url("https://auth.example.com/oauth2/token")?
///     .client_auth(ClientAuth::Body)
///     .scopes(["openid", "agents:read"])
///     .param("audience", "https://api.example.com")?;
/// # Ok::<(), cxone_auth::Error>(())
/// ```
///
/// # Configuration from the environment
///
/// `from_env` reads these variables; `from_lookup` reads them through a
/// closure, so tests need not touch the process environment:
///
/// | Variable | Meaning |
/// |---|---|
/// | `CXONE_CLIENT_ID`, `CXONE_CLIENT_SECRET` | the app's credentials (required; not read by [`AccessKeyOnly`]) |
/// | `CXONE_ACCESS_KEY_ID`, `CXONE_ACCESS_KEY_SECRET` | the access key ([`AccessKeyGrant`], [`AccessKeyOnly`]; required) |
/// | `CXONE_TOKEN_URL` | a fixed token URL (optional) |
/// | `CXONE_ISSUER` | an issuer to discover the token URL from (optional; not with `CXONE_TOKEN_URL`) |
/// | `CXONE_SCOPES` | scopes, separated by spaces or commas (optional) |
/// | `CXONE_AREA` | [`AccessKeyOnly`] only, instead of `CXONE_TOKEN_URL`: na1 (default), na2, au1, eu1, uk1, ca1 or jp1 |
///
/// Without `CXONE_TOKEN_URL` and `CXONE_ISSUER` the endpoint is
/// [`Environment::Cxone`] for [`AccessKeyGrant`], and a
/// [`Config`](crate::ErrorKind::Config) error for [`ClientCredentials`]. An optional variable set to blanks counts as
/// unset. Ids and secrets are checked when a source is built: an empty or
/// padded one (a trailing newline) is an error naming the field, never its
/// value.
///
/// ```
/// use cxone_auth::token::ClientCredentials;
///
/// let source = ClientCredentials::from_lookup(|name| match name {
///     "CXONE_CLIENT_ID" => Some("my-app".to_owned()),
///     "CXONE_CLIENT_SECRET" => Some("my-secret\n".to_owned()),
///     _ => None,
/// });
/// let err = source.unwrap_err().to_string();
/// assert!(err.contains("client secret (CXONE_CLIENT_SECRET) has leading/trailing whitespace"));
/// ```
#[derive(Clone)]
pub struct OAuthSource<G> {
    pub(super) grant: G,
    /// `None` until set, for a grant CXone does not offer.
    endpoint: Option<TokenEndpoint>,
    /// The token URL OIDC discovery found: discovered on the first fetch,
    /// kept after. Fetches already run one at a time under the token cache,
    /// so a plain memo is enough.
    discovered: Arc<ArcSwapOption<Url>>,
    client_id: String,
    client_secret: SecretString,
    client_auth: ClientAuth,
    scopes: Vec<String>,
    http: HttpClient,
    /// With [`use_refresh_tokens`](Self::use_refresh_tokens): the last
    /// refresh token, shared by clones like `discovered`.
    refresh: Option<Arc<ArcSwapOption<SecretString>>>,
}

/// Where the client id and secret go in a token request. CXone accepts both
/// (`client_secret_basic`, `client_secret_post`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`, the default) as NICE documents it
    /// and CXone's integrators send it: `base64(client_id:client_secret)`
    /// (RFC 7617).
    #[default]
    Basic,
    /// HTTP Basic as RFC 6749 §2.3.1 words it: the id and secret are each
    /// form-urlencoded first. The same bytes as [`Basic`](Self::Basic) for
    /// ids and secrets of letters, digits, `-`, `.`, `_` and `*` (CXone's
    /// UUIDs and hex secrets), not for others; for OAuth servers that decode it.
    BasicFormEncoded,
    /// Form body (`client_secret_post`): `client_id` and `client_secret` are
    /// sent as form fields.
    Body,
}

impl<G> OAuthSource<G> {
    /// A source of `client_id`, already checked, for `grant`.
    pub(super) fn with_grant(client_id: String, client_secret: SecretString, grant: G) -> Self {
        Self {
            grant,
            endpoint: None,
            discovered: Arc::default(),
            client_id,
            client_secret,
            client_auth: ClientAuth::default(),
            scopes: Vec::new(),
            http: HttpClient::new(),
            refresh: None,
        }
    }

    /// Asks the token endpoint of a CXone environment. Defaults to
    /// [`Environment::Cxone`], the commercial cloud.
    pub fn environment(self, environment: Environment) -> Self {
        self.endpoint(environment.into())
    }

    /// Asks `endpoint`.
    pub fn endpoint(mut self, endpoint: TokenEndpoint) -> Self {
        self.endpoint = Some(endpoint);
        self.discovered = Arc::default();
        self
    }

    /// Asks a fixed token URL.
    ///
    /// # Errors
    ///
    /// As [`TokenEndpoint::url`].
    pub fn token_url(self, token_url: impl AsRef<str>) -> Result<Self, Error> {
        Ok(self.endpoint(TokenEndpoint::url(token_url)?))
    }

    /// Asks the token endpoint named by `issuer`'s OpenID configuration,
    /// read on the first fetch and kept.
    ///
    /// # Errors
    ///
    /// As [`TokenEndpoint::discover`].
    pub fn issuer(self, issuer: impl AsRef<str>) -> Result<Self, Error> {
        Ok(self.endpoint(TokenEndpoint::discover(issuer)?))
    }

    /// Where the client id and secret go. Defaults to [`ClientAuth::Basic`],
    /// what NICE documents.
    pub fn client_auth(mut self, client_auth: ClientAuth) -> Self {
        self.client_auth = client_auth;
        self
    }

    /// The scopes to ask for, sent space-separated as `scope`. Items may
    /// themselves be space-separated lists; duplicates are dropped, order is
    /// kept. Defaults to none, and no `scope` field: what a CXone token may
    /// do comes from the role of the access key's user, not from scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.scopes.clear();
        for item in scopes {
            for scope in item.as_ref().split_whitespace() {
                if !self.scopes.iter().any(|s| s == scope) {
                    self.scopes.push(scope.to_owned());
                }
            }
        }
        self
    }

    /// The total time one fetch may take, discovery included; past it the
    /// fetch fails with [`ErrorKind::Timeout`](crate::ErrorKind::Timeout).
    /// Defaults to 10 s (the tutorial's): token endpoints answer in well
    /// under a second, and a caller waiting for a first token should learn
    /// of an outage quickly.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.http.set_timeout(timeout);
        self
    }

    /// The time a connection may take to open, for the default `reqwest`
    /// transport; a transport given with [`transport`](Self::transport)
    /// keeps its own. Defaults to 5 s, half the total timeout, so an
    /// unreachable host fails as a connection error, not a vaguer timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.http.set_connect_timeout(timeout);
        self
    }

    /// Sends requests through `transport` instead of the default `reqwest`
    /// client: a `reqwest::Client` of your own (a proxy, for example), or any
    /// tower service through [`ServiceTransport`](crate::token::ServiceTransport)
    /// (the in-process mock CXone, for one).
    ///
    /// The crate cannot see how your client treats redirects. One that
    /// follows them (`reqwest::Client::new()` does) re-sends the token
    /// request, client secret and access key secret included, when a 307 or
    /// 308 points it to another host. Build it with redirects off:
    ///
    /// ```
    /// let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    /// # Ok::<(), reqwest::Error>(())
    /// ```
    pub fn transport(mut self, transport: impl HttpTransport) -> Self {
        self.http.set_transport(transport);
        self
    }

    /// Where this source asks for tokens; `None` for a [`ClientCredentials`]
    /// not yet given a token URL or an issuer.
    pub fn token_endpoint(&self) -> Option<&TokenEndpoint> {
        self.endpoint.as_ref()
    }

    /// The scopes this source asks for.
    pub fn requested_scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Finds the tenant of `token` under this source's endpoint (its issuer,
    /// or the origin of its token URL), through its transport and within its
    /// timeout; see [`TenantDiscovery`].
    ///
    /// # Errors
    ///
    /// As [`TenantDiscovery::discover`].
    pub async fn discover_tenant(&self, token: &AccessToken) -> Result<TenantConfig, Error> {
        let endpoint = self.endpoint.as_ref().ok_or_else(|| {
            Error::config("the source has no token URL or issuer to discover the tenant under")
        })?;
        TenantDiscovery::with_client(endpoint.base_url().clone(), self.http.clone())
            .discover(token)
            .await
    }
}

impl<G: OAuthGrant> TokenSource for OAuthSource<G> {
    /// One exchange, traced by one span that names no secret.
    async fn fetch(&self) -> Result<AccessToken, Error> {
        let span = {
            // The token URL's host; before the first discovery, the issuer's.
            let discovered = self.discovered.load();
            let host = self.endpoint.as_ref().and_then(|endpoint| {
                (endpoint.token_url().or(discovered.as_deref()))
                    .unwrap_or_else(|| endpoint.base_url())
                    .host_str()
            });
            tracing::info_span!(
                "cxone_auth.fetch_token",
                grant = G::GRANT_TYPE,
                host,
                outcome = Empty,
                duration_ms = Empty,
                scopes = Empty,
            )
        };
        let started = Instant::now();
        let result = self
            .http
            .within_timeout("the token request", self.exchange())
            .instrument(span.clone())
            .await
            .map_err(|err| err.redacted(&self.secret_forms()));
        span.record("duration_ms", started.elapsed().as_millis());
        match &result {
            Ok(token) => {
                span.record("outcome", "ok");
                span.record("scopes", token.scopes().join(" "));
                span.in_scope(|| tracing::debug!(lifetime = ?token.lifetime(), "token fetched"));
            }
            Err(err) => {
                span.record("outcome", tracing::field::debug(err.kind()));
                span.in_scope(|| tracing::warn!(error = %err, "token fetch failed"));
            }
        }
        result
    }

    /// A hex SHA-256 of the endpoint, grant, client id, the grant's own
    /// names (the access key id, extra parameters) and sorted scopes; no
    /// secret.
    fn shared_key(&self) -> Option<String> {
        let mut scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        scopes.sort_unstable();
        let (subject, extra) = self.grant.key_parts();
        let mut extra: Vec<&(String, String)> = extra.iter().collect();
        extra.sort();

        let mut hasher = Sha256::new();
        // Each part is length-prefixed, so no two configurations collide by
        // moving text between parts.
        let mut part = |text: &str| {
            hasher.update((text.len() as u64).to_be_bytes());
            hasher.update(text.as_bytes());
        };
        part("cxone-auth/shared-key/v1");
        part(
            &self
                .endpoint
                .as_ref()
                .map(TokenEndpoint::identity)
                .unwrap_or_default(),
        );
        part(G::GRANT_TYPE);
        part(&self.client_id);
        part(subject.unwrap_or(""));
        part(&scopes.join(" "));
        for (name, value) in extra {
            part(name);
            part(value);
        }
        let digest = hasher.finalize();
        Some(digest.iter().map(|byte| format!("{byte:02x}")).collect())
    }
}

impl<G: OAuthGrant> OAuthSource<G> {
    /// Fetches with the last refresh token when there is one
    /// (`grant_type=refresh_token&scope=openid&refresh_token=..`, as NICE's
    /// agent SDK does), and with the full grant at first and whenever the
    /// server refuses the refresh (`invalid_grant`: the refresh token expired
    /// or was revoked; `unauthorized_client`, `unsupported_grant_type`). A
    /// refresh answer without a new refresh token keeps the old one. Defaults to off: repeating the grant is all a back-end app needs,
    /// and the access key is then the only long-lived secret. No effect on
    /// [`AccessKeyOnly`], for which CXone documents no refresh request.
    pub fn use_refresh_tokens(mut self, enabled: bool) -> Self {
        self.refresh = (enabled && G::NEEDS_CLIENT).then(Arc::default);
        self
    }

    async fn exchange(&self) -> Result<AccessToken, Error> {
        let token_url = self.resolved_token_url().await?;
        let Some(kept) = &self.refresh else {
            return self.send(self.request(&token_url, None)?).await;
        };
        let refreshed = match kept.load_full() {
            Some(old) => match self
                .send(self.request(&token_url, Some(old.expose_secret()))?)
                .await
            {
                // `invalid_grant`: expired or revoked; `unauthorized_client` or
                // `unsupported_grant_type`: a server without the refresh grant.
                Err(err) if err.kind() == ErrorKind::GrantRejected => {
                    tracing::debug!("the refresh token was refused; using the grant");
                    kept.store(None);
                    None
                }
                sent => Some((sent?, old)),
            },
            None => None,
        };
        let token = match refreshed {
            // An answer without a new refresh token keeps the old one.
            Some((mut token, old)) => {
                if token.refresh_token().is_none() {
                    token.extras_mut().refresh_token = Some((*old).clone());
                }
                token
            }
            None => self.send(self.request(&token_url, None)?).await?,
        };
        if let Some(new) = token.refresh_token() {
            kept.store(Some(Arc::new(new.into())));
        }
        Ok(token)
    }

    async fn send(&self, request: Request<Bytes>) -> Result<AccessToken, Error> {
        let transport = self.http.transport()?;
        let requested_at = Instant::now();
        let response = transport.send(request).await?;
        token_from_response(&response, requested_at)
    }

    /// The configured token URL, or the discovered one.
    async fn resolved_token_url(&self) -> Result<Url, Error> {
        let endpoint = self.endpoint.as_ref().ok_or_else(no_endpoint::<G>)?;
        if let Some(url) = endpoint.token_url() {
            return Ok(url.clone());
        }
        if let Some(url) = self.discovered.load_full() {
            return Ok((*url).clone());
        }
        let issuer = endpoint
            .issuer()
            .ok_or_else(|| Error::config("the token endpoint has no token URL and no issuer"))?;
        // A failure keeps nothing, so the next fetch discovers again.
        let url = discover_token_endpoint(&self.http, issuer).await?;
        self.discovered.store(Some(Arc::new(url.clone())));
        Ok(url)
    }

    /// The token request: a JSON grant's body; or `grant_type`, the grant's
    /// fields (or the `refresh` token), `scope`, and the client credentials
    /// in the header or the body.
    fn request(&self, token_url: &Url, refresh: Option<&str>) -> Result<Request<Bytes>, Error> {
        let request = Request::post(token_url.as_str())
            .header(ACCEPT, "application/json")
            .header(CACHE_CONTROL, "no-store");
        let (mut request, body) = match self.grant.json_body() {
            Some(json) => (request.header(CONTENT_TYPE, "application/json"), json),
            None => {
                let form = self.form(refresh);
                (
                    request.header(CONTENT_TYPE, "application/x-www-form-urlencoded"),
                    form,
                )
            }
        };
        if G::NEEDS_CLIENT && self.client_auth != ClientAuth::Body {
            let secret = self.client_secret.expose_secret();
            let credentials = self.basic_credentials(self.client_auth, secret);
            request = request.header(AUTHORIZATION, basic_header(&credentials));
        }
        request.body(Bytes::from(body)).map_err(|err| {
            Error::config("the token URL is not a valid request URI").with_source(err)
        })
    }

    fn form(&self, refresh: Option<&str>) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        if let Some(refresh) = refresh {
            form.append_pair("grant_type", "refresh_token");
            form.append_pair("scope", "openid");
            form.append_pair("refresh_token", refresh);
        } else {
            form.append_pair("grant_type", G::GRANT_TYPE);
            self.grant.write_form(&mut form);
            if !self.scopes.is_empty() {
                form.append_pair("scope", &self.scopes.join(" "));
            }
        }
        if self.client_auth == ClientAuth::Body {
            form.append_pair("client_id", &self.client_id);
            form.append_pair("client_secret", self.client_secret.expose_secret());
        }
        form.finish()
    }
}

impl<G: OAuthGrant> fmt::Debug for OAuthSource<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct(G::NAME);
        debug.field("endpoint", &self.endpoint);
        if G::NEEDS_CLIENT {
            debug
                .field("client_id", &self.client_id)
                .field("client_secret", &"[redacted]")
                .field("client_auth", &self.client_auth)
                .field("scopes", &self.scopes);
        }
        debug
            .field("grant", &self.grant)
            .field("use_refresh_tokens", &self.refresh.is_some())
            .field("http", &self.http)
            .finish()
    }
}

impl<G: OAuthGrant> OAuthSource<G> {
    /// Whether `other` would send the same token request: the same shared
    /// key (endpoint, grant, ids, scopes, parameters), client authentication
    /// and secrets. For [`Rotating`](crate::token::Rotating) to tell a
    /// rotation.
    pub(super) fn same_credentials(&self, other: &Self) -> bool {
        self.client_auth == other.client_auth
            && self.client_secret.expose_secret() == other.client_secret.expose_secret()
            && self.grant.secret() == other.grant.secret()
            && self.shared_key() == other.shared_key()
    }

    /// The secrets as a server could echo them: as they are, form-encoded,
    /// in base64 (standard and URL-safe), and the Basic credentials.
    fn secret_forms(&self) -> Vec<String> {
        let client_secret = self.client_secret.expose_secret();
        let refresh = self.refresh.as_ref().and_then(|kept| kept.load_full());
        let refresh = refresh.as_deref().map(ExposeSecret::expose_secret);
        let secrets = [Some(client_secret), self.grant.secret(), refresh];
        let mut forms = Vec::new();
        if G::NEEDS_CLIENT {
            // Both Basic encodings: a server may echo either.
            for auth in [ClientAuth::Basic, ClientAuth::BasicFormEncoded] {
                forms.push(STANDARD_NO_PAD.encode(self.basic_credentials(auth, client_secret)));
            }
        }
        for secret in secrets.into_iter().flatten().filter(|s| !s.is_empty()) {
            forms.push(secret.to_owned());
            forms.push(form_urlencoded::byte_serialize(secret.as_bytes()).collect());
            forms.push(STANDARD_NO_PAD.encode(secret));
            forms.push(URL_SAFE_NO_PAD.encode(secret));
        }
        forms
    }

    /// `id:secret`, what HTTP Basic sends in base64; each form-urlencoded
    /// first for [`ClientAuth::BasicFormEncoded`].
    fn basic_credentials(&self, auth: ClientAuth, client_secret: &str) -> String {
        if auth != ClientAuth::BasicFormEncoded {
            return format!("{}:{client_secret}", self.client_id);
        }
        let encode =
            |value: &str| form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
        format!("{}:{}", encode(&self.client_id), encode(client_secret))
    }
}

/// `Basic base64(credentials)`, marked sensitive.
///
/// # Panics
///
/// Never: `Basic ` and base64 output are visible ASCII, always a valid header.
fn basic_header(credentials: &str) -> HeaderValue {
    let encoded = format!("Basic {}", STANDARD.encode(credentials));
    let mut header = HeaderValue::try_from(encoded).expect("base64 is a valid header value");
    header.set_sensitive(true);
    header
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;

    fn access_key() -> AccessKeyGrant {
        AccessKeyGrant::new("app", "s3cr3t", "KEY", "a+b/c==").unwrap()
    }

    fn body_of(request: &Request<Bytes>) -> &str {
        std::str::from_utf8(request.body()).unwrap()
    }

    #[test]
    fn basic_request() {
        let source = access_key().scopes(["openid agents:read", "openid"]);
        let url = Url::parse("https://auth.example.com/auth/token").unwrap();
        let request = source.request(&url, None).unwrap();
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri(), "https://auth.example.com/auth/token");
        assert_eq!(
            body_of(&request),
            "grant_type=password&username=KEY&password=a%2Bb%2Fc%3D%3D&scope=openid+agents%3Aread"
        );
        let headers = request.headers();
        assert_eq!(headers[CONTENT_TYPE], "application/x-www-form-urlencoded");
        assert_eq!(headers[ACCEPT], "application/json");
        assert_eq!(headers[CACHE_CONTROL], "no-store");
        // base64("app:s3cr3t")
        assert_eq!(headers[AUTHORIZATION], "Basic YXBwOnMzY3IzdA==");
        assert!(headers[AUTHORIZATION].is_sensitive());
    }

    #[test]
    fn body_request() {
        let source = ClientCredentials::new("app", "s3cr3t")
            .unwrap()
            .client_auth(ClientAuth::Body);
        let url = Url::parse("https://auth.example.com/t").unwrap();
        let request = source.request(&url, None).unwrap();
        assert_eq!(
            body_of(&request),
            "grant_type=client_credentials&client_id=app&client_secret=s3cr3t"
        );
        assert!(request.headers().get(AUTHORIZATION).is_none());
    }

    /// Plain `base64(id:secret)` by default, as NICE documents.
    #[test]
    fn basic_encodings() {
        let basic_of = |id: &str, secret: &str, auth| {
            let source = ClientCredentials::new(id, secret)
                .unwrap()
                .client_auth(auth);
            let url = Url::parse("https://auth.example.com/t").unwrap();
            let header = source.request(&url, None).unwrap().headers()[AUTHORIZATION].clone();
            assert!(header.is_sensitive());
            let encoded = header.to_str().unwrap().strip_prefix("Basic ").unwrap();
            String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap()
        };
        // RFC 6749 §2.3.1's example: the same bytes either way.
        for auth in [ClientAuth::Basic, ClientAuth::BasicFormEncoded] {
            let id = "s6BhdRkqt3";
            assert_eq!(
                basic_of(id, "7Fjfp0ZBr1KtDRbnfVdmIw", auth),
                "s6BhdRkqt3:7Fjfp0ZBr1KtDRbnfVdmIw"
            );
        }
        // NICE's legacy `App@Vendor` ids differ.
        let id = "inContact Evolve@inContact.com";
        assert_eq!(
            basic_of(id, "a+b/=", ClientAuth::Basic),
            "inContact Evolve@inContact.com:a+b/="
        );
        // RFC 6749 Appendix B: " %&+£€" encodes as "+%25%26%2B%C2%A3%E2%82%AC".
        assert_eq!(
            basic_of("app@1", "x %&+£€", ClientAuth::BasicFormEncoded),
            "app%401:x+%25%26%2B%C2%A3%E2%82%AC"
        );
    }

    #[test]
    fn shared_key_is_stable_secret_free_and_distinguishing() {
        let key = access_key().scopes(["b", "a"]).shared_key().unwrap();
        assert_eq!(key.len(), 64);
        assert!(key.bytes().all(|c| c.is_ascii_hexdigit()));
        let same = access_key().scopes(["a", "b"]).shared_key();
        assert_eq!(Some(&key), same.as_ref(), "scope order");
        let other_secrets = AccessKeyGrant::new("app", "other", "KEY", "other").unwrap();
        assert_eq!(
            Some(&key),
            other_secrets.scopes(["a", "b"]).shared_key().as_ref()
        );

        let cc = |id: &str| {
            ClientCredentials::new(id, "s3cr3t")
                .unwrap()
                .scopes(["a", "b"])
        };
        let with = |id, key_id| {
            AccessKeyGrant::new(id, "s", key_id, "k")
                .unwrap()
                .scopes(["a", "b"])
        };
        for different in [
            cc("app"),
            cc("app").param("audience", "x").unwrap(),
            cc("app").param("audience", "y").unwrap(),
        ]
        .map(|s| s.shared_key())
        .into_iter()
        .chain([
            with("app", "KEY2").shared_key(),
            with("app2", "KEY").shared_key(),
            with("app", "KEY")
                .environment(Environment::CxoneGov)
                .shared_key(),
        ]) {
            assert_ne!(Some(&key), different.as_ref());
        }
        assert_ne!(
            cc("app").param("audience", "x").unwrap().shared_key(),
            cc("app").param("audience", "y").unwrap().shared_key()
        );
    }

    #[test]
    fn debug_redacts_the_secrets() {
        let text = format!("{:?}", access_key());
        assert!(text.starts_with("AccessKeyGrant {"), "{text}");
        assert!(
            text.contains("KEY") && text.contains("[redacted]"),
            "{text}"
        );
        assert!(
            !text.contains("s3cr3t") && !text.contains("a+b/c=="),
            "{text}"
        );
    }
}
