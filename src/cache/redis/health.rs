//! Whether the Redis store answers and whether what it holds is readable,
//! with each change logged once rather than on every call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::time::Instant;

const TARGET: &str = "cxone_auth::cache::redis";

/// The store's last known state. It starts healthy: the first failure is
/// news, the first success is not.
#[derive(Debug)]
pub(super) struct Health {
    available: AtomicBool,
    readable: AtomicBool,
    /// Until when calls fail without trying, after a timeout.
    held_down_until: Mutex<Option<Instant>>,
}

impl Health {
    pub(super) fn new() -> Self {
        Self {
            available: AtomicBool::new(true),
            readable: AtomicBool::new(true),
            held_down_until: Mutex::new(None),
        }
    }

    /// Whether calls should fail without trying Redis at `now`.
    pub(super) fn holding_down(&self, now: Instant) -> bool {
        self.held_down().is_some_and(|until| now < until)
    }

    /// Fails calls without trying Redis until `until`.
    pub(super) fn hold_down(&self, until: Instant) {
        *self
            .held_down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(until);
    }

    fn held_down(&self) -> Option<Instant> {
        // A plain value: a panic elsewhere cannot leave it half-written.
        *self
            .held_down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn is_available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    /// Records an answer from Redis; logs when Redis comes back.
    pub(super) fn up(&self) {
        if self.held_down().is_some() {
            self.hold_down_clear();
        }
        if !self.available.swap(true, Ordering::AcqRel) {
            tracing::info!(
                target: TARGET,
                "Redis token store is answering again; sharing tokens through it"
            );
        }
    }

    fn hold_down_clear(&self) {
        *self
            .held_down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Records a failure to get an answer; logs when Redis was answering
    /// until now.
    pub(super) fn down(&self, operation: &'static str, reason: &dyn std::fmt::Display) {
        if self.available.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                target: TARGET,
                operation,
                %reason,
                "Redis token store is not answering; each process fetches its own tokens until it returns"
            );
        }
    }

    /// Records a stored value that was read and accepted.
    pub(super) fn readable(&self) {
        if !self.readable.swap(true, Ordering::AcqRel) {
            tracing::info!(target: TARGET, "Redis token store values are readable again");
        }
    }

    /// Records a stored value that was refused; logs the first of a run.
    pub(super) fn unreadable(&self, reason: &'static str) {
        if self.readable.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                target: TARGET,
                reason,
                "Redis token store holds a value this process cannot use (written by hand, \
                 sealed with another encryption key, or altered); ignoring it"
            );
        }
    }
}
