//! The future a [`CxoneRetry`](super::CxoneRetry) call returns.
//!
//! ```
//! # use std::convert::Infallible;
//! # use http::{Request, Response};
//! use cxone_auth::{CxoneRetryLayer, retry::future::ResponseFuture};
//! use tower::{Layer, Service};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let api = tower::service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(())) });
//! let future: ResponseFuture<_, _> = CxoneRetryLayer::default().layer(api).call(Request::new(()));
//! assert!(future.await.is_ok());
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep_until};
use tower_service::Service;

use super::cooldown::HostKey;
use super::policy::{Attempts, Policy};
use crate::http::{HttpRequest, HttpResponse, ReplayBody};

pin_project! {
    /// The response future of [`CxoneRetry`](super::CxoneRetry): waits out a
    /// host's cool-down, sends, and replays while the layer's policy says so.
    /// A state machine; nothing is boxed.
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        policy: Arc<Policy>,
        attempts: Attempts,
        next: Next<S, Req>,
        #[pin]
        state: State<S::Future>,
    }
}

/// What a request keeps for after its answer.
enum Next<S, Req> {
    /// The request to send next (a copy kept for a replay, or the request
    /// itself while it waits for a cool-down), and a handle of the inner
    /// service to send it through.
    Send(S, Req),
    /// No copy, for the reason given: the answer is final, but a 429 to it
    /// still cools this host down.
    Final(HostKey, &'static str),
    /// Nothing, while a request is handed to the inner service.
    Taken,
}

impl<S, Req> Next<S, Req> {
    fn kept(kept: Result<Req, (HostKey, &'static str)>, service: impl FnOnce() -> S) -> Self {
        match kept {
            Ok(copy) => Self::Send(service(), copy),
            Err((host, why)) => Self::Final(host, why),
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // Sent; the answer decides what comes next.
        Called { #[pin] future: F },
        // Waiting for a `Retry-After`, a backoff or a host's cool-down,
        // without holding a slot of the inner service.
        Waiting { #[pin] sleep: Sleep },
        // Waiting for the inner service's readiness, then sending `next`.
        Sending,
    }
}

impl<S, Req> ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    pub(super) fn called(
        policy: Arc<Policy>,
        future: S::Future,
        kept: Result<Req, (HostKey, &'static str)>,
        service: impl FnOnce() -> S,
    ) -> Self {
        Self {
            policy,
            attempts: Attempts::default(),
            next: Next::kept(kept, service),
            state: State::Called { future },
        }
    }

    pub(super) fn cooling_down(
        policy: Arc<Policy>,
        service: S,
        request: Req,
        until: Instant,
    ) -> Self {
        let mut attempts = Attempts::default();
        attempts.cool_down(until);
        Self {
            policy,
            attempts,
            next: Next::Send(service, request),
            state: State::Waiting {
                sleep: sleep_until(until),
            },
        }
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req>,
    Req: HttpRequest,
    Req::Body: ReplayBody,
    S::Response: HttpResponse,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future } => {
                    // Errors are not retried: the auth layer's are final, and
                    // a transport error may have reached the server after all.
                    let result = ready!(future.poll(cx));
                    let Ok(response) = &result else {
                        return Poll::Ready(result);
                    };
                    let replay_at = match &*this.next {
                        Next::Send(_, copy) => this.policy.retry(this.attempts, copy, response),
                        Next::Final(host, why) => {
                            this.policy.final_answer(this.attempts, host, why, response);
                            None
                        }
                        Next::Taken => None,
                    };
                    match replay_at {
                        None => {
                            return Poll::Ready(result.map(|mut response| {
                                this.attempts.report(&mut response);
                                response
                            }));
                        }
                        Some(at) if at <= Instant::now() => this.state.set(State::Sending),
                        Some(at) => this.state.set(State::Waiting {
                            sleep: sleep_until(at),
                        }),
                    }
                }
                StateProj::Waiting { sleep } => {
                    ready!(sleep.poll(cx));
                    this.state.set(State::Sending);
                }
                StateProj::Sending => {
                    if let Next::Send(service, request) = &mut *this.next {
                        // Another request's 429 may have made its host cool down.
                        if let Some(until) = this.policy.cooldowns.until(request) {
                            this.attempts.cool_down(until);
                            this.state.set(State::Waiting {
                                sleep: sleep_until(until),
                            });
                            continue;
                        }
                        ready!(service.poll_ready(cx))?;
                    }
                    let Next::Send(mut service, request) = mem::replace(this.next, Next::Taken)
                    else {
                        unreachable!("only a request kept for sending is sent");
                    };
                    // Copy it again first, for the replay after this one.
                    let kept = this.policy.keep(this.attempts, &request);
                    let future = service.call(request);
                    *this.next = Next::kept(kept, || service);
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
        f.debug_struct("ResponseFuture")
            .field("attempts", &self.attempts)
            .field("replayable", &matches!(self.next, Next::Send(..)))
            .finish()
    }
}
