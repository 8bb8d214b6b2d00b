//! [`MockServer`]: a [`MockCxone`] served on a loopback socket.

use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Deref;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{IN_MEMORY_BASE_URL, MockCxone};
use crate::Error;

/// A [`MockCxone`] served on `127.0.0.1` (it dereferences to the mock). Dropping
/// it stops the server gracefully and sets the base URL back to
/// [`IN_MEMORY_BASE_URL`]; [`shutdown`](Self::shutdown) also waits for the end.
#[derive(Debug)]
pub struct MockServer {
    mock: MockCxone,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl MockServer {
    pub(super) async fn start(mock: MockCxone) -> Result<Self, Error> {
        let unbound = |err| Error::transport("the mock CXone server could not bind a port", err);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(unbound)?;
        let addr = listener.local_addr().map_err(unbound)?;
        mock.lock().base_url = format!("http://{addr}");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = axum::serve(listener, mock.router()).with_graceful_shutdown(async {
            // A dropped sender is a shutdown too.
            let _ = stopped.await;
        });
        // axum's server only returns once shut down; nothing is left to report.
        let task = tokio::spawn(async move {
            let _ = server.await;
        });
        Ok(Self {
            mock,
            addr,
            shutdown: Some(shutdown),
            task: Some(task),
        })
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
            // Unless another server of the same mock took over since.
            let mut runtime = self.mock.lock();
            if runtime.base_url == format!("http://{}", self.addr) {
                runtime.base_url = IN_MEMORY_BASE_URL.to_owned();
            }
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
