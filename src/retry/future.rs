//! Futures of the retry layer.
//!
//! [`ResponseFuture`] is what [`CxoneRetry`](super::CxoneRetry) returns: it
//! waits out a host's cool-down, sends, and replays while the policy says so.
//! [`Delay`] is the wait between attempts that [`CxoneRetryPolicy`] returns as
//! a [`tower::retry::Policy`]. Neither boxes: both are state machines.
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
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep_until};
use tower::retry::Policy;
use tower_service::Service;

use super::cooldown::HostKey;
use super::policy::CxoneRetryPolicy;
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

pin_project! {
    /// The response future of [`CxoneRetry`](super::CxoneRetry): waits out a
    /// host's cool-down, sends, and replays as [`CxoneRetryPolicy`] decides.
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        // This request's copy of the policy: its own attempt counters.
        policy: CxoneRetryPolicy,
        // What to send next with what: the copy kept for a replay (or, during
        // a cool-down, the request itself). `None` when it could not be
        // copied: the answer is final.
        next: Option<(S, Req)>,
        // The host of a request that could not be copied, so that a 429 to it
        // still cools the host down.
        unreplayable: Option<HostKey>,
        #[pin]
        state: State<S::Future>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // Sent; the answer decides what comes next.
        Called {
            #[pin]
            future: F,
        },
        // Waiting for a host's cool-down, a `Retry-After` or a backoff,
        // without holding a slot of the inner service.
        Waiting {
            #[pin]
            delay: Delay,
        },
        // Getting the inner service ready, then sending `next`.
        Sending,
    }
}

impl<S, Req> ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    pub(crate) fn called(
        future: S::Future,
        policy: CxoneRetryPolicy,
        next: Option<(S, Req)>,
        unreplayable: Option<HostKey>,
    ) -> Self {
        Self {
            policy,
            next,
            unreplayable,
            state: State::Called { future },
        }
    }

    pub(crate) fn cooling_down(
        until: Instant,
        policy: CxoneRetryPolicy,
        service: S,
        request: Req,
    ) -> Self {
        Self {
            policy,
            next: Some((service, request)),
            unreplayable: None,
            state: State::Waiting {
                delay: Delay::until(until, Instant::now()),
            },
        }
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req>,
    Req: RetryRequest,
    S::Response: RetryResponse,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future } => {
                    let mut result = ready!(future.poll(cx));
                    let Some((_, copy)) = this.next.as_mut() else {
                        if let Some(host) = this.unreplayable.take() {
                            this.policy.observe_unreplayable(host, &result);
                        }
                        return Poll::Ready(result);
                    };
                    match this.policy.retry(copy, &mut result) {
                        Some(delay) => this.state.set(State::Waiting { delay }),
                        None => return Poll::Ready(result),
                    }
                }
                StateProj::Waiting { delay } => {
                    ready!(delay.poll(cx));
                    // Another request's 429 may have made the cool-down longer.
                    let longer = this
                        .next
                        .as_ref()
                        .and_then(|(_, request)| this.policy.shared.cooldown_for(request));
                    match longer {
                        Some(until) => this.state.set(State::Waiting {
                            delay: Delay::until(until, Instant::now()),
                        }),
                        None => this.state.set(State::Sending),
                    }
                }
                StateProj::Sending => {
                    if let Some((service, _)) = this.next.as_mut() {
                        ready!(service.poll_ready(cx))?;
                    }
                    let Some((mut service, request)) = this.next.take() else {
                        unreachable!("only a request kept for sending gets here");
                    };
                    // Copy it again first, for the replay after this one.
                    let copy =
                        Policy::<Req, S::Response, S::Error>::clone_request(this.policy, &request);
                    *this.unreplayable = copy.is_none().then(|| request.host_key());
                    let future = service.call(request);
                    *this.next = copy.map(|copy| (service, copy));
                    this.state.set(State::Called { future });
                }
            }
        }
    }
}

impl<S, Req> fmt::Debug for ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "Called",
            State::Waiting { .. } => "Waiting",
            State::Sending => "Sending",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("replayable", &self.next.is_some())
            .field("policy", &self.policy)
            .finish()
    }
}
