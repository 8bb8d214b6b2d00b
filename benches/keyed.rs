//! What many tenants cost: 10,000 keyed caches (`KeyedCaches`), each holding
//! a token of about 1 KiB, in one process.
//!
//! - Memory per cache: the bytes live after building and filling the
//!   10,000 caches (a counting global allocator), divided by 10,000, minus
//!   the token's own bytes: what one `AccessToken` built from the token text
//!   holds on the heap (the text, its pre-built `Bearer` header and the
//!   claims parsed from it), measured the same way. What remains is the
//!   set's and the cache's own cost: the map entry, the key, the cache's
//!   state, its source. Target: at most 4 KiB.
//! - Tasks: how many tasks the runtime has alive once the caches are filled
//!   (none should be: an idle cache keeps no task and no timer).
//! - Picking a cache on the request path: a request through
//!   `CxoneAuthLayer::keyed` over a no-op service, its key in its
//!   extensions, among the 10,000 caches, against the same request through
//!   a layer over a single cache. Both requests carry the key (the single
//!   layer ignores it), so the difference is the lookup alone. Two keyed
//!   cases: every request for one key, and requests for the keys in turn (each
//!   request's cache cold in the CPU's caches, as with interleaved tenants).
//!   The keys in turn are also sent through 10,000 single-cache layers, one
//!   per tenant, picked by index: what the cold caches cost without a lookup.
//!
//! After criterion's group the bench prints the figures; the time ratio is
//! the median of per-round ratios over interleaved rounds.
//!
//! `cargo bench --bench keyed`

use std::alloc::System;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion};
use cxone_auth::token::from_fn;
use cxone_auth::{AccessToken, CxoneAuth, CxoneAuthLayer, KeyedCaches, TokenCache};
use futures::FutureExt as _;
use http::{Request, Response};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::{Layer as _, Service, ServiceExt as _};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CACHES: usize = 10_000;
const URI: &str = "https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents";
/// The most a cache may cost beyond its token's bytes.
const TARGET_BYTES_PER_CACHE: f64 = 4096.0;

/// Requests built at a time, outside the measurement.
const BATCH_SIZE: usize = 1_000;

/// The key: a tenant id, as CXone's (a UUID).
#[derive(Clone, PartialEq, Eq, Hash)]
struct Tenant(String);

fn tenant(i: usize) -> Tenant {
    Tenant(format!("11eb0f4e-7a3c-4d2b-9c61-{i:012x}"))
}

/// A CXone-shaped JWT for `tenant`, about 1 KiB: an RS256 header, CXone's
/// claims, and a 256-byte signature.
fn token_text(tenant: &Tenant) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT","kid":"cxone-2026"}"#);
    let claims = format!(
        r#"{{"iss":"https://auth.nice-incontact.com","sub":"user:{id}","aud":"impersonation","tenantId":"{id}","tenant":"tenant_{id}","icBUId":4601237,"icClusterId":"B32","icAgentId":31415926,"icSPId":1,"name":"integration-user@example.com","role":{{"legacyId":"Administrator","secondaryRoles":[],"id":"11e7b5a4-3d1f-4e6a-8c2b-0242ac110002","lastUpdateTime":1700000000}},"iat":1700000000,"exp":1700003600}}"#,
        id = tenant.0
    );
    let signature = URL_SAFE_NO_PAD.encode([0x5a; 256]);
    format!("{header}.{}.{signature}", URL_SAFE_NO_PAD.encode(claims))
}

/// A source minting the tenant's token; it holds only the tenant id, as a
/// real source holds its credentials.
fn cache_of(tenant: &Tenant) -> Result<TokenCache, cxone_auth::Error> {
    let tenant = tenant.clone();
    Ok(TokenCache::new(from_fn(move || {
        let token = AccessToken::new(token_text(&tenant));
        async move { Ok(token?.with_lifetime(Duration::from_secs(3600))) }
    })))
}

/// Bytes live on the heap since `region` began.
fn live_bytes(region: &Region<'_, System>) -> isize {
    let change = region.change();
    change.bytes_allocated as isize - change.bytes_deallocated as isize + change.bytes_reallocated
}

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

struct Subjects {
    /// Keeps the caches' runtime alive.
    runtime: tokio::runtime::Runtime,
    single: CxoneAuth<NoOp>,
    keyed: CxoneAuth<NoOp>,
    /// A single-cache layer per tenant, over the keyed set's caches.
    singles: Vec<CxoneAuth<NoOp>>,
    caches: KeyedCaches<Tenant>,
    /// The keys, built once, cloned into requests.
    tenants: Vec<Tenant>,
    /// What building and filling the caches cost, and took.
    bytes_per_cache: f64,
    token_bytes: f64,
    fill_time: Duration,
}

impl Subjects {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let tenants: Vec<_> = (0..CACHES).map(tenant).collect();

        // The token's own bytes: AccessTokens built from copies of the
        // texts, the copies made within the count.
        let token_bytes = {
            let _guard = runtime.enter();
            let texts: Vec<_> = tenants[..100].iter().map(token_text).collect();
            let mut tokens = Vec::with_capacity(texts.len());
            let region = Region::new(GLOBAL);
            for text in &texts {
                tokens.push(AccessToken::new(text.clone()).unwrap());
            }
            live_bytes(&region) as f64 / tokens.len() as f64
        };

        let single = runtime.block_on(async {
            let one = cache_of(&tenants[0]).unwrap();
            one.token().await.unwrap();
            CxoneAuthLayer::new(one).layer(NoOp)
        });

        let region = Region::new(GLOBAL);
        let start = Instant::now();
        let caches = KeyedCaches::new(cache_of);
        runtime.block_on(async {
            for tenant in &tenants {
                caches.get(tenant).unwrap().token().await.unwrap();
            }
            // Let the fetch tasks end.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
        });
        let fill_time = start.elapsed();
        let bytes_per_cache = live_bytes(&region) as f64 / CACHES as f64;
        assert_eq!(caches.len(), CACHES);
        let keyed = CxoneAuthLayer::keyed(caches.clone()).layer(NoOp);
        let singles = (tenants.iter())
            .map(|tenant| CxoneAuthLayer::new(caches.get(tenant).unwrap()).layer(NoOp))
            .collect();
        Self {
            runtime,
            single,
            keyed,
            singles,
            caches,
            tenants,
            bytes_per_cache,
            token_bytes,
            fill_time,
        }
    }

    /// A request for the `i`-th tenant (modulo their number).
    fn request(&self, i: usize) -> Request<()> {
        request_for(&self.tenants, i)
    }
}

fn request_for(tenants: &[Tenant], i: usize) -> Request<()> {
    let mut request = Request::get(URI).body(()).unwrap();
    request.extensions_mut().insert(tenants[i % CACHES].clone());
    request
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

fn per_request(c: &mut Criterion, s: &mut Subjects) {
    let _guard = s.runtime.enter();
    let batch = BatchSize::NumIterations(BATCH_SIZE as u64);
    let mut group = c.benchmark_group("keyed");
    let mut next = 0;
    let Subjects {
        single,
        keyed,
        tenants,
        ..
    } = s;
    let request = |i: usize| request_for(tenants, i);
    group.bench_function("single_cache (baseline)", |b| {
        b.iter_batched(|| request(0), |r| send(single, r), batch)
    });
    group.bench_function("keyed, one key of 10,000", |b| {
        b.iter_batched(|| request(CACHES / 2), |r| send(keyed, r), batch)
    });
    group.bench_function("keyed, keys in turn of 10,000", |b| {
        b.iter_batched(
            || {
                next += 7919; // a prime: every key, in a scattered order
                request(next)
            },
            |r| send(keyed, r),
            batch,
        )
    });
    group.finish();
}

/// Nanoseconds per request for one batch of `requests`, built beforehand.
fn batch<S>(service: &mut S, requests: Vec<Request<()>>) -> f64
where
    S: Service<Request<()>>,
    S::Error: std::fmt::Debug,
{
    let n = requests.len();
    let start = Instant::now();
    for r in requests {
        send(service, r);
    }
    start.elapsed().as_secs_f64() * 1e9 / n as f64
}

/// [`batch`] through the single-cache layer of each request's tenant.
fn singles_in_turn(singles: &mut [CxoneAuth<NoOp>], requests: Vec<(usize, Request<()>)>) -> f64 {
    let n = requests.len();
    let start = Instant::now();
    for (i, r) in requests {
        send(&mut singles[i], r);
    }
    start.elapsed().as_secs_f64() * 1e9 / n as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn report(s: &mut Subjects) {
    const ROUNDS: usize = 200;
    let _guard = s.runtime.enter();
    let mut rounds = Vec::with_capacity(ROUNDS);
    let mut next = 0;
    for _ in 0..ROUNDS {
        let one: Vec<_> = (0..BATCH_SIZE).map(|_| s.request(CACHES / 2)).collect();
        let turn: Vec<_> = (0..BATCH_SIZE)
            .map(|_| {
                next += 7919;
                s.request(next)
            })
            .collect();
        let base: Vec<_> = (0..BATCH_SIZE).map(|_| s.request(0)).collect();
        let by_index: Vec<_> = (0..BATCH_SIZE)
            .map(|_| {
                next += 7919;
                (next % CACHES, s.request(next))
            })
            .collect();
        rounds.push([
            batch(&mut s.single, base),
            batch(&mut s.keyed, one),
            batch(&mut s.keyed, turn),
            singles_in_turn(&mut s.singles, by_index),
        ]);
    }
    let ns = |i: usize| median(rounds.iter().map(|r| r[i]).collect());
    let ratio = |i: usize| median(rounds.iter().map(|r| r[i] / r[0]).collect());

    let beyond_token = s.bytes_per_cache - s.token_bytes;
    let tasks = s.runtime.metrics().num_alive_tasks();
    println!(
        "\n{CACHES} keyed caches, each holding a token of {} bytes:",
        token_text(&s.tenants[0]).len()
    );
    println!(
        "  memory per cache: {:.0} bytes, of which the token's own {:.0} (text, header, parsed claims): {:.0} bytes beyond the token; target <= {TARGET_BYTES_PER_CACHE:.0}: {}",
        s.bytes_per_cache,
        s.token_bytes,
        beyond_token,
        if beyond_token <= TARGET_BYTES_PER_CACHE {
            "met"
        } else {
            "NOT met"
        },
    );
    println!(
        "  building and filling them: {:.2?} ({:.1} us per cache, token fetch included)",
        s.fill_time,
        s.fill_time.as_secs_f64() * 1e6 / CACHES as f64
    );
    println!("  tasks alive once filled: {tasks}");
    assert_eq!(s.caches.len(), CACHES, "nothing was evicted");
    println!(
        "per request through a no-op service ({ROUNDS} interleaved rounds of {BATCH_SIZE}; medians; request building excluded):"
    );
    println!("{:<34} {:>10} {:>10}", "variant", "ns/req", "vs single");
    for (i, name) in [
        "single cache (baseline)",
        "keyed, one key of 10,000",
        "keyed, keys in turn of 10,000",
        "10,000 single layers, in turn",
    ]
    .iter()
    .enumerate()
    {
        println!("{name:<34} {:>10.1} {:>9.2}x", ns(i), ratio(i));
    }
    println!(
        "keyed, keys in turn vs 10,000 single layers in turn: {:.2}x",
        median(rounds.iter().map(|r| r[2] / r[3]).collect())
    );
}

fn main() {
    let mut subjects = Subjects::new();
    let mut criterion = Criterion::default().configure_from_args();
    per_request(&mut criterion, &mut subjects);
    criterion.final_summary();
    // `cargo test --benches` runs this binary without `--bench`: skip the
    // timed rounds there.
    if std::env::args().any(|arg| arg == "--bench") {
        report(&mut subjects);
    }
}
