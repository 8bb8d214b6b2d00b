//! The whole story in one screen: a token fetched once and shared, tenant
//! discovery, API reads through the layer, a revoked token recovered by one
//! refresh, a 429 waited out, and the counters.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! With no credentials in the environment it starts the embedded mock CXone on
//! 127.0.0.1. With `CXONE_CLIENT_ID`, `CXONE_CLIENT_SECRET`,
//! `CXONE_ACCESS_KEY_ID` and `CXONE_ACCESS_KEY_SECRET` set (and optionally
//! `CXONE_ISSUER` or `CXONE_TOKEN_URL`, `CXONE_SCOPES`) it does the same reads
//! against real CXone, without the fault injection. With only
//! `CXONE_ACCESS_KEY_ID` and `CXONE_ACCESS_KEY_SECRET` (and optionally
//! `CXONE_AREA`, default na1) it uses the access key alone.

use std::error::Error as StdError;
use std::time::{Duration, Instant};

use cxone_auth::mock::{
    ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLIENT_ID, CLIENT_SECRET, MockCxone, MockServer,
};
use cxone_auth::token::OAuthSource;
use cxone_auth::{
    AccessKeyGrant, AccessKeyOnly, CacheStats, CxoneAuthLayer, CxoneRetryLayer, TokenCache,
    TokenSource,
};
use tower::{BoxError, ServiceBuilder, ServiceExt as _};

const API: &str = "inContactAPI/services/v34.0";

#[tokio::main]
async fn main() -> Result<(), Box<dyn StdError + Send + Sync>> {
    // 1. A token source: CXone's access key flow, against real CXone or the mock.
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    let mut mock = None;
    let stats = if set("CXONE_CLIENT_ID") {
        println!("Using real CXone (an app and an access key from CXONE_* variables)");
        run(AccessKeyGrant::from_env()?, None, Duration::from_secs(1)).await?
    } else if set("CXONE_ACCESS_KEY_ID") && set("CXONE_ACCESS_KEY_SECRET") {
        println!("Using real CXone (the access key alone, area from CXONE_AREA, default na1)");
        run(AccessKeyOnly::from_env()?, None, Duration::from_secs(1)).await?
    } else {
        let server = mock.insert(MockCxone::new().serve().await?);
        println!(
            "No CXONE_* credentials: using the embedded mock CXone at {}",
            server.base_url()
        );
        let source =
            AccessKeyGrant::new(CLIENT_ID, CLIENT_SECRET, ACCESS_KEY_ID, ACCESS_KEY_SECRET)?
                .token_url(server.token_url())?;
        run(source, Some(&*server), Duration::from_secs(1)).await?
    };
    println!(
        "Cache: {} fetches, {} hits, {} waits, {} invalidations, {} refreshes ahead, {} failures",
        stats.fetches,
        stats.hits,
        stats.waits,
        stats.invalidations,
        stats.refreshes_ahead,
        stats.fetch_failures
    );
    if let Some(mock) = &mock {
        let seen = mock.stats();
        println!(
            "Mock CXone saw: {} token requests, {} API calls ({} ok, {} unauthorized, {} rate limited)",
            seen.token_requests,
            seen.api_calls,
            seen.api_ok,
            seen.api_unauthorized,
            seen.api_rate_limited
        );
    }
    Ok(())
}

/// The story, against `source`; on the mock, also a revoked token and a 429
/// with `Retry-After: retry_after`. Returns the cache's counters.
async fn run<G>(
    source: OAuthSource<G>,
    mock: Option<&MockServer>,
    retry_after: Duration,
) -> Result<CacheStats, BoxError>
where
    OAuthSource<G>: TokenSource + Clone,
{
    // 2. One cache per credential, shared by every client.
    let tokens = TokenCache::new(source.clone());
    let token = tokens.token().await?;
    let scopes = token.scopes().join(" ");
    println!(
        "Token fetched: expires in {} s, scopes granted: {}, tenant {}",
        token.lifetime().as_secs(),
        if scopes.is_empty() {
            "(none listed)"
        } else {
            &scopes
        },
        token.tenant_id().unwrap_or("unknown"),
    );

    // 3. Where the tenant's API lives.
    let tenant = source.discover_tenant(&token).await?;
    let api = tenant.api_endpoint().clone();
    println!("Tenant discovery: API endpoint {api}");

    // 4. Any tower HTTP client, here reqwest's, with retry outside auth.
    let client = ServiceBuilder::new()
        .layer(CxoneRetryLayer::default())
        .layer(CxoneAuthLayer::new(tokens.clone()).allow_loopback_http(mock.is_some()))
        .service(reqwest::Client::new());
    let get = |path: &str| {
        let url = api
            .join(&format!("{API}/{path}"))
            .expect("a valid API path");
        client
            .clone()
            .oneshot(reqwest::Request::new(reqwest::Method::GET, url))
    };

    let time = get("server-time").await?;
    println!(
        "GET server-time -> {} {}",
        time.status(),
        time.text().await?.trim()
    );

    let started = Instant::now();
    let reads: Vec<_> = (0..100).map(|_| get("agents?top=5")).collect();
    let ok = futures::future::join_all(reads)
        .await
        .into_iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.status().is_success()))
        .count();
    println!(
        "100 concurrent GET agents -> {ok} succeeded in {} ms, token fetches so far: {}",
        started.elapsed().as_millis(),
        tokens.stats().fetches
    );

    if let Some(mock) = mock {
        faults(mock, &get, retry_after).await?;
    }
    Ok(tokens.stats())
}

/// What the layers do when things go wrong, shown on the mock.
async fn faults<F, Fut>(mock: &MockServer, get: &F, retry_after: Duration) -> Result<(), BoxError>
where
    F: Fn(&str) -> Fut,
    Fut: std::future::Future<Output = Result<reqwest::Response, BoxError>>,
{
    mock.revoke_all();
    let response = get("agents?top=1").await?;
    println!(
        "Token revoked by the server -> GET agents {} after one refresh and one replay ({} token requests in all)",
        response.status(),
        mock.stats().token_requests
    );

    mock.rate_limit_next_api_calls(1, retry_after);
    let started = Instant::now();
    let response = get("server-time").await?;
    println!(
        "429 with Retry-After: {} -> GET server-time {} after {:.1} s",
        retry_after.as_secs(),
        response.status(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tells_the_story_against_the_mock() {
        let mock = MockCxone::new().serve().await.unwrap();
        let source =
            AccessKeyGrant::new(CLIENT_ID, CLIENT_SECRET, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
                .unwrap()
                .token_url(mock.token_url())
                .unwrap();
        // Retry-After: 0, so the test waits for nothing.
        let stats = run(source, Some(&mock), Duration::ZERO).await.unwrap();
        assert_eq!(
            stats.fetches, 2,
            "one token, one refresh after the revocation"
        );
        assert_eq!(stats.invalidations, 1);
        let seen = mock.stats();
        assert_eq!(seen.token_requests, 2);
        assert_eq!((seen.api_unauthorized, seen.api_rate_limited), (1, 1));
        assert_eq!(
            seen.api_ok, 103,
            "server-time, 100 agents reads, and the two replays"
        );
    }

    #[tokio::test]
    async fn tells_the_story_with_the_access_key_alone() {
        let mock = MockCxone::new().serve().await.unwrap();
        let source = AccessKeyOnly::new(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
            .unwrap()
            .token_url(mock.access_key_url())
            .unwrap();
        let stats = run(source, Some(&mock), Duration::ZERO).await.unwrap();
        assert_eq!((stats.fetches, stats.invalidations), (2, 1));
        let sent = mock.token_requests();
        assert_eq!(sent[0].content_type().as_deref(), Some("application/json"));
    }
}
