//! [`MockServer`]: a [`MockCxone`] served on a loopback socket.
//!
//! For clients that need a real URL (a `reqwest::Client`, another process).
//! Tests that depend on time should call the mock in memory instead, through
//! [`MockCxone::router`]: paused tokio time and real sockets do not mix.
//!
//! ```
//! use cxone_auth::mock::MockCxone;
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let server = MockCxone::new().serve().await?;
//! assert!(server.base_url().starts_with("http://127.0.0.1:"));
//! assert_eq!(server.token_url(), format!("{}/auth/token", server.base_url()));
//! server.shutdown().await; // or drop it
//! # Ok::<(), cxone_auth::Error>(()) }).unwrap();
//! ```

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Deref;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{IN_MEMORY_BASE_URL, MockCxone};
use crate::Error;

/// A [`MockCxone`] served on `127.0.0.1`. Dereferences to the mock, so its
/// accessors and knobs are at hand.
///
/// Dropping it stops the server gracefully: it stops accepting, lets requests
/// in flight finish, closes idle connections, and its task ends.
/// [`shutdown`](Self::shutdown) does the same and waits for the end.
pub struct MockServer {
    mock: MockCxone,
    addr: SocketAddr,
    base_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl MockServer {
    pub(super) async fn start(mock: MockCxone) -> Result<Self, Error> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|err| Error::transport("the mock CXone server could not bind a port", err))?;
        let addr = listener
            .local_addr()
            .map_err(|err| Error::transport("the mock CXone server has no local address", err))?;
        let base_url = format!("http://{addr}");
        mock.set_base_url(base_url.clone());

        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = axum::serve(listener, mock.router()).with_graceful_shutdown(async {
            // A dropped sender is a shutdown too.
            let _ = stopped.await;
        });
        let task = tokio::spawn(async move {
            // axum's server only returns once shut down; nothing is left to report.
            let _ = server.await;
        });
        Ok(Self {
            mock,
            addr,
            base_url,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// The mock being served.
    pub fn mock(&self) -> &MockCxone {
        &self.mock
    }

    /// The socket address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits until its task has ended.
    pub async fn shutdown(mut self) {
        self.signal_shutdown();
        if let Some(task) = self.task.take() {
            // The task never panics; a join error means it was cancelled.
            let _ = task.await;
        }
    }

    fn signal_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
            self.mock
                .restore_base_url(&self.base_url, IN_MEMORY_BASE_URL);
        }
    }
}

impl Deref for MockServer {
    type Target = MockCxone;

    fn deref(&self) -> &MockCxone {
        &self.mock
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.signal_shutdown();
    }
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .field("mock", &self.mock)
            .finish()
    }
}
