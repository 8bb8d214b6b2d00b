//! An in-process mock of NICE CXone's identity provider and two API reads,
//! in CXone's shapes, to test a client end to end without credentials or a
//! network.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /.well-known/openid-configuration` | OIDC discovery with the fields of NICE's document: `issuer`, `token_endpoint`, client auth methods (no `grant_types_supported`) |
//! | `POST /auth/token` | the access key (`password`) and `refresh_token` grants, and `client_credentials` when [enabled](MockCxoneBuilder::grants); the client in HTTP Basic or in the form |
//! | `POST /authentication/v1/token/access-key` | the access key alone, JSON `{"accessKeyId", "accessKeySecret"}`: `400 invalid_request` for another body, `400 invalid_grant` for a wrong key |
//! | `POST /InContactAuthorizationServer/token/access-key` | the same, adding `resource_server_base_uri` as older clusters do |
//! | `GET /.well-known/cxone-configuration?tenantId=` | the tenant's `area`, `cluster`, `api_endpoint`; `404` for another tenant; without `tenantId`, `400`, or the area's document on an area host (`https://na1.…`) |
//! | `GET /inContactAPI/services/vN.M/agents` | [`SAMPLE_AGENT_COUNT`] agents, paged (`skip`, `top`) and filtered (`isActive`, `searchString`); `204` if none is left |
//! | `GET /inContactAPI/services/vN.M/server-time` | `{"ServerTime": ...}` |
//!
//! The API takes any version `vN.M` and its path in any case
//! (`/incontactapi/...`), answers `429` while a [rate
//! limit](MockCxone::rate_limit_next_api_calls) is queued (with or without
//! `Retry-After`), then `401` with no body to a missing, unknown, revoked or
//! expired bearer token, and, as CXone, `200` with the text `No known way to
//! render data` to a request whose `Accept` does not admit JSON (none does
//! not). Tokens are JWT-shaped with CXone's claims (`iss` the issuer,
//! `tenantId`, `icBUId`, `icClusterId` `B32` of area `na1`, `exp`, ...) and
//! no real signature; they expire on tokio's clock, so paused-time tests
//! control them.
//!
//! The token endpoint checks, in this order, and answers an RFC 6749 §5.2
//! error (`{"error", "error_description"}`) at the first failure:
//!
//! | request | answer |
//! | --- | --- |
//! | a body over 64 KiB | `413 invalid_request` |
//! | not `application/x-www-form-urlencoded`, or a repeated parameter | `400 invalid_request` |
//! | an `Authorization` header that is not Basic (`base64(id:secret)` as NICE documents, or RFC 6749 §2.3.1's variant with each form-urlencoded: both are accepted) | `401 invalid_client`, `WWW-Authenticate: Basic` |
//! | Basic and a body `client_secret`, or a body `client_id` other than Basic's | `400 invalid_request` |
//! | no client authentication, a wrong client id or secret | `401 invalid_client` (challenge if Basic was used) |
//! | no `grant_type` | `400 invalid_request` |
//! | a grant other than `password`, or `client_credentials` unless enabled | `400 unsupported_grant_type` |
//! | `password` not enabled by [`MockCxoneBuilder::grants`] | `400 unauthorized_client` |
//! | `password` without `username` or `password` | `400 invalid_request` |
//! | a wrong access key (the old one after [`rotate_access_key`](MockCxone::rotate_access_key)); a `refresh_token` unknown or older than 7200 s | `400 invalid_grant` |
//! | a scope outside [`MockCxoneBuilder::scopes`] | `400 invalid_scope` |
//!
//! An empty parameter counts as absent. Success is `200` with `access_token`,
//! `token_type: "Bearer"`, `expires_in` ([`ExpiresIn`]), `refresh_token`,
//! `id_token`, `issued_token_type`, and `scope` if asked for. Every answer
//! carries `Cache-Control: no-store` and `Pragma: no-cache`. Queued
//! [`TokenFault`]s answer instead, whatever the request within 64 KiB.
//!
//! Call [`MockCxone::router`] in memory to test anything timed (paused tokio
//! time and sockets do not mix), or [`MockCxone::serve`] it on `127.0.0.1`.
//!
//! ```
//! use axum::body::Body;
//! use cxone_auth::mock::{self, MockCxone};
//! use http::{Request, StatusCode, header};
//! use http_body_util::BodyExt as _;
//! use tower::ServiceExt as _;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let cxone = MockCxone::new();
//! // The access key grant, the client's id and secret in the form.
//! let form = url::form_urlencoded::Serializer::new(String::new())
//!     .append_pair("grant_type", "password")
//!     .append_pair("username", mock::ACCESS_KEY_ID)
//!     .append_pair("password", mock::ACCESS_KEY_SECRET)
//!     .append_pair("client_id", mock::CLIENT_ID)
//!     .append_pair("client_secret", mock::CLIENT_SECRET)
//!     .finish();
//! let request = Request::post(cxone.token_url())
//!     .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
//!     .body(Body::from(form))?;
//! let body = cxone.router().oneshot(request).await?.into_body().collect().await?;
//! let json: serde_json::Value = serde_json::from_slice(&body.to_bytes())?;
//! let token = json["access_token"].as_str().unwrap();
//!
//! // The API takes the token until it expires or is revoked.
//! let uri = format!("{}/inContactAPI/services/v34.0/agents?top=5", cxone.api_endpoint());
//! let read = Request::get(uri)
//!     .header(header::AUTHORIZATION, format!("Bearer {token}"))
//!     .header(header::ACCEPT, "application/json");
//! let response = cxone.router().oneshot(read.body(Body::empty())?).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!((cxone.stats().token_succeeded, cxone.stats().api_ok), (1, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

mod api;
mod fault;
mod server;
mod token;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};
use http::HeaderValue;
use http::header::{CACHE_CONTROL, PRAGMA};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::time::Instant;

pub use fault::TokenFault;
pub use server::MockServer;
pub use token::RecordedTokenRequest;

use crate::Error;

/// The base URL of a mock called in memory; `.invalid` never resolves (RFC 2606).
pub const IN_MEMORY_BASE_URL: &str = "https://cxone.mock.invalid";

/// The client id accepted by default.
pub const CLIENT_ID: &str = "mock-app@cxone.mock.invalid";

/// The client secret accepted by default; its `:`, space, `+`, `/`, `=` test both Basic encodings.
pub const CLIENT_SECRET: &str = "mock:client secret+/=";

/// The access key id (the password grant's `username`) accepted by default.
pub const ACCESS_KEY_ID: &str = "MOCKACCESSKEYIDQ2XJH7T4NVBLKEUJ3C====";

/// The access key secret accepted by default; like CXone's, its `+` must arrive encoded.
pub const ACCESS_KEY_SECRET: &str = "mOck+Secret/Key+Value/9f2Q====";

/// The tenant id in the mock's tokens and tenant discovery, by default.
pub const TENANT_ID: &str = "11eb0f4e-7a3c-4d2b-9c61-5f0e8a2b7d10";

/// How many agents the mock's business unit has.
pub const SAMPLE_AGENT_COUNT: usize = 12;

/// Issued tokens kept before expired ones are swept out, to bound memory.
const SWEEP_THRESHOLD: usize = 4096;

/// Lifetimes are cut to a century on tokio's clock, so none overflows an `Instant`.
const LONGEST_TRACKED_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// An OAuth 2.0 grant the mock's token endpoint can accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Grant {
    /// `grant_type=password` with an access key: CXone's back-end flow.
    Password,
    /// `grant_type=client_credentials` (RFC 6749 §4.4), as other servers speak it.
    ClientCredentials,
}

impl Grant {
    /// The `grant_type` value of this grant.
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Password => "password",
            Grant::ClientCredentials => "client_credentials",
        }
    }
}

/// How a successful token response carries `expires_in`; a client must read all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExpiresIn {
    /// `"expires_in": 3600`, as CXone and RFC 6749 send it.
    #[default]
    Number,
    /// `"expires_in": "3600"`.
    String,
    /// No `expires_in`: the client must read the JWT `exp` or assume a default.
    Omitted,
}

/// Counts of the requests the mock answered, from [`MockCxone::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MockStats {
    /// Every `POST /auth/token` received.
    pub token_requests: u64,
    /// Token requests answered with a token.
    pub token_succeeded: u64,
    /// Token requests answered with an error or a [`TokenFault`].
    pub token_failed: u64,
    /// Every request to an API route (`agents`, `server-time`).
    pub api_calls: u64,
    /// API calls answered 2xx.
    pub api_ok: u64,
    /// API calls answered 401: no, unknown, revoked or expired token.
    pub api_unauthorized: u64,
    /// API calls answered 429 by [`MockCxone::rate_limit_next_api_calls`].
    pub api_rate_limited: u64,
}

/// The mock CXone; the [module docs](self) say what it answers. Every clone,
/// router and [`MockServer`] of a mock shares its tokens, faults and counters.
#[derive(Clone)]
pub struct MockCxone {
    shared: Arc<Shared>,
}

struct Shared {
    /// What the builder set, fixed for the mock's life.
    config: MockCxoneBuilder,
    /// Held for a few instructions, never across an `.await`.
    runtime: Mutex<Runtime>,
}

/// What changes while the mock runs.
#[derive(Default)]
struct Runtime {
    base_url: String,
    token_lifetime: Duration,
    expires_in: ExpiresIn,
    token_delay: Duration,
    token_faults: VecDeque<TokenFault>,
    /// The access key accepted: the builder's until [`MockCxone::rotate_access_key`].
    access_key: (String, SecretString),
    /// The next `.0` API calls answer 429, with `Retry-After: .1` if some.
    api_rate_limit: (u64, Option<Duration>),
    /// Every token issued and not revoked, with its expiry on tokio's clock.
    issued: HashMap<String, Instant>,
    /// Refresh tokens issued, each with its expiry.
    refresh_tokens: HashMap<String, Instant>,
    /// Makes every `jti` unique, even for tokens minted in the same instant.
    sequence: u64,
    recorded: VecDeque<RecordedTokenRequest>,
    stats: MockStats,
}

impl Runtime {
    fn is_active(&self, token: &str) -> bool {
        let now = Instant::now();
        self.issued.get(token).is_some_and(|expiry| now < *expiry)
    }

    fn is_access_key(&self, id: &str, secret: &str) -> bool {
        let (key_id, key_secret) = &self.access_key;
        id == key_id && secret == key_secret.expose_secret()
    }
}

impl MockCxone {
    /// A mock with every default (see [`MockCxoneBuilder`]).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to change what the mock accepts and how it answers.
    pub fn builder() -> MockCxoneBuilder {
        MockCxoneBuilder {
            client_id: CLIENT_ID.to_owned(),
            client_secret: SecretString::from(CLIENT_SECRET),
            access_key_id: ACCESS_KEY_ID.to_owned(),
            access_key_secret: SecretString::from(ACCESS_KEY_SECRET),
            scopes: None,
            grants: vec![Grant::Password],
            tenant_id: TENANT_ID.to_owned(),
            business_unit_id: -4_601_237,
            cluster_id: "B32".to_owned(),
            area: "na1".to_owned(),
            api_endpoint: None,
            token_lifetime: Duration::from_secs(3600),
            expires_in: ExpiresIn::Number,
            token_delay: Duration::ZERO,
        }
    }

    /// The mock's routes as a tower `Service`, at [`IN_MEMORY_BASE_URL`] unless served.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/.well-known/openid-configuration", get(api::openid))
            .route("/.well-known/cxone-configuration", get(api::tenant))
            .route("/auth/token", post(token::token))
            .route(
                "/authentication/v1/token/access-key",
                post(token::access_key),
            )
            .route(
                "/InContactAuthorizationServer/token/access-key",
                post(token::legacy_access_key),
            )
            // CXone matches API paths without regard to case.
            .fallback(api::read)
            .with_state(self.clone())
    }

    /// Serves this mock on `127.0.0.1:PORT` until the [`MockServer`] is dropped.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Transport`](crate::ErrorKind::Transport) when no port
    /// can be bound.
    pub async fn serve(&self) -> Result<MockServer, Error> {
        MockServer::start(self.clone()).await
    }

    fn lock(&self) -> MutexGuard<'_, Runtime> {
        // A test that panicked holding the lock left the state consistent.
        (self.shared.runtime.lock()).unwrap_or_else(PoisonError::into_inner)
    }

    /// The base URL: [`IN_MEMORY_BASE_URL`], or `http://127.0.0.1:PORT` while served.
    pub fn base_url(&self) -> String {
        self.lock().base_url.clone()
    }

    /// The OIDC issuer, the base URL.
    pub fn issuer(&self) -> String {
        self.base_url()
    }

    /// The token endpoint, `{base_url}/auth/token`.
    pub fn token_url(&self) -> String {
        format!("{}/auth/token", self.base_url())
    }

    /// The URL of the access-key endpoint (the access key alone, in JSON),
    /// as on an area host: `{base_url}/authentication/v1/token/access-key`.
    pub fn access_key_url(&self) -> String {
        format!("{}/authentication/v1/token/access-key", self.base_url())
    }

    /// The `api_endpoint` of tenant discovery: the base URL unless set otherwise.
    pub fn api_endpoint(&self) -> String {
        (self.shared.config.api_endpoint.clone()).unwrap_or_else(|| self.base_url())
    }

    /// The tenant id in the mock's tokens and tenant discovery.
    pub fn tenant_id(&self) -> &str {
        &self.shared.config.tenant_id
    }

    /// How long tokens issued from now on live.
    pub fn token_lifetime(&self) -> Duration {
        self.lock().token_lifetime
    }

    /// Sets how long tokens issued from now on live.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.lock().token_lifetime = lifetime;
    }

    /// Sets how `expires_in` is sent from now on.
    pub fn set_expires_in(&self, format: ExpiresIn) {
        self.lock().expires_in = format;
    }

    /// Sets how long every token response waits on tokio's clock.
    pub fn set_token_delay(&self, delay: Duration) {
        self.lock().token_delay = delay;
    }

    /// Answers the next `n` token requests with `fault`, after those queued.
    pub fn fail_next_token_requests(&self, n: usize, fault: TokenFault) {
        let faults = std::iter::repeat_n(fault, n);
        self.lock().token_faults.extend(faults);
    }

    /// How many queued token faults are still to be served.
    pub fn pending_token_faults(&self) -> usize {
        self.lock().token_faults.len()
    }

    /// Drops every queued token fault.
    pub fn clear_token_faults(&self) {
        self.lock().token_faults.clear();
    }

    /// Answers the next `n` API calls `429` with `Retry-After` (seconds, rounded
    /// up), whatever their token; `None` sends no `Retry-After`, as CXone often
    /// does. Replaces a pending limit; `n = 0` clears it.
    pub fn rate_limit_next_api_calls(&self, n: u64, retry_after: impl Into<Option<Duration>>) {
        self.lock().api_rate_limit = (n, retry_after.into());
    }

    /// Replaces the accepted access key, as when a CXone user generates a new
    /// key and deactivates the old one: from now on the old key gets `400
    /// invalid_grant`, as any wrong key does. Tokens already issued stay
    /// valid until they expire or are revoked ([`revoke_all`](Self::revoke_all)).
    pub fn rotate_access_key(&self, id: impl Into<String>, secret: impl Into<String>) {
        self.lock().access_key = (id.into(), SecretString::from(secret.into()));
    }

    /// Revokes `token`; returns whether it was an active token of this mock.
    pub fn revoke(&self, token: &str) -> bool {
        self.lock().issued.remove(token).is_some()
    }

    /// Revokes every token issued so far; new tokens work.
    pub fn revoke_all(&self) {
        self.lock().issued.clear();
    }

    /// Whether the API accepts `token` now: issued here, not revoked or expired.
    pub fn is_token_active(&self, token: &str) -> bool {
        self.lock().is_active(token)
    }

    /// Issues a token as the token endpoint would, without a request.
    pub fn issue_token(&self) -> String {
        self.issue().0
    }

    /// Mints a token valid from now for the current lifetime and remembers
    /// it: the access token and the token response.
    fn issue(&self) -> (String, serde_json::Value) {
        let now = Instant::now();
        let mut runtime = self.lock();
        let (token, response) = token::mint(&self.shared.config, &runtime);
        runtime.sequence += 1;
        if runtime.issued.len() >= SWEEP_THRESHOLD {
            runtime.issued.retain(|_, expiry| *expiry > now);
        }
        let lifetime = runtime.token_lifetime.min(LONGEST_TRACKED_LIFETIME);
        let expiry = now.checked_add(lifetime).unwrap_or(now);
        runtime.issued.insert(token.clone(), expiry);
        if let Some(refresh) = response["refresh_token"].as_str() {
            if runtime.refresh_tokens.len() >= SWEEP_THRESHOLD {
                runtime.refresh_tokens.retain(|_, expiry| *expiry > now);
            }
            let expiry = now + token::REFRESH_TOKEN_LIFETIME;
            runtime.refresh_tokens.insert(refresh.to_owned(), expiry);
        }
        (token, response)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> MockStats {
        self.lock().stats
    }

    /// The last 1,000 token requests (since [`reset_stats`](Self::reset_stats)), oldest first.
    pub fn token_requests(&self) -> Vec<RecordedTokenRequest> {
        self.lock().recorded.iter().cloned().collect()
    }

    /// Zeroes the counters and forgets the recorded token requests.
    pub fn reset_stats(&self) {
        let mut runtime = self.lock();
        runtime.stats = MockStats::default();
        runtime.recorded.clear();
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

/// `Retry-After` in delta-seconds, rounded up.
fn retry_after_seconds(retry_after: Duration) -> HeaderValue {
    HeaderValue::from(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0))
}

/// Marks a token endpoint answer as not to be cached (RFC 6749 §5.1).
fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Builds a [`MockCxone`]; every setting has a default.
#[derive(Debug)]
pub struct MockCxoneBuilder {
    client_id: String,
    client_secret: SecretString,
    access_key_id: String,
    access_key_secret: SecretString,
    scopes: Option<Vec<String>>,
    grants: Vec<Grant>,
    tenant_id: String,
    business_unit_id: i64,
    cluster_id: String,
    area: String,
    api_endpoint: Option<String>,
    /// The first values of knobs that live in [`Runtime`] once built.
    token_lifetime: Duration,
    expires_in: ExpiresIn,
    token_delay: Duration,
}

impl MockCxoneBuilder {
    /// The app's client id and secret. Defaults to [`CLIENT_ID`], [`CLIENT_SECRET`].
    pub fn client(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.client_id = id.into();
        self.client_secret = SecretString::from(secret.into());
        self
    }

    /// The access key. Defaults to [`ACCESS_KEY_ID`], [`ACCESS_KEY_SECRET`].
    pub fn access_key(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.access_key_id = id.into();
        self.access_key_secret = SecretString::from(secret.into());
        self
    }

    /// How long issued tokens live. Defaults to one hour, as in NICE's example.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// How `expires_in` is sent. Defaults to [`ExpiresIn::Number`].
    pub fn expires_in(mut self, format: ExpiresIn) -> Self {
        self.expires_in = format;
        self
    }

    /// How long every token response waits on tokio's clock. Defaults to none.
    pub fn token_delay(mut self, delay: Duration) -> Self {
        self.token_delay = delay;
        self
    }

    /// The scopes the app may ask for. Defaults to any scope.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The grants enabled for the app. Defaults to [`Grant::Password`] alone,
    /// as CXone: enable [`Grant::ClientCredentials`] to test the flow other
    /// OAuth servers speak; without it, that grant gets `unsupported_grant_type`.
    pub fn grants(mut self, grants: impl IntoIterator<Item = Grant>) -> Self {
        self.grants = grants.into_iter().collect();
        self
    }

    /// The tenant id in tokens and tenant discovery. Defaults to [`TENANT_ID`].
    pub fn tenant_id(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = tenant_id.into();
        self
    }

    /// The `icBUId` claim. Defaults to `-4601237`, negative as real ones can be.
    pub fn business_unit_id(mut self, id: i64) -> Self {
        self.business_unit_id = id;
        self
    }

    /// The `icClusterId` claim and the tenant's `cluster`. Defaults to `B32`,
    /// a cluster of the default area `na1` (`M32` belongs to `ca1`).
    pub fn cluster_id(mut self, cluster: impl Into<String>) -> Self {
        self.cluster_id = cluster.into();
        self
    }

    /// The tenant's `area`. Defaults to `na1`, one of CXone's areas.
    pub fn area(mut self, area: impl Into<String>) -> Self {
        self.area = area.into();
        self
    }

    /// The `api_endpoint` of tenant discovery. Defaults to the base URL.
    pub fn api_endpoint(mut self, url: impl Into<String>) -> Self {
        self.api_endpoint = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// Builds the mock.
    pub fn build(self) -> MockCxone {
        let runtime = Mutex::new(Runtime {
            base_url: IN_MEMORY_BASE_URL.to_owned(),
            token_lifetime: self.token_lifetime,
            expires_in: self.expires_in,
            token_delay: self.token_delay,
            access_key: (self.access_key_id.clone(), self.access_key_secret.clone()),
            ..Runtime::default()
        });
        let shared = Arc::new(Shared {
            config: self,
            runtime,
        });
        MockCxone { shared }
    }
}
