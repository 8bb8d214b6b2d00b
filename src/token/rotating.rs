//! [`Rotating`]: an OAuth source whose credentials come from a provider (an
//! async function, or a file of `CXONE_*` lines), so a rotated secret needs
//! no restart.
//!
//! Rotation is written once, over [`OAuthSource`], for every grant: the
//! wrapper asks the provider for a whole source, and after the token endpoint
//! refuses the credentials it asks once more and compares the two. It is not
//! generic over any [`TokenSource`], because "did the credentials change?"
//! needs the credentials, and a custom source ([`from_fn`](crate::token::from_fn))
//! already reads its secrets itself on every fetch.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::future::Future;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use futures_util::future::BoxFuture;

use crate::token::OAuthSource;
use crate::token::grant::OAuthGrant;
use crate::{AccessToken, Error, ErrorKind, OAuthErrorCode, TokenSource};

/// The largest credentials file read: a few lines of ids and secrets are a
/// few hundred bytes, so anything larger is the wrong file.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Reads the credentials and builds a source from them.
type ReadSource<S> = Box<dyn Fn() -> BoxFuture<'static, Result<S, Error>> + Send + Sync>;

/// An OAuth source ([`AccessKeyGrant`](crate::token::AccessKeyGrant),
/// [`AccessKeyOnly`](crate::token::AccessKeyOnly),
/// [`ClientCredentials`](crate::token::ClientCredentials)) whose credentials
/// come from a provider and may rotate while the process runs.
///
/// - [`new`](Self::new) takes an async function that builds the source: from
///   a secrets manager, say.
/// - [`from_file`](Self::from_file) reads a file of `NAME=value` lines, with
///   the [`CXONE_*` names](OAuthSource#configuration-from-the-environment),
///   as Kubernetes and Vault agents write them. The file is looked at (its
///   modification time and length) at each token fetch, and read again
///   when either changed. A file that changed but cannot be used (half
///   written, or malformed) is reported in a `tracing` warning and the
///   credentials read before stay in use.
///
/// Both read the credentials once when built, so a broken configuration
/// fails at startup. When the token endpoint refuses the credentials
/// (`invalid_client`, `invalid_grant`, or a 401 without an RFC 6749 body),
/// the source reads them once more and, if they changed, asks once more
/// within the same fetch; if they did not, the refusal is returned as it is,
/// its [`oauth_code`](Error::oauth_code) kept. Other failures (a 5xx,
/// `invalid_request`) read nothing. If that re-read fails, its error is
/// returned (the refusal is logged). Fetches run one at a time under the
/// [`TokenCache`](crate::TokenCache), which is all this needs.
///
/// The [`shared_key`](TokenSource::shared_key) is that of the credentials
/// read first, and stays: a store's key is fixed when the cache is built.
/// It holds no secret, so a new secret for the same client id and access
/// key id keeps sharing tokens across a fleet. A new access key id (CXone
/// gives a regenerated key a new id) makes the new credentials' key differ
/// from the first; this source keeps the first, so processes started before
/// the rotation still share one entry, and processes started after share
/// another, each holding tokens of the same user, until they restart.
///
/// `Debug` shows the current source, which shows no secret.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use cxone_auth::TokenSource as _;
/// use cxone_auth::token::{AccessKeyGrant, Rotating};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // Wherever the secret lives; a rotation job updates it.
/// let secret = Arc::new(Mutex::new("c2VjcmV0+/x====".to_owned()));
/// let source = Rotating::new(move || {
///     let secret = secret.lock().unwrap().clone();
///     async move { AccessKeyGrant::new("client-id", "client-secret", "KEYID", secret) }
/// })
/// .await?;
/// assert_eq!(source.shared_key().unwrap().len(), 64);
/// assert!(!format!("{source:?}").contains("c2VjcmV0"));
/// # Ok::<(), cxone_auth::Error>(()) }).unwrap();
/// ```
pub struct Rotating<S> {
    read: ReadSource<S>,
    /// For [`from_file`](Self::from_file): the file, looked at on each fetch.
    file: Option<Arc<WatchedFile>>,
    current: ArcSwap<S>,
    shared_key: Option<String>,
}

impl<G: OAuthGrant> Rotating<OAuthSource<G>> {
    /// A source whose credentials `provider` supplies: called once now, and
    /// once more each time the token endpoint refuses the credentials.
    ///
    /// # Errors
    ///
    /// The provider's error, when its first call fails.
    pub async fn new<F, Fut>(provider: F) -> Result<Self, Error>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<OAuthSource<G>, Error>> + Send + 'static,
    {
        Self::start(Box::new(move || Box::pin(provider())), None).await
    }

    /// A source configured by the file at `path`: `NAME=value` lines with the
    /// [`CXONE_*` names](OAuthSource#configuration-from-the-environment)
    /// (the process environment is not read), blank lines and `#` comments.
    /// A value is taken as it is, to the end of its line: no quotes, no
    /// escapes, and surrounding whitespace is an error, as everywhere in the
    /// crate. `configure` finishes each source built from the file (a
    /// transport, a timeout); pass `Ok` for none. See the
    /// [type docs](Self) for when the file is read.
    ///
    /// ```
    /// use cxone_auth::TokenSource as _;
    /// use cxone_auth::token::{ClientCredentials, Rotating};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let path = std::env::temp_dir().join(format!("cxone-doc-{}.env", std::process::id()));
    /// std::fs::write(&path, "# written by the secrets agent\n\
    ///     CXONE_CLIENT_ID=my-app\n\
    ///     CXONE_CLIENT_SECRET=my-secret\n\
    ///     CXONE_TOKEN_URL=https://auth.example.com/oauth2/token\n").unwrap();
    /// let source = Rotating::<ClientCredentials>::from_file(&path, Ok).await;
    ///
    /// std::fs::write(&path, "CXONE_CLIENT_ID=my-app\nCXONE_CLIENT_SECRET my-secret\n").unwrap();
    /// let malformed = Rotating::<ClientCredentials>::from_file(&path, Ok).await.unwrap_err();
    /// std::fs::remove_file(&path).unwrap();
    ///
    /// assert!(source?.shared_key().is_some());
    /// assert!(malformed.to_string().ends_with("line 2: expected NAME=value"));
    /// assert!(!malformed.to_string().contains("my-secret"));
    /// # Ok::<(), cxone_auth::Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] naming the file, and the line when a line is
    /// malformed or repeats a name, never a value: the file cannot be read,
    /// is not UTF-8, is over 64 KiB, or its variables are not a usable
    /// configuration. `configure`'s errors as they are.
    pub async fn from_file<C>(path: impl Into<PathBuf>, configure: C) -> Result<Self, Error>
    where
        C: Fn(OAuthSource<G>) -> Result<OAuthSource<G>, Error> + Send + Sync + 'static,
    {
        let file = Arc::new(WatchedFile {
            path: path.into(),
            stamp: Mutex::new(None),
        });
        let configure = Arc::new(configure);
        let watched = Arc::clone(&file);
        let read: ReadSource<OAuthSource<G>> = Box::new(move || {
            let (file, configure) = (Arc::clone(&watched), Arc::clone(&configure));
            Box::pin(async move {
                let (stamp, text) = file.read().await?;
                let vars = parse_env_file(&file.path, &text)?;
                let source = OAuthSource::from_lookup(|name| vars.get(name).cloned())
                    .map_err(|err| file.error(&err.to_string()))?;
                let source = configure(source)?;
                // Only a usable file counts as read: a half-written one is
                // read again at the next fetch.
                file.set_stamp(stamp);
                Ok(source)
            })
        });
        Self::start(read, Some(file)).await
    }

    async fn start(
        read: ReadSource<OAuthSource<G>>,
        file: Option<Arc<WatchedFile>>,
    ) -> Result<Self, Error> {
        let first = read().await?;
        Ok(Self {
            read,
            file,
            shared_key: first.shared_key(),
            current: ArcSwap::from_pointee(first),
        })
    }

    /// Makes `fresh` the current source, unless it holds the same
    /// credentials as `old` (then `None`): keeping the old one keeps its
    /// discovered token URL, refresh token and connections.
    fn replace(&self, old: &OAuthSource<G>, fresh: OAuthSource<G>) -> Option<Arc<OAuthSource<G>>> {
        if fresh.same_credentials(old) {
            return None;
        }
        if fresh.shared_key() != self.shared_key {
            tracing::info!(
                "the new credentials name another access key, client, endpoint or scopes; \
                 the token store key stays that of the first credentials until restart"
            );
        }
        let fresh = Arc::new(fresh);
        self.current.store(Arc::clone(&fresh));
        Some(fresh)
    }
}

impl<G: OAuthGrant> TokenSource for Rotating<OAuthSource<G>> {
    async fn fetch(&self) -> Result<AccessToken, Error> {
        if let Some(file) = &self.file
            && file.changed().await
        {
            match (self.read)().await {
                Ok(fresh) => {
                    if self.replace(&self.current.load_full(), fresh).is_some() {
                        tracing::info!("the credentials file changed; using its new credentials");
                    }
                }
                Err(error) => tracing::warn!(
                    %error,
                    "the credentials file changed but is not usable; keeping the credentials read before"
                ),
            }
        }
        let source = self.current.load_full();
        let refused = match source.fetch().await {
            Err(err) if refuses_credentials(&err) => err,
            done => return done,
        };
        let fresh = match (self.read)().await {
            Ok(fresh) => fresh,
            Err(error) => {
                tracing::warn!(
                    %refused,
                    "the token endpoint refused the credentials, and reading them again failed"
                );
                return Err(error);
            }
        };
        match self.replace(&source, fresh) {
            Some(fresh) => {
                tracing::info!(
                    "the token endpoint refused the credentials; read again, they changed: asking once more"
                );
                fresh.fetch().await
            }
            None => Err(refused),
        }
    }

    fn shared_key(&self) -> Option<String> {
        self.shared_key.clone()
    }
}

impl<S: fmt::Debug> fmt::Debug for Rotating<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rotating")
            .field("source", &**self.current.load())
            .field("file", &self.file.as_ref().map(|file| &file.path))
            .finish_non_exhaustive()
    }
}

/// Whether the token endpoint refused the credentials themselves: the
/// errors a rotated secret causes.
fn refuses_credentials(err: &Error) -> bool {
    err.kind() == ErrorKind::InvalidCredentials
        || err.oauth_code() == Some(&OAuthErrorCode::InvalidGrant)
}

/// A credentials file and what it looked like when last read with success.
struct WatchedFile {
    path: PathBuf,
    stamp: Mutex<Option<FileStamp>>,
}

/// What tells a rewritten file: agents rewrite in place or swap a new file
/// in, and either changes the modification time or, within its
/// granularity, most often the length. A change both miss is still seen
/// after the token endpoint refuses the old secret.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl FileStamp {
    fn of(metadata: &std::fs::Metadata) -> Self {
        Self {
            modified: metadata.modified().ok(),
            len: metadata.len(),
        }
    }
}

impl WatchedFile {
    /// Whether the file differs from its last good read; a file that cannot
    /// be looked at counts as changed, so reading it reports why.
    async fn changed(self: &Arc<Self>) -> bool {
        let file = Arc::clone(self);
        let now = tokio::task::spawn_blocking(move || std::fs::metadata(&file.path))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|metadata| FileStamp::of(&metadata));
        let last = *self.stamp.lock().unwrap_or_else(PoisonError::into_inner);
        now.is_none() || now != last
    }

    fn set_stamp(&self, stamp: FileStamp) {
        *self.stamp.lock().unwrap_or_else(PoisonError::into_inner) = Some(stamp);
    }

    /// The file's text and its stamp, taken from one open handle so they
    /// agree even when the file is swapped meanwhile.
    async fn read(self: &Arc<Self>) -> Result<(FileStamp, String), Error> {
        let file = Arc::clone(self);
        let read = tokio::task::spawn_blocking(move || {
            let mut handle = File::open(&file.path)?;
            let stamp = FileStamp::of(&handle.metadata()?);
            if stamp.len > MAX_FILE_BYTES {
                return Ok(Err(
                    file.error("is over 64 KiB, too large for a credentials file")
                ));
            }
            let mut text = String::new();
            match handle.read_to_string(&mut text) {
                Ok(_) => Ok(Ok((stamp, text))),
                Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {
                    Ok(Err(file.error("is not UTF-8 text")))
                }
                Err(err) => Err(err),
            }
        });
        match read.await {
            Ok(Ok(result)) => result,
            Ok(Err(io)) => Err(self.error("could not be read").with_source(io)),
            Err(join) => Err(self.error("could not be read").with_source(join)),
        }
    }

    /// A configuration error about this file.
    fn error(&self, what: &str) -> Error {
        Error::config(format!("credentials file {}: {what}", self.path.display()))
    }
}

/// The variables of a file of `NAME=value` lines. Errors name the line,
/// never what it holds.
fn parse_env_file(path: &Path, text: &str) -> Result<HashMap<String, String>, Error> {
    let mut vars = HashMap::new();
    let mut lines_of = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let bad = |what: &str| {
            Error::config(format!(
                "credentials file {}, line {number}: {what}",
                path.display()
            ))
        };
        let line = line.trim_start();
        if line.trim_end().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(bad("expected NAME=value"));
        };
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(bad(
                "the name before `=` must be letters, digits and `_`, with no spaces",
            ));
        }
        if let Some(first) = lines_of.insert(name.to_owned(), number) {
            return Err(bad(&format!("{name} is set again (first on line {first})")));
        }
        vars.insert(name.to_owned(), value.to_owned());
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HashMap<String, String>, Error> {
        parse_env_file(Path::new("creds.env"), text)
    }

    #[test]
    fn reads_names_values_comments_and_blank_lines() {
        let vars =
            parse("# a comment\r\n\n  CXONE_A=x=y+/==\r\nCXONE_B= padded \n   \n\tCXONE_EMPTY=\n")
                .unwrap();
        assert_eq!(vars["CXONE_A"], "x=y+/==");
        assert_eq!(vars["CXONE_B"], " padded ", "values are kept as they are");
        assert_eq!(vars["CXONE_EMPTY"], "");
        assert_eq!(vars.len(), 3);
    }

    #[test]
    fn malformed_lines_are_named_without_their_text() {
        for (text, says) in [
            (
                "A=1\nSECRETVALUE\n",
                "creds.env, line 2: expected NAME=value",
            ),
            ("A=1\n\nB C=SECRETVALUE\n", "line 3: the name before `=`"),
            ("=SECRETVALUE\n", "line 1: the name before `=`"),
            ("1A=SECRETVALUE\n", "line 1: the name"),
            ("A =SECRETVALUE\n", "line 1: the name"),
            (
                "A=SECRETVALUE\n# x\nA=SECRETVALUE2\n",
                "line 3: A is set again (first on line 1)",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            let shown = format!("{err} {err:?}");
            assert!(shown.contains(says), "{shown}");
            assert!(!shown.contains("SECRETVALUE"), "{shown}");
        }
    }

    #[test]
    fn only_credential_errors_cause_a_re_read() {
        use crate::error::OAuthError;
        use http::StatusCode;
        let answer = |status: u16, code: Option<&str>| {
            let status = StatusCode::from_u16(status).unwrap();
            Error::from_token_response(status, code.map(|c| OAuthError::new(c, None)), None)
        };
        assert!(refuses_credentials(&answer(401, Some("invalid_client"))));
        assert!(refuses_credentials(&answer(400, Some("invalid_client"))));
        assert!(refuses_credentials(&answer(400, Some("invalid_grant"))));
        assert!(refuses_credentials(&answer(401, None)));
        for (status, code) in [
            (400, Some("invalid_request")),
            (400, Some("unauthorized_client")),
            (400, Some("unsupported_grant_type")),
            (400, Some("invalid_scope")),
            (500, None),
            (429, None),
        ] {
            assert!(
                !refuses_credentials(&answer(status, code)),
                "{status} {code:?}"
            );
        }
    }
}
