//! [`NextService`]: the rest of a `reqwest-middleware` chain as a tower
//! `Service`, so the auth and retry layers run on it unchanged.

use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::Extensions;
use reqwest_middleware::Next;
use tower_service::Service;

/// The middlewares after this one, and the client at the end.
///
/// The retry layer sends a request and its replays one after another, each
/// through a clone of this service; every attempt takes the extensions the
/// previous one left, as if it had the `&mut Extensions` itself.
#[derive(Clone)]
pub(crate) struct NextService<'a> {
    next: Next<'a>,
    extensions: Arc<Mutex<Extensions>>,
}

impl<'a> NextService<'a> {
    pub(crate) fn new(next: Next<'a>, extensions: Extensions) -> Self {
        Self {
            next,
            extensions: Arc::new(Mutex::new(extensions)),
        }
    }

    /// The extensions as the last attempt left them.
    pub(crate) fn take_extensions(&self) -> Extensions {
        std::mem::take(&mut *lock(&self.extensions))
    }
}

fn lock(extensions: &Mutex<Extensions>) -> std::sync::MutexGuard<'_, Extensions> {
    // Extensions are a plain map, handed over whole; a panic elsewhere cannot
    // leave one half-written.
    extensions.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<'a> Service<reqwest::Request> for NextService<'a> {
    type Response = reqwest::Response;
    type Error = reqwest_middleware::Error;
    type Future = BoxFuture<'a, reqwest_middleware::Result<reqwest::Response>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: reqwest::Request) -> Self::Future {
        let next = self.next.clone();
        let slot = Arc::clone(&self.extensions);
        Box::pin(async move {
            let mut extensions = std::mem::take(&mut *lock(&slot));
            let result = next.run(request, &mut extensions).await;
            *lock(&slot) = extensions;
            result
        })
    }
}
