//! How a token is laid out in Redis: the key names and the versioned value.
//!
//! A value is `cxa1.<fingerprint>.<body>`:
//! - `cxa1` names the format (version 1);
//! - the fingerprint (32 hex digits of a SHA-256 of the token) lets a Lua
//!   script delete the entry only while it still holds one token, without the
//!   script decrypting anything;
//! - the body is the [`Entry`] as JSON, or, with encryption, `enc.` and the
//!   base64url of nonce and ciphertext.
//!
//! Keys are the prefix, `token:` or `lock:`, and the hex SHA-256 of the
//! source's shared key, so no credential name appears in Redis.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::token::MAX_LIFETIME;

/// The first part of every value this version writes.
pub(super) const FORMAT_TAG: &str = "cxa1";

/// The longest value read back, in bytes. A token is at most
/// [`MAX_TOKEN_BYTES`](crate::token::MAX_TOKEN_BYTES); anything much larger
/// was not written by this crate and is not parsed.
pub(super) const MAX_VALUE_BYTES: usize = 64 * 1024;

/// The Redis names of one credential's token, fetch lock and invalidation
/// marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Keys {
    pub(super) token: String,
    pub(super) lock: String,
    invalid: String,
}

impl Keys {
    pub(super) fn new(prefix: &str, shared_key: &str) -> Self {
        let digest = hex(&Sha256::digest(shared_key.as_bytes()));
        Self {
            token: format!("{prefix}token:{digest}"),
            lock: format!("{prefix}lock:{digest}"),
            invalid: format!("{prefix}invalid:{digest}:"),
        }
    }

    /// The mark that the token with `fingerprint` was invalidated.
    pub(super) fn invalid(&self, fingerprint: &str) -> String {
        format!("{}{fingerprint}", self.invalid)
    }
}

/// What is stored about a token; wall-clock times, since the value crosses
/// machines.
#[derive(Serialize, Deserialize)]
pub(super) struct Entry {
    pub(super) token: String,
    /// When the token expires, in milliseconds since the Unix epoch.
    pub(super) expires_at_ms: u64,
    /// When the token was requested, in milliseconds since the Unix epoch.
    pub(super) issued_at_ms: u64,
    #[serde(default)]
    pub(super) scopes: Vec<String>,
}

impl Entry {
    /// An entry for a token of `lifetime` that has `expires_in` left at `now_ms`.
    pub(super) fn new(
        token: &str,
        lifetime: Duration,
        expires_in: Duration,
        scopes: &[String],
        now_ms: u64,
    ) -> Self {
        let expires_at_ms = now_ms.saturating_add(millis(expires_in));
        Self {
            token: token.to_owned(),
            expires_at_ms,
            issued_at_ms: expires_at_ms.saturating_sub(millis(lifetime)),
            scopes: scopes.to_vec(),
        }
    }

    /// The token's lifetime and what is left of it at `now_ms`, or `None`
    /// when it has expired or its times make no sense (a lifetime beyond
    /// [`MAX_LIFETIME`] was not written by this crate).
    pub(super) fn remaining(&self, now_ms: u64) -> Option<(Duration, Duration)> {
        let lifetime = self.expires_at_ms.checked_sub(self.issued_at_ms)?;
        let left = self
            .expires_at_ms
            .checked_sub(now_ms)
            .filter(|&ms| ms > 0)?;
        let lifetime = Duration::from_millis(lifetime);
        if lifetime > MAX_LIFETIME {
            return None;
        }
        Some((lifetime, Duration::from_millis(left).min(lifetime)))
    }
}

/// 32 hex digits naming a token without revealing it.
pub(super) fn fingerprint(token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"cxone-auth token fingerprint\0");
    hasher.update(token.as_bytes());
    hex(&hasher.finalize()[..16])
}

/// The part of a value before its body: format tag and fingerprint.
pub(super) fn header(fingerprint: &str) -> String {
    format!("{FORMAT_TAG}.{fingerprint}.")
}

/// Splits a value into its fingerprint and body, if it has this format.
pub(super) fn split(value: &str) -> Option<(&str, &str)> {
    let rest = value.strip_prefix(FORMAT_TAG)?.strip_prefix('.')?;
    let (fingerprint, body) = rest.split_once('.')?;
    let well_formed = fingerprint.len() == 32
        && fingerprint
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    well_formed.then_some((fingerprint, body))
}

/// Milliseconds since the Unix epoch on this machine's clock.
pub(super) fn unix_millis(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_the_shared_key() {
        let keys = Keys::new("app:", "https://idp/token client-id scope-a");
        assert!(keys.token.starts_with("app:token:"));
        assert!(keys.lock.starts_with("app:lock:"));
        assert!(!keys.token.contains("client-id"));
        assert_eq!(keys.token.len(), "app:token:".len() + 64);
        assert_eq!(keys.token[10..], keys.lock[9..]);
        assert_ne!(keys, Keys::new("app:", "another credential"));
    }

    #[test]
    fn entry_keeps_wall_clock_times() {
        let now = 1_700_000_000_000;
        let entry = Entry::new(
            "t",
            Duration::from_secs(3600),
            Duration::from_secs(3000),
            &[],
            now,
        );
        assert_eq!(entry.expires_at_ms, now + 3_000_000);
        assert_eq!(entry.issued_at_ms, now - 600_000);
        let (lifetime, left) = entry.remaining(now + 1_000_000).unwrap();
        assert_eq!(lifetime, Duration::from_secs(3600));
        assert_eq!(left, Duration::from_secs(2000));
        assert!(entry.remaining(now + 3_000_000).is_none(), "expired");
    }

    #[test]
    fn nonsense_times_are_refused() {
        let now = 1_700_000_000_000;
        let backwards = Entry {
            token: "t".into(),
            expires_at_ms: now + 10,
            issued_at_ms: now + 20,
            scopes: vec![],
        };
        assert!(backwards.remaining(now).is_none());
        let too_long = Entry {
            token: "t".into(),
            expires_at_ms: now + 1000 + millis(MAX_LIFETIME),
            issued_at_ms: now,
            scopes: vec![],
        };
        assert!(too_long.remaining(now).is_none());
    }

    #[test]
    fn values_split_only_in_this_format() {
        let fp = fingerprint("token");
        assert_eq!(fp.len(), 32);
        assert_ne!(fp, fingerprint("token2"));
        let value = format!("{}{{\"a\":1}}", header(&fp));
        assert_eq!(split(&value), Some((fp.as_str(), "{\"a\":1}")));
        for bad in [
            "",
            "garbage",
            "cxa1.",
            "cxa1.short.body",
            "cxa2.0123456789abcdef0123456789abcdef.{}",
            "cxa1.0123456789ABCDEF0123456789abcdef.{}",
        ] {
            assert!(split(bad).is_none(), "{bad}");
        }
    }
}
