//! [`CacheStatus`]: what a readiness probe needs to know of a cache.

use std::time::Duration;

use tokio::time::Instant;

use crate::Error;

/// What a [`TokenCache`](super::TokenCache) is doing, from
/// [`TokenCache::status`](super::TokenCache::status).
///
/// A readiness probe answers from [`has_token`](Self::has_token): without a
/// usable token every call waits for a fetch, or fails with
/// [`Failing`](Self::Failing)'s error.
///
/// ```
/// use cxone_auth::{CacheStatus, StaticToken, TokenCache};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let cache = TokenCache::new(StaticToken::new("t"));
/// assert!(matches!(cache.status(), CacheStatus::Empty));
/// cache.token().await?;
/// assert!(matches!(cache.status(), CacheStatus::Fresh { .. }));
/// assert!(cache.status().has_token());
/// # Ok::<(), cxone_auth::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CacheStatus {
    /// No token yet, and none asked for: nothing has called the cache.
    Empty,
    /// A usable token, and nothing is failing.
    Fresh {
        /// How long the token is still handed out.
        usable_for: Duration,
    },
    /// A fetch is running: ahead of expiry while the current token is still
    /// handed out (`usable_for` is `Some`), or for a first or replacement
    /// token that callers wait for (`None`).
    Refreshing {
        /// How long the current token is still handed out, if there is one.
        usable_for: Option<Duration>,
    },
    /// A usable token, still handed out after refreshes failed; they are
    /// retried after the backoff.
    Degraded {
        /// How long the token is still handed out.
        usable_for: Duration,
        /// When the failures in a row began.
        failing_since: Instant,
        /// The last refresh's error ([`Error::kind`] says what to fix).
        last_error: Error,
    },
    /// No usable token, and the last fetch failed: every call gets
    /// `last_error` until `next_try`, then the next call fetches again.
    Failing {
        /// When the failures in a row began.
        failing_since: Instant,
        /// The last fetch's error.
        last_error: Error,
        /// When the backoff ends and a call may start a fetch.
        next_try: Instant,
    },
}

impl CacheStatus {
    /// Whether the cache holds a usable token, so calls are sent at once.
    pub fn has_token(&self) -> bool {
        match self {
            Self::Fresh { .. } | Self::Degraded { .. } => true,
            Self::Refreshing { usable_for } => usable_for.is_some(),
            Self::Empty | Self::Failing { .. } => false,
        }
    }
}
