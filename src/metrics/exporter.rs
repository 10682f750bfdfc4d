//! What the installed recorder is told about each metric: its HELP text
//! and unit (`describe`), and, for the Prometheus exporter, the buckets of
//! every histogram (`prometheus_builder`, feature `service`).

use ::metrics::{describe_counter, describe_gauge, describe_histogram};
#[cfg(feature = "service")]
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

use super::{
    BIGQUERY_BYTES_PROCESSED_TOTAL, BIGQUERY_JOBS_CANCELLED_TOTAL, BIGQUERY_QUERIES_TOTAL,
    BIGQUERY_QUERY_DURATION_SECONDS, BULLMQ_EVENTS_TOTAL, BULLMQ_FOLLOWER_CONNECTED,
    BULLMQ_FOLLOWER_LAG_EVENTS, BULLMQ_FOLLOWER_RECONNECTS_TOTAL, BULLMQ_MALFORMED_JOBS_TOTAL,
    BULLMQ_RECORDS_TOTAL, CLUSTER_PRIMARIES, CLUSTER_TOPOLOGY_CHANGES_TOTAL,
    CLUSTER_TRACKED_PRIMARIES, CORRUPT_VALUES_TOTAL, ERASURE_REPLICATION_TOTAL,
    HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL, INVALIDATION_CONNECTED,
    INVALIDATION_FAILURES_TOTAL, INVALIDATIONS_TOTAL, JOB_READS_TOTAL, JOB_WAITERS,
    L1_OVERSIZE_TOTAL, L2_DURATION_SECONDS, L2_ERRORS_TOTAL, LOAD_DURATION_SECONDS, LOADS_TOTAL,
    REQUESTS_TOTAL, SENTINEL_PRIMARY_KNOWN, SENTINEL_PRIMARY_SWITCHES_TOTAL, SNAPSHOT_AGE_SECONDS,
    SNAPSHOT_MAX_STALENESS_SECONDS, SNAPSHOT_MODE, SNAPSHOT_REFRESH_DURATION_SECONDS,
    SNAPSHOT_REFRESH_TOTAL, SNAPSHOT_TTL_SECONDS,
};

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
