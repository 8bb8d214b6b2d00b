//! [`CacheStats`]: what a [`TokenCache`](crate::TokenCache) has done so far.
//!
//! ```
//! use cxone_auth::TokenCache;
//! use cxone_auth::token::StaticToken;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let cache = TokenCache::new(StaticToken::new("t"));
//! cache.token().await?;
//! cache.token().await?;
//! let stats = cache.stats();
//! assert_eq!((stats.fetches, stats.waits, stats.hits), (1, 1, 1));
//! # Ok::<(), cxone_auth::Error>(()) }).unwrap();
//! ```

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// A snapshot of a cache's counters, shared by all its clones.
///
/// Counters only grow. Each is read on its own, so a snapshot taken while the
/// cache is busy may be a few events apart between fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads answered at once with a usable token.
    pub hits: u64,
    /// Callers that found no usable token and waited for a fetch.
    pub waits: u64,
    /// Fetches from the token source (token requests).
    pub fetches: u64,
    /// Fetches that failed, timed out or returned an unusable token.
    pub fetch_failures: u64,
    /// Invalidations that dropped the current token (repeats for a token
    /// already dropped are not counted).
    pub invalidations: u64,
    /// Refreshes started ahead of expiry while callers kept the current token.
    pub refreshes_ahead: u64,
    /// Tokens taken from the shared [`TokenStore`](crate::cache::TokenStore)
    /// instead of fetched.
    pub store_loads: u64,
}

/// The live counters behind [`CacheStats`]. Relaxed: they order nothing.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: Striped,
    pub(crate) waits: AtomicU64,
    pub(crate) fetches: AtomicU64,
    pub(crate) fetch_failures: AtomicU64,
    pub(crate) invalidations: AtomicU64,
    pub(crate) refreshes_ahead: AtomicU64,
    pub(crate) store_loads: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Relaxed)
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.sum(),
            waits: self.waits.load(Relaxed),
            fetches: self.fetches.load(Relaxed),
            fetch_failures: self.fetch_failures.load(Relaxed),
            invalidations: self.invalidations.load(Relaxed),
            refreshes_ahead: self.refreshes_ahead.load(Relaxed),
            store_loads: self.store_loads.load(Relaxed),
        }
    }
}

/// How many stripes a hot counter is split into. Threads beyond this share
/// stripes, which costs contention, never counts.
const STRIPES: usize = 16;

/// A counter bumped on every read: one stripe per thread (each on its own
/// cache line), so that threads reading at once do not fight over one line.
#[derive(Debug, Default)]
pub(crate) struct Striped {
    stripes: [Stripe; STRIPES],
}

/// 128 bytes: a cache line pair, as adjacent-line prefetchers fetch them.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe(AtomicU64);

impl Striped {
    /// Adds one on this thread's stripe; returns the stripe's previous count.
    #[inline]
    pub(crate) fn bump(&self) -> u64 {
        self.stripes[stripe_index()].0.fetch_add(1, Relaxed)
    }

    /// Adds `n` on this thread's stripe.
    pub(crate) fn add(&self, n: u64) {
        self.stripes[stripe_index()].0.fetch_add(n, Relaxed);
    }

    /// Takes back a [`bump`](Self::bump) made on this thread.
    pub(crate) fn unbump(&self) {
        self.stripes[stripe_index()].0.fetch_sub(1, Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| stripe.0.load(Relaxed))
            .sum()
    }
}

#[inline]
fn stripe_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Relaxed) % STRIPES;
    }
    // During thread teardown the slot may be gone; any stripe will do.
    INDEX.try_with(|index| *index).unwrap_or(0)
}
