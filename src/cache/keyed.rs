//! [`KeyedCaches`]: one [`TokenCache`] per key, for a process that serves
//! many CXone credentials through one auth layer.
//!
//! A thin map of caches: the keys are spread over shards, each an immutable
//! map behind an `ArcSwap`, so a request's lookup takes no lock and a new
//! key copies one shard, not the set. Eviction stamps each slot from one
//! counter and removes the oldest slots whose cache nothing else holds; it
//! runs only when a key is added, with no task or timer.

use std::any::type_name;
use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use http::Extensions;

use super::TokenCache;
use crate::Error;

/// The default bound on the number of caches; see [`KeyedCaches::max_caches`].
const DEFAULT_MAX_CACHES: usize = 10_000;

/// How many maps the keys are spread over: adding a key copies one of them.
/// 64 keeps a copy at 10,000 keys to about 160 entries, for 512 bytes of
/// `ArcSwap`s.
const SHARDS: usize = 64;

/// What builds the cache of a key.
type Build<K> = dyn Fn(&K) -> Result<TokenCache, Error> + Send + Sync;

/// A set of slots, looked up by key.
type Shard<K> = HashSet<Slot<K>>;

/// A bounded set of [`TokenCache`]s, one per key (a tenant, a customer),
/// each built on first use: for a process that serves many CXone
/// credentials through one auth layer. Cheap to clone; clones share one set.
///
/// Each key's cache is built on first use by a closure the user gives, so
/// each key chooses its own source and settings (store, timing). The set is
/// a thin map of caches: every token is cached, refreshed and invalidated by
/// its key's [`TokenCache`], as it would be alone.
///
/// [`CxoneAuthLayer::keyed`](crate::CxoneAuthLayer::keyed) picks the cache of
/// each request by the key in the request's `http::Extensions`:
///
/// ```
/// use std::convert::Infallible;
/// use cxone_auth::{CxoneAuthLayer, Error, ErrorKind, KeyedCaches, StaticToken, TokenCache};
/// use http::{Request, Response, header::AUTHORIZATION};
/// use tower::{ServiceBuilder, ServiceExt as _};
///
/// /// The key: which customer a request is for.
/// #[derive(Clone, PartialEq, Eq, Hash)]
/// struct Customer(String);
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tower::BoxError> {
/// let caches = KeyedCaches::new(|customer: &Customer| {
///     // Look up the customer's access key (a database, a secrets manager)
///     // and build its source, e.g. `AccessKeyGrant::new(..)?`.
///     match customer.0.as_str() {
///         "acme" => Ok(TokenCache::new(StaticToken::new("acme-token"))),
///         "globex" => Ok(TokenCache::new(StaticToken::new("globex-token"))),
///         _ => Err(Error::new(ErrorKind::Config, "no access key for this customer")),
///     }
/// })
/// .max_caches(1_000);
///
/// let client = ServiceBuilder::new()
///     .layer(CxoneAuthLayer::keyed(caches.clone()))
///     .service_fn(|request: Request<()>| async move {
///         // Stands for an HTTP client: echoes the header it received.
///         let header = request.headers()[AUTHORIZATION].to_str().unwrap().to_owned();
///         Ok::<_, Infallible>(Response::new(header))
///     });
///
/// let url = "https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents";
/// let mut request = Request::get(url).body(())?;
/// request.extensions_mut().insert(Customer("globex".into()));
/// let response = client.clone().oneshot(request).await?;
/// assert_eq!(response.body(), "Bearer globex-token");
/// assert_eq!(caches.len(), 1);
///
/// // No key, or a key the closure refuses: a typed error, nothing sent.
/// let err = client.oneshot(Request::get(url).body(())?).await.unwrap_err();
/// assert_eq!(err.downcast_ref::<Error>().unwrap().kind(), ErrorKind::Config);
/// # Ok(())
/// # }
/// ```
///
/// # Bounded
///
/// The set holds at most [`max_caches`](KeyedCaches::max_caches) caches.
/// When a new key would exceed it, the least recently used caches that no
/// request or other handle holds are dropped, with their tokens; a later
/// request for such a key builds its cache again (and fetches a token). A
/// cache that a request in flight holds, or a [`TokenCache`] clone the user
/// keeps, is never dropped: if every cache is held, the set grows past the
/// bound until some are idle again. An idle cache costs no task and no
/// timer, only its memory.
///
/// # Costs
///
/// Finding the cache of a key that has one takes no lock and allocates
/// nothing: a read of the current map and a hash lookup. The keys are
/// spread over 64 maps (shards), each replaced whole when a key is added to
/// it, under a lock only creators take: adding a key copies one shard (a
/// 64th of the keys, a reference count each), not the set, so filling the
/// set costs little more than the caches themselves (in the crate's
/// benchmark, 10,000 keys with their tokens in about 130 ms). At the bound,
/// adding a key also reads every cache's last use to find the oldest idle
/// ones. A cache costs about 2 KiB beside its token.
pub struct KeyedCaches<K> {
    shared: Arc<Shared<K>>,
}

struct Shared<K> {
    /// Read without a lock by every request; each replaced whole by
    /// creators.
    shards: Box<[ArcSwap<Shard<K>>]>,
    /// Picks a key's shard.
    spread: RandomState,
    /// Taken only to add a key, so that two first requests for one key
    /// build one cache, and evictions see one count.
    creating: Mutex<()>,
    /// How many caches the shards hold; written under `creating`.
    len: AtomicUsize,
    build: Box<Build<K>>,
    max_caches: AtomicUsize,
    /// Counts uses; a cache's `last_used` is a reading of it.
    clock: AtomicU64,
}

/// One key, its cache and when it was last used, in one allocation that
/// every copy of its shard shares; found by the key alone.
struct Slot<K>(Arc<SlotInner<K>>);

struct SlotInner<K> {
    key: K,
    cache: TokenCache,
    last_used: AtomicU64,
}

impl<K> Clone for Slot<K> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<K: Hash> Hash for Slot<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.key.hash(state);
    }
}

impl<K: PartialEq> PartialEq for Slot<K> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}

impl<K: Eq> Eq for Slot<K> {}

/// Hash and equality are the key's, so a shard finds a slot by its key.
impl<K> Borrow<K> for Slot<K> {
    fn borrow(&self) -> &K {
        &self.0.key
    }
}

impl<K> Clone for KeyedCaches<K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> KeyedCaches<K>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    /// An empty set whose cache for a key is built by `build`, on the first
    /// request for that key.
    ///
    /// `build` returns the whole [`TokenCache`], so each key chooses its
    /// source and settings; an error it returns fails the request that
    /// asked, as it is, and the next request for the key calls `build`
    /// again. It runs under the set's creation lock, so it must not use this
    /// set, and it should not block: it should build the cache, not fetch a
    /// token (a cache fetches on first use).
    pub fn new(build: impl Fn(&K) -> Result<TokenCache, Error> + Send + Sync + 'static) -> Self {
        Self {
            shared: Arc::new(Shared {
                shards: (0..SHARDS).map(|_| ArcSwap::default()).collect(),
                spread: RandomState::new(),
                creating: Mutex::new(()),
                len: AtomicUsize::new(0),
                build: Box::new(build),
                max_caches: AtomicUsize::new(DEFAULT_MAX_CACHES),
                clock: AtomicU64::new(0),
            }),
        }
    }

    /// Keeps at most `max` caches (at least 1): adding a key beyond it drops
    /// the least recently used idle caches. Caches in use are never
    /// dropped, so the set can grow past `max` while they all are (see
    /// [Bounded](KeyedCaches#bounded)). Applies to every clone of the set.
    ///
    /// Defaults to 10,000: a cache with its token costs a few KiB (tens of
    /// MiB at the bound), and few processes serve more tenants at once; a
    /// process that does should raise it rather than fetch evicted tokens
    /// again.
    pub fn max_caches(self, max: usize) -> Self {
        self.shared.max_caches.store(max.max(1), Relaxed);
        self
    }

    /// The cache of `key`, built by the set's closure if the set has none.
    ///
    /// # Errors
    ///
    /// The error of the closure, as it returned it.
    pub fn get(&self, key: &K) -> Result<TokenCache, Error> {
        self.shared.get(key)
    }

    /// How many caches the set holds now.
    pub fn len(&self) -> usize {
        self.shared.len.load(Relaxed)
    }

    /// Whether the set holds no cache.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The set with its key type erased, for the auth layer.
    pub(crate) fn into_lookup(self) -> Arc<dyn CacheLookup> {
        self.shared
    }
}

impl<K> fmt::Debug for KeyedCaches<K> {
    /// The size and the bound; never a key or a token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

impl<K> fmt::Debug for Shared<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedCaches")
            .field("len", &self.len.load(Relaxed))
            .field("max_caches", &self.max_caches.load(Relaxed))
            .finish_non_exhaustive()
    }
}

/// Picks a request's cache by the key in its extensions: a
/// [`KeyedCaches`] whose key type the auth layer does not name.
pub(crate) trait CacheLookup: Send + Sync + fmt::Debug {
    /// The cache of the key in `extensions`; `None` when the request type
    /// keeps its extensions private (`reqwest::Request`).
    fn cache_for(&self, extensions: Option<&Extensions>) -> Result<TokenCache, Error>;
}

impl<K> CacheLookup for Shared<K>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    fn cache_for(&self, extensions: Option<&Extensions>) -> Result<TokenCache, Error> {
        let Some(extensions) = extensions else {
            return Err(Error::config(
                "a keyed auth layer reads each request's key from its extensions, which reqwest::Request keeps private; \
                 send http::Request, or use the reqwest-middleware integration, whose extensions carry the key",
            ));
        };
        let Some(key) = extensions.get::<K>() else {
            return Err(Error::config(format!(
                "the request carries no `{}` in its extensions, so the keyed auth layer cannot choose its token; nothing was sent",
                type_name::<K>()
            )));
        };
        self.get(key)
    }
}

impl<K> Shared<K>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    #[inline]
    fn get(&self, key: &K) -> Result<TokenCache, Error> {
        let shard = self.shard_of(key);
        match self.shards[shard].load().get(key) {
            Some(slot) => Ok(self.touch(&slot.0)),
            None => self.create(key, shard),
        }
    }

    #[inline]
    fn shard_of(&self, key: &K) -> usize {
        self.spread.hash_one(key) as usize % SHARDS
    }

    /// Marks `slot` as the most recently used. The shared clock moves only
    /// when another cache was used since this one, so a run of requests for
    /// one key writes nothing shared.
    #[inline]
    fn touch(&self, slot: &SlotInner<K>) -> TokenCache {
        if slot.last_used.load(Relaxed) != self.clock.load(Relaxed) {
            slot.last_used.store(self.tick(), Relaxed);
        }
        slot.cache.clone()
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Relaxed) + 1
    }

    /// Builds the cache of `key` unless another caller did meanwhile, and
    /// publishes a copy of its shard with it, dropping idle caches beyond
    /// the bound from theirs.
    #[cold]
    fn create(&self, key: &K, shard: usize) -> Result<TokenCache, Error> {
        // The lock guards no data: a panic in `build` leaves nothing half-done.
        let _creating = self.creating.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = self.shards[shard].load().get(key) {
            return Ok(self.touch(&slot.0));
        }
        let cache = (self.build)(key)?;
        let len = self.len.load(Relaxed);
        let mut edits = self.evict_idle(len.saturating_sub(self.max_caches.load(Relaxed) - 1));
        let evicted: usize = edits.values().map(|(_, removed)| removed).sum();
        let slot = Slot(Arc::new(SlotInner {
            key: key.clone(),
            cache: cache.clone(),
            last_used: AtomicU64::new(self.tick()),
        }));
        self.edit(&mut edits, shard).0.insert(slot);
        for (index, (next, _)) in edits {
            // The old shard is dropped here, most likely, rather than by a
            // request that read it.
            let _old = self.shards[index].swap(Arc::new(next));
        }
        self.len.store(len + 1 - evicted, Relaxed);
        Ok(cache)
    }

    /// A copy of shard `index` to change, made on first use; with how many
    /// slots were removed from it.
    fn edit<'e>(
        &self,
        edits: &'e mut BTreeMap<usize, (Shard<K>, usize)>,
        index: usize,
    ) -> &'e mut (Shard<K>, usize) {
        edits
            .entry(index)
            .or_insert_with(|| (HashSet::clone(&self.shards[index].load()), 0))
    }

    /// Copies of the shards without the `excess` least recently used caches
    /// that nothing but the set holds (fewer if fewer are idle).
    ///
    /// A request that read a shard just before may still take a dropped
    /// cache: it is served by it, and the next request for its key builds a
    /// new one.
    fn evict_idle(&self, excess: usize) -> BTreeMap<usize, (Shard<K>, usize)> {
        let mut edits = BTreeMap::new();
        if excess == 0 {
            return edits;
        }
        let mut idle: Vec<(u64, usize, Slot<K>)> = Vec::new();
        for (index, shard) in self.shards.iter().enumerate() {
            let shard = shard.load();
            let idle_here = shard.iter().filter(|slot| !slot.0.cache.is_held());
            idle.extend(
                idle_here.map(|slot| (slot.0.last_used.load(Relaxed), index, slot.clone())),
            );
        }
        let excess = excess.min(idle.len());
        if excess == 0 {
            return edits;
        }
        if excess < idle.len() {
            idle.select_nth_unstable_by_key(excess - 1, |(last_used, ..)| *last_used);
        }
        for (_, index, slot) in idle.drain(..excess) {
            let (next, removed) = self.edit(&mut edits, index);
            next.remove(&slot.0.key);
            *removed += 1;
        }
        edits
    }
}
