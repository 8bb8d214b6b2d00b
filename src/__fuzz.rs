//! Entry points for fuzzers, one per parser that reads what a server or a
//! user sends: each takes arbitrary bytes, feeds them to the parser and
//! checks what must hold of the answer (beyond not panicking).
//!
//! Not part of the API. Compiled only with `--cfg fuzzing` (which cargo-fuzz
//! and cargo-afl set) and in the crate's own tests, where property tests feed
//! the same entry points. The targets under `fuzz/` are one line each, so any
//! fuzzer that hands out byte slices can drive them:
//!
//! ```text
//! libfuzzer_sys::fuzz_target!(|data: &[u8]| cxone_auth::__fuzz::retry_after(data));
//! ```

use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::Value;
use url::Host;

use crate::layer::hosts::{AllowedHosts, CXONE_DOMAINS};
use crate::token::{JwtClaims, MAX_LIFETIME, TenantConfig};

/// The statuses a token endpoint answers with, for the first byte of
/// [`token_response`]'s input to pick from. Byte values past the table mean
/// 200, so most inputs exercise the body parser.
const STATUSES: [u16; 16] = [
    201, 204, 301, 302, 400, 401, 403, 404, 408, 413, 429, 500, 502, 503, 504, 999,
];

/// The shortest `access_token` checked for in error messages. Shorter values
/// can occur in the messages' own words by chance; no word in them is this
/// long.
const MIN_TOKEN_CHECKED: usize = 40;

/// Reads `data` as a token endpoint's response: byte 0 picks the status,
/// byte 1 the length of a `Retry-After` value that follows, the rest is the
/// body.
///
/// Checks: a token comes only from a 2xx answer whose body is a JSON object
/// holding exactly that `access_token`; its header is `Bearer <token>`,
/// marked sensitive; its lifetime is at most [`MAX_LIFETIME`]; an error
/// carries the response's status when it has one and never quotes the
/// `access_token` (unless the server put it in `error_description` itself).
pub fn token_response(data: &[u8]) {
    let (status, rest) = match data.split_first() {
        Some((&byte, rest)) => (
            STATUSES.get(usize::from(byte)).copied().unwrap_or(200),
            rest,
        ),
        None => (200, data),
    };
    let (retry_after, body) = match rest.split_first() {
        Some((&len, rest)) => {
            let len = usize::from(len % 48).min(rest.len());
            rest.split_at(len)
        }
        None => (&[][..], rest),
    };
    let mut response = Response::new(Bytes::copy_from_slice(body));
    *response.status_mut() = StatusCode::from_u16(status).expect("a status from the table");
    if let Ok(value) = HeaderValue::from_bytes(retry_after) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }

    let requested = ["openid".to_owned()];
    let result = crate::token::response::token_from_response(
        &response,
        tokio::time::Instant::now(),
        &requested,
    );
    let json = serde_json::from_slice::<Value>(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|json| json.get(name))
            .and_then(Value::as_str)
    };
    match result {
        Ok(token) => {
            assert!(response.status().is_success(), "a token from a {status}");
            assert_eq!(field("access_token"), Some(token.secret()));
            assert_eq!(
                token.header_value().as_bytes(),
                format!("Bearer {}", token.secret()).as_bytes()
            );
            assert!(token.header_value().is_sensitive());
            assert!(token.lifetime() <= MAX_LIFETIME);
            assert!(!token.scopes().is_empty() || field("scope").is_some());
        }
        Err(error) => {
            if let Some(reported) = error.status() {
                assert_eq!(reported, response.status());
            }
            let text = format!("{error} {error:?}");
            if let Some(token) = field("access_token").filter(|token| {
                token.len() >= MIN_TOKEN_CHECKED
                    && !token.contains(char::is_whitespace)
                    && ![field("error"), field("error_description")]
                        .into_iter()
                        .flatten()
                        .any(|quoted| quoted.contains(*token))
            }) {
                assert!(!text.contains(token), "an error quotes the access token");
            }
        }
    }
}

/// A fixed "now" for [`retry_after`], so that results do not depend on when
/// the fuzzer runs: 2024-01-01T00:00:00Z.
const NOW_SECS: u64 = 1_704_067_200;

/// The last second an HTTP-date can name (9999-12-31T23:59:59Z).
const MAX_HTTP_DATE_SECS: u64 = 253_402_300_799;

/// Reads `data` as a `Retry-After` value, directly and as a header.
///
/// Checks: delta-seconds read as that many seconds (all digits past `u64`
/// as `u64::MAX`); a valid HTTP-date reads as the time from now until then
/// (zero when past); the header reader agrees with the value parser; with 8
/// or more bytes, the first 8 as a number of seconds round-trip through
/// delta-seconds and through an HTTP-date formatted by `httpdate`.
pub fn retry_after(data: &[u8]) {
    let now = UNIX_EPOCH + Duration::from_secs(NOW_SECS);
    let text = String::from_utf8_lossy(data);
    let parsed = crate::backoff::parse_retry_after(&text, now);
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = trimmed.parse().unwrap_or(u64::MAX);
        assert_eq!(parsed, Some(Duration::from_secs(seconds)));
    } else if let Ok(date) = httpdate::parse_http_date(trimmed) {
        assert_eq!(
            parsed,
            Some(date.duration_since(now).unwrap_or(Duration::ZERO))
        );
    } else {
        assert_eq!(parsed, None);
    }

    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, value.clone());
        let from_header = crate::backoff::retry_after(&headers);
        match value.to_str() {
            Ok(text) if text.trim().bytes().all(|b| b.is_ascii_digit()) => {
                assert_eq!(from_header, crate::backoff::parse_retry_after(text, now));
            }
            Ok(_) => {}
            Err(_) => assert_eq!(from_header, None),
        }
        headers.append(RETRY_AFTER, value);
        assert_eq!(crate::backoff::retry_after(&headers), None);
    }

    if let Some(first) = data.first_chunk::<8>() {
        let seconds = u64::from_le_bytes(*first);
        assert_eq!(
            crate::backoff::parse_retry_after(&seconds.to_string(), now),
            Some(Duration::from_secs(seconds))
        );
        let at = seconds % (MAX_HTTP_DATE_SECS + 1);
        let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(at));
        assert_eq!(
            crate::backoff::parse_retry_after(&date, UNIX_EPOCH),
            Some(Duration::from_secs(at)),
            "{date}"
        );
    }
}

/// Reads `data` as a compact JWT, and as the payload of one.
///
/// Checks: every accessor answers without panicking; a payload that is a
/// JSON object reads back claim by claim; any other payload has no claims.
pub fn jwt_claims(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(claims) = JwtClaims::from_jwt(&text) {
        read_all(&claims);
    }

    let jwt = format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(data));
    let claims = JwtClaims::from_jwt(&jwt);
    let fits = URL_SAFE_NO_PAD.encode(data).len() <= 16 * 1024;
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(object)) if fits => {
            let claims = claims.expect("a JSON object payload has claims");
            read_all(&claims);
            for (name, value) in &object {
                assert_eq!(claims.get(name), Some(value), "claim {name}");
            }
            if let Some(Value::String(tenant)) = object.get("tenantId") {
                assert_eq!(claims.tenant_id(), Some(tenant.as_str()));
            }
            if let Some(exp) = object.get("exp").and_then(Value::as_i64) {
                assert_eq!(claims.exp(), Some(exp));
            }
        }
        _ => assert!(claims.is_none(), "claims from a payload that is no object"),
    }
}

fn read_all(claims: &JwtClaims) {
    let _ = (
        claims.exp(),
        claims.iat(),
        claims.tenant_id(),
        claims.business_unit_id(),
        claims.cluster_id(),
        claims.subject(),
        claims.issuer(),
        format!("{claims:?}"),
    );
}

/// Reads `data` as a `/.well-known/cxone-configuration` document.
///
/// Checks: an accepted document's `api_endpoint` may receive a token (https,
/// or http on a loopback host; no user name or password); it serializes to
/// a document that reads back equal.
pub fn tenant_config(data: &[u8]) {
    let Ok(config) = serde_json::from_slice::<TenantConfig>(data) else {
        return;
    };
    let api = config.api_endpoint();
    assert!(api.username().is_empty() && api.password().is_none());
    let loopback = match api.host().expect("an accepted api_endpoint has a host") {
        Host::Domain(domain) => domain.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    match api.scheme() {
        "https" => {}
        "http" => assert!(loopback, "http to {api}, which is not a loopback host"),
        other => panic!("an api_endpoint with the scheme {other}"),
    }
    let json = serde_json::to_string(&config).expect("a tenant configuration serializes");
    let again: TenantConfig = serde_json::from_str(&json).expect("it reads back");
    assert_eq!(again, config);
}

/// Reads `data` as a host check: byte 0 picks the scheme and whether
/// loopback http is on; up to the first NUL is a pattern to allow; the rest
/// is the host asked about.
///
/// Checks: nothing panics; without an added pattern, a host over https is
/// allowed exactly when it is one of [`CXONE_DOMAINS`] or a subdomain of
/// one (compared without ASCII case and one trailing dot), by a reference
/// written another way; plain http is never allowed to a host that is not
/// loopback.
pub fn allowed_hosts(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let scheme = ["https", "http", "HTTPS", "ftp"][usize::from(flags & 3)];
    let loopback = flags & 4 != 0;
    let text = String::from_utf8_lossy(rest);
    let (pattern, host) = match text.split_once('\0') {
        Some((pattern, host)) => (Some(pattern), host),
        None => (None, &*text),
    };

    let mut hosts = AllowedHosts::default().allow_loopback_http(loopback);
    if let Some(pattern) = pattern {
        hosts = hosts.allow_host(pattern);
    }
    let allowed = hosts.allows(scheme, host);
    if scheme == "ftp" {
        assert!(!allowed, "ftp is never allowed");
    }
    let bare = host.strip_suffix('.').unwrap_or(host);
    if scheme == "http" && allowed {
        assert!(loopback && is_loopback(bare), "http to {host:?}");
    }
    if pattern.is_none() && !loopback && scheme.eq_ignore_ascii_case("https") {
        let lower = bare.to_ascii_lowercase();
        // The domain itself, or a name with at least one more label before
        // it (`.niceincontact.com`, with an empty label, is no subdomain).
        let expected = CXONE_DOMAINS.iter().any(|domain| {
            lower == *domain
                || lower
                    .strip_suffix(domain)
                    .and_then(|rest| rest.strip_suffix('.'))
                    .is_some_and(|label| !label.is_empty())
        });
        assert_eq!(allowed, expected, "{host:?}");
    }
}

/// Whether `host` names this machine, written apart from the layer's own
/// check: `localhost` and its subdomains, or a loopback address (IPv6 with
/// or without brackets).
fn is_loopback(host: &str) -> bool {
    let lower = host.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    //! The fuzz entry points on random bytes, and on inputs past fuzzing
    //! runs found worth keeping.

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn token_response_holds(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            token_response(&data);
        }

        #[test]
        fn retry_after_holds(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            retry_after(&data);
        }

        #[test]
        fn jwt_claims_holds(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            jwt_claims(&data);
        }

        #[test]
        fn tenant_config_holds(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            tenant_config(&data);
        }

        #[test]
        fn allowed_hosts_holds(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            allowed_hosts(&data);
        }
    }

    #[test]
    fn entry_points_accept_structured_inputs() {
        token_response(b"\xff\x02120{\"access_token\":\"abc\",\"expires_in\":\"60\"}");
        token_response(b"\x0a\x0230{\"error\":\"slow_down\"}");
        retry_after(b"Wed, 21 Oct 2015 07:28:00 GMT");
        retry_after(b"00000000000000000000000000000000000000000120");
        jwt_claims(br#"{"tenantId":"t","exp":17,"icBUId":-4}"#);
        tenant_config(br#"{"api_endpoint":"http://127.0.0.1:9/","area":"na1"}"#);
        allowed_hosts(b"\x00api-na1.niceincontact.com.");
        allowed_hosts(b"\x04*.example.com\x00deep.api.example.com");
    }

    /// Inputs fuzzing found. Each failed a check of the entry point; each
    /// is kept, with what the crate must answer.
    #[test]
    fn fuzzing_finds() {
        // allowed_hosts: a CXone domain behind an empty label is refused
        // (the entry point's own reference once said otherwise).
        allowed_hosts(b"\x00.nice-incontact.com");
        assert!(!AllowedHosts::default().allows("https", ".nice-incontact.com"));
        assert!(!AllowedHosts::default().allows("https", ".niceincontact.com."));
    }
}
