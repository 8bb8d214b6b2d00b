//! [`TokenSource`]: where tokens come from.
//!
//! The crate's sources speak OAuth 2.0 ([`AccessKeyGrant`](crate::token::AccessKeyGrant),
//! [`ClientCredentials`](crate::token::ClientCredentials)); users plug their own
//! by implementing the trait, or with [`StaticToken`] and [`from_fn`]:
//!
//! ```
//! use cxone_auth::AccessToken;
//! use cxone_auth::token::{TokenSource, from_fn};
//!
//! let source = from_fn(|| async {
//!     // Read the token from a secrets manager, a file, another service...
//!     AccessToken::new("token-from-elsewhere")
//! });
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let token = source.fetch().await?;
//! assert_eq!(token.header_value(), "Bearer token-from-elsewhere");
//! # Ok::<(), cxone_auth::Error>(()) }).unwrap();
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};

use crate::{AccessToken, Error};

/// Fetches access tokens.
///
/// The [`TokenCache`](crate::TokenCache) calls [`fetch`](Self::fetch) when it
/// needs a token, never more than once at a time per cache. A source does not
/// cache; it asks.
///
/// The trait uses `async fn` and so is not object safe; its twin
/// [`DynTokenSource`] is, and every `TokenSource` is one.
pub trait TokenSource: Send + Sync + 'static {
    /// Asks for a new token.
    ///
    /// Set [`AccessToken::with_requested_at`] to the moment the request was
    /// sent, so that its lifetime counts the time spent on the network.
    fn fetch(&self) -> impl Future<Output = Result<AccessToken, Error>> + Send;

    /// A stable key naming this credential, for stores shared between
    /// processes. It must identify the token URL, grant, client and scopes,
    /// and must never contain a secret. `None` (the default) keeps tokens out
    /// of shared stores.
    fn shared_key(&self) -> Option<String> {
        None
    }
}

/// The object-safe twin of [`TokenSource`], implemented for every source.
pub trait DynTokenSource: Send + Sync + 'static {
    /// [`TokenSource::fetch`], boxed.
    fn fetch_boxed(&self) -> BoxFuture<'_, Result<AccessToken, Error>>;

    /// [`TokenSource::shared_key`].
    fn shared_key(&self) -> Option<String>;
}

impl<T: TokenSource> DynTokenSource for T {
    fn fetch_boxed(&self) -> BoxFuture<'_, Result<AccessToken, Error>> {
        Box::pin(self.fetch())
    }

    fn shared_key(&self) -> Option<String> {
        TokenSource::shared_key(self)
    }
}

impl TokenSource for Arc<dyn DynTokenSource> {
    fn fetch(&self) -> impl Future<Output = Result<AccessToken, Error>> + Send {
        (**self).fetch_boxed()
    }

    fn shared_key(&self) -> Option<String> {
        (**self).shared_key()
    }
}

impl TokenSource for Box<dyn DynTokenSource> {
    fn fetch(&self) -> impl Future<Output = Result<AccessToken, Error>> + Send {
        (**self).fetch_boxed()
    }

    fn shared_key(&self) -> Option<String> {
        (**self).shared_key()
    }
}

/// A token supplied by the user, for tests and for tokens minted elsewhere.
///
/// Each fetch hands out the same value as a newly requested token, living the
/// given lifetime (by default the JWT `exp`, else
/// [`DEFAULT_LIFETIME`](crate::token::DEFAULT_LIFETIME)).
///
/// ```
/// use cxone_auth::token::StaticToken;
///
/// let source = StaticToken::new("my-token");
/// assert_eq!(format!("{source:?}"), "StaticToken { token: \"[redacted]\", lifetime: None }");
/// ```
#[derive(Clone)]
pub struct StaticToken {
    token: SecretString,
    lifetime: Option<Duration>,
}

impl StaticToken {
    /// A source that always yields `token`.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: SecretString::from(token.into()),
            lifetime: None,
        }
    }

    /// Sets the lifetime each fetched token is given.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticToken")
            .field("token", &"[redacted]")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl TokenSource for StaticToken {
    async fn fetch(&self) -> Result<AccessToken, Error> {
        let token = AccessToken::new(self.token.expose_secret())?;
        Ok(match self.lifetime {
            Some(lifetime) => token.with_lifetime(lifetime),
            None => token,
        })
    }
}

/// A source backed by an async closure; see [`from_fn`].
#[derive(Clone)]
pub struct FnSource<F> {
    fetch: F,
}

/// Builds a [`TokenSource`] from an async closure.
pub fn from_fn<F, Fut>(fetch: F) -> FnSource<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<AccessToken, Error>> + Send,
{
    FnSource { fetch }
}

impl<F> fmt::Debug for FnSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnSource").finish_non_exhaustive()
    }
}

impl<F, Fut> TokenSource for FnSource<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<AccessToken, Error>> + Send,
{
    fn fetch(&self) -> impl Future<Output = Result<AccessToken, Error>> + Send {
        (self.fetch)()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn static_token_is_fresh_each_fetch() {
        let source = StaticToken::new("abc").lifetime(Duration::from_secs(60));
        let first = source.fetch().await.unwrap();
        tokio::time::advance(Duration::from_secs(30)).await;
        let second = source.fetch().await.unwrap();
        assert_eq!(second.secret(), "abc");
        assert_eq!(
            second.requested_at() - first.requested_at(),
            Duration::from_secs(30)
        );
    }

    #[tokio::test]
    async fn dyn_sources_are_sources() {
        let boxed: Box<dyn DynTokenSource> = Box::new(from_fn(|| async { AccessToken::new("x") }));
        assert_eq!(boxed.fetch().await.unwrap().secret(), "x");
        assert_eq!(TokenSource::shared_key(&boxed), None);
    }
}
