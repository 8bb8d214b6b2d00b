//! The request/response path both OAuth 2.0 grants share.
//!
//! [`AccessKeyGrant`](crate::token::AccessKeyGrant) and
//! [`ClientCredentials`](crate::token::ClientCredentials) differ only in the
//! form fields of their grant. Everything else — the endpoint and its
//! discovery, client authentication, scopes, the transport, the timeout, the
//! response rules, the tracing span and the shared-store key — lives here
//! once, and so do the builder methods both expose:
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::token::{ClientAuth, ClientCredentials, Environment};
//!
//! let source = ClientCredentials::new("my-app", "my-secret")?
//!     .environment(Environment::CxoneGov)
//!     .client_auth(ClientAuth::Body)
//!     .scopes(["openid", "agents:read"])
//!     .timeout(Duration::from_secs(20));
//! # Ok::<(), cxone_auth::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Uri};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use tokio::time::Instant;
use tracing::Instrument as _;
use tracing::field::Empty;
use url::{Url, form_urlencoded};

use crate::token::client_auth::basic_header;
use crate::token::discovery::discover_token_endpoint;
use crate::token::http_client::HttpClient;
use crate::token::response::token_from_response;
use crate::token::tenant::TenantDiscovery;
use crate::token::{ClientAuth, HttpTransport, TokenEndpoint};
use crate::{AccessToken, Error};

/// The configuration and state both grants share.
#[derive(Clone)]
pub(crate) struct TokenClient {
    endpoint: TokenEndpoint,
    /// The token URL found by OpenID discovery, shared by clones; replaced
    /// when the endpoint changes.
    discovered: Arc<OnceCell<Url>>,
    client_id: String,
    client_secret: SecretString,
    client_auth: ClientAuth,
    scopes: Vec<String>,
    http: HttpClient,
}

impl TokenClient {
    /// A client of `client_id`, already checked.
    pub(crate) fn new(client_id: String, client_secret: SecretString) -> Self {
        Self {
            endpoint: TokenEndpoint::default(),
            discovered: Arc::default(),
            client_id,
            client_secret,
            client_auth: ClientAuth::default(),
            scopes: Vec::new(),
            http: HttpClient::new(),
        }
    }

    pub(crate) fn set_endpoint(&mut self, endpoint: TokenEndpoint) {
        self.endpoint = endpoint;
        self.discovered = Arc::default();
    }

    pub(crate) fn set_client_auth(&mut self, client_auth: ClientAuth) {
        self.client_auth = client_auth;
    }

    /// Replaces the scopes. Each item may itself hold several scopes
    /// separated by spaces; duplicates are dropped, order is kept.
    pub(crate) fn set_scopes<I, S>(&mut self, scopes: I)
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
    }

    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.http.set_timeout(timeout);
    }

    pub(crate) fn set_connect_timeout(&mut self, timeout: Duration) {
        self.http.set_connect_timeout(timeout);
    }

    pub(crate) fn set_transport(&mut self, transport: impl HttpTransport) {
        self.http.set_transport(transport);
    }

    pub(crate) fn endpoint(&self) -> &TokenEndpoint {
        &self.endpoint
    }

    pub(crate) fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Tenant discovery under this source's endpoint, through its transport.
    pub(crate) fn tenant_discovery(&self) -> TenantDiscovery {
        TenantDiscovery::with_client(self.endpoint.base_url().clone(), self.http.clone())
    }

    /// Asks for a token with `grant_type` and the grant's own form `fields`.
    pub(crate) async fn fetch(
        &self,
        grant_type: &'static str,
        fields: &[(&str, &str)],
    ) -> Result<AccessToken, Error> {
        // The token URL's host; before the first discovery, the issuer's.
        let host = self
            .endpoint
            .token_url()
            .or_else(|| self.discovered.get())
            .unwrap_or_else(|| self.endpoint.base_url())
            .host_str();
        let span = tracing::info_span!(
            "cxone_auth.fetch_token",
            grant = grant_type,
            host,
            outcome = Empty,
            duration_ms = Empty,
            scopes = Empty,
        );
        let started = Instant::now();
        let result = self
            .http
            .within_timeout("the token request", self.exchange(grant_type, fields))
            .instrument(span.clone())
            .await;
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

    async fn exchange(
        &self,
        grant_type: &str,
        fields: &[(&str, &str)],
    ) -> Result<AccessToken, Error> {
        let transport = self.http.transport()?;
        let token_url = self.token_url(&*transport).await?;
        let request = self.request(token_url, grant_type, fields)?;
        let requested_at = Instant::now();
        let response = transport.send(request).await?;
        token_from_response(&response, requested_at, &self.scopes)
    }

    /// The configured token URL, or the discovered one (discovered once).
    async fn token_url(&self, transport: &dyn HttpTransport) -> Result<&Url, Error> {
        if let Some(url) = self.endpoint.token_url() {
            return Ok(url);
        }
        let Some(issuer) = self.endpoint.issuer() else {
            return Err(Error::config(
                "the token endpoint has no token URL and no issuer",
            ));
        };
        // Within the fetch's timeout; a failure leaves the cell empty, so the
        // next fetch discovers again.
        self.discovered
            .get_or_try_init(|| discover_token_endpoint(transport, issuer))
            .await
    }

    /// The token request: `grant_type`, the grant's fields, `scope`, and the
    /// client credentials in the header or the body.
    fn request(
        &self,
        token_url: &Url,
        grant_type: &str,
        fields: &[(&str, &str)],
    ) -> Result<Request<Bytes>, Error> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", grant_type);
        form.extend_pairs(fields);
        if !self.scopes.is_empty() {
            form.append_pair("scope", &self.scopes.join(" "));
        }
        if self.client_auth == ClientAuth::Body {
            form.append_pair("client_id", &self.client_id);
            form.append_pair("client_secret", self.client_secret.expose_secret());
        }
        let uri = Uri::try_from(token_url.as_str()).map_err(|err| {
            Error::config("the token URL is not a valid request URI").with_source(err)
        })?;

        let mut request = Request::new(Bytes::from(form.finish()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.client_auth == ClientAuth::Basic {
            headers.insert(
                AUTHORIZATION,
                basic_header(&self.client_id, self.client_secret.expose_secret()),
            );
        }
        Ok(request)
    }

    /// A hex SHA-256 of what names the credential: endpoint, grant, client,
    /// `subject` (the access key id), sorted scopes and `extra` parameters.
    /// Secrets are not part of it.
    pub(crate) fn shared_key(
        &self,
        grant_type: &str,
        subject: Option<&str>,
        extra: &[(String, String)],
    ) -> String {
        let mut scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        scopes.sort_unstable();
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
        part(&self.endpoint.identity());
        part(grant_type);
        part(&self.client_id);
        part(subject.unwrap_or(""));
        part(&scopes.join(" "));
        for (name, value) in extra {
            part(name);
            part(value);
        }
        hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// The shared fields of a source's `Debug`, secrets redacted.
    pub(crate) fn debug_fields(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("client_auth", &self.client_auth)
            .field("scopes", &self.scopes)
            .field("http", &self.http);
    }
}

/// The builder methods both grants share, written once.
macro_rules! token_client_builder {
    ($source:ident) => {
        impl $source {
            /// Asks the token endpoint of a CXone environment (default
            /// [`Environment::Cxone`](crate::token::Environment::Cxone)).
            pub fn environment(mut self, environment: crate::token::Environment) -> Self {
                self.client.set_endpoint(environment.into());
                self
            }

            /// Asks `endpoint`.
            pub fn endpoint(mut self, endpoint: crate::token::TokenEndpoint) -> Self {
                self.client.set_endpoint(endpoint);
                self
            }

            /// Asks a fixed token URL.
            ///
            /// # Errors
            ///
            /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the URL is
            /// not `https` on a non-loopback host, or not a URL; see
            /// [`TokenEndpoint::url`](crate::token::TokenEndpoint::url).
            pub fn token_url(mut self, token_url: impl AsRef<str>) -> Result<Self, crate::Error> {
                self.client
                    .set_endpoint(crate::token::TokenEndpoint::url(token_url)?);
                Ok(self)
            }

            /// Asks the token endpoint named by `issuer`'s OpenID
            /// configuration, read on the first fetch and remembered.
            ///
            /// # Errors
            ///
            /// [`ErrorKind::Config`](crate::ErrorKind::Config) as for
            /// [`TokenEndpoint::discover`](crate::token::TokenEndpoint::discover).
            pub fn issuer(mut self, issuer: impl AsRef<str>) -> Result<Self, crate::Error> {
                self.client
                    .set_endpoint(crate::token::TokenEndpoint::discover(issuer)?);
                Ok(self)
            }

            /// Where the client id and secret go (default
            /// [`ClientAuth::Basic`](crate::token::ClientAuth::Basic)).
            pub fn client_auth(mut self, client_auth: crate::token::ClientAuth) -> Self {
                self.client.set_client_auth(client_auth);
                self
            }

            /// The scopes to ask for, sent space-separated as `scope` (default:
            /// none, and no `scope` field). Items may themselves be
            /// space-separated lists; duplicates are dropped.
            pub fn scopes<I, S>(mut self, scopes: I) -> Self
            where
                I: IntoIterator<Item = S>,
                S: AsRef<str>,
            {
                self.client.set_scopes(scopes);
                self
            }

            /// The total time one fetch may take, discovery included (default
            /// [`DEFAULT_TIMEOUT`](crate::token::DEFAULT_TIMEOUT)). Past it the
            /// fetch fails with [`ErrorKind::Timeout`](crate::ErrorKind::Timeout).
            pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
                self.client.set_timeout(timeout);
                self
            }

            /// The time a connection may take to open (default
            /// [`DEFAULT_CONNECT_TIMEOUT`](crate::token::DEFAULT_CONNECT_TIMEOUT)).
            /// Applies to the default `reqwest` transport; a transport given
            /// with [`transport`](Self::transport) keeps its own.
            pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
                self.client.set_connect_timeout(timeout);
                self
            }

            /// Sends requests through `transport` instead of the default
            /// `reqwest` client: a `reqwest::Client` of your own, or any tower
            /// service through [`ServiceTransport`](crate::token::ServiceTransport)
            /// (the in-process mock CXone, for example).
            pub fn transport(mut self, transport: impl crate::token::HttpTransport) -> Self {
                self.client.set_transport(transport);
                self
            }

            /// Where this source asks for tokens.
            pub fn token_endpoint(&self) -> &crate::token::TokenEndpoint {
                self.client.endpoint()
            }

            /// The scopes this source asks for.
            pub fn requested_scopes(&self) -> &[String] {
                self.client.scopes()
            }

            /// Finds the tenant of `token` under this source's endpoint (its
            /// issuer, or the origin of its token URL), through its transport
            /// and within its timeout; see [`TenantDiscovery`](crate::token::TenantDiscovery).
            ///
            /// # Errors
            ///
            /// As [`TenantDiscovery::discover`](crate::token::TenantDiscovery::discover).
            pub async fn discover_tenant(
                &self,
                token: &crate::AccessToken,
            ) -> Result<crate::token::TenantConfig, crate::Error> {
                self.client.tenant_discovery().discover(token).await
            }
        }
    };
}

pub(crate) use token_client_builder;

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> TokenClient {
        TokenClient::new("app".into(), SecretString::from("s3cr3t"))
    }

    fn body_of(request: &Request<Bytes>) -> &str {
        std::str::from_utf8(request.body()).unwrap()
    }

    #[test]
    fn basic_request() {
        let mut client = client();
        client.set_scopes(["openid agents:read", "openid"]);
        let url = Url::parse("https://auth.example.com/auth/token").unwrap();
        let request = client
            .request(
                &url,
                "password",
                &[("username", "KEY"), ("password", "a+b/c==")],
            )
            .unwrap();
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri(), "https://auth.example.com/auth/token");
        assert_eq!(
            body_of(&request),
            "grant_type=password&username=KEY&password=a%2Bb%2Fc%3D%3D&scope=openid+agents%3Aread"
        );
        assert_eq!(
            request.headers()[CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        // base64("app:s3cr3t")
        assert_eq!(request.headers()[AUTHORIZATION], "Basic YXBwOnMzY3IzdA==");
        assert!(request.headers()[AUTHORIZATION].is_sensitive());
    }

    #[test]
    fn body_request() {
        let mut client = client();
        client.set_client_auth(ClientAuth::Body);
        let url = Url::parse("https://auth.example.com/t").unwrap();
        let request = client.request(&url, "client_credentials", &[]).unwrap();
        assert_eq!(
            body_of(&request),
            "grant_type=client_credentials&client_id=app&client_secret=s3cr3t"
        );
        assert!(request.headers().get(AUTHORIZATION).is_none());
    }

    #[test]
    fn shared_key_is_stable_secret_free_and_distinguishing() {
        let mut a = client();
        a.set_scopes(["b", "a"]);
        let mut b = client();
        b.set_scopes(["a", "b"]);
        let key = a.shared_key("password", Some("KEY"), &[]);
        assert_eq!(key.len(), 64);
        assert!(key.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            key,
            b.shared_key("password", Some("KEY"), &[]),
            "scope order"
        );
        assert!(!key.contains("s3cr3t"));

        let mut other_secret = TokenClient::new("app".into(), SecretString::from("other"));
        other_secret.set_scopes(["a", "b"]);
        assert_eq!(key, other_secret.shared_key("password", Some("KEY"), &[]));

        let mut other_client = TokenClient::new("app2".into(), SecretString::from("s3cr3t"));
        other_client.set_scopes(["a", "b"]);
        let mut gov = client();
        gov.set_scopes(["a", "b"]);
        gov.set_endpoint(crate::token::Environment::CxoneGov.into());
        let extra = [("audience".to_owned(), "x".to_owned())];
        for different in [
            a.shared_key("client_credentials", Some("KEY"), &[]),
            a.shared_key("password", Some("KEY2"), &[]),
            a.shared_key("password", None, &[]),
            a.shared_key("password", Some("KEY"), &extra),
            other_client.shared_key("password", Some("KEY"), &[]),
            gov.shared_key("password", Some("KEY"), &[]),
        ] {
            assert_ne!(key, different);
        }
    }

    #[test]
    fn debug_redacts_the_secret() {
        let text = format!("{:?}", DebugProbe(client()));
        assert!(text.contains("[redacted]"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    struct DebugProbe(TokenClient);

    impl fmt::Debug for DebugProbe {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let mut d = f.debug_struct("Probe");
            self.0.debug_fields(&mut d);
            d.finish()
        }
    }
}
