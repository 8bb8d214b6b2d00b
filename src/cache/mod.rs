//! [`TokenCache`]: the engine that decides when a token is fetched.
//!
//! One cache per credential; clones share one state ([`KeyedCaches`] holds
//! one per key, for a process serving many credentials). While the token is
//! fresh, [`TokenCache::cached`] hands it out without waiting, locking or
//! allocating. Past its refresh point it is still handed out while one
//! refresh runs in the background; callers wait only when there is no usable
//! token, for the one fetch in flight.
//!
//! A read is an `ArcSwap` load, one clock read against the token's deadlines
//! and a clone of its pre-built header. That is slower per call than a flag a
//! timer flips (tens of nanoseconds; see `docs/benchmarks.md`), and the
//! difference does not show once a request crosses a socket: the plain read
//! was chosen over the timer, its task and its bookkeeping.
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::{StaticToken, TokenCache};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let tokens = TokenCache::new(StaticToken::new("token-value").lifetime(Duration::from_secs(3600)));
//!
//! // `None` means "no usable token right now": the async path waits for the one fetch.
//! let token = match tokens.cached() {
//!     Some(token) => token,
//!     None => tokens.token().await?,
//! };
//! assert_eq!(token.header_value(), "Bearer token-value");
//!
//! // The server answered 401 to a request that carried `token`:
//! assert!(tokens.invalidate(&token));
//! assert!(tokens.cached().is_none());
//! # Ok::<(), cxone_auth::Error>(()) }).unwrap();
//! ```
//!
//! # Timing
//!
//! A token is refreshed at `expires_at - min(refresh_before, lifetime / 2)`,
//! minus up to [`refresh_jitter`](TokenCacheBuilder::refresh_jitter) of that
//! margin: five minutes early for a one-hour token, at about 30 s for a
//! 60-second token. It is handed out until `expires_at - expiry_skew`. The
//! lifetime counts from when the token was requested, on tokio's monotonic
//! clock. A source that returns a token living less than a second, already
//! expired, or expiring within the skew, has failed like any other failure.
//!
//! # Failures
//!
//! A failed refresh never replaces a valid token: callers keep it, and the
//! refresh is tried again after the [backoff](TokenCacheBuilder::backoff).
//! Without a valid token, the error of the failed fetch is handed at once to
//! every caller until the backoff ends; then the next caller starts one new
//! fetch. A [`TokenStore`] shares tokens between caches and processes; store
//! trouble never fails a request.
//!
//! # Invalidation
//!
//! [`TokenCache::invalidate`] drops the token only while it is still the
//! current one, so a burst of 401s for one token causes one fetch. The auth
//! layer's invalidations are bounded too: a token fetched to replace a
//! rejected one is kept for a backoff (the backoff's minimum, doubling each
//! time it is rejected again while held), so a server that answers 401 to
//! every token costs a fetch per backoff, not two per request.

mod fetch;
mod keyed;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod status;
mod store;
mod timing;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::HeaderValue;
use tokio::sync::watch;
use tokio::time::Instant;

use self::fetch::{Fetch, Reason};
pub(crate) use self::keyed::CacheLookup;
pub use self::keyed::KeyedCaches;
pub use self::memory::MemoryStore;
#[cfg(feature = "redis-encryption")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-encryption")))]
pub use self::redis::EncryptionKey;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::RedisStore;
pub use self::status::CacheStatus;
pub use self::store::{StoreLock, StoredToken, TokenStore};
use self::timing::{Schedule, Timing};
use crate::backoff::{Backoff, later};
use crate::flight::{self, Flight, Next};
use crate::metrics::{self, LifetimeGauge};
use crate::token::{DynTokenSource, TokenSource};
use crate::{AccessToken, Error};

/// Defaults of the builder's settings; each is explained on its setter.
const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(15);
const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_STORE_WAIT: Duration = Duration::from_secs(5);
const DEFAULT_BACKOFF_MIN: Duration = Duration::from_secs(1);
const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);
const DEFAULT_NAME: &str = "default";

/// A cached, refreshed-ahead access token for one credential.
///
/// Cheap to clone; clones share one cache. See the [module docs](self).
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

struct Inner {
    /// The current token; read without a lock on every request.
    current: ArcSwapOption<Entry>,
    /// The id of the next entry.
    next_id: AtomicU64,
    flight: Arc<Flight<Arc<Entry>>>,
    fetch: Fetch,
    load_timeout: Duration,
    /// How long a token fetched after invalidations in a row is kept.
    hold: Backoff,
    /// Every token change, for [`TokenCache::subscribe`].
    changes: watch::Sender<Option<Arc<AccessToken>>>,
}

/// The current token and when it is due.
#[derive(Debug)]
struct Entry {
    token: Arc<AccessToken>,
    schedule: Schedule,
    /// Which of this cache's tokens it is, so a response can name the token
    /// its request carried without holding it.
    id: u64,
    /// Invalidations in a row that led to this token (0 for a token fetched
    /// for another reason), and until when it is kept whatever 401s say.
    rejections: u32,
    held_until: Instant,
    rejected_while_held: AtomicBool,
    lifetime: LifetimeGauge,
}

impl TokenCache {
    /// A cache over `source` with the default settings.
    pub fn new<S: TokenSource>(source: S) -> Self {
        Self::builder(source).build()
    }

    /// A builder for a cache over `source`, to change its settings.
    pub fn builder<S: TokenSource>(source: S) -> TokenCacheBuilder {
        TokenCacheBuilder {
            source: Arc::new(source),
            timing: Timing::default(),
            backoff: (DEFAULT_BACKOFF_MIN, DEFAULT_BACKOFF_MAX),
            load_timeout: DEFAULT_LOAD_TIMEOUT,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            store_wait: DEFAULT_STORE_WAIT,
            store: None,
            name: DEFAULT_NAME.into(),
        }
    }

    /// The current token, if it is usable, without waiting: no `.await`, no
    /// lock, no allocation. Past the refresh point it starts one refresh in
    /// the background. `None` means there is no usable token: call
    /// [`token`](Self::token). Keep the token with the request it authorized,
    /// to [`invalidate`](Self::invalidate) exactly it after a 401.
    #[inline]
    pub fn cached(&self) -> Option<Arc<AccessToken>> {
        self.read(|entry| Arc::clone(&entry.token))
    }

    /// The current token's header and id, if it is usable: what the auth
    /// layer sends with each request, without a reference count on the token.
    #[inline]
    pub(crate) fn cached_header(&self) -> Option<(HeaderValue, u64)> {
        self.read(|entry| (entry.token.header_value().clone(), entry.id))
    }

    #[inline]
    fn read<R>(&self, take: impl FnOnce(&Entry) -> R) -> Option<R> {
        let current = self.inner.current.load();
        let entry = current.as_ref()?;
        let now = Instant::now();
        if now >= entry.schedule.usable_until {
            return None;
        }
        if now >= entry.schedule.refresh_at {
            self.refresh_ahead();
        }
        entry.lifetime.observe(entry.token.expires_at(), now);
        self.inner.fetch.counters.hits.fetch_add(1, Relaxed);
        Some(take(entry))
    }

    /// The current token, waiting if there is no usable token for the one
    /// fetch shared by every caller; a caller that gives up cancels nothing.
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

    /// [`header`](Self::header) with the id to [`invalidate_id`](Self::invalidate_id).
    pub(crate) async fn header_with_id(&self) -> Result<(HeaderValue, u64), Error> {
        if let Some(cached) = self.cached_header() {
            return Ok(cached);
        }
        let entry = self.load().await?;
        Ok((entry.token.header_value().clone(), entry.id))
    }

    /// The slow path: the token that landed meanwhile, the fetch in flight,
    /// the error of the last fetch during its backoff, or a new fetch.
    async fn load(&self) -> Result<Arc<Entry>, Error> {
        let inner = &self.inner;
        let fetch = || self.fetch(Reason::Cold, 0);
        let receiver = match inner.flight.join(|| self.usable_entry(), fetch)? {
            Next::Ready(entry) => {
                inner.fetch.counters.hits.fetch_add(1, Relaxed);
                return Ok(entry);
            }
            Next::Wait(receiver) => receiver,
        };
        inner.fetch.counters.waits.fetch_add(1, Relaxed);
        let started = Instant::now();
        let limit = inner.load_timeout;
        let result = tokio::time::timeout(limit, flight::wait(receiver))
            .await
            .unwrap_or_else(|_| {
                Err(Error::timeout(format!(
                    "no token within the load timeout ({limit:?}); the fetch goes on"
                )))
            });
        metrics::waited(&inner.fetch.name, &result, started.elapsed());
        result
    }

    /// Drops `token` if it is still the current token, and starts fetching
    /// its replacement; returns whether it was dropped. Call it when the
    /// server rejected `token` (a 401): a burst of 401s causes one fetch.
    pub fn invalidate(&self, token: &AccessToken) -> bool {
        self.invalidate_if(false, |entry| {
            std::ptr::eq(&*entry.token, token) || entry.token.same_token(token)
        })
    }

    /// [`invalidate`](Self::invalidate) by the id [`cached_header`](Self::cached_header)
    /// gave, for a 401 the auth layer saw: bounded (see
    /// [Invalidation](crate::cache#invalidation)).
    pub(crate) fn invalidate_id(&self, id: u64) -> bool {
        self.invalidate_if(true, |entry| entry.id == id)
    }

    /// Drops the current token if `is_it`; unless it is `held` (fetched
    /// moments ago to replace a rejected token) and `bounded`.
    fn invalidate_if(&self, bounded: bool, is_it: impl FnOnce(&Entry) -> bool) -> bool {
        let inner = &self.inner;
        let current = inner.current.load();
        let Some(entry) = current.as_ref().filter(|entry| is_it(entry)) else {
            return false;
        };
        if bounded && Instant::now() < entry.held_until {
            // Fetched moments ago to replace a rejected token, and rejected
            // again: the next replacement is held longer.
            entry.rejected_while_held.store(true, Relaxed);
            return false;
        }
        let previous = inner.current.compare_and_swap(&*current, None);
        if !(*previous).as_ref().is_some_and(|p| Arc::ptr_eq(p, entry)) {
            return false; // someone else got there first
        }
        inner.fetch.counters.invalidations.fetch_add(1, Relaxed);
        metrics::invalidated(&inner.fetch.name);
        entry.lifetime.clear();
        inner.changes.send_replace(None);
        // A 401 is almost always followed by a retry that needs a token:
        // start fetching it now rather than when the retry arrives.
        let stale = Arc::clone(&entry.token);
        let rejections = if entry.rejected_while_held.load(Relaxed) {
            entry.rejections.saturating_add(1)
        } else {
            1
        };
        inner
            .flight
            .start_if_idle(|| self.fetch(Reason::Invalidated(stale), rejections));
        true
    }

    /// The cache's counters so far.
    pub fn stats(&self) -> CacheStats {
        self.inner.fetch.counters.snapshot()
    }

    /// What the cache is doing: whether it holds a usable token, whether a
    /// fetch runs, and since when fetches fail. For readiness probes.
    pub fn status(&self) -> CacheStatus {
        let activity = self.inner.flight.activity();
        let now = Instant::now();
        let usable_for = self.usable_entry().map(|entry| {
            entry.lifetime.observe(entry.token.expires_at(), now);
            entry.schedule.usable_until.saturating_duration_since(now)
        });
        match (usable_for, activity.failing, activity.running) {
            (Some(usable_for), Some((last_error, failing_since, _)), _) => CacheStatus::Degraded {
                usable_for,
                failing_since,
                last_error,
            },
            (None, Some((last_error, failing_since, next_try)), _) => CacheStatus::Failing {
                failing_since,
                last_error,
                next_try,
            },
            (usable_for, None, true) => CacheStatus::Refreshing { usable_for },
            (Some(usable_for), None, false) => CacheStatus::Fresh { usable_for },
            (None, None, false) => CacheStatus::Empty,
        }
    }

    /// A receiver of the cache's token changes: each new token as it lands,
    /// and `None` when the current one is dropped after the server rejected
    /// it. For long-lived connections (a websocket) that must authenticate
    /// again when the token changes; requests need not watch it.
    ///
    /// It starts with the current token, if any, marked as seen.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<AccessToken>>> {
        self.inner.changes.subscribe()
    }

    /// The cache's name, the `cache` label of its metrics.
    pub(crate) fn name(&self) -> &metrics::CacheName {
        &self.inner.fetch.name
    }

    /// Whether a handle other than this one exists: a request in flight or
    /// a clone someone keeps. Fetches hold the cache weakly, so they do not
    /// count.
    pub(crate) fn is_held(&self) -> bool {
        Arc::strong_count(&self.inner) > 1
    }

    fn usable_entry(&self) -> Option<Arc<Entry>> {
        let entry = self.inner.current.load_full()?;
        (Instant::now() < entry.schedule.usable_until).then_some(entry)
    }

    #[cold]
    fn refresh_ahead(&self) {
        let inner = &self.inner;
        if inner.flight.start_if_idle(|| self.fetch(Reason::Ahead, 0)) {
            inner.fetch.counters.refreshes_ahead.fetch_add(1, Relaxed);
            metrics::refreshing_ahead(&inner.fetch.name);
        }
    }

    /// One fetch, publishing its token into the cell before it returns (so
    /// that the flight never looks idle with the new token unseen). Holds
    /// the cache weakly: dropping every handle ends it. `rejections`:
    /// invalidations in a row that led to it.
    fn fetch(
        &self,
        reason: Reason,
        rejections: u32,
    ) -> impl Future<Output = Result<Arc<Entry>, Error>> + Send + 'static {
        let fetch = self.inner.fetch.clone();
        let stale = match &reason {
            Reason::Invalidated(token) => Some(Arc::clone(token)),
            _ => self
                .inner
                .current
                .load()
                .as_ref()
                .map(|e| Arc::clone(&e.token)),
        };
        let weak = Arc::downgrade(&self.inner);
        async move {
            let timing = fetch.timing;
            let token = fetch.run(reason, stale).await?;
            let inner = weak
                .upgrade()
                .ok_or_else(|| Error::unavailable("the token cache was dropped"))?;
            let hold = match rejections {
                0 => Duration::ZERO,
                n => inner.hold.wait(n - 1, None, fastrand::f64()),
            };
            let entry = Arc::new(Entry {
                schedule: timing.schedule(&token, fastrand::f64()),
                lifetime: LifetimeGauge::new(&inner.fetch.name, token.expires_at()),
                token: Arc::new(token),
                id: inner.next_id.fetch_add(1, Relaxed),
                rejections,
                held_until: later(Instant::now(), hold),
                rejected_while_held: AtomicBool::new(false),
            });
            inner.current.store(Some(Arc::clone(&entry)));
            inner.changes.send_replace(Some(Arc::clone(&entry.token)));
            Ok(entry)
        }
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("name", &self.inner.fetch.name)
            .field("has_usable_token", &self.usable_entry().is_some())
            .field("timing", &self.inner.fetch.timing)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Builds a [`TokenCache`]; see [`TokenCache::builder`].
///
/// ```
/// use std::time::Duration;
/// use cxone_auth::{StaticToken, TokenCache};
///
/// let cache = TokenCache::builder(StaticToken::new("t"))
///     .refresh_before(Duration::from_secs(120))
///     .expiry_skew(Duration::from_secs(2))
///     .load_timeout(Duration::from_secs(5))
///     .backoff(Duration::from_millis(500), Duration::from_secs(10))
///     .build();
/// # drop(cache);
/// ```
#[must_use]
pub struct TokenCacheBuilder {
    source: Arc<dyn DynTokenSource>,
    timing: Timing,
    backoff: (Duration, Duration),
    load_timeout: Duration,
    fetch_timeout: Duration,
    store_wait: Duration,
    store: Option<Arc<dyn TokenStore>>,
    name: Arc<str>,
}

impl TokenCacheBuilder {
    /// The cache's name: the `cache` label of its metrics (with the `metrics`
    /// feature), so a process with several credentials tells them apart. Never
    /// put a secret in it.
    ///
    /// Defaults to `default`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into().into();
        self
    }

    /// Refresh a token this long before it expires, at most; tokens living
    /// less than twice this are refreshed at half their life.
    ///
    /// Defaults to 5 minutes, the tutorial's buffer: ample time for a
    /// refresh to succeed, or to be retried, before a one-hour token ends.
    pub fn refresh_before(mut self, before: Duration) -> Self {
        self.timing.refresh_before = before;
        self
    }

    /// Stop handing out a token this long before it expires (capped at a
    /// quarter of its lifetime). Past this point callers wait for a new token.
    ///
    /// Defaults to 5 s: the time a request spends on the wire plus small
    /// clock differences at the server, so a token is not sent to arrive dead.
    pub fn expiry_skew(mut self, skew: Duration) -> Self {
        self.timing.expiry_skew = skew;
        self
    }

    /// Refresh up to this share of the refresh margin earlier, at random, so
    /// that caches started together do not refresh together. Clamped to
    /// `0.0..=0.5`; `0.0` makes refreshes exactly predictable.
    ///
    /// Defaults to 0.1: a fleet deployed at once spreads its refreshes over
    /// 30 s of a one-hour token.
    pub fn refresh_jitter(mut self, fraction: f64) -> Self {
        self.timing.refresh_jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, timing::MAX_REFRESH_JITTER)
        };
        self
    }

    /// How long a caller with no usable token waits for the fetch before it
    /// gets a timeout error. The fetch itself goes on for the other callers.
    ///
    /// Defaults to 15 s: longer than the token request's own timeouts, so a
    /// caller sees the request's real error rather than this one.
    pub fn load_timeout(mut self, timeout: Duration) -> Self {
        self.load_timeout = timeout;
        self
    }

    /// How long one fetch may run before it is abandoned and counted as a
    /// failure (then backed off like any other).
    ///
    /// Defaults to 60 s: a backstop for sources without a timeout of their
    /// own (the crate's HTTP sources time out sooner), so a source that never
    /// answers cannot hold every later caller.
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// The backoff after failed fetches: the first wait is about `min`, each
    /// failure in a row doubles it, up to `max`, with jitter (between half and
    /// all of each step). A `Retry-After` from the token endpoint is honoured
    /// up to `max`. If `max < min`, `min` is used for both. Invalidations in
    /// a row back off the same way (see [Invalidation](crate::cache#invalidation)).
    ///
    /// Defaults to 1 s and 30 s: a thousand callers arriving during an outage
    /// cause one token request per second at most, a blip costs a second,
    /// and a recovered endpoint is noticed within half a minute.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = (min, max);
        self
    }

    /// Shares tokens through `store` with other caches of the same
    /// credential. Used only when the source has a
    /// [`shared_key`](TokenSource::shared_key).
    ///
    /// Defaults to no store.
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
    /// Defaults to 5 s: a token request takes well under a second, so a
    /// holder that takes longer has probably died.
    pub fn store_wait(mut self, wait: Duration) -> Self {
        self.store_wait = wait;
        self
    }

    /// Builds the cache. Nothing is fetched until the first read.
    pub fn build(self) -> TokenCache {
        let store = self
            .store
            .and_then(|store| DynTokenSource::shared_key(&*self.source).map(|key| (store, key)));
        let (min, max) = self.backoff;
        let backoff = Backoff::new(min, max, 0.5);
        TokenCache {
            inner: Arc::new(Inner {
                current: ArcSwapOption::empty(),
                next_id: AtomicU64::new(0),
                flight: Flight::new(backoff),
                fetch: Fetch {
                    source: self.source,
                    store,
                    timing: self.timing,
                    fetch_timeout: self.fetch_timeout,
                    store_wait: self.store_wait,
                    counters: Arc::default(),
                    name: self.name,
                },
                load_timeout: self.load_timeout,
                hold: backoff,
                changes: watch::Sender::new(None),
            }),
        }
    }
}

impl fmt::Debug for TokenCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCacheBuilder")
            .field("timing", &self.timing)
            .field("backoff", &self.backoff)
            .field("load_timeout", &self.load_timeout)
            .field("fetch_timeout", &self.fetch_timeout)
            .field("store", &self.store)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A snapshot of a cache's counters, shared by all its clones.
///
/// Counters only grow. Each is read on its own, so a snapshot taken while the
/// cache is busy may be a few events apart between fields.
///
/// ```
/// use cxone_auth::{StaticToken, TokenCache};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let cache = TokenCache::new(StaticToken::new("t"));
/// cache.token().await?;
/// cache.token().await?;
/// let stats = cache.stats();
/// assert_eq!((stats.fetches, stats.waits, stats.hits), (1, 1, 1));
/// # Ok::<(), cxone_auth::Error>(()) }).unwrap();
/// ```
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
    /// Tokens taken from the shared [`TokenStore`] instead of fetched.
    pub store_loads: u64,
}

/// The live counters behind [`CacheStats`]. Relaxed: they order nothing.
#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    waits: AtomicU64,
    fetches: AtomicU64,
    fetch_failures: AtomicU64,
    invalidations: AtomicU64,
    refreshes_ahead: AtomicU64,
    store_loads: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Relaxed),
            waits: self.waits.load(Relaxed),
            fetches: self.fetches.load(Relaxed),
            fetch_failures: self.fetch_failures.load(Relaxed),
            invalidations: self.invalidations.load(Relaxed),
            refreshes_ahead: self.refreshes_ahead.load(Relaxed),
            store_loads: self.store_loads.load(Relaxed),
        }
    }
}
