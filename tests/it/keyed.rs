//! `KeyedCaches` behind `CxoneAuthLayer::keyed`: one process, many tenants,
//! each with its own access key and token; the key travels in the request's
//! extensions.
//!
//! Each tenant is a mock CXone of its own (its access key, its tenant id,
//! its API host), in memory on paused time; the inner service hands each
//! request to the mock of its host, which refuses another tenant's token.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use axum::body::Body;
use cxone_auth::mock::{CLIENT_ID, CLIENT_SECRET, MockCxone};
use cxone_auth::token::{AccessKeyGrant, ServiceTransport, StaticToken, from_fn};
use cxone_auth::{
    AccessToken, CxoneAuthLayer, Error, ErrorKind, KeyedCaches, TenantDiscovery,
    TenantRoutingLayer, TokenCache,
};
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use tower::{BoxError, Layer as _, Service, ServiceExt as _};

/// The key: which tenant a request is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Tenant(&'static str);

/// A tenant's mock CXone: its own access key, tenant id and API host.
struct TenantCloud {
    key: Tenant,
    api: String,
    mock: MockCxone,
}

/// Three tenants, in three areas.
fn tenants() -> Vec<TenantCloud> {
    [
        ("acme", "na1", 1),
        ("globex", "ca1", 2),
        ("initech", "au1", 3),
    ]
    .into_iter()
    .map(|(name, area, n)| {
        let api = format!("https://api-{area}.niceincontact.com");
        let mock = MockCxone::builder()
            .access_key(
                format!("{}KEYID{n}====", name.to_uppercase()),
                format!("{name}+secret/{n}===="),
            )
            .tenant_id(format!("11eb0f4e-0000-4000-8000-00000000000{n}"))
            .area(area)
            .api_endpoint(&api)
            .build();
        TenantCloud {
            key: Tenant(name),
            api,
            mock,
        }
    })
    .collect()
}

/// The tenant's access key grant, to its own mock in memory.
fn grant(cloud: &TenantCloud) -> AccessKeyGrant {
    let n = cloud.mock.tenant_id().chars().last().unwrap();
    let name = cloud.key.0;
    AccessKeyGrant::new(
        CLIENT_ID,
        CLIENT_SECRET,
        format!("{}KEYID{n}====", name.to_uppercase()),
        format!("{name}+secret/{n}===="),
    )
    .unwrap()
    .token_url(cloud.mock.token_url())
    .unwrap()
    .transport(ServiceTransport::new(cloud.mock.router()))
}

/// A set building each tenant's cache from its grant, counting the builds;
/// a key it does not know is refused with `ErrorKind::GrantRejected`.
fn caches(clouds: &Arc<Vec<TenantCloud>>, builds: &Arc<AtomicUsize>) -> KeyedCaches<Tenant> {
    let (clouds, builds) = (Arc::clone(clouds), Arc::clone(builds));
    KeyedCaches::new(move |tenant: &Tenant| {
        builds.fetch_add(1, Ordering::SeqCst);
        let cloud = clouds.iter().find(|cloud| cloud.key == *tenant);
        let cloud = cloud.ok_or_else(|| Error::new(ErrorKind::GrantRejected, "unknown tenant"))?;
        Ok(TokenCache::new(grant(cloud)))
    })
}

/// The network: each request goes to the mock of its host. Records the
/// host and the `Authorization` of each.
fn network(
    clouds: &Arc<Vec<TenantCloud>>,
    seen: &Arc<Mutex<Vec<(String, String)>>>,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone
{
    let (clouds, seen) = (Arc::clone(clouds), Arc::clone(seen));
    tower::service_fn(move |request: Request<Body>| {
        let host = request.uri().host().unwrap().to_owned();
        let authorization = request.headers()[AUTHORIZATION].to_str().unwrap();
        seen.lock()
            .unwrap()
            .push((host.clone(), authorization.to_owned()));
        let cloud = clouds.iter().find(|c| c.api.ends_with(&host)).unwrap();
        cloud.mock.router().oneshot(request)
    })
}

fn server_time(cloud: &TenantCloud) -> Request<Body> {
    Request::get(format!(
        "{}/inContactAPI/services/v34.0/server-time",
        cloud.api
    ))
    .extension(cloud.key.clone())
    .body(Body::empty())
    .unwrap()
}

fn kind(err: &BoxError) -> ErrorKind {
    err.downcast_ref::<Error>()
        .expect("a cxone_auth::Error")
        .kind()
}

#[tokio::test(start_paused = true)]
async fn each_tenant_gets_its_own_token_with_one_fetch_each() {
    let clouds = Arc::new(tenants());
    let builds = Arc::new(AtomicUsize::new(0));
    let seen = Arc::default();
    let layer = CxoneAuthLayer::keyed(caches(&clouds, &builds));
    let client = layer.layer(network(&clouds, &seen));

    // Ten requests per tenant, interleaved, all at once.
    let calls: Vec<_> = (0..30)
        .map(|i| client.clone().oneshot(server_time(&clouds[i % 3])))
        .collect();
    for response in futures::future::join_all(calls).await {
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    }

    assert_eq!(builds.load(Ordering::SeqCst), 3);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 30);
    for cloud in clouds.iter() {
        assert_eq!(cloud.mock.stats().token_requests, 1, "{:?}", cloud.key);
        assert_eq!(cloud.mock.stats().api_ok, 10, "{:?}", cloud.key);
        let received: Vec<_> = seen
            .iter()
            .filter(|(host, _)| cloud.api.ends_with(host.as_str()))
            .map(|(_, authorization)| authorization.strip_prefix("Bearer ").unwrap())
            .collect();
        assert_eq!(received.len(), 10);
        let debug = format!("{layer:?}");
        assert!(
            !debug.contains(received[0]) && !debug.contains(cloud.key.0),
            "{debug}"
        );
        for token in received {
            assert!(cloud.mock.is_token_active(token));
            let claims = AccessToken::new(token).unwrap();
            assert_eq!(claims.tenant_id(), Some(cloud.mock.tenant_id()));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_401_refreshes_that_tenants_token_only() {
    let clouds = Arc::new(tenants());
    let builds = Arc::new(AtomicUsize::new(0));
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let keyed = caches(&clouds, &builds);
    let client = CxoneAuthLayer::keyed(keyed.clone()).layer(network(&clouds, &seen));
    for cloud in clouds.iter() {
        let response = client.clone().oneshot(server_time(cloud)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    // The server revokes globex's token: its next request draws a 401,
    // which drops that token and no other.
    let globex = &clouds[1];
    let token = seen.lock().unwrap()[1].1.clone();
    assert!(globex.mock.revoke(token.strip_prefix("Bearer ").unwrap()));
    let refused = client.clone().oneshot(server_time(globex)).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    tokio::task::yield_now().await;

    for cloud in clouds.iter() {
        let response = client.clone().oneshot(server_time(cloud)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let fetches: Vec<_> = (clouds.iter())
        .map(|cloud| cloud.mock.stats().token_succeeded)
        .collect();
    assert_eq!(fetches, [1, 2, 1]);
    let invalidations: Vec<_> = (clouds.iter())
        .map(|cloud| keyed.get(&cloud.key).unwrap().stats().invalidations)
        .collect();
    assert_eq!(invalidations, [0, 1, 0]);
    assert_eq!(builds.load(Ordering::SeqCst), 3);
}

/// A counting inner service that answers 200.
fn counted(
    calls: &Arc<AtomicUsize>,
) -> impl Service<Request<()>, Response = Response<()>, Error = Infallible, Future: Send> + Clone + use<>
{
    let calls = Arc::clone(calls);
    tower::service_fn(move |_: Request<()>| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Ok(Response::new(())) }
    })
}

const API: &str = "https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents";

/// A source minting `token-1`, `token-2`, ... and counting its fetches.
fn counting_cache(fetches: &Arc<AtomicUsize>) -> TokenCache {
    let fetches = Arc::clone(fetches);
    TokenCache::new(from_fn(move || {
        let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
        async move { AccessToken::new(format!("token-{n}")) }
    }))
}

#[tokio::test(start_paused = true)]
async fn requests_without_a_usable_key_fail_typed_and_send_nothing() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let known = Arc::clone(&fetches);
    let caches = KeyedCaches::new(move |tenant: &Tenant| match tenant.0 {
        "acme" => Ok(counting_cache(&known)),
        _ => Err(Error::new(ErrorKind::GrantRejected, "no access key for it")),
    });
    let layer = CxoneAuthLayer::keyed(caches.clone());
    let client = layer.layer(counted(&calls));

    // No key.
    let err = client
        .clone()
        .oneshot(Request::get(API).body(()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(kind(&err), ErrorKind::Config);
    let message = err.to_string();
    assert!(
        message.contains(std::any::type_name::<Tenant>()),
        "{message}"
    );

    // A key the closure refuses: its error, as it is.
    let refused = Request::get(API).extension(Tenant("umbrella"));
    let err = client
        .clone()
        .oneshot(refused.body(()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(kind(&err), ErrorKind::GrantRejected);
    assert!(err.to_string().starts_with("no access key for it"), "{err}");

    // A reqwest::Request keeps its extensions private.
    let reqwest_client = layer.layer(tower::service_fn(|_: reqwest::Request| async {
        Ok::<_, Infallible>(reqwest::Response::from(Response::new("")))
    }));
    let request = reqwest::Request::new(reqwest::Method::GET, API.parse().unwrap());
    let err = reqwest_client.oneshot(request).await.unwrap_err();
    assert_eq!(kind(&err), ErrorKind::Config);
    let message = err.to_string();
    assert!(
        message.contains("http::Request") && message.contains("reqwest-middleware"),
        "{message}"
    );

    assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing was sent");
    assert_eq!(fetches.load(Ordering::SeqCst), 0, "no token was fetched");
    assert!(caches.is_empty());

    // A request that carries its own Authorization needs no key; one with
    // a known key gets its token.
    let own = Request::get(API).header(AUTHORIZATION, "Bearer own");
    client.clone().oneshot(own.body(()).unwrap()).await.unwrap();
    let known = Request::get(API).extension(Tenant("acme"));
    client.oneshot(known.body(()).unwrap()).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!((fetches.load(Ordering::SeqCst), caches.len()), (1, 1));
}

/// A set whose caches hold static tokens, logging each key it builds.
fn logging_caches(built: &Arc<Mutex<Vec<&'static str>>>) -> KeyedCaches<Tenant> {
    let built = Arc::clone(built);
    KeyedCaches::new(move |tenant: &Tenant| {
        built.lock().unwrap().push(tenant.0);
        Ok(TokenCache::new(StaticToken::new(format!(
            "{}-token",
            tenant.0
        ))))
    })
}

#[test]
fn the_least_recently_used_idle_cache_is_evicted() {
    let built = Arc::default();
    let caches = logging_caches(&built).max_caches(2);
    let get = |name| drop(caches.get(&Tenant(name)).unwrap());

    get("a");
    get("b");
    get("a"); // b is now the least recently used
    get("c");
    assert_eq!(caches.len(), 2);
    get("a"); // kept
    get("c"); // kept
    assert_eq!(*built.lock().unwrap(), ["a", "b", "c"]);
    get("b"); // evicted before, built again; a is now the least recently used
    get("c");
    get("a");
    assert_eq!(*built.lock().unwrap(), ["a", "b", "c", "b", "a"]);
    assert_eq!(caches.len(), 2);

    let debug = format!("{caches:?}");
    assert_eq!(debug, "KeyedCaches { len: 2, max_caches: 2, .. }");
}

#[test]
fn many_keys_keep_the_most_recently_used_within_the_bound() {
    let builds = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&builds);
    let caches = KeyedCaches::new(move |key: &u32| {
        log.lock().unwrap().push(*key);
        Ok(TokenCache::new(StaticToken::new(format!("token-{key}"))))
    })
    .max_caches(50);
    for key in 1..=500 {
        drop(caches.get(&key).unwrap());
        drop(caches.get(&0).unwrap()); // always recent
        assert!(caches.len() <= 50);
    }
    assert_eq!(caches.len(), 50);
    assert_eq!(builds.lock().unwrap().len(), 501, "0 was never evicted");
    // The other 49 are the most recent keys.
    for key in 452..=500 {
        drop(caches.get(&key).unwrap());
    }
    assert_eq!(builds.lock().unwrap().len(), 501);
    drop(caches.get(&451).unwrap());
    assert_eq!(builds.lock().unwrap().len(), 502);
}

#[tokio::test(start_paused = true)]
async fn a_cache_in_use_is_never_evicted() {
    let built = Arc::default();
    let caches = logging_caches(&built).max_caches(2);
    // The inner service answers a's requests when told to, so one can stay
    // in flight; the others at once.
    let release = Arc::new(tokio::sync::Notify::new());
    let waiting = Arc::clone(&release);
    let inner = tower::service_fn(move |request: Request<()>| {
        let release = Arc::clone(&waiting);
        async move {
            if request.extensions().get() == Some(&Tenant("a")) {
                release.notified().await;
            }
            Ok::<_, Infallible>(Response::new(request.headers()[AUTHORIZATION].clone()))
        }
    });
    let client = CxoneAuthLayer::keyed(caches.clone()).layer(inner);
    let send = |name: &'static str| {
        let request = Request::get(API).extension(Tenant(name));
        client.clone().oneshot(request.body(()).unwrap())
    };

    // a is in flight, the least recently used, and held by its request.
    let in_flight = tokio::spawn(send("a"));
    tokio::task::yield_now().await;
    for name in ["b", "c"] {
        send(name).await.unwrap();
    }
    // c came while a was held: b, idle, went instead.
    assert_eq!(caches.len(), 2);
    drop(caches.get(&Tenant("a")).unwrap());
    assert_eq!(*built.lock().unwrap(), ["a", "b", "c"]);

    release.notify_waiters();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.body(), "Bearer a-token");

    // Every cache held: the set grows past its bound, and shrinks back to
    // it at the next new key once they are idle again.
    let held: Vec<_> = ["a", "c", "d"]
        .map(|name| caches.get(&Tenant(name)).unwrap())
        .into();
    assert_eq!(caches.len(), 3);
    drop(held);
    drop(caches.get(&Tenant("e")).unwrap());
    assert_eq!(caches.len(), 2);
    assert_eq!(*built.lock().unwrap(), ["a", "b", "c", "d", "e"]);
    // d and e are the most recent.
    drop(caches.get(&Tenant("d")).unwrap());
    assert_eq!(built.lock().unwrap().len(), 5);
}

#[test]
fn concurrent_first_requests_for_a_key_build_one_cache() {
    const THREADS: usize = 8;
    let builds = Arc::new(AtomicUsize::new(0));
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&builds);
    let source_fetches = Arc::clone(&fetches);
    let caches = KeyedCaches::new(move |_: &Tenant| {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(counting_cache(&source_fetches))
    });
    let start = Barrier::new(THREADS);
    let got: Vec<TokenCache> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    caches.get(&Tenant("acme")).unwrap()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    assert_eq!(caches.len(), 1);

    // They are one cache: one fetch serves them all.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        for cache in &got {
            assert_eq!(cache.token().await.unwrap().secret(), "token-1");
        }
    });
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_first_requests_through_the_layer_fetch_one_token() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let builds = Arc::new(AtomicUsize::new(0));
    let (build_count, source_fetches) = (Arc::clone(&builds), Arc::clone(&fetches));
    let caches = KeyedCaches::new(move |_: &Tenant| {
        build_count.fetch_add(1, Ordering::SeqCst);
        Ok(counting_cache(&source_fetches))
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let client = CxoneAuthLayer::keyed(caches).layer(counted(&calls));
    let sends: Vec<_> = (0..50)
        .map(|_| {
            let request = Request::get(API).extension(Tenant("acme"));
            client.clone().oneshot(request.body(()).unwrap())
        })
        .collect();
    for response in futures::future::join_all(sends).await {
        response.unwrap();
    }
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 50);
}

#[tokio::test(start_paused = true)]
async fn tenant_routing_from_a_keyed_layer_refuses_path_only_requests() {
    let built = Arc::default();
    let auth = CxoneAuthLayer::keyed(logging_caches(&built));
    assert!(auth.tokens().is_none());
    let mock = MockCxone::new();
    let discovery = TenantDiscovery::from_url(mock.base_url())
        .unwrap()
        .transport(ServiceTransport::new(mock.router()));
    let calls = Arc::new(AtomicUsize::new(0));
    let client = TenantRoutingLayer::new(&auth, discovery).layer(auth.layer(counted(&calls)));

    let path_only = Request::get("/inContactAPI/services/v34.0/agents").extension(Tenant("a"));
    let err = client
        .clone()
        .oneshot(path_only.body(()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(kind(&err), ErrorKind::Config);
    assert!(err.to_string().contains("keyed"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(mock.stats(), Default::default(), "nothing discovered");

    // Absolute requests go on, each with its key's token.
    let absolute = Request::get(API).extension(Tenant("a"));
    client.oneshot(absolute.body(()).unwrap()).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn idle_caches_keep_no_task_and_refresh_on_their_own_clock() {
    let clouds = Arc::new(tenants());
    let builds = Arc::new(AtomicUsize::new(0));
    let seen = Arc::default();
    let client = CxoneAuthLayer::keyed(caches(&clouds, &builds)).layer(network(&clouds, &seen));
    for cloud in clouds.iter() {
        client.clone().oneshot(server_time(cloud)).await.unwrap();
    }
    tokio::task::yield_now().await;
    let metrics = tokio::runtime::Handle::current().metrics();
    assert_eq!(metrics.num_alive_tasks(), 0);

    // An hour later every token has expired; each tenant fetches its own
    // again at its next request, and only then.
    tokio::time::advance(Duration::from_secs(3600)).await;
    let response = client.clone().oneshot(server_time(&clouds[0])).await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);
    let fetches: Vec<_> = (clouds.iter())
        .map(|cloud| cloud.mock.stats().token_succeeded)
        .collect();
    assert_eq!(fetches, [2, 1, 1]);
}

#[cfg(feature = "reqwest-middleware")]
mod middleware {
    use cxone_auth::CxoneRetryLayer;
    use cxone_auth::middleware::CxoneAuthMiddleware;
    use http::Extensions;
    use http_body_util::BodyExt as _;
    use reqwest_middleware::{ClientBuilder, Middleware, Next};

    use super::*;

    /// The end of the chain: each request goes to the mock of its host, in
    /// memory.
    struct InMemory(Arc<Vec<TenantCloud>>);

    #[async_trait::async_trait]
    impl Middleware for InMemory {
        async fn handle(
            &self,
            request: reqwest::Request,
            _: &mut Extensions,
            _: Next<'_>,
        ) -> reqwest_middleware::Result<reqwest::Response> {
            let host = request.url().host_str().unwrap().to_owned();
            let cloud = self.0.iter().find(|c| c.api.ends_with(&host)).unwrap();
            let request = http::Request::try_from(request)?;
            let response = cloud.mock.router().oneshot(request).await.unwrap();
            let (parts, body) = response.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            Ok(http::Response::from_parts(parts, body).into())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_chains_extensions_carry_the_key() {
        let clouds = Arc::new(tenants());
        let builds = Arc::new(AtomicUsize::new(0));
        let auth = CxoneAuthLayer::keyed(caches(&clouds, &builds));
        let middleware = CxoneAuthMiddleware::from_layers(auth, CxoneRetryLayer::default());
        assert!(middleware.tokens().is_none());
        let client = ClientBuilder::new(reqwest::Client::new())
            .with(middleware)
            .with(InMemory(Arc::clone(&clouds)))
            .build();
        let url = |cloud: &TenantCloud| format!("{}/inContactAPI/services/v34.0/agents", cloud.api);

        for cloud in clouds.iter().chain(clouds.iter()) {
            let response = client
                .get(url(cloud))
                .with_extension(cloud.key.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
        // A revoked token: the retry layer replays with the same tenant's new one.
        clouds[2].mock.revoke_all();
        let response = client
            .get(url(&clouds[2]))
            .with_extension(clouds[2].key.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let fetches: Vec<_> = (clouds.iter())
            .map(|cloud| cloud.mock.stats().token_succeeded)
            .collect();
        assert_eq!(fetches, [1, 1, 2]);

        // No key: a typed error, nothing sent.
        let err = client.get(url(&clouds[0])).send().await.unwrap_err();
        let reqwest_middleware::Error::Middleware(err) = err else {
            panic!("{err:?}")
        };
        let err = err.downcast_ref::<Error>().unwrap();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(clouds[0].mock.stats().api_calls, 2);
    }
}
