//! Properties of what the crate reads from servers and users, on generated
//! inputs: JWT claims, tenant configurations, the host allow-list, and the
//! retry layer's reading of `Retry-After`. Arbitrary input never panics, and
//! what is written one way reads back the same.
//!
//! (The token response and `Retry-After` parsers are crate-private; their
//! properties live beside them, in `src/token/response.rs` and
//! `src/backoff.rs`.)

use std::convert::Infallible;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use cxone_auth::TenantConfig;
use cxone_auth::retry::CxoneRetryLayer;
use cxone_auth::token::JwtClaims;
use http::{Request, Response, StatusCode};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tower::{Layer as _, ServiceExt as _};

/// JSON values as claims hold them: strings, integers (negative too),
/// fractions, booleans, null, and small arrays and objects of those.
fn claim_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<String>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        // Eighths print and parse back exactly.
        any::<i32>().prop_map(|i| json!(f64::from(i) / 8.0)),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn claims() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map(
        prop_oneof![
            Just("exp".to_owned()),
            Just("iat".to_owned()),
            Just("tenantId".to_owned()),
            Just("icBUId".to_owned()),
            Just("icClusterId".to_owned()),
            Just("sub".to_owned()),
            Just("iss".to_owned()),
            any::<String>(),
        ],
        claim_value(),
        0..10,
    )
    .prop_map(|map| map.into_iter().collect())
}

/// A DNS label: letters, digits and inner hyphens, in any case.
fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?"
}

/// An https URL whose host is labels under a top-level domain (a name
/// ending in a number would be read as an IPv4 address).
fn https_url() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(label(), 0..3),
        "[a-z]{2,6}",
        proptest::option::of(1u16..),
    )
        .prop_map(|(labels, tld, port)| {
            let host = labels.iter().map(|l| format!("{l}.")).collect::<String>() + &tld;
            match port {
                Some(port) => format!("https://{host}:{port}"),
                None => format!("https://{host}"),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A JWT built from any claims reads every claim back, whether its
    /// payload is padded or not; the typed accessors agree with the JSON.
    #[test]
    fn jwt_claims_round_trip(claims in claims(), padded in any::<bool>()) {
        let payload = serde_json::to_vec(&claims).unwrap();
        let payload = if padded {
            URL_SAFE.encode(&payload)
        } else {
            URL_SAFE_NO_PAD.encode(&payload)
        };
        let jwt = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2lnbmF0dXJl");
        let read = JwtClaims::from_jwt(&jwt).expect("a JWT with an object payload");
        for (name, value) in &claims {
            prop_assert_eq!(read.get(name), Some(value), "claim {}", name);
        }
        prop_assert_eq!(read.tenant_id(), claims.get("tenantId").and_then(Value::as_str));
        prop_assert_eq!(read.cluster_id(), claims.get("icClusterId").and_then(Value::as_str));
        prop_assert_eq!(read.subject(), claims.get("sub").and_then(Value::as_str));
        if let Some(exp) = claims.get("exp").and_then(Value::as_i64) {
            prop_assert_eq!(read.exp(), Some(exp));
        }
        if let Some(unit) = claims.get("icBUId").and_then(Value::as_i64) {
            prop_assert_eq!(read.business_unit_id(), Some(unit));
        }
        let _ = format!("{read:?}");
    }

    /// Integer claims sent as strings, as some issuers do, read as integers.
    #[test]
    fn integer_claims_as_strings(exp in any::<i64>(), unit in any::<i64>()) {
        let payload = json!({ "exp": exp.to_string(), "icBUId": format!(" {unit} ") });
        let jwt = format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(payload.to_string()));
        let read = JwtClaims::from_jwt(&jwt).unwrap();
        prop_assert_eq!(read.exp(), Some(exp));
        prop_assert_eq!(read.business_unit_id(), Some(unit));
    }

    /// Any text is read without panicking; whatever reads as claims has
    /// three dot-separated parts.
    #[test]
    fn any_text_is_read_as_a_jwt_without_panicking(text in any::<String>()) {
        if let Some(claims) = JwtClaims::from_jwt(&text) {
            prop_assert_eq!(text.split('.').count(), 3);
            let _ = (claims.exp(), claims.iat(), claims.tenant_id(), claims.business_unit_id());
        }
    }

    /// Any JSON document is read as a tenant configuration without
    /// panicking; one that is accepted names an `api_endpoint` that may
    /// receive a token.
    #[test]
    fn any_tenant_document_is_read_without_panicking(
        fields in proptest::collection::vec(
            (
                prop_oneof![
                    Just("api_endpoint".to_owned()),
                    Just("ui_endpoint".to_owned()),
                    Just("tenantId".to_owned()),
                    Just("area".to_owned()),
                    Just("private".to_owned()),
                    "[a-zA-Z_]{1,12}",
                ],
                prop_oneof![
                    claim_value(),
                    https_url().prop_map(Value::from),
                    Just(Value::from("http://10.0.0.1")),
                    Just(Value::from("http://127.0.0.1:8080")),
                    Just(Value::from("https://user:pw@api.example.com")),
                ],
            ),
            0..8,
        ),
    ) {
        let document = Value::Object(fields.into_iter().collect()).to_string();
        if let Ok(config) = serde_json::from_str::<TenantConfig>(&document) {
            let api = config.api_endpoint();
            prop_assert!(api.username().is_empty() && api.password().is_none());
            prop_assert!(
                api.scheme() == "https"
                    || (api.scheme() == "http" && api.host_str() == Some("127.0.0.1")),
                "{}", api
            );
        }
    }

    /// A configuration serializes to a document that reads back equal, with
    /// the fields under CXone's own names.
    #[test]
    fn tenant_configurations_round_trip(
        api in https_url(),
        ui in proptest::option::of(https_url()),
        tenant in proptest::option::of("[0-9a-f-]{36}"),
        area in proptest::option::of("[a-z]{2}[0-9]"),
        cluster in proptest::option::of("[A-Z][0-9]{2}"),
        acd in proptest::option::of("[a-z-]{3,12}\\.com"),
        private in any::<bool>(),
        unknown in claim_value(),
    ) {
        let mut document = json!({ "api_endpoint": api, "private": private, "somethingNew": unknown });
        for (name, value) in [
            ("ui_endpoint", &ui),
            ("tenantId", &tenant),
            ("area", &area),
            ("cluster", &cluster),
            ("acdDomain", &acd),
        ] {
            if let Some(value) = value {
                document[name] = json!(value);
            }
        }
        let config: TenantConfig = serde_json::from_value(document).unwrap();
        prop_assert_eq!(config.api_endpoint(), &url::Url::parse(&api).unwrap());
        prop_assert_eq!(config.tenant_id(), tenant.as_deref());
        prop_assert_eq!(config.area(), area.as_deref());
        prop_assert_eq!(config.cluster(), cluster.as_deref());
        prop_assert_eq!(config.acd_domain(), acd.as_deref());
        prop_assert_eq!(config.is_private(), private);
        prop_assert_eq!(config.ui_endpoint().is_some(), ui.is_some());

        let written = serde_json::to_value(&config).unwrap();
        prop_assert!(written.get("api_endpoint").is_some());
        prop_assert_eq!(written.get("tenantId").and_then(Value::as_str), tenant.as_deref());
        let again: TenantConfig = serde_json::from_value(written).unwrap();
        prop_assert_eq!(again, config);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever `Retry-After` a server sends (a huge number, a far date,
    /// garbage) and whatever cap the layer was given, the retry layer waits
    /// within the cap and never panics. (A cap of `Duration::MAX` with a
    /// huge `Retry-After` used to overflow the clock.)
    #[test]
    fn any_retry_after_with_any_cap(
        retry_after in prop_oneof![
            any::<u64>().prop_map(|s| s.to_string()),
            "[0-9]{20,40}",
            Just("Fri, 31 Dec 9999 23:59:59 GMT".to_owned()),
            "[ -~]{0,30}",
        ],
        cap in prop_oneof![
            Just(Duration::MAX),
            Just(Duration::from_secs(u64::MAX)),
            (0u64..3600).prop_map(Duration::from_secs),
        ],
        status in prop_oneof![Just(429u16), Just(503)],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let value = retry_after.clone();
            let server = tower::service_fn(move |_: Request<()>| {
                let response = Response::builder()
                    .status(status)
                    .header("retry-after", value.as_str())
                    .body(())
                    .unwrap();
                async move { Ok::<_, Infallible>(response) }
            });
            let client = CxoneRetryLayer::builder()
                .retry_after_cap(cap)
                .max_attempts(2)
                .build()
                .layer(server);
            let start = tokio::time::Instant::now();
            let request = Request::get("https://api-na1.niceincontact.com/x").body(()).unwrap();
            // Waits of years are not sat out: a panic would come at once,
            // when the answer is read.
            let patience = Duration::from_secs(7200);
            if let Ok(response) = tokio::time::timeout(patience, client.oneshot(request)).await {
                assert_eq!(response.unwrap().status(), StatusCode::from_u16(status).unwrap());
                assert!(start.elapsed() <= cap, "waited {:?}", start.elapsed());
            }
        });
    }
}

/// The case the property above found: `Retry-After: 9223372036854770177`
/// with the cap lifted overflowed the clock and panicked.
#[tokio::test(start_paused = true)]
async fn a_huge_retry_after_with_the_cap_lifted_does_not_panic() {
    let server = tower::service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(
            Response::builder()
                .status(429)
                .header("retry-after", "9223372036854770177")
                .body(())
                .unwrap(),
        )
    });
    let client = CxoneRetryLayer::builder()
        .retry_after_cap(Duration::MAX)
        .build()
        .layer(server);
    let request = Request::get("https://api-na1.niceincontact.com/x")
        .body(())
        .unwrap();
    // It waits (as long as the clock can say), rather than panicking.
    let waited = tokio::time::timeout(Duration::from_secs(3600), client.oneshot(request)).await;
    assert!(waited.is_err());
}
