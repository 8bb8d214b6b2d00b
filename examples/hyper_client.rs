//! `hyper_util`'s legacy client under a `ServiceBuilder`: the retry layer
//! outside, the auth layer inside, and tenant routing, so requests carry only
//! a path and go to the tenant's API host.
//!
//! ```text
//! # against a mock CXone on 127.0.0.1 (no credentials needed)
//! cargo run --example hyper_client --features mock
//! # against your tenant
//! CXONE_CLIENT_ID=.. CXONE_CLIENT_SECRET=.. CXONE_ACCESS_KEY_ID=.. CXONE_ACCESS_KEY_SECRET=.. \
//!     cargo run --example hyper_client --features mock
//! ```

use bytes::Bytes;
use cxone_auth::mock::MockCxone;
use cxone_auth::retry::{CxoneRetry, CxoneRetryLayer};
use cxone_auth::token::{AccessKeyGrant, TenantDiscovery};
use cxone_auth::{CxoneAuth, CxoneAuthLayer, TenantRouting, TenantRoutingLayer, TokenCache};
use http::Request;
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, ServiceBuilder, ServiceExt as _};

/// The whole client: one type, `Clone`, cheap to share.
type Client =
    CxoneRetry<TenantRouting<CxoneAuth<HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>>>>;

const AGENTS: &str = "/inContactAPI/services/v34.0/agents";
const SERVER_TIME: &str = "/inContactAPI/services/v34.0/server-time";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    if std::env::var_os("CXONE_CLIENT_ID").is_some() {
        let source = AccessKeyGrant::from_env()?;
        let endpoint = source.token_endpoint().ok_or("no token endpoint")?;
        let discovery = TenantDiscovery::for_endpoint(endpoint);
        let client = client(CxoneAuthLayer::new(TokenCache::new(source)), discovery);
        let time = get_json(&client, SERVER_TIME).await?;
        let agents = get_json(&client, AGENTS).await?;
        println!("server time: {}", time["ServerTime"]);
        println!(
            "agents: {}",
            agents["agents"].as_array().map_or(0, Vec::len)
        );
        return Ok(());
    }
    let cxone = MockCxone::new().serve().await?;
    let report = against_the_mock(&cxone).await?;
    println!("{report:#?}");
    Ok(())
}

/// The client every request goes through.
fn client(auth: CxoneAuthLayer, discovery: TenantDiscovery) -> Client {
    // https for CXone; plain http too, for a mock on 127.0.0.1.
    let connector = HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let hyper = HyperClient::builder(TokioExecutor::new()).build(connector);
    ServiceBuilder::new()
        .layer(CxoneRetryLayer::default())
        .layer(TenantRoutingLayer::new(&auth, discovery))
        .layer(auth)
        .service(hyper)
}

/// `GET path` on the tenant's API host, as JSON.
async fn get_json(client: &Client, path: &str) -> Result<serde_json::Value, BoxError> {
    let request = Request::get(path).body(Full::new(Bytes::new()))?;
    let response = client.clone().oneshot(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        return Err(format!("CXone answered {status}").into());
    }
    Ok(serde_json::from_slice(&body)?)
}

/// What the run against the mock saw.
#[derive(Debug)]
#[allow(dead_code, reason = "printed with Debug")]
struct Report {
    agents: usize,
    token_requests: u64,
    refused_with_401: u64,
    rate_limited: u64,
    api_calls: u64,
}

/// Reads agents three times: on a fresh token, after the token was revoked
/// (a 401, one refresh, one replay), and through a 429 (waited out).
async fn against_the_mock(cxone: &MockCxone) -> Result<Report, BoxError> {
    let source = AccessKeyGrant::new(
        cxone_auth::mock::CLIENT_ID,
        cxone_auth::mock::CLIENT_SECRET,
        cxone_auth::mock::ACCESS_KEY_ID,
        cxone_auth::mock::ACCESS_KEY_SECRET,
    )?
    .token_url(cxone.token_url())?;
    // The mock serves plain http on 127.0.0.1, which the token may reach
    // only when loopback http is allowed (its discovered API host too).
    let auth = CxoneAuthLayer::new(TokenCache::new(source)).allow_loopback_http(true);
    let client = client(auth, TenantDiscovery::from_url(cxone.base_url())?);

    let agents = get_json(&client, AGENTS).await?;
    cxone.revoke_all();
    get_json(&client, AGENTS).await?;
    // `Retry-After: 0`, so the example does not sleep.
    cxone.rate_limit_next_api_calls(1, std::time::Duration::ZERO);
    get_json(&client, SERVER_TIME).await?;

    let stats = cxone.stats();
    Ok(Report {
        agents: agents["agents"].as_array().map_or(0, Vec::len),
        token_requests: stats.token_requests,
        refused_with_401: stats.api_unauthorized,
        rate_limited: stats.api_rate_limited,
        api_calls: stats.api_calls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_against_the_mock() {
        let cxone = MockCxone::new().serve().await.unwrap();
        let report = against_the_mock(&cxone).await.unwrap();
        assert_eq!(report.agents, cxone_auth::mock::SAMPLE_AGENT_COUNT);
        assert_eq!(
            report.token_requests, 2,
            "one token, then one refresh after the 401"
        );
        assert_eq!(report.refused_with_401, 1);
        assert_eq!(report.rate_limited, 1);
        assert_eq!(report.api_calls, 5, "each refusal replayed once");
    }
}
