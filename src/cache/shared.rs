//! The state all clones of a [`TokenCache`](crate::TokenCache) share, and the
//! decisions taken synchronously: answer from the cell, start a fetch or join
//! the one in flight, land a fetch's outcome, invalidate.
//!
//! Reads of the cell are lock-free. Everything that changes the cell or the
//! flight state happens under one `std::sync::Mutex`, held briefly and never
//! across an `.await`, so the decisions are simple to reason about.
//!
//! ```
//! # use cxone_auth::TokenCache;
//! # use cxone_auth::token::StaticToken;
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let cache = TokenCache::new(StaticToken::new("t"));
//! let clone = cache.clone();
//! cache.token().await?;
//! assert!(clone.cached().is_some()); // clones share one cell
//! # Ok::<(), cxone_auth::Error>(()) }).unwrap();
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwapOption;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::builder::Config;
use super::cell::{self, CLOCK_CHECK_INTERVAL, Entry, TokenId};
use super::flight::{FlightTask, Outcome, Reason};
use super::registry;
use super::stats::Counters;
use super::store::TokenStore;
use super::timing::Schedule;
pub(crate) use crate::backoff::later;
use crate::token::DynTokenSource;
use crate::{AccessToken, Error};

pub(crate) struct Shared {
    pub(crate) cell: ArcSwapOption<Entry>,
    /// A hint mirroring `flight.running.is_some()`, read without the lock so
    /// that reads past the refresh point do not all take it.
    in_flight: AtomicBool,
    flight: Mutex<Flight>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) config: Config,
    pub(crate) source: Arc<dyn DynTokenSource>,
    pub(crate) store: Option<(Arc<dyn TokenStore>, String)>,
}

/// The single-flight and backoff state.
#[derive(Default)]
struct Flight {
    /// The outcome of the fetch in flight, for waiters to share.
    running: Option<watch::Receiver<Option<Outcome>>>,
    /// The fetch task, aborted when the last handle goes.
    task: Option<AbortHandle>,
    /// The timer that clears the current entry's fresh flag.
    timer: Option<AbortHandle>,
    /// Failed fetches in a row.
    failures: u32,
    /// The last failure, handed to callers without a token until `retry_at`.
    last_error: Option<Error>,
    /// No new fetch before this.
    retry_at: Option<Instant>,
}

/// What a caller without a usable token does next.
pub(crate) enum Next {
    Ready(Arc<Entry>),
    Wait(watch::Receiver<Option<Outcome>>),
}

impl Shared {
    pub(crate) fn new(
        source: Arc<dyn DynTokenSource>,
        config: Config,
        store: Option<(Arc<dyn TokenStore>, String)>,
    ) -> Arc<Self> {
        Arc::new(Self {
            cell: ArcSwapOption::empty(),
            in_flight: AtomicBool::new(false),
            flight: Mutex::new(Flight::default()),
            counters: Arc::new(Counters::default()),
            config,
            source,
            store,
        })
    }

    fn flight(&self) -> MutexGuard<'_, Flight> {
        // Nothing under this lock can panic halfway through a change, so a
        // poisoned lock still guards consistent state.
        self.flight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The hot path: `take` of the current entry if its token is usable,
    /// starting one refresh ahead when it is past its refresh point.
    #[inline]
    pub(crate) fn read<R>(self: &Arc<Self>, take: impl FnOnce(&Entry) -> R) -> Option<R> {
        let guard = self.cell.load();
        let entry = guard.as_ref()?;
        let n = self.counters.hits.bump();
        if self.usable(entry, n.is_multiple_of(CLOCK_CHECK_INTERVAL)) {
            return Some(take(entry));
        }
        self.counters.hits.unbump();
        None
    }

    /// Whether `entry`'s token may be handed out now: at once while its
    /// fresh flag is set (unless `check_clock`), else by the clock, starting
    /// one refresh ahead when it is past its refresh point.
    #[inline]
    pub(crate) fn usable(self: &Arc<Self>, entry: &Arc<Entry>, check_clock: bool) -> bool {
        (entry.is_fresh() && !check_clock) || self.usable_by_clock(entry)
    }

    #[cold]
    fn usable_by_clock(self: &Arc<Self>, entry: &Arc<Entry>) -> bool {
        let now = Instant::now();
        if now >= entry.schedule.usable_until {
            entry.mark_stale();
            return false;
        }
        if now >= entry.schedule.refresh_at {
            entry.mark_stale();
            self.refresh_ahead(entry, now);
        }
        true
    }

    /// Starts one background refresh of `entry`, unless one runs already or
    /// the entry has been replaced (after a failed refresh, by one whose
    /// refresh point is the end of the backoff).
    fn refresh_ahead(self: &Arc<Self>, entry: &Arc<Entry>, now: Instant) {
        if self.in_flight.load(Ordering::Acquire) {
            return;
        }
        // Outside a runtime nothing can be spawned; an async caller will.
        let Ok(runtime) = Handle::try_current() else {
            return;
        };
        let mut flight = self.flight();
        let still_due =
            self.cell.load().as_ref().is_some_and(|current| {
                Arc::ptr_eq(current, entry) && now >= entry.schedule.refresh_at
            });
        if flight.running.is_some() || !still_due {
            return;
        }
        Counters::bump(&self.counters.refreshes_ahead);
        self.start(
            &mut flight,
            &runtime,
            Reason::Ahead,
            Some(Arc::clone(&entry.token)),
        );
    }

    /// For a caller that found no usable token: the token if one landed
    /// meanwhile, the fetch in flight to wait for, the last error during a
    /// backoff, or a new fetch.
    pub(crate) fn next(self: &Arc<Self>) -> Result<Next, Error> {
        let mut flight = self.flight();
        let now = Instant::now();
        let current = self.cell.load_full();
        if let Some(entry) = &current
            && now < entry.schedule.usable_until
        {
            self.counters.hits.bump();
            return Ok(Next::Ready(Arc::clone(entry)));
        }
        if let Some(running) = &flight.running {
            return Ok(Next::Wait(running.clone()));
        }
        if let (Some(retry_at), Some(error)) = (flight.retry_at, &flight.last_error)
            && now < retry_at
        {
            return Err(error.clone());
        }
        let runtime = Handle::try_current().map_err(|_| {
            Error::config("a TokenCache fetches tokens on a tokio runtime; none is running")
        })?;
        let stale = current.map(|entry| Arc::clone(&entry.token));
        Ok(Next::Wait(self.start(
            &mut flight,
            &runtime,
            Reason::Cold,
            stale,
        )))
    }

    /// Drops the current token if `is_it` says it is the one; starts its
    /// replacement.
    pub(crate) fn invalidate(self: &Arc<Self>, is_it: impl FnOnce(&Entry) -> bool) -> bool {
        let mut flight = self.flight();
        let current = self.cell.load_full();
        let Some(entry) = current.filter(|entry| is_it(entry)) else {
            return false;
        };
        self.cell.store(None);
        registry::remove(entry.id);
        if let Some(timer) = flight.timer.take() {
            timer.abort();
        }
        Counters::bump(&self.counters.invalidations);
        let now = Instant::now();
        let backing_off = flight.retry_at.is_some_and(|retry_at| now < retry_at);
        // A 401 is almost always followed by a retry that needs a token:
        // start fetching it now rather than when the retry arrives.
        if flight.running.is_none()
            && !backing_off
            && let Ok(runtime) = Handle::try_current()
        {
            let stale = Some(Arc::clone(&entry.token));
            self.start(&mut flight, &runtime, Reason::Invalidated, stale);
        }
        true
    }

    fn start(
        self: &Arc<Self>,
        flight: &mut Flight,
        runtime: &Handle,
        reason: Reason,
        stale: Option<Arc<AccessToken>>,
    ) -> watch::Receiver<Option<Outcome>> {
        let (outcome, receiver) = watch::channel(None);
        flight.running = Some(receiver.clone());
        self.in_flight.store(true, Ordering::Release);
        let task = FlightTask::new(self, reason, stale, outcome);
        flight.task = Some(runtime.spawn(task.run()).abort_handle());
        receiver
    }

    /// Takes in what a fetch produced: publishes a usable token, or records
    /// the failure and its backoff (keeping a still-valid token).
    ///
    /// Returns what waiters get.
    pub(crate) fn land(self: &Arc<Self>, result: Result<AccessToken, Error>) -> Outcome {
        let mut flight = self.flight();
        let now = Instant::now();
        flight.running = None;
        flight.task = None;
        self.in_flight.store(false, Ordering::Release);
        let timing = &self.config.timing;
        let usable = result.and_then(|token| {
            let schedule = timing.schedule(&token, fastrand::f64());
            if now < schedule.usable_until {
                Ok((token, schedule))
            } else {
                Err(Error::invalid_response(format!(
                    "the token source returned a token that is already expired, or expires within the expiry skew (lifetime {:?})",
                    token.lifetime()
                )))
            }
        });
        match usable {
            Ok((token, schedule)) => {
                flight.failures = 0;
                flight.last_error = None;
                flight.retry_at = None;
                let id = TokenId::next();
                Ok(self.publish(&mut flight, Arc::new(token), id, schedule, now, true))
            }
            Err(error) => {
                Counters::bump(&self.counters.fetch_failures);
                flight.failures = flight.failures.saturating_add(1);
                let delay = timing.backoff(flight.failures, &error, fastrand::f64());
                flight.retry_at = Some(later(now, delay));
                flight.last_error = Some(error.clone());
                // A failed refresh never replaces a valid token: keep it, and
                // refresh again when the backoff ends. Reads of it go by the
                // clock: its retry point may be its hard expiry, and the
                // clock, unlike a timer, is never late.
                if let Some(entry) = self
                    .cell
                    .load_full()
                    .filter(|entry| now < entry.schedule.usable_until)
                {
                    let schedule = Schedule {
                        refresh_at: later(now, delay).min(entry.schedule.usable_until),
                        ..entry.schedule
                    };
                    let token = Arc::clone(&entry.token);
                    self.publish(&mut flight, token, entry.id, schedule, now, false);
                }
                Err(error)
            }
        }
    }

    fn publish(
        self: &Arc<Self>,
        flight: &mut Flight,
        token: Arc<AccessToken>,
        id: TokenId,
        schedule: Schedule,
        now: Instant,
        trust_timer: bool,
    ) -> Arc<Entry> {
        let entry = Arc::new(Entry::new(token, id, schedule, now, trust_timer));
        // Entered before it is published, so a request that carried it can
        // always find the cache.
        registry::enter(id, self);
        let previous = self.cell.swap(Some(Arc::clone(&entry)));
        if let Some(previous) = previous.filter(|previous| previous.id != id) {
            registry::remove(previous.id);
        }
        if let Some(timer) = flight.timer.take() {
            timer.abort();
        }
        if !entry.is_fresh() {
            return entry;
        }
        let aging = cell::age(Arc::downgrade(&entry), schedule.refresh_at);
        flight.timer = match Handle::try_current() {
            Ok(runtime) => Some(runtime.spawn(aging).abort_handle()),
            // Without a timer, reads must go by the clock from the start.
            Err(_) => {
                entry.mark_stale();
                None
            }
        };
        entry
    }

    /// Forgets a fetch whose task ended without landing (its runtime shut
    /// down), so that the next caller starts a new one.
    pub(crate) fn abandon(&self) {
        let mut flight = self.flight();
        flight.running = None;
        flight.task = None;
        self.in_flight.store(false, Ordering::Release);
    }

    pub(crate) fn has_usable_token(&self) -> bool {
        self.cell
            .load()
            .as_ref()
            .is_some_and(|entry| Instant::now() < entry.schedule.usable_until)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(entry) = self.cell.load_full() {
            registry::remove(entry.id);
        }
        // The tasks hold the state weakly; end them with it.
        let flight = self
            .flight
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for task in [flight.task.take(), flight.timer.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}
