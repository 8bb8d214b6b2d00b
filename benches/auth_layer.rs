//! Per-request cost of the auth layer with a cached token, against
//! - the physical limit: tower-http's `SetRequestHeaderLayer` with a static header;
//! - what other libraries do: a token behind a `std::sync::Mutex`, and behind a
//!   `tokio::sync::RwLock` read in a boxed async block.
//!
//! Each variant wraps the same no-op inner service. Requests are built in
//! batches of 1,000 just before they are sent, so they are in the cache as a
//! request a client has just built is: the layer reads the request's URI,
//! which a static header never does, and with requests built long before,
//! that read would measure a cache miss the client's own send pays anyway.
//!
//! After criterion's groups the bench prints each variant's time and
//! allocations per request and its ratio to the static header, the median
//! of per-round ratios over interleaved rounds.

use std::alloc::System;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group};
use cxone_auth::retry::CxoneRetry;
use cxone_auth::token::StaticToken;
use cxone_auth::{CxoneAuthLayer, CxoneRetryLayer, TokenCache};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::{Layer, Service, ServiceExt as _};
use tower_http::set_header::SetRequestHeaderLayer;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const URI: &str = "https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents";
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJ0ZW5hbnRJZCI6ImJlbmNoIn0.c2lnbmF0dXJl";

/// Requests built at a time, outside the measurement.
const BATCH_SIZE: usize = 1_000;
const BATCH: BatchSize = BatchSize::NumIterations(BATCH_SIZE as u64);

#[derive(Clone, Copy)]
struct NoOp;

impl<B> Service<Request<B>> for NoOp {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        black_box(&request);
        ready(Ok(Response::new(())))
    }
}

/// A token behind a `Mutex`, read per request.
#[derive(Clone)]
struct MutexAuth<S> {
    inner: S,
    token: Arc<Mutex<HeaderValue>>,
}

impl<S: Service<Request<()>>> Service<Request<()>> for MutexAuth<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<()>) -> Self::Future {
        let header = self.token.lock().unwrap().clone();
        request.headers_mut().insert(AUTHORIZATION, header);
        self.inner.call(request)
    }
}

/// A token behind a tokio `RwLock`, read in a boxed async block per request.
#[derive(Clone)]
struct RwLockAuth<S> {
    inner: S,
    token: Arc<tokio::sync::RwLock<HeaderValue>>,
}

impl<S> Service<Request<()>> for RwLockAuth<S>
where
    S: Service<Request<()>> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<()>) -> Self::Future {
        let token = Arc::clone(&self.token);
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let header = token.read().await.clone();
            request.headers_mut().insert(AUTHORIZATION, header);
            inner.call(request).await
        })
    }
}

fn header() -> HeaderValue {
    let mut header = HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap();
    header.set_sensitive(true);
    header
}

fn request() -> Request<()> {
    Request::get(URI).body(()).unwrap()
}

/// Sends one request through `service`, whose futures complete at once.
fn send<S>(service: &mut S, request: Request<()>)
where
    S: Service<Request<()>>,
    S::Error: std::fmt::Debug,
{
    let service = service.ready().now_or_never().unwrap().unwrap();
    black_box(service.call(request).now_or_never().unwrap().unwrap());
}

type StaticHeader<S> = tower_http::set_header::SetRequestHeader<S, HeaderValue>;

struct Variants {
    static_header: StaticHeader<NoOp>,
    cxone: cxone_auth::CxoneAuth<NoOp>,
    retry_static: CxoneRetry<StaticHeader<NoOp>>,
    retry_cxone: CxoneRetry<cxone_auth::CxoneAuth<NoOp>>,
    mutex: MutexAuth<NoOp>,
    rwlock: RwLockAuth<NoOp>,
}

fn variants(runtime: &tokio::runtime::Runtime) -> Variants {
    let tokens = TokenCache::new(StaticToken::new(TOKEN).lifetime(Duration::from_secs(3600)));
    runtime.block_on(tokens.token()).unwrap();
    Variants {
        static_header: SetRequestHeaderLayer::overriding(AUTHORIZATION, header()).layer(NoOp),
        cxone: CxoneAuthLayer::new(tokens.clone()).layer(NoOp),
        retry_static: CxoneRetryLayer::default()
            .layer(SetRequestHeaderLayer::overriding(AUTHORIZATION, header()).layer(NoOp)),
        retry_cxone: CxoneRetryLayer::default().layer(CxoneAuthLayer::new(tokens).layer(NoOp)),
        mutex: MutexAuth {
            inner: NoOp,
            token: Arc::new(Mutex::new(header())),
        },
        rwlock: RwLockAuth {
            inner: NoOp,
            token: Arc::new(tokio::sync::RwLock::new(header())),
        },
    }
}

fn per_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let mut v = variants(&runtime);
    let mut group = c.benchmark_group("per_request");
    group.bench_function("static_header", |b| {
        b.iter_batched(request, |r| send(&mut v.static_header, r), BATCH)
    });
    group.bench_function("cxone_auth", |b| {
        b.iter_batched(request, |r| send(&mut v.cxone, r), BATCH)
    });
    group.bench_function("retry+static_header", |b| {
        b.iter_batched(request, |r| send(&mut v.retry_static, r), BATCH)
    });
    group.bench_function("retry+cxone_auth", |b| {
        b.iter_batched(request, |r| send(&mut v.retry_cxone, r), BATCH)
    });
    group.bench_function("mutex", |b| {
        b.iter_batched(request, |r| send(&mut v.mutex, r), BATCH)
    });
    group.bench_function("tokio_rwlock", |b| {
        b.iter_batched(request, |r| send(&mut v.rwlock, r), BATCH)
    });
    group.finish();
}

/// Nanoseconds and allocations per request for one batch of `n` requests,
/// built beforehand (building them is not counted) and so still in the cache,
/// as a request a client has just built is.
fn batch<S>(service: &mut S, n: usize) -> (f64, u64)
where
    S: Service<Request<()>>,
    S::Error: std::fmt::Debug,
{
    let requests: Vec<_> = (0..n).map(|_| request()).collect();
    let region = Region::new(GLOBAL);
    let start = Instant::now();
    for r in requests {
        send(service, r);
    }
    let elapsed = start.elapsed();
    (
        elapsed.as_secs_f64() * 1e9 / n as f64,
        region.change().allocations as u64,
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs the variants in interleaved rounds, so that whatever else the
/// machine does falls on all of them alike, and compares each with the static
/// header of the same round: the ratio reported is the median of those
/// per-round ratios.
fn report() {
    const ROUNDS: usize = 400;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let mut v = variants(&runtime);
    let names = [
        "static header (floor)",
        "cxone-auth layer",
        "Mutex<HeaderValue>",
        "tokio RwLock, boxed",
        "retry + static header",
        "retry + cxone-auth",
    ];
    let mut rounds = Vec::with_capacity(ROUNDS);
    let mut allocations = [0; 6];
    for _ in 0..ROUNDS {
        let round = [
            batch(&mut v.static_header, BATCH_SIZE),
            batch(&mut v.cxone, BATCH_SIZE),
            batch(&mut v.mutex, BATCH_SIZE),
            batch(&mut v.rwlock, BATCH_SIZE),
            batch(&mut v.retry_static, BATCH_SIZE),
            batch(&mut v.retry_cxone, BATCH_SIZE),
        ];
        for (total, (_, allocs)) in allocations.iter_mut().zip(&round) {
            *total += allocs;
        }
        rounds.push(round.map(|(ns, _)| ns));
    }
    let ratio = |i: usize, base: usize| median(rounds.iter().map(|r| r[i] / r[base]).collect());
    println!(
        "\nper request through a no-op service ({ROUNDS} interleaved rounds of {BATCH_SIZE}; medians; request building excluded):"
    );
    println!(
        "{:<24} {:>10} {:>14} {:>12}",
        "variant", "ns/req", "allocs/req", "vs floor"
    );
    for (i, name) in names.iter().enumerate() {
        println!(
            "{name:<24} {:>10.1} {:>14.2} {:>11.2}x",
            median(rounds.iter().map(|r| r[i]).collect()),
            allocations[i] as f64 / (ROUNDS * BATCH_SIZE) as f64,
            ratio(i, 0),
        );
    }
    println!(
        "full stack (retry + auth) vs retry + static header: {:.2}x",
        ratio(5, 4)
    );
}

criterion_group!(benches, per_request);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    report();
}
