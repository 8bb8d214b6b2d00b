//! Tenant routing: path-only requests go to the tenant's `api_endpoint`,
//! found once per tenant by discovery from the token's `tenantId`.
//!
//! Everything runs in memory against the mock CXone (its router is both the
//! token endpoint, the discovery endpoint and the API), with paused time.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use cxone_auth::mock::{IN_MEMORY_BASE_URL, MockCxone};
use cxone_auth::retry::CxoneRetryLayer;
use cxone_auth::token::{ServiceTransport, StaticToken, TenantDiscovery};
use cxone_auth::{CxoneAuthLayer, Error, ErrorKind, HostFamily, TenantRoutingLayer, TokenCache};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::layer::util::Stack;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt as _};

const AGENTS: &str = "/inContactAPI/services/v34.0/agents";

/// The mock's router, counting the tenant discoveries it answers.
fn counting_discovery(cxone: &MockCxone) -> (TenantDiscovery, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let router = cxone.router();
    let service = tower::service_fn(move |request: Request<Full<Bytes>>| {
        if request.uri().path() == "/.well-known/cxone-configuration" {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        router.clone().oneshot(request)
    });
    let discovery = TenantDiscovery::from_url(cxone.base_url())
        .unwrap()
        .transport(ServiceTransport::new(service));
    (discovery, count)
}

fn tokens(cxone: &MockCxone) -> TokenCache {
    TokenCache::new(crate::support::mock_grant(cxone))
}

/// The mock's router as the API client, recording every URI it is sent.
#[derive(Clone, Default)]
struct Sent(Arc<Mutex<Vec<String>>>);

impl Sent {
    fn api(
        &self,
        cxone: &MockCxone,
    ) -> impl Service<
        Request<String>,
        Response = Response<Body>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static {
        let log = Arc::clone(&self.0);
        let router = cxone.router();
        tower::service_fn(move |request: Request<String>| {
            log.lock().unwrap().push(request.uri().to_string());
            router.clone().oneshot(request)
        })
    }

    fn uris(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

fn get(uri: &str) -> Request<String> {
    Request::get(uri).body(String::new()).unwrap()
}

fn kind(err: &BoxError) -> ErrorKind {
    err.downcast_ref::<Error>()
        .unwrap_or_else(|| panic!("not a cxone_auth::Error: {err:?}"))
        .kind()
}

/// Tenant routing stacked outside the auth layer it was made from.
fn routed(
    auth: CxoneAuthLayer,
    discovery: TenantDiscovery,
) -> Stack<CxoneAuthLayer, TenantRoutingLayer> {
    let routing = TenantRoutingLayer::new(&auth, discovery);
    Stack::new(auth, routing)
}

#[tokio::test(start_paused = true)]
async fn path_only_requests_go_to_the_discovered_api_endpoint_discovered_once() {
    let cxone = MockCxone::builder()
        .api_endpoint("https://api-na1.niceincontact.com")
        .build();
    let (discovery, discoveries) = counting_discovery(&cxone);
    let sent = Sent::default();
    let client = ServiceBuilder::new()
        .layer(routed(CxoneAuthLayer::new(tokens(&cxone)), discovery))
        .service(sent.api(&cxone));

    // A cold start: many routed requests at once share one token request and
    // one discovery.
    let calls: Vec<_> = (0..50)
        .map(|i| {
            client
                .clone()
                .oneshot(get(&format!("{AGENTS}?top={}", i + 1)))
        })
        .collect();
    for response in futures::future::join_all(calls).await {
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    }
    // Later requests on the cached token and route.
    for _ in 0..10 {
        let response = client.clone().oneshot(get(AGENTS)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    assert_eq!(discoveries.load(Ordering::SeqCst), 1);
    assert_eq!(cxone.stats().token_requests, 1);
    assert_eq!(cxone.stats().api_ok, 60);
    let uris = sent.uris();
    assert_eq!(uris.len(), 60);
    assert!(
        uris.iter().all(|uri| uri
            .starts_with("https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents")),
        "{uris:?}"
    );
    assert!(uris.contains(&format!("https://api-na1.niceincontact.com{AGENTS}?top=50")));
}

#[tokio::test(start_paused = true)]
async fn the_discovered_host_joins_the_allowed_hosts() {
    // The mock's own in-memory host is no CXone domain: only discovery can
    // allow it.
    let cxone = MockCxone::new();
    assert_eq!(cxone.api_endpoint(), IN_MEMORY_BASE_URL);
    let (discovery, _) = counting_discovery(&cxone);
    let sent = Sent::default();
    let client = ServiceBuilder::new()
        .layer(routed(CxoneAuthLayer::new(tokens(&cxone)), discovery))
        .service(sent.api(&cxone));
    let absolute = format!("{IN_MEMORY_BASE_URL}{AGENTS}");

    let err = client.clone().oneshot(get(&absolute)).await.unwrap_err();
    assert_eq!(
        kind(&err),
        ErrorKind::HostNotAllowed,
        "not before discovery"
    );

    let routed = client.clone().oneshot(get(AGENTS)).await.unwrap();
    assert_eq!(routed.status(), StatusCode::OK);
    let direct = client.clone().oneshot(get(&absolute)).await.unwrap();
    assert_eq!(direct.status(), StatusCode::OK);
    assert_eq!(sent.uris(), [absolute.clone(), absolute]);

    // Other hosts are still refused.
    let err = client
        .clone()
        .oneshot(get("https://elsewhere.example.com/x"))
        .await
        .unwrap_err();
    assert_eq!(kind(&err), ErrorKind::HostNotAllowed);
    let err = client
        .oneshot(get("http://cxone.mock.invalid/x"))
        .await
        .unwrap_err();
    assert_eq!(
        kind(&err),
        ErrorKind::HostNotAllowed,
        "only the discovered scheme"
    );
}

#[tokio::test(start_paused = true)]
async fn a_malformed_api_endpoint_is_a_typed_error_and_nothing_is_sent() {
    for api_endpoint in [
        "not a url",
        "ftp://api.example.com",
        "http://api.example.com",
        "https://user:secret@api.example.com",
        "https://api.example.com/?tenant=1",
        "https://api.example.com/#fragment",
    ] {
        let cxone = MockCxone::builder().api_endpoint(api_endpoint).build();
        let (discovery, discoveries) = counting_discovery(&cxone);
        let sent = Sent::default();
        let client = ServiceBuilder::new()
            .layer(routed(CxoneAuthLayer::new(tokens(&cxone)), discovery))
            .service(sent.api(&cxone));

        let err = client.clone().oneshot(get(AGENTS)).await.unwrap_err();
        assert_eq!(kind(&err), ErrorKind::Discovery, "{api_endpoint}: {err}");
        assert!(
            err.to_string().contains("api_endpoint"),
            "{api_endpoint}: {err}"
        );
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(sent.uris().is_empty(), "{api_endpoint}: nothing was sent");
        assert_eq!(cxone.stats().api_calls, 0);
        assert_eq!(discoveries.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_discovery_is_held_for_the_backoff_then_tried_again() {
    let cxone = MockCxone::builder().api_endpoint("ftp://broken").build();
    let (discovery, discoveries) = counting_discovery(&cxone);
    let sent = Sent::default();
    let client = ServiceBuilder::new()
        .layer(routed(CxoneAuthLayer::new(tokens(&cxone)), discovery))
        .service(sent.api(&cxone));

    let burst: Vec<_> = (0..20)
        .map(|_| client.clone().oneshot(get(AGENTS)))
        .collect();
    for result in futures::future::join_all(burst).await {
        assert_eq!(kind(&result.unwrap_err()), ErrorKind::Discovery);
    }
    assert_eq!(
        discoveries.load(Ordering::SeqCst),
        1,
        "one discovery for the burst"
    );

    tokio::time::advance(Duration::from_secs(5) - Duration::from_millis(1)).await;
    let err = client.clone().oneshot(get(AGENTS)).await.unwrap_err();
    assert_eq!(kind(&err), ErrorKind::Discovery);
    assert_eq!(
        discoveries.load(Ordering::SeqCst),
        1,
        "held until the backoff ends"
    );

    tokio::time::advance(Duration::from_millis(1)).await;
    let err = client.oneshot(get(AGENTS)).await.unwrap_err();
    assert_eq!(kind(&err), ErrorKind::Discovery);
    assert_eq!(
        discoveries.load(Ordering::SeqCst),
        2,
        "tried again after it"
    );
    assert!(sent.uris().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_token_without_a_tenant_cannot_be_routed() {
    let cxone = MockCxone::new();
    let (discovery, discoveries) = counting_discovery(&cxone);
    let sent = Sent::default();
    let layer = routed(
        CxoneAuthLayer::new(TokenCache::new(StaticToken::new("opaque-token"))),
        discovery,
    );
    let client = ServiceBuilder::new().layer(layer).service(sent.api(&cxone));

    let err = client.oneshot(get(AGENTS)).await.unwrap_err();
    assert_eq!(kind(&err), ErrorKind::Discovery);
    assert!(err.to_string().contains("tenantId"), "{err}");
    assert!(!err.to_string().contains("opaque-token"), "{err}");
    assert_eq!(discoveries.load(Ordering::SeqCst), 0);
    assert!(sent.uris().is_empty());
}

#[tokio::test(start_paused = true)]
async fn routed_requests_are_replayed_by_the_retry_layer_and_routed_again() {
    let cxone = MockCxone::new();
    let (discovery, discoveries) = counting_discovery(&cxone);
    let sent = Sent::default();
    let tokens = tokens(&cxone);
    let client = ServiceBuilder::new()
        .layer(CxoneRetryLayer::default())
        .layer(routed(CxoneAuthLayer::new(tokens.clone()), discovery))
        .service(sent.api(&cxone));

    let first = client.clone().oneshot(get(AGENTS)).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);

    // A revoked token: 401, one refresh, the replay routed again.
    cxone.revoke_all();
    let replayed = client.clone().oneshot(get(AGENTS)).await.unwrap();
    assert_eq!(replayed.status(), StatusCode::OK);
    assert_eq!(cxone.stats().token_succeeded, 2);
    assert_eq!(cxone.stats().api_unauthorized, 1);

    // A 429: waited out, and the replay routed again.
    cxone.rate_limit_next_api_calls(1, Duration::from_secs(3));
    let start = tokio::time::Instant::now();
    let waited = client.oneshot(get(AGENTS)).await.unwrap();
    assert_eq!(waited.status(), StatusCode::OK);
    assert_eq!(start.elapsed(), Duration::from_secs(3));

    let expected = format!("{IN_MEMORY_BASE_URL}{AGENTS}");
    assert_eq!(sent.uris(), vec![expected; 5]);
    assert_eq!(
        discoveries.load(Ordering::SeqCst),
        1,
        "the new token's tenant is known"
    );
}

#[tokio::test(start_paused = true)]
async fn absolute_requests_are_not_rewritten() {
    let cxone = MockCxone::builder()
        .api_endpoint("https://api-na1.niceincontact.com")
        .build();
    let (discovery, discoveries) = counting_discovery(&cxone);
    let sent = Sent::default();
    let client = ServiceBuilder::new()
        .layer(routed(CxoneAuthLayer::new(tokens(&cxone)), discovery))
        .service(sent.api(&cxone));
    let uri = format!("https://api-eu1.niceincontact.com{AGENTS}");
    let response = client.oneshot(get(&uri)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sent.uris(), [uri]);
    assert_eq!(discoveries.load(Ordering::SeqCst), 0, "no discovery needed");
}

#[tokio::test(start_paused = true)]
async fn no_buffer_slot_is_held_while_the_tenant_is_discovered() {
    let cxone = MockCxone::new();
    // A discovery that takes 5 s.
    let router = cxone.router();
    let slow = tower::service_fn(move |request: Request<Full<Bytes>>| {
        let router = router.clone();
        async move {
            if request.uri().path() == "/.well-known/cxone-configuration" {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            router.oneshot(request).await
        }
    });
    let discovery = TenantDiscovery::from_url(cxone.base_url())
        .unwrap()
        .transport(ServiceTransport::new(slow));
    let tokens = tokens(&cxone);
    tokens.token().await.unwrap();
    let sent = Sent::default();
    let buffered = tower::buffer::Buffer::new(sent.api(&cxone), 1);
    let mut client = ServiceBuilder::new()
        .layer(routed(CxoneAuthLayer::new(tokens), discovery))
        .service(buffered.clone());

    // With a cached token, readiness reserves the buffer's one slot; the
    // routed call then waits for discovery without it.
    client.ready().await.unwrap();
    let routed = tokio::spawn(client.call(get(AGENTS)));
    tokio::task::yield_now().await;

    let start = tokio::time::Instant::now();
    let mut direct = buffered.clone();
    let response = direct
        .ready()
        .await
        .unwrap()
        .call(get(&format!(
            "{IN_MEMORY_BASE_URL}/inContactAPI/services/v34.0/server-time"
        )))
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "sent without a token"
    );
    assert_eq!(start.elapsed(), Duration::ZERO, "the buffer slot was free");

    let response = routed.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(sent.uris().len(), 2);
}

/// A discovered `api_endpoint` obeys the rules configured
/// hosts obey (no plain http to loopback unless that is on), and allows its
/// origin (scheme, host, port), not every port of its host.
#[tokio::test(start_paused = true)]
async fn discovered_hosts_obey_the_scheme_rules_and_allow_one_origin() {
    let cxone = MockCxone::builder()
        .api_endpoint("http://127.0.0.1:4000")
        .build();
    let (discovery, _) = counting_discovery(&cxone);
    let sent = Sent::default();
    let client = ServiceBuilder::new()
        .layer(routed(CxoneAuthLayer::new(tokens(&cxone)), discovery))
        .service(sent.api(&cxone));
    let err = client.clone().oneshot(get(AGENTS)).await.unwrap_err();
    assert_eq!(kind(&err), ErrorKind::Discovery, "{err}");
    let err = client
        .oneshot(get("http://127.0.0.1:4000/x"))
        .await
        .unwrap_err();
    assert_eq!(kind(&err), ErrorKind::HostNotAllowed);
    assert!(sent.uris().is_empty(), "nothing was sent");

    let cxone = MockCxone::builder()
        .api_endpoint("https://api.tenant.example:8443")
        .build();
    let (discovery, _) = counting_discovery(&cxone);
    let sent = Sent::default();
    let client = ServiceBuilder::new()
        .layer(routed(CxoneAuthLayer::new(tokens(&cxone)), discovery))
        .service(sent.api(&cxone));
    let routed = client.clone().oneshot(get(AGENTS)).await.unwrap();
    assert_eq!(routed.status(), StatusCode::OK);
    let same_origin = "https://api.tenant.example:8443/x";
    client.clone().oneshot(get(same_origin)).await.unwrap();
    for other_port in [
        "https://api.tenant.example/x",
        "https://api.tenant.example:9443/x",
    ] {
        let err = client.clone().oneshot(get(other_port)).await.unwrap_err();
        assert_eq!(kind(&err), ErrorKind::HostNotAllowed, "{other_port}");
    }
    assert_eq!(
        sent.uris(),
        [
            format!("https://api.tenant.example:8443{AGENTS}"),
            same_origin.to_owned()
        ]
    );
}

/// An API client that answers with the URI it was sent to and the
/// `Authorization` it carried, space-separated.
fn echo_auth()
-> impl Service<Request<String>, Response = Response<String>, Error = Infallible, Future: Send + 'static>
+ Clone
+ Send
+ 'static {
    tower::service_fn(|request: Request<String>| async move {
        let auth = (request.headers().get(http::header::AUTHORIZATION))
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        Ok::<_, Infallible>(Response::new(format!("{} {auth}", request.uri())))
    })
}

/// Sends `uri` through `client`, returns where it went; asserts it carried
/// the token.
async fn sent_with_token<S>(client: &S, uri: &str) -> String
where
    S: Service<Request<String>, Response = Response<String>, Error = BoxError> + Clone,
{
    let response = client.clone().oneshot(get(uri)).await.unwrap();
    let (to, auth) = response.body().split_once(' ').unwrap();
    assert!(
        auth.strip_prefix("Bearer ").is_some_and(|t| !t.is_empty()),
        "{uri}: {auth:?}"
    );
    to.to_owned()
}

/// A `/dfo/` prefix goes to Digital, other paths to the
/// facade, and the area and websocket hosts derived from the mock's document
/// (`na1`, `nice-incontact.com`, `niceincontact.com`) may receive the token.
#[tokio::test(start_paused = true)]
async fn a_prefix_goes_to_the_digital_host_and_every_tenant_host_is_allowed() {
    let cxone = MockCxone::builder()
        .api_endpoint("https://api-na1.niceincontact.com")
        .build();
    let (discovery, _) = counting_discovery(&cxone);
    let auth = CxoneAuthLayer::new(tokens(&cxone));
    let routing =
        TenantRoutingLayer::new(&auth, discovery).route_prefix("/dfo/", HostFamily::Digital);
    let client = ServiceBuilder::new()
        .layer(routing)
        .layer(auth)
        .service(echo_auth());

    // wss is no configured scheme: only discovery allows the websocket host.
    let websocket = "wss://websocket-na1.niceincontact.com/";
    let err = client.clone().oneshot(get(websocket)).await.unwrap_err();
    assert_eq!(
        kind(&err),
        ErrorKind::HostNotAllowed,
        "not before discovery"
    );

    let digital = "/dfo/3.0/contacts?status=new";
    assert_eq!(
        sent_with_token(&client, digital).await,
        format!("https://api-de-na1.niceincontact.com{digital}")
    );
    assert_eq!(
        sent_with_token(&client, AGENTS).await,
        format!("https://api-na1.niceincontact.com{AGENTS}")
    );
    assert_eq!(
        sent_with_token(&client, "/dfo").await,
        "https://api-na1.niceincontact.com/dfo",
        "the prefix is compared exactly"
    );
    assert_eq!(sent_with_token(&client, websocket).await, websocket);
    let area = "https://na1.nice-incontact.com/user-management/v1/users";
    assert_eq!(sent_with_token(&client, area).await, area);
}

/// Discovery answering every request with `document`.
fn answering(document: serde_json::Value) -> TenantDiscovery {
    let service = tower::service_fn(move |_: Request<Full<Bytes>>| {
        let body = Full::new(Bytes::from(document.to_string()));
        async move { Ok::<_, Infallible>(Response::new(body)) }
    });
    TenantDiscovery::from_url(IN_MEMORY_BASE_URL)
        .unwrap()
        .transport(ServiceTransport::new(service))
}

/// Hosts outside CXone's domains are allowed once their tenant names them,
/// the websocket one only over wss.
#[tokio::test(start_paused = true)]
async fn derived_hosts_outside_cxone_domains_join_the_allowed_hosts() {
    let cxone = MockCxone::new();
    let discovery = answering(serde_json::json!({
        "api_endpoint": "https://api-eu9.cx.example", "area": "eu9",
        "domain": "cx.example", "uhDomain": "uh.example",
    }));
    let auth = CxoneAuthLayer::new(tokens(&cxone));
    let client = ServiceBuilder::new()
        .layer(TenantRoutingLayer::new(&auth, discovery).route_prefix("/users", HostFamily::Area))
        .layer(auth)
        .service(echo_auth());
    let area = "https://eu9.uh.example/users/v1";
    let err = client.clone().oneshot(get(area)).await.unwrap_err();
    assert_eq!(
        kind(&err),
        ErrorKind::HostNotAllowed,
        "not before discovery"
    );

    assert_eq!(sent_with_token(&client, "/users/v1").await, area);
    assert_eq!(sent_with_token(&client, area).await, area);
    for allowed in [
        "https://api-de-eu9.cx.example/dfo/3.0/x",
        "wss://websocket-eu9.cx.example/",
    ] {
        assert_eq!(sent_with_token(&client, allowed).await, allowed);
    }
    for refused in [
        "ws://websocket-eu9.cx.example/",
        "https://eu9.cx.example/",
        "https://x.uh.example/",
    ] {
        let err = client.clone().oneshot(get(refused)).await.unwrap_err();
        assert_eq!(kind(&err), ErrorKind::HostNotAllowed, "{refused}");
    }
}

/// A document whose `area` or domain cannot make a host name fails every
/// routed request with a typed error; nothing is sent, nothing allowed.
#[tokio::test(start_paused = true)]
async fn a_malformed_derived_host_is_a_typed_error_and_nothing_is_sent() {
    for (area, domain) in [
        ("na1/evil", "niceincontact.com"),
        ("na1.evil.example", "niceincontact.com"),
        ("na1@evil.example", "niceincontact.com"),
        ("", "niceincontact.com"),
        ("na1", "evil.example/x"),
        ("na1", "-bad.example"),
        ("na1", "a..example"),
        ("na1", "évil.example"),
    ] {
        let cxone = MockCxone::new();
        let discovery = answering(serde_json::json!({
            "api_endpoint": "https://api.tenant.example", "area": area,
            "domain": domain, "uhDomain": "nice-incontact.com",
        }));
        let auth = CxoneAuthLayer::new(tokens(&cxone));
        let sent = Sent::default();
        let client = ServiceBuilder::new()
            .layer(
                TenantRoutingLayer::new(&auth, discovery)
                    .route_prefix("/dfo/", HostFamily::Digital),
            )
            .layer(auth)
            .service(sent.api(&cxone));
        for path in [AGENTS, "/dfo/3.0/contacts"] {
            let err = client.clone().oneshot(get(path)).await.unwrap_err();
            assert_eq!(kind(&err), ErrorKind::Discovery, "{area} {domain}: {err}");
            assert!(err.to_string().contains("not a DNS name"), "{err}");
        }
        let err = client
            .clone()
            .oneshot(get("https://api.tenant.example/x"))
            .await
            .unwrap_err();
        assert_eq!(
            kind(&err),
            ErrorKind::HostNotAllowed,
            "{area} {domain}: the facade was not allowed"
        );
        assert!(sent.uris().is_empty(), "{area} {domain}: nothing was sent");
    }
}

/// A prefix for a family the document cannot derive (no `area`) is a typed
/// error; the facade still works.
#[tokio::test(start_paused = true)]
async fn a_family_the_tenant_does_not_name_is_a_typed_error() {
    let cxone = MockCxone::new();
    let discovery = answering(serde_json::json!({"api_endpoint": "https://api.tenant.example"}));
    let auth = CxoneAuthLayer::new(tokens(&cxone));
    let client = ServiceBuilder::new()
        .layer(TenantRoutingLayer::new(&auth, discovery).route_prefix("/dfo/", HostFamily::Digital))
        .layer(auth)
        .service(echo_auth());
    let err = client.clone().oneshot(get("/dfo/3.0/x")).await.unwrap_err();
    assert_eq!(kind(&err), ErrorKind::Discovery, "{err}");
    assert!(err.to_string().contains("no Digital host"), "{err}");
    assert_eq!(
        sent_with_token(&client, AGENTS).await,
        format!("https://api.tenant.example{AGENTS}")
    );
}
