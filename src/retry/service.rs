//! [`CxoneRetry`]: the service [`CxoneRetryLayer`](super::CxoneRetryLayer)
//! wraps around an inner service.
//!
//! ```
//! use std::convert::Infallible;
//! use cxone_auth::retry::{CxoneRetry, CxoneRetryLayer};
//! use http::{Request, Response};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let inner = tower::service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(())) });
//! let client: CxoneRetry<_> = CxoneRetryLayer::default().layer(inner);
//! let response = client.oneshot(Request::new(())).await.unwrap();
//! # let _ = response;
//! # }
//! ```

use std::fmt;
use std::task::{Context, Poll};

use tower::retry::Policy;
use tower_service::Service;

use super::future::ResponseFuture;
use super::policy::CxoneRetryPolicy;
use super::replay::{RetryRequest, RetryResponse};

/// Retries 401, 429 and 503 answers of the inner service, as
/// [`CxoneRetryPolicy`] decides, and holds requests to a host that is cooling
/// down after a 429 until the cool-down ends.
///
/// Built by [`CxoneRetryLayer`](super::CxoneRetryLayer); clones share the
/// budget and the cool-downs with every service built from that layer.
///
/// The inner service must be `Clone`: each request keeps a handle to send its
/// replays through. Wrap a service that is not in `tower::buffer::Buffer`.
#[derive(Clone)]
pub struct CxoneRetry<S> {
    inner: S,
    policy: CxoneRetryPolicy,
}

impl<S> CxoneRetry<S> {
    pub(crate) fn new(inner: S, policy: CxoneRetryPolicy) -> Self {
        Self { inner, policy }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for CxoneRetry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CxoneRetry")
            .field("policy", &self.policy)
            .field("inner", &self.inner)
            .finish()
    }
}

impl<S, Req> Service<Req> for CxoneRetry<S>
where
    S: Service<Req> + Clone,
    Req: RetryRequest,
    S::Response: RetryResponse,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        // Each request counts its attempts on its own copy of the policy.
        let mut policy = self.policy.clone();
        if let Some(until) = self.policy.shared.cooldown_for(&req) {
            // The ready service stays here for the next call; the request
            // waits with an unready clone and readies it after the wait, so
            // no slot of a bounded inner service is held while waiting.
            return ResponseFuture::cooling_down(until, policy, self.inner.clone(), req);
        }
        let copy = Policy::<Req, S::Response, S::Error>::clone_request(&mut policy, &req);
        let unreplayable = copy.is_none().then(|| req.host_key());
        let future = self.inner.call(req);
        let next = copy.map(|copy| (self.inner.clone(), copy));
        ResponseFuture::called(future, policy, next, unreplayable)
    }
}
