//! The fresh-token read path allocates nothing: `TokenCache::cached` and
//! cloning the token's header, as the auth layer does per request.
//!
//! And a request through the auth layer with a cached token allocates no
//! more than one through tower-http's static `SetRequestHeader`, though the
//! layer inserts two headers (`Authorization`, and `Accept` as the requests
//! have none).
//!
//! A request through a keyed layer (`KeyedCaches`, the key in the request's
//! extensions, among many keys) allocates no more than one through a layer
//! over a single cache.
//!
//! With the `metrics` feature, a recorder is installed: recording stays off
//! the per-request path's allocations too.
//!
//! Its own test binary, because the counting allocator is process-wide; one
//! test function, so nothing else in the binary runs meanwhile.

use std::alloc::System;
use std::hint::black_box;
use std::time::Duration;

use cxone_auth::token::StaticToken;
use cxone_auth::{CxoneAuthLayer, KeyedCaches, TokenCache};
use futures::FutureExt as _;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::{Layer as _, Service, ServiceExt as _};
use tower_http::set_header::SetRequestHeaderLayer;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Enough reads that one allocation per read could not hide in the noise.
const READS: usize = 10_000;

/// How many times each measured loop runs.
const ATTEMPTS: u64 = 3;

/// Asserts that `reads` allocated nothing in at least one of [`ATTEMPTS`]
/// runs. The counter is process-wide, and the test harness's own threads
/// may allocate meanwhile; an allocation per read would show in every run,
/// [`READS`] times over.
fn assert_allocation_free(mut reads: impl FnMut()) {
    let mut runs = Vec::new();
    for _ in 0..ATTEMPTS {
        let region = Region::new(GLOBAL);
        reads();
        runs.push(region.change());
    }
    assert!(
        runs.iter()
            .any(|run| run.allocations == 0 && run.reallocations == 0),
        "{runs:?}"
    );
}

#[test]
fn hot_paths_allocate_nothing() {
    #[cfg(feature = "metrics")]
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    #[cfg(feature = "metrics")]
    let _recording = metrics::set_default_local_recorder(&recorder);
    fresh_reads_allocate_nothing();
    layer_allocates_no_more_than_a_static_header();
    keyed_layer_allocates_no_more_than_one_cache();
}

fn fresh_reads_allocate_nothing() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let source = StaticToken::new("a.jwt-like.token").lifetime(Duration::from_secs(3600));
        let cache = TokenCache::new(source);
        cache.token().await.unwrap();
        // Warm arc-swap's per-thread slots.
        tokio::task::yield_now().await;
        for _ in 0..16 {
            black_box(cache.cached());
        }

        // The instrument counts: one small allocation is seen.
        let region = Region::new(GLOBAL);
        black_box(Vec::<u8>::with_capacity(1));
        assert_eq!(region.change().allocations, 1);

        assert_allocation_free(|| {
            for _ in 0..READS {
                let token = cache.cached().expect("the token is fresh");
                let header = token.header_value().clone();
                black_box((token, header));
            }
        });
        assert_eq!(cache.stats().hits, ATTEMPTS * READS as u64 + 16);
    });
}

fn request() -> Request<()> {
    Request::get("https://api-na1.niceincontact.com/agents")
        .body(())
        .unwrap()
}

/// Allocations for `n` requests through `service` (requests built beforehand),
/// the fewest of [`ATTEMPTS`] runs.
fn allocations_per_run<S>(service: &mut S, n: usize) -> u64
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: std::fmt::Debug,
{
    allocations_per_run_of(service, n, request)
}

/// [`allocations_per_run`] with the requests `build` makes.
fn allocations_per_run_of<S>(service: &mut S, n: usize, build: impl Fn() -> Request<()>) -> u64
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: std::fmt::Debug,
{
    (0..ATTEMPTS)
        .map(|_| {
            let requests: Vec<_> = (0..n).map(|_| build()).collect();
            let region = Region::new(GLOBAL);
            for request in requests {
                let ready = service.ready().now_or_never().unwrap().unwrap();
                black_box(ready.call(request).now_or_never().unwrap().unwrap());
            }
            region.change().allocations as u64
        })
        .min()
        .unwrap()
}

fn layer_allocates_no_more_than_a_static_header() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let tokens =
        TokenCache::new(StaticToken::new("a.jwt-like.token").lifetime(Duration::from_secs(3600)));
    runtime.block_on(tokens.token()).unwrap();
    let no_op = tower::service_fn(|request: Request<()>| {
        black_box(request);
        std::future::ready(Ok::<_, std::convert::Infallible>(Response::new(())))
    });
    let header = HeaderValue::from_str("Bearer a.jwt-like.token").unwrap();
    let mut floor = SetRequestHeaderLayer::overriding(AUTHORIZATION, header).layer(no_op);
    let mut cxone = CxoneAuthLayer::new(tokens).layer(no_op);
    // Warm up: the first clone of the token's header shares its bytes.
    allocations_per_run(&mut cxone, 1);

    let n = READS;
    let static_header = allocations_per_run(&mut floor, n);
    let auth_layer = allocations_per_run(&mut cxone, n);
    assert!(
        static_header >= n as u64,
        "inserting a header allocates: {static_header}"
    );
    assert!(
        auth_layer <= static_header,
        "{auth_layer} > {static_header}"
    );
}

/// A key of the keyed layer.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Tenant(u32);

fn keyed_layer_allocates_no_more_than_one_cache() {
    const KEYS: u32 = 1_000;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let token = || StaticToken::new("a.jwt-like.token").lifetime(Duration::from_secs(3600));
    let one = TokenCache::new(token());
    runtime.block_on(one.token()).unwrap();
    let caches = KeyedCaches::new(move |_: &Tenant| Ok(TokenCache::new(token())));
    for key in 0..KEYS {
        runtime
            .block_on(caches.get(&Tenant(key)).unwrap().token())
            .unwrap();
    }
    let no_op = tower::service_fn(|request: Request<()>| {
        black_box(request);
        std::future::ready(Ok::<_, std::convert::Infallible>(Response::new(())))
    });
    let mut single = CxoneAuthLayer::new(one).layer(no_op);
    let mut keyed = CxoneAuthLayer::keyed(caches).layer(no_op);
    let keyed_request = || {
        let mut request = request();
        request.extensions_mut().insert(Tenant(KEYS / 2));
        request
    };
    // Warm up, as above.
    allocations_per_run(&mut single, 1);
    allocations_per_run_of(&mut keyed, 1, keyed_request);

    let n = READS;
    let single_cache = allocations_per_run(&mut single, n);
    let keyed_caches = allocations_per_run_of(&mut keyed, n, keyed_request);
    assert!(
        keyed_caches <= single_cache,
        "{keyed_caches} > {single_cache}"
    );
}
