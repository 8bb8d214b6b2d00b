//! The HTTP token sources against the mock CXone.
//!
//! Time-dependent tests talk to the mock in memory (its router through
//! `ServiceTransport`) with paused tokio time; the last section uses real
//! sockets and the default reqwest transport, with real time and nothing that
//! depends on timing.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use cxone_auth::mock::{
    ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLIENT_ID, CLIENT_SECRET, ExpiresIn, Grant, MockCxone,
    TENANT_ID, TokenFault,
};
use cxone_auth::token::{
    AccessKeyGrant, ClientAuth, ClientCredentials, Environment, HttpTransport, ServiceTransport,
    StaticToken, TenantDiscovery, TokenEndpoint,
};
use cxone_auth::{AccessToken, Error, ErrorKind, OAuthErrorCode, TokenSource};
use futures_util::StreamExt as _;
use http::header::{LOCATION, RETRY_AFTER};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{Full, StreamBody};
use tokio::time::Instant;
use tower::ServiceExt as _;

// ---------------------------------------------------------------------------
// Expected wire formats, written out by hand (RFC 6749 §2.3.1 and Appendix B)
// rather than computed with the code under test.

/// `Basic base64("mock-app@cxone.mock.invalid:mock:client secret+/=")`, plain
/// as NICE documents it.
const EXPECTED_BASIC: &str =
    "Basic bW9jay1hcHBAY3hvbmUubW9jay5pbnZhbGlkOm1vY2s6Y2xpZW50IHNlY3JldCsvPQ==";
/// `Basic base64("mock-app%40cxone.mock.invalid:mock%3Aclient+secret%2B%2F%3D")`,
/// RFC 6749 §2.3.1's variant.
const EXPECTED_FORM_ENCODED_BASIC: &str =
    "Basic bW9jay1hcHAlNDBjeG9uZS5tb2NrLmludmFsaWQ6bW9jayUzQWNsaWVudCtzZWNyZXQlMkIlMkYlM0Q=";

/// The access key grant's form: the key id and secret, url-encoded.
const EXPECTED_PASSWORD_FORM: &str = "grant_type=password\
    &username=MOCKACCESSKEYIDQ2XJH7T4NVBLKEUJ3C%3D%3D%3D%3D\
    &password=mOck%2BSecret%2FKey%2BValue%2F9f2Q%3D%3D%3D%3D";

/// The client credentials of the form body (`client_secret_post`).
const EXPECTED_CLIENT_FORM: &str =
    "client_id=mock-app%40cxone.mock.invalid&client_secret=mock%3Aclient+secret%2B%2F%3D";

// ---------------------------------------------------------------------------
// The documented limits and defaults, written out.

/// The total time one fetch may take unless set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest token lifetime believed.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The largest response body read.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// Helpers

fn in_memory(mock: &MockCxone) -> impl HttpTransport {
    ServiceTransport::new(mock.router())
}

fn access_key(mock: &MockCxone) -> AccessKeyGrant {
    AccessKeyGrant::new(CLIENT_ID, CLIENT_SECRET, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        .unwrap()
        .token_url(mock.token_url())
        .unwrap()
        .transport(in_memory(mock))
}

/// A mock that offers `client_credentials`, which CXone does not.
fn offering_client_credentials() -> MockCxone {
    MockCxone::builder()
        .grants([Grant::Password, Grant::ClientCredentials])
        .build()
}

fn client_credentials(mock: &MockCxone) -> ClientCredentials {
    ClientCredentials::new(CLIENT_ID, CLIENT_SECRET)
        .unwrap()
        .token_url(mock.token_url())
        .unwrap()
        .transport(in_memory(mock))
}

/// The mock's router, recording the path and query of every request.
fn recording(mock: &MockCxone) -> (impl HttpTransport, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let router = mock.router();
    let service = tower::service_fn(move |req: Request<Full<Bytes>>| {
        log.lock()
            .unwrap()
            .push(req.uri().path_and_query().unwrap().to_string());
        router.clone().oneshot(req)
    });
    (ServiceTransport::new(service), seen)
}

/// A server answering every request with `status` and `body`.
fn answering(status: u16, body: &'static str) -> impl HttpTransport {
    ServiceTransport::new(tower::service_fn(
        move |_: Request<Full<Bytes>>| async move {
            Ok::<_, Infallible>(
                Response::builder()
                    .status(status)
                    .body(Full::new(Bytes::from_static(body.as_bytes())))
                    .unwrap(),
            )
        },
    ))
}

/// A JWT-shaped token with the given claims.
fn jwt(claims: &str) -> String {
    format!(
        "eyJhbGciOiJub25lIn0.{}.c2ln",
        URL_SAFE_NO_PAD.encode(claims)
    )
}

/// Text that must never appear in a message, a `Debug` or a log line.
const SECRETS: [&str; 7] = [
    CLIENT_SECRET,
    ACCESS_KEY_SECRET,
    // The url-encoded forms of the two secrets, and the Basic credentials.
    "mock%3Aclient+secret",
    "mOck%2BSecret",
    "bW9jay1hcHAlNDBjeG9uZS5tb2NrLmludmFsaWQ6bW9jayUzQWNsaWVudCtzZWNyZXQlMkIlMkYlM0Q",
    "bW9jay1hcHBAY3hvbmUubW9jay5pbnZhbGlkOm1vY2s6Y2xpZW50IHNlY3JldCsvPQ",
    "tok-SECRET",
];

#[track_caller]
fn assert_clean(text: &str, extra: &[&str]) {
    for secret in SECRETS.iter().chain(extra) {
        assert!(!text.contains(secret), "{secret:?} leaked into {text:?}");
    }
}

/// Checks an error's kind, and that neither its `Display` nor its `Debug`
/// leaks a secret.
#[track_caller]
fn assert_error(err: &Error, kind: ErrorKind) {
    assert_eq!(err.kind(), kind, "{err:?}");
    assert_clean(&format!("{err} {err:?}"), &[]);
}

async fn fetch_err(source: &impl TokenSource) -> Error {
    source.fetch().await.expect_err("the fetch should fail")
}

// ---------------------------------------------------------------------------
// Both grants, both client authentication methods: the exact wire format.

#[tokio::test(start_paused = true)]
async fn access_key_grant_with_basic_auth() {
    let mock = MockCxone::new();
    let source = access_key(&mock);
    let sent_at = Instant::now();
    let token = source.fetch().await.unwrap();

    let requests = mock.token_requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.authorization().as_deref(), Some(EXPECTED_BASIC));
    assert_eq!(
        request.basic_credentials(),
        Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned()))
    );
    assert_eq!(
        std::str::from_utf8(request.body()).unwrap(),
        EXPECTED_PASSWORD_FORM
    );
    assert_eq!(
        request.content_type().as_deref(),
        Some("application/x-www-form-urlencoded")
    );

    assert_eq!(token.lifetime(), mock.token_lifetime());
    assert_eq!(token.requested_at(), sent_at);
    assert_eq!(token.claims().unwrap().tenant_id(), Some(TENANT_ID));
    assert_eq!(
        token.header_value().to_str().unwrap(),
        format!("Bearer {}", token.secret())
    );
    assert!(mock.is_token_active(token.secret()));
}

/// RFC 6749 §2.3.1's encoding stays available, and the
/// mock, like the crate, takes both.
#[tokio::test(start_paused = true)]
async fn access_key_grant_with_form_encoded_basic_auth() {
    let mock = MockCxone::new();
    let source = access_key(&mock).client_auth(ClientAuth::BasicFormEncoded);
    source.fetch().await.unwrap();
    let request = &mock.token_requests()[0];
    let sent = request.authorization();
    assert_eq!(sent.as_deref(), Some(EXPECTED_FORM_ENCODED_BASIC));
    assert_ne!(EXPECTED_FORM_ENCODED_BASIC, EXPECTED_BASIC);
    assert_eq!(mock.stats().token_succeeded, 1);
}

/// No CXone default for a grant CXone does not offer.
#[tokio::test(start_paused = true)]
async fn client_credentials_needs_a_token_url_or_an_issuer() {
    let mock = offering_client_credentials();
    let source = ClientCredentials::new(CLIENT_ID, CLIENT_SECRET)
        .unwrap()
        .transport(in_memory(&mock));
    assert_eq!(source.token_endpoint(), None);
    let err = fetch_err(&source).await;
    assert_error(&err, ErrorKind::Config);
    assert!(
        err.to_string().contains("needs a token URL or an issuer"),
        "{err}"
    );
    assert_eq!(mock.stats().token_requests, 0);
    let err = source
        .discover_tenant(&StaticToken::new("t").fetch().await.unwrap())
        .await;
    assert_eq!(err.unwrap_err().kind(), ErrorKind::Config);
    source.issuer(mock.issuer()).unwrap().fetch().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn access_key_grant_with_body_auth() {
    let mock = MockCxone::new();
    let source = access_key(&mock).client_auth(ClientAuth::Body);
    source.fetch().await.unwrap();

    let request = &mock.token_requests()[0];
    assert_eq!(request.authorization(), None);
    assert_eq!(
        std::str::from_utf8(request.body()).unwrap(),
        format!("{EXPECTED_PASSWORD_FORM}&{EXPECTED_CLIENT_FORM}")
    );
}

#[tokio::test(start_paused = true)]
async fn client_credentials_with_basic_auth_and_scopes() {
    let mock = MockCxone::builder()
        .grants([Grant::ClientCredentials])
        .scopes(["openid", "agents:read", "admin"])
        .build();
    let source = client_credentials(&mock).scopes(["openid agents:read", "openid"]);
    let token = source.fetch().await.unwrap();

    let request = &mock.token_requests()[0];
    assert_eq!(request.authorization().as_deref(), Some(EXPECTED_BASIC));
    assert_eq!(
        std::str::from_utf8(request.body()).unwrap(),
        "grant_type=client_credentials&scope=openid+agents%3Aread"
    );
    assert_eq!(token.scopes(), ["openid", "agents:read"]);
}

#[tokio::test(start_paused = true)]
async fn client_credentials_with_body_auth_and_extra_params() {
    let mock = offering_client_credentials();
    let source = client_credentials(&mock)
        .client_auth(ClientAuth::Body)
        .param("audience", "https://api example/")
        .unwrap();
    source.fetch().await.unwrap();

    let request = &mock.token_requests()[0];
    assert_eq!(request.authorization(), None);
    assert_eq!(
        std::str::from_utf8(request.body()).unwrap(),
        format!(
            "grant_type=client_credentials&audience=https%3A%2F%2Fapi+example%2F&{EXPECTED_CLIENT_FORM}"
        )
    );
}

#[tokio::test(start_paused = true)]
async fn lifetime_counts_from_when_the_request_was_sent() {
    let mock = MockCxone::builder()
        .token_lifetime(Duration::from_secs(600))
        .token_delay(Duration::from_secs(3))
        .build();
    let sent_at = Instant::now();
    let token = access_key(&mock).fetch().await.unwrap();
    assert_eq!(Instant::now() - sent_at, Duration::from_secs(3));
    assert_eq!(token.requested_at(), sent_at);
    assert_eq!(token.expires_at(), sent_at + Duration::from_secs(600));
}

#[tokio::test(start_paused = true)]
async fn expires_in_as_string_or_missing() {
    let mock = MockCxone::builder()
        .token_lifetime(Duration::from_secs(900))
        .expires_in(ExpiresIn::String)
        .build();
    let token = access_key(&mock).fetch().await.unwrap();
    assert_eq!(token.lifetime(), Duration::from_secs(900));

    // Without `expires_in`, the JWT's `exp` (wall clock) gives the lifetime.
    mock.set_expires_in(ExpiresIn::Omitted);
    let token = access_key(&mock).fetch().await.unwrap();
    let secs = token.lifetime().as_secs();
    assert!((895..=900).contains(&secs), "{secs}");
}

#[tokio::test(start_paused = true)]
async fn shared_key_names_the_credential_without_secrets() {
    let mock = MockCxone::new();
    let a = access_key(&mock).scopes(["b", "a"]);
    let b = access_key(&mock).scopes(["a", "b"]);
    let key = a.shared_key().unwrap();
    assert_eq!(Some(&key), b.shared_key().as_ref());
    assert_clean(&key, &[CLIENT_ID, ACCESS_KEY_ID]);
    assert_ne!(
        Some(key),
        client_credentials(&mock).scopes(["a", "b"]).shared_key()
    );
}

// ---------------------------------------------------------------------------
// OpenID discovery

#[tokio::test(start_paused = true)]
async fn discovers_the_token_endpoint_once() {
    let mock = MockCxone::new();
    let (transport, seen) = recording(&mock);
    let source = AccessKeyGrant::new(CLIENT_ID, CLIENT_SECRET, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        .unwrap()
        .issuer(mock.issuer())
        .unwrap()
        .transport(transport);
    source.fetch().await.unwrap();
    source.clone().fetch().await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "/.well-known/openid-configuration",
            "/auth/token",
            "/auth/token"
        ]
    );
    assert_eq!(mock.stats().token_succeeded, 2);
}

#[tokio::test(start_paused = true)]
async fn failed_discovery_is_transient_and_not_remembered() {
    let mock = offering_client_credentials();
    let router = mock.router();
    let discoveries = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&discoveries);
    let flaky = tower::service_fn(move |req: Request<Full<Bytes>>| {
        let router = router.clone();
        let first_discovery = req.uri().path() == "/.well-known/openid-configuration"
            && count.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first_discovery {
                let mut busy = Response::new(axum::body::Body::empty());
                *busy.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                busy.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("4"));
                return Ok(busy);
            }
            router.oneshot(req).await
        }
    });
    let source = client_credentials(&mock)
        .issuer(mock.issuer())
        .unwrap()
        .transport(ServiceTransport::new(flaky));

    let err = fetch_err(&source).await;
    assert_error(&err, ErrorKind::Unavailable);
    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(4)));
    assert!(err.to_string().contains("OpenID configuration"), "{err}");
    assert_eq!(mock.stats().token_requests, 0);

    source.fetch().await.unwrap();
    assert_eq!(discoveries.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_discovered_endpoint_must_be_https() {
    let source = client_credentials(&MockCxone::new())
        .issuer("https://issuer.example.com")
        .unwrap()
        .transport(answering(
            200,
            r#"{"token_endpoint":"http://issuer.example.com/auth/token"}"#,
        ));
    let err = fetch_err(&source).await;
    assert_error(&err, ErrorKind::Discovery);
    assert!(err.to_string().contains("must use https"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn an_issuer_without_discovery_is_a_discovery_error() {
    let source = client_credentials(&MockCxone::new())
        .issuer("https://issuer.example.com")
        .unwrap()
        .transport(answering(404, "Not Found"));
    let err = fetch_err(&source).await;
    assert_error(&err, ErrorKind::Discovery);
    assert!(!err.is_transient());
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
}

// ---------------------------------------------------------------------------
// Tenant discovery

#[tokio::test(start_paused = true)]
async fn discovers_the_tenant_of_a_token() {
    let mock = MockCxone::new();
    let source = access_key(&mock);
    let token = source.fetch().await.unwrap();
    let tenant = source.discover_tenant(&token).await.unwrap();
    assert_eq!(
        tenant.api_endpoint().as_str().trim_end_matches('/'),
        mock.api_endpoint()
    );
    // The mock's default area and cluster.
    assert_eq!(tenant.area(), Some("na1"));
    assert_eq!(tenant.cluster(), Some("B32"));
    assert_eq!(tenant.tenant_id(), Some(TENANT_ID));
    assert!(!tenant.is_private());

    // The same through `TenantDiscovery`, for a token from elsewhere.
    let (transport, seen) = recording(&mock);
    let elsewhere = StaticToken::new(token.secret()).fetch().await.unwrap();
    let discovery = TenantDiscovery::from_url(mock.base_url())
        .unwrap()
        .transport(transport);
    assert_eq!(discovery.discover(&elsewhere).await.unwrap(), tenant);
    assert_eq!(
        *seen.lock().unwrap(),
        [format!(
            "/.well-known/cxone-configuration?tenantId={TENANT_ID}"
        )]
    );
}

#[tokio::test(start_paused = true)]
async fn tenant_discovery_errors_are_typed() {
    let mock = MockCxone::new();
    let source = access_key(&mock);

    let stranger = AccessToken::new(jwt(
        r#"{"tenantId":"00000000-0000-0000-0000-000000000000"}"#,
    ))
    .unwrap();
    let err = source.discover_tenant(&stranger).await.unwrap_err();
    assert_error(&err, ErrorKind::Discovery);
    assert!(err.to_string().contains("unknown tenant"), "{err}");
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));

    let opaque = AccessToken::new("opaque-token").unwrap();
    let err = source.discover_tenant(&opaque).await.unwrap_err();
    assert_error(&err, ErrorKind::Discovery);
    assert!(err.to_string().contains("tenantId"), "{err}");

    for (api_endpoint, says) in [
        ("not a url", "`api_endpoint` is not a URL"),
        ("http://api.example.com", "must use https"),
    ] {
        let mock = MockCxone::builder().api_endpoint(api_endpoint).build();
        let source = access_key(&mock);
        let token = source.fetch().await.unwrap();
        let err = source.discover_tenant(&token).await.unwrap_err();
        assert_error(&err, ErrorKind::Discovery);
        assert!(err.to_string().contains(says), "{err}");
    }
}

#[tokio::test(start_paused = true)]
async fn tenant_discovery_has_a_timeout() {
    let never = tower::service_fn(|_: Request<Full<Bytes>>| async {
        std::future::pending::<Result<Response<Full<Bytes>>, Infallible>>().await
    });
    let token = AccessToken::new(jwt(&format!(r#"{{"tenantId":"{TENANT_ID}"}}"#))).unwrap();
    let started = Instant::now();
    let err = TenantDiscovery::new(Environment::Cxone)
        .transport(ServiceTransport::new(never))
        .timeout(Duration::from_secs(3))
        .discover(&token)
        .await
        .unwrap_err();
    assert_error(&err, ErrorKind::Timeout);
    assert_eq!(Instant::now() - started, Duration::from_secs(3));
}

// ---------------------------------------------------------------------------
// Bad input: configuration

#[test]
fn empty_and_padded_credentials_are_refused_by_name() {
    let good = [CLIENT_ID, CLIENT_SECRET, ACCESS_KEY_ID, ACCESS_KEY_SECRET];
    let fields = [
        "client id",
        "client secret",
        "access key id",
        "access key secret",
    ];
    for (i, field) in fields.iter().enumerate() {
        for (bad, says) in [
            (String::new(), "is empty"),
            ("  \t ".to_owned(), "is empty"),
            (format!("{}\n", good[i]), "has leading/trailing whitespace"),
            (format!(" {}", good[i]), "has leading/trailing whitespace"),
        ] {
            let mut args = good.map(str::to_owned);
            args[i] = bad.clone();
            let [a, b, c, d] = args;
            let err = AccessKeyGrant::new(a, b, c, d).unwrap_err();
            assert_error(&err, ErrorKind::Config);
            assert!(
                err.to_string().contains(&format!("the {field} {says}")),
                "{bad:?}: {err}"
            );
            if i < 2 {
                let mut pair = [good[0].to_owned(), good[1].to_owned()];
                pair[i] = bad.clone();
                let [a, b] = pair;
                let err = ClientCredentials::new(a, b).unwrap_err();
                assert_error(&err, ErrorKind::Config);
                assert!(err.to_string().contains(&format!("the {field} {says}")));
            }
        }
    }
}

#[test]
fn token_urls_must_be_https_except_loopback() {
    let source = || ClientCredentials::new(CLIENT_ID, CLIENT_SECRET).unwrap();
    for bad in [
        "http://cxone.example.com/auth/token",
        "http://192.168.1.10/auth/token",
        "not a url",
        "cxone.niceincontact.com/auth/token",
        "https://client:pw@cxone.example.com/auth/token",
    ] {
        let err = source().token_url(bad).unwrap_err();
        assert_error(&err, ErrorKind::Config);
        assert!(err.to_string().contains("token URL"), "{err}");
        let err = source().issuer(bad).unwrap_err();
        assert_error(&err, ErrorKind::Config);
        assert!(err.to_string().contains("issuer URL"), "{err}");
    }
    for good in [
        "https://cxone.example.com/auth/token",
        "http://127.0.0.1:8080/auth/token",
        "http://[::1]:8080/auth/token",
        "http://localhost:8080/auth/token",
    ] {
        assert!(source().token_url(good).is_ok(), "{good}");
    }
    assert_eq!(
        source().environment(Environment::CxoneGov).token_endpoint(),
        Some(&TokenEndpoint::url("https://cxone-gov.niceincontact.com/auth/token").unwrap())
    );
}

#[test]
fn from_lookup_names_the_missing_variable() {
    let vars = [
        ("CXONE_CLIENT_ID", CLIENT_ID),
        ("CXONE_CLIENT_SECRET", CLIENT_SECRET),
        ("CXONE_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("CXONE_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET),
        ("CXONE_TOKEN_URL", "http://127.0.0.1:1/auth/token"),
        ("CXONE_SCOPES", "openid"),
    ];
    let lookup = |skip: &'static str| {
        move |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name && *n != skip)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let source = AccessKeyGrant::from_lookup(lookup("")).unwrap();
    assert_eq!(source.requested_scopes(), ["openid"]);
    for required in [
        "CXONE_CLIENT_ID",
        "CXONE_CLIENT_SECRET",
        "CXONE_ACCESS_KEY_ID",
        "CXONE_ACCESS_KEY_SECRET",
    ] {
        let err = AccessKeyGrant::from_lookup(lookup(required)).unwrap_err();
        assert_error(&err, ErrorKind::Config);
        assert_eq!(err.to_string(), format!("{required} is not set"));
    }
    // The client credentials grant needs no access key.
    assert!(ClientCredentials::from_lookup(lookup("CXONE_ACCESS_KEY_ID")).is_ok());
}

// ---------------------------------------------------------------------------
// Bad input: the token server's answers

#[tokio::test(start_paused = true)]
async fn html_answers_are_invalid_responses() {
    let mock = MockCxone::new();
    let source = access_key(&mock);
    mock.fail_next_token_requests(1, TokenFault::html());
    let err = fetch_err(&source).await;
    assert_error(&err, ErrorKind::InvalidResponse);
    assert!(err.to_string().contains("not a JSON object"), "{err}");
    assert_clean(&err.to_string(), &["Something went wrong", "<html"]);

    mock.fail_next_token_requests(1, TokenFault::html().with_status(502));
    let err = fetch_err(&source).await;
    assert_error(&err, ErrorKind::Unavailable);
    assert_eq!(err.status(), Some(StatusCode::BAD_GATEWAY));
}

#[tokio::test(start_paused = true)]
async fn truncated_json_is_an_invalid_response() {
    let mock = MockCxone::new();
    mock.fail_next_token_requests(1, TokenFault::truncated_json());
    let err = fetch_err(&access_key(&mock)).await;
    assert_error(&err, ErrorKind::InvalidResponse);
    assert!(err.is_transient());
    assert_clean(&format!("{err:?}"), &["eyJhbGciOiJSUzI1NiJ9"]);
}

#[tokio::test(start_paused = true)]
async fn a_two_gib_body_is_capped() {
    let mock = MockCxone::new();
    mock.fail_next_token_requests(1, TokenFault::huge_body(2 << 30));
    let err = fetch_err(&access_key(&mock)).await;
    assert_error(&err, ErrorKind::InvalidResponse);
    assert!(
        err.to_string()
            .contains(&format!("larger than {MAX_RESPONSE_BYTES} bytes")),
        "{err}"
    );
}

/// A body of `len` bytes made on demand, counting what was produced.
fn lazy_body(
    len: u64,
    produced: Arc<AtomicU64>,
) -> StreamBody<
    impl futures_util::Stream<Item = Result<http_body::Frame<Bytes>, Infallible>> + Send + 'static,
> {
    const CHUNK: usize = 64 * 1024;
    let chunk = Bytes::from(vec![b' '; CHUNK]);
    let chunks = len.div_ceil(CHUNK as u64);
    StreamBody::new(futures_util::stream::iter(0..chunks).map(move |_| {
        produced.fetch_add(CHUNK as u64, Ordering::SeqCst);
        Ok(http_body::Frame::data(chunk.clone()))
    }))
}

#[tokio::test(start_paused = true)]
async fn a_streamed_body_stops_being_read_past_the_cap() {
    let produced = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&produced);
    let endless = tower::service_fn(move |_: Request<Full<Bytes>>| {
        let body = lazy_body(2 << 30, Arc::clone(&counter));
        async move { Ok::<_, Infallible>(Response::new(body)) }
    });
    let source = ClientCredentials::new(CLIENT_ID, CLIENT_SECRET)
        .unwrap()
        .token_url("https://auth.example.com/token")
        .unwrap()
        .transport(ServiceTransport::new(endless));
    let err = fetch_err(&source).await;
    assert_error(&err, ErrorKind::InvalidResponse);
    let read = produced.load(Ordering::SeqCst);
    assert!(
        read <= (MAX_RESPONSE_BYTES + 64 * 1024) as u64,
        "{read} bytes read"
    );
}

#[tokio::test(start_paused = true)]
async fn an_error_field_on_200_is_a_failure() {
    let mock = MockCxone::new();
    mock.fail_next_token_requests(
        1,
        TokenFault::body(
            r#"{"access_token":"tok-SECRET","error":"invalid_grant","error_description":"access key disabled"}"#,
        ),
    );
    let err = fetch_err(&access_key(&mock)).await;
    assert_error(&err, ErrorKind::GrantRejected);
    assert_eq!(err.status(), Some(StatusCode::OK));
    assert!(err.to_string().contains("access key disabled"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_token_with_cr_lf_never_becomes_a_header() {
    let mock = MockCxone::new();
    mock.fail_next_token_requests(
        1,
        TokenFault::body(
            r#"{"access_token":"tok-SECRET\r\nX-Injected: yes","token_type":"Bearer","expires_in":3600}"#,
        ),
    );
    let err = fetch_err(&access_key(&mock)).await;
    assert_error(&err, ErrorKind::InvalidResponse);
    assert_clean(&format!("{err} {err:?}"), &["X-Injected"]);
}

#[tokio::test(start_paused = true)]
async fn negative_and_absurd_expires_in() {
    let mock = MockCxone::new();
    let source = access_key(&mock);
    mock.fail_next_token_requests(
        1,
        TokenFault::body(r#"{"access_token":"tok-SECRET","token_type":"Bearer","expires_in":-60}"#),
    );
    let err = fetch_err(&source).await;
    assert_error(&err, ErrorKind::InvalidResponse);
    assert!(err.to_string().contains("negative"), "{err}");

    mock.fail_next_token_requests(
        1,
        TokenFault::body(
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":315360000000}"#,
        ),
    );
    let token = source.fetch().await.unwrap();
    assert_eq!(token.lifetime(), MAX_LIFETIME);
}

#[tokio::test(start_paused = true)]
async fn other_token_types_and_missing_tokens_are_refused() {
    let mock = MockCxone::new();
    let source = access_key(&mock);
    for body in [
        r#"{"access_token":"tok-SECRET","token_type":"mac","expires_in":60}"#,
        r#"{"token_type":"Bearer","expires_in":60}"#,
    ] {
        mock.fail_next_token_requests(1, TokenFault::body(body));
        let err = fetch_err(&source).await;
        assert_error(&err, ErrorKind::InvalidResponse);
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_server_times_out() {
    let mock = MockCxone::new();
    mock.fail_next_token_requests(1, TokenFault::slow(Duration::from_secs(60)));
    let started = Instant::now();
    let err = fetch_err(&access_key(&mock)).await;
    assert_error(&err, ErrorKind::Timeout);
    assert!(err.is_timeout() && err.is_transient());
    assert_eq!(Instant::now() - started, DEFAULT_TIMEOUT);

    mock.fail_next_token_requests(1, TokenFault::slow(Duration::from_secs(60)));
    let started = Instant::now();
    let err = fetch_err(&access_key(&mock).timeout(Duration::from_secs(2))).await;
    assert_error(&err, ErrorKind::Timeout);
    assert_eq!(Instant::now() - started, Duration::from_secs(2));

    // Slow but within the timeout is fine.
    mock.fail_next_token_requests(1, TokenFault::slow(Duration::from_secs(9)));
    access_key(&mock).fetch().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn redirects_are_not_followed() {
    let mock = MockCxone::new();
    mock.fail_next_token_requests(
        1,
        TokenFault::status(302).with_header(
            LOCATION,
            HeaderValue::from_static("https://cxone.mock.invalid/auth/token"),
        ),
    );
    let err = fetch_err(&access_key(&mock)).await;
    assert_error(&err, ErrorKind::InvalidResponse);
    assert_eq!(err.status(), Some(StatusCode::FOUND));
    assert!(
        err.to_string().contains("redirects are not followed"),
        "{err}"
    );
    assert_eq!(mock.stats().token_requests, 1);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_and_outages_carry_retry_after() {
    let mock = MockCxone::new();
    let source = access_key(&mock);
    mock.fail_next_token_requests(1, TokenFault::rate_limited(Duration::from_secs(7)));
    let err = fetch_err(&source).await;
    assert_error(&err, ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(err.to_string().contains("retry after 7 s"), "{err}");

    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(90));
    mock.fail_next_token_requests(
        1,
        TokenFault::status(503).with_header(RETRY_AFTER, HeaderValue::from_str(&date).unwrap()),
    );
    let err = fetch_err(&source).await;
    assert_error(&err, ErrorKind::Unavailable);
    let wait = err.retry_after().unwrap().as_secs();
    assert!((88..=90).contains(&wait), "{wait}");
}

#[tokio::test(start_paused = true)]
async fn the_mock_refusals_are_classified() {
    let mock = MockCxone::builder()
        .grants([Grant::Password])
        .scopes(["openid"])
        .build();

    let wrong_secret = AccessKeyGrant::new(CLIENT_ID, "wrong", ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        .unwrap()
        .token_url(mock.token_url())
        .unwrap()
        .transport(in_memory(&mock));
    let err = fetch_err(&wrong_secret).await;
    assert_error(&err, ErrorKind::InvalidCredentials);
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert!(
        err.to_string().contains("check the client id and secret"),
        "{err}"
    );

    let wrong_key = AccessKeyGrant::new(CLIENT_ID, CLIENT_SECRET, ACCESS_KEY_ID, "wrong")
        .unwrap()
        .token_url(mock.token_url())
        .unwrap()
        .transport(in_memory(&mock));
    let err = fetch_err(&wrong_key).await;
    assert_error(&err, ErrorKind::GrantRejected);
    assert_eq!(err.oauth_code().unwrap().as_str(), "invalid_grant");

    // CXone's issuers do not offer `client_credentials`.
    let err = fetch_err(&client_credentials(&mock)).await;
    assert_error(&err, ErrorKind::GrantRejected);
    assert_eq!(
        err.oauth_code(),
        Some(&OAuthErrorCode::UnsupportedGrantType)
    );
    let only_client_credentials = MockCxone::builder()
        .grants([Grant::ClientCredentials])
        .build();
    let err = fetch_err(&access_key(&only_client_credentials)).await;
    assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::UnauthorizedClient));

    let err = fetch_err(&access_key(&mock).scopes(["openid", "admin"])).await;
    assert_error(&err, ErrorKind::InvalidScope);
    assert!(!err.is_transient());
}

// ---------------------------------------------------------------------------
// Redaction: Debug, Display and logs

#[tokio::test(start_paused = true)]
async fn no_public_type_shows_a_secret_or_token() {
    let mock = MockCxone::new();
    let source = access_key(&mock);
    let token = source.fetch().await.unwrap();
    let tenant = source.discover_tenant(&token).await.unwrap();
    let cc = client_credentials(&mock)
        .param("client_assertion", "assertion-tok-SECRET")
        .unwrap();
    let discovery = TenantDiscovery::new(Environment::Cxone).transport(in_memory(&mock));

    let debug = [
        format!("{source:?}"),
        format!("{:?}", source.clone().client_auth(ClientAuth::Body)),
        format!("{cc:?}"),
        format!("{token:?}"),
        format!("{:?}", token.claims()),
        format!("{:?}", token.header_value()),
        format!("{tenant:?}"),
        format!("{discovery:?}"),
        format!("{:?}", source.token_endpoint()),
        format!("{:?}", StaticToken::new(token.secret())),
        format!("{:?}", mock.token_requests()),
    ];
    for text in &debug {
        assert_clean(text, &[token.secret()]);
    }
    assert!(debug[0].contains("[redacted]"), "{}", debug[0]);

    // Every error a fetch can end in, formatted both ways.
    let faults = [
        TokenFault::html(),
        TokenFault::truncated_json(),
        TokenFault::body(format!(
            r#"{{"access_token":"{}","error":"invalid_client"}}"#,
            token.secret()
        )),
        TokenFault::body(format!(
            r#"{{"access_token":"{}","token_type":"mac"}}"#,
            token.secret()
        )),
        TokenFault::oauth_error(400, "invalid_request", "bad request"),
        TokenFault::rate_limited(Duration::from_secs(1)),
        TokenFault::slow(Duration::from_secs(60)),
    ];
    for fault in faults {
        mock.fail_next_token_requests(1, fault);
        let err = fetch_err(&source).await;
        assert_clean(&format!("{err} {err:?}"), &[token.secret()]);
    }
}

// ---------------------------------------------------------------------------
// Real sockets, default reqwest transport, real time; nothing timing-bound.

#[tokio::test]
async fn reqwest_transport_against_a_served_mock() {
    let server = MockCxone::new().serve().await.unwrap();
    let source = AccessKeyGrant::new(CLIENT_ID, CLIENT_SECRET, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        .unwrap()
        .issuer(server.issuer())
        .unwrap();
    let token = source.fetch().await.unwrap();
    let request = &server.token_requests()[0];
    assert_eq!(request.authorization().as_deref(), Some(EXPECTED_BASIC));
    assert_eq!(
        std::str::from_utf8(request.body()).unwrap(),
        EXPECTED_PASSWORD_FORM
    );
    assert_eq!(token.lifetime(), server.token_lifetime());

    let tenant = source.discover_tenant(&token).await.unwrap();
    assert_eq!(
        tenant.api_endpoint().as_str().trim_end_matches('/'),
        server.base_url()
    );
}

#[tokio::test]
async fn reqwest_transport_does_not_follow_redirects() {
    let server = MockCxone::new().serve().await.unwrap();
    server.fail_next_token_requests(
        1,
        TokenFault::status(307).with_header(
            LOCATION,
            HeaderValue::from_str(&server.token_url()).unwrap(),
        ),
    );
    let source = ClientCredentials::new(CLIENT_ID, CLIENT_SECRET)
        .unwrap()
        .token_url(server.token_url())
        .unwrap();
    let err = fetch_err(&source).await;
    assert_error(&err, ErrorKind::InvalidResponse);
    assert_eq!(err.status(), Some(StatusCode::TEMPORARY_REDIRECT));
    assert_eq!(
        server.stats().token_requests,
        1,
        "the redirect was followed"
    );
}

#[tokio::test]
async fn reqwest_transport_refuses_an_announced_huge_body() {
    let server = MockCxone::new().serve().await.unwrap();
    server.fail_next_token_requests(1, TokenFault::huge_body(2 << 30));
    let source = ClientCredentials::new(CLIENT_ID, CLIENT_SECRET)
        .unwrap()
        .token_url(server.token_url())
        .unwrap();
    let err = fetch_err(&source).await;
    assert_error(&err, ErrorKind::InvalidResponse);
    assert!(err.to_string().contains("larger than"), "{err}");
}

#[tokio::test]
async fn reqwest_transport_stops_reading_an_unannounced_huge_body() {
    let produced = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&produced);
    let app = axum::Router::new().route(
        "/auth/token",
        axum::routing::post(move || {
            let body = lazy_body(2 << 30, Arc::clone(&counter));
            async move { axum::body::Body::new(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let source = ClientCredentials::new(CLIENT_ID, CLIENT_SECRET)
        .unwrap()
        .token_url(format!("http://{addr}/auth/token"))
        .unwrap();
    let err = fetch_err(&source).await;
    assert_error(&err, ErrorKind::InvalidResponse);
    assert!(err.to_string().contains("larger than"), "{err}");
    // What the server made is bounded by the cap plus socket buffers, far
    // below the 2 GiB it offered.
    let made = produced.load(Ordering::SeqCst);
    assert!(made < 64 << 20, "{made} bytes produced");
    server.abort();
}

#[tokio::test]
async fn reqwest_transport_reports_refused_connections() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let source = ClientCredentials::new(CLIENT_ID, CLIENT_SECRET)
        .unwrap()
        .token_url(format!("http://{addr}/auth/token"))
        .unwrap();
    let err = fetch_err(&source).await;
    assert_error(&err, ErrorKind::Transport);
    assert!(err.is_transient());
}
