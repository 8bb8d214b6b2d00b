//! NICE CXone authentication for every tower HTTP client.
//!
//! `cxone-auth` obtains CXone access tokens, caches them, refreshes them ahead
//! of expiry with one fetch for any number of callers, and attaches them as
//! `Authorization: Bearer` to the requests of any tower `Service`.
//!
//! - [`token`]: [`AccessToken`] and the [`TokenSource`] trait, with CXone's
//!   access key grant and the standard client credentials grant.
//! - [`TokenCache`]: one per credential; hands out the current token without
//!   locking, refreshes it ahead of expiry with one fetch for all callers.
//! - `cache::RedisStore` (feature `redis`): a fleet of processes shares one
//!   token per credential through Redis, optionally encrypted at rest
//!   (feature `redis-encryption`).
//! - [`retry`]: [`CxoneRetryLayer`], which replays a 401 once with a fresh
//!   token and honours `Retry-After` on 429 and 503, within a budget.
//! - [`Error`]: one error type whose message says what to fix.
//! - `mock` (feature `mock`): an in-process mock of CXone's identity provider
//!   and API, for tests.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod __fuzz;
pub mod cache;
pub mod error;
pub mod layer;
#[cfg(feature = "mock")]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub mod mock;
pub mod retry;
mod retry_after;
pub mod token;

pub use cache::{CacheStats, TokenCache, TokenCacheBuilder, TokenId, TokenReader};
pub use error::{Error, ErrorKind, OAuthError, OAuthErrorCode};
pub use layer::{CxoneAuth, CxoneAuthLayer};
pub use retry::CxoneRetryLayer;
pub use token::{
    AccessKeyGrant, AccessToken, ClientAuth, ClientCredentials, Environment, TenantConfig,
    TokenEndpoint, TokenSource,
};
