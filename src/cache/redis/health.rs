//! Whether the Redis store answers, with each change logged once.

use std::sync::atomic::{AtomicBool, Ordering};

/// The store's last known state. It starts available: the first failure is
/// news, the first success is not.
#[derive(Debug)]
pub(super) struct Health {
    available: AtomicBool,
}

impl Health {
    pub(super) fn new() -> Self {
        Self {
            available: AtomicBool::new(true),
        }
    }

    pub(super) fn is_available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    /// Records an answer; logs when the store comes back.
    pub(super) fn up(&self) {
        if !self.available.swap(true, Ordering::AcqRel) {
            tracing::info!(
                target: "cxone_auth::cache::redis",
                "Redis token store is answering again; sharing tokens through it"
            );
        }
    }

    /// Records a failure; logs when the store was answering until now.
    pub(super) fn down(&self, operation: &'static str, reason: &dyn std::fmt::Display) {
        if self.available.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                target: "cxone_auth::cache::redis",
                operation,
                %reason,
                "Redis token store is not answering; each process uses its own tokens until it returns"
            );
        }
    }
}
