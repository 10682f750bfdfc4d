//! warmcache keeps BigQuery-backed dashboard data warm in process memory.
//!
//! A [`Snapshot`] (dashboard, historical, products, refresh times, last error,
//! mode) lives in a [`SnapshotCache`], a lock-free `ArcSwap` cell. A
//! [`Refresher`] task replaces it every TTL from a [`SnapshotSource`]
//! (`BigQuerySource` in live mode, with the default cargo feature
//! `bigquery`; [`MockSource`] for development); readers never wait and never
//! query.
//! Each section is rendered to JSON and compressed (gzip, brotli) once per
//! refresh, with an ETag per coding, so the [`service`] serves it without
//! serializing or compressing.
//!
//! ```
//! use std::time::Duration;
//! use warmcache::{Mode, MockSource, Refresher, SnapshotCache};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cache = SnapshotCache::new(Mode::Mock);
//! let refresher = Refresher::builder()
//!     .ttl(Duration::from_secs(30))
//!     .spawn(MockSource::new(42), cache.clone())?;
//!
//! // Wait for the first load (normally the service just starts serving 503s).
//! refresher.refresh_now().await?;
//!
//! let snapshot = cache.load(); // never blocks
//! let sections = snapshot.data.as_ref().expect("loaded");
//! assert_eq!(sections.products.value().items.len(), 500);
//! assert!(sections.dashboard.body().starts_with(b"{"));
//! refresher.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod body;
pub mod bullmq;
mod config;
pub mod data;
mod fnv;
pub mod metrics;
pub mod records;
pub mod redact;
mod redis;
mod refresher;
mod rng;
mod schedule;
pub mod service;
mod snapshot;
mod source;
#[cfg(feature = "test-util")]
pub mod testing;
mod tier;

pub use body::{Coding, EncodedBody, OFF_THREAD_BYTES, Variant};
pub use config::{Config, ConfigError, LogFormat, RefreshConfig, SETTINGS, Setting, vars};
pub use data::SnapshotData;
pub use redis::{
    Erasure, INVALIDATION_CHANNEL, InvalidationListener, InvalidationMode, InvalidationOptions,
    L2Error, PUSH_CAPACITY, RedisConfig, RedisHandle, RedisMode, RedisSetupError, Secret,
    TOMBSTONE_PREFIX,
};
pub use refresher::{RefreshError, RefreshResult, Refresher, RefresherBuilder};
pub use snapshot::{LastError, Mode, Section, Sections, Snapshot, SnapshotCache, Timestamp};
pub use source::{
    BigQueryConfig, BigQuerySetupError, Credentials, DEFAULT_HTTP_TIMEOUT,
    DEFAULT_MAXIMUM_BYTES_BILLED, MockSource, SnapshotSource, SourceError,
};
#[cfg(feature = "bigquery")]
pub use source::{BigQuerySource, BigQuerySourceBuilder, BigQueryStats, SectionStats};
pub use tier::{
    CacheError, CacheId, CacheStats, Cached, DEFAULT_L1_MAX_BYTES, DEFAULT_L1_TTL, InvalidId,
    LoaderError, MAX_ID_LEN, Tier, TieredCache, TieredCacheBuilder,
};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
