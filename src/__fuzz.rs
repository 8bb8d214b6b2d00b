//! Entry points for the fuzz targets under `fuzz/`: each feeds arbitrary
//! bytes to one parser and checks what must hold of its answer. Compiled
//! only with `--cfg fuzzing` and in the crate's own tests.

use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::Value;
use url::Host;

use crate::backoff::parse_retry_after;
use crate::layer::hosts::{AllowedHosts, CXONE_DOMAINS};
use crate::token::response::token_from_response;
use crate::token::{JwtClaims, MAX_LIFETIME, TenantConfig};

/// Reads `data` as a token endpoint's answer: byte 0 picks the status (200
/// past the table), byte 1 the length of the `Retry-After` value that
/// follows, the rest is the body.
///
/// Checks: a token comes only from a 2xx answer and is the body's
/// `access_token`, in a sensitive `Bearer` header, living at most
/// [`MAX_LIFETIME`]; an error carries the answer's status when it has one,
/// and never quotes an `access_token` the server did not quote itself.
pub fn token_response(data: &[u8]) {
    const STATUSES: [u16; 16] = [
        201, 204, 301, 302, 400, 401, 403, 404, 408, 413, 429, 500, 502, 503, 504, 999,
    ];
    let (status, rest) = (data.first(), data.get(1..).unwrap_or_default());
    let status = status.and_then(|&byte| STATUSES.get(usize::from(byte)));
    let status = status.copied().unwrap_or(200);
    let (len, rest) = (rest.first(), rest.get(1..).unwrap_or_default());
    let len = len.map_or(0, |&len| usize::from(len % 48)).min(rest.len());
    let (retry_after, body) = rest.split_at(len);
    let mut response = Response::new(Bytes::copy_from_slice(body));
    *response.status_mut() = StatusCode::from_u16(status).expect("a status from the table");
    if let Ok(value) = HeaderValue::from_bytes(retry_after) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }

    let json = serde_json::from_slice::<Value>(body).unwrap_or_default();
    let field = |name: &str| json.get(name).and_then(Value::as_str);
    match token_from_response(&response, tokio::time::Instant::now()) {
        Ok(token) => {
            assert!(response.status().is_success(), "a token from a {status}");
            assert_eq!(field("access_token"), Some(token.secret()));
            let header = format!("Bearer {}", token.secret());
            assert_eq!(token.header_value().as_bytes(), header.as_bytes());
            assert!(token.header_value().is_sensitive());
            assert!(token.lifetime() <= MAX_LIFETIME);
        }
        Err(error) => {
            assert!(error.status().is_none_or(|s| s == response.status()));
            // Only a long token the server's own words do not quote is looked for:
            // a short one can occur in the message by chance.
            let checked = |token: &&str| {
                let said = [field("error"), field("error_description")];
                token.len() >= 40
                    && !token.contains(char::is_whitespace)
                    && !said.into_iter().flatten().any(|text| text.contains(*token))
            };
            if let Some(token) = field("access_token").filter(checked) {
                let text = format!("{error} {error:?}");
                assert!(!text.contains(token), "an error quotes the access token");
            }
        }
    }
}

/// Reads `data` as a `Retry-After` value, as text and as a header.
///
/// Checks: delta-seconds read as that many seconds (past `u64`, as
/// `u64::MAX`); an HTTP-date as the time from now until then (zero when
/// past); anything else as nothing. The header reader agrees on
/// delta-seconds, reads nothing that is not text, and nothing from two
/// headers.
pub fn retry_after(data: &[u8]) {
    // 2024-01-01T00:00:00Z, so that results do not depend on the clock.
    let now = UNIX_EPOCH + Duration::from_secs(1_704_067_200);
    let text = String::from_utf8_lossy(data);
    let trimmed = text.trim();
    let seconds = !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit());
    let expected = if seconds {
        Some(Duration::from_secs(trimmed.parse().unwrap_or(u64::MAX)))
    } else {
        let date = httpdate::parse_http_date(trimmed).ok();
        date.map(|date| date.duration_since(now).unwrap_or_default())
    };
    assert_eq!(parse_retry_after(&text, now), expected, "{text:?}");

    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, value.clone());
        // A value that is not text (bytes past ASCII) is no date either.
        if value.to_str().is_err() || seconds {
            assert_eq!(crate::backoff::retry_after(&headers), expected);
        }
        headers.append(RETRY_AFTER, value);
        assert_eq!(crate::backoff::retry_after(&headers), None);
    }
}

/// Reads `data` as a compact JWT, and as the payload of one.
///
/// Checks: the claims' accessors answer without panicking; a payload that
/// is a JSON object (within the size bound) reads back claim by claim; any
/// other payload has no claims.
pub fn jwt_claims(data: &[u8]) {
    // `Debug` goes through every kind of typed accessor.
    let _ = JwtClaims::from_jwt(&String::from_utf8_lossy(data)).map(|c| format!("{c:?}"));
    let payload = URL_SAFE_NO_PAD.encode(data);
    let claims = JwtClaims::from_jwt(&format!("e30.{payload}.c2ln"));
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(object)) if payload.len() <= 16 * 1024 => {
            let claims = claims.expect("a JSON object payload has claims");
            let _ = format!("{claims:?}");
            for (name, value) in &object {
                assert_eq!(claims.get(name), Some(value), "claim {name}");
            }
        }
        _ => assert!(claims.is_none(), "claims from a payload that is no object"),
    }
}

/// Reads `data` as a `/.well-known/cxone-configuration` document.
///
/// Checks: an accepted document's `api_endpoint` may receive a token (https,
/// or http to a loopback host; no user name or password), and the document
/// serializes to one that reads back equal.
pub fn tenant_config(data: &[u8]) {
    let Ok(config) = serde_json::from_slice::<TenantConfig>(data) else {
        return;
    };
    let api = config.api_endpoint();
    assert!(api.username().is_empty() && api.password().is_none());
    let loopback = match api.host().expect("an accepted api_endpoint has a host") {
        Host::Domain(domain) => domain.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.to_canonical().is_loopback(),
    };
    let scheme = api.scheme();
    assert!(scheme == "https" || scheme == "http" && loopback, "{api}");
    let json = serde_json::to_string(&config).expect("a tenant configuration serializes");
    let again: TenantConfig = serde_json::from_str(&json).expect("it reads back");
    assert_eq!(again, config);
}

/// Reads `data` as a host check: byte 0 picks the scheme and whether
/// loopback http is on; up to the first NUL is a pattern to allow; the rest
/// is the host asked about.
///
/// Checks: besides https, only http is ever allowed, to a loopback host and
/// when enabled; a pattern allows no less beside CXone's domains than alone;
/// with no pattern, https is allowed exactly to [`CXONE_DOMAINS`] and their
/// subdomains (without ASCII case and one trailing dot), by a reference
/// written another way.
pub fn allowed_hosts(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let scheme = ["https", "http", "HTTPS", "ftp"][usize::from(flags & 3)];
    let loopback = flags & 4 != 0;
    let text = String::from_utf8_lossy(rest);
    let (pattern, host) = text
        .split_once('\0')
        .map_or((None, &*text), |(p, h)| (Some(p), h));

    let mut hosts = AllowedHosts::default().allow_loopback_http(loopback);
    if let Some(pattern) = pattern {
        hosts = hosts.allow_host(pattern);
        // What a pattern allows alone, it allows beside CXone's domains.
        let alone = AllowedHosts::none().allow_loopback_http(loopback);
        assert!(!alone.allow_host(pattern).allows(scheme, host) || hosts.allows(scheme, host));
    }
    let allowed = hosts.allows(scheme, host);
    let bare = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if allowed && !scheme.eq_ignore_ascii_case("https") {
        assert!(
            scheme == "http" && loopback && is_loopback(&host.to_ascii_lowercase()),
            "{scheme} to {host:?}"
        );
    }
    if scheme.eq_ignore_ascii_case("https") && pattern.is_none() && !loopback {
        // The domain, or a name with one more non-empty label before it.
        let expected = CXONE_DOMAINS.iter().any(|domain| {
            let label = bare
                .strip_suffix(domain)
                .and_then(|rest| rest.strip_suffix('.'));
            bare == *domain || label.is_some_and(|label| !label.is_empty())
        });
        assert_eq!(allowed, expected, "{host:?}");
    }
}

/// Whether a lowercase `host` is `localhost` or a loopback address (IPv6
/// with or without brackets), written apart from the layer's.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
