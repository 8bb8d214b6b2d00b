//! Request extensions the crate's layers use to talk to each other.
//!
//! ```
//! // Markers are internal: a request a user builds never carries one, and
//! // nothing a user does needs to know about them.
//! let request = http::Request::new(());
//! assert!(request.extensions().is_empty());
//! ```

/// Inserted into a request's extensions by the auth layer when it set the
/// `Authorization` header itself, so that code outside the auth layer can tell
/// the layer's header from one the user set.
///
/// The retry layer reads it before replaying a request that got a 401: a
/// layer-inserted header carries the token that was just refused, so it is
/// removed and the auth layer attaches a fresh one; a header the user set is
/// the user's and is never touched (the request is not replayed, since the
/// same credentials would be refused again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    dead_code,
    reason = "constructed by the auth layer; the retry layer only reads it"
)]
pub(crate) struct InsertedAuthorization;
