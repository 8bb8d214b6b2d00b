//! One fetch: from the shared store when it holds a fresh token, else from
//! the source (under the store's lock), in one `tracing` span `token_fetch`
//! that never holds the token. Store failures are logged, never returned.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;
use tracing::Instrument as _;
use tracing::field::{Empty, display};

use super::Counters;
use super::store::{StoreLock, StoredToken, TokenStore};
use super::timing::Timing;
use crate::backoff::later;
use crate::metrics::{self, CacheName};
use crate::token::DynTokenSource;
use crate::{AccessToken, Error};

/// The longest a single call to a [`TokenStore`] may take before the cache
/// goes on without it: a store on the same network answers in a millisecond,
/// and a slow one must not slow every token fetch.
const STORE_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The first pause between looks at the store while another cache holds its
/// lock; pauses then double up to [`STORE_POLL_MAX`].
const STORE_POLL_FIRST: Duration = Duration::from_millis(50);
const STORE_POLL_MAX: Duration = Duration::from_millis(500);

/// The shortest lifetime a token may have to be used: a shorter one would
/// have the cache fetch faster than its backoff lets a failing source be
/// asked (an `expires_in` of 0.05 s once cost a fetch per call).
const MIN_LIFETIME: Duration = Duration::from_secs(1);

/// Why a fetch started.
pub(super) enum Reason {
    /// No usable token: callers are waiting.
    Cold,
    /// Past the refresh point: callers keep the current token meanwhile.
    Ahead,
    /// This token was invalidated (a 401).
    Invalidated(Arc<AccessToken>),
}

impl Reason {
    fn as_str(&self) -> &'static str {
        match self {
            Reason::Cold => "cold",
            Reason::Ahead => "ahead",
            Reason::Invalidated(_) => "invalidated",
        }
    }
}

/// Everything a fetch needs, cheap to clone into its task.
#[derive(Clone)]
pub(super) struct Fetch {
    pub(super) source: Arc<dyn DynTokenSource>,
    pub(super) store: Option<(Arc<dyn TokenStore>, String)>,
    pub(super) timing: Timing,
    pub(super) fetch_timeout: Duration,
    pub(super) store_wait: Duration,
    pub(super) counters: Arc<Counters>,
    /// The cache's name, for its metrics.
    pub(super) name: CacheName,
}

impl Fetch {
    /// Obtains a usable token; `stale` is the token being replaced, never
    /// taken back from the store.
    pub(super) async fn run(
        self,
        reason: Reason,
        stale: Option<Arc<AccessToken>>,
    ) -> Result<AccessToken, Error> {
        let span = tracing::info_span!(
            "token_fetch",
            reason = reason.as_str(),
            origin = Empty,
            outcome = Empty,
            duration_ms = Empty,
            lifetime_s = Empty,
            scopes = Empty,
        );
        let started = Instant::now();
        let invalidated = matches!(reason, Reason::Invalidated(_));
        let (result, from_store, lock) = self
            .obtain(invalidated, stale.as_deref())
            .instrument(span.clone())
            .await;
        let result = result.and_then(|token| self.usable(token));
        let took = started.elapsed();
        metrics::fetched(&self.name, &result, from_store, took);
        span.record("origin", if from_store { "store" } else { "source" });
        span.record("duration_ms", took.as_millis());
        match &result {
            Ok(token) => {
                span.record("outcome", "ok");
                span.record("lifetime_s", token.lifetime().as_secs());
                span.record("scopes", display(token.scopes().join(" ")));
                tracing::info!(parent: &span, "token obtained");
            }
            Err(error) => {
                self.counters.fetch_failures.fetch_add(1, Relaxed);
                span.record("outcome", "error");
                tracing::warn!(parent: &span, error = %error, "token fetch failed");
            }
        }
        if let Some((store, key)) = &self.store {
            self.publish(&**store, key, &result, from_store, lock)
                .instrument(span)
                .await;
        }
        result
    }

    /// A token living less than [`MIN_LIFETIME`], expired, or expiring within
    /// the skew, is a failed fetch: the backoff then keeps a broken source
    /// from being called in a loop, whatever the skew.
    fn usable(&self, token: AccessToken) -> Result<AccessToken, Error> {
        if token.lifetime() >= MIN_LIFETIME
            && Instant::now() < self.timing.schedule(&token, 0.0).usable_until
        {
            return Ok(token);
        }
        Err(Error::invalid_response(format!(
            "the token source returned a token too short-lived to use: under {MIN_LIFETIME:?}, already expired, or expiring within the expiry skew (lifetime {:?})",
            token.lifetime()
        )))
    }

    /// Shares a token fetched from the source for its remaining lifetime
    /// less the refresh buffer (the latest refresh point, without jitter),
    /// so the store never holds a token that is due for refresh; then frees
    /// the lock.
    async fn publish(
        &self,
        store: &dyn TokenStore,
        key: &str,
        result: &Result<AccessToken, Error>,
        from_store: bool,
        lock: Option<StoreLock>,
    ) {
        if let (false, Ok(token)) = (from_store, result) {
            let now = Instant::now();
            let ttl = self
                .timing
                .schedule(token, 0.0)
                .refresh_at
                .saturating_duration_since(now);
            let stored = StoredToken::from_token(token, now);
            self.store_call("store", store.store(key, &stored, ttl))
                .await;
        }
        if let Some(lock) = lock {
            self.store_call("unlock", store.unlock(key, lock)).await;
        }
    }

    /// The token, whether it came from the store, and the store lock held.
    async fn obtain(
        &self,
        invalidated: bool,
        stale: Option<&AccessToken>,
    ) -> (Result<AccessToken, Error>, bool, Option<StoreLock>) {
        let Some((store, key)) = &self.store else {
            return (self.fetch_source().await, false, None);
        };
        let store = &**store;
        if let (true, Some(stale)) = (invalidated, stale) {
            self.store_call("invalidate", store.invalidate(key, stale))
                .await;
        }
        if let Some(token) = self.load_fresh(store, key, stale).await {
            return (Ok(token), true, None);
        }
        let lock = match self
            .store_call("try_lock", store.try_lock(key, self.fetch_timeout))
            .await
        {
            Some(Some(lock)) => Some(lock),
            // Another cache is fetching: wait for its token, or for the lock.
            Some(None) => match self.wait_for_store(store, key, stale).await {
                Ok(token) => return (Ok(token), true, None),
                Err(lock) => lock,
            },
            None => None,
        };
        // Another cache may have published and released the lock between the
        // look above and taking it: look once more under the lock.
        if let Some(lock) = &lock
            && let Some(token) = self.load_fresh(store, key, stale).await
        {
            self.store_call("unlock", store.unlock(key, lock.clone()))
                .await;
            return (Ok(token), true, None);
        }
        (self.fetch_source().await, false, lock)
    }

    /// Looks at the store with growing pauses until a fresh token appears
    /// (`Ok`) or the lock comes free (`Err` with it), for at most
    /// `store_wait`, so that a lock holder that died stalls no one longer.
    async fn wait_for_store(
        &self,
        store: &dyn TokenStore,
        key: &str,
        stale: Option<&AccessToken>,
    ) -> Result<AccessToken, Option<StoreLock>> {
        let deadline = later(Instant::now(), self.store_wait);
        let mut pause = STORE_POLL_FIRST;
        while Instant::now() < deadline {
            tokio::time::sleep_until(later(Instant::now(), pause).min(deadline)).await;
            pause = (pause * 2).min(STORE_POLL_MAX);
            if let Some(token) = self.load_fresh(store, key, stale).await {
                return Ok(token);
            }
            match self
                .store_call("try_lock", store.try_lock(key, self.fetch_timeout))
                .await
            {
                Some(Some(lock)) => return Err(Some(lock)),
                Some(None) => {}
                None => return Err(None),
            }
        }
        Err(None)
    }

    async fn fetch_source(&self) -> Result<AccessToken, Error> {
        self.counters.fetches.fetch_add(1, Relaxed);
        let limit = self.fetch_timeout;
        tokio::time::timeout(limit, self.source.fetch_boxed())
            .await
            .unwrap_or_else(|_| {
                Err(Error::timeout(format!(
                    "the token source did not answer within the fetch timeout ({limit:?})"
                )))
            })
    }

    /// A token from the store, if it is usable and not yet due for refresh
    /// (at its earliest possible refresh point), and is not `stale`.
    async fn load_fresh(
        &self,
        store: &dyn TokenStore,
        key: &str,
        stale: Option<&AccessToken>,
    ) -> Option<AccessToken> {
        let stored = self.store_call("load", store.load(key)).await??;
        let now = Instant::now();
        let token = stored
            .to_token(now)
            .inspect_err(|error| {
                tracing::warn!(%error, "the token store holds a value that is not a usable token; ignoring it");
            })
            .ok()?;
        let replaced = stale.is_some_and(|stale| stale.same_token(&token));
        let due = now >= self.timing.schedule(&token, 1.0).refresh_at;
        if replaced || due {
            return None;
        }
        self.counters.store_loads.fetch_add(1, Relaxed);
        Some(token)
    }

    /// Runs one store call with [`STORE_CALL_TIMEOUT`]; a failure is logged and
    /// becomes `None`, because the store never fails a request.
    async fn store_call<T>(
        &self,
        what: &'static str,
        call: BoxFuture<'_, Result<T, Error>>,
    ) -> Option<T> {
        let answer = match tokio::time::timeout(STORE_CALL_TIMEOUT, call).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(error)) => {
                tracing::warn!(%error, "token store {what} failed; going on without the store");
                None
            }
            Err(_) => {
                tracing::warn!(
                    "token store {what} took longer than {STORE_CALL_TIMEOUT:?}; going on without the store"
                );
                None
            }
        };
        metrics::store_available(&self.name, answer.is_some());
        answer
    }
}
