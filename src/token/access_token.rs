//! [`AccessToken`]: a bearer token, when it was asked for, and when it ends.
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::AccessToken;
//!
//! let token = AccessToken::new("opaque-token-value")?
//!     .with_lifetime(Duration::from_secs(3600))
//!     .with_scopes(["openid"]);
//! assert_eq!(token.lifetime(), Duration::from_secs(3600));
//! assert_eq!(format!("{token:?}").contains("opaque-token-value"), false);
//! # Ok::<(), cxone_auth::Error>(())
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::JwtClaims;
use crate::Error;

/// How long a token is taken to live when the token endpoint sends no
/// `expires_in` and the token is not a JWT with an `exp`.
///
/// Short enough that a wrong guess costs one early refresh; never "forever"
/// (a dead token would be sent until a 401) nor "one second" (a fetch per call).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The longest lifetime believed. Larger values (a server bug, or a hostile
/// server) are cut to this, so a token is re-fetched at least daily.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest token accepted, in bytes. CXone's JWTs are about 1 KiB; a
/// header this large is already unusual for any server.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A bearer access token.
///
/// Holds the secret value, a pre-built sensitive `Authorization` header, when
/// the token was requested and how long it lives (on tokio's monotonic clock,
/// so tests can pause time), the scopes granted, and the JWT claims when the
/// token is a JWT. `Debug` never shows the value.
#[derive(Clone)]
pub struct AccessToken {
    value: SecretString,
    header: HeaderValue,
    requested_at: Instant,
    lifetime: Duration,
    scopes: Vec<String>,
    claims: Option<JwtClaims>,
}

impl AccessToken {
    /// Wraps a token value, requested now.
    ///
    /// Its lifetime is read from the JWT `exp` claim when there is one, else
    /// [`DEFAULT_LIFETIME`]; override it with [`with_lifetime`](Self::with_lifetime)
    /// when the token endpoint sends `expires_in`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidResponse`](crate::ErrorKind::InvalidResponse) when
    /// the value is empty, longer than [`MAX_TOKEN_BYTES`], or holds anything
    /// but visible ASCII (a CR or LF must never reach a header).
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
        })
    }

    /// Sets how long the token lives from [`requested_at`](Self::requested_at),
    /// cut to [`MAX_LIFETIME`].
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
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::ErrorKind;

    #[test]
    fn refuses_values_that_cannot_be_headers() {
        for bad in ["", "abc\r\nX-Evil: 1", "a b", "tok\u{e9}n", "tab\t"] {
            let err = AccessToken::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{bad:?}");
        }
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(AccessToken::new(huge).is_err());
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
