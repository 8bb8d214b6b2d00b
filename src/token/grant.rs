//! The two grants of [`OAuthSource`]: their form fields, their names in a
//! shared key, their constructors, and configuration from `CXONE_*`
//! variables (the table and examples are on [`OAuthSource`]). Padded ids and
//! secrets are an error, not trimmed: whitespace is legal in a secret in
//! principle, and guessing would hide a credential copied with a newline.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use url::form_urlencoded::Serializer;

use crate::Error;
use crate::token::endpoint::checked_url;
use crate::token::{Environment, OAuthSource, TokenEndpoint};

/// A variable reader: `None` for an unset variable.
type Lookup<'a> = &'a mut dyn FnMut(&str) -> Option<String>;

/// What sets one grant apart: its form fields, what names it in a shared
/// key, and its own variables. Sealed: implemented by the grants below.
pub trait OAuthGrant: Clone + fmt::Debug + Send + Sync + 'static {
    /// The `grant_type` sent (for a JSON grant, its name in traces and keys).
    const GRANT_TYPE: &'static str;
    /// Whether the app's client id and secret authenticate the request.
    const NEEDS_CLIENT: bool = true;
    /// The name users write for the source, for `Debug`.
    const NAME: &'static str;
    /// Whether CXone's issuers offer this grant, which makes
    /// [`Environment::Cxone`](crate::token::Environment::Cxone) its default endpoint.
    const CXONE_DEFAULT: bool;

    /// Appends the grant's own fields to the token request's form.
    fn write_form(&self, form: &mut Serializer<'_, String>);

    /// The grant's part of the shared key: a subject (the access key id) and
    /// extra parameters. No secret.
    fn key_parts(&self) -> (Option<&str>, &[(String, String)]);

    /// The JSON body, for a grant that sends one instead of a form.
    fn json_body(&self) -> Option<String> {
        None
    }

    /// The grant's own secret (the access key secret), to keep out of errors.
    fn secret(&self) -> Option<&str> {
        None
    }

    /// The grant as configured by `CXONE_*` variables.
    fn from_vars(lookup: Lookup<'_>) -> Result<Self, Error>;
}

/// The access key of [`AccessKeyGrant`](crate::token::AccessKeyGrant), sent
/// as `username` and `password`.
#[derive(Clone, Debug)]
pub struct AccessKey {
    id: String,
    secret: SecretString,
}

impl OAuthGrant for AccessKey {
    const GRANT_TYPE: &'static str = "password";
    const NAME: &'static str = "AccessKeyGrant";
    const CXONE_DEFAULT: bool = true;

    fn write_form(&self, form: &mut Serializer<'_, String>) {
        form.append_pair("username", &self.id);
        form.append_pair("password", self.secret.expose_secret());
    }

    fn secret(&self) -> Option<&str> {
        Some(self.secret.expose_secret())
    }

    fn key_parts(&self) -> (Option<&str>, &[(String, String)]) {
        (Some(&self.id), &[])
    }

    fn from_vars(lookup: Lookup<'_>) -> Result<Self, Error> {
        let id = required(lookup, "CXONE_ACCESS_KEY_ID", "access key id")?;
        let secret = required(lookup, "CXONE_ACCESS_KEY_SECRET", "access key secret")?.into();
        Ok(Self { id, secret })
    }
}

/// The access key of [`AccessKeyOnly`](crate::token::AccessKeyOnly), sent
/// as JSON `{"accessKeyId", "accessKeySecret"}` with no app credentials.
#[derive(Clone, Debug)]
pub struct AccessKeyJson(AccessKey);

/// CXone's areas, each with an access-key endpoint on `{area}.nice-incontact.com`.
const AREAS: [&str; 7] = ["na1", "na2", "au1", "eu1", "uk1", "ca1", "jp1"];

impl OAuthGrant for AccessKeyJson {
    const GRANT_TYPE: &'static str = "access_key";
    const NAME: &'static str = "AccessKeyOnly";
    const NEEDS_CLIENT: bool = false;
    /// Its endpoint is an area's, not an issuer's: set by its constructor.
    const CXONE_DEFAULT: bool = false;

    fn write_form(&self, _: &mut Serializer<'_, String>) {}

    fn json_body(&self) -> Option<String> {
        let (id, secret) = (&self.0.id, self.0.secret.expose_secret());
        Some(serde_json::json!({ "accessKeyId": id, "accessKeySecret": secret }).to_string())
    }

    fn secret(&self) -> Option<&str> {
        self.0.secret()
    }

    fn key_parts(&self) -> (Option<&str>, &[(String, String)]) {
        self.0.key_parts()
    }

    fn from_vars(lookup: Lookup<'_>) -> Result<Self, Error> {
        AccessKey::from_vars(lookup).map(Self)
    }
}

/// The access-key endpoint of a CXone `area`.
pub(crate) fn area_endpoint(area: &str) -> Result<TokenEndpoint, Error> {
    let area = area.to_ascii_lowercase();
    if !AREAS.contains(&area.as_str()) {
        return Err(Error::config(format!(
            "unknown CXone area {area:?}: use one of {}",
            AREAS.join(", ")
        )));
    }
    TokenEndpoint::url(format!(
        "https://{area}.nice-incontact.com/authentication/v1/token/access-key"
    ))
}

/// The extra form parameters of [`ClientCredentials`](crate::token::ClientCredentials).
#[derive(Clone, Default)]
pub struct ClientCredentialsGrant {
    params: Vec<(String, String)>,
}

/// Form fields the source writes itself, which `param` may not set.
const RESERVED_PARAMS: [&str; 4] = ["grant_type", "scope", "client_id", "client_secret"];

impl OAuthGrant for ClientCredentialsGrant {
    const GRANT_TYPE: &'static str = "client_credentials";
    const NAME: &'static str = "ClientCredentials";
    const CXONE_DEFAULT: bool = false;

    fn write_form(&self, form: &mut Serializer<'_, String>) {
        form.extend_pairs(&self.params);
    }

    fn key_parts(&self) -> (Option<&str>, &[(String, String)]) {
        (None, &self.params)
    }

    fn from_vars(_: Lookup<'_>) -> Result<Self, Error> {
        Ok(Self::default())
    }
}

impl fmt::Debug for ClientCredentialsGrant {
    /// Parameter names only: values may be secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ClientCredentialsGrant")
            .field("params", &names)
            .finish()
    }
}

impl<G: OAuthGrant> OAuthSource<G> {
    /// A source configured from [`CXONE_*` variables](OAuthSource#configuration-from-the-environment).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the variable
    /// that is missing or unusable, never its value.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| {
            // Not Unicode: read lossily, to fail at the server, not look unset.
            std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
        })
    }

    /// [`from_env`](Self::from_env), reading variables through `lookup`
    /// (`None` for an unset variable) instead of the process environment.
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(mut lookup: impl FnMut(&str) -> Option<String>) -> Result<Self, Error> {
        if !G::NEEDS_CLIENT {
            let grant = G::from_vars(&mut lookup)?;
            let mut optional = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
            if optional("CXONE_ISSUER").is_some() {
                return Err(Error::config(
                    "CXONE_ISSUER does not apply to the access-key endpoint: set CXONE_AREA or CXONE_TOKEN_URL",
                ));
            }
            let endpoint = match (optional("CXONE_TOKEN_URL"), optional("CXONE_AREA")) {
                (Some(_), Some(_)) => {
                    return Err(Error::config("set CXONE_TOKEN_URL or CXONE_AREA, not both"));
                }
                (Some(url), None) => {
                    TokenEndpoint::url(checked_url("token URL (CXONE_TOKEN_URL)", &url)?)?
                }
                (None, area) => area_endpoint(area.as_deref().unwrap_or("na1"))?,
            };
            let source = Self::with_grant(String::new(), SecretString::default(), grant);
            return Ok(source.endpoint(endpoint));
        }
        let client_id = required(&mut lookup, "CXONE_CLIENT_ID", "client id")?;
        let client_secret = required(&mut lookup, "CXONE_CLIENT_SECRET", "client secret")?;
        let grant = G::from_vars(&mut lookup)?;
        let mut optional = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let endpoint = match (optional("CXONE_TOKEN_URL"), optional("CXONE_ISSUER")) {
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
            (None, None) if G::CXONE_DEFAULT => TokenEndpoint::default(),
            (None, None) => return Err(no_endpoint::<G>()),
        };
        let scopes = optional("CXONE_SCOPES").unwrap_or_default();
        let scopes = scopes.split(|c: char| c == ',' || c.is_whitespace());
        let source = Self::with_grant(client_id, client_secret.into(), grant);
        Ok(source.endpoint(endpoint).scopes(scopes))
    }
}

impl OAuthSource<AccessKey> {
    /// A source for the app `client_id`/`client_secret` acting as the CXone
    /// user who owns the access key.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the field
    /// (never its value) when one is empty, only whitespace, or has
    /// leading/trailing whitespace.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<String>,
    ) -> Result<Self, Error> {
        let client_id = checked("client id", client_id.into())?;
        let client_secret = checked("client secret", client_secret.into())?;
        let grant = AccessKey {
            id: checked("access key id", access_key_id.into())?,
            secret: checked("access key secret", access_key_secret.into())?.into(),
        };
        let source = Self::with_grant(client_id, client_secret.into(), grant);
        Ok(source.environment(Environment::Cxone))
    }

    /// The access key id (not secret; it names the key).
    pub fn access_key_id(&self) -> &str {
        &self.grant.id
    }
}

impl OAuthSource<AccessKeyJson> {
    /// A source for the access key alone, at the na1 area's endpoint;
    /// [`area`](Self::area) or [`token_url`](Self::token_url) choose another.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) as `AccessKeyGrant::new`.
    pub fn new(
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<String>,
    ) -> Result<Self, Error> {
        let grant = AccessKeyJson(AccessKey {
            id: checked("access key id", access_key_id.into())?,
            secret: checked("access key secret", access_key_secret.into())?.into(),
        });
        let source = Self::with_grant(String::new(), SecretString::default(), grant);
        Ok(source.endpoint(area_endpoint("na1")?))
    }

    /// Asks the access-key endpoint of a CXone area: na1, na2, au1, eu1,
    /// uk1, ca1 or jp1.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for another area.
    pub fn area(self, area: &str) -> Result<Self, Error> {
        Ok(self.endpoint(area_endpoint(area)?))
    }

    /// The access key id (not secret; it names the key).
    pub fn access_key_id(&self) -> &str {
        &self.grant.0.id
    }
}

impl OAuthSource<ClientCredentialsGrant> {
    /// A source for the app `client_id`/`client_secret`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) as `AccessKeyGrant::new`.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Result<Self, Error> {
        let client_id = checked("client id", client_id.into())?;
        let client_secret = checked("client secret", client_secret.into())?;
        let grant = ClientCredentialsGrant::default();
        Ok(Self::with_grant(client_id, client_secret.into(), grant))
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
        self.grant.params.push((name, value.into()));
        Ok(self)
    }
}

/// The error of a source without an endpoint: only grants CXone offers
/// default to it.
pub(super) fn no_endpoint<G: OAuthGrant>() -> Error {
    Error::config(format!(
        "{} needs a token URL or an issuer (CXONE_TOKEN_URL or CXONE_ISSUER): \
         CXone's issuers do not offer the {} grant, so there is no default",
        G::NAME,
        G::GRANT_TYPE
    ))
}

/// The checked value of the variable `name`, which must be set; `field`
/// names it in errors.
fn required(lookup: Lookup<'_>, name: &str, field: &str) -> Result<String, Error> {
    let value = lookup(name).ok_or_else(|| Error::config(format!("{name} is not set")))?;
    checked(&format!("{field} ({name})"), value)
}

/// `value`, if it is neither empty, nor only whitespace, nor padded with
/// whitespace. `field` names it in the error ("client id").
fn checked(field: &str, value: String) -> Result<String, Error> {
    if value.trim().is_empty() {
        return Err(Error::config(format!("the {field} is empty")));
    }
    if value.trim() != value {
        return Err(Error::config(format!(
            "the {field} has leading/trailing whitespace; remove it"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::token::{AccessKeyGrant, ClientCredentials, Environment};
    use crate::{ErrorKind, TokenSource as _};

    const KEY_SECRET: &str = "Zm9vYmFy+/c2VjcmV0====";

    #[test]
    fn every_field_is_checked_by_name() {
        let cases = [
            (["", "s", "k", "ks"], "the client id is empty"),
            (["c", " \t", "k", "ks"], "the client secret is empty"),
            (
                ["c", "s", "k ", "ks"],
                "the access key id has leading/trailing whitespace",
            ),
            (
                ["c", "s", "k", "\tks"],
                "the access key secret has leading/trailing whitespace",
            ),
            (
                ["c", "hunter2\n", "k", "ks"],
                "the client secret has leading/trailing whitespace",
            ),
        ];
        for ([a, b, c, d], says) in cases {
            let err = AccessKeyGrant::new(a, b, c, d).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            let text = format!("{err} {err:?}");
            assert!(text.contains(says), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
        assert_eq!(checked("id", "a b".into()).unwrap(), "a b");
    }

    fn vars(pairs: &[(&str, &str)]) -> impl FnMut(&str) -> Option<String> + use<> {
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

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        ALL.iter().chain(extra).copied().collect()
    }

    #[test]
    fn from_lookup_reads_every_variable() {
        let pairs = with(&[
            ("CXONE_ISSUER", "https://cxone-gov.niceincontact.com"),
            ("CXONE_SCOPES", " openid, agents:read  b,,openid "),
        ]);
        let source = AccessKeyGrant::from_lookup(vars(&pairs)).unwrap();
        assert_eq!(source.access_key_id(), "KEYID");
        assert_eq!(
            source.token_endpoint(),
            Some(&TokenEndpoint::discover("https://cxone-gov.niceincontact.com").unwrap())
        );
        assert_eq!(source.requested_scopes(), ["openid", "agents:read", "b"]);

        let default = AccessKeyGrant::from_lookup(vars(&ALL)).unwrap();
        assert_eq!(default.token_endpoint(), Some(&Environment::Cxone.into()));
        let blank = AccessKeyGrant::from_lookup(vars(&with(&[("CXONE_TOKEN_URL", "  ")])));
        assert_eq!(
            blank.unwrap().token_endpoint(),
            Some(&Environment::Cxone.into())
        );

        let local = with(&[("CXONE_TOKEN_URL", "http://127.0.0.1:9/t")]);
        let local = ClientCredentials::from_lookup(vars(&local)).unwrap();
        let url = local
            .token_endpoint()
            .and_then(|e| e.token_url())
            .map(|u| u.as_str());
        assert_eq!(url, Some("http://127.0.0.1:9/t"));
    }

    #[test]
    fn from_lookup_names_the_missing_or_bad_variable() {
        for missing in ALL.map(|(name, _)| name) {
            let pairs: Vec<_> = ALL.iter().copied().filter(|(n, _)| *n != missing).collect();
            let err = AccessKeyGrant::from_lookup(vars(&pairs)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert_eq!(err.to_string(), format!("{missing} is not set"));
        }
        for (pairs, says) in [
            (
                vec![
                    ALL[0],
                    ALL[1],
                    ALL[2],
                    ("CXONE_ACCESS_KEY_SECRET", "Zm9vYmFy+/c2VjcmV0====\n"),
                ],
                "access key secret (CXONE_ACCESS_KEY_SECRET) has leading/trailing whitespace",
            ),
            (
                vec![("CXONE_CLIENT_ID", " app"), ALL[1], ALL[2], ALL[3]],
                "client id (CXONE_CLIENT_ID) has leading/trailing whitespace",
            ),
            (
                with(&[
                    ("CXONE_TOKEN_URL", "https://a.example.com/t"),
                    ("CXONE_ISSUER", "https://a.example.com"),
                ]),
                "not both",
            ),
            (
                with(&[("CXONE_ISSUER", "http://a.example.com")]),
                "issuer URL (CXONE_ISSUER) must use https",
            ),
            (
                with(&[("CXONE_TOKEN_URL", "not a url")]),
                "token URL (CXONE_TOKEN_URL) is not a URL",
            ),
        ] {
            let err = AccessKeyGrant::from_lookup(vars(&pairs)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            let text = err.to_string();
            assert!(text.contains(says), "{text}");
            assert!(!text.contains("Zm9vYmFy"), "{text}");
        }
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
        let other = AccessKeyGrant::new("app", "app-secret", "KEYID2", KEY_SECRET).unwrap();
        assert_ne!(Some(key), other.shared_key());
    }

    /// CXone's issuers do not offer `client_credentials`.
    #[test]
    fn client_credentials_has_no_cxone_default() {
        let err = ClientCredentials::from_lookup(vars(&ALL[..2])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        let text = err.to_string();
        assert!(text.contains("needs a token URL or an issuer"), "{text}");
        assert!(
            text.contains("do not offer the client_credentials grant"),
            "{text}"
        );
        let blank = ClientCredentials::from_lookup(vars(&with(&[("CXONE_ISSUER", " ")])));
        assert_eq!(blank.unwrap_err().kind(), ErrorKind::Config);
        assert_eq!(
            ClientCredentials::new("id", "s").unwrap().token_endpoint(),
            None
        );
    }

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
        assert!(debug.starts_with("ClientCredentials {"), "{debug}");
        assert!(debug.contains("client_assertion"), "{debug}");
        assert!(!debug.contains("SECRET"), "{debug}");
    }
}
