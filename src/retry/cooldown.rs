//! Per-host cool-downs: a 429 from a host makes every service of the layer
//! wait before sending to that host again, rather than each request in
//! flight costing the server one more refusal. With no host cooling down,
//! the check before each send is one atomic load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

use crate::http::HttpRequest;

/// Which host a cool-down applies to: the host name, lower-cased, and the
/// port (explicit or the scheme's default). Requests that name no host
/// (path-only, as gRPC clients send) share one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HostKey {
    host: Box<str>,
    port: Option<u16>,
}

impl HostKey {
    pub(super) fn of<R: HttpRequest>(request: &R) -> Self {
        Self {
            host: request
                .host()
                .unwrap_or_default()
                .to_ascii_lowercase()
                .into(),
            port: request.port(),
        }
    }

    fn matches<R: HttpRequest>(&self, request: &R) -> bool {
        self.port == request.port()
            && self
                .host
                .eq_ignore_ascii_case(request.host().unwrap_or_default())
    }
}

/// The hosts cooling down, and until when. Few hosts cool down at once, so a
/// list is searched.
#[derive(Debug, Default)]
pub(super) struct Cooldowns {
    /// Whether any host may be cooling down; written under the lock.
    active: AtomicBool,
    hosts: Mutex<Vec<(HostKey, Instant)>>,
}

impl Cooldowns {
    /// When the cool-down of `request`'s host ends, if it has not ended yet.
    pub(super) fn until<R: HttpRequest>(&self, request: &R) -> Option<Instant> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        let now = Instant::now();
        let mut hosts = self.lock();
        // Pruning here keeps the list as short as the set of hosts cooling
        // down right now.
        hosts.retain(|(_, until)| *until > now);
        if hosts.is_empty() {
            self.active.store(false, Ordering::Release);
        }
        hosts
            .iter()
            .find(|(key, _)| key.matches(request))
            .map(|(_, until)| *until)
    }

    /// Makes `key` cool down until `until`, or longer if it already does.
    pub(super) fn extend(&self, key: HostKey, until: Instant, now: Instant) {
        if until <= now {
            return;
        }
        let mut hosts = self.lock();
        match hosts.iter_mut().find(|(cooling, _)| *cooling == key) {
            Some((_, end)) => *end = (*end).max(until),
            None => hosts.push((key, until)),
        }
        self.active.store(true, Ordering::Release);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(HostKey, Instant)>> {
        // The list holds plain instants; a panic elsewhere cannot leave it
        // half-updated, so a poisoned lock is still sound to use.
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::Request;

    use super::*;

    fn get(uri: &str) -> Request<()> {
        Request::get(uri).body(()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn cool_down_ends_and_the_list_empties() {
        let cooldowns = Cooldowns::default();
        let host = get("https://api.example.com/a");
        let other = get("https://other.example.com/");
        let now = Instant::now();
        assert_eq!(cooldowns.until(&host), None);

        cooldowns.extend(HostKey::of(&host), now + Duration::from_secs(2), now);
        assert!(cooldowns.active.load(Ordering::Acquire));
        assert_eq!(cooldowns.until(&host), Some(now + Duration::from_secs(2)));
        assert_eq!(cooldowns.until(&other), None);

        // A shorter cool-down never shortens a longer one.
        cooldowns.extend(HostKey::of(&host), now + Duration::from_secs(1), now);
        assert_eq!(cooldowns.until(&host), Some(now + Duration::from_secs(2)));

        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(cooldowns.until(&host), None);
        assert!(
            !cooldowns.active.load(Ordering::Acquire),
            "expired entries are pruned"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cool_down_in_the_past_is_ignored() {
        let cooldowns = Cooldowns::default();
        let now = Instant::now();
        cooldowns.extend(HostKey::of(&get("/path")), now, now);
        assert!(!cooldowns.active.load(Ordering::Acquire));
    }

    #[tokio::test(start_paused = true)]
    async fn host_keys_normalise_default_ports_and_case() {
        let a = get("https://API.example.com/a");
        let b = get("https://api.example.com:443/b");
        let c = get("https://api.example.com:8443/");
        let origin = get("/only/a/path");
        assert_eq!(HostKey::of(&a), HostKey::of(&b));
        assert_ne!(HostKey::of(&a), HostKey::of(&c));
        assert_eq!(HostKey::of(&origin), HostKey::of(&get("/other")));
        assert_eq!(
            HostKey::of(&origin),
            HostKey {
                host: "".into(),
                port: None
            }
        );

        // Lookups match the same way, without building a key.
        let cooldowns = Cooldowns::default();
        let now = Instant::now();
        cooldowns.extend(HostKey::of(&b), now + Duration::from_secs(1), now);
        assert!(cooldowns.until(&a).is_some());
        assert!(cooldowns.until(&c).is_none());
        assert!(cooldowns.until(&origin).is_none());
    }
}
