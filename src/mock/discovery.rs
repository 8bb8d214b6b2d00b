//! The two discovery documents: OpenID Connect's and CXone's per tenant.
//!
//! - `GET /.well-known/openid-configuration`: where the token endpoint is and
//!   how to authenticate to it. NICE advises reading `token_endpoint` from
//!   here rather than hard-coding it.
//! - `GET /.well-known/cxone-configuration?tenantId=<uuid>`: the tenant's
//!   area, cluster and `api_endpoint`, the base URL of every API call.
//!   No authentication; `404` for an unknown tenant, `400` without `tenantId`.
//!
//! ```
//! use axum::body::Body;
//! use cxone_auth::mock::{MockCxone, TENANT_ID};
//! use http::{Request, StatusCode};
//! use http_body_util::BodyExt as _;
//! use tower::ServiceExt as _;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let cxone = MockCxone::new();
//! let uri = format!("{}/.well-known/cxone-configuration?tenantId={TENANT_ID}", cxone.base_url());
//! let response = cxone.router().oneshot(Request::get(uri).body(Body::empty())?).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! let body = response.into_body().collect().await?.to_bytes();
//! let tenant: serde_json::Value = serde_json::from_slice(&body)?;
//! assert_eq!(tenant["api_endpoint"], cxone.api_endpoint());
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use super::state::Shared;

pub(super) async fn openid_configuration(State(shared): State<Arc<Shared>>) -> Response {
    let base = shared.base_url();
    let grants: Vec<&str> = shared.config.grants.iter().map(|g| g.as_str()).collect();
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/auth/authorize"),
        "token_endpoint": format!("{base}/auth/token"),
        "userinfo_endpoint": format!("{base}/auth/userinfo"),
        "end_session_endpoint": format!("{base}/auth/authorize/logout"),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "grant_types_supported": grants,
        "response_types_supported": ["code"],
        "scopes_supported": ["openid"],
        "subject_types_supported": ["public"],
        "claim_types_supported": ["normal"],
        "display_values_supported": ["page", "popup"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "request_object_signing_alg_values_supported": ["none"],
    }))
    .into_response()
}

pub(super) async fn cxone_configuration(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    let tenant_id = query.as_deref().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "tenantId")
            .map(|(_, value)| value.into_owned())
            .filter(|value| !value.is_empty())
    });
    let Some(tenant_id) = tenant_id else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": "invalid_request",
                "error_description": "the tenantId query parameter is required",
            })),
        )
            .into_response();
    };
    let config = &shared.config;
    // UUIDs compare case-insensitively.
    if !tenant_id.eq_ignore_ascii_case(&config.tenant_id) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let base = shared.base_url();
    Json(json!({
        "private": false,
        "area": config.area,
        "cluster": config.cluster_id,
        "domain": "niceincontact.com",
        "acdDomain": "nice-incontact.com",
        "uhDomain": "nice-incontact.com",
        "ui_endpoint": base,
        "auth_endpoint": base,
        "api_endpoint": shared.api_endpoint(),
        "tenantId": config.tenant_id,
    }))
    .into_response()
}
