//! The retry policy, private: which answers are replayed, after how long, and
//! the state every service of one layer shares. Like reqwest's, it stays
//! behind the public builder; unlike a `tower::retry::Policy`, it is driven by
//! this module's own future (see the module documentation of `retry` for why).

use std::time::Duration;

use http::StatusCode;
use http::header::AUTHORIZATION;
use tokio::time::Instant;
use tower::retry::budget::{Budget as _, TpsBudget};

use super::cooldown::{Cooldowns, HostKey};
use super::{NoReplay, RetryInfo};
use crate::backoff::{Backoff, later, retry_after};
use crate::http::{HttpRequest, HttpResponse, PartnerRefusal, ReplayBody};
use crate::metrics;

/// What one layer was built with, and the state its services share (behind
/// one `Arc`, created when the layer is built).
#[derive(Debug)]
pub(super) struct Policy {
    pub(super) max_attempts: u32,
    pub(super) retry_after_cap: Duration,
    pub(super) backoff: Backoff,
    pub(super) max_replay_body_bytes: usize,
    pub(super) retry_503_for_non_idempotent: bool,
    pub(super) budget: TpsBudget,
    pub(super) cooldowns: Cooldowns,
}

/// What one request used of its replays.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Attempts {
    /// Replays made for 429 and 503 answers.
    throttled: u32,
    /// Whether the one replay after a 401 was made.
    unauthorized_replayed: bool,
    /// The waits so far: `Retry-After`s, backoffs and cool-downs.
    pub(super) waited: Duration,
}

impl Attempts {
    /// Tells the final response what the layer did, when it did more than
    /// send the request once.
    pub(super) fn report<Res: HttpResponse>(&self, response: &mut Res) {
        let attempts = 1 + self.throttled + u32::from(self.unauthorized_replayed);
        if attempts > 1 || !self.waited.is_zero() {
            response.extensions_mut().insert(RetryInfo {
                attempts,
                waited: self.waited,
            });
        }
    }

    /// Counts a wait for a host's cool-down (the 429 of another request).
    pub(super) fn cool_down(&mut self, until: Instant) {
        let wait = until.saturating_duration_since(Instant::now());
        metrics::retry_wait(None, StatusCode::TOO_MANY_REQUESTS.as_u16(), wait);
        self.waited = self.waited.saturating_add(wait);
    }
}

/// Why no copy of a request was kept, for the debug line when its answer
/// would have been replayed.
const NO_REPLAY_LEFT: &str = "no replay left for it";
const CANNOT_COPY: &str =
    "its body cannot be copied (a stream, or longer than max_replay_body_bytes)";
const OPTED_OUT: &str = "the request opted out of replays (NoReplay)";

impl Policy {
    /// What to keep of `request` before it is sent: a copy to replay, or,
    /// when no replay could follow or its body cannot be copied, its host
    /// (a 429 to it still cools the host down) and why.
    ///
    /// A request's last possible attempt costs no copy: with the defaults,
    /// that is a replay after a 401 and two 429s.
    pub(super) fn keep<R>(
        &self,
        attempts: &Attempts,
        request: &R,
    ) -> Result<R, (HostKey, &'static str)>
    where
        R: HttpRequest,
        R::Body: ReplayBody,
    {
        if request
            .extensions()
            .is_some_and(|extensions| extensions.get::<NoReplay>().is_some())
        {
            return Err((HostKey::of(request), OPTED_OUT));
        }
        let may_replay = attempts.throttled + 1 < self.max_attempts
            || (!attempts.unauthorized_replayed && !request.headers().contains_key(AUTHORIZATION));
        if !may_replay {
            return Err((HostKey::of(request), NO_REPLAY_LEFT));
        }
        request
            .try_replay(self.max_replay_body_bytes)
            .ok_or_else(|| (HostKey::of(request), CANNOT_COPY))
    }

    /// When to replay `request` (a copy) after `response`, or `None` if the
    /// answer is final; the module documentation of `retry` has the table. A
    /// 429 cools its host down for everyone, even when this request gives up.
    pub(super) fn retry<R, Res>(
        &self,
        attempts: &mut Attempts,
        request: &R,
        response: &Res,
    ) -> Option<Instant>
    where
        R: HttpRequest,
        Res: HttpResponse,
    {
        let status = response.status();
        match status {
            StatusCode::UNAUTHORIZED if attempts.unauthorized_replayed => {
                tracing::debug!("second 401 for one request: returned as is");
                None
            }
            StatusCode::UNAUTHORIZED if response.extensions().get::<PartnerRefusal>().is_some() => {
                tracing::debug!(
                    "401 from a partner host, not the token's audience: returned as is"
                );
                None
            }
            StatusCode::UNAUTHORIZED if request.headers().contains_key(AUTHORIZATION) => {
                tracing::debug!(
                    "401 for a request that carries its own Authorization: not replayed"
                );
                None
            }
            StatusCode::UNAUTHORIZED => {
                attempts.unauthorized_replayed = true;
                metrics::replayed_unauthorized(metrics::response_cache(response));
                tracing::debug!("401: replaying once with a fresh token");
                Some(Instant::now())
            }
            StatusCode::SERVICE_UNAVAILABLE
                if !request.method().is_idempotent() && !self.retry_503_for_non_idempotent =>
            {
                tracing::debug!(method = %request.method(), "503 for a non-idempotent request: not retried");
                None
            }
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                let wait = self.wait(attempts, response);
                let now = Instant::now();
                if status == StatusCode::TOO_MANY_REQUESTS {
                    self.cooldowns
                        .extend(HostKey::of(request), later(now, wait), now);
                }
                if attempts.throttled + 1 >= self.max_attempts {
                    tracing::debug!(%status, attempts = self.max_attempts, "attempts used up: returned as is");
                    return None;
                }
                let cache = metrics::response_cache(response);
                if !self.budget.withdraw() {
                    metrics::retry_refused(cache, status.as_u16());
                    tracing::debug!(%status, "retry budget exhausted: returned as is");
                    return None;
                }
                metrics::retry_wait(cache, status.as_u16(), wait);
                attempts.throttled += 1;
                attempts.waited = attempts.waited.saturating_add(wait);
                tracing::debug!(%status, retry = attempts.throttled, ?wait, "retrying");
                Some(later(now, wait))
            }
            _ => None,
        }
    }

    /// The answer to a request kept without a copy is final; says so when it
    /// would have been replayed, and lets a 429 cool the host down.
    pub(super) fn final_answer<Res: HttpResponse>(
        &self,
        attempts: &Attempts,
        host: &HostKey,
        why: &str,
        response: &Res,
    ) {
        let status = response.status();
        if !matches!(status.as_u16(), 401 | 429 | 503) {
            return;
        }
        tracing::debug!(%status, "not replayed, {why}: returned as is");
        if status == StatusCode::TOO_MANY_REQUESTS {
            let now = Instant::now();
            let wait = self.wait(attempts, response);
            self.cooldowns.extend(host.clone(), later(now, wait), now);
        }
    }

    /// How long a 429 or 503 asks to wait: its `Retry-After`, capped, else
    /// this request's next backoff.
    fn wait<Res: HttpResponse>(&self, attempts: &Attempts, response: &Res) -> Duration {
        match retry_after(response.headers()) {
            Some(asked) => asked.min(self.retry_after_cap),
            None => self.backoff.wait(attempts.throttled, None, fastrand::f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use http::{HeaderValue, Request, Response};

    use super::*;
    use crate::retry::{CxoneRetryLayer, CxoneRetryLayerBuilder};

    fn policy(builder: CxoneRetryLayerBuilder) -> Arc<Policy> {
        builder.build().policy
    }

    fn answer(status: u16) -> Response<()> {
        Response::builder().status(status).body(()).unwrap()
    }

    fn get(authorization: Option<&'static str>) -> Request<()> {
        let mut request = Request::get("https://api-na1.niceincontact.com/");
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, HeaderValue::from_static(value));
        }
        request.body(()).unwrap()
    }

    #[test]
    fn backoff_waits_are_jittered_within_the_ceiling() {
        let backoff = (Duration::from_millis(100), Duration::from_secs(1));
        let policy = policy(CxoneRetryLayer::builder().backoff(backoff.0, backoff.1));
        let third = Attempts {
            throttled: 2,
            ..Attempts::default()
        };
        let waits: Vec<Duration> = (0..200)
            .map(|_| policy.wait(&third, &answer(503)))
            .collect();
        assert!(waits.iter().all(|d| *d <= Duration::from_millis(400)));
        let distinct: HashSet<_> = waits.iter().collect();
        assert!(distinct.len() > 100, "full jitter spreads the waits");
        assert!(waits.iter().any(|d| *d < Duration::from_millis(200)));
    }

    #[tokio::test(start_paused = true)]
    async fn user_authorization_is_kept_and_not_replayed() {
        let policy = policy(CxoneRetryLayer::builder());
        let request = get(Some("Bearer mine"));
        let mut attempts = Attempts::default();
        let copy = policy.keep(&attempts, &request).unwrap();
        assert_eq!(policy.retry(&mut attempts, &copy, &answer(401)), None);
        assert_eq!(copy.headers()[AUTHORIZATION], "Bearer mine");
        assert_eq!(request.headers()[AUTHORIZATION], "Bearer mine");
    }

    #[tokio::test(start_paused = true)]
    async fn no_copy_is_kept_when_no_replay_can_follow() {
        // No 429/503 retries: only a request without its own Authorization
        // can be replayed (after a 401).
        let single = policy(CxoneRetryLayer::builder().max_attempts(1));
        let (_, why) = single
            .keep(&Attempts::default(), &get(Some("Bearer mine")))
            .unwrap_err();
        assert_eq!(why, NO_REPLAY_LEFT);
        assert!(single.keep(&Attempts::default(), &get(None)).is_ok());

        // The last attempt a request may make keeps no copy either.
        let policy = policy(CxoneRetryLayer::builder().max_attempts(2));
        let request = get(None);
        let mut attempts = Attempts::default();
        let copy = policy.keep(&attempts, &request).unwrap();
        assert!(policy.retry(&mut attempts, &copy, &answer(401)).is_some());
        let copy = policy.keep(&attempts, &copy).unwrap();
        assert!(policy.retry(&mut attempts, &copy, &answer(429)).is_some());
        let (host, why) = policy.keep(&attempts, &copy).unwrap_err();
        assert_eq!((host, why), (HostKey::of(&request), NO_REPLAY_LEFT));
    }

    #[test]
    fn the_builder_clamps_instead_of_panicking() {
        let none = policy(CxoneRetryLayer::builder().max_attempts(0).budget(
            Duration::ZERO,
            0,
            f32::NAN,
        ));
        assert_eq!(none.max_attempts, 1);
        none.budget.deposit();
        assert!(!none.budget.withdraw(), "NaN counts as no retries");

        let most = policy(CxoneRetryLayer::builder().budget(Duration::MAX, 0, 1e9));
        most.budget.deposit();
        assert!(
            (0..1000).all(|_| most.budget.withdraw()),
            "1000 retries per request"
        );
        assert!(!most.budget.withdraw());

        let reserve =
            policy(CxoneRetryLayer::builder().budget(Duration::from_secs(10), u32::MAX, 0.2));
        assert!(reserve.budget.withdraw());
    }
}
