//! warmcache keeps BigQuery-backed dashboard data warm in process memory.
//!
//! A [`Snapshot`] (the sections of one refresh in a [`Loaded`], with their
//! refresh times, plus the last error and the mode) lives in a
//! [`SnapshotCache`], a lock-free `ArcSwap` cell. A [`Refresher`] task
//! replaces it every TTL from a [`SnapshotSource`]; readers never wait and
//! never query. The core is generic over the [`SectionSet`] a source fills:
//! the reference set ([`ReferenceSections`]: dashboard, historical,
//! products; the default type) comes from `BigQuerySource` in live mode
//! (cargo feature `bigquery`) or [`MockSource`]; a user's own set of
//! [`Section`]s works the same way, from their own source or their own
//! BigQuery queries (`QuerySet`). See the README's "Your own snapshot".
//! Each section is rendered to JSON and compressed (gzip, brotli) once per
//! refresh, with an ETag per coding, so the reference service (module
//! `service`) serves it without serializing or compressing.
//!
//! Cargo features: `bigquery` (the BigQuery source and its Google client)
//! and `service` (the axum reference service, its environment
//! configuration, the Prometheus exporter builder and the `warmcache`
//! binary), both on by default. With `default-features = false` the crate is
//! the core alone: snapshot, refresher, sources, keyed caches, Redis, BullMQ
//! reading and metric names, without clap, tracing-subscriber, axum, hyper or
//! metrics-exporter-prometheus.
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

#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
pub mod bullmq;
pub mod data;
mod fnv;
mod l2;
pub mod metrics;
pub mod records;
pub mod redact;
mod reference;
mod refresher;
mod rng;
mod schedule;
mod section;
#[cfg(feature = "service")]
#[cfg_attr(docsrs, doc(cfg(feature = "service")))]
pub mod service;
mod settings;
mod snapshot;
mod source;
#[cfg(feature = "test-util")]
pub mod testing;
mod tier;

pub use body::{Coding, EncodedBody, OFF_THREAD_BYTES, Variant};
pub use data::SnapshotData;
pub use l2::{
    Erasure, INVALIDATION_CHANNEL, InvalidationListener, InvalidationMode, InvalidationOptions,
    L2Error, PUSH_CAPACITY, RedisConfig, RedisHandle, RedisMode, RedisSetupError, Secret,
    TOMBSTONE_PREFIX,
};
pub use reference::{ReferenceSections, Sections};
pub use refresher::{RefreshError, RefreshResult, Refresher, RefresherBuilder};
pub use section::{Loaded, Section, SectionSet};
#[cfg(feature = "service")]
#[cfg_attr(docsrs, doc(cfg(feature = "service")))]
pub use service::{Config, LogFormat, SETTINGS, Setting};
pub use settings::{ConfigError, RefreshConfig, vars};
pub use snapshot::{LastError, Mode, Snapshot, SnapshotCache, Timestamp};
pub use source::{
    BigQueryConfig, BigQuerySetupError, Credentials, DEFAULT_HTTP_TIMEOUT,
    DEFAULT_MAXIMUM_BYTES_BILLED, DataOf, MockSource, SnapshotSource, SourceError,
};
#[cfg(feature = "bigquery")]
pub use source::{
    BigQuerySource, BigQuerySourceBuilder, BigQueryStats, QueryParam, QueryResults, QuerySet,
    ReferenceQueries, ResultTable as BigQueryTable, Row as BigQueryRow, SectionQuery, SectionStats,
};
pub use tier::{
    CacheError, CacheId, CacheStats, Cached, DEFAULT_L1_MAX_BYTES, DEFAULT_L1_TTL, InvalidId,
    LoaderError, MAX_ID_LEN, Tier, TieredCache, TieredCacheBuilder,
};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
