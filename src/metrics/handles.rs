//! The handles each part of the library registers once (a keyed cache, the
//! snapshot refresher, a live-mode section's queries, the job routes, the
//! BullMQ follower, the cluster and sentinel listeners): every series exists
//! at 0 from registration on, and recording is an atomic add.

use ::metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

#[cfg(feature = "bigquery")]
use super::{
    BIGQUERY_BYTES_PROCESSED_TOTAL, BIGQUERY_JOBS_CANCELLED_TOTAL, BIGQUERY_QUERIES_TOTAL,
    BIGQUERY_QUERY_DURATION_SECONDS,
};
use super::{
    BULLMQ_EVENT_NAMES, BULLMQ_EVENTS_TOTAL, BULLMQ_FOLLOWER_CONNECTED, BULLMQ_FOLLOWER_LAG_EVENTS,
    BULLMQ_FOLLOWER_RECONNECTS_TOTAL, BULLMQ_MALFORMED_JOBS_TOTAL, BULLMQ_RECORDS_TOTAL,
    CLUSTER_PRIMARIES, CLUSTER_TOPOLOGY_CHANGES_TOTAL, CLUSTER_TRACKED_PRIMARIES,
    CORRUPT_VALUES_TOTAL, ERASURE_REPLICATION_TOTAL, INVALIDATION_CONNECTED,
    INVALIDATION_FAILURES_TOTAL, INVALIDATIONS_TOTAL, JOB_READS_TOTAL, JOB_WAITERS,
    L1_OVERSIZE_TOTAL, L2_DURATION_SECONDS, L2_ERRORS_TOTAL, LOAD_DURATION_SECONDS, LOADS_TOTAL,
    REQUESTS_TOTAL, SENTINEL_PRIMARY_KNOWN, SENTINEL_PRIMARY_SWITCHES_TOTAL,
    SNAPSHOT_REFRESH_DURATION_SECONDS, SNAPSHOT_REFRESH_TOTAL,
};

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
