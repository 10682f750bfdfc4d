//! `ReasoningJob` and `JobStatus`: the record of `reasoning_job:{jobId}`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::fields::{Field, FieldReader, FieldWriter, OtherFields};
use super::time::RecordTime;

const JOB_ID: Field = Field {
    name: "jobId",
    expected: "a string",
};
const STATUS: Field = Field {
    name: "status",
    expected: "a string",
};
const RESULT: Field = Field {
    name: "result",
    expected: "any JSON value",
};
const ERROR: Field = Field {
    name: "error",
    expected: "a string",
};
const TIME: &str = "a time (an ISO 8601 string or epoch milliseconds)";
const ADDED_AT: Field = Field {
    name: "addedAt",
    expected: TIME,
};
const STARTED_AT: Field = Field {
    name: "startedAt",
    expected: TIME,
};
const FINISHED_AT: Field = Field {
    name: "finishedAt",
    expected: TIME,
};

/// Where a reasoning job is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Queued (`waiting`).
    Waiting,
    /// Being worked on (`active`).
    Active,
    /// Done, with a result (`completed`).
    Completed,
    /// Done, with an error (`failed`).
    Failed,
    /// A status this version does not know (e.g. BullMQ's `delayed`), kept
    /// as written.
    Other(String),
}

impl JobStatus {
    /// The status as written.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Waiting => "waiting",
            Self::Active => "active",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Other(text) => text,
        }
    }

    /// Reads a status; any string is one.
    pub fn parse(text: &str) -> Self {
        match text {
            "waiting" => Self::Waiting,
            "active" => Self::Active,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl Serialize for JobStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Self::parse(&text))
    }
}

/// A reasoning job's state. Only `jobId` and `status` are required.
#[derive(Debug, Clone, PartialEq)]
pub struct ReasoningJob {
    /// The job (`jobId`).
    pub job_id: String,
    /// Its status (`status`).
    pub status: JobStatus,
    /// The output of a completed job, any JSON (`result`).
    pub result: Option<serde_json::Value>,
    /// Why a failed job failed (`error`).
    pub error: Option<String>,
    /// Queued at (`addedAt`).
    pub added_at: Option<RecordTime>,
    /// Started at (`startedAt`).
    pub started_at: Option<RecordTime>,
    /// Finished at (`finishedAt`).
    pub finished_at: Option<RecordTime>,
    /// Every other field, as written.
    pub other: OtherFields,
}

impl ReasoningJob {
    /// A job with the two required fields and nothing else.
    pub fn new(job_id: impl Into<String>, status: JobStatus) -> Self {
        Self {
            job_id: job_id.into(),
            status,
            result: None,
            error: None,
            added_at: None,
            started_at: None,
            finished_at: None,
            other: OtherFields::new(),
        }
    }
}

impl super::Record for ReasoningJob {
    const ID: Field = JOB_ID;
    const FIELDS: &'static [Field] = &[
        JOB_ID,
        STATUS,
        RESULT,
        ERROR,
        ADDED_AT,
        STARTED_AT,
        FINISHED_AT,
    ];

    fn other(&self) -> &OtherFields {
        &self.other
    }
}

impl Serialize for ReasoningJob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = FieldWriter::new(&self.other);
        out.field(JOB_ID, &self.job_id)?;
        out.field(STATUS, &self.status)?;
        out.optional(RESULT, self.result.as_ref())?;
        out.optional(ERROR, self.error.as_ref())?;
        out.optional(ADDED_AT, self.added_at.as_ref())?;
        out.optional(STARTED_AT, self.started_at.as_ref())?;
        out.optional(FINISHED_AT, self.finished_at.as_ref())?;
        out.write(serializer)
    }
}

impl<'de> Deserialize<'de> for ReasoningJob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut fields = FieldReader::read(deserializer)?;
        Ok(Self {
            job_id: fields.required(JOB_ID)?,
            status: fields.required(STATUS)?,
            result: fields.optional(RESULT),
            error: fields.optional(ERROR),
            added_at: fields.optional(ADDED_AT),
            started_at: fields.optional(STARTED_AT),
            finished_at: fields.optional(FINISHED_AT),
            other: fields.finish(),
        })
    }
}
