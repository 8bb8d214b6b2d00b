//! [`HttpTransport`]: how token sources talk HTTP.
//!
//! Token sources send a few small requests (discovery, token, tenant
//! configuration) and read small bodies. They do it through this trait so that
//! the HTTP client is a choice: `reqwest` by default (feature `reqwest`), or any
//! tower service, such as the in-process mock CXone, with [`ServiceTransport`]:
//!
//! ```
//! use bytes::Bytes;
//! use cxone_auth::token::{HttpTransport, ServiceTransport};
//! use http::{Request, Response};
//! use http_body_util::Full;
//!
//! let echo = tower::service_fn(|req: Request<Full<Bytes>>| async move {
//!     Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(req.uri().to_string()))))
//! });
//! let transport = ServiceTransport::new(echo);
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let response = transport.send(Request::new(Bytes::new())).await?;
//! assert_eq!(response.body(), "/");
//! # Ok::<(), cxone_auth::Error>(()) }).unwrap();
//! ```

use std::fmt;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt as _, Full, Limited};
use tower::{Service, ServiceExt as _};

use crate::Error;
use crate::error::BoxError;

/// The largest response body a token source reads, in bytes.
///
/// Token and discovery responses are a few KiB; a server that sends more is
/// broken or hostile, and reading stops here instead of filling memory.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Sends one HTTP request and reads its whole response, at most
/// [`MAX_RESPONSE_BYTES`] of body.
///
/// Implementations must not follow redirects: a 3xx comes back as it is, and
/// the token source refuses it.
pub trait HttpTransport: Send + Sync + fmt::Debug + 'static {
    /// Sends `request` and reads the response body.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Transport`](crate::ErrorKind::Transport) when no response
    /// arrives, [`ErrorKind::InvalidResponse`](crate::ErrorKind::InvalidResponse)
    /// when the body is larger than [`MAX_RESPONSE_BYTES`] or breaks off.
    fn send(&self, request: Request<Bytes>) -> BoxFuture<'_, Result<Response<Bytes>, Error>>;
}

/// An [`HttpTransport`] over any tower `Service`, such as an axum `Router` or
/// a hyper client.
#[derive(Clone)]
pub struct ServiceTransport<S> {
    service: S,
}

impl<S> ServiceTransport<S> {
    /// Sends requests through `service`, cloning it for each request.
    pub fn new(service: S) -> Self {
        Self { service }
    }
}

impl<S> fmt::Debug for ServiceTransport<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTransport").finish_non_exhaustive()
    }
}

impl<S, B> HttpTransport for ServiceTransport<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    fn send(&self, request: Request<Bytes>) -> BoxFuture<'_, Result<Response<Bytes>, Error>> {
        let service = self.service.clone();
        Box::pin(async move {
            let response = service
                .oneshot(request.map(Full::new))
                .await
                .map_err(|err| Error::transport("the HTTP request failed", err))?;
            let (parts, body) = response.into_parts();
            let body = read_capped(body).await?;
            Ok(Response::from_parts(parts, body))
        })
    }
}

/// Reads a whole body, failing once it passes [`MAX_RESPONSE_BYTES`].
pub(crate) async fn read_capped<B>(body: B) -> Result<Bytes, Error>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match Limited::new(body, MAX_RESPONSE_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(Error::invalid_response(
            format!("the response body is larger than {MAX_RESPONSE_BYTES} bytes"),
        )),
        Err(err) => Err(Error::invalid_response("the response body broke off").with_source(err)),
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::ErrorKind;

    #[tokio::test]
    async fn bodies_past_the_cap_are_refused() {
        let huge = tower::service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(vec![
                b'x';
                MAX_RESPONSE_BYTES
                    + 1
            ]))))
        });
        let err = ServiceTransport::new(huge)
            .send(Request::new(Bytes::new()))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    }
}
