//! Credentials that rotate while the process runs: a provider (an async
//! closure over state the test updates, or a file the test rewrites) behind
//! `Rotating`, against the mock CXone rotating its access key. In memory, on
//! paused time.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cxone_auth::mock::{
    ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLIENT_ID, CLIENT_SECRET, MockCxone, TokenFault,
};
use cxone_auth::token::{AccessKeyGrant, AccessKeyOnly, Rotating, ServiceTransport};
use cxone_auth::{
    CxoneAuthLayer, CxoneRetryLayer, Error, ErrorKind, OAuthErrorCode, TokenCache, TokenSource as _,
};
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt as _};

use crate::support::{capture_logs, mock_grant};

const AGENTS: &str = "https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents";

/// The secret the mock accepts after its rotation: another length than the
/// first, so a rewritten file also differs in size.
const NEW_SECRET: &str = "n3w+Rotated/Access+Key/Secret/7kZ====";

/// A provider as a user writes one: an async closure reading shared state
/// (here the access key secret) that a rotation job updates, counting its calls.
#[derive(Clone)]
struct Provider {
    secret: Arc<Mutex<String>>,
    calls: Arc<AtomicUsize>,
    fails: Arc<Mutex<Option<Error>>>,
}

impl Provider {
    fn new() -> Self {
        Self {
            secret: Arc::new(Mutex::new(ACCESS_KEY_SECRET.to_owned())),
            calls: Arc::default(),
            fails: Arc::default(),
        }
    }

    fn set_secret(&self, secret: &str) {
        *self.secret.lock().unwrap() = secret.to_owned();
    }

    fn calls(&self) -> usize {
        self.calls.load(SeqCst)
    }

    /// A source on `mock` that reads its access key secret from this provider.
    async fn source(&self, mock: &MockCxone) -> Rotating<AccessKeyGrant> {
        let (provider, mock) = (self.clone(), mock.clone());
        Rotating::new(move || {
            provider.calls.fetch_add(1, SeqCst);
            let secret = provider.secret.lock().unwrap().clone();
            let fails = provider.fails.lock().unwrap().clone();
            let mock = mock.clone();
            async move {
                if let Some(error) = fails {
                    return Err(error);
                }
                Ok(
                    AccessKeyGrant::new(CLIENT_ID, CLIENT_SECRET, ACCESS_KEY_ID, secret)?
                        .token_url(mock.token_url())?
                        .transport(ServiceTransport::new(mock.router())),
                )
            }
        })
        .await
        .unwrap()
    }
}

/// Retry outside auth, as users stack them, over the mock in memory.
fn client(
    mock: &MockCxone,
    tokens: &TokenCache,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = http::Response<axum::body::Body>,
    Error = BoxError,
    Future: Send,
> + Clone
+ Send
+ 'static {
    ServiceBuilder::new()
        .layer(CxoneRetryLayer::default())
        .layer(CxoneAuthLayer::new(tokens.clone()))
        .service(mock.router())
}

async fn agents<C>(client: &C) -> StatusCode
where
    C: Service<Request<Full<Bytes>>, Response = http::Response<axum::body::Body>, Error = BoxError>
        + Clone,
{
    let request = Request::get(AGENTS).body(Full::default()).unwrap();
    client.clone().oneshot(request).await.unwrap().status()
}

#[tokio::test(start_paused = true)]
async fn requests_keep_succeeding_across_a_rotation() {
    let mock = MockCxone::new();
    let provider = Provider::new();
    let tokens = TokenCache::new(provider.source(&mock).await);
    let client = client(&mock, &tokens);

    // Three token lifetimes, a request every ten minutes; the key rotates
    // after half an hour and the provider learns the new secret at once.
    for minute in (0..180).step_by(10) {
        if minute == 30 {
            mock.rotate_access_key(ACCESS_KEY_ID, NEW_SECRET);
            provider.set_secret(NEW_SECRET);
        }
        assert_eq!(agents(&client).await, StatusCode::OK, "minute {minute}");
        tokio::time::advance(Duration::from_secs(600)).await;
    }
    let stats = mock.stats();
    assert_eq!(stats.api_unauthorized, 0);
    assert_eq!(stats.token_failed, 1, "the old secret, refused once");
    assert_eq!(
        provider.calls(),
        2,
        "read at start, and once after the refusal"
    );
    assert_eq!(
        tokens.stats().fetch_failures,
        0,
        "the refusal never surfaced"
    );
}

/// The old token is revoked with the old key: the 401 forces a fetch, which
/// the old secret fails; the re-read recovers within that fetch, and the
/// retry layer's replay succeeds.
#[tokio::test(start_paused = true)]
async fn a_revoked_token_at_rotation_recovers_within_one_fetch() {
    let mock = MockCxone::new();
    let provider = Provider::new();
    let tokens = TokenCache::new(provider.source(&mock).await);
    let client = client(&mock, &tokens);
    assert_eq!(agents(&client).await, StatusCode::OK);

    mock.rotate_access_key(ACCESS_KEY_ID, NEW_SECRET);
    mock.revoke_all();
    provider.set_secret(NEW_SECRET);
    for _ in 0..3 {
        assert_eq!(agents(&client).await, StatusCode::OK);
    }

    let stats = mock.stats();
    assert_eq!(stats.api_unauthorized, 1, "the revoked token, once");
    assert_eq!((stats.token_failed, stats.token_succeeded), (1, 2));
    assert_eq!(provider.calls(), 2);
    let cache = tokens.stats();
    assert_eq!((cache.invalidations, cache.fetch_failures), (1, 0));
}

/// `invalid_client` (as a 401, whichever CXone sends) causes the re-read too.
#[tokio::test(start_paused = true)]
async fn invalid_client_causes_a_re_read_too() {
    let mock = MockCxone::new();
    let provider = Provider::new();
    let source = provider.source(&mock).await;
    mock.rotate_access_key(ACCESS_KEY_ID, NEW_SECRET);
    provider.set_secret(NEW_SECRET);
    let refusal = TokenFault::oauth_error(401, "invalid_client", "the client secret was rotated");
    mock.fail_next_token_requests(1, refusal);

    source.fetch().await.unwrap();
    assert_eq!(provider.calls(), 2);
    assert_eq!(mock.stats().token_requests, 2);
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_re_read_reports_the_refusal_as_it_is_once_per_fetch() {
    let mock = MockCxone::new();
    let provider = Provider::new();
    let source = provider.source(&mock).await;
    mock.rotate_access_key(ACCESS_KEY_ID, NEW_SECRET);

    for fetch in 1..=3 {
        let err = source.fetch().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::GrantRejected);
        assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));
        assert_eq!(provider.calls(), 1 + fetch, "one re-read per failed fetch");
        assert_eq!(mock.stats().token_requests, fetch as u64, "no second try");
    }

    let refusal = TokenFault::oauth_error(400, "invalid_client", "unknown client");
    mock.fail_next_token_requests(1, refusal);
    let err = source.fetch().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidCredentials);
    assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::InvalidClient));
    assert_eq!(provider.calls(), 5);
    assert!(!format!("{err} {err:?}").contains(&ACCESS_KEY_SECRET[..12]));
}

#[tokio::test(start_paused = true)]
async fn other_failures_read_nothing() {
    let mock = MockCxone::new();
    let provider = Provider::new();
    let source = provider.source(&mock).await;
    for (fault, kind) in [
        (TokenFault::status(500), ErrorKind::Unavailable),
        (
            TokenFault::oauth_error(400, "invalid_request", "malformed"),
            ErrorKind::Rejected,
        ),
        (
            TokenFault::oauth_error(400, "unauthorized_client", "grant not enabled"),
            ErrorKind::GrantRejected,
        ),
        (
            TokenFault::rate_limited(Duration::from_secs(5)),
            ErrorKind::RateLimited,
        ),
    ] {
        mock.fail_next_token_requests(1, fault);
        assert_eq!(source.fetch().await.unwrap_err().kind(), kind);
    }
    assert_eq!(provider.calls(), 1, "only the first read");
    assert_eq!(mock.stats().token_requests, 4, "no second try");
}

#[tokio::test(start_paused = true)]
async fn a_failing_provider_is_a_typed_error() {
    let failing =
        || async { Err::<AccessKeyGrant, _>(Error::new(ErrorKind::Unavailable, "vault down")) };
    let err = Rotating::new(failing).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.to_string().starts_with("vault down")),
        (ErrorKind::Unavailable, true)
    );

    // Read once, then failing when asked again after a refusal.
    let mock = MockCxone::new();
    let provider = Provider::new();
    let tokens = TokenCache::new(provider.source(&mock).await);
    tokens.token().await.unwrap();
    mock.rotate_access_key(ACCESS_KEY_ID, NEW_SECRET);
    mock.revoke_all();
    *provider.fails.lock().unwrap() = Some(Error::new(ErrorKind::Unavailable, "vault down"));
    let stale = tokens.cached().unwrap();
    tokens.invalidate(&stale);
    let err = tokens.token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(provider.calls(), 2);
}

/// The access key alone goes through the same rotation.
#[tokio::test(start_paused = true)]
async fn the_access_key_alone_rotates_too() {
    let mock = MockCxone::new();
    let secret = Arc::new(Mutex::new(ACCESS_KEY_SECRET.to_owned()));
    let (read, on) = (Arc::clone(&secret), mock.clone());
    let source = Rotating::new(move || {
        let secret = read.lock().unwrap().clone();
        let mock = on.clone();
        async move {
            Ok(AccessKeyOnly::new(ACCESS_KEY_ID, secret)?
                .token_url(mock.access_key_url())?
                .transport(ServiceTransport::new(mock.router())))
        }
    })
    .await
    .unwrap();
    source.fetch().await.unwrap();
    mock.rotate_access_key(ACCESS_KEY_ID, NEW_SECRET);
    *secret.lock().unwrap() = NEW_SECRET.to_owned();
    source.fetch().await.unwrap();
    let stats = mock.stats();
    assert_eq!((stats.token_succeeded, stats.token_failed), (2, 1));
}

/// A credentials file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "cxone-auth-rotation-{}-{}-{name}.env",
            std::process::id(),
            NEXT.fetch_add(1, SeqCst)
        );
        Self(std::env::temp_dir().join(unique))
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn env_file(mock: &MockCxone, secret: &str) -> String {
    format!(
        "# CXone credentials, rewritten by the secrets agent\n\
         CXONE_CLIENT_ID={CLIENT_ID}\n\
         CXONE_CLIENT_SECRET={CLIENT_SECRET}\n\
         \n\
         CXONE_ACCESS_KEY_ID={ACCESS_KEY_ID}\n\
         CXONE_ACCESS_KEY_SECRET={secret}\n\
         CXONE_TOKEN_URL={}\n",
        mock.token_url()
    )
}

async fn from_file(file: &TempFile, mock: &MockCxone) -> Result<Rotating<AccessKeyGrant>, Error> {
    let mock = mock.clone();
    Rotating::<AccessKeyGrant>::from_file(&file.0, move |source| {
        Ok(source.transport(ServiceTransport::new(mock.router())))
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_rewritten_file_is_used_at_the_next_fetch() {
    let (logs, _guard) = capture_logs();
    let mock = MockCxone::new();
    let file = TempFile::new("rewritten");
    file.write(&env_file(&mock, ACCESS_KEY_SECRET));
    let source = from_file(&file, &mock).await.unwrap();
    assert_eq!(source.shared_key(), mock_grant(&mock).shared_key());
    source.fetch().await.unwrap();

    mock.rotate_access_key(ACCESS_KEY_ID, NEW_SECRET);
    file.write(&env_file(&mock, NEW_SECRET));
    source.fetch().await.unwrap();
    let stats = mock.stats();
    assert_eq!(
        (stats.token_succeeded, stats.token_failed),
        (2, 0),
        "no refusal first"
    );
    assert_eq!(
        source.shared_key(),
        mock_grant(&mock).shared_key(),
        "same key id, same key"
    );

    let text = logs.text();
    assert!(text.contains("the credentials file changed"), "{text}");
    let debug = format!("{source:?}");
    assert!(
        debug.starts_with("Rotating { source: AccessKeyGrant {"),
        "{debug}"
    );
    assert!(debug.contains("rewritten.env"), "{debug}");
    let shown = format!("{text} {debug}");
    for secret in [ACCESS_KEY_SECRET, NEW_SECRET, CLIENT_SECRET] {
        assert!(!shown.contains(&secret[..12]), "{shown}");
    }
}

/// The shared key is the first credentials', holds no secret, and stays
/// when a rotation brings a new access key id.
#[tokio::test(start_paused = true)]
async fn the_shared_key_stays_that_of_the_first_credentials() {
    const NEW_ID: &str = "ROTATEDACCESSKEYIDZ7Q4====";
    let mock = MockCxone::new();
    let file = TempFile::new("shared-key");
    file.write(&env_file(&mock, ACCESS_KEY_SECRET));
    let source = from_file(&file, &mock).await.unwrap();
    let first = source.shared_key().unwrap();
    assert_eq!(Some(&first), mock_grant(&mock).shared_key().as_ref());
    assert!(!first.contains(&ACCESS_KEY_SECRET[..12]));

    mock.rotate_access_key(NEW_ID, NEW_SECRET);
    file.write(&env_file(&mock, NEW_SECRET).replace(ACCESS_KEY_ID, NEW_ID));
    source.fetch().await.unwrap();
    assert_eq!(source.shared_key(), Some(first.clone()));
    let rotated = AccessKeyGrant::new(CLIENT_ID, CLIENT_SECRET, NEW_ID, NEW_SECRET).unwrap();
    let rotated = rotated.token_url(mock.token_url()).unwrap();
    assert_ne!(
        rotated.shared_key(),
        Some(first),
        "a new key id names another credential"
    );
}

/// A rewrite neither the modification time nor the length shows is still
/// read after the token endpoint refuses the old secret.
#[tokio::test(start_paused = true)]
async fn an_unseen_rewrite_is_read_after_a_refusal() {
    let mock = MockCxone::new();
    let file = TempFile::new("unseen");
    file.write(&env_file(&mock, ACCESS_KEY_SECRET));
    let modified = std::fs::metadata(&file.0).unwrap().modified().unwrap();
    let source = from_file(&file, &mock).await.unwrap();
    source.fetch().await.unwrap();

    let same_length = ACCESS_KEY_SECRET.replace("mOck", "m0ck");
    mock.rotate_access_key(ACCESS_KEY_ID, &same_length);
    file.write(&env_file(&mock, &same_length));
    let handle = std::fs::File::options().write(true).open(&file.0).unwrap();
    handle.set_modified(modified).unwrap();
    drop(handle);

    source.fetch().await.unwrap();
    let stats = mock.stats();
    assert_eq!((stats.token_succeeded, stats.token_failed), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_malformed_file_is_a_config_error_naming_the_line() {
    let mock = MockCxone::new();
    let file = TempFile::new("malformed");
    let malformed = env_file(&mock, ACCESS_KEY_SECRET)
        .replace("CXONE_ACCESS_KEY_SECRET=", "CXONE_ACCESS_KEY_SECRET ");
    file.write(&malformed);
    let err = from_file(&file, &mock).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let text = format!("{err} {err:?}");
    assert!(text.contains(&file.0.display().to_string()), "{text}");
    assert!(text.contains("line 6: the name before `=`"), "{text}");
    assert!(!text.contains(&ACCESS_KEY_SECRET[..12]), "{text}");

    // A value the grant refuses: the file and the variable are named.
    file.write(&env_file(&mock, &format!("{ACCESS_KEY_SECRET} ")));
    let err = from_file(&file, &mock).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("(CXONE_ACCESS_KEY_SECRET) has leading/trailing whitespace"),
        "{text}"
    );
    assert!(text.starts_with("credentials file "), "{text}");
    assert!(!text.contains(&ACCESS_KEY_SECRET[..12]), "{text}");

    let missing = TempFile::new("missing");
    let err = from_file(&missing, &mock).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("could not be read"), "{err}");
}

/// A file rewritten into something unusable: the credentials read before
/// stay in use; once they are refused, the re-read reports the file's error.
#[tokio::test(start_paused = true)]
async fn a_file_broken_while_running_keeps_the_last_credentials() {
    let (logs, _guard) = capture_logs();
    let mock = MockCxone::new();
    let file = TempFile::new("broken");
    file.write(&env_file(&mock, ACCESS_KEY_SECRET));
    let source = from_file(&file, &mock).await.unwrap();

    file.write("CXONE_CLIENT_ID\n");
    source.fetch().await.unwrap();
    assert!(
        logs.text()
            .contains("the credentials file changed but is not usable")
    );

    mock.rotate_access_key(ACCESS_KEY_ID, NEW_SECRET);
    let err = source.fetch().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.to_string().contains("line 1: expected NAME=value"),
        "{err}"
    );

    file.write(&env_file(&mock, NEW_SECRET));
    source.fetch().await.unwrap();
    assert!(!logs.text().contains(&NEW_SECRET[..12]));
}
