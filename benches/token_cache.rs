//! The cost of reading the cached token and cloning its header, against the
//! floor (cloning a header held as is) and the locking strategies other
//! libraries use (a `std::sync::Mutex` and a tokio `RwLock` around the header),
//! on one thread and with two threads reading at once.
//!
//! `cargo bench --bench token_cache -- --warm-up-time 1 --measurement-time 2`
//!
//! After criterion's groups, a short timed loop of each case prints the ratios
//! to the floors in one table.

use std::hint::black_box;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use cxone_auth::TokenCache;
use cxone_auth::token::StaticToken;
use futures_util::FutureExt as _;
use http::HeaderValue;

/// About the size of a CXone JWT.
fn token_value() -> String {
    format!("eyJhbGciOiJSUzI1NiJ9.{}.signature", "x".repeat(1000))
}

struct Subjects {
    /// Keeps the cache's runtime alive.
    _runtime: tokio::runtime::Runtime,
    cache: TokenCache,
    /// A header built at run time, as a token's is: cloning it bumps a shared
    /// reference count. What `SetRequestHeaderLayer` with a fixed token does.
    held: HeaderValue,
    /// `HeaderValue::from_static`: cloning it touches no shared memory.
    constant: HeaderValue,
    mutex: Mutex<HeaderValue>,
    rwlock: tokio::sync::RwLock<HeaderValue>,
}

impl Subjects {
    fn new() -> Arc<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let source = StaticToken::new(token_value()).lifetime(Duration::from_secs(3600));
        let cache = TokenCache::new(source);
        let token = runtime
            .block_on(cache.token())
            .expect("a static token is always issued");
        let held = token.header_value().clone();
        let constant = HeaderValue::from_static(Box::leak(
            format!("Bearer {}", token_value()).into_boxed_str(),
        ));
        Arc::new(Self {
            _runtime: runtime,
            cache,
            mutex: Mutex::new(held.clone()),
            rwlock: tokio::sync::RwLock::new(held.clone()),
            held,
            constant,
        })
    }
}

/// One way of reading the header.
type Read = fn(&Subjects) -> HeaderValue;

const CASES: [(&str, Read); 5] = [
    ("static from_static clone", |s| s.constant.clone()),
    ("static held header clone", |s| s.held.clone()),
    ("TokenCache::cached + clone", |s| {
        let token = s.cache.cached().expect("fresh");
        token.header_value().clone()
    }),
    ("std Mutex read + clone", |s| {
        s.mutex
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }),
    ("tokio RwLock read + clone", |s| {
        s.rwlock
            .read()
            .now_or_never()
            .expect("never held for writing")
            .clone()
    }),
];

/// Runs `read` `iters` times on each of `threads` threads at once; the wall
/// time of the whole run.
fn run(subjects: &Arc<Subjects>, read: Read, threads: usize, iters: u64) -> Duration {
    let barrier = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let subjects = Arc::clone(subjects);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(read(black_box(&subjects)));
                }
                start.elapsed()
            })
        })
        .collect();
    workers
        .into_iter()
        .map(|worker| worker.join().expect("a bench thread panicked"))
        .max()
        .unwrap_or_default()
}

fn criterion_groups(c: &mut Criterion, subjects: &Arc<Subjects>) {
    let mut single = c.benchmark_group("read/1-thread");
    for (name, read) in CASES {
        single.bench_function(name, |b| b.iter(|| read(black_box(subjects))));
    }
    single.finish();

    let mut contended = c.benchmark_group("read/2-threads");
    for (name, read) in CASES {
        contended.bench_with_input(BenchmarkId::from_parameter(name), &read, |b, read| {
            b.iter_custom(|iters| run(subjects, *read, 2, iters))
        });
    }
    contended.finish();
}

/// Nanoseconds per read (per thread) of every case, each the median of
/// `ROUNDS` short runs, the cases taking turns so that noise from the
/// machine falls on all of them alike.
fn ns_per_read(subjects: &Arc<Subjects>, threads: usize) -> Vec<f64> {
    const ROUNDS: usize = 7;
    const ITERS: u64 = 1_000_000;
    let mut samples = vec![Vec::with_capacity(ROUNDS); CASES.len()];
    for _ in 0..ROUNDS {
        for (case, (_, read)) in CASES.iter().enumerate() {
            let elapsed = run(subjects, *read, threads, ITERS);
            samples[case].push(elapsed.as_nanos() as f64 / ITERS as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut runs| {
            runs.sort_by(f64::total_cmp);
            runs[runs.len() / 2]
        })
        .collect()
}

fn print_ratios(subjects: &Arc<Subjects>) {
    println!();
    println!("Ratios: ns per read per thread, median of 7 interleaved runs of 1M reads");
    for threads in [1, 2] {
        let times = ns_per_read(subjects, threads);
        let [constant, held, cached, mutex, rwlock] = times[..] else {
            unreachable!("one time per case");
        };
        println!("{threads} thread(s):");
        for ((name, _), ns) in CASES.iter().zip(&times) {
            println!(
                "  {name:<28} {ns:>7.2} ns  {:>5.2}x from_static  {:>5.2}x held header",
                ns / constant,
                ns / held,
            );
        }
        {
            let (name, ns) = ("TokenCache::cached + clone", cached);
            println!(
                "  {name}: {:.2}x the std Mutex, {:.2}x the tokio RwLock (below 1 is faster)",
                ns / mutex,
                ns / rwlock,
            );
        }
    }
}

fn main() {
    let subjects = Subjects::new();
    let mut criterion = Criterion::default().configure_from_args();
    criterion_groups(&mut criterion, &subjects);
    criterion.final_summary();
    // `cargo test --benches` runs this binary without `--bench`: skip the
    // timed loop there.
    if std::env::args().any(|arg| arg == "--bench") {
        print_ratios(&subjects);
    }
}
