//! [`MockCxoneBuilder`]: what the mock accepts and how it answers.
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::mock::{ExpiresIn, Grant, MockCxone};
//!
//! let cxone = MockCxone::builder()
//!     .client("my-app", "my-secret")
//!     .token_lifetime(Duration::from_secs(60))
//!     .expires_in(ExpiresIn::String)
//!     .scopes(["openid", "AdminApi"])
//!     .grants([Grant::ClientCredentials])
//!     .api_endpoint("https://api-na1.niceincontact.com")
//!     .build();
//! assert_eq!(cxone.token_lifetime(), Duration::from_secs(60));
//! assert_eq!(cxone.api_endpoint(), "https://api-na1.niceincontact.com");
//! ```

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

use super::state::{Config, Shared};
use super::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLIENT_ID, CLIENT_SECRET, MockCxone, TENANT_ID};

/// How long the mock's tokens live unless configured: NICE's documented
/// example answers `expires_in: 3600`.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The `icBUId` claim unless configured. Negative on purpose: real business
/// unit ids can be, and a client that reads it as unsigned is caught.
pub const DEFAULT_BUSINESS_UNIT_ID: i64 = -4_601_237;

/// The `icClusterId` claim and tenant `cluster` unless configured, in CXone's
/// style (`B32` in NICE's example).
pub const DEFAULT_CLUSTER_ID: &str = "M32";

/// The tenant `area` unless configured; `na1` is one of CXone's real areas.
pub const DEFAULT_AREA: &str = "na1";

/// The `tenant` claim (the tenant's name) unless configured.
pub const DEFAULT_TENANT_NAME: &str = "MockTenant";

/// The user behind the default access key, as the `sub` claim shows it
/// (`user:<uuid>`).
const DEFAULT_USER_ID: &str = "11eb0f4e-8d21-4a6f-b3e9-2c7d5a1f0e44";

/// An OAuth 2.0 grant the mock's token endpoint can accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Grant {
    /// `grant_type=password` with an access key: CXone's back-end flow.
    Password,
    /// `grant_type=client_credentials` (RFC 6749 §4.4), as the tutorial
    /// describes it and as other OAuth 2.0 servers speak it.
    ClientCredentials,
}

impl Grant {
    /// The `grant_type` value of this grant.
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Password => "password",
            Grant::ClientCredentials => "client_credentials",
        }
    }

    pub(super) fn parse(grant_type: &str) -> Option<Self> {
        match grant_type {
            "password" => Some(Grant::Password),
            "client_credentials" => Some(Grant::ClientCredentials),
            _ => None,
        }
    }
}

/// How a successful token response carries `expires_in`.
///
/// RFC 6749 makes it a number; some servers send a string, some none. A
/// client must read all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExpiresIn {
    /// `"expires_in": 3600`, as CXone sends it.
    #[default]
    Number,
    /// `"expires_in": "3600"`.
    String,
    /// No `expires_in`: the client must read the JWT `exp` or assume a default.
    Omitted,
}

/// Builds a [`MockCxone`]. Every setting has a default; see each method.
pub struct MockCxoneBuilder {
    client_id: String,
    client_secret: SecretString,
    access_key_id: String,
    access_key_secret: SecretString,
    token_lifetime: Duration,
    expires_in: ExpiresIn,
    token_delay: Duration,
    scopes: Option<Vec<String>>,
    grants: Vec<Grant>,
    tenant_id: String,
    tenant_name: String,
    business_unit_id: i64,
    cluster_id: String,
    area: String,
    api_endpoint: Option<String>,
}

impl Default for MockCxoneBuilder {
    fn default() -> Self {
        Self {
            client_id: CLIENT_ID.to_owned(),
            client_secret: SecretString::from(CLIENT_SECRET),
            access_key_id: ACCESS_KEY_ID.to_owned(),
            access_key_secret: SecretString::from(ACCESS_KEY_SECRET),
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            expires_in: ExpiresIn::Number,
            token_delay: Duration::ZERO,
            scopes: None,
            grants: vec![Grant::Password, Grant::ClientCredentials],
            tenant_id: TENANT_ID.to_owned(),
            tenant_name: DEFAULT_TENANT_NAME.to_owned(),
            business_unit_id: DEFAULT_BUSINESS_UNIT_ID,
            cluster_id: DEFAULT_CLUSTER_ID.to_owned(),
            area: DEFAULT_AREA.to_owned(),
            api_endpoint: None,
        }
    }
}

impl MockCxoneBuilder {
    /// A builder with every default.
    pub fn new() -> Self {
        Self::default()
    }

    /// The app's client id and secret the token endpoint accepts.
    ///
    /// Default: [`CLIENT_ID`] and [`CLIENT_SECRET`].
    pub fn client(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.client_id = id.into();
        self.client_secret = SecretString::from(secret.into());
        self
    }

    /// The access key id and secret the password grant accepts.
    ///
    /// Default: [`ACCESS_KEY_ID`] and [`ACCESS_KEY_SECRET`].
    pub fn access_key(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.access_key_id = id.into();
        self.access_key_secret = SecretString::from(secret.into());
        self
    }

    /// How long issued tokens live. Default: [`DEFAULT_TOKEN_LIFETIME`] (1 h).
    /// Changeable later with [`MockCxone::set_token_lifetime`].
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// How `expires_in` is sent. Default: [`ExpiresIn::Number`].
    pub fn expires_in(mut self, format: ExpiresIn) -> Self {
        self.expires_in = format;
        self
    }

    /// Sends no `expires_in`; same as `.expires_in(ExpiresIn::Omitted)`.
    pub fn omit_expires_in(self) -> Self {
        self.expires_in(ExpiresIn::Omitted)
    }

    /// How long every token response waits before it is sent (on tokio's
    /// clock). Default: no delay.
    pub fn token_delay(mut self, delay: Duration) -> Self {
        self.token_delay = delay;
        self
    }

    /// The scopes the app is granted. A request asking for any other scope
    /// gets `400 invalid_scope`. Default: any scope asked for is granted.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The grants enabled for the app. Another known grant gets
    /// `400 unauthorized_client`. Default: both [`Grant::Password`] and
    /// [`Grant::ClientCredentials`].
    pub fn grants<I>(mut self, grants: I) -> Self
    where
        I: IntoIterator<Item = Grant>,
    {
        self.grants = grants.into_iter().collect();
        self
    }

    /// The tenant id in tokens and in tenant discovery. Default: [`TENANT_ID`].
    pub fn tenant_id(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = tenant_id.into();
        self
    }

    /// The `tenant` claim. Default: [`DEFAULT_TENANT_NAME`].
    pub fn tenant_name(mut self, name: impl Into<String>) -> Self {
        self.tenant_name = name.into();
        self
    }

    /// The `icBUId` claim. Default: [`DEFAULT_BUSINESS_UNIT_ID`] (negative).
    pub fn business_unit_id(mut self, id: i64) -> Self {
        self.business_unit_id = id;
        self
    }

    /// The `icClusterId` claim and the tenant's `cluster`.
    /// Default: [`DEFAULT_CLUSTER_ID`].
    pub fn cluster_id(mut self, cluster: impl Into<String>) -> Self {
        self.cluster_id = cluster.into();
        self
    }

    /// The tenant's `area`. Default: [`DEFAULT_AREA`].
    pub fn area(mut self, area: impl Into<String>) -> Self {
        self.area = area.into();
        self
    }

    /// The `api_endpoint` tenant discovery reports.
    ///
    /// Default: the mock's own base URL, which serves the API routes. Set it
    /// to test what a client does with another host (for example an allow
    /// list); the mock still answers API calls on any host it receives.
    pub fn api_endpoint(mut self, url: impl Into<String>) -> Self {
        self.api_endpoint = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// Builds the mock.
    pub fn build(self) -> MockCxone {
        let config = Config {
            client_id: self.client_id,
            client_secret: self.client_secret,
            access_key_id: self.access_key_id,
            access_key_secret: self.access_key_secret,
            scopes: self.scopes,
            grants: self.grants,
            tenant_id: self.tenant_id,
            tenant_name: self.tenant_name,
            business_unit_id: self.business_unit_id,
            cluster_id: self.cluster_id,
            area: self.area,
            user_id: DEFAULT_USER_ID.to_owned(),
            api_endpoint: self.api_endpoint,
        };
        MockCxone::from_shared(Shared::new(
            config,
            self.token_lifetime,
            self.expires_in,
            self.token_delay,
        ))
    }
}

impl fmt::Debug for MockCxoneBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockCxoneBuilder")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"[redacted]")
            .field("token_lifetime", &self.token_lifetime)
            .field("expires_in", &self.expires_in)
            .field("token_delay", &self.token_delay)
            .field("scopes", &self.scopes)
            .field("grants", &self.grants)
            .field("tenant_id", &self.tenant_id)
            .field("api_endpoint", &self.api_endpoint)
            .finish_non_exhaustive()
    }
}
