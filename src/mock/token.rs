//! `POST /auth/token`: client authentication (RFC 6749 §2.3), the two
//! grants and the refresh grant, the access-key endpoints, the JWT-shaped
//! tokens, and the record of each request.

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use percent_encoding::percent_decode_str;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{ExpiresIn, Grant, MockCxone, MockCxoneBuilder, Runtime, TokenFault, no_store};

const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The largest body read (real ones are a few hundred bytes), to bound memory.
const MAX_TOKEN_REQUEST_BYTES: usize = 64 * 1024;

/// How many token requests are recorded; older ones are dropped first.
const MAX_RECORDED_TOKEN_REQUESTS: usize = 1_000;

/// Form fields whose values `Debug` hides.
const SECRET_FIELDS: &str = "password client_secret refresh_token subject_token";

type Form = [(String, String)];

/// How long a refresh token lives, as in NICE's example.
pub(super) const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(7200);

/// Answers one token request (faults and recording aside) from its headers,
/// form and raw body.
type Answer = fn(&MockCxone, &HeaderMap, &Form, &[u8]) -> Result<Response, Refusal>;

pub(super) async fn token(
    State(cxone): State<MockCxone>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    serve(cxone, headers, body, false, |cxone, headers, form, _| {
        grant(cxone, headers, form)
    })
    .await
}

/// `POST /authentication/v1/token/access-key`: the access key alone, in JSON.
pub(super) async fn access_key(
    State(cxone): State<MockCxone>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    serve(cxone, headers, body, true, |cxone, headers, _, body| {
        access_key_grant(cxone, headers, body, false)
    })
    .await
}

/// The older `/InContactAuthorizationServer/token/access-key`, which also
/// names `resource_server_base_uri`.
pub(super) async fn legacy_access_key(
    State(cxone): State<MockCxone>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    serve(cxone, headers, body, true, |cxone, headers, _, body| {
        access_key_grant(cxone, headers, body, true)
    })
    .await
}

/// Reads, records and answers a token request; a JSON body records no form.
async fn serve(
    cxone: MockCxone,
    headers: HeaderMap,
    body: Body,
    json: bool,
    answer: Answer,
) -> Response {
    cxone.lock().stats.token_requests += 1;
    let Ok(body) = Limited::new(body, MAX_TOKEN_REQUEST_BYTES).collect().await else {
        cxone.lock().stats.token_failed += 1;
        let mut refusal = bad_request("invalid_request", "the body is over 64 KiB");
        refusal.0 = StatusCode::PAYLOAD_TOO_LARGE;
        return refusal.into_response();
    };
    let body = body.to_bytes();
    let form: Vec<(String, String)> = if json {
        Vec::new()
    } else {
        url::form_urlencoded::parse(&body).into_owned().collect()
    };
    let (fault, delay) = {
        let mut runtime = cxone.lock();
        if runtime.recorded.len() >= MAX_RECORDED_TOKEN_REQUESTS {
            runtime.recorded.pop_front();
        }
        runtime.recorded.push_back(RecordedTokenRequest {
            authorization: headers.get(AUTHORIZATION).cloned(),
            content_type: headers.get(CONTENT_TYPE).cloned(),
            body: body.clone(),
            form: form.clone(),
            received_at: Instant::now(),
        });
        (runtime.token_faults.pop_front(), runtime.token_delay)
    };
    let delay = delay.saturating_add(fault.as_ref().map(TokenFault::delay).unwrap_or_default());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(response) = fault.as_ref().and_then(TokenFault::response) {
        cxone.lock().stats.token_failed += 1;
        return response;
    }
    let answer = answer(&cxone, &headers, &form, &body);
    let stats = &mut cxone.lock().stats;
    let (count, response) = match answer {
        Ok(response) => (&mut stats.token_succeeded, no_store(response)),
        Err(refusal) => (&mut stats.token_failed, refusal.into_response()),
    };
    *count += 1;
    response
}

/// Checks the request in the order the module docs give; issues a token if it is good.
fn grant(cxone: &MockCxone, headers: &HeaderMap, form: &Form) -> Result<Response, Refusal> {
    let config = &cxone.shared.config;
    if !has_media_type(headers, FORM_CONTENT_TYPE) {
        let description = format!("the body must be {FORM_CONTENT_TYPE}");
        return Err(bad_request("invalid_request", &description));
    }
    if let Some(name) = repeated(form) {
        let description = format!("the parameter {name} is repeated");
        return Err(bad_request("invalid_request", &description));
    }

    let (id, secret, basic) = client(headers.get(AUTHORIZATION), form)?;
    let is_client = |id: &str, secret: &str| {
        id == config.client_id && secret == config.client_secret.expose_secret()
    };
    // Basic as NICE documents it (RFC 7617), or as RFC 6749 §2.3.1 words it.
    let form_decoded = || Some((form_decode(&id)?, form_decode(&secret)?));
    let known = is_client(&id, &secret)
        || basic && form_decoded().is_some_and(|(id, secret)| is_client(&id, &secret));
    if !known {
        let description = "client authentication failed: unknown client or wrong secret";
        return Err(invalid_client(description, basic));
    }

    let Some(grant_type) = param(form, "grant_type") else {
        return Err(bad_request("invalid_request", "grant_type is missing"));
    };
    if grant_type == "refresh_token" {
        let Some(refresh_token) = param(form, "refresh_token") else {
            return Err(bad_request("invalid_request", "refresh_token is missing"));
        };
        let expiry = cxone.lock().refresh_tokens.get(refresh_token).copied();
        if expiry.is_none_or(|expiry| expiry <= Instant::now()) {
            let description = "the refresh token is unknown, expired or revoked";
            return Err(bad_request("invalid_grant", description));
        }
        return Ok(Json(cxone.issue().1).into_response());
    }
    let mut grants = [Grant::Password, Grant::ClientCredentials].into_iter();
    let Some(grant) = grants.find(|grant| grant.as_str() == grant_type) else {
        let description = "this grant type is not supported";
        return Err(bad_request("unsupported_grant_type", description));
    };
    if grant == Grant::ClientCredentials && !config.grants.contains(&grant) {
        // CXone's issuers do not offer it (it is not in NICE's OpenAPI).
        let description = "this grant type is not supported";
        return Err(bad_request("unsupported_grant_type", description));
    }
    if !config.grants.contains(&grant) {
        let description = format!("the {grant_type} grant is not enabled for this client");
        return Err(bad_request("unauthorized_client", &description));
    }
    if grant == Grant::Password {
        let (Some(username), Some(password)) = (param(form, "username"), param(form, "password"))
        else {
            let description = "the password grant needs username (the access key id) and password (the access key secret)";
            return Err(bad_request("invalid_request", description));
        };
        if !cxone.lock().is_access_key(username, password) {
            let description = "the access key is unknown, inactive or its secret is wrong";
            return Err(bad_request("invalid_grant", description));
        }
    }

    let scopes: Option<Vec<&str>> =
        param(form, "scope").map(|scope| scope.split(' ').filter(|s| !s.is_empty()).collect());
    if let (Some(requested), Some(granted)) = (&scopes, &config.scopes)
        && let Some(missing) = requested.iter().find(|s| !granted.iter().any(|g| g == *s))
    {
        let description = format!("the scope {missing} is not granted to this client");
        return Err(bad_request("invalid_scope", &description));
    }

    let (_, mut body) = cxone.issue();
    if let Some(scopes) = scopes {
        body["scope"] = scopes.join(" ").into();
    }
    Ok(Json(body).into_response())
}

/// The access key alone: JSON `{"accessKeyId", "accessKeySecret"}`, no client.
fn access_key_grant(
    cxone: &MockCxone,
    headers: &HeaderMap,
    body: &[u8],
    legacy: bool,
) -> Result<Response, Refusal> {
    if !has_media_type(headers, "application/json") {
        return Err(bad_request(
            "invalid_request",
            "the body must be application/json",
        ));
    }
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| json.as_ref()?.get(name)?.as_str().filter(|v| !v.is_empty());
    let (Some(id), Some(secret)) = (field("accessKeyId"), field("accessKeySecret")) else {
        let description = "the body must be a JSON object with accessKeyId and accessKeySecret";
        return Err(bad_request("invalid_request", description));
    };
    if !cxone.lock().is_access_key(id, secret) {
        let description = "the access key is unknown, inactive or its secret is wrong";
        return Err(bad_request("invalid_grant", description));
    }
    let (_, mut body) = cxone.issue();
    if legacy {
        body["resource_server_base_uri"] = format!("{}/inContactAPI/", cxone.api_endpoint()).into();
    }
    Ok(Json(body).into_response())
}

/// Whether the `Content-Type` is `media`, parameters aside.
fn has_media_type(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|found| found.trim().eq_ignore_ascii_case(media))
}

/// The client id and secret presented, and whether by HTTP Basic; not yet
/// checked. RFC 6749 §2.3 allows one method per request.
fn client(auth: Option<&HeaderValue>, form: &Form) -> Result<(String, String, bool), Refusal> {
    let (body_id, body_secret) = (param(form, "client_id"), param(form, "client_secret"));
    let Some(header) = auth else {
        let description = match (body_id, body_secret) {
            (Some(id), Some(secret)) => return Ok((id.to_owned(), secret.to_owned(), false)),
            (Some(_), None) => "client_secret is missing; this client must authenticate",
            (None, _) => "no client authentication: send HTTP Basic or client_id and client_secret",
        };
        return Err(invalid_client(description, false));
    };
    let Some((id, secret)) = decode_basic(header) else {
        let description = "the Authorization header is not HTTP Basic client authentication";
        return Err(invalid_client(description, true));
    };
    if body_secret.is_some() {
        let description = "the client authenticated with both HTTP Basic and client_secret in the body; use one method";
        return Err(bad_request("invalid_request", description));
    }
    let same_id = |body_id: &str| body_id == id || form_decode(&id).is_some_and(|id| id == body_id);
    if body_id.is_some_and(|body_id| !same_id(body_id)) {
        let description = "client_id in the body differs from the HTTP Basic client id";
        return Err(bad_request("invalid_request", description));
    }
    Ok((id, secret, true))
}

/// Decodes a Basic header: base64 of the id, `:`, the secret (RFC 7617; RFC
/// 6749 §2.3.1 form-urlencodes each first, see [`form_decode`]). `None` for others.
fn decode_basic(header: &HeaderValue) -> Option<(String, String)> {
    let (scheme, encoded) = header.to_str().ok()?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    // An id cannot hold a ':' either way, so the first one separates.
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Undoes form-urlencoding (a `+` is a space); `None` if not UTF-8 after.
fn form_decode(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    Some(percent_decode_str(&spaced).decode_utf8().ok()?.into_owned())
}

/// The value of `name`; an empty value counts as absent (RFC 6749 §3.1).
fn param<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    let (_, value) = form.iter().find(|(key, _)| key == name)?;
    Some(value.as_str()).filter(|value| !value.is_empty())
}

/// The first parameter sent more than once, which RFC 6749 §3.2 forbids.
fn repeated(form: &Form) -> Option<&str> {
    let mut seen = HashSet::with_capacity(form.len());
    form.iter()
        .map(|(key, _)| key.as_str())
        .find(|key| !seen.insert(*key))
}

/// An RFC 6749 §5.2 error answer: the status, the `error` code, the
/// description, and whether to send the `WWW-Authenticate` challenge that
/// §5.2 asks for when the client tried HTTP Basic.
struct Refusal(StatusCode, &'static str, String, bool);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let Refusal(status, code, description, basic_challenge) = self;
        let body = json!({ "error": code, "error_description": description });
        let mut response = no_store((status, Json(body)).into_response());
        if basic_challenge {
            let challenge =
                HeaderValue::from_static(r#"Basic realm="cxone-mock", charset="UTF-8""#);
            response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

fn bad_request(code: &'static str, description: &str) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, code, description.to_owned(), false)
}

fn invalid_client(description: &str, challenge: bool) -> Refusal {
    let (status, description) = (StatusCode::UNAUTHORIZED, description.to_owned());
    Refusal(status, "invalid_client", description, challenge)
}

/// Mints an access token and the token response (without `scope`), with the
/// claims of NICE's example and a `jti` unique within and across mocks. The
/// access token's `iss` is the issuer.
pub(super) fn mint(config: &MockCxoneBuilder, runtime: &Runtime) -> (String, Value) {
    let base_url = &runtime.base_url;
    let lifetime = runtime.token_lifetime.as_secs();
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let exp = iat.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX));
    let jti = format!("{:08x}-{:016x}", runtime.sequence, fastrand::u64(..));
    // The user behind the access key.
    let sub = "user:11eb0f4e-8d21-4a6f-b3e9-2c7d5a1f0e44";
    let access_claims = json!({
        "iss": base_url, "sub": sub, "aud": config.client_id,
        "tenantId": config.tenant_id, "tenant": "MockTenant",
        "icBUId": config.business_unit_id, "icClusterId": config.cluster_id,
        "role": { "legacyId": "Administrator", "secondaryRoles": [] },
        "iat": iat, "exp": exp, "jti": jti,
    });
    let id_claims = json!({
        "iss": base_url, "sub": sub, "aud": config.client_id, "tenantId": config.tenant_id,
        "iat": iat, "exp": exp, "jti": format!("{jti}-id"),
    });
    let jwt = |claims: Value| {
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": "cxone-mock" });
        let signature = format!("not-a-signature-{jti}");
        let [header, claims, signature] = [header.to_string(), claims.to_string(), signature]
            .map(|part| URL_SAFE_NO_PAD.encode(part));
        format!("{header}.{claims}.{signature}")
    };
    let refresh_lifetime = REFRESH_TOKEN_LIFETIME.as_secs() as i64;
    let refresh_claims = json!({
        "iss": base_url, "sub": sub, "tenantId": config.tenant_id,
        "iat": iat, "exp": iat.saturating_add(refresh_lifetime), "jti": format!("{jti}-refresh"),
    });
    let access_token = jwt(access_claims);
    let mut response = json!({
        "access_token": access_token, "token_type": "Bearer",
        "refresh_token": jwt(refresh_claims), "id_token": jwt(id_claims),
        // RFC 8693's name for an access token, which CXone sends.
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
    });
    match runtime.expires_in {
        ExpiresIn::Number => response["expires_in"] = lifetime.into(),
        ExpiresIn::String => response["expires_in"] = lifetime.to_string().into(),
        ExpiresIn::Omitted => {}
    }
    (access_token, response)
}

/// A token request as received, from [`MockCxone::token_requests`]. `Debug`
/// redacts the `Authorization` header and secret form fields; accessors do not.
#[derive(Clone)]
pub struct RecordedTokenRequest {
    authorization: Option<HeaderValue>,
    content_type: Option<HeaderValue>,
    body: bytes::Bytes,
    form: Vec<(String, String)>,
    received_at: Instant,
}

impl RecordedTokenRequest {
    /// The `Authorization` header as received, if any (lossy if not UTF-8).
    pub fn authorization(&self) -> Option<String> {
        Some(String::from_utf8_lossy(self.authorization.as_ref()?.as_bytes()).into())
    }

    /// The client id and secret of a Basic header, as sent: plain, as NICE
    /// documents (RFC 7617), or each form-urlencoded (RFC 6749 §2.3.1).
    pub fn basic_credentials(&self) -> Option<(String, String)> {
        decode_basic(self.authorization.as_ref()?)
    }

    /// The `Content-Type` header as received, if any.
    pub fn content_type(&self) -> Option<String> {
        Some(String::from_utf8_lossy(self.content_type.as_ref()?.as_bytes()).into())
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The first value of the form field `name`, decoded.
    pub fn form_value(&self, name: &str) -> Option<&str> {
        let (_, value) = self.form.iter().find(|(key, _)| key == name)?;
        Some(value)
    }

    /// When the request arrived, on tokio's clock.
    pub fn received_at(&self) -> Instant {
        self.received_at
    }
}

impl fmt::Debug for RecordedTokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let form: Vec<(&str, &str)> = (self.form.iter())
            .map(|(key, value)| {
                let secret = SECRET_FIELDS.split(' ').any(|field| field == key);
                (key.as_str(), if secret { "[redacted]" } else { value })
            })
            .collect();
        let authorization = self.authorization.as_ref().map(|_| "[redacted]");
        f.debug_struct("RecordedTokenRequest")
            .field("authorization", &authorization)
            .field("content_type", &self.content_type)
            .field("form", &form)
            .field("received_at", &self.received_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect()
    }

    fn header(value: &[u8]) -> HeaderValue {
        HeaderValue::from_bytes(value).unwrap()
    }

    #[test]
    fn empty_values_count_as_absent() {
        let form = parse("grant_type=&scope=a+b&username=x%2By");
        assert_eq!(param(&form, "grant_type"), None);
        assert_eq!(param(&form, "scope"), Some("a b"));
        assert_eq!(param(&form, "username"), Some("x+y"));
        assert_eq!(param(&form, "missing"), None);
    }

    #[test]
    fn finds_the_first_repeated_parameter() {
        assert_eq!(repeated(&parse("a=1&b=2&c=3")), None);
        assert_eq!(repeated(&parse("a=1&b=2&b=3&a=4")), Some("b"));
        // A large form with no repeat is read whole.
        let many: String = (0..30_000).map(|i| format!("k{i}=v&")).collect();
        assert_eq!(repeated(&parse(&many)), None);
    }

    #[test]
    fn basic_round_trips_every_special_character() {
        let secret = "a+b/c=:d e%f&g====";
        let encode =
            |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let credentials = format!("{}:{}", encode("id@x:y"), encode(secret));
        let encoded = format!("Basic {}", STANDARD.encode(credentials));
        let (id, sent) = decode_basic(&header(encoded.as_bytes())).unwrap();
        assert_eq!(form_decode(&id).as_deref(), Some("id@x:y"));
        assert_eq!(form_decode(&sent).as_deref(), Some(secret));
        // Plain, as NICE documents: the secret as it is, colons included.
        let plain = format!("Basic {}", STANDARD.encode(format!("id@x:{secret}")));
        let decoded = decode_basic(&header(plain.as_bytes())).unwrap();
        assert_eq!(decoded, ("id@x".to_owned(), secret.to_owned()));
    }

    #[test]
    fn form_decoding_reads_a_plus_as_a_space() {
        let raw = format!("Basic {}", STANDARD.encode("id:s+t"));
        let (_, secret) = decode_basic(&header(raw.as_bytes())).unwrap();
        assert_eq!(
            (secret.as_str(), form_decode(&secret).as_deref()),
            ("s+t", Some("s t"))
        );
        assert_eq!(form_decode("%ff%fe"), None);
    }

    #[test]
    fn scheme_is_case_insensitive() {
        let raw = format!("bAsIc {}", STANDARD.encode("id:secret"));
        assert!(decode_basic(&header(raw.as_bytes())).is_some());
    }

    #[test]
    fn malformed_headers_are_refused_without_panicking() {
        let no_colon = format!("Basic {}", STANDARD.encode("idsecret"));
        let bad_utf8 = format!("Basic {}", STANDARD.encode([b'i', b':', 0xff, 0xfe]));
        for value in [
            b"Basic".as_slice(),
            b"Basic ",
            b"Bearer abc",
            b"Basic !!!notbase64",
            no_colon.as_bytes(),
            bad_utf8.as_bytes(),
            b"Basic \xff\xfe",
        ] {
            assert!(decode_basic(&header(value)).is_none(), "{value:?}");
        }
    }
}
