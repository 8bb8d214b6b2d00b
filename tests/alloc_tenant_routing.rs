//! Tenant routing costs requests with an absolute URL nothing: a call through
//! the auth layer on a cached token allocates nothing, with routing configured
//! or not (`alloc_hot_path.rs` compares the plain layer with a static header).
//!
//! Its own test binary, because the counting allocator is process-wide.

use std::alloc::System;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use cxone_auth::token::{StaticToken, TenantDiscovery};
use cxone_auth::{CxoneAuthLayer, TenantRoutingLayer, TokenCache};
use http::{Request, Response};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::layer::util::Stack;
use tower::{Layer, Service};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CALLS: usize = 2_000;

/// An inner service that answers at once, allocating nothing.
#[derive(Clone)]
struct Answer;

impl Service<Request<()>> for Answer {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<()>) -> Self::Future {
        ready(Ok(Response::new(())))
    }
}

/// Requests built before measuring, with room in their header maps.
fn requests() -> Vec<Request<()>> {
    (0..CALLS)
        .map(|_| {
            Request::get("https://api-na1.niceincontact.com/inContactAPI/services/v34.0/agents")
                .header("accept", "application/json")
                .body(())
                .unwrap()
        })
        .collect()
}

fn calls_allocate_nothing<L>(layer: L)
where
    L: Layer<Answer>,
    L::Service: Service<Request<()>, Response = Response<()>, Error = tower::BoxError>,
{
    let mut service = layer.layer(Answer);
    let mut cx = Context::from_waker(Waker::noop());
    let mut call = |service: &mut L::Service, request| {
        assert!(service.poll_ready(&mut cx).is_ready());
        let future = pin!(service.call(request));
        match future.poll(&mut cx) {
            Poll::Ready(response) => black_box(response.unwrap()),
            Poll::Pending => panic!("a cached token answers at once"),
        };
    };
    for request in requests().into_iter().take(16) {
        call(&mut service, request);
    }

    let requests = requests();
    let region = Region::new(GLOBAL);
    for request in requests {
        call(&mut service, request);
    }
    let change = region.change();
    assert_eq!(change.allocations, 0, "{change:?}");
    assert_eq!(change.reallocations, 0, "{change:?}");
}

#[test]
fn cached_token_calls_allocate_nothing_with_and_without_tenant_routing() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let tokens = TokenCache::new(StaticToken::new("a.b.c").lifetime(Duration::from_secs(3600)));
        tokens.token().await.unwrap();
        tokio::task::yield_now().await;

        // The instrument counts: one small allocation is seen.
        let region = Region::new(GLOBAL);
        black_box(Vec::<u8>::with_capacity(1));
        assert_eq!(region.change().allocations, 1);

        calls_allocate_nothing(CxoneAuthLayer::new(tokens.clone()));
        let discovery = TenantDiscovery::from_url("https://cxone.niceincontact.com").unwrap();
        let auth = CxoneAuthLayer::new(tokens);
        let routing = TenantRoutingLayer::new(&auth, discovery);
        calls_allocate_nothing(Stack::new(auth, routing));
    });
}
