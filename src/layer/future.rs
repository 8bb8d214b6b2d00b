//! [`ResponseFuture`]: the state machine behind each call of
//! [`CxoneAuth`](super::CxoneAuth).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::future::BoxFuture;
use http::HeaderValue;
use http::header::AUTHORIZATION;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::Error;
use crate::cache::TokenCache;
use crate::error::BoxError;
use crate::http::{HttpRequest, HttpResponse, PartnerRefusal, rejects_token};
use crate::metrics;

/// A token being loaded, the cache it comes from, and whether the request
/// goes to the token's audience.
type Load = (
    BoxFuture<'static, Result<(HeaderValue, u64), Error>>,
    TokenCache,
    bool,
);

/// The id of the token a request carried, the cache to tell if it is
/// rejected, and whether the request went to the token's audience (a 401
/// from elsewhere says nothing about the token).
type Sent = (u64, TokenCache, bool);

pin_project! {
    /// The response future of [`CxoneAuth`](super::CxoneAuth).
    ///
    /// With a cached token it is the inner service's future plus the token it
    /// carried, no allocation. Without one it first waits for the token, then
    /// for the inner service's readiness, then calls it.
    ///
    /// # Panics
    ///
    /// Polling it after it completed panics, as futures may.
    pub struct ResponseFuture<F, S, R> {
        #[pin]
        state: State<F, S, R>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, S, R> {
        /// Waiting for the inner service's response.
        Called {
            #[pin]
            future: F,
            sent: Option<Sent>,
        },
        /// Waiting for a token, then for the inner service's readiness.
        /// Boxed: it holds the request, which would make every response
        /// future as large, and it is off the cached-token path.
        Waiting {
            waiting: Box<Waiting<S, R>>,
        },
        /// Refused before anything was sent.
        Refused {
            error: Option<Error>,
        },
    }
}

/// A call that has not reached the inner service yet.
struct Waiting<S, R> {
    /// The token being loaded, if the request still needs one.
    load: Option<Load>,
    inner: S,
    request: Option<R>,
    sent: Option<Sent>,
}

const POLLED_AFTER_COMPLETION: &str = "ResponseFuture polled after completion";

impl<F, S, R> ResponseFuture<F, S, R> {
    /// Calls `inner` at once if `poll_ready` drove it to readiness, else
    /// waits for a clone's readiness first.
    pub(crate) fn forward(inner: &mut S, ready: bool, request: R, sent: Option<Sent>) -> Self
    where
        S: Service<R, Future = F> + Clone,
    {
        let state = if ready {
            State::Called {
                future: inner.call(request),
                sent,
            }
        } else {
            State::waiting(None, inner.clone(), request, sent)
        };
        Self { state }
    }

    /// A call that waits for a token from `tokens` first.
    pub(crate) fn loading(inner: S, request: R, tokens: TokenCache, audience: bool) -> Self {
        let load = tokens.clone();
        let load: BoxFuture<'static, _> = Box::pin(async move { load.header_with_id().await });
        Self {
            state: State::waiting(Some((load, tokens, audience)), inner, request, None),
        }
    }

    pub(crate) fn refused(error: Error) -> Self {
        Self {
            state: State::Refused { error: Some(error) },
        }
    }
}

impl<F, S, R> State<F, S, R> {
    fn waiting(load: Option<Load>, inner: S, request: R, sent: Option<Sent>) -> Self {
        State::Waiting {
            waiting: Box::new(Waiting {
                load,
                inner,
                request: Some(request),
                sent,
            }),
        }
    }
}

impl<F, S, R, T, E> Future for ResponseFuture<F, S, R>
where
    F: Future<Output = Result<T, E>>,
    S: Service<R, Response = T, Future = F, Error = E>,
    T: HttpResponse,
    E: Into<BoxError>,
    R: HttpRequest,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Called { future, sent } => {
                    let mut response = ready!(future.poll(cx)).map_err(Into::into)?;
                    let Some((id, tokens, audience)) = sent.take() else {
                        return Poll::Ready(Ok(response));
                    };
                    metrics::mark_response(&mut response, tokens.name());
                    if rejects_token(&response) {
                        if audience {
                            tracing::debug!(status = %response.status(), "the server rejected the CXone token");
                            tokens.invalidate_id(id);
                        } else {
                            tracing::debug!(status = %response.status(), "a partner host refused the request: the token stays");
                            response.extensions_mut().insert(PartnerRefusal);
                        }
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Waiting { waiting } => {
                    ready!(waiting.poll_ready(cx))?;
                    let request = waiting.request.take().expect(POLLED_AFTER_COMPLETION);
                    let future = waiting.inner.call(request);
                    let sent = waiting.sent.take();
                    state.set(State::Called { future, sent });
                }
                StateProj::Refused { error } => {
                    let error = error.take().expect(POLLED_AFTER_COMPLETION);
                    return Poll::Ready(Err(error.into()));
                }
            }
        }
    }
}

impl<S, R> Waiting<S, R>
where
    S: Service<R>,
    S::Error: Into<BoxError>,
    R: HttpRequest,
{
    /// Waits for the token (if it is loading), then for the inner service's
    /// readiness.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if let Some((load, tokens, audience)) = &mut self.load {
            let (header, id) = ready!(load.as_mut().poll(cx))?;
            let request = self.request.as_mut().expect(POLLED_AFTER_COMPLETION);
            request.headers_mut().insert(AUTHORIZATION, header);
            self.sent = Some((id, tokens.clone(), *audience));
            self.load = None;
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }
}

impl<F, S, R> fmt::Debug for ResponseFuture<F, S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "Called",
            State::Waiting { waiting } if waiting.load.is_some() => "Loading",
            State::Waiting { .. } => "Readying",
            State::Refused { .. } => "Refused",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
