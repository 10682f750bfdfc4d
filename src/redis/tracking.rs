//! The invalidation listener: keeps every instance's L1 coherent with Redis.
//!
//! One dedicated RESP3 connection per process runs `CLIENT TRACKING ON BCAST
//! PREFIX ...` for the registered keyspaces, so Redis pushes the name of every
//! key any client changes (SET, SETEX, DEL, EXPIRE, expiry, eviction) and
//! a key-less push on FLUSHDB/FLUSHALL. Each push ends the L1 entry (and any
//! fill in flight) of that key in this process.
//!
//! While the connection is down, pushes may be lost: L1 is trusted for the
//! configured grace period only. After reconnecting, tracking is enabled
//! again *before* L1 is trusted, and everything cached is dropped (it may
//! have changed meanwhile). A silent network failure is caught by a PING
//! every `ping_interval`.
//!
//! Where Redis refuses `CLIENT TRACKING` (some managed services and proxies),
//! the listener says so once and falls back to pub/sub: warmcache writers
//! publish the keys they change on [`INVALIDATION_CHANNEL`], and L1 entries
//! live at most `fallback_l1_ttl`, since other writers do not publish.

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, PushInfo, PushKind, Value};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::hub::{Hub, InvalidationMode};

/// The pub/sub channel of the fallback mode. Payload: a full Redis key.
pub const INVALIDATION_CHANNEL: &str = "warmcache:invalidations";

/// Tuning of the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidationOptions {
    /// How long L1 entries are still served after the connection is lost
    /// (zero: not at all).
    pub grace: Duration,
    /// Longest L1 life in the pub/sub fallback.
    pub fallback_l1_ttl: Duration,
    /// How often the connection is checked with PING.
    pub ping_interval: Duration,
    /// Time bound of connecting and of each command on the connection.
    pub timeout: Duration,
}

impl Default for InvalidationOptions {
    fn default() -> Self {
        Self {
            grace: Duration::from_millis(500),
            fallback_l1_ttl: Duration::from_secs(5),
            ping_interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
        }
    }
}

/// Handle of the listener task; dropping it stops the task.
#[derive(Debug)]
pub struct InvalidationListener {
    hub: Arc<Hub>,
    task: Option<JoinHandle<()>>,
    cancel: CancellationToken,
    _stop_on_drop: DropGuard,
}

impl InvalidationListener {
    pub(crate) fn spawn(client: Client, hub: Arc<Hub>, options: InvalidationOptions) -> Self {
        let cancel = CancellationToken::new();
        hub.set_listening(options.fallback_l1_ttl);
        let task = tokio::spawn(run(client, Arc::clone(&hub), options, cancel.clone()));
        Self {
            hub,
            task: Some(task),
            _stop_on_drop: cancel.clone().drop_guard(),
            cancel,
        }
    }

    /// How invalidations currently arrive (`Off` while disconnected).
    pub fn mode(&self) -> InvalidationMode {
        if self.hub.is_connected() {
            self.hub.mode()
        } else {
            InvalidationMode::Off
        }
    }

    /// Keys invalidated by pushes so far, over all keyspaces.
    pub fn remote_invalidations(&self) -> u64 {
        self.hub.remote_invalidations()
    }

    /// Stops the task and waits for it.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

async fn run(
    client: Client,
    hub: Arc<Hub>,
    options: InvalidationOptions,
    cancel: CancellationToken,
) {
    let prefixes = hub.prefixes();
    let mut backoff = Duration::from_millis(50);
    let mut fallback_announced = false;
    loop {
        let (tx, mut pushes) = unbounded_channel();
        let config = AsyncConnectionConfig::new()
            .set_push_sender(tx)
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout));
        let connected = tokio::select! {
            () = cancel.cancelled() => return,
            result = connect(&client, &config, &prefixes) => result,
        };
        let (mut connection, mode) = match connected {
            Ok((connection, mode)) => (connection, mode),
            Err(e) => {
                tracing::debug!(error = %e, "invalidation listener cannot connect; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        if mode == InvalidationMode::PubSub && !fallback_announced {
            fallback_announced = true;
            tracing::warn!(
                channel = INVALIDATION_CHANNEL,
                fallback_l1_ttl_ms = options.fallback_l1_ttl.as_millis() as u64,
                "redis refuses CLIENT TRACKING; falling back to pub/sub invalidation: changes made by \
                 writers other than warmcache reach this instance's memory only when entries expire"
            );
        }
        // Whatever was cached may have changed while nobody listened.
        hub.invalidate_all();
        hub.trust(mode);
        tracing::info!(?mode, prefixes = ?prefixes, "invalidation listener connected");

        let lost = listen(&hub, &mut connection, &mut pushes, options, &cancel).await;
        hub.distrust_after(options.grace);
        match lost {
            Lost::Cancelled => return,
            Lost::Connection(why) => tracing::warn!(
                reason = why,
                grace_ms = options.grace.as_millis() as u64,
                "invalidation connection lost; L1 is trusted only for the grace period until it is back"
            ),
        }
    }
}

/// Connects, then enables tracking (or the pub/sub fallback if refused).
async fn connect(
    client: &Client,
    config: &AsyncConnectionConfig,
    prefixes: &[String],
) -> Result<(MultiplexedConnection, InvalidationMode), ::redis::RedisError> {
    let mut connection = client
        .get_multiplexed_async_connection_with_config(config)
        .await?;
    let mut tracking = ::redis::cmd("CLIENT");
    tracking.arg("TRACKING").arg("ON").arg("BCAST");
    for prefix in prefixes {
        tracking.arg("PREFIX").arg(prefix);
    }
    match tracking.query_async::<()>(&mut connection).await {
        Ok(()) => Ok((connection, InvalidationMode::Tracking)),
        // The server answered with an error: it forbids tracking.
        Err(e) if e.code().is_some() => {
            tracing::debug!(error = %e, "CLIENT TRACKING refused");
            connection.subscribe(INVALIDATION_CHANNEL).await?;
            Ok((connection, InvalidationMode::PubSub))
        }
        Err(e) => Err(e),
    }
}

enum Lost {
    Cancelled,
    Connection(&'static str),
}

async fn listen(
    hub: &Hub,
    connection: &mut MultiplexedConnection,
    pushes: &mut UnboundedReceiver<PushInfo>,
    options: InvalidationOptions,
    cancel: &CancellationToken,
) -> Lost {
    let mut ping = tokio::time::interval(options.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Lost::Cancelled,
            push = pushes.recv() => match push {
                None => return Lost::Connection("push channel closed"),
                Some(push) if push.kind == PushKind::Disconnection => return Lost::Connection("disconnected"),
                Some(push) => apply(hub, push),
            },
            _ = ping.tick() => {
                let ping_command = ::redis::cmd("PING");
                let pong = ping_command.query_async::<Value>(connection);
                if !matches!(tokio::time::timeout(options.timeout, pong).await, Ok(Ok(_))) {
                    return Lost::Connection("no answer to PING");
                }
            }
        }
    }
}

/// Applies an invalidation push or a fallback message.
fn apply(hub: &Hub, push: PushInfo) {
    match push.kind {
        PushKind::Invalidate => {
            for value in push.data {
                match value {
                    // FLUSHDB / FLUSHALL: no key list.
                    Value::Nil => hub.invalidate_all(),
                    Value::Array(keys) => keys
                        .iter()
                        .filter_map(as_text)
                        .for_each(|key| hub.invalidate_key(&key)),
                    other => {
                        if let Some(key) = as_text(&other) {
                            hub.invalidate_key(&key);
                        }
                    }
                }
            }
        }
        PushKind::Message => {
            if let Some(key) = push.data.get(1).and_then(as_text) {
                if key == "*" {
                    hub.invalidate_all()
                } else {
                    hub.invalidate_key(&key)
                }
            }
        }
        _ => {}
    }
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}
