//! NICE CXone authentication for every tower HTTP client.
//!
//! `cxone-auth` obtains CXone access tokens, caches them, refreshes them ahead
//! of expiry with one fetch for any number of callers, and attaches them as
//! `Authorization: Bearer` to the requests of any tower `Service`: a
//! `reqwest::Client`, a hyper client, a tonic `Channel`.
//!
//! ```no_run
//! use cxone_auth::{AccessKeyGrant, CxoneAuthLayer, CxoneRetryLayer, Environment, TokenCache};
//! use tower::{ServiceBuilder, ServiceExt as _};
//!
//! # async fn run() -> Result<(), tower::BoxError> {
//! // CXone's back-end flow: the app's client id and secret, a user's access key.
//! let source = AccessKeyGrant::new("client-id", "client-secret", "ACCESSKEYID", "access-key-secret")?
//!     .environment(Environment::Cxone);
//! let tokens = TokenCache::new(source); // one per credential; clones share it
//!
//! let client = ServiceBuilder::new()
//!     .layer(CxoneRetryLayer::default()) // 401 once with a fresh token; 429/503 wait Retry-After
//!     .layer(CxoneAuthLayer::new(tokens.clone())) // Bearer from the cache, CXone hosts only
//!     .service(reqwest::Client::new());
//!
//! let url = "https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents".parse()?;
//! let response = client.oneshot(reqwest::Request::new(reqwest::Method::GET, url)).await?;
//! println!("{}", response.status());
//! # Ok(())
//! # }
//! ```
//!
//! # The parts
//!
//! - [`token`]: [`AccessToken`] and the [`TokenSource`] trait, with CXone's
//!   access key grant ([`AccessKeyGrant`]) and the standard client
//!   credentials grant ([`ClientCredentials`]), OIDC and tenant discovery.
//! - [`cache`]: [`TokenCache`], one per credential; hands out the current
//!   token without locking, refreshes it ahead of expiry with one fetch for
//!   all callers, keeps a valid token when a refresh fails, backs off when
//!   there is none. With a [`TokenStore`] (`RedisStore`, feature `redis`) a
//!   fleet of processes shares one token per credential, optionally encrypted
//!   at rest (feature `redis-encryption`).
//! - [`layer`]: [`CxoneAuthLayer`], which attaches the token to https requests
//!   for allowed hosts only and invalidates a token the server refuses.
//! - [`routing`]: [`TenantRoutingLayer`], stacked outside the auth layer,
//!   sends path-only requests to the API host of the token's tenant.
//! - [`retry`]: [`CxoneRetryLayer`], which replays a 401 once with a fresh
//!   token and honours `Retry-After` on 429 and 503, within a budget.
//! - `middleware` (feature `reqwest-middleware`): `CxoneAuthMiddleware`, the
//!   same layers for `reqwest-middleware` chains.
//! - [`Error`]: one error type whose message says what to fix.
//! - `mock` (feature `mock`): an in-process mock of CXone's identity provider
//!   and API, for tests.
//! - The `cxone-token` command (feature `cli`): fetches a token and shows its
//!   expiry, scopes, tenant and API host, to check a credential.
//!
//! # Stacking order
//!
//! Outermost first: `TimeoutLayer` (bounds the whole call, waits included),
//! [`CxoneRetryLayer`] (it must see the 401 after the auth layer invalidated
//! the token, and replay through the auth layer so the replay carries the new
//! one), [`TenantRoutingLayer`] if path-only requests should find their
//! tenant, [`CxoneAuthLayer`], then `BufferLayer`/`RateLimitLayer` and the
//! client. The auth layer waits for a token before it drives the inner
//! service to readiness, so a buffer below it holds no slot while a token
//! loads.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod __fuzz;
mod backoff;
pub mod cache;
pub mod error;
mod flight;
mod http;
pub mod layer;
#[cfg(feature = "reqwest-middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest-middleware")))]
pub mod middleware;
#[cfg(feature = "mock")]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub mod mock;
pub mod retry;
pub mod routing;
pub mod token;

#[cfg(feature = "redis-encryption")]
pub use crate::cache::EncryptionKey;
#[cfg(feature = "redis")]
pub use crate::cache::RedisStore;
pub use crate::cache::{
    CacheStats, MemoryStore, StoreLock, StoredToken, TokenCache, TokenCacheBuilder, TokenStore,
};
pub use crate::error::{Error, ErrorKind, OAuthErrorCode};
pub use crate::http::{HttpRequest, HttpResponse, ReplayBody};
pub use crate::layer::{CxoneAuth, CxoneAuthLayer};
pub use crate::retry::{CxoneRetry, CxoneRetryLayer};
pub use crate::routing::{TenantRouting, TenantRoutingLayer};
pub use crate::token::{
    AccessKeyGrant, AccessToken, ClientAuth, ClientCredentials, Environment, ServiceTransport,
    StaticToken, TenantConfig, TenantDiscovery, TokenEndpoint, TokenSource, from_fn,
};
