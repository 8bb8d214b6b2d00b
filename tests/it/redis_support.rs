//! What the Redis tests share: finding the Redis (required in CI), unique key
//! prefixes, caches on the mock CXone, and a TCP proxy that can stop, stall or
//! garble the Redis connection.
//!
//! Each test file uses part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cxone_auth::cache::{RedisStore, StoreLock, StoredToken, TokenStore};
use cxone_auth::mock::MockCxone;
use cxone_auth::token::AccessKeyGrant;
use cxone_auth::{AccessToken, Error, TokenCache};
use futures_util::future::BoxFuture;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// The variable naming the Redis the tests use, as for `RedisStore::from_env`.
const REDIS_URL_ENV: &str = "REDIS_URL";

/// The Redis the tests use: `REDIS_URL`, else the local default.
pub(crate) fn redis_url_setting() -> String {
    std::env::var(REDIS_URL_ENV).unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Whether this run is CI's (`CI` set to anything but `false` or empty).
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The Redis URL when Redis answers. In CI its absence fails the test;
/// elsewhere the test is skipped with a message saying why.
pub(crate) async fn redis_url() -> Option<String> {
    let url = redis_url_setting();
    let ping = async {
        let client = redis::Client::open(url.as_str())?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
    };
    match tokio::time::timeout(Duration::from_secs(3), ping).await {
        Ok(Ok(_)) => Some(url),
        outcome => {
            let why = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => "no answer within 3 s".to_owned(),
            };
            assert!(
                !in_ci(),
                "the Redis tests need a Redis at {url} in CI: {why}"
            );
            eprintln!(
                "SKIPPED: no Redis at {url} ({why}); start redis-server or set {REDIS_URL_ENV}"
            );
            None
        }
    }
}

/// A key prefix no other test (or run) uses, so tests run in parallel on one
/// Redis and never touch anything else in it.
pub(crate) fn unique_prefix(test: &str) -> String {
    format!(
        "cxone-auth-test:{test}:{}:{:016x}:",
        std::process::id(),
        fastrand::u64(..)
    )
}

/// A plain connection for looking at (and tampering with) what the store wrote.
pub(crate) async fn raw_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The keys under `prefix`.
pub(crate) async fn keys_under(url: &str, prefix: &str) -> Vec<String> {
    let mut connection = raw_connection(url).await;
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// Deletes the keys under `prefix`: the test's own, nothing else.
pub(crate) async fn delete_under(url: &str, prefix: &str) {
    let keys = keys_under(url, prefix).await;
    if !keys.is_empty() {
        let mut connection = raw_connection(url).await;
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut connection)
            .await
            .unwrap();
    }
}

/// The stored token key under `prefix` (there is one credential per test).
pub(crate) async fn token_key(url: &str, prefix: &str) -> Option<String> {
    keys_under(url, prefix)
        .await
        .into_iter()
        .find(|k| k.ends_with("}:token"))
}

/// The fetch lock keys under `prefix`.
pub(crate) async fn lock_keys(url: &str, prefix: &str) -> Vec<String> {
    let mut keys = keys_under(url, prefix).await;
    keys.retain(|k| k.ends_with("}:lock"));
    keys
}

/// CXone's access key flow against the mock, in memory.
pub(crate) use crate::support::mock_grant as source;

/// A store for one "process". Its calls are bounded by the cache's own
/// store timeout, as in production.
pub(crate) fn store(url: &str, prefix: &str) -> RedisStore {
    RedisStore::new(url).unwrap().with_prefix(prefix)
}

/// `n` caches standing for `n` processes: each its own source, its own
/// Redis connection, all on one prefix.
pub(crate) fn fleet(mock: &MockCxone, url: &str, prefix: &str, n: usize) -> Vec<TokenCache> {
    (0..n)
        .map(|_| {
            TokenCache::builder(source(mock))
                .store(store(url, prefix))
                .build()
        })
        .collect()
}

/// `n` caches without a store.
pub(crate) fn lone_caches(mock: &MockCxone, n: usize) -> Vec<TokenCache> {
    (0..n).map(|_| TokenCache::new(source(mock))).collect()
}

/// `per_cache` concurrent callers on each cache, as spawned tasks; every
/// outcome.
pub(crate) async fn callers(
    caches: &[TokenCache],
    per_cache: usize,
) -> Vec<Result<Arc<AccessToken>, Error>> {
    let mut tasks = JoinSet::new();
    for cache in caches {
        for _ in 0..per_cache {
            let cache = cache.clone();
            tasks.spawn(async move { cache.token().await });
        }
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    while let Some(outcome) = tasks.join_next().await {
        outcomes.push(outcome.expect("a caller panicked"));
    }
    outcomes
}

/// The tokens of `outcomes`, failing the test on any error.
pub(crate) fn all_ok(outcomes: Vec<Result<Arc<AccessToken>, Error>>) -> Vec<Arc<AccessToken>> {
    outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or_else(|e| panic!("a caller failed: {e}")))
        .collect()
}

/// How many distinct token values `tokens` holds.
pub(crate) fn distinct(tokens: &[Arc<AccessToken>]) -> usize {
    let mut values: Vec<&str> = tokens.iter().map(|t| t.secret()).collect();
    values.sort_unstable();
    values.dedup();
    values.len()
}

/// What the proxy does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Passes bytes both ways: Redis as it is.
    Forward,
    /// Accepts, reads, never answers: a Redis that hangs.
    Stall,
    /// Answers every read with bytes that are not RESP.
    Garbage,
}

/// A TCP proxy on 127.0.0.1 in front of Redis, to stop it (close the port and
/// every connection), stall it or make it answer garbage, and to bring it
/// back on the same port.
pub(crate) struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    url: String,
    mode: Arc<Mutex<Mode>>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding to the Redis at `redis_url`.
    pub(crate) async fn start(redis_url: &str) -> Self {
        let mut url = url::Url::parse(redis_url).unwrap();
        let host = url.host_str().unwrap().to_owned();
        let port = url.port().unwrap_or(6379);
        let target = tokio::net::lookup_host((host.as_str(), port))
            .await
            .unwrap()
            .next()
            .unwrap();
        let mut proxy = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            target,
            url: String::new(),
            mode: Arc::new(Mutex::new(Mode::Forward)),
            accept: None,
        };
        proxy.open();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(proxy.addr.port())).unwrap();
        proxy.url = url.to_string();
        proxy
    }

    /// The Redis URL through the proxy.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Closes the port and drops every open connection, like a Redis that
    /// stopped.
    pub(crate) async fn close(&mut self) {
        if let Some(accept) = self.accept.take() {
            // Ending the accept loop drops the listener and its JoinSet, which
            // aborts every connection task and so closes their sockets.
            accept.abort();
            let _ = accept.await;
        }
    }

    /// Listens again on the same port.
    pub(crate) async fn reopen(&mut self) {
        self.close().await;
        self.open();
    }

    fn open(&mut self) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.addr).unwrap();
        let listener = socket.listen(64).unwrap();
        self.addr = listener.local_addr().unwrap();
        let (target, mode) = (self.target, Arc::clone(&self.mode));
        self.accept = Some(tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let mode = *mode.lock().unwrap();
                connections.spawn(serve(client, target, mode));
                while connections.try_join_next().is_some() {}
            }
        }));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
    }
}

async fn serve(mut client: TcpStream, target: SocketAddr, mode: Mode) {
    let mut buf = vec![0u8; 16 * 1024];
    match mode {
        Mode::Forward => {
            if let Ok(mut redis) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut redis).await;
            }
        }
        Mode::Stall => while matches!(client.read(&mut buf).await, Ok(n) if n > 0) {},
        Mode::Garbage => {
            while matches!(client.read(&mut buf).await, Ok(n) if n > 0) {
                if client.write_all(b"\x00\xffnot redis\r\n").await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A store that counts the fetch locks taken and released through it, and
/// sees whether Redis answered its last call.
///
/// A cache serves its callers first and publishes after (store, then
/// unlock), so a test that looks at Redis, or changes it, first waits until
/// every landed fetch has published instead of racing it.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    inner: RedisStore,
    locks: Arc<AtomicU64>,
    unlocks: watch::Sender<u64>,
    answered: Arc<AtomicBool>,
}

impl Observed {
    pub(crate) fn new(inner: RedisStore) -> Self {
        Self {
            inner,
            locks: Arc::default(),
            unlocks: watch::Sender::new(0),
            answered: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Whether the last call that ended succeeded: `false` after a call that
    /// failed, or that the cache stopped waiting for (its timeout). Starts
    /// `true`.
    pub(crate) fn answered(&self) -> bool {
        self.answered.load(Ordering::SeqCst)
    }

    /// Runs `call`, recording whether it succeeded.
    fn watched<'a, T: Send + 'a>(
        &'a self,
        call: BoxFuture<'a, Result<T, Error>>,
    ) -> BoxFuture<'a, Result<T, Error>> {
        Box::pin(async move {
            let mut abandoned = Abandoned(Some(&self.answered));
            let outcome = call.await;
            abandoned.0 = None;
            self.answered.store(outcome.is_ok(), Ordering::SeqCst);
            outcome
        })
    }

    /// Waits until every lock taken so far was released. Call it when the
    /// fetches of interest have landed (their callers have their tokens):
    /// each then releases its lock once, after publishing.
    pub(crate) async fn settled(&self) {
        let taken = self.locks.load(Ordering::SeqCst);
        let mut seen = self.unlocks.subscribe();
        let waited = tokio::time::timeout(Duration::from_secs(30), seen.wait_for(|&u| u >= taken));
        waited.await.expect("a fetch never published").unwrap();
    }
}

/// Marks a call as unanswered if it is dropped before it ends.
struct Abandoned<'a>(Option<&'a AtomicBool>);

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if let Some(answered) = self.0 {
            answered.store(false, Ordering::SeqCst);
        }
    }
}

impl TokenStore for Observed {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        self.watched(self.inner.load(key))
    }

    fn store<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.watched(self.inner.store(key, token, ttl))
    }

    fn invalidate<'a>(
        &'a self,
        key: &'a str,
        token: &'a AccessToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.watched(self.inner.invalidate(key, token))
    }

    fn try_lock<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<StoreLock>, Error>> {
        Box::pin(async move {
            let lock = self.watched(self.inner.try_lock(key, ttl)).await;
            if matches!(lock, Ok(Some(_))) {
                self.locks.fetch_add(1, Ordering::SeqCst);
            }
            lock
        })
    }

    fn unlock<'a>(&'a self, key: &'a str, lock: StoreLock) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let released = self.watched(self.inner.unlock(key, lock)).await;
            self.unlocks.send_modify(|n| *n += 1);
            released
        })
    }
}

/// A cache on an observed store: fetch, then wait until it has published.
pub(crate) async fn fetch_and_publish(
    cache_source: AccessKeyGrant,
    store: RedisStore,
) -> (TokenCache, Arc<AccessToken>) {
    let observed = Observed::new(store);
    let cache = TokenCache::builder(cache_source)
        .store(observed.clone())
        .build();
    let token = cache.token().await.unwrap();
    observed.settled().await;
    (cache, token)
}
