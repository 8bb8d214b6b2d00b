//! The access key and refresh flows against the mock CXone, in memory on paused
//! time: the access key alone (JSON, by area or URL), refresh and id tokens
//! kept and the opt-in refresh grant, and scopes and 403s that tell the truth.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cxone_auth::mock::{
    ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLIENT_ID, CLIENT_SECRET, MockCxone, TENANT_ID, TokenFault,
};
use cxone_auth::token::{AccessKeyGrant, AccessKeyOnly, JwtClaims, ServiceTransport};
use cxone_auth::{ErrorKind, OAuthErrorCode, TokenCache, TokenSource as _};
use serde_json::{Value, json};

fn alone(mock: &MockCxone, url: &str) -> AccessKeyOnly {
    AccessKeyOnly::new(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        .unwrap()
        .token_url(url)
        .unwrap()
        .transport(ServiceTransport::new(mock.router()))
}

fn refreshing(mock: &MockCxone) -> AccessKeyGrant {
    AccessKeyGrant::new(CLIENT_ID, CLIENT_SECRET, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        .unwrap()
        .token_url(mock.token_url())
        .unwrap()
        .transport(ServiceTransport::new(mock.router()))
        .use_refresh_tokens(true)
}

fn jwt(claims: &Value) -> String {
    format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

#[tokio::test(start_paused = true)]
async fn the_access_key_alone_posts_json_and_reads_the_answer() {
    let mock = MockCxone::new();
    let token = alone(&mock, &mock.access_key_url()).fetch().await.unwrap();
    let [request] = &mock.token_requests()[..] else {
        panic!("one request")
    };
    assert_eq!(request.content_type().as_deref(), Some("application/json"));
    assert_eq!(request.authorization(), None, "no app, no Basic");
    let body: Value = serde_json::from_slice(request.body()).unwrap();
    let sent = json!({ "accessKeyId": ACCESS_KEY_ID, "accessKeySecret": ACCESS_KEY_SECRET });
    assert_eq!(body, sent);
    assert!(!format!("{request:?}").contains(ACCESS_KEY_SECRET));

    assert_eq!(token.lifetime(), Duration::from_secs(3600));
    assert!(token.refresh_token().is_some() && token.id_token().is_some());
    assert_eq!(token.tenant_id(), Some(TENANT_ID));
    assert!(token.scopes().is_empty(), "CXone names no scope");
    assert_eq!(token.resource_server_base_uri(), None);
    let debug = format!("{token:?}");
    for secret in [token.refresh_token(), token.id_token()] {
        assert!(!debug.contains(secret.unwrap()), "{debug}");
    }

    // The older host's path answers the same, with the API base.
    let legacy = format!(
        "{}/InContactAuthorizationServer/token/access-key",
        mock.base_url()
    );
    let token = alone(&mock, &legacy).fetch().await.unwrap();
    let base = format!("{}/inContactAPI/", mock.api_endpoint());
    assert_eq!(token.resource_server_base_uri(), Some(base.as_str()));
}

#[test]
fn areas_choose_the_endpoint_and_an_unknown_one_is_a_config_error() {
    for area in ["na1", "na2", "au1", "eu1", "uk1", "ca1", "JP1"] {
        let source = AccessKeyOnly::new("KEY", "s").unwrap().area(area).unwrap();
        let url = source
            .token_endpoint()
            .unwrap()
            .token_url()
            .unwrap()
            .as_str();
        let expected = format!(
            "https://{}.nice-incontact.com/authentication/v1/token/access-key",
            area.to_lowercase()
        );
        assert_eq!(url, expected);
    }
    let default = AccessKeyOnly::new("KEY", "s").unwrap();
    let url = default.token_endpoint().unwrap().token_url().unwrap();
    assert_eq!(url.host_str(), Some("na1.nice-incontact.com"));
    let err = default.area("xx9").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("use one of na1, na2"), "{err}");
    let padded = AccessKeyOnly::new("KEY", "hunter2\n").unwrap_err();
    assert!(
        padded
            .to_string()
            .contains("access key secret has leading/trailing whitespace")
    );
    assert!(!format!("{padded} {padded:?}").contains("hunter2"));
}

#[test]
fn from_lookup_reads_the_area_or_the_token_url() {
    let vars = |extra: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            let base = [
                ("CXONE_ACCESS_KEY_ID", "KEY"),
                ("CXONE_ACCESS_KEY_SECRET", "c2VjcmV0===="),
            ];
            let found = base.iter().chain(extra).find(|(n, _)| *n == name);
            found.map(|(_, value)| (*value).to_owned())
        }
    };
    let host = |source: AccessKeyOnly| {
        let url = source
            .token_endpoint()
            .unwrap()
            .token_url()
            .unwrap()
            .clone();
        url.host_str().unwrap().to_owned()
    };
    assert_eq!(
        host(AccessKeyOnly::from_lookup(vars(&[])).unwrap()),
        "na1.nice-incontact.com"
    );
    let uk = AccessKeyOnly::from_lookup(vars(&[("CXONE_AREA", "uk1")])).unwrap();
    assert_eq!(host(uk), "uk1.nice-incontact.com");
    const LEGACY: [(&str, &str); 1] = [(
        "CXONE_TOKEN_URL",
        "https://api.incontact.com/InContactAuthorizationServer/token/access-key",
    )];
    let legacy = AccessKeyOnly::from_lookup(vars(&LEGACY)).unwrap();
    assert_eq!(host(legacy), "api.incontact.com");
    assert_eq!(
        AccessKeyOnly::from_lookup(vars(&[]))
            .unwrap()
            .access_key_id(),
        "KEY"
    );
    for (extra, says) in [
        (
            &[("CXONE_AREA", "mars1")][..],
            "unknown CXone area \"mars1\"",
        ),
        (
            &[("CXONE_ISSUER", "https://cxone.niceincontact.com")][..],
            "CXONE_AREA or CXONE_TOKEN_URL",
        ),
        (
            &[
                ("CXONE_AREA", "na1"),
                ("CXONE_TOKEN_URL", "https://a.example.com/t"),
            ][..],
            "not both",
        ),
    ] {
        let err = AccessKeyOnly::from_lookup(vars(extra)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains(says), "{err}");
        assert!(!err.to_string().contains("c2VjcmV0"));
    }
}

#[tokio::test(start_paused = true)]
async fn the_access_key_endpoint_refuses_bad_input_with_typed_errors() {
    let mock = MockCxone::builder()
        .access_key(ACCESS_KEY_ID, "other")
        .build();
    let source = alone(&mock, &mock.access_key_url());
    let err = source.fetch().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::GrantRejected);
    assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));
    assert!(!format!("{err} {err:?}").contains(&ACCESS_KEY_SECRET[..12]));

    let opaque = r#""access_token":"tok","token_type":"Bearer""#;
    for (answer, says) in [
        (
            r#"{"token_type":"Bearer","expires_in":3600}"#.to_owned(),
            "no string `access_token`",
        ),
        (
            format!(r#"{{{opaque},"id_token":"not-a-jwt"}}"#),
            "`id_token` is not a JWT",
        ),
        (
            format!(r#"{{{opaque},"resource_server_base_uri":"http://api-c7.incontact.com/"}}"#),
            "must use https",
        ),
    ] {
        mock.fail_next_token_requests(1, TokenFault::body(answer));
        let err = source.fetch().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);
        assert!(err.to_string().contains(says), "{err}");
    }
}

#[tokio::test(start_paused = true)]
async fn refresh_mode_uses_the_refresh_token_then_falls_back_on_invalid_grant() {
    let mock = MockCxone::new();
    let source = refreshing(&mock);
    let first = source.fetch().await.unwrap();
    let refresh = first.refresh_token().unwrap().to_owned();
    let claims = JwtClaims::from_jwt(&refresh).expect("a JWT-shaped refresh token");
    assert_eq!(claims.exp().unwrap() - claims.iat().unwrap(), 7200);

    let second = source.fetch().await.unwrap();
    let sent = mock.token_requests().pop().unwrap();
    assert_eq!(sent.form_value("grant_type"), Some("refresh_token"));
    assert_eq!(sent.form_value("scope"), Some("openid"));
    assert_eq!(sent.form_value("refresh_token"), Some(refresh.as_str()));
    assert!(
        sent.basic_credentials().is_some(),
        "the client still authenticates"
    );
    assert!(!format!("{sent:?}").contains(&refresh));
    assert!(!second.same_token(&first));

    // A server that echoes the refresh token in an error: redacted.
    let refresh = second.refresh_token().unwrap().to_owned();
    let echo = format!("refresh token {refresh} is malformed");
    mock.fail_next_token_requests(1, TokenFault::oauth_error(400, "invalid_request", &echo));
    let err = source.fetch().await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains(&refresh), "{err}");
    // A server without the refresh grant: the full grant.
    mock.fail_next_token_requests(1, TokenFault::oauth_error(400, "unauthorized_client", "no"));
    source.fetch().await.unwrap();

    // Past the refresh token's 7200 s: refused, so the full grant.
    tokio::time::advance(Duration::from_secs(7201)).await;
    source.fetch().await.unwrap();
    let grants: Vec<_> = mock
        .token_requests()
        .iter()
        .map(|r| r.form_value("grant_type").unwrap().to_owned())
        .collect();
    assert_eq!(
        grants,
        [
            "password",
            "refresh_token",
            "refresh_token",
            "refresh_token",
            "password",
            "refresh_token",
            "password"
        ]
    );

    // Off by default: the grant every time.
    mock.reset_stats();
    let plain = refreshing(&mock).use_refresh_tokens(false);
    plain.fetch().await.unwrap();
    plain.fetch().await.unwrap();
    let grants: Vec<_> = mock
        .token_requests()
        .iter()
        .map(|r| r.form_value("grant_type").unwrap().to_owned())
        .collect();
    assert_eq!(grants, ["password", "password"]);
}

#[tokio::test(start_paused = true)]
async fn a_refresh_answer_without_a_refresh_token_keeps_the_old_one() {
    let mock = MockCxone::new();
    let source = refreshing(&mock);
    let refresh = source
        .fetch()
        .await
        .unwrap()
        .refresh_token()
        .unwrap()
        .to_owned();
    let answer = r#"{"access_token":"rotated","token_type":"Bearer","expires_in":3600}"#;
    mock.fail_next_token_requests(1, TokenFault::body(answer));
    let token = source.fetch().await.unwrap();
    assert_eq!(token.refresh_token(), Some(refresh.as_str()));
    source.fetch().await.unwrap();
    let sent = mock.token_requests().pop().unwrap();
    assert_eq!(sent.form_value("refresh_token"), Some(refresh.as_str()));
}

#[tokio::test(start_paused = true)]
async fn the_cache_refreshes_with_the_refresh_token_at_the_refresh_point() {
    let mock = MockCxone::new();
    let tokens = TokenCache::new(refreshing(&mock));
    let first = tokens.token().await.unwrap();
    tokio::time::advance(first.lifetime() + Duration::from_secs(1)).await;
    let second = tokens.token().await.unwrap();
    assert!(!second.same_token(&first));
    let sent = mock.token_requests().pop().unwrap();
    assert_eq!(sent.form_value("grant_type"), Some("refresh_token"));
    assert!(mock.is_token_active(second.secret()));
}

#[tokio::test(start_paused = true)]
async fn the_tenant_comes_from_the_id_token_when_the_access_token_has_none() {
    let mock = MockCxone::new();
    let source = alone(&mock, &mock.access_key_url());
    let id_token = jwt(&json!({ "tenantId": TENANT_ID, "sub": "user:1" }));
    let answer = json!({ "access_token": "opaque", "token_type": "Bearer", "id_token": id_token });
    mock.fail_next_token_requests(1, TokenFault::body(answer.to_string()));
    let token = source.fetch().await.unwrap();
    assert!(token.claims().is_none());
    assert_eq!(token.tenant_id(), Some(TENANT_ID));
    let tenant = source.discover_tenant(&token).await.unwrap();
    assert_eq!(tenant.tenant_id(), Some(TENANT_ID));

    // The access token's own claim wins.
    let access = jwt(&json!({ "tenantId": "from-access-token" }));
    let answer = json!({ "access_token": access, "id_token": id_token });
    mock.fail_next_token_requests(1, TokenFault::body(answer.to_string()));
    assert_eq!(
        source.fetch().await.unwrap().tenant_id(),
        Some("from-access-token")
    );
}

#[tokio::test(start_paused = true)]
async fn scopes_are_what_was_granted_and_a_403_points_at_the_role() {
    let mock = MockCxone::new();
    let source = refreshing(&mock)
        .use_refresh_tokens(false)
        .scopes(["openid", "agents:read"]);
    let answer = r#"{"access_token":"tok","token_type":"Bearer","expires_in":3600}"#;
    mock.fail_next_token_requests(1, TokenFault::body(answer));
    let token = source.fetch().await.unwrap();
    assert!(
        token.scopes().is_empty(),
        "requested scopes are not granted scopes"
    );

    mock.fail_next_token_requests(
        1,
        TokenFault::body(r#"{"message":"forbidden"}"#).with_status(403),
    );
    let err = source.fetch().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("role of the CXone user who owns the access key"),
        "{text}"
    );
    assert_ne!(err.kind(), ErrorKind::InvalidScope);
}
