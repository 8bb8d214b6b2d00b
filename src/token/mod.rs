//! Access tokens and the sources that fetch them: [`AccessToken`], the
//! [`TokenSource`] trait (implement it, or use [`StaticToken`] or
//! [`from_fn`]), the OAuth sources [`AccessKeyGrant`], [`AccessKeyOnly`] (the
//! access key alone) and [`ClientCredentials`], [`Rotating`] for credentials
//! that rotate while the process runs, and [`TenantDiscovery`].
//!
//! ```
//! use cxone_auth::token::{AccessToken, TokenSource, from_fn};
//!
//! let source = from_fn(|| async {
//!     // Read the token from a secrets manager, a file, another service...
//!     AccessToken::new("token-from-elsewhere")
//! });
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let token = source.fetch().await?;
//! assert_eq!(token.header_value(), "Bearer token-from-elsewhere");
//! # Ok::<(), cxone_auth::Error>(()) }).unwrap();
//! ```

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::Error;

mod claims;
mod endpoint;
mod grant;
mod oauth;
pub(crate) mod response;
mod rotating;
mod tenant;
mod transport;

pub use claims::JwtClaims;
pub use endpoint::{Environment, TokenEndpoint};
pub use oauth::{AccessKeyGrant, AccessKeyOnly, ClientAuth, ClientCredentials, OAuthSource};
pub use rotating::Rotating;
pub use tenant::{TenantConfig, TenantDiscovery};
pub use transport::{HttpTransport, ServiceTransport};

/// How long a token is taken to live when the token endpoint sends no
/// `expires_in` and the token is not a JWT with an `exp`.
///
/// Short enough that a wrong guess costs one early refresh; never "forever"
/// (a dead token would be sent until a 401) nor "one second" (a fetch per call).
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The longest lifetime believed. Larger values (a server bug, or a hostile
/// server) are cut to this, so a token is re-fetched at least daily.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest token accepted, in bytes. CXone's JWTs are about 1 KiB; a
/// header this large is already unusual for any server.
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Fetches access tokens.
///
/// The [`TokenCache`](crate::TokenCache) calls [`fetch`](Self::fetch) when it
/// needs a token, never more than once at a time per cache. A source does not
/// cache; it asks.
pub trait TokenSource: Send + Sync + 'static {
    /// Asks for a new token, with [`AccessToken::with_requested_at`] set to
    /// when the request was sent. Any [`ErrorKind`](crate::ErrorKind) may be
    /// returned ([`Error::new`]); transient ones say trying again may help.
    fn fetch(&self) -> impl Future<Output = Result<AccessToken, Error>> + Send;

    /// A stable key naming this credential, for stores shared between
    /// processes. It must identify the token URL, grant, client and scopes,
    /// and must never contain a secret. `None` (the default) keeps tokens out
    /// of shared stores.
    fn shared_key(&self) -> Option<String> {
        None
    }
}

/// The object-safe twin of [`TokenSource`], which the cache stores.
pub(crate) trait DynTokenSource: Send + Sync + 'static {
    fn fetch_boxed(&self) -> BoxFuture<'_, Result<AccessToken, Error>>;
    fn shared_key(&self) -> Option<String>;
}

impl<T: TokenSource> DynTokenSource for T {
    fn fetch_boxed(&self) -> BoxFuture<'_, Result<AccessToken, Error>> {
        Box::pin(self.fetch())
    }

    fn shared_key(&self) -> Option<String> {
        TokenSource::shared_key(self)
    }
}

/// A token supplied by the user, for tests and for tokens minted elsewhere:
/// each fetch hands out the same value as a newly requested token, living
/// the given lifetime, by default as [`AccessToken::new`] says.
///
/// ```
/// use cxone_auth::token::StaticToken;
///
/// let source = StaticToken::new("my-token");
/// assert_eq!(format!("{source:?}"), "StaticToken { token: \"[redacted]\", lifetime: None }");
/// ```
#[derive(Clone)]
pub struct StaticToken {
    token: SecretString,
    lifetime: Option<Duration>,
}

impl StaticToken {
    /// A source that always yields `token`.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: SecretString::from(token.into()),
            lifetime: None,
        }
    }

    /// Sets the lifetime each fetched token is given.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticToken")
            .field("token", &"[redacted]")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl TokenSource for StaticToken {
    async fn fetch(&self) -> Result<AccessToken, Error> {
        let token = AccessToken::new(self.token.expose_secret())?;
        Ok(match self.lifetime {
            Some(lifetime) => token.with_lifetime(lifetime),
            None => token,
        })
    }
}

/// A [`TokenSource`] that calls `fetch` for each token; see the example in
/// the [module docs](self).
pub fn from_fn<F, Fut>(fetch: F) -> impl TokenSource + fmt::Debug
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<AccessToken, Error>> + Send,
{
    FnSource { fetch }
}

/// The source [`from_fn`] builds.
struct FnSource<F> {
    fetch: F,
}

impl<F> fmt::Debug for FnSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnSource").finish_non_exhaustive()
    }
}

impl<F, Fut> TokenSource for FnSource<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<AccessToken, Error>> + Send,
{
    fn fetch(&self) -> impl Future<Output = Result<AccessToken, Error>> + Send {
        (self.fetch)()
    }
}

/// A bearer access token: the value, a pre-built sensitive header, its
/// lifetime on tokio's clock, the scopes granted, the JWT claims, and what
/// the token endpoint sent beside it (refresh token, id token, CXone's
/// `resource_server_base_uri`). `Debug` never shows the value, the refresh
/// token or the id token.
///
/// ```
/// use std::time::Duration;
/// use cxone_auth::AccessToken;
///
/// let token = AccessToken::new("opaque-token-value")?
///     .with_lifetime(Duration::from_secs(3600))
///     .with_scopes(["openid"]);
/// assert_eq!(token.lifetime(), Duration::from_secs(3600));
/// assert_eq!(format!("{token:?}").contains("opaque-token-value"), false);
/// # Ok::<(), cxone_auth::Error>(())
/// ```
#[derive(Clone)]
pub struct AccessToken {
    value: SecretString,
    header: HeaderValue,
    requested_at: Instant,
    lifetime: Duration,
    scopes: Vec<String>,
    claims: Option<JwtClaims>,
    extras: Option<Box<TokenExtras>>,
}

/// What a token response may carry beside the access token; boxed, as
/// custom sources and tests seldom have any.
#[derive(Clone, Default)]
pub(crate) struct TokenExtras {
    pub(crate) refresh_token: Option<SecretString>,
    pub(crate) id_token: Option<(SecretString, JwtClaims)>,
    pub(crate) resource_server_base_uri: Option<String>,
}

impl AccessToken {
    /// Wraps a token value, requested now, living until the JWT `exp` claim
    /// if there is one, else 5 minutes (a wrong guess costs one early
    /// refresh); see [`with_lifetime`](Self::with_lifetime).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidResponse`](crate::ErrorKind::InvalidResponse) when
    /// the value is empty, longer than 16 KiB, or holds anything but visible
    /// ASCII (a CR or LF must never reach a header).
    pub fn new(value: impl Into<String>) -> Result<Self, Error> {
        let value = value.into();
        if value.is_empty() {
            return Err(Error::invalid_response("the access token is empty"));
        }
        if value.len() > MAX_TOKEN_BYTES {
            return Err(Error::invalid_response(format!(
                "the access token is longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid_response(
                "the access token holds whitespace, control or non-ASCII characters",
            ));
        }
        let header = bearer_header(&value)?;
        let claims = JwtClaims::from_jwt(&value);
        let lifetime = claims
            .as_ref()
            .and_then(JwtClaims::exp)
            .map(lifetime_until)
            .unwrap_or(DEFAULT_LIFETIME);
        Ok(Self {
            value: SecretString::from(value),
            header,
            requested_at: Instant::now(),
            lifetime,
            scopes: Vec::new(),
            claims,
            extras: None,
        })
    }

    /// Sets how long the token lives from [`requested_at`](Self::requested_at),
    /// cut to 24 hours (a larger value is a server bug, or hostile).
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime.min(MAX_LIFETIME);
        self
    }

    /// Sets when the token was requested. Sources set it to the moment the
    /// request was sent, so network time counts against the lifetime.
    pub fn with_requested_at(mut self, requested_at: Instant) -> Self {
        self.requested_at = requested_at;
        self
    }

    /// Sets the scopes the server granted.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The token value. Keep it out of logs.
    pub fn secret(&self) -> &str {
        self.value.expose_secret()
    }

    /// `Bearer <token>`, marked sensitive so HTTP/2 never indexes it and
    /// `Debug` hides it. Cloning it does not allocate.
    pub fn header_value(&self) -> &HeaderValue {
        &self.header
    }

    /// When the token was requested.
    pub fn requested_at(&self) -> Instant {
        self.requested_at
    }

    /// How long the token lives, counted from [`requested_at`](Self::requested_at).
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// When the token expires.
    pub fn expires_at(&self) -> Instant {
        self.requested_at + self.lifetime
    }

    /// The scopes the server granted (empty when it did not say).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The JWT claims, when the token is a JWT.
    pub fn claims(&self) -> Option<&JwtClaims> {
        self.claims.as_ref()
    }

    /// The refresh token the server sent (or, when a refresh answer had
    /// none, the one that was used). Keep it out of logs.
    pub fn refresh_token(&self) -> Option<&str> {
        let extras = self.extras.as_deref()?;
        Some(extras.refresh_token.as_ref()?.expose_secret())
    }

    /// The OpenID Connect id token the server sent, a JWT. Keep it out of logs.
    pub fn id_token(&self) -> Option<&str> {
        let extras = self.extras.as_deref()?;
        Some(extras.id_token.as_ref()?.0.expose_secret())
    }

    /// The CXone tenant: the access token's `tenantId` claim, else the id
    /// token's.
    pub fn tenant_id(&self) -> Option<&str> {
        let id_claims = || self.extras.as_deref()?.id_token.as_ref()?.1.tenant_id();
        self.claims()
            .and_then(JwtClaims::tenant_id)
            .or_else(id_claims)
    }

    /// The API base URL the access-key endpoint names on older clusters
    /// (`resource_server_base_uri`), checked to be https.
    pub fn resource_server_base_uri(&self) -> Option<&str> {
        self.extras.as_deref()?.resource_server_base_uri.as_deref()
    }

    pub(crate) fn extras_mut(&mut self) -> &mut TokenExtras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// Whether `other` is the same token value.
    pub fn same_token(&self, other: &AccessToken) -> bool {
        self.secret() == other.secret()
    }
}

fn bearer_header(value: &str) -> Result<HeaderValue, Error> {
    let bytes = Bytes::from(format!("Bearer {value}").into_bytes());
    let mut header = HeaderValue::from_maybe_shared(bytes)
        .map_err(|_| Error::invalid_response("the access token is not a valid header value"))?;
    header.set_sensitive(true);
    // The first clone of a `Bytes` built from a `Vec` moves it to shared
    // storage (one allocation). Doing it here keeps every clone on the request
    // path allocation-free.
    drop(header.clone());
    Ok(header)
}

/// The time left until `exp` on the wall clock, as a monotonic duration.
fn lifetime_until(exp: i64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let left = u64::try_from(exp).unwrap_or(0).saturating_sub(now);
    Duration::from_secs(left).min(MAX_LIFETIME)
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"[redacted]")
            .field("lifetime", &self.lifetime)
            .field("scopes", &self.scopes)
            .field("claims", &self.claims)
            .field("refresh_token", &self.refresh_token().map(|_| "[redacted]"))
            .field("id_token", &self.id_token().map(|_| "[redacted]"))
            .field("resource_server_base_uri", &self.resource_server_base_uri())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::ErrorKind;

    #[tokio::test(start_paused = true)]
    async fn static_token_is_fresh_each_fetch() {
        let source = StaticToken::new("abc").lifetime(Duration::from_secs(60));
        let first = source.fetch().await.unwrap();
        tokio::time::advance(Duration::from_secs(30)).await;
        let second = source.fetch().await.unwrap();
        assert_eq!(second.secret(), "abc");
        assert_eq!(second.lifetime(), Duration::from_secs(60));
        assert_eq!(
            second.requested_at() - first.requested_at(),
            Duration::from_secs(30)
        );
    }

    #[tokio::test]
    async fn any_source_is_a_dyn_source() {
        let source: Arc<dyn DynTokenSource> = Arc::new(from_fn(|| async {
            Err::<AccessToken, _>(Error::new(ErrorKind::Unavailable, "vault down"))
        }));
        let err = source.fetch_boxed().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(source.shared_key(), None);
        let source: Arc<dyn DynTokenSource> = Arc::new(StaticToken::new("x"));
        assert_eq!(source.fetch_boxed().await.unwrap().secret(), "x");
    }

    #[test]
    fn refuses_values_that_cannot_be_headers() {
        for bad in ["", "abc\r\nX-Evil: 1", "a b", "tok\u{e9}n", "tab\t"] {
            let err = AccessToken::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{bad:?}");
        }
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(AccessToken::new(huge).is_err());
        assert!(AccessToken::new("a".repeat(MAX_TOKEN_BYTES)).is_ok());
    }

    #[test]
    fn header_is_sensitive_bearer() {
        let token = AccessToken::new("abc.def-ghi_~+/=").unwrap();
        assert_eq!(token.header_value(), "Bearer abc.def-ghi_~+/=");
        assert!(token.header_value().is_sensitive());
        assert!(!format!("{token:?}").contains("abc.def"));
    }

    #[tokio::test(start_paused = true)]
    async fn lifetime_defaults_from_exp_then_bounded_default() {
        let opaque = AccessToken::new("opaque").unwrap();
        assert_eq!(opaque.lifetime(), DEFAULT_LIFETIME);

        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{}}}"#, now + 600));
        let jwt = AccessToken::new(format!("e30.{payload}.sig")).unwrap();
        let secs = jwt.lifetime().as_secs();
        assert!((598..=600).contains(&secs), "{secs}");

        let expired = URL_SAFE_NO_PAD.encode(r#"{"exp":5}"#);
        let expired = AccessToken::new(format!("e30.{expired}.sig")).unwrap();
        assert_eq!(expired.lifetime(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn lifetime_is_capped_and_counted_from_request() {
        let start = Instant::now();
        let token = AccessToken::new("t")
            .unwrap()
            .with_requested_at(start)
            .with_lifetime(Duration::from_secs(u64::MAX / 4));
        assert_eq!(token.lifetime(), MAX_LIFETIME);
        assert_eq!(token.expires_at(), start + MAX_LIFETIME);
    }
}
