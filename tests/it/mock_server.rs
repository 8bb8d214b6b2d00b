//! The mock CXone server, driven in memory through its router with paused
//! time, and once over a real loopback socket.

use std::time::Duration;

use crate::support::{basic_authorization, form_encode};
use axum::body::Body;
use bytes::Bytes;
use cxone_auth::mock::{
    self, ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLIENT_ID, CLIENT_SECRET, ExpiresIn, Grant, MockCxone,
    SAMPLE_AGENT_COUNT, TENANT_ID, TokenFault,
};
use cxone_auth::token::JwtClaims;
use http::header::{
    ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, PRAGMA, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

const FORM: &str = "application/x-www-form-urlencoded";

/// The mock's defaults that tests check by value.
const BUSINESS_UNIT_ID: i64 = -4_601_237;
const CLUSTER_ID: &str = "B32";
const AREA: &str = "na1";
const MAX_TOKEN_REQUEST_BYTES: usize = 64 * 1024;
const MAX_RECORDED_TOKEN_REQUESTS: usize = 1_000;

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "not JSON ({err}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn header(&self, name: impl http::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn call(cxone: &MockCxone, request: Request<Body>) -> Answer {
    let response = cxone.router().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

fn password_form() -> String {
    format!(
        "grant_type=password&username={}&password={}",
        form_encode(ACCESS_KEY_ID),
        form_encode(ACCESS_KEY_SECRET)
    )
}

fn post_form_body() -> String {
    format!(
        "client_id={}&client_secret={}",
        form_encode(CLIENT_ID),
        form_encode(CLIENT_SECRET)
    )
}

/// A token request with the given form body and, if any, Authorization header.
fn token_request(
    cxone: &MockCxone,
    form: impl Into<Body>,
    authorization: Option<&str>,
) -> Request<Body> {
    let mut request = Request::post(cxone.token_url()).header(CONTENT_TYPE, FORM);
    if let Some(authorization) = authorization {
        request = request.header(AUTHORIZATION, authorization);
    }
    request.body(form.into()).unwrap()
}

/// The access key grant with the client in HTTP Basic: CXone's back-end flow.
fn good_token_request(cxone: &MockCxone) -> Request<Body> {
    let basic = basic_authorization(CLIENT_ID, CLIENT_SECRET);
    token_request(cxone, password_form(), Some(&basic))
}

async fn fetch_token(cxone: &MockCxone) -> String {
    let answer = call(cxone, good_token_request(cxone)).await;
    assert_eq!(answer.status, StatusCode::OK);
    answer.json()["access_token"].as_str().unwrap().to_owned()
}

fn api_request(cxone: &MockCxone, path: &str, token: Option<&str>) -> Request<Body> {
    let mut request = Request::get(format!(
        "{}/inContactAPI/services/{path}",
        cxone.api_endpoint()
    ));
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    request
        .header(ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap()
}

fn get(uri: String) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn both_grants_with_both_client_auth_methods_succeed_and_are_recorded() {
    let cxone = MockCxone::builder()
        .grants([Grant::Password, Grant::ClientCredentials])
        .build();
    let basic = basic_authorization(CLIENT_ID, CLIENT_SECRET);
    // Plain, as NICE documents it: the secret's ':', ' ' and '+' go raw.
    let plain_basic = {
        use base64::Engine as _;
        let raw = format!("{CLIENT_ID}:{CLIENT_SECRET}");
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
        format!("Basic {encoded}")
    };
    let client_credentials = "grant_type=client_credentials".to_owned();
    let cases = [
        (password_form(), Some(plain_basic.clone()), "password"),
        (password_form(), Some(basic.clone()), "password"),
        (
            format!("{}&{}", password_form(), post_form_body()),
            None,
            "password",
        ),
        (
            client_credentials.clone(),
            Some(basic.clone()),
            "client_credentials",
        ),
        (
            format!("{client_credentials}&{}", post_form_body()),
            None,
            "client_credentials",
        ),
    ];
    for (i, (form, authorization, grant)) in cases.iter().enumerate() {
        let answer = call(
            &cxone,
            token_request(&cxone, form.clone(), authorization.as_deref()),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{grant} {authorization:?}");
        assert_eq!(answer.header(CACHE_CONTROL), Some("no-store"));
        assert_eq!(answer.header(PRAGMA), Some("no-cache"));
        let json = answer.json();
        assert_eq!(json["token_type"], "Bearer");
        assert_eq!(json["expires_in"], 3600);
        assert!(
            json["refresh_token"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        assert!(JwtClaims::from_jwt(json["id_token"].as_str().unwrap()).is_some());
        assert_eq!(
            json["issued_token_type"],
            "urn:ietf:params:oauth:token-type:access_token"
        );
        assert!(json.get("scope").is_none(), "no scope was asked for");

        let token = json["access_token"].as_str().unwrap();
        let claims = JwtClaims::from_jwt(token).expect("a JWT");
        assert_eq!(claims.tenant_id(), Some(TENANT_ID));
        assert_eq!(claims.business_unit_id(), Some(BUSINESS_UNIT_ID));
        assert!(claims.business_unit_id().unwrap() < 0);
        assert_eq!(claims.cluster_id(), Some(CLUSTER_ID));
        assert!(claims.subject().unwrap().starts_with("user:"));
        assert_eq!(claims.exp().unwrap() - claims.iat().unwrap(), 3600);
        assert!(claims.get("jti").is_some());
        assert!(claims.get("role").is_some());
        assert!(cxone.is_token_active(token));

        let recorded = cxone.token_requests();
        let request = &recorded[i];
        assert_eq!(request.body(), form.as_bytes());
        assert_eq!(request.content_type().as_deref(), Some(FORM));
        assert_eq!(request.authorization(), authorization.clone());
        assert_eq!(request.form_value("grant_type"), Some(*grant));
        match authorization {
            Some(sent) => {
                let expected = match *sent == plain_basic {
                    true => (CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned()),
                    false => (form_encode(CLIENT_ID), form_encode(CLIENT_SECRET)),
                };
                assert_eq!(request.basic_credentials(), Some(expected));
                assert_eq!(request.form_value("client_secret"), None);
            }
            None => {
                assert_eq!(request.basic_credentials(), None);
                assert_eq!(request.form_value("client_id"), Some(CLIENT_ID));
                assert_eq!(request.form_value("client_secret"), Some(CLIENT_SECRET));
            }
        }
        if *grant == "password" {
            assert_eq!(request.form_value("username"), Some(ACCESS_KEY_ID));
            assert_eq!(request.form_value("password"), Some(ACCESS_KEY_SECRET));
        }
    }
    let stats = cxone.stats();
    assert_eq!(stats.token_requests, 5);
    assert_eq!(stats.token_succeeded, 5);
    assert_eq!(stats.token_failed, 0);
}

#[tokio::test(start_paused = true)]
async fn every_token_is_different() {
    let cxone = MockCxone::new();
    let first = fetch_token(&cxone).await;
    let second = fetch_token(&cxone).await;
    let direct = cxone.issue_token();
    assert_ne!(first, second);
    assert_ne!(second, direct);
    let jti = |t: &str| JwtClaims::from_jwt(t).unwrap().get("jti").cloned();
    assert_ne!(jti(&first), jti(&second));
    // issue_token is not a token request.
    assert_eq!(cxone.stats().token_requests, 2);
    assert!(cxone.is_token_active(&direct));
}

#[tokio::test(start_paused = true)]
async fn requested_scopes_are_granted_and_echoed_or_refused() {
    let open = MockCxone::builder()
        .grants([Grant::ClientCredentials])
        .build();
    let form = format!(
        "grant_type=client_credentials&scope=RealTimeApi+AdminApi&{}",
        post_form_body()
    );
    let answer = call(&open, token_request(&open, form.clone(), None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["scope"], "RealTimeApi AdminApi");

    let narrow = MockCxone::builder()
        .grants([Grant::ClientCredentials])
        .scopes(["AdminApi"])
        .build();
    let answer = call(&narrow, token_request(&narrow, form, None)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["error"], "invalid_scope");
    assert!(
        answer.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("RealTimeApi")
    );

    let form = format!(
        "grant_type=client_credentials&scope=AdminApi&{}",
        post_form_body()
    );
    let answer = call(&narrow, token_request(&narrow, form, None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["scope"], "AdminApi");
}

/// One error case: the request, and the status, code and challenge expected.
struct ErrorCase {
    name: &'static str,
    request: Request<Body>,
    status: StatusCode,
    code: &'static str,
    basic_challenge: bool,
}

#[tokio::test(start_paused = true)]
async fn every_token_error_has_the_documented_status_and_shape() {
    let cxone = MockCxone::builder().grants([Grant::Password]).build();
    let basic = basic_authorization(CLIENT_ID, CLIENT_SECRET);
    let wrong_basic = basic_authorization(CLIENT_ID, "wrong");
    let case = |name, request, status, code, basic_challenge| ErrorCase {
        name,
        request,
        status,
        code,
        basic_challenge,
    };
    let bad = StatusCode::BAD_REQUEST;
    let unauthorized = StatusCode::UNAUTHORIZED;
    let cases = vec![
        case(
            "JSON instead of a form",
            Request::post(cxone.token_url())
                .header(CONTENT_TYPE, "application/json")
                .header(AUTHORIZATION, &basic)
                .body(Body::from(r#"{"grant_type":"password"}"#))
                .unwrap(),
            bad,
            "invalid_request",
            false,
        ),
        case(
            "no content type",
            Request::post(cxone.token_url())
                .header(AUTHORIZATION, &basic)
                .body(Body::from(password_form()))
                .unwrap(),
            bad,
            "invalid_request",
            false,
        ),
        case(
            "a repeated parameter",
            token_request(
                &cxone,
                format!("{}&grant_type=password", password_form()),
                Some(&basic),
            ),
            bad,
            "invalid_request",
            false,
        ),
        case(
            "no client authentication",
            token_request(&cxone, password_form(), None),
            unauthorized,
            "invalid_client",
            false,
        ),
        case(
            "a client id without its secret",
            token_request(
                &cxone,
                format!("{}&client_id={}", password_form(), form_encode(CLIENT_ID)),
                None,
            ),
            unauthorized,
            "invalid_client",
            false,
        ),
        case(
            "a wrong secret in Basic",
            token_request(&cxone, password_form(), Some(&wrong_basic)),
            unauthorized,
            "invalid_client",
            true,
        ),
        case(
            "a wrong secret in the body",
            token_request(
                &cxone,
                format!(
                    "{}&client_id={}&client_secret=wrong",
                    password_form(),
                    form_encode(CLIENT_ID)
                ),
                None,
            ),
            unauthorized,
            "invalid_client",
            false,
        ),
        case(
            "an unknown client",
            token_request(
                &cxone,
                password_form(),
                Some(&basic_authorization("someone-else", CLIENT_SECRET)),
            ),
            unauthorized,
            "invalid_client",
            true,
        ),
        case(
            "Basic that is not base64",
            token_request(&cxone, password_form(), Some("Basic %%%not-base64%%%")),
            unauthorized,
            "invalid_client",
            true,
        ),
        case(
            "another scheme in Authorization",
            token_request(&cxone, password_form(), Some("Bearer abc")),
            unauthorized,
            "invalid_client",
            true,
        ),
        case(
            "Basic and a body secret together",
            token_request(
                &cxone,
                format!("{}&{}", password_form(), post_form_body()),
                Some(&basic),
            ),
            bad,
            "invalid_request",
            false,
        ),
        case(
            "a body client id that differs from Basic",
            token_request(
                &cxone,
                format!("{}&client_id=other", password_form()),
                Some(&basic),
            ),
            bad,
            "invalid_request",
            false,
        ),
        case(
            "no grant type",
            token_request(&cxone, "username=x&password=y", Some(&basic)),
            bad,
            "invalid_request",
            false,
        ),
        case(
            "an empty grant type",
            token_request(&cxone, "grant_type=", Some(&basic)),
            bad,
            "invalid_request",
            false,
        ),
        case(
            "an unknown grant type",
            token_request(&cxone, "grant_type=authorization_code&code=x", Some(&basic)),
            bad,
            "unsupported_grant_type",
            false,
        ),
        case(
            "client_credentials, which CXone does not offer",
            token_request(&cxone, "grant_type=client_credentials", Some(&basic)),
            bad,
            "unsupported_grant_type",
            false,
        ),
        case(
            "the password grant without a username",
            token_request(
                &cxone,
                format!(
                    "grant_type=password&password={}",
                    form_encode(ACCESS_KEY_SECRET)
                ),
                Some(&basic),
            ),
            bad,
            "invalid_request",
            false,
        ),
        case(
            "a wrong access key secret",
            token_request(
                &cxone,
                format!(
                    "grant_type=password&username={}&password=wrong",
                    form_encode(ACCESS_KEY_ID)
                ),
                Some(&basic),
            ),
            bad,
            "invalid_grant",
            false,
        ),
        case(
            "an access key secret sent without form-urlencoding",
            token_request(
                &cxone,
                format!(
                    "grant_type=password&username={ACCESS_KEY_ID}&password={ACCESS_KEY_SECRET}"
                ),
                Some(&basic),
            ),
            bad,
            "invalid_grant",
            false,
        ),
        case(
            "a body that is not UTF-8",
            token_request(
                &cxone,
                Body::from(vec![0xff, 0xfe, b'=', 0x80, b'&']),
                Some(&basic),
            ),
            bad,
            "invalid_request",
            false,
        ),
        case(
            "an Authorization header that is not UTF-8",
            {
                let mut request = token_request(&cxone, password_form(), None);
                request.headers_mut().insert(
                    AUTHORIZATION,
                    HeaderValue::from_bytes(b"Basic \xff\xfe\xfd").unwrap(),
                );
                request
            },
            unauthorized,
            "invalid_client",
            true,
        ),
    ];
    let count = cases.len() as u64;
    for case in cases {
        let answer = call(&cxone, case.request).await;
        let name = case.name;
        assert_eq!(answer.status, case.status, "{name}");
        let json = answer.json();
        assert_eq!(json["error"], case.code, "{name}: {json}");
        assert!(
            json["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{name}"
        );
        assert_eq!(answer.header(CACHE_CONTROL), Some("no-store"), "{name}");
        assert_eq!(answer.header(PRAGMA), Some("no-cache"), "{name}");
        let challenge = answer.header(WWW_AUTHENTICATE);
        assert_eq!(
            challenge.is_some_and(|c| c.starts_with("Basic")),
            case.basic_challenge,
            "{name}: {challenge:?}"
        );
    }
    let stats = cxone.stats();
    assert_eq!(stats.token_requests, count);
    assert_eq!(stats.token_failed, count);
    assert_eq!(stats.token_succeeded, 0);
    // Nothing was issued, so the right request still works afterwards.
    assert_eq!(
        call(&cxone, good_token_request(&cxone)).await.status,
        StatusCode::OK
    );
}

#[tokio::test(start_paused = true)]
async fn the_token_endpoint_only_takes_post() {
    let cxone = MockCxone::new();
    let answer = call(&cxone, get(cxone.token_url())).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    let answer = call(&cxone, get(format!("{}/no/such/route", cxone.base_url()))).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test(start_paused = true)]
async fn custom_credentials_replace_the_defaults() {
    let cxone = MockCxone::builder()
        .client("app", "s3cret")
        .access_key("KEY====", "secret+key/====")
        .build();
    let form = format!(
        "grant_type=password&username=KEY%3D%3D%3D%3D&password={}",
        form_encode("secret+key/====")
    );
    let answer = call(
        &cxone,
        token_request(
            &cxone,
            form.clone(),
            Some(&basic_authorization("app", "s3cret")),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = call(
        &cxone,
        token_request(
            &cxone,
            form,
            Some(&basic_authorization(CLIENT_ID, CLIENT_SECRET)),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(start_paused = true)]
async fn expires_in_follows_the_lifetime_and_format_knobs() {
    let cxone = MockCxone::builder().expires_in(ExpiresIn::String).build();
    assert_eq!(
        call(&cxone, good_token_request(&cxone)).await.json()["expires_in"],
        "3600"
    );

    cxone.set_token_lifetime(Duration::from_secs(60));
    cxone.set_expires_in(ExpiresIn::Number);
    let json = call(&cxone, good_token_request(&cxone)).await.json();
    assert_eq!(json["expires_in"], 60);
    let claims = JwtClaims::from_jwt(json["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims.exp().unwrap() - claims.iat().unwrap(), 60);

    cxone.set_expires_in(ExpiresIn::Omitted);
    let json = call(&cxone, good_token_request(&cxone)).await.json();
    assert!(json.get("expires_in").is_none(), "{json}");
    assert!(json["access_token"].is_string());

    let omitted = MockCxone::builder().expires_in(ExpiresIn::Omitted).build();
    let json = call(&omitted, good_token_request(&omitted)).await.json();
    assert!(json.get("expires_in").is_none(), "{json}");
}

#[tokio::test(start_paused = true)]
async fn tokens_expire_on_tokios_clock() {
    let cxone = MockCxone::builder()
        .token_lifetime(Duration::from_secs(60))
        .build();
    let token = fetch_token(&cxone).await;
    let server_time = |token: &str| api_request(&cxone, "v34.0/server-time", Some(token));

    assert_eq!(
        call(&cxone, server_time(&token)).await.status,
        StatusCode::OK
    );
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(
        call(&cxone, server_time(&token)).await.status,
        StatusCode::OK
    );
    assert!(cxone.is_token_active(&token));
    tokio::time::advance(Duration::from_secs(2)).await;
    let answer = call(&cxone, server_time(&token)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.body.is_empty(), "401 has no body");
    assert!(!cxone.is_token_active(&token));

    // A lifetime change applies to new tokens only.
    let fresh = fetch_token(&cxone).await;
    cxone.set_token_lifetime(Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(
        call(&cxone, server_time(&fresh)).await.status,
        StatusCode::OK
    );

    let stats = cxone.stats();
    assert_eq!(stats.api_calls, 4);
    assert_eq!(stats.api_ok, 3);
    assert_eq!(stats.api_unauthorized, 1);
}

#[tokio::test(start_paused = true)]
async fn revoked_tokens_are_refused() {
    let cxone = MockCxone::new();
    let first = fetch_token(&cxone).await;
    let second = fetch_token(&cxone).await;
    let agents = |token: &str| api_request(&cxone, "v34.0/agents", Some(token));

    assert!(cxone.revoke(&first));
    assert!(!cxone.revoke(&first), "already revoked");
    assert!(!cxone.revoke("never-issued"));
    assert_eq!(
        call(&cxone, agents(&first)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(call(&cxone, agents(&second)).await.status, StatusCode::OK);

    cxone.revoke_all();
    assert_eq!(
        call(&cxone, agents(&second)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let third = fetch_token(&cxone).await;
    assert_eq!(call(&cxone, agents(&third)).await.status, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn the_api_refuses_missing_and_foreign_tokens() {
    let cxone = MockCxone::new();
    let token = fetch_token(&cxone).await;
    let other_mock_token = MockCxone::new().issue_token();
    let mut cases = vec![
        ("no header", api_request(&cxone, "v34.0/server-time", None)),
        (
            "garbage",
            api_request(&cxone, "v34.0/server-time", Some("not-a-token")),
        ),
        (
            "another mock's token",
            api_request(&cxone, "v34.0/agents", Some(&other_mock_token)),
        ),
    ];
    let mut basic = api_request(&cxone, "v34.0/server-time", None);
    basic.headers_mut().insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
    );
    cases.push(("the token under another scheme", basic));
    let mut binary = api_request(&cxone, "v34.0/server-time", None);
    binary.headers_mut().insert(
        AUTHORIZATION,
        HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
    );
    cases.push(("a header that is not UTF-8", binary));
    for (name, request) in cases {
        let answer = call(&cxone, request).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(answer.body.is_empty(), "{name}: 401 has no body");
    }
    // The scheme is case-insensitive (RFC 7235).
    let mut lower = api_request(&cxone, "v34.0/server-time", None);
    lower.headers_mut().insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("bearer {token}")).unwrap(),
    );
    assert_eq!(call(&cxone, lower).await.status, StatusCode::OK);
    assert_eq!(cxone.stats().api_unauthorized, 5);
}

#[tokio::test(start_paused = true)]
async fn api_versions_in_use_are_routed_and_others_are_not() {
    let cxone = MockCxone::new();
    let token = cxone.issue_token();
    // Any `vN.M`, as NICE's SDK (v4.0 to v31.0) and
    // third parties (v17.0, v21.0, v26.0) call them.
    for version in ["v4.0", "v17.0", "v26.0", "v34.0", "v35.1"] {
        let answer = call(
            &cxone,
            api_request(&cxone, &format!("{version}/server-time"), Some(&token)),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{version}");
        let time = answer.json()["ServerTime"].as_str().unwrap().to_owned();
        // 2021-07-21T13:38:15.3560573Z
        assert_eq!(time.len(), 28, "{time}");
        assert_eq!(&time[10..11], "T");
        assert!(time.ends_with('Z'));
    }
    for path in [
        "latest/agents",
        "34.0/agents",
        "v34/agents",
        "v34.0/nope",
        "v34.0",
    ] {
        let answer = call(&cxone, api_request(&cxone, path, Some(&token))).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
    // The path's case varies among integrators (`/incontactapi`).
    let base = cxone.api_endpoint();
    for path in [
        "/incontactapi/services/v21.0/Agents",
        "/INCONTACTAPI/Services/v34.0/server-time",
    ] {
        let request = Request::get(format!("{base}{path}"))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(ACCEPT, "application/json");
        let answer = call(&cxone, request.body(Body::empty()).unwrap()).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert!(answer.json().is_object(), "{path}");
    }
    let elsewhere = call(
        &cxone,
        get(format!("{base}/inContactAPI/other/v34.0/agents")),
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
}

/// Without `Accept: application/json` CXone answers 200
/// with a text that is not JSON.
#[tokio::test(start_paused = true)]
async fn the_api_needs_json_to_be_acceptable() {
    let cxone = MockCxone::new();
    let token = cxone.issue_token();
    let uri = format!(
        "{}/inContactAPI/services/v34.0/agents",
        cxone.api_endpoint()
    );
    for accept in [None, Some("text/html"), Some("application/xml, text/*")] {
        let mut request = Request::get(&uri).header(AUTHORIZATION, format!("Bearer {token}"));
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        let answer = call(&cxone, request.body(Body::empty()).unwrap()).await;
        assert_eq!(answer.status, StatusCode::OK, "{accept:?}");
        assert_eq!(
            &answer.body[..],
            b"No known way to render data",
            "{accept:?}"
        );
    }
    for accept in [
        "application/json",
        "*/*",
        "text/html, application/json;q=0.9",
    ] {
        let request = Request::get(&uri)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(ACCEPT, accept);
        let answer = call(&cxone, request.body(Body::empty()).unwrap()).await;
        assert_eq!(
            answer.json()["totalRecords"],
            SAMPLE_AGENT_COUNT,
            "{accept}"
        );
    }
    // The token is checked first.
    assert_eq!(
        call(&cxone, get(uri)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(start_paused = true)]
async fn agents_honour_paging_and_filters() {
    let cxone = MockCxone::new();
    let token = cxone.issue_token();
    let agents = |query: &str| api_request(&cxone, &format!("v34.0/agents{query}"), Some(&token));

    let all = call(&cxone, agents("")).await.json();
    assert_eq!(all["totalRecords"], SAMPLE_AGENT_COUNT);
    assert_eq!(all["agents"].as_array().unwrap().len(), SAMPLE_AGENT_COUNT);
    assert_eq!(all["businessUnitId"], BUSINESS_UNIT_ID);
    assert!(
        all["_links"]["self"]
            .as_str()
            .unwrap()
            .contains("/v34.0/agents")
    );
    assert!(all["_links"].get("next").is_none());
    let first = &all["agents"][0];
    for field in ["agentId", "firstName", "lastName", "userName", "isActive"] {
        assert!(first.get(field).is_some(), "{field}");
    }

    let page = call(&cxone, agents("?skip=0&top=5")).await.json();
    assert_eq!(page["agents"].as_array().unwrap().len(), 5);
    assert_eq!(page["totalRecords"], SAMPLE_AGENT_COUNT);
    assert!(
        page["_links"]["next"]
            .as_str()
            .unwrap()
            .contains("skip=5&top=5")
    );
    assert!(page["_links"].get("previous").is_none());

    let last = call(&cxone, agents("?skip=10&top=5")).await.json();
    let ids: Vec<&Value> = last["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["agentId"])
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], &all["agents"][10]["agentId"]);
    assert!(
        last["_links"]["previous"]
            .as_str()
            .unwrap()
            .contains("skip=5&top=5")
    );
    assert!(last["_links"].get("next").is_none());

    let inactive = call(&cxone, agents("?isActive=false")).await.json();
    let inactive = inactive["agents"].as_array().unwrap();
    assert!(!inactive.is_empty());
    assert!(inactive.iter().all(|a| a["isActive"] == false));
    let active = call(&cxone, agents("?isActive=true")).await.json();
    assert_eq!(
        active["totalRecords"].as_u64().unwrap() + inactive.len() as u64,
        SAMPLE_AGENT_COUNT as u64
    );

    let found = call(&cxone, agents("?searchString=HOPP")).await.json();
    assert_eq!(found["totalRecords"], 1);
    assert_eq!(found["agents"][0]["lastName"], "Hopper");

    for empty in ["?searchString=nobody-by-this-name", "?skip=100"] {
        let answer = call(&cxone, agents(empty)).await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{empty}");
        assert!(answer.body.is_empty());
    }

    for bad in ["?top=abc", "?skip=-1", "?isActive=maybe"] {
        let answer = call(&cxone, agents(bad)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(answer.json()["error"], "invalid_request");
    }
}

#[tokio::test(start_paused = true)]
async fn failed_token_requests_then_success() {
    let cxone = MockCxone::new();
    cxone.fail_next_token_requests(2, TokenFault::status(503));
    assert_eq!(cxone.pending_token_faults(), 2);
    for left in [1, 0] {
        let answer = call(&cxone, good_token_request(&cxone)).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(answer.body.is_empty());
        assert_eq!(answer.header(CACHE_CONTROL), Some("no-store"));
        assert_eq!(cxone.pending_token_faults(), left);
    }
    assert_eq!(
        call(&cxone, good_token_request(&cxone)).await.status,
        StatusCode::OK
    );
    let stats = cxone.stats();
    assert_eq!(
        (
            stats.token_requests,
            stats.token_failed,
            stats.token_succeeded
        ),
        (3, 2, 1)
    );
    // Faulted requests are recorded too.
    assert_eq!(cxone.token_requests().len(), 3);

    // Faults answer whatever the request, even a bad one, and queue in order.
    cxone.fail_next_token_requests(1, TokenFault::status(500));
    cxone.fail_next_token_requests(1, TokenFault::status(502));
    let garbage = token_request(&cxone, "nonsense", None);
    assert_eq!(
        call(&cxone, garbage).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        call(&cxone, good_token_request(&cxone)).await.status,
        StatusCode::BAD_GATEWAY
    );

    cxone.fail_next_token_requests(3, TokenFault::status(500));
    cxone.clear_token_faults();
    assert_eq!(
        call(&cxone, good_token_request(&cxone)).await.status,
        StatusCode::OK
    );
}

#[tokio::test(start_paused = true)]
async fn fault_bodies_and_headers_are_sent_as_given() {
    let cxone = MockCxone::new();

    cxone.fail_next_token_requests(1, TokenFault::rate_limited(Duration::from_millis(1500)));
    let answer = call(&cxone, good_token_request(&cxone)).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.header(RETRY_AFTER), Some("2"), "rounded up");

    cxone.fail_next_token_requests(1, TokenFault::unavailable(Duration::from_secs(7)));
    let answer = call(&cxone, good_token_request(&cxone)).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.header(RETRY_AFTER), Some("7"));

    let date = "Wed, 21 Oct 2015 07:28:00 GMT";
    cxone.fail_next_token_requests(
        1,
        TokenFault::status(429).with_header(RETRY_AFTER, HeaderValue::from_static(date)),
    );
    assert_eq!(
        call(&cxone, good_token_request(&cxone))
            .await
            .header(RETRY_AFTER),
        Some(date)
    );

    cxone.fail_next_token_requests(1, TokenFault::html());
    let answer = call(&cxone, good_token_request(&cxone)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer
            .header(CONTENT_TYPE)
            .unwrap()
            .starts_with("text/html")
    );
    assert!(answer.body.starts_with(b"<!DOCTYPE html>"));

    cxone.fail_next_token_requests(1, TokenFault::html().with_status(502));
    assert_eq!(
        call(&cxone, good_token_request(&cxone)).await.status,
        StatusCode::BAD_GATEWAY
    );

    cxone.fail_next_token_requests(1, TokenFault::truncated_json());
    let answer = call(&cxone, good_token_request(&cxone)).await;
    assert_eq!(answer.header(CONTENT_TYPE), Some("application/json"));
    assert!(serde_json::from_slice::<Value>(&answer.body).is_err());
    assert!(answer.body.starts_with(b"{\"access_token\":"));

    cxone.fail_next_token_requests(
        1,
        TokenFault::oauth_error(200, "invalid_grant", "key disabled"),
    );
    let answer = call(&cxone, good_token_request(&cxone)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["error"], "invalid_grant");
    assert_eq!(answer.json()["error_description"], "key disabled");

    let crlf = br#"{"access_token":"abc\r\nX-Injected: 1","token_type":"Bearer"}"#;
    cxone.fail_next_token_requests(
        1,
        TokenFault::body(&crlf[..]).with_content_type("application/json; charset=utf-8"),
    );
    let answer = call(&cxone, good_token_request(&cxone)).await;
    assert_eq!(&answer.body[..], &crlf[..]);
    assert_eq!(
        answer.header(CONTENT_TYPE),
        Some("application/json; charset=utf-8")
    );

    assert_eq!(cxone.stats().token_failed, 8);
    assert_eq!(cxone.stats().token_succeeded, 0);
}

#[tokio::test(start_paused = true)]
async fn a_huge_body_is_streamed_not_built() {
    let cxone = MockCxone::new();
    let two_gib = 2 * 1024 * 1024 * 1024;
    cxone.fail_next_token_requests(1, TokenFault::huge_body(two_gib));
    let response = cxone
        .router()
        .oneshot(good_token_request(&cxone))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_LENGTH],
        two_gib.to_string().as_str()
    );
    // Read a little over 1 MiB, as a capped client would, and stop.
    let mut body = response.into_body();
    let mut read = 0;
    while read <= 1024 * 1024 {
        let frame = body.frame().await.expect("more body").unwrap();
        read += frame.into_data().unwrap().len();
    }
    assert!(read > 1024 * 1024);
}

#[tokio::test(start_paused = true)]
async fn delays_run_on_tokios_clock() {
    let cxone = MockCxone::new();
    let delay = Duration::from_secs(30);

    // A slow fault answers normally, late: a shorter timeout fires first.
    cxone.fail_next_token_requests(1, TokenFault::slow(delay));
    let timed_out = tokio::time::timeout(
        delay - Duration::from_secs(1),
        call(&cxone, good_token_request(&cxone)),
    )
    .await;
    assert!(timed_out.is_err(), "the answer came before the delay");

    cxone.fail_next_token_requests(1, TokenFault::slow(delay));
    let started = tokio::time::Instant::now();
    let answer = call(&cxone, good_token_request(&cxone)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(started.elapsed() >= delay);
    assert!(started.elapsed() < delay + Duration::from_secs(1));

    // A fault's own delay comes before its answer.
    cxone.fail_next_token_requests(
        1,
        TokenFault::status(503).with_delay(Duration::from_secs(5)),
    );
    let started = tokio::time::Instant::now();
    assert_eq!(
        call(&cxone, good_token_request(&cxone)).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(started.elapsed() >= Duration::from_secs(5));

    // The general delay applies to every answer, faults on top of it.
    cxone.set_token_delay(Duration::from_secs(3));
    let started = tokio::time::Instant::now();
    assert_eq!(
        call(&cxone, good_token_request(&cxone)).await.status,
        StatusCode::OK
    );
    assert!(started.elapsed() >= Duration::from_secs(3));
    cxone.fail_next_token_requests(
        1,
        TokenFault::status(500).with_delay(Duration::from_secs(2)),
    );
    let started = tokio::time::Instant::now();
    call(&cxone, token_request(&cxone, "x", None)).await;
    assert!(started.elapsed() >= Duration::from_secs(5));

    cxone.set_token_delay(Duration::ZERO);
    let started = tokio::time::Instant::now();
    call(&cxone, good_token_request(&cxone)).await;
    assert_eq!(started.elapsed(), Duration::ZERO);

    // A token's lifetime starts when it is issued, after the delay.
    let lifetime = MockCxone::builder()
        .token_lifetime(Duration::from_secs(10))
        .token_delay(Duration::from_secs(8))
        .build();
    let token = fetch_token(&lifetime).await;
    tokio::time::advance(Duration::from_secs(9)).await;
    assert!(lifetime.is_token_active(&token));
}

#[tokio::test(start_paused = true)]
async fn the_api_rate_limit_knob_answers_429_with_retry_after() {
    let cxone = MockCxone::new();
    let token = cxone.issue_token();
    cxone.rate_limit_next_api_calls(2, Duration::from_secs(3));
    for _ in 0..2 {
        let answer = call(&cxone, api_request(&cxone, "v34.0/agents", Some(&token))).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.header(RETRY_AFTER), Some("3"));
    }
    assert_eq!(
        call(&cxone, api_request(&cxone, "v34.0/agents", Some(&token)))
            .await
            .status,
        StatusCode::OK
    );

    // The gateway limits before it looks at the token.
    cxone.rate_limit_next_api_calls(1, Duration::from_millis(100));
    let answer = call(&cxone, api_request(&cxone, "v34.0/server-time", None)).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.header(RETRY_AFTER), Some("1"));

    // CXone does not reliably send `Retry-After` on 429.
    cxone.rate_limit_next_api_calls(1, None);
    let answer = call(&cxone, api_request(&cxone, "v34.0/server-time", None)).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.header(RETRY_AFTER), None);

    cxone.rate_limit_next_api_calls(5, Duration::from_secs(1));
    cxone.rate_limit_next_api_calls(0, Duration::from_secs(1));
    assert_eq!(
        call(
            &cxone,
            api_request(&cxone, "v34.0/server-time", Some(&token))
        )
        .await
        .status,
        StatusCode::OK
    );

    let stats = cxone.stats();
    assert_eq!(stats.api_calls, 6);
    assert_eq!(stats.api_rate_limited, 4);
    assert_eq!(stats.api_ok, 2);
    assert_eq!(stats.api_unauthorized, 0);
}

#[tokio::test(start_paused = true)]
async fn tenant_discovery_answers_200_404_and_400() {
    let cxone = MockCxone::new();
    let discover = |query: &str| {
        get(format!(
            "{}/.well-known/cxone-configuration{query}",
            cxone.base_url()
        ))
    };

    let answer = call(&cxone, discover(&format!("?tenantId={TENANT_ID}"))).await;
    assert_eq!(answer.status, StatusCode::OK);
    let tenant = answer.json();
    assert_eq!(tenant["tenantId"], TENANT_ID);
    assert_eq!(tenant["api_endpoint"], cxone.api_endpoint());
    assert_eq!(tenant["api_endpoint"], mock::IN_MEMORY_BASE_URL);
    assert_eq!(tenant["area"], AREA);
    assert_eq!(tenant["cluster"], CLUSTER_ID);
    assert_eq!(tenant["private"], false);
    for field in [
        "domain",
        "acdDomain",
        "uhDomain",
        "ui_endpoint",
        "auth_endpoint",
    ] {
        assert!(tenant[field].is_string(), "{field}");
    }

    let upper = call(
        &cxone,
        discover(&format!("?tenantId={}", TENANT_ID.to_uppercase())),
    )
    .await;
    assert_eq!(
        upper.status,
        StatusCode::OK,
        "UUIDs compare case-insensitively"
    );

    let unknown = call(
        &cxone,
        discover("?tenantId=00000000-0000-4000-8000-000000000000"),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    for missing in ["", "?tenantId=", "?other=1"] {
        let answer = call(&cxone, discover(missing)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{missing:?}");
        assert_eq!(answer.json()["error"], "invalid_request");
    }

    // An area host answers without `tenantId`.
    let area_host = "https://na1.cxone.mock.invalid/.well-known/cxone-configuration";
    let answer = call(&cxone, get(area_host.to_owned())).await;
    assert_eq!(answer.status, StatusCode::OK);
    let area = answer.json();
    assert_eq!(
        (area["area"].as_str(), area["cluster"].as_str()),
        (Some(AREA), Some(CLUSTER_ID))
    );
    assert_eq!(area["api_endpoint"], cxone.api_endpoint());
    assert!(area.get("tenantId").is_none(), "{area}");
    let served_host = Request::get("/.well-known/cxone-configuration")
        .header(http::header::HOST, "NA1.nice-incontact.com")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&cxone, served_host).await.status, StatusCode::OK);
    let not_an_area = "https://eu1.cxone.mock.invalid/.well-known/cxone-configuration";
    assert_eq!(
        call(&cxone, get(not_an_area.to_owned())).await.status,
        StatusCode::BAD_REQUEST
    );

    // Cluster M32 belongs to area ca1.
    let elsewhere = MockCxone::builder()
        .tenant_id("22222222-2222-4222-8222-222222222222")
        .area("ca1")
        .cluster_id("M32")
        .api_endpoint("https://api-ca1.niceincontact.com/")
        .build();
    assert_eq!(
        elsewhere.api_endpoint(),
        "https://api-ca1.niceincontact.com"
    );
    let answer = call(
        &elsewhere,
        get(format!(
            "{}/.well-known/cxone-configuration?tenantId=22222222-2222-4222-8222-222222222222",
            elsewhere.base_url()
        )),
    )
    .await;
    assert_eq!(
        answer.json()["api_endpoint"],
        "https://api-ca1.niceincontact.com"
    );
    assert_eq!(answer.json()["area"], "ca1");
    assert_eq!(answer.json()["cluster"], "M32");
    let token = JwtClaims::from_jwt(&elsewhere.issue_token()).unwrap();
    assert_eq!(
        token.tenant_id(),
        Some("22222222-2222-4222-8222-222222222222")
    );
}

#[tokio::test(start_paused = true)]
async fn openid_discovery_points_at_the_token_endpoint() {
    let cxone = MockCxone::builder().grants([Grant::Password]).build();
    let answer = call(
        &cxone,
        get(format!(
            "{}/.well-known/openid-configuration",
            cxone.issuer()
        )),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let doc = answer.json();
    assert_eq!(doc["issuer"], cxone.issuer());
    assert_eq!(doc["token_endpoint"], cxone.token_url());
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(doc["scopes_supported"], serde_json::json!(["openid"]));
    // NICE's document has no `grant_types_supported`.
    assert!(doc.get("grant_types_supported").is_none(), "{doc}");
}

#[tokio::test(start_paused = true)]
async fn counters_and_records_reset() {
    let cxone = MockCxone::new();
    let token = fetch_token(&cxone).await;
    call(&cxone, api_request(&cxone, "v34.0/agents", Some(&token))).await;
    assert_ne!(cxone.stats(), Default::default());
    cxone.reset_stats();
    assert_eq!(cxone.stats(), Default::default());
    assert!(cxone.token_requests().is_empty());
    // Tokens survive a reset of the counters.
    assert!(cxone.is_token_active(&token));
}

#[tokio::test(start_paused = true)]
async fn clones_and_routers_share_one_state() {
    let cxone = MockCxone::new();
    let clone = cxone.clone();
    let token = fetch_token(&clone).await;
    assert!(cxone.is_token_active(&token));
    clone.fail_next_token_requests(1, TokenFault::status(500));
    assert_eq!(cxone.pending_token_faults(), 1);
    assert_eq!(cxone.stats(), clone.stats());
}

#[tokio::test(start_paused = true)]
async fn debug_output_never_shows_secrets_or_tokens() {
    let cxone = MockCxone::new();
    let token = fetch_token(&cxone).await;
    let form = format!("grant_type=client_credentials&{}", post_form_body());
    call(&cxone, token_request(&cxone, form, None)).await;
    let printed = format!(
        "{cxone:?} {:?} {:?} {:?}",
        MockCxone::builder()
            .client("id", "builder-secret")
            .access_key("k", "key-secret"),
        cxone.token_requests(),
        TokenFault::oauth_error(400, "invalid_grant", "x"),
    );
    let basic = basic_authorization(CLIENT_ID, CLIENT_SECRET);
    for secret in [
        CLIENT_SECRET,
        ACCESS_KEY_SECRET,
        "builder-secret",
        "key-secret",
        token.as_str(),
        basic.as_str(),
        &basic["Basic ".len()..],
    ] {
        assert!(!printed.contains(secret), "{secret:?} leaked in {printed}");
    }
    assert!(
        printed.contains(ACCESS_KEY_ID),
        "ids are not secret: {printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_a_loopback_socket() {
    let cxone = MockCxone::new();
    let server = cxone.serve().await.unwrap();
    let base = server.base_url();
    assert_eq!(base, format!("http://{}", server.local_addr()));
    assert!(base.starts_with("http://127.0.0.1:"));
    assert_eq!(
        cxone.base_url(),
        base,
        "the mock and its server share state"
    );

    let client = reqwest::Client::new();
    let doc: Value = client
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .bytes()
        .await
        .map(|body| serde_json::from_slice(&body).unwrap())
        .unwrap();
    assert_eq!(doc["issuer"], base);
    assert_eq!(doc["token_endpoint"], format!("{base}/auth/token"));

    let response = client
        .request(Method::POST, server.token_url())
        .header(AUTHORIZATION, basic_authorization(CLIENT_ID, CLIENT_SECRET))
        .header(CONTENT_TYPE, FORM)
        .body(password_form())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let claims = JwtClaims::from_jwt(body["access_token"].as_str().unwrap()).unwrap();
    // The token's `iss` is the issuer.
    assert_eq!(claims.issuer(), Some(base.as_str()));
    assert_eq!(server.stats().token_succeeded, 1);

    server.shutdown().await;
    assert_eq!(cxone.base_url(), mock::IN_MEMORY_BASE_URL);
    let refused = client
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await;
    assert!(refused.is_err(), "the server is gone: {refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_server_stops_it() {
    let server = MockCxone::new().serve().await.unwrap();
    let addr = server.local_addr();
    let mock = MockCxone::clone(&server);
    drop(server);
    assert_eq!(mock.base_url(), mock::IN_MEMORY_BASE_URL);
    // The listener closes once the server task sees the signal. The bound is
    // generous, only there so a regression fails instead of hanging.
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(closed.is_ok(), "{addr} still accepts connections");
}

#[test]
#[should_panic(expected = "HTTP status code")]
fn an_invalid_fault_status_is_a_programming_error() {
    let _ = TokenFault::status(1000);
}

#[tokio::test(start_paused = true)]
async fn an_oversized_token_request_gets_413() {
    let cxone = MockCxone::new();
    let body = "a".repeat(MAX_TOKEN_REQUEST_BYTES + 1);
    let basic = basic_authorization(CLIENT_ID, CLIENT_SECRET);
    let answer = call(&cxone, token_request(&cxone, body, Some(&basic))).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.json()["error"], "invalid_request");
    let stats = cxone.stats();
    assert_eq!((stats.token_requests, stats.token_failed), (1, 1));
}

/// Random bytes where a form, an Authorization header and a Content-Type go
/// (sometimes after valid fields): every answer is a token or a 400/401 with
/// an RFC 6749 error body, never a 5xx.
#[tokio::test(start_paused = true)]
async fn hostile_token_requests_get_errors_not_panics() {
    let cxone = MockCxone::new();
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let basic = basic_authorization(CLIENT_ID, CLIENT_SECRET);
    let alphabet = b"=&%+:/ abcXYZ019\xff\x80\x00";
    let random_bytes = |rng: &mut fastrand::Rng, len: usize, header: bool| -> Vec<u8> {
        (0..len)
            .map(|_| {
                let byte = alphabet[rng.usize(..alphabet.len())];
                // Header values may not hold NUL.
                if header && byte == 0 { b'x' } else { byte }
            })
            .collect()
    };
    const ROUNDS: u64 = 300;
    for round in 0..ROUNDS {
        let len = rng.usize(..120);
        let body = random_bytes(&mut rng, len, false);
        let body = match rng.u8(..3) {
            0 => body,
            1 => [b"grant_type=password&".as_slice(), &body].concat(),
            _ => [password_form().as_bytes(), b"&", &body].concat(),
        };
        let authorization = match rng.u8(..4) {
            0 => None,
            1 => Some(HeaderValue::from_str(&basic).unwrap()),
            2 => {
                let len = rng.usize(..60);
                let raw = random_bytes(&mut rng, len, true);
                use base64::Engine as _;
                let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
                Some(HeaderValue::from_str(&format!("Basic {encoded}")).unwrap())
            }
            _ => {
                let len = rng.usize(..60);
                let raw = random_bytes(&mut rng, len, true);
                Some(HeaderValue::from_bytes(&raw).unwrap())
            }
        };
        let mut request = Request::post(cxone.token_url());
        if rng.bool() {
            request = request.header(CONTENT_TYPE, FORM);
        }
        let mut request = request.body(Body::from(body.clone())).unwrap();
        if let Some(authorization) = authorization {
            request.headers_mut().insert(AUTHORIZATION, authorization);
        }
        let answer = call(&cxone, request).await;
        let json = answer.json();
        match answer.status.as_u16() {
            200 => assert!(json["access_token"].is_string(), "round {round}"),
            400 | 401 => assert!(json["error"].is_string(), "round {round}"),
            _ => panic!(
                "round {round}: {} for {:?}",
                answer.status,
                String::from_utf8_lossy(&body)
            ),
        }
    }
    let stats = cxone.stats();
    assert_eq!(stats.token_requests, ROUNDS);
    assert_eq!(stats.token_succeeded + stats.token_failed, ROUNDS);
    assert!(stats.token_failed > ROUNDS / 2, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn only_the_most_recent_token_requests_are_kept() {
    let cxone = MockCxone::new();
    let sent = MAX_RECORDED_TOKEN_REQUESTS + 5;
    for i in 0..sent {
        call(&cxone, token_request(&cxone, format!("n={i}"), None)).await;
    }
    let recorded = cxone.token_requests();
    assert_eq!(recorded.len(), MAX_RECORDED_TOKEN_REQUESTS);
    assert_eq!(recorded[0].form_value("n"), Some("5"));
    let last = (sent - 1).to_string();
    assert_eq!(
        recorded.last().unwrap().form_value("n"),
        Some(last.as_str())
    );
    assert_eq!(cxone.stats().token_requests, sent as u64);
}
