//! [`HttpTransport`]: how the OAuth sources and tenant discovery talk HTTP.
//!
//! They send a few small requests and read bodies of at most 1 MiB. Without
//! a transport given, a source builds one `reqwest::Client` on first use,
//! shared by its clones: redirects off (a token request must not be replayed
//! to another host), the connect timeout, no proxy (not even from
//! `HTTPS_PROXY`: where the client secret goes should be a visible choice).
//! Without the `reqwest` feature and without a transport, a fetch fails with
//! a [`Config`](crate::ErrorKind::Config) error that says so.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::ACCEPT;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt as _, Full, Limited};
use serde_json::{Map, Value};
use tower::{Service, ServiceExt as _};
use url::Url;

use crate::Error;
use crate::backoff::retry_after;
use crate::error::BoxError;
use crate::token::response::json_object;

/// The largest response body read, in bytes. Token and discovery responses
/// are a few KiB.
pub(crate) const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Defaults of the timeouts; each is explained on its setter.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

mod sealed {
    pub trait Sealed {}
}

/// Sends one HTTP request and reads its whole response, at most 1 MiB of
/// body. Implemented by `reqwest::Client` (feature `reqwest`) and
/// [`ServiceTransport`]; sealed.
///
/// A transport does not follow redirects: a 3xx comes back as it is, and the
/// source refuses it. A `reqwest::Client` you build yourself needs
/// `.redirect(reqwest::redirect::Policy::none())` for that: the source
/// cannot see a redirect the client followed.
pub trait HttpTransport: sealed::Sealed + Send + Sync + fmt::Debug + 'static {
    /// Sends `request` and reads the response body.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Transport`](crate::ErrorKind::Transport) when no response
    /// arrives, [`ErrorKind::InvalidResponse`](crate::ErrorKind::InvalidResponse)
    /// when the body is larger than 1 MiB or breaks off.
    fn send(&self, request: Request<Bytes>) -> BoxFuture<'_, Result<Response<Bytes>, Error>>;
}

/// An [`HttpTransport`] over any tower `Service`, such as an axum `Router` or
/// a hyper client.
///
/// ```
/// use bytes::Bytes;
/// use cxone_auth::token::{HttpTransport, ServiceTransport};
/// use http::{Request, Response};
/// use http_body_util::Full;
///
/// let echo = tower::service_fn(|req: Request<Full<Bytes>>| async move {
///     Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(req.uri().to_string()))))
/// });
/// let transport = ServiceTransport::new(echo);
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let response = transport.send(Request::new(Bytes::new())).await?;
/// assert_eq!(response.body(), "/");
/// # Ok::<(), cxone_auth::Error>(()) }).unwrap();
/// ```
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

impl<S> sealed::Sealed for ServiceTransport<S> {}

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
            read_capped(response).await
        })
    }
}

#[cfg(feature = "reqwest")]
impl sealed::Sealed for reqwest::Client {}

#[cfg(feature = "reqwest")]
impl HttpTransport for reqwest::Client {
    fn send(&self, request: Request<Bytes>) -> BoxFuture<'_, Result<Response<Bytes>, Error>> {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|err| Error::config("the request URL is not valid").with_source(err))?;
            let response = self.execute(request).await.map_err(|err| {
                if err.is_timeout() {
                    Error::timeout("the HTTP request timed out").with_source(err)
                } else {
                    Error::transport("the HTTP request failed", err)
                }
            })?;
            read_capped(http::Response::<reqwest::Body>::from(response)).await
        })
    }
}

/// Reads a whole response body, refusing one that announces or reaches more
/// than [`MAX_RESPONSE_BYTES`]: a hostile server sending gigabytes costs one
/// MiB, and the connection is dropped.
async fn read_capped<B>(response: Response<B>) -> Result<Response<Bytes>, Error>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let too_large = || {
        Error::invalid_response(format!(
            "the response body is larger than {MAX_RESPONSE_BYTES} bytes"
        ))
    };
    let (parts, body) = response.into_parts();
    if body.size_hint().lower() > MAX_RESPONSE_BYTES as u64 {
        return Err(too_large());
    }
    match Limited::new(body, MAX_RESPONSE_BYTES).collect().await {
        Ok(collected) => Ok(Response::from_parts(parts, collected.to_bytes())),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(err) if is_timeout(&*err) => {
            Err(Error::timeout("reading the response body timed out").with_source(err))
        }
        Err(err) => Err(Error::invalid_response("the response body broke off").with_source(err)),
    }
}

/// Whether a body broke off because the client's own timeout struck.
fn is_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    #[cfg(feature = "reqwest")]
    if let Some(err) = err.downcast_ref::<reqwest::Error>() {
        return err.is_timeout();
    }
    let _ = err;
    false
}

/// The transport a source or a tenant discovery sends through (given, or
/// built on first use), and its timeouts.
#[derive(Clone, Debug)]
pub(crate) struct HttpClient {
    given: Option<Arc<dyn HttpTransport>>,
    connect_timeout: Duration,
    timeout: Duration,
    /// The default transport, built once and shared by clones; a new one
    /// whenever the connect timeout changes.
    built: Arc<OnceLock<Result<Arc<dyn HttpTransport>, Error>>>,
}

impl HttpClient {
    pub(crate) fn new() -> Self {
        Self {
            given: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            built: Arc::default(),
        }
    }

    pub(crate) fn set_transport(&mut self, transport: impl HttpTransport) {
        self.given = Some(Arc::new(transport));
    }

    pub(crate) fn set_connect_timeout(&mut self, timeout: Duration) {
        self.connect_timeout = timeout;
        self.built = Arc::default();
    }

    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The transport to send through.
    pub(crate) fn transport(&self) -> Result<Arc<dyn HttpTransport>, Error> {
        if let Some(given) = &self.given {
            return Ok(Arc::clone(given));
        }
        self.built
            .get_or_init(|| default_transport(self.connect_timeout))
            .clone()
    }

    /// Runs `exchange` within the total timeout; `what` names it in the error.
    pub(crate) async fn within_timeout<T>(
        &self,
        what: &str,
        exchange: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::timeout(format!(
                "{what} took longer than {:?}",
                self.timeout
            ))),
        }
    }

    /// `GET url` for a JSON object (a `.well-known` document). 404 is a
    /// [`Discovery`](crate::ErrorKind::Discovery) error saying `not_found`; 408, 429
    /// and 5xx keep their transient kinds and `Retry-After`; other statuses
    /// and redirects are `Discovery`; a body that is not a JSON object is
    /// [`InvalidResponse`](crate::ErrorKind::InvalidResponse). `what` names the
    /// document in messages.
    pub(crate) async fn get_json(
        &self,
        url: &Url,
        what: &str,
        not_found: &str,
    ) -> Result<Map<String, Value>, Error> {
        let request = Request::get(url.as_str())
            .header(ACCEPT, "application/json")
            .body(Bytes::new())
            .map_err(|err| Error::config("the URL is not a valid request URI").with_source(err))?;

        let response = self.transport()?.send(request).await?;
        let status = response.status();
        if status.is_success() {
            return json_object(response.body()).ok_or_else(|| {
                Error::invalid_response(format!("{what} is not a JSON object")).with_status(status)
            });
        }
        let transient = matches!(status.as_u16(), 408 | 429 | 500..=599);
        let err = match status {
            StatusCode::NOT_FOUND => Error::discovery(not_found),
            _ if transient => {
                Error::from_token_response(status, None, retry_after(response.headers()))
                    .with_message(format!("reading {what} failed"))
            }
            s if s.is_redirection() => Error::discovery(format!(
                "reading {what} answered with a redirect, and redirects are not followed"
            )),
            _ => Error::discovery(format!("reading {what} failed")),
        };
        Err(err.with_status(status))
    }
}

#[cfg(feature = "reqwest")]
fn default_transport(connect_timeout: Duration) -> Result<Arc<dyn HttpTransport>, Error> {
    // One request per token gains nothing from HTTP/2, and an integrator
    // reports CXone's `/auth/token` failing over it.
    let client = reqwest::Client::builder()
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout)
        .no_proxy()
        .user_agent(concat!(
            env!("CARGO_PKG_NAME"),
            "/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|err| Error::config("could not build the HTTP client").with_source(err))?;
    Ok(Arc::new(client))
}

#[cfg(not(feature = "reqwest"))]
fn default_transport(_connect_timeout: Duration) -> Result<Arc<dyn HttpTransport>, Error> {
    Err(Error::config(
        "no HTTP transport: enable the `reqwest` feature or set one with `.transport(..)`",
    ))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::ErrorKind;

    fn answering(
        status: u16,
        headers: &'static [(&'static str, &'static str)],
        body: Bytes,
    ) -> HttpClient {
        let service = tower::service_fn(move |_: Request<Full<Bytes>>| {
            let mut response = Response::builder().status(status);
            for (name, value) in headers {
                response = response.header(*name, *value);
            }
            let response = response.body(Full::new(body.clone())).unwrap();
            async move { Ok::<_, Infallible>(response) }
        });
        let mut client = HttpClient::new();
        client.set_transport(ServiceTransport::new(service));
        client
    }

    async fn send(client: &HttpClient) -> Result<Response<Bytes>, Error> {
        client.transport()?.send(Request::new(Bytes::new())).await
    }

    #[tokio::test]
    async fn bodies_past_the_cap_are_refused() {
        let at_cap = answering(200, &[], Bytes::from(vec![b'x'; MAX_RESPONSE_BYTES]));
        assert_eq!(
            send(&at_cap).await.unwrap().body().len(),
            MAX_RESPONSE_BYTES
        );

        let over = answering(200, &[], Bytes::from(vec![b'x'; MAX_RESPONSE_BYTES + 1]));
        let err = send(&over).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);
        assert!(
            err.to_string().contains("larger than 1048576 bytes"),
            "{err}"
        );

        // A body that announces 4 GiB is refused before anything is read.
        struct Announced;
        impl Body for Announced {
            type Data = Bytes;
            type Error = Infallible;
            fn poll_frame(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
                std::task::Poll::Ready(None)
            }
            fn size_hint(&self) -> http_body::SizeHint {
                http_body::SizeHint::with_exact(1 << 32)
            }
        }
        let announced = tower::service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Announced))
        });
        let announced = ServiceTransport::new(announced);
        let err = announced
            .send(Request::new(Bytes::new()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_timeout_bounds_the_exchange() {
        let mut client = HttpClient::new();
        client.set_timeout(Duration::from_secs(2));
        let started = tokio::time::Instant::now();
        let err = client
            .within_timeout("the probe", std::future::pending::<Result<(), Error>>())
            .await
            .unwrap_err();
        assert!(err.is_timeout());
        assert!(
            err.to_string().contains("the probe took longer than 2s"),
            "{err}"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn well_known_statuses_are_typed() {
        let url = Url::parse("https://issuer.example.com/doc").unwrap();
        for (status, kind, transient) in [
            (404, ErrorKind::Discovery, false),
            (403, ErrorKind::Discovery, false),
            (301, ErrorKind::Discovery, false),
            (408, ErrorKind::Timeout, true),
            (503, ErrorKind::Unavailable, true),
            (429, ErrorKind::RateLimited, true),
        ] {
            let client = answering(status, &[("retry-after", "3")], Bytes::new());
            let err = client
                .get_json(&url, "the doc", "no doc here")
                .await
                .unwrap_err();
            assert_eq!(err.kind(), kind, "{status}");
            assert_eq!(err.is_transient(), transient, "{status}");
            assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
            assert!(err.to_string().contains("doc"), "{status}: {err}");
            if transient {
                assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
            }
        }
        let client = answering(200, &[], Bytes::from_static(b"<html>"));
        let err = client.get_json(&url, "the doc", "").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);
        let client = answering(200, &[], Bytes::from_static(br#"{"a":1}"#));
        assert_eq!(client.get_json(&url, "the doc", "").await.unwrap()["a"], 1);
    }
}
