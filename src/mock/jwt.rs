//! JWT-shaped tokens with CXone's claims.
//!
//! The mock's access tokens look like CXone's: `header.payload.signature`,
//! base64url without padding, with the claims NICE's example shows (`iss`,
//! `sub`, `aud`, `tenantId`, `tenant`, `icBUId`, `icClusterId`, `role`,
//! `iat`, `exp`) plus a unique `jti`. The signature is not a signature: no
//! client should verify it, since CXone tokens are read for routing, not
//! trusted. `iat` and `exp` are wall-clock Unix seconds, as in any JWT; the
//! mock's own expiry check uses tokio's clock instead, so paused-time tests
//! control it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::state::Config;

/// Where the `iss` claim of the mock's tokens points, relative to the base URL.
///
/// It differs from the discovery `issuer` on purpose: in NICE's example the
/// token's `iss` is not the discovery issuer either, and a client that
/// validates it strictly against discovery breaks on real CXone.
const TOKEN_ISSUER_PATH: &str = "/auth";

/// The token type RFC 8693 names for an access token, which CXone sends as
/// `issued_token_type`.
pub(super) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The tokens of one successful token response.
pub(super) struct Minted {
    pub(super) access_token: String,
    pub(super) id_token: String,
    pub(super) refresh_token: String,
}

/// Mints the tokens of one response. `sequence` makes the `jti` unique within
/// this mock; a random part makes it unique across mocks.
pub(super) fn mint(config: &Config, base_url: &str, lifetime: Duration, sequence: u64) -> Minted {
    let iat = unix_now();
    let exp = iat.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
    let jti = format!("{sequence:08x}-{:016x}", fastrand::u64(..));
    let sub = format!("user:{}", config.user_id);
    let access_claims = json!({
        "iss": format!("{base_url}{TOKEN_ISSUER_PATH}"),
        "sub": sub,
        "aud": config.client_id,
        "tenantId": config.tenant_id,
        "tenant": config.tenant_name,
        "icBUId": config.business_unit_id,
        "icClusterId": config.cluster_id,
        "role": { "legacyId": "Administrator", "secondaryRoles": [] },
        "iat": iat,
        "exp": exp,
        "jti": jti,
    });
    let id_claims = json!({
        "iss": base_url,
        "sub": sub,
        "aud": config.client_id,
        "tenantId": config.tenant_id,
        "iat": iat,
        "exp": exp,
        "jti": format!("{jti}-id"),
    });
    Minted {
        access_token: encode(&access_claims, &jti),
        id_token: encode(&id_claims, &jti),
        refresh_token: format!("mock-refresh-{jti}"),
    }
}

fn encode(claims: &serde_json::Value, jti: &str) -> String {
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": "cxone-mock" });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(format!("not-a-signature-{jti}")),
    )
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
