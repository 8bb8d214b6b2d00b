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

use http::{HeaderMap, StatusCode, Uri};

/// A request the layer can authorize: it reads where the request goes and
/// writes its headers.
pub trait AuthRequest {
    /// The scheme, `None` for a path-only (origin-form) request.
    fn scheme(&self) -> Option<&str>;

    /// The host, `None` for a path-only (origin-form) request.
    fn host(&self) -> Option<&str>;

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

    fn host(&self) -> Option<&str> {
        self.uri().host()
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

    fn host(&self) -> Option<&str> {
        self.url().host_str()
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

/// Whether a response says the token it carried was refused: HTTP 401, or a
/// gRPC `UNAUTHENTICATED` (status 16) in the headers.
pub(crate) fn rejects_token<R: AuthResponse>(response: &R) -> bool {
    response.status() == StatusCode::UNAUTHORIZED
        || response
            .headers()
            .get("grpc-status")
            .is_some_and(|status| status.as_bytes() == b"16")
}

#[cfg(test)]
mod tests {
    use super::*;

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
