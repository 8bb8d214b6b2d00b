//! Per-host cool-downs: a 429 from a host makes every clone of the client
//! wait before sending to that host again.
//!
//! Without them, each request in flight discovers the rate limit on its own,
//! and each of them costs the server one more rejected request. With them, the
//! first 429 pauses the host for every service built from the same
//! [`CxoneRetryLayer`](super::CxoneRetryLayer) (and its clones):
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//!
//! use cxone_auth::retry::CxoneRetryLayer;
//! use http::{Request, Response, StatusCode};
//! use tokio::time::Instant;
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let calls = Arc::new(Mutex::new(Vec::new()));
//! let log = calls.clone();
//! let server = tower::service_fn(move |_req: Request<()>| {
//!     let mut log = log.lock().unwrap();
//!     log.push(Instant::now());
//!     let status = if log.len() == 1 { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::OK };
//!     let response = Response::builder().status(status).header("retry-after", "2").body(()).unwrap();
//!     async move { Ok::<_, Infallible>(response) }
//! });
//!
//! let layer = CxoneRetryLayer::default();
//! let first = layer.layer(server.clone());
//! let second = layer.clone().layer(server);
//! let start = Instant::now();
//!
//! let request = || Request::get("https://api-na1.niceincontact.com/").body(()).unwrap();
//! let rate_limited = first.oneshot(request());
//! let later = async {
//!     tokio::time::sleep(Duration::from_millis(10)).await;
//!     second.oneshot(request()).await
//! };
//! let (a, b) = tokio::join!(rate_limited, later);
//! assert_eq!(a.unwrap().status(), StatusCode::OK);
//! assert_eq!(b.unwrap().status(), StatusCode::OK);
//!
//! // The second client did not reach the server until the cool-down ended.
//! let calls = calls.lock().unwrap();
//! assert_eq!(calls.len(), 3);
//! assert!(calls[1..].iter().all(|t| t.duration_since(start) >= Duration::from_secs(2)));
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

/// Which host a cool-down applies to: the lower-cased host name and the
/// port (the scheme's default when the URL gives none). Requests that name no
/// host (origin-form, `/path` only, as gRPC clients send) share one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(
    unreachable_pub,
    reason = "named by the sealed request trait; not nameable outside the crate"
)]
pub struct HostKey {
    host: Box<str>,
    port: Option<u16>,
}

impl HostKey {
    pub(crate) fn new(host: Option<&str>, port: Option<u16>) -> Self {
        Self {
            host: host.unwrap_or_default().to_ascii_lowercase().into(),
            port,
        }
    }
}

/// Hosts in cool-down, until when.
pub(crate) struct Cooldowns {
    /// Whether any host may be cooling down: the common case, no recent 429,
    /// costs one atomic load and no lock.
    active: AtomicBool,
    hosts: Mutex<HashMap<HostKey, Instant>>,
}

impl Cooldowns {
    pub(crate) fn new() -> Self {
        Self {
            active: AtomicBool::new(false),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// Whether no host is cooling down, checked without a lock.
    pub(crate) fn is_idle(&self) -> bool {
        !self.active.load(Ordering::Acquire)
    }

    /// When the cool-down for `key` ends, if it has not ended by `now`.
    pub(crate) fn until(&self, key: &HostKey, now: Instant) -> Option<Instant> {
        if self.is_idle() {
            return None;
        }
        let mut hosts = self.lock();
        // Pruning here keeps the map as small as the set of hosts cooling
        // down right now.
        hosts.retain(|_, until| *until > now);
        if hosts.is_empty() {
            self.active.store(false, Ordering::Release);
        }
        hosts.get(key).copied()
    }

    /// Makes `key` cool down until `until`, or longer if it already does.
    pub(crate) fn extend(&self, key: HostKey, until: Instant, now: Instant) {
        if until <= now {
            return;
        }
        let mut hosts = self.lock();
        let end = hosts.entry(key).or_insert(until);
        *end = (*end).max(until);
        self.active.store(true, Ordering::Release);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<HostKey, Instant>> {
        // The map holds plain instants; a panic elsewhere cannot leave it
        // half-updated, so a poisoned lock is still sound to use.
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Cooldowns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cooldowns")
            .field("hosts", &self.lock().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn cool_down_ends_and_the_map_empties() {
        let cooldowns = Cooldowns::new();
        let host = HostKey::new(Some("api.example.com"), Some(443));
        let other = HostKey::new(Some("other.example.com"), Some(443));
        let now = Instant::now();
        assert!(cooldowns.is_idle());

        cooldowns.extend(host.clone(), now + Duration::from_secs(2), now);
        assert!(!cooldowns.is_idle());
        assert_eq!(
            cooldowns.until(&host, now),
            Some(now + Duration::from_secs(2))
        );
        assert_eq!(cooldowns.until(&other, now), None);

        // A shorter cool-down never shortens a longer one.
        cooldowns.extend(host.clone(), now + Duration::from_secs(1), now);
        assert_eq!(
            cooldowns.until(&host, now),
            Some(now + Duration::from_secs(2))
        );

        let later = now + Duration::from_secs(2);
        assert_eq!(cooldowns.until(&host, later), None);
        assert!(cooldowns.is_idle(), "expired entries are pruned");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cool_down_in_the_past_is_ignored() {
        let cooldowns = Cooldowns::new();
        let now = Instant::now();
        cooldowns.extend(HostKey::new(None, None), now, now);
        assert!(cooldowns.is_idle());
    }
}
