//! One fetch, run in its own task: from the shared store when it holds a
//! fresh token, else from the source (under the store's lock when there is a
//! store), then landed in the cache and shared with every waiter.
//!
//! The task holds the cache's state only weakly while it fetches, so dropping
//! every handle ends it (the state's `Drop` aborts it); a waiter that gives up
//! cancels nothing. Each fetch runs in a `tracing` span named `token_fetch`
//! with its reason, origin, outcome, duration, lifetime and granted scopes;
//! never the token.
//!
//! ```
//! # use std::sync::Arc;
//! # use std::sync::atomic::{AtomicUsize, Ordering};
//! # use cxone_auth::{AccessToken, TokenCache};
//! # use cxone_auth::token::from_fn;
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let calls = Arc::new(AtomicUsize::new(0));
//! let counted = calls.clone();
//! let cache = TokenCache::new(from_fn(move || {
//!     counted.fetch_add(1, Ordering::Relaxed);
//!     async { AccessToken::new("t") }
//! }));
//! // Many callers at once, one fetch.
//! let callers: Vec<_> = (0..100).map(|_| cache.token()).collect();
//! for token in futures_util::future::join_all(callers).await {
//!     token?;
//! }
//! assert_eq!(calls.load(Ordering::Relaxed), 1);
//! # Ok::<(), cxone_auth::Error>(()) }).unwrap();
//! ```

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument as _;
use tracing::field::{Empty, display};

use super::builder::Config;
use super::cell::Entry;
use super::shared::{Shared, later};
use super::stats::Counters;
use super::store::{StoreLock, StoredToken, TokenStore};
use super::timing::Timing;
use crate::token::DynTokenSource;
use crate::{AccessToken, Error};

/// The longest a single call to a [`TokenStore`] may take before the cache
/// goes on without it. A backstop: stores should time out sooner themselves.
pub(crate) const STORE_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The first pause between looks at the store while another cache holds its
/// lock; pauses then double up to [`STORE_POLL_MAX`].
const STORE_POLL_FIRST: Duration = Duration::from_millis(50);

/// The longest pause between looks at the store while waiting on its lock.
const STORE_POLL_MAX: Duration = Duration::from_millis(500);

/// What every caller waiting on one fetch gets: the new entry, or the error.
pub(crate) type Outcome = Result<Arc<Entry>, Error>;

/// Why a fetch started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// No usable token: callers are waiting.
    Cold,
    /// Past the refresh point: callers keep the current token meanwhile.
    Ahead,
    /// The current token was invalidated (a 401).
    Invalidated,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Cold => "cold",
            Reason::Ahead => "ahead",
            Reason::Invalidated => "invalidated",
        }
    }
}

/// Where a token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Source,
    Store,
}

/// Everything one fetch needs, owned, so that it runs as a `'static` task.
pub(crate) struct FlightTask {
    shared: Weak<Shared>,
    source: Arc<dyn DynTokenSource>,
    store: Option<(Arc<dyn TokenStore>, String)>,
    counters: Arc<Counters>,
    config: Config,
    reason: Reason,
    /// The token being replaced; never taken back from the store.
    stale: Option<Arc<AccessToken>>,
    outcome: watch::Sender<Option<Outcome>>,
}

impl FlightTask {
    pub(crate) fn new(
        shared: &Arc<Shared>,
        reason: Reason,
        stale: Option<Arc<AccessToken>>,
        outcome: watch::Sender<Option<Outcome>>,
    ) -> Self {
        Self {
            shared: Arc::downgrade(shared),
            source: Arc::clone(&shared.source),
            store: shared.store.clone(),
            counters: Arc::clone(&shared.counters),
            config: shared.config,
            reason,
            stale,
            outcome,
        }
    }

    pub(crate) async fn run(self) {
        let mut landing = Landing {
            shared: self.shared.clone(),
            landed: false,
        };
        let span = tracing::info_span!(
            "token_fetch",
            reason = self.reason.as_str(),
            origin = Empty,
            outcome = Empty,
            duration_ms = Empty,
            lifetime_s = Empty,
            scopes = Empty,
        );
        let started = Instant::now();
        let obtained = self.obtain().instrument(span.clone()).await;

        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let outcome = shared.land(obtained.result);
        landing.landed = true;
        drop(shared);

        span.record("origin", obtained.origin.as_str());
        span.record("duration_ms", started.elapsed().as_millis());
        match &outcome {
            Ok(entry) => {
                let token = &entry.token;
                span.record("outcome", "ok");
                span.record("lifetime_s", token.lifetime().as_secs());
                span.record("scopes", display(token.scopes().join(" ")));
                tracing::info!(parent: &span, "token obtained");
            }
            Err(error) => {
                span.record("outcome", "error");
                tracing::warn!(parent: &span, error = %error, "token fetch failed");
            }
        }
        self.outcome.send_replace(Some(outcome.clone()));

        let Some((store, key)) = &self.store else {
            return;
        };
        let publish = async {
            if let (Origin::Source, Ok(entry)) = (obtained.origin, &outcome) {
                let now = Instant::now();
                // Shared for its remaining lifetime less the refresh buffer (the
                // latest refresh point, without jitter), so the store never holds
                // a token that is due for refresh.
                let ttl = self
                    .config
                    .timing
                    .schedule(&entry.token, 0.0)
                    .refresh_at
                    .saturating_duration_since(now);
                let stored = StoredToken::from_token(&entry.token, now);
                store_call("store", store.store(key, &stored, ttl)).await;
            }
            if let Some(lock) = obtained.lock {
                store_call("unlock", store.unlock(key, lock)).await;
            }
        };
        publish.instrument(span).await;
    }

    async fn obtain(&self) -> Obtained {
        let Some((store, key)) = &self.store else {
            return Obtained::fetched(self.fetch().await, None);
        };
        let stale = self.stale.as_deref();
        let timing = &self.config.timing;
        if let (Reason::Invalidated, Some(stale)) = (self.reason, stale) {
            store_call("invalidate", store.invalidate(key, stale)).await;
        }
        if let Some(token) = load_fresh(&**store, key, stale, timing).await {
            return self.loaded(token);
        }
        let lock =
            match store_call("try_lock", store.try_lock(key, self.config.fetch_timeout)).await {
                Some(Some(lock)) => Some(lock),
                // Another cache is fetching: wait for its token, or for the lock.
                Some(None) => match self.wait_for_store(&**store, key).await {
                    Waited::Token(token) => return self.loaded(token),
                    Waited::Lock(lock) => lock,
                },
                None => None,
            };
        // Another cache may have published and released the lock between the
        // look above and taking it: look once more under the lock.
        if let Some(lock) = &lock
            && let Some(token) = load_fresh(&**store, key, stale, timing).await
        {
            store_call("unlock", store.unlock(key, lock.clone())).await;
            return self.loaded(token);
        }
        Obtained::fetched(self.fetch().await, lock)
    }

    fn loaded(&self, token: AccessToken) -> Obtained {
        Counters::bump(&self.counters.store_loads);
        Obtained {
            result: Ok(token),
            origin: Origin::Store,
            lock: None,
        }
    }

    /// Looks at the store with growing pauses until a fresh token appears or
    /// the lock comes free, for at most `store_wait`, so that a lock holder
    /// that died never stalls this cache for longer.
    async fn wait_for_store(&self, store: &dyn TokenStore, key: &str) -> Waited {
        let deadline = later(Instant::now(), self.config.store_wait);
        let mut pause = STORE_POLL_FIRST;
        while Instant::now() < deadline {
            tokio::time::sleep_until(later(Instant::now(), pause).min(deadline)).await;
            pause = (pause * 2).min(STORE_POLL_MAX);
            let stale = self.stale.as_deref();
            if let Some(token) = load_fresh(store, key, stale, &self.config.timing).await {
                return Waited::Token(token);
            }
            match store_call("try_lock", store.try_lock(key, self.config.fetch_timeout)).await {
                Some(Some(lock)) => return Waited::Lock(Some(lock)),
                Some(None) => {}
                None => return Waited::Lock(None),
            }
        }
        Waited::Lock(None)
    }

    async fn fetch(&self) -> Result<AccessToken, Error> {
        Counters::bump(&self.counters.fetches);
        let limit = self.config.fetch_timeout;
        match tokio::time::timeout(limit, self.source.fetch_boxed()).await {
            Ok(result) => result,
            Err(_) => Err(Error::timeout(format!(
                "the token source did not answer within the fetch timeout ({limit:?})"
            ))),
        }
    }
}

/// A token from the store, if it is usable and not yet due for refresh (at
/// its earliest possible refresh point), and is not the token being replaced.
async fn load_fresh(
    store: &dyn TokenStore,
    key: &str,
    stale: Option<&AccessToken>,
    timing: &Timing,
) -> Option<AccessToken> {
    let stored = store_call("load", store.load(key)).await??;
    let now = Instant::now();
    let token = match stored.to_token(now) {
        Ok(token) => token,
        Err(error) => {
            tracing::warn!(error = %error, "the token store holds a value that is not a usable token; ignoring it");
            return None;
        }
    };
    let replaced = stale.is_some_and(|stale| stale.same_token(&token));
    let due = now >= timing.schedule(&token, 1.0).refresh_at;
    (!replaced && !due).then_some(token)
}

/// Runs one store call with [`STORE_CALL_TIMEOUT`]; a failure is logged and
/// becomes `None`, because the store never fails a request.
async fn store_call<T>(what: &'static str, call: BoxFuture<'_, Result<T, Error>>) -> Option<T> {
    match tokio::time::timeout(STORE_CALL_TIMEOUT, call).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "token store {what} failed; going on without the store");
            None
        }
        Err(_) => {
            tracing::warn!(
                "token store {what} took longer than {STORE_CALL_TIMEOUT:?}; going on without the store"
            );
            None
        }
    }
}

struct Obtained {
    result: Result<AccessToken, Error>,
    origin: Origin,
    lock: Option<StoreLock>,
}

impl Obtained {
    fn fetched(result: Result<AccessToken, Error>, lock: Option<StoreLock>) -> Self {
        Self {
            result,
            origin: Origin::Source,
            lock,
        }
    }
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Source => "source",
            Origin::Store => "store",
        }
    }
}

enum Waited {
    Token(AccessToken),
    Lock(Option<StoreLock>),
}

/// Clears the flight when its task ends without landing (its runtime shut
/// down mid-fetch), so that the next caller starts a new fetch instead of
/// waiting on one that will never finish.
struct Landing {
    shared: Weak<Shared>,
    landed: bool,
}

impl Drop for Landing {
    fn drop(&mut self) {
        if !self.landed
            && let Some(shared) = self.shared.upgrade()
        {
            shared.abandon();
        }
    }
}
