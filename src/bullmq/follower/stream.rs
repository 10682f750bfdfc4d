//! The two stream commands of the follower, `XINFO STREAM` and
//! `XREAD BLOCK`, and their replies (RESP3 maps or RESP2 arrays).

use std::fmt;
use std::time::Duration;

use redis::Value;
use redis::aio::MultiplexedConnection;

use super::{FollowerOptions, value_text};

/// A stream entry id, `ms-seq`; `0-0` by default (before every entry).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct StreamId {
    pub(super) ms: u64,
    pub(super) seq: u64,
}

impl StreamId {
    pub(super) fn parse(text: &str) -> Option<Self> {
        let (ms, seq) = text.split_once('-').unwrap_or((text, "0"));
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One event.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) id: StreamId,
    fields: Vec<(String, String)>,
}

impl Entry {
    pub(super) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// What `XINFO STREAM` tells the follower.
#[derive(Debug, Clone, Copy)]
pub(super) struct StreamInfo {
    pub(super) first: Option<StreamId>,
    pub(super) last_generated: StreamId,
    pub(super) entries_added: u64,
}

/// `XINFO STREAM key`; `None` when the stream does not exist.
pub(super) async fn info(
    connection: &mut MultiplexedConnection,
    key: &str,
    timeout: Duration,
) -> Result<Option<StreamInfo>, String> {
    let command = redis::cmd("XINFO").arg("STREAM").arg(key).to_owned();
    let reply = tokio::time::timeout(timeout, command.query_async::<Value>(connection)).await;
    let reply = match reply {
        Err(_) => return Err("no answer to XINFO STREAM".to_owned()),
        Ok(Err(e)) if e.code() == Some("ERR") && e.to_string().contains("no such key") => {
            return Ok(None);
        }
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(reply)) => reply,
    };
    let pairs = pairs(&reply);
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let id_of =
        |value: Option<&Value>| value.and_then(value_text).and_then(|t| StreamId::parse(&t));
    let first = match get("first-entry") {
        Some(Value::Array(entry)) => id_of(entry.first()),
        _ => None,
    };
    Ok(Some(StreamInfo {
        first,
        last_generated: id_of(get("last-generated-id")).unwrap_or_default(),
        entries_added: match get("entries-added") {
            Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        },
    }))
}

/// `XREAD COUNT n BLOCK ms STREAMS key last`: the entries after `last`,
/// none when the block ran out.
pub(super) async fn read(
    connection: &mut MultiplexedConnection,
    key: &str,
    last: StreamId,
    options: FollowerOptions,
) -> Result<Vec<Entry>, String> {
    let command = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(options.count)
        .arg("BLOCK")
        .arg(options.block.as_millis() as u64)
        .arg("STREAMS")
        .arg(key)
        .arg(last.to_string())
        .to_owned();
    let bound = options.block + options.timeout;
    let reply = match tokio::time::timeout(bound, command.query_async::<Value>(connection)).await {
        Err(_) => return Err("no answer to XREAD within its bound".to_owned()),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(reply)) => reply,
    };
    // One stream: {key: entries} (RESP3) or [[key, entries]] (RESP2).
    let streams: Vec<&Value> = match &reply {
        Value::Map(map) => map.iter().map(|(_, entries)| entries).collect(),
        Value::Array(streams) => streams
            .iter()
            .filter_map(|s| match s {
                Value::Array(pair) => pair.get(1),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut entries = Vec::new();
    for stream in streams {
        let Value::Array(items) = stream else {
            continue;
        };
        for item in items {
            let Value::Array(parts) = item else { continue };
            let Some(id) = parts
                .first()
                .and_then(value_text)
                .and_then(|t| StreamId::parse(&t))
            else {
                continue;
            };
            let fields = parts.get(1).map(pairs).unwrap_or_default();
            entries.push(Entry {
                id,
                fields: fields
                    .into_iter()
                    .filter_map(|(k, v)| Some((k, value_text(v)?)))
                    .collect(),
            });
        }
    }
    Ok(entries)
}

/// A map reply, or a flat array of alternating names and values.
fn pairs(value: &Value) -> Vec<(String, &Value)> {
    match value {
        Value::Map(map) => map
            .iter()
            .filter_map(|(k, v)| Some((value_text(k)?, v)))
            .collect(),
        Value::Array(flat) => flat
            .chunks_exact(2)
            .filter_map(|pair| Some((value_text(&pair[0])?, &pair[1])))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_order_like_redis() {
        let a = StreamId::parse("1700000000000-5").expect("valid");
        let b = StreamId::parse("1700000000001-0").expect("valid");
        assert!(a < b);
        assert_eq!(a.to_string(), "1700000000000-5");
        assert_eq!(StreamId::parse("12"), Some(StreamId { ms: 12, seq: 0 }));
        assert_eq!(StreamId::parse("x-1"), None);
        assert!(StreamId::default() < a);
    }
}
