//! CxoneAuthLayer on its own: which requests get the token, what a 401 does,
//! and how it treats a buffered inner service.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cxone_auth::token::{StaticToken, from_fn};
use cxone_auth::{AccessToken, CxoneAuthLayer, Error, ErrorKind, TokenCache};
use http::header::{ACCEPT, AUTHORIZATION};
use http::{HeaderValue, Request, Response, StatusCode};
use tower::buffer::Buffer;
use tower::{BoxError, Layer as _, Service, ServiceBuilder, ServiceExt as _};

const API: &str = "https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents";

/// A token source that mints `token-1`, `token-2`, ... and counts its fetches.
fn counting_source(fetches: Arc<AtomicUsize>) -> TokenCache {
    TokenCache::new(from_fn(move || {
        let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            Ok(AccessToken::new(format!("token-{n}"))?.with_lifetime(Duration::from_secs(3600)))
        }
    }))
}

/// An inner service that records the Authorization header of each request and
/// answers with the status `respond` picks for it.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl Recorder {
    fn service<B>(
        &self,
        respond: fn(Option<&str>) -> StatusCode,
    ) -> impl Service<Request<B>, Response = Response<()>, Error = Infallible, Future: Send>
    + Clone
    + use<B> {
        let seen = Arc::clone(&self.seen);
        tower::service_fn(move |request: Request<B>| {
            let header = request
                .headers()
                .get(AUTHORIZATION)
                .map(|v| v.to_str().unwrap().to_owned());
            let status = respond(header.as_deref());
            seen.lock().unwrap().push(header);
            async move { Ok(Response::builder().status(status).body(()).unwrap()) }
        })
    }

    fn seen(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().clone()
    }
}

fn ok(_: Option<&str>) -> StatusCode {
    StatusCode::OK
}

fn get(uri: &str) -> Request<()> {
    Request::get(uri).body(()).unwrap()
}

/// Calls `authed`, readied beforehand, and while that call waits for its
/// token sends a request straight through `buffered`, asserting that it went
/// at once: the waiting call holds no slot of the buffer.
async fn call_holding_no_slot<A, B>(authed: &mut A, mut buffered: B)
where
    A: Service<Request<()>, Response = Response<()>, Error = BoxError>,
    A::Future: Send + 'static,
    B: Service<Request<()>, Error = BoxError>,
{
    let loading = tokio::spawn(authed.call(get(API)));
    tokio::task::yield_now().await;

    let start = tokio::time::Instant::now();
    buffered
        .ready()
        .await
        .unwrap()
        .call(get("https://api-na1.niceincontact.com/direct"))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO, "the buffer slot was free");

    let response = loading.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

fn kind(err: &BoxError) -> ErrorKind {
    err.downcast_ref::<Error>()
        .expect("a cxone_auth::Error")
        .kind()
}

#[tokio::test(start_paused = true)]
async fn attaches_a_sensitive_bearer_header_to_allowed_hosts() {
    let recorder = Recorder::default();
    let sensitive = Arc::new(Mutex::new(Vec::new()));
    let seen_sensitive = Arc::clone(&sensitive);
    let mut client = ServiceBuilder::new()
        .layer(CxoneAuthLayer::new(TokenCache::new(StaticToken::new(
            "abc",
        ))))
        .map_request(move |request: Request<()>| {
            let header = &request.headers()[AUTHORIZATION];
            seen_sensitive.lock().unwrap().push(header.is_sensitive());
            request
        })
        .service(recorder.service(ok));
    for uri in [
        API,
        "https://cxone.niceincontact.com/x",
        "https://na1.nice-incontact.com/y",
    ] {
        let response = client.ready().await.unwrap().call(get(uri)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(recorder.seen(), vec![Some("Bearer abc".to_owned()); 3]);
    assert_eq!(*sensitive.lock().unwrap(), vec![true; 3]);
}

#[tokio::test(start_paused = true)]
async fn refuses_hosts_and_schemes_that_may_not_get_the_token() {
    let recorder = Recorder::default();
    let fetches = Arc::new(AtomicUsize::new(0));
    let client = ServiceBuilder::new()
        .layer(CxoneAuthLayer::new(counting_source(Arc::clone(&fetches))))
        .service(recorder.service(ok));
    for uri in [
        "https://example.com/",
        "http://api-na1.niceincontact.com/agents",
        "https://niceincontact.com.evil.test/",
        "http://127.0.0.1:8080/",
        "/path/only",
    ] {
        let err = client.clone().oneshot(get(uri)).await.unwrap_err();
        assert_eq!(kind(&err), ErrorKind::HostNotAllowed, "{uri}");
        assert!(!err.to_string().contains("token-"), "{err}");
    }
    assert!(
        recorder.seen().is_empty(),
        "nothing reached the inner service"
    );
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        0,
        "no token was even fetched"
    );
}

#[tokio::test(start_paused = true)]
async fn added_hosts_loopback_and_path_only_requests_when_configured() {
    let recorder = Recorder::default();
    let layer = CxoneAuthLayer::new(TokenCache::new(StaticToken::new("abc")))
        .allow_host("*.example.com")
        .allow_loopback_http(true)
        .base_url("https://api-eu1.niceincontact.com".parse().unwrap());
    let client = ServiceBuilder::new()
        .layer(layer)
        .service(recorder.service(ok));
    for uri in [
        "https://reports.example.com/",
        "http://127.0.0.1:8080/",
        "http://localhost/",
        "/pkg.Service/Method",
    ] {
        client.clone().oneshot(get(uri)).await.unwrap();
    }
    assert_eq!(recorder.seen(), vec![Some("Bearer abc".to_owned()); 4]);

    let untrusted_base = CxoneAuthLayer::new(TokenCache::new(StaticToken::new("abc")))
        .base_url("https://example.com".parse().unwrap());
    let err = ServiceBuilder::new()
        .layer(untrusted_base)
        .service(recorder.service(ok))
        .oneshot(get("/pkg.Service/Method"))
        .await
        .unwrap_err();
    assert_eq!(kind(&err), ErrorKind::HostNotAllowed);
}

#[tokio::test(start_paused = true)]
async fn leaves_requests_that_carry_authorization_alone() {
    let recorder = Recorder::default();
    let fetches = Arc::new(AtomicUsize::new(0));
    let client = ServiceBuilder::new()
        .layer(CxoneAuthLayer::new(counting_source(Arc::clone(&fetches))))
        .service(recorder.service(|_| StatusCode::UNAUTHORIZED));
    // To a host that may not get the token, and to one that may: both are
    // sent as they are, and their 401s are not about the layer's token.
    for (uri, header) in [
        ("https://example.com/elsewhere", "Basic dXNlcjpwYXNz"),
        (
            "https://api-na1.niceincontact.com/x",
            "Bearer the-callers-own",
        ),
    ] {
        let mut request = get(uri);
        request
            .headers_mut()
            .insert(AUTHORIZATION, header.parse().unwrap());
        let response = client.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        recorder.seen(),
        vec![
            Some("Basic dXNlcjpwYXNz".to_owned()),
            Some("Bearer the-callers-own".to_owned())
        ]
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_401_invalidates_exactly_the_token_it_carried() {
    let recorder = Recorder::default();
    let fetches = Arc::new(AtomicUsize::new(0));
    let tokens = counting_source(Arc::clone(&fetches));
    // The server refuses token-1 only.
    let client = ServiceBuilder::new()
        .layer(CxoneAuthLayer::new(tokens.clone()))
        .service(recorder.service(|header| match header {
            Some("Bearer token-1") => StatusCode::UNAUTHORIZED,
            _ => StatusCode::OK,
        }));

    // A burst of requests all carrying token-1, all refused.
    let first = client.clone().oneshot(get(API)).await.unwrap();
    assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
    let burst: Vec<_> = (0..100).map(|_| client.clone().oneshot(get(API))).collect();
    let statuses: Vec<_> = futures::future::join_all(burst).await;
    let refused = statuses
        .iter()
        .filter(|r| r.as_ref().unwrap().status() == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(
        refused + 1,
        recorder
            .seen()
            .iter()
            .filter(|h| h.as_deref() == Some("Bearer token-1"))
            .count()
    );

    // However many 401s token-1 drew, it was replaced once.
    let response = client.clone().oneshot(get(API)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    assert_eq!(
        recorder.seen().last().unwrap().as_deref(),
        Some("Bearer token-2")
    );

    // A stale 401 for token-1 arriving late does not drop token-2.
    tokens.invalidate(&AccessToken::new("token-1").unwrap());
    client.clone().oneshot(get(API)).await.unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn grpc_unauthenticated_invalidates_too() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let client = ServiceBuilder::new()
        .layer(
            CxoneAuthLayer::new(counting_source(Arc::clone(&fetches)))
                .base_url("https://api-na1.niceincontact.com".parse().unwrap()),
        )
        .service_fn(move |_: Request<()>| {
            let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                let status = if first { "16" } else { "0" };
                Ok::<_, Infallible>(
                    Response::builder()
                        .header("grpc-status", status)
                        .body(())
                        .unwrap(),
                )
            }
        });
    client
        .clone()
        .oneshot(get("/cxone.Agents/List"))
        .await
        .unwrap();
    client
        .clone()
        .oneshot(get("/cxone.Agents/List"))
        .await
        .unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn token_errors_reach_the_caller_typed_and_nothing_is_sent() {
    let recorder = Recorder::default();
    let tokens = TokenCache::new(from_fn(|| async {
        Err::<AccessToken, _>(Error::new(ErrorKind::Config, "CXONE_CLIENT_ID is not set"))
    }));
    let err = ServiceBuilder::new()
        .layer(CxoneAuthLayer::new(tokens))
        .service(recorder.service(ok))
        .oneshot(get(API))
        .await
        .unwrap_err();
    assert_eq!(kind(&err), ErrorKind::Config);
    assert!(err.to_string().contains("CXONE_CLIENT_ID"));
    assert!(recorder.seen().is_empty());
}

/// With no token cached, a call must not hold a slot of a buffered inner
/// service while the token loads: a `Buffer` of bound 1 stays usable by
/// others, and nothing deadlocks.
#[tokio::test(start_paused = true)]
async fn no_buffer_slot_is_held_while_a_token_loads() {
    let recorder = Recorder::default();
    let buffered = Buffer::new(recorder.service::<()>(ok), 1);
    let tokens = TokenCache::new(from_fn(|| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(AccessToken::new("slow-token")?.with_lifetime(Duration::from_secs(3600)))
    }));
    let mut authed = ServiceBuilder::new()
        .layer(CxoneAuthLayer::new(tokens))
        .service(buffered.clone());

    // Readiness is granted at once, and the call starts loading the token;
    // meanwhile the one slot of the buffer is free for another caller.
    authed.ready().await.unwrap();
    call_holding_no_slot(&mut authed, buffered.clone()).await;
    assert_eq!(
        recorder.seen(),
        vec![None, Some("Bearer slow-token".to_owned())],
        "the direct call went first, then the authorized one"
    );

    // Many callers through a bound-1 buffer while the token is cached: all
    // complete (no slot leaked by readiness taken and not used).
    let calls: Vec<_> = (0..50).map(|_| authed.clone().oneshot(get(API))).collect();
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    assert_eq!(recorder.seen().len(), 52);
}

#[tokio::test(start_paused = true)]
async fn a_slot_reserved_before_the_token_went_is_released_while_it_loads() {
    let recorder = Recorder::default();
    let buffered = Buffer::new(recorder.service::<()>(ok), 1);
    let fetches = Arc::new(AtomicUsize::new(0));
    let tokens =
        TokenCache::new(from_fn({
            let fetches = Arc::clone(&fetches);
            move || {
                let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    if n > 1 {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                    Ok(AccessToken::new(format!("token-{n}"))?
                        .with_lifetime(Duration::from_secs(3600)))
                }
            }
        }));
    let mut authed = ServiceBuilder::new()
        .layer(CxoneAuthLayer::new(tokens.clone()))
        .service(buffered.clone());

    // With a token, readiness reserves the buffer's one slot for the call.
    authed.ready().await.unwrap().call(get(API)).await.unwrap();
    authed.ready().await.unwrap();
    // The token is revoked between readiness and the call.
    assert!(tokens.invalidate(&tokens.cached().unwrap()));
    // The call gives the slot back while the new token loads.
    call_holding_no_slot(&mut authed, buffered.clone()).await;
    assert_eq!(
        recorder.seen(),
        vec![
            Some("Bearer token-1".to_owned()),
            None,
            Some("Bearer token-2".to_owned())
        ]
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

/// A call may come long after its `poll_ready` (the retry layer keeps a
/// ready service through a cool-down; any caller may ready early). The token
/// sent is the one current at the call, never one read at `poll_ready` that
/// was invalidated or has expired since.
#[tokio::test(start_paused = true)]
async fn the_token_is_read_at_the_call_not_at_poll_ready() {
    let recorder = Recorder::default();
    let fetches = Arc::new(AtomicUsize::new(0));
    let tokens = counting_source(Arc::clone(&fetches));
    let token_1 = tokens.token().await.unwrap();
    let mut client = ServiceBuilder::new()
        .layer(CxoneAuthLayer::new(tokens.clone()))
        .service(recorder.service(ok));

    // Readied with token-1 cached; token-1 is refused elsewhere before the call.
    client.ready().await.unwrap();
    assert!(tokens.invalidate(&token_1));
    let response = client.call(get(API)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        recorder.seen(),
        vec![Some("Bearer token-2".to_owned())],
        "an invalidated token is not sent"
    );

    // Readied with token-2 cached, called after token-2 expired.
    client.ready().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    client.call(get(API)).await.unwrap();
    assert_eq!(
        recorder.seen().last().unwrap().as_deref(),
        Some("Bearer token-3"),
        "an expired token is not sent"
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 3);
}

/// The same through the whole stack: a request held by a 429 cool-down
/// leaves its client's auth service readied, and the client's next request
/// must not carry the token read back then, invalidated meanwhile.
#[tokio::test(start_paused = true)]
async fn after_a_cool_down_no_invalidated_token_is_sent() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let tokens = counting_source(Arc::clone(&fetches));
    let token_1 = tokens.token().await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    // The first call is rate limited; every other one succeeds.
    let api = tower::service_fn(move |request: Request<()>| {
        let mut log = log.lock().unwrap();
        log.push(
            request.headers()[AUTHORIZATION]
                .to_str()
                .unwrap()
                .to_owned(),
        );
        let status = if log.len() == 1 {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            StatusCode::OK
        };
        let response = Response::builder()
            .status(status)
            .header("retry-after", "1")
            .body(())
            .unwrap();
        async move { Ok::<_, Infallible>(response) }
    });
    let stack = ServiceBuilder::new()
        .layer(cxone_auth::CxoneRetryLayer::default())
        .layer(CxoneAuthLayer::new(tokens.clone()))
        .service(api);

    let limited = tokio::spawn(stack.clone().oneshot(get(API)));
    tokio::task::yield_now().await;
    // The host cools down: this request waits, its client stays readied.
    let mut client = stack.clone();
    let held = client.ready().await.unwrap().call(get(API));
    assert!(tokens.invalidate(&token_1));
    assert_eq!(held.await.unwrap().status(), StatusCode::OK);
    assert_eq!(limited.await.unwrap().unwrap().status(), StatusCode::OK);

    let response = client.ready().await.unwrap().call(get(API)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "Bearer token-1",
            "Bearer token-2",
            "Bearer token-2",
            "Bearer token-2"
        ],
        "token-1 is not sent once invalidated"
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[cfg(feature = "reqwest")]
#[tokio::test(start_paused = true)]
async fn reqwest_requests_are_authorized_too() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let client = ServiceBuilder::new()
        .layer(CxoneAuthLayer::new(TokenCache::new(StaticToken::new(
            "abc",
        ))))
        .service_fn(move |request: reqwest::Request| {
            record
                .lock()
                .unwrap()
                .push(request.headers().get(AUTHORIZATION).cloned());
            async move { Ok::<_, Infallible>(reqwest::Response::from(Response::new(""))) }
        });
    let request = reqwest::Request::new(reqwest::Method::GET, API.parse().unwrap());
    let response = client.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.lock().unwrap()[0].as_ref().unwrap(), "Bearer abc");

    let elsewhere = reqwest::Request::new(
        reqwest::Method::GET,
        "https://example.com/".parse().unwrap(),
    );
    let err = client.oneshot(elsewhere).await.unwrap_err();
    assert_eq!(kind(&err), ErrorKind::HostNotAllowed);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

/// A URI with an authority but no scheme (`CONNECT
/// host:port`, `evil.example:443`) is neither absolute nor path-only. With a
/// base URL set (the tonic configuration) it used to be judged by the base
/// URL's host, and went to its own authority with the token.
#[tokio::test(start_paused = true)]
async fn authority_form_requests_are_refused_even_with_a_base_url() {
    let recorder = Recorder::default();
    let fetches = Arc::new(AtomicUsize::new(0));
    let client = ServiceBuilder::new()
        .layer(
            CxoneAuthLayer::new(counting_source(Arc::clone(&fetches)))
                .base_url("https://api-na1.niceincontact.com".parse().unwrap()),
        )
        .service(recorder.service(ok));
    let connect = |authority: &str| {
        Request::builder()
            .method(http::Method::CONNECT)
            .uri(authority)
            .body(())
            .unwrap()
    };
    for request in [
        get("evil.example:443"),
        connect("127.0.0.1:4000"),
        connect("api-na1.niceincontact.com:443"),
    ] {
        let uri = request.uri().to_string();
        assert!(request.uri().scheme().is_none() && request.uri().host().is_some());
        let err = client.clone().oneshot(request).await.unwrap_err();
        assert_eq!(kind(&err), ErrorKind::HostNotAllowed, "{uri}");
    }
    assert!(recorder.seen().is_empty(), "nothing was sent");
    assert_eq!(fetches.load(Ordering::SeqCst), 0, "no token was fetched");

    // Path-only requests still go to the base URL with the token.
    client.oneshot(get("/pkg.Service/Method")).await.unwrap();
    assert_eq!(recorder.seen(), [Some("Bearer token-1".to_owned())]);
}

/// A host that answers 401 to every token. Through the
/// retry layer each such request used to invalidate two tokens: 20 requests
/// cost 40 token requests, without bound.
#[tokio::test(start_paused = true)]
async fn a_host_that_always_answers_401_costs_a_bounded_number_of_fetches() {
    let fetches = Arc::new(AtomicUsize::new(0));

    // A CXone host refusing every token (misconfigured, say): invalidations
    // back off, and the rest of CXone, which accepts the token, keeps working.
    let client = ServiceBuilder::new()
        .layer(cxone_auth::CxoneRetryLayer::default())
        .layer(CxoneAuthLayer::new(counting_source(Arc::clone(&fetches))))
        .service_fn(|request: Request<()>| async move {
            let status = match request.uri().host() {
                Some("refuses.niceincontact.com") => StatusCode::UNAUTHORIZED,
                _ => StatusCode::OK,
            };
            Ok::<_, Infallible>(Response::builder().status(status).body(()).unwrap())
        });
    let refusing = "https://refuses.niceincontact.com/refuses-all";
    for _ in 0..20 {
        let refused = client.clone().oneshot(get(refusing)).await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let cxone = client.clone().oneshot(get(API)).await.unwrap();
        assert_eq!(cxone.status(), StatusCode::OK);
    }
    assert!(
        fetches.load(Ordering::SeqCst) <= 2,
        "{fetches:?} fetches for 20 requests at once"
    );
    // Ten seconds of such requests: each invalidation in a row waits at
    // least half of 1 s, 2 s, 4 s, 8 s... since the last.
    let start = tokio::time::Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        client.clone().oneshot(get(refusing)).await.unwrap();
        let cxone = client.clone().oneshot(get(API)).await.unwrap();
        assert_eq!(cxone.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fetches = fetches.load(Ordering::SeqCst);
    assert!(fetches <= 6, "{fetches} fetches in 10 s of 401s");
}

/// A 401 from a partner host (added with `allow_host`),
/// which is not the token's audience, is returned as it is: no invalidation,
/// no replay, and CXone keeps the token it accepts.
#[tokio::test(start_paused = true)]
async fn a_partner_answering_401_costs_cxone_traffic_nothing() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    let client = ServiceBuilder::new()
        .layer(cxone_auth::CxoneRetryLayer::default())
        .layer(
            CxoneAuthLayer::new(counting_source(Arc::clone(&fetches)))
                .allow_host("partner.example"),
        )
        .service_fn(move |request: Request<()>| {
            let host = request.uri().host().unwrap().to_owned();
            let header = request.headers()[AUTHORIZATION]
                .to_str()
                .unwrap()
                .to_owned();
            recorded.lock().unwrap().push((host.clone(), header));
            let status = match host.as_str() {
                "partner.example" => StatusCode::UNAUTHORIZED,
                _ => StatusCode::OK,
            };
            async move { Ok::<_, Infallible>(Response::builder().status(status).body(()).unwrap()) }
        });
    for _ in 0..20 {
        let refused = client
            .clone()
            .oneshot(get("https://partner.example/x"))
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let cxone = client.clone().oneshot(get(API)).await.unwrap();
        assert_eq!(cxone.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "no fetch beyond the first"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 40, "each request sent once: no replay");
    assert!(
        seen.iter().all(|(_, header)| header == "Bearer token-1"),
        "{seen:?}"
    );

    // A gateway in front of CXone, named as the base URL too, is the
    // audience: its 401 costs the token.
    let gateway = ServiceBuilder::new()
        .layer(
            CxoneAuthLayer::new(counting_source(Arc::clone(&fetches)))
                .allow_host("gw.example")
                .base_url("https://gw.example".parse().unwrap()),
        )
        .service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::builder().status(401).body(()).unwrap())
        });
    gateway
        .clone()
        .oneshot(get("https://gw.example/x"))
        .await
        .unwrap();
    gateway.oneshot(get("/y")).await.unwrap();
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        3,
        "the gateway's first 401 invalidated the token"
    );
}

/// CXone's REST API needs `Accept: application/json`; the
/// layer adds it where none is set, never changes one, and can be told not to.
#[tokio::test(start_paused = true)]
async fn requests_without_accept_get_json() {
    let accept_of = |layer: CxoneAuthLayer, accept: Option<&'static str>| async move {
        let service = tower::service_fn(|request: Request<()>| async move {
            let accept = request
                .headers()
                .get(ACCEPT)
                .map(|v| v.to_str().unwrap().to_owned());
            Ok::<_, Infallible>(Response::new(accept))
        });
        let mut request = get(API);
        if let Some(accept) = accept {
            request
                .headers_mut()
                .insert(ACCEPT, HeaderValue::from_static(accept));
        }
        let response = layer.layer(service).oneshot(request).await.unwrap();
        response.into_body()
    };
    let tokens = TokenCache::new(StaticToken::new("t"));
    let layer = CxoneAuthLayer::new(tokens);
    let json = Some("application/json".to_owned());
    assert_eq!(accept_of(layer.clone(), None).await, json);
    // Twice: once while the token loads, once with it cached.
    assert_eq!(accept_of(layer.clone(), None).await, json);
    let own = accept_of(layer.clone(), Some("text/csv")).await;
    assert_eq!(own.as_deref(), Some("text/csv"));
    assert_eq!(accept_of(layer.accept_json(false), None).await, None);
}

/// The same end to end: a bare request through the layer gets JSON from the
/// mock, which answers CXone's text without it.
#[tokio::test(start_paused = true)]
async fn the_mock_api_answers_json_through_the_layer() {
    use cxone_auth::mock::MockCxone;
    use http_body_util::BodyExt as _;

    let mock = MockCxone::new();
    let tokens = TokenCache::new(StaticToken::new(mock.issue_token()));
    let uri = format!(
        "{}/inContactAPI/services/v34.0/server-time",
        mock.api_endpoint()
    );
    let read = |layer: CxoneAuthLayer| {
        let request = Request::get(&uri).body(axum::body::Body::empty()).unwrap();
        let call = layer
            .allow_host("*.mock.invalid")
            .layer(mock.router())
            .oneshot(request);
        async move {
            let body = call.await.unwrap().into_body().collect().await.unwrap();
            String::from_utf8(body.to_bytes().to_vec()).unwrap()
        }
    };
    let layer = CxoneAuthLayer::new(tokens);
    assert!(read(layer.clone()).await.starts_with(r#"{"ServerTime":""#));
    assert_eq!(
        read(layer.accept_json(false)).await,
        "No known way to render data"
    );
}
