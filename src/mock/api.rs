//! The discovery documents and the two API reads.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::{Value, json};

use super::{MockCxone, SAMPLE_AGENT_COUNT, retry_after_seconds};

/// Where the REST API facade's paths begin, matched without regard to case.
const API_PREFIX: &str = "/inContactAPI/services/";

const FIRST_NAMES: [&str; SAMPLE_AGENT_COUNT] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus",
    "Radia", "Tony",
];
const LAST_NAMES: [&str; SAMPLE_AGENT_COUNT] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
    "Wirth", "Perlman", "Hoare",
];

/// `GET /.well-known/openid-configuration`: where the token endpoint is, and how to use it.
/// The fields of NICE's own document: no `grant_types_supported`.
pub(super) async fn openid(State(cxone): State<MockCxone>) -> Response {
    let base = cxone.base_url();
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/auth/authorize"),
        "token_endpoint": format!("{base}/auth/token"),
        "userinfo_endpoint": format!("{base}/auth/userinfo"),
        "end_session_endpoint": format!("{base}/auth/authorize/logout"),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"], "scopes_supported": ["openid"],
        "subject_types_supported": ["public"], "claim_types_supported": ["normal"],
        "display_values_supported": ["page", "popup"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "request_object_signing_alg_values_supported": ["none"],
    }))
    .into_response()
}

/// `GET /.well-known/cxone-configuration?tenantId=`: the tenant's hosts, for
/// anyone. Asked on an area host (`na1.…`, the area's first label) it answers
/// without `tenantId`, the area's document.
pub(super) async fn tenant(
    State(cxone): State<MockCxone>,
    uri: Uri,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    let query = query.0.unwrap_or_default();
    let tenant_id = url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "tenantId")
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty());
    let config = &cxone.shared.config;
    let host = uri.host().or_else(|| headers.get(HOST)?.to_str().ok());
    let on_area_host = host
        .and_then(|host| host.split('.').next())
        .is_some_and(|label| label.eq_ignore_ascii_case(&config.area));
    match tenant_id {
        // UUIDs compare case-insensitively.
        Some(id) if !id.eq_ignore_ascii_case(&config.tenant_id) => {
            return StatusCode::NOT_FOUND.into_response();
        }
        None if !on_area_host => {
            return invalid_request("the tenantId query parameter is required");
        }
        _ => {}
    }
    let base = cxone.base_url();
    let mut document = json!({
        "private": false, "area": config.area, "cluster": config.cluster_id,
        "domain": "niceincontact.com", "acdDomain": "nice-incontact.com",
        "uhDomain": "nice-incontact.com",
        "ui_endpoint": base, "auth_endpoint": base, "api_endpoint": cxone.api_endpoint(),
    });
    if tenant_id.is_some() {
        document["tenantId"] = config.tenant_id.clone().into();
    }
    Json(document).into_response()
}

/// `GET /inContactAPI/services/vN.M/agents` and `.../server-time`, any
/// version, the path in any case; `404` for anything else.
pub(super) async fn read(
    State(cxone): State<MockCxone>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    let path = uri.path();
    let api = (path.get(..API_PREFIX.len()))
        .filter(|prefix| prefix.eq_ignore_ascii_case(API_PREFIX))
        .and_then(|_| path[API_PREFIX.len()..].split_once('/'));
    let Some((version, resource)) = api.filter(|_| method == Method::GET) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some(refusal) = refusal(&cxone, version, resource, &headers) {
        return refusal;
    }
    let response = if !accepts_json(&headers) {
        // What CXone answers without `Accept: application/json`: 200, not JSON.
        let content_type = [(CONTENT_TYPE, HeaderValue::from_static("application/html"))];
        (content_type, "No known way to render data").into_response()
    } else if resource.eq_ignore_ascii_case("agents") {
        agents_page(&cxone, version, &query.0.unwrap_or_default())
    } else {
        Json(json!({ "ServerTime": rfc3339(SystemTime::now()) })).into_response()
    };
    if response.status().is_success() {
        cxone.lock().stats.api_ok += 1;
    }
    response
}

/// Counts the call and refuses it: `404` for another resource or no version,
/// `429` while rate limited (a gateway limits before it looks at tokens), `401`
/// without an active bearer token.
fn refusal(
    cxone: &MockCxone,
    version: &str,
    resource: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let mut runtime = cxone.lock();
    runtime.stats.api_calls += 1;
    let known = ["agents", "server-time"]
        .iter()
        .any(|r| r.eq_ignore_ascii_case(resource));
    if !is_version(version) || !known {
        return Some(StatusCode::NOT_FOUND.into_response());
    }
    let (remaining, retry_after) = runtime.api_rate_limit;
    if remaining > 0 {
        runtime.api_rate_limit.0 -= 1;
        runtime.stats.api_rate_limited += 1;
        let mut response = StatusCode::TOO_MANY_REQUESTS.into_response();
        if let Some(retry_after) = retry_after {
            (response.headers_mut()).insert(RETRY_AFTER, retry_after_seconds(retry_after));
        }
        return Some(response);
    }
    if !token.is_some_and(|token| runtime.is_active(token)) {
        runtime.stats.api_unauthorized += 1;
        let challenge = [(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))];
        return Some((StatusCode::UNAUTHORIZED, challenge).into_response());
    }
    None
}

/// `vN.M`: many versions are in use (NICE's SDK calls v4.0 to v31.0).
fn is_version(version: &str) -> bool {
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let number = version
        .strip_prefix(['v', 'V'])
        .and_then(|v| v.split_once('.'));
    number.is_some_and(|(major, minor)| digits(major) && digits(minor))
}

/// Whether `Accept` admits JSON: `application/json`, `application/*` or `*/*`.
fn accepts_json(headers: &HeaderMap) -> bool {
    let ranges = headers
        .get_all(ACCEPT)
        .into_iter()
        .filter_map(|v| v.to_str().ok());
    ranges.flat_map(|value| value.split(',')).any(|range| {
        let media = range.split(';').next().unwrap_or_default().trim();
        ["application/json", "application/*", "*/*"]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(media))
    })
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
    fn routes_every_version() {
        for version in ["v4.0", "v17.0", "v34.0", "V26.1", "v100.12"] {
            assert!(is_version(version), "{version}");
        }
        for version in [
            "34.0", "v", "", "v-1.0", "vx.0", "v34", "v34.", "v.0", "v3 4.0",
        ] {
            assert!(!is_version(version), "{version}");
        }
    }

    #[test]
    fn json_must_be_acceptable() {
        let accepts = |value: Option<&'static str>| {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(ACCEPT, HeaderValue::from_static(value));
            }
            accepts_json(&headers)
        };
        for yes in ["application/json", "*/*", "text/html, Application/*;q=0.5"] {
            assert!(accepts(Some(yes)), "{yes}");
        }
        for no in [None, Some("text/html"), Some("application/xml"), Some("")] {
            assert!(!accepts(no), "{no:?}");
        }
    }
}
