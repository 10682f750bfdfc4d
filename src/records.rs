//! The records of the long-TTL keyspaces, as Node services write them.
//!
//! Field names are camelCase and optional fields are left out when absent,
//! so `serde_json` output matches `JSON.stringify` byte for byte. Times are
//! numbers of milliseconds since the epoch (`Date.now()`), or ISO dates as
//! strings, never floats, whose text differs between the two.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A keyspace: the Redis key prefix (`name:`) and the TTL of its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyspace {
    /// The prefix without the colon; also the `cache` label of metrics.
    pub name: &'static str,
    /// Time to live of every key (`SETEX`).
    pub ttl: Duration,
}

/// `age_verification:{customerId}`, 365 days, erased on request (GDPR).
pub const AGE_VERIFICATION: Keyspace = Keyspace {
    name: "age_verification",
    ttl: Duration::from_secs(365 * 24 * 3600),
};
/// `customer_profile:{customerId}`, 5 minutes, replaced on a profile update.
pub const CUSTOMER_PROFILE: Keyspace = Keyspace {
    name: "customer_profile",
    ttl: Duration::from_secs(5 * 60),
};
/// `reasoning_job:{jobId}`, 24 hours, replaced when the job's status changes.
pub const REASONING_JOB: Keyspace = Keyspace {
    name: "reasoning_job",
    ttl: Duration::from_secs(24 * 3600),
};

/// The result of an age check of one customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgeVerification {
    /// The customer.
    pub customer_id: String,
    /// Whether the check passed.
    pub verified: bool,
    /// How the age was checked, e.g. `id_document`, `credit_card`.
    pub method: String,
    /// When, in milliseconds since the epoch.
    pub verified_at: i64,
    /// `YYYY-MM-DD`, when the check recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    /// The age threshold proven (e.g. 18 or 21), when the birth date is not kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_over: Option<u8>,
}

/// Where a reasoning job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Queued.
    Waiting,
    /// Being worked on.
    Active,
    /// Done, with a result.
    Completed,
    /// Done, with an error.
    Failed,
}

/// A reasoning job's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningJob {
    /// The job.
    pub job_id: String,
    /// Its status.
    pub status: JobStatus,
    /// The output of a completed job (any JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why a failed job failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Queued at, milliseconds since the epoch; absent when the writer did
    /// not know it (a BullMQ job already removed when its end was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_at: Option<i64>,
    /// Started at, when it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    /// Finished at, when it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
}
