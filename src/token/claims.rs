//! Read-only JWT claims of an access token: the `tenantId` tenant discovery
//! needs, and `exp` when the token endpoint sends no `expires_in`. The
//! signature is not checked, so claims serve routing and timing only.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Map, Value};

/// The longest JWT payload decoded, in bytes. Real CXone payloads are well
/// under 2 KiB; the bound keeps a hostile token from costing memory.
const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// The claims of a JWT, decoded without checking its signature.
///
/// ```
/// use base64::Engine as _;
/// use base64::engine::general_purpose::URL_SAFE_NO_PAD;
/// use cxone_auth::token::JwtClaims;
///
/// let payload = URL_SAFE_NO_PAD.encode(r#"{"tenantId":"t-1","icBUId":-42,"exp":1700000000}"#);
/// let jwt = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln");
/// let claims = JwtClaims::from_jwt(&jwt).expect("a JWT");
/// assert_eq!(claims.tenant_id(), Some("t-1"));
/// assert_eq!(claims.business_unit_id(), Some(-42));
/// assert_eq!(claims.exp(), Some(1_700_000_000));
/// ```
#[derive(Clone, PartialEq)]
pub struct JwtClaims {
    claims: Map<String, Value>,
}

impl JwtClaims {
    /// Decodes the payload of a compact JWT (`header.payload.signature`).
    ///
    /// Returns `None` when `token` is not a JWT whose payload is a JSON object:
    /// opaque tokens are normal and simply have no claims.
    pub fn from_jwt(token: &str) -> Option<Self> {
        let mut parts = token.split('.');
        let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || payload.len() > MAX_PAYLOAD_BYTES {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .or_else(|_| URL_SAFE.decode(payload))
            .ok()?;
        match serde_json::from_slice(&bytes).ok()? {
            Value::Object(claims) => Some(Self { claims }),
            _ => None,
        }
    }

    /// `exp`: when the token expires, in seconds since the Unix epoch.
    pub fn exp(&self) -> Option<i64> {
        self.integer("exp")
    }

    /// `iat`: when the token was issued, in seconds since the Unix epoch.
    pub fn iat(&self) -> Option<i64> {
        self.integer("iat")
    }

    /// `tenantId`: the CXone tenant the token belongs to, the key of tenant
    /// discovery.
    pub fn tenant_id(&self) -> Option<&str> {
        self.string("tenantId")
    }

    /// `icBUId`: the business unit id (an integer, which can be negative).
    pub fn business_unit_id(&self) -> Option<i64> {
        self.integer("icBUId")
    }

    /// `icClusterId`: the cluster serving the tenant.
    pub fn cluster_id(&self) -> Option<&str> {
        self.string("icClusterId")
    }

    /// `sub`: the subject, `user:<uuid>` for CXone access keys.
    pub fn subject(&self) -> Option<&str> {
        self.string("sub")
    }

    /// `iss`: the issuer as the token states it. Not validated: NICE's tokens
    /// name an issuer other than the discovery document's.
    pub fn issuer(&self) -> Option<&str> {
        self.string("iss")
    }

    /// Any claim, as JSON.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    fn string(&self, name: &str) -> Option<&str> {
        self.claims.get(name)?.as_str()
    }

    /// Integers arrive as numbers or, from some issuers, as strings.
    fn integer(&self, name: &str) -> Option<i64> {
        match self.claims.get(name)? {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Debug for JwtClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtClaims")
            .field("tenant_id", &self.tenant_id())
            .field("business_unit_id", &self.business_unit_id())
            .field("cluster_id", &self.cluster_id())
            .field("exp", &self.exp())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn reads_cxone_claims() {
        let claims = JwtClaims::from_jwt(&jwt(
            r#"{"iss":"https://auth.example","sub":"user:1","tenantId":"11e","icBUId":"4600","icClusterId":"B32","exp":17.9}"#,
        ))
        .unwrap();
        assert_eq!(claims.tenant_id(), Some("11e"));
        assert_eq!(claims.business_unit_id(), Some(4600));
        assert_eq!(claims.cluster_id(), Some("B32"));
        assert_eq!(claims.subject(), Some("user:1"));
        assert_eq!(claims.exp(), Some(17));
    }

    #[test]
    fn opaque_and_broken_tokens_have_no_claims() {
        for token in [
            "opaque",
            "a.b",
            "a.b.c.d",
            "e30.!!!.sig",
            &jwt("[1,2]"),
            &jwt("not json"),
            "",
        ] {
            assert!(JwtClaims::from_jwt(token).is_none(), "{token}");
        }
    }

    #[test]
    fn padded_payloads_decode() {
        let padded = format!("e30.{}.sig", URL_SAFE.encode(r#"{"exp":5}"#));
        assert_eq!(JwtClaims::from_jwt(&padded).unwrap().exp(), Some(5));
    }
}
