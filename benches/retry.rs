//! What the retry layer costs a request that succeeds: the copy kept for a
//! replay, the budget deposit and the cool-down check, against the bare
//! inner service. Prints the ratio at the end.
//!
//! `cargo bench --bench retry`

use std::cell::Cell;
use std::convert::Infallible;
use std::future::ready;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use cxone_auth::retry::CxoneRetryLayer;
use futures_util::FutureExt as _;
use http::{Request, Response};
use tower::{Layer, Service, ServiceExt as _};

const API: &str = "https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents";

/// Requests built ahead of each timed batch, so building them is not timed.
const BATCH: u64 = 1024;

fn request() -> Request<Bytes> {
    Request::get(API)
        .header("accept", "application/json")
        .header("user-agent", "cxone-auth-bench")
        .body(Bytes::new())
        .unwrap()
}

/// Mean time per call, accumulated over every sample criterion takes.
#[derive(Default)]
struct Mean {
    total: Cell<Duration>,
    calls: Cell<u64>,
}

impl Mean {
    fn nanos(&self) -> f64 {
        self.total.get().as_nanos() as f64 / self.calls.get().max(1) as f64
    }
}

/// Times `iters` calls of `service`, all answered at once.
fn time<S>(service: &mut S, iters: u64, mean: &Mean) -> Duration
where
    S: Service<Request<Bytes>, Response = Response<()>, Error = Infallible>,
{
    let mut elapsed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH);
        let requests: Vec<_> = (0..n).map(|_| request()).collect();
        let start = Instant::now();
        for request in requests {
            let ready = service.ready().now_or_never().unwrap().unwrap();
            let response = ready.call(request).now_or_never().unwrap();
            black_box(response.unwrap());
        }
        elapsed += start.elapsed();
        left -= n;
    }
    mean.total.set(mean.total.get() + elapsed);
    mean.calls.set(mean.calls.get() + iters);
    elapsed
}

fn overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _context = runtime.enter();

    let inner =
        tower::service_fn(|_: Request<Bytes>| ready(Ok::<_, Infallible>(Response::new(()))));
    let mut bare = inner;
    let mut retried = CxoneRetryLayer::default().layer(inner);
    let (bare_mean, retry_mean) = (Mean::default(), Mean::default());

    let mut group = c.benchmark_group("retry_overhead");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    group.bench_function("bare", |b| {
        b.iter_custom(|iters| time(&mut bare, iters, &bare_mean))
    });
    group.bench_function("retry_layer", |b| {
        b.iter_custom(|iters| time(&mut retried, iters, &retry_mean))
    });
    group.finish();

    println!(
        "retry_overhead: bare {:.1} ns, retry layer {:.1} ns per request: {:.2}x",
        bare_mean.nanos(),
        retry_mean.nanos(),
        retry_mean.nanos() / bare_mean.nanos()
    );
}

criterion_group!(benches, overhead);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
