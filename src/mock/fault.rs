//! [`TokenFault`]: how the token endpoint misbehaves for the next requests.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::{no_store, retry_after_seconds};

/// The size of each chunk of a streamed [`TokenFault::huge_body`].
const HUGE_BODY_CHUNK: usize = 64 * 1024;

const JSON: &str = "application/json";

/// A misbehaviour of the token endpoint, queued with
/// [`MockCxone::fail_next_token_requests`](super::MockCxone::fail_next_token_requests):
/// after its delay on tokio's clock, it answers its own status, body and
/// headers, or normally for [`slow`](Self::slow).
///
/// # Panics
///
/// The methods that take a status panic unless it is 100 to 999, and
/// [`with_content_type`](Self::with_content_type) unless its value is valid.
#[derive(Debug, Clone)]
pub struct TokenFault {
    /// `None` answers normally, after the delay.
    status: Option<StatusCode>,
    body: FaultBody,
    content_type: Option<HeaderValue>,
    delay: Duration,
    headers: HeaderMap,
}

#[derive(Debug, Clone)]
enum FaultBody {
    Bytes(Bytes),
    /// This many bytes, streamed in chunks, never held in memory at once.
    Huge(u64),
}

impl TokenFault {
    fn answer(status: StatusCode, body: FaultBody, content_type: Option<&'static str>) -> Self {
        Self {
            status: Some(status),
            body,
            content_type: content_type.map(HeaderValue::from_static),
            delay: Duration::ZERO,
            headers: HeaderMap::new(),
        }
    }

    /// Answers `status` with an empty body.
    pub fn status(status: u16) -> Self {
        Self::answer(valid_status(status), FaultBody::Bytes(Bytes::new()), None)
    }

    /// Answers `200 OK` with `body` as `application/json`: a body that is not
    /// a token response, an `access_token` with CR/LF in it, and so on.
    pub fn body(body: impl Into<Bytes>) -> Self {
        Self::answer(StatusCode::OK, FaultBody::Bytes(body.into()), Some(JSON))
    }

    /// Answers `status` with an RFC 6749 §5.2 error body.
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

    /// Answers `200 OK` with an HTML page, as a captive portal does.
    pub fn html() -> Self {
        let page = b"<!DOCTYPE html><html><head><title>Gateway</title></head>\
                     <body><h1>Something went wrong</h1></body></html>";
        let body = FaultBody::Bytes(Bytes::from_static(page));
        Self::answer(StatusCode::OK, body, Some("text/html; charset=utf-8"))
    }

    /// Answers `200 OK` with a JSON token response cut off in the middle.
    pub fn truncated_json() -> Self {
        Self::body(r#"{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJ0ZW5hbnRJZCI6"#)
    }

    /// Answers `200 OK` with `len` bytes, announced by `Content-Length` and
    /// streamed, to test that a client caps what it reads.
    pub fn huge_body(len: u64) -> Self {
        Self::answer(StatusCode::OK, FaultBody::Huge(len), Some(JSON))
    }

    /// Answers normally, after `delay` on tokio's clock.
    pub fn slow(delay: Duration) -> Self {
        let mut normal = Self::status(200);
        normal.status = None;
        normal.with_delay(delay)
    }

    /// Sets the status of the answer.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(valid_status(status));
        self
    }

    /// Sets the `Content-Type` of the answer (`200 OK` unless a status is set).
    pub fn with_content_type(mut self, content_type: &str) -> Self {
        let value = HeaderValue::from_str(content_type).expect("a valid Content-Type value");
        self.content_type = Some(value);
        self.status.get_or_insert(StatusCode::OK);
        self
    }

    /// Waits `delay` before answering, after the mock's
    /// [token delay](super::MockCxone::set_token_delay).
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Adds `Retry-After` in delta-seconds, rounded up.
    pub fn with_retry_after(self, retry_after: Duration) -> Self {
        self.with_header(RETRY_AFTER, retry_after_seconds(retry_after))
    }

    /// Adds a header to the answer, for example `Retry-After` as an HTTP-date.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    pub(super) fn delay(&self) -> Duration {
        self.delay
    }

    /// The answer that replaces the token endpoint's; `None` to answer normally.
    pub(super) fn response(&self) -> Option<Response> {
        let status = self.status?;
        let mut response = Response::new(match self.body {
            FaultBody::Bytes(ref bytes) => Body::from(bytes.clone()),
            FaultBody::Huge(len) => huge_body(len),
        });
        *response.status_mut() = status;
        let mut response = no_store(response);
        let headers = response.headers_mut();
        if let FaultBody::Huge(len) = self.body {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        }
        if let Some(content_type) = &self.content_type {
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
        let size = remaining.min(HUGE_BODY_CHUNK as u64);
        let piece = chunk.slice(..usize::try_from(size).unwrap_or(HUGE_BODY_CHUNK));
        let next =
            (size > 0).then_some((Ok::<_, std::convert::Infallible>(piece), remaining - size));
        std::future::ready(next)
    });
    Body::from_stream(stream)
}
