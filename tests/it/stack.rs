//! The whole stack against the mock CXone: retry outside auth, with tower's
//! timeout, buffer and rate limit. In memory, on paused time, except the
//! last test, which needs a real second server and depends on no timing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cxone_auth::mock::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLIENT_ID, CLIENT_SECRET, MockCxone};
use cxone_auth::token::ServiceTransport;
use cxone_auth::{AccessKeyGrant, CxoneAuthLayer, CxoneRetryLayer, Error, ErrorKind, TokenCache};
use http::header::AUTHORIZATION;
use http::{Request, StatusCode};
use http_body_util::Full;
use tokio::time::Instant;
use tower::buffer::BufferLayer;
use tower::limit::RateLimitLayer;
use tower::timeout::TimeoutLayer;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt as _};

const AGENTS: &str = "/inContactAPI/services/v34.0/agents";

/// One cache per credential, fetching from the mock in memory.
fn tokens(mock: &MockCxone) -> TokenCache {
    let source = AccessKeyGrant::new(CLIENT_ID, CLIENT_SECRET, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        .unwrap()
        .token_url(mock.token_url())
        .unwrap()
        .transport(ServiceTransport::new(mock.router()));
    TokenCache::new(source)
}

fn auth(tokens: &TokenCache) -> CxoneAuthLayer {
    CxoneAuthLayer::new(tokens.clone())
}

/// A request to a CXone host, which the mock in memory answers (no DNS):
/// a 401 from it costs the token, as CXone's do.
fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(format!("https://api-na1.niceincontact.com{path}"))
        .body(Full::default())
        .unwrap()
}

/// The recommended stack: timeout, retry, auth, then the inner client.
fn client(
    mock: &MockCxone,
    tokens: &TokenCache,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = http::Response<axum::body::Body>,
    Error = BoxError,
    Future: Send,
> + Clone
+ Send
+ 'static {
    ServiceBuilder::new()
        .layer(TimeoutLayer::new(Duration::from_secs(30)))
        .layer(CxoneRetryLayer::default())
        .layer(auth(tokens))
        .service(mock.router())
}

#[tokio::test(start_paused = true)]
async fn composes_with_timeout_buffer_and_rate_limit() {
    let mock = MockCxone::new();
    let tokens = tokens(&mock);
    let client = ServiceBuilder::new()
        .layer(TimeoutLayer::new(Duration::from_secs(30)))
        .layer(CxoneRetryLayer::default())
        .layer(auth(&tokens))
        .layer(BufferLayer::new(8))
        .layer(RateLimitLayer::new(10, Duration::from_secs(1)))
        .service(mock.router());

    let start = Instant::now();
    let calls: Vec<_> = (0..25)
        .map(|_| client.clone().oneshot(get(AGENTS)))
        .collect();
    for response in futures::future::join_all(calls).await {
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    }
    // Ten per second: the last ten wait for the third window.
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    let stats = mock.stats();
    assert_eq!((stats.token_requests, stats.api_ok), (1, 25));
}

#[tokio::test(start_paused = true)]
async fn a_revoked_token_costs_one_refresh_and_one_replay() {
    let mock = MockCxone::new();
    let tokens = tokens(&mock);
    let client = client(&mock, &tokens);

    let first = client.clone().oneshot(get(AGENTS)).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    mock.revoke_all();

    let response = client.clone().oneshot(get(AGENTS)).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the caller sees only the success"
    );
    let stats = mock.stats();
    assert_eq!(stats.token_requests, 2, "one refresh");
    assert_eq!(stats.api_unauthorized, 1, "one refused call");
    assert_eq!(stats.api_ok, 2);
    assert_eq!(tokens.stats().invalidations, 1);
}

#[tokio::test(start_paused = true)]
async fn a_thousand_requests_on_a_revoked_token_cost_one_token_request() {
    let mock = MockCxone::new();
    let tokens = tokens(&mock);
    let client = client(&mock, &tokens);
    client.clone().oneshot(get(AGENTS)).await.unwrap();
    mock.revoke_all();

    let calls: Vec<_> = (0..1_000)
        .map(|_| client.clone().oneshot(get(AGENTS)))
        .collect();
    for response in futures::future::join_all(calls).await {
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    }
    let stats = mock.stats();
    assert_eq!(stats.token_requests, 2, "the first token and one refresh");
    assert_eq!(stats.api_ok, 1_001);
    assert!(stats.api_unauthorized <= 1_000);
}

#[tokio::test(start_paused = true)]
async fn a_429_is_waited_out_and_cools_down_every_clone() {
    let mock = MockCxone::new();
    let tokens = tokens(&mock);
    let client = client(&mock, &tokens);
    client.clone().oneshot(get(AGENTS)).await.unwrap();
    mock.reset_stats();
    mock.rate_limit_next_api_calls(1, Duration::from_secs(2));

    let start = Instant::now();
    let first = tokio::spawn(client.clone().oneshot(get(AGENTS)));
    // Let the first request meet the 429 before the others start.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(mock.stats().api_rate_limited, 1);
    let others: Vec<_> = (0..10)
        .map(|_| {
            tokio::spawn(
                client
                    .clone()
                    .oneshot(get("/inContactAPI/services/v34.0/server-time")),
            )
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1_800)).await;
    assert_eq!(
        mock.stats().api_calls,
        1,
        "during the cool-down nothing reaches the server"
    );

    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_millis(2_100),
        "{waited:?}"
    );
    for other in others {
        assert_eq!(other.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    let stats = mock.stats();
    assert_eq!(
        (stats.api_calls, stats.api_rate_limited, stats.api_ok),
        (12, 1, 11)
    );
    assert_eq!(stats.token_requests, 0);
}

/// CXone does not reliably send `Retry-After` on 429;
/// the retry layer then waits its own jittered backoff (500 ms, then 1 s at
/// most, by default) and gets through.
#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_is_backed_off_on_the_layers_schedule() {
    let mock = MockCxone::new();
    let tokens = tokens(&mock);
    let client = client(&mock, &tokens);
    client.clone().oneshot(get(AGENTS)).await.unwrap();
    mock.reset_stats();
    mock.rate_limit_next_api_calls(2, None);

    let start = Instant::now();
    let response = client.oneshot(get(AGENTS)).await.unwrap();
    let waited = start.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(waited > Duration::ZERO, "it backed off");
    assert!(waited <= Duration::from_millis(1_500), "{waited:?}");
    let stats = mock.stats();
    assert_eq!(
        (stats.api_rate_limited, stats.api_ok, stats.api_calls),
        (2, 1, 3)
    );
}

#[tokio::test(start_paused = true)]
async fn token_errors_reach_the_caller_typed_through_the_stack() {
    let mock = MockCxone::new();
    let source = AccessKeyGrant::new(CLIENT_ID, "wrong-secret", ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        .unwrap()
        .token_url(mock.token_url())
        .unwrap()
        .transport(ServiceTransport::new(mock.router()));
    let tokens = TokenCache::new(source);
    let err = client(&mock, &tokens)
        .oneshot(get(AGENTS))
        .await
        .unwrap_err();
    let err = err.downcast_ref::<Error>().expect("a cxone_auth::Error");
    assert_eq!(err.kind(), ErrorKind::InvalidCredentials);
    assert!(!err.to_string().contains("wrong-secret"), "{err}");
    assert_eq!(mock.stats().api_calls, 0);
}

/// A real second server on 127.0.0.1 records every `Authorization` it
/// receives. A request to it through the layer never arrives while loopback
/// is not allowed, and arrives with the token once it is (which shows the
/// recording would have seen a leak).
#[tokio::test]
async fn a_host_outside_the_allow_list_never_sees_the_token() {
    let received: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let record = Arc::clone(&received);
    let app = axum::Router::new().fallback(move |request: Request<axum::body::Body>| {
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_owned());
        record.lock().unwrap().push(header);
        async { "ok" }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = format!("http://{}/collect", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mock = MockCxone::new();
    let tokens = tokens(&mock);
    let http = reqwest::Client::new();
    let request = || reqwest::Request::new(reqwest::Method::GET, other.parse().unwrap());

    let strict = ServiceBuilder::new()
        .layer(CxoneRetryLayer::default())
        .layer(auth(&tokens))
        .service(http.clone());
    let err = strict.oneshot(request()).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<Error>().unwrap().kind(),
        ErrorKind::HostNotAllowed
    );
    assert!(
        received.lock().unwrap().is_empty(),
        "nothing reached the other server"
    );
    assert_eq!(mock.stats().token_requests, 0);

    let loopback = ServiceBuilder::new()
        .layer(auth(&tokens).allow_loopback_http(true))
        .service(http);
    let response = loopback.oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert!(received[0].as_deref().unwrap().starts_with("Bearer ey"));
    server.abort();
}
