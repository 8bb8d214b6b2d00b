//! Configuration from `CXONE_*` variables, shared by the grants' `from_env`.
//!
//! | Variable | Meaning |
//! |---|---|
//! | `CXONE_CLIENT_ID`, `CXONE_CLIENT_SECRET` | the app's credentials (required) |
//! | `CXONE_ACCESS_KEY_ID`, `CXONE_ACCESS_KEY_SECRET` | the access key ([`AccessKeyGrant`](crate::token::AccessKeyGrant) only, required) |
//! | `CXONE_TOKEN_URL` | a fixed token URL (optional) |
//! | `CXONE_ISSUER` | an issuer to discover the token URL from (optional; not with `CXONE_TOKEN_URL`) |
//! | `CXONE_SCOPES` | scopes, separated by spaces or commas (optional) |
//!
//! Without `CXONE_TOKEN_URL` and `CXONE_ISSUER` the endpoint is
//! [`Environment::Cxone`](crate::token::Environment::Cxone). An optional
//! variable set to an empty value counts as unset. `from_lookup` takes the
//! variables from a closure, so tests need not touch the process environment:
//!
//! ```
//! use cxone_auth::token::ClientCredentials;
//!
//! let source = ClientCredentials::from_lookup(|name| match name {
//!     "CXONE_CLIENT_ID" => Some("my-app".to_owned()),
//!     "CXONE_CLIENT_SECRET" => Some("my-secret".to_owned()),
//!     "CXONE_TOKEN_URL" => Some("https://auth.example.com/oauth2/token".to_owned()),
//!     "CXONE_SCOPES" => Some("openid,agents:read".to_owned()),
//!     _ => None,
//! })?;
//! assert_eq!(source.requested_scopes(), ["openid", "agents:read"]);
//!
//! let err = ClientCredentials::from_lookup(|_| None).unwrap_err();
//! assert!(err.to_string().contains("CXONE_CLIENT_ID is not set"));
//! # Ok::<(), cxone_auth::Error>(())
//! ```

use crate::Error;
use crate::token::TokenEndpoint;
use crate::token::endpoint::checked_url;

/// Reads the process environment. Values that are not Unicode are read
/// lossily; they then fail at the server rather than look unset.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
}

/// A variable reader.
pub(crate) struct Lookup<F> {
    lookup: F,
}

impl<F> Lookup<F>
where
    F: FnMut(&str) -> Option<String>,
{
    pub(crate) fn new(lookup: F) -> Self {
        Self { lookup }
    }

    /// The value of `name`, which must be set (it may be empty: the
    /// credential check then names the field).
    pub(crate) fn required(&mut self, name: &str) -> Result<String, Error> {
        (self.lookup)(name).ok_or_else(|| Error::config(format!("{name} is not set")))
    }

    /// The value of `name`, when set to something other than blanks.
    fn optional(&mut self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }
}

/// The variables both grants read.
pub(crate) struct EnvConfig {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) endpoint: TokenEndpoint,
    pub(crate) scopes: Vec<String>,
}

impl std::fmt::Debug for EnvConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("endpoint", &self.endpoint)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl EnvConfig {
    pub(crate) fn read<F>(lookup: &mut Lookup<F>) -> Result<Self, Error>
    where
        F: FnMut(&str) -> Option<String>,
    {
        let client_id = lookup.required("CXONE_CLIENT_ID")?;
        let client_secret = lookup.required("CXONE_CLIENT_SECRET")?;
        let endpoint = match (
            lookup.optional("CXONE_TOKEN_URL"),
            lookup.optional("CXONE_ISSUER"),
        ) {
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "set CXONE_TOKEN_URL or CXONE_ISSUER, not both",
                ));
            }
            (Some(url), None) => {
                TokenEndpoint::url(checked_url("token URL (CXONE_TOKEN_URL)", &url)?)?
            }
            (None, Some(issuer)) => {
                TokenEndpoint::discover(checked_url("issuer URL (CXONE_ISSUER)", &issuer)?)?
            }
            (None, None) => TokenEndpoint::default(),
        };
        let scopes = lookup
            .optional("CXONE_SCOPES")
            .map(|scopes| {
                scopes
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|scope| !scope.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            client_id,
            client_secret,
            endpoint,
            scopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn read(pairs: &[(&str, &str)]) -> Result<EnvConfig, Error> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        EnvConfig::read(&mut Lookup::new(|name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }))
    }

    const CLIENT: [(&str, &str); 2] = [("CXONE_CLIENT_ID", "id"), ("CXONE_CLIENT_SECRET", "s")];

    #[test]
    fn endpoint_variables() {
        let config = read(&[
            CLIENT[0],
            CLIENT[1],
            ("CXONE_TOKEN_URL", "http://127.0.0.1:9/t"),
        ])
        .unwrap();
        assert_eq!(
            config.endpoint.token_url().map(|u| u.as_str()),
            Some("http://127.0.0.1:9/t")
        );

        let config = read(&[CLIENT[0], CLIENT[1], ("CXONE_TOKEN_URL", "  ")]).unwrap();
        assert_eq!(config.endpoint, TokenEndpoint::default(), "blank is unset");

        let err = read(&[
            CLIENT[0],
            CLIENT[1],
            ("CXONE_TOKEN_URL", "https://a.example.com/t"),
            ("CXONE_ISSUER", "https://a.example.com"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");

        let err = read(&[
            CLIENT[0],
            CLIENT[1],
            ("CXONE_ISSUER", "http://a.example.com"),
        ])
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(
            err.to_string()
                .contains("issuer URL (CXONE_ISSUER) must use https"),
            "{err}"
        );
        let err = read(&[CLIENT[0], CLIENT[1], ("CXONE_TOKEN_URL", "not a url")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("token URL (CXONE_TOKEN_URL) is not a URL"),
            "{err}"
        );
    }

    #[test]
    fn scopes_split_on_spaces_and_commas() {
        let config = read(&[CLIENT[0], CLIENT[1], ("CXONE_SCOPES", " a,b  c,,d ")]).unwrap();
        assert_eq!(config.scopes, ["a", "b", "c", "d"]);
    }

    #[test]
    fn required_variables_are_named() {
        let err = read(&[CLIENT[0]]).unwrap_err();
        assert_eq!(err.to_string(), "CXONE_CLIENT_SECRET is not set");
    }
}
