//! One Lua script that reads a job's state and hash atomically.
//!
//! The state checks are those of BullMQ 5's `getStateV2` script
//! (`src/commands/getStateV2-8.lua`): member of the sorted sets `completed`,
//! `failed`, `delayed`, `prioritized`, of the lists `active`, `wait`,
//! `paused` (which reads as `waiting`), or of the sorted set
//! `waiting-children`, in that order; else `unknown`. In the same script the
//! job key's type and the hash fields warmcache answers with are read, so
//! state and fields always belong to one moment. It needs `LPOS` (Redis
//! 6.0.6 or later, as BullMQ's V2 script does). Every key of the queue
//! shares the prefix, so a hash-tagged prefix keeps them in one slot.

use redis::Value;

use super::Keys;
use super::job::{FIELDS, RawJob};
use crate::l2::{L2Error, RedisHandle};
use crate::tier::CacheId;

/// KEYS: completed, failed, delayed, prioritized, active, wait, paused,
/// waiting-children, the job hash. ARGV: job id, then the fields to read.
const SCRIPT: &str = r#"
local id = ARGV[1]
local state = "unknown"
if redis.call("ZSCORE", KEYS[1], id) then state = "completed"
elseif redis.call("ZSCORE", KEYS[2], id) then state = "failed"
elseif redis.call("ZSCORE", KEYS[3], id) then state = "delayed"
elseif redis.call("ZSCORE", KEYS[4], id) then state = "prioritized"
elseif redis.call("LPOS", KEYS[5], id) then state = "active"
elseif redis.call("LPOS", KEYS[6], id) then state = "waiting"
elseif redis.call("LPOS", KEYS[7], id) then state = "waiting"
elseif redis.call("ZSCORE", KEYS[8], id) then state = "waiting-children"
end
local key_type = redis.call("TYPE", KEYS[9])["ok"]
local reply = {state, key_type}
if key_type == "hash" then
  local values = redis.call("HMGET", KEYS[9], unpack(ARGV, 2))
  for i = 1, #ARGV - 1 do reply[i + 2] = values[i] end
end
return reply
"#;

/// The state-set suffixes, in the script's KEYS order.
const STATE_KEYS: [&str; 8] = [
    "completed",
    "failed",
    "delayed",
    "prioritized",
    "active",
    "wait",
    "paused",
    "waiting-children",
];

/// Reads the job `id`: state, key type and fields (`data` only if asked).
pub(crate) async fn read(
    redis: &RedisHandle,
    keys: &Keys,
    id: &CacheId,
    with_data: bool,
) -> Result<RawJob, L2Error> {
    let mut key_names: Vec<String> = STATE_KEYS.iter().map(|s| keys.key(s)).collect();
    key_names.push(keys.key(id.as_str()));
    let key_refs: Vec<&str> = key_names.iter().map(String::as_str).collect();
    let wanted = if with_data {
        &FIELDS[..]
    } else {
        &FIELDS[..FIELDS.len() - 1]
    };
    let mut args = Vec::with_capacity(wanted.len() + 1);
    args.push(id.as_str());
    args.extend_from_slice(wanted);
    let reply: Vec<Value> = redis.eval(SCRIPT, &key_refs, &args).await?;
    let mut values = reply.into_iter().map(|v| text(&v));
    let mut raw = RawJob {
        state: values.next().flatten().unwrap_or_default(),
        key_type: values.next().flatten().unwrap_or_default(),
        ..RawJob::default()
    };
    for (slot, value) in raw.fields.iter_mut().zip(values) {
        *slot = value;
    }
    Ok(raw)
}

/// A bulk or simple string as text; nil (a missing field) as `None`.
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        Value::Okay => Some("OK".to_owned()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}
