//! A `reqwest_middleware::ClientWithMiddleware` listing agents, with
//! reqwest-tracing and reqwest-retry in the same chain.
//!
//! ```text
//! # against a mock CXone on 127.0.0.1 (no credentials needed)
//! cargo run --example reqwest_middleware --features mock,reqwest-middleware
//! # against your tenant
//! CXONE_CLIENT_ID=.. CXONE_CLIENT_SECRET=.. CXONE_ACCESS_KEY_ID=.. CXONE_ACCESS_KEY_SECRET=.. \
//!     cargo run --example reqwest_middleware --features mock,reqwest-middleware
//! ```

use cxone_auth::TokenCache;
use cxone_auth::middleware::CxoneAuthMiddleware;
use cxone_auth::mock::{self, MockCxone};
use cxone_auth::token::AccessKeyGrant;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_tracing::TracingMiddleware;
use serde::Deserialize;
use tower::BoxError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "printed with Debug")]
struct Agent {
    agent_id: i64,
    first_name: String,
    last_name: String,
}

#[derive(Debug, Deserialize)]
struct Agents {
    agents: Vec<Agent>,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt().with_target(false).init();

    if std::env::var_os("CXONE_CLIENT_ID").is_some() {
        let source = AccessKeyGrant::from_env()?;
        let tokens = TokenCache::new(source.clone());
        // The tenant's API host, from the token's `tenantId`.
        let tenant = source.discover_tenant(&*tokens.token().await?).await?;
        let client = client(CxoneAuthMiddleware::new(tokens));
        let api = tenant.api_endpoint().as_str().trim_end_matches('/');
        for agent in list_agents(&client, api).await? {
            println!("{agent:?}");
        }
        return Ok(());
    }

    let cxone = MockCxone::new().serve().await?;
    let client = client(mock_middleware(&cxone)?);
    for agent in list_agents(&client, &cxone.api_endpoint()).await? {
        println!("{agent:?}");
    }
    println!("{:?}", cxone.stats());
    Ok(())
}

/// The chain: tracing outermost (one span per call, retries inside it),
/// then reqwest-retry (connection errors, 5xx), then CXone authentication
/// innermost, so every attempt carries the current token.
fn client(auth: CxoneAuthMiddleware) -> ClientWithMiddleware {
    let policy = ExponentialBackoff::builder().build_with_max_retries(2);
    ClientBuilder::new(reqwest::Client::new())
        .with(TracingMiddleware::default())
        .with(RetryTransientMiddleware::new_with_policy(policy))
        .with(auth)
        .build()
}

/// The middleware for a mock CXone served on 127.0.0.1 (plain http).
fn mock_middleware(cxone: &MockCxone) -> Result<CxoneAuthMiddleware, BoxError> {
    let source = AccessKeyGrant::new(
        mock::CLIENT_ID,
        mock::CLIENT_SECRET,
        mock::ACCESS_KEY_ID,
        mock::ACCESS_KEY_SECRET,
    )?
    .token_url(cxone.token_url())?;
    Ok(CxoneAuthMiddleware::new(TokenCache::new(source)).allow_loopback_http(true))
}

async fn list_agents(client: &ClientWithMiddleware, api: &str) -> Result<Vec<Agent>, BoxError> {
    let response = client
        .get(format!("{api}/inContactAPI/services/v34.0/agents?top=100"))
        .send()
        .await?;
    match response.status().as_u16() {
        204 => Ok(Vec::new()),
        200 => Ok(serde_json::from_slice::<Agents>(&response.bytes().await?)?.agents),
        status => Err(format!("CXone answered {status}").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lists_agents_on_one_token_and_recovers_from_a_revoked_one() {
        let cxone = MockCxone::new().serve().await.unwrap();
        let client = client(mock_middleware(&cxone).unwrap());

        let agents = list_agents(&client, &cxone.api_endpoint()).await.unwrap();
        assert_eq!(agents.len(), mock::SAMPLE_AGENT_COUNT);
        list_agents(&client, &cxone.api_endpoint()).await.unwrap();
        assert_eq!(cxone.stats().token_requests, 1);

        cxone.revoke_all();
        let agents = list_agents(&client, &cxone.api_endpoint()).await.unwrap();
        assert_eq!(agents.len(), mock::SAMPLE_AGENT_COUNT);
        let stats = cxone.stats();
        assert_eq!(stats.token_requests, 2);
        assert_eq!(stats.api_unauthorized, 1);
        assert_eq!(stats.api_ok, 3);
    }
}
