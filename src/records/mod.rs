//! The records of the long-TTL keyspaces, read and written as the Node
//! services that own them do.
//!
//! The records belong to the fleet: warmcache reads whatever a Node service
//! stores with `JSON.stringify` and writes what it would have written.
//!
//! * **Reading is tolerant.** Only the fields without which a record means
//!   nothing are required ([`AgeVerification`]: `customerId`, `verified`;
//!   [`CustomerProfile`]: `customerId`; [`ReasoningJob`]: `jobId`,
//!   `status`). A time is an ISO 8601 string or epoch milliseconds
//!   ([`RecordTime`]); an unknown job status is kept ([`JobStatus::Other`]);
//!   an optional field whose value cannot be read (a `null`) reads as absent
//!   and is kept as written. Anything that is not a JSON object with its
//!   required fields is an error ([`RecordError`]), which the tier counts as
//!   a corrupt value.
//! * **Unknown fields are kept** ([`OtherFields`]), with the position of
//!   every field, so a read-modify-write keeps what Node wrote, in order.
//! * **Writing is `JSON.stringify`'s** ([`js_json`]): the same number text
//!   and key order, so a record read and written back unchanged is byte for
//!   byte `JSON.stringify(JSON.parse(text))`.

mod age;
mod fields;
mod job;
pub mod js_json;
mod profile;
mod time;

use std::time::Duration;

pub use age::AgeVerification;
pub(crate) use fields::Field;
pub use fields::{OtherFields, RecordError};
pub use job::{JobStatus, ReasoningJob};
pub use profile::CustomerProfile;
pub use time::{RecordTime, TimeFormat};

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

/// A typed record: what the HTTP layer needs to check a request body.
#[cfg_attr(not(feature = "service"), allow(dead_code))] // the service's job routes read it
pub(crate) trait Record: serde::Serialize + serde::de::DeserializeOwned {
    /// The field that holds the id of the key (`customerId`, `jobId`).
    const ID: Field;
    /// Every typed field.
    const FIELDS: &'static [Field];
    /// The fields the type does not read.
    fn other(&self) -> &OtherFields;

    /// A typed field present with a value the type could not read (other
    /// than `null`, which JavaScript writes for "none").
    fn unreadable_field(&self) -> Option<Field> {
        Self::FIELDS.iter().copied().find(|field| {
            self.other()
                .get(field.name)
                .is_some_and(|value| !value.is_null())
        })
    }
}
