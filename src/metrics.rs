//! Metric names, their descriptions, and handles registered once.
//!
//! The library records through the `metrics` facade and never installs a
//! recorder: the reference service installs the Prometheus exporter
//! (`prometheus_builder`, feature `service`, sets the buckets). Handles are
//! registered when a cache or refresher is built (label sets are fixed
//! `&'static str`s), so recording on the hot path is an atomic add, never an
//! allocation or a map lookup. Build caches after installing the recorder:
//! handles taken before it record nowhere.

use ::metrics::{
    Counter, Gauge, Histogram, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};
#[cfg(feature = "service")]
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

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

/// Buckets of Redis round trips and HTTP requests: 100 µs to 2.5 s.
#[cfg(feature = "service")]
const MILLISECOND_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Buckets of loads and snapshot refreshes: 1 ms to 60 s.
#[cfg(feature = "service")]
const SECOND_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Describes every metric to the installed recorder (HELP lines).
pub fn describe() {
    describe_counter!(
        REQUESTS_TOTAL,
        "Keyed cache lookups by tier (l1, l2) and result (hit, miss)."
    );
    describe_counter!(
        LOADS_TOTAL,
        "Loader calls of the keyed caches, by result (ok, error)."
    );
    describe_histogram!(
        LOAD_DURATION_SECONDS,
        ::metrics::Unit::Seconds,
        "Duration of loader calls."
    );
    describe_histogram!(
        L2_DURATION_SECONDS,
        ::metrics::Unit::Seconds,
        "Duration of Redis round trips of the keyed caches."
    );
    describe_counter!(
        INVALIDATIONS_TOTAL,
        "Keys invalidated, by origin: local (this instance's invalidate) or remote (pushed by Redis)."
    );
    describe_counter!(
        INVALIDATION_FAILURES_TOTAL,
        "Invalidations (for age verification: GDPR erasures) that Redis did not confirm."
    );
    describe_counter!(
        ERASURE_REPLICATION_TOTAL,
        "Erasures that waited for replicas (WARMCACHE_ERASURE_REPLICAS): confirmed by enough of them in time, or not."
    );
    describe_counter!(
        L2_ERRORS_TOTAL,
        "Failed Redis operations of the keyed caches, by operation (get, set, del)."
    );
    describe_counter!(
        CORRUPT_VALUES_TOTAL,
        "Values in Redis that could not be decoded (never served)."
    );
    describe_counter!(
        L1_OVERSIZE_TOTAL,
        "Values over L1's per-entry cap (1/64 of its budget): served, but not kept in process memory."
    );
    describe_gauge!(
        INVALIDATION_CONNECTED,
        "1 while the invalidation listener is connected to Redis, else 0."
    );
    describe_gauge!(
        CLUSTER_PRIMARIES,
        "Cluster mode: primaries in the topology last tracked."
    );
    describe_gauge!(
        CLUSTER_TRACKED_PRIMARIES,
        "Cluster mode: primaries tracked now (L1 is trusted only while this equals warmcache_redis_cluster_primaries)."
    );
    describe_counter!(
        CLUSTER_TOPOLOGY_CHANGES_TOTAL,
        "Cluster mode: topology changes (failover, node added or removed, slot migrated) the listener followed."
    );
    describe_gauge!(
        SENTINEL_PRIMARY_KNOWN,
        "Sentinel mode: 1 while a primary the sentinels name, verified by ROLE, is in use; 0 during a switch (L1 is then distrusted)."
    );
    describe_counter!(
        SENTINEL_PRIMARY_SWITCHES_TOTAL,
        "Sentinel mode: switches to a new primary (failovers) the handle followed."
    );
    describe_counter!(
        SNAPSHOT_REFRESH_TOTAL,
        "Snapshot refreshes, by result (ok, error)."
    );
    describe_histogram!(
        SNAPSHOT_REFRESH_DURATION_SECONDS,
        ::metrics::Unit::Seconds,
        "Duration of snapshot refreshes."
    );
    describe_gauge!(
        SNAPSHOT_AGE_SECONDS,
        ::metrics::Unit::Seconds,
        "Age of the snapshot data being served."
    );
    describe_gauge!(
        SNAPSHOT_TTL_SECONDS,
        ::metrics::Unit::Seconds,
        "The snapshot refresh period (BQ_CACHE_TTL_MS)."
    );
    describe_gauge!(
        SNAPSHOT_MAX_STALENESS_SECONDS,
        ::metrics::Unit::Seconds,
        "Data age beyond which the service is not ready."
    );
    describe_gauge!(
        SNAPSHOT_MODE,
        "1 for the active data source mode (live or mock), 0 for the other."
    );
    describe_counter!(
        BIGQUERY_QUERIES_TOTAL,
        "BigQuery queries of live mode, by section and result (ok, error)."
    );
    describe_counter!(
        BIGQUERY_BYTES_PROCESSED_TOTAL,
        ::metrics::Unit::Bytes,
        "Bytes BigQuery reported processing, by section."
    );
    describe_histogram!(
        BIGQUERY_QUERY_DURATION_SECONDS,
        ::metrics::Unit::Seconds,
        "Duration of one BigQuery query, all its pages, by section."
    );
    describe_counter!(
        BIGQUERY_JOBS_CANCELLED_TOTAL,
        "BigQuery jobs abandoned unfinished (refresh timeout, a failed sibling query, shutdown) for which jobs.cancel was sent, by section."
    );
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests by route template and status class."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        ::metrics::Unit::Seconds,
        "HTTP request duration by route template."
    );
    describe_counter!(
        JOB_READS_TOTAL,
        "GET /jobs answers by source (reasoning_job, bullmq, none: not found) and tier (l1, l2)."
    );
    describe_counter!(
        BULLMQ_EVENTS_TOTAL,
        "BullMQ events read by the follower, by event (known names, else other)."
    );
    describe_gauge!(
        BULLMQ_FOLLOWER_LAG_EVENTS,
        "Events in the BullMQ events stream the follower has not read yet."
    );
    describe_counter!(
        BULLMQ_FOLLOWER_RECONNECTS_TOTAL,
        "Reconnects of the BullMQ events follower."
    );
    describe_gauge!(
        BULLMQ_FOLLOWER_CONNECTED,
        "1 while the BullMQ events follower is connected, else 0."
    );
    describe_counter!(
        BULLMQ_RECORDS_TOTAL,
        "Final BullMQ job statuses recorded in reasoning_job, by result (written, kept: an equal one was there, error)."
    );
    describe_counter!(
        BULLMQ_MALFORMED_JOBS_TOTAL,
        "BullMQ job hashes of the wrong shape (never served)."
    );
    describe_gauge!(JOB_WAITERS, "Long polls of GET /jobs waiting now.");
}

/// A Prometheus exporter builder with the buckets of every histogram.
///
/// # Errors
/// Never with these buckets; kept for the builder's signature.
#[cfg(feature = "service")]
#[cfg_attr(docsrs, doc(cfg(feature = "service")))]
pub fn prometheus_builder() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(L2_DURATION_SECONDS.to_owned()),
            MILLISECOND_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(HTTP_REQUEST_DURATION_SECONDS.to_owned()),
            MILLISECOND_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(LOAD_DURATION_SECONDS.to_owned()),
            SECOND_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(BIGQUERY_QUERY_DURATION_SECONDS.to_owned()),
            SECOND_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(SNAPSHOT_REFRESH_DURATION_SECONDS.to_owned()),
            SECOND_BUCKETS,
        )
}

/// Handles of one keyed cache.
#[derive(Debug)]
pub(crate) struct CacheMetrics {
    pub(crate) l1_hit: Counter,
    pub(crate) l1_miss: Counter,
    pub(crate) l2_hit: Counter,
    pub(crate) l2_miss: Counter,
    pub(crate) loads_ok: Counter,
    pub(crate) loads_error: Counter,
    pub(crate) load_duration: Histogram,
    pub(crate) l2_duration: Histogram,
    pub(crate) invalidations_local: Counter,
    pub(crate) invalidations_remote: Counter,
    pub(crate) invalidation_failures: Counter,
    pub(crate) erasures_confirmed: Counter,
    pub(crate) erasures_unconfirmed: Counter,
    pub(crate) l2_errors_get: Counter,
    pub(crate) l2_errors_set: Counter,
    pub(crate) l2_errors_del: Counter,
    pub(crate) corrupt_values: Counter,
    pub(crate) l1_oversize: Counter,
}

impl CacheMetrics {
    /// Registers every series of `cache` (they exist at 0 from now on).
    pub(crate) fn register(cache: &'static str) -> Self {
        let request = |tier: &'static str, result: &'static str| {
            let c = counter!(REQUESTS_TOTAL, "cache" => cache, "tier" => tier, "result" => result);
            c.absolute(0);
            c
        };
        let plain = |name: &'static str, key: &'static str, value: &'static str| {
            let c = counter!(name, "cache" => cache, key => value);
            c.absolute(0);
            c
        };
        let corrupt_values = counter!(CORRUPT_VALUES_TOTAL, "cache" => cache);
        corrupt_values.absolute(0);
        let invalidation_failures = counter!(INVALIDATION_FAILURES_TOTAL, "cache" => cache);
        invalidation_failures.absolute(0);
        let l1_oversize = counter!(L1_OVERSIZE_TOTAL, "cache" => cache);
        l1_oversize.absolute(0);
        Self {
            l1_hit: request("l1", "hit"),
            l1_miss: request("l1", "miss"),
            l2_hit: request("l2", "hit"),
            l2_miss: request("l2", "miss"),
            loads_ok: plain(LOADS_TOTAL, "result", "ok"),
            loads_error: plain(LOADS_TOTAL, "result", "error"),
            load_duration: histogram!(LOAD_DURATION_SECONDS, "cache" => cache),
            l2_duration: histogram!(L2_DURATION_SECONDS, "cache" => cache),
            invalidations_local: plain(INVALIDATIONS_TOTAL, "origin", "local"),
            invalidations_remote: plain(INVALIDATIONS_TOTAL, "origin", "remote"),
            invalidation_failures,
            erasures_confirmed: plain(ERASURE_REPLICATION_TOTAL, "result", "confirmed"),
            erasures_unconfirmed: plain(ERASURE_REPLICATION_TOTAL, "result", "unconfirmed"),
            l2_errors_get: plain(L2_ERRORS_TOTAL, "op", "get"),
            l2_errors_set: plain(L2_ERRORS_TOTAL, "op", "set"),
            l2_errors_del: plain(L2_ERRORS_TOTAL, "op", "del"),
            corrupt_values,
            l1_oversize,
        }
    }
}

/// Handles of the snapshot refresher.
#[derive(Debug)]
pub(crate) struct RefreshMetrics {
    pub(crate) ok: Counter,
    pub(crate) error: Counter,
    pub(crate) duration: Histogram,
}

impl RefreshMetrics {
    pub(crate) fn register() -> Self {
        let ok = counter!(SNAPSHOT_REFRESH_TOTAL, "result" => "ok");
        let error = counter!(SNAPSHOT_REFRESH_TOTAL, "result" => "error");
        ok.absolute(0);
        error.absolute(0);
        Self {
            ok,
            error,
            duration: histogram!(SNAPSHOT_REFRESH_DURATION_SECONDS),
        }
    }
}

/// Handles of one live-mode section's queries.
#[cfg(feature = "bigquery")]
#[derive(Debug, Clone)]
pub(crate) struct QueryMetrics {
    pub(crate) ok: Counter,
    pub(crate) error: Counter,
    pub(crate) bytes_processed: Counter,
    pub(crate) cancelled: Counter,
    pub(crate) duration: Histogram,
}

#[cfg(feature = "bigquery")]
impl QueryMetrics {
    pub(crate) fn register(section: &'static str) -> Self {
        let ok = counter!(BIGQUERY_QUERIES_TOTAL, "section" => section, "result" => "ok");
        let error = counter!(BIGQUERY_QUERIES_TOTAL, "section" => section, "result" => "error");
        let bytes_processed = counter!(BIGQUERY_BYTES_PROCESSED_TOTAL, "section" => section);
        let cancelled = counter!(BIGQUERY_JOBS_CANCELLED_TOTAL, "section" => section);
        for c in [&ok, &error, &bytes_processed, &cancelled] {
            c.absolute(0);
        }
        Self {
            ok,
            error,
            bytes_processed,
            cancelled,
            duration: histogram!(BIGQUERY_QUERY_DURATION_SECONDS, "section" => section),
        }
    }
}

/// The invalidation listener's connection gauge.
pub(crate) fn invalidation_connected() -> Gauge {
    gauge!(INVALIDATION_CONNECTED)
}

/// Handles of the job routes' reads of `reasoning_job`.
#[cfg(feature = "service")]
#[derive(Debug)]
pub(crate) struct JobReadMetrics {
    pub(crate) record_l1: Counter,
    pub(crate) record_l2: Counter,
    pub(crate) not_found: Counter,
}

fn job_reads(source: &'static str, tier: &'static str) -> Counter {
    let c = counter!(JOB_READS_TOTAL, "source" => source, "tier" => tier);
    c.absolute(0);
    c
}

#[cfg(feature = "service")]
impl JobReadMetrics {
    pub(crate) fn register() -> Self {
        Self {
            record_l1: job_reads("reasoning_job", "l1"),
            record_l2: job_reads("reasoning_job", "l2"),
            not_found: job_reads("none", "none"),
        }
    }
}

/// Handles of the BullMQ job source and its follower.
#[derive(Debug)]
#[cfg_attr(not(feature = "service"), allow(dead_code))] // reads_l1, reads_l2: the job routes' reads
pub(crate) struct BullmqMetrics {
    pub(crate) reads_l1: Counter,
    pub(crate) reads_l2: Counter,
    events: Vec<Counter>,
    pub(crate) lag: Gauge,
    pub(crate) reconnects: Counter,
    pub(crate) connected: Gauge,
    pub(crate) records_written: Counter,
    pub(crate) records_kept: Counter,
    pub(crate) records_failed: Counter,
    pub(crate) malformed: Counter,
    pub(crate) waiters: Gauge,
}

impl BullmqMetrics {
    pub(crate) fn register() -> Self {
        let plain = |name: &'static str| {
            let c = counter!(name);
            c.absolute(0);
            c
        };
        let record = |result: &'static str| {
            let c = counter!(BULLMQ_RECORDS_TOTAL, "result" => result);
            c.absolute(0);
            c
        };
        let events = BULLMQ_EVENT_NAMES
            .iter()
            .map(|&event| {
                let c = counter!(BULLMQ_EVENTS_TOTAL, "event" => event);
                c.absolute(0);
                c
            })
            .collect();
        let lag = gauge!(BULLMQ_FOLLOWER_LAG_EVENTS);
        lag.set(0.0);
        let connected = gauge!(BULLMQ_FOLLOWER_CONNECTED);
        connected.set(0.0);
        let waiters = gauge!(JOB_WAITERS);
        waiters.set(0.0);
        Self {
            reads_l1: job_reads("bullmq", "l1"),
            reads_l2: job_reads("bullmq", "l2"),
            events,
            lag,
            reconnects: plain(BULLMQ_FOLLOWER_RECONNECTS_TOTAL),
            connected,
            records_written: record("written"),
            records_kept: record("kept"),
            records_failed: record("error"),
            malformed: plain(BULLMQ_MALFORMED_JOBS_TOTAL),
            waiters,
        }
    }

    /// The counter of `event` (`other` for a name not in the list).
    pub(crate) fn event(&self, event: &str) -> &Counter {
        let index = BULLMQ_EVENT_NAMES
            .iter()
            .position(|&name| name == event)
            .unwrap_or(BULLMQ_EVENT_NAMES.len() - 1);
        &self.events[index]
    }
}

/// The cluster listener's gauges: counts, never per-node labels.
pub(crate) struct ClusterGauges {
    primaries: Gauge,
    tracked: Gauge,
    topology_changes: Counter,
}

impl ClusterGauges {
    pub(crate) fn new() -> Self {
        let topology_changes = counter!(CLUSTER_TOPOLOGY_CHANGES_TOTAL);
        topology_changes.increment(0);
        Self {
            primaries: gauge!(CLUSTER_PRIMARIES),
            tracked: gauge!(CLUSTER_TRACKED_PRIMARIES),
            topology_changes,
        }
    }

    pub(crate) fn primaries(&self, n: usize) {
        self.primaries.set(n as f64);
    }

    pub(crate) fn tracked(&self, n: usize) {
        self.tracked.set(n as f64);
    }

    pub(crate) fn topology_changed(&self) {
        self.topology_changes.increment(1);
    }
}

/// The sentinel follower's gauge and counter: no per-node labels.
pub(crate) struct SentinelMetrics {
    known: Gauge,
    switches: Counter,
}

impl SentinelMetrics {
    pub(crate) fn new() -> Self {
        let switches = counter!(SENTINEL_PRIMARY_SWITCHES_TOTAL);
        switches.increment(0);
        Self {
            known: gauge!(SENTINEL_PRIMARY_KNOWN),
            switches,
        }
    }

    pub(crate) fn known(&self, known: bool) {
        self.known.set(f64::from(u8::from(known)));
    }

    pub(crate) fn switched(&self) {
        self.switches.increment(1);
    }
}
