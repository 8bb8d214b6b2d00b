//! Futures of the retry layer.
//!
//! [`ResponseFuture`] is what [`CxoneRetry`](super::CxoneRetry) returns: it
//! waits out a host's cool-down, then drives tower's retry loop. [`Delay`] is
//! the wait between attempts that [`CxoneRetryPolicy`]
//! hands to that loop. Neither boxes: both are state machines.
//!
//! ```
//! use std::convert::Infallible;
//! use cxone_auth::retry::{CxoneRetryLayer, future::ResponseFuture};
//! use http::{Request, Response};
//! use tower::{Layer, Service};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut client = CxoneRetryLayer::default().layer(tower::service_fn(|_: Request<()>| async {
//!     Ok::<_, Infallible>(Response::new(()))
//! }));
//! let future = client.call(Request::new(()));
//! let _: &ResponseFuture<_, _> = &future;
//! assert!(future.await.is_ok());
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep_until};
use tower::retry::Retry;
use tower_service::Service;

use super::policy::{CxoneRetryPolicy, Shared};
use super::replay::{RetryRequest, RetryResponse};

pin_project! {
    /// The wait before a replay: the server's `Retry-After`, a backoff, or a
    /// host's cool-down. Completes at once when there is nothing to wait for.
    pub struct Delay {
        #[pin]
        state: DelayState,
    }
}

pin_project! {
    #[project = DelayProj]
    enum DelayState {
        Elapsed,
        Sleeping {
            #[pin]
            sleep: Sleep,
        },
    }
}

impl Delay {
    pub(crate) fn until(deadline: Instant, now: Instant) -> Self {
        let state = if deadline <= now {
            DelayState::Elapsed
        } else {
            DelayState::Sleeping {
                sleep: sleep_until(deadline),
            }
        };
        Self { state }
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.project().state.project() {
            DelayProj::Elapsed => Poll::Ready(()),
            DelayProj::Sleeping { sleep } => sleep.poll(cx),
        }
    }
}

impl fmt::Debug for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Delay");
        if let DelayState::Sleeping { sleep } = &self.state {
            d.field("deadline", &sleep.deadline());
        }
        d.finish()
    }
}

type RetryFuture<S, Req> = tower::retry::future::ResponseFuture<CxoneRetryPolicy, S, Req>;

pin_project! {
    /// The response future of [`CxoneRetry`](super::CxoneRetry).
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
        Req: RetryRequest,
        S::Response: RetryResponse,
    {
        #[pin]
        state: State<Retry<CxoneRetryPolicy, S>, RetryFuture<S, Req>, Req>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<Svc, F, Req> {
        // The request's host is cooling down after a 429: wait, without
        // holding a slot of the inner service, then get a ready service.
        CoolingDown {
            #[pin]
            sleep: Sleep,
            service: Svc,
            request: Option<Req>,
            shared: Arc<Shared>,
        },
        // Sent; tower's retry loop runs.
        Called {
            #[pin]
            future: F,
        },
    }
}

impl<S, Req> ResponseFuture<S, Req>
where
    S: Service<Req>,
    Req: RetryRequest,
    S::Response: RetryResponse,
{
    pub(crate) fn called(future: RetryFuture<S, Req>) -> Self {
        Self {
            state: State::Called { future },
        }
    }

    pub(crate) fn cooling_down(
        until: Instant,
        request: Req,
        service: Retry<CxoneRetryPolicy, S>,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            state: State::CoolingDown {
                sleep: sleep_until(until),
                service,
                request: Some(request),
                shared,
            },
        }
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req> + Clone,
    Req: RetryRequest,
    S::Response: RetryResponse,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::CoolingDown {
                    mut sleep,
                    service,
                    request,
                    shared,
                } => {
                    ready!(sleep.as_mut().poll(cx));
                    // Another 429 may have made the cool-down longer.
                    let longer = request.as_ref().and_then(|req| shared.cooldown_for(req));
                    if let Some(until) = longer {
                        sleep.reset(until);
                        continue;
                    }
                    ready!(service.poll_ready(cx))?;
                    let Some(req) = request.take() else {
                        unreachable!("the request leaves this state only here, with the state");
                    };
                    let future = service.call(req);
                    this.state.set(State::Called { future });
                }
                StateProj::Called { future } => return future.poll(cx),
            }
        }
    }
}

impl<S, Req> fmt::Debug for ResponseFuture<S, Req>
where
    S: Service<Req>,
    Req: RetryRequest,
    S::Response: RetryResponse,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::CoolingDown { sleep, .. } => format!("CoolingDown until {:?}", sleep.deadline()),
            State::Called { .. } => "Called".to_owned(),
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
