//! [`AuthRequest`] and [`AuthResponse`]: what the layer needs of a request and
//! a response, so one layer serves `http` types and `reqwest`'s.
//!
//! ```
//! use cxone_auth::layer::AuthRequest;
//!
//! let request = http::Request::get("https://api-na1.niceincontact.com/x").body(()).unwrap();
//! assert_eq!(request.scheme(), Some("https"));
//! assert_eq!(request.host(), Some("api-na1.niceincontact.com"));
//!
//! let path_only = http::Request::get("/pkg.Service/Method").body(()).unwrap();
//! assert_eq!(path_only.host(), None);
//! ```

use http::{HeaderMap, HeaderName, StatusCode, Uri};

/// A request the layer can authorize: it reads where the request goes and
/// writes its headers.
pub trait AuthRequest {
    /// The scheme, `None` for a path-only (origin-form) request.
    fn scheme(&self) -> Option<&str>;

    /// The authority (`host`, `host:port`, or with user info), `None` for a
    /// path-only (origin-form) request.
    fn authority(&self) -> Option<&str>;

    /// The host, `None` for a path-only (origin-form) request. IPv6 literals
    /// keep their brackets.
    fn host(&self) -> Option<&str> {
        self.authority().map(host_of)
    }

    /// The request's headers.
    fn headers(&self) -> &HeaderMap;

    /// The request's headers, to insert `Authorization`.
    fn headers_mut(&mut self) -> &mut HeaderMap;

    /// The request's URI, for [tenant routing](super::CxoneAuthLayer::tenant_routing)
    /// to make a path-only request absolute. `None` (the default) for request
    /// types that cannot carry a path-only URI; routing then refuses them.
    fn uri_mut(&mut self) -> Option<&mut Uri> {
        None
    }
}

/// A response the layer can inspect for an authentication failure.
pub trait AuthResponse {
    /// The HTTP status.
    fn status(&self) -> StatusCode;

    /// The response headers (where gRPC puts `grpc-status` when the call fails
    /// before any message).
    fn headers(&self) -> &HeaderMap;
}

impl<B> AuthRequest for http::Request<B> {
    fn scheme(&self) -> Option<&str> {
        self.uri().scheme_str()
    }

    fn authority(&self) -> Option<&str> {
        self.uri().authority().map(http::uri::Authority::as_str)
    }

    fn headers(&self) -> &HeaderMap {
        self.headers()
    }

    fn headers_mut(&mut self) -> &mut HeaderMap {
        self.headers_mut()
    }

    fn uri_mut(&mut self) -> Option<&mut Uri> {
        Some(self.uri_mut())
    }
}

impl<B> AuthResponse for http::Response<B> {
    fn status(&self) -> StatusCode {
        self.status()
    }

    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
}

#[cfg(feature = "reqwest")]
impl AuthRequest for reqwest::Request {
    fn scheme(&self) -> Option<&str> {
        Some(self.url().scheme())
    }

    fn authority(&self) -> Option<&str> {
        let url = self.url();
        url.has_host()
            .then(|| &url[url::Position::BeforeUsername..url::Position::AfterPort])
    }

    fn headers(&self) -> &HeaderMap {
        self.headers()
    }

    fn headers_mut(&mut self) -> &mut HeaderMap {
        self.headers_mut()
    }
}

#[cfg(feature = "reqwest")]
impl AuthResponse for reqwest::Response {
    fn status(&self) -> StatusCode {
        self.status()
    }

    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
}

/// The host of a URI authority (`user@host:port`), IPv6 literals in
/// brackets, as `Uri::host` returns it.
///
/// Vectorized byte searches instead of `Uri::host`'s string searches: this
/// runs on every request.
pub(crate) fn host_of(authority: &str) -> &str {
    let start = memchr::memrchr(b'@', authority.as_bytes()).map_or(0, |at| at + 1);
    let host_port = &authority[start..];
    let end = if host_port.starts_with('[') {
        memchr::memchr(b']', host_port.as_bytes()).map(|close| close + 1)
    } else {
        memchr::memchr(b':', host_port.as_bytes())
    };
    &host_port[..end.unwrap_or(host_port.len())]
}

/// gRPC's status header, which a failed call sends with the HTTP headers
/// when it fails before any message.
static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// Whether a response says the token it carried was refused: HTTP 401, or a
/// gRPC `UNAUTHENTICATED` (status 16) in the headers.
pub(crate) fn rejects_token<R: AuthResponse>(response: &R) -> bool {
    response.status() == StatusCode::UNAUTHORIZED
        || response
            .headers()
            .get(&GRPC_STATUS)
            .is_some_and(|status| status.as_bytes() == b"16")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_agrees_with_uri_host() {
        for uri in [
            "https://api-na1.niceincontact.com/x",
            "https://API-NA1.niceincontact.com:8443/x",
            "https://user:pass@api.example.com:443/x",
            "https://us@er@host.example/x",
            "http://[::1]:8080/x",
            "http://[::1]/x",
            "http://127.0.0.1/x",
            "https://h/",
        ] {
            let uri: http::Uri = uri.parse().unwrap();
            assert_eq!(
                Some(host_of(uri.authority().unwrap().as_str())),
                uri.host(),
                "{uri}"
            );
        }
    }

    #[test]
    fn unauthorized_and_grpc_unauthenticated_reject() {
        let unauthorized = http::Response::builder().status(401).body(()).unwrap();
        assert!(rejects_token(&unauthorized));

        let grpc = http::Response::builder()
            .header("grpc-status", "16")
            .body(())
            .unwrap();
        assert!(rejects_token(&grpc));

        for (status, grpc_status) in [(200, "0"), (403, "7"), (200, "160")] {
            let other = http::Response::builder()
                .status(status)
                .header("grpc-status", grpc_status)
                .body(())
                .unwrap();
            assert!(!rejects_token(&other));
        }
    }
}
