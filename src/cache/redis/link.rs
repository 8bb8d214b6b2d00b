//! The store's connection to Redis (one server, a cluster, or the caller's)
//! and the one way commands go through it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::{ClusterClient, ClusterConfig};
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Client, Cmd, ErrorKind as Kind, FromRedisValue, RedisResult};

use super::LOG_TARGET;
use crate::Error;

/// What clones share: the connection, and what was last logged about it.
pub(super) struct Link {
    pub(super) target: Target,
    /// Where the store connects, for `Debug`: addresses, no credentials.
    pub(super) endpoint: String,
    pub(super) connection: OnceLock<Connection>,
    /// Whether Redis answered the last call.
    pub(super) answering: AtomicBool,
    /// Whether the last value read was one this store could use.
    pub(super) readable: AtomicBool,
}

impl Link {
    /// The connection, created on first use so that building a store needs
    /// neither a runtime nor a reachable Redis.
    fn connection(&self) -> Result<Connection, Error> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection.clone());
        }
        let connection = match &self.target {
            Target::Given(connection) => return Ok(connection.clone()),
            Target::Server(client) => {
                let config = ConnectionManagerConfig::new()
                    // The cache bounds every call; the `redis` crate's connect
                    // timeout stays, so an attempt that hangs ends and the next
                    // call makes another.
                    .set_response_timeout(None)
                    // One attempt per reconnection: the next call starts
                    // another, so a Redis that returns is used again at once,
                    // and a Redis that is down costs each call one refused
                    // connection, not a retry loop.
                    .set_number_of_retries(0);
                let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
                    .map_err(|e| {
                        Error::config("the Redis connection could not be set up").with_source(e)
                    })?;
                Connection::Server(manager)
            }
            // Connects in the background, and again to the seeds after losing
            // them all.
            Target::Cluster(client) => Connection::Cluster(
                client.get_pending_async_connection_with_config(ClusterConfig::new()),
            ),
        };
        Ok(self.connection.get_or_init(|| connection).clone())
    }

    /// Runs one Redis command; logs when Redis stops or starts answering.
    ///
    /// A command that fails because the connection broke is sent once more:
    /// the manager reconnects after such a failure, and the second attempt
    /// waits for that new connection. So the first call after Redis returns
    /// already succeeds.
    pub(super) async fn run<T: FromRedisValue>(
        &self,
        operation: &'static str,
        cmd: &Cmd,
    ) -> Result<T, Error> {
        let mut connection = self.connection()?;
        let outcome = match connection.query(cmd).await {
            Err(e)
                if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() =>
            {
                connection.query(cmd).await
            }
            other => other,
        };
        // Redis's own answer (an error reply, a reply of another type than
        // asked: a key of another type, a script refused) means it is up and
        // this entry is unusable; anything else, that it did not answer.
        let answered = outcome.as_ref().err().is_none_or(|e| {
            matches!(
                e.kind(),
                Kind::Server(_) | Kind::Extension | Kind::UnexpectedReturnType
            )
        });
        if self.answering.swap(answered, Ordering::AcqRel) != answered {
            if answered {
                tracing::info!(target: LOG_TARGET, "Redis token store is answering again; sharing tokens through it");
            } else if let Err(reason) = &outcome {
                tracing::warn!(
                    target: LOG_TARGET,
                    operation,
                    %reason,
                    "Redis token store is not answering; each process fetches its own tokens until it returns"
                );
            }
        }
        outcome.map_err(|e| {
            if answered {
                let message = format!("Redis refused the token store's {operation}");
                Error::invalid_response(message).with_source(e)
            } else {
                let message = format!("the Redis token store failed during {operation}");
                Error::transport(message, e)
            }
        })
    }

    /// Logs when values stop or start being usable: `unusable` is why the
    /// value just read cannot be used, if it cannot.
    pub(super) fn note_readable(&self, unusable: Option<&'static str>) {
        if self.readable.swap(unusable.is_none(), Ordering::AcqRel) == unusable.is_none() {
            return;
        }
        match unusable {
            Some(reason) => tracing::warn!(
                target: LOG_TARGET,
                reason,
                "Redis token store holds a value this process cannot use (written by \
                 hand, sealed with another encryption key, or altered); ignoring it"
            ),
            None => {
                tracing::info!(target: LOG_TARGET, "Redis token store values are readable again")
            }
        }
    }
}

/// Where the store's connection comes from.
#[allow(
    clippy::large_enum_variant,
    reason = "one per store, in its shared Arc"
)]
pub(super) enum Target {
    /// One server (or a primary), connected on first use.
    Server(Client),
    /// A Redis Cluster, found from its seed nodes on first use.
    Cluster(ClusterClient),
    /// The caller's own.
    Given(Connection),
}

/// The connection: one server's, or a cluster's, which routes each command
/// to the node holding its keys' slot.
#[derive(Clone)]
pub(super) enum Connection {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> RedisResult<T> {
        match self {
            Self::Server(connection) => cmd.query_async(connection).await,
            Self::Cluster(connection) => cmd.query_async(connection).await,
        }
    }
}
