//! Real processes sharing one token through Redis: this test binary starts
//! itself four times as fleet members (the ignored test below), against the
//! same Redis and the same mock CXone served on 127.0.0.1.
//!
//! Real sockets and real time; nothing depends on timing: the count of token
//! requests is one however the four processes interleave.

use std::process::Stdio;
use std::time::Duration;

use crate::redis_support::{self, delete_under, redis_url, unique_prefix};
use cxone_auth::mock::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLIENT_ID, CLIENT_SECRET, MockCxone};
use cxone_auth::token::AccessKeyGrant;
use cxone_auth::{AccessToken, TokenCache};
use sha2::{Digest as _, Sha256};

const PROCESSES: usize = 4;
const CALLERS: usize = 1_000;

/// Set in a fleet member's environment: the mock's token URL.
const TOKEN_URL_VAR: &str = "CXONE_AUTH_TEST_FLEET_TOKEN_URL";
/// Set in a fleet member's environment: the Redis key prefix of the run.
const PREFIX_VAR: &str = "CXONE_AUTH_TEST_FLEET_PREFIX";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_make_one_token_request_between_them() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix("processes");
    let mock = MockCxone::builder()
        // Long enough that the members overlap and meet the lock.
        .token_delay(Duration::from_millis(200))
        .build();
    let server = mock.serve().await.unwrap();

    let exe = std::env::current_exe().unwrap();
    let members: Vec<_> = (0..PROCESSES)
        .map(|_| {
            tokio::process::Command::new(&exe)
                .args([
                    "redis_processes::fleet_member",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                ])
                .env(TOKEN_URL_VAR, server.token_url())
                .env(PREFIX_VAR, &prefix)
                .env("REDIS_URL", &url)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap()
        })
        .collect();

    let mut reports = Vec::new();
    for member in members {
        let output = tokio::time::timeout(Duration::from_secs(120), member.wait_with_output())
            .await
            .expect("a fleet member hung")
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "a fleet member failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report = stdout
            .lines()
            .find_map(|line| line.strip_prefix("fleet-member "))
            .unwrap_or_else(|| panic!("no report from a fleet member: {stdout}"))
            .to_owned();
        reports.push(report);
    }

    println!("{PROCESSES} processes x {CALLERS} callers: {reports:#?}");
    assert_eq!(server.stats().token_requests, 1, "{reports:#?}");
    let tokens: Vec<&str> = reports
        .iter()
        .map(|r| r.split_whitespace().next().unwrap())
        .collect();
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "one token: {tokens:?}"
    );
    let fetches: u64 = reports
        .iter()
        .map(|r| {
            r.split_whitespace()
                .find_map(|field| field.strip_prefix("fetches="))
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(fetches, 1, "{reports:#?}");
    server.shutdown().await;
    delete_under(&url, &prefix).await;
}

/// One fleet member: a process with its own cache and Redis connection, its
/// callers asking for a token at once. Prints the token's fingerprint (never
/// the token) and what its cache did.
#[test]
#[ignore = "a fleet member process, started by four_processes_make_one_token_request_between_them"]
fn fleet_member() {
    let (Ok(token_url), Ok(prefix)) = (std::env::var(TOKEN_URL_VAR), std::env::var(PREFIX_VAR))
    else {
        eprintln!("fleet_member runs only as a child of the fleet test");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let source =
            AccessKeyGrant::new(CLIENT_ID, CLIENT_SECRET, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
                .unwrap()
                .token_url(&token_url)
                .unwrap();
        let store = redis_support::store(&redis_support::redis_url_setting(), &prefix);
        let store = redis_support::Observed::new(store);
        let cache = TokenCache::builder(source).store(store.clone()).build();

        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.token().await })
            })
            .collect();
        let mut tokens = Vec::with_capacity(CALLERS);
        for caller in callers {
            tokens.push(caller.await.unwrap().unwrap());
        }
        assert!(tokens.iter().all(|t| t.same_token(&tokens[0])));
        // Publish before the process ends, as a long-running service would.
        store.settled().await;
        let stats = cache.stats();
        println!(
            "fleet-member {} fetches={} store_loads={}",
            fingerprint(&tokens[0]),
            stats.fetches,
            stats.store_loads
        );
    });
}

fn fingerprint(token: &AccessToken) -> String {
    Sha256::digest(token.secret().as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}
