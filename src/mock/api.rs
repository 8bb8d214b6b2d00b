//! The discovery documents and the two API reads.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde_json::{Value, json};

use super::{MockCxone, SAMPLE_AGENT_COUNT, retry_after_seconds};

const FIRST_NAMES: [&str; SAMPLE_AGENT_COUNT] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus",
    "Radia", "Tony",
];
const LAST_NAMES: [&str; SAMPLE_AGENT_COUNT] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
    "Wirth", "Perlman", "Hoare",
];

/// `GET /.well-known/openid-configuration`: where the token endpoint is, and how to use it.
pub(super) async fn openid(State(cxone): State<MockCxone>) -> Response {
    let base = cxone.base_url();
    let grants = cxone.shared.config.grants.iter().map(|g| g.as_str());
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/auth/authorize"),
        "token_endpoint": format!("{base}/auth/token"),
        "userinfo_endpoint": format!("{base}/auth/userinfo"),
        "end_session_endpoint": format!("{base}/auth/authorize/logout"),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "grant_types_supported": grants.collect::<Vec<_>>(),
        "response_types_supported": ["code"], "scopes_supported": ["openid"],
        "subject_types_supported": ["public"], "claim_types_supported": ["normal"],
        "display_values_supported": ["page", "popup"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "request_object_signing_alg_values_supported": ["none"],
    }))
    .into_response()
}

/// `GET /.well-known/cxone-configuration?tenantId=`: the tenant's hosts, for anyone.
pub(super) async fn tenant(State(cxone): State<MockCxone>, query: RawQuery) -> Response {
    let query = query.0.unwrap_or_default();
    let tenant_id = url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "tenantId")
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty());
    let Some(tenant_id) = tenant_id else {
        return invalid_request("the tenantId query parameter is required");
    };
    let config = &cxone.shared.config;
    // UUIDs compare case-insensitively.
    if !tenant_id.eq_ignore_ascii_case(&config.tenant_id) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let base = cxone.base_url();
    Json(json!({
        "private": false, "area": config.area, "cluster": config.cluster_id,
        "domain": "niceincontact.com", "acdDomain": "nice-incontact.com",
        "uhDomain": "nice-incontact.com",
        "ui_endpoint": base, "auth_endpoint": base, "api_endpoint": cxone.api_endpoint(),
        "tenantId": config.tenant_id,
    }))
    .into_response()
}

/// `GET /inContactAPI/services/{version}/agents` and `.../server-time`.
pub(super) async fn read(
    State(cxone): State<MockCxone>,
    uri: Uri,
    Path(version): Path<String>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    if let Some(refusal) = refusal(&cxone, &version, &headers) {
        return refusal;
    }
    let response = if uri.path().ends_with("/agents") {
        agents_page(&cxone, &version, &query.0.unwrap_or_default())
    } else {
        Json(json!({ "ServerTime": rfc3339(SystemTime::now()) })).into_response()
    };
    if response.status().is_success() {
        cxone.lock().stats.api_ok += 1;
    }
    response
}

/// Counts the call and refuses it: `404` for another version, `429` while rate limited
/// (a gateway limits before it looks at tokens), `401` without an active bearer token.
fn refusal(cxone: &MockCxone, version: &str, headers: &HeaderMap) -> Option<Response> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let mut runtime = cxone.lock();
    runtime.stats.api_calls += 1;
    if !is_supported_version(version) {
        return Some(StatusCode::NOT_FOUND.into_response());
    }
    let (remaining, retry_after) = runtime.api_rate_limit;
    if remaining > 0 {
        runtime.api_rate_limit.0 -= 1;
        runtime.stats.api_rate_limited += 1;
        let retry_after = [(RETRY_AFTER, retry_after_seconds(retry_after))];
        return Some((StatusCode::TOO_MANY_REQUESTS, retry_after).into_response());
    }
    if !token.is_some_and(|token| runtime.is_active(token)) {
        runtime.stats.api_unauthorized += 1;
        let challenge = [(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))];
        return Some((StatusCode::UNAUTHORIZED, challenge).into_response());
    }
    None
}

fn is_supported_version(version: &str) -> bool {
    let major = version.strip_prefix('v').and_then(|v| v.strip_suffix(".0"));
    major
        .and_then(|major| major.parse().ok())
        .is_some_and(|major: u32| (25..=34).contains(&major))
}

fn invalid_request(description: &str) -> Response {
    let body = json!({ "error": "invalid_request", "error_description": description });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// A page of agents (`skip`, `top`, `isActive`, `searchString`); `204` if none is left.
fn agents_page(cxone: &MockCxone, version: &str, query: &str) -> Response {
    let (mut skip, mut top) = (0, usize::MAX);
    let (mut is_active, mut search): (Option<bool>, Option<String>) = (None, None);
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let valid = match key.as_ref() {
            "skip" => value.parse().map(|n| skip = n).is_ok(),
            "top" => value.parse().map(|n| top = n).is_ok(),
            "isActive" => value
                .to_ascii_lowercase()
                .parse()
                .map(|a| is_active = Some(a))
                .is_ok(),
            "searchString" => {
                search = Some(value.to_lowercase());
                true
            }
            _ => true,
        };
        if !valid {
            return invalid_request(&format!("the query parameter {key} is not valid"));
        }
    }

    let business_unit_id = cxone.shared.config.business_unit_id;
    let matching: Vec<Value> = (0..SAMPLE_AGENT_COUNT)
        .map(|i| sample_agent(i, business_unit_id))
        .filter(|agent| is_active.is_none_or(|active| agent["isActive"] == active))
        .filter(|agent| {
            search.as_deref().is_none_or(|needle| {
                ["firstName", "lastName", "userName"].iter().any(|field| {
                    agent[*field]
                        .as_str()
                        .is_some_and(|v| v.to_lowercase().contains(needle))
                })
            })
        })
        .collect();
    let total = matching.len();
    let page: Vec<Value> = matching.into_iter().skip(skip).take(top).collect();
    if page.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }

    let endpoint = cxone.api_endpoint();
    let base = format!("{endpoint}/inContactAPI/services/{version}/agents");
    let top = if top == usize::MAX { total } else { top };
    let link = |skip: usize| Value::from(format!("{base}?skip={skip}&top={top}"));
    let mut links = serde_json::Map::from_iter([("self".into(), link(skip))]);
    if skip.saturating_add(page.len()) < total {
        links.insert("next".into(), link(skip + page.len()));
    }
    if skip > 0 {
        links.insert("previous".into(), link(skip.saturating_sub(top)));
    }
    let page = json!({
        "_links": links, "agents": page, "businessUnitId": business_unit_id, "totalRecords": total,
    });
    Json(page).into_response()
}

/// Agent `i` of the sample set; every fourth one is inactive.
fn sample_agent(i: usize, business_unit_id: i64) -> Value {
    let (first, last) = (FIRST_NAMES[i], LAST_NAMES[i]);
    let user_name = format!("{first}.{last}@cxone.mock.invalid").to_lowercase();
    json!({
        "agentId": 100_001 + i,
        "userId": format!("11eb0f4e-0000-4000-8000-{:012x}", i + 1),
        "userName": user_name, "emailAddress": user_name, "firstName": first, "lastName": last,
        "isActive": i % 4 != 3,
        "teamId": 2001 + i % 3, "teamName": (["Support", "Sales", "Billing"][i % 3]),
        "businessUnitId": business_unit_id,
        "profileId": 1, "profileName": "Agent",
        "timeZone": "UTC", "country": "US", "lastUpdated": "2024-01-15T09:30:00.000Z",
    })
}

/// RFC 3339 in UTC with 7 fractional digits, as CXone's `ServerTime`
/// (`2021-07-21T13:38:15.3560573Z`); `httpdate` does the calendar.
fn rfc3339(time: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let time = time.max(UNIX_EPOCH);
    let date = httpdate::fmt_http_date(time);
    let [_, day, month, year, clock, _] = date.split(' ').collect::<Vec<_>>()[..] else {
        return date;
    };
    let month = MONTHS.iter().position(|name| *name == month).unwrap_or(0) + 1;
    let fraction = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos()
        / 100;
    format!("{year}-{month:02}-{day}T{clock}.{fraction:07}Z")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn formats_rfc3339_like_cxone() {
        let time = UNIX_EPOCH + Duration::new(1_626_874_695, 356_057_300);
        assert_eq!(rfc3339(time), "2021-07-21T13:38:15.3560573Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.0000000Z");
        // A leap day.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.0000000Z");
    }

    #[test]
    fn routes_the_versions_in_use() {
        for version in ["v25.0", "v30.0", "v34.0"] {
            assert!(is_supported_version(version), "{version}");
        }
        for version in ["v24.0", "v35.0", "v34.1", "34.0", "v", "", "v-1.0", "vx.0"] {
            assert!(!is_supported_version(version), "{version}");
        }
    }
}
