//! What the layers need of a request and a response: one sealed trait each,
//! implemented for `http::Request<B>`/`http::Response<B>` and, with the
//! `reqwest` feature, `reqwest::Request`/`reqwest::Response`. [`ReplayBody`]
//! lives here because the copy for a replay is a method of the request trait.
//!
//! ```
//! use cxone_auth::{CxoneAuthLayer, TokenCache, StaticToken};
//! use tower::Layer as _;
//!
//! // Any tower service over either request type can be wrapped.
//! let tokens = TokenCache::new(StaticToken::new("t"));
//! let _http = CxoneAuthLayer::new(tokens.clone())
//!     .layer(tower::service_fn(|_: http::Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(()))
//!     }));
//! ```

use bytes::{Buf, Bytes};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Extensions, HeaderMap, HeaderName, Method, StatusCode, Uri};
use http_body::Body as _;
use http_body_util::{Empty, Full};

use crate::Error;

mod sealed {
    pub trait Sealed {}
}

/// A request the crate's layers accept: `http::Request<B>`, or
/// `reqwest::Request` with the `reqwest` feature. Sealed; its methods are
/// the crate's own.
pub trait HttpRequest: Sized + sealed::Sealed {
    /// The body type, which decides whether the retry layer can copy the
    /// request for a replay ([`ReplayBody`]).
    type Body;

    #[doc(hidden)]
    fn method(&self) -> &Method;

    /// The scheme, `None` for a request without one (path-only, or
    /// authority-form).
    #[doc(hidden)]
    fn scheme(&self) -> Option<&str>;

    /// The host, `None` for a request without one. IPv6 literals keep their
    /// brackets.
    #[doc(hidden)]
    fn host(&self) -> Option<&str>;

    /// The URI's path.
    #[doc(hidden)]
    fn path(&self) -> &str;

    /// The port, explicit or the scheme's default.
    #[doc(hidden)]
    fn port(&self) -> Option<u16>;

    #[doc(hidden)]
    fn headers(&self) -> &HeaderMap;

    #[doc(hidden)]
    fn headers_mut(&mut self) -> &mut HeaderMap;

    /// The request's extensions, where per-request controls travel; `None`
    /// for `reqwest::Request`, whose extensions reqwest keeps to itself.
    #[doc(hidden)]
    fn extensions(&self) -> Option<&Extensions>;

    /// Sends a path-only request to `scheme://authority`, under the path
    /// `prefix` (empty, or starting with `/` and without a trailing one).
    #[doc(hidden)]
    fn set_origin(
        &mut self,
        scheme: Scheme,
        authority: Authority,
        prefix: &str,
    ) -> Result<(), Error>;

    /// A copy for a replay, if the body can be copied within `max_body_bytes`.
    #[doc(hidden)]
    fn try_replay(&self, max_body_bytes: usize) -> Option<Self>
    where
        Self::Body: ReplayBody;
}

/// A response the crate's layers inspect: `http::Response<B>`, or
/// `reqwest::Response` with the `reqwest` feature. Sealed.
pub trait HttpResponse: sealed::Sealed {
    #[doc(hidden)]
    fn status(&self) -> StatusCode;

    #[doc(hidden)]
    fn headers(&self) -> &HeaderMap;

    #[doc(hidden)]
    fn extensions(&self) -> &Extensions;

    #[doc(hidden)]
    fn extensions_mut(&mut self) -> &mut Extensions;
}

/// Marks a 401 (or gRPC `UNAUTHENTICATED`) from a partner host, one that is
/// not the token's audience: the auth layer kept the token, and the retry
/// layer does not replay it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PartnerRefusal;

/// gRPC's status header, which a call that fails before any message sends
/// with the HTTP headers.
static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// Whether a response says the token it carried was refused: HTTP 401, or a
/// gRPC `UNAUTHENTICATED` (status 16) in the headers.
pub(crate) fn rejects_token<R: HttpResponse>(response: &R) -> bool {
    response.status() == StatusCode::UNAUTHORIZED
        || response
            .headers()
            .get(&GRPC_STATUS)
            .is_some_and(|status| status.as_bytes() == b"16")
}

impl<B> sealed::Sealed for http::Request<B> {}

impl<B> HttpRequest for http::Request<B> {
    type Body = B;

    fn method(&self) -> &Method {
        self.method()
    }

    fn scheme(&self) -> Option<&str> {
        self.uri().scheme_str()
    }

    fn host(&self) -> Option<&str> {
        self.uri().host()
    }

    fn path(&self) -> &str {
        self.uri().path()
    }

    fn port(&self) -> Option<u16> {
        let uri = self.uri();
        uri.port_u16().or(match uri.scheme_str() {
            Some("https" | "wss") => Some(443),
            Some("http" | "ws") => Some(80),
            _ => None,
        })
    }

    fn headers(&self) -> &HeaderMap {
        self.headers()
    }

    fn headers_mut(&mut self) -> &mut HeaderMap {
        self.headers_mut()
    }

    fn extensions(&self) -> Option<&Extensions> {
        Some(self.extensions())
    }

    fn set_origin(
        &mut self,
        scheme: Scheme,
        authority: Authority,
        prefix: &str,
    ) -> Result<(), Error> {
        let path = self
            .uri()
            .path_and_query()
            .map_or("/", PathAndQuery::as_str);
        let path = match prefix {
            "" => PathAndQuery::try_from(path),
            prefix => PathAndQuery::try_from(format!("{prefix}{path}")),
        };
        let uri = path.map_err(http::Error::from).and_then(|path| {
            Uri::builder()
                .scheme(scheme)
                .authority(authority)
                .path_and_query(path)
                .build()
        });
        *self.uri_mut() = uri.map_err(|err| {
            Error::config("the routed request's URI could not be built").with_source(err)
        })?;
        Ok(())
    }

    fn try_replay(&self, max_body_bytes: usize) -> Option<Self>
    where
        B: ReplayBody,
    {
        let body = self.body().try_replay(max_body_bytes)?;
        let mut replay = http::Request::new(body);
        *replay.method_mut() = self.method().clone();
        *replay.uri_mut() = self.uri().clone();
        *replay.version_mut() = self.version();
        *replay.headers_mut() = self.headers().clone();
        *replay.extensions_mut() = self.extensions().clone();
        Some(replay)
    }
}

impl<B> sealed::Sealed for http::Response<B> {}

impl<B> HttpResponse for http::Response<B> {
    fn status(&self) -> StatusCode {
        self.status()
    }

    fn headers(&self) -> &HeaderMap {
        self.headers()
    }

    fn extensions(&self) -> &Extensions {
        self.extensions()
    }

    fn extensions_mut(&mut self) -> &mut Extensions {
        self.extensions_mut()
    }
}

#[cfg(feature = "reqwest")]
impl sealed::Sealed for reqwest::Request {}

#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
impl HttpRequest for reqwest::Request {
    type Body = reqwest::Body;

    fn method(&self) -> &Method {
        self.method()
    }

    fn scheme(&self) -> Option<&str> {
        Some(self.url().scheme())
    }

    fn host(&self) -> Option<&str> {
        self.url().host_str()
    }

    fn path(&self) -> &str {
        self.url().path()
    }

    fn port(&self) -> Option<u16> {
        self.url().port_or_known_default()
    }

    fn headers(&self) -> &HeaderMap {
        self.headers()
    }

    fn headers_mut(&mut self) -> &mut HeaderMap {
        self.headers_mut()
    }

    fn extensions(&self) -> Option<&Extensions> {
        None
    }

    fn set_origin(&mut self, _: Scheme, _: Authority, _: &str) -> Result<(), Error> {
        // A reqwest::Request always has an absolute URL, so nothing routes it.
        Err(Error::config("a reqwest request already names its host"))
    }

    fn try_replay(&self, max_body_bytes: usize) -> Option<Self> {
        // A stream has no bytes; `try_clone` would refuse it too.
        let len = self
            .body()
            .map_or(Some(0), |body| body.as_bytes().map(<[u8]>::len));
        len.filter(|len| *len <= max_body_bytes)?;
        self.try_clone()
    }
}

#[cfg(feature = "reqwest")]
impl sealed::Sealed for reqwest::Response {}

#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
impl HttpResponse for reqwest::Response {
    fn status(&self) -> StatusCode {
        self.status()
    }

    fn headers(&self) -> &HeaderMap {
        self.headers()
    }

    fn extensions(&self) -> &Extensions {
        self.extensions()
    }

    fn extensions_mut(&mut self) -> &mut Extensions {
        self.extensions_mut()
    }
}

/// A request body the retry layer can copy, to replay a request after a 401
/// or a 429/503.
///
/// Implemented for bodies held in memory (`()`, `String`, `Vec<u8>`,
/// `Bytes`, `&'static str`, `Full`, `Empty`, and `reqwest::Body` when it is
/// not a stream). Boxed and streaming bodies cannot be copied: their
/// requests are sent once and the answer returned as it is. Implement it for
/// a body type of your own that can be copied.
pub trait ReplayBody: Sized {
    /// A copy of this body, or `None` if it cannot be copied or is longer
    /// than `max_bytes`.
    fn try_replay(&self, max_bytes: usize) -> Option<Self>;
}

impl ReplayBody for () {
    fn try_replay(&self, _max_bytes: usize) -> Option<Self> {
        Some(())
    }
}

macro_rules! replay_by_clone {
    ($($body:ty),*) => {$(
        impl ReplayBody for $body {
            fn try_replay(&self, max_bytes: usize) -> Option<Self> {
                (self.len() <= max_bytes).then(|| self.clone())
            }
        }
    )*};
}

replay_by_clone!(String, Vec<u8>, Bytes, &'static str);

impl<D: Buf + Clone> ReplayBody for Full<D> {
    fn try_replay(&self, max_bytes: usize) -> Option<Self> {
        let len = self.size_hint().exact()?;
        (len <= max_bytes as u64).then(|| self.clone())
    }
}

impl<D> ReplayBody for Empty<D> {
    fn try_replay(&self, _max_bytes: usize) -> Option<Self> {
        Some(Empty::new())
    }
}

impl<D, E> ReplayBody for http_body_util::combinators::BoxBody<D, E> {
    fn try_replay(&self, _max_bytes: usize) -> Option<Self> {
        None
    }
}

impl<D, E> ReplayBody for http_body_util::combinators::UnsyncBoxBody<D, E> {
    fn try_replay(&self, _max_bytes: usize) -> Option<Self> {
        None
    }
}

#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
impl ReplayBody for reqwest::Body {
    fn try_replay(&self, max_bytes: usize) -> Option<Self> {
        let bytes = self.as_bytes()?;
        (bytes.len() <= max_bytes).then(|| reqwest::Body::from(Bytes::copy_from_slice(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, Request};

    use super::*;

    #[test]
    fn replay_keeps_method_uri_headers_and_extensions() {
        #[derive(Clone, Debug, PartialEq)]
        struct Trace(u32);

        let mut request = Request::post("https://api-na1.niceincontact.com/x?y=1")
            .header("x-custom", "1")
            .body(Bytes::from_static(b"payload"))
            .unwrap();
        request.extensions_mut().insert(Trace(7));
        let replay = HttpRequest::try_replay(&request, 1024).unwrap();
        assert_eq!(replay.method(), Method::POST);
        assert_eq!(replay.uri(), request.uri());
        assert_eq!(replay.headers()["x-custom"], "1");
        assert_eq!(replay.extensions().get::<Trace>(), Some(&Trace(7)));
        assert_eq!(replay.body(), "payload");
    }

    #[test]
    fn bodies_over_the_cap_are_not_replayed() {
        let request = Request::new(vec![0u8; 11]);
        assert!(HttpRequest::try_replay(&request, 10).is_none());
        assert!(HttpRequest::try_replay(&request, 11).is_some());
        let full = Request::new(Full::new(Bytes::from(vec![0u8; 11])));
        assert!(HttpRequest::try_replay(&full, 10).is_none());
        assert!(HttpRequest::try_replay(&full, 11).is_some());
        let boxed = Request::new(http_body_util::BodyExt::boxed(Empty::<Bytes>::new()));
        assert!(HttpRequest::try_replay(&boxed, 1 << 20).is_none());
    }

    #[test]
    fn hosts_and_default_ports() {
        let a = Request::get("https://API.example.com/a").body(()).unwrap();
        let b = Request::get("http://[::1]:8080/b").body(()).unwrap();
        let path_only = Request::get("/only/a/path").body(()).unwrap();
        assert_eq!(
            (HttpRequest::host(&a), HttpRequest::port(&a)),
            (Some("API.example.com"), Some(443))
        );
        assert_eq!(
            (HttpRequest::host(&b), HttpRequest::port(&b)),
            (Some("[::1]"), Some(8080))
        );
        assert_eq!(
            (
                HttpRequest::scheme(&path_only),
                HttpRequest::host(&path_only)
            ),
            (None, None)
        );
    }

    #[test]
    fn a_path_only_request_gets_an_origin() {
        let mut request = Request::get("/inContactAPI/services/v34.0/agents?top=1")
            .body(())
            .unwrap();
        let authority = Authority::from_static("api-na1.niceincontact.com");
        request.set_origin(Scheme::HTTPS, authority, "").unwrap();
        assert_eq!(
            request.uri(),
            "https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents?top=1"
        );
    }

    #[test]
    fn rejected_tokens_are_401_or_grpc_unauthenticated() {
        let status = |code: u16| http::Response::builder().status(code).body(()).unwrap();
        assert!(rejects_token(&status(401)));
        assert!(!rejects_token(&status(403)));
        let mut grpc = status(200);
        grpc.headers_mut()
            .insert("grpc-status", HeaderValue::from_static("16"));
        assert!(rejects_token(&grpc));
        grpc.headers_mut()
            .insert("grpc-status", HeaderValue::from_static("7"));
        assert!(!rejects_token(&grpc));
    }
}
