//! `cxone-token`: fetches one CXone access token and says what it is good
//! for: when it expires, the scopes granted, its tenant and the tenant's API
//! host. For debugging credentials; the token itself is printed only with
//! `--print-token`. `--help` lists the options, variables and exit codes.
//!
//! ```text
//! cargo install cxone-auth --features cli
//! CXONE_CLIENT_ID=.. CXONE_CLIENT_SECRET=.. CXONE_ACCESS_KEY_ID=.. CXONE_ACCESS_KEY_SECRET=.. cxone-token
//! cxone-token --mock          # against an in-process mock CXone, no credentials needed
//! ```

use std::fmt::Display;
use std::process::ExitCode;
use std::time::SystemTime;

use cxone_auth::mock::{self, MockCxone};
use cxone_auth::token::{
    AccessKeyGrant, AccessKeyOnly, ClientCredentials, OAuthSource, ServiceTransport,
};
use cxone_auth::{Error, ErrorKind, TokenSource};
use tokio::time::Instant;

const USAGE: &str = "\
cxone-token: fetch a CXone access token and show what it is good for

USAGE:
    cxone-token [OPTIONS]

OPTIONS:
    --grant <GRANT>   access-key (default: CXone's back-end flow, the password
                      grant with an access key), access-key-only (the access
                      key alone, no app: without --mock, the default when
                      CXONE_CLIENT_ID is unset and the access key is set) or
                      client-credentials
    --mock            ask an in-process mock CXone instead; CXONE_* variables
                      that are set still override its default credentials
    --print-token     also print the token itself (it is a password: keep it
                      out of logs and tickets)
    -h, --help        print this help
    -V, --version     print the version

ENVIRONMENT:
    CXONE_CLIENT_ID, CXONE_CLIENT_SECRET           the app's registration (not for access-key-only)
    CXONE_ACCESS_KEY_ID, CXONE_ACCESS_KEY_SECRET   the access key (not for client-credentials)
    CXONE_AREA                                     access-key-only: na1 (default), na2, au1, eu1, uk1, ca1, jp1
    CXONE_TOKEN_URL or CXONE_ISSUER                where to ask (default: cxone.niceincontact.com)
    CXONE_SCOPES                                   scopes to ask for, space or comma separated

EXIT CODES:
    0   the token was fetched and its tenant found
    1   an unexpected failure
    2   bad arguments
    3   configuration: a CXONE_* variable is missing or unusable
    4   the client id or secret was refused (invalid_client)
    5   the access key or the grant was refused (invalid_grant, unauthorized_client)
    6   a requested scope was refused (invalid_scope), or 403: the role of the
        key's user lacks a permission
    7   rate limited: wait and try again
    8   CXone could not be reached, timed out or failed (5xx): try again later
    9   the answer was not a token response: check CXONE_TOKEN_URL / CXONE_ISSUER
    10  the token was fetched, but its tenant could not be discovered
";

#[derive(Default)]
struct Options {
    grant: Option<CliGrant>,
    mock: bool,
    print_token: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum CliGrant {
    AccessKey,
    AccessKeyOnly,
    ClientCredentials,
}

/// The options, or `None` once `--help` or `--version` has been answered.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=').filter(|(f, _)| f.starts_with("--")) {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("cxone-token {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--mock" => options.mock = true,
            "--print-token" => options.print_token = true,
            "--grant" => {
                let value = inline.or_else(|| args.next()).ok_or(
                    "--grant needs a value: access-key, access-key-only or client-credentials",
                )?;
                options.grant = Some(match value.as_str() {
                    "access-key" | "password" => CliGrant::AccessKey,
                    "access-key-only" => CliGrant::AccessKeyOnly,
                    "client-credentials" | "client_credentials" => CliGrant::ClientCredentials,
                    other => {
                        return Err(format!(
                            "unknown grant `{other}`: use access-key, access-key-only or client-credentials"
                        ));
                    }
                });
            }
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    Ok(Some(options))
}

/// The exit code for a failure, by what the user has to fix, and the fix.
fn exit_code(err: &Error, client_credentials: bool) -> (u8, &'static str) {
    if err.status() == Some(http::StatusCode::FORBIDDEN) && err.oauth_code().is_none() {
        return (
            6,
            "give the role of the CXone user who owns the access key the permission (not a scope)",
        );
    }
    match err.kind() {
        ErrorKind::Config => (
            3,
            "set the CXONE_* variables (see --help); values must not be empty or padded with spaces",
        ),
        ErrorKind::InvalidCredentials => (
            4,
            "check CXONE_CLIENT_ID and CXONE_CLIENT_SECRET against the app's registration, and that the app is active",
        ),
        ErrorKind::GrantRejected if client_credentials => (
            5,
            "this server refuses the client_credentials grant for the app: CXone's back-end flow is --grant access-key",
        ),
        ErrorKind::GrantRejected => (
            5,
            "check CXONE_ACCESS_KEY_ID and CXONE_ACCESS_KEY_SECRET: the key must exist, be active, and belong to an active user",
        ),
        ErrorKind::InvalidScope => (
            6,
            "unset CXONE_SCOPES or ask only for openid: a CXone token's rights come from the key owner's role",
        ),
        ErrorKind::RateLimited => (7, "wait (see `retry after` above) and try again"),
        ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Transport => (
            8,
            "check the network and CXONE_TOKEN_URL / CXONE_ISSUER, then try again later",
        ),
        ErrorKind::InvalidResponse | ErrorKind::Rejected => (
            9,
            "check that CXONE_TOKEN_URL / CXONE_ISSUER point at a CXone (OAuth 2.0) token endpoint",
        ),
        ErrorKind::Discovery => (
            10,
            "the token works; its tenant was not found under the issuer: check CXONE_ISSUER / CXONE_TOKEN_URL match the token's environment",
        ),
        _ => (1, ""),
    }
}

/// `text` with its control characters (ESC, BEL, CR...) escaped: what a
/// server sent must not drive the terminal or forge lines.
fn escaped(text: &dyn Display) -> String {
    let mut shown = String::new();
    for c in text.to_string().chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// Fetches a token with `source` and prints what it is good for; with a
/// tenant in its claims, discovers the tenant's API host.
async fn show<G>(
    source: Result<OAuthSource<G>, Error>,
    mock: Option<&MockCxone>,
    print_secret: bool,
) -> Result<(), Error>
where
    OAuthSource<G>: TokenSource,
{
    let mut source = source?;
    if let Some(mock) = mock {
        source = source.transport(ServiceTransport::new(mock.router()));
    }
    let token = source.fetch().await?;
    let line = |name: &str, value: &dyn Display| println!("{name:<15}{}", escaped(value));
    if print_secret {
        line("token", &token.secret());
    } else {
        line("token", &"obtained (not shown; --print-token shows it)");
    }
    let left = token.expires_at().saturating_duration_since(Instant::now());
    let at = httpdate::fmt_http_date(SystemTime::now() + left);
    line("expires in", &format!("{} s (at {at})", left.as_secs()));
    match token.scopes() {
        [] => line("scopes", &"none stated"),
        scopes => line("scopes", &scopes.join(" ")),
    }
    let claims = token.claims();
    let name = claims.and_then(|claims| claims.get("tenant")?.as_str());
    match (token.tenant_id(), name) {
        (Some(id), Some(name)) => line("tenant", &format!("{id} ({name})")),
        (Some(id), None) => line("tenant", &id),
        (None, _) => line(
            "tenant",
            &"none: no tenantId claim in the access or id token",
        ),
    }
    if let Some(unit) = claims.and_then(|claims| claims.business_unit_id()) {
        line("business unit", &unit);
    }
    if let Some(cluster) = claims.and_then(|claims| claims.cluster_id()) {
        line("cluster", &cluster);
    }
    if token.tenant_id().is_some() {
        let tenant = source.discover_tenant(&token).await?;
        line("api endpoint", &tenant.api_endpoint());
        if let Some(area) = tenant.area() {
            line("area", &area);
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => return ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    // The mock offers `client_credentials` too, which CXone does not, so
    // `--grant client-credentials` can be tried against it.
    let grants = [mock::Grant::Password, mock::Grant::ClientCredentials];
    let mock = options
        .mock
        .then(|| MockCxone::builder().grants(grants).build());
    let (mock, print) = (mock.as_ref(), options.print_token);
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    let key_alone = mock.is_none()
        && !set("CXONE_CLIENT_ID")
        && set("CXONE_ACCESS_KEY_ID")
        && set("CXONE_ACCESS_KEY_SECRET");
    let grant = (options.grant).unwrap_or(if key_alone {
        CliGrant::AccessKeyOnly
    } else {
        CliGrant::AccessKey
    });
    // With `--mock`, every request goes to the mock, and unset variables
    // default to its credentials.
    let lookup = |name: &str| {
        let set = std::env::var(name).ok().filter(|value| !value.is_empty());
        let Some(mock) = mock else {
            return set;
        };
        let default = match name {
            "CXONE_TOKEN_URL" if grant == CliGrant::AccessKeyOnly => {
                return Some(mock.access_key_url());
            }
            "CXONE_TOKEN_URL" => return Some(mock.token_url()),
            "CXONE_ISSUER" | "CXONE_AREA" => return None,
            "CXONE_CLIENT_ID" => mock::CLIENT_ID,
            "CXONE_CLIENT_SECRET" => mock::CLIENT_SECRET,
            "CXONE_ACCESS_KEY_ID" => mock::ACCESS_KEY_ID,
            "CXONE_ACCESS_KEY_SECRET" => mock::ACCESS_KEY_SECRET,
            _ => return set,
        };
        set.or_else(|| Some(default.to_owned()))
    };
    let shown = match grant {
        CliGrant::ClientCredentials => {
            show(ClientCredentials::from_lookup(lookup), mock, print).await
        }
        CliGrant::AccessKeyOnly => show(AccessKeyOnly::from_lookup(lookup), mock, print).await,
        CliGrant::AccessKey => show(AccessKeyGrant::from_lookup(lookup), mock, print).await,
    };
    let Err(err) = shown else {
        return ExitCode::SUCCESS;
    };
    let (code, fix) = exit_code(&err, grant == CliGrant::ClientCredentials);
    eprintln!("error: {}", escaped(&err));
    if !fix.is_empty() {
        eprintln!("fix: {fix}");
    }
    ExitCode::from(code)
}
