//! The live caches, by key: how a [`TokenId`](super::TokenId) reaches its cache.
//!
//! A response future that sees a 401 must invalidate the token its request
//! carried. Holding a handle to the cache for that would cost every request a
//! reference-count increment and decrement (two atomic read-modify-writes) to
//! serve the rare rejected one. Instead a [`TokenId`](super::TokenId) names
//! its cache by key, and the rare path looks the key up here.
//!
//! Caches register when built and leave when their last handle is dropped;
//! keys are never reused, so a key outlives its cache harmlessly.

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};

use super::shared::Shared;

static LIVE: RwLock<BTreeMap<CacheKey, Weak<Shared>>> = RwLock::new(BTreeMap::new());

/// Which cache a token came from; unique in the process. Never zero, so an
/// `Option<TokenId>` is no larger than a `TokenId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct CacheKey(NonZeroU64);

impl CacheKey {
    /// A key no cache has had.
    pub(crate) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self(NonZeroU64::MIN.saturating_add(NEXT.fetch_add(1, Ordering::Relaxed)))
    }
}

// Nothing under these locks can panic halfway through a change, so a
// poisoned lock still guards a consistent map.

pub(crate) fn register(shared: &Arc<Shared>) {
    LIVE.write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(shared.key, Arc::downgrade(shared));
}

pub(crate) fn unregister(key: CacheKey) {
    LIVE.write()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&key);
}

/// The cache with this key, if it is still alive.
pub(crate) fn find(key: CacheKey) -> Option<Arc<Shared>> {
    LIVE.read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
        .and_then(Weak::upgrade)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::TokenCache;
    use crate::token::StaticToken;

    #[tokio::test(start_paused = true)]
    async fn an_id_reaches_its_own_cache_only_while_it_lives() {
        let source = || StaticToken::new("t").lifetime(Duration::from_secs(3600));
        let (one, other) = (TokenCache::new(source()), TokenCache::new(source()));
        let (_, id) = one.header_with_id().await.unwrap();
        let (_, other_id) = other.header_with_id().await.unwrap();
        assert_ne!(id, other_id, "ids of two caches differ");

        assert!(
            !other.invalidate_id(id),
            "another cache's id invalidates nothing"
        );
        assert!(other.cached().is_some());
        assert!(id.invalidate(), "the id finds its cache");
        assert!(one.cached().is_none());

        let (_, id) = one.header_with_id().await.unwrap();
        drop(one);
        assert!(!id.invalidate(), "a dropped cache is not found");
    }
}
