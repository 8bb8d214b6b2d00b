//! Reading `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date.
//!
//! Token endpoints and APIs send it with 429 and 503 answers. The token
//! sources keep it on the [`Error`](crate::Error) they return, so that the
//! token cache (and the retry layer) wait what the server asked:
//!
//! ```
//! # // The parser is crate-private; its effect is visible on errors.
//! use std::time::Duration;
//! use cxone_auth::{Error, ErrorKind};
//!
//! let err = Error::new(ErrorKind::RateLimited, "slow down").with_retry_after(Duration::from_secs(30));
//! assert_eq!(err.kind(), ErrorKind::RateLimited);
//! assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
//! ```

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::RETRY_AFTER;

/// How long `headers` ask the client to wait, if they say.
///
/// Accepts delta-seconds (`120`) and HTTP-dates (`Wed, 21 Oct 2015 07:28:00
/// GMT`); a date in the past means "now" (zero). Anything else, or a header
/// sent more than once, is ignored. Callers cap the result to what they are
/// willing to wait.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let mut values = headers.get_all(RETRY_AFTER).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse(value.to_str().ok()?, SystemTime::now())
}

/// Parses one `Retry-After` value relative to `now`.
pub(crate) fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn delta_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn http_dates_relative_to_now() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse("Wed, 21 Oct 2015 07:29:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        // The obsolete RFC 850 form is still a valid HTTP-date.
        assert_eq!(
            parse("Wednesday, 21-Oct-15 07:28:10 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn garbage_is_ignored() {
        let now = SystemTime::now();
        for bad in [
            "",
            "-5",
            "1.5",
            "soon",
            "12s",
            "Wed, 99 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(parse(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_headers_once() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.append(RETRY_AFTER, HeaderValue::from_static("8"));
        assert_eq!(retry_after(&headers), None, "ambiguous headers are ignored");
    }

    mod properties {
        use std::time::UNIX_EPOCH;

        use proptest::prelude::*;

        use super::*;

        /// The last second an HTTP-date can name (9999-12-31T23:59:59Z).
        const MAX_HTTP_DATE_SECS: u64 = 253_402_300_799;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_text_is_read_without_panicking(value in any::<String>(), now in any::<u64>()) {
                let now = UNIX_EPOCH + Duration::from_secs(now % MAX_HTTP_DATE_SECS);
                let _ = parse(&value, now);
            }

            #[test]
            fn delta_seconds_round_trip(seconds in any::<u64>(), pad in "[ \t]{0,3}") {
                let value = format!("{pad}{seconds}{pad}");
                prop_assert_eq!(parse(&value, SystemTime::now()), Some(Duration::from_secs(seconds)));
            }

            #[test]
            fn http_dates_round_trip(at in 0..=MAX_HTTP_DATE_SECS, ahead in 0u64..10_000_000) {
                let now = UNIX_EPOCH + Duration::from_secs(at.saturating_sub(ahead));
                let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(at));
                let expected = Duration::from_secs(at - at.saturating_sub(ahead));
                prop_assert_eq!(parse(&date, now), Some(expected), "{}", date);
                // From a point after it, a date reads as "now".
                let later = UNIX_EPOCH + Duration::from_secs(at) + Duration::from_secs(ahead);
                prop_assert_eq!(parse(&date, later), Some(Duration::ZERO));
            }

            #[test]
            fn any_header_is_read_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
                if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                    let mut headers = HeaderMap::new();
                    headers.insert(RETRY_AFTER, value);
                    let _ = retry_after(&headers);
                }
            }
        }
    }
}
