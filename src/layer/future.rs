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

/// Which token a request carries, and the cache to tell if the server
/// rejects it.
#[derive(Debug)]
pub(crate) struct Authorized {
    tokens: TokenCache,
    id: TokenId,
}

impl Authorized {
    pub(crate) fn new(tokens: TokenCache, id: TokenId) -> Self {
        Self { tokens, id }
    }

    /// Invalidates the token if `response` rejects it. Invalidation is by
    /// identity, so a burst of 401s for one token causes one refresh.
    fn check<T: AuthResponse>(self, response: &T) {
        if rejects_token(response) {
            tracing::debug!(status = %response.status(), "the server rejected the CXone token");
            self.tokens.invalidate_id(self.id);
        }
    }
}

pin_project! {
    /// The response future of [`CxoneAuth`](super::CxoneAuth).
    ///
    /// With a cached token it is the inner service's future plus the token it
    /// carried: no allocation. Without one it first waits for the token, then
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

/// What a request waits for before it can be sent: the token and, for a
/// routed request, its tenant's API host.
struct Loaded {
    header: HeaderValue,
    id: TokenId,
    route: Option<Arc<Route>>,
}

pin_project! {
    #[project = StateProj]
    enum State<F, S, R> {
        /// Waiting for a token from the cache (and the tenant's route).
        Loading {
            token: BoxFuture<'static, Result<Loaded, Error>>,
            tokens: TokenCache,
            inner: Option<S>,
            request: Option<R>,
        },
        /// Waiting for the inner service to be ready.
        Readying {
            inner: Option<S>,
            request: Option<R>,
            authorized: Option<Authorized>,
        },
        /// Waiting for the inner service's response.
        Called {
            #[pin]
            future: F,
            authorized: Option<Authorized>,
        },
        /// Refused before anything was sent.
        Refused {
            error: Option<Error>,
        },
    }
}

impl<F, S, R> ResponseFuture<F, S, R> {
    pub(crate) fn called(future: F, authorized: Option<Authorized>) -> Self {
        Self {
            state: State::Called { future, authorized },
        }
    }

    pub(crate) fn readying(inner: S, request: R, authorized: Option<Authorized>) -> Self {
        Self {
            state: State::Readying {
                inner: Some(inner),
                request: Some(request),
                authorized,
            },
        }
    }

    pub(crate) fn loading(
        inner: S,
        request: R,
        tokens: TokenCache,
        router: Option<Arc<TenantRouter>>,
    ) -> Self {
        let loader = tokens.clone();
        Self {
            state: State::Loading {
                token: Box::pin(async move {
                    let (header, id) = loader.header_with_id().await?;
                    let route = match router {
                        Some(router) => Some(router.route(id, &loader).await?),
                        None => None,
                    };
                    Ok(Loaded { header, id, route })
                }),
                tokens,
                inner: Some(inner),
                request: Some(request),
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

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Called { future, authorized } => {
                    let response = ready!(future.poll(cx)).map_err(Into::into)?;
                    if let Some(authorized) = authorized.take() {
                        authorized.check(&response);
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Loading {
                    token,
                    tokens,
                    inner,
                    request,
                } => {
                    let Loaded { header, id, route } = ready!(token.as_mut().poll(cx))?;
                    let mut request = request.take().expect(POLLED_AFTER_COMPLETION);
                    if let Some(route) = route {
                        route.apply(&mut request)?;
                    }
                    request.headers_mut().insert(AUTHORIZATION, header);
                    let next = State::Readying {
                        inner: inner.take(),
                        request: Some(request),
                        authorized: Some(Authorized::new(tokens.clone(), id)),
                    };
                    state.set(next);
                }
                StateProj::Readying {
                    inner,
                    request,
                    authorized,
                } => {
                    let service = inner.as_mut().expect(POLLED_AFTER_COMPLETION);
                    ready!(service.poll_ready(cx)).map_err(Into::into)?;
                    let request = request.take().expect(POLLED_AFTER_COMPLETION);
                    let authorized = authorized.take();
                    let future = service.call(request);
                    state.set(State::Called { future, authorized });
                }
                StateProj::Refused { error } => {
                    let error = error.take().expect(POLLED_AFTER_COMPLETION);
                    return Poll::Ready(Err(error.into()));
                }
            }
        }
    }
}

impl<F, S, R> fmt::Debug for ResponseFuture<F, S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Loading { .. } => "Loading",
            State::Readying { .. } => "Readying",
            State::Called { .. } => "Called",
            State::Refused { .. } => "Refused",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
