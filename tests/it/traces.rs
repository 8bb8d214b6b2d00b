//! What the crate traces, and that no secret or token is ever in it.
//!
//! A test binary of its own, its tests one at a time: `tracing` caches per
//! callsite whether anyone listens, globally, so a test elsewhere hitting the
//! same callsites with no subscriber could hide the spans captured here.

use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::support::{basic_authorization, capture_logs, form_encode, mock_grant};
use cxone_auth::mock::{ACCESS_KEY_SECRET, CLIENT_ID, CLIENT_SECRET, MockCxone, TokenFault};
use cxone_auth::{TokenCache, TokenSource as _};

/// Runs `test` on a paused current-thread runtime with everything at TRACE
/// captured, and returns what was logged.
fn capture<F: Future<Output = ()>>(test: impl FnOnce() -> F) -> String {
    let (captured, _capture) = capture_logs();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(test());
    captured.text()
}

/// The secrets, their url-encoded forms and the Basic credentials.
fn assert_no_secret(logs: &str, tokens: &[String]) {
    let basic = basic_authorization(CLIENT_ID, CLIENT_SECRET);
    let secrets = [
        CLIENT_SECRET.to_owned(),
        ACCESS_KEY_SECRET.to_owned(),
        form_encode(CLIENT_SECRET),
        form_encode(ACCESS_KEY_SECRET),
        basic.trim_start_matches("Basic ").to_owned(),
    ];
    for secret in secrets.iter().chain(tokens) {
        assert!(
            !logs.contains(secret.as_str()),
            "{secret:?} leaked into {logs}"
        );
    }
    assert!(!logs.contains("Bearer"), "a header leaked into {logs}");
}

#[test]
fn token_fetches_and_tenant_discovery_are_traced_without_secrets() {
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&tokens);
    let logs = capture(|| async move {
        let mock = MockCxone::new();
        let source = mock_grant(&mock).scopes(["openid"]);
        let token = source.fetch().await.unwrap();
        seen.lock().unwrap().push(token.secret().to_owned());
        mock.fail_next_token_requests(1, TokenFault::oauth_error(401, "invalid_client", "no"));
        source.fetch().await.unwrap_err();
        source.discover_tenant(&token).await.unwrap();
    });

    assert_no_secret(&logs, &tokens.lock().unwrap());
    for expected in [
        r#"cxone_auth.fetch_token{grant="password" host="cxone.mock.invalid" duration_ms=0 outcome="ok" scopes="openid"}"#,
        r#"cxone_auth.fetch_token{grant="password" host="cxone.mock.invalid" duration_ms=0 outcome=InvalidCredentials}"#,
        r#"cxone_auth.discover_tenant{host="cxone.mock.invalid" outcome="ok" area="na1"}"#,
    ] {
        assert!(logs.contains(expected), "{expected} not in {logs}");
    }
}

#[test]
fn cache_fetches_are_traced_without_the_token() {
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&tokens);
    let logs = capture(|| async move {
        let mock = MockCxone::new();
        let cache = TokenCache::new(mock_grant(&mock).scopes(["openid", "offline"]));
        let token = cache.token().await.unwrap();
        seen.lock().unwrap().push(token.secret().to_owned());
        mock.fail_next_token_requests(1, TokenFault::status(503));
        cache.invalidate(&token);
        assert!(cache.token().await.is_err());
        tokio::task::yield_now().await;
    });

    assert_no_secret(&logs, &tokens.lock().unwrap());
    for expected in [
        "token_fetch",
        "token obtained",
        "lifetime_s=3600",
        "scopes=openid offline",
        "outcome=\"ok\"",
        "outcome=\"error\"",
        "reason=\"invalidated\"",
        "HTTP 503",
    ] {
        assert!(logs.contains(expected), "{expected} not in {logs}");
    }
}
