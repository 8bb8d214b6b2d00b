//! [`TokenCache`]: the engine that decides when a token is fetched.
//!
//! One cache per credential, shared by every client that uses it (clones share
//! one state). It hands out the current token without locking or allocating
//! while the token is fresh, refreshes it ahead of expiry in a background task
//! while callers keep the current one, fetches once for any number of
//! concurrent callers, keeps a valid token when a refresh fails, backs off
//! (honouring `Retry-After`) when the token endpoint fails, and drops a token
//! only when it is still the one a 401 was answered to.
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::TokenCache;
//! use cxone_auth::token::StaticToken;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let source = StaticToken::new("token-value").lifetime(Duration::from_secs(3600));
//! let tokens = TokenCache::new(source);
//!
//! // Hot path: synchronous, no lock, no allocation. `None` means "no usable
//! // token right now": ask the async path, which waits for the one fetch.
//! let token = match tokens.cached() {
//!     Some(token) => token,
//!     None => tokens.token().await?,
//! };
//! assert_eq!(token.header_value(), "Bearer token-value");
//!
//! // The server answered 401 to a request that carried `token`:
//! tokens.invalidate(&token);
//! # Ok::<(), cxone_auth::Error>(()) }).unwrap();
//! ```
//!
//! # Reading on every request
//!
//! Three reads, from most convenient to cheapest; none waits, locks or
//! allocates while the token is fresh:
//!
//! - [`TokenCache::cached`]: the `Arc<AccessToken>` (its claims, scopes,
//!   expiry), invalidated with [`TokenCache::invalidate`].
//! - [`TokenCache::cached_header`]: the `Authorization` header and a
//!   [`TokenId`], invalidated with [`TokenCache::invalidate_id`]; no reference
//!   count taken on the token.
//! - [`TokenReader::cached_header`]: the same through a per-owner reader
//!   (`&mut self`, e.g. inside a tower `Service`), which checks that its entry
//!   is current with one plain load and counts its hits locally, so that a
//!   read costs little more than cloning a header.
//!
//! While a token is before its refresh point, a flag set by a timer tells
//! reads it is fresh, so they do not read the clock; past it (or every few
//! hundred reads anyway) they go by tokio's clock.
//!
//! # Timing
//!
//! A token is refreshed at `expires_at - min(refresh_before, lifetime / 2)`,
//! minus up to [`refresh_jitter`](TokenCacheBuilder::refresh_jitter) of that
//! margin: five minutes early for a one-hour token, at about 30 s for a
//! 60-second token. It is handed out until `expires_at - expiry_skew`. The
//! lifetime counts from when the token was requested, on tokio's monotonic
//! clock.
//!
//! A source that returns a token already expired, or expiring within the skew
//! (a zero lifetime), has failed: callers get an
//! [`ErrorKind::InvalidResponse`](crate::ErrorKind::InvalidResponse) error and
//! the next fetch waits for the backoff, so such a source is never called in a
//! loop.
//!
//! # Failures
//!
//! A failed refresh never replaces a valid token: callers keep it, and the
//! refresh is tried again after the backoff. Without a valid token, the error
//! of the failed fetch is handed at once to every caller until the backoff
//! ends; then the next caller starts one new fetch. Permanent errors (rejected
//! credentials) back off the same way.
//!
//! # Shared store
//!
//! With a [`TokenStore`] and a source that has a
//! [`shared_key`](crate::TokenSource::shared_key), a cache looks in the store
//! before fetching and publishes what it fetched; see [`store`]. With the
//! `redis` feature, `RedisStore` shares tokens between the processes of a
//! fleet.

mod builder;
mod cell;
mod flight;
mod memory;
mod reader;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
mod redis;
mod registry;
mod shared;
mod stats;
pub mod store;
mod timing;

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;

pub use builder::{
    DEFAULT_FETCH_TIMEOUT, DEFAULT_LOAD_TIMEOUT, DEFAULT_STORE_WAIT, TokenCacheBuilder,
};
pub use cell::TokenId;
pub use memory::MemoryStore;
pub use reader::{HIT_BATCH, TokenReader};
#[cfg(feature = "redis")]
pub use redis::{
    DEFAULT_KEY_PREFIX, DEFAULT_OPERATION_TIMEOUT, DEFAULT_REDIS_URL, REDIS_URL_ENV, RedisStore,
    RedisStoreBuilder,
};
#[cfg(feature = "redis-encryption")]
pub use redis::{ENCRYPTION_KEY_BYTES, EncryptionKey};
pub use stats::CacheStats;
pub use store::{StoreLock, StoredToken, TokenStore};
pub use timing::{
    DEFAULT_BACKOFF_MAX, DEFAULT_BACKOFF_MIN, DEFAULT_EXPIRY_SKEW, DEFAULT_REFRESH_BEFORE,
    DEFAULT_REFRESH_JITTER,
};

use self::builder::Config;
use self::cell::Entry;
use self::flight::Outcome;
use self::shared::{Next, Shared};
use crate::token::{DynTokenSource, TokenSource};
use crate::{AccessToken, Error};

/// A cached, refreshed-ahead access token for one credential.
///
/// Cheap to clone; clones share one cache. See the [module docs](self).
#[derive(Clone)]
pub struct TokenCache {
    shared: Arc<Shared>,
}

impl TokenCache {
    /// A cache over `source` with the default settings.
    pub fn new<S: TokenSource>(source: S) -> Self {
        Self::builder(source).build()
    }

    /// A builder for a cache over `source`, to change its settings.
    pub fn builder<S: TokenSource>(source: S) -> TokenCacheBuilder {
        TokenCacheBuilder::new(source)
    }

    pub(crate) fn from_parts(
        source: Arc<dyn DynTokenSource>,
        config: Config,
        store: Option<(Arc<dyn TokenStore>, String)>,
    ) -> Self {
        Self {
            shared: Shared::new(source, config, store),
        }
    }

    /// The current token, if it is usable, without waiting: no `.await`, no
    /// lock, no allocation while the token is before its refresh point.
    ///
    /// Past the refresh point it still returns the token, and starts one
    /// refresh in the background (if none runs and no backoff is pending).
    /// `None` means there is no usable token: call [`token`](Self::token).
    ///
    /// Keep the returned token with the request it authorized, to
    /// [`invalidate`](Self::invalidate) exactly it if the server answers 401.
    /// Middleware that needs only the header and the token's identity saves a
    /// reference count with [`cached_header`](Self::cached_header).
    #[inline]
    pub fn cached(&self) -> Option<Arc<AccessToken>> {
        self.shared.read(|entry| Arc::clone(&entry.token))
    }

    /// The current token's `Authorization` header and its [`TokenId`], if the
    /// token is usable: [`cached`](Self::cached) at the cost of cloning the
    /// header alone, for a per-request path.
    ///
    /// On a 401, pass the id to [`invalidate_id`](Self::invalidate_id).
    #[inline]
    pub fn cached_header(&self) -> Option<(HeaderValue, TokenId)> {
        self.shared.read(|entry| (entry.header.clone(), entry.id))
    }

    /// A reader of this cache for one owner (one service instance): the
    /// same reads as [`cached`](Self::cached) and
    /// [`cached_header`](Self::cached_header), through `&mut`, with fewer
    /// atomic operations each.
    pub fn reader(&self) -> TokenReader {
        TokenReader::new(&self.shared)
    }

    /// The current token, fetching one if there is no usable token.
    ///
    /// Waits only when there is no usable token, for the one fetch shared by
    /// every caller; a caller that is cancelled or gives up cancels nothing.
    ///
    /// # Errors
    ///
    /// The error of the fetch (the same for every caller that waited on it,
    /// and handed at once to later callers until the backoff ends), or
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) when no token came
    /// within the [`load_timeout`](TokenCacheBuilder::load_timeout), or
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) outside a tokio runtime.
    pub async fn token(&self) -> Result<Arc<AccessToken>, Error> {
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        Ok(Arc::clone(&self.load().await?.token))
    }

    /// The `Authorization` header of the current token: `Bearer <token>`,
    /// marked sensitive. See [`token`](Self::token).
    ///
    /// # Errors
    ///
    /// As [`token`](Self::token).
    pub async fn header(&self) -> Result<HeaderValue, Error> {
        Ok(self.header_with_id().await?.0)
    }

    /// The current token's header and [`TokenId`], fetching the token if
    /// there is no usable one: the waiting twin of
    /// [`cached_header`](Self::cached_header).
    ///
    /// # Errors
    ///
    /// As [`token`](Self::token).
    pub async fn header_with_id(&self) -> Result<(HeaderValue, TokenId), Error> {
        if let Some(cached) = self.cached_header() {
            return Ok(cached);
        }
        let entry = self.load().await?;
        Ok((entry.header.clone(), entry.id))
    }

    /// The slow path: the entry that landed meanwhile, the fetch in flight,
    /// the error of the last fetch during its backoff, or a new fetch.
    async fn load(&self) -> Result<Arc<Entry>, Error> {
        let receiver = match self.shared.next()? {
            Next::Ready(entry) => return Ok(entry),
            Next::Wait(receiver) => receiver,
        };
        stats::Counters::bump(&self.shared.counters.waits);
        let limit = self.shared.config.load_timeout;
        match tokio::time::timeout(limit, wait(receiver)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::timeout(format!(
                "no token within the load timeout ({limit:?}); the fetch goes on"
            ))),
        }
    }

    /// Drops `token` if it is still the current token, and starts fetching
    /// its replacement. Returns whether it was dropped.
    ///
    /// Call it when the server rejected a request that carried `token` (a 401).
    /// Invalidating a token that was already replaced does nothing, so a burst
    /// of 401s for one token causes one fetch.
    pub fn invalidate(&self, token: &AccessToken) -> bool {
        self.shared
            .invalidate(|entry| std::ptr::eq(&*entry.token, token) || entry.token.same_token(token))
    }

    /// [`invalidate`](Self::invalidate) by the [`TokenId`] that
    /// [`cached_header`](Self::cached_header) or
    /// [`header_with_id`](Self::header_with_id) returned.
    pub fn invalidate_id(&self, id: TokenId) -> bool {
        self.shared.invalidate(|entry| entry.id == id)
    }

    /// The cache's counters so far.
    pub fn stats(&self) -> CacheStats {
        self.shared.counters.snapshot()
    }
}

async fn wait(mut receiver: tokio::sync::watch::Receiver<Option<Outcome>>) -> Outcome {
    match receiver.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone().unwrap_or_else(|| Err(abandoned())),
        Err(_) => Err(abandoned()),
    }
}

fn abandoned() -> Error {
    Error::unavailable("the token fetch was abandoned before it finished (its runtime shut down)")
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("has_usable_token", &self.shared.has_usable_token())
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
