//! TokenCache behaviour on tokio's paused clock: single flight, refresh
//! ahead, timing of long and short tokens, failures and backoff,
//! invalidation, cancellation, task lifetime, tracing, the shared store.

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cxone_auth::token::{TokenSource, from_fn};
use cxone_auth::{AccessToken, Error, ErrorKind, TokenCache};
use cxone_auth::{MemoryStore, StoreLock, StoredToken, TokenStore};
use futures_util::future::{BoxFuture, join_all};
use http::StatusCode;
use tokio::runtime::Handle;
use tokio::time::{Instant, sleep};

const HOUR: Duration = Duration::from_secs(3600);

/// What the fake token endpoint does on its next requests.
#[derive(Clone)]
enum Behaviour {
    Issue(Duration),
    Fail(Error),
    Hang,
    Garbage,
}

/// A token endpoint that counts requests, issues `token-N` tokens and can be
/// switched to failing.
#[derive(Clone)]
struct Endpoint {
    inner: Arc<EndpointInner>,
}

struct EndpointInner {
    calls: AtomicUsize,
    behaviour: Mutex<Behaviour>,
    delay: Mutex<Duration>,
    log: Mutex<Vec<Instant>>,
    scopes: Vec<String>,
}

impl Endpoint {
    fn new(lifetime: Duration) -> Self {
        Self::with_scopes(lifetime, &[])
    }

    fn with_scopes(lifetime: Duration, scopes: &[&str]) -> Self {
        Self {
            inner: Arc::new(EndpointInner {
                calls: AtomicUsize::new(0),
                behaviour: Mutex::new(Behaviour::Issue(lifetime)),
                delay: Mutex::new(Duration::ZERO),
                log: Mutex::new(Vec::new()),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
            }),
        }
    }

    fn delay(self, delay: Duration) -> Self {
        *self.inner.delay.lock().unwrap() = delay;
        self
    }

    fn set(&self, behaviour: Behaviour) {
        *self.inner.behaviour.lock().unwrap() = behaviour;
    }

    fn calls(&self) -> usize {
        self.inner.calls.load(Ordering::SeqCst)
    }

    fn log(&self) -> Vec<Instant> {
        self.inner.log.lock().unwrap().clone()
    }

    async fn fetch(&self) -> Result<AccessToken, Error> {
        let n = self.inner.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let requested_at = Instant::now();
        self.inner.log.lock().unwrap().push(requested_at);
        let behaviour = self.inner.behaviour.lock().unwrap().clone();
        let delay = *self.inner.delay.lock().unwrap();
        if !delay.is_zero() {
            sleep(delay).await;
        }
        match behaviour {
            Behaviour::Issue(lifetime) => Ok(AccessToken::new(format!("token-{n}"))?
                .with_lifetime(lifetime)
                .with_requested_at(requested_at)
                .with_scopes(self.inner.scopes.iter().cloned())),
            Behaviour::Fail(error) => Err(error),
            Behaviour::Hang => pending().await,
            // What a source makes of a token field that is not a token.
            Behaviour::Garbage => AccessToken::new("<html>\r\n502 Bad Gateway"),
        }
    }

    fn source(&self) -> impl TokenSource + use<> {
        let endpoint = self.clone();
        from_fn(move || {
            let endpoint = endpoint.clone();
            async move { endpoint.fetch().await }
        })
    }
}

/// What the layer does: the synchronous read, and the async one only when it
/// has nothing.
async fn get(cache: &TokenCache) -> Result<Arc<AccessToken>, Error> {
    match cache.cached() {
        Some(token) => Ok(token),
        None => cache.token().await,
    }
}

/// The tokens `n` callers, each in its own task and all at once, got with
/// [`get`].
async fn spawned_callers(cache: &TokenCache, n: usize) -> Vec<Arc<AccessToken>> {
    let callers: Vec<_> = (0..n)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { get(&cache).await })
        })
        .collect();
    join_all(callers)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().unwrap())
        .collect()
}

fn unavailable() -> Error {
    Error::new(ErrorKind::Unavailable, "the token endpoint is down")
}

fn rate_limited() -> Error {
    Error::new(ErrorKind::RateLimited, "slow down").with_retry_after(Duration::from_secs(7))
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The most fetches that fit in `window` when the k-th failure in a row is
/// followed by at least half of `min(1 s * 2^(k-1), 30 s)` (the default
/// backoff's equal jitter), or `floor` if that is longer.
fn max_fetches(window: Duration, floor: Duration) -> usize {
    let mut elapsed = Duration::ZERO;
    let mut fetches = 1;
    for k in 0.. {
        let step = Duration::from_secs(1u64 << k.min(5)).min(Duration::from_secs(30));
        elapsed += (step / 2).max(floor);
        if elapsed > window {
            break;
        }
        fetches += 1;
    }
    fetches
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_cold_callers_share_one_fetch() {
    let endpoint = Endpoint::new(HOUR).delay(Duration::from_millis(200));
    let cache = TokenCache::new(endpoint.source());
    let tokens = spawned_callers(&cache, 10_000).await;
    assert_eq!(endpoint.calls(), 1);
    assert!(tokens.iter().all(|t| Arc::ptr_eq(t, &tokens[0])));
    let stats = cache.stats();
    assert_eq!((stats.fetches, stats.waits, stats.hits), (1, 10_000, 0));
    // Now it is cached.
    assert!(Arc::ptr_eq(&cache.cached().unwrap(), &tokens[0]));
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_callers_at_expiry_share_one_fetch() {
    let endpoint = Endpoint::new(Duration::from_secs(60)).delay(Duration::from_millis(200));
    let cache = TokenCache::new(endpoint.source());
    let first = cache.token().await.unwrap();
    // Nobody calls between the refresh point and the hard expiry (55 s).
    sleep(Duration::from_secs(56)).await;
    assert!(
        cache.cached().is_none(),
        "a token past its hard expiry is not handed out"
    );
    let tokens = spawned_callers(&cache, 10_000).await;
    assert_eq!(endpoint.calls(), 2);
    assert!(tokens.iter().all(|t| Arc::ptr_eq(t, &tokens[0])));
    assert!(!tokens[0].same_token(&first));
}

#[tokio::test(start_paused = true)]
async fn a_thousand_invalidations_of_one_token_cause_one_fetch() {
    let endpoint = Endpoint::new(HOUR).delay(Duration::from_millis(100));
    let cache = TokenCache::new(endpoint.source());
    let first = cache.token().await.unwrap();
    let retries: Vec<_> = (0..1_000)
        .map(|_| {
            let cache = cache.clone();
            let rejected = first.clone();
            tokio::spawn(async move {
                cache.invalidate(&rejected);
                get(&cache).await
            })
        })
        .collect();
    let tokens: Vec<_> = join_all(retries)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().unwrap())
        .collect();
    assert_eq!(endpoint.calls(), 2);
    assert!(tokens.iter().all(|t| Arc::ptr_eq(t, &tokens[0])));
    assert!(!tokens[0].same_token(&first));
    assert_eq!(cache.stats().invalidations, 1);
    // A late 401 for the old token changes nothing.
    assert!(!cache.invalidate(&first));
    assert!(cache.cached().is_some());
    assert_eq!(endpoint.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_header_path_invalidates_once() {
    let endpoint = Endpoint::new(HOUR).delay(Duration::from_millis(100));
    let cache = TokenCache::new(endpoint.source());
    assert!(cache.cached().is_none());
    let header = cache.header().await.unwrap();
    assert_eq!(header, "Bearer token-1");
    assert!(header.is_sensitive());
    let first = cache.cached().unwrap();
    assert_eq!(first.header_value(), &header);
    let retries: Vec<_> = (0..1_000)
        .map(|_| {
            let (cache, first) = (cache.clone(), Arc::clone(&first));
            tokio::spawn(async move {
                cache.invalidate(&first);
                cache.header().await
            })
        })
        .collect();
    let fresh: Vec<_> = join_all(retries)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().unwrap())
        .collect();
    assert!(fresh.iter().all(|h| h == "Bearer token-2"));
    assert_eq!(endpoint.calls(), 2);
    assert_eq!(cache.stats().invalidations, 1);
    let second = cache.cached().unwrap();
    assert!(
        !cache.invalidate(&first),
        "a replaced token invalidates nothing"
    );
    assert!(cache.invalidate(&second));
    assert!(!cache.invalidate(&second), "already dropped");
}

#[tokio::test(start_paused = true)]
async fn reads_follow_refreshes_and_invalidations() {
    let endpoint = Endpoint::new(Duration::from_secs(60));
    let cache = TokenCache::builder(endpoint.source())
        .refresh_jitter(0.0)
        .build();
    assert!(cache.cached().is_none());
    let first = cache.token().await.unwrap();
    let hits = cache.stats().hits;
    assert_eq!(cache.cached().unwrap().secret(), first.secret());
    // Past the refresh point, a read starts the refresh and keeps the token.
    sleep(Duration::from_secs(31)).await;
    assert_eq!(cache.cached().unwrap().secret(), "token-1");
    tokio::task::yield_now().await;
    assert_eq!(endpoint.calls(), 2);
    let second = cache.cached().unwrap();
    assert_eq!(second.header_value(), "Bearer token-2");
    // Invalidated: reads see no token, then the replacement.
    assert!(cache.invalidate(&second));
    assert!(cache.cached().is_none());
    tokio::task::yield_now().await;
    assert_eq!(cache.cached().unwrap().secret(), "token-3");
    // Past the hard expiry, reads hand out nothing.
    sleep(Duration::from_secs(56)).await;
    assert!(cache.cached().is_none());
    assert_eq!(cache.stats().hits, hits + 4, "four reads found a token");
}

#[tokio::test(start_paused = true)]
async fn a_day_of_one_hour_tokens_costs_at_most_27_fetches_and_no_waits() {
    let endpoint = Endpoint::new(HOUR).delay(Duration::from_millis(500));
    let cache = TokenCache::new(endpoint.source());
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(24 * 3600) {
        let token = get(&cache).await.unwrap();
        assert!(
            Instant::now() < token.expires_at(),
            "an expired token was handed out"
        );
        sleep(Duration::from_secs(1)).await;
    }
    let stats = cache.stats();
    let fetches = endpoint.calls();
    println!("24 h of 1-hour tokens: {fetches} fetches, {stats:?}");
    assert!((26..=27).contains(&fetches), "{fetches} fetches");
    assert_eq!(stats.waits, 1, "only the very first call waits");
    assert_eq!(stats.refreshes_ahead, fetches as u64 - 1);
    assert_eq!(stats.hits, 24 * 3600 - 1);
}

#[tokio::test(start_paused = true)]
async fn a_sixty_second_token_is_refreshed_at_about_thirty_seconds() {
    let endpoint = Endpoint::new(Duration::from_secs(60));
    let cache = TokenCache::new(endpoint.source());
    let start = Instant::now();
    let mut reads = 0;
    while start.elapsed() < Duration::from_secs(120) {
        get(&cache).await.unwrap();
        reads += 1;
        sleep(Duration::from_millis(100)).await;
    }
    let log = endpoint.log();
    let gaps: Vec<f64> = log.windows(2).map(|w| secs(w[1] - w[0])).collect();
    println!(
        "{reads} reads, fetches {} s apart",
        gaps.iter()
            .map(|g| format!("{g:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        (4..=5).contains(&log.len()),
        "{} fetches for {reads} reads",
        log.len()
    );
    // 60 / 2 = 30 s, minus up to 10 % of that margin of jitter.
    assert!(
        gaps.iter().all(|gap| (27.0..=30.15).contains(gap)),
        "{gaps:?}"
    );
    assert_eq!(cache.stats().waits, 1);
}

#[tokio::test(start_paused = true)]
async fn one_second_tokens_are_used_and_refreshed_at_half_life() {
    let endpoint = Endpoint::new(Duration::from_secs(1));
    let cache = TokenCache::new(endpoint.source());
    let start = Instant::now();
    let mut reads = 0;
    while start.elapsed() < Duration::from_secs(10) {
        let token = get(&cache).await.unwrap();
        // Never closer to expiry than the skew (a quarter of the lifetime).
        assert!(Instant::now() + Duration::from_millis(250) <= token.expires_at());
        reads += 1;
        sleep(Duration::from_millis(10)).await;
    }
    let fetches = endpoint.calls();
    assert!(
        (18..=23).contains(&fetches),
        "{fetches} fetches for {reads} reads"
    );
    assert_eq!(cache.stats().waits, 1);
}

#[tokio::test(start_paused = true)]
async fn zero_second_tokens_are_failures_and_do_not_spin() {
    let endpoint = Endpoint::new(Duration::ZERO);
    let cache = TokenCache::new(endpoint.source());
    let start = Instant::now();
    let mut errors = 0;
    while start.elapsed() < Duration::from_secs(60) {
        let error = get(&cache).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidResponse, "{error}");
        errors += 1;
        sleep(Duration::from_millis(100)).await;
    }
    let fetches = endpoint.calls();
    println!("{errors} calls, {fetches} fetches of 0-second tokens in 60 s");
    assert!(fetches <= max_fetches(Duration::from_secs(60), Duration::ZERO));
    assert!(fetches >= 5, "the cache kept trying: {fetches}");
    assert_eq!(cache.stats().fetch_failures, fetches as u64);
}

/// A token too short to use (`expires_in` of 0.001 or
/// 0.05 s) is a failure backed off like any other, whatever the skew; it
/// used to cost a fetch on nearly every call.
#[tokio::test(start_paused = true)]
async fn tokens_too_short_to_use_are_backed_off_whatever_the_skew() {
    for lifetime in [1, 50, 0].map(Duration::from_millis) {
        for skew in [Duration::ZERO, Duration::from_secs(5)] {
            let endpoint = Endpoint::new(lifetime);
            let cache = TokenCache::builder(endpoint.source())
                .expiry_skew(skew)
                .build();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                let error = get(&cache).await.unwrap_err();
                assert_eq!(error.kind(), ErrorKind::InvalidResponse, "{error}");
                sleep(Duration::from_millis(10)).await;
            }
            let fetches = endpoint.calls();
            assert!(
                fetches <= max_fetches(Duration::from_secs(10), Duration::ZERO),
                "{lifetime:?} tokens, skew {skew:?}: {fetches} fetches in 10 s"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn missing_expires_in_uses_the_jwt_exp_or_five_minutes() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let opaque = from_fn(|| async { AccessToken::new("opaque") });
    let cache = TokenCache::builder(opaque).refresh_jitter(0.0).build();
    let token = cache.token().await.unwrap();
    assert_eq!(token.lifetime(), Duration::from_secs(300));
    sleep(Duration::from_secs(149)).await;
    cache.cached().unwrap();
    assert_eq!(cache.stats().refreshes_ahead, 0);
    sleep(Duration::from_secs(2)).await;
    cache.cached().unwrap();
    assert_eq!(
        cache.stats().refreshes_ahead,
        1,
        "refreshed at half of 5 min"
    );

    let jwt = from_fn(|| async {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{}}}"#, now + 1200));
        AccessToken::new(format!("e30.{payload}.sig"))
    });
    let cache = TokenCache::builder(jwt).refresh_jitter(0.0).build();
    let token = cache.token().await.unwrap();
    assert!(token.lifetime() > Duration::from_secs(1190));
    sleep(Duration::from_secs(880)).await;
    cache.cached().unwrap();
    assert_eq!(cache.stats().refreshes_ahead, 0);
    sleep(Duration::from_secs(25)).await;
    cache.cached().unwrap();
    assert_eq!(
        cache.stats().refreshes_ahead,
        1,
        "refreshed 5 min before exp"
    );
}

/// One fault of the token endpoint: while the token is valid callers keep it;
/// after it expires they get the typed error, the endpoint sees no more than
/// the backoff allows; the cache recovers when the endpoint does.
async fn endpoint_fault(fault: Behaviour, kind: ErrorKind, floor: Duration) {
    let endpoint = Endpoint::new(HOUR);
    let cache = TokenCache::builder(endpoint.source())
        .fetch_timeout(Duration::from_secs(10))
        .build();
    let first = get(&cache).await.unwrap();
    sleep(Duration::from_secs(3301)).await;
    endpoint.set(fault);
    let failing_since = Instant::now();

    // Valid until 3595 s: every caller keeps the valid token.
    while first.requested_at().elapsed() < Duration::from_secs(3594) {
        let token = get(&cache).await.expect("the valid token is kept");
        assert!(Arc::ptr_eq(&token, &first));
        sleep(Duration::from_secs(1)).await;
    }
    let refreshes = endpoint.calls() - 1;
    assert!(refreshes >= 1, "a refresh was attempted");

    // Expired: the typed error, at once during the backoff.
    sleep(Duration::from_secs(2)).await;
    let until = Instant::now() + Duration::from_secs(300);
    while Instant::now() < until {
        let error = get(&cache).await.unwrap_err();
        assert_eq!(error.kind(), kind, "{error}");
        sleep(Duration::from_secs(1)).await;
    }
    let failed = endpoint.calls() - 1;
    let allowed = max_fetches(failing_since.elapsed(), floor);
    println!(
        "{kind:?}: {failed} failed fetches in {:.0} s (backoff allows {allowed})",
        secs(failing_since.elapsed())
    );
    assert!(failed <= allowed, "{failed} > {allowed}");
    assert_eq!(cache.stats().fetch_failures, failed as u64);

    // Recovery: within the longest backoff (plus a hung fetch's timeout).
    endpoint.set(Behaviour::Issue(HOUR));
    let recovering = Instant::now();
    let token = loop {
        match get(&cache).await {
            Ok(token) => break token,
            Err(error) => assert_eq!(error.kind(), kind),
        }
        sleep(Duration::from_secs(1)).await;
    };
    assert!(
        recovering.elapsed() <= Duration::from_secs(41),
        "{:?}",
        recovering.elapsed()
    );
    assert!(!token.same_token(&first));
    assert!(Arc::ptr_eq(&cache.cached().unwrap(), &token));
}

#[tokio::test(start_paused = true)]
async fn endpoint_503_keeps_the_valid_token_then_backs_off() {
    endpoint_fault(
        Behaviour::Fail(unavailable()),
        ErrorKind::Unavailable,
        Duration::ZERO,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn endpoint_429_retry_after_7_is_honoured() {
    let floor = Duration::from_secs(7);
    endpoint_fault(
        Behaviour::Fail(rate_limited()),
        ErrorKind::RateLimited,
        floor,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn endpoint_timeouts_keep_the_valid_token_then_back_off() {
    // Each hung fetch also takes the 10 s fetch timeout.
    let floor = Duration::from_secs(10);
    endpoint_fault(Behaviour::Hang, ErrorKind::Timeout, floor).await;
}

#[tokio::test(start_paused = true)]
async fn endpoint_garbage_keeps_the_valid_token_then_backs_off() {
    endpoint_fault(
        Behaviour::Garbage,
        ErrorKind::InvalidResponse,
        Duration::ZERO,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_429_spaces_refresh_attempts_by_retry_after() {
    let endpoint = Endpoint::new(HOUR);
    let cache = TokenCache::new(endpoint.source());
    get(&cache).await.unwrap();
    sleep(Duration::from_secs(3301)).await;
    endpoint.set(Behaviour::Fail(rate_limited()));
    for _ in 0..200 {
        get(&cache).await.unwrap();
        sleep(Duration::from_millis(100)).await;
    }
    let log = endpoint.log();
    assert!(log.len() >= 3);
    for pair in log[1..].windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_secs(7),
            "{:?}",
            pair[1] - pair[0]
        );
    }
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_shared_and_backed_off() {
    let endpoint = Endpoint::new(HOUR).delay(Duration::from_millis(50));
    let rejected = Error::new(ErrorKind::InvalidCredentials, "unknown client");
    endpoint.set(Behaviour::Fail(rejected));
    let cache = TokenCache::new(endpoint.source());
    let callers: Vec<_> = (0..1_000).map(|_| get(&cache)).collect();
    for result in join_all(callers).await {
        let error = result.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidCredentials);
        assert!(!error.is_transient());
    }
    assert_eq!(endpoint.calls(), 1);
    // During the backoff, callers get the same error at once, without a fetch.
    for _ in 0..1_000 {
        let error = cache.token().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidCredentials);
    }
    sleep(Duration::from_millis(400)).await;
    assert!(cache.token().await.is_err());
    assert_eq!(endpoint.calls(), 1);
    assert_eq!(cache.stats().waits, 1_000);
    // After the backoff, one new fetch.
    sleep(Duration::from_secs(1)).await;
    let callers: Vec<_> = (0..100).map(|_| get(&cache)).collect();
    assert!(join_all(callers).await.iter().all(Result::is_err));
    assert_eq!(endpoint.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_first_waiter_cancels_nothing() {
    let endpoint = Endpoint::new(HOUR).delay(Duration::from_secs(1));
    let cache = TokenCache::new(endpoint.source());
    let first = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    tokio::task::yield_now().await;
    assert_eq!(cache.stats().waits, 1, "the first waiter started the fetch");
    let others: Vec<_> = (0..10)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.token().await })
        })
        .collect();
    tokio::task::yield_now().await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    let tokens: Vec<_> = join_all(others)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().unwrap())
        .collect();
    assert!(tokens.iter().all(|t| Arc::ptr_eq(t, &tokens[0])));
    assert_eq!(endpoint.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_that_times_out_leaves_the_fetch_running() {
    let endpoint = Endpoint::new(HOUR).delay(Duration::from_secs(2));
    let cache = TokenCache::builder(endpoint.source())
        .load_timeout(Duration::from_millis(500))
        .build();
    let error = cache.token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.to_string().contains("load timeout"), "{error}");
    // The next caller joins the same fetch, and gets its token.
    sleep(Duration::from_millis(1200)).await;
    let token = cache.token().await.unwrap();
    assert_eq!(token.secret(), "token-1");
    assert_eq!(endpoint.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_ends_its_tasks() {
    let metrics = Handle::current().metrics();
    let marker = Arc::new(());
    let alive = Arc::downgrade(&marker);
    let hanging = from_fn(move || {
        let marker = marker.clone();
        async move {
            let _held = marker;
            pending::<Result<AccessToken, Error>>().await
        }
    });
    let cache = TokenCache::new(hanging);
    let waiter = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    waiter.abort();
    let _ = waiter.await;
    assert_eq!(
        metrics.num_alive_tasks(),
        1,
        "the fetch runs on after its waiter left"
    );
    drop(cache);
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        metrics.num_alive_tasks(),
        0,
        "the fetch ended with the last handle"
    );
    assert!(alive.upgrade().is_none(), "the source was dropped");

    // A cached token needs no task at all, and leaves with the cache.
    let endpoint = Endpoint::new(HOUR);
    let cache = TokenCache::new(endpoint.source());
    let token = cache.token().await.unwrap();
    tokio::task::yield_now().await;
    assert_eq!(metrics.num_alive_tasks(), 0, "no timer per cached token");
    let token_alive = Arc::downgrade(&token);
    drop((cache, token));
    tokio::task::yield_now().await;
    assert_eq!(metrics.num_alive_tasks(), 0);
    assert!(
        token_alive.upgrade().is_none(),
        "the token is not kept in memory"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refresh_runs_in_the_background_while_callers_keep_the_token() {
    let endpoint = Endpoint::new(Duration::from_secs(60)).delay(Duration::from_secs(3));
    let cache = TokenCache::builder(endpoint.source())
        .refresh_jitter(0.0)
        .build();
    let first = cache.token().await.unwrap();
    sleep(Duration::from_secs(27)).await; // token requested at 0, fetched at 3 s: due at 30 s
    assert!(Arc::ptr_eq(&cache.cached().unwrap(), &first));
    assert_eq!(endpoint.calls(), 1, "not due yet");
    sleep(Duration::from_secs(1)).await;
    for _ in 0..1_000 {
        assert!(Arc::ptr_eq(&cache.cached().unwrap(), &first));
    }
    tokio::task::yield_now().await;
    assert_eq!(endpoint.calls(), 2, "one refresh for a thousand reads");
    assert_eq!(cache.stats().refreshes_ahead, 1);
    sleep(Duration::from_secs(3)).await;
    tokio::task::yield_now().await;
    let second = cache.cached().unwrap();
    assert_eq!(second.secret(), "token-2");
    assert_eq!(cache.stats().waits, 1);
}

#[tokio::test(start_paused = true)]
async fn header_is_the_sensitive_bearer_and_debug_hides_the_token() {
    let endpoint = Endpoint::new(HOUR);
    let cache = TokenCache::new(endpoint.source());
    let header = cache.header().await.unwrap();
    assert_eq!(header, "Bearer token-1");
    assert!(header.is_sensitive());
    let debug = format!("{cache:?}");
    assert!(debug.contains("has_usable_token: true"), "{debug}");
    assert!(!debug.contains("token-1"), "{debug}");
}

/// A source that names its credential, so caches share it through a store.
#[derive(Clone)]
struct Keyed(Endpoint);

impl TokenSource for Keyed {
    async fn fetch(&self) -> Result<AccessToken, Error> {
        self.0.fetch().await
    }

    fn shared_key(&self) -> Option<String> {
        Some("test-credential".to_owned())
    }
}

fn fleet(endpoint: &Endpoint, store: &MemoryStore, size: usize) -> Vec<TokenCache> {
    (0..size)
        .map(|_| {
            TokenCache::builder(Keyed(endpoint.clone()))
                .store(store.clone())
                .build()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn caches_sharing_a_store_fetch_once_on_a_cold_start() {
    let endpoint = Endpoint::new(HOUR).delay(Duration::from_millis(300));
    let store = MemoryStore::new();
    let caches = fleet(&endpoint, &store, 4);
    let callers: Vec<_> = caches
        .iter()
        .flat_map(|cache| (0..250).map(move |_| get(cache)))
        .collect();
    let tokens: Vec<_> = join_all(callers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(endpoint.calls(), 1);
    assert!(tokens.iter().all(|t| t.same_token(&tokens[0])));
    let loads: u64 = caches.iter().map(|c| c.stats().store_loads).sum();
    assert_eq!(loads, 3);
}

#[tokio::test(start_paused = true)]
async fn caches_sharing_a_store_fetch_one_fleets_worth_a_day() {
    let endpoint = Endpoint::new(HOUR).delay(Duration::from_millis(300));
    let store = MemoryStore::new();
    let caches = fleet(&endpoint, &store, 4);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(24 * 3600) {
        for cache in &caches {
            let token = get(cache).await.unwrap();
            assert!(Instant::now() < token.expires_at());
        }
        sleep(Duration::from_secs(5)).await;
    }
    let fetches = endpoint.calls();
    let loads: u64 = caches.iter().map(|c| c.stats().store_loads).sum();
    println!("4 caches, 24 h, shared store: {fetches} fetches, {loads} store loads");
    assert!(fetches <= 27, "{fetches}");
    assert!(loads >= 3 * 25, "{loads}");
    assert!(caches.iter().all(|c| c.stats().waits == 1));
}

#[tokio::test(start_paused = true)]
async fn an_invalidated_token_is_removed_from_the_store() {
    let endpoint = Endpoint::new(HOUR);
    let store = MemoryStore::new();
    let caches = fleet(&endpoint, &store, 2);
    let first = get(&caches[0]).await.unwrap();
    let same = get(&caches[1]).await.unwrap();
    assert!(first.same_token(&same));
    assert_eq!(endpoint.calls(), 1);

    assert!(caches[0].invalidate(&first));
    let second = get(&caches[0]).await.unwrap();
    assert_eq!(second.secret(), "token-2");
    // The other cache's own 401 for the old token finds the new one in the store.
    assert!(caches[1].invalidate(&same));
    let taken = get(&caches[1]).await.unwrap();
    assert!(taken.same_token(&second));
    assert_eq!(endpoint.calls(), 2);
}

/// A store that fails every call.
#[derive(Debug)]
struct BrokenStore;

fn broken<T: Send + 'static>() -> BoxFuture<'static, Result<T, Error>> {
    Box::pin(async { Err(Error::new(ErrorKind::Unavailable, "store down")) })
}

impl TokenStore for BrokenStore {
    fn load<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        broken()
    }
    fn store<'a>(
        &'a self,
        _: &'a str,
        _: &'a StoredToken,
        _: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        broken()
    }
    fn invalidate<'a>(
        &'a self,
        _: &'a str,
        _: &'a AccessToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        broken()
    }
    fn try_lock<'a>(
        &'a self,
        _: &'a str,
        _: Duration,
    ) -> BoxFuture<'a, Result<Option<StoreLock>, Error>> {
        broken()
    }
    fn unlock<'a>(&'a self, _: &'a str, _: StoreLock) -> BoxFuture<'a, Result<(), Error>> {
        broken()
    }
}

/// A store that never answers.
#[derive(Debug)]
struct HungStore;

impl TokenStore for HungStore {
    fn load<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        Box::pin(pending())
    }
    fn store<'a>(
        &'a self,
        _: &'a str,
        _: &'a StoredToken,
        _: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(pending())
    }
    fn invalidate<'a>(
        &'a self,
        _: &'a str,
        _: &'a AccessToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(pending())
    }
    fn try_lock<'a>(
        &'a self,
        _: &'a str,
        _: Duration,
    ) -> BoxFuture<'a, Result<Option<StoreLock>, Error>> {
        Box::pin(pending())
    }
    fn unlock<'a>(&'a self, _: &'a str, _: StoreLock) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(pending())
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_or_hung_store_never_fails_a_request() {
    for store in [
        Arc::new(BrokenStore) as Arc<dyn TokenStore>,
        Arc::new(HungStore),
    ] {
        let endpoint = Endpoint::new(HOUR);
        let cache = TokenCache::builder(Keyed(endpoint.clone()))
            .shared_store(store)
            .build();
        let callers: Vec<_> = (0..100).map(|_| get(&cache)).collect();
        for token in join_all(callers).await {
            assert_eq!(token.unwrap().secret(), "token-1");
        }
        let first = cache.cached().unwrap();
        assert!(cache.invalidate(&first));
        assert_eq!(get(&cache).await.unwrap().secret(), "token-2");
        assert_eq!(endpoint.calls(), 2);
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_lock_holder_that_dies_stalls_no_one_past_the_wait() {
    let endpoint = Endpoint::new(HOUR);
    let store = MemoryStore::new();
    // A holder that took the lock and died.
    let _dead = store
        .try_lock("test-credential", Duration::from_secs(600))
        .await
        .unwrap()
        .unwrap();
    let cache = TokenCache::builder(Keyed(endpoint.clone()))
        .store(store.clone())
        .store_wait(Duration::from_secs(2))
        .build();
    let start = Instant::now();
    assert_eq!(get(&cache).await.unwrap().secret(), "token-1");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_millis(2100),
        "{waited:?}"
    );
    assert_eq!(endpoint.calls(), 1);
    // What it fetched was published for the others.
    assert_eq!(
        store
            .load("test-credential")
            .await
            .unwrap()
            .unwrap()
            .secret(),
        "token-1"
    );
}

// ---------------------------------------------------------------------------
// Against the mock CXone, in memory, through the access key grant.

mod against_the_mock {
    use crate::support::mock_grant as source;
    use axum::body::Body;
    use cxone_auth::mock::{ExpiresIn, MockCxone, TokenFault};
    use http::{Request, header};
    use tower::ServiceExt as _;

    use super::*;

    fn requests(mock: &MockCxone) -> u64 {
        mock.stats().token_requests
    }

    /// `GET server-time` with `header`, as the API sees it.
    async fn api_status(mock: &MockCxone, header: &HeaderValue) -> StatusCode {
        let url = format!(
            "{}/inContactAPI/services/v34.0/server-time",
            mock.api_endpoint()
        );
        let request = Request::get(url)
            .header(header::AUTHORIZATION, header.clone())
            .body(Body::empty())
            .unwrap();
        mock.router().oneshot(request).await.unwrap().status()
    }

    use http::HeaderValue;

    #[tokio::test(start_paused = true)]
    async fn ten_thousand_cold_callers_send_one_token_request() {
        let mock = MockCxone::builder()
            .token_delay(Duration::from_millis(200))
            .build();
        let cache = TokenCache::new(source(&mock));
        let tokens = spawned_callers(&cache, 10_000).await;
        assert_eq!(requests(&mock), 1);
        assert!(tokens.iter().all(|t| Arc::ptr_eq(t, &tokens[0])));
        assert_eq!(
            api_status(&mock, tokens[0].header_value()).await,
            StatusCode::OK
        );
        assert_eq!(tokens[0].lifetime(), HOUR);
    }

    #[tokio::test(start_paused = true)]
    async fn a_day_of_traffic_sends_at_most_27_token_requests_and_never_a_dead_token() {
        let mock = MockCxone::builder()
            .token_delay(Duration::from_millis(300))
            .build();
        let cache = TokenCache::new(source(&mock));
        let start = Instant::now();
        let mut calls = 0;
        while start.elapsed() < Duration::from_secs(24 * 3600) {
            let token = match cache.cached() {
                Some(cached) => cached,
                None => cache.token().await.unwrap(),
            };
            let header = token.header_value().clone();
            // Every few minutes, ask the API whether the token is alive.
            if calls % 30 == 0 {
                assert_eq!(api_status(&mock, &header).await, StatusCode::OK);
            }
            calls += 1;
            sleep(Duration::from_secs(10)).await;
        }
        let sent = requests(&mock);
        println!("mock, 24 h: {sent} token requests, {:?}", cache.stats());
        assert!((26..=27).contains(&sent), "{sent}");
        assert_eq!(cache.stats().waits, 1);
        assert_eq!(mock.stats().api_unauthorized, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn sixty_second_tokens_are_refreshed_at_about_thirty_seconds() {
        let mock = MockCxone::builder()
            .token_lifetime(Duration::from_secs(60))
            .build();
        let cache = TokenCache::new(source(&mock));
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(120) {
            get(&cache).await.unwrap();
            sleep(Duration::from_millis(250)).await;
        }
        let received: Vec<_> = mock
            .token_requests()
            .iter()
            .map(|r| r.received_at())
            .collect();
        let gaps: Vec<f64> = received.windows(2).map(|w| secs(w[1] - w[0])).collect();
        assert!((4..=5).contains(&received.len()), "{gaps:?}");
        assert!(
            gaps.iter().all(|gap| (27.0..=30.3).contains(gap)),
            "{gaps:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_expires_in_the_jwt_exp_sets_the_refresh() {
        let mock = MockCxone::builder()
            .expires_in(ExpiresIn::Omitted)
            .token_lifetime(Duration::from_secs(1200))
            .build();
        let cache = TokenCache::builder(source(&mock))
            .refresh_jitter(0.0)
            .build();
        let token = cache.token().await.unwrap();
        let lifetime = token.lifetime().as_secs();
        assert!((1198..=1200).contains(&lifetime), "{lifetime}");
        sleep(Duration::from_secs(880)).await;
        get(&cache).await.unwrap();
        assert_eq!(requests(&mock), 1);
        sleep(Duration::from_secs(25)).await;
        get(&cache).await.unwrap();
        tokio::task::yield_now().await;
        assert_eq!(requests(&mock), 2, "refreshed 5 min before exp");
    }

    /// A fault of the mock's token endpoint: while the token is valid callers
    /// keep it; after, the typed error within the backoff's budget; then
    /// recovery once the endpoint answers again.
    async fn token_endpoint_fault(fault: TokenFault, kind: ErrorKind, floor: Duration) {
        let mock = MockCxone::new();
        let cache = TokenCache::new(source(&mock));
        let first = get(&cache).await.unwrap();
        sleep(Duration::from_secs(3301)).await;
        mock.fail_next_token_requests(10_000, fault);
        let failing_since = Instant::now();
        while first.requested_at().elapsed() < Duration::from_secs(3594) {
            let token = get(&cache).await.expect("the valid token is kept");
            assert!(Arc::ptr_eq(&token, &first));
            sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(
            api_status(&mock, first.header_value()).await,
            StatusCode::OK
        );
        sleep(Duration::from_secs(2)).await;
        let until = Instant::now() + Duration::from_secs(300);
        while Instant::now() < until {
            let error = get(&cache).await.unwrap_err();
            assert_eq!(error.kind(), kind, "{error}");
            sleep(Duration::from_secs(1)).await;
        }
        let failed = requests(&mock) as usize - 1;
        let allowed = max_fetches(failing_since.elapsed(), floor);
        println!("mock {kind:?}: {failed} failed token requests (backoff allows {allowed})");
        assert!(failed <= allowed, "{failed} > {allowed}");

        mock.clear_token_faults();
        let recovering = Instant::now();
        let token = loop {
            if let Ok(token) = get(&cache).await {
                break token;
            }
            sleep(Duration::from_secs(1)).await;
        };
        assert!(recovering.elapsed() <= Duration::from_secs(41));
        assert_eq!(
            api_status(&mock, token.header_value()).await,
            StatusCode::OK
        );
    }

    #[tokio::test(start_paused = true)]
    async fn token_endpoint_503() {
        token_endpoint_fault(
            TokenFault::status(503),
            ErrorKind::Unavailable,
            Duration::ZERO,
        )
        .await;
    }

    #[tokio::test(start_paused = true)]
    async fn token_endpoint_429_retry_after_7() {
        let fault = TokenFault::rate_limited(Duration::from_secs(7));
        token_endpoint_fault(fault, ErrorKind::RateLimited, Duration::from_secs(7)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn token_endpoint_timeouts() {
        // Slower than the source's own 10 s timeout.
        let fault = TokenFault::slow(Duration::from_secs(60));
        token_endpoint_fault(fault, ErrorKind::Timeout, Duration::from_secs(10)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn token_endpoint_garbage() {
        let fault = TokenFault::html();
        token_endpoint_fault(fault, ErrorKind::InvalidResponse, Duration::ZERO).await;
    }

    /// Tokens too short to use, through the token endpoint's JSON.
    #[tokio::test(start_paused = true)]
    async fn a_tiny_expires_in_is_backed_off() {
        for expires_in in ["0.001", "0.05", "\"0.05\""] {
            let mock = MockCxone::new();
            let body = format!(
                r#"{{"access_token":"short-lived","token_type":"Bearer","expires_in":{expires_in}}}"#
            );
            mock.fail_next_token_requests(10_000, TokenFault::body(body));
            let cache = TokenCache::builder(source(&mock))
                .expiry_skew(Duration::ZERO)
                .build();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                assert!(get(&cache).await.is_err(), "{expires_in}");
                sleep(Duration::from_millis(10)).await;
            }
            let sent = requests(&mock);
            assert!(
                sent as usize <= max_fetches(Duration::from_secs(10), Duration::ZERO),
                "expires_in {expires_in}: {sent} token requests in 10 s"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_revoked_token_answered_401_a_thousand_times_is_replaced_once() {
        let mock = MockCxone::new();
        let cache = TokenCache::new(source(&mock));
        let token = cache.token().await.unwrap();
        let header = token.header_value().clone();
        mock.revoke_all();
        let requests_401: Vec<_> = (0..1_000)
            .map(|_| {
                let cache = cache.clone();
                let mock = mock.clone();
                let (header, token) = (header.clone(), Arc::clone(&token));
                tokio::spawn(async move {
                    assert_eq!(api_status(&mock, &header).await, StatusCode::UNAUTHORIZED);
                    cache.invalidate(&token);
                    let fresh = cache.header().await.unwrap();
                    api_status(&mock, &fresh).await
                })
            })
            .collect();
        for status in join_all(requests_401).await {
            assert_eq!(status.unwrap(), StatusCode::OK);
        }
        assert_eq!(requests(&mock), 2);
        assert_eq!(cache.stats().invalidations, 1);
    }
}
