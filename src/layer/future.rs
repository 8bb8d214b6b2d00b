//! [`ResponseFuture`]: the state machine behind each call of
//! [`CxoneAuth`](super::CxoneAuth).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_util::future::BoxFuture;
use http::HeaderValue;
use http::header::AUTHORIZATION;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::request::{AuthRequest, AuthResponse, rejects_token};
use super::routing::{Route, TenantRouter};
use crate::cache::TokenId;
use crate::error::BoxError;
use crate::{Error, TokenCache};

/// Invalidates the token `id` if `response` rejects it. Invalidation is by
/// identity, so a burst of 401s for one token causes one refresh.
///
/// The id alone finds its cache (see `TokenId::invalidate`): the response
/// future holds no handle to the cache, whose reference count would cost
/// every request two atomic operations for the rare rejected one.
#[inline]
fn check<T: AuthResponse>(id: TokenId, response: &T) {
    if rejects_token(response) {
        rejected(id, response.status());
    }
}

#[cold]
#[inline(never)]
fn rejected(id: TokenId, status: http::StatusCode) {
    tracing::debug!(%status, "the server rejected the CXone token");
    id.invalidate();
}

pin_project! {
    /// The response future of [`CxoneAuth`](super::CxoneAuth).
    ///
    /// With a cached token it is the inner service's future plus the id of
    /// the token it carried: no allocation, no reference count. Without one
    /// it first waits for the token, then for the inner service's readiness,
    /// then calls it.
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
            token: Option<TokenId>,
        },
        /// Waiting for a token, then for the inner service's readiness. Boxed:
        /// it is off the cached-token path, and it holds the request, which
        /// would make every response future as large.
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
    /// The token being loaded.
    load: Option<TokenLoad>,
    inner: S,
    request: Option<R>,
    token: Option<TokenId>,
}

type TokenLoad = BoxFuture<'static, Result<Loaded, Error>>;

/// What a request waits for before it can be sent: the token and, for a
/// routed request, its tenant's API host.
struct Loaded {
    header: HeaderValue,
    id: TokenId,
    route: Option<Arc<Route>>,
}

impl<F, S, R> ResponseFuture<F, S, R> {
    pub(crate) fn called(future: F, token: Option<TokenId>) -> Self {
        Self {
            state: State::Called { future, token },
        }
    }

    /// A call that waits for the inner service's readiness: its request
    /// already carries its token, if any.
    pub(crate) fn readying(inner: S, request: R, token: Option<TokenId>) -> Self {
        Self::waiting(None, inner, request, token)
    }

    /// A call that waits for a token from `tokens` first and, with a
    /// `router`, for the route to the token's tenant.
    pub(crate) fn loading(
        inner: S,
        request: R,
        tokens: TokenCache,
        router: Option<Arc<TenantRouter>>,
    ) -> Self {
        let load: TokenLoad = Box::pin(async move {
            let (header, id) = tokens.header_with_id().await?;
            let route = match router {
                Some(router) => Some(router.route(id, &tokens).await?),
                None => None,
            };
            Ok(Loaded { header, id, route })
        });
        Self::waiting(Some(load), inner, request, None)
    }

    fn waiting(load: Option<TokenLoad>, inner: S, request: R, token: Option<TokenId>) -> Self {
        Self {
            state: State::Waiting {
                waiting: Box::new(Waiting {
                    load,
                    inner,
                    request: Some(request),
                    token,
                }),
            },
        }
    }

    pub(crate) fn refused(error: Error) -> Self {
        Self {
            state: State::Refused { error: Some(error) },
        }
    }
}

const POLLED_AFTER_COMPLETION: &str = "ResponseFuture polled after completion";

impl<F, S, R, T, E> Future for ResponseFuture<F, S, R>
where
    F: Future<Output = Result<T, E>>,
    S: Service<R, Response = T, Future = F, Error = E>,
    T: AuthResponse,
    E: Into<BoxError>,
    R: AuthRequest,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            if let StateProj::Called { future, token } = state.as_mut().project() {
                let response = ready!(future.poll(cx)).map_err(Into::into)?;
                if let Some(id) = token.take() {
                    check(id, &response);
                }
                return Poll::Ready(Ok(response));
            }
            ready!(State::poll_until_called(state.as_mut(), cx))?;
        }
    }
}

impl<F, S, R> State<F, S, R>
where
    S: Service<R, Future = F>,
    S::Error: Into<BoxError>,
    R: AuthRequest,
{
    /// Drives a call that has not reached the inner service yet until it
    /// has, or fails. Out of line: the cached-token path never comes here,
    /// and keeping it apart keeps that path's poll small enough to inline.
    #[inline(never)]
    fn poll_until_called(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), BoxError>> {
        match self.as_mut().project() {
            StateProj::Called { .. } => {}
            StateProj::Waiting { waiting } => {
                ready!(waiting.poll_ready(cx))?;
                let request = waiting.request.take().expect(POLLED_AFTER_COMPLETION);
                let future = waiting.inner.call(request);
                let token = waiting.token;
                self.set(State::Called { future, token });
            }
            StateProj::Refused { error } => {
                let error = error.take().expect(POLLED_AFTER_COMPLETION);
                return Poll::Ready(Err(error.into()));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S, R> Waiting<S, R>
where
    S: Service<R>,
    S::Error: Into<BoxError>,
    R: AuthRequest,
{
    /// Waits for the token (if it is loading), then for the inner service's
    /// readiness.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if let Some(load) = &mut self.load {
            let Loaded { header, id, route } = ready!(load.as_mut().poll(cx))?;
            let request = self.request.as_mut().expect(POLLED_AFTER_COMPLETION);
            if let Some(route) = route {
                route.apply(request)?;
            }
            request.headers_mut().insert(AUTHORIZATION, header);
            self.token = Some(id);
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
