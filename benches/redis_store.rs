//! What the Redis store costs and what it saves, in one run.
//!
//! Cost: the latency of a cold read (a new cache's first `token()`) when the
//! token comes from Redis on loopback, against the in-process cold read (a
//! source that answers at once, so only the cache's own machinery is timed),
//! and against a cold read that misses Redis and fetches under its lock.
//!
//! Saving: the token requests of a fleet of 8 caches with 1,000 callers each
//! over a simulated day of hourly tokens (driven through the mock CXone in
//! memory), with the store and without it.
//!
//! Needs a Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`). After
//! criterion's groups the bench prints a table with the ratios.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use cxone_auth::cache::{RedisStore, StoredToken, TokenStore};
use cxone_auth::mock::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLIENT_ID, CLIENT_SECRET, MockCxone};
use cxone_auth::token::{AccessKeyGrant, ServiceTransport};
use cxone_auth::{AccessToken, Error, TokenCache, TokenSource};
use tokio::runtime::Runtime;

const HOUR: Duration = Duration::from_secs(3600);
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJ0ZW5hbnRJZCI6ImJlbmNoIn0.c2lnbmF0dXJl";
const FLEET: usize = 8;
const CALLERS: usize = 1_000;
const HOURS: usize = 24;

/// A source that answers at once, named `key` for the store.
#[derive(Clone)]
struct Instant0 {
    key: String,
}

impl TokenSource for Instant0 {
    async fn fetch(&self) -> Result<AccessToken, Error> {
        Ok(AccessToken::new(TOKEN)?.with_lifetime(HOUR))
    }

    fn shared_key(&self) -> Option<String> {
        Some(self.key.clone())
    }
}

struct Setup {
    runtime: Runtime,
    store: RedisStore,
    url: String,
    prefix: String,
    /// A credential whose token is in Redis.
    hit_key: String,
}

fn setup() -> Setup {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("cxone-auth-bench:{:016x}:", fastrand::u64(..));
    let store = RedisStore::new(&url).unwrap().with_prefix(prefix.as_str());
    let hit_key = "bench-hit".to_owned();
    runtime.block_on(async {
        let token = AccessToken::new(TOKEN).unwrap().with_lifetime(HOUR);
        let stored = StoredToken::from_token(&token, tokio::time::Instant::now());
        store.store(&hit_key, &stored, HOUR / 2).await.unwrap();
        assert!(
            store.load(&hit_key).await.unwrap().is_some(),
            "the benchmark needs a Redis at {url} (set REDIS_URL)"
        );
    });
    Setup {
        runtime,
        store,
        url,
        prefix,
        hit_key,
    }
}

/// The kinds of cold read compared.
#[derive(Clone, Copy)]
enum Cold {
    /// No store: the cache fetches from a source that answers at once.
    InProcess,
    /// The token is in Redis: the cache loads it.
    RedisHit,
    /// Redis holds nothing: load, lock, look again, fetch.
    RedisMiss,
}

impl Cold {
    fn cache(self, setup: &Setup, n: u64) -> TokenCache {
        match self {
            Cold::InProcess => TokenCache::new(Instant0 { key: String::new() }),
            Cold::RedisHit => TokenCache::builder(Instant0 {
                key: setup.hit_key.clone(),
            })
            .store(setup.store.clone())
            .build(),
            Cold::RedisMiss => TokenCache::builder(Instant0 {
                key: format!("bench-miss-{n}-{:016x}", fastrand::u64(..)),
            })
            .store(setup.store.clone())
            .build(),
        }
    }
}

/// Times `iters` cold reads, each on a new cache built outside the timing.
async fn cold_reads(setup: &Setup, kind: Cold, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for n in 0..iters {
        let cache = kind.cache(setup, n);
        let start = Instant::now();
        black_box(cache.token().await.unwrap());
        total += start.elapsed();
    }
    total
}

fn cold_read(c: &mut Criterion) {
    let setup = Arc::new(setup());
    let mut group = c.benchmark_group("cold_read");
    for (name, kind) in [
        ("in_process", Cold::InProcess),
        ("redis_hit", Cold::RedisHit),
        ("redis_miss", Cold::RedisMiss),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&setup.runtime).iter_custom(|iters| {
                let setup = Arc::clone(&setup);
                async move { cold_reads(&setup, kind, iters).await }
            })
        });
    }
    group.finish();
    cleanup(&setup);
}

fn cleanup(setup: &Setup) {
    setup.runtime.block_on(async {
        let client = redis::Client::open(setup.url.as_str()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", setup.prefix))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await
                .unwrap();
            if !keys.is_empty() {
                redis::cmd("DEL")
                    .arg(keys)
                    .query_async::<()>(&mut connection)
                    .await
                    .unwrap();
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    });
}

/// The mean of `n` cold reads of `kind`, best of 5 rounds.
fn mean_cold_read(setup: &Setup, kind: Cold, n: u64) -> Duration {
    (0..5)
        .map(|_| setup.runtime.block_on(cold_reads(setup, kind, n)) / n as u32)
        .min()
        .unwrap()
}

fn source(mock: &MockCxone) -> AccessKeyGrant {
    AccessKeyGrant::new(CLIENT_ID, CLIENT_SECRET, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        .unwrap()
        .token_url(mock.token_url())
        .unwrap()
        .transport(ServiceTransport::new(mock.router()))
}

/// The token requests of `FLEET` caches over a simulated day: each hour the
/// token ends at the server and every cache hears of it (a 401), then
/// `CALLERS` callers per cache ask for a token. With `redis` (URL, prefix),
/// each cache has its own store and connection, as separate processes would.
async fn fleet_day(redis: Option<(&str, &str)>) -> u64 {
    let mock = MockCxone::new();
    let caches: Vec<TokenCache> = (0..FLEET)
        .map(|_| {
            let builder = TokenCache::builder(source(&mock));
            match redis {
                Some((url, prefix)) => {
                    let store = RedisStore::new(url).unwrap().with_prefix(prefix);
                    builder.store(store).build()
                }
                None => builder.build(),
            }
        })
        .collect();
    for hour in 0..=HOURS {
        if hour > 0 {
            mock.revoke_all();
            for cache in &caches {
                let held = cache.cached().expect("a token");
                cache.invalidate(&held);
            }
        }
        let mut callers = tokio::task::JoinSet::new();
        for cache in &caches {
            for _ in 0..CALLERS {
                let cache = cache.clone();
                callers.spawn(async move { cache.token().await });
            }
        }
        while let Some(outcome) = callers.join_next().await {
            outcome.unwrap().unwrap();
        }
    }
    mock.stats().token_requests
}

fn report() {
    let setup = setup();
    const N: u64 = 2_000;
    let in_process = mean_cold_read(&setup, Cold::InProcess, N);
    let hit = mean_cold_read(&setup, Cold::RedisHit, N);
    let miss = mean_cold_read(&setup, Cold::RedisMiss, N / 4);
    println!("\ncold read (a new cache's first token; best of 5 means; loopback Redis):");
    println!(
        "{:<34} {:>10} {:>14}",
        "variant", "us/read", "vs in-process"
    );
    for (name, time) in [
        ("in-process (source answers at once)", in_process),
        ("Redis hit (token loaded)", hit),
        ("Redis miss (load, lock, fetch)", miss),
    ] {
        println!(
            "{name:<34} {:>10.1} {:>13.1}x",
            time.as_secs_f64() * 1e6,
            time.as_secs_f64() / in_process.as_secs_f64()
        );
    }
    println!(
        "added latency of a store-backed cold read: {:.1} us",
        (hit.saturating_sub(in_process)).as_secs_f64() * 1e6
    );

    // A multi-threaded runtime, as a service would run the fleet.
    let fleet_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fleet_prefix = format!("{}fleet:", setup.prefix);
    let with_store = fleet_runtime.block_on(fleet_day(Some((&setup.url, &fleet_prefix))));
    let without = fleet_runtime.block_on(fleet_day(None));
    println!(
        "\n{FLEET} caches x {CALLERS} callers, {HOURS} h of hourly tokens: {with_store} token \
         requests with the Redis store, {without} without ({:.1}x fewer)",
        without as f64 / with_store as f64
    );
    cleanup(&setup);
}

criterion_group!(benches, cold_read);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    report();
}
