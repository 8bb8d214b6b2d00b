//! The cached token as the hot path reads it.
//!
//! An [`Entry`] holds the token, its [`Schedule`] and a `fresh` flag. While the
//! flag is set, a read is one atomic load of the cell, one load of the flag and
//! a reference-count increment: no clock, no lock, no allocation. A timer task
//! clears the flag at the refresh point; from then on reads consult the clock
//! (to start a refresh ahead, or to stop handing out a token past its hard
//! expiry). The flag is only ever a shortcut for "the clock says fresh":
//! dropping the timer (its runtime shut down) clears it too, and every
//! [`CLOCK_CHECK_INTERVAL`]th read checks the clock anyway, so a timer that is
//! never polled cannot keep a token in use past its schedule for long.
//!
//! ```
//! # use std::time::Duration;
//! # use cxone_auth::TokenCache;
//! # use cxone_auth::token::StaticToken;
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let cache = TokenCache::new(StaticToken::new("t"));
//! assert!(cache.cached().is_none()); // nothing fetched yet
//! cache.token().await?;
//! assert!(cache.cached().is_some()); // the hot path now answers
//! # Ok::<(), cxone_auth::Error>(()) }).unwrap();
//! ```

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};

use http::HeaderValue;
use tokio::time::Instant;

use super::registry;
use super::timing::Schedule;
use crate::AccessToken;

/// Every this many fresh reads, a read checks the clock even though the flag
/// says fresh: a safety net for a timer whose runtime is alive but no longer
/// driven. A power of two, so the check is a mask; rare enough to cost nothing.
pub(crate) const CLOCK_CHECK_INTERVAL: u64 = 256;

/// Which token a request carried: a number given to each token a cache takes
/// in, for [`TokenCache::invalidate_id`](crate::TokenCache::invalidate_id).
///
/// Cheap to copy and keep with a request, unlike the token itself. Unique in
/// the process: an id never matches another cache's token. Never zero, so an
/// `Option<TokenId>` is no larger than a `TokenId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenId(NonZeroU64);

impl TokenId {
    /// An id no token has had.
    pub(crate) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self(NonZeroU64::MIN.saturating_add(NEXT.fetch_add(1, Relaxed)))
    }

    /// Invalidates this token in its cache, if it is still the cache's
    /// current token: [`TokenCache::invalidate_id`](crate::TokenCache::invalidate_id)
    /// without a handle to the cache, for the rare path of a rejected request.
    pub(crate) fn invalidate(self) -> bool {
        registry::find(self).is_some_and(|shared| shared.invalidate(|entry| entry.id == self))
    }
}

/// The current token and when it is due.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) token: Arc<AccessToken>,
    /// A copy of the token's header, so that a read touches only this entry
    /// (read-only once published) and the header's own reference count.
    pub(crate) header: HeaderValue,
    pub(crate) id: TokenId,
    pub(crate) schedule: Schedule,
    fresh: AtomicBool,
}

impl Entry {
    /// An entry whose reads skip the clock until its timer runs, if
    /// `trust_timer`; else every read goes by the clock.
    ///
    /// Only trust a timer that has slack: one due before the hard expiry, so
    /// that a timer running a little late never lets a read hand out a token
    /// past `usable_until`.
    pub(crate) fn new(
        token: Arc<AccessToken>,
        id: TokenId,
        schedule: Schedule,
        now: Instant,
        trust_timer: bool,
    ) -> Self {
        let fresh =
            trust_timer && now < schedule.refresh_at && schedule.refresh_at < schedule.usable_until;
        Self {
            header: token.header_value().clone(),
            token,
            id,
            schedule,
            fresh: AtomicBool::new(fresh),
        }
    }

    /// Whether the token is known to be before its refresh point without
    /// reading the clock. Relaxed: the flag carries time, not data (the entry
    /// itself is published through the cell).
    #[inline]
    pub(crate) fn is_fresh(&self) -> bool {
        self.fresh.load(Relaxed)
    }

    pub(crate) fn mark_stale(&self) {
        // Store only on a change: every read past the refresh point comes
        // here, and a store would take the entry's line from other readers.
        if self.fresh.load(Relaxed) {
            self.fresh.store(false, Relaxed);
        }
    }
}

/// Clears the fresh flag of `entry` at its refresh point. Holds the entry
/// weakly, so a replaced or dropped entry is not kept alive (nor its token
/// kept in memory) by its timer; the flag is cleared also when the timer is
/// aborted or dropped before its time.
pub(crate) async fn age(entry: Weak<Entry>, refresh_at: Instant) {
    let _stale = MarkStaleOnDrop(entry);
    tokio::time::sleep_until(refresh_at).await;
}

struct MarkStaleOnDrop(Weak<Entry>);

impl Drop for MarkStaleOnDrop {
    fn drop(&mut self) {
        if let Some(entry) = self.0.upgrade() {
            entry.mark_stale();
        }
    }
}
