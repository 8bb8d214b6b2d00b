//! What an operator sees of a cache: its status for a readiness probe, its
//! token changes for long-lived connections, and (with the `metrics`
//! feature) its metrics, read through a recording implementation of the
//! `metrics` facade.

use std::time::Duration;

use cxone_auth::mock::{MockCxone, TokenFault};
use cxone_auth::{CacheStatus, ErrorKind, TokenCache};
use tokio::time::{Instant, advance};

use crate::support::mock_grant;

const HOUR: Duration = Duration::from_secs(3600);

/// A cache on the mock's one-hour tokens: refreshed exactly 5 minutes
/// ahead, handed out until 5 s before expiry, backing off 1 s to 30 s.
fn cache(mock: &MockCxone) -> TokenCache {
    TokenCache::builder(mock_grant(mock))
        .name("tenant-a")
        .refresh_jitter(0.0)
        .build()
}

#[tokio::test(start_paused = true)]
async fn the_status_follows_the_cache_from_empty_to_failing_and_back() {
    let mock = MockCxone::builder().token_lifetime(HOUR).build();
    let cache = cache(&mock);
    assert!(matches!(cache.status(), CacheStatus::Empty));
    assert!(!cache.status().has_token());

    // The first fetch (a second long): callers wait, there is no token to
    // hand out.
    mock.set_token_delay(Duration::from_secs(1));
    let first = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    tokio::task::yield_now().await;
    let status = cache.status();
    assert!(
        matches!(status, CacheStatus::Refreshing { usable_for: None }),
        "{status:?}"
    );
    assert!(!status.has_token());
    first.await.unwrap().unwrap();
    mock.set_token_delay(Duration::ZERO);

    let status = cache.status();
    let CacheStatus::Fresh { usable_for } = status else {
        panic!("{status:?}");
    };
    // The lifetime counts from the request; the last 5 s are not handed out.
    assert_eq!(usable_for, HOUR - Duration::from_secs(1 + 5));

    // Past the refresh point a read starts the refresh ahead; the token is
    // still handed out meanwhile.
    mock.fail_next_token_requests(100, TokenFault::status(503));
    advance(Duration::from_secs(56 * 60)).await;
    assert!(cache.cached().is_some());
    let status = cache.status();
    assert!(
        matches!(
            status,
            CacheStatus::Refreshing {
                usable_for: Some(_)
            }
        ),
        "{status:?}"
    );
    assert!(status.has_token());

    // The refresh fails: the token is kept, and the status says since when.
    let refreshed_at = Instant::now();
    while cache.stats().fetch_failures == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = cache.status();
    let CacheStatus::Degraded {
        usable_for,
        failing_since,
        last_error,
    } = &status
    else {
        panic!("{status:?}");
    };
    assert!(*usable_for <= Duration::from_secs(4 * 60 - 5));
    assert!(*failing_since >= refreshed_at && *failing_since <= Instant::now());
    let failed_at = *failing_since;
    assert_eq!(last_error.kind(), ErrorKind::Unavailable);
    assert!(status.has_token());

    // Past expiry, with every refresh failing: no token, and when to retry.
    advance(Duration::from_secs(5 * 60)).await;
    let error = cache.token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    let status = cache.status();
    let CacheStatus::Failing {
        failing_since,
        last_error,
        next_try,
    } = &status
    else {
        panic!("{status:?}");
    };
    assert_eq!(
        *failing_since, failed_at,
        "failures in a row keep their start"
    );
    assert_eq!(last_error.kind(), ErrorKind::Unavailable);
    assert!(*next_try > Instant::now());
    assert!(*next_try <= Instant::now() + Duration::from_secs(30));
    assert!(!status.has_token());

    // The endpoint recovers: the next call after the backoff gets a token.
    mock.clear_token_faults();
    tokio::time::sleep_until(*next_try).await;
    cache.token().await.unwrap();
    assert!(matches!(cache.status(), CacheStatus::Fresh { .. }));
}

#[tokio::test(start_paused = true)]
async fn subscribers_see_each_new_token_and_each_rejected_one_go() {
    let mock = MockCxone::builder().token_lifetime(HOUR).build();
    let cache = cache(&mock);
    let mut changes = cache.subscribe();
    assert!(changes.borrow().is_none());

    let first = cache.token().await.unwrap();
    changes.changed().await.unwrap();
    assert!(
        changes
            .borrow_and_update()
            .as_ref()
            .unwrap()
            .same_token(&first)
    );

    // A 401: the token goes at once, its replacement follows.
    assert!(cache.invalidate(&first));
    assert!(changes.has_changed().unwrap());
    assert!(changes.borrow_and_update().is_none());
    changes.changed().await.unwrap();
    let second = changes.borrow_and_update().clone().unwrap();
    assert!(!second.same_token(&first));
    assert!(cache.cached().unwrap().same_token(&second));

    // A refresh ahead of expiry is a change too; plain reads are not.
    cache.cached();
    assert!(!changes.has_changed().unwrap());
    advance(Duration::from_secs(56 * 60)).await;
    cache.cached();
    changes.changed().await.unwrap();
    let third = changes.borrow_and_update().clone().unwrap();
    assert!(!third.same_token(&second));

    // A subscriber that joins late starts from the current token.
    let late = cache.subscribe();
    assert!(late.borrow().as_ref().unwrap().same_token(&third));
    assert!(!late.has_changed().unwrap());
}

#[cfg(feature = "metrics")]
mod recorded {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use bytes::Bytes;
    use cxone_auth::retry::RetryInfo;
    use cxone_auth::{
        AccessToken, CxoneAuthLayer, CxoneRetryLayer, Error, MemoryStore, StoreLock, StoredToken,
        TokenStore,
    };
    use futures::future::BoxFuture;
    use http::{Request, StatusCode};
    use http_body_util::Full;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
    use tower::{ServiceBuilder, ServiceExt as _};

    use super::*;

    /// Every metric recorded since the last look, by name and labels
    /// (`name{key=value,...}`, labels sorted).
    fn take(snapshotter: &Snapshotter) -> BTreeMap<String, DebugValue> {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let mut labels: Vec<String> = key
                    .labels()
                    .map(|label| format!("{}={}", label.key(), label.value()))
                    .collect();
                labels.sort();
                (format!("{}{{{}}}", key.name(), labels.join(",")), value)
            })
            .collect()
    }

    fn counter(metrics: &BTreeMap<String, DebugValue>, key: &str) -> u64 {
        match metrics.get(key) {
            Some(DebugValue::Counter(n)) => *n,
            other => panic!("{key}: {other:?} in {metrics:#?}"),
        }
    }

    fn gauge(metrics: &BTreeMap<String, DebugValue>, key: &str) -> f64 {
        match metrics.get(key) {
            Some(DebugValue::Gauge(value)) => value.into_inner(),
            other => panic!("{key}: {other:?} in {metrics:#?}"),
        }
    }

    fn histogram(metrics: &BTreeMap<String, DebugValue>, key: &str) -> Vec<f64> {
        match metrics.get(key) {
            Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
            other => panic!("{key}: {other:?} in {metrics:#?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_cache_records_fetches_waits_refreshes_invalidations_and_lifetime() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _recording = metrics::set_default_local_recorder(&recorder);
        let mock = MockCxone::builder()
            .token_lifetime(HOUR)
            .token_delay(Duration::from_millis(200))
            .build();
        let cache = cache(&mock);

        let callers: Vec<_> = (0..3).map(|_| cache.token()).collect();
        let tokens = futures::future::join_all(callers).await;
        let first = tokens[0].as_ref().unwrap();
        let metrics = take(&snapshotter);
        assert_eq!(
            histogram(
                &metrics,
                "cxone_auth.token.fetch.duration{cache=tenant-a,origin=source,outcome=ok}"
            ),
            [0.2]
        );
        assert_eq!(
            histogram(
                &metrics,
                "cxone_auth.token.wait.duration{cache=tenant-a,outcome=ok}"
            ),
            [0.2, 0.2, 0.2],
            "three callers waited for the one fetch"
        );
        assert_eq!(
            gauge(
                &metrics,
                "cxone_auth.token.remaining_lifetime{cache=tenant-a}"
            ),
            3599.0,
            "the token was requested 0.2 s ago"
        );

        // The gauge follows the clock as reads see it.
        advance(Duration::from_secs(600)).await;
        cache.cached().unwrap();
        let metrics = take(&snapshotter);
        assert_eq!(
            gauge(
                &metrics,
                "cxone_auth.token.remaining_lifetime{cache=tenant-a}"
            ),
            2999.0
        );

        // A 401: one invalidation, the gauge drops to zero until the
        // replacement lands.
        assert!(cache.invalidate(first));
        assert!(!cache.invalidate(first), "a repeat is not counted");
        let metrics = take(&snapshotter);
        assert_eq!(
            counter(&metrics, "cxone_auth.token.invalidations{cache=tenant-a}"),
            1
        );
        assert_eq!(
            gauge(
                &metrics,
                "cxone_auth.token.remaining_lifetime{cache=tenant-a}"
            ),
            0.0
        );
        cache.token().await.unwrap();

        // A refresh ahead that fails: counted, with the error's kind.
        mock.fail_next_token_requests(1, TokenFault::status(503));
        advance(Duration::from_secs(56 * 60)).await;
        cache.cached().unwrap();
        while cache.stats().fetch_failures == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let metrics = take(&snapshotter);
        assert_eq!(
            counter(&metrics, "cxone_auth.token.refreshes_ahead{cache=tenant-a}"),
            1
        );
        let failed = histogram(
            &metrics,
            "cxone_auth.token.fetch.duration{cache=tenant-a,error.type=Unavailable,origin=source,outcome=error}",
        );
        assert_eq!(failed.len(), 1);
        assert!(
            metrics.keys().all(|key| !key.contains(first.secret())),
            "no token in a label"
        );
    }

    /// A store that fails while `down` is set.
    #[derive(Debug, Default)]
    struct Flaky {
        down: AtomicBool,
        store: MemoryStore,
    }

    impl Flaky {
        fn call<'a, T: Send + 'a>(
            &'a self,
            call: BoxFuture<'a, Result<T, Error>>,
        ) -> BoxFuture<'a, Result<T, Error>> {
            if self.down.load(Ordering::Relaxed) {
                Box::pin(async { Err(Error::new(ErrorKind::Unavailable, "store down")) })
            } else {
                call
            }
        }
    }

    impl TokenStore for Flaky {
        fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
            self.call(self.store.load(key))
        }
        fn store<'a>(
            &'a self,
            key: &'a str,
            token: &'a StoredToken,
            ttl: Duration,
        ) -> BoxFuture<'a, Result<(), Error>> {
            self.call(self.store.store(key, token, ttl))
        }
        fn invalidate<'a>(
            &'a self,
            key: &'a str,
            token: &'a AccessToken,
        ) -> BoxFuture<'a, Result<(), Error>> {
            self.call(self.store.invalidate(key, token))
        }
        fn try_lock<'a>(
            &'a self,
            key: &'a str,
            ttl: Duration,
        ) -> BoxFuture<'a, Result<Option<StoreLock>, Error>> {
            self.call(self.store.try_lock(key, ttl))
        }
        fn unlock<'a>(&'a self, key: &'a str, lock: StoreLock) -> BoxFuture<'a, Result<(), Error>> {
            self.call(self.store.unlock(key, lock))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn store_availability_is_a_gauge_that_follows_the_store() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _recording = metrics::set_default_local_recorder(&recorder);
        let mock = MockCxone::builder().token_lifetime(HOUR).build();
        let store = Arc::new(Flaky::default());
        let cache = TokenCache::builder(mock_grant(&mock))
            .name("shared")
            .shared_store(store.clone())
            .build();
        const AVAILABLE: &str = "cxone_auth.store.available{cache=shared}";

        store.down.store(true, Ordering::Relaxed);
        let token = cache.token().await.unwrap();
        assert_eq!(gauge(&take(&snapshotter), AVAILABLE), 0.0);

        store.down.store(false, Ordering::Relaxed);
        cache.invalidate(&token);
        cache.token().await.unwrap();
        let metrics = take(&snapshotter);
        assert_eq!(gauge(&metrics, AVAILABLE), 1.0);
        assert_eq!(
            histogram(
                &metrics,
                "cxone_auth.token.fetch.duration{cache=shared,origin=source,outcome=ok}"
            )
            .len(),
            1
        );
    }

    fn get() -> Request<Full<Bytes>> {
        Request::get("https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents")
            .body(Full::default())
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn the_retry_layer_records_replays_waits_and_refusals_under_the_cache_name() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _recording = metrics::set_default_local_recorder(&recorder);
        let mock = MockCxone::builder().token_lifetime(HOUR).build();
        let cache = cache(&mock);
        let client = |retry: CxoneRetryLayer| {
            ServiceBuilder::new()
                .layer(retry)
                .layer(CxoneAuthLayer::new(cache.clone()))
                .service(mock.router())
        };
        let retrying = client(CxoneRetryLayer::new());

        // A 401: one replay with a fresh token.
        retrying.clone().oneshot(get()).await.unwrap();
        mock.revoke_all();
        let response = retrying.clone().oneshot(get()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let metrics = take(&snapshotter);
        assert_eq!(
            counter(
                &metrics,
                "cxone_auth.retry.unauthorized_replays{cache=tenant-a}"
            ),
            1
        );

        // A 429 asking for 2 s: waited, and the wait recorded.
        mock.rate_limit_next_api_calls(1, Duration::from_secs(2));
        let response = retrying.clone().oneshot(get()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.extensions().get::<RetryInfo>().unwrap().waited,
            Duration::from_secs(2)
        );
        let metrics = take(&snapshotter);
        assert_eq!(
            histogram(
                &metrics,
                "cxone_auth.retry.wait.duration{cache=tenant-a,http.response.status_code=429}"
            ),
            [2.0]
        );

        // A budget that allows no retry refuses the next one.
        let broke = client(
            CxoneRetryLayer::builder()
                .budget(Duration::from_secs(10), 0, 0.0)
                .build(),
        );
        mock.rate_limit_next_api_calls(1, Duration::from_secs(2));
        let response = broke.oneshot(get()).await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let metrics = take(&snapshotter);
        assert_eq!(
            counter(
                &metrics,
                "cxone_auth.retry.budget_exhausted{cache=tenant-a,http.response.status_code=429}"
            ),
            1
        );
    }
}
