//! [`ClientCredentials`]: the standard OAuth 2.0 client credentials grant
//! (RFC 6749 §4.4).
//!
//! What most tutorials describe, and what most OAuth 2.0 servers speak:
//!
//! ```text
//! POST /oauth2/token
//! Authorization: Basic base64(urlencode(client_id):urlencode(client_secret))
//! Content-Type: application/x-www-form-urlencoded
//!
//! grant_type=client_credentials&scope=openid+agents%3Aread
//! ```
//!
//! CXone's own back-end flow is the access key grant
//! ([`AccessKeyGrant`](crate::token::AccessKeyGrant)); NICE's token endpoint
//! does not list `client_credentials`. Use this source for servers that do.
//!
//! ```
//! use cxone_auth::token::{ClientAuth, ClientCredentials};
//!
//! let source = ClientCredentials::new("my-app", "my-secret")?
//!     .token_url("https://auth.example.com/oauth2/token")?
//!     .scopes(["openid", "agents:read"])
//!     .client_auth(ClientAuth::Body)
//!     .param("audience", "https://api.example.com")?;
//! # Ok::<(), cxone_auth::Error>(())
//! ```

use std::fmt;

use crate::token::credential::{checked, checked_secret};
use crate::token::env::{EnvConfig, Lookup};
use crate::token::token_client::{TokenClient, token_client_builder};
use crate::{AccessToken, Error, TokenSource};

/// The grant type of RFC 6749 §4.4.
const GRANT_TYPE: &str = "client_credentials";

/// Form fields the source writes itself, which [`ClientCredentials::param`]
/// may not set.
const RESERVED_PARAMS: [&str; 4] = ["grant_type", "scope", "client_id", "client_secret"];

/// A [`TokenSource`] for the OAuth 2.0 client credentials grant.
///
/// Endpoint, client authentication, scopes, timeouts and transport are set
/// with the builder methods below; defaults: [`Environment::Cxone`](crate::token::Environment::Cxone),
/// [`ClientAuth::Basic`](crate::token::ClientAuth::Basic), no scopes, no extra
/// parameters, [`DEFAULT_TIMEOUT`](crate::token::DEFAULT_TIMEOUT), the
/// default `reqwest` transport. Clones share the discovered token URL and the
/// HTTP client.
#[derive(Clone)]
pub struct ClientCredentials {
    client: TokenClient,
    params: Vec<(String, String)>,
}

impl ClientCredentials {
    /// A source for the app `client_id`/`client_secret`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the field
    /// (never its value) when one is empty, only whitespace, or has
    /// leading/trailing whitespace. Padded values are refused, not trimmed.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Result<Self, Error> {
        Self::with_fields(
            ("client id", client_id.into()),
            ("client secret", client_secret.into()),
        )
    }

    fn with_fields(
        (id_field, client_id): (&str, String),
        (secret_field, client_secret): (&str, String),
    ) -> Result<Self, Error> {
        Ok(Self {
            client: TokenClient::new(
                checked(id_field, client_id)?,
                checked_secret(secret_field, client_secret)?,
            ),
            params: Vec::new(),
        })
    }

    /// A source configured from the environment: `CXONE_CLIENT_ID`,
    /// `CXONE_CLIENT_SECRET` (required); `CXONE_TOKEN_URL` or `CXONE_ISSUER`
    /// (optional, not both; default
    /// [`Environment::Cxone`](crate::token::Environment::Cxone));
    /// `CXONE_SCOPES` (optional, separated by spaces or commas).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the variable
    /// that is missing or unusable.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(crate::token::env::process_env)
    }

    /// [`from_env`](Self::from_env), reading variables through `lookup`
    /// instead of the process environment. `lookup` returns `None` for an
    /// unset variable.
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup<F>(lookup: F) -> Result<Self, Error>
    where
        F: FnMut(&str) -> Option<String>,
    {
        let common = EnvConfig::read(&mut Lookup::new(lookup))?;
        let source = Self::with_fields(
            ("client id (CXONE_CLIENT_ID)", common.client_id),
            ("client secret (CXONE_CLIENT_SECRET)", common.client_secret),
        )?;
        Ok(source.endpoint(common.endpoint).scopes(common.scopes))
    }

    /// Adds a form parameter to every token request (`audience`,
    /// `resource`, ...), after the standard ones. Values may be secret:
    /// `Debug` shows only names.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when `name` is empty
    /// or one the source sets itself (`grant_type`, `scope`, `client_id`,
    /// `client_secret`; use the builder methods for those).
    pub fn param(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, Error> {
        let name = name.into();
        if name.is_empty() {
            return Err(Error::config("a form parameter name is empty"));
        }
        if RESERVED_PARAMS.contains(&name.as_str()) {
            return Err(Error::config(format!(
                "the form parameter `{name}` is set by the source itself"
            )));
        }
        self.params.push((name, value.into()));
        Ok(self)
    }
}

token_client_builder!(ClientCredentials);

impl TokenSource for ClientCredentials {
    async fn fetch(&self) -> Result<AccessToken, Error> {
        let params: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        self.client.fetch(GRANT_TYPE, &params).await
    }

    /// A hex SHA-256 of the endpoint, grant, client id, sorted scopes and
    /// extra parameters; no secret.
    fn shared_key(&self) -> Option<String> {
        Some(self.client.shared_key(GRANT_TYPE, None, &self.params))
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(name, _)| name.as_str()).collect();
        let mut d = f.debug_struct("ClientCredentials");
        self.client.debug_fields(&mut d);
        d.field("params", &names).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn reserved_params_are_refused() {
        let source = ClientCredentials::new("id", "secret").unwrap();
        for name in RESERVED_PARAMS.into_iter().chain([""]) {
            let err = source.clone().param(name, "x").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{name}");
        }
    }

    #[test]
    fn debug_shows_param_names_not_values() {
        let source = ClientCredentials::new("id", "client-SECRET")
            .unwrap()
            .param("client_assertion", "assertion-SECRET")
            .unwrap();
        let debug = format!("{source:?}");
        assert!(debug.contains("client_assertion"), "{debug}");
        assert!(!debug.contains("SECRET"), "{debug}");
    }

    #[test]
    fn shared_key_depends_on_params() {
        let plain = ClientCredentials::new("id", "s").unwrap();
        let with_audience = plain.clone().param("audience", "a").unwrap();
        assert_ne!(plain.shared_key(), with_audience.shared_key());
        assert_eq!(plain.shared_key(), plain.clone().shared_key());
    }
}
