//! [`MockCxone`]: the handle to one mock, its routes and its knobs.
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::mock::MockCxone;
//!
//! let cxone = MockCxone::new();
//! let same = cxone.clone(); // shares tokens, faults and counters
//! same.set_token_lifetime(Duration::from_secs(60));
//! assert_eq!(cxone.token_lifetime(), Duration::from_secs(60));
//! assert_eq!(cxone.token_url(), "https://cxone.mock.invalid/auth/token");
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

use super::builder::{ExpiresIn, MockCxoneBuilder};
use super::faults::TokenFault;
use super::server::MockServer;
use super::state::{ApiRateLimit, Shared};
use super::stats::{MockStats, RecordedTokenRequest};
use super::{api, discovery, token_endpoint};
use crate::Error;

/// An in-process mock of CXone's identity provider and API.
///
/// `Clone` shares one state: a clone handed to a test's assertions sees the
/// tokens, faults and counters of the router it came from. See the
/// [module docs](super) for the routes and an example.
#[derive(Clone)]
pub struct MockCxone {
    shared: Arc<Shared>,
}

impl MockCxone {
    /// A mock with every default: it accepts [`CLIENT_ID`](super::CLIENT_ID)
    /// and [`CLIENT_SECRET`](super::CLIENT_SECRET), the access key
    /// [`ACCESS_KEY_ID`](super::ACCESS_KEY_ID) and
    /// [`ACCESS_KEY_SECRET`](super::ACCESS_KEY_SECRET), both grants, any
    /// scope; tokens live one hour.
    pub fn new() -> Self {
        MockCxoneBuilder::new().build()
    }

    /// A builder to change what the mock accepts and how it answers.
    pub fn builder() -> MockCxoneBuilder {
        MockCxoneBuilder::new()
    }

    pub(super) fn from_shared(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
        }
    }

    /// The mock's routes as an axum `Router`, a tower `Service` to call in
    /// memory (base URL [`IN_MEMORY_BASE_URL`](super::IN_MEMORY_BASE_URL)
    /// until [`serve`](Self::serve)). Every router shares this mock's state.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(discovery::openid_configuration),
            )
            .route(
                "/.well-known/cxone-configuration",
                get(discovery::cxone_configuration),
            )
            .route("/auth/token", post(token_endpoint::token))
            .route("/inContactAPI/services/{version}/agents", get(api::agents))
            .route(
                "/inContactAPI/services/{version}/server-time",
                get(api::server_time),
            )
            .with_state(Arc::clone(&self.shared))
    }

    /// Serves this mock on `127.0.0.1` with a port the system picks. Its
    /// [`base_url`](Self::base_url) becomes `http://127.0.0.1:PORT` until the
    /// returned [`MockServer`] is dropped.
    ///
    /// Use it with real time: paused tokio time and real sockets do not mix.
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Transport`](crate::ErrorKind::Transport) when no port
    /// can be bound.
    pub async fn serve(&self) -> Result<MockServer, Error> {
        MockServer::start(self.clone()).await
    }

    pub(super) fn set_base_url(&self, base_url: String) {
        self.shared.lock().base_url = base_url;
    }

    /// Resets the base URL to `default` if it is still `current`.
    pub(super) fn restore_base_url(&self, current: &str, default: &str) {
        let mut runtime = self.shared.lock();
        if runtime.base_url == current {
            runtime.base_url = default.to_owned();
        }
    }

    /// The base URL: [`IN_MEMORY_BASE_URL`](super::IN_MEMORY_BASE_URL), or
    /// `http://127.0.0.1:PORT` while served.
    pub fn base_url(&self) -> String {
        self.shared.base_url()
    }

    /// The OIDC issuer, the base URL (discovery is at
    /// `{issuer}/.well-known/openid-configuration`).
    pub fn issuer(&self) -> String {
        self.base_url()
    }

    /// The token endpoint, `{base_url}/auth/token`.
    pub fn token_url(&self) -> String {
        format!("{}/auth/token", self.base_url())
    }

    /// The `api_endpoint` tenant discovery reports: the base URL unless the
    /// builder set another.
    pub fn api_endpoint(&self) -> String {
        self.shared.api_endpoint()
    }

    /// The tenant id in the mock's tokens and tenant discovery.
    pub fn tenant_id(&self) -> &str {
        &self.shared.config.tenant_id
    }

    /// How long tokens issued from now on live.
    pub fn token_lifetime(&self) -> Duration {
        self.shared.lock().token_lifetime
    }

    /// Sets how long tokens issued from now on live. Tokens already issued
    /// keep their expiry.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().token_lifetime = lifetime;
    }

    /// Sets how `expires_in` is sent from now on.
    pub fn set_expires_in(&self, format: ExpiresIn) {
        self.shared.lock().expires_in = format;
    }

    /// Sets how long every token response waits, on tokio's clock, before it
    /// is sent (a slow identity provider). `Duration::ZERO` for none.
    pub fn set_token_delay(&self, delay: Duration) {
        self.shared.lock().token_delay = delay;
    }

    /// Answers the next `n` token requests with `fault`, after any faults
    /// already queued. Requests after them are answered normally.
    pub fn fail_next_token_requests(&self, n: usize, fault: TokenFault) {
        let mut runtime = self.shared.lock();
        runtime.token_faults.extend(std::iter::repeat_n(fault, n));
    }

    /// How many queued token faults are still to be served.
    pub fn pending_token_faults(&self) -> usize {
        self.shared.lock().token_faults.len()
    }

    /// Drops every queued token fault.
    pub fn clear_token_faults(&self) {
        self.shared.lock().token_faults.clear();
    }

    /// Answers the next `n` API calls with `429 Too Many Requests` and
    /// `Retry-After: retry_after` (in seconds, rounded up), whatever their
    /// token. Replaces any rate limit still pending; `n = 0` clears it.
    pub fn rate_limit_next_api_calls(&self, n: u64, retry_after: Duration) {
        self.shared.lock().api_rate_limit = (n > 0).then_some(ApiRateLimit {
            remaining: n,
            retry_after,
        });
    }

    /// Revokes `token`: the API answers 401 to it from now on. Returns
    /// whether it was an active token of this mock.
    pub fn revoke(&self, token: &str) -> bool {
        self.shared.lock().issued.remove(token).is_some()
    }

    /// Revokes every token issued so far; new tokens work.
    pub fn revoke_all(&self) {
        self.shared.lock().issued.clear();
    }

    /// Whether the API would accept `token` now: issued by this mock, not
    /// revoked, not expired on tokio's clock.
    pub fn is_token_active(&self, token: &str) -> bool {
        self.shared.is_active(token)
    }

    /// Issues a token as the token endpoint would, without a request and
    /// without counting one: for tests that need a valid token directly.
    pub fn issue_token(&self) -> String {
        self.shared.issue().minted.access_token
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> MockStats {
        self.shared.stats()
    }

    /// Every token request received since the start or the last
    /// [`reset_stats`](Self::reset_stats), oldest first (the most recent
    /// [`MAX_RECORDED_TOKEN_REQUESTS`](super::MAX_RECORDED_TOKEN_REQUESTS)).
    pub fn token_requests(&self) -> Vec<RecordedTokenRequest> {
        self.shared.lock().recorded.iter().cloned().collect()
    }

    /// Zeroes the counters and forgets the recorded token requests. Tokens,
    /// faults and settings stay.
    pub fn reset_stats(&self) {
        self.shared.reset_stats();
    }
}

impl Default for MockCxone {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MockCxone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockCxone")
            .field("base_url", &self.base_url())
            .field("tenant_id", &self.tenant_id())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
