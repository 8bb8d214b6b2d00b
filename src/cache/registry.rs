//! The current token of every live cache, by id: how a
//! [`TokenId`](super::TokenId) reaches its cache.
//!
//! A response future that sees a 401 must invalidate the token its request
//! carried. Holding a handle to the cache for that would cost every request a
//! reference-count increment and decrement (two atomic read-modify-writes) to
//! serve the rare rejected one. Instead it keeps the token's id, unique in
//! the process, and the rare path looks the id up here.
//!
//! A cache enters its token when it publishes it and takes it out when the
//! token is replaced, invalidated or dropped with the cache, so only current
//! tokens are here: an id that is not found names a token there is nothing
//! left to invalidate.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock, Weak};

use super::cell::TokenId;
use super::shared::Shared;

static CURRENT: RwLock<BTreeMap<TokenId, Weak<Shared>>> = RwLock::new(BTreeMap::new());

// Nothing under these locks can panic halfway through a change, so a
// poisoned lock still guards a consistent map.

/// `id` is now the current token of `cache`.
pub(crate) fn enter(id: TokenId, cache: &Arc<Shared>) {
    CURRENT
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, Arc::downgrade(cache));
}

/// `id` is no longer current.
pub(crate) fn remove(id: TokenId) {
    CURRENT
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&id);
}

/// The cache whose current token is `id`, if there is one.
pub(crate) fn find(id: TokenId) -> Option<Arc<Shared>> {
    CURRENT
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
        .and_then(Weak::upgrade)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::TokenCache;
    use crate::token::StaticToken;

    #[tokio::test(start_paused = true)]
    async fn an_id_reaches_its_own_cache_while_its_token_is_current() {
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
        assert!(super::find(id).is_none(), "an invalidated token leaves");

        let (_, next) = one.header_with_id().await.unwrap();
        assert_ne!(next, id);
        assert!(!id.invalidate(), "a replaced token is not found");
        drop(one);
        assert!(!next.invalidate(), "a dropped cache's token is not found");
        assert!(super::find(next).is_none(), "a dropped cache leaves");
    }
}
