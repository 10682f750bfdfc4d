//! One connection of the invalidation listener ([`super::tracking`]): RESP3
//! with `CLIENT TRACKING ON BCAST PREFIX ... NOLOOP` (or subscribed to the
//! fallback channel where tracking is refused), or RESP2 subscribed where
//! `HELLO 3` is refused; its pushes arrive through a bounded channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::{FutureExt, StreamExt};
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::{
    AsyncConnectionConfig, Client, ErrorKind, PushInfo, RedisError, ServerErrorKind, Value,
};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{Receiver, channel};
use tokio::time::{Duration, Instant};

use super::hub::{Hub, InvalidationMode};
use super::push::{Event, apply, message_event, push_events};
use super::tracking::{INVALIDATION_CHANNEL, PUSH_CAPACITY};

/// Where invalidations come from on one connection.
pub(super) enum Feed {
    /// RESP3 pushes (tracking or subscribed), through the bounded channel.
    Resp3 {
        pushes: Receiver<PushInfo>,
        overflowed: Arc<AtomicBool>,
        connection: MultiplexedConnection,
    },
    /// RESP2 pub/sub messages.
    Resp2 {
        sink: PubSubSink,
        stream: PubSubStream,
    },
}

pub(super) type Pong =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), RedisError>> + Send>>;

impl Feed {
    pub(super) async fn next(&mut self) -> Vec<Event> {
        match self {
            Self::Resp3 { pushes, .. } => match pushes.recv().await {
                None => vec![Event::Closed],
                Some(push) => push_events(push),
            },
            Self::Resp2 { stream, .. } => match stream.next().await {
                None => vec![Event::Closed],
                Some(msg) => vec![message_event(msg.get_payload_bytes())],
            },
        }
    }

    /// Applies everything already received; `false` if the connection closed.
    pub(super) fn drain(&mut self, hub: &Hub) -> bool {
        loop {
            let events = match self {
                Self::Resp3 {
                    pushes, overflowed, ..
                } => {
                    if overflowed.swap(false, Ordering::AcqRel) {
                        tracing::warn!(
                            capacity = PUSH_CAPACITY,
                            "invalidation pushes overflowed; dropping every L1 entry"
                        );
                        hub.invalidate_all();
                    }
                    match pushes.try_recv() {
                        Ok(push) => push_events(push),
                        Err(_) => return true,
                    }
                }
                Self::Resp2 { stream, .. } => match stream.next().now_or_never() {
                    None => return true,
                    Some(None) => vec![Event::Closed],
                    Some(Some(msg)) => vec![message_event(msg.get_payload_bytes())],
                },
            };
            if !apply(hub, events) {
                return false;
            }
        }
    }

    /// The lease's probe. On RESP3 it is `HELLO` (no arguments: it changes
    /// nothing and answers the server's role, and every ACL user may send
    /// it), which fails with [`ServerErrorKind::ReadOnly`] when the server
    /// says it is a replica: a primary demoted behind the same address
    /// still answers, serves its stale data and pushes nothing it does not
    /// apply, so it must not renew the lease.
    pub(super) fn ping(&self) -> Pong {
        match self {
            Self::Resp3 { connection, .. } => {
                let mut connection = connection.clone();
                Box::pin(async move {
                    let hello = redis::cmd("HELLO")
                        .query_async::<Value>(&mut connection)
                        .await?;
                    if is_replica(&hello) {
                        return Err(RedisError::from((
                            ErrorKind::Server(ServerErrorKind::ReadOnly),
                            "the server is a replica",
                        )));
                    }
                    Ok(())
                })
            }
            Self::Resp2 { sink, .. } => {
                let mut sink = sink.clone();
                Box::pin(async move { sink.ping::<Value>().await.map(drop) })
            }
        }
    }
}

/// One connected session.
pub(super) struct Session {
    pub(super) mode: InvalidationMode,
    pub(super) feed: Feed,
    /// When tracking (or the subscription) was requested.
    pub(super) since: Instant,
}

impl Session {
    /// The connection, when it tracks with `NOLOOP`.
    pub(super) fn tracking_connection(&self) -> Option<MultiplexedConnection> {
        match (&self.mode, &self.feed) {
            (InvalidationMode::Tracking, Feed::Resp3 { connection, .. }) => {
                Some(connection.clone())
            }
            _ => None,
        }
    }
}

/// Whether connecting failed because the server (or a proxy) refuses RESP3.
pub(super) fn refuses_resp3(e: &RedisError) -> bool {
    e.kind() == ErrorKind::RESP3NotSupported
        || (e.code() == Some("ERR") && e.to_string().to_ascii_uppercase().contains("HELLO"))
}

/// Connects over RESP3, then enables tracking (or subscribes if refused).
pub(super) async fn connect_resp3(
    client: &Client,
    prefixes: &[String],
    timeout: Duration,
) -> Result<Session, RedisError> {
    let (tx, pushes) = channel(PUSH_CAPACITY);
    let overflowed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&overflowed);
    let sender = move |push: PushInfo| match tx.try_send(push) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(_)) => {
            flag.store(true, Ordering::Release);
            Ok(())
        }
        Err(TrySendError::Closed(_)) => Err(()),
    };
    let config = AsyncConnectionConfig::new()
        .set_push_sender(sender)
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(None);
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let mut tracking = redis::cmd("CLIENT");
    tracking.arg("TRACKING").arg("ON").arg("BCAST");
    for prefix in prefixes {
        tracking.arg("PREFIX").arg(prefix);
    }
    tracking.arg("NOLOOP");
    let since = Instant::now();
    let mode = match tracking.query_async::<()>(&mut connection).await {
        Ok(()) => InvalidationMode::Tracking,
        // The server answered with an error: it forbids tracking.
        Err(e) if e.code().is_some() => {
            tracing::debug!(error = %e, "CLIENT TRACKING refused");
            connection.subscribe(INVALIDATION_CHANNEL).await?;
            InvalidationMode::PubSub
        }
        Err(e) => return Err(e),
    };
    Ok(Session {
        mode,
        feed: Feed::Resp3 {
            pushes,
            overflowed,
            connection,
        },
        since,
    })
}

/// Subscribes over RESP2 (the server refuses `HELLO 3`).
pub(super) async fn connect_resp2(client: &Client) -> Result<Session, RedisError> {
    let mut pubsub = client.get_async_pubsub().await?;
    let since = Instant::now();
    pubsub.subscribe(INVALIDATION_CHANNEL).await?;
    let (sink, stream) = pubsub.split();
    Ok(Session {
        mode: InvalidationMode::PubSub,
        feed: Feed::Resp2 { sink, stream },
        since,
    })
}

/// Whether a `HELLO` reply names the role `replica` (or `slave`). A reply
/// without a role (a Redis-compatible server or proxy) counts as a primary.
fn is_replica(hello: &Value) -> bool {
    fn text(v: &Value) -> Option<&[u8]> {
        match v {
            Value::BulkString(bytes) => Some(bytes),
            Value::SimpleString(s) => Some(s.as_bytes()),
            _ => None,
        }
    }
    let Value::Map(fields) = hello else {
        return false;
    };
    fields
        .iter()
        .find(|(key, _)| text(key) == Some(b"role".as_slice()))
        .and_then(|(_, role)| text(role))
        .is_some_and(|role| role == b"replica".as_slice() || role == b"slave".as_slice())
}
