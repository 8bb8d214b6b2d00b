//! When a token is refreshed, and when it stops being used.
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::{StaticToken, TokenCache};
//!
//! // A 60-second token is refreshed at about 30 s; a one-hour token 5 min early.
//! let cache = TokenCache::builder(StaticToken::new("t").lifetime(Duration::from_secs(60)))
//!     .refresh_before(Duration::from_secs(300))
//!     .refresh_jitter(0.1)
//!     .build();
//! # drop(cache);
//! ```

use std::time::Duration;

use tokio::time::Instant;

use crate::AccessToken;

/// Defaults of the settings; each is explained on its builder setter.
const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(300);
const DEFAULT_EXPIRY_SKEW: Duration = Duration::from_secs(5);
const DEFAULT_REFRESH_JITTER: f64 = 0.1;

/// The largest jitter fraction accepted; more would refresh barely after the
/// half-life point.
pub(crate) const MAX_REFRESH_JITTER: f64 = 0.5;

/// When a token is refreshed and until when it is handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// From here on callers still get the token, and one refresh starts.
    pub(crate) refresh_at: Instant,
    /// From here on the token is not handed out.
    pub(crate) usable_until: Instant,
}

/// The timing settings of one cache.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) refresh_before: Duration,
    pub(crate) expiry_skew: Duration,
    pub(crate) refresh_jitter: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            refresh_before: DEFAULT_REFRESH_BEFORE,
            expiry_skew: DEFAULT_EXPIRY_SKEW,
            refresh_jitter: DEFAULT_REFRESH_JITTER,
        }
    }
}

impl Timing {
    /// The schedule of `token`, with `jitter` in `[0, 1)` scaling the random
    /// part (the cache passes `fastrand::f64()`).
    ///
    /// Refresh point: `expires_at - min(refresh_before, lifetime / 2)`, minus
    /// up to `refresh_jitter` of that margin. Hard expiry: `expires_at` minus
    /// the skew, the skew capped at a quarter of the lifetime. The refresh
    /// point never falls after the hard expiry.
    pub(crate) fn schedule(&self, token: &AccessToken, jitter: f64) -> Schedule {
        let lifetime = token.lifetime();
        let expires_at = token.expires_at();
        let margin = self.refresh_before.min(lifetime / 2);
        let margin = margin + margin.mul_f64(self.refresh_jitter * jitter);
        let usable_until = expires_at - self.expiry_skew.min(lifetime / 4);
        let refresh_at = (expires_at - margin).min(usable_until);
        Schedule {
            refresh_at,
            usable_until,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(lifetime: u64) -> AccessToken {
        AccessToken::new("t")
            .unwrap()
            .with_lifetime(Duration::from_secs(lifetime))
    }

    #[tokio::test(start_paused = true)]
    async fn one_hour_token_refreshes_five_minutes_early() {
        let token = token(3600);
        let timing = Timing::default();
        let start = token.requested_at();
        let early = timing.schedule(&token, 0.0);
        assert_eq!(early.refresh_at - start, Duration::from_secs(3300));
        assert_eq!(early.usable_until - start, Duration::from_secs(3595));
        let jittered = timing.schedule(&token, 0.999_999);
        let at = (jittered.refresh_at - start).as_secs_f64();
        assert!((3270.0..3271.0).contains(&at), "{at}");
    }

    #[tokio::test(start_paused = true)]
    async fn short_tokens_refresh_at_half_life() {
        let timing = Timing::default();
        let sixty = token(60);
        let s = timing.schedule(&sixty, 0.0);
        assert_eq!(s.refresh_at - sixty.requested_at(), Duration::from_secs(30));
        assert_eq!(
            s.usable_until - sixty.requested_at(),
            Duration::from_secs(55)
        );

        let one = token(1);
        let s = timing.schedule(&one, 0.0);
        assert_eq!(
            s.refresh_at - one.requested_at(),
            Duration::from_millis(500)
        );
        assert_eq!(
            s.usable_until - one.requested_at(),
            Duration::from_millis(750)
        );

        let zero = token(0);
        let s = timing.schedule(&zero, 0.5);
        assert_eq!(s.usable_until, zero.requested_at());
        assert_eq!(s.refresh_at, zero.requested_at());
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_point_never_after_hard_expiry() {
        let timing = Timing {
            refresh_before: Duration::ZERO,
            ..Timing::default()
        };
        let token = token(600);
        let s = timing.schedule(&token, 0.3);
        assert_eq!(s.refresh_at, s.usable_until);
    }
}
