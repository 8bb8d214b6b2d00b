//! Encryption at rest: ChaCha20-Poly1305 with a key the user supplies.
//!
//! Each value gets a fresh random 96-bit nonce. The associated data is the
//! Redis key and the value's header, so a ciphertext moved to another key, or
//! given another fingerprint, fails to open like a tampered one.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use secrecy::{ExposeSecret, SecretBox};

use crate::Error;

/// The body marker of an encrypted value.
const ENCRYPTED_MARKER: &str = "enc.";

/// The size of an [`EncryptionKey`], in bytes (256 bits).
const ENCRYPTION_KEY_BYTES: usize = 32;

/// The nonce size of ChaCha20-Poly1305, in bytes.
const NONCE_BYTES: usize = 12;

/// A 256-bit key that encrypts tokens before they reach Redis, so that
/// whoever can read the Redis cannot use them.
///
/// Every process of a fleet must be given the same key; a value written with
/// another key is ignored, as if the store were empty. `Debug` never shows it.
///
/// ```
/// use cxone_auth::cache::EncryptionKey;
///
/// // 32 bytes, base64, e.g. from `openssl rand -base64 32` kept in a secrets manager.
/// let key = EncryptionKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")?;
/// assert_eq!(format!("{key:?}"), "EncryptionKey([redacted])");
/// assert!(EncryptionKey::from_base64("c2hvcnQ=").is_err());
/// # Ok::<(), cxone_auth::Error>(())
/// ```
pub struct EncryptionKey(SecretBox<[u8; ENCRYPTION_KEY_BYTES]>);

impl EncryptionKey {
    /// A key from its 32 bytes.
    pub fn new(bytes: [u8; ENCRYPTION_KEY_BYTES]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// A key from a slice that must be 32 bytes long.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when it is not 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let bytes: [u8; ENCRYPTION_KEY_BYTES] = bytes.try_into().map_err(|_| {
            Error::config(format!(
                "the Redis encryption key must be {ENCRYPTION_KEY_BYTES} bytes, not {}",
                bytes.len()
            ))
        })?;
        Ok(Self::new(bytes))
    }

    /// A key from the standard base64 of its 32 bytes (padding optional).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the text is not
    /// base64 or does not decode to 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, Error> {
        let text = text.trim().trim_end_matches('=');
        let bytes = STANDARD_NO_PAD
            .decode(text)
            .map_err(|_| Error::config("the Redis encryption key is not valid base64"))?;
        Self::from_slice(&bytes)
    }
}

impl Clone for EncryptionKey {
    fn clone(&self) -> Self {
        Self::new(*self.0.expose_secret())
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([redacted])")
    }
}

/// Seals and opens value bodies.
pub(super) struct Cipher(ChaCha20Poly1305);

impl Cipher {
    pub(super) fn new(key: &EncryptionKey) -> Self {
        let key = Key::from(*key.0.expose_secret());
        Self(ChaCha20Poly1305::new(&key))
    }

    /// `enc.` and the base64url of a fresh nonce and the ciphertext, or
    /// `None` when the system has no randomness to give (never store then).
    pub(super) fn seal(&self, aad: &[u8], msg: &[u8]) -> Option<String> {
        let nonce = Nonce::try_generate().ok()?;
        let sealed = self.0.encrypt(&nonce, Payload { msg, aad }).ok()?;
        let raw = [nonce.as_slice(), &sealed].concat();
        Some(format!("{ENCRYPTED_MARKER}{}", URL_SAFE_NO_PAD.encode(raw)))
    }

    /// The plaintext of a sealed body, or `None` when it is not one, was
    /// sealed with another key or for another key name, or was altered.
    pub(super) fn open(&self, aad: &[u8], body: &str) -> Option<Vec<u8>> {
        let raw = URL_SAFE_NO_PAD
            .decode(body.strip_prefix(ENCRYPTED_MARKER)?)
            .ok()?;
        let (nonce, sealed) = raw.split_at_checked(NONCE_BYTES)?;
        let nonce = Nonce::try_from(nonce).ok()?;
        self.0.decrypt(&nonce, Payload { msg: sealed, aad }).ok()
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    fn cipher(byte: u8) -> Cipher {
        Cipher::new(&EncryptionKey::new([byte; ENCRYPTION_KEY_BYTES]))
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let c = cipher(7);
        let a = c.seal(b"key-a", b"hello").unwrap();
        let b = c.seal(b"key-a", b"hello").unwrap();
        assert_ne!(a, b, "each value has its own nonce");
        assert!(!a.contains("hello"));
        assert_eq!(c.open(b"key-a", &a).unwrap(), b"hello");
    }

    #[test]
    fn other_key_other_name_or_tampering_fail() {
        let c = cipher(7);
        let sealed = c.seal(b"key-a", b"hello").unwrap();
        assert!(cipher(8).open(b"key-a", &sealed).is_none(), "another key");
        assert!(c.open(b"key-b", &sealed).is_none(), "moved to another key");
        let mut raw = URL_SAFE_NO_PAD
            .decode(sealed.strip_prefix(ENCRYPTED_MARKER).unwrap())
            .unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = format!("{ENCRYPTED_MARKER}{}", URL_SAFE_NO_PAD.encode(raw));
        assert!(c.open(b"key-a", &tampered).is_none(), "tampered");
        for garbage in ["", "enc.", "enc.AAAA", "enc.!!!", "{\"token\":\"t\"}"] {
            assert!(c.open(b"key-a", garbage).is_none(), "{garbage}");
        }
    }

    #[test]
    fn keys_must_be_32_bytes() {
        assert!(EncryptionKey::from_slice(&[0; 31]).is_err());
        assert!(EncryptionKey::from_slice(&[0; 32]).is_ok());
        let padded = STANDARD.encode([1u8; 32]);
        assert!(EncryptionKey::from_base64(&padded).is_ok());
        assert!(EncryptionKey::from_base64("not base64 !").is_err());
    }
}
