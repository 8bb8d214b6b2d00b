//! [`CxoneAuthLayer`]: attaches CXone tokens to the requests of any tower
//! service.
//!
//! For each request the layer
//! - leaves it alone if it already carries `Authorization` (a per-request
//!   override);
//! - refuses it with [`ErrorKind::HostNotAllowed`](crate::ErrorKind::HostNotAllowed),
//!   before anything is sent, unless it goes over https to an allowed host
//!   ([`AllowedHosts`]);
//! - with a cached token, inserts the header and calls the inner service at
//!   once: no await, no lock, no allocation;
//! - without one, waits for the [`TokenCache`](crate::TokenCache) first and
//!   only then for the inner service's readiness;
//! - on a 401, or a gRPC `UNAUTHENTICATED`, invalidates exactly the token the
//!   request carried.
//!
//! With [`tenant_routing`](CxoneAuthLayer::tenant_routing), requests that
//! carry only a path go to the API host of the token's tenant; see
//! [`routing`].
//!
//! It does not replay the request: stack [`CxoneRetryLayer`](crate::retry::CxoneRetryLayer)
//! outside it, so a 401 leads to one refresh and one replay, and a 429 to a
//! wait:
//!
//! ```
//! use std::convert::Infallible;
//! use cxone_auth::{CxoneAuthLayer, TokenCache};
//! use cxone_auth::token::StaticToken;
//! use http::{Request, Response, header::AUTHORIZATION};
//! use tower::{ServiceBuilder, ServiceExt as _};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower::BoxError> {
//! let tokens = TokenCache::new(StaticToken::new("example-token"));
//! let client = ServiceBuilder::new()
//!     .layer(CxoneAuthLayer::new(tokens))
//!     .service_fn(|request: Request<()>| async move {
//!         // Stands for an HTTP client: echoes the header it received.
//!         let header = request.headers()[AUTHORIZATION].to_str().unwrap().to_owned();
//!         Ok::<_, Infallible>(Response::new(header))
//!     });
//!
//! let request = Request::get("https://api-na1.niceincontact.com/inContactAPI/services/v34.0/server-time")
//!     .body(())?;
//! let response = client.clone().oneshot(request).await?;
//! assert_eq!(response.body(), "Bearer example-token");
//!
//! let elsewhere = Request::get("https://example.com/").body(())?;
//! let err = client.oneshot(elsewhere).await.unwrap_err();
//! let err = err.downcast_ref::<cxone_auth::Error>().unwrap();
//! assert_eq!(err.kind(), cxone_auth::ErrorKind::HostNotAllowed);
//! # Ok(())
//! # }
//! ```

mod future;
mod hosts;
mod request;
pub mod routing;
mod service;

pub use future::ResponseFuture;
pub use hosts::{AllowedHosts, CXONE_DOMAINS};
pub use request::{AuthRequest, AuthResponse};
pub use routing::DEFAULT_DISCOVERY_BACKOFF;
pub use service::{CxoneAuth, CxoneAuthLayer};
