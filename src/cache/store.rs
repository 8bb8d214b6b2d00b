//! [`TokenStore`]: a second tier behind a cache's in-process cell, so that
//! caches or processes sharing a credential fetch one token per lifetime.
//!
//! A cache with a store (and a source with a
//! [`shared_key`](crate::TokenSource::shared_key)) looks in the store before it
//! fetches, takes the store's lock so that one process fetches while the
//! others wait for its token, and publishes what it fetched.
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::{AccessToken, TokenCache, TokenSource};
//! use cxone_auth::cache::MemoryStore;
//! use cxone_auth::token::StaticToken;
//!
//! #[derive(Clone)]
//! struct Keyed(StaticToken);
//! impl TokenSource for Keyed {
//!     async fn fetch(&self) -> Result<AccessToken, cxone_auth::Error> { self.0.fetch().await }
//!     fn shared_key(&self) -> Option<String> { Some("example-credential".into()) }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let source = Keyed(StaticToken::new("t").lifetime(Duration::from_secs(3600)));
//! let first = TokenCache::builder(source.clone()).store(store.clone()).build();
//! let second = TokenCache::builder(source).store(store).build();
//! first.token().await?;
//! second.token().await?; // taken from the store, not fetched
//! assert_eq!(first.stats().fetches + second.stats().fetches, 1);
//! # Ok::<(), cxone_auth::Error>(()) }).unwrap();
//! ```

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::{AccessToken, Error};

/// Where caches share tokens: an in-process map ([`MemoryStore`](super::MemoryStore))
/// or a server such as Redis.
///
/// Keys come from [`TokenSource::shared_key`](crate::TokenSource::shared_key)
/// and name a credential, never a secret; an implementation may prefix or
/// hash them. Times are durations from the moment of the call, so that a
/// store can keep wall-clock expiries across machines while caches stay on
/// their monotonic clock.
///
/// Every method may fail: the cache bounds each call with a short timeout
/// (2 s), logs a failure, and carries on as if the store were absent.
pub trait TokenStore: Send + Sync + fmt::Debug + 'static {
    /// The token stored under `key`, if there is one that has not expired,
    /// with [`expires_in`](StoredToken::expires_in) set to its remaining life.
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>>;

    /// Stores `token` under `key` for `ttl`, replacing what was there.
    fn store<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Removes the token under `key` only if it is still `token`, so that a
    /// late invalidation never removes a newer token.
    fn invalidate<'a>(
        &'a self,
        key: &'a str,
        token: &'a AccessToken,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Takes the fetch lock for `key` for at most `ttl`: `Some` when this
    /// caller now holds it, `None` when another holds it. The lock expires on
    /// its own, so a holder that dies never stalls the others.
    fn try_lock<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<StoreLock>, Error>>;

    /// Releases `lock` if it is still held by its owner (it may have expired
    /// and been taken by another).
    fn unlock<'a>(&'a self, key: &'a str, lock: StoreLock) -> BoxFuture<'a, Result<(), Error>>;
}

/// A token as a [`TokenStore`] keeps it: the value, its lifetime and scopes,
/// and (on load) how long it has left.
#[derive(Clone)]
pub struct StoredToken {
    value: SecretString,
    lifetime: Duration,
    expires_in: Duration,
    scopes: Vec<String>,
}

impl StoredToken {
    /// A stored token of `lifetime` with `expires_in` left.
    pub fn new(value: impl Into<String>, lifetime: Duration, expires_in: Duration) -> Self {
        Self {
            value: SecretString::from(value.into()),
            lifetime,
            expires_in: expires_in.min(lifetime),
            scopes: Vec::new(),
        }
    }

    /// Sets the scopes the server granted.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets how long the token has left; stores call it on load.
    pub fn with_expires_in(mut self, expires_in: Duration) -> Self {
        self.expires_in = expires_in.min(self.lifetime);
        self
    }

    /// `token` as it stands at `now`.
    pub fn from_token(token: &AccessToken, now: Instant) -> Self {
        Self {
            value: SecretString::from(token.secret()),
            lifetime: token.lifetime(),
            expires_in: token.expires_at().saturating_duration_since(now),
            scopes: token.scopes().to_vec(),
        }
    }

    /// The token as an [`AccessToken`] requested so long ago that it has
    /// [`expires_in`](Self::expires_in) left at `now`.
    ///
    /// # Errors
    ///
    /// When the stored value is not a usable token (see [`AccessToken::new`]).
    pub fn to_token(&self, now: Instant) -> Result<AccessToken, Error> {
        let age = self.lifetime.saturating_sub(self.expires_in);
        let requested_at = now.checked_sub(age).unwrap_or(now);
        Ok(AccessToken::new(self.value.expose_secret())?
            .with_requested_at(requested_at)
            .with_lifetime(self.lifetime)
            .with_scopes(self.scopes.iter().cloned()))
    }

    /// The token value. Keep it out of logs.
    pub fn secret(&self) -> &str {
        self.value.expose_secret()
    }

    /// How long the token lives, from when it was requested.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// How long the token has left.
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    /// The scopes the server granted.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
}

impl fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredToken")
            .field("value", &"[redacted]")
            .field("lifetime", &self.lifetime)
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Proof of holding a [`TokenStore`]'s fetch lock: the owner id that
/// [`unlock`](TokenStore::unlock) compares before releasing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLock {
    owner: String,
}

impl StoreLock {
    /// A lock held by a new, random owner id.
    pub fn new_owner() -> Self {
        Self::from_owner(format!(
            "{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        ))
    }

    /// A lock held by `owner`, as a store read it back.
    pub fn from_owner(owner: impl Into<String>) -> Self {
        let owner = owner.into();
        Self { owner }
    }

    /// The owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn round_trip_keeps_age_and_hides_value() {
        let token = AccessToken::new("secret-value")
            .unwrap()
            .with_lifetime(Duration::from_secs(3600))
            .with_scopes(["a", "b"]);
        tokio::time::advance(Duration::from_secs(600)).await;
        let stored = StoredToken::from_token(&token, Instant::now());
        assert_eq!(stored.expires_in(), Duration::from_secs(3000));
        assert!(!format!("{stored:?}").contains("secret-value"));

        tokio::time::advance(Duration::from_secs(100)).await;
        let loaded = stored
            .with_expires_in(Duration::from_secs(2900))
            .to_token(Instant::now())
            .unwrap();
        assert!(loaded.same_token(&token));
        assert_eq!(loaded.expires_at(), token.expires_at());
        assert_eq!(loaded.lifetime(), token.lifetime());
        assert_eq!(loaded.scopes(), ["a", "b"]);
    }

    #[test]
    fn owners_differ() {
        assert_ne!(StoreLock::new_owner(), StoreLock::new_owner());
    }
}
