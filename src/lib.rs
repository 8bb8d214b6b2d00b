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
//! - [`token`]: [`AccessToken`], the [`TokenSource`] trait, CXone's access
//!   key grant ([`AccessKeyGrant`]), the client credentials grant
//!   ([`ClientCredentials`]), OIDC and tenant discovery.
//! - [`cache`]: [`TokenCache`], one per credential, refreshed ahead with one
//!   fetch for all callers; with a [`TokenStore`] (`RedisStore`, feature
//!   `redis`, encrypted with `redis-encryption`) a fleet shares one token;
//!   [`KeyedCaches`] holds one per tenant for
//!   [`CxoneAuthLayer::keyed`].
//! - [`layer`], [`routing`], [`retry`]: the three tower layers, stacked
//!   outermost first as `TimeoutLayer`, [`CxoneRetryLayer`],
//!   [`TenantRoutingLayer`] (if path-only requests should find their tenant),
//!   [`CxoneAuthLayer`], then `BufferLayer`/`RateLimitLayer` and the client;
//!   [`retry`] says why.
//! - `middleware` (feature `reqwest-middleware`): the same layers for
//!   `reqwest-middleware` chains; `mock` (feature `mock`): an in-process
//!   CXone for tests; the `cxone-token` command (feature `cli`) checks a
//!   credential.
//! - [`Error`]: one error type whose message says what to fix.
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
mod metrics;
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
    CacheStats, CacheStatus, KeyedCaches, MemoryStore, StoreLock, StoredToken, TokenCache,
    TokenCacheBuilder, TokenStore,
};
pub use crate::error::{Error, ErrorKind, OAuthErrorCode};
pub use crate::http::{HttpRequest, HttpResponse, ReplayBody};
pub use crate::layer::{CxoneAuth, CxoneAuthLayer};
pub use crate::retry::{CxoneRetry, CxoneRetryLayer};
pub use crate::routing::{HostFamily, TenantRouting, TenantRoutingLayer};
pub use crate::token::{
    AccessKeyGrant, AccessKeyOnly, AccessToken, ClientAuth, ClientCredentials, Environment,
    ServiceTransport, StaticToken, TenantConfig, TenantDiscovery, TokenEndpoint, TokenSource,
    from_fn,
};
