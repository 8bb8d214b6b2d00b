//! What the retry layer can replay, and how it reads requests and responses.
//!
//! A request is sent again only if the layer kept a copy of it before the
//! first send. [`RetryRequest`] is implemented for:
//!
//! - `http::Request<B>` when the body implements [`ReplayBody`]: `()`,
//!   `String`, `Vec<u8>`, `Bytes`, `&'static str`, `http_body_util::Full`,
//!   `http_body_util::Empty`, and (feature `reqwest`) a buffered
//!   `reqwest::Body`. Boxed bodies (`BoxBody`, `UnsyncBoxBody`) are accepted
//!   and never replayed.
//! - `reqwest::Request` (feature `reqwest`), copied with
//!   `try_clone`.
//!
//! A body that cannot be copied (a stream), or that is longer than
//! [`max_replay_body_bytes`](super::CxoneRetryLayerBuilder::max_replay_body_bytes)
//! (default [`DEFAULT_MAX_REPLAY_BODY_BYTES`]), is sent once: a 401, 429 or
//! 503 answer to it is returned to the caller as it is.
//!
//! Implement [`ReplayBody`] for your own body type to make it replayable:
//!
//! ```
//! use bytes::Bytes;
//! use cxone_auth::retry::ReplayBody;
//!
//! #[derive(Clone)]
//! struct JsonBody(Bytes);
//!
//! impl ReplayBody for JsonBody {
//!     fn try_replay(&self, max_bytes: usize) -> Option<Self> {
//!         (self.0.len() <= max_bytes).then(|| self.clone())
//!     }
//! }
//!
//! let body = JsonBody(Bytes::from_static(b"{}"));
//! assert!(body.try_replay(1024).is_some());
//! assert!(body.try_replay(1).is_none());
//! ```

use bytes::{Buf, Bytes};
use http::header::AUTHORIZATION;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::{Empty, Full};

use super::cooldown::HostKey;

/// The longest request body the retry layer keeps a copy of, in bytes.
///
/// API requests to CXone are small JSON documents; keeping a copy of a larger
/// upload for the whole duration of a request doubles its memory, and an
/// upload that failed with 429 or 503 is better retried by the caller.
pub const DEFAULT_MAX_REPLAY_BODY_BYTES: usize = 1024 * 1024;

/// A request body that can be sent again.
///
/// Implement it for your own body type to make requests carrying it
/// replayable by [`CxoneRetryLayer`](super::CxoneRetryLayer).
pub trait ReplayBody: Sized {
    /// A copy of this body to send again, or `None` when it cannot be sent
    /// twice (a stream) or is longer than `max_bytes`.
    fn try_replay(&self, max_bytes: usize) -> Option<Self>;
}

impl ReplayBody for () {
    fn try_replay(&self, _max_bytes: usize) -> Option<Self> {
        Some(())
    }
}

impl ReplayBody for String {
    fn try_replay(&self, max_bytes: usize) -> Option<Self> {
        (self.len() <= max_bytes).then(|| self.clone())
    }
}

impl ReplayBody for Vec<u8> {
    fn try_replay(&self, max_bytes: usize) -> Option<Self> {
        (self.len() <= max_bytes).then(|| self.clone())
    }
}

impl ReplayBody for Bytes {
    fn try_replay(&self, max_bytes: usize) -> Option<Self> {
        (self.len() <= max_bytes).then(|| self.clone())
    }
}

impl ReplayBody for &'static str {
    fn try_replay(&self, max_bytes: usize) -> Option<Self> {
        (self.len() <= max_bytes).then_some(*self)
    }
}

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

/// Boxed bodies are usually streams: accepted so such requests can pass
/// through the retry layer, never replayed.
impl<D, E> ReplayBody for http_body_util::combinators::BoxBody<D, E> {
    fn try_replay(&self, _max_bytes: usize) -> Option<Self> {
        None
    }
}

/// Boxed bodies are usually streams: accepted so such requests can pass
/// through the retry layer, never replayed.
impl<D, E> ReplayBody for http_body_util::combinators::UnsyncBoxBody<D, E> {
    fn try_replay(&self, _max_bytes: usize) -> Option<Self> {
        None
    }
}

/// Replayed when it is buffered (built from bytes or a string, not a
/// stream) and not longer than `max_bytes`.
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
impl ReplayBody for reqwest::Body {
    fn try_replay(&self, max_bytes: usize) -> Option<Self> {
        let bytes = self.as_bytes()?;
        (bytes.len() <= max_bytes).then(|| reqwest::Body::from(Bytes::copy_from_slice(bytes)))
    }
}

/// A request the retry layer can inspect and replay.
///
/// Implemented for `http::Request<B>` with `B:` [`ReplayBody`] and, with the
/// `reqwest` feature, for `reqwest::Request`. Sealed: the layer relies on
/// details of these types (their extensions, how they are copied).
pub trait RetryRequest: sealed::Request {}

/// A response the retry layer can classify: its status and headers.
///
/// Implemented for `http::Response<B>` and, with the `reqwest` feature, for
/// `reqwest::Response`. Sealed.
pub trait RetryResponse: sealed::Response {}

pub(crate) mod sealed {
    use super::*;

    #[allow(
        unreachable_pub,
        reason = "sealed trait, not nameable outside the crate"
    )]
    pub trait Request: Sized {
        fn method(&self) -> &Method;

        /// Which host cool-down applies to this request.
        fn host_key(&self) -> HostKey;

        /// A copy to send later, or `None` when the body cannot be copied or
        /// is longer than `max_body_bytes`.
        fn try_replay(&self, max_body_bytes: usize) -> Option<Self>;

        /// Whether a replay after a 401 can carry a different token: true when
        /// the copy has no
        /// `Authorization` (it is taken before the auth layer, inside, adds
        /// one); false when the caller set it, since the same credentials
        /// would be refused again.
        fn can_replay_unauthorized(&self) -> bool;
    }

    #[allow(
        unreachable_pub,
        reason = "sealed trait, not nameable outside the crate"
    )]
    pub trait Response {
        fn status(&self) -> StatusCode;
        fn headers(&self) -> &HeaderMap;
    }
}

impl<B: ReplayBody> RetryRequest for Request<B> {}

impl<B: ReplayBody> sealed::Request for Request<B> {
    fn method(&self) -> &Method {
        self.method()
    }

    fn host_key(&self) -> HostKey {
        let uri = self.uri();
        let default_port = match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        };
        HostKey::new(uri.host(), uri.port_u16().or(default_port))
    }

    fn try_replay(&self, max_body_bytes: usize) -> Option<Self> {
        let body = self.body().try_replay(max_body_bytes)?;
        let mut replay = Request::new(body);
        *replay.method_mut() = self.method().clone();
        *replay.uri_mut() = self.uri().clone();
        *replay.version_mut() = self.version();
        *replay.headers_mut() = self.headers().clone();
        *replay.extensions_mut() = self.extensions().clone();
        Some(replay)
    }

    fn can_replay_unauthorized(&self) -> bool {
        !self.headers().contains_key(AUTHORIZATION)
    }
}

impl<B> RetryResponse for Response<B> {}

impl<B> sealed::Response for Response<B> {
    fn status(&self) -> StatusCode {
        self.status()
    }

    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
}

#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
impl RetryRequest for reqwest::Request {}

#[cfg(feature = "reqwest")]
impl sealed::Request for reqwest::Request {
    fn method(&self) -> &Method {
        self.method()
    }

    fn host_key(&self) -> HostKey {
        let url = self.url();
        HostKey::new(url.host_str(), url.port_or_known_default())
    }

    fn try_replay(&self, max_body_bytes: usize) -> Option<Self> {
        if let Some(body) = self.body() {
            // A stream has no bytes; `try_clone` would refuse it too.
            let len = body.as_bytes()?.len();
            if len > max_body_bytes {
                return None;
            }
        }
        self.try_clone()
    }

    fn can_replay_unauthorized(&self) -> bool {
        !self.headers().contains_key(AUTHORIZATION)
    }
}

#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
impl RetryResponse for reqwest::Response {}

#[cfg(feature = "reqwest")]
impl sealed::Response for reqwest::Response {
    fn status(&self) -> StatusCode {
        self.status()
    }

    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::sealed::Request as _;
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
        let replay = request.try_replay(1024).unwrap();
        assert_eq!(replay.method(), Method::POST);
        assert_eq!(replay.uri(), request.uri());
        assert_eq!(replay.headers()["x-custom"], "1");
        assert_eq!(replay.extensions().get::<Trace>(), Some(&Trace(7)));
        assert_eq!(replay.body(), "payload");
    }

    #[test]
    fn bodies_over_the_cap_are_not_replayed() {
        let request = Request::new(vec![0u8; 11]);
        assert!(request.try_replay(10).is_none());
        assert!(request.try_replay(11).is_some());
        let full = Request::new(Full::new(Bytes::from(vec![0u8; 11])));
        assert!(full.try_replay(10).is_none());
        assert!(full.try_replay(11).is_some());
    }

    #[test]
    fn user_authorization_is_kept_and_not_replayed() {
        let request = Request::get("https://api-na1.niceincontact.com/")
            .header(AUTHORIZATION, HeaderValue::from_static("Bearer mine"))
            .body(())
            .unwrap();
        assert!(!request.can_replay_unauthorized());
        assert_eq!(request.headers()[AUTHORIZATION], "Bearer mine");
    }

    #[test]
    fn host_keys_normalise_default_ports_and_case() {
        let a = Request::get("https://API.example.com/a").body(()).unwrap();
        let b = Request::get("https://api.example.com:443/b")
            .body(())
            .unwrap();
        let c = Request::get("https://api.example.com:8443/")
            .body(())
            .unwrap();
        let origin = Request::get("/only/a/path").body(()).unwrap();
        assert_eq!(a.host_key(), b.host_key());
        assert_ne!(a.host_key(), c.host_key());
        assert_eq!(origin.host_key(), HostKey::new(None, None));
    }
}
