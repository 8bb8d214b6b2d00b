//! The fresh-token read path allocates nothing: `TokenCache::cached` and
//! cloning the token's header, `TokenCache::cached_header`, and the same reads
//! through a `TokenReader`, as the auth layer does per request.
//!
//! Its own test binary, because the counting allocator is process-wide.

use std::alloc::System;
use std::hint::black_box;
use std::time::Duration;

use cxone_auth::TokenCache;
use cxone_auth::token::StaticToken;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// More than the cache's clock-check interval, so the periodic clock read is
/// on the measured path too.
const READS: usize = 10_000;

#[test]
fn fresh_reads_allocate_nothing() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let source = StaticToken::new("a.jwt-like.token").lifetime(Duration::from_secs(3600));
        let cache = TokenCache::new(source);
        cache.token().await.unwrap();
        // Let the timer task start, and warm arc-swap's per-thread slots.
        tokio::task::yield_now().await;
        for _ in 0..16 {
            black_box(cache.cached());
        }

        // The instrument counts: one small allocation is seen.
        let region = Region::new(GLOBAL);
        black_box(Vec::<u8>::with_capacity(1));
        assert_eq!(region.change().allocations, 1);

        let region = Region::new(GLOBAL);
        for _ in 0..READS {
            let token = cache.cached().expect("the token is fresh");
            let header = token.header_value().clone();
            black_box((token, header));
        }
        let change = region.change();
        assert_eq!(change.allocations, 0, "{change:?}");
        assert_eq!(change.reallocations, 0, "{change:?}");

        let region = Region::new(GLOBAL);
        for _ in 0..READS {
            black_box(cache.cached_header().expect("the token is fresh"));
        }
        let change = region.change();
        assert_eq!(change.allocations, 0, "{change:?}");
        assert_eq!(change.reallocations, 0, "{change:?}");

        let mut reader = cache.reader();
        black_box(reader.cached_header());
        let region = Region::new(GLOBAL);
        for _ in 0..READS {
            black_box(reader.cached_header().expect("the token is fresh"));
            black_box(reader.cached().expect("the token is fresh"));
        }
        let change = region.change();
        assert_eq!(change.allocations, 0, "{change:?}");
        assert_eq!(change.reallocations, 0, "{change:?}");
        drop(reader);
        assert_eq!(cache.stats().hits, 4 * READS as u64 + 17);
    });
}
