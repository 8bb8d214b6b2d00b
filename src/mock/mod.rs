//! An in-process mock of NICE CXone: its identity provider and two API reads.
//!
//! [`MockCxone`] answers what real CXone answers, in the shapes CXone uses,
//! so a client can be tested end to end without credentials or a network:
//!
//! | route | what it does |
//! | --- | --- |
//! | `GET /.well-known/openid-configuration` | OIDC discovery: `issuer`, `token_endpoint`, auth methods, grants |
//! | `POST /auth/token` | the access key (`password`) and `client_credentials` grants, client authentication by HTTP Basic or in the form body, RFC 6749 errors |
//! | `GET /.well-known/cxone-configuration?tenantId=` | tenant discovery: the tenant's `api_endpoint` (404 for an unknown tenant) |
//! | `GET /inContactAPI/services/v34.0/agents` | a page of agents; needs a valid bearer token |
//! | `GET /inContactAPI/services/v34.0/server-time` | `{"ServerTime": ...}`; needs a valid bearer token |
//!
//! Tokens are JWT-shaped, with CXone's claims (`tenantId`, `icBUId`, `exp`,
//! ...) and an invalid signature. The mock remembers every token it issued
//! with its expiry on tokio's clock, so a test with paused time sees tokens
//! expire (the API answers 401) exactly when their lifetime ends.
//!
//! Faults are set at run time through `&self` on any clone:
//! [`fail_next_token_requests`](MockCxone::fail_next_token_requests) with a
//! [`TokenFault`] (a status, a body, a delay, `Retry-After`),
//! [`rate_limit_next_api_calls`](MockCxone::rate_limit_next_api_calls),
//! [`revoke`](MockCxone::revoke), [`set_token_lifetime`](MockCxone::set_token_lifetime).
//! [`stats`](MockCxone::stats) counts what it saw and
//! [`token_requests`](MockCxone::token_requests) keeps each token request as
//! it arrived.
//!
//! # What the token endpoint answers
//!
//! Success is `200` with `access_token`, `token_type: "Bearer"`,
//! `expires_in` (see [`ExpiresIn`]), `refresh_token`, `id_token`,
//! `issued_token_type`, and `scope` when one was asked for. Failures follow
//! RFC 6749 §5.2, `{"error": ..., "error_description": ...}`:
//!
//! | request | answer |
//! | --- | --- |
//! | not `application/x-www-form-urlencoded`, a repeated parameter, no `grant_type`, a missing `username`/`password` | `400 invalid_request` |
//! | Basic and `client_secret` in the body together | `400 invalid_request` |
//! | no client authentication, or a wrong client id or secret | `401 invalid_client` |
//! | an `Authorization` header that is not RFC 6749 §2.3.1 Basic (including an id or secret not form-urlencoded) | `401 invalid_client` with `WWW-Authenticate: Basic` |
//! | a grant other than `password` and `client_credentials` | `400 unsupported_grant_type` |
//! | a grant not enabled with [`MockCxoneBuilder::grants`] | `400 unauthorized_client` |
//! | a wrong access key (the `password` grant) | `400 invalid_grant` |
//! | a scope outside [`MockCxoneBuilder::scopes`] | `400 invalid_scope` |
//! | a body over [`MAX_TOKEN_REQUEST_BYTES`] | `413 invalid_request` |
//!
//! Every answer, good or bad, carries `Cache-Control: no-store` and
//! `Pragma: no-cache`. Queued [`TokenFault`]s replace the answer.
//!
//! # What the API answers
//!
//! `agents` and `server-time` (versions `v25.0` to `v34.0`) check, in order:
//! a queued [rate limit](MockCxone::rate_limit_next_api_calls) answers `429`
//! with `Retry-After`; then a missing, unknown, revoked or expired bearer
//! token answers `401` with no body. `agents` answers `204` when its filters
//! leave nothing.
//!
//! # In memory or on a socket
//!
//! [`MockCxone::router`] is an axum `Router`, a tower `Service`: call it
//! directly, or give it to a token source through
//! [`ServiceTransport`](crate::token::ServiceTransport). Its base URL is then
//! [`IN_MEMORY_BASE_URL`]. This is the way to test anything that depends on
//! time, because paused tokio time and real sockets do not mix.
//! [`MockCxone::serve`] serves the same state on `127.0.0.1` with a random
//! port, for clients that need a real URL.
//!
//! # Example
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
//!
//! // CXone's back-end flow: the access key in the form, the app in HTTP Basic.
//! let form = format!(
//!     "grant_type=password&username={}&password={}",
//!     mock::form_encode(mock::ACCESS_KEY_ID),
//!     mock::form_encode(mock::ACCESS_KEY_SECRET),
//! );
//! let request = Request::post(cxone.token_url())
//!     .header(header::AUTHORIZATION, mock::basic_authorization(mock::CLIENT_ID, mock::CLIENT_SECRET))
//!     .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
//!     .body(Body::from(form))?;
//! let response = cxone.router().oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! let body = response.into_body().collect().await?.to_bytes();
//! let json: serde_json::Value = serde_json::from_slice(&body)?;
//! let token = json["access_token"].as_str().unwrap();
//!
//! // The API accepts the token until it expires or is revoked.
//! let read = |token: &str| {
//!     Request::get(format!("{}/inContactAPI/services/v34.0/server-time", cxone.api_endpoint()))
//!         .header(header::AUTHORIZATION, format!("Bearer {token}"))
//!         .body(Body::empty())
//! };
//! assert_eq!(cxone.router().oneshot(read(token)?).await?.status(), StatusCode::OK);
//! cxone.revoke(token);
//! assert_eq!(cxone.router().oneshot(read(token)?).await?.status(), StatusCode::UNAUTHORIZED);
//!
//! assert_eq!(cxone.stats().token_succeeded, 1);
//! assert_eq!(cxone.stats().api_unauthorized, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

mod api;
mod builder;
mod client_auth;
mod discovery;
mod faults;
mod jwt;
mod mock_cxone;
mod server;
mod state;
mod stats;
mod token_endpoint;

pub use api::SAMPLE_AGENT_COUNT;
pub use builder::{
    DEFAULT_AREA, DEFAULT_BUSINESS_UNIT_ID, DEFAULT_CLUSTER_ID, DEFAULT_TENANT_NAME,
    DEFAULT_TOKEN_LIFETIME, ExpiresIn, Grant, MockCxoneBuilder,
};
pub use client_auth::{basic_authorization, form_encode};
pub use faults::TokenFault;
pub use mock_cxone::MockCxone;
pub use server::MockServer;
pub use state::MAX_RECORDED_TOKEN_REQUESTS;
pub use stats::{MockStats, RecordedTokenRequest};
pub use token_endpoint::MAX_TOKEN_REQUEST_BYTES;

/// The base URL of a mock used in memory, through [`MockCxone::router`].
///
/// The `.invalid` top-level domain never resolves (RFC 2606), so a request
/// meant for the mock can never reach a real host by mistake.
pub const IN_MEMORY_BASE_URL: &str = "https://cxone.mock.invalid";

/// The client id the mock accepts by default (the app's registration).
///
/// It holds an `@`, which RFC 6749 §2.3.1 encoding turns into `%40`, so a
/// client that skips the encoding is caught.
pub const CLIENT_ID: &str = "mock-app@cxone.mock.invalid";

/// The client secret the mock accepts by default.
///
/// It holds a `:` (the Basic separator), a space, `+`, `/` and `=`, so only a
/// client that form-urlencodes it before base64 (RFC 6749 §2.3.1) gets in.
pub const CLIENT_SECRET: &str = "mock:client secret+/=";

/// The access key id the mock accepts by default (the `username` of the
/// password grant). Like CXone's, it ends in `====`.
pub const ACCESS_KEY_ID: &str = "MOCKACCESSKEYIDQ2XJH7T4NVBLKEUJ3C====";

/// The access key secret the mock accepts by default (the `password` of the
/// password grant).
///
/// Like CXone's, it holds `+` and `/` and ends in `====`: sent without
/// form-urlencoding, its `+` would arrive as a space and be refused.
pub const ACCESS_KEY_SECRET: &str = "mOck+Secret/Key+Value/9f2Q====";

/// The tenant id in the mock's tokens and in its tenant discovery.
pub const TENANT_ID: &str = "11eb0f4e-7a3c-4d2b-9c61-5f0e8a2b7d10";
