//! The crate's one error type: every failure is an [`Error`], whose
//! [`Display`](std::fmt::Display) says what to fix and whose accessors say
//! what happened. A custom token source builds one with [`Error::new`]:
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::{Error, ErrorKind};
//!
//! let err = Error::new(ErrorKind::RateLimited, "the vault is throttling")
//!     .with_retry_after(Duration::from_secs(3));
//! assert!(err.is_transient());
//! assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
//! assert_eq!(
//!     err.to_string(),
//!     "the vault is throttling; rate limited: wait before asking again; retry after 3 s"
//! );
//! ```
//!
//! No error ever holds a secret or a token: response bodies are reduced to the
//! RFC 6749 `error` code and a bounded, sanitized description before they are
//! stored.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// The longest `error_description` kept from a token endpoint, in characters.
///
/// Descriptions are shown to humans; a hostile server must not be able to
/// grow log lines without bound.
const MAX_DESCRIPTION_CHARS: usize = 256;

/// A boxed error from another crate, kept as the [`source`](StdError::source).
pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// An error from `cxone-auth`.
///
/// Cheap to clone: the token cache hands the same failure to every caller that
/// waited on one fetch.
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    status: Option<StatusCode>,
    oauth: Option<OAuthError>,
    retry_after: Option<Duration>,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

/// What went wrong, broadly. Match on it to decide what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is unusable: a missing variable, an empty secret, a
    /// token URL that is not https. Fix the configuration.
    Config,
    /// The identity provider rejected the client id/secret or the access key
    /// (`invalid_client`, HTTP 401).
    InvalidCredentials,
    /// The grant was refused: the access key is wrong or inactive
    /// (`invalid_grant`), or the grant type is not enabled for the app
    /// (`unauthorized_client`, `unsupported_grant_type`).
    GrantRejected,
    /// The requested scopes are not granted to the app (`invalid_scope`).
    InvalidScope,
    /// The identity provider or the API asked us to slow down (HTTP 429).
    RateLimited,
    /// The identity provider failed or is unavailable (HTTP 5xx).
    Unavailable,
    /// The request did not complete in time.
    Timeout,
    /// The connection failed before a response arrived.
    Transport,
    /// The response broke the protocol: not JSON, too large, no
    /// `access_token`, a token type other than Bearer, a redirect.
    InvalidResponse,
    /// The request was refused before it was sent, because its host may not
    /// receive the token.
    HostNotAllowed,
    /// Tenant or OIDC discovery found nothing usable (for example an unknown
    /// tenant id).
    Discovery,
    /// The token endpoint refused the request for another reason
    /// (`invalid_request`, an unknown error code, another 4xx).
    Rejected,
}

/// An RFC 6749 §5.2 error code, as [`Error::oauth_code`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`
    InvalidRequest,
    /// `invalid_client`
    InvalidClient,
    /// `invalid_grant`
    InvalidGrant,
    /// `unauthorized_client`
    UnauthorizedClient,
    /// `unsupported_grant_type`
    UnsupportedGrantType,
    /// `invalid_scope`
    InvalidScope,
    /// A code outside RFC 6749, kept as sent (sanitized and bounded).
    Other(String),
}

impl OAuthErrorCode {
    /// Reads a code as a token endpoint sends it.
    pub(crate) fn parse(code: &str) -> Self {
        let code = sanitize(code, 64);
        let known = [
            Self::InvalidRequest,
            Self::InvalidClient,
            Self::InvalidGrant,
            Self::UnauthorizedClient,
            Self::UnsupportedGrantType,
            Self::InvalidScope,
        ];
        let known = known.into_iter().find(|known| known.as_str() == code);
        known.unwrap_or(Self::Other(code))
    }

    /// The code as RFC 6749 spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::Other(code) => code,
        }
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An RFC 6749 §5.2 error response: the code and, when sent, its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthError {
    code: OAuthErrorCode,
    description: Option<String>,
}

impl OAuthError {
    /// Builds an error from the fields of a token endpoint's response. The
    /// description is sanitized (control characters dropped) and bounded.
    pub(crate) fn new(code: &str, description: Option<&str>) -> Self {
        Self {
            code: OAuthErrorCode::parse(code),
            description: description
                .map(|d| sanitize(d, MAX_DESCRIPTION_CHARS))
                .filter(|d| !d.is_empty()),
        }
    }
}

/// Keeps at most `max` printable characters, so server-sent text cannot forge
/// log lines or grow without bound.
fn sanitize(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// `text` with every one of `secrets` replaced by `[redacted]`, and with a
/// secret's start (4 characters or more) cut where the text was cut short.
fn redact(text: &mut String, secrets: &[String]) {
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        if text.contains(secret.as_str()) {
            *text = text.replace(secret.as_str(), "[redacted]");
        }
        let cut = (4..secret.len())
            .rev()
            .filter(|&len| secret.is_char_boundary(len))
            .find(|&len| text.ends_with(&secret[..len]));
        if let Some(len) = cut {
            text.truncate(text.len() - len);
            text.push_str("[redacted]");
        }
    }
}

impl Error {
    /// This error with `secrets` (in every form a server could echo them)
    /// taken out of the text a server sent: the message, the RFC 6749 code
    /// and description.
    pub(crate) fn redacted(self, secrets: &[String]) -> Self {
        let mut inner = (*self.inner).clone();
        redact(&mut inner.message, secrets);
        if let Some(oauth) = &mut inner.oauth {
            if let OAuthErrorCode::Other(code) = &mut oauth.code {
                redact(code, secrets);
            }
            if let Some(description) = &mut oauth.description {
                redact(description, secrets);
            }
        }
        Self {
            inner: Arc::new(inner),
        }
    }

    /// An error of `kind`, for a custom [`TokenSource`](crate::TokenSource)
    /// to report any failure, transient or not ([`is_transient`](Self::is_transient)).
    /// `message` says what happened and, where it can, what to change; it is
    /// shown as it is, so it must hold no secret.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                kind,
                message: message.into(),
                status: None,
                oauth: None,
                retry_after: None,
                source: None,
            }),
        }
    }

    /// Sets how long the server asked to wait, which
    /// [`retry_after`](Self::retry_after) reports.
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.inner_mut().retry_after = Some(wait);
        self
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub(crate) fn invalid_response(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidResponse, message)
    }

    pub(crate) fn host_not_allowed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::HostNotAllowed, message)
    }

    pub(crate) fn discovery(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Discovery, message)
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    pub(crate) fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    pub(crate) fn transport(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::new(ErrorKind::Transport, message).with_source(source)
    }

    /// A failed response from a token endpoint (or a `.well-known` document),
    /// classified by its status and RFC 6749 error code. An `error` field wins
    /// over the status, because some servers send one with a 200.
    pub(crate) fn from_token_response(
        status: StatusCode,
        oauth: Option<OAuthError>,
        retry_after: Option<Duration>,
    ) -> Self {
        let kind = match oauth.as_ref().map(|oauth| &oauth.code) {
            Some(OAuthErrorCode::InvalidClient) => ErrorKind::InvalidCredentials,
            Some(
                OAuthErrorCode::InvalidGrant
                | OAuthErrorCode::UnauthorizedClient
                | OAuthErrorCode::UnsupportedGrantType,
            ) => ErrorKind::GrantRejected,
            Some(OAuthErrorCode::InvalidScope) => ErrorKind::InvalidScope,
            _ => match status {
                StatusCode::UNAUTHORIZED => ErrorKind::InvalidCredentials,
                StatusCode::TOO_MANY_REQUESTS => ErrorKind::RateLimited,
                StatusCode::REQUEST_TIMEOUT => ErrorKind::Timeout,
                s if s.is_server_error() => ErrorKind::Unavailable,
                _ => ErrorKind::Rejected,
            },
        };
        let mut err = Self::new(kind, "").with_status(status);
        let inner = err.inner_mut();
        inner.oauth = oauth;
        inner.retry_after = retry_after;
        err
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner_mut().source = Some(Arc::from(source.into()));
        self
    }

    /// Sets the message, for errors built from a status alone.
    pub(crate) fn with_message(mut self, message: impl Into<String>) -> Self {
        self.inner_mut().message = message.into();
        self
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.inner_mut().status = Some(status);
        self
    }

    /// Copy on write: an error already shared is copied before it changes.
    fn inner_mut(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.inner)
    }

    /// What went wrong, broadly.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The HTTP status the server answered with, when there was a response.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The RFC 6749 `error` code the token endpoint sent, if it sent one.
    pub fn oauth_code(&self) -> Option<&OAuthErrorCode> {
        self.inner.oauth.as_ref().map(|oauth| &oauth.code)
    }

    /// The token endpoint's `error_description`, sanitized and bounded, if it
    /// sent one.
    pub fn oauth_description(&self) -> Option<&str> {
        self.inner.oauth.as_ref()?.description.as_deref()
    }

    /// How long the server asked us to wait (`Retry-After` on a 429 or 503).
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// Whether trying again later, with the same configuration, may succeed.
    ///
    /// Rate limits, 5xx answers, timeouts, connection failures and garbled
    /// responses are transient; rejected credentials, grants and scopes, bad
    /// configuration and refused hosts are not.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::RateLimited
                | ErrorKind::Unavailable
                | ErrorKind::Timeout
                | ErrorKind::Transport
                | ErrorKind::InvalidResponse
        )
    }

    /// Whether the failure was a timeout.
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout
    }

    /// What the user should do about this error.
    fn advice(&self) -> &'static str {
        if self.inner.status == Some(StatusCode::FORBIDDEN) && self.inner.oauth.is_none() {
            // CXone grants by role, not by OAuth scope.
            return "forbidden: the role of the CXone user who owns the access key lacks a permission; \
                    grant it to that role (requesting other OAuth scopes does not help)";
        }
        match self.inner.kind {
            ErrorKind::InvalidCredentials => {
                "check the client id and secret (and the access key id and secret) and that the app and the key are active"
            }
            ErrorKind::GrantRejected => {
                "check that the access key is active and that this grant type is enabled for the app in its registration"
            }
            ErrorKind::InvalidScope => {
                "drop the scopes requested, or ask only for `openid`: what a CXone token may do comes from the role of the user who owns the access key"
            }
            ErrorKind::RateLimited => "rate limited: wait before asking again",
            ErrorKind::Unavailable => "the server is unavailable: try again later",
            ErrorKind::Timeout => "the request timed out: check connectivity or raise the timeout",
            ErrorKind::Transport => "could not reach the server: check the URL, DNS and network",
            ErrorKind::InvalidResponse => {
                "the server's answer is not a valid OAuth 2.0 token response"
            }
            ErrorKind::HostNotAllowed => {
                "add the host to the layer's allowed hosts if it should receive CXone tokens"
            }
            ErrorKind::Discovery => "check the issuer URL or the tenant id",
            ErrorKind::Config | ErrorKind::Rejected => "",
        }
    }
}

impl fmt::Display for Error {
    /// The parts that are present, joined by `; `: message, status, RFC 6749
    /// error, advice, `Retry-After`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let oauth = inner.oauth.as_ref().map(|oauth| match &oauth.description {
            Some(description) => format!("{}: {description}", oauth.code),
            None => oauth.code.to_string(),
        });
        let parts = [
            Some(inner.message.clone()),
            inner
                .status
                .map(|status| format!("HTTP {}", status.as_u16())),
            oauth,
            Some(self.advice().to_owned()),
            inner
                .retry_after
                .map(|wait| format!("retry after {} s", wait.as_secs_f64().ceil())),
        ];
        let parts: Vec<String> = parts
            .into_iter()
            .flatten()
            .filter(|p| !p.is_empty())
            .collect();
        f.write_str(&parts.join("; "))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("Error")
            .field("kind", &inner.kind)
            .field("message", &inner.message)
            .field("status", &inner.status)
            .field("oauth", &inner.oauth)
            .field("retry_after", &inner.retry_after)
            .field("source", &inner.source)
            .finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_code_wins_over_status() {
        let err = Error::from_token_response(
            StatusCode::OK,
            Some(OAuthError::new("invalid_scope", Some("scope x"))),
            None,
        );
        assert_eq!(err.kind(), ErrorKind::InvalidScope);
        assert!(!err.is_transient());
        assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::InvalidScope));
        assert_eq!(err.oauth_description(), Some("scope x"));
        assert!(err.to_string().contains("invalid_scope: scope x"));
    }

    #[test]
    fn status_classifies_when_no_code() {
        let cases = [
            (StatusCode::UNAUTHORIZED, ErrorKind::InvalidCredentials),
            (StatusCode::FORBIDDEN, ErrorKind::Rejected),
            (StatusCode::TOO_MANY_REQUESTS, ErrorKind::RateLimited),
            (StatusCode::REQUEST_TIMEOUT, ErrorKind::Timeout),
            (StatusCode::SERVICE_UNAVAILABLE, ErrorKind::Unavailable),
            (StatusCode::BAD_REQUEST, ErrorKind::Rejected),
        ];
        for (status, kind) in cases {
            let err = Error::from_token_response(status, None, None);
            assert_eq!(err.kind(), kind);
            assert_eq!(err.status(), Some(status));
            assert_eq!(err.oauth_code(), None);
        }
        let forbidden = Error::from_token_response(StatusCode::FORBIDDEN, None, None).to_string();
        assert!(forbidden.contains("role of the CXone user who owns the access key"));
        assert!(!forbidden.contains("scopes granted"), "{forbidden}");
    }

    #[test]
    fn rate_limit_says_how_long() {
        let err = Error::from_token_response(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            Some(Duration::from_secs(7)),
        );
        assert!(err.is_transient());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert!(err.to_string().contains("retry after 7 s"), "{err}");
    }

    #[test]
    fn new_errors_of_any_kind() {
        let err = Error::new(ErrorKind::Unavailable, "the vault is down");
        assert!(err.is_transient() && !err.is_timeout());
        assert_eq!(err.status(), None);
        assert_eq!(
            err.to_string(),
            "the vault is down; the server is unavailable: try again later"
        );
        let config = Error::new(ErrorKind::Config, "CXONE_CLIENT_ID is not set");
        assert!(!config.is_transient());
        assert_eq!(config.to_string(), "CXONE_CLIENT_ID is not set");
        assert!(Error::new(ErrorKind::Timeout, "slow").is_timeout());
    }

    #[test]
    fn changing_a_shared_error_leaves_the_other_copy_alone() {
        let shared = Error::new(ErrorKind::RateLimited, "slow down");
        let copy = shared.clone();
        let changed = shared
            .with_retry_after(Duration::from_secs(2))
            .with_source(std::io::Error::other("cause"));
        assert_eq!(changed.retry_after(), Some(Duration::from_secs(2)));
        assert!(changed.source().is_some());
        assert_eq!(copy.retry_after(), None);
        assert!(copy.source().is_none());
        assert_eq!(copy.clone().to_string(), copy.to_string());
    }

    #[test]
    fn descriptions_are_sanitized_and_bounded() {
        let long = format!("a\r\nInjected: yes{}", "x".repeat(10_000));
        let oauth = OAuthError::new("invalid_request\n", Some(&long));
        assert_eq!(oauth.code.as_str(), "invalid_request");
        let description = oauth.description.unwrap();
        assert!(!description.contains('\n'));
        assert_eq!(description.chars().count(), MAX_DESCRIPTION_CHARS);
        assert_eq!(
            OAuthErrorCode::parse("x-custom"),
            OAuthErrorCode::Other("x-custom".into())
        );
    }
}
