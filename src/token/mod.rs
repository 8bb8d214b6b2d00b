//! Access tokens and the sources that fetch them.
//!
//! - [`AccessToken`]: the token, its header, its timing, its claims.
//! - [`TokenSource`]: the trait a token cache fetches through, with
//!   [`DynTokenSource`] as its object-safe twin.
//! - [`AccessKeyGrant`]: CXone's back-end flow (password grant with an access
//!   key); [`ClientCredentials`]: the standard RFC 6749 §4.4 grant.
//! - [`Environment`] and [`TokenEndpoint`]: where tokens are asked for, with
//!   OpenID discovery; [`ClientAuth`]: Basic or form body.
//! - [`TenantDiscovery`], [`TenantConfig`], [`discover_tenant`]: the API host
//!   of a token's tenant.
//! - [`StaticToken`] and [`from_fn`]: sources for tests and custom setups.
//! - [`HttpTransport`]: how HTTP sources send requests (reqwest or any tower service).
//!
//! ```
//! use cxone_auth::TokenSource as _;
//! use cxone_auth::token::{AccessKeyGrant, Environment};
//!
//! let source = AccessKeyGrant::new("client-id", "client-secret", "KEYID", "KEYSECRET====")?
//!     .environment(Environment::Cxone);
//! assert_eq!(source.token_endpoint().token_url().unwrap().host_str(), Some("cxone.niceincontact.com"));
//! assert_eq!(source.shared_key().unwrap().len(), 64);
//! # Ok::<(), cxone_auth::Error>(())
//! ```

mod access_key;
mod access_token;
mod claims;
mod client_auth;
mod client_credentials;
mod credential;
mod discovery;
mod endpoint;
mod env;
mod http_client;
#[cfg(feature = "reqwest")]
mod reqwest_transport;
pub(crate) mod response;
mod source;
mod tenant;
mod token_client;
mod transport;

pub use access_key::AccessKeyGrant;
pub use access_token::{AccessToken, DEFAULT_LIFETIME, MAX_LIFETIME, MAX_TOKEN_BYTES};
pub use claims::JwtClaims;
pub use client_auth::ClientAuth;
pub use client_credentials::ClientCredentials;
pub use endpoint::{Environment, TokenEndpoint};
pub use http_client::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use reqwest_transport::reqwest_client_builder;
pub use source::{DynTokenSource, FnSource, StaticToken, TokenSource, from_fn};
pub use tenant::{TenantConfig, TenantDiscovery, discover_tenant};
pub use transport::{HttpTransport, MAX_RESPONSE_BYTES, ServiceTransport};
