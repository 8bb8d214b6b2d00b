//! [`RedisStore`]: a [`TokenStore`] on Redis, so that a fleet of processes
//! fetches one token per credential and lifetime, not one per process.
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::TokenCache;
//! use cxone_auth::cache::RedisStore;
//! use cxone_auth::token::AccessKeyGrant;
//!
//! let source = AccessKeyGrant::new("client-id", "client-secret", "ACCESSKEYID", "c2VjcmV0+/x====")?;
//! // `redis://[user:password@]host[:port][/db]`; or `RedisStore::from_env()?` for `REDIS_URL`.
//! let store = RedisStore::builder("redis://127.0.0.1:6379")
//!     .prefix("my-service:cxone:")
//!     .build()?;
//! // Every process of the fleet builds its cache the same way.
//! let tokens = TokenCache::builder(source).store(store.clone()).build();
//! assert!(!format!("{store:?}").contains("password"));
//! # drop(tokens);
//! # Ok::<(), cxone_auth::Error>(())
//! ```
//!
//! # How the fleet shares a token
//!
//! A cache looks in Redis before it fetches. The token of a credential is kept
//! under `<prefix>token:<hex SHA-256 of the source's`
//! [`shared_key`](crate::TokenSource::shared_key)`>`: the key names no client
//! id, access key or URL, and never a secret. The value holds the token, its
//! wall-clock expiry and issue time (Unix milliseconds, since it crosses
//! machines) and its scopes, in a versioned format, and lives in Redis for the
//! token's remaining lifetime less the refresh buffer. Machines' clocks should
//! agree to well within that buffer (five minutes by default).
//!
//! A process that finds no usable token takes the fetch lock
//! (`SET <prefix>lock:<hash> <owner> NX PX <fetch timeout>`), fetches,
//! publishes, and releases the lock with a compare-and-delete script, so only
//! while it still owns it. The others look again with growing pauses until the
//! token appears or the cache's
//! [`store_wait`](crate::TokenCacheBuilder::store_wait) runs out, and then fetch
//! on their own: a holder that crashed never stalls the fleet for longer.
//!
//! A 401 on one process invalidates the shared token only if Redis still holds
//! that same token (a compare-and-delete on its fingerprint), and marks it
//! invalid for the rest of its life, so that a publication of it arriving late
//! does not bring it back.
//!
//! # When Redis fails
//!
//! Redis is an optimisation, never a dependency. Every call is bounded by a
//! short timeout ([`DEFAULT_OPERATION_TIMEOUT`]); a Redis that is down, hangs,
//! or answers garbage reads as an empty store whose lock is always free, so
//! each process fetches its own tokens and no request fails because of Redis.
//! After a timeout, calls fail at once for a moment rather than each waiting
//! out its own. The connection is re-established on the next call once Redis
//! is back ([`ConnectionManager`]), and a lock whose release the outage
//! prevented is released then. Each change between "answering" and "not
//! answering", and the first value in a run that cannot be used, is logged
//! once with `tracing` (target `cxone_auth::cache::redis`), not per call.
//!
//! # Trusting what Redis holds
//!
//! Values this store did not write (another format, a broken fingerprint, a
//! malformed or expired token) are ignored. Without encryption, though, anyone
//! who can write to the Redis can plant a well-formed token, and anyone who can
//! read it can use the tokens. With the `redis-encryption` feature and an
//! `EncryptionKey` (ChaCha20-Poly1305, a random nonce per value, the Redis key
//! name bound as associated data), tokens are unreadable without the key, and
//! values that do not authenticate (written by hand, with another key, moved
//! from another key, altered) are ignored.
//!
//! The store speaks to one Redis server (or a primary); Redis Cluster is not
//! supported, since its scripts touch two keys.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, Script};
use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::{StoreLock, StoredToken, TokenStore};
use crate::{AccessToken, Error};

#[cfg(feature = "redis-encryption")]
mod cipher;
mod entry;
mod health;

#[cfg(feature = "redis-encryption")]
pub use cipher::{ENCRYPTION_KEY_BYTES, EncryptionKey};

use entry::{Entry, Keys};
use health::Health;

/// The environment variable [`RedisStore::from_env`] reads.
pub const REDIS_URL_ENV: &str = "REDIS_URL";

/// The Redis used when `REDIS_URL` is not set: the local default port.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The default prefix of every key the store writes, so its keys are easy to
/// find and never collide with an application's own.
pub const DEFAULT_KEY_PREFIX: &str = "cxone-auth:";

/// How long one Redis call may take before the store gives up on it and the
/// cache carries on without it.
///
/// A healthy Redis answers in well under a millisecond on a LAN; a quarter of
/// a second bounds what a sick one can add to a token refresh, while staying
/// clear of ordinary hiccups.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_millis(250);

/// The most unreleased locks remembered; older ones expire on their own.
const MAX_UNRELEASED_LOCKS: usize = 32;

/// After a call times out, calls within this many operation timeouts (one
/// second by default) fail at once instead of waiting out another timeout:
/// one cache fetch makes several calls, and a Redis that hangs should cost it
/// one timeout, not one per call. A Redis that refuses connections fails fast
/// anyway and is not held down, so its return is noticed on the next call.
const STALL_HOLD_DOWN_TIMEOUTS: u32 = 4;

/// Takes the fetch lock for KEYS[1] as owner ARGV[1] for ARGV[2] ms:
/// `SET NX PX`, and also success when this owner already holds it, so a call
/// retried after a lost reply does not lock its own caller out.
const LOCK_SCRIPT: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
";

/// Deletes KEYS[1] only if its value is ARGV[1]: a lock is released only by
/// the owner that still holds it.
const UNLOCK_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Marks a token invalid for the rest of its life (KEYS[2], for ARGV[2] ms),
/// then deletes KEYS[1] only if its value starts with ARGV[1] (format tag and
/// token fingerprint): an invalidation removes that token, never a newer one,
/// and the mark keeps a late publication of it out.
const INVALIDATE_SCRIPT: &str = r"
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1])) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Writes ARGV[1] to KEYS[1] for ARGV[2] ms unless its token was marked
/// invalid (KEYS[2]): a publication that arrives after a 401 for the same
/// token (from this process or another) does not bring it back.
const STORE_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// A [`TokenStore`] on Redis, through the `redis` crate's
/// auto-reconnecting [`ConnectionManager`].
///
/// Cheap to clone; clones share the connection. Build it with
/// [`new`](Self::new), [`from_env`](Self::from_env) or
/// [`builder`](Self::builder). It connects on first use, from within the
/// tokio runtime that uses it.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    connection: OnceLock<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    #[cfg(feature = "redis-encryption")]
    cipher: Option<cipher::Cipher>,
    health: Health,
    /// Locks this store took and could not release because Redis went away:
    /// (shared key, owner). Released once Redis answers again, so that an
    /// outage does not leave the fleet waiting on a lock nobody holds.
    unreleased: Mutex<Vec<(String, String)>>,
    lock_script: Script,
    unlock_script: Script,
    invalidate_script: Script,
    store_script: Script,
    /// `host:port/db`, for `Debug`: no user name or password.
    endpoint: String,
}

/// Configures a [`RedisStore`]; see [`RedisStore::builder`].
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    #[cfg(feature = "redis-encryption")]
    key: Option<EncryptionKey>,
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://[user:password@]host[:port][/db]`,
    /// or `rediss://` with the `redis` crate's TLS features), with the defaults
    /// of [`builder`](Self::builder).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the URL is not a
    /// Redis URL. Nothing is connected yet, so a Redis that is down is not an
    /// error.
    pub fn new(url: &str) -> Result<Self, Error> {
        Self::builder(url).build()
    }

    /// A store on the Redis named by the `REDIS_URL` environment variable,
    /// else [`DEFAULT_REDIS_URL`].
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn from_env() -> Result<Self, Error> {
        let url = std::env::var(REDIS_URL_ENV).unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
        Self::new(&url)
    }

    /// Configures a store on the Redis at `url`. Defaults: key prefix
    /// [`DEFAULT_KEY_PREFIX`], per-call timeout [`DEFAULT_OPERATION_TIMEOUT`],
    /// no encryption.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: DEFAULT_OPERATION_TIMEOUT,
            #[cfg(feature = "redis-encryption")]
            key: None,
        }
    }

    /// Whether the last call to Redis was answered. Starts `true`; a failure
    /// turns it `false` until a call succeeds again.
    pub fn is_available(&self) -> bool {
        self.inner.health.is_available()
    }

    /// The connection, created on first use so that building a store needs
    /// neither a runtime nor a reachable Redis.
    fn connection(&self) -> Result<ConnectionManager, Error> {
        if let Some(connection) = self.inner.connection.get() {
            return Ok(connection.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.inner.timeout))
            .set_response_timeout(Some(self.inner.timeout))
            // One attempt per reconnection: the next call starts another, so
            // a Redis that returns is used again at once, and a Redis that is
            // down costs each call one refused connection, not a retry loop.
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_lazy_with_config(self.inner.client.clone(), config)
            .map_err(|e| {
                Error::config("the Redis connection could not be set up").with_source(e)
            })?;
        Ok(self.inner.connection.get_or_init(|| connection).clone())
    }

    /// Runs one Redis call under the store's timeout, recording whether Redis
    /// answered.
    ///
    /// A call that fails because the connection broke is made once more
    /// within the same deadline: the manager reconnects after such a failure,
    /// and the second attempt waits for that new connection. So the first
    /// call after Redis returns already succeeds.
    async fn run<T, F, Fut>(&self, operation: &'static str, call: F) -> Result<T, Error>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let now = Instant::now();
        if self.inner.health.holding_down(now) {
            return Err(Error::timeout(format!(
                "the Redis token store did not answer lately; {operation} not tried"
            )));
        }
        let connection = self.connection()?;
        let attempts = async {
            match call(connection.clone()).await {
                Err(e) if is_connection_failure(&e) => call(connection).await,
                other => other,
            }
        };
        match tokio::time::timeout_at(now + self.inner.timeout, attempts).await {
            Ok(Ok(value)) => {
                self.inner.health.up();
                Ok(value)
            }
            Ok(Err(e)) if redis_answered(&e) => {
                // Redis answered, with an error (a key of another type, a
                // script refused): the store is up, this entry is unusable.
                self.inner.health.up();
                Err(
                    Error::invalid_response(format!("Redis refused the token store's {operation}"))
                        .with_source(e),
                )
            }
            Ok(Err(e)) => {
                self.inner.health.down(operation, &e);
                Err(Error::transport(
                    format!("the Redis token store failed during {operation}"),
                    e,
                ))
            }
            Err(_) => {
                let message = format!(
                    "the Redis token store did not answer {operation} within {} ms",
                    self.inner.timeout.as_millis()
                );
                self.inner.health.down(operation, &message);
                let hold_down = self.inner.timeout * STALL_HOLD_DOWN_TIMEOUTS;
                self.inner.health.hold_down(Instant::now() + hold_down);
                Err(Error::timeout(message))
            }
        }
    }

    /// The usable token stored for `shared_key`: its value, lifetime, time
    /// left and scopes. A value this store cannot read or authenticate, or
    /// that has expired, is `None`.
    async fn load_entry(&self, shared_key: &str) -> Result<Option<Loaded>, Error> {
        let keys = Keys::new(&self.inner.prefix, shared_key);
        let raw: Option<Vec<u8>> = self
            .run("load", |mut c| {
                let key = keys.token.clone();
                async move { ::redis::cmd("GET").arg(key).query_async(&mut c).await }
            })
            .await?;
        let Some(raw) = raw else { return Ok(None) };
        match self.decode(&keys.token, &raw, entry::unix_millis(SystemTime::now())) {
            Ok(loaded) => {
                self.inner.health.readable();
                Ok(loaded)
            }
            Err(reason) => {
                self.inner.health.unreadable(reason);
                Ok(None)
            }
        }
    }

    /// Writes a token for `ttl` (at most what it has left).
    async fn store_entry(
        &self,
        shared_key: &str,
        token: &str,
        lifetime: Duration,
        expires_in: Duration,
        scopes: &[String],
        ttl: Duration,
    ) -> Result<(), Error> {
        let ttl_ms = u64::try_from(ttl.min(expires_in).as_millis()).unwrap_or(u64::MAX);
        if ttl_ms == 0 {
            // Nothing worth sharing: it would be refreshed on sight.
            return Ok(());
        }
        let keys = Keys::new(&self.inner.prefix, shared_key);
        let now_ms = entry::unix_millis(SystemTime::now());
        let value = self
            .encode(
                &keys.token,
                &Entry::new(token, lifetime, expires_in, scopes, now_ms),
            )
            .ok_or_else(|| Error::invalid_response("the token could not be sealed for Redis"))?;
        let invalid = keys.invalid(&entry::fingerprint(token));
        let stored: i64 = self
            .run("store", |mut c| {
                let mut call = self.inner.store_script.key(&keys.token);
                call.key(&invalid).arg(&value).arg(ttl_ms);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        if stored == 0 {
            tracing::debug!(
                target: "cxone_auth::cache::redis",
                "not publishing a token that was invalidated meanwhile"
            );
        }
        Ok(())
    }

    /// Marks `token` invalid for `remaining` (its life left) and deletes the
    /// stored token if it is still `token`; `true` if it was.
    async fn invalidate_entry(
        &self,
        shared_key: &str,
        token: &str,
        remaining: Duration,
    ) -> Result<bool, Error> {
        let keys = Keys::new(&self.inner.prefix, shared_key);
        let fingerprint = entry::fingerprint(token);
        let (header, invalid) = (entry::header(&fingerprint), keys.invalid(&fingerprint));
        let mark_ms = u64::try_from(remaining.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let deleted: i64 = self
            .run("invalidate", |mut c| {
                let mut call = self.inner.invalidate_script.key(&keys.token);
                call.key(&invalid).arg(&header).arg(mark_ms);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        Ok(deleted == 1)
    }

    /// Takes the fetch lock as `owner` for `ttl`; `true` when taken.
    async fn lock_entry(
        &self,
        shared_key: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, Error> {
        let keys = Keys::new(&self.inner.prefix, shared_key);
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let taken: i64 = self
            .run("lock", |mut c| {
                let mut call = self.inner.lock_script.key(&keys.lock);
                call.arg(owner).arg(ttl_ms);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        Ok(taken == 1)
    }

    /// Releases the fetch lock if `owner` still holds it; `true` if it did.
    async fn unlock_entry(&self, shared_key: &str, owner: &str) -> Result<bool, Error> {
        let keys = Keys::new(&self.inner.prefix, shared_key);
        let released: i64 = self
            .run("unlock", |mut c| {
                let mut call = self.inner.unlock_script.key(&keys.lock);
                call.arg(owner);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        Ok(released == 1)
    }

    /// Remembers a lock whose release failed, to release it later.
    fn remember_unreleased(&self, shared_key: &str, owner: &str) {
        let mut unreleased = self.unreleased();
        if unreleased.len() == MAX_UNRELEASED_LOCKS {
            unreleased.remove(0);
        }
        unreleased.push((shared_key.to_owned(), owner.to_owned()));
    }

    /// Releases the locks whose release failed earlier, now that Redis may
    /// answer again; keeps those it still cannot release.
    async fn release_unreleased(&self) {
        let pending = std::mem::take(&mut *self.unreleased());
        for (shared_key, owner) in pending {
            if self.unlock_entry(&shared_key, &owner).await.is_err() {
                self.remember_unreleased(&shared_key, &owner);
            }
        }
    }

    fn has_unreleased(&self) -> bool {
        !self.unreleased().is_empty()
    }

    fn unreleased(&self) -> std::sync::MutexGuard<'_, Vec<(String, String)>> {
        // Each change is one push or take: a panic cannot leave it half-done.
        self.inner
            .unreleased
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Before a call: releases what an outage left locked, if anything.
    async fn settle(&self) {
        if self.has_unreleased() && !self.inner.health.holding_down(Instant::now()) {
            self.release_unreleased().await;
        }
    }

    /// The value written to Redis for `entry` under `key`.
    fn encode(&self, key: &str, entry: &Entry) -> Option<String> {
        let header = entry::header(&entry::fingerprint(&entry.token));
        let json = serde_json::to_string(entry).ok()?;
        #[cfg(feature = "redis-encryption")]
        if let Some(cipher) = &self.inner.cipher {
            let body = cipher.seal(&associated_data(key, &header), json.as_bytes())?;
            return Some(format!("{header}{body}"));
        }
        let _ = key;
        Some(format!("{header}{json}"))
    }

    /// Reads a value back, refusing anything this store would not have
    /// written: another format, another key's ciphertext, a plaintext value
    /// when encryption is on, a fingerprint that does not match, a malformed
    /// token. An expired token is `Ok(None)`: it was ours, it is just old.
    fn decode(&self, key: &str, raw: &[u8], now_ms: u64) -> Result<Option<Loaded>, &'static str> {
        if raw.len() > entry::MAX_VALUE_BYTES {
            return Err("the value is too large");
        }
        let value = std::str::from_utf8(raw).map_err(|_| "the value is not text")?;
        let (fingerprint, body) =
            entry::split(value).ok_or("the value is not in this crate's format")?;
        let json: Vec<u8> = match self.open(key, fingerprint, body) {
            Opened::Plain(json) => json.as_bytes().to_vec(),
            #[cfg(feature = "redis-encryption")]
            Opened::Decrypted(json) => json,
            Opened::Refused(reason) => return Err(reason),
        };
        let entry: Entry =
            serde_json::from_slice(&json).map_err(|_| "the value is not a token entry")?;
        if entry::fingerprint(&entry.token) != fingerprint {
            return Err("the value's fingerprint does not match its token");
        }
        // The same checks as a token fresh from the endpoint: nothing that
        // cannot be a header value leaves the store.
        AccessToken::new(entry.token.as_str()).map_err(|_| "the stored token is malformed")?;
        let Some((lifetime, expires_in)) = entry.remaining(now_ms) else {
            return if entry.expires_at_ms <= now_ms {
                Ok(None)
            } else {
                Err("the value's times are inconsistent")
            };
        };
        Ok(Some(Loaded {
            token: entry.token,
            lifetime,
            expires_in,
            scopes: entry.scopes,
        }))
    }

    fn open<'v>(&self, key: &str, fingerprint: &str, body: &'v str) -> Opened<'v> {
        #[cfg(feature = "redis-encryption")]
        if let Some(cipher) = &self.inner.cipher {
            let aad = associated_data(key, &entry::header(fingerprint));
            return cipher.open(&aad, body).map_or(
                Opened::Refused("the value does not open with this store's encryption key"),
                Opened::Decrypted,
            );
        }
        let _ = (key, fingerprint);
        if body.starts_with('{') {
            Opened::Plain(body)
        } else {
            Opened::Refused("the value is encrypted and this store has no encryption key")
        }
    }
}

/// Every call is bounded by the store's operation timeout. Nothing here fails:
/// when Redis does not answer, or holds a value this store cannot use, the
/// cache is told what it would see without a store (no token; the lock is
/// its own, so it fetches at once), and the change of state is logged once.
impl TokenStore for RedisStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        Box::pin(async move {
            self.settle().await;
            Ok(self.load_entry(key).await.ok().flatten().map(|loaded| {
                StoredToken::new(loaded.token, loaded.lifetime, loaded.expires_in)
                    .with_scopes(loaded.scopes)
            }))
        })
    }

    fn store<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.settle().await;
            let stored = self
                .store_entry(
                    key,
                    token.secret(),
                    token.lifetime(),
                    token.expires_in(),
                    token.scopes(),
                    ttl,
                )
                .await;
            drop(stored);
            Ok(())
        })
    }

    fn invalidate<'a>(
        &'a self,
        key: &'a str,
        token: &'a AccessToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.settle().await;
            let remaining = token.expires_at().saturating_duration_since(Instant::now());
            drop(self.invalidate_entry(key, token.secret(), remaining).await);
            Ok(())
        })
    }

    fn try_lock<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<StoreLock>, Error>> {
        Box::pin(async move {
            self.settle().await;
            let lock = StoreLock::new_owner();
            match self.lock_entry(key, lock.owner(), ttl).await {
                Ok(false) => Ok(None),
                // Taken, or Redis cannot say: either way this caller fetches.
                Ok(true) | Err(_) => Ok(Some(lock)),
            }
        })
    }

    fn unlock<'a>(&'a self, key: &'a str, lock: StoreLock) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            if self.unlock_entry(key, lock.owner()).await.is_err() {
                self.remember_unreleased(key, lock.owner());
            }
            Ok(())
        })
    }
}

enum Opened<'v> {
    Plain(&'v str),
    #[cfg(feature = "redis-encryption")]
    Decrypted(Vec<u8>),
    Refused(&'static str),
}

/// A token read back from Redis.
struct Loaded {
    token: String,
    lifetime: Duration,
    expires_in: Duration,
    scopes: Vec<String>,
}

/// Binds a ciphertext to the key it is stored under and to its header.
#[cfg(feature = "redis-encryption")]
fn associated_data(key: &str, header: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(key.len() + 1 + header.len());
    aad.extend_from_slice(key.as_bytes());
    aad.push(0);
    aad.extend_from_slice(header.as_bytes());
    aad
}

/// Whether `e` is Redis's own answer (an error reply, or a reply of another
/// type than asked) rather than a failure to get one.
fn redis_answered(e: &RedisError) -> bool {
    use ::redis::ErrorKind as Kind;
    matches!(
        e.kind(),
        Kind::Server(_) | Kind::Extension | Kind::UnexpectedReturnType
    )
}

/// Whether `e` means the connection is gone (and the manager is reconnecting),
/// rather than an answer from Redis.
fn is_connection_failure(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

impl RedisStoreBuilder {
    /// Sets the prefix of every key the store writes (default
    /// [`DEFAULT_KEY_PREFIX`]). Processes share tokens only under the same
    /// prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets how long one Redis call may take (default
    /// [`DEFAULT_OPERATION_TIMEOUT`]). Past it, the cache goes on as if the
    /// store were empty.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Encrypts tokens with `key` before they reach Redis (ChaCha20-Poly1305,
    /// a random nonce per value, bound to its key name). Every process of a
    /// fleet needs the same key; values it cannot authenticate are ignored.
    #[cfg(feature = "redis-encryption")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-encryption")))]
    pub fn encryption_key(mut self, key: EncryptionKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Builds the store. Nothing is connected until it is first used.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the URL is not a
    /// Redis URL or the timeout is zero.
    pub fn build(self) -> Result<RedisStore, Error> {
        if self.timeout.is_zero() {
            return Err(Error::config(
                "the Redis operation timeout must be above zero",
            ));
        }
        // The URL may hold a password: keep it out of the message.
        let client = Client::open(self.url.as_str())
            .map_err(|e| Error::config("the Redis URL is not valid").with_source(e))?;
        let endpoint = describe(&client);
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                connection: OnceLock::new(),
                prefix: self.prefix,
                timeout: self.timeout,
                #[cfg(feature = "redis-encryption")]
                cipher: self.key.as_ref().map(cipher::Cipher::new),
                health: Health::new(),
                unreleased: Mutex::new(Vec::new()),
                lock_script: Script::new(LOCK_SCRIPT),
                unlock_script: Script::new(UNLOCK_SCRIPT),
                invalidate_script: Script::new(INVALIDATE_SCRIPT),
                store_script: Script::new(STORE_SCRIPT),
                endpoint,
            }),
        })
    }
}

/// `host:port/db` of a client, without credentials.
fn describe(client: &Client) -> String {
    let info = client.get_connection_info();
    format!("{}/{}", info.addr(), info.redis_settings().db())
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let mut d = f.debug_struct("RedisStore");
        d.field("endpoint", &inner.endpoint)
            .field("prefix", &inner.prefix)
            .field("operation_timeout", &inner.timeout);
        #[cfg(feature = "redis-encryption")]
        d.field("encrypted", &inner.cipher.is_some());
        d.field("available", &inner.health.is_available()).finish()
    }
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RedisStoreBuilder");
        d.field("url", &"[redacted]")
            .field("prefix", &self.prefix)
            .field("operation_timeout", &self.timeout);
        #[cfg(feature = "redis-encryption")]
        d.field("encryption_key", &self.key);
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis tests need a Redis: in CI (`CI` set) its absence fails the test,
    /// elsewhere it skips it with a message.
    async fn redis_url() -> Option<String> {
        let url = std::env::var(REDIS_URL_ENV).unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
        let probe = RedisStore::builder(url.as_str())
            .operation_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let ping = probe
            .run("ping", |mut c| async move {
                ::redis::cmd("PING").query_async::<String>(&mut c).await
            })
            .await;
        match ping {
            Ok(_) => Some(url),
            Err(e) if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") => {
                panic!("Redis must answer at {url} in CI: {e}")
            }
            Err(e) => {
                eprintln!("skipped: no Redis at {url} ({e}); start redis-server or set REDIS_URL");
                None
            }
        }
    }

    fn unique_prefix(test: &str) -> String {
        format!("cxone-auth-test:{test}:{:016x}:", fastrand::u64(..))
    }

    /// A store with a generous timeout: these tests are about behaviour, not
    /// about racing the clock.
    fn store(url: &str, test: &str) -> RedisStore {
        RedisStore::builder(url)
            .prefix(unique_prefix(test))
            .operation_timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    }

    async fn raw(store: &RedisStore, args: &[&str]) -> ::redis::Value {
        let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
        store
            .run("raw", |mut c| {
                let mut cmd = ::redis::cmd(&args[0]);
                for arg in &args[1..] {
                    cmd.arg(arg);
                }
                async move { cmd.query_async(&mut c).await }
            })
            .await
            .unwrap()
    }

    async fn pttl(store: &RedisStore, key: &str) -> i64 {
        match raw(store, &["PTTL", key]).await {
            ::redis::Value::Int(ms) => ms,
            other => panic!("{other:?}"),
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn round_trip_keeps_times_scopes_and_ttl() {
        let Some(url) = redis_url().await else { return };
        let store = store(&url, "round-trip");
        let scopes = vec!["RealTimeApi".to_owned(), "AdminApi".to_owned()];
        store
            .store_entry(
                "cred",
                "tok.en-1",
                HOUR,
                HOUR - Duration::from_secs(600),
                &scopes,
                Duration::from_secs(2700),
            )
            .await
            .unwrap();
        let loaded = store.load_entry("cred").await.unwrap().unwrap();
        assert_eq!(loaded.token, "tok.en-1");
        assert_eq!(loaded.lifetime, HOUR);
        let left = loaded.expires_in.as_secs();
        assert!((2995..=3000).contains(&left), "{left}");
        assert_eq!(loaded.scopes, scopes);
        assert!(store.load_entry("other-cred").await.unwrap().is_none());

        let keys = Keys::new(&store.inner.prefix, "cred");
        let ttl = pttl(&store, &keys.token).await;
        assert!((2_690_000..=2_700_000).contains(&ttl), "{ttl}");
    }

    #[tokio::test]
    async fn ttl_never_outlives_the_token_and_zero_is_not_stored() {
        let Some(url) = redis_url().await else { return };
        let store = store(&url, "ttl");
        store
            .store_entry("a", "t", HOUR, Duration::from_secs(60), &[], HOUR)
            .await
            .unwrap();
        let ttl = pttl(&store, &Keys::new(&store.inner.prefix, "a").token).await;
        assert!((1..=60_000).contains(&ttl), "{ttl}");

        store
            .store_entry("b", "t", HOUR, HOUR, &[], Duration::ZERO)
            .await
            .unwrap();
        assert!(store.load_entry("b").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn lock_is_exclusive_expires_and_is_released_only_by_its_owner() {
        let Some(url) = redis_url().await else { return };
        let store = store(&url, "lock");
        let ttl = Duration::from_secs(10);
        assert!(store.lock_entry("c", "owner-a", ttl).await.unwrap());
        assert!(!store.lock_entry("c", "owner-b", ttl).await.unwrap());
        assert!(
            store.lock_entry("c", "owner-a", ttl).await.unwrap(),
            "retry by its owner"
        );
        assert!(
            store.lock_entry("other", "owner-b", ttl).await.unwrap(),
            "per credential"
        );

        let lock_ttl = pttl(&store, &Keys::new(&store.inner.prefix, "c").lock).await;
        assert!(
            (1..=10_000).contains(&lock_ttl),
            "the lock expires on its own: {lock_ttl}"
        );

        assert!(!store.unlock_entry("c", "owner-b").await.unwrap());
        assert!(!store.lock_entry("c", "owner-b", ttl).await.unwrap());
        assert!(store.unlock_entry("c", "owner-a").await.unwrap());
        assert!(
            !store.unlock_entry("c", "owner-a").await.unwrap(),
            "released once"
        );
        assert!(store.lock_entry("c", "owner-b", ttl).await.unwrap());
    }

    #[tokio::test]
    async fn invalidation_removes_only_the_same_token() {
        let Some(url) = redis_url().await else { return };
        let store = store(&url, "invalidate");
        store
            .store_entry("c", "first", HOUR, HOUR, &[], HOUR)
            .await
            .unwrap();
        assert!(!store.invalidate_entry("c", "older", HOUR).await.unwrap());
        assert_eq!(store.load_entry("c").await.unwrap().unwrap().token, "first");
        assert!(store.invalidate_entry("c", "first", HOUR).await.unwrap());
        assert!(store.load_entry("c").await.unwrap().is_none());
        assert!(!store.invalidate_entry("c", "first", HOUR).await.unwrap());

        // A publication of "first" arriving late (after its 401) is refused,
        // for the rest of its life; other tokens are not affected.
        store
            .store_entry("c", "first", HOUR, HOUR, &[], HOUR)
            .await
            .unwrap();
        assert!(store.load_entry("c").await.unwrap().is_none());
        let keys = Keys::new(&store.inner.prefix, "c");
        let mark = pttl(&store, &keys.invalid(&entry::fingerprint("first"))).await;
        assert!((3_590_000..=3_600_000).contains(&mark), "{mark}");
        store
            .store_entry("c", "second", HOUR, HOUR, &[], HOUR)
            .await
            .unwrap();
        assert_eq!(
            store.load_entry("c").await.unwrap().unwrap().token,
            "second"
        );
    }

    #[tokio::test]
    async fn values_written_by_hand_are_ignored() {
        let Some(url) = redis_url().await else { return };
        let store = store(&url, "by-hand");
        let key = Keys::new(&store.inner.prefix, "c").token;
        let now = entry::unix_millis(SystemTime::now());
        let fp = entry::fingerprint("tok");
        let valid_json = format!(
            r#"{{"token":"tok","expires_at_ms":{},"issued_at_ms":{now},"scopes":[]}}"#,
            now + 3_600_000
        );
        let bad = [
            "tok".to_owned(),
            valid_json.clone(),
            format!(
                "{}{valid_json}",
                entry::header(&entry::fingerprint("other"))
            ),
            format!(
                "{}{{\"token\":\"tok\",\"expires_at_ms\":{},\"issued_at_ms\":{}}}",
                entry::header(&fp),
                now - 1000,
                now - 3_601_000
            ),
            format!(
                "{}{{\"token\":\"to k\",\"expires_at_ms\":{},\"issued_at_ms\":{now}}}",
                entry::header(&entry::fingerprint("to k")),
                now + 1000
            ),
            format!("{}not json", entry::header(&fp)),
            format!("{}enc.AAAA", entry::header(&fp)),
        ];
        for value in &bad {
            raw(&store, &["SET", &key, value, "EX", "60"]).await;
            assert!(store.load_entry("c").await.unwrap().is_none(), "{value}");
        }
        // Another type under the key: Redis refuses the read; no token.
        raw(&store, &["DEL", &key]).await;
        raw(&store, &["RPUSH", &key, "x"]).await;
        raw(&store, &["EXPIRE", &key, "60"]).await;
        assert!(store.load_entry("c").await.is_err());
        assert!(store.is_available(), "Redis answered");

        // Without encryption a well-formed value is taken as written.
        raw(
            &store,
            &[
                "SET",
                &key,
                &format!("{}{valid_json}", entry::header(&fp)),
                "EX",
                "60",
            ],
        )
        .await;
        assert_eq!(store.load_entry("c").await.unwrap().unwrap().token, "tok");
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_an_error_not_a_hang() {
        // Port 9 (discard) on loopback is closed on any machine that runs these tests.
        let store = RedisStore::builder("redis://127.0.0.1:9")
            .operation_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        assert!(store.is_available());
        let err = store.load_entry("c").await.err().unwrap();
        assert!(err.is_transient(), "{err:?}");
        assert!(!store.is_available());
        assert!(store.lock_entry("c", "o", HOUR).await.is_err());
    }

    #[tokio::test]
    async fn a_hung_redis_costs_one_timeout_then_calls_fail_at_once() {
        // A server that accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        // The timeout is what is tested: as short as the test can make it.
        let store = RedisStore::builder(format!("redis://{addr}"))
            .operation_timeout(Duration::from_millis(50))
            .build()
            .unwrap();

        let err = store.load_entry("c").await.err().unwrap();
        assert!(err.is_timeout(), "{err:?}");
        assert!(!store.is_available());
        assert!(store.inner.health.holding_down(Instant::now()));
        let err = store.lock_entry("c", "o", HOUR).await.err().unwrap();
        assert!(err.to_string().contains("not tried"), "{err}");

        // Through the trait, nothing fails: no token, and the lock is the
        // caller's, so it fetches on its own.
        assert!(TokenStore::load(&store, "c").await.unwrap().is_none());
        assert!(store.try_lock("c", HOUR).await.unwrap().is_some());
        server.abort();
    }

    #[test]
    fn debug_and_errors_hide_the_password() {
        let store = RedisStore::new("redis://user:hunter2@127.0.0.1:6379/3").unwrap();
        let debug = format!("{store:?}");
        assert!(debug.contains("127.0.0.1:6379/3"), "{debug}");
        assert!(!debug.contains("hunter2"));
        let builder = format!("{:?}", RedisStore::builder("redis://:hunter2@h"));
        assert!(!builder.contains("hunter2"));
        let err = RedisStore::new("http://:hunter2@nope").unwrap_err();
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
        assert!(
            RedisStore::builder(DEFAULT_REDIS_URL)
                .operation_timeout(Duration::ZERO)
                .build()
                .is_err()
        );
    }

    #[cfg(feature = "redis-encryption")]
    mod encrypted {
        use super::*;

        fn encrypted(url: &str, prefix: &str, key: u8) -> RedisStore {
            RedisStore::builder(url)
                .prefix(prefix)
                .operation_timeout(Duration::from_secs(5))
                .encryption_key(EncryptionKey::new([key; 32]))
                .build()
                .unwrap()
        }

        #[tokio::test]
        async fn values_are_unreadable_without_the_key() {
            let Some(url) = redis_url().await else { return };
            let prefix = unique_prefix("encrypted");
            let (a, b) = (encrypted(&url, &prefix, 1), encrypted(&url, &prefix, 2));
            let plain = RedisStore::builder(url.as_str())
                .prefix(prefix.as_str())
                .build()
                .unwrap();
            a.store_entry("c", "the-token-value", HOUR, HOUR, &["s".to_owned()], HOUR)
                .await
                .unwrap();
            assert_eq!(
                a.load_entry("c").await.unwrap().unwrap().token,
                "the-token-value"
            );
            assert!(b.load_entry("c").await.unwrap().is_none(), "another key");
            assert!(plain.load_entry("c").await.unwrap().is_none(), "no key");

            let key = Keys::new(&prefix, "c").token;
            let ::redis::Value::BulkString(stored) = raw(&a, &["GET", &key]).await else {
                panic!("no value")
            };
            let stored = String::from_utf8(stored).unwrap();
            assert!(!stored.contains("the-token-value"));
            assert!(!stored.contains("\"s\""), "scopes are sealed too");

            // Invalidation works on the fingerprint, without decrypting.
            assert!(
                b.invalidate_entry("c", "the-token-value", HOUR)
                    .await
                    .unwrap()
            );
        }

        #[tokio::test]
        async fn values_moved_tampered_or_written_by_hand_are_refused() {
            let Some(url) = redis_url().await else { return };
            let prefix = unique_prefix("tamper");
            let store = encrypted(&url, &prefix, 1);
            store
                .store_entry("c", "tok", HOUR, HOUR, &[], HOUR)
                .await
                .unwrap();
            let (from, to) = (Keys::new(&prefix, "c").token, Keys::new(&prefix, "d").token);
            let ::redis::Value::BulkString(sealed) = raw(&store, &["GET", &from]).await else {
                panic!("no value")
            };
            let sealed = String::from_utf8(sealed).unwrap();

            raw(&store, &["SET", &to, &sealed, "EX", "60"]).await;
            assert!(
                store.load_entry("d").await.unwrap().is_none(),
                "moved to another key"
            );

            let mut flipped = sealed.clone().into_bytes();
            let last = flipped.len() - 1;
            flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
            raw(
                &store,
                &[
                    "SET",
                    &from,
                    &String::from_utf8(flipped).unwrap(),
                    "EX",
                    "60",
                ],
            )
            .await;
            assert!(store.load_entry("c").await.unwrap().is_none(), "tampered");

            let other_fp = sealed.replacen(&entry::fingerprint("tok"), &entry::fingerprint("x"), 1);
            raw(&store, &["SET", &from, &other_fp, "EX", "60"]).await;
            assert!(
                store.load_entry("c").await.unwrap().is_none(),
                "fingerprint changed"
            );

            let now = entry::unix_millis(SystemTime::now());
            let by_hand = format!(
                "{}{{\"token\":\"tok\",\"expires_at_ms\":{},\"issued_at_ms\":{now}}}",
                entry::header(&entry::fingerprint("tok")),
                now + 3_600_000
            );
            raw(&store, &["SET", &from, &by_hand, "EX", "60"]).await;
            assert!(
                store.load_entry("c").await.unwrap().is_none(),
                "plaintext by hand"
            );
        }
    }
}
