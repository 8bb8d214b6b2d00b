//! `reqwest::Client` as an [`HttpTransport`] (feature `reqwest`).
//!
//! Token sources build their own client when none is given, from
//! [`reqwest_client_builder`]: redirects off (a token request must not be
//! replayed to another host), a connect timeout, and no proxy. To go through
//! a proxy, start from the same builder and pass the client:
//!
//! ```no_run
//! use cxone_auth::token::{AccessKeyGrant, reqwest_client_builder};
//!
//! let client = reqwest_client_builder()
//!     .proxy(reqwest::Proxy::https("http://proxy.internal:3128").expect("a proxy URL"))
//!     .build()
//!     .expect("an HTTP client");
//! let source = AccessKeyGrant::new("id", "secret", "KEYID", "KEYSECRET")?.transport(client);
//! # Ok::<(), cxone_auth::Error>(())
//! ```
//!
//! A client built otherwise must also have redirects disabled: the source
//! refuses a 3xx, but cannot see one that the client followed.

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use http::{Request, Response};

use crate::Error;
use crate::token::{DEFAULT_CONNECT_TIMEOUT, HttpTransport, MAX_RESPONSE_BYTES};

/// The `reqwest` client builder token sources start from: no redirects, a
/// [`DEFAULT_CONNECT_TIMEOUT`], no proxy (not even from `HTTPS_PROXY`: a token
/// request carries the client secret, and where it goes should be a visible
/// choice), and a `cxone-auth` user agent.
pub fn reqwest_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
        .no_proxy()
        .user_agent(concat!(
            env!("CARGO_PKG_NAME"),
            "/",
            env!("CARGO_PKG_VERSION")
        ))
}

impl HttpTransport for reqwest::Client {
    fn send(&self, request: Request<Bytes>) -> BoxFuture<'_, Result<Response<Bytes>, Error>> {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|err| Error::config("the request URL is not valid").with_source(err))?;
            let mut response = self.execute(request).await.map_err(request_error)?;
            if response
                .content_length()
                .is_some_and(|length| length > MAX_RESPONSE_BYTES as u64)
            {
                return Err(too_large());
            }
            let mut head = Response::builder()
                .status(response.status())
                .version(response.version())
                .body(())
                .map_err(|err| {
                    Error::invalid_response("the response is not valid HTTP").with_source(err)
                })?;
            *head.headers_mut() = std::mem::take(response.headers_mut());

            // Read chunk by chunk and stop past the cap: a hostile server
            // sending gigabytes costs one MiB, and the connection is dropped.
            let mut body = BytesMut::new();
            while let Some(chunk) = response.chunk().await.map_err(body_error)? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            let (parts, ()) = head.into_parts();
            Ok(Response::from_parts(parts, body.freeze()))
        })
    }
}

fn too_large() -> Error {
    Error::invalid_response(format!(
        "the response body is larger than {MAX_RESPONSE_BYTES} bytes"
    ))
}

fn request_error(err: reqwest::Error) -> Error {
    if err.is_timeout() {
        Error::timeout("the HTTP request timed out").with_source(err)
    } else {
        Error::transport("the HTTP request failed", err)
    }
}

fn body_error(err: reqwest::Error) -> Error {
    if err.is_timeout() {
        Error::timeout("reading the response body timed out").with_source(err)
    } else {
        Error::invalid_response("the response body broke off").with_source(err)
    }
}
