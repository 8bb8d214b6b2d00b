//! Reading a token endpoint's answer (RFC 6749 §5.1 and §5.2).
//!
//! The rules, each learned from a server that broke them:
//!
//! - a 3xx is refused: redirects are not followed;
//! - a 4xx or 5xx, or an `error` field even on a 200, becomes an [`Error`]
//!   classified by its RFC 6749 `error` code and its status, with `Retry-After`;
//! - the body must be a JSON object with a string `access_token` (which
//!   [`AccessToken::new`] checks can be a header: no CR/LF);
//! - `token_type`, when present, must be `Bearer` (any case);
//! - `expires_in` may be a number or a numeric string; negative or garbled is
//!   an error; absent or zero falls back to the JWT `exp`, then to 5
//!   minutes; beyond 24 hours it is cut;
//! - `scope` is the granted scopes; when absent, none are reported: RFC 6749
//!   §5.1 lets a server imply the requested ones, but CXone sends no `scope`
//!   and grants by the key owner's role, so "requested" would be a guess;
//! - `refresh_token` and `id_token` are kept (an `id_token` that is not a
//!   JWT is refused), and CXone's `resource_server_base_uri` must be https.
//!
//! No error quotes the body, which may hold the token: only the RFC 6749
//! `error` code and a sanitized, bounded `error_description` are kept.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use serde_json::{Map, Value};
use tokio::time::Instant;
use url::Url;

use crate::backoff::retry_after;
use crate::error::OAuthError;
use crate::token::endpoint::check_url_rule;
use crate::token::{JwtClaims, MAX_LIFETIME};
use crate::{AccessToken, Error};

/// Turns a token endpoint's response into a token or a typed error.
///
/// `requested_at` is when the request was sent.
pub(crate) fn token_from_response(
    response: &Response<Bytes>,
    requested_at: Instant,
) -> Result<AccessToken, Error> {
    let status = response.status();
    if status.is_redirection() {
        return Err(Error::invalid_response(
            "the token endpoint answered with a redirect, and redirects are not followed: \
             configure the final token URL",
        )
        .with_status(status));
    }
    let body = json_object(response.body());
    let oauth = body.as_ref().and_then(oauth_error);
    if !status.is_success() || oauth.is_some() {
        let retry_after = retry_after(response.headers());
        return Err(Error::from_token_response(status, oauth, retry_after));
    }
    let body = body.ok_or_else(|| {
        Error::invalid_response("the token response is not a JSON object").with_status(status)
    })?;

    let Some(value) = body.get("access_token").and_then(Value::as_str) else {
        return Err(Error::invalid_response(
            "the token response has no string `access_token`",
        ));
    };
    match body.get("token_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(kind)) if kind.eq_ignore_ascii_case("bearer") => {}
        Some(_) => {
            return Err(Error::invalid_response(
                "the token response's `token_type` is not Bearer; only bearer tokens are supported",
            ));
        }
    }
    let lifetime = expires_in(body.get("expires_in"))?;

    let mut token = AccessToken::new(value)?.with_requested_at(requested_at);
    if let Some(lifetime) = lifetime {
        token = token.with_lifetime(lifetime);
    }
    if let Some(scope) = body.get("scope").and_then(Value::as_str) {
        token = token.with_scopes(scope.split_ascii_whitespace());
    }
    let text = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    if let Some(refresh) = text("refresh_token") {
        token.extras_mut().refresh_token = Some(refresh.into());
    }
    if let Some(id_token) = text("id_token") {
        let claims = JwtClaims::from_jwt(id_token).ok_or_else(|| {
            Error::invalid_response("the token response's `id_token` is not a JWT")
        })?;
        token.extras_mut().id_token = Some((id_token.into(), claims));
    }
    if let Some(uri) = text("resource_server_base_uri") {
        let what = "`resource_server_base_uri` of the token response";
        let url = Url::parse(uri)
            .map_err(|_| Error::invalid_response(format!("the {what} is not a URL")))?;
        check_url_rule(what, &url).map_err(Error::invalid_response)?;
        token.extras_mut().resource_server_base_uri = Some(url.into());
    }
    Ok(token)
}

/// The body as a JSON object, if it is one.
pub(crate) fn json_object(body: &Bytes) -> Option<Map<String, Value>> {
    match serde_json::from_slice(body).ok()? {
        Value::Object(object) => Some(object),
        _ => None,
    }
}

/// The RFC 6749 §5.2 error of a body, when it has a string `error` field.
fn oauth_error(body: &Map<String, Value>) -> Option<OAuthError> {
    let code = body.get("error")?.as_str()?;
    let description = body.get("error_description").and_then(Value::as_str);
    Some(OAuthError::new(code, description))
}

/// `expires_in` as a lifetime. `None` when absent or zero (fall back to the
/// JWT `exp`, then the default).
fn expires_in(value: Option<&Value>) -> Result<Option<Duration>, Error> {
    let seconds = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    let Some(seconds) = seconds.filter(|s| s.is_finite()) else {
        return Err(Error::invalid_response(
            "the token response's `expires_in` is not a number",
        ));
    };
    if seconds < 0.0 {
        return Err(Error::invalid_response(
            "the token response's `expires_in` is negative",
        ));
    }
    if seconds == 0.0 {
        return Ok(None);
    }
    // `AccessToken::with_lifetime` cuts absurd values; this only keeps the
    // conversion itself from overflowing.
    let max = MAX_LIFETIME.as_secs_f64();
    Ok(Some(Duration::from_secs_f64(seconds.min(max))))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use http::StatusCode;
    use http::header::RETRY_AFTER;

    use super::*;
    use crate::token::DEFAULT_LIFETIME;
    use crate::{ErrorKind, OAuthErrorCode};

    fn response(status: u16, body: &str) -> Response<Bytes> {
        Response::builder()
            .status(status)
            .body(Bytes::copy_from_slice(body.as_bytes()))
            .unwrap()
    }

    fn parse(status: u16, body: &str) -> Result<AccessToken, Error> {
        token_from_response(&response(status, body), Instant::now())
    }

    #[tokio::test(start_paused = true)]
    async fn rfc6749_section_5_1_example() {
        let requested_at = Instant::now();
        tokio::time::advance(Duration::from_secs(3)).await;
        let token = token_from_response(
            &response(
                200,
                r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"Bearer","expires_in":3600}"#,
            ),
            requested_at,
        )
        .unwrap();
        assert_eq!(token.secret(), "2YotnFZFEjr1zCsicMWpAA");
        assert_eq!(token.lifetime(), Duration::from_secs(3600));
        assert_eq!(token.requested_at(), requested_at);
        assert!(token.scopes().is_empty(), "none named, none reported");
    }

    #[tokio::test]
    async fn expires_in_number_or_string() {
        for body in [
            r#"{"access_token":"t","token_type":"bearer","expires_in":"120"}"#,
            r#"{"access_token":"t","token_type":"BEARER","expires_in":120}"#,
            r#"{"access_token":"t","expires_in":120.0}"#,
            r#"{"access_token":"t","expires_in":" 120 "}"#,
        ] {
            let token = parse(200, body).unwrap();
            assert_eq!(token.lifetime(), Duration::from_secs(120), "{body}");
        }
    }

    #[tokio::test]
    async fn missing_or_zero_expires_in_falls_back_to_exp_then_default() {
        let opaque = parse(200, r#"{"access_token":"t","token_type":"Bearer"}"#).unwrap();
        assert_eq!(opaque.lifetime(), DEFAULT_LIFETIME);
        let zero = parse(200, r#"{"access_token":"t","expires_in":0}"#).unwrap();
        assert_eq!(zero.lifetime(), DEFAULT_LIFETIME);

        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 900;
        let jwt = format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{exp}}}"#))
        );
        let token = parse(200, &format!(r#"{{"access_token":"{jwt}"}}"#)).unwrap();
        assert!((898..=900).contains(&token.lifetime().as_secs()));
    }

    #[tokio::test]
    async fn absurd_expires_in_is_cut() {
        for huge in ["1e300", "99999999999999999999999", "\"31536000\""] {
            let token = parse(
                200,
                &format!(r#"{{"access_token":"t","expires_in":{huge}}}"#),
            )
            .unwrap();
            assert_eq!(token.lifetime(), MAX_LIFETIME, "{huge}");
        }
    }

    #[tokio::test]
    async fn negative_or_garbled_expires_in_is_refused() {
        for bad in [
            "-1",
            "\"-3600\"",
            "\"soon\"",
            "true",
            "[1]",
            "\"NaN\"",
            "\"inf\"",
        ] {
            let err = parse(
                200,
                &format!(r#"{{"access_token":"t","expires_in":{bad}}}"#),
            )
            .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{bad}");
            assert!(err.to_string().contains("expires_in"), "{err}");
        }
    }

    #[tokio::test]
    async fn scope_lists_granted_scopes() {
        let token = token_from_response(
            &response(200, r#"{"access_token":"t","scope":"openid  agents:read"}"#),
            Instant::now(),
        )
        .unwrap();
        assert_eq!(token.scopes(), ["openid", "agents:read"]);
    }

    #[tokio::test]
    async fn error_on_200_is_a_failure() {
        let err = parse(
            200,
            r#"{"access_token":"t","error":"invalid_grant","error_description":"key disabled"}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::GrantRejected);
        assert_eq!(err.status(), Some(StatusCode::OK));
        assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));
        assert_eq!(err.oauth_description(), Some("key disabled"));
    }

    #[tokio::test]
    async fn bodies_that_are_not_token_responses() {
        for (body, says) in [
            ("<html><body>Sign in</body></html>", "not a JSON object"),
            (
                r#"{"access_token":"tok-SECRET","expires_in":36"#,
                "not a JSON object",
            ),
            ("", "not a JSON object"),
            ("[]", "not a JSON object"),
            (r#""tok-SECRET""#, "not a JSON object"),
            (r#"{"token_type":"Bearer"}"#, "no string `access_token`"),
            (r#"{"access_token":42}"#, "no string `access_token`"),
            (
                r#"{"access_token":"tok-SECRET","token_type":"mac"}"#,
                "not Bearer",
            ),
            (
                r#"{"access_token":"tok-SECRET","token_type":"DPoP"}"#,
                "not Bearer",
            ),
            (
                r#"{"access_token":"tok-SECRET","token_type":7}"#,
                "not Bearer",
            ),
        ] {
            let err = parse(200, body).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{body}");
            let text = format!("{err} {err:?}");
            assert!(text.contains(says), "{body}: {text}");
            assert!(!text.contains("SECRET"), "{text}");
            assert!(!text.contains("Sign in"), "{text}");
        }
    }

    #[tokio::test]
    async fn tokens_that_cannot_be_headers_are_refused() {
        for token in [r"tok\r\nX-Injected: 1", r"tok\n", "", r"tok en"] {
            let err = parse(200, &format!(r#"{{"access_token":"{token}"}}"#)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{token}");
            assert!(!format!("{err} {err:?}").contains("Injected"));
        }
    }

    #[tokio::test]
    async fn refresh_id_token_and_resource_server_are_kept_or_refused() {
        let claims = URL_SAFE_NO_PAD.encode(r#"{"tenantId":"from-id-token"}"#);
        let body = format!(
            r#"{{"access_token":"opaque","refresh_token":"r-SECRET","id_token":"e30.{claims}.sig",
                "resource_server_base_uri":"https://api-b32.nice-incontact.com/inContactAPI/"}}"#
        );
        let token = parse(200, &body).unwrap();
        assert_eq!(token.refresh_token(), Some("r-SECRET"));
        assert_eq!(token.tenant_id(), Some("from-id-token"));
        let base = token.resource_server_base_uri();
        assert_eq!(
            base,
            Some("https://api-b32.nice-incontact.com/inContactAPI/")
        );
        assert!(!format!("{token:?}").contains("SECRET"));
        for (field, says) in [
            (r#""id_token":"id-SECRET""#, "`id_token` is not a JWT"),
            (
                r#""resource_server_base_uri":"http://api.incontact.com/?k=SECRET""#,
                "must use https",
            ),
            (r#""resource_server_base_uri":"SECRET""#, "is not a URL"),
        ] {
            let err = parse(200, &format!(r#"{{"access_token":"t",{field}}}"#)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{field}");
            let text = format!("{err} {err:?}");
            assert!(text.contains(says) && !text.contains("SECRET"), "{text}");
        }
    }

    #[tokio::test]
    async fn redirects_are_refused() {
        let mut redirect = response(302, "");
        redirect.headers_mut().insert(
            http::header::LOCATION,
            "https://elsewhere.example.com/token".parse().unwrap(),
        );
        let err = token_from_response(&redirect, Instant::now()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);
        assert_eq!(err.status(), Some(StatusCode::FOUND));
        assert!(
            err.to_string().contains("redirects are not followed"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn error_statuses_with_and_without_oauth_bodies() {
        let err = parse(
            400,
            r#"{"error":"invalid_client","error_description":"bad secret"}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidCredentials);
        assert_eq!(err.oauth_description(), Some("bad secret"));
        assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::InvalidClient));

        let err = parse(401, "<html>nope</html>").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidCredentials);
        assert!(err.oauth_code().is_none() && err.oauth_description().is_none());

        let err = parse(403, r#"{"message":"forbidden","route":"/auth/token"}"#).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Rejected);
        assert!(err.to_string().contains("role of the CXone user"), "{err}");

        let err = parse(502, "").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.is_transient());

        let mut limited = response(429, r#"{"error":"slow_down"}"#);
        limited
            .headers_mut()
            .insert(RETRY_AFTER, "12".parse().unwrap());
        let err = token_from_response(&limited, Instant::now()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(12)));

        let mut unavailable = response(503, "");
        let later =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
        unavailable
            .headers_mut()
            .insert(RETRY_AFTER, later.parse().unwrap());
        let err = token_from_response(&unavailable, Instant::now()).unwrap_err();
        let wait = err.retry_after().unwrap().as_secs();
        assert!((118..=120).contains(&wait), "{wait}");
    }

    mod properties {
        use proptest::prelude::*;
        use serde_json::json;

        use super::*;

        /// A token as a server may send one: visible ASCII.
        fn token_value() -> impl Strategy<Value = String> {
            "[!-~]{1,200}"
        }

        /// Statuses a token endpoint answers with.
        fn status() -> impl Strategy<Value = u16> {
            prop_oneof![
                Just(200),
                Just(201),
                Just(302),
                Just(400),
                Just(401),
                Just(403),
                Just(429),
                Just(500),
                Just(503),
                100u16..=999,
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_answer_is_read_without_panicking(
                status in status(),
                body in proptest::collection::vec(any::<u8>(), 0..256),
                retry_after in proptest::option::of("[ -~]{0,40}"),
            ) {
                let mut response = Response::builder().status(status);
                if let Some(value) = retry_after {
                    response = response.header(RETRY_AFTER, value);
                }
                let response = response.body(Bytes::from(body)).unwrap();
                if let Ok(token) = token_from_response(&response, Instant::now()) {
                    prop_assert!(response.status().is_success());
                    prop_assert!(token.lifetime() <= MAX_LIFETIME);
                }
            }

            #[test]
            fn any_json_object_is_read_without_panicking(
                fields in proptest::collection::vec(
                    (
                        prop_oneof![
                            Just("access_token".to_owned()),
                            Just("token_type".to_owned()),
                            Just("expires_in".to_owned()),
                            Just("scope".to_owned()),
                            Just("error".to_owned()),
                            Just("error_description".to_owned()),
                            "[a-z_]{1,12}",
                        ],
                        prop_oneof![
                            any::<String>().prop_map(Value::from),
                            any::<i64>().prop_map(Value::from),
                            any::<f64>().prop_map(|f| json!(f)),
                            any::<bool>().prop_map(Value::from),
                            Just(Value::Null),
                        ],
                    ),
                    0..8,
                ),
            ) {
                let body: Map<String, Value> = fields.into_iter().collect();
                let body = Value::Object(body).to_string();
                let _ = parse(200, &body);
            }

            /// A well-formed answer reads back as the token it carried:
            /// value, header, lifetime (however `expires_in` is written) and
            /// scopes.
            #[test]
            fn token_responses_round_trip(
                token in token_value(),
                expires_in in 1u64..=86_400,
                as_string in any::<bool>(),
                token_type in prop_oneof![Just("Bearer"), Just("bearer"), Just("BEARER")],
                scopes in proptest::option::of(proptest::collection::vec("[a-zA-Z:._-]{1,16}", 0..4)),
            ) {
                let mut body = json!({
                    "access_token": token,
                    "token_type": token_type,
                    "expires_in": if as_string { json!(expires_in.to_string()) } else { json!(expires_in) },
                    "refresh_token": "r",
                });
                if let Some(scopes) = &scopes {
                    body["scope"] = json!(scopes.join(" "));
                }
                let requested_at = Instant::now();
                let parsed = token_from_response(
                    &response(200, &body.to_string()),
                    requested_at,
                )
                .unwrap();
                prop_assert_eq!(parsed.secret(), token.as_str());
                let header = format!("Bearer {token}");
                prop_assert_eq!(parsed.header_value().as_bytes(), header.as_bytes());
                prop_assert!(parsed.header_value().is_sensitive());
                prop_assert_eq!(parsed.lifetime(), Duration::from_secs(expires_in));
                prop_assert_eq!(parsed.requested_at(), requested_at);
                match scopes {
                    Some(scopes) => prop_assert_eq!(parsed.scopes(), &scopes[..]),
                    None => prop_assert!(parsed.scopes().is_empty()),
                }
            }

            /// An RFC 6749 error, on any status, is a failure carrying its
            /// code and description, and never the token beside it.
            #[test]
            fn oauth_errors_are_failures_on_any_status(
                status in prop_oneof![Just(200u16), Just(400), Just(401), Just(403), Just(429), Just(503)],
                code in "[a-z_]{1,24}",
                description in "[ -~]{0,80}",
                token in "[A-Za-z0-9]{48}",
            ) {
                let body = json!({
                    "error": code,
                    "error_description": description,
                    "access_token": token,
                });
                let error = parse(status, &body.to_string()).unwrap_err();
                let kept = error.oauth_code().expect("the RFC 6749 error is kept");
                prop_assert_eq!(kept.as_str(), code.as_str());
                let sent = Some(description.as_str()).filter(|d| !d.is_empty());
                prop_assert_eq!(error.oauth_description(), sent);
                prop_assert_eq!(error.status(), StatusCode::from_u16(status).ok());
                let text = format!("{error} {error:?}");
                prop_assert!(!text.contains(&token));
            }
        }
    }
}
