//! Secrets audit: the quickstart's flow, with every `tracing` event and span
//! at TRACE captured, must leave no secret and no token in the log.
//!
//! The flow, against the in-memory mock CXone: tokens from the access key
//! grant, API reads through the retry and auth layers, a revoked token
//! replaced after a 401, a 429 waited out, tenant discovery, a token
//! endpoint that answers a token it must not be trusted with, and a source
//! with a wrong secret. `Debug` of every value the flow handles is logged
//! too. Then the log is searched for the client secret, the access key
//! secret, their url-encoded forms, the Basic header value and its base64,
//! and every token and part of a token.

use std::time::Duration;

use crate::support::{basic_authorization, capture_logs, form_encode};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use bytes::Bytes;
use cxone_auth::mock::{
    ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLIENT_ID, CLIENT_SECRET, MockCxone, TokenFault,
};
use cxone_auth::token::{AccessKeyGrant, AccessKeyOnly, ServiceTransport};
use cxone_auth::{CxoneAuthLayer, CxoneRetryLayer, ErrorKind, TokenCache, TokenSource as _};
use http::{Request, StatusCode};
use http_body_util::Empty;
use tower::{BoxError, ServiceBuilder, ServiceExt as _};

/// A token the token endpoint sends with a token type the crate refuses: it
/// must not be quoted in the error that says so.
const REFUSED_TOKEN: &str = "refused-token-9f8e7d6c5b4a39281706f5e4d3c2b1a0";

/// A client secret the mock does not accept.
const WRONG_SECRET: &str = "wrong+client/secret==";

fn access_key_grant(mock: &MockCxone, client_secret: &str) -> AccessKeyGrant {
    AccessKeyGrant::new(CLIENT_ID, client_secret, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        .unwrap()
        .token_url(mock.token_url())
        .unwrap()
        .transport(ServiceTransport::new(mock.router()))
}

#[tokio::test(start_paused = true)]
async fn the_quickstart_flow_logs_no_secret_and_no_token() {
    let (captured, capture) = capture_logs();

    // The API on a CXone host (the mock answers in memory, no DNS), so a
    // 401 from it costs the token.
    let mock = MockCxone::builder()
        .api_endpoint("https://api-na1.niceincontact.com")
        .build();
    let source = access_key_grant(&mock, CLIENT_SECRET);
    let tokens = TokenCache::new(source.clone());
    let client = ServiceBuilder::new()
        .layer(CxoneRetryLayer::default())
        .layer(CxoneAuthLayer::new(tokens.clone()))
        .service(mock.router());
    let read = |path: &str| {
        Request::get(format!(
            "{}/inContactAPI/services/v34.0/{path}",
            mock.api_endpoint()
        ))
        .body(Empty::<Bytes>::new())
        .unwrap()
    };
    let mut seen_tokens = Vec::new();

    // API reads with a fresh token.
    for path in ["agents?top=3", "server-time"] {
        let response = client.clone().oneshot(read(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let first = tokens.cached().unwrap();

    // The token is revoked: a 401, one refresh, one replay.
    mock.revoke_all();
    let response = client.clone().oneshot(read("server-time")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let second = tokens.cached().unwrap();
    assert!(!second.same_token(&first));

    // A 429 is waited out.
    mock.rate_limit_next_api_calls(1, Duration::from_secs(2));
    let response = client.clone().oneshot(read("agents")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Tenant discovery with the token's tenantId.
    let tenant = source.discover_tenant(&second).await.unwrap();
    assert_eq!(
        tenant.api_endpoint().as_str().trim_end_matches('/'),
        mock.api_endpoint()
    );

    // The token endpoint sends a token with a type the crate refuses.
    mock.fail_next_token_requests(
        1,
        TokenFault::body(format!(
            r#"{{"access_token":"{REFUSED_TOKEN}","token_type":"mac","expires_in":3600}}"#
        )),
    );
    let refused = source.fetch().await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidResponse);

    // A source with a wrong client secret.
    let wrong = access_key_grant(&mock, WRONG_SECRET);
    let rejected = wrong.fetch().await.unwrap_err();
    assert_eq!(rejected.kind(), ErrorKind::InvalidCredentials);
    let rejected_through_the_stack: BoxError = ServiceBuilder::new()
        .layer(CxoneRetryLayer::default())
        .layer(CxoneAuthLayer::new(TokenCache::new(wrong.clone())))
        .service(mock.router())
        .oneshot(read("agents"))
        .await
        .unwrap_err();

    // The access key alone, and a source in refresh mode (its second fetch
    // sends the refresh token).
    let alone = AccessKeyOnly::new(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        .unwrap()
        .token_url(mock.access_key_url())
        .unwrap()
        .transport(ServiceTransport::new(mock.router()));
    let alone_token = alone.fetch().await.unwrap();
    let refreshing = access_key_grant(&mock, CLIENT_SECRET).use_refresh_tokens(true);
    let before_refresh = refreshing.fetch().await.unwrap();
    let refreshed = refreshing.fetch().await.unwrap();
    let requests = mock.token_requests();
    let mut kept = Vec::new();
    for token in [&first, &second, &alone_token, &before_refresh, &refreshed] {
        seen_tokens.push(token.secret().to_owned());
        kept.extend(token.refresh_token().map(str::to_owned));
        kept.extend(token.id_token().map(str::to_owned));
    }
    assert_eq!(kept.len(), 10, "each token keeps its refresh and id token");

    // Everything the flow handled, as `Debug` shows it.
    tracing::trace!(
        ?alone,
        ?alone_token,
        ?refreshing,
        ?refreshed,
        ?requests,
        ?source,
        ?wrong,
        ?tokens,
        ?first,
        ?second,
        ?tenant,
        ?refused,
        ?rejected,
        ?rejected_through_the_stack,
        client = ?client,
        "the flow's values"
    );
    tracing::trace!(%refused, %rejected, %rejected_through_the_stack, "the flow's errors");
    drop(capture);

    let log = captured.text();
    // The log is there, and it is detailed: the fetches, the discovery, the
    // errors.
    for expected in [
        "token_fetch",
        "cxone_auth.fetch_token",
        "cxone_auth.discover_tenant",
        "invalid_client",
        "not Bearer",
        "TRACE",
    ] {
        assert!(log.contains(expected), "the log has no {expected:?}");
    }

    let basic = basic_authorization(CLIENT_ID, CLIENT_SECRET);
    let mut secrets = vec![
        CLIENT_SECRET.to_owned(),
        ACCESS_KEY_SECRET.to_owned(),
        form_encode(CLIENT_SECRET),
        form_encode(ACCESS_KEY_SECRET),
        WRONG_SECRET.to_owned(),
        form_encode(WRONG_SECRET),
        basic.clone(),
        basic.trim_start_matches("Basic ").to_owned(),
        basic_authorization(CLIENT_ID, WRONG_SECRET),
        STANDARD.encode(CLIENT_SECRET),
        REFUSED_TOKEN.to_owned(),
    ];
    // The distinctive middles of the secrets, in case a log cut them.
    secrets.push(ACCESS_KEY_SECRET[2..ACCESS_KEY_SECRET.len() - 4].to_owned());
    secrets.push("client secret".to_owned());
    for token in seen_tokens.iter().chain(&kept) {
        secrets.push(token.clone());
        secrets.push(format!("Bearer {token}"));
        // Each part of the JWT: a payload or signature alone is a leak too.
        secrets.extend(
            token
                .split('.')
                .filter(|part| part.len() >= 16)
                .map(str::to_owned),
        );
    }
    assert_eq!(seen_tokens.len(), 5);
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log holds a secret ({} bytes long)",
            secret.len()
        );
    }
    println!("{} bytes of TRACE log, no secret in it", log.len());
}

/// A token endpoint whose `error` and `error_description`
/// quote the secrets, as they are, url-encoded, in base64, as the Basic
/// credentials, or cut off at the description's length limit. None of it
/// may reach the error's `Display` or `Debug`, or the log.
#[tokio::test(start_paused = true)]
async fn secrets_a_token_endpoint_echoes_are_redacted() {
    let (captured, _capture) = capture_logs();

    let secret = "s3cret+with/odd=chars and space";
    let mock = MockCxone::builder().client(CLIENT_ID, secret).build();
    let basic = basic_authorization(CLIENT_ID, secret);
    let basic_base64 = basic.strip_prefix("Basic ").unwrap().trim_end_matches('=');
    let forms = [
        secret.to_owned(),
        form_encode(secret),
        STANDARD.encode(secret),
        ACCESS_KEY_SECRET.to_owned(),
        form_encode(ACCESS_KEY_SECRET),
        STANDARD.encode(ACCESS_KEY_SECRET),
        basic_base64.to_owned(),
        // Plain, as NICE documents and the crate sends by default.
        STANDARD_NO_PAD.encode(format!("{CLIENT_ID}:{secret}")),
    ];
    // Cut at 256 characters after "you sent " and the first 8 of the secret.
    let cut = format!("{}{secret}", "x".repeat(256 - 9 - 8));
    for echoed in forms.iter().chain([&cut]) {
        let description = format!("you sent {echoed} (Authorization: {basic})");
        mock.fail_next_token_requests(1, TokenFault::oauth_error(400, echoed, &description));
        let source = access_key_grant(&mock, secret);
        let error = source.fetch().await.unwrap_err();
        let text = format!("{error} {error:?} {:?}", error.oauth_description());
        let log = captured.text();
        for form in &forms {
            assert!(!text.contains(form.as_str()), "{form:?} in {text}");
            assert!(!log.contains(form.as_str()), "{form:?} in the log");
        }
        assert!(!text.contains(&secret[..8]), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }

    // The access key alone: its secret echoed, as it is, url-encoded or in base64.
    let alone = AccessKeyOnly::new(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        .unwrap()
        .token_url(mock.access_key_url())
        .unwrap()
        .transport(ServiceTransport::new(mock.router()));
    for echoed in &forms[3..6] {
        let description = format!("you sent {echoed}");
        mock.fail_next_token_requests(1, TokenFault::oauth_error(400, echoed, &description));
        let error = alone.fetch().await.unwrap_err();
        let text = format!("{error} {error:?}");
        let log = captured.text();
        for form in &forms[3..6] {
            assert!(!text.contains(form.as_str()), "{form:?} in {text}");
            assert!(!log.contains(form.as_str()), "{form:?} in the log");
        }
        assert!(text.contains("[redacted]"), "{text}");
    }
}
