//! `CxoneAuthMiddleware` in `reqwest-middleware` chains.
//!
//! The chains end in an in-memory middleware that hands each request to the
//! mock CXone's router instead of the network, so time can be paused; the
//! `reqwest::Client` at the end of the chain is never reached.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cxone_auth::middleware::CxoneAuthMiddleware;
use cxone_auth::mock::MockCxone;
use cxone_auth::retry::CxoneRetryLayer;
use cxone_auth::{CxoneAuthLayer, ErrorKind, TokenCache};
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Extensions, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt as _, StreamBody};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_tracing::TracingMiddleware;
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt as _};

const AGENTS: &str = "/inContactAPI/services/v34.0/agents";

/// One request as the in-memory server received it.
#[derive(Debug, Clone)]
struct Seen {
    uri: String,
    authorization: Option<String>,
}

/// The end of the chain: the mock CXone's router, in memory.
#[derive(Clone)]
struct InMemory {
    cxone: MockCxone,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl InMemory {
    fn new(cxone: &MockCxone) -> Self {
        Self {
            cxone: cxone.clone(),
            seen: Arc::default(),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Middleware for InMemory {
    async fn handle(
        &self,
        request: reqwest::Request,
        _extensions: &mut Extensions,
        _next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        self.seen.lock().unwrap().push(Seen {
            uri: request.url().to_string(),
            authorization: request
                .headers()
                .get(AUTHORIZATION)
                .map(|v| v.to_str().unwrap().to_owned()),
        });
        let request = http::Request::try_from(request)?;
        let response = self.cxone.router().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Ok(http::Response::from_parts(parts, body).into())
    }
}

fn tokens(cxone: &MockCxone) -> TokenCache {
    TokenCache::new(crate::support::mock_grant(cxone))
}

fn middleware(cxone: &MockCxone) -> CxoneAuthMiddleware {
    CxoneAuthMiddleware::new(tokens(cxone))
}

fn client(middleware: CxoneAuthMiddleware, server: &InMemory) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(middleware)
        .with(server.clone())
        .build()
}

/// The agents read on a CXone host, which the mock in memory answers (no
/// DNS): a 401 from it costs the token, as CXone's do.
fn agents() -> String {
    format!("https://api-na1.niceincontact.com{AGENTS}")
}

fn kind(err: reqwest_middleware::Error) -> ErrorKind {
    match err {
        reqwest_middleware::Error::Middleware(err) => err
            .downcast_ref::<cxone_auth::Error>()
            .expect("a cxone_auth::Error")
            .kind(),
        other => panic!("not a middleware error: {other:?}"),
    }
}

/// A body that can be read once only.
fn streaming_body() -> reqwest::Body {
    let chunks = futures::stream::iter(
        ["{\"a\":", "1}"].map(|chunk| Ok::<_, std::io::Error>(Frame::data(Bytes::from(chunk)))),
    );
    reqwest::Body::wrap(StreamBody::new(chunks))
}

#[tokio::test(start_paused = true)]
async fn concurrent_requests_share_one_token() {
    let cxone = MockCxone::new();
    let server = InMemory::new(&cxone);
    let auth = middleware(&cxone);
    let client = client(auth.clone(), &server);

    let calls: Vec<_> = (0..100).map(|_| client.get(agents()).send()).collect();
    for response in futures::future::join_all(calls).await {
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(cxone.stats().token_requests, 1);
    assert_eq!(cxone.stats().api_ok, 100);
    let seen = server.seen();
    assert_eq!(seen.len(), 100);
    assert!(seen.iter().all(|s| s.uri == agents()));
    assert!(
        seen.iter()
            .all(|s| s.authorization == seen[0].authorization)
    );
    assert!(
        seen[0]
            .authorization
            .as_deref()
            .unwrap()
            .starts_with("Bearer ")
    );

    let token = auth.tokens().unwrap().cached().unwrap();
    assert!(!format!("{auth:?}").contains(token.secret()));
}

#[tokio::test(start_paused = true)]
async fn a_revoked_token_is_refreshed_once_and_the_request_replayed() {
    let cxone = MockCxone::new();
    let server = InMemory::new(&cxone);
    let client = client(middleware(&cxone), &server);

    assert_eq!(
        client.get(agents()).send().await.unwrap().status(),
        StatusCode::OK
    );
    cxone.revoke_all();
    let response = client.get(agents()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let stats = cxone.stats();
    assert_eq!(stats.token_succeeded, 2);
    assert_eq!(stats.api_unauthorized, 1);
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[0].authorization, seen[1].authorization,
        "the refused token"
    );
    assert_ne!(
        seen[1].authorization, seen[2].authorization,
        "the replay has a new one"
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_is_waited_out_as_retry_after_says() {
    let cxone = MockCxone::new();
    let server = InMemory::new(&cxone);
    let client = client(middleware(&cxone), &server);
    cxone.rate_limit_next_api_calls(1, Duration::from_secs(3));

    let start = Instant::now();
    let response = client.get(agents()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(cxone.stats().api_calls, 2);
}

#[tokio::test(start_paused = true)]
async fn other_hosts_are_refused_typed_and_nothing_is_sent() {
    let cxone = MockCxone::new();
    let server = InMemory::new(&cxone);
    let client = client(CxoneAuthMiddleware::new(tokens(&cxone)), &server);

    for url in [
        format!("{}{AGENTS}", cxone.api_endpoint()), // the mock's own host is not allowed
        "https://example.com/".to_owned(),
        "http://api-na1.niceincontact.com/".to_owned(),
    ] {
        let err = client.get(&url).send().await.unwrap_err();
        assert_eq!(kind(err), ErrorKind::HostNotAllowed, "{url}");
    }
    assert!(server.seen().is_empty());
    assert_eq!(cxone.stats().token_requests, 0);

    // A request that carries its own Authorization is the caller's business.
    let response = client
        .get("https://example.com/")
        .header(AUTHORIZATION, "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        server.seen()[0].authorization.as_deref(),
        Some("Basic dXNlcjpwYXNz")
    );
}

#[tokio::test(start_paused = true)]
async fn a_streaming_body_is_sent_once_and_its_401_returned_as_it_is() {
    let cxone = MockCxone::new();
    let server = InMemory::new(&cxone);
    let client = client(middleware(&cxone), &server);
    assert_eq!(
        client.get(agents()).send().await.unwrap().status(),
        StatusCode::OK
    );
    cxone.revoke_all();

    let response = client
        .get(agents())
        .body(streaming_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[WWW_AUTHENTICATE],
        "Bearer",
        "the server's own answer"
    );
    assert_eq!(server.seen().len(), 2, "not replayed");

    // The refused token was invalidated all the same: the next request
    // carries a new one.
    let next = client.get(agents()).send().await.unwrap();
    assert_eq!(next.status(), StatusCode::OK);
    assert_eq!(cxone.stats().token_succeeded, 2);
    let seen = server.seen();
    assert_ne!(seen[1].authorization, seen[2].authorization);
}

#[tokio::test(start_paused = true)]
async fn a_streaming_body_gets_its_429_at_once_and_still_cools_the_host_down() {
    let cxone = MockCxone::new();
    let server = InMemory::new(&cxone);
    let client = client(middleware(&cxone), &server);
    cxone.rate_limit_next_api_calls(1, Duration::from_secs(5));

    let start = Instant::now();
    let response = client
        .get(agents())
        .body(streaming_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(start.elapsed(), Duration::ZERO, "returned without waiting");
    assert_eq!(server.seen().len(), 1);

    let response = client.get(agents()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(5),
        "the host cooled down"
    );
}

#[tokio::test(start_paused = true)]
async fn middleware_and_tower_stack_share_cool_downs_when_built_from_the_same_layers() {
    let cxone = MockCxone::new();
    let server = InMemory::new(&cxone);
    let auth = CxoneAuthLayer::new(tokens(&cxone));
    let retry = CxoneRetryLayer::builder().max_attempts(1).build();
    let reqwest_client = client(
        CxoneAuthMiddleware::from_layers(auth.clone(), retry.clone()),
        &server,
    );
    let tower_client = ServiceBuilder::new()
        .layer(retry)
        .layer(auth)
        .service(cxone.router());
    cxone.rate_limit_next_api_calls(1, Duration::from_secs(4));

    let start = Instant::now();
    let limited = reqwest_client.get(agents()).send().await.unwrap();
    assert_eq!(
        limited.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "no retries configured"
    );

    let request = http::Request::get(agents()).body(String::new()).unwrap();
    let response = tower_client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(4),
        "the tower client waited too"
    );
    assert_eq!(cxone.stats().token_requests, 1, "and used the same token");
}

#[tokio::test(start_paused = true)]
async fn works_inside_reqwest_retry_and_reqwest_tracing() {
    let cxone = MockCxone::new();
    let server = InMemory::new(&cxone);
    let policy = ExponentialBackoff::builder().build_with_max_retries(3);
    let auth = middleware(&cxone).retry(CxoneRetryLayer::builder().max_attempts(1).build());
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(TracingMiddleware::default())
        .with(RetryTransientMiddleware::new_with_policy(policy))
        .with(auth)
        .with(server.clone())
        .build();

    // A revoked token: reqwest-retry leaves the 401 alone, the middleware
    // replays it with a fresh token.
    assert_eq!(
        client.get(agents()).send().await.unwrap().status(),
        StatusCode::OK
    );
    cxone.revoke_all();
    assert_eq!(
        client.get(agents()).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(cxone.stats().token_succeeded, 2);
    assert_eq!(server.seen().len(), 3);

    // A 429 the middleware does not retry (one attempt): reqwest-retry
    // retries it, and its retry waits here for the host's cool-down, which
    // reqwest-retry alone would not know about.
    cxone.rate_limit_next_api_calls(1, Duration::from_secs(20));
    let start = Instant::now();
    let response = client.get(agents()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        start.elapsed() >= Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.seen().len(), 5);
}

/// Inserts a marker before the call and records what the inner middlewares
/// left after it.
struct Outer(Arc<Mutex<Option<&'static str>>>);

#[derive(Clone)]
struct Marker(&'static str);

#[async_trait::async_trait]
impl Middleware for Outer {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        extensions.insert(Marker("outer"));
        let response = next.run(request, extensions).await;
        *self.0.lock().unwrap() = extensions.get::<Marker>().map(|m| m.0);
        response
    }
}

/// Reads the marker, and replaces it with its own.
struct Inner(Arc<Mutex<Vec<&'static str>>>);

#[async_trait::async_trait]
impl Middleware for Inner {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let marker = extensions.get::<Marker>().map_or("none", |m| m.0);
        self.0.lock().unwrap().push(marker);
        extensions.insert(Marker("inner"));
        next.run(request, extensions).await
    }
}

#[tokio::test(start_paused = true)]
async fn extensions_pass_through_and_replays_see_the_last_attempts() {
    let cxone = MockCxone::new();
    let server = InMemory::new(&cxone);
    let after = Arc::new(Mutex::new(None));
    let inside = Arc::new(Mutex::new(Vec::new()));
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(Outer(Arc::clone(&after)))
        .with(middleware(&cxone))
        .with(Inner(Arc::clone(&inside)))
        .with(server.clone())
        .build();
    cxone.rate_limit_next_api_calls(1, Duration::from_secs(1));

    let response = client.get(agents()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        *inside.lock().unwrap(),
        ["outer", "inner"],
        "the replay saw the first attempt's"
    );
    assert_eq!(
        *after.lock().unwrap(),
        Some("inner"),
        "the caller sees what the chain left"
    );
}
