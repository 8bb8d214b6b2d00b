//! Access tokens and the sources that fetch them.
//!
//! - [`AccessToken`]: the token, its header, its timing, its claims.
//! - [`TokenSource`]: the trait a [`TokenCache`](crate::TokenCache) fetches through,
//!   with [`DynTokenSource`] as its object-safe twin.
//! - [`StaticToken`] and [`from_fn`]: sources for tests and custom setups.
//! - [`HttpTransport`]: how HTTP sources send requests (reqwest or any tower service).

mod access_token;
mod claims;
mod source;
mod transport;

pub use access_token::{AccessToken, DEFAULT_LIFETIME, MAX_LIFETIME, MAX_TOKEN_BYTES};
pub use claims::JwtClaims;
pub use source::{DynTokenSource, FnSource, StaticToken, TokenSource, from_fn};
pub use transport::{HttpTransport, MAX_RESPONSE_BYTES, ServiceTransport};
