//! The Redis store on the Redis that fleets run: a Redis Cluster (three
//! masters), and a server that speaks only TLS.
//!
//! Where the servers are (`.ci/run` starts them there, and exports these):
//!
//! - `REDIS_CLUSTER_URLS`: seed URLs, comma-separated; default
//!   `redis://127.0.0.1:7001,redis://127.0.0.1:7002,redis://127.0.0.1:7003`.
//! - `REDIS_TLS_URL`: default `rediss://127.0.0.1:6380`; `REDIS_TLS_CA`: the
//!   PEM of the certificate authority that signed its certificate, default
//!   `target/redis-ci/tls/ca.crt` in this repository.
//!
//! As for the plain Redis: a server that does not answer fails the test in
//! CI (`CI` set) and skips it elsewhere, with a message saying what to start.
//! The outage test stops a master, so it starts a cluster of its own
//! (`redis-server` on free ports) and stops only that.
//!
//! Real sockets, so real time. The only waits are for servers to come up and
//! for the cache's bounds on the store, where the bound is what is tested.

use std::time::Duration;

use crate::redis_support::{Observed, all_ok, callers, distinct, in_ci, source, unique_prefix};
use cxone_auth::TokenCache;
use cxone_auth::cache::{RedisStore, TokenStore};
use cxone_auth::mock::MockCxone;

const FLEET: usize = 8;
const CALLERS: usize = 1_000;

/// A cache on the mock for each of `stores`.
fn fleet_on<S: TokenStore + Clone>(mock: &MockCxone, stores: &[S]) -> Vec<TokenCache> {
    let caches = stores.iter().map(|store| {
        TokenCache::builder(source(mock))
            .store(store.clone())
            .build()
    });
    caches.collect()
}

/// What a test does when its server is not there: fail in CI, else skip.
fn absent(what: &str, why: impl std::fmt::Display) {
    assert!(!in_ci(), "{what} must answer in CI: {why}");
    eprintln!("SKIPPED: {what} ({why}); run `.ci/run servers`, or see this file's docs");
}

/// Every cache learns that its token ended (revoked at the server), as a
/// 401 tells the layer.
fn revoke_and_invalidate(mock: &MockCxone, caches: &[TokenCache]) {
    mock.revoke_all();
    for cache in caches {
        assert!(cache.invalidate(&cache.cached().expect("a token")));
    }
}

mod cluster {
    use cxone_auth::TokenSource as _;
    use redis::RedisResult;
    use sha2::Digest as _;

    use super::*;

    /// The seed URLs of `.ci/run`'s cluster, when every node answers.
    async fn seeds() -> Option<Vec<String>> {
        let urls = std::env::var("REDIS_CLUSTER_URLS").unwrap_or_else(|_| {
            "redis://127.0.0.1:7001,redis://127.0.0.1:7002,redis://127.0.0.1:7003".to_owned()
        });
        let seeds: Vec<String> = urls.split(',').map(str::to_owned).collect();
        let probe = async {
            let client = redis::cluster::ClusterClient::new(seeds.clone())?;
            let mut connection = client.get_async_connection().await?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        };
        match tokio::time::timeout(Duration::from_secs(5), probe).await {
            Ok(Ok(_)) => Some(seeds),
            Ok(Err(e)) => {
                absent(&format!("a Redis Cluster at {urls}"), e);
                None
            }
            Err(_) => {
                absent(&format!("a Redis Cluster at {urls}"), "no answer");
                None
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fleet_on_a_cluster_makes_one_token_request_per_lifetime() {
        let Some(seeds) = seeds().await else { return };
        let prefix = unique_prefix("cluster-fleet");
        let mock = MockCxone::builder()
            .token_delay(Duration::from_millis(200))
            .build();
        // Half the fleet on stores made from the seeds, half on cluster
        // connections of their own: the same keys, one token.
        let mut stores = Vec::new();
        for n in 0..FLEET {
            let store = if n % 2 == 0 {
                RedisStore::cluster(&seeds).unwrap()
            } else {
                let client = redis::cluster::ClusterClient::new(seeds.clone()).unwrap();
                RedisStore::from_cluster_connection(client.get_async_connection().await.unwrap())
            };
            stores.push(store.with_prefix(prefix.as_str()));
        }
        let caches = fleet_on(&mock, &stores);

        let tokens = all_ok(callers(&caches, CALLERS).await);
        assert_eq!(tokens.len(), FLEET * CALLERS);
        assert_eq!(mock.stats().token_requests, 1);
        assert_eq!(distinct(&tokens), 1, "every caller has the same token");
        let fetches: u64 = caches.iter().map(|c| c.stats().fetches).sum();
        assert_eq!(fetches, 1);

        // Three lifetimes: each ends with a 401 everywhere (the invalidation
        // and publication scripts run on the cluster), one request each.
        for hour in 1..=3 {
            revoke_and_invalidate(&mock, &caches);
            let tokens = all_ok(callers(&caches, CALLERS).await);
            assert_eq!(distinct(&tokens), 1);
            assert!(mock.is_token_active(tokens[0].secret()));
            assert_eq!(mock.stats().token_requests, 1 + hour);
        }
    }

    /// A three-master cluster of this test's own, on free ports.
    struct LocalCluster {
        nodes: Vec<tokio::process::Child>,
        ports: Vec<u16>,
        dir: std::path::PathBuf,
    }

    impl LocalCluster {
        async fn start() -> Option<Self> {
            let dir = std::env::temp_dir().join(unique_prefix("cluster").replace(':', "-"));
            std::fs::create_dir_all(&dir).unwrap();
            // Six free ports (three clients, three cluster buses), held
            // together so that none repeats.
            let held: Vec<_> = (0..6)
                .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
                .collect();
            let free: Vec<u16> = held
                .iter()
                .map(|l| l.local_addr().unwrap().port())
                .collect();
            drop(held);
            let mut cluster = Self {
                nodes: Vec::new(),
                ports: free[..3].to_vec(),
                dir,
            };
            for (port, bus) in free[..3].iter().zip(&free[3..]) {
                let spawned = tokio::process::Command::new("redis-server")
                    .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                    .args([
                        "--port",
                        &port.to_string(),
                        "--cluster-port",
                        &bus.to_string(),
                    ])
                    .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
                    .arg("--cluster-config-file")
                    .arg(cluster.dir.join(format!("nodes-{port}.conf")))
                    .stdout(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .spawn();
                match spawned {
                    Ok(node) => cluster.nodes.push(node),
                    Err(e) => {
                        return {
                            absent("redis-server", e);
                            None
                        };
                    }
                }
            }
            // Each master a third of the slots; then they meet.
            for (n, port) in cluster.ports.iter().enumerate() {
                let (first, last) = Self::slots(n);
                let mut node = cluster.node(*port).await;
                let assigned: RedisResult<()> = redis::cmd("CLUSTER")
                    .arg("ADDSLOTSRANGE")
                    .arg(first)
                    .arg(last)
                    .query_async(&mut node)
                    .await;
                assigned.unwrap();
            }
            let mut first = cluster.node(cluster.ports[0]).await;
            for (port, bus) in free[1..3].iter().zip(&free[4..]) {
                let met: RedisResult<()> = redis::cmd("CLUSTER")
                    .arg("MEET")
                    .arg("127.0.0.1")
                    .arg(port)
                    .arg(bus)
                    .query_async(&mut first)
                    .await;
                met.unwrap();
            }
            for port in cluster.ports.clone() {
                let node = cluster.node(port).await;
                Self::poll(|| {
                    let mut node = node.clone();
                    async move {
                        let info: String = redis::cmd("CLUSTER")
                            .arg("INFO")
                            .query_async(&mut node)
                            .await
                            .unwrap();
                        info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3")
                    }
                })
                .await;
            }
            Some(cluster)
        }

        /// The slots master `n` of three serves.
        fn slots(n: usize) -> (u16, u16) {
            let bounds = [0, 5461, 10923, 16384];
            (bounds[n], bounds[n + 1] - 1)
        }

        /// A plain connection to one node, once it accepts connections.
        async fn node(&self, port: u16) -> redis::aio::MultiplexedConnection {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
            for _ in 0..100 {
                if let Ok(connection) = client.get_multiplexed_async_connection().await {
                    return connection;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("redis-server on port {port} never accepted a connection")
        }

        /// Waits (up to 20 s) until `ready`: a server coming up takes real time.
        async fn poll<F: Future<Output = bool>>(mut ready: impl FnMut() -> F) {
            for _ in 0..200 {
                if ready().await {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the test's Redis Cluster never became ready");
        }

        fn seeds(&self) -> Vec<String> {
            let seed = |port: &u16| format!("redis://127.0.0.1:{port}");
            self.ports.iter().map(seed).collect()
        }

        /// Stops the master that serves `key`'s slot.
        async fn stop_master_of(&mut self, key: &str) {
            let mut node = self.node(self.ports[0]).await;
            let slot: u16 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(key)
                .query_async(&mut node)
                .await
                .unwrap();
            let n = (0..3).find(|&n| Self::slots(n).1 >= slot).unwrap();
            self.nodes[n].kill().await.unwrap();
        }
    }

    impl Drop for LocalCluster {
        fn drop(&mut self) {
            for node in &mut self.nodes {
                let _ = node.start_kill();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_master_stopped_mid_run_fails_no_request_and_requests_stay_bounded() {
        let Some(mut cluster) = LocalCluster::start().await else {
            return;
        };
        let prefix = unique_prefix("cluster-outage");
        let mock = MockCxone::new();
        let stores: Vec<_> = (0..FLEET)
            .map(|_| {
                let store = RedisStore::cluster(cluster.seeds()).unwrap();
                Observed::new(store.with_prefix(prefix.as_str()))
            })
            .collect();
        let caches = fleet_on(&mock, &stores);
        all_ok(callers(&caches, CALLERS).await);
        assert_eq!(mock.stats().token_requests, 1);
        for store in &stores {
            store.settled().await;
        }

        // The master holding the credential's slot stops while the fleet
        // refreshes: every caller still gets a token, at most one per cache.
        let digest = sha2::Sha256::digest(source(&mock).shared_key().unwrap().as_bytes());
        let key = format!("{prefix}{{{}}}:token", hex(&digest));
        revoke_and_invalidate(&mock, &caches);
        let (outcomes, ()) = tokio::join!(callers(&caches, CALLERS), cluster.stop_master_of(&key));
        let tokens = all_ok(outcomes);
        assert!(tokens.iter().all(|t| mock.is_token_active(t.secret())));
        let requests = mock.stats().token_requests;
        assert!((2..=1 + FLEET as u64).contains(&requests), "{requests}");

        // Down: each cache on its own, still no caller fails.
        revoke_and_invalidate(&mock, &caches);
        let tokens = all_ok(callers(&caches, CALLERS).await);
        assert!(tokens.iter().all(|t| mock.is_token_active(t.secret())));
        let more = mock.stats().token_requests - requests;
        assert!((1..=FLEET as u64).contains(&more), "{more}");
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(feature = "redis-tls")]
mod tls {
    use super::*;

    /// The TLS Redis's URL and its CA's PEM, when it answers trusting that CA.
    async fn server() -> Option<(String, Vec<u8>)> {
        let url =
            std::env::var("REDIS_TLS_URL").unwrap_or_else(|_| "rediss://127.0.0.1:6380".to_owned());
        let ca = std::env::var("REDIS_TLS_CA").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/target/redis-ci/tls/ca.crt").to_owned()
        });
        let what = format!("a TLS Redis at {url} signed by {ca}");
        let pem = match std::fs::read(&ca) {
            Ok(pem) => pem,
            Err(e) => {
                absent(&what, e);
                return None;
            }
        };
        let probe = async {
            let mut connection = manager(&url, &pem).await?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        };
        match tokio::time::timeout(Duration::from_secs(5), probe).await {
            Ok(Ok(_)) => Some((url, pem)),
            Ok(Err(e)) => {
                absent(&what, e);
                None
            }
            Err(_) => {
                absent(&what, "no answer");
                None
            }
        }
    }

    /// A connection that trusts the test's certificate authority (and only
    /// it), as a user with a private CA would build it.
    async fn manager(url: &str, ca: &[u8]) -> redis::RedisResult<redis::aio::ConnectionManager> {
        let certificates = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca.to_vec()),
        };
        let client = redis::Client::build_with_tls(url, certificates)?;
        redis::aio::ConnectionManager::new(client).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fleet_over_tls_makes_one_token_request() {
        let Some((url, ca)) = server().await else {
            return;
        };
        let prefix = unique_prefix("tls-fleet");
        let mock = MockCxone::builder()
            .token_delay(Duration::from_millis(200))
            .build();
        let mut stores = Vec::new();
        for _ in 0..FLEET {
            let connection = manager(&url, &ca).await.unwrap();
            stores.push(RedisStore::from_connection(connection).with_prefix(prefix.as_str()));
        }
        let caches = fleet_on(&mock, &stores);

        let tokens = all_ok(callers(&caches, CALLERS).await);
        assert_eq!(mock.stats().token_requests, 1);
        assert_eq!(distinct(&tokens), 1);
        revoke_and_invalidate(&mock, &caches);
        all_ok(callers(&caches, CALLERS).await);
        assert_eq!(mock.stats().token_requests, 2);
    }

    /// `RedisStore::new` with a `rediss://` URL verifies the server against
    /// the system's roots, which do not hold the test's CA: the store refuses
    /// the server, and the caches fetch on their own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_the_store_cannot_verify_is_not_used_and_fails_no_request() {
        let Some((url, _)) = server().await else {
            return;
        };
        let prefix = unique_prefix("tls-untrusted");
        let mock = MockCxone::new();
        let stores: Vec<_> = (0..2)
            .map(|_| Observed::new(RedisStore::new(&url).unwrap().with_prefix(prefix.as_str())))
            .collect();
        let caches = fleet_on(&mock, &stores);

        all_ok(callers(&caches, CALLERS).await);
        assert_eq!(mock.stats().token_requests, 2, "each on its own");
        assert!(stores.iter().all(|s| !s.answered()));
    }
}
