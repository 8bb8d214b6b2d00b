//! The `cxone-token` command, run as a user runs it: its output and its exit
//! codes, against its in-process mock (`--mock`) and against nothing at all.

use std::process::{Command, Output};

use cxone_auth::mock;

const VARIABLES: [&str; 8] = [
    "CXONE_AREA",
    "CXONE_CLIENT_ID",
    "CXONE_CLIENT_SECRET",
    "CXONE_ACCESS_KEY_ID",
    "CXONE_ACCESS_KEY_SECRET",
    "CXONE_TOKEN_URL",
    "CXONE_ISSUER",
    "CXONE_SCOPES",
];

/// Runs the command with `args` and only the `CXONE_*` variables in `env`.
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cxone-token"));
    command.args(args);
    for name in VARIABLES {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("the command runs");
    (
        status.code().expect("an exit code"),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

/// The value printed for `name`.
fn field<'a>(stdout: &'a str, name: &str) -> Option<&'a str> {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .map(str::trim)
}

#[test]
fn prints_expiry_scopes_tenant_and_api_endpoint_but_not_the_token() {
    let (code, stdout, stderr) = run(&["--mock"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        field(&stdout, "tenant"),
        Some(format!("{} (MockTenant)", mock::TENANT_ID).as_str())
    );
    assert_eq!(
        field(&stdout, "api endpoint"),
        Some(format!("{}/", mock::IN_MEMORY_BASE_URL).as_str())
    );
    assert_eq!(
        field(&stdout, "area"),
        Some("na1"),
        "the mock's default area"
    );
    assert_eq!(field(&stdout, "scopes"), Some("none stated"));
    let expires = field(&stdout, "expires in").unwrap();
    let seconds: u64 = expires.split(' ').next().unwrap().parse().unwrap();
    assert!((3590..=3600).contains(&seconds), "{expires}");
    assert!(expires.contains("GMT"), "{expires}");
    // No JWT anywhere: CXone tokens start with the base64 of `{"`.
    assert!(!stdout.contains("eyJ"), "{stdout}");
    assert!(!stderr.contains("eyJ"), "{stderr}");
    assert!(!stdout.contains(mock::CLIENT_SECRET));
}

#[test]
fn print_token_prints_it_and_scopes_are_the_granted_ones() {
    let (code, stdout, stderr) = run(
        &["--mock", "--print-token", "--grant", "client-credentials"],
        &[("CXONE_SCOPES", "openid agents:read")],
    );
    assert_eq!(code, 0, "{stderr}");
    let token = field(&stdout, "token").unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    assert!(token.starts_with("eyJ"));
    assert_eq!(field(&stdout, "scopes"), Some("openid agents:read"));
}

#[test]
fn wrong_client_secret_exits_4_and_says_which_variables_to_check() {
    let (code, stdout, stderr) = run(&["--mock"], &[("CXONE_CLIENT_SECRET", "not-the-secret")]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("invalid_client"), "{stderr}");
    assert!(
        stderr.contains("fix: check CXONE_CLIENT_ID and CXONE_CLIENT_SECRET"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-secret"), "{stderr}");
}

#[test]
fn wrong_access_key_exits_5() {
    let (code, _, stderr) = run(&["--mock"], &[("CXONE_ACCESS_KEY_SECRET", "wrong====")]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("invalid_grant"), "{stderr}");
    assert!(stderr.contains("CXONE_ACCESS_KEY_SECRET"), "{stderr}");
    assert!(!stderr.contains("wrong===="), "{stderr}");
}

#[test]
fn missing_configuration_exits_3_naming_the_variable() {
    let (code, stdout, stderr) = run(&[], &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("CXONE_CLIENT_ID is not set"), "{stderr}");

    let (code, _, stderr) = run(
        &[],
        &[
            ("CXONE_CLIENT_ID", "app"),
            ("CXONE_CLIENT_SECRET", "secret"),
            ("CXONE_ACCESS_KEY_ID", "key"),
            ("CXONE_ACCESS_KEY_SECRET", "key-secret"),
            ("CXONE_TOKEN_URL", "http://auth.example.com/token"),
        ],
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("https"), "{stderr}");
}

#[test]
fn an_unreachable_token_endpoint_exits_8() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let (code, _, stderr) = run(
        &[],
        &[
            ("CXONE_CLIENT_ID", "app"),
            ("CXONE_CLIENT_SECRET", "secret"),
            ("CXONE_ACCESS_KEY_ID", "key"),
            ("CXONE_ACCESS_KEY_SECRET", "key-secret"),
            ("CXONE_TOKEN_URL", "http://127.0.0.1:1/auth/token"),
        ],
    );
    assert_eq!(code, 8, "{stderr}");
    assert!(stderr.contains("fix: check the network"), "{stderr}");
}

#[test]
fn bad_arguments_exit_2_and_help_exits_0() {
    for args in [&["--bogus"][..], &["--grant"], &["--grant", "implicit"]] {
        let (code, stdout, stderr) = run(args, &[]);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty());
        assert!(stderr.starts_with("error: "), "{stderr}");
    }
    let (code, stdout, _) = run(&["--help"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("EXIT CODES"), "{stdout}");
    let (code, stdout, _) = run(&["--version"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("cxone-token "), "{stdout}");
}

/// Claims and tenant fields holding ESC, BEL or CR are
/// printed escaped, not sent to the terminal. A token endpoint and a tenant
/// discovery on 127.0.0.1 (plain http is allowed there) send them.
#[test]
fn control_characters_from_the_server_are_escaped() {
    use std::io::{Read as _, Write as _};

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let hostile = "x\u{1b}]0;owned\u{7}\r\u{1b}[2Kexpires in     forged";
    let escaped = r"x\u{1b}]0;owned\u{7}\r\u{1b}[2Kexpires in     forged";
    let claims =
        serde_json::json!({ "tenantId": "t-1", "tenant": hostile, "icClusterId": hostile });
    let jwt = format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let token = serde_json::json!({
        "access_token": jwt, "token_type": "Bearer", "expires_in": 3600, "scope": hostile,
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config =
        serde_json::json!({ "api_endpoint": format!("http://127.0.0.1:{port}/"), "area": hostile });
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut request = [0; 8192];
            let read = stream.read(&mut request).unwrap();
            let request = String::from_utf8_lossy(&request[..read]);
            let body = if request.starts_with("POST") {
                &token
            } else {
                &config
            }
            .to_string();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).unwrap();
        }
    });
    let token_url = format!("http://127.0.0.1:{port}/auth/token");
    let (code, stdout, stderr) = run(
        &[],
        &[
            ("CXONE_CLIENT_ID", "app"),
            ("CXONE_CLIENT_SECRET", "app-secret"),
            ("CXONE_ACCESS_KEY_ID", "KEYID"),
            ("CXONE_ACCESS_KEY_SECRET", "key-secret"),
            ("CXONE_TOKEN_URL", &token_url),
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    for printed in [&stdout, &stderr] {
        assert!(!printed.contains(['\u{1b}', '\u{7}', '\r']), "{printed:?}");
    }
    // Scopes are split at whitespace, CR included.
    assert!(field(&stdout, "scopes").is_some_and(|value| value.contains(r"x\u{1b}]0;owned\u{7}")));
    for name in ["tenant", "cluster", "area"] {
        assert!(
            field(&stdout, name).is_some_and(|value| value.contains(escaped)),
            "{name}: {stdout}"
        );
    }
}

#[test]
fn the_access_key_alone_is_chosen_without_a_client_id() {
    let (code, stdout, stderr) = run(&["--mock", "--grant", "access-key-only"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(field(&stdout, "area"), Some("na1"), "{stdout}");

    // No CXONE_CLIENT_ID, an access key: the access-key endpoint is asked
    // (here a closed loopback port), not refused for a missing client id.
    let key = [
        ("CXONE_ACCESS_KEY_ID", "KEY"),
        ("CXONE_ACCESS_KEY_SECRET", "c2VjcmV0===="),
    ];
    let closed = [(
        "CXONE_TOKEN_URL",
        "http://127.0.0.1:9/authentication/v1/token/access-key",
    )];
    let env: Vec<_> = key.iter().chain(&closed).copied().collect();
    let (code, _, stderr) = run(&[], &env);
    assert_eq!(code, 8, "{stderr}");
    let env: Vec<_> = key
        .iter()
        .chain(&[("CXONE_AREA", "xx1")])
        .copied()
        .collect();
    let (code, _, stderr) = run(&[], &env);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("unknown CXone area") && !stderr.contains("c2VjcmV0"),
        "{stderr}"
    );
}
