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
    /// With a cached token it is the inner service's future plus the id of
    /// the token it carried: no allocation. Without one it first waits for the
    /// token, then for the inner service's readiness, then calls it.
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
            authorized: Option<Authorized>,
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
    /// The token being loaded, and the cache it comes from.
    load: Option<(TokenLoad, TokenCache)>,
    inner: S,
    request: Option<R>,
    authorized: Option<Authorized>,
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
    pub(crate) fn called(future: F, authorized: Option<Authorized>) -> Self {
        Self {
            state: State::Called { future, authorized },
        }
    }

    /// A call that waits for the inner service's readiness: its request
    /// already carries its token, if any.
    pub(crate) fn readying(inner: S, request: R, authorized: Option<Authorized>) -> Self {
        Self::waiting(None, inner, request, authorized)
    }

    /// A call that waits for a token from `tokens` first and, with a
    /// `router`, for the route to the token's tenant.
    pub(crate) fn loading(
        inner: S,
        request: R,
        tokens: TokenCache,
        router: Option<Arc<TenantRouter>>,
    ) -> Self {
        let loader = tokens.clone();
        let load: TokenLoad = Box::pin(async move {
            let (header, id) = loader.header_with_id().await?;
            let route = match router {
                Some(router) => Some(router.route(id, &loader).await?),
                None => None,
            };
            Ok(Loaded { header, id, route })
        });
        Self::waiting(Some((load, tokens)), inner, request, None)
    }

    fn waiting(
        load: Option<(TokenLoad, TokenCache)>,
        inner: S,
        request: R,
        authorized: Option<Authorized>,
    ) -> Self {
        Self {
            state: State::Waiting {
                waiting: Box::new(Waiting {
                    load,
                    inner,
                    request: Some(request),
                    authorized,
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
                StateProj::Waiting { waiting } => {
                    if let Some((load, tokens)) = &mut waiting.load {
                        let Loaded { header, id, route } = ready!(load.as_mut().poll(cx))?;
                        let request = waiting.request.as_mut().expect(POLLED_AFTER_COMPLETION);
                        if let Some(route) = route {
                            route.apply(request)?;
                        }
                        request.headers_mut().insert(AUTHORIZATION, header);
                        waiting.authorized = Some(Authorized::new(tokens.clone(), id));
                        waiting.load = None;
                    }
                    ready!(waiting.inner.poll_ready(cx)).map_err(Into::into)?;
                    let request = waiting.request.take().expect(POLLED_AFTER_COMPLETION);
                    let future = waiting.inner.call(request);
                    let authorized = waiting.authorized.take();
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
