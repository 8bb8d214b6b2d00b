//! Waiting: `Retry-After` (RFC 9110 §10.2.3), one exponential backoff with
//! jitter, and deadline arithmetic that cannot overflow.
//!
//! The token cache, the retry layer and tenant routing share [`Backoff`]
//! with their own settings. A `Retry-After` kept on an
//! [`Error`](crate::Error) makes the cache wait what was asked:
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::{Error, ErrorKind};
//!
//! let err = Error::new(ErrorKind::RateLimited, "slow down").with_retry_after(Duration::from_secs(30));
//! assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
//! ```

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::RETRY_AFTER;
use tokio::time::Instant;

/// Exponential backoff: the ceiling doubles from `base` up to `max` with
/// each retry, and up to `jitter` of it is taken off at random, so that
/// clients that failed together do not come back together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    /// The share of the ceiling taken off at random: 0.5 waits between half
    /// and all of it ("equal jitter"), 1.0 anywhere up to it ("full jitter").
    jitter: f64,
}

impl Backoff {
    /// If `max < base`, `base` is used for both.
    pub(crate) fn new(base: Duration, max: Duration, jitter: f64) -> Self {
        Self {
            base,
            max: max.max(base),
            jitter: jitter.clamp(0.0, 1.0),
        }
    }

    /// The longest wait before retry number `retry` (0 for the first).
    pub(crate) fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The wait before retry number `retry`, with `random` in `[0, 1)` (the
    /// callers pass `fastrand::f64()`; tests pass fixed values).
    ///
    /// A `Retry-After` the server `asked` for is a floor, itself capped at
    /// `max`: a hostile or broken server cannot park the client for a day.
    pub(crate) fn wait(&self, retry: u32, asked: Option<Duration>, random: f64) -> Duration {
        let ceiling = self.ceiling(retry);
        let own = ceiling - ceiling.mul_f64(self.jitter * random.clamp(0.0, 1.0));
        asked.map_or(own, |asked| own.max(asked.min(self.max)))
    }
}

/// `now + wait`, or a year from now if that is past the clock's range (a
/// user may configure `Duration::MAX`).
pub(crate) fn later(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

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
    parse_retry_after(value.to_str().ok()?, SystemTime::now())
}

/// Parses one `Retry-After` value relative to `now`.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
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
    fn ceiling_doubles_up_to_max() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 1.0);
        assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
        assert_eq!(backoff.ceiling(1), Duration::from_millis(200));
        assert_eq!(backoff.ceiling(3), Duration::from_millis(800));
        assert_eq!(backoff.ceiling(4), Duration::from_secs(1));
        assert_eq!(backoff.ceiling(200), Duration::from_secs(1));
    }

    #[test]
    fn jitter_takes_off_its_share_of_the_ceiling() {
        let full = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 1.0);
        assert_eq!(full.wait(2, None, 0.0), Duration::from_millis(400));
        assert_eq!(full.wait(2, None, 0.75), Duration::from_millis(100));
        let equal = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 0.5);
        assert_eq!(equal.wait(2, None, 0.0), Duration::from_millis(400));
        assert_eq!(equal.wait(2, None, 0.5), Duration::from_millis(300));
        assert!(equal.wait(2, None, 0.999_999) > Duration::from_millis(200));
        let waits: std::collections::HashSet<_> = (0..200)
            .map(|_| full.wait(2, None, fastrand::f64()))
            .collect();
        assert!(waits.len() > 100, "random waits spread out");
    }

    #[test]
    fn retry_after_is_a_floor_capped_at_max() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30), 0.5);
        let asked = |secs| Some(Duration::from_secs(secs));
        assert_eq!(backoff.wait(0, asked(7), 0.0), Duration::from_secs(7));
        assert_eq!(backoff.wait(0, asked(86_400), 0.0), Duration::from_secs(30));
        assert_eq!(backoff.wait(3, asked(0), 0.0), Duration::from_secs(8));
        let inverted = Backoff::new(Duration::from_secs(2), Duration::from_secs(1), 0.0);
        assert_eq!(inverted.wait(5, None, 0.5), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn later_saturates_instead_of_overflowing() {
        let now = Instant::now();
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert!(later(now, Duration::MAX) > now + Duration::from_secs(364 * 24 * 3600));
    }

    #[test]
    fn delta_seconds() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn http_dates_relative_to_now() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:29:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        // The obsolete RFC 850 form is still a valid HTTP-date.
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:28:10 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
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
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
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
                let _ = parse_retry_after(&value, now);
            }

            #[test]
            fn delta_seconds_round_trip(seconds in any::<u64>(), pad in "[ \t]{0,3}") {
                let value = format!("{pad}{seconds}{pad}");
                prop_assert_eq!(parse_retry_after(&value, SystemTime::now()), Some(Duration::from_secs(seconds)));
            }

            #[test]
            fn http_dates_round_trip(at in 0..=MAX_HTTP_DATE_SECS, ahead in 0u64..10_000_000) {
                let now = UNIX_EPOCH + Duration::from_secs(at.saturating_sub(ahead));
                let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(at));
                let expected = Duration::from_secs(at - at.saturating_sub(ahead));
                prop_assert_eq!(parse_retry_after(&date, now), Some(expected), "{}", date);
                // From a point after it, a date reads as "now".
                let later = UNIX_EPOCH + Duration::from_secs(at) + Duration::from_secs(ahead);
                prop_assert_eq!(parse_retry_after(&date, later), Some(Duration::ZERO));
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
