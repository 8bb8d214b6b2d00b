//! Client authentication at the token endpoint (RFC 6749 §2.3.1).
//!
//! A client proves who it is either with HTTP Basic, where the id and the
//! secret are each form-urlencoded, joined by `:` and base64-encoded, or with
//! `client_id` and `client_secret` in the form body. The mock decodes the
//! Basic header exactly as the RFC says, so a client that skips the
//! form-urlencoding (and sends a secret's `+` raw) is refused just as a strict
//! server would refuse it.
//!
//! [`basic_authorization`] and [`form_encode`] build the correct encodings,
//! for tests that write requests by hand:
//!
//! ```
//! use cxone_auth::mock::{basic_authorization, form_encode};
//!
//! assert_eq!(form_encode("a+b c/="), "a%2Bb+c%2F%3D");
//! // base64("id%40x:s%3As")
//! assert_eq!(basic_authorization("id@x", "s:s"), "Basic aWQlNDB4OnMlM0Fz");
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use percent_encoding::percent_decode_str;

use super::token_endpoint::{Form, OAuthFailure};

/// Form-urlencodes `value` (`application/x-www-form-urlencoded`: a space
/// becomes `+`, a `+` becomes `%2B`), as RFC 6749 §2.3.1 asks for client ids
/// and secrets and as form bodies need.
pub fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The `Authorization` header value RFC 6749 §2.3.1 prescribes for a client:
/// `Basic base64(form_encode(id) ":" form_encode(secret))`.
pub fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let credentials = format!("{}:{}", form_encode(client_id), form_encode(client_secret));
    format!("Basic {}", STANDARD.encode(credentials))
}

/// Decodes an RFC 6749 §2.3.1 Basic header into the client id and secret.
///
/// `None` for anything else: another scheme, bad base64, no `:`, bad
/// percent-encoding, non-UTF-8 bytes.
pub(super) fn decode_basic(header: &HeaderValue) -> Option<(String, String)> {
    let header = header.to_str().ok()?;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    // The encoded id cannot hold a ':', so the first one separates.
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// Reverses [`form_encode`]: `+` is a space, `%XX` a byte; the result must be
/// UTF-8.
fn form_decode(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    /// `client_secret_basic`
    Basic,
    /// `client_secret_post`
    Post,
}

/// The client credentials a request presented (not yet checked).
pub(super) struct Presented {
    pub(super) id: String,
    pub(super) secret: String,
    pub(super) method: Method,
}

/// Reads the client credentials from the `Authorization` header or the form.
///
/// # Errors
///
/// `401 invalid_client` when the header is not valid Basic (with a Basic
/// challenge) or when no credentials are present; `400 invalid_request` when
/// the request uses both methods (RFC 6749 §2.3 allows only one).
pub(super) fn presented(
    authorization: Option<&HeaderValue>,
    form: &Form,
) -> Result<Presented, OAuthFailure> {
    if let Some(header) = authorization {
        let Some((id, secret)) = decode_basic(header) else {
            return Err(OAuthFailure::invalid_client(
                "the Authorization header is not RFC 6749 HTTP Basic client authentication",
                Method::Basic,
            ));
        };
        if form.get("client_secret").is_some() {
            return Err(OAuthFailure::invalid_request(
                "the client authenticated with both HTTP Basic and client_secret in the body; use one method",
            ));
        }
        if form.get("client_id").is_some_and(|body_id| body_id != id) {
            return Err(OAuthFailure::invalid_request(
                "client_id in the body differs from the HTTP Basic client id",
            ));
        }
        return Ok(Presented {
            id,
            secret,
            method: Method::Basic,
        });
    }
    match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => Ok(Presented {
            id: id.to_owned(),
            secret: secret.to_owned(),
            method: Method::Post,
        }),
        (Some(_), None) => Err(OAuthFailure::invalid_client(
            "client_secret is missing; this client must authenticate",
            Method::Post,
        )),
        (None, _) => Err(OAuthFailure::invalid_client(
            "no client authentication: send HTTP Basic or client_id and client_secret",
            Method::Post,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &[u8]) -> HeaderValue {
        HeaderValue::from_bytes(value).unwrap()
    }

    #[test]
    fn basic_round_trips_every_special_character() {
        let secret = "a+b/c=:d e%f&g====";
        let encoded = basic_authorization("id@x:y", secret);
        let decoded = decode_basic(&header(encoded.as_bytes())).unwrap();
        assert_eq!(decoded, ("id@x:y".to_owned(), secret.to_owned()));
    }

    #[test]
    fn a_raw_plus_is_a_space() {
        // A client that forgot to form-urlencode sends "s+t" raw.
        let raw = format!("Basic {}", STANDARD.encode("id:s+t"));
        let (_, secret) = decode_basic(&header(raw.as_bytes())).unwrap();
        assert_eq!(secret, "s t");
    }

    #[test]
    fn scheme_is_case_insensitive() {
        let raw = format!("bAsIc {}", STANDARD.encode("id:secret"));
        assert!(decode_basic(&header(raw.as_bytes())).is_some());
    }

    #[test]
    fn malformed_headers_are_refused_without_panicking() {
        let no_colon = format!("Basic {}", STANDARD.encode("idsecret"));
        let bad_utf8 = format!("Basic {}", STANDARD.encode([b'i', b':', 0xff, 0xfe]));
        let bad_percent = format!("Basic {}", STANDARD.encode("id:%ff%fe"));
        for value in [
            b"Basic".as_slice(),
            b"Basic ",
            b"Bearer abc",
            b"Basic !!!notbase64",
            no_colon.as_bytes(),
            bad_utf8.as_bytes(),
            bad_percent.as_bytes(),
            b"Basic \xff\xfe",
        ] {
            assert!(decode_basic(&header(value)).is_none(), "{value:?}");
        }
    }
}
