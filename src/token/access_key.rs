//! [`AccessKeyGrant`]: CXone's real back-end flow.
//!
//! A back-end app registered with NICE has a client id and secret; a CXone
//! user has an access key (id and secret). The token request is the OAuth 2.0
//! password grant with the access key as user name and password, the client
//! credentials in HTTP Basic:
//!
//! ```text
//! POST /auth/token
//! Authorization: Basic base64(urlencode(client_id):urlencode(client_secret))
//! Content-Type: application/x-www-form-urlencoded
//!
//! grant_type=password&username=<access key id>&password=<access key secret>
//! ```
//!
//! Access key secrets end in `====` and hold `+` and `/`; they are
//! form-urlencoded, as they must be.
//!
//! ```
//! use cxone_auth::TokenSource as _;
//! use cxone_auth::token::{AccessKeyGrant, Environment};
//!
//! let source = AccessKeyGrant::new("client-id", "client-secret", "ACCESSKEYID", "c2VjcmV0+/x====")?
//!     .environment(Environment::Cxone);
//! assert!(source.shared_key().is_some());
//! assert!(!format!("{source:?}").contains("c2VjcmV0"));
//! # Ok::<(), cxone_auth::Error>(())
//! ```

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::token::credential::{checked, checked_secret};
use crate::token::env::{EnvConfig, Lookup};
use crate::token::token_client::{TokenClient, token_client_builder};
use crate::{AccessToken, Error, TokenSource};

/// The grant type of the access key flow.
const GRANT_TYPE: &str = "password";

/// A [`TokenSource`] for CXone's access key flow (the OAuth 2.0 password
/// grant with an access key).
///
/// Endpoint, client authentication, scopes, timeouts and transport are set
/// with the builder methods below; defaults: [`Environment::Cxone`](crate::token::Environment::Cxone),
/// [`ClientAuth::Basic`](crate::token::ClientAuth::Basic), no scopes,
/// [`DEFAULT_TIMEOUT`](crate::token::DEFAULT_TIMEOUT), the default `reqwest`
/// transport. Clones share the discovered token URL and the HTTP client.
#[derive(Clone)]
pub struct AccessKeyGrant {
    client: TokenClient,
    access_key_id: String,
    access_key_secret: SecretString,
}

impl AccessKeyGrant {
    /// A source for the app `client_id`/`client_secret` acting as the user
    /// who owns the access key.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the field
    /// (never its value) when one is empty, only whitespace, or has
    /// leading/trailing whitespace. Padded values are refused, not trimmed.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<String>,
    ) -> Result<Self, Error> {
        Self::with_fields(
            ("client id", client_id.into()),
            ("client secret", client_secret.into()),
            ("access key id", access_key_id.into()),
            ("access key secret", access_key_secret.into()),
        )
    }

    /// Checks each value, named by its field (or variable) in errors.
    fn with_fields(
        (id_field, client_id): (&str, String),
        (secret_field, client_secret): (&str, String),
        (key_id_field, access_key_id): (&str, String),
        (key_secret_field, access_key_secret): (&str, String),
    ) -> Result<Self, Error> {
        Ok(Self {
            client: TokenClient::new(
                checked(id_field, client_id)?,
                checked_secret(secret_field, client_secret)?,
            ),
            access_key_id: checked(key_id_field, access_key_id)?,
            access_key_secret: checked_secret(key_secret_field, access_key_secret)?,
        })
    }

    /// A source configured from the environment: `CXONE_CLIENT_ID`,
    /// `CXONE_CLIENT_SECRET`, `CXONE_ACCESS_KEY_ID`, `CXONE_ACCESS_KEY_SECRET`
    /// (required); `CXONE_TOKEN_URL` or `CXONE_ISSUER` (optional, not both;
    /// default [`Environment::Cxone`](crate::token::Environment::Cxone));
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
    /// instead of the process environment (for tests, or configuration kept
    /// elsewhere). `lookup` returns `None` for an unset variable.
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup<F>(lookup: F) -> Result<Self, Error>
    where
        F: FnMut(&str) -> Option<String>,
    {
        let mut lookup = Lookup::new(lookup);
        let common = EnvConfig::read(&mut lookup)?;
        let source = Self::with_fields(
            ("client id (CXONE_CLIENT_ID)", common.client_id),
            ("client secret (CXONE_CLIENT_SECRET)", common.client_secret),
            (
                "access key id (CXONE_ACCESS_KEY_ID)",
                lookup.required("CXONE_ACCESS_KEY_ID")?,
            ),
            (
                "access key secret (CXONE_ACCESS_KEY_SECRET)",
                lookup.required("CXONE_ACCESS_KEY_SECRET")?,
            ),
        )?;
        Ok(source.endpoint(common.endpoint).scopes(common.scopes))
    }

    /// The access key id (not secret; it names the key).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }
}

token_client_builder!(AccessKeyGrant);

impl TokenSource for AccessKeyGrant {
    async fn fetch(&self) -> Result<AccessToken, Error> {
        self.client
            .fetch(
                GRANT_TYPE,
                &[
                    ("username", &self.access_key_id),
                    ("password", self.access_key_secret.expose_secret()),
                ],
            )
            .await
    }

    /// A hex SHA-256 of the endpoint, grant, client id, access key id and
    /// sorted scopes; no secret.
    fn shared_key(&self) -> Option<String> {
        Some(
            self.client
                .shared_key(GRANT_TYPE, Some(&self.access_key_id), &[]),
        )
    }
}

impl fmt::Debug for AccessKeyGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("AccessKeyGrant");
        self.client.debug_fields(&mut d);
        d.field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::ErrorKind;
    use crate::token::{Environment, TokenEndpoint};

    const KEY_SECRET: &str = "Zm9vYmFy+/c2VjcmV0====";

    #[test]
    fn every_field_is_checked_by_name() {
        let cases = [
            (["", "s", "k", "ks"], "the client id is empty"),
            (["c", " ", "k", "ks"], "the client secret is empty"),
            (
                ["c", "s", "k ", "ks"],
                "the access key id has leading/trailing whitespace",
            ),
            (
                ["c", "s", "k", "\tks"],
                "the access key secret has leading/trailing whitespace",
            ),
        ];
        for ([a, b, c, d], says) in cases {
            let err = AccessKeyGrant::new(a, b, c, d).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> impl FnMut(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const ALL: [(&str, &str); 4] = [
        ("CXONE_CLIENT_ID", "app"),
        ("CXONE_CLIENT_SECRET", "app-secret"),
        ("CXONE_ACCESS_KEY_ID", "KEYID"),
        ("CXONE_ACCESS_KEY_SECRET", KEY_SECRET),
    ];

    #[test]
    fn from_lookup_reads_every_variable() {
        let mut pairs = ALL.to_vec();
        pairs.push(("CXONE_ISSUER", "https://cxone-gov.niceincontact.com"));
        pairs.push(("CXONE_SCOPES", "openid, agents:read"));
        let source = AccessKeyGrant::from_lookup(vars(&pairs)).unwrap();
        assert_eq!(source.access_key_id(), "KEYID");
        assert_eq!(
            source.token_endpoint(),
            &TokenEndpoint::discover("https://cxone-gov.niceincontact.com").unwrap()
        );
        assert_eq!(source.requested_scopes(), ["openid", "agents:read"]);

        let default = AccessKeyGrant::from_lookup(vars(&ALL)).unwrap();
        assert_eq!(default.token_endpoint(), &Environment::Cxone.into());
    }

    #[test]
    fn from_lookup_names_the_missing_or_bad_variable() {
        for missing in ALL.map(|(name, _)| name) {
            let pairs: Vec<_> = ALL.iter().copied().filter(|(n, _)| *n != missing).collect();
            let err = AccessKeyGrant::from_lookup(vars(&pairs)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(
                err.to_string().contains(&format!("{missing} is not set")),
                "{err}"
            );
        }
        let mut padded = ALL.to_vec();
        padded[3] = ("CXONE_ACCESS_KEY_SECRET", "Zm9vYmFy+/c2VjcmV0====\n");
        let err = AccessKeyGrant::from_lookup(vars(&padded)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(
                "access key secret (CXONE_ACCESS_KEY_SECRET) has leading/trailing whitespace"
            ),
            "{text}"
        );
        assert!(!text.contains("Zm9vYmFy"), "{text}");
    }

    #[test]
    fn debug_and_key_hold_no_secret() {
        let source = AccessKeyGrant::new("app", "app-secret", "KEYID", KEY_SECRET).unwrap();
        let debug = format!("{source:?}");
        assert!(
            debug.contains("KEYID") && debug.contains("[redacted]"),
            "{debug}"
        );
        assert!(
            !debug.contains("app-secret") && !debug.contains("Zm9vYmFy"),
            "{debug}"
        );
        let key = source.shared_key().unwrap();
        assert!(!key.contains("secret") && !key.contains("Zm9vYmFy"));
        let other_key = AccessKeyGrant::new("app", "app-secret", "KEYID2", KEY_SECRET)
            .unwrap()
            .shared_key();
        assert_ne!(Some(key), other_key);
    }
}
