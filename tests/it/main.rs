//! The integration tests, one binary: each module tests one part of the crate
//! through its public API, as a user's code would. The allocation tests are
//! separate binaries because each installs a counting global allocator.

mod access_key;
mod auth_layer;
mod chaos;
#[cfg(feature = "cli")]
mod cli;
mod keyed;
mod mock_server;
mod operations;
mod properties;
#[cfg(feature = "redis")]
mod redis_fleet;
#[cfg(feature = "redis")]
mod redis_processes;
#[cfg(feature = "redis")]
mod redis_store;
#[cfg(feature = "redis")]
mod redis_support;
#[cfg(feature = "redis")]
mod redis_topologies;
#[cfg(feature = "reqwest-middleware")]
mod reqwest_middleware;
mod retry;
mod rotation;
mod secrets_audit;
mod stack;
mod support;
mod tenant_routing;
mod token_cache;
mod token_sources;
mod traces;
