//! Decoding what the invalidation connection receives: RESP3 pushes
//! (tracking invalidations, pub/sub messages) and fallback messages, and
//! applying them to the hub.

use redis::{PushInfo, PushKind, Value};

use super::hub::Hub;

/// What one connection event means.
pub(super) enum Event {
    Key(String),
    All,
    Closed,
    Nothing,
}

/// Applies events; `false` once the connection closed.
pub(super) fn apply(hub: &Hub, events: Vec<Event>) -> bool {
    for event in events {
        match event {
            Event::Key(key) => hub.invalidate_key(&key),
            Event::All => hub.invalidate_all(),
            Event::Closed => return false,
            Event::Nothing => {}
        }
    }
    true
}

/// The events of one RESP3 push.
pub(super) fn push_events(push: PushInfo) -> Vec<Event> {
    match push.kind {
        PushKind::Disconnection => vec![Event::Closed],
        PushKind::Invalidate => push
            .data
            .into_iter()
            .flat_map(|value| match value {
                // FLUSHDB / FLUSHALL: no key list.
                Value::Nil => vec![Event::All],
                Value::Array(keys) => keys.iter().filter_map(as_text).map(Event::Key).collect(),
                other => as_text(&other).map(Event::Key).into_iter().collect(),
            })
            .collect(),
        PushKind::Message => match push.data.get(1) {
            Some(Value::BulkString(bytes)) => vec![message_event(bytes)],
            Some(other) => {
                as_text(other).map_or_else(Vec::new, |key| vec![message_event(key.as_bytes())])
            }
            None => Vec::new(),
        },
        _ => vec![Event::Nothing],
    }
}

/// A fallback message: a key, or `*` for everything.
pub(super) fn message_event(payload: &[u8]) -> Event {
    match std::str::from_utf8(payload) {
        Ok("*") => Event::All,
        Ok(key) => Event::Key(key.to_owned()),
        Err(_) => Event::Nothing,
    }
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}
