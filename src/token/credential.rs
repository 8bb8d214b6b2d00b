//! Checking ids and secrets before they are ever sent.
//!
//! A credential copied with a trailing newline, or a variable left empty,
//! fails at the token endpoint with a vague `invalid_client`. The sources
//! check them when they are built instead, and say which field is wrong
//! (never its value):
//!
//! ```
//! use cxone_auth::ErrorKind;
//! use cxone_auth::token::ClientCredentials;
//!
//! let err = ClientCredentials::new("my-app", "secret\n").unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Config);
//! assert!(err.to_string().contains("client secret has leading/trailing whitespace"));
//! ```
//!
//! Padded values are an error, not trimmed: whitespace is legal in a secret
//! in principle, and guessing which the user meant would hide the mistake.

use secrecy::SecretString;

use crate::Error;

/// `value`, if it is neither empty, nor only whitespace, nor padded with
/// whitespace. `field` names it in the error ("client id").
pub(crate) fn checked(field: &str, value: String) -> Result<String, Error> {
    if value.trim().is_empty() {
        return Err(Error::config(format!("the {field} is empty")));
    }
    if value.trim() != value {
        return Err(Error::config(format!(
            "the {field} has leading/trailing whitespace; remove it"
        )));
    }
    Ok(value)
}

/// [`checked`], kept as a secret.
pub(crate) fn checked_secret(field: &str, value: String) -> Result<SecretString, Error> {
    checked(field, value).map(SecretString::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn empty_blank_and_padded_values_are_refused_by_name() {
        for (value, says) in [
            ("", "the client secret is empty"),
            ("  \t", "the client secret is empty"),
            (
                "hunter2\n",
                "the client secret has leading/trailing whitespace",
            ),
            (
                " hunter2",
                "the client secret has leading/trailing whitespace",
            ),
        ] {
            let err = checked_secret("client secret", value.to_owned()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            let text = format!("{err} {err:?}");
            assert!(text.contains(says), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
        assert_eq!(checked("id", "a b".into()).unwrap(), "a b");
    }
}
