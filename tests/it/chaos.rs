//! Chaos: 20,000 API requests from 64 concurrent callers through the whole
//! stack (`CxoneRetryLayer` over `CxoneAuthLayer` over the mock CXone's
//! router, in memory, tokens from `AccessKeyGrant` through the same router)
//! while the token endpoint fails in turn with a 503, a 429 with
//! `Retry-After`, answers slower than the source's timeout, truncated JSON,
//! an HTML page and a body that trickles in; and while the API answers 429
//! at random, half of those with a `Retry-After` and half without one (so the
//! retry layer backs off on its own schedule), and, while the token endpoint
//! is healthy, revokes tokens at random. (It revokes none while a fault is
//! on: with no way to get another token, a revoked token serves no one, and
//! the test checks that the valid token keeps serving through the fault.
//! Nor one in the first second it is used, while the cache may still hold
//! it against a second invalidation; see [`ChaosApi`].)
//!
//! Revocations are tracked per token, not per request: a request whose
//! token another request's call revoked gets a 401 just the same, and is
//! judged by whether the token it carried was revoked.
//!
//! Time is paused: the run covers about twenty minutes of tokio's clock in a
//! few seconds, and every random choice comes from a fixed seed, so a run is
//! repeatable.
//!
//! What it proves:
//! - no request fails while the cache holds a token the API accepts: every
//!   failure happened with no valid token (the API's own 429, returned after
//!   the retry layer's last attempt, is counted apart: it is the API's
//!   answer, not the stack's; a request whose replay carried a token that
//!   was revoked, by its own call or another request's, is counted apart
//!   too);
//! - the retry layer carries requests through the API's 429s, those with a
//!   `Retry-After` and those without one;
//! - each failure is the typed error naming the fault that caused it;
//! - the token endpoint receives no more requests than the cache's backoff
//!   allows (the bound is derived below from its constants);
//! - within a bound derived the same way after each fault stops, every
//!   request succeeds again.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use cxone_auth::mock::{
    ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLIENT_ID, CLIENT_SECRET, MockCxone, TokenFault,
};
use cxone_auth::token::{AccessKeyGrant, ServiceTransport};
use cxone_auth::{CxoneAuthLayer, CxoneRetryLayer, Error, ErrorKind, TokenCache};
use futures::future::BoxFuture;
use http::header::{AUTHORIZATION, RETRY_AFTER};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty, Full};
use tokio::time::{Instant, sleep, sleep_until};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt as _};

// The crate's documented defaults, which this test's bounds are made of.
const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(300);
const DEFAULT_EXPIRY_SKEW: Duration = Duration::from_secs(5);
const DEFAULT_REFRESH_JITTER: f64 = 0.1;
const DEFAULT_BACKOFF_MIN: Duration = Duration::from_secs(1);
const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);
const DEFAULT_MAX_ATTEMPTS: u32 = 3;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests sent in all.
const REQUESTS: usize = 20_000;
/// Callers sending at once; each sends its next request when its previous
/// one is answered and its turn has come.
const CALLERS: usize = 64;
/// Every random choice of the run (the API's chaos, the cache's jitter, the
/// mock's token ids) comes from this seed.
const SEED: u64 = 0x00c4_a05e_ed00_0007;

/// How long the mock's tokens live: short, so faults outlast tokens.
const TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// The chance that the API revokes the token of a call it receives (while
/// the token endpoint is healthy).
const REVOKE_CHANCE: f64 = 0.003;
/// The chance that the API answers a call with 429: half of them with
/// [`API_RETRY_AFTER`], half with no `Retry-After`.
const RATE_LIMIT_CHANCE: f64 = 0.02;
/// The `Retry-After` of the API's 429s that have one.
const API_RETRY_AFTER: Duration = Duration::from_secs(1);
/// The `Retry-After` of the token endpoint's 429s.
const TOKEN_RETRY_AFTER: Duration = Duration::from_secs(5);
/// How late a "slow" token endpoint answers: past the source's timeout.
const SLOW_ANSWER: Duration = Duration::from_secs(30);
/// A trickling body sends this many bytes per pause.
const TRICKLE_BYTES: usize = 16;
const TRICKLE_PAUSE: Duration = Duration::from_secs(1);

/// Healthy time before the first fault.
const WARM_UP: Duration = Duration::from_secs(30);
/// How long each fault lasts: longer than a token lives, so the valid token
/// runs out during it and callers must be told why.
const FAULT: Duration = Duration::from_secs(100);
/// Healthy time after each fault: more than [`RECOVERY`].
const GAP: Duration = Duration::from_secs(60);
/// The time planned for all requests; they are spread evenly over it.
const PLANNED: Duration = Duration::from_secs(30 + 6 * 160 + 150);

/// How soon after a fault stops every request succeeds again: the last
/// failing token request may still run for the source's timeout, then the
/// cache waits at most its longest backoff before asking again, and the next
/// request asks at once.
const RECOVERY: Duration = DEFAULT_TIMEOUT
    .saturating_add(DEFAULT_BACKOFF_MAX)
    .saturating_add(Duration::from_secs(1));

/// The shortest time between two refreshes of a healthy cache: a token is
/// refreshed `min(DEFAULT_REFRESH_BEFORE, lifetime / 2)` before it expires,
/// taken up to `DEFAULT_REFRESH_JITTER` of that margin earlier.
fn min_refresh_interval() -> Duration {
    let margin = DEFAULT_REFRESH_BEFORE.min(TOKEN_LIFETIME / 2);
    TOKEN_LIFETIME - margin.mul_f64(1.0 + DEFAULT_REFRESH_JITTER)
}

/// The most token requests a failing endpoint can receive within `window`
/// from the cache's first failure: after the k-th failure in a row the cache
/// waits at least half of `min(DEFAULT_BACKOFF_MIN * 2^(k-1),
/// DEFAULT_BACKOFF_MAX)` (its "equal jitter"), and at least the
/// `Retry-After` (capped at `DEFAULT_BACKOFF_MAX`); each request itself
/// takes `takes` before it fails.
fn max_failing_requests(window: Duration, takes: Duration, retry_after: Duration) -> usize {
    let mut at = Duration::ZERO;
    let mut requests = 0;
    for k in 0u32.. {
        if at >= window {
            break;
        }
        requests += 1;
        let step = DEFAULT_BACKOFF_MIN
            .saturating_mul(1 << k.min(31))
            .min(DEFAULT_BACKOFF_MAX);
        at += takes + (step / 2).max(retry_after.min(DEFAULT_BACKOFF_MAX));
    }
    requests
}

/// The faults of the token endpoint, in the order they strike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Unavailable,
    RateLimited,
    Slow,
    TruncatedJson,
    Html,
    TricklingBody,
}

const FAULTS: [Fault; 6] = [
    Fault::Unavailable,
    Fault::RateLimited,
    Fault::Slow,
    Fault::TruncatedJson,
    Fault::Html,
    Fault::TricklingBody,
];

impl Fault {
    /// When the fault starts and stops, from the start of the run.
    fn window(index: usize) -> (Duration, Duration) {
        let start = WARM_UP + (FAULT + GAP) * index as u32;
        (start, start + FAULT)
    }

    fn begin(self, mock: &MockCxone, idp: &ChaosIdp) {
        // More than the backoff lets through in one fault.
        const QUEUED: usize = 1_000;
        match self {
            Fault::Unavailable => mock.fail_next_token_requests(QUEUED, TokenFault::status(503)),
            Fault::RateLimited => {
                mock.fail_next_token_requests(QUEUED, TokenFault::rate_limited(TOKEN_RETRY_AFTER))
            }
            Fault::Slow => mock.fail_next_token_requests(QUEUED, TokenFault::slow(SLOW_ANSWER)),
            Fault::TruncatedJson => {
                mock.fail_next_token_requests(QUEUED, TokenFault::truncated_json())
            }
            Fault::Html => mock.fail_next_token_requests(QUEUED, TokenFault::html()),
            Fault::TricklingBody => idp.trickle.store(true, Ordering::SeqCst),
        }
    }

    fn end(self, mock: &MockCxone, idp: &ChaosIdp) {
        mock.clear_token_faults();
        idp.trickle.store(false, Ordering::SeqCst);
    }

    /// How long a failing token request takes, and the `Retry-After` it
    /// brings back.
    fn pace(self) -> (Duration, Duration) {
        match self {
            Fault::Slow | Fault::TricklingBody => (DEFAULT_TIMEOUT, Duration::ZERO),
            Fault::RateLimited => (Duration::ZERO, TOKEN_RETRY_AFTER),
            Fault::Unavailable | Fault::TruncatedJson | Fault::Html => {
                (Duration::ZERO, Duration::ZERO)
            }
        }
    }

    /// Whether `error` is the typed error that names this fault.
    fn names(self, error: &Error) -> bool {
        let text = error.to_string();
        match self {
            Fault::Unavailable => {
                error.kind() == ErrorKind::Unavailable
                    && error.status() == Some(StatusCode::SERVICE_UNAVAILABLE)
            }
            Fault::RateLimited => {
                error.kind() == ErrorKind::RateLimited
                    && error.status() == Some(StatusCode::TOO_MANY_REQUESTS)
                    && error.retry_after() == Some(TOKEN_RETRY_AFTER)
            }
            Fault::Slow | Fault::TricklingBody => {
                error.kind() == ErrorKind::Timeout
                    && text.contains("the token request took longer than")
            }
            Fault::TruncatedJson | Fault::Html => {
                error.kind() == ErrorKind::InvalidResponse
                    && text.contains("the token response is not a JSON object")
            }
        }
    }
}

/// The mock's router as the token source sees it: records when each token
/// request arrives and which tokens reach the source whole, and, while
/// `trickle` is set, sends the body of each answer a few bytes at a time.
#[derive(Clone)]
struct ChaosIdp {
    router: Router,
    trickle: Arc<AtomicBool>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    delivered: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl ChaosIdp {
    /// Whether the latest token the source received is still valid: the API
    /// accepts it (not revoked, not expired) and it is before the point
    /// where a cache must stop handing it out (its lifetime less the expiry
    /// skew, counted from its request). Judged apart from what the cache
    /// holds, so a cache that dropped such a token and failed a request
    /// would be caught. (A token that a newer one replaced does not count:
    /// the cache moves on to the newest.)
    fn valid_token_exists(&self, mock: &MockCxone) -> bool {
        let usable_for = TOKEN_LIFETIME - DEFAULT_EXPIRY_SKEW.min(TOKEN_LIFETIME / 4);
        self.delivered
            .lock()
            .unwrap()
            .last()
            .is_some_and(|(at, token)| {
                Instant::now() < *at + usable_for && mock.is_token_active(token)
            })
    }
}

impl Service<Request<Full<Bytes>>> for ChaosIdp {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let arrived = Instant::now();
        self.arrivals.lock().unwrap().push(arrived);
        let trickle = self.trickle.load(Ordering::SeqCst);
        let answer = self.router.clone().oneshot(request);
        let delivered = Arc::clone(&self.delivered);
        Box::pin(async move {
            let (parts, body) = answer.await?.into_parts();
            let whole = body.collect().await.expect("the mock's body").to_bytes();
            if !trickle {
                let token = serde_json::from_slice::<serde_json::Value>(&whole)
                    .ok()
                    .and_then(|json| json["access_token"].as_str().map(str::to_owned));
                if let Some(token) = token.filter(|_| parts.status == StatusCode::OK) {
                    delivered.lock().unwrap().push((arrived, token));
                }
                return Ok(Response::from_parts(parts, Body::from(whole)));
            }
            let trickling = futures::stream::unfold(whole, |mut rest| async move {
                if rest.is_empty() {
                    return None;
                }
                sleep(TRICKLE_PAUSE).await;
                let chunk = rest.split_to(rest.len().min(TRICKLE_BYTES));
                Some((Ok::<_, Infallible>(chunk), rest))
            });
            Ok(Response::from_parts(parts, Body::from_stream(trickling)))
        })
    }
}

/// One API call as the API saw it.
#[derive(Debug, Clone)]
struct ApiCall {
    request: usize,
    /// The bearer token the call carried.
    token: Option<String>,
    status: StatusCode,
    /// The `Retry-After` of the answer, if it had one.
    retry_after: Option<HeaderValue>,
    /// Whether the API revoked the call's token just before answering it.
    revoked: bool,
}

/// The mock's router as the API: before each call, revokes its token or
/// queues a 429, with or without `Retry-After`, at random. It revokes no
/// token while `outage` is set, nor one it first saw less than
/// `DEFAULT_BACKOFF_MIN` ago: the cache holds a token fetched to replace a
/// rejected one for up to that long after fetching it (so that a server
/// refusing every token costs a fetch per backoff), and requests that carry
/// a held token after it is revoked would get 401s of their own.
#[derive(Clone)]
struct ChaosApi {
    router: Router,
    mock: MockCxone,
    rng: Arc<Mutex<fastrand::Rng>>,
    /// Set while a fault of the token endpoint is on.
    outage: Arc<AtomicBool>,
    /// When the API first saw each token.
    first_seen: Arc<Mutex<HashMap<String, Instant>>>,
    calls: Arc<Mutex<Vec<ApiCall>>>,
}

impl Service<Request<Empty<Bytes>>> for ChaosApi {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Empty<Bytes>>) -> Self::Future {
        let id = request.headers()["x-chaos-request"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let token = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::to_owned);
        if let Some(token) = &token {
            let mut first_seen = self.first_seen.lock().unwrap();
            first_seen.entry(token.clone()).or_insert_with(Instant::now);
        }
        let draw = self.rng.lock().unwrap().f64();
        let mut revoked = false;
        if draw < REVOKE_CHANCE {
            let settled = token.as_ref().is_some_and(|token| {
                self.first_seen.lock().unwrap()[token] + DEFAULT_BACKOFF_MIN <= Instant::now()
            });
            if settled && !self.outage.load(Ordering::SeqCst) {
                revoked = token.as_ref().is_some_and(|token| self.mock.revoke(token));
            }
        } else if draw < REVOKE_CHANCE + RATE_LIMIT_CHANCE {
            let with_retry_after = draw < REVOKE_CHANCE + RATE_LIMIT_CHANCE / 2.0;
            self.mock
                .rate_limit_next_api_calls(1, with_retry_after.then_some(API_RETRY_AFTER));
        }
        let answer = self.router.clone().oneshot(request);
        let calls = Arc::clone(&self.calls);
        Box::pin(async move {
            let response = answer.await?;
            calls.lock().unwrap().push(ApiCall {
                request: id,
                token,
                status: response.status(),
                retry_after: response.headers().get(RETRY_AFTER).cloned(),
                revoked,
            });
            Ok(response)
        })
    }
}

/// How one request ended.
enum Outcome {
    Answered(StatusCode),
    Failed(Error),
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Answered(status) => write!(f, "{status}"),
            Outcome::Failed(error) => write!(f, "{:?}: {error}", error.kind()),
        }
    }
}

#[derive(Debug)]
struct Sent {
    request: usize,
    started: Duration,
    ended: Duration,
    outcome: Outcome,
    /// For a request that did not succeed: whether a valid token existed
    /// right then ([`ChaosIdp::valid_token_exists`]).
    valid_token_at_failure: bool,
}

impl Sent {
    fn succeeded(&self) -> bool {
        matches!(self.outcome, Outcome::Answered(status) if status.is_success())
    }
}

#[tokio::test(start_paused = true)]
async fn twenty_thousand_requests_through_token_and_api_faults() {
    fastrand::seed(SEED);
    // A CXone host, so a 401 from it costs the token; no DNS: the mock is in memory.
    let mock = MockCxone::builder()
        .token_lifetime(TOKEN_LIFETIME)
        .api_endpoint("https://api-na1.niceincontact.com")
        .build();
    let idp = ChaosIdp {
        router: mock.router(),
        trickle: Arc::default(),
        arrivals: Arc::default(),
        delivered: Arc::default(),
    };
    let source = AccessKeyGrant::new(CLIENT_ID, CLIENT_SECRET, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        .unwrap()
        .token_url(mock.token_url())
        .unwrap()
        .transport(ServiceTransport::new(idp.clone()));
    let tokens = TokenCache::new(source);
    let api = ChaosApi {
        router: mock.router(),
        mock: mock.clone(),
        rng: Arc::new(Mutex::new(fastrand::Rng::with_seed(SEED))),
        outage: Arc::default(),
        first_seen: Arc::default(),
        calls: Arc::default(),
    };
    let client = ServiceBuilder::new()
        .layer(CxoneRetryLayer::default())
        .layer(CxoneAuthLayer::new(tokens.clone()))
        .service(api.clone());

    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let spacing = PLANNED / REQUESTS as u32;
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let mut client = client.clone();
            let next = Arc::clone(&next);
            let idp = idp.clone();
            let mock = mock.clone();
            let base = mock.api_endpoint();
            tokio::spawn(async move {
                let mut sent = Vec::new();
                loop {
                    let request = next.fetch_add(1, Ordering::SeqCst);
                    if request >= REQUESTS {
                        return sent;
                    }
                    sleep_until(start + spacing * request as u32).await;
                    let read = if request.is_multiple_of(2) {
                        "agents?top=5"
                    } else {
                        "server-time"
                    };
                    let http_request =
                        Request::get(format!("{base}/inContactAPI/services/v34.0/{read}"))
                            .header("x-chaos-request", HeaderValue::from(request))
                            .body(Empty::<Bytes>::new())
                            .unwrap();
                    let started = start.elapsed();
                    let result: Result<Response<Body>, BoxError> =
                        async { client.ready().await?.call(http_request).await }.await;
                    let outcome = match result {
                        Ok(response) => Outcome::Answered(response.status()),
                        Err(error) => Outcome::Failed(
                            error
                                .downcast_ref::<Error>()
                                .cloned()
                                .unwrap_or_else(|| panic!("an untyped error: {error}")),
                        ),
                    };
                    let mut sent_now = Sent {
                        request,
                        started,
                        ended: start.elapsed(),
                        outcome,
                        valid_token_at_failure: false,
                    };
                    if !sent_now.succeeded() {
                        sent_now.valid_token_at_failure = idp.valid_token_exists(&mock);
                    }
                    sent.push(sent_now);
                }
            })
        })
        .collect();

    for (index, fault) in FAULTS.iter().enumerate() {
        let (from, until) = Fault::window(index);
        sleep_until(start + from).await;
        api.outage.store(true, Ordering::SeqCst);
        fault.begin(&mock, &idp);
        sleep_until(start + until).await;
        fault.end(&mock, &idp);
        api.outage.store(false, Ordering::SeqCst);
    }
    let mut sent = Vec::with_capacity(REQUESTS);
    for caller in callers {
        sent.extend(caller.await.unwrap());
    }
    sent.sort_by_key(|s| s.request);
    let run = start.elapsed();
    let (_, last_fault_end) = Fault::window(FAULTS.len() - 1);
    assert_eq!(sent.len(), REQUESTS);
    assert!(
        sent.last().unwrap().started > last_fault_end + RECOVERY + Duration::from_secs(30),
        "the run ends long after the faults: {run:?}"
    );

    let calls = api.calls.lock().unwrap().clone();
    let mut calls_of: Vec<Vec<&ApiCall>> = vec![Vec::new(); REQUESTS];
    for call in &calls {
        calls_of[call.request].push(call);
    }
    // Every token the API revoked, whichever request's call revoked it.
    let revoked_tokens: HashSet<&str> = calls
        .iter()
        .filter(|c| c.revoked)
        .filter_map(|c| c.token.as_deref())
        .collect();
    let arrivals = idp.arrivals.lock().unwrap().clone();
    let arrivals: Vec<Duration> = arrivals.iter().map(|at| *at - start).collect();
    let fault_at = |at: Duration| {
        FAULTS.iter().enumerate().find_map(|(index, fault)| {
            let (from, until) = Fault::window(index);
            (from <= at && at < until).then_some(*fault)
        })
    };

    // Every failure is explained, and none happened while a valid token
    // was at hand.
    let mut failed_by_fault = [0usize; FAULTS.len()];
    let mut api_refusals = 0;
    let mut replays_revoked_again = 0;
    // Requests whose failure was the API's doing (a 429 returned after the
    // last attempt, or a replay whose fresh token was revoked too).
    let mut refused_by_api = vec![false; REQUESTS];
    for s in sent.iter().filter(|s| !s.succeeded()) {
        let calls = &calls_of[s.request];
        match &s.outcome {
            Outcome::Failed(error) => {
                // The error comes from the last token request before it.
                let last = arrivals
                    .iter()
                    .rev()
                    .find(|at| **at <= s.ended)
                    .expect("a failure comes from a token request");
                let fault = fault_at(*last).unwrap_or_else(|| {
                    panic!("{s:?} after a token request at {last:?}, in no fault")
                });
                assert!(
                    fault.names(error),
                    "{s:?} should name {fault:?} (its token request at {last:?})"
                );
                failed_by_fault[FAULTS.iter().position(|f| *f == fault).unwrap()] += 1;
                assert!(
                    !s.valid_token_at_failure,
                    "failed with a valid token: {s:?}"
                );
            }
            Outcome::Answered(StatusCode::TOO_MANY_REQUESTS) => {
                // The API's own answer: returned once the retry layer has
                // sent it DEFAULT_MAX_ATTEMPTS times and got 429 each time.
                let attempts = DEFAULT_MAX_ATTEMPTS as usize;
                assert!(
                    calls.len() >= attempts
                        && calls[calls.len() - attempts..]
                            .iter()
                            .all(|c| c.status == StatusCode::TOO_MANY_REQUESTS),
                    "{s:?}: {calls:?}"
                );
                api_refusals += 1;
                refused_by_api[s.request] = true;
            }
            Outcome::Answered(StatusCode::UNAUTHORIZED) => {
                // Its token was revoked (by its own call or another
                // request's), it was replayed once with a fresh token, and
                // that one was revoked too: exactly two 401s, the last call
                // among them, for two different tokens, both revoked.
                let refused: Vec<&&ApiCall> = calls
                    .iter()
                    .filter(|c| c.status == StatusCode::UNAUTHORIZED)
                    .collect();
                assert!(
                    refused.len() == 2
                        && calls.last().unwrap().status == StatusCode::UNAUTHORIZED
                        && refused[0].token != refused[1].token
                        && refused.iter().all(|c| {
                            c.token
                                .as_deref()
                                .is_some_and(|token| revoked_tokens.contains(token))
                        }),
                    "{s:?}: {calls:?}"
                );
                assert!(
                    !s.valid_token_at_failure,
                    "failed with a valid token: {s:?}"
                );
                replays_revoked_again += 1;
                refused_by_api[s.request] = true;
            }
            Outcome::Answered(status) => panic!("unexpected {status}: {s:?}: {calls:?}"),
        }
    }
    let failed = sent.iter().filter(|s| !s.succeeded()).count();

    // The API's 429s came both with and without `Retry-After`, and the
    // retry layer carried requests through both kinds.
    for with_retry_after in [true, false] {
        let recovered = sent
            .iter()
            .filter(|s| {
                s.succeeded()
                    && calls_of[s.request].iter().any(|c| {
                        c.status == StatusCode::TOO_MANY_REQUESTS
                            && c.retry_after.is_some() == with_retry_after
                    })
            })
            .count();
        println!(
            "{recovered} requests succeeded after a 429 {} Retry-After",
            if with_retry_after { "with" } else { "without" }
        );
        assert!(
            recovered > 100,
            "{recovered} (Retry-After: {with_retry_after})"
        );
    }

    // Each fault made requests fail; while the token endpoint failed, the
    // valid token kept serving until it ran out (or was revoked).
    let mut served_through_failed_refreshes = 0;
    for (index, fault) in FAULTS.iter().enumerate() {
        let (from, until) = Fault::window(index);
        let first_failed_fetch = arrivals.iter().find(|at| from <= **at).unwrap();
        let first_failure = sent
            .iter()
            .filter(|s| s.started >= from && matches!(s.outcome, Outcome::Failed(_)))
            .map(|s| s.ended)
            .min();
        let served_after = sent
            .iter()
            .filter(|s| s.started > *first_failed_fetch && s.started < until && s.succeeded())
            .count();
        println!(
            "{fault:?}: first token request at +{:?}, first failure at +{:?}, {served_after} \
             served after the first token request failed, {} failed",
            *first_failed_fetch - from,
            first_failure.map(|at| at - from),
            failed_by_fault[index]
        );
        assert!(failed_by_fault[index] > 0, "{fault:?} made nothing fail");
        served_through_failed_refreshes += served_after;
    }
    assert!(
        served_through_failed_refreshes > 100,
        "{served_through_failed_refreshes} requests served while refreshes failed"
    );

    // The token endpoint got no more requests than the backoff allows.
    let mut bound = 0;
    let mut healthy_from = Duration::ZERO;
    for (index, fault) in FAULTS.iter().enumerate() {
        let (from, until) = Fault::window(index);
        let (takes, retry_after) = fault.pace();
        let allowed = max_failing_requests(until - from, takes, retry_after);
        let received = arrivals
            .iter()
            .filter(|at| from <= **at && **at < until)
            .count();
        println!("{fault:?}: {received} token requests (the backoff allows {allowed})");
        assert!(received <= allowed, "{fault:?}: {received} > {allowed}");
        bound += allowed;
        bound += (from - healthy_from).div_duration_f64(min_refresh_interval()) as usize + 1;
        healthy_from = until;
    }
    bound += (run - healthy_from).div_duration_f64(min_refresh_interval()) as usize + 1;
    let revoked = calls.iter().filter(|c| c.revoked).count();
    bound += revoked;
    println!(
        "{} token requests in {run:?}; bound {bound} (backoff, one refresh per {:?} when \
         healthy, one per revoked token: {revoked})",
        arrivals.len(),
        min_refresh_interval()
    );
    assert!(arrivals.len() <= bound, "{} > {bound}", arrivals.len());
    // One 401 per revoked token: the cache dropped each token at its
    // first 401, so no other request carried it.
    assert_eq!(mock.stats().api_unauthorized, revoked as u64);

    // After each fault, within RECOVERY, everything succeeds again.
    for (index, fault) in FAULTS.iter().enumerate() {
        let (_, until) = Fault::window(index);
        let next_fault = FAULTS
            .get(index + 1)
            .map_or(Duration::MAX, |_| Fault::window(index + 1).0);
        let recovered: Vec<&Sent> = sent
            .iter()
            .filter(|s| s.started >= until + RECOVERY && s.ended < next_fault)
            .collect();
        assert!(recovered.len() > 100, "{fault:?}: {}", recovered.len());
        for s in recovered {
            assert!(
                s.succeeded() || refused_by_api[s.request],
                "not recovered {:?} after {fault:?}: {s:?}",
                s.started - until,
            );
        }
    }
    let tail = &sent[sent.len() - 1_000..];
    assert!(
        tail.iter()
            .all(|s| s.succeeded() || refused_by_api[s.request]),
        "the last 1,000 requests succeed"
    );
    assert!(
        tokens
            .cached()
            .is_some_and(|token| mock.is_token_active(token.secret()))
    );

    let stats = mock.stats();
    println!(
        "{REQUESTS} requests in {run:?} of paused time: {} succeeded, {failed} failed \
         ({failed_by_fault:?} by fault, {api_refusals} 429s returned after {DEFAULT_MAX_ATTEMPTS} \
         attempts, {replays_revoked_again} replays whose fresh token was revoked too); API: \
         {} calls, {} 429s, {} 401s; {revoked} tokens revoked; cache {:?}",
        REQUESTS - failed,
        stats.api_calls,
        stats.api_rate_limited,
        stats.api_unauthorized,
        tokens.stats(),
    );
}
