//! `POST /auth/token`: the token endpoint.
//!
//! Checks, in the order a real authorization server does:
//! 1. the body is `application/x-www-form-urlencoded` with no repeated
//!    parameter (RFC 6749 §3.2), else `400 invalid_request`;
//! 2. the client authenticates once, by HTTP Basic or in the body, with the
//!    right id and secret, else `401 invalid_client` (with
//!    `WWW-Authenticate: Basic` when Basic was tried);
//! 3. `grant_type` is present (`400 invalid_request`), known
//!    (`400 unsupported_grant_type`) and enabled (`400 unauthorized_client`);
//! 4. for `password`, `username` and `password` are present
//!    (`400 invalid_request`) and are the access key (`400 invalid_grant`);
//! 5. every requested `scope` is granted, else `400 invalid_scope`.
//!
//! A body over [`MAX_TOKEN_REQUEST_BYTES`] gets `413` with `invalid_request`.
//! Every answer carries `Cache-Control: no-store` and `Pragma: no-cache`.
//! Queued [`TokenFault`](super::TokenFault)s and the general token delay apply
//! before any of this; every request is recorded first.
//!
//! ```
//! use axum::body::Body;
//! use cxone_auth::mock::MockCxone;
//! use http::{Request, StatusCode, header};
//! use tower::ServiceExt as _;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let cxone = MockCxone::new();
//! let request = Request::post(cxone.token_url())
//!     .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
//!     .body(Body::from("grant_type=client_credentials&client_id=nobody&client_secret=x"))?;
//! let response = cxone.router().oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use secrecy::ExposeSecret as _;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::builder::{ExpiresIn, Grant};
use super::client_auth::{self, Method};
use super::jwt::ACCESS_TOKEN_TYPE;
use super::state::{Counters, Shared};
use super::stats::RecordedTokenRequest;

/// The media type of a token request body (RFC 6749 §4.3.2, §4.4.2).
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The largest token request body read, in bytes. Real ones are a few
/// hundred bytes; the bound keeps recorded requests from filling memory
/// when a chaos test sends large bodies. Larger bodies get `413`.
pub const MAX_TOKEN_REQUEST_BYTES: usize = 64 * 1024;

/// A decoded form body.
pub(super) struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    fn parse(body: &[u8]) -> Self {
        let pairs = url::form_urlencoded::parse(body)
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        Self { pairs }
    }

    /// The value of `name`. An empty value counts as absent (RFC 6749 §3.1).
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    /// The first parameter sent more than once, which RFC 6749 §3.2 forbids.
    fn repeated(&self) -> Option<&str> {
        let mut seen = HashSet::with_capacity(self.pairs.len());
        self.pairs
            .iter()
            .map(|(key, _)| key.as_str())
            .find(|key| !seen.insert(*key))
    }
}

/// An RFC 6749 §5.2 error answer.
pub(super) struct OAuthFailure {
    status: StatusCode,
    code: &'static str,
    description: String,
    basic_challenge: bool,
}

impl OAuthFailure {
    fn bad_request(code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            description: description.into(),
            basic_challenge: false,
        }
    }

    pub(super) fn invalid_request(description: impl Into<String>) -> Self {
        Self::bad_request("invalid_request", description)
    }

    /// `401 invalid_client`; RFC 6749 §5.2 asks for a `WWW-Authenticate`
    /// challenge when the client tried the `Authorization` header.
    pub(super) fn invalid_client(description: impl Into<String>, method: Method) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: description.into(),
            basic_challenge: method == Method::Basic,
        }
    }
}

impl IntoResponse for OAuthFailure {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.code, "error_description": self.description });
        let mut response = (self.status, Json(body)).into_response();
        if self.basic_challenge {
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="cxone-mock", charset="UTF-8""#),
            );
        }
        no_store(response)
    }
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let counters = &shared.counters;
    Counters::bump(&counters.token_requests);
    let Ok(body) = Limited::new(body, MAX_TOKEN_REQUEST_BYTES).collect().await else {
        Counters::bump(&counters.token_failed);
        let mut failure = OAuthFailure::invalid_request(format!(
            "the body is larger than {MAX_TOKEN_REQUEST_BYTES} bytes or broke off"
        ));
        failure.status = StatusCode::PAYLOAD_TOO_LARGE;
        return failure.into_response();
    };
    let body = body.to_bytes();
    let form = Form::parse(&body);
    shared.record(RecordedTokenRequest {
        authorization: headers.get(AUTHORIZATION).cloned(),
        content_type: headers.get(CONTENT_TYPE).cloned(),
        body,
        form: form.pairs.clone(),
        received_at: Instant::now(),
    });

    let (fault, delay) = {
        let mut runtime = shared.lock();
        (runtime.token_faults.pop_front(), runtime.token_delay)
    };
    let delay = delay.saturating_add(fault.as_ref().map(|f| f.delay()).unwrap_or_default());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(response) = fault.as_ref().and_then(|f| f.response()) {
        Counters::bump(&counters.token_failed);
        return response;
    }

    match grant(&shared, &headers, &form) {
        Ok(response) => {
            Counters::bump(&counters.token_succeeded);
            no_store(response)
        }
        Err(failure) => {
            Counters::bump(&counters.token_failed);
            failure.into_response()
        }
    }
}

/// Validates the request and, when it is good, issues a token.
fn grant(shared: &Shared, headers: &HeaderMap, form: &Form) -> Result<Response, OAuthFailure> {
    let config = &shared.config;
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(FORM_CONTENT_TYPE));
    if !is_form {
        return Err(OAuthFailure::invalid_request(format!(
            "the body must be {FORM_CONTENT_TYPE}"
        )));
    }
    if let Some(name) = form.repeated() {
        return Err(OAuthFailure::invalid_request(format!(
            "the parameter {name} is repeated"
        )));
    }

    let client = client_auth::presented(headers.get(AUTHORIZATION), form)?;
    if client.id != config.client_id || client.secret != config.client_secret.expose_secret() {
        return Err(OAuthFailure::invalid_client(
            "client authentication failed: unknown client or wrong secret",
            client.method,
        ));
    }

    let Some(grant_type) = form.get("grant_type") else {
        return Err(OAuthFailure::invalid_request("grant_type is missing"));
    };
    let Some(grant) = Grant::parse(grant_type) else {
        return Err(OAuthFailure::bad_request(
            "unsupported_grant_type",
            "this grant type is not supported",
        ));
    };
    if !config.grants.contains(&grant) {
        return Err(OAuthFailure::bad_request(
            "unauthorized_client",
            format!(
                "the {} grant is not enabled for this client",
                grant.as_str()
            ),
        ));
    }

    if grant == Grant::Password {
        let (Some(username), Some(password)) = (form.get("username"), form.get("password")) else {
            return Err(OAuthFailure::invalid_request(
                "the password grant needs username (the access key id) and password (the access key secret)",
            ));
        };
        if username != config.access_key_id || password != config.access_key_secret.expose_secret()
        {
            return Err(OAuthFailure::bad_request(
                "invalid_grant",
                "the access key is unknown, inactive or its secret is wrong",
            ));
        }
    }

    let scope = form.get("scope");
    if let (Some(requested), Some(granted)) = (scope, &config.scopes)
        && let Some(missing) = requested
            .split(' ')
            .filter(|s| !s.is_empty())
            .find(|s| !granted.iter().any(|g| g == s))
    {
        return Err(OAuthFailure::bad_request(
            "invalid_scope",
            format!("the scope {missing} is not granted to this client"),
        ));
    }

    let issued = shared.issue();
    let mut body = Map::new();
    body.insert("access_token".into(), issued.minted.access_token.into());
    body.insert("token_type".into(), "Bearer".into());
    let seconds = issued.lifetime.as_secs();
    match issued.expires_in {
        ExpiresIn::Number => {
            body.insert("expires_in".into(), seconds.into());
        }
        ExpiresIn::String => {
            body.insert("expires_in".into(), seconds.to_string().into());
        }
        ExpiresIn::Omitted => {}
    }
    body.insert("refresh_token".into(), issued.minted.refresh_token.into());
    body.insert("id_token".into(), issued.minted.id_token.into());
    body.insert("issued_token_type".into(), ACCESS_TOKEN_TYPE.into());
    if let Some(scope) = scope {
        let normalized: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
        body.insert("scope".into(), normalized.join(" ").into());
    }
    Ok(Json(Value::Object(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_absent() {
        let form = Form::parse(b"grant_type=&scope=a+b&username=x%2By");
        assert_eq!(form.get("grant_type"), None);
        assert_eq!(form.get("scope"), Some("a b"));
        assert_eq!(form.get("username"), Some("x+y"));
        assert_eq!(form.get("missing"), None);
    }

    #[test]
    fn finds_the_first_repeated_parameter() {
        assert_eq!(Form::parse(b"a=1&b=2&c=3").repeated(), None);
        assert_eq!(Form::parse(b"a=1&b=2&b=3&a=4").repeated(), Some("b"));
        // A large form with no repeat is read whole.
        let many: String = (0..30_000).map(|i| format!("k{i}=v&")).collect();
        assert_eq!(Form::parse(many.as_bytes()).repeated(), None);
    }
}
