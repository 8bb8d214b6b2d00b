//! Exponential backoff with full jitter, for 429 and 503 answers that do not
//! say how long to wait.
//!
//! The n-th retry (counting from 0) waits a random time between zero and
//! `min(max, base × 2ⁿ)`: "full jitter", which spreads clients that failed
//! together so they do not come back together.
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::retry::CxoneRetryLayer;
//!
//! // First retry within 200 ms, the second within 400 ms, never more than 1 s.
//! let layer = CxoneRetryLayer::builder()
//!     .backoff(Duration::from_millis(200), Duration::from_secs(1))
//!     .build();
//! # let _ = layer;
//! ```

use std::time::Duration;

/// The first retry's longest wait, when the server gave no `Retry-After`.
///
/// Half a second lets a briefly overloaded server recover without making a
/// caller wait noticeably; later retries double it.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(500);

/// The longest backoff wait, however many retries came before.
///
/// With the default three attempts the doubling never reaches it; it bounds
/// the wait when a user raises the attempts.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(base: Duration, max: Duration) -> Self {
        Self { base, max }
    }

    /// The longest wait before retry number `retry` (0 for the first retry).
    pub(crate) fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A random wait in `0..=ceiling(retry)`.
    pub(crate) fn delay(&self, retry: u32) -> Duration {
        self.ceiling(retry).mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_max() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
        assert_eq!(backoff.ceiling(1), Duration::from_millis(200));
        assert_eq!(backoff.ceiling(3), Duration::from_millis(800));
        assert_eq!(backoff.ceiling(4), Duration::from_secs(1));
        assert_eq!(backoff.ceiling(200), Duration::from_secs(1));
    }

    #[test]
    fn delays_are_jittered_within_the_ceiling() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<Duration> = (0..200).map(|_| backoff.delay(2)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 100, "full jitter spreads the waits");
        assert!(delays.iter().any(|d| *d < Duration::from_millis(200)));
    }
}
