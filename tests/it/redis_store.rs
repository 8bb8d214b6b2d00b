//! The Redis store as caches use it: encryption at rest, values written by
//! hand, state changes logged once, nothing secret in Redis keys, `Debug` or
//! logs.
//!
//! Real Redis, real time; nothing here waits on the clock but the outage
//! test, which waits out a lock's TTL, since that expiry is what it tests.

use std::sync::Arc;
use std::time::Duration;

use crate::redis_support::{
    self, Observed, Proxy, delete_under, fetch_and_publish, keys_under, lock_keys, raw_connection,
    redis_url, source, token_key, unique_prefix,
};
use crate::support::capture_logs;
use cxone_auth::cache::{RedisStore, StoreLock, StoredToken, TokenStore};
use cxone_auth::mock::{self, MockCxone};
use cxone_auth::{TokenCache, TokenSource as _};

const HOUR: Duration = Duration::from_secs(3600);

async fn get(connection: &mut redis::aio::MultiplexedConnection, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query_async(connection)
        .await
        .unwrap()
}

async fn set(connection: &mut redis::aio::MultiplexedConnection, key: &str, value: &str) {
    redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("EX")
        .arg(600)
        .query_async::<()>(connection)
        .await
        .unwrap();
}

#[tokio::test]
async fn keys_name_no_credential_and_values_keep_wall_clock_times() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix("layout");
    let mock = MockCxone::new();
    let (_cache, token) =
        fetch_and_publish(source(&mock), redis_support::store(&url, &prefix)).await;

    let keys = keys_under(&url, &prefix).await;
    assert_eq!(keys.len(), 1, "the lock is released: {keys:?}");
    let key = &keys[0];
    for secret_or_name in [
        mock::CLIENT_ID,
        mock::CLIENT_SECRET,
        mock::ACCESS_KEY_ID,
        mock::ACCESS_KEY_SECRET,
        "auth/token",
    ] {
        assert!(!key.contains(secret_or_name), "{key}");
    }
    let value = get(&mut raw_connection(&url).await, key).await.unwrap();
    assert!(value.starts_with("cxa2."), "versioned: {value}");
    let json: serde_json::Value =
        serde_json::from_str(value.splitn(3, '.').nth(2).unwrap()).unwrap();
    assert_eq!(json["token"], token.secret());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let expires = json["expires_at_ms"].as_u64().unwrap();
    let issued = json["issued_at_ms"].as_u64().unwrap();
    assert_eq!(expires - issued, 3_600_000, "the mock's one-hour lifetime");
    assert!(
        issued.abs_diff(now_ms) < 60_000,
        "issued now, on the wall clock"
    );
    delete_under(&url, &prefix).await;
}

#[tokio::test]
async fn the_store_implements_the_trait_contract() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix("contract");
    let store = redis_support::store(&url, &prefix);
    let token = cxone_auth::AccessToken::new("contract-token")
        .unwrap()
        .with_lifetime(HOUR)
        .with_scopes(["RealTimeApi"]);
    let stored = StoredToken::from_token(&token, tokio::time::Instant::now());

    assert!(store.load("k").await.unwrap().is_none());
    store.store("k", &stored, HOUR / 2).await.unwrap();
    let loaded = store.load("k").await.unwrap().unwrap();
    assert_eq!(loaded.secret(), "contract-token");
    assert_eq!(loaded.lifetime(), HOUR);
    assert!(loaded.expires_in() <= HOUR && loaded.expires_in() > HOUR - Duration::from_secs(60));
    assert_eq!(loaded.scopes(), ["RealTimeApi"]);

    let other = cxone_auth::AccessToken::new("other-token").unwrap();
    store.invalidate("k", &other).await.unwrap();
    assert!(
        store.load("k").await.unwrap().is_some(),
        "another token: kept"
    );
    store.invalidate("k", &token).await.unwrap();
    assert!(store.load("k").await.unwrap().is_none());

    let lock = store.try_lock("k", HOUR).await.unwrap().expect("free");
    assert!(store.try_lock("k", HOUR).await.unwrap().is_none(), "held");
    store
        .unlock("k", StoreLock::from_owner("someone else"))
        .await
        .unwrap();
    assert!(
        store.try_lock("k", HOUR).await.unwrap().is_none(),
        "still held"
    );
    store.unlock("k", lock).await.unwrap();
    assert!(
        store.try_lock("k", HOUR).await.unwrap().is_some(),
        "released"
    );
    delete_under(&url, &prefix).await;
}

#[tokio::test]
async fn a_value_written_by_hand_is_ignored() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix("by-hand");
    let mock = MockCxone::new();
    fetch_and_publish(source(&mock), redis_support::store(&url, &prefix)).await;
    let key = token_key(&url, &prefix).await.unwrap();
    let mut connection = raw_connection(&url).await;

    for by_hand in [
        "forged-token",
        "cxa2.not-a-fingerprint.{}",
        "{\"token\":\"forged\"}",
    ] {
        set(&mut connection, &key, by_hand).await;
        let (cache, token) =
            fetch_and_publish(source(&mock), redis_support::store(&url, &prefix)).await;
        assert!(mock.is_token_active(token.secret()), "{by_hand}");
        assert_eq!(cache.stats().store_loads, 0, "{by_hand}");
        assert_eq!(cache.stats().fetches, 1, "{by_hand}");
    }
    delete_under(&url, &prefix).await;
}

#[cfg(feature = "redis-encryption")]
mod encrypted {
    use cxone_auth::cache::EncryptionKey;

    use super::*;

    fn sealed_store(url: &str, prefix: &str, key: u8) -> RedisStore {
        RedisStore::new(url)
            .unwrap()
            .with_prefix(prefix)
            .with_encryption_key(EncryptionKey::new([key; 32]))
    }

    fn cache(mock: &MockCxone, store: RedisStore) -> TokenCache {
        TokenCache::builder(source(mock)).store(store).build()
    }

    #[tokio::test]
    async fn encrypted_values_are_unreadable_with_another_key() {
        let Some(url) = redis_url().await else { return };
        let prefix = unique_prefix("sealed");
        let mock = MockCxone::new();

        let (_writer, token) =
            fetch_and_publish(source(&mock), sealed_store(&url, &prefix, 1)).await;
        let key = token_key(&url, &prefix).await.unwrap();
        let value = get(&mut raw_connection(&url).await, &key).await.unwrap();
        assert!(!value.contains(token.secret()), "the token is sealed");
        assert!(!value.contains("expires_at_ms"), "so are its times");

        // The same key reads it: no token request.
        let peer = cache(&mock, sealed_store(&url, &prefix, 1));
        assert!(peer.token().await.unwrap().same_token(&token));
        assert_eq!(mock.stats().token_requests, 1);

        // Another key, or none, cannot: each fetches its own.
        let stranger = cache(&mock, sealed_store(&url, &prefix, 2));
        assert!(!stranger.token().await.unwrap().same_token(&token));
        assert_eq!(stranger.stats().store_loads, 0);
        let plain = cache(&mock, redis_support::store(&url, &prefix));
        plain.token().await.unwrap();
        assert_eq!(plain.stats().store_loads, 0);
        assert_eq!(mock.stats().token_requests, 3);
        delete_under(&url, &prefix).await;
    }

    #[tokio::test]
    async fn a_well_formed_value_written_by_hand_is_refused() {
        let Some(url) = redis_url().await else { return };
        let prefix = unique_prefix("sealed-by-hand");
        let mock = MockCxone::new();
        let (_writer, real) =
            fetch_and_publish(source(&mock), sealed_store(&url, &prefix, 1)).await;
        let key = token_key(&url, &prefix).await.unwrap();

        // What a plaintext store writes, in the crate's own format, at the
        // right key, with a token of the forger's choosing (here a real,
        // active one, so that only the missing seal gives it away).
        let forged = mock.issue_token();
        let forger = redis_support::store(&url, &prefix);
        let shared_key = source(&mock).shared_key().unwrap();
        let forge = || async {
            let stored = StoredToken::new(forged.clone(), HOUR, HOUR);
            forger.store(&shared_key, &stored, HOUR).await.unwrap();
            assert!(
                get(&mut raw_connection(&url).await, &key)
                    .await
                    .unwrap()
                    .contains(&forged)
            );
        };

        // One process (one store), several caches reading over time.
        let process = sealed_store(&url, &prefix, 1);
        let (logs, _guard) = capture_logs();
        for _ in 0..3 {
            forge().await;
            // Each reader fetches and publishes its own token over the
            // forgery; wait for that before forging again.
            let (reader, token) = fetch_and_publish(source(&mock), process.clone()).await;
            assert_ne!(token.secret(), forged, "the forged token is never used");
            assert_eq!(reader.stats().store_loads, 0);
        }
        let logs = logs.text();
        assert_eq!(
            logs.matches("cannot use").count(),
            1,
            "refused values are reported once, not per read: {logs}"
        );
        assert!(!logs.contains(&forged) && !logs.contains(real.secret()));
        delete_under(&url, &prefix).await;
    }
}

/// The mock's access key source, whose fetches wait at a gate the test opens.
#[derive(Clone)]
struct Gated {
    inner: cxone_auth::token::AccessKeyGrant,
    started: Arc<tokio::sync::Notify>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl cxone_auth::TokenSource for Gated {
    async fn fetch(&self) -> Result<cxone_auth::AccessToken, cxone_auth::Error> {
        self.started.notify_one();
        self.gate.acquire().await.unwrap().forget();
        self.inner.fetch().await
    }

    fn shared_key(&self) -> Option<String> {
        self.inner.shared_key()
    }
}

/// How long a fetch lock lives in the outage test: the cache's fetch timeout.
/// Long enough for the test to see the lock before it expires, short since
/// the test waits for it.
const OUTAGE_LOCK_TTL: Duration = Duration::from_secs(3);

#[tokio::test]
async fn an_outage_is_logged_once_each_way_and_its_lock_expires_by_ttl() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix("outage");
    let mut proxy = Proxy::start(&url).await;
    let mock = MockCxone::new();
    let store = Observed::new(redis_support::store(proxy.url(), &prefix));
    let (started, gate) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Semaphore::new(0)),
    );
    let source = Gated {
        inner: source(&mock),
        started: Arc::clone(&started),
        gate: Arc::clone(&gate),
    };
    // Waiting on a lock for up to a minute: were one left behind by the
    // outage for longer than its TTL, this cache would stall long past the
    // test's limit below.
    let cache = TokenCache::builder(source)
        .store(store.clone())
        .fetch_timeout(OUTAGE_LOCK_TTL)
        .store_wait(Duration::from_secs(60))
        .load_timeout(Duration::from_secs(120))
        .build();
    let (logs, _guard) = capture_logs();

    // Redis stops while this process holds the fetch lock: its release fails.
    let first = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    started.notified().await;
    assert_eq!(lock_keys(&url, &prefix).await.len(), 1);
    proxy.close().await;
    gate.add_permits(1_000);
    let mut seen = vec![first.await.unwrap().unwrap()];
    // The lock whose release failed is still in Redis, and expires by its TTL.
    let locks = lock_keys(&url, &prefix).await;
    assert_eq!(locks.len(), 1, "{locks:?}");
    let lock_ttl: i64 = redis::cmd("PTTL")
        .arg(&locks[0])
        .query_async(&mut raw_connection(&url).await)
        .await
        .unwrap();
    let max_ttl = OUTAGE_LOCK_TTL.as_millis() as i64;
    assert!((1..=max_ttl).contains(&lock_ttl), "{lock_ttl}");

    // Down: every 401 is served by a token of its own.
    for _ in 0..10 {
        let held = cache.cached().unwrap();
        cache.invalidate(&held);
        seen.push(cache.token().await.unwrap());
    }
    assert!(!store.answered());

    // Back: once the lock left behind has expired, the store is used again.
    proxy.reopen().await;
    let back = async {
        for _ in 0..10 {
            let held = cache.cached().unwrap();
            cache.invalidate(&held);
            seen.push(cache.token().await.unwrap());
        }
    };
    tokio::time::timeout(Duration::from_secs(30), back)
        .await
        .expect("stalled on a lock the outage left behind");
    assert!(store.answered());
    assert_eq!(mock.stats().token_requests, 21);
    let newcomer = TokenCache::builder(redis_support::source(&mock))
        .store(redis_support::store(proxy.url(), &prefix))
        .build();
    assert!(
        newcomer
            .token()
            .await
            .unwrap()
            .same_token(seen.last().unwrap())
    );
    assert_eq!(mock.stats().token_requests, 21, "taken from Redis");

    let logs = logs.text();
    assert_eq!(logs.matches("is not answering").count(), 1, "{logs}");
    assert_eq!(logs.matches("is answering again").count(), 1, "{logs}");
    for token in &seen {
        assert!(
            !logs.contains(token.secret()),
            "a token leaked into the logs"
        );
    }
    for secret in [mock::CLIENT_SECRET, mock::ACCESS_KEY_SECRET] {
        assert!(!logs.contains(secret));
    }
    assert!(!logs.contains("Bearer"));
    delete_under(&url, &prefix).await;
}

#[test]
fn debug_and_errors_never_show_the_password() {
    let store = RedisStore::new("redis://user:hunter2@127.0.0.1:6379/2").unwrap();
    let debug = format!("{store:?}");
    assert!(debug.contains("127.0.0.1:6379/2"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
    let err = RedisStore::new("https://user:hunter2@example.invalid").unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
}

#[test]
fn from_env_reads_redis_url() {
    // Only checks the parse: the variable is whatever the run has, or unset.
    assert!(RedisStore::from_env().is_ok());
}
