//! `cxone-token`: fetches one CXone access token and says what it is good
//! for: when it expires, the scopes granted, its tenant and the tenant's API
//! host. For debugging credentials; the token itself is printed only with
//! `--print-token`.
//!
//! ```text
//! cargo install cxone-auth --features cli
//! CXONE_CLIENT_ID=.. CXONE_CLIENT_SECRET=.. CXONE_ACCESS_KEY_ID=.. CXONE_ACCESS_KEY_SECRET=.. cxone-token
//! cxone-token --mock          # against an in-process mock CXone, no credentials needed
//! ```
//!
//! Exit codes (`--help` lists them): 0 success, 2 bad arguments, 3 a `CXONE_*`
//! variable is missing or unusable, 4 client credentials refused, 5 access
//! key or grant refused, 6 scope refused, 7 rate limited, 8 CXone
//! unreachable or failing, 9 an answer that is not a token response, 10 the
//! token works but its tenant could not be discovered, 1 anything else.

use std::process::ExitCode;
use std::time::SystemTime;

use cxone_auth::mock::{self, MockCxone};
use cxone_auth::token::{AccessKeyGrant, ClientCredentials, ServiceTransport, TenantConfig};
use cxone_auth::{AccessToken, Error, ErrorKind, TokenSource as _};
use tokio::time::Instant;

const USAGE: &str = "\
cxone-token: fetch a CXone access token and show what it is good for

USAGE:
    cxone-token [OPTIONS]

OPTIONS:
    --grant <GRANT>   access-key (default: CXone's back-end flow, the password
                      grant with an access key) or client-credentials
    --mock            ask an in-process mock CXone instead; CXONE_* variables
                      that are set still override its default credentials
    --print-token     also print the token itself (it is a password: keep it
                      out of logs and tickets)
    -h, --help        print this help
    -V, --version     print the version

ENVIRONMENT:
    CXONE_CLIENT_ID, CXONE_CLIENT_SECRET           the app's registration (required)
    CXONE_ACCESS_KEY_ID, CXONE_ACCESS_KEY_SECRET   the access key (required for access-key)
    CXONE_TOKEN_URL or CXONE_ISSUER                where to ask (default: cxone.niceincontact.com)
    CXONE_SCOPES                                   scopes to ask for, space or comma separated

EXIT CODES:
    0   the token was fetched and its tenant found
    1   an unexpected failure
    2   bad arguments
    3   configuration: a CXONE_* variable is missing or unusable
    4   the client id or secret was refused (invalid_client)
    5   the access key or the grant was refused (invalid_grant, unauthorized_client)
    6   a requested scope was refused (invalid_scope)
    7   rate limited: wait and try again
    8   CXone could not be reached, timed out or failed (5xx): try again later
    9   the answer was not a token response: check CXONE_TOKEN_URL / CXONE_ISSUER
    10  the token was fetched, but its tenant could not be discovered
";

/// Which grant to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    AccessKey,
    ClientCredentials,
}

#[derive(Debug)]
struct Options {
    grant: Grant,
    mock: bool,
    print_token: bool,
}

enum Command {
    Run(Options),
    Help,
    Version,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut options = Options {
        grant: Grant::AccessKey,
        mock: false,
        print_token: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--mock" => options.mock = true,
            "--print-token" => options.print_token = true,
            "--grant" => {
                let value = inline
                    .or_else(|| args.next())
                    .ok_or("--grant needs a value: access-key or client-credentials")?;
                options.grant = match value.as_str() {
                    "access-key" | "password" => Grant::AccessKey,
                    "client-credentials" | "client_credentials" => Grant::ClientCredentials,
                    other => {
                        return Err(format!(
                            "unknown grant `{other}`: use access-key or client-credentials"
                        ));
                    }
                };
            }
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    Ok(Command::Run(options))
}

/// A source of either grant, with its tenant discovery.
enum Source {
    AccessKey(AccessKeyGrant),
    ClientCredentials(ClientCredentials),
}

impl Source {
    /// Reads the `CXONE_*` variables; with `mock`, unset ones default to
    /// the mock's credentials and every request goes to the mock.
    fn new(options: &Options, mock: Option<&MockCxone>) -> Result<Self, Error> {
        let lookup = |name: &str| {
            let set = std::env::var(name).ok().filter(|value| !value.is_empty());
            let Some(mock) = mock else {
                return set;
            };
            match name {
                "CXONE_TOKEN_URL" => Some(mock.token_url()),
                "CXONE_ISSUER" => None,
                "CXONE_CLIENT_ID" => set.or_else(|| Some(mock::CLIENT_ID.to_owned())),
                "CXONE_CLIENT_SECRET" => set.or_else(|| Some(mock::CLIENT_SECRET.to_owned())),
                "CXONE_ACCESS_KEY_ID" => set.or_else(|| Some(mock::ACCESS_KEY_ID.to_owned())),
                "CXONE_ACCESS_KEY_SECRET" => {
                    set.or_else(|| Some(mock::ACCESS_KEY_SECRET.to_owned()))
                }
                _ => set,
            }
        };
        let source = match options.grant {
            Grant::AccessKey => Source::AccessKey(AccessKeyGrant::from_lookup(lookup)?),
            Grant::ClientCredentials => {
                Source::ClientCredentials(ClientCredentials::from_lookup(lookup)?)
            }
        };
        Ok(match (source, mock) {
            (Source::AccessKey(s), Some(m)) => {
                Source::AccessKey(s.transport(ServiceTransport::new(m.router())))
            }
            (Source::ClientCredentials(s), Some(m)) => {
                Source::ClientCredentials(s.transport(ServiceTransport::new(m.router())))
            }
            (source, None) => source,
        })
    }

    async fn fetch(&self) -> Result<AccessToken, Error> {
        match self {
            Source::AccessKey(source) => source.fetch().await,
            Source::ClientCredentials(source) => source.fetch().await,
        }
    }

    async fn discover_tenant(&self, token: &AccessToken) -> Result<TenantConfig, Error> {
        match self {
            Source::AccessKey(source) => source.discover_tenant(token).await,
            Source::ClientCredentials(source) => source.discover_tenant(token).await,
        }
    }
}

/// The exit code for a failure, by what the user has to fix.
fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Config => 3,
        ErrorKind::InvalidCredentials => 4,
        ErrorKind::GrantRejected => 5,
        ErrorKind::InvalidScope => 6,
        ErrorKind::RateLimited => 7,
        ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Transport => 8,
        ErrorKind::InvalidResponse | ErrorKind::Rejected => 9,
        ErrorKind::Discovery => 10,
        _ => 1,
    }
}

/// What to change, for each exit code.
fn what_to_fix(code: u8, grant: Grant) -> &'static str {
    match (code, grant) {
        (3, _) => {
            "set the CXONE_* variables (see --help); values must not be empty or padded with spaces"
        }
        (4, _) => {
            "check CXONE_CLIENT_ID and CXONE_CLIENT_SECRET against the app's registration, and that the app is active"
        }
        (5, Grant::AccessKey) => {
            "check CXONE_ACCESS_KEY_ID and CXONE_ACCESS_KEY_SECRET: the key must exist, be active, and belong to an active user"
        }
        (5, Grant::ClientCredentials) => {
            "this server refuses the client_credentials grant for the app: CXone's back-end flow is --grant access-key"
        }
        (6, _) => "check CXONE_SCOPES against the scopes the app may ask for",
        (7, _) => "wait (see `retry after` above) and try again",
        (8, _) => "check the network and CXONE_TOKEN_URL / CXONE_ISSUER, then try again later",
        (9, _) => {
            "check that CXONE_TOKEN_URL / CXONE_ISSUER point at a CXone (OAuth 2.0) token endpoint"
        }
        (10, _) => {
            "the token works; its tenant was not found under the issuer: check CXONE_ISSUER / CXONE_TOKEN_URL match the token's environment"
        }
        _ => "",
    }
}

fn fail(err: &Error, grant: Grant) -> ExitCode {
    let code = exit_code(err.kind());
    eprintln!("error: {err}");
    let fix = what_to_fix(code, grant);
    if !fix.is_empty() {
        eprintln!("fix: {fix}");
    }
    ExitCode::from(code)
}

fn print_token(token: &AccessToken, print_secret: bool) {
    let line = |name: &str, value: &dyn std::fmt::Display| println!("{name:<15}{value}");
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
    let Some(claims) = token.claims() else {
        line("claims", &"none: not a JWT, so no tenant to discover");
        return;
    };
    let name = claims.get("tenant").and_then(|name| name.as_str());
    match (claims.tenant_id(), name) {
        (Some(id), Some(name)) => line("tenant", &format!("{id} ({name})")),
        (Some(id), None) => line("tenant", &id),
        (None, _) => line("tenant", &"none: the token has no tenantId claim"),
    }
    if let Some(unit) = claims.business_unit_id() {
        line("business unit", &unit);
    }
    if let Some(cluster) = claims.cluster_id() {
        line("cluster", &cluster);
    }
}

fn print_tenant(tenant: &TenantConfig) {
    println!("{:<15}{}", "api endpoint", tenant.api_endpoint());
    if let Some(area) = tenant.area() {
        println!("{:<15}{area}", "area");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("cxone-token {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let mock = options.mock.then(MockCxone::new);
    let source = match Source::new(&options, mock.as_ref()) {
        Ok(source) => source,
        Err(err) => return fail(&err, options.grant),
    };
    let token = match source.fetch().await {
        Ok(token) => token,
        Err(err) => return fail(&err, options.grant),
    };
    print_token(&token, options.print_token);
    if token
        .claims()
        .and_then(|claims| claims.tenant_id())
        .is_none()
    {
        return ExitCode::SUCCESS;
    }
    match source.discover_tenant(&token).await {
        Ok(tenant) => {
            print_tenant(&tenant);
            ExitCode::SUCCESS
        }
        Err(err) => fail(&err, options.grant),
    }
}
