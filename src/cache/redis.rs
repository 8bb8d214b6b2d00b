//! [`RedisStore`]: a [`TokenStore`] on Redis, so that a fleet of processes
//! fetches one token per credential and lifetime, not one per process.
//!
//! ```
//! use cxone_auth::TokenCache;
//! use cxone_auth::cache::RedisStore;
//! use cxone_auth::token::AccessKeyGrant;
//!
//! let source = AccessKeyGrant::new("client-id", "client-secret", "ACCESSKEYID", "c2VjcmV0+/x====")?;
//! // `redis://[user:password@]host[:port][/db]`; or `RedisStore::from_env()?` for `REDIS_URL`.
//! let store = RedisStore::new("redis://127.0.0.1:6379")?.with_prefix("my-service:cxone:");
//! // Every process of the fleet builds its cache the same way.
//! let tokens = TokenCache::builder(source).store(store.clone()).build();
//! assert!(!format!("{store:?}").contains("password"));
//! # drop(tokens);
//! # Ok::<(), cxone_auth::Error>(())
//! ```
//!
//! # Which Redis
//!
//! - One server or primary: [`RedisStore::new`] with a `redis://` URL, or
//!   `rediss://` with the `redis-tls` feature (rustls with its `aws-lc-rs`
//!   provider, as reqwest uses; a binary that builds in several providers
//!   installs one at start, as rustls requires. The server's certificate is
//!   checked against the system's trusted roots).
//! - Redis Cluster (ElastiCache and MemoryDB in cluster mode, Azure's
//!   clustered tiers): [`RedisStore::cluster`] with the URLs of some of its
//!   nodes. A credential's keys share one hash slot, so every script runs on
//!   one node.
//! - Anything else (Sentinel, credentials that rotate, a private certificate
//!   authority): build the `redis` crate's connection yourself and pass it to
//!   [`RedisStore::from_connection`] or [`RedisStore::from_cluster_connection`]
//!   (the project's `docs/integrations.md` shows a private certificate
//!   authority).
//!
//! # How the fleet shares a token
//!
//! A credential's keys are `<prefix>{<hex SHA-256 of the source's`
//! [`shared_key`](crate::TokenSource::shared_key)`>}:<kind>`: no client id,
//! access key or URL shows, and the braces are Redis Cluster's hash tag. The
//! token (kind `token`) is stored as `cxa2.<fingerprint>.<body>`: a format
//! tag, 32 hex digits of the token's SHA-256 (so a script can compare tokens
//! without decrypting), and JSON with the token, its wall-clock expiry and
//! issue time and scopes. It lives for the token's remaining lifetime less the
//! refresh buffer, so machines' clocks should agree well within that buffer.
//! Values of earlier versions (`cxa1`) are no token and no error.
//!
//! A process that finds no usable token takes the fetch lock (`SET NX PX`,
//! the cache's fetch timeout), fetches, publishes, and releases the lock with
//! a compare-and-delete script. The others look again with growing pauses
//! until the token appears or the cache's
//! [`store_wait`](crate::TokenCacheBuilder::store_wait) runs out, then fetch on
//! their own. A 401 deletes the shared token only while Redis still holds
//! that same token, and marks it invalid for the rest of its life (kind
//! `invalid:<fingerprint>`): a marked token is neither published nor read.
//!
//! # When Redis fails
//!
//! Redis is an optimisation, never a dependency: the cache bounds every store
//! call and, past a failure, fetches on its own. The store adds no timeout
//! and remembers no failure; connections are re-established on the next call
//! (a cluster connection also follows slots that move), and a lock whose
//! release an outage prevented expires by its TTL. Each change between
//! "answering" and "not answering", and the first unusable value in a run, is
//! logged once (target `cxone_auth::cache::redis`).
//!
//! # Trusting what Redis holds
//!
//! Values this store did not write are ignored, but without encryption anyone
//! who can write to the Redis can plant a well-formed token, and anyone who
//! can read it can use the tokens. With `redis-encryption` and an
//! `EncryptionKey` (ChaCha20-Poly1305, the Redis key name bound as associated
//! data), values that do not authenticate are ignored. A writer who keeps an
//! old sealed value can put it back; the invalidation mark keeps it out once
//! a 401 has ended that token, unless the writer deletes the mark too.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::redis::aio::ConnectionManager;
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Client, IntoConnectionInfo, RedisResult, ToRedisArgs};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use self::link::{Connection, Link, Target};
use super::{StoreLock, StoredToken, TokenStore};
use crate::token::MAX_LIFETIME;
use crate::{AccessToken, Error};

#[cfg(feature = "redis-encryption")]
mod cipher;
mod link;

#[cfg(feature = "redis-encryption")]
pub use cipher::EncryptionKey;

/// The variable [`RedisStore::from_env`] reads, and the Redis it falls back to.
const REDIS_URL_ENV: &str = "REDIS_URL";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// See [`RedisStore::with_prefix`].
const DEFAULT_KEY_PREFIX: &str = "cxone-auth:";

/// The first part of every value this version writes.
const FORMAT_TAG: &str = "cxa2";

/// The tags of earlier formats (`cxa1`: keys without a hash tag). Such a
/// value is no token, and no error either.
const OLD_FORMAT_TAGS: [&str; 1] = ["cxa1."];

/// How often the cluster connection tries a command again (after a
/// `MOVED`, a failover, a lost node) before it fails. The `redis` crate's
/// default, 16 with growing pauses, would outlast the cache's bound on each
/// store call many times over and keep retrying after the cache gave up.
const CLUSTER_RETRIES: u32 = 2;

/// The longest value read back, in bytes. A token is at most
/// [`MAX_TOKEN_BYTES`](crate::token::MAX_TOKEN_BYTES); anything much larger
/// was not written by this crate and is not parsed.
const MAX_VALUE_BYTES: usize = 64 * 1024;

const LOG_TARGET: &str = "cxone_auth::cache::redis";

/// Takes the fetch lock KEYS[1] as owner ARGV[1] for ARGV[2] ms: `SET NX PX`,
/// and also success when this owner already holds it, so a call retried after
/// a lost reply does not lock its own caller out.
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

/// A [`TokenStore`] on Redis: one server through the `redis` crate's
/// auto-reconnecting [`ConnectionManager`], or a Redis Cluster through its
/// [`ClusterConnection`], made by the store or given by the caller.
///
/// Cheap to clone; clones share the connection. A store made from URLs
/// connects on first use, from within the tokio runtime that uses it.
#[derive(Clone)]
pub struct RedisStore {
    prefix: String,
    #[cfg(feature = "redis-encryption")]
    cipher: Option<Arc<cipher::Cipher>>,
    link: Arc<Link>,
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://[user:password@]host[:port][/db]`,
    /// or `rediss://` with the `redis-tls` feature).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the URL is not a
    /// Redis URL. Nothing is connected yet, so a Redis that is down is not an
    /// error.
    pub fn new(url: &str) -> Result<Self, Error> {
        // The URL may hold a password: keep it out of the message.
        let client = Client::open(url)
            .map_err(|e| Error::config("the Redis URL is not valid").with_source(e))?;
        let info = client.get_connection_info();
        let endpoint = format!("{}/{}", info.addr(), info.redis_settings().db());
        Ok(Self::on(Target::Server(client), endpoint))
    }

    /// A store on the Redis Cluster that any of `seeds` belongs to
    /// (`redis://` URLs of some of its nodes, or `rediss://` with the
    /// `redis-tls` feature; one password for all). The store learns the other
    /// nodes, and follows slots that move and primaries that fail over.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when there is no seed,
    /// a seed is not a Redis URL, or the seeds disagree (password, TLS).
    /// Nothing is connected yet.
    pub fn cluster<I>(seeds: I) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let invalid = |e| Error::config("the Redis Cluster seed URLs are not valid").with_source(e);
        let seeds = (seeds.into_iter())
            .map(|seed| seed.as_ref().into_connection_info())
            .collect::<RedisResult<Vec<_>>>()
            .map_err(invalid)?;
        let endpoint = seeds.iter().map(|s| s.addr().to_string());
        let endpoint = format!("cluster {}", endpoint.collect::<Vec<_>>().join(","));
        let client = (ClusterClient::builder(seeds)
            .retries(CLUSTER_RETRIES)
            .build())
        .map_err(invalid)?;
        Ok(Self::on(Target::Cluster(client), endpoint))
    }

    /// A store on a connection the caller made: for a Redis this crate does
    /// not connect to on its own (Sentinel, credentials that rotate, a
    /// private certificate authority, other TLS settings).
    ///
    /// The connection is used as it is: its reconnection and timeouts are the
    /// caller's (the cache still bounds every call).
    pub fn from_connection(connection: ConnectionManager) -> Self {
        let given = Target::Given(Connection::Server(connection));
        Self::on(given, "a given connection".to_owned())
    }

    /// A store on a Redis Cluster connection the caller made, as
    /// [`from_connection`](Self::from_connection).
    pub fn from_cluster_connection(connection: ClusterConnection) -> Self {
        let given = Target::Given(Connection::Cluster(connection));
        Self::on(given, "a given cluster connection".to_owned())
    }

    fn on(target: Target, endpoint: String) -> Self {
        Self {
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            #[cfg(feature = "redis-encryption")]
            cipher: None,
            link: Arc::new(Link {
                target,
                endpoint,
                connection: OnceLock::new(),
                answering: AtomicBool::new(true),
                readable: AtomicBool::new(true),
            }),
        }
    }

    /// A store on the Redis named by the `REDIS_URL` environment variable,
    /// else on `redis://127.0.0.1:6379`, the local default port.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn from_env() -> Result<Self, Error> {
        let url = std::env::var(REDIS_URL_ENV).unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
        Self::new(&url)
    }

    /// Sets the prefix of every key the store writes. Processes share tokens
    /// only under the same prefix.
    ///
    /// Defaults to `cxone-auth:`, because the store's keys are then easy to
    /// find and never collide with an application's own. Leave braces out of
    /// it: Redis Cluster would hash them instead of the store's hash tag.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Encrypts tokens with `key` before they reach Redis (ChaCha20-Poly1305,
    /// a random nonce per value, bound to its key name). Every process of a
    /// fleet needs the same key; values it cannot authenticate are ignored.
    ///
    /// Defaults to no encryption, because it needs a key shared by the fleet.
    #[cfg(feature = "redis-encryption")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-encryption")))]
    pub fn with_encryption_key(mut self, key: EncryptionKey) -> Self {
        self.cipher = Some(Arc::new(cipher::Cipher::new(&key)));
        self
    }

    /// The Redis name of a credential's `kind` of key (`token`, `lock`,
    /// `invalid`): the prefix, the hex SHA-256 of the shared key (so that no
    /// credential name appears in Redis) in braces, the hash tag that puts
    /// all of a credential's keys in one cluster slot, and the kind.
    fn key(&self, kind: &str, shared_key: &str) -> String {
        let digest = hex(&Sha256::digest(shared_key.as_bytes()));
        format!("{}{{{digest}}}:{kind}", self.prefix)
    }

    /// The mark that the token with `fingerprint` was invalidated.
    fn invalid_mark(&self, shared_key: &str, fingerprint: &str) -> String {
        format!("{}:{fingerprint}", self.key("invalid", shared_key))
    }

    /// Runs one of the scripts (`EVAL`): `true` when it answers 1 (done),
    /// `false` for 0 (the lock is another's, the token another one).
    async fn eval(
        &self,
        operation: &'static str,
        script: &str,
        keys: &[impl ToRedisArgs],
        args: &[impl ToRedisArgs],
    ) -> Result<bool, Error> {
        let mut eval = ::redis::cmd("EVAL");
        eval.arg(script).arg(keys.len()).arg(keys).arg(args);
        Ok(self.link.run::<i64>(operation, &eval).await? == 1)
    }

    /// Marks `token` invalid for `remaining` (its life left) and deletes the
    /// stored token if it is still `token`; `true` if it was.
    async fn invalidate_entry(
        &self,
        key: &str,
        token: &str,
        remaining: Duration,
    ) -> Result<bool, Error> {
        let fingerprint = fingerprint(token);
        let names = [self.key("token", key), self.invalid_mark(key, &fingerprint)];
        let args = [header(&fingerprint), millis(remaining).max(1).to_string()];
        self.eval("invalidate", INVALIDATE_SCRIPT, &names, &args)
            .await
    }

    /// Takes the fetch lock as `owner` for `ttl`; `true` when taken.
    async fn lock_entry(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, Error> {
        let args = [owner, &millis(ttl).max(1).to_string()];
        self.eval("lock", LOCK_SCRIPT, &[self.key("lock", key)], &args)
            .await
    }

    /// Releases the fetch lock if `owner` still holds it; `true` if it did.
    /// A release that fails is not retried: the lock expires by its TTL.
    async fn unlock_entry(&self, key: &str, owner: &str) -> Result<bool, Error> {
        let lock = [self.key("lock", key)];
        self.eval("unlock", UNLOCK_SCRIPT, &lock, &[owner]).await
    }

    /// The value written to Redis for `token` under `key` at `now_ms`: the
    /// header, then the JSON, sealed when the store has a key; `None` when it
    /// cannot be sealed.
    fn encode(&self, key: &str, token: &StoredToken, now_ms: u64) -> Option<String> {
        let expires_at_ms = now_ms.saturating_add(millis(token.expires_in()));
        let json = serde_json::to_string(&Body {
            token: Cow::Borrowed(token.secret()),
            expires_at_ms,
            issued_at_ms: expires_at_ms.saturating_sub(millis(token.lifetime())),
            scopes: Cow::Borrowed(token.scopes()),
        })
        .ok()?;
        let header = header(&fingerprint(token.secret()));
        #[cfg(feature = "redis-encryption")]
        if let Some(cipher) = &self.cipher {
            let body = cipher.seal(&associated_data(key, &header), json.as_bytes())?;
            return Some(header + &body);
        }
        let _ = key;
        Some(header + &json)
    }

    /// Reads a value back, refusing anything this store would not have
    /// written: another format, another key's ciphertext, a plaintext value
    /// when encryption is on, a fingerprint that does not match, a malformed
    /// token, a lifetime beyond [`MAX_LIFETIME`]. An expired token is
    /// `Ok(None)`: it was ours, it is just old.
    fn decode(
        &self,
        key: &str,
        raw: &[u8],
        now_ms: u64,
    ) -> Result<Option<StoredToken>, &'static str> {
        if raw.len() > MAX_VALUE_BYTES {
            return Err("the value is too large");
        }
        if OLD_FORMAT_TAGS
            .iter()
            .any(|tag| raw.starts_with(tag.as_bytes()))
        {
            return Ok(None);
        }
        let value = std::str::from_utf8(raw).map_err(|_| "the value is not text")?;
        let (fingerprint, body) = split(value).ok_or("the value is not in this crate's format")?;
        let json = self.open(key, fingerprint, body)?;
        let body: Body<'_> =
            serde_json::from_slice(&json).map_err(|_| "the value is not a token entry")?;
        if self::fingerprint(&body.token) != fingerprint {
            return Err("the value's fingerprint does not match its token");
        }
        // The same checks as a token fresh from the endpoint: nothing that
        // cannot be a header value leaves the store.
        AccessToken::new(&*body.token).map_err(|_| "the stored token is malformed")?;
        let Some(left) = body.expires_at_ms.checked_sub(now_ms).filter(|&ms| ms > 0) else {
            return Ok(None);
        };
        let lifetime = (body.expires_at_ms.checked_sub(body.issued_at_ms))
            .map(Duration::from_millis)
            .filter(|lifetime| *lifetime <= MAX_LIFETIME)
            .ok_or("the value's times are inconsistent")?;
        let token = StoredToken::new(body.token, lifetime, Duration::from_millis(left));
        Ok(Some(token.with_scopes(body.scopes.into_owned())))
    }

    /// The JSON in a value's body: opened with the store's key, or as written
    /// when the store has none (and then only if it is not sealed).
    fn open<'v>(
        &self,
        key: &str,
        fingerprint: &str,
        body: &'v str,
    ) -> Result<Cow<'v, [u8]>, &'static str> {
        #[cfg(feature = "redis-encryption")]
        if let Some(cipher) = &self.cipher {
            let opened = cipher.open(&associated_data(key, &header(fingerprint)), body);
            return opened
                .map(Cow::Owned)
                .ok_or("the value does not open with this store's encryption key");
        }
        let _ = (key, fingerprint);
        if !body.starts_with('{') {
            return Err("the value is encrypted and this store has no encryption key");
        }
        Ok(Cow::Borrowed(body.as_bytes()))
    }
}

/// Errors are the cache's to handle: it logs them and carries on as if the
/// store were empty, so a Redis that fails costs each process its own fetch.
impl TokenStore for RedisStore {
    /// A value this store cannot read or authenticate, or that has expired,
    /// is no token.
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        Box::pin(async move {
            let name = self.key("token", key);
            let raw: Option<Vec<u8>> = self
                .link
                .run("load", ::redis::cmd("GET").arg(&name))
                .await?;
            let Some(raw) = raw else { return Ok(None) };
            let decoded = self.decode(&name, &raw, unix_millis(SystemTime::now()));
            self.link.note_readable(decoded.as_ref().err().copied());
            let Some(token) = decoded.ok().flatten() else {
                return Ok(None);
            };
            // A token a 401 invalidated stays out, even when a writer who kept
            // its value (sealed or not) puts it back.
            let mark = self.invalid_mark(key, &fingerprint(token.secret()));
            let invalidated: bool = self
                .link
                .run("load", ::redis::cmd("EXISTS").arg(&mark))
                .await?;
            Ok((!invalidated).then_some(token))
        })
    }

    /// Publishes `token` for `ttl` (at most what it has left), unless it was
    /// invalidated meanwhile.
    fn store<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let ttl_ms = millis(ttl.min(token.expires_in()));
            if ttl_ms == 0 {
                // Nothing worth sharing: it would be refreshed on sight.
                return Ok(());
            }
            let name = self.key("token", key);
            let value = self
                .encode(&name, token, unix_millis(SystemTime::now()))
                .ok_or_else(|| {
                    Error::invalid_response("the token could not be sealed for Redis")
                })?;
            let names = [name, self.invalid_mark(key, &fingerprint(token.secret()))];
            let args = [value, ttl_ms.to_string()];
            if !self.eval("store", STORE_SCRIPT, &names, &args).await? {
                tracing::debug!(target: LOG_TARGET, "not publishing a token invalidated meanwhile");
            }
            Ok(())
        })
    }

    fn invalidate<'a>(
        &'a self,
        key: &'a str,
        token: &'a AccessToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let remaining = token.expires_at().saturating_duration_since(Instant::now());
        let invalidated = self.invalidate_entry(key, token.secret(), remaining);
        Box::pin(async move { invalidated.await.map(|_| ()) })
    }

    fn try_lock<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<StoreLock>, Error>> {
        Box::pin(async move {
            let lock = StoreLock::new_owner();
            Ok(self
                .lock_entry(key, lock.owner(), ttl)
                .await?
                .then_some(lock))
        })
    }

    fn unlock<'a>(&'a self, key: &'a str, lock: StoreLock) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { self.unlock_entry(key, lock.owner()).await.map(|_| ()) })
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RedisStore");
        d.field("endpoint", &self.link.endpoint)
            .field("prefix", &self.prefix);
        #[cfg(feature = "redis-encryption")]
        d.field("encrypted", &self.cipher.is_some());
        d.finish()
    }
}

/// The JSON body of a stored value: a [`StoredToken`] with wall-clock times,
/// since the value crosses machines.
#[derive(Serialize, Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    token: Cow<'a, str>,
    /// When the token expires, in milliseconds since the Unix epoch.
    expires_at_ms: u64,
    /// When the token was requested, in milliseconds since the Unix epoch.
    issued_at_ms: u64,
    #[serde(default)]
    scopes: Cow<'a, [String]>,
}

/// 32 hex digits naming a token without revealing it.
fn fingerprint(token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"cxone-auth token fingerprint\0");
    hasher.update(token.as_bytes());
    hex(&hasher.finalize()[..16])
}

/// The part of a value before its body: format tag and fingerprint.
fn header(fingerprint: &str) -> String {
    format!("{FORMAT_TAG}.{fingerprint}.")
}

/// Splits a value into its fingerprint and body, if it has this format.
fn split(value: &str) -> Option<(&str, &str)> {
    let rest = value.strip_prefix(FORMAT_TAG)?.strip_prefix('.')?;
    let (fingerprint, body) = rest.split_once('.')?;
    let well_formed = fingerprint.len() == 32
        && fingerprint
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    well_formed.then_some((fingerprint, body))
}

/// Binds a ciphertext to the key it is stored under and to its header.
#[cfg(feature = "redis-encryption")]
fn associated_data(key: &str, header: &str) -> Vec<u8> {
    [key.as_bytes(), b"\0", header.as_bytes()].concat()
}

/// Milliseconds since the Unix epoch on this machine's clock.
fn unix_millis(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, millis)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    /// Redis tests need a Redis: in CI (`CI` set) its absence fails the test,
    /// elsewhere it skips it with a message.
    async fn redis_url() -> Option<String> {
        let url = std::env::var(REDIS_URL_ENV).unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
        let probe = RedisStore::new(&url).unwrap();
        let ping = ::redis::cmd("PING");
        let ping = probe.link.run::<String>("ping", &ping);
        let ping = match tokio::time::timeout(Duration::from_secs(2), ping).await {
            Ok(ping) => ping.map_err(|e| e.to_string()),
            Err(_) => Err("no answer within 2 s".to_owned()),
        };
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

    fn store(url: &str, test: &str) -> RedisStore {
        RedisStore::new(url)
            .unwrap()
            .with_prefix(unique_prefix(test))
    }

    async fn raw(store: &RedisStore, args: &[&str]) -> ::redis::Value {
        let mut cmd = ::redis::cmd(args[0]);
        cmd.arg(&args[1..]);
        store.link.run("raw", &cmd).await.unwrap()
    }

    async fn pttl(store: &RedisStore, key: &str) -> i64 {
        match raw(store, &["PTTL", key]).await {
            ::redis::Value::Int(ms) => ms,
            other => panic!("{other:?}"),
        }
    }

    fn answering(store: &RedisStore) -> bool {
        store.link.answering.load(Ordering::Acquire)
    }

    const HOUR: Duration = Duration::from_secs(3600);

    fn token(value: &str, lifetime: Duration, expires_in: Duration) -> StoredToken {
        StoredToken::new(value, lifetime, expires_in)
    }

    #[tokio::test]
    async fn round_trip_keeps_times_scopes_and_ttl() {
        let Some(url) = redis_url().await else { return };
        let store = store(&url, "round-trip");
        let scopes = vec!["RealTimeApi".to_owned(), "AdminApi".to_owned()];
        let stored =
            token("tok.en-1", HOUR, HOUR - Duration::from_secs(600)).with_scopes(scopes.clone());
        store
            .store("cred", &stored, Duration::from_secs(2700))
            .await
            .unwrap();
        let loaded = store.load("cred").await.unwrap().unwrap();
        assert_eq!(loaded.secret(), "tok.en-1");
        assert_eq!(loaded.lifetime(), HOUR);
        let left = loaded.expires_in().as_secs();
        assert!((2995..=3000).contains(&left), "{left}");
        assert_eq!(loaded.scopes(), scopes);
        assert!(store.load("other-cred").await.unwrap().is_none());

        let ttl = pttl(&store, &store.key("token", "cred")).await;
        assert!((2_690_000..=2_700_000).contains(&ttl), "{ttl}");
    }

    #[tokio::test]
    async fn ttl_never_outlives_the_token_and_zero_is_not_stored() {
        let Some(url) = redis_url().await else { return };
        let store = store(&url, "ttl");
        let short = token("t", HOUR, Duration::from_secs(60));
        store.store("a", &short, HOUR).await.unwrap();
        let ttl = pttl(&store, &store.key("token", "a")).await;
        assert!((1..=60_000).contains(&ttl), "{ttl}");

        let full = token("t", HOUR, HOUR);
        store.store("b", &full, Duration::ZERO).await.unwrap();
        assert!(store.load("b").await.unwrap().is_none());
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

        let lock_ttl = pttl(&store, &store.key("lock", "c")).await;
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
        let first = token("first", HOUR, HOUR);
        store.store("c", &first, HOUR).await.unwrap();
        assert!(!store.invalidate_entry("c", "older", HOUR).await.unwrap());
        let loaded = store.load("c").await.unwrap().unwrap();
        assert_eq!(loaded.secret(), "first");
        assert!(store.invalidate_entry("c", "first", HOUR).await.unwrap());
        assert!(store.load("c").await.unwrap().is_none());
        assert!(!store.invalidate_entry("c", "first", HOUR).await.unwrap());

        // A publication of "first" arriving late (after its 401) is refused,
        // for the rest of its life; other tokens are not affected.
        store.store("c", &first, HOUR).await.unwrap();
        assert!(store.load("c").await.unwrap().is_none());
        let mark = pttl(&store, &store.invalid_mark("c", &fingerprint("first"))).await;
        assert!((3_590_000..=3_600_000).contains(&mark), "{mark}");
        let second = token("second", HOUR, HOUR);
        store.store("c", &second, HOUR).await.unwrap();
        let loaded = store.load("c").await.unwrap().unwrap();
        assert_eq!(loaded.secret(), "second");
    }

    #[tokio::test]
    async fn values_written_by_hand_are_ignored() {
        let Some(url) = redis_url().await else { return };
        let store = store(&url, "by-hand");
        let key = store.key("token", "c");
        let now = unix_millis(SystemTime::now());
        let fp = fingerprint("tok");
        let valid_json = format!(
            r#"{{"token":"tok","expires_at_ms":{},"issued_at_ms":{now},"scopes":[]}}"#,
            now + 3_600_000
        );
        let bad = [
            "tok".to_owned(),
            valid_json.clone(),
            format!("{}{valid_json}", header(&fingerprint("other"))),
            format!(
                "{}{{\"token\":\"tok\",\"expires_at_ms\":{},\"issued_at_ms\":{}}}",
                header(&fp),
                now - 1000,
                now - 3_601_000
            ),
            format!(
                "{}{{\"token\":\"to k\",\"expires_at_ms\":{},\"issued_at_ms\":{now}}}",
                header(&fingerprint("to k")),
                now + 1000
            ),
            format!("{}not json", header(&fp)),
            format!("{}enc.AAAA", header(&fp)),
        ];
        for value in &bad {
            raw(&store, &["SET", &key, value, "EX", "60"]).await;
            assert!(store.load("c").await.unwrap().is_none(), "{value}");
        }
        // Another type under the key: Redis refuses the read; no token.
        raw(&store, &["DEL", &key]).await;
        raw(&store, &["RPUSH", &key, "x"]).await;
        raw(&store, &["EXPIRE", &key, "60"]).await;
        assert!(store.load("c").await.is_err());
        assert!(answering(&store), "Redis answered");

        // Without encryption a well-formed value is taken as written.
        let value = format!("{}{valid_json}", header(&fp));
        raw(&store, &["SET", &key, &value, "EX", "60"]).await;
        let loaded = store.load("c").await.unwrap().unwrap();
        assert_eq!(loaded.secret(), "tok");
    }

    #[tokio::test]
    async fn values_in_the_old_format_are_no_token_and_no_error() {
        let Some(url) = redis_url().await else { return };
        let store = store(&url, "old-format");
        let now = unix_millis(SystemTime::now());
        let json = format!(
            r#"{{"token":"tok","expires_at_ms":{},"issued_at_ms":{now},"scopes":[]}}"#,
            now + 3_600_000
        );
        let old = format!("cxa1.{}.{json}", fingerprint("tok"));
        // Where format 1 kept it, and under this format's name.
        let old_key = format!("{}token:{}", store.prefix, hex(&Sha256::digest(b"c")));
        for key in [old_key, store.key("token", "c")] {
            raw(&store, &["SET", &key, &old, "EX", "60"]).await;
            assert!(store.load("c").await.unwrap().is_none(), "{key}");
        }
        assert!(
            store.link.readable.load(Ordering::Acquire),
            "not logged as unusable"
        );
        // The format this version writes, for contrast.
        let current = format!("{}{json}", header(&fingerprint("tok")));
        raw(
            &store,
            &["SET", &store.key("token", "c"), &current, "EX", "60"],
        )
        .await;
        assert_eq!(store.load("c").await.unwrap().unwrap().secret(), "tok");
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_an_error_not_a_hang() {
        // Port 9 (discard) on loopback is closed on any machine that runs these tests.
        let store = RedisStore::new("redis://127.0.0.1:9").unwrap();
        assert!(answering(&store));
        let load = tokio::time::timeout(Duration::from_secs(5), store.load("c"));
        let err = load.await.expect("a hang").err().unwrap();
        assert!(err.is_transient(), "{err:?}");
        assert!(!answering(&store));
        let lock = tokio::time::timeout(Duration::from_secs(5), store.lock_entry("c", "o", HOUR));
        assert!(lock.await.expect("a hang").is_err());
    }

    #[test]
    fn keys_hash_the_shared_key() {
        let store = RedisStore::new(DEFAULT_REDIS_URL)
            .unwrap()
            .with_prefix("app:");
        let credential = "https://idp/token client-id scope-a";
        let (token, lock) = (
            store.key("token", credential),
            store.key("lock", credential),
        );
        let mark = store.invalid_mark(credential, &fingerprint("t"));
        assert!(!token.contains("client-id"));
        // One hash tag, the whole digest, for every key of the credential:
        // Redis Cluster keeps them in one slot, so each script runs on one node.
        let tag = |key: &str| key[key.find('{').unwrap()..=key.find('}').unwrap()].to_owned();
        assert_eq!(tag(&token).len(), 66);
        assert_eq!(tag(&token), tag(&lock));
        assert_eq!(tag(&token), tag(&mark));
        assert!(
            token.starts_with("app:{") && token.ends_with("}:token"),
            "{token}"
        );
        assert!(lock.ends_with("}:lock") && mark.contains("}:invalid:"));
        assert_ne!(tag(&token), tag(&store.key("token", "another credential")));
    }

    /// The JSON body of a value this store wrote.
    fn body_json(value: &str) -> serde_json::Value {
        serde_json::from_str(split(value).unwrap().1).unwrap()
    }

    #[test]
    fn values_keep_wall_clock_times() {
        let store = RedisStore::new(DEFAULT_REDIS_URL).unwrap();
        let now = 1_700_000_000_000;
        let stored = token("t", HOUR, Duration::from_secs(3000));
        let value = store.encode("k", &stored, now).unwrap();
        let json = body_json(&value);
        assert_eq!(json["expires_at_ms"], now + 3_000_000);
        assert_eq!(json["issued_at_ms"], now - 600_000);
        let loaded = store.decode("k", value.as_bytes(), now + 1_000_000);
        let loaded = loaded.unwrap().unwrap();
        assert_eq!(loaded.lifetime(), HOUR);
        assert_eq!(loaded.expires_in(), Duration::from_secs(2000));
        let expired = store.decode("k", value.as_bytes(), now + 3_000_000);
        assert!(expired.unwrap().is_none(), "expired");
    }

    #[test]
    fn nonsense_times_are_refused() {
        let store = RedisStore::new(DEFAULT_REDIS_URL).unwrap();
        let now = 1_700_000_000_000;
        let value = |expires_at_ms: u64, issued_at_ms: u64| {
            format!(
                r#"{}{{"token":"t","expires_at_ms":{expires_at_ms},"issued_at_ms":{issued_at_ms}}}"#,
                header(&fingerprint("t"))
            )
        };
        let backwards = value(now + 10, now + 20);
        assert!(store.decode("k", backwards.as_bytes(), now).is_err());
        let too_long = value(now + 1000 + millis(MAX_LIFETIME), now);
        assert!(store.decode("k", too_long.as_bytes(), now).is_err());
    }

    #[test]
    fn values_split_only_in_this_format() {
        let fp = fingerprint("token");
        assert_eq!(fp.len(), 32);
        assert_ne!(fp, fingerprint("token2"));
        let value = format!("{}{{\"a\":1}}", header(&fp));
        assert_eq!(split(&value), Some((fp.as_str(), "{\"a\":1}")));
        for bad in [
            "",
            "garbage",
            "cxa1.",
            "cxa1.short.body",
            "cxa1.0123456789abcdef0123456789abcdef.{}",
            "cxa1.0123456789ABCDEF0123456789abcdef.{}",
        ] {
            assert!(split(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn debug_and_errors_hide_the_password() {
        let store = RedisStore::new("redis://user:hunter2@127.0.0.1:6379/3").unwrap();
        let debug = format!("{store:?}");
        assert!(debug.contains("127.0.0.1:6379/3"), "{debug}");
        assert!(!debug.contains("hunter2"));
        let other = format!("{:?}", RedisStore::new("redis://:hunter2@h").unwrap());
        assert!(!other.contains("hunter2"));
        let err = RedisStore::new("http://:hunter2@nope").unwrap_err();
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    }

    #[test]
    fn cluster_seeds_are_checked_and_debug_shows_no_password() {
        let seeds = [
            "redis://:hunter2@10.0.0.1:7001",
            "redis://:hunter2@10.0.0.2:7002",
        ];
        let debug = format!("{:?}", RedisStore::cluster(seeds).unwrap());
        assert!(debug.contains("10.0.0.1:7001,10.0.0.2:7002"), "{debug}");
        assert!(!debug.contains("hunter2"));
        assert!(
            RedisStore::cluster(Vec::<String>::new()).is_err(),
            "no seed"
        );
        let err = RedisStore::cluster(["http://:hunter2@h"]).unwrap_err();
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
        let two_passwords = ["redis://:a@h1:7001", "redis://:b@h2:7002"];
        assert!(RedisStore::cluster(two_passwords).is_err());
    }

    #[cfg(feature = "redis-encryption")]
    mod encrypted {
        use super::*;

        fn encrypted(url: &str, prefix: &str, key: u8) -> RedisStore {
            RedisStore::new(url)
                .unwrap()
                .with_prefix(prefix)
                .with_encryption_key(EncryptionKey::new([key; 32]))
        }

        #[tokio::test]
        async fn values_are_unreadable_without_the_key() {
            let Some(url) = redis_url().await else { return };
            let prefix = unique_prefix("encrypted");
            let (a, b) = (encrypted(&url, &prefix, 1), encrypted(&url, &prefix, 2));
            let plain = RedisStore::new(&url).unwrap().with_prefix(prefix.as_str());
            let stored = token("the-token-value", HOUR, HOUR).with_scopes(["s"]);
            a.store("c", &stored, HOUR).await.unwrap();
            let loaded = a.load("c").await.unwrap().unwrap();
            assert_eq!(loaded.secret(), "the-token-value");
            assert!(b.load("c").await.unwrap().is_none(), "another key");
            assert!(plain.load("c").await.unwrap().is_none(), "no key");

            let key = a.key("token", "c");
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
            let stored = token("tok", HOUR, HOUR);
            store.store("c", &stored, HOUR).await.unwrap();
            let (from, to) = (store.key("token", "c"), store.key("token", "d"));
            let ::redis::Value::BulkString(sealed) = raw(&store, &["GET", &from]).await else {
                panic!("no value")
            };
            let sealed = String::from_utf8(sealed).unwrap();

            raw(&store, &["SET", &to, &sealed, "EX", "60"]).await;
            assert!(
                store.load("d").await.unwrap().is_none(),
                "moved to another key"
            );

            let mut flipped = sealed.clone().into_bytes();
            let last = flipped.len() - 1;
            flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
            let flipped = String::from_utf8(flipped).unwrap();
            raw(&store, &["SET", &from, &flipped, "EX", "60"]).await;
            assert!(store.load("c").await.unwrap().is_none(), "tampered");

            let other_fp = sealed.replacen(&fingerprint("tok"), &fingerprint("x"), 1);
            raw(&store, &["SET", &from, &other_fp, "EX", "60"]).await;
            assert!(
                store.load("c").await.unwrap().is_none(),
                "fingerprint changed"
            );

            let now = unix_millis(SystemTime::now());
            let by_hand = format!(
                "{}{{\"token\":\"tok\",\"expires_at_ms\":{},\"issued_at_ms\":{now}}}",
                header(&fingerprint("tok")),
                now + 3_600_000
            );
            raw(&store, &["SET", &from, &by_hand, "EX", "60"]).await;
            assert!(
                store.load("c").await.unwrap().is_none(),
                "plaintext by hand"
            );
        }

        /// A writer without the key keeps the sealed value of a token, and
        /// writes it back after a 401 invalidated that token: a process
        /// starting then must not take it.
        #[tokio::test]
        async fn an_invalidated_token_written_back_is_refused() {
            let Some(url) = redis_url().await else { return };
            let prefix = unique_prefix("replay");
            let store = encrypted(&url, &prefix, 1);
            store
                .store("c", &token("old", HOUR, HOUR), HOUR)
                .await
                .unwrap();
            let name = store.key("token", "c");
            let ::redis::Value::BulkString(sealed) = raw(&store, &["GET", &name]).await else {
                panic!("no value")
            };
            let sealed = String::from_utf8(sealed).unwrap();
            assert!(store.invalidate_entry("c", "old", HOUR).await.unwrap());

            raw(&store, &["SET", &name, &sealed, "EX", "3000"]).await;
            let newcomer = encrypted(&url, &prefix, 1);
            assert!(newcomer.load("c").await.unwrap().is_none(), "replayed");

            // A token that was not invalidated still loads.
            store
                .store("c", &token("new", HOUR, HOUR), HOUR)
                .await
                .unwrap();
            assert_eq!(newcomer.load("c").await.unwrap().unwrap().secret(), "new");
        }
    }
}
