//! Reading the `Retry-After` header (RFC 9110 §10.2.3).
//!
//! The header is either a number of seconds (`Retry-After: 120`) or an
//! HTTP-date (`Retry-After: Fri, 31 Dec 1999 23:59:59 GMT`). Both become the
//! [`Duration`] to wait from now; the caller caps it.
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::{Duration, SystemTime};
//!
//! use cxone_auth::retry::CxoneRetryLayer;
//! use http::{Request, Response, StatusCode};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! // A 503 that asks to come back at a date three seconds from now.
//! let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3));
//! let first = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
//! let api = tower::service_fn(move |_req: Request<()>| {
//!     let response = if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
//!         Response::builder().status(StatusCode::SERVICE_UNAVAILABLE).header("retry-after", &date)
//!     } else {
//!         Response::builder().status(StatusCode::OK)
//!     };
//!     std::future::ready(Ok::<_, Infallible>(response.body(()).unwrap()))
//! });
//!
//! let start = tokio::time::Instant::now();
//! let client = CxoneRetryLayer::default().layer(api);
//! let response = client.oneshot(Request::new(())).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! // HTTP-dates have whole seconds: the wait is between 2 and 3 s.
//! assert!(start.elapsed() > Duration::from_secs(2) && start.elapsed() <= Duration::from_secs(3));
//! # }
//! ```

use std::time::{Duration, SystemTime};

use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderValue};

/// How long the response's `Retry-After` header asks to wait, from now.
///
/// - `None` when the header is absent or unreadable (negative, fractional,
///   not a date): the caller falls back to its own backoff.
/// - An HTTP-date in the past means "now": `Some(Duration::ZERO)`.
/// - A number too large for a `u64` is still a valid, very long wait:
///   `Some(Duration::MAX)`. Callers must cap the result before adding it to
///   an instant.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    parse(headers.get(RETRY_AFTER)?, SystemTime::now())
}

/// Parses one `Retry-After` value, measuring an HTTP-date from `now`.
fn parse(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // `delay-seconds = 1*DIGIT`: only the overflow can fail here.
        return Some(
            text.parse::<u64>()
                .map_or(Duration::MAX, Duration::from_secs),
        );
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(value: &'static str, now: SystemTime) -> Option<Duration> {
        parse(&HeaderValue::from_static(value), now)
    }

    fn now() -> SystemTime {
        httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap()
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(at("0", now()), Some(Duration::ZERO));
        assert_eq!(at("2", now()), Some(Duration::from_secs(2)));
        assert_eq!(at(" 120 ", now()), Some(Duration::from_secs(120)));
    }

    #[test]
    fn huge_delta_is_a_long_wait_not_garbage() {
        assert_eq!(at("99999999999999999999999", now()), Some(Duration::MAX));
    }

    #[test]
    fn http_date_in_the_future() {
        assert_eq!(
            at("Sun, 06 Nov 1994 08:50:07 GMT", now()),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn http_date_in_the_past_means_now() {
        assert_eq!(
            at("Sun, 06 Nov 1994 08:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn garbage_is_none() {
        for value in [
            "",
            "-5",
            "1.5",
            "soon",
            "5s",
            "Sun, 99 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(at_owned(value), None, "{value:?}");
        }
    }

    fn at_owned(value: &str) -> Option<Duration> {
        parse(&HeaderValue::from_str(value).unwrap(), now())
    }

    #[test]
    fn absent_header_is_none() {
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn non_ascii_header_is_none() {
        let value = HeaderValue::from_bytes(b"\xff2").unwrap();
        assert_eq!(parse(&value, now()), None);
    }
}
