//! NICE CXone authentication for every tower HTTP client.
//!
//! `cxone-auth` obtains CXone access tokens, caches them, refreshes them ahead
//! of expiry with one fetch for any number of callers, and attaches them as
//! `Authorization: Bearer` to the requests of any tower `Service`.
//!
//! - [`token`]: [`AccessToken`] and the [`TokenSource`] trait, with CXone's
//!   access key grant and the standard client credentials grant.
//! - [`Error`]: one error type whose message says what to fix.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub mod cache;
pub mod error;
pub mod layer;
pub mod token;

pub use cache::TokenCache;
pub use error::{Error, ErrorKind, OAuthError, OAuthErrorCode};
pub use layer::{CxoneAuth, CxoneAuthLayer};
pub use token::{AccessToken, TokenSource};
