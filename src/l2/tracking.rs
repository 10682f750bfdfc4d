//! The invalidation listener: keeps every instance's L1 coherent with Redis.
//!
//! One dedicated RESP3 connection per process runs `CLIENT TRACKING ON BCAST
//! PREFIX ... NOLOOP` for the registered keyspaces, so Redis pushes the name
//! of every key another client changes (SET, SETEX, DEL, EXPIRE, expiry,
//! eviction) and a key-less push on FLUSHDB/FLUSHALL. Each push ends the L1
//! entry (and any fill in flight) of that key in this process. With no
//! keyspace registered the listener waits: BCAST without a prefix would
//! track every key in the database (BullMQ's included).
//!
//! **Own writes.** This instance's writes (`insert`, `invalidate`, a
//! loader's write-back) are sent on this same connection, and `NOLOOP`
//! keeps Redis from pushing them back, so a value just written stays in L1
//! (Redis >= 7 sends the invalidation of a client's own write *after* its
//! reply, so without NOLOOP every write would evict itself). Reads stay on
//! the main connection: the invalidation generation, noted before the GET
//! is sent, already closes the push-before-reply race there, and keeping
//! reads off this connection keeps large replies from delaying pushes. We
//! chose this over rueidis's one-connection design, which would move every
//! read onto the listener's connection, for that reason.
//!
//! **Trust is a lease** ([`super::hub`]): a PING is sent every
//! `min(ping_interval, grace / 3)`; when its PONG is read, every push Redis
//! queued before it has been read too (replies and pushes arrive in order
//! on one connection), and is applied before the lease is renewed to the
//! PING's send time plus the grace. A change made at time `t` is therefore
//! never served after `t + max(push latency, grace)`, whatever happens to the
//! connection, a silent loss included. A PING unanswered within `timeout`
//! ends the connection; after reconnecting, tracking is enabled again
//! *before* L1 is trusted, and everything cached is dropped. On RESP3 the
//! "PING" is `HELLO` (see [`super::session`]): a server that answers it as
//! a replica renews nothing, and the connections move off it.
//!
//! The push channel is bounded ([`PUSH_CAPACITY`]); when it overflows, every
//! L1 entry is dropped before the lease is renewed.
//!
//! In sentinel mode the listener connects to the primary the follower
//! ([`super::sentinel`]) names, and every renewal of the lease also checks
//! that this primary is still the current one: after a switch nothing is
//! trusted until tracking runs on the new primary.
//!
//! Where Redis refuses `CLIENT TRACKING` (some managed services and
//! proxies), or refuses `HELLO 3` (RESP2-only servers and proxies), the
//! listener says so once and falls back to pub/sub: warmcache writers
//! publish the keys they change on [`INVALIDATION_CHANNEL`], and L1 entries
//! live at most `fallback_l1_ttl`, since other writers do not publish.

use std::sync::Arc;
use std::time::Duration;

use redis::Client;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::hub::{Hub, InvalidationMode, WriteRoute};
use super::push::apply;
use super::session::{Pong, Session, connect_resp2, connect_resp3, refuses_resp3};

/// The pub/sub channel of the fallback mode. Payload: a full Redis key.
pub const INVALIDATION_CHANNEL: &str = "warmcache:invalidations";

/// Pushes buffered between the connection and the listener; past this,
/// pushes are dropped and every L1 entry with them.
pub const PUSH_CAPACITY: usize = 4096;

/// Tuning of the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidationOptions {
    /// How long after the last answered PING was sent L1 entries are still
    /// served (zero: L1 is never served while the listener runs).
    pub grace: Duration,
    /// Longest L1 life in the pub/sub fallback.
    pub fallback_l1_ttl: Duration,
    /// Longest time between two PINGs (they are sent at least three times
    /// per grace period, so a healthy connection never lets the lease lapse).
    pub ping_interval: Duration,
    /// Time bound of connecting and of each PING on the connection.
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

impl InvalidationOptions {
    /// The time between PINGs: a third of the grace, at most `ping_interval`.
    pub fn effective_ping_interval(&self) -> Duration {
        let third = self.grace / 3;
        if third.is_zero() {
            self.ping_interval
        } else {
            third.min(self.ping_interval).max(Duration::from_millis(1))
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

/// The two clients the listener may use: RESP3 (tracking) and RESP2
/// (pub/sub fallback for servers that refuse `HELLO 3`).
#[derive(Clone)]
pub(crate) struct ListenerClients {
    pub(crate) resp3: Client,
    pub(crate) resp2: Client,
    /// In cluster mode: every primary is tracked ([`super::topology`]).
    pub(crate) cluster: Option<super::cluster::ClusterClients>,
    /// In sentinel mode: the primary now, instead of `resp3`/`resp2`.
    pub(crate) sentinel: Option<Arc<super::sentinel::Follower>>,
}

impl InvalidationListener {
    pub(crate) fn spawn(
        clients: ListenerClients,
        hub: Arc<Hub>,
        options: InvalidationOptions,
    ) -> Self {
        let cancel = CancellationToken::new();
        hub.set_listening(options.fallback_l1_ttl);
        let task = match clients.cluster {
            Some(cluster) => tokio::spawn(super::topology::run_cluster(
                cluster,
                Arc::clone(&hub),
                options,
                cancel.clone(),
            )),
            None => tokio::spawn(run(clients, Arc::clone(&hub), options, cancel.clone())),
        };
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

    /// Whether L1 entries may be served right now (the lease runs).
    pub fn l1_trusted(&self) -> bool {
        self.hub.l1_trusted(Instant::now())
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
        self.hub.disconnected();
    }
}

async fn run(
    clients: ListenerClients,
    hub: Arc<Hub>,
    options: InvalidationOptions,
    cancel: CancellationToken,
) {
    let mut backoff = Duration::from_millis(50);
    let mut fallback_announced = false;
    let mut resp2_only = false;
    loop {
        let _ = hub.take_reconnect_request();
        let (epoch, prefixes) = hub.prefixes();
        if prefixes.is_empty() {
            // BCAST without PREFIX would track every key: wait for a cache.
            tokio::select! {
                () = cancel.cancelled() => return,
                () = hub.woken() => continue,
            }
        }
        // Sentinel mode: the clients of the primary now (waiting for one).
        let primary = match &clients.sentinel {
            Some(follower) => match follower.primary(&cancel).await {
                Some(primary) => Some(primary),
                None => return,
            },
            None => None,
        };
        let (resp3, resp2) = primary
            .as_ref()
            .map_or((&clients.resp3, &clients.resp2), |p| (&p.resp3, &p.resp2));
        // Whether that primary is still current (a switch withdraws the lease).
        let current = || match (&clients.sentinel, &primary) {
            (Some(follower), Some(primary)) => follower.confirm(primary.epoch),
            _ => true,
        };
        let attempt = async {
            if resp2_only {
                connect_resp2(resp2).await
            } else {
                connect_resp3(resp3, &prefixes, options.timeout).await
            }
        };
        let connected = tokio::select! {
            () = cancel.cancelled() => return,
            result = tokio::time::timeout(options.timeout * 2, attempt) => result,
        };
        let mut session = match connected {
            Ok(Ok(session)) => session,
            Ok(Err(e)) if !resp2_only && refuses_resp3(&e) => {
                resp2_only = true;
                tracing::debug!(error = %e, "HELLO 3 refused");
                continue;
            }
            failed => {
                match failed {
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "invalidation listener cannot connect; retrying")
                    }
                    _ => tracing::debug!("invalidation listener timed out connecting; retrying"),
                }
                if let Some(follower) = &clients.sentinel {
                    follower.suspect();
                }
                let Some(next) = pause(&cancel, &hub, backoff).await else {
                    return;
                };
                backoff = next;
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        if session.mode == InvalidationMode::PubSub && !fallback_announced {
            fallback_announced = true;
            tracing::warn!(
                channel = INVALIDATION_CHANNEL,
                resp2 = resp2_only,
                fallback_l1_ttl_ms = options.fallback_l1_ttl.as_millis() as u64,
                "redis refuses CLIENT TRACKING (or RESP3); falling back to pub/sub invalidation: changes made by \
                 writers other than warmcache reach this instance's memory only when entries expire"
            );
        }
        // Whatever was cached may have changed while nobody listened.
        hub.invalidate_all();
        if !hub.renew(session.since, options.grace, epoch) || !current() {
            continue;
        }
        hub.connected(
            session.mode,
            session.tracking_connection().map(WriteRoute::One),
        );
        if !current() {
            // The primary changed meanwhile: no write may go to this one.
            hub.disconnected();
            continue;
        }
        tracing::info!(mode = ?session.mode, prefixes = ?prefixes, "invalidation listener connected");

        let renew = |sent| hub.renew(sent, options.grace, epoch) && current();
        let lost = listen(&hub, &mut session, options, epoch, &cancel, &renew).await;
        hub.disconnected();
        match lost {
            Lost::Cancelled => return,
            Lost::Retrack => {
                tracing::info!("tracking again (a keyed cache was added, or the primary changed)");
            }
            Lost::Connection(why) => tracing::warn!(
                reason = why,
                grace_ms = options.grace.as_millis() as u64,
                "invalidation connection lost; L1 is trusted at most the grace period past the last answered PING"
            ),
        }
    }
}

/// [`wait`], ended early when the hub is woken (a new primary, a new cache).
async fn pause(cancel: &CancellationToken, hub: &Hub, backoff: Duration) -> Option<Duration> {
    tokio::select! {
        () = hub.woken() => Some(backoff),
        next = wait(cancel, backoff) => next,
    }
}

/// Sleeps `backoff` (or stops on cancel) and returns the next backoff.
pub(super) async fn wait(cancel: &CancellationToken, backoff: Duration) -> Option<Duration> {
    tokio::select! {
        () = cancel.cancelled() => None,
        () = tokio::time::sleep(backoff) => Some((backoff * 2).min(Duration::from_secs(1))),
    }
}

pub(super) enum Lost {
    Cancelled,
    /// A cache registered: track again with the new prefix set.
    Retrack,
    Connection(&'static str),
}

/// Runs one session until it ends; `renew` is called with the send time of
/// each answered PING, once every push before it is applied (`false`: a
/// cache registered, track again).
pub(super) async fn listen(
    hub: &Hub,
    session: &mut Session,
    options: InvalidationOptions,
    epoch: u64,
    cancel: &CancellationToken,
    renew: &(dyn Fn(Instant) -> bool + Sync),
) -> Lost {
    let interval = options.effective_ping_interval();
    let mut next_ping = Instant::now();
    let mut in_flight: Option<(Instant, Pong)> = None;
    loop {
        let wake_at = in_flight
            .as_ref()
            .map_or(next_ping, |(sent, _)| *sent + options.timeout);
        let pong = async {
            match in_flight.as_mut() {
                Some((_, pong)) => pong.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Lost::Cancelled,
            () = hub.woken() => {
                if hub.take_reconnect_request() {
                    return Lost::Connection("reconnect requested (the server answered as a replica, or the primary changed)");
                }
                if hub.registered_since(epoch) {
                    return Lost::Retrack;
                }
            }
            answer = pong => {
                let sent = in_flight.take().map_or(next_ping, |(sent, _)| sent);
                match answer {
                    Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly) => {
                        hub.saw_replica();
                        return Lost::Connection("the server is a replica now (a demoted primary)");
                    }
                    Err(_) => return Lost::Connection("PING failed"),
                    Ok(()) => {}
                }
                // Every push Redis sent before this PONG is in the channel.
                if !session.feed.drain(hub) {
                    return Lost::Connection("disconnected");
                }
                if !renew(sent) {
                    return Lost::Retrack;
                }
                next_ping = sent + interval;
            }
            events = session.feed.next() => {
                if !apply(hub, events) {
                    return Lost::Connection("disconnected");
                }
            }
            () = tokio::time::sleep_until(wake_at) => {
                if in_flight.is_some() {
                    return Lost::Connection("no answer to PING");
                }
                in_flight = Some((Instant::now(), session.feed.ping()));
            }
        }
    }
}
