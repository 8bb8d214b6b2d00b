//! An axum service whose handler calls CXone: a report endpoint that
//! summarises the tenant's agents. Every request shares one `TokenCache`
//! (one token for all of them) through the router's state. For its
//! operators it serves `/healthz` (503 while the cache has no usable token)
//! and `/metrics` (the crate's metrics, in Prometheus text).
//!
//! ```text
//! # against a mock CXone on 127.0.0.1 (no credentials needed)
//! cargo run --example axum_gateway --features mock,metrics
//! # against your tenant
//! CXONE_CLIENT_ID=.. CXONE_CLIENT_SECRET=.. CXONE_ACCESS_KEY_ID=.. CXONE_ACCESS_KEY_SECRET=.. \
//!     cargo run --example axum_gateway --features mock,metrics
//! # then
//! curl http://127.0.0.1:3000/reports/agents
//! curl http://127.0.0.1:3000/healthz
//! curl http://127.0.0.1:3000/metrics
//! ```

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cxone_auth::mock::{self, MockCxone};
use cxone_auth::retry::CxoneRetryLayer;
use cxone_auth::token::AccessKeyGrant;
use cxone_auth::{CxoneAuthLayer, TokenCache};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt as _};
use url::Url;

/// The client handlers call CXone with: `reqwest::Client` under the retry
/// and auth layers, boxed so the state has a short type.
type CxoneClient = BoxCloneSyncService<reqwest::Request, reqwest::Response, BoxError>;

/// What every handler shares. Cloned per request; the clones share the
/// token cache inside the client.
#[derive(Clone)]
struct Gateway {
    cxone: CxoneClient,
    api_endpoint: Url,
    tokens: TokenCache,
    metrics: PrometheusHandle,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Agent {
    is_active: bool,
    team_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Agents {
    agents: Vec<Agent>,
}

/// The report the endpoint answers with.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct AgentReport {
    agents: usize,
    active: usize,
    teams: usize,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let metrics = PrometheusBuilder::new().install_recorder()?;
    let (gateway, _mock) = if std::env::var_os("CXONE_CLIENT_ID").is_some() {
        let source = AccessKeyGrant::from_env()?;
        let tokens = TokenCache::builder(source.clone()).name("tenant").build();
        let tenant = source.discover_tenant(&*tokens.token().await?).await?;
        let layer = CxoneAuthLayer::new(tokens);
        (gateway(layer, tenant.api_endpoint().clone(), metrics), None)
    } else {
        let cxone = MockCxone::new().serve().await?;
        let gateway = gateway(mock_layer(&cxone)?, cxone.api_endpoint().parse()?, metrics);
        // Ready from the start: the first token, before the first caller.
        gateway.tokens.token().await?;
        (gateway, Some(cxone))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("GET http://{}/reports/agents", listener.local_addr()?);
    axum::serve(listener, app(gateway)).await?;
    Ok(())
}

/// The gateway's routes.
fn app(gateway: Gateway) -> Router {
    Router::new()
        .route("/reports/agents", get(agent_report))
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus))
        .with_state(gateway)
}

/// The state: one client, built once, over one token cache.
fn gateway(auth: CxoneAuthLayer, api_endpoint: Url, metrics: PrometheusHandle) -> Gateway {
    let tokens = auth.tokens().expect("one cache, not keyed").clone();
    let client = ServiceBuilder::new()
        .layer(CxoneRetryLayer::default())
        .layer(auth)
        .service(reqwest::Client::new());
    Gateway {
        cxone: BoxCloneSyncService::new(client),
        api_endpoint,
        tokens,
        metrics,
    }
}

/// Ready while calls get a token at once: 200 with the cache's status, or
/// 503 with why not (the error's message names no secret).
async fn healthz(State(gateway): State<Gateway>) -> (StatusCode, String) {
    let status = gateway.tokens.status();
    let code = if status.has_token() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, format!("{status:?}\n"))
}

/// The crate's metrics (and any other the process records), for Prometheus.
async fn prometheus(State(gateway): State<Gateway>) -> String {
    gateway.metrics.render()
}

/// The auth layer for a mock CXone served on 127.0.0.1 (plain http).
fn mock_layer(cxone: &MockCxone) -> Result<CxoneAuthLayer, BoxError> {
    let source = AccessKeyGrant::new(
        mock::CLIENT_ID,
        mock::CLIENT_SECRET,
        mock::ACCESS_KEY_ID,
        mock::ACCESS_KEY_SECRET,
    )?
    .token_url(cxone.token_url())?;
    let tokens = TokenCache::builder(source).name("tenant").build();
    Ok(CxoneAuthLayer::new(tokens).allow_loopback_http(true))
}

async fn agent_report(State(gateway): State<Gateway>) -> Result<Json<AgentReport>, GatewayError> {
    let url = gateway
        .api_endpoint
        .join("/inContactAPI/services/v34.0/agents")?;
    let request = reqwest::Request::new(reqwest::Method::GET, url);
    let response = gateway.cxone.oneshot(request).await?;
    let agents = match response.status().as_u16() {
        204 => Vec::new(),
        200 => serde_json::from_slice::<Agents>(&response.bytes().await?)?.agents,
        status => return Err(GatewayError(format!("CXone answered {status}").into())),
    };
    let mut teams: Vec<_> = agents
        .iter()
        .filter_map(|a| a.team_name.as_deref())
        .collect();
    teams.sort_unstable();
    teams.dedup();
    Ok(Json(AgentReport {
        agents: agents.len(),
        active: agents.iter().filter(|a| a.is_active).count(),
        teams: teams.len(),
    }))
}

/// Any failure reaching CXone: a 502 for the gateway's own callers. The
/// message of a `cxone_auth::Error` says what to fix and never holds a token.
struct GatewayError(BoxError);

impl<E: Into<BoxError>> From<E> for GatewayError {
    fn from(err: E) -> Self {
        Self(err.into())
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        (StatusCode::BAD_GATEWAY, self.0.to_string()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    /// The process's one Prometheus recorder, installed by the first test.
    fn prometheus_handle() -> PrometheusHandle {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        HANDLE
            .get_or_init(|| PrometheusBuilder::new().install_recorder().unwrap())
            .clone()
    }

    async fn fetch(app: Router, path: &str) -> (StatusCode, String) {
        let request = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn healthz_and_metrics_tell_the_operator_how_the_token_fares() {
        let cxone = MockCxone::new().serve().await.unwrap();
        let gateway = gateway(
            mock_layer(&cxone).unwrap(),
            cxone.api_endpoint().parse().unwrap(),
            prometheus_handle(),
        );
        let app = app(gateway);

        let (status, body) = fetch(app.clone(), "/healthz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "no token yet");
        assert!(body.starts_with("Empty"), "{body}");

        assert_eq!(
            fetch(app.clone(), "/reports/agents").await.0,
            StatusCode::OK
        );
        let (status, body) = fetch(app.clone(), "/healthz").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.starts_with("Fresh"), "{body}");

        let (status, body) = fetch(app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        // The recorder is the process's, shared with the other tests.
        assert!(
            body.lines().any(|line| {
                line.starts_with("cxone_auth_token_fetch_duration_count{")
                    && line.contains(r#"cache="tenant""#)
                    && line.contains(r#"outcome="ok""#)
            }),
            "{body}"
        );
        assert!(
            body.contains(r#"cxone_auth_token_remaining_lifetime{cache="tenant"}"#),
            "{body}"
        );
    }

    #[tokio::test]
    async fn every_request_shares_one_token() {
        let cxone = MockCxone::new().serve().await.unwrap();
        let gateway = gateway(
            mock_layer(&cxone).unwrap(),
            cxone.api_endpoint().parse().unwrap(),
            prometheus_handle(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/reports/agents", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app(gateway)).await });

        let http = reqwest::Client::new();
        let get = || async {
            let response = http.get(&url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            serde_json::from_slice::<AgentReport>(&response.bytes().await.unwrap()).unwrap()
        };
        let reports = futures::future::join_all((0..20).map(|_| get())).await;
        assert!(reports.iter().all(|r| r.agents == mock::SAMPLE_AGENT_COUNT));
        assert!(reports.iter().all(|r| r == &reports[0]));
        assert_eq!(cxone.stats().token_requests, 1, "one token for 20 requests");

        // A revoked token costs the gateway's callers nothing: one refresh.
        cxone.revoke_all();
        assert_eq!(get().await, reports[0]);
        assert_eq!(cxone.stats().token_requests, 2);
        assert_eq!(cxone.stats().api_unauthorized, 1);
    }

    #[tokio::test]
    async fn failures_reach_the_caller_as_502_without_the_token() {
        let cxone = MockCxone::builder()
            .client("other-app", "other-secret")
            .build();
        let cxone = cxone.serve().await.unwrap();
        let gateway = gateway(
            mock_layer(&cxone).unwrap(),
            cxone.api_endpoint().parse().unwrap(),
            prometheus_handle(),
        );
        let app = app(gateway);
        let (status, message) = fetch(app.clone(), "/reports/agents").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(
            message.contains("check the client id and secret"),
            "{message}"
        );
        assert!(!message.contains(mock::CLIENT_SECRET), "{message}");

        let (status, body) = fetch(app, "/healthz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.starts_with("Failing"), "{body}");
        assert!(body.contains("InvalidCredentials"), "{body}");
        assert!(!body.contains(mock::CLIENT_SECRET), "{body}");
    }
}
