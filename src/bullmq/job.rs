//! A job as `GET /jobs/{jobId}` answers it, decoded from BullMQ's job hash
//! the way BullMQ's `Job.fromJSON` reads it, and rendered once.

use bytes::Bytes;
use http::HeaderValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::BullmqError;
use crate::fnv::tagged;

/// BullMQ's state names (`Job#getState`); `paused` reads as `waiting`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// In `wait` or `paused`.
    Waiting,
    /// Being processed.
    Active,
    /// Waiting for its delay (or a retry's backoff) to pass.
    Delayed,
    /// Waiting, ordered by priority.
    Prioritized,
    /// Waiting for its child jobs.
    WaitingChildren,
    /// Done, with a return value.
    Completed,
    /// Done, out of attempts.
    Failed,
}

impl JobState {
    /// The state a `getState` script answered; `None` for `unknown`.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "waiting" => Self::Waiting,
            "active" => Self::Active,
            "delayed" => Self::Delayed,
            "prioritized" => Self::Prioritized,
            "waiting-children" => Self::WaitingChildren,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    /// Completed or failed: nothing changes it any more but a retry.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

/// The answer about one job. Field names match `reasoning_job` records
/// (camelCase; absent fields left out), so a final answer is stored as is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobAnswer {
    /// The job id.
    pub job_id: String,
    /// Its state.
    pub status: JobState,
    /// The parsed `returnvalue` of a completed job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// `failedReason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `timestamp`: when it was added, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_at: Option<i64>,
    /// `processedOn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    /// `finishedOn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    /// The parsed `progress` (a number or any JSON; 0 when never reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Value>,
    /// `atm`: attempts made (failed or completed ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts_made: Option<u64>,
    /// The job's `data`, only when exposing it is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// The hash fields the state script returns, in its order.
pub(crate) const FIELDS: [&str; 8] = [
    "timestamp",
    "processedOn",
    "finishedOn",
    "progress",
    "returnvalue",
    "failedReason",
    "atm",
    "data",
];

/// What the state script found: the state name, the key's type, and the
/// values of [`FIELDS`] (`data` only when asked for).
#[derive(Debug, Default)]
pub(crate) struct RawJob {
    pub(crate) state: String,
    pub(crate) key_type: String,
    pub(crate) fields: [Option<String>; 8],
}

impl RawJob {
    /// Decodes as BullMQ would; `None` for a job BullMQ does not know (no
    /// hash, or in no state set).
    pub(crate) fn and_then_decode(
        self,
        id: &crate::tier::CacheId,
    ) -> Result<Option<JobAnswer>, BullmqError> {
        match self.key_type.as_str() {
            "none" => return Ok(None),
            "hash" => {}
            _ => {
                return Err(BullmqError::Malformed {
                    field: "type",
                    reason: format!("the key is a {}, not a hash", self.key_type),
                });
            }
        }
        let Some(status) = JobState::parse(&self.state) else {
            return Ok(None);
        };
        let [
            timestamp,
            processed_on,
            finished_on,
            progress,
            returnvalue,
            failed_reason,
            atm,
            data,
        ] = self.fields;
        let added_at = Some(integer("timestamp", timestamp.as_deref())?.ok_or_else(|| {
            BullmqError::Malformed {
                field: "timestamp",
                reason: "missing".to_owned(),
            }
        })?);
        Ok(Some(JobAnswer {
            job_id: id.as_str().to_owned(),
            status,
            result: json("returnvalue", returnvalue.as_deref())?,
            error: failed_reason,
            added_at,
            started_at: integer("processedOn", processed_on.as_deref())?,
            finished_at: integer("finishedOn", finished_on.as_deref())?,
            // `JSON.parse(json.progress || '0')`.
            progress: Some(json("progress", progress.as_deref())?.unwrap_or(Value::from(0))),
            attempts_made: Some(integer("atm", atm.as_deref())?.unwrap_or(0).max(0) as u64),
            data: json("data", data.as_deref())?,
        }))
    }
}

fn integer(field: &'static str, value: Option<&str>) -> Result<Option<i64>, BullmqError> {
    match value {
        None | Some("") => Ok(None),
        Some(text) => text
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| BullmqError::Malformed {
                field,
                reason: "not a whole number".to_owned(),
            }),
    }
}

fn json(field: &'static str, value: Option<&str>) -> Result<Option<Value>, BullmqError> {
    match value {
        None | Some("") => Ok(None),
        Some(text) => serde_json::from_str(text)
            .map(Some)
            .map_err(|e| BullmqError::Malformed {
                field,
                reason: format!("not JSON ({})", category(&e)),
            }),
    }
}

/// The kind of a JSON error, without the text (which may quote the value).
fn category(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "io",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "data",
        serde_json::error::Category::Eof => "truncated",
    }
}

/// An answer rendered once: its JSON body and ETag.
#[derive(Debug)]
pub(crate) struct Rendered {
    pub(crate) answer: JobAnswer,
    pub(crate) body: Bytes,
    #[cfg_attr(not(feature = "service"), allow(dead_code))] // the service's job routes read it
    pub(crate) etag: HeaderValue,
    pub(crate) is_final: bool,
}

impl Rendered {
    pub(crate) fn new(answer: JobAnswer) -> Self {
        // A JobAnswer always serializes (no maps with non-string keys).
        let body = Bytes::from(serde_json::to_vec(&answer).unwrap_or_default());
        Self::from_body(answer, body)
    }

    /// A rendered answer whose body is given (as stored in Redis).
    pub(crate) fn from_body(answer: JobAnswer, body: Bytes) -> Self {
        let (body, etag) = tagged(&body);
        Self {
            etag,
            is_final: answer.status.is_final(),
            answer,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tier::CacheId;

    fn raw(state: &str, key_type: &str, fields: [Option<&str>; 8]) -> RawJob {
        RawJob {
            state: state.to_owned(),
            key_type: key_type.to_owned(),
            fields: fields.map(|f| f.map(str::to_owned)),
        }
    }

    fn id() -> CacheId {
        CacheId::parse("42").expect("valid")
    }

    #[test]
    fn a_completed_hash_decodes_like_bullmq() {
        let job = raw(
            "completed",
            "hash",
            [
                Some("1000"),
                Some("1500"),
                Some("2000"),
                None,
                Some(r#"{"a":1}"#),
                None,
                Some("1"),
                None,
            ],
        );
        let answer = job.and_then_decode(&id()).expect("valid").expect("known");
        assert_eq!(answer.status, JobState::Completed);
        assert_eq!(answer.result, Some(serde_json::json!({ "a": 1 })));
        assert_eq!(answer.progress, Some(Value::from(0)));
        assert_eq!(
            (answer.added_at, answer.started_at, answer.finished_at),
            (Some(1000), Some(1500), Some(2000))
        );
        assert_eq!(answer.attempts_made, Some(1));
        let rendered = Rendered::new(answer);
        assert!(rendered.is_final);
        assert!(
            rendered
                .body
                .starts_with(br#"{"jobId":"42","status":"completed""#)
        );
    }

    #[test]
    fn unknown_state_or_no_hash_is_not_found_and_bad_shapes_are_typed_errors() {
        let none = raw("completed", "none", Default::default());
        assert!(none.and_then_decode(&id()).expect("valid").is_none());
        let stateless = raw(
            "unknown",
            "hash",
            [Some("1"), None, None, None, None, None, None, None],
        );
        assert!(stateless.and_then_decode(&id()).expect("valid").is_none());
        let string = raw("waiting", "string", Default::default());
        assert!(matches!(
            string.and_then_decode(&id()),
            Err(BullmqError::Malformed { field: "type", .. })
        ));
        let bad_time = raw(
            "waiting",
            "hash",
            [Some("soon"), None, None, None, None, None, None, None],
        );
        assert!(matches!(
            bad_time.and_then_decode(&id()),
            Err(BullmqError::Malformed {
                field: "timestamp",
                ..
            })
        ));
        let bad_progress = raw(
            "active",
            "hash",
            [Some("1"), None, None, Some("{"), None, None, None, None],
        );
        assert!(matches!(
            bad_progress.and_then_decode(&id()),
            Err(BullmqError::Malformed {
                field: "progress",
                ..
            })
        ));
    }
}
