//! The state every clone of a [`MockCxone`](super::MockCxone) and every
//! request handler shares: fixed configuration, run-time knobs, issued tokens,
//! counters and recorded requests.
//!
//! One `Arc<Shared>` is created by the builder and never again, so a router,
//! a served socket and every clone of the mock see the same tokens and faults.
//! Locks are `std` mutexes held for a few instructions, never across an
//! `.await`; a poisoned lock is recovered rather than turned into a panic.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use secrecy::SecretString;
use tokio::time::Instant;

use super::builder::{ExpiresIn, Grant};
use super::faults::TokenFault;
use super::stats::{MockStats, RecordedTokenRequest};
use super::{IN_MEMORY_BASE_URL, jwt};

/// How many issued tokens are kept before expired ones are swept out, so a
/// long benchmark against the mock does not grow memory without bound.
const SWEEP_THRESHOLD: usize = 4096;

/// How many token requests [`MockCxone::token_requests`](super::MockCxone::token_requests)
/// keeps at most; older ones are dropped first. Tests look at a handful; a
/// benchmark or a chaos test must not fill memory.
pub const MAX_RECORDED_TOKEN_REQUESTS: usize = 1_000;

/// Lifetimes are cut to this before they are added to tokio's clock, so an
/// absurd configured lifetime cannot overflow an `Instant`; no test runs
/// for a century.
const LONGEST_TRACKED_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// What the builder fixed for the mock's life.
pub(super) struct Config {
    pub(super) client_id: String,
    pub(super) client_secret: SecretString,
    pub(super) access_key_id: String,
    pub(super) access_key_secret: SecretString,
    pub(super) scopes: Option<Vec<String>>,
    pub(super) grants: Vec<Grant>,
    pub(super) tenant_id: String,
    pub(super) tenant_name: String,
    pub(super) business_unit_id: i64,
    pub(super) cluster_id: String,
    pub(super) area: String,
    pub(super) user_id: String,
    pub(super) api_endpoint: Option<String>,
}

/// What changes while the mock runs.
pub(super) struct Runtime {
    pub(super) base_url: String,
    pub(super) token_lifetime: Duration,
    pub(super) expires_in: ExpiresIn,
    pub(super) token_delay: Duration,
    pub(super) token_faults: VecDeque<TokenFault>,
    pub(super) api_rate_limit: Option<ApiRateLimit>,
    /// Every token issued and not revoked, with its expiry on tokio's clock.
    pub(super) issued: HashMap<String, Instant>,
    pub(super) recorded: VecDeque<RecordedTokenRequest>,
}

/// The next `remaining` API calls answer 429 with `Retry-After`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ApiRateLimit {
    pub(super) remaining: u64,
    pub(super) retry_after: Duration,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) token_requests: AtomicU64,
    pub(super) token_succeeded: AtomicU64,
    pub(super) token_failed: AtomicU64,
    pub(super) api_calls: AtomicU64,
    pub(super) api_ok: AtomicU64,
    pub(super) api_unauthorized: AtomicU64,
    pub(super) api_rate_limited: AtomicU64,
}

impl Counters {
    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> MockStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MockStats {
            token_requests: read(&self.token_requests),
            token_succeeded: read(&self.token_succeeded),
            token_failed: read(&self.token_failed),
            api_calls: read(&self.api_calls),
            api_ok: read(&self.api_ok),
            api_unauthorized: read(&self.api_unauthorized),
            api_rate_limited: read(&self.api_rate_limited),
        }
    }

    fn reset(&self) {
        for counter in [
            &self.token_requests,
            &self.token_succeeded,
            &self.token_failed,
            &self.api_calls,
            &self.api_ok,
            &self.api_unauthorized,
            &self.api_rate_limited,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

pub(super) struct Shared {
    pub(super) config: Config,
    pub(super) counters: Counters,
    /// Makes every `jti` unique, even for tokens minted in the same instant.
    sequence: AtomicU64,
    runtime: Mutex<Runtime>,
}

impl Shared {
    pub(super) fn new(
        config: Config,
        token_lifetime: Duration,
        expires_in: ExpiresIn,
        token_delay: Duration,
    ) -> Self {
        Self {
            config,
            counters: Counters::default(),
            sequence: AtomicU64::new(0),
            runtime: Mutex::new(Runtime {
                base_url: IN_MEMORY_BASE_URL.to_owned(),
                token_lifetime,
                expires_in,
                token_delay,
                token_faults: VecDeque::new(),
                api_rate_limit: None,
                issued: HashMap::new(),
                recorded: VecDeque::new(),
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Runtime> {
        self.runtime.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn base_url(&self) -> String {
        self.lock().base_url.clone()
    }

    pub(super) fn api_endpoint(&self) -> String {
        match &self.config.api_endpoint {
            Some(url) => url.clone(),
            None => self.base_url(),
        }
    }

    pub(super) fn stats(&self) -> MockStats {
        self.counters.snapshot()
    }

    pub(super) fn reset_stats(&self) {
        self.counters.reset();
        self.lock().recorded.clear();
    }

    pub(super) fn record(&self, request: RecordedTokenRequest) {
        let mut runtime = self.lock();
        if runtime.recorded.len() >= MAX_RECORDED_TOKEN_REQUESTS {
            runtime.recorded.pop_front();
        }
        runtime.recorded.push_back(request);
    }

    /// Mints a token valid from now for the current lifetime and remembers it.
    pub(super) fn issue(&self) -> Issued {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut runtime = self.lock();
        let lifetime = runtime.token_lifetime;
        let minted = jwt::mint(&self.config, &runtime.base_url, lifetime, sequence);
        if runtime.issued.len() >= SWEEP_THRESHOLD {
            runtime.issued.retain(|_, expires_at| *expires_at > now);
        }
        let expires_at = now
            .checked_add(lifetime.min(LONGEST_TRACKED_LIFETIME))
            .unwrap_or(now);
        runtime
            .issued
            .insert(minted.access_token.clone(), expires_at);
        Issued {
            minted,
            lifetime,
            expires_in: runtime.expires_in,
        }
    }

    /// Whether `token` was issued here, is not revoked and has not expired
    /// on tokio's clock.
    pub(super) fn is_active(&self, token: &str) -> bool {
        let now = Instant::now();
        self.lock()
            .issued
            .get(token)
            .is_some_and(|expires_at| now < *expires_at)
    }

    /// Takes one queued API rate limit, if any: the `Retry-After` to send.
    pub(super) fn take_api_rate_limit(&self) -> Option<Duration> {
        let mut runtime = self.lock();
        let limit = runtime.api_rate_limit.as_mut()?;
        let retry_after = limit.retry_after;
        limit.remaining = limit.remaining.saturating_sub(1);
        if limit.remaining == 0 {
            runtime.api_rate_limit = None;
        }
        Some(retry_after)
    }
}

/// A token just issued and how to describe it in the response.
pub(super) struct Issued {
    pub(super) minted: jwt::Minted,
    pub(super) lifetime: Duration,
    pub(super) expires_in: ExpiresIn,
}
