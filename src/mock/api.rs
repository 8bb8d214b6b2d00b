//! Two real CXone API reads that demand a valid bearer token.
//!
//! - `GET /inContactAPI/services/{version}/agents`: a page of the mock's
//!   [`SAMPLE_AGENT_COUNT`] agents, honouring `skip`, `top`, `isActive` and
//!   `searchString`; `204` with no body when nothing matches.
//! - `GET /inContactAPI/services/{version}/server-time`: `{"ServerTime": ...}`.
//!
//! `{version}` is any of `v25.0` to `v34.0`, the versions still in use;
//! another answers `404`. A call is checked in this order: a queued rate
//! limit answers `429` with `Retry-After` (a gateway limits before it looks
//! at tokens); then `Authorization: Bearer <token>` must hold a token this
//! mock issued, not revoked and not expired on tokio's clock, else `401`
//! with no body, as CXone documents it.
//!
//! ```
//! use axum::body::Body;
//! use cxone_auth::mock::MockCxone;
//! use http::{Request, StatusCode, header};
//! use tower::ServiceExt as _;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let cxone = MockCxone::new();
//! let token = cxone.issue_token();
//! let uri = format!("{}/inContactAPI/services/v30.0/agents?top=2", cxone.api_endpoint());
//! let request = Request::get(uri).header(header::AUTHORIZATION, format!("Bearer {token}"));
//! let response = cxone.router().oneshot(request.body(Body::empty())?).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};

use super::state::{Counters, Shared};

/// How many agents the mock's business unit has: enough for a few pages.
pub const SAMPLE_AGENT_COUNT: usize = 12;

/// The oldest and newest API versions routed (`v25.0` to `v34.0`).
const API_VERSIONS: std::ops::RangeInclusive<u32> = 25..=34;

const FIRST_NAMES: [&str; SAMPLE_AGENT_COUNT] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus",
    "Radia", "Tony",
];
const LAST_NAMES: [&str; SAMPLE_AGENT_COUNT] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
    "Wirth", "Perlman", "Hoare",
];

pub(super) async fn agents(
    State(shared): State<Arc<Shared>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(refusal) = refusal(&shared, &version, &headers) {
        return refusal;
    }
    let response = agents_page(&shared, &version, query.as_deref().unwrap_or(""));
    count_outcome(&shared, &response);
    response
}

pub(super) async fn server_time(
    State(shared): State<Arc<Shared>>,
    Path(version): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = refusal(&shared, &version, &headers) {
        return refusal;
    }
    let response = Json(json!({ "ServerTime": rfc3339(SystemTime::now()) })).into_response();
    count_outcome(&shared, &response);
    response
}

/// Counts the call, and answers 404, 429 or 401 when it may not go through.
fn refusal(shared: &Shared, version: &str, headers: &HeaderMap) -> Option<Response> {
    let counters = &shared.counters;
    Counters::bump(&counters.api_calls);
    if !is_supported_version(version) {
        return Some(StatusCode::NOT_FOUND.into_response());
    }
    if let Some(retry_after) = shared.take_api_rate_limit() {
        Counters::bump(&counters.api_rate_limited);
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let mut response = StatusCode::TOO_MANY_REQUESTS.into_response();
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
        return Some(response);
    }
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if !token.is_some_and(|token| shared.is_active(token)) {
        Counters::bump(&counters.api_unauthorized);
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Some(response);
    }
    None
}

fn count_outcome(shared: &Shared, response: &Response) {
    if response.status().is_success() {
        Counters::bump(&shared.counters.api_ok);
    }
}

fn is_supported_version(version: &str) -> bool {
    version
        .strip_prefix('v')
        .and_then(|v| v.strip_suffix(".0"))
        .and_then(|major| major.parse::<u32>().ok())
        .is_some_and(|major| API_VERSIONS.contains(&major))
}

fn agents_page(shared: &Shared, version: &str, query: &str) -> Response {
    let mut skip = 0usize;
    let mut top = usize::MAX;
    let mut is_active = None;
    let mut search = None;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let parsed = match key.as_ref() {
            "skip" => value.parse().map(|n| skip = n).is_ok(),
            "top" => value.parse().map(|n| top = n).is_ok(),
            "isActive" => match value.to_ascii_lowercase().as_str() {
                "true" => {
                    is_active = Some(true);
                    true
                }
                "false" => {
                    is_active = Some(false);
                    true
                }
                _ => false,
            },
            "searchString" => {
                search = Some(value.to_lowercase());
                true
            }
            _ => true,
        };
        if !parsed {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "error": "invalid_request",
                    "error_description": format!("the query parameter {key} is not valid"),
                })),
            )
                .into_response();
        }
    }

    let business_unit_id = shared.config.business_unit_id;
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

    let base = format!(
        "{}/inContactAPI/services/{version}/agents",
        shared.api_endpoint()
    );
    let shown_top = if top == usize::MAX { total } else { top };
    let mut links = serde_json::Map::new();
    links.insert(
        "self".into(),
        format!("{base}?skip={skip}&top={shown_top}").into(),
    );
    if skip.saturating_add(page.len()) < total {
        let next = skip + page.len();
        links.insert(
            "next".into(),
            format!("{base}?skip={next}&top={shown_top}").into(),
        );
    }
    if skip > 0 {
        let previous = skip.saturating_sub(shown_top);
        links.insert(
            "previous".into(),
            format!("{base}?skip={previous}&top={shown_top}").into(),
        );
    }
    Json(json!({
        "_links": links,
        "agents": page,
        "businessUnitId": business_unit_id,
        "totalRecords": total,
    }))
    .into_response()
}

/// Agent `i` of the sample set; every fourth one is inactive.
fn sample_agent(i: usize, business_unit_id: i64) -> Value {
    let first = FIRST_NAMES[i % FIRST_NAMES.len()];
    let last = LAST_NAMES[i % LAST_NAMES.len()];
    let user_name = format!("{first}.{last}@cxone.mock.invalid").to_lowercase();
    let team_name = ["Support", "Sales", "Billing"][i % 3];
    json!({
        "agentId": 100_001 + i,
        "userId": format!("11eb0f4e-0000-4000-8000-{:012x}", i + 1),
        "userName": user_name,
        "firstName": first,
        "lastName": last,
        "emailAddress": user_name,
        "isActive": i % 4 != 3,
        "teamId": 2001 + i % 3,
        "teamName": team_name,
        "businessUnitId": business_unit_id,
        "profileId": 1,
        "profileName": "Agent",
        "timeZone": "UTC",
        "country": "US",
        "lastUpdated": "2024-01-15T09:30:00.000Z",
    })
}

/// Formats a wall-clock time as RFC 3339 in UTC with 7 fractional digits,
/// as CXone's `ServerTime` does (`2021-07-21T13:38:15.3560573Z`).
fn rfc3339(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let second_of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:07}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        since_epoch.subsec_nanos() / 100,
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = u32::try_from(day_of_year - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
