//! [`MemoryStore`]: a [`TokenStore`] in this process's memory.
//!
//! Useful when several caches in one process share a credential (one per
//! tenant client, one per worker runtime), and in tests. Clones share one map.
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::AccessToken;
//! use cxone_auth::cache::{MemoryStore, StoredToken, TokenStore};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let token = AccessToken::new("t")?.with_lifetime(Duration::from_secs(60));
//! let stored = StoredToken::from_token(&token, tokio::time::Instant::now());
//! store.store("key", &stored, Duration::from_secs(55)).await?;
//! assert!(store.load("key").await?.is_some());
//! store.invalidate("key", &token).await?;
//! assert!(store.load("key").await?.is_none());
//! # Ok::<(), cxone_auth::Error>(()) }).unwrap();
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt as _};
use tokio::time::Instant;

use super::{StoreLock, StoredToken, TokenStore};
use crate::{AccessToken, Error};

/// A [`TokenStore`] in memory, on tokio's clock. Clones share one map.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Maps>>,
}

#[derive(Debug, Default)]
struct Maps {
    tokens: HashMap<String, Kept>,
    locks: HashMap<String, (StoreLock, Instant)>,
}

#[derive(Debug)]
struct Kept {
    token: StoredToken,
    expires_at: Instant,
    until: Instant,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn maps(&self) -> MutexGuard<'_, Maps> {
        // The maps stay consistent across a panic (each change is one insert
        // or remove), so a poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TokenStore for MemoryStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        let now = Instant::now();
        let mut maps = self.maps();
        let kept = maps.tokens.get(key).filter(|kept| now < kept.until);
        let found = kept.map(|kept| {
            let left = kept.expires_at.saturating_duration_since(now);
            kept.token.clone().with_expires_in(left)
        });
        if found.is_none() {
            maps.tokens.remove(key);
        }
        futures_util::future::ready(Ok(found)).boxed()
    }

    fn store<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let now = Instant::now();
        let kept = Kept {
            token: token.clone(),
            expires_at: now + token.expires_in(),
            until: now + ttl,
        };
        self.maps().tokens.insert(key.to_owned(), kept);
        futures_util::future::ready(Ok(())).boxed()
    }

    fn invalidate<'a>(
        &'a self,
        key: &'a str,
        token: &'a AccessToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let mut maps = self.maps();
        let kept = maps.tokens.get(key);
        if kept.is_some_and(|kept| kept.token.secret() == token.secret()) {
            maps.tokens.remove(key);
        }
        futures_util::future::ready(Ok(())).boxed()
    }

    fn try_lock<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<StoreLock>, Error>> {
        let now = Instant::now();
        let mut maps = self.maps();
        let taken = maps.locks.get(key).is_some_and(|(_, until)| now < *until);
        let lock = (!taken).then(|| {
            let lock = StoreLock::new_owner();
            maps.locks.insert(key.to_owned(), (lock.clone(), now + ttl));
            lock
        });
        futures_util::future::ready(Ok(lock)).boxed()
    }

    fn unlock<'a>(&'a self, key: &'a str, lock: StoreLock) -> BoxFuture<'a, Result<(), Error>> {
        let mut maps = self.maps();
        if maps.locks.get(key).is_some_and(|(held, _)| *held == lock) {
            maps.locks.remove(key);
        }
        futures_util::future::ready(Ok(())).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(value: &str) -> (AccessToken, StoredToken) {
        let token = AccessToken::new(value)
            .unwrap()
            .with_lifetime(Duration::from_secs(60));
        let stored = StoredToken::from_token(&token, Instant::now());
        (token, stored)
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_with_their_ttl() {
        let store = MemoryStore::new();
        let (_, token) = stored("a");
        store
            .store("k", &token, Duration::from_secs(50))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(20)).await;
        let loaded = store.load("k").await.unwrap().unwrap();
        assert_eq!(loaded.expires_in(), Duration::from_secs(40));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(store.load("k").await.unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn invalidate_spares_a_newer_token() {
        let store = MemoryStore::new();
        let (old, _) = stored("old");
        let (_, new) = stored("new");
        store
            .store("k", &new, Duration::from_secs(50))
            .await
            .unwrap();
        store.invalidate("k", &old).await.unwrap();
        assert_eq!(store.load("k").await.unwrap().unwrap().secret(), "new");
    }

    #[tokio::test(start_paused = true)]
    async fn lock_is_exclusive_owned_and_expires() {
        let store = MemoryStore::new();
        let ttl = Duration::from_secs(10);
        let held = store.try_lock("k", ttl).await.unwrap().unwrap();
        assert!(store.try_lock("k", ttl).await.unwrap().is_none());
        store
            .unlock("k", StoreLock::from_owner("someone-else"))
            .await
            .unwrap();
        assert!(store.try_lock("k", ttl).await.unwrap().is_none());
        store.unlock("k", held).await.unwrap();
        let again = store.try_lock("k", ttl).await.unwrap();
        assert!(again.is_some());
        tokio::time::advance(ttl).await;
        assert!(store.try_lock("k", ttl).await.unwrap().is_some());
    }
}
