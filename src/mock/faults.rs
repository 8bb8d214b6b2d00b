//! [`TokenFault`]: how the token endpoint misbehaves, for the next few
//! requests.
//!
//! A fault replaces the token endpoint's answer with another status, body,
//! content type and headers, after an optional delay on tokio's clock. A
//! fault that only sets a delay ([`TokenFault::slow`]) answers normally, late.
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::mock::{MockCxone, TokenFault};
//!
//! let cxone = MockCxone::new();
//! // Two 503s asking for 2 s of patience, then one HTML error page, then tokens.
//! cxone.fail_next_token_requests(2, TokenFault::unavailable(Duration::from_secs(2)));
//! cxone.fail_next_token_requests(1, TokenFault::html().with_status(502));
//! assert_eq!(cxone.pending_token_faults(), 3);
//! ```

use std::fmt;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, PRAGMA, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// The size of each chunk of a streamed [`TokenFault::huge_body`].
const HUGE_BODY_CHUNK: usize = 64 * 1024;

/// A misbehaviour of the token endpoint, queued with
/// [`MockCxone::fail_next_token_requests`](super::MockCxone::fail_next_token_requests).
///
/// Start from a constructor and adjust with the `with_*` methods.
#[derive(Clone)]
pub struct TokenFault {
    answer: Option<Answer>,
    delay: Duration,
    headers: HeaderMap,
}

#[derive(Clone)]
struct Answer {
    status: StatusCode,
    body: FaultBody,
    content_type: Option<HeaderValue>,
}

#[derive(Clone)]
enum FaultBody {
    Bytes(Bytes),
    /// `len` bytes streamed in chunks, never held in memory at once.
    Huge(u64),
}

impl TokenFault {
    fn answer(status: StatusCode, body: FaultBody, content_type: Option<&'static str>) -> Self {
        Self {
            answer: Some(Answer {
                status,
                body,
                content_type: content_type.map(HeaderValue::from_static),
            }),
            delay: Duration::ZERO,
            headers: HeaderMap::new(),
        }
    }

    /// Answers `status` with an empty body.
    ///
    /// # Panics
    ///
    /// When `status` is not a valid HTTP status code (100 to 999).
    pub fn status(status: u16) -> Self {
        Self::answer(valid_status(status), FaultBody::Bytes(Bytes::new()), None)
    }

    /// Answers `200 OK` with `body` as `application/json` (change either with
    /// [`with_status`](Self::with_status) and
    /// [`with_content_type`](Self::with_content_type)): a body that is not a
    /// token response, an `access_token` with CR/LF in it, a negative
    /// `expires_in`, `{"error": ...}` on a 200, and so on.
    pub fn body(body: impl Into<Bytes>) -> Self {
        Self::answer(
            StatusCode::OK,
            FaultBody::Bytes(body.into()),
            Some("application/json"),
        )
    }

    /// Answers an RFC 6749 §5.2 error: `status` with
    /// `{"error": code, "error_description": description}`.
    ///
    /// # Panics
    ///
    /// When `status` is not a valid HTTP status code (100 to 999).
    pub fn oauth_error(status: u16, code: &str, description: &str) -> Self {
        let body = serde_json::json!({ "error": code, "error_description": description });
        Self::body(body.to_string()).with_status(status)
    }

    /// Answers `429 Too Many Requests` with `Retry-After` and an empty body.
    pub fn rate_limited(retry_after: Duration) -> Self {
        Self::status(429).with_retry_after(retry_after)
    }

    /// Answers `503 Service Unavailable` with `Retry-After` and an empty body.
    pub fn unavailable(retry_after: Duration) -> Self {
        Self::status(503).with_retry_after(retry_after)
    }

    /// Answers `200 OK` with an HTML page, as a captive portal or a
    /// misrouted proxy does. Add [`with_status`](Self::with_status) for a
    /// `502` error page.
    pub fn html() -> Self {
        Self::answer(
            StatusCode::OK,
            FaultBody::Bytes(Bytes::from_static(
                b"<!DOCTYPE html><html><head><title>Gateway</title></head>\
                  <body><h1>Something went wrong</h1></body></html>",
            )),
            Some("text/html; charset=utf-8"),
        )
    }

    /// Answers `200 OK` with a JSON token response cut off in the middle.
    pub fn truncated_json() -> Self {
        Self::body(r#"{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJ0ZW5hbnRJZCI6"#)
    }

    /// Answers `200 OK` with a body of `len` bytes, streamed without holding
    /// it in memory and announced by `Content-Length`, to test that a client
    /// caps what it reads.
    pub fn huge_body(len: u64) -> Self {
        Self::answer(
            StatusCode::OK,
            FaultBody::Huge(len),
            Some("application/json"),
        )
    }

    /// Answers normally, after `delay` on tokio's clock (paused time drives
    /// it). Use it to test a client's timeout.
    pub fn slow(delay: Duration) -> Self {
        Self {
            answer: None,
            delay,
            headers: HeaderMap::new(),
        }
    }

    /// Sets the status of the answer (for [`slow`](Self::slow), turns it into
    /// an empty answer with this status).
    ///
    /// # Panics
    ///
    /// When `status` is not a valid HTTP status code (100 to 999).
    pub fn with_status(mut self, status: u16) -> Self {
        let status = valid_status(status);
        match &mut self.answer {
            Some(answer) => answer.status = status,
            None => {
                self.answer = Some(Answer {
                    status,
                    body: FaultBody::Bytes(Bytes::new()),
                    content_type: None,
                });
            }
        }
        self
    }

    /// Sets the body of the answer, as raw bytes.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        let body = FaultBody::Bytes(body.into());
        match &mut self.answer {
            Some(answer) => answer.body = body,
            None => {
                self.answer = Some(Answer {
                    status: StatusCode::OK,
                    body,
                    content_type: None,
                });
            }
        }
        self
    }

    /// Sets the `Content-Type` of the answer.
    ///
    /// # Panics
    ///
    /// When `content_type` is not a valid header value.
    pub fn with_content_type(mut self, content_type: &str) -> Self {
        let value = HeaderValue::from_str(content_type).expect("a valid Content-Type value");
        match &mut self.answer {
            Some(answer) => answer.content_type = Some(value),
            None => {
                self.answer = Some(Answer {
                    status: StatusCode::OK,
                    body: FaultBody::Bytes(Bytes::new()),
                    content_type: Some(value),
                });
            }
        }
        self
    }

    /// Waits `delay` on tokio's clock before answering (added to any delay
    /// set with [`MockCxone::set_token_delay`](super::MockCxone::set_token_delay)).
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Adds `Retry-After` in delta-seconds, rounded up.
    pub fn with_retry_after(self, retry_after: Duration) -> Self {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        self.with_header(RETRY_AFTER, HeaderValue::from(seconds))
    }

    /// Adds a header to the answer, for example `Retry-After` as an HTTP-date.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The delay before the answer.
    pub(super) fn delay(&self) -> Duration {
        self.delay
    }

    /// The answer that replaces the token endpoint's, or `None` when the
    /// request is to be handled normally (after the delay).
    pub(super) fn response(&self) -> Option<Response> {
        let answer = self.answer.as_ref()?;
        let mut response = match &answer.body {
            FaultBody::Bytes(bytes) => Response::new(Body::from(bytes.clone())),
            FaultBody::Huge(len) => {
                let mut response = Response::new(huge_body(*len));
                response
                    .headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from(*len));
                response
            }
        };
        *response.status_mut() = answer.status;
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(content_type) = &answer.content_type {
            headers.insert(CONTENT_TYPE, content_type.clone());
        }
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        Some(response)
    }
}

fn valid_status(status: u16) -> StatusCode {
    StatusCode::from_u16(status).expect("an HTTP status code between 100 and 999")
}

fn huge_body(len: u64) -> Body {
    let chunk = Bytes::from(vec![b' '; HUGE_BODY_CHUNK]);
    let stream = futures_util::stream::unfold(len, move |remaining| {
        let chunk = chunk.clone();
        async move {
            if remaining == 0 {
                return None;
            }
            let size = remaining.min(HUGE_BODY_CHUNK as u64);
            let piece = chunk.slice(..usize::try_from(size).unwrap_or(HUGE_BODY_CHUNK));
            Some((Ok::<_, std::convert::Infallible>(piece), remaining - size))
        }
    });
    Body::from_stream(stream)
}

impl fmt::Debug for TokenFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TokenFault");
        match &self.answer {
            Some(answer) => {
                d.field("status", &answer.status);
                match &answer.body {
                    FaultBody::Bytes(bytes) => d.field("body_len", &bytes.len()),
                    FaultBody::Huge(len) => d.field("body_len", len),
                };
                d.field("content_type", &answer.content_type);
            }
            None => {
                d.field("status", &"normal");
            }
        }
        d.field("delay", &self.delay)
            .field("headers", &self.headers)
            .finish()
    }
}
