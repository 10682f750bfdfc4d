//! Recording a job's final status in `reasoning_job:{jobId}` (24 h), so it
//! outlives BullMQ's `removeOnComplete`.
//!
//! Several instances follow the same stream and readers record what they
//! read, so the write is a compare in Lua: it writes when there is no final
//! record yet, or when the new one comes from the job hash (authoritative)
//! and its `finishedAt` differs (a retried job finished again). A record
//! built from an event alone (the hash already removed) never replaces a
//! final one. The script answers with the record that is stored afterwards,
//! so every instance serves the same bytes (and ETag).

use std::sync::Arc;

use bytes::Bytes;

use super::BullmqJobs;
use super::job::{JobAnswer, Rendered};
use crate::l2::L2Error;
use crate::records::REASONING_JOB;

/// KEYS: the record. ARGV: new JSON, its finishedAt (or ""), TTL seconds,
/// "1" when it comes from the job hash.
const SCRIPT: &str = r#"
local current = redis.call("GET", KEYS[1])
if current then
  local ok, record = pcall(cjson.decode, current)
  if ok and type(record) == "table"
     and (record.status == "completed" or record.status == "failed") then
    if ARGV[4] ~= "1" or tostring(record.finishedAt) == ARGV[2] then
      return {0, current}
    end
  end
end
redis.call("SET", KEYS[1], ARGV[1], "EX", ARGV[3])
return {1, ARGV[1]}
"#;

/// Writes `rendered` (final) unless an equal or better record is there;
/// returns the record stored afterwards. Errors are counted and logged: the
/// next reader or follower event tries again.
pub(crate) async fn write_final(jobs: &BullmqJobs, rendered: &Arc<Rendered>) -> Arc<Rendered> {
    let authoritative = rendered.answer.attempts_made.is_some();
    match store(jobs, &rendered.answer, &rendered.body, authoritative).await {
        Ok((true, _)) => {
            jobs.inner.metrics.records_written.increment(1);
            Arc::clone(rendered)
        }
        Ok((false, stored)) => {
            jobs.inner.metrics.records_kept.increment(1);
            match serde_json::from_slice::<JobAnswer>(&stored) {
                Ok(answer) if stored != rendered.body => {
                    Arc::new(Rendered::from_body(answer, stored))
                }
                _ => Arc::clone(rendered),
            }
        }
        Err(e) => {
            jobs.inner.metrics.records_failed.increment(1);
            tracing::warn!(error = %e, "could not record a final BullMQ job status in reasoning_job");
            Arc::clone(rendered)
        }
    }
}

async fn store(
    jobs: &BullmqJobs,
    answer: &JobAnswer,
    body: &[u8],
    authoritative: bool,
) -> Result<(bool, Bytes), L2Error> {
    let key = format!("{}:{}", REASONING_JOB.name, answer.job_id);
    let body = std::str::from_utf8(body).unwrap_or_default();
    let finished = answer
        .finished_at
        .map(|t| t.to_string())
        .unwrap_or_default();
    let ttl = REASONING_JOB.ttl.as_secs().to_string();
    let flag = if authoritative { "1" } else { "0" };
    let (written, stored): (i64, Vec<u8>) = jobs
        .inner
        .redis
        .eval(SCRIPT, &[&key], &[body, &finished, &ttl, flag])
        .await?;
    Ok((written == 1, Bytes::from(stored)))
}
