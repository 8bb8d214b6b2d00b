//! [`TokenReader`]: a reader of a [`TokenCache`] for one owner, such as one
//! tower `Service` instance, that makes the fresh read cheaper still.
//!
//! It keeps its own reference to the cache's current entry and checks with a
//! single plain load that it is still current, instead of taking a
//! reference on every read. The price is `&mut self`, which a `Service`'s
//! `call` has.
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::TokenCache;
//! use cxone_auth::token::StaticToken;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let cache = TokenCache::new(StaticToken::new("t").lifetime(Duration::from_secs(3600)));
//! let mut reader = cache.reader();
//! let (header, id) = match reader.cached_header() {
//!     Some(cached) => cached,
//!     None => cache.header_with_id().await?,
//! };
//! assert_eq!(header, "Bearer t");
//! assert_eq!(reader.cached_header().map(|(_, now)| now), Some(id));
//! # Ok::<(), cxone_auth::Error>(()) }).unwrap();
//! ```

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use arc_swap::cache::Cache;
use http::HeaderValue;

use super::TokenCache;
use super::cell::{CLOCK_CHECK_INTERVAL, Entry, TokenId};
use super::shared::Shared;
use crate::AccessToken;

/// Reads a [`TokenCache`] like [`TokenCache::cached`] and
/// [`TokenCache::cached_header`], with fewer atomic operations per read.
///
/// Make one per owner with [`TokenCache::reader`]; a clone is an independent
/// reader of the same cache. A reader keeps the entry it last saw (and its
/// token) in memory until its next read, and adds its hits to
/// [`stats`](TokenCache::stats) in batches of [`HIT_BATCH`] (and when
/// dropped).
pub struct TokenReader {
    shared: Arc<Shared>,
    local: Cache<Cell, Option<Arc<Entry>>>,
    /// Hits not yet added to the cache's counter.
    hits: u64,
}

/// How many hits a [`TokenReader`] counts on its own before adding them to
/// the cache's counter: one shared write per this many reads. It is also how
/// often a reader checks the clock while the token's fresh flag is set.
pub const HIT_BATCH: u64 = CLOCK_CHECK_INTERVAL;

/// The cache's cell, reached through its state.
#[derive(Clone)]
struct Cell(Arc<Shared>);

impl Deref for Cell {
    type Target = ArcSwapOption<Entry>;

    fn deref(&self) -> &Self::Target {
        &self.0.cell
    }
}

impl TokenReader {
    pub(crate) fn new(shared: &Arc<Shared>) -> Self {
        Self {
            shared: Arc::clone(shared),
            local: Cache::new(Cell(Arc::clone(shared))),
            hits: 0,
        }
    }

    #[inline]
    fn read<R>(&mut self, take: impl FnOnce(&Entry) -> R) -> Option<R> {
        let entry = self.local.load().as_ref()?;
        // The first read of each batch goes by the clock.
        if !self.shared.usable(entry, self.hits == 0) {
            return None;
        }
        let taken = take(entry);
        self.hits += 1;
        if self.hits == HIT_BATCH {
            self.flush();
        }
        Some(taken)
    }

    fn flush(&mut self) {
        self.shared.counters.hits.add(self.hits);
        self.hits = 0;
    }

    /// [`TokenCache::cached`]: the current token if it is usable.
    #[inline]
    pub fn cached(&mut self) -> Option<Arc<AccessToken>> {
        self.read(|entry| Arc::clone(&entry.token))
    }

    /// [`TokenCache::cached_header`]: the current token's header and id if
    /// it is usable.
    #[inline]
    pub fn cached_header(&mut self) -> Option<(HeaderValue, TokenId)> {
        self.read(|entry| (entry.header.clone(), entry.id))
    }

    /// Whether the cache holds a usable token right now: what
    /// [`cached_header`](Self::cached_header) would answer, without taking
    /// the header or counting a hit. For a decision made ahead of the read
    /// that uses the token (a service's `poll_ready` before its `call`).
    #[inline]
    pub(crate) fn has_token(&mut self) -> bool {
        let shared = &self.shared;
        self.local
            .load()
            .as_ref()
            .is_some_and(|entry| shared.usable(entry, false))
    }

    /// The cache this reader reads, for the waiting and invalidating calls.
    pub fn cache(&self) -> TokenCache {
        TokenCache {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Clone for TokenReader {
    fn clone(&self) -> Self {
        Self::new(&self.shared)
    }
}

impl Drop for TokenReader {
    fn drop(&mut self) {
        self.flush();
    }
}

impl fmt::Debug for TokenReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenReader").finish_non_exhaustive()
    }
}
