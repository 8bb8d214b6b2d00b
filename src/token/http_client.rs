//! Which [`HttpTransport`] a source sends through, and its timeouts.
//!
//! A source uses the transport it is given (`.transport(..)`), else builds one
//! `reqwest::Client` on first use (feature `reqwest`) with redirects off, the
//! connect timeout, and no proxy. Without the feature and without a
//! transport, fetching fails with a [`Config`](crate::ErrorKind::Config) error
//! that says so:
//!
//! ```
//! use std::time::Duration;
//! use cxone_auth::token::{ClientCredentials, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};
//!
//! assert_eq!(DEFAULT_TIMEOUT, Duration::from_secs(10));
//! assert!(DEFAULT_CONNECT_TIMEOUT < DEFAULT_TIMEOUT);
//! let source = ClientCredentials::new("id", "secret")?
//!     .timeout(Duration::from_secs(30))
//!     .connect_timeout(Duration::from_secs(3));
//! # Ok::<(), cxone_auth::Error>(())
//! ```

use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::Error;
use crate::token::HttpTransport;

/// The total time one fetch may take, discovery included, unless set.
///
/// The tutorial's 10 s: token endpoints answer in well under a second, and a
/// caller waiting for a first token should learn of an outage quickly.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The time a connection may take to open (default transport only), unless set.
///
/// Half the total timeout, so an unreachable host fails as a connection
/// error, not as a vaguer timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A transport, given or built on first use, plus the total timeout.
#[derive(Clone)]
pub(crate) struct HttpClient {
    given: Option<Arc<dyn HttpTransport>>,
    connect_timeout: Duration,
    timeout: Duration,
    /// The default transport, built once and shared by clones; a new one
    /// whenever the connect timeout changes.
    built: Arc<OnceLock<Result<Arc<dyn HttpTransport>, Error>>>,
}

impl HttpClient {
    pub(crate) fn new() -> Self {
        Self {
            given: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            built: Arc::default(),
        }
    }

    pub(crate) fn set_transport(&mut self, transport: impl HttpTransport) {
        self.given = Some(Arc::new(transport));
    }

    pub(crate) fn set_connect_timeout(&mut self, timeout: Duration) {
        self.connect_timeout = timeout;
        self.built = Arc::default();
    }

    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The transport to send through.
    pub(crate) fn transport(&self) -> Result<Arc<dyn HttpTransport>, Error> {
        if let Some(given) = &self.given {
            return Ok(Arc::clone(given));
        }
        self.built
            .get_or_init(|| default_transport(self.connect_timeout))
            .clone()
    }

    /// Runs `exchange` within the total timeout; `what` names it in the error.
    pub(crate) async fn within_timeout<T>(
        &self,
        what: &str,
        exchange: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::timeout(format!(
                "{what} took longer than {:?}",
                self.timeout
            ))),
        }
    }
}

#[cfg(feature = "reqwest")]
fn default_transport(connect_timeout: Duration) -> Result<Arc<dyn HttpTransport>, Error> {
    let client = crate::token::reqwest_client_builder()
        .connect_timeout(connect_timeout)
        .build()
        .map_err(|err| Error::config("could not build the HTTP client").with_source(err))?;
    Ok(Arc::new(client))
}

#[cfg(not(feature = "reqwest"))]
fn default_transport(_connect_timeout: Duration) -> Result<Arc<dyn HttpTransport>, Error> {
    Err(Error::config(
        "no HTTP transport: enable the `reqwest` feature or set one with `.transport(..)`",
    ))
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("HttpClient");
        match &self.given {
            Some(transport) => d.field("transport", transport),
            None => d.field("transport", &"default"),
        };
        d.field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}
