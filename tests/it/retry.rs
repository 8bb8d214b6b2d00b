//! The retry layer against scripted in-memory servers, on paused time.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use crate::support::capture_logs;
use bytes::Bytes;
use cxone_auth::retry::CxoneRetryLayer;
use futures_util::future::join_all;
use http::header::{AUTHORIZATION, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use http_body_util::combinators::BoxBody;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

const API: &str = "https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents";
const OTHER_API: &str = "https://api-eu1.niceincontact.com/inContactAPI/services/v34.0/agents";

/// What the server saw of one call.
#[derive(Debug, Clone)]
struct Call {
    at: Instant,
    method: Method,
    host: Option<String>,
    authorization: Option<HeaderValue>,
}

#[derive(Debug, Clone, Default)]
struct Log(Arc<Mutex<Vec<Call>>>);

impl Log {
    fn calls(&self) -> Vec<Call> {
        self.0.lock().unwrap().clone()
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Time between consecutive calls.
    fn gaps(&self) -> Vec<Duration> {
        self.calls()
            .windows(2)
            .map(|pair| pair[1].at - pair[0].at)
            .collect()
    }

    fn record(&self, call: Call) -> usize {
        let mut calls = self.0.lock().unwrap();
        calls.push(call);
        calls.len() - 1
    }
}

/// A server answering call number `n` (from 0, across all requests) with
/// `respond(n, request)`, logging every call.
#[derive(Clone)]
struct Server<F> {
    log: Log,
    respond: Arc<F>,
}

fn server<B, F>(respond: F) -> (Server<F>, Log)
where
    F: Fn(usize, &Request<B>) -> Response<()>,
{
    let log = Log::default();
    let server = Server {
        log: log.clone(),
        respond: Arc::new(respond),
    };
    (server, log)
}

impl<B, F> Service<Request<B>> for Server<F>
where
    F: Fn(usize, &Request<B>) -> Response<()>,
{
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let n = self.log.record(Call {
            at: Instant::now(),
            method: request.method().clone(),
            host: request.uri().host().map(str::to_owned),
            authorization: request.headers().get(AUTHORIZATION).cloned(),
        });
        ready(Ok((self.respond)(n, &request)))
    }
}

/// A server that answers the first request with `first()` and every later
/// one with 200.
fn first_then_ok(
    first: impl Fn() -> Response<()> + Clone + Send + Sync + 'static,
) -> (Server<impl Respond<()> + Clone>, Log) {
    server(move |n, _: &Request<()>| if n == 0 { first() } else { answer(200) })
}

/// How a test server answers call number `n` (from 0) to `request`.
trait Respond<B>: Fn(usize, &Request<B>) -> Response<()> + Send + Sync + 'static {}

impl<B, F> Respond<B> for F where F: Fn(usize, &Request<B>) -> Response<()> + Send + Sync + 'static {}

fn answer(status: u16) -> Response<()> {
    Response::builder().status(status).body(()).unwrap()
}

fn answer_after(status: u16, retry_after: &str) -> Response<()> {
    Response::builder()
        .status(status)
        .header(RETRY_AFTER, retry_after)
        .body(())
        .unwrap()
}

fn get(uri: &str) -> Request<()> {
    Request::get(uri).body(()).unwrap()
}

// ===== 401 =====

#[tokio::test(start_paused = true)]
async fn unauthorized_is_replayed_once_and_a_second_401_is_returned() {
    let (api, log) = server(|_, _: &Request<()>| answer(401));
    let client = CxoneRetryLayer::default().layer(api);

    let response = client.oneshot(get(API)).await.unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(log.len(), 2, "one send, one replay, no more");
}

#[tokio::test(start_paused = true)]
async fn unauthorized_replay_succeeds_at_once() {
    let (api, log) = first_then_ok(|| answer(401));
    let client = CxoneRetryLayer::default().layer(api);
    let start = Instant::now();

    let response = client.oneshot(get(API)).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(log.len(), 2);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "a 401 replay does not back off"
    );
}

#[tokio::test(start_paused = true)]
async fn unauthorized_replay_is_not_an_attempt() {
    // max_attempts(1) turns 429/503 retries off, not the 401 replay.
    let (api, log) = first_then_ok(|| answer(401));
    let client = CxoneRetryLayer::builder()
        .max_attempts(1)
        .build()
        .layer(api);

    assert_eq!(client.oneshot(get(API)).await.unwrap().status(), 200);
    assert_eq!(log.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn replay_after_401_goes_through_the_auth_layer_again_and_gets_a_fresh_token() {
    // Stands in for the auth layer: attaches the current token to requests
    // without `Authorization` and moves to the next token on a 401.
    let (api, log) = server(|_, request: &Request<()>| {
        let fresh = request.headers()[AUTHORIZATION] == "Bearer token-2";
        answer(if fresh { 200 } else { 401 })
    });
    let generation = Arc::new(Mutex::new(1));
    let auth = tower::service_fn(move |mut request: Request<()>| {
        let mut api = api.clone();
        let generation = generation.clone();
        async move {
            assert!(
                !request.headers().contains_key(AUTHORIZATION),
                "the retry layer replays the copy taken before the token was attached"
            );
            let sent = *generation.lock().unwrap();
            let value = HeaderValue::try_from(format!("Bearer token-{sent}")).unwrap();
            request.headers_mut().insert(AUTHORIZATION, value);
            let response = api.call(request).await?;
            if response.status() == StatusCode::UNAUTHORIZED {
                let mut current = generation.lock().unwrap();
                if *current == sent {
                    *current += 1;
                }
            }
            Ok::<_, Infallible>(response)
        }
    });
    let client = CxoneRetryLayer::default().layer(auth);

    let response = client.oneshot(get(API)).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let sent: Vec<_> = log.calls().into_iter().map(|c| c.authorization).collect();
    assert_eq!(
        sent,
        [
            Some(HeaderValue::from_static("Bearer token-1")),
            Some(HeaderValue::from_static("Bearer token-2")),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_401_for_the_callers_own_authorization_is_not_replayed() {
    let (api, log) = server(|_, _: &Request<()>| answer(401));
    let client = CxoneRetryLayer::default().layer(api);
    let request = Request::get(API)
        .header(AUTHORIZATION, "Bearer the-callers-own")
        .body(())
        .unwrap();

    let response = client.oneshot(request).await.unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(log.len(), 1, "the same credentials would be refused again");
}

// ===== Retry-After =====

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_is_waited_exactly() {
    let (api, log) = first_then_ok(|| answer_after(429, "2"));
    let client = CxoneRetryLayer::default().layer(api);
    let start = Instant::now();

    let response = client.oneshot(get(API)).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(log.gaps(), [Duration::from_secs(2)]);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn retry_after_http_date_is_waited_until() {
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(5));
    let (api, log) = first_then_ok(move || answer_after(503, &date));
    let client = CxoneRetryLayer::default().layer(api);

    let response = client.oneshot(get(API)).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let gap = log.gaps()[0];
    // HTTP-dates have whole seconds, so the wait is cut to between 4 and 5 s.
    assert!(
        gap > Duration::from_secs(4) && gap <= Duration::from_secs(5),
        "{gap:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_in_the_past_replays_at_once() {
    let (api, log) = first_then_ok(|| answer_after(429, "Sun, 06 Nov 1994 08:49:37 GMT"));
    let client = CxoneRetryLayer::default().layer(api);

    assert_eq!(client.oneshot(get(API)).await.unwrap().status(), 200);
    assert_eq!(log.gaps(), [Duration::ZERO]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_capped() {
    let (api, log) = first_then_ok(|| answer_after(429, "86400"));
    let client = CxoneRetryLayer::builder()
        .retry_after_cap(Duration::from_secs(5))
        .build()
        .layer(api);

    assert_eq!(client.oneshot(get(API)).await.unwrap().status(), 200);
    assert_eq!(log.gaps(), [Duration::from_secs(5)]);
}

#[tokio::test(start_paused = true)]
async fn default_cap_is_a_minute() {
    let (api, log) = first_then_ok(|| answer_after(429, "3600"));
    let client = CxoneRetryLayer::default().layer(api);

    assert_eq!(client.oneshot(get(API)).await.unwrap().status(), 200);
    assert_eq!(log.gaps(), [Duration::from_secs(60)]);
}

#[tokio::test(start_paused = true)]
async fn unreadable_retry_after_falls_back_to_backoff() {
    let (api, log) = first_then_ok(|| answer_after(429, "in a little while"));
    let client = CxoneRetryLayer::builder()
        .backoff(Duration::from_millis(300), Duration::from_secs(1))
        .build()
        .layer(api);

    assert_eq!(client.oneshot(get(API)).await.unwrap().status(), 200);
    assert!(
        log.gaps()[0] <= Duration::from_millis(300),
        "{:?}",
        log.gaps()
    );
}

// ===== Backoff and attempts =====

#[tokio::test(start_paused = true)]
async fn backoff_without_retry_after_is_bounded_and_jittered() {
    let base = Duration::from_millis(100);
    let max = Duration::from_millis(150);
    let mut all_gaps = Vec::new();
    for _ in 0..20 {
        let (api, log) = server(|_, _: &Request<()>| answer(503));
        let client = CxoneRetryLayer::builder()
            .max_attempts(4)
            .backoff(base, max)
            .build()
            .layer(api);

        let response = client.oneshot(get(API)).await.unwrap();

        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let gaps = log.gaps();
        assert_eq!(gaps.len(), 3);
        // Ceilings: base, then 2 × base capped at max, then max.
        assert!(gaps[0] <= base, "{gaps:?}");
        assert!(gaps[1] <= max && gaps[2] <= max, "{gaps:?}");
        all_gaps.extend(gaps);
    }
    all_gaps.sort();
    all_gaps.dedup();
    assert!(all_gaps.len() > 40, "full jitter: waits differ");
}

#[tokio::test(start_paused = true)]
async fn attempts_are_bounded() {
    let (api, log) = server(|_, _: &Request<()>| answer_after(429, "1"));
    let client = CxoneRetryLayer::default().layer(api);

    let response = client.oneshot(get(API)).await.unwrap();

    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(log.len(), 3, "three attempts by default");
    assert_eq!(log.gaps(), [Duration::from_secs(1); 2]);

    let (api, log) = server(|_, _: &Request<()>| answer_after(429, "1"));
    let client = CxoneRetryLayer::builder()
        .max_attempts(5)
        .build()
        .layer(api);
    client.oneshot(get(API)).await.unwrap();
    assert_eq!(log.len(), 5);
}

#[tokio::test(start_paused = true)]
async fn budget_exhaustion_stops_retries() {
    const REQUESTS: usize = 200;

    async fn storm(layer: CxoneRetryLayer) -> usize {
        let (api, log) = server(|_, _: &Request<()>| answer_after(429, "0"));
        // Each request through its own clone: the budget is shared anyway.
        let requests = (0..REQUESTS).map(|_| layer.clone().layer(api.clone()).oneshot(get(API)));
        for response in join_all(requests).await {
            assert_eq!(response.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
        }
        log.len()
    }

    // One retry per ten requests, no reserve.
    let budgeted = storm(
        CxoneRetryLayer::builder()
            .budget(Duration::from_secs(10), 0, 0.1)
            .build(),
    )
    .await;
    assert!(budgeted > REQUESTS, "some retries happen: {budgeted}");
    assert!(
        budgeted <= REQUESTS + REQUESTS / 10,
        "the budget bounds retries: {budgeted}"
    );

    // Without a binding budget the same storm costs every attempt.
    let unbounded = storm(
        CxoneRetryLayer::builder()
            .budget(Duration::from_secs(10), 1_000_000, 1000.0)
            .build(),
    )
    .await;
    assert_eq!(unbounded, REQUESTS * 3);
}

#[tokio::test(start_paused = true)]
async fn default_budget_keeps_a_storm_well_below_every_attempt() {
    const REQUESTS: usize = 1000;
    let (api, log) = server(|_, _: &Request<()>| answer_after(429, "0"));
    let layer = CxoneRetryLayer::default();
    let requests = (0..REQUESTS).map(|_| layer.layer(api.clone()).oneshot(get(API)));
    join_all(requests).await;

    // 20% of the requests plus the reserve of 10/s over 10 s.
    let calls = log.len();
    assert!(calls <= REQUESTS + REQUESTS / 5 + 100, "{calls}");
    assert!(calls < REQUESTS * 3 / 2, "{calls}");
}

// ===== Cool-down =====

#[tokio::test(start_paused = true)]
async fn a_429_cools_the_host_down_for_every_clone() {
    let (api, log) = first_then_ok(|| answer_after(429, "2"));
    let layer = CxoneRetryLayer::default();
    let first = layer.layer(api.clone());
    let second = layer.clone().layer(api.clone());
    let other_host = layer.clone().layer(api.clone());
    let unrelated_layer = CxoneRetryLayer::default().layer(api);
    let start = Instant::now();

    let rate_limited = tokio::spawn(first.oneshot(get(API)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waiting = tokio::spawn(second.oneshot(get(API)));
    let elsewhere = tokio::spawn(other_host.oneshot(get(OTHER_API)));
    let separate = tokio::spawn(unrelated_layer.oneshot(get(API)));

    for task in [rate_limited, waiting, elsewhere, separate] {
        assert_eq!(task.await.unwrap().unwrap().status(), StatusCode::OK);
    }

    let mut seen: Vec<(Duration, String)> = log
        .calls()
        .into_iter()
        .map(|c| (c.at - start, c.host.unwrap()))
        .collect();
    seen.sort();
    let na1 = "api-na1.niceincontact.com".to_owned();
    let eu1 = "api-eu1.niceincontact.com".to_owned();
    let ms = Duration::from_millis;
    assert_eq!(
        seen,
        [
            (ms(0), na1.clone()),    // first: 429, Retry-After 2
            (ms(100), eu1),          // another host is not held
            (ms(100), na1.clone()),  // another layer's state is its own
            (ms(2000), na1.clone()), // first's replay
            (ms(2000), na1),         // second waited for the cool-down
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_cools_down_for_the_backoff() {
    let (api, log) = first_then_ok(|| answer(429));
    let layer = CxoneRetryLayer::builder()
        .backoff(Duration::from_secs(4), Duration::from_secs(4))
        .build();
    let start = Instant::now();

    let rate_limited = tokio::spawn(layer.layer(api.clone()).oneshot(get(API)));
    while log.len() == 0 {
        // Paused time does not move while a task is runnable.
        tokio::task::yield_now().await;
    }
    let waiting = tokio::spawn(layer.layer(api).oneshot(get(API)));
    rate_limited.await.unwrap().unwrap();
    waiting.await.unwrap().unwrap();

    let at: Vec<Duration> = log.calls().iter().map(|c| c.at - start).collect();
    assert_eq!(at.len(), 3);
    assert_eq!(at[0], Duration::ZERO);
    assert!(at[1] <= Duration::from_secs(4));
    assert_eq!(at[1], at[2], "the other request waited for the same end");
}

#[tokio::test(start_paused = true)]
async fn requests_without_a_host_share_one_cool_down() {
    let (api, log) = first_then_ok(|| answer_after(429, "3"));
    let layer = CxoneRetryLayer::builder().max_attempts(1).build();
    let start = Instant::now();

    let first = layer
        .layer(api.clone())
        .oneshot(get("/grpc.Service/Method"))
        .await;
    assert_eq!(first.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    let second = layer.layer(api).oneshot(get("/other/path")).await;
    assert_eq!(second.unwrap().status(), StatusCode::OK);

    assert_eq!(log.calls()[1].at - start, Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_429_to_a_request_that_cannot_be_replayed_still_cools_the_host_down() {
    type Stream = BoxBody<Bytes, Infallible>;
    let (api, log) = server(|n, _: &Request<Stream>| {
        if n == 0 {
            answer_after(429, "3")
        } else {
            answer(200)
        }
    });
    let layer = CxoneRetryLayer::default();
    let stream = || http_body_util::BodyExt::boxed(Full::new(Bytes::from_static(b"{}")));
    let start = Instant::now();

    let first = layer
        .layer(api.clone())
        .oneshot(Request::post(API).body(stream()).unwrap());
    assert_eq!(first.await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    let second = layer
        .layer(api)
        .oneshot(Request::post(API).body(stream()).unwrap());
    assert_eq!(second.await.unwrap().status(), StatusCode::OK);

    assert_eq!(log.len(), 2);
    assert_eq!(log.calls()[1].at - start, Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_request_waiting_for_a_cool_down_holds_no_slot_of_a_bounded_inner_service() {
    let (api, log) = first_then_ok(|| answer_after(429, "5"));
    // One slot: a request that kept it while waiting would block the others.
    let buffered = tower::buffer::Buffer::new(api, 1);
    let layer = CxoneRetryLayer::builder().max_attempts(1).build();
    let start = Instant::now();

    let first = layer.layer(buffered.clone()).oneshot(get(API)).await;
    assert_eq!(first.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    let waiting = tokio::spawn(layer.layer(buffered.clone()).oneshot(get(API)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other = layer.layer(buffered).oneshot(get(OTHER_API)).await;
    assert_eq!(other.unwrap().status(), StatusCode::OK);
    assert_eq!(
        log.calls()[1].at - start,
        Duration::from_millis(100),
        "the other host was served during the cool-down"
    );
    assert_eq!(waiting.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(log.calls()[2].at - start, Duration::from_secs(5));
}

// ===== What is not retried =====

#[tokio::test(start_paused = true)]
async fn a_body_over_the_cap_is_sent_once_and_its_answer_returned() {
    let (api, log) = server(|_, _: &Request<Vec<u8>>| answer_after(429, "1"));
    let client = CxoneRetryLayer::builder()
        .max_replay_body_bytes(16)
        .build()
        .layer(api);

    let response = client
        .clone()
        .oneshot(Request::post(API).body(vec![b'x'; 17]).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(log.len(), 1);

    // At the cap it is replayed (after the host's cool-down).
    let response = client
        .oneshot(Request::post(API).body(vec![b'x'; 16]).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(log.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_streaming_body_is_sent_once_and_its_answer_returned() {
    type Stream = BoxBody<Bytes, Infallible>;
    let (api, log) = server(|_, _: &Request<Stream>| answer(401));
    let client = CxoneRetryLayer::default().layer(api);
    let body = http_body_util::BodyExt::boxed(Full::new(Bytes::from_static(b"{}")));

    let response = client
        .oneshot(Request::post(API).body(body).unwrap())
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(log.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_request_that_cannot_be_copied_says_why_its_answer_was_not_replayed() {
    let (captured, _capture) = capture_logs();
    let logged = || captured.text();
    let (api, _) = server(|n, _: &Request<Vec<u8>>| answer(if n == 0 { 200 } else { 429 }));
    let client = CxoneRetryLayer::builder()
        .max_replay_body_bytes(1)
        .build()
        .layer(api);
    let post = || Request::post(API).body(vec![b'x'; 2]).unwrap();

    client.clone().oneshot(post()).await.unwrap();
    assert_eq!(logged(), "", "a success needs no word");
    let response = client.oneshot(post()).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(logged().contains("429"), "{}", logged());
    assert!(logged().contains("body cannot be copied"), "{}", logged());
}

#[tokio::test(start_paused = true)]
async fn a_503_to_a_post_is_retried_only_when_opted_in() {
    let post = || Request::post(API).body(String::from("{}")).unwrap();

    let (api, log) = server(|n, _: &Request<String>| answer(if n == 0 { 503 } else { 200 }));
    let response = CxoneRetryLayer::default()
        .layer(api)
        .oneshot(post())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(log.len(), 1);

    let (api, log) = server(|n, _: &Request<String>| answer(if n == 0 { 503 } else { 200 }));
    let response = CxoneRetryLayer::builder()
        .retry_503_for_non_idempotent(true)
        .build()
        .layer(api)
        .oneshot(post())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(log.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_503_to_an_idempotent_method_is_retried() {
    for method in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
        let (api, log) = first_then_ok(|| answer(503));
        let request = Request::builder()
            .method(method.clone())
            .uri(API)
            .body(())
            .unwrap();
        let response = CxoneRetryLayer::default()
            .layer(api)
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        assert_eq!(log.calls()[1].method, method);
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_is_retried_for_every_method() {
    for method in [Method::POST, Method::PATCH] {
        let (api, log) = first_then_ok(|| answer_after(429, "1"));
        let request = Request::builder()
            .method(method.clone())
            .uri(API)
            .body(())
            .unwrap();
        let response = CxoneRetryLayer::default()
            .layer(api)
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        assert_eq!(log.len(), 2);
    }
}

#[tokio::test(start_paused = true)]
async fn other_statuses_are_returned_as_they_are() {
    for status in [200, 204, 400, 403, 404, 409, 500, 502, 504] {
        let (api, log) = server(move |_, _: &Request<()>| answer_after(status, "1"));
        let response = CxoneRetryLayer::default()
            .layer(api)
            .oneshot(get(API))
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(log.len(), 1, "{status} is not retried");
    }
}

#[tokio::test(start_paused = true)]
async fn errors_of_the_inner_service_are_returned_as_they_are() {
    let calls = Arc::new(Mutex::new(0));
    let counter = calls.clone();
    let failing = tower::service_fn(move |_: Request<()>| {
        *counter.lock().unwrap() += 1;
        ready(Err::<Response<()>, _>(std::io::Error::other(
            "connection refused",
        )))
    });

    let err = CxoneRetryLayer::default()
        .layer(failing)
        .oneshot(get(API))
        .await
        .unwrap_err();

    assert_eq!(err.to_string(), "connection refused");
    assert_eq!(*calls.lock().unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_replay_carries_the_same_request() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let api = tower::service_fn(move |request: Request<String>| {
        let mut seen = log.lock().unwrap();
        seen.push((
            request.method().clone(),
            request.uri().clone(),
            request.headers().clone(),
            request.body().clone(),
        ));
        let status = if seen.len() == 1 { 429 } else { 200 };
        ready(Ok::<_, Infallible>(answer_after(status, "0")))
    });
    let request = Request::patch(API)
        .header("content-type", "application/json")
        .body(String::from(r#"{"isActive":false}"#))
        .unwrap();

    CxoneRetryLayer::default()
        .layer(api)
        .oneshot(request)
        .await
        .unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], seen[1]);
}

// ===== reqwest =====

mod reqwest_requests {
    use super::*;

    type Reqwest = reqwest::Request;

    /// A server of `reqwest::Response`s answering call `n` with `respond(n)`.
    #[derive(Clone)]
    struct ReqwestServer<F> {
        log: Log,
        respond: Arc<F>,
    }

    fn reqwest_server<F>(respond: F) -> (ReqwestServer<F>, Log)
    where
        F: Fn(usize) -> Response<()>,
    {
        let log = Log::default();
        let server = ReqwestServer {
            log: log.clone(),
            respond: Arc::new(respond),
        };
        (server, log)
    }

    impl<F> Service<Reqwest> for ReqwestServer<F>
    where
        F: Fn(usize) -> Response<()>,
    {
        type Response = reqwest::Response;
        type Error = reqwest::Error;
        type Future = Ready<Result<reqwest::Response, reqwest::Error>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), reqwest::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Reqwest) -> Self::Future {
            let n = self.log.record(Call {
                at: Instant::now(),
                method: request.method().clone(),
                host: request.url().host_str().map(str::to_owned),
                authorization: request.headers().get(AUTHORIZATION).cloned(),
            });
            let response = (self.respond)(n).map(|()| reqwest::Body::from(""));
            ready(Ok(reqwest::Response::from(response)))
        }
    }

    fn request(method: Method, body: Option<reqwest::Body>) -> Reqwest {
        let mut request = Reqwest::new(method, API.parse().unwrap());
        *request.body_mut() = body;
        request
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_is_waited_out_and_replayed() {
        let (api, log) = reqwest_server(|n| {
            if n == 0 {
                answer_after(429, "2")
            } else {
                answer(200)
            }
        });
        let client = CxoneRetryLayer::default().layer(api);
        let start = Instant::now();

        let response = client
            .oneshot(request(Method::POST, Some("{}".into())))
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(log.len(), 2);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_401_is_replayed_once() {
        let (api, log) = reqwest_server(|_| answer(401));
        let client = CxoneRetryLayer::default().layer(api);

        let response = client.oneshot(request(Method::GET, None)).await.unwrap();

        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(log.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_streaming_body_is_sent_once() {
        let (api, log) = reqwest_server(|_| answer_after(429, "1"));
        let client = CxoneRetryLayer::default().layer(api);
        let stream = reqwest::Body::wrap(Full::new(Bytes::from_static(b"{}")));

        let response = client
            .oneshot(request(Method::POST, Some(stream)))
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(log.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_over_the_cap_is_sent_once() {
        let (api, log) = reqwest_server(|_| answer(401));
        let client = CxoneRetryLayer::builder()
            .max_replay_body_bytes(4)
            .build()
            .layer(api);

        let response = client
            .oneshot(request(Method::POST, Some("12345".into())))
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(log.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_buffered_reqwest_body_in_an_http_request_is_replayed() {
        let (api, log) =
            server(|n, _: &Request<reqwest::Body>| answer(if n == 0 { 401 } else { 200 }));
        let client = CxoneRetryLayer::default().layer(api);

        let response = client
            .oneshot(Request::post(API).body(reqwest::Body::from("{}")).unwrap())
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(log.len(), 2);
    }
}

// ===== Per request =====

#[tokio::test(start_paused = true)]
async fn a_request_with_no_replay_is_sent_once_whatever_the_answer() {
    use cxone_auth::retry::NoReplay;
    for status in [401, 429, 503] {
        let (api, log) = first_then_ok(move || answer_after(status, "1"));
        let client = CxoneRetryLayer::default().layer(api);
        let mut request = get(API);
        request.extensions_mut().insert(NoReplay);
        let start = Instant::now();

        let response = client.oneshot(request).await.unwrap();

        assert_eq!(response.status().as_u16(), status);
        assert_eq!(log.len(), 1, "{status}: not replayed");
        assert_eq!(start.elapsed(), Duration::ZERO, "{status}: no wait");
    }
}

#[tokio::test(start_paused = true)]
async fn the_response_tells_the_attempts_and_the_waits() {
    use cxone_auth::retry::RetryInfo;
    let info = |response: &Response<()>| response.extensions().get::<RetryInfo>().copied();

    // Sent once, no wait: nothing to tell.
    let (api, _) = server(|_, _: &Request<()>| answer(200));
    let client = CxoneRetryLayer::default().layer(api);
    assert_eq!(info(&client.oneshot(get(API)).await.unwrap()), None);

    // A 401 replay: two sends, no wait.
    let (api, _) = first_then_ok(|| answer(401));
    let response = CxoneRetryLayer::default()
        .layer(api)
        .oneshot(get(API))
        .await
        .unwrap();
    let told = info(&response).unwrap();
    assert_eq!((told.attempts, told.waited), (2, Duration::ZERO));

    // 429 twice, asking 2 s then 3 s, then the answer: three sends, 5 s.
    let (api, _) = server(|n, _: &Request<()>| match n {
        0 => answer_after(429, "2"),
        1 => answer_after(429, "3"),
        _ => answer(200),
    });
    let client = CxoneRetryLayer::default().layer(api);
    let response = client.clone().oneshot(get(API)).await.unwrap();
    let told = info(&response).unwrap();
    assert_eq!((told.attempts, told.waited), (3, Duration::from_secs(5)));

    // The attempts used up: the last 429 comes back, with what was tried.
    let (api, _) = server(|_, _: &Request<()>| answer_after(429, "1"));
    let client = CxoneRetryLayer::default().layer(api);
    let response = client.clone().oneshot(get(API)).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let told = info(&response).unwrap();
    assert_eq!((told.attempts, told.waited), (3, Duration::from_secs(2)));

    // A later request waits for the host's cool-down before its first send.
    let start = Instant::now();
    let response = client.oneshot(get(API)).await.unwrap();
    let told = info(&response).unwrap();
    assert_eq!(told.waited, start.elapsed());
    assert!(told.waited >= Duration::from_secs(1));
}
