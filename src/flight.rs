//! Single flight: at most one fetch of a value at a time, its outcome shared
//! by every caller that asked while it ran, and a failure handed back to
//! later callers until its backoff ends.
//!
//! The token cache and tenant routing fetch through it. The fetch runs in a
//! task of its own, so a caller that gives up cancels nothing, and a fetch
//! can start with nobody waiting (a refresh ahead). The task holds the
//! flight weakly, and dropping the flight aborts it.
//!
//! ```
//! # // Crate-private; seen through the token cache.
//! use cxone_auth::{AccessToken, TokenCache, from_fn};
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let calls = Arc::new(AtomicUsize::new(0));
//! let counted = calls.clone();
//! let cache = TokenCache::new(from_fn(move || {
//!     counted.fetch_add(1, Ordering::Relaxed);
//!     async { AccessToken::new("t") }
//! }));
//! let callers: Vec<_> = (0..100).map(|_| cache.token()).collect();
//! for token in futures_util::future::join_all(callers).await {
//!     token?;
//! }
//! assert_eq!(calls.load(Ordering::Relaxed), 1);
//! # Ok::<(), cxone_auth::Error>(()) }).unwrap();
//! ```

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::Error;
use crate::backoff::{Backoff, later};

/// What every caller waiting on one fetch gets.
pub(crate) type Outcome<T> = Result<T, Error>;

/// One fetch at a time of a `T`; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Flight<T> {
    state: Mutex<State<T>>,
    backoff: Backoff,
}

#[derive(Debug)]
struct State<T> {
    /// The outcome of the fetch in flight, for waiters to share.
    running: Option<watch::Receiver<Option<Outcome<T>>>>,
    /// The fetch task, aborted when the flight is dropped.
    task: Option<AbortHandle>,
    /// Failed fetches in a row.
    failures: u32,
    /// The last failure, handed back until the instant its backoff ends.
    failed: Option<(Error, Instant)>,
    /// When the failures in a row began.
    failing_since: Option<Instant>,
}

/// What a flight is doing, for a status report.
#[derive(Debug, Clone)]
pub(crate) struct Activity {
    /// A fetch is in flight.
    pub(crate) running: bool,
    /// The last failure of the failures in a row, since when they have
    /// lasted, and when the backoff after it ends.
    pub(crate) failing: Option<(Error, Instant, Instant)>,
}

/// What a caller does next.
pub(crate) enum Next<T> {
    /// The value is there: no fetch needed.
    Ready(T),
    /// Wait for the fetch in flight.
    Wait(watch::Receiver<Option<Outcome<T>>>),
}

impl<T: Clone + Send + Sync + 'static> Flight<T> {
    pub(crate) fn new(backoff: Backoff) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                running: None,
                task: None,
                failures: 0,
                failed: None,
                failing_since: None,
            }),
            backoff,
        })
    }

    fn state(&self) -> MutexGuard<'_, State<T>> {
        // Nothing under this lock can panic halfway through a change, so a
        // poisoned lock still guards consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// For a caller without a usable value: `current()` if it finds one now
    /// (looked at under the lock, so a fetch that just landed is seen), else
    /// the fetch in flight, else the last failure until its backoff ends,
    /// else a new fetch of `fetch()`.
    ///
    /// A fetch must publish its value where `current` looks before it
    /// returns, so that no caller starts a second fetch in between.
    ///
    /// # Errors
    ///
    /// The last failure during its backoff, or
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) outside a tokio runtime.
    pub(crate) fn join<F>(
        self: &Arc<Self>,
        current: impl FnOnce() -> Option<T>,
        fetch: impl FnOnce() -> F,
    ) -> Result<Next<T>, Error>
    where
        F: Future<Output = Outcome<T>> + Send + 'static,
    {
        let mut state = self.state();
        if let Some(value) = current() {
            return Ok(Next::Ready(value));
        }
        if let Some(running) = state.running() {
            return Ok(Next::Wait(running));
        }
        if let Some((error, until)) = &state.failed
            && Instant::now() < *until
        {
            return Err(error.clone());
        }
        let runtime = Handle::try_current().map_err(|_| {
            Error::config("cxone-auth fetches on a tokio runtime, and none is running")
        })?;
        Ok(Next::Wait(self.start(&mut state, &runtime, fetch())))
    }

    /// Starts `fetch()` unless a fetch is in flight or a backoff is pending,
    /// or there is no runtime to run it on. Returns whether it started.
    pub(crate) fn start_if_idle<F>(self: &Arc<Self>, fetch: impl FnOnce() -> F) -> bool
    where
        F: Future<Output = Outcome<T>> + Send + 'static,
    {
        let Ok(runtime) = Handle::try_current() else {
            return false;
        };
        let mut state = self.state();
        let backing_off = state
            .failed
            .as_ref()
            .is_some_and(|(_, until)| Instant::now() < *until);
        if state.running().is_some() || backing_off {
            return false;
        }
        self.start(&mut state, &runtime, fetch());
        true
    }

    fn start<F>(
        self: &Arc<Self>,
        state: &mut State<T>,
        runtime: &Handle,
        fetch: F,
    ) -> watch::Receiver<Option<Outcome<T>>>
    where
        F: Future<Output = Outcome<T>> + Send + 'static,
    {
        let (sender, receiver) = watch::channel(None);
        let flight = Arc::downgrade(self);
        let task = runtime.spawn(async move {
            let outcome = fetch.await;
            if let Some(flight) = Weak::upgrade(&flight) {
                flight.land(&outcome);
            }
            sender.send_replace(Some(outcome));
        });
        state.running = Some(receiver.clone());
        state.task = Some(task.abort_handle());
        receiver
    }

    /// Takes in a fetch's outcome: a success clears the failures, a failure
    /// sets the next backoff (at least the `Retry-After` the error carries).
    fn land(&self, outcome: &Outcome<T>) {
        let mut state = self.state();
        state.running = None;
        state.task = None;
        match outcome {
            Ok(_) => {
                state.failures = 0;
                state.failed = None;
                state.failing_since = None;
            }
            Err(error) => {
                let retry = state.failures;
                state.failures = state.failures.saturating_add(1);
                let wait = self
                    .backoff
                    .wait(retry, error.retry_after(), fastrand::f64());
                let now = Instant::now();
                state.failed = Some((error.clone(), later(now, wait)));
                state.failing_since.get_or_insert(now);
            }
        }
    }

    /// Whether a fetch is in flight, and the failures in a row so far.
    pub(crate) fn activity(&self) -> Activity {
        let state = self.state();
        let failing = match (&state.failed, state.failing_since) {
            (Some((error, until)), Some(since)) => Some((error.clone(), since, *until)),
            _ => None,
        };
        Activity {
            running: state.running().is_some(),
            failing,
        }
    }
}

impl<T> State<T> {
    /// The fetch in flight, if its task is still alive (a runtime that shut
    /// down mid-fetch drops the task without landing it).
    fn running(&self) -> Option<watch::Receiver<Option<Outcome<T>>>> {
        self.running
            .as_ref()
            .filter(|running| running.has_changed().is_ok())
            .cloned()
    }
}

/// Waits for the outcome of the fetch `receiver` follows.
pub(crate) async fn wait<T: Clone>(
    mut receiver: watch::Receiver<Option<Outcome<T>>>,
) -> Outcome<T> {
    let outcome = receiver.wait_for(Option::is_some).await.ok();
    outcome
        .and_then(|outcome| outcome.clone())
        .unwrap_or_else(|| {
            Err(Error::unavailable(
                "the fetch was abandoned before it finished (its runtime shut down)",
            ))
        })
}

impl<T> Drop for Flight<T> {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = state.task.take() {
            task.abort();
        }
    }
}
