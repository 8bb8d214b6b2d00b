//! [`ClientAuth`]: how a token request proves which app is asking.
//!
//! RFC 6749 §2.3.1 allows two ways, and CXone accepts both
//! (`client_secret_basic`, `client_secret_post`):
//!
//! ```
//! use cxone_auth::token::{AccessKeyGrant, ClientAuth};
//!
//! let source = AccessKeyGrant::new("client-id", "client-secret", "KEYID", "KEYSECRET+/==")?
//!     .client_auth(ClientAuth::Body);
//! # Ok::<(), cxone_auth::Error>(())
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use url::form_urlencoded;

/// Where the client id and secret go in a token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`, the default): the id and secret are
    /// each form-urlencoded, joined by `:` and base64-encoded, as RFC 6749
    /// §2.3.1 requires (many clients skip the urlencoding and break on
    /// secrets with `+`, `/` or `=`).
    #[default]
    Basic,
    /// Form body (`client_secret_post`): `client_id` and `client_secret` are
    /// sent as form fields.
    Body,
}

/// `Basic base64(urlencode(id):urlencode(secret))`, marked sensitive.
///
/// # Panics
///
/// Never: `Basic ` and base64 output are visible ASCII, always a valid header.
pub(crate) fn basic_header(client_id: &str, client_secret: &str) -> HeaderValue {
    let credentials = format!(
        "{}:{}",
        form_urlencode(client_id),
        form_urlencode(client_secret)
    );
    let encoded = format!("Basic {}", STANDARD.encode(credentials));
    let mut header = HeaderValue::try_from(encoded).expect("base64 is a valid header value");
    header.set_sensitive(true);
    header
}

/// The `application/x-www-form-urlencoded` encoding of RFC 6749 Appendix B.
fn form_urlencode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_section_2_3_1_example() {
        // RFC 6749 §2.3.1: client_id "s6BhdRkqt3", secret "7Fjfp0ZBr1KtDRbnfVdmIw".
        let header = basic_header("s6BhdRkqt3", "7Fjfp0ZBr1KtDRbnfVdmIw");
        assert_eq!(header, "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3");
        assert!(header.is_sensitive());
    }

    #[test]
    fn rfc6749_appendix_b_encoding() {
        // RFC 6749 Appendix B: " %&+£€" encodes as "+%25%26%2B%C2%A3%E2%82%AC".
        assert_eq!(form_urlencode(" %&+£€"), "+%25%26%2B%C2%A3%E2%82%AC");
    }

    #[test]
    fn secrets_with_reserved_characters_are_encoded_before_base64() {
        let header = basic_header("app:1", "a+b/c==");
        let encoded = header.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, "app%3A1:a%2Bb%2Fc%3D%3D");
    }
}
