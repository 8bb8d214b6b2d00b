//! Cold-start storms: N callers arrive at once on a cache that holds no
//! token yet. Time until every one of them has a token, against the naive
//! client that asks the token endpoint on every call.
//!
//! The token endpoint is the mock CXone's, in memory (`AccessKeyGrant`
//! through `ServiceTransport`): a real token request each time (form, Basic
//! header, JWT minted, JSON parsed), without a network. A real network only
//! widens the gap: the cache waits one round trip, the naive client sends N.
//!
//! `cargo bench --bench cold_start -- --warm-up-time 1 --measurement-time 3`
//!
//! After criterion's groups it prints the token requests each variant sent.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use cxone_auth::mock::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLIENT_ID, CLIENT_SECRET, MockCxone};
use cxone_auth::token::{AccessKeyGrant, ServiceTransport};
use cxone_auth::{TokenCache, TokenSource as _};
use futures::future::join_all;

/// Callers arriving at once.
const STORMS: [usize; 2] = [100, 1_000];

fn source(mock: &MockCxone) -> AccessKeyGrant {
    AccessKeyGrant::new(CLIENT_ID, CLIENT_SECRET, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        .expect("the mock's credentials")
        .token_url(mock.token_url())
        .expect("the mock's token URL")
        .transport(ServiceTransport::new(mock.router()))
}

/// Every caller asks a new, cold cache for its token; the time until all
/// have one.
async fn through_the_cache(source: &AccessKeyGrant, callers: usize) -> Duration {
    let cache = TokenCache::new(source.clone());
    let start = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move {
                match cache.cached() {
                    Some(token) => token,
                    None => cache.token().await.expect("the mock issues tokens"),
                }
            })
        })
        .collect();
    for task in join_all(tasks).await {
        task.expect("a caller panicked");
    }
    start.elapsed()
}

/// Every caller fetches its own token, as a client without a cache does.
async fn naive(source: &AccessKeyGrant, callers: usize) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let source = source.clone();
            tokio::spawn(async move { source.fetch().await.expect("the mock issues tokens") })
        })
        .collect();
    for task in join_all(tasks).await {
        task.expect("a caller panicked");
    }
    start.elapsed()
}

fn storms(c: &mut Criterion, runtime: &tokio::runtime::Runtime, mock: &MockCxone) {
    let source = source(mock);
    let mut group = c.benchmark_group("cold_start");
    for callers in STORMS {
        group.throughput(Throughput::Elements(callers as u64));
        group.bench_with_input(
            BenchmarkId::new("cxone_auth", callers),
            &callers,
            |b, &callers| {
                b.to_async(runtime).iter_custom(|iters| {
                    let source = source.clone();
                    let mock = mock.clone();
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            total += through_the_cache(&source, callers).await;
                            // Forget the tokens issued, untimed, so the
                            // mock's memory stays flat.
                            mock.revoke_all();
                        }
                        total
                    }
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("naive_per_call", callers),
            &callers,
            |b, &callers| {
                b.to_async(runtime).iter_custom(|iters| {
                    let source = source.clone();
                    let mock = mock.clone();
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            total += naive(&source, callers).await;
                            mock.revoke_all();
                        }
                        total
                    }
                })
            },
        );
    }
    group.finish();
}

/// One storm of each kind, counting the token requests the mock received.
fn report(runtime: &tokio::runtime::Runtime) {
    println!("\ntoken requests per storm (one run each):");
    for callers in STORMS {
        for (name, cached) in [("cxone_auth", true), ("naive_per_call", false)] {
            let mock = MockCxone::new();
            let source = source(&mock);
            let elapsed = runtime.block_on(async {
                if cached {
                    through_the_cache(&source, callers).await
                } else {
                    naive(&source, callers).await
                }
            });
            println!(
                "  {callers:>5} callers, {name:<15} {:>5} token requests, all served in {:>9.3} ms",
                mock.stats().token_requests,
                elapsed.as_secs_f64() * 1e3
            );
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let mock = MockCxone::new();
    let mut criterion = Criterion::default().configure_from_args();
    storms(&mut criterion, &runtime, &mock);
    criterion.final_summary();
    if std::env::args().any(|arg| arg == "--bench") {
        report(&runtime);
    }
}
