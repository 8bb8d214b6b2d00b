//! End to end on loopback: a hyper server on 127.0.0.1 and a `reqwest`
//! client sending through the whole stack (`CxoneRetryLayer` over
//! `CxoneAuthLayer` over `reqwest::Client` as a tower service), against the
//! same client setting a static `Authorization` header itself. Requests per
//! second at a fixed concurrency.
//!
//! Client and server share the machine, so the numbers are the machine's,
//! not CXone's; what matters is the ratio between the two variants, which
//! shows what the stack costs a real HTTP request.
//!
//! `cargo bench --bench loopback -- --warm-up-time 1 --measurement-time 3`
//!
//! After criterion's groups, the two variants take turns in short rounds and
//! the median of the per-round ratios is printed: noise from the machine
//! then falls on both alike.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use cxone_auth::token::StaticToken;
use cxone_auth::{CxoneAuthLayer, CxoneRetryLayer, TokenCache};
use futures::StreamExt as _;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tower::{ServiceBuilder, ServiceExt as _};

/// Requests in flight at once.
const CONCURRENCY: usize = 32;
/// Requests per measured iteration.
const REQUESTS: usize = 256;

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJ0ZW5hbnRJZCI6ImJlbmNoIn0.c2lnbmF0dXJl";

/// A hyper HTTP/1.1 server on 127.0.0.1 answering every request with a small
/// JSON body, or 401 when it carries no `Authorization`.
async fn serve() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let answer = hyper::service::service_fn(|request: http::Request<Incoming>| {
                    let status = if request.headers().contains_key(AUTHORIZATION) {
                        StatusCode::OK
                    } else {
                        StatusCode::UNAUTHORIZED
                    };
                    async move {
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from_static(
                                    br#"{"ServerTime":"2021-07-21T13:38:15.3560573Z"}"#,
                                )))
                                .expect("a valid response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), answer)
                    .await;
            });
        }
    });
    address
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("a reqwest client")
}

/// Sends [`REQUESTS`] requests, [`CONCURRENCY`] at a time, through `send`.
async fn burst<F, Fut>(send: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = StatusCode>,
{
    futures::stream::iter(0..REQUESTS)
        .map(|_| send())
        .buffer_unordered(CONCURRENCY)
        .for_each(|status| {
            assert_eq!(status, StatusCode::OK);
            async {}
        })
        .await;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The two clients, against one server.
struct Subjects {
    url: reqwest::Url,
    plain: reqwest::Client,
    header: HeaderValue,
    stack: Stack,
}

type Stack = cxone_auth::retry::CxoneRetry<cxone_auth::CxoneAuth<reqwest::Client>>;

impl Subjects {
    async fn new() -> Self {
        let address = serve().await;
        let url = format!("http://{address}/inContactAPI/services/v34.0/server-time")
            .parse()
            .expect("a URL");
        let mut header = HeaderValue::from_str(&format!("Bearer {TOKEN}")).expect("a header");
        header.set_sensitive(true);
        let tokens = TokenCache::new(StaticToken::new(TOKEN).lifetime(Duration::from_secs(3600)));
        tokens
            .token()
            .await
            .expect("a static token is always issued");
        let stack = ServiceBuilder::new()
            .layer(CxoneRetryLayer::default())
            .layer(CxoneAuthLayer::new(tokens).allow_loopback_http(true))
            .service(client());
        Self {
            url,
            plain: client(),
            header,
            stack,
        }
    }

    /// One burst through the stack, or through the client with a static header.
    async fn burst(&self, stack: bool) {
        if stack {
            return burst(|| {
                let stack = self.stack.clone();
                let request = reqwest::Request::new(Method::GET, self.url.clone());
                async move {
                    let response = stack.oneshot(request).await.expect("an answer");
                    let status = response.status();
                    response.bytes().await.expect("a body");
                    status
                }
            })
            .await;
        }
        burst(|| {
            let client = self.plain.clone();
            let mut request = reqwest::Request::new(Method::GET, self.url.clone());
            request
                .headers_mut()
                .insert(AUTHORIZATION, self.header.clone());
            async move {
                let response = client.execute(request).await.expect("an answer");
                let status = response.status();
                response.bytes().await.expect("a body");
                status
            }
        })
        .await;
    }
}

fn loopback(c: &mut Criterion, runtime: &tokio::runtime::Runtime, subjects: &Subjects) {
    let mut group = c.benchmark_group("loopback");
    group.throughput(Throughput::Elements(REQUESTS as u64));
    group.bench_function("reqwest_static_header", |b| {
        b.to_async(runtime).iter(|| subjects.burst(false))
    });
    group.bench_function("reqwest_retry_auth_stack", |b| {
        b.to_async(runtime).iter(|| subjects.burst(true))
    });
    group.finish();
}

/// Requests per second of the stack over the static header: the median of
/// [`ROUNDS`] rounds in which the two take turns.
fn print_ratio(runtime: &tokio::runtime::Runtime, subjects: &Subjects) {
    const ROUNDS: usize = 21;
    const BURSTS: usize = 8;
    let time = |stack: bool| {
        let start = std::time::Instant::now();
        for _ in 0..BURSTS {
            runtime.block_on(subjects.burst(stack));
        }
        start.elapsed().as_secs_f64()
    };
    let mut ratios: Vec<f64> = (0..ROUNDS)
        .map(|round| {
            // Alternate which goes first, so neither always meets a warm pool.
            let (plain, stack) = if round % 2 == 0 {
                let plain = time(false);
                (plain, time(true))
            } else {
                let stack = time(true);
                (time(false), stack)
            };
            plain / stack
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let rps = (REQUESTS * BURSTS) as f64 / time(false);
    println!();
    println!(
        "loopback: retry + auth stack / static header = {:.3}x requests per second (median of {ROUNDS} interleaved rounds; range {:.3}..{:.3}; static header about {rps:.0} req/s)",
        ratios[ROUNDS / 2],
        ratios[0],
        ratios[ROUNDS - 1],
    );
}

fn main() {
    let runtime = runtime();
    let subjects = runtime.block_on(Subjects::new());
    let mut criterion = Criterion::default().configure_from_args();
    loopback(&mut criterion, &runtime, &subjects);
    criterion.final_summary();
    // `cargo test --benches` runs this binary without `--bench`: skip the
    // timed rounds there.
    if std::env::args().any(|arg| arg == "--bench") {
        print_ratio(&runtime, &subjects);
    }
}
