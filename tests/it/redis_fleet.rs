//! A fleet of caches sharing tokens through a real Redis: one token request
//! for the whole fleet, a holder that dies, a Redis that stops, stalls or
//! answers garbage.
//!
//! Real sockets, so real time: nothing here sleeps to make time pass, and no
//! assertion races the clock. "A day" is driven through the mock: each hour
//! the token ends at the server (revoked) and every cache learns it the way a
//! 401 tells it (`invalidate`). The only real waits are the cache's bounds
//! on the store (the lock wait and the store-call timeout), where the bound is
//! what is tested; the lock wait is set as short as the test allows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::redis_support::{
    self, Mode, Observed, Proxy, all_ok, callers, delete_under, distinct, fleet, lone_caches,
    redis_url, token_key, unique_prefix,
};
use cxone_auth::mock::MockCxone;
use cxone_auth::{AccessToken, Error, TokenCache, TokenSource};
use futures_util::future::join_all;

const FLEET: usize = 8;
const CALLERS: usize = 1_000;
/// A simulated day: one token an hour.
const HOURS: usize = 24;

/// Every cache learns that its token ended, as a 401 tells the layer.
fn invalidate_all(caches: &[TokenCache]) {
    for cache in caches {
        let held = cache.cached().expect("a token");
        assert!(cache.invalidate(&held));
    }
}

/// One hour: the token ends at the server, every cache hears of it, and
/// `CALLERS` callers per cache ask for a token. Returns the tokens handed out.
async fn hour(mock: &MockCxone, caches: &[TokenCache]) -> Vec<Arc<AccessToken>> {
    mock.revoke_all();
    invalidate_all(caches);
    let tokens = all_ok(callers(caches, CALLERS).await);
    for token in &tokens {
        assert!(
            mock.is_token_active(token.secret()),
            "a revoked token was handed out"
        );
    }
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_caches_and_8000_callers_cold_start_with_one_token_request() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix("cold-start");
    let mock = MockCxone::builder()
        // Long enough that the other caches find the lock taken and wait.
        .token_delay(Duration::from_millis(200))
        .build();
    let caches = fleet(&mock, &url, &prefix, FLEET);

    let tokens = all_ok(callers(&caches, CALLERS).await);

    assert_eq!(tokens.len(), FLEET * CALLERS);
    assert_eq!(mock.stats().token_requests, 1);
    assert_eq!(distinct(&tokens), 1, "every caller has the same token");
    let fetches: u64 = caches.iter().map(|c| c.stats().fetches).sum();
    let loads: u64 = caches.iter().map(|c| c.stats().store_loads).sum();
    assert_eq!((fetches, loads), (1, FLEET as u64 - 1));
    delete_under(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_costs_one_fleets_worth_of_tokens_against_eight_without_the_store() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix("day");
    let shared_mock = MockCxone::new();
    let shared = fleet(&shared_mock, &url, &prefix, FLEET);
    let alone_mock = MockCxone::new();
    let alone = lone_caches(&alone_mock, FLEET);

    let first = all_ok(callers(&shared, CALLERS).await);
    assert_eq!(distinct(&first), 1);
    all_ok(callers(&alone, CALLERS).await);
    for _ in 0..HOURS {
        let tokens = hour(&shared_mock, &shared).await;
        assert_eq!(distinct(&tokens), 1, "the fleet shares one token each hour");
        hour(&alone_mock, &alone).await;
    }

    let with_store = shared_mock.stats().token_requests;
    let without = alone_mock.stats().token_requests;
    println!(
        "{FLEET} caches x {CALLERS} callers, {HOURS} h: {with_store} token requests with the \
         Redis store, {without} without ({:.1}x)",
        without as f64 / with_store as f64
    );
    assert!(with_store <= 27, "{with_store}");
    assert_eq!(with_store, HOURS as u64 + 1);
    assert_eq!(without, FLEET as u64 * (HOURS as u64 + 1));
    delete_under(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_invalidation_never_removes_the_newer_shared_token() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix("late-401");
    let mock = MockCxone::new();
    let caches = fleet(&mock, &url, &prefix, 2);
    let old = caches[0].token().await.unwrap();
    assert!(caches[1].token().await.unwrap().same_token(&old));

    // A 401 on the first cache: it drops the shared entry and fetches anew.
    assert!(caches[0].invalidate(&old));
    let new = caches[0].token().await.unwrap();
    assert!(!new.same_token(&old));
    // The second cache's own late 401 for the old token must not remove the
    // new one: it finds it in Redis instead of fetching a third.
    assert!(caches[1].invalidate(&old));
    assert!(caches[1].token().await.unwrap().same_token(&new));
    assert_eq!(mock.stats().token_requests, 2);

    // The stored entry lives for the token's lifetime less the refresh
    // buffer (one hour less five minutes), not longer.
    let key = token_key(&url, &prefix).await.expect("a stored token");
    let mut connection = redis_support::raw_connection(&url).await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!((3_200_000..=3_300_000).contains(&ttl), "{ttl}");
    delete_under(&url, &prefix).await;
}

/// A source that stands for a process which took the lock and then died
/// mid-fetch: its fetch never ends.
#[derive(Clone)]
struct Hangs {
    key: String,
    started: Arc<tokio::sync::Notify>,
}

impl TokenSource for Hangs {
    async fn fetch(&self) -> Result<AccessToken, Error> {
        self.started.notify_one();
        std::future::pending().await
    }

    fn shared_key(&self) -> Option<String> {
        Some(self.key.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_holder_killed_mid_fetch_stalls_the_others_no_longer_than_the_bound() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix("killed-holder");
    let mock = MockCxone::new();
    let key = redis_support::source(&mock).shared_key().unwrap();

    // The holder takes the lock (for the default fetch timeout, 60 s) and
    // hangs in its fetch; then its task is killed with its cache.
    let started = Arc::new(tokio::sync::Notify::new());
    let holder = TokenCache::builder(Hangs {
        key,
        started: Arc::clone(&started),
    })
    .store(redis_support::store(&url, &prefix))
    .build();
    let caller = tokio::spawn({
        let holder = holder.clone();
        async move { holder.token().await }
    });
    started.notified().await;
    caller.abort();
    drop(holder);
    let locks = redis_support::lock_keys(&url, &prefix).await;
    assert_eq!(locks.len(), 1, "the dead holder's lock is still in Redis");

    // The others wait for the holder's token at most `store_wait` (the
    // bound; short here, since it is what is tested), then fetch themselves.
    let bound = Duration::from_millis(500);
    let others: Vec<_> = (0..FLEET - 1)
        .map(|_| {
            TokenCache::builder(redis_support::source(&mock))
                .store(redis_support::store(&url, &prefix))
                .store_wait(bound)
                .build()
        })
        .collect();
    let started = Instant::now();
    let tokens = all_ok(callers(&others, CALLERS).await);
    let took = started.elapsed();

    assert_eq!(tokens.len(), (FLEET - 1) * CALLERS);
    assert!(took >= bound, "they did wait for the holder: {took:?}");
    assert!(
        took < Duration::from_secs(30),
        "no stall until the dead holder's lock expires (60 s): {took:?}"
    );
    let requests = mock.stats().token_requests;
    assert!((1..=FLEET as u64 - 1).contains(&requests), "{requests}");
    let still_locked = redis_support::lock_keys(&url, &prefix).await;
    assert_eq!(
        still_locked, locks,
        "they got past the lock, not through it"
    );
    delete_under(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopping_mid_run_fails_no_request_and_its_return_is_used() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix("redis-stops");
    let mut proxy = Proxy::start(&url).await;
    let mock = MockCxone::new();
    let stores: Vec<_> = (0..FLEET)
        .map(|_| Observed::new(redis_support::store(proxy.url(), &prefix)))
        .collect();
    let caches: Vec<_> = stores
        .iter()
        .map(|store| {
            TokenCache::builder(redis_support::source(&mock))
                .store(store.clone())
                .build()
        })
        .collect();
    // Every landed fetch has published (or failed to): Redis is quiet.
    let settled = || join_all(stores.iter().map(Observed::settled));

    // Up: one token for everyone.
    let first = all_ok(callers(&caches, CALLERS).await);
    assert_eq!(distinct(&first), 1);
    assert_eq!(mock.stats().token_requests, 1);
    settled().await;
    assert!(stores.iter().all(|s| s.answered()));

    // Redis stops while the fleet is refreshing: no caller fails.
    invalidate_all(&caches);
    let (outcomes, ()) = tokio::join!(callers(&caches, CALLERS), proxy.close());
    all_ok(outcomes);
    settled().await;
    let requests = mock.stats().token_requests;
    assert!((2..=1 + FLEET as u64).contains(&requests), "{requests}");

    // Down: each cache fetches its own token; still no caller fails.
    let before = mock.stats().token_requests;
    invalidate_all(&caches);
    let tokens = all_ok(callers(&caches, CALLERS).await);
    assert_eq!(mock.stats().token_requests - before, FLEET as u64);
    assert_eq!(distinct(&tokens), FLEET);
    settled().await;
    assert!(stores.iter().all(|s| !s.answered()));

    // Back, an hour later: the tokens have ended at the server and their
    // copies in Redis have expired. One token request serves the fleet again.
    proxy.reopen().await;
    mock.revoke_all();
    delete_under(&url, &prefix).await;
    let before = mock.stats().token_requests;
    invalidate_all(&caches);
    let tokens = all_ok(callers(&caches, CALLERS).await);
    assert_eq!(mock.stats().token_requests - before, 1);
    assert_eq!(distinct(&tokens), 1, "everyone is back on one shared token");
    assert!(mock.is_token_active(tokens[0].secret()));
    assert!(stores.iter().all(|s| s.answered()));

    // And a process starting now takes it from Redis.
    let newcomers = fleet(&mock, proxy.url(), &prefix, 2);
    let late = all_ok(callers(&newcomers, CALLERS).await);
    assert!(late.iter().all(|t| t.same_token(&tokens[0])));
    assert_eq!(mock.stats().token_requests - before, 1);
    delete_under(&url, &prefix).await;
}

/// A store through the proxy, seeing whether Redis answered.
fn proxied_store(proxy: &Proxy, prefix: &str) -> Observed {
    Observed::new(redis_support::store(proxy.url(), prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_hangs_costs_a_bounded_wait_and_fails_no_request() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix("stalls");
    let proxy = Proxy::start(&url).await;
    proxy.set_mode(Mode::Stall);
    let mock = MockCxone::new();
    let stores: Vec<_> = (0..FLEET).map(|_| proxied_store(&proxy, &prefix)).collect();
    let caches: Vec<_> = stores
        .iter()
        .map(|store| {
            TokenCache::builder(redis_support::source(&mock))
                .store(store.clone())
                .build()
        })
        .collect();

    let tokens = all_ok(callers(&caches, CALLERS).await);

    assert_eq!(tokens.len(), FLEET * CALLERS);
    assert_eq!(mock.stats().token_requests, FLEET as u64, "each on its own");
    assert!(stores.iter().all(|s| !s.answered()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_answers_garbage_is_not_trusted_and_fails_no_request() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix("garbage");
    let proxy = Proxy::start(&url).await;
    proxy.set_mode(Mode::Garbage);
    let mock = MockCxone::new();
    let stores: Vec<_> = (0..FLEET).map(|_| proxied_store(&proxy, &prefix)).collect();
    let caches: Vec<_> = stores
        .iter()
        .map(|store| {
            TokenCache::builder(redis_support::source(&mock))
                .store(store.clone())
                .build()
        })
        .collect();

    let tokens = all_ok(callers(&caches, CALLERS).await);

    assert_eq!(tokens.len(), FLEET * CALLERS);
    assert_eq!(mock.stats().token_requests, FLEET as u64);
    assert!(tokens.iter().all(|t| mock.is_token_active(t.secret())));
    assert!(stores.iter().all(|s| !s.answered()));
}
