//! Metric names, their descriptions, and handles registered once.
//!
//! The library records through the `metrics` facade and never installs a
//! recorder: the reference service installs the Prometheus exporter
//! (`prometheus_builder`, feature `service`, sets the buckets). Handles are
//! registered when a cache or refresher is built (label sets are fixed
//! `&'static str`s), so recording on the hot path is an atomic add, never an
//! allocation or a map lookup. Build caches after installing the recorder:
//! handles taken before it record nowhere.

// Here: the metric names. In `exporter`, what the recorder is told (HELP
// lines, units, histogram buckets); in `handles`, the handles each part of
// the library registers.
mod exporter;
mod handles;

pub use exporter::describe;
#[cfg(feature = "service")]
#[cfg_attr(docsrs, doc(cfg(feature = "service")))]
pub use exporter::prometheus_builder;
#[cfg(feature = "service")]
pub(crate) use handles::JobReadMetrics;
#[cfg(feature = "bigquery")]
pub(crate) use handles::QueryMetrics;
pub(crate) use handles::{
    BullmqMetrics, CacheMetrics, ClusterGauges, RefreshMetrics, SentinelMetrics,
    invalidation_connected,
};

/// Requests to a keyed cache, by tier and result.
pub const REQUESTS_TOTAL: &str = "warmcache_requests_total";
/// Loader calls.
pub const LOADS_TOTAL: &str = "warmcache_loads_total";
/// Loader call duration.
pub const LOAD_DURATION_SECONDS: &str = "warmcache_load_duration_seconds";
/// Redis round trips of the keyed caches.
pub const L2_DURATION_SECONDS: &str = "warmcache_l2_duration_seconds";
/// Invalidations, by origin.
pub const INVALIDATIONS_TOTAL: &str = "warmcache_invalidations_total";
/// Invalidations (erasures) Redis did not confirm.
pub const INVALIDATION_FAILURES_TOTAL: &str = "warmcache_invalidation_failures_total";
/// Erasures that waited for replicas, by whether enough confirmed.
pub const ERASURE_REPLICATION_TOTAL: &str = "warmcache_erasure_replication_total";
/// Failed Redis operations, by operation.
pub const L2_ERRORS_TOTAL: &str = "warmcache_l2_errors_total";
/// Corrupt values found in Redis.
pub const CORRUPT_VALUES_TOTAL: &str = "warmcache_corrupt_values_total";
/// Values too big for L1, served but not kept.
pub const L1_OVERSIZE_TOTAL: &str = "warmcache_l1_oversize_total";
/// 1 while the invalidation listener is connected.
pub const INVALIDATION_CONNECTED: &str = "warmcache_invalidation_connected";
/// Cluster mode: primaries in the cluster's topology.
pub const CLUSTER_PRIMARIES: &str = "warmcache_redis_cluster_primaries";
/// Cluster mode: primaries whose tracking session is in place.
pub const CLUSTER_TRACKED_PRIMARIES: &str = "warmcache_redis_cluster_tracked_primaries";
/// Cluster mode: topology changes seen by the invalidation listener.
pub const CLUSTER_TOPOLOGY_CHANGES_TOTAL: &str = "warmcache_redis_cluster_topology_changes_total";
/// Sentinel mode: 1 while a primary named by the sentinels and verified is in use.
pub const SENTINEL_PRIMARY_KNOWN: &str = "warmcache_redis_sentinel_primary_known";
/// Sentinel mode: switches to a new primary (failovers followed).
pub const SENTINEL_PRIMARY_SWITCHES_TOTAL: &str = "warmcache_redis_sentinel_primary_switches_total";
/// Snapshot refreshes, by result.
pub const SNAPSHOT_REFRESH_TOTAL: &str = "warmcache_snapshot_refresh_total";
/// Snapshot refresh duration.
pub const SNAPSHOT_REFRESH_DURATION_SECONDS: &str = "warmcache_snapshot_refresh_duration_seconds";
/// Age of the snapshot data.
pub const SNAPSHOT_AGE_SECONDS: &str = "warmcache_snapshot_age_seconds";
/// The refresh period.
pub const SNAPSHOT_TTL_SECONDS: &str = "warmcache_snapshot_ttl_seconds";
/// The staleness bound of readiness.
pub const SNAPSHOT_MAX_STALENESS_SECONDS: &str = "warmcache_snapshot_max_staleness_seconds";
/// 1 for the active mode.
pub const SNAPSHOT_MODE: &str = "warmcache_snapshot_mode";
/// BigQuery queries of live mode, by section and result.
pub const BIGQUERY_QUERIES_TOTAL: &str = "warmcache_bigquery_queries_total";
/// Bytes BigQuery reported processing, by section.
pub const BIGQUERY_BYTES_PROCESSED_TOTAL: &str = "warmcache_bigquery_bytes_processed_total";
/// BigQuery jobs abandoned unfinished (refresh timeout, a sibling query's
/// failure, shutdown) and cancelled with `jobs.cancel`, by section.
pub const BIGQUERY_JOBS_CANCELLED_TOTAL: &str = "warmcache_bigquery_jobs_cancelled_total";
/// Duration of one BigQuery query (all its pages), by section.
pub const BIGQUERY_QUERY_DURATION_SECONDS: &str = "warmcache_bigquery_query_duration_seconds";
/// HTTP requests, by route template and status class.
pub const HTTP_REQUESTS_TOTAL: &str = "warmcache_http_requests_total";
/// HTTP request duration, by route template.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "warmcache_http_request_duration_seconds";

/// Job answers, by source (reasoning_job, bullmq, none) and tier (l1, l2).
pub const JOB_READS_TOTAL: &str = "warmcache_job_reads_total";
/// BullMQ events read by the follower, by event name.
pub const BULLMQ_EVENTS_TOTAL: &str = "warmcache_bullmq_events_total";
/// Events in the stream the follower has not read yet.
pub const BULLMQ_FOLLOWER_LAG_EVENTS: &str = "warmcache_bullmq_follower_lag_events";
/// Reconnects of the follower.
pub const BULLMQ_FOLLOWER_RECONNECTS_TOTAL: &str = "warmcache_bullmq_follower_reconnects_total";
/// 1 while the follower is connected.
pub const BULLMQ_FOLLOWER_CONNECTED: &str = "warmcache_bullmq_follower_connected";
/// Final statuses recorded in reasoning_job, by result.
pub const BULLMQ_RECORDS_TOTAL: &str = "warmcache_bullmq_records_total";
/// Malformed BullMQ job hashes found.
pub const BULLMQ_MALFORMED_JOBS_TOTAL: &str = "warmcache_bullmq_malformed_jobs_total";
/// Long polls waiting now.
pub const JOB_WAITERS: &str = "warmcache_job_waiters";

/// The event names counted by name; any other counts as `other`.
pub const BULLMQ_EVENT_NAMES: &[&str] = &[
    "added",
    "waiting",
    "waiting-children",
    "active",
    "progress",
    "completed",
    "failed",
    "delayed",
    "stalled",
    "removed",
    "retries-exhausted",
    "drained",
    "paused",
    "resumed",
    "cleaned",
    "duplicated",
    "deduplicated",
    "debounced",
    "error",
    "other",
];
