//! What the mock saw: [`MockStats`] counters and each [`RecordedTokenRequest`].
//!
//! ```
//! use cxone_auth::mock::MockCxone;
//!
//! let cxone = MockCxone::new();
//! let stats = cxone.stats();
//! assert_eq!(stats.token_requests, 0);
//! assert!(cxone.token_requests().is_empty());
//! ```

use std::fmt;

use http::HeaderValue;
use tokio::time::Instant;

use super::client_auth::decode_basic;

/// Counts of the requests the mock answered, by outcome. A snapshot: take
/// another with [`MockCxone::stats`](super::MockCxone::stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MockStats {
    /// Every `POST /auth/token` received.
    pub token_requests: u64,
    /// Token requests answered with a token.
    pub token_succeeded: u64,
    /// Token requests answered with an error or an injected fault.
    pub token_failed: u64,
    /// Every request to an API route (`agents`, `server-time`).
    pub api_calls: u64,
    /// API calls answered 2xx.
    pub api_ok: u64,
    /// API calls answered 401: no, unknown, revoked or expired token.
    pub api_unauthorized: u64,
    /// API calls answered 429 by [`rate_limit_next_api_calls`](super::MockCxone::rate_limit_next_api_calls).
    pub api_rate_limited: u64,
}

/// One token request as the mock received it.
///
/// `Debug` redacts the `Authorization` header and the secret form fields;
/// the accessors give them in full for assertions.
#[derive(Clone)]
pub struct RecordedTokenRequest {
    pub(super) authorization: Option<HeaderValue>,
    pub(super) content_type: Option<HeaderValue>,
    pub(super) body: bytes::Bytes,
    pub(super) form: Vec<(String, String)>,
    pub(super) received_at: Instant,
}

/// Form fields whose values `Debug` hides.
const SECRET_FIELDS: [&str; 4] = [
    "password",
    "client_secret",
    "refresh_token",
    "subject_token",
];

impl RecordedTokenRequest {
    /// The `Authorization` header as received, if any (lossy if not UTF-8).
    pub fn authorization(&self) -> Option<String> {
        self.authorization
            .as_ref()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    }

    /// The client id and secret of the `Authorization` header, decoded as
    /// RFC 6749 §2.3.1 says; `None` without a valid Basic header.
    pub fn basic_credentials(&self) -> Option<(String, String)> {
        self.authorization.as_ref().and_then(decode_basic)
    }

    /// The `Content-Type` header as received, if any.
    pub fn content_type(&self) -> Option<String> {
        self.content_type
            .as_ref()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The form fields, decoded, in the order received.
    pub fn form(&self) -> &[(String, String)] {
        &self.form
    }

    /// The first value of the form field `name`, decoded.
    pub fn form_value(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// When the request arrived, on tokio's clock.
    pub fn received_at(&self) -> Instant {
        self.received_at
    }
}

impl fmt::Debug for RecordedTokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let form: Vec<(&str, &str)> = self
            .form
            .iter()
            .map(|(key, value)| {
                let shown = if SECRET_FIELDS.contains(&key.as_str()) {
                    "[redacted]"
                } else {
                    value.as_str()
                };
                (key.as_str(), shown)
            })
            .collect();
        f.debug_struct("RecordedTokenRequest")
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "[redacted]"),
            )
            .field("content_type", &self.content_type)
            .field("form", &form)
            .field("received_at", &self.received_at)
            .finish()
    }
}
