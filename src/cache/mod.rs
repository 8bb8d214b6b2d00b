//! Token caching and the stores caches share tokens through.
//!
//! ```
//! # #[cfg(feature = "redis")] {
//! let store = cxone_auth::cache::RedisStore::new("redis://127.0.0.1:6379")?;
//! # drop(store); }
//! # Ok::<(), cxone_auth::Error>(())
//! ```

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
mod redis;

#[cfg(feature = "redis")]
pub use redis::{
    DEFAULT_KEY_PREFIX, DEFAULT_OPERATION_TIMEOUT, DEFAULT_REDIS_URL, REDIS_URL_ENV, RedisStore,
    RedisStoreBuilder,
};
#[cfg(feature = "redis-encryption")]
pub use redis::{ENCRYPTION_KEY_BYTES, EncryptionKey};
