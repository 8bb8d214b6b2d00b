//! [`TokenCacheBuilder`]: every setting of a [`TokenCache`], with its default.
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::TokenCache;
//! use cxone_auth::token::StaticToken;
//!
//! let cache = TokenCache::builder(StaticToken::new("t"))
//!     .refresh_before(Duration::from_secs(120))
//!     .expiry_skew(Duration::from_secs(2))
//!     .load_timeout(Duration::from_secs(5))
//!     .backoff(Duration::from_millis(500), Duration::from_secs(10))
//!     .build();
//! # drop(cache);
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::TokenCache;
use super::store::TokenStore;
use super::timing::{MAX_REFRESH_JITTER, Timing};
use crate::token::{DynTokenSource, TokenSource};

/// How long a caller waits for a token that is being fetched, by default.
///
/// A caller waits only when there is no usable token. Past this it gets a
/// timeout error while the fetch carries on for the others; it is a bound on
/// the caller's wait, separate from the token request's own timeouts.
pub const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(15);

/// How long one fetch may run before it counts as failed, by default.
///
/// A backstop for sources without a timeout of their own (the crate's HTTP
/// sources time out sooner): without it, a source that never answers would
/// leave every later caller waiting on a fetch that never ends.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a cache waits for another cache's token when that one holds the
/// store's fetch lock, by default, before fetching itself.
///
/// A token request takes well under a second; a holder that takes longer has
/// probably died, and the fleet must not stall on it.
pub const DEFAULT_STORE_WAIT: Duration = Duration::from_secs(5);

/// Settings shared by the cache's state and its fetch tasks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(crate) timing: Timing,
    pub(crate) load_timeout: Duration,
    pub(crate) fetch_timeout: Duration,
    pub(crate) store_wait: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            timing: Timing::default(),
            load_timeout: DEFAULT_LOAD_TIMEOUT,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            store_wait: DEFAULT_STORE_WAIT,
        }
    }
}

/// Builds a [`TokenCache`]; see [`TokenCache::builder`].
#[must_use]
pub struct TokenCacheBuilder {
    source: Arc<dyn DynTokenSource>,
    config: Config,
    store: Option<Arc<dyn TokenStore>>,
}

impl TokenCacheBuilder {
    pub(crate) fn new<S: TokenSource>(source: S) -> Self {
        Self {
            source: Arc::new(source),
            config: Config::default(),
            store: None,
        }
    }

    /// Refresh a token this long before it expires, at most; tokens living
    /// less than twice this are refreshed at half their life. Callers keep
    /// the current token while the refresh runs.
    ///
    /// Default: [`DEFAULT_REFRESH_BEFORE`](super::DEFAULT_REFRESH_BEFORE) (5 min).
    pub fn refresh_before(mut self, before: Duration) -> Self {
        self.config.timing.refresh_before = before;
        self
    }

    /// Stop handing out a token this long before it expires (capped at a
    /// quarter of its lifetime). Past this point callers wait for a new token.
    ///
    /// Default: [`DEFAULT_EXPIRY_SKEW`](super::DEFAULT_EXPIRY_SKEW) (5 s).
    pub fn expiry_skew(mut self, skew: Duration) -> Self {
        self.config.timing.expiry_skew = skew;
        self
    }

    /// Refresh up to this share of the refresh margin earlier, at random, so
    /// that caches started together do not refresh together. Clamped to
    /// `0.0..=0.5`; `0.0` makes refreshes exactly predictable.
    ///
    /// Default: [`DEFAULT_REFRESH_JITTER`](super::DEFAULT_REFRESH_JITTER) (0.1).
    pub fn refresh_jitter(mut self, fraction: f64) -> Self {
        self.config.timing.refresh_jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, MAX_REFRESH_JITTER)
        };
        self
    }

    /// How long a caller with no usable token waits for the fetch before it
    /// gets a timeout error. The fetch itself goes on for the other callers.
    ///
    /// Default: [`DEFAULT_LOAD_TIMEOUT`] (15 s).
    pub fn load_timeout(mut self, timeout: Duration) -> Self {
        self.config.load_timeout = timeout;
        self
    }

    /// How long one fetch may run before it is abandoned and counted as a
    /// failure (then backed off like any other).
    ///
    /// Default: [`DEFAULT_FETCH_TIMEOUT`] (60 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.config.fetch_timeout = timeout;
        self
    }

    /// The backoff after failed fetches: the first wait is about `min`, each
    /// failure in a row doubles it, up to `max`, with jitter (between half and
    /// all of each step). A `Retry-After` from the token endpoint is honoured
    /// up to `max`. If `max < min`, `min` is used for both.
    ///
    /// Defaults: [`DEFAULT_BACKOFF_MIN`](super::DEFAULT_BACKOFF_MIN) (1 s) and
    /// [`DEFAULT_BACKOFF_MAX`](super::DEFAULT_BACKOFF_MAX) (30 s).
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.config.timing.backoff_min = min;
        self.config.timing.backoff_max = max.max(min);
        self
    }

    /// Shares tokens through `store` with other caches of the same
    /// credential. Used only when the source has a
    /// [`shared_key`](TokenSource::shared_key).
    ///
    /// Default: no store.
    pub fn store(mut self, store: impl TokenStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// [`store`](Self::store) with a store already behind an `Arc`.
    pub fn shared_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// How long to wait for another cache's token while it holds the
    /// store's fetch lock, before fetching anyway.
    ///
    /// Default: [`DEFAULT_STORE_WAIT`] (5 s).
    pub fn store_wait(mut self, wait: Duration) -> Self {
        self.config.store_wait = wait;
        self
    }

    /// Builds the cache. Nothing is fetched until the first read.
    pub fn build(self) -> TokenCache {
        let store = self
            .store
            .and_then(|store| DynTokenSource::shared_key(&*self.source).map(|key| (store, key)));
        TokenCache::from_parts(self.source, self.config, store)
    }
}

impl fmt::Debug for TokenCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCacheBuilder")
            .field("config", &self.config)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}
