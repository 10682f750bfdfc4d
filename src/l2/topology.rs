//! The invalidation listener in cluster mode: one tracking session per
//! primary, and trust only while every current primary is tracked.
//!
//! Each primary gets its own RESP3 connection with `CLIENT TRACKING ON BCAST
//! PREFIX ...` and its own PING lease, exactly as the standalone listener
//! ([`super::tracking`]). The hub's lease is the **minimum** of the
//! per-primary leases: a key lives on one primary, so L1 may be served only
//! while every primary's pushes are known to be applied.
//!
//! This instance's writes go to the primary of their key's slot on that
//! primary's tracking connection, so `NOLOOP` keeps their pushes from
//! evicting what the write just installed, as in standalone mode. A write
//! the node redirects (`MOVED`, `ASK`: a slot moved or is moving) or
//! refuses as a replica (`READONLY`) is sent again on the cluster
//! connection, which follows redirects; its push then comes back (safe: the
//! copy is re-read).
//!
//! Each primary has its own breaker (the hub maps a key's slot to it), so a
//! primary that is down fails its own keys fast and no others.
//!
//! The topology (`CLUSTER SLOTS`) is compared with the one tracked at every
//! PING interval. A change (a failover, a node added or removed, a slot
//! migrated) withdraws the lease at once and tracking starts again on the
//! current primaries; L1 is dropped and trusted again only once every one of
//! them tracks. A lost session (a primary killed) ends the others too: the
//! lease then lapses by itself, at most the grace after the last PING every
//! primary answered, and tracking resumes once the cluster has promoted a
//! replica and lists it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::{select_all, try_join_all};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::breaker::Breaker;
use super::cluster::{ClusterClients, Node, Topology, fetch_topology};
use super::hub::{Hub, InvalidationMode, WriteRoute};
use super::session::{Session, connect_resp3};
use super::tracking::{InvalidationOptions, Lost, listen, wait};
use super::{BREAKER_COOLDOWN, BREAKER_THRESHOLD};

type Ending<'a> = Pin<Box<dyn Future<Output = Lost> + Send + 'a>>;

pub(super) async fn run_cluster(
    clients: ClusterClients,
    hub: Arc<Hub>,
    options: InvalidationOptions,
    cancel: CancellationToken,
) {
    let metrics = crate::metrics::ClusterGauges::new();
    let mut backoff = Duration::from_millis(50);
    let mut tracked: Option<Topology> = None;
    // One breaker per primary, kept for as long as the node is a primary.
    let mut breakers: HashMap<Node, Arc<Breaker>> = HashMap::new();
    loop {
        let _ = hub.take_reconnect_request();
        let (epoch, prefixes) = hub.prefixes();
        if prefixes.is_empty() {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = hub.woken() => continue,
            }
        }
        let mut connection = clients.connection.clone();
        let attempt = async {
            let topology = fetch_topology(&mut connection, options.timeout).await?;
            let primaries = topology.primaries();
            let (nodes, prefixes) = (&clients.nodes, &prefixes);
            let sessions = try_join_all(primaries.iter().map(|node| async move {
                let client = nodes.client(node)?;
                connect_resp3(&client, prefixes, options.timeout).await
            }))
            .await?;
            Ok::<_, redis::RedisError>((topology, sessions))
        };
        let connected = tokio::select! {
            () = cancel.cancelled() => return,
            result = tokio::time::timeout(options.timeout * 2, attempt) => result,
        };
        let (topology, mut sessions) = match connected {
            Ok(Ok(found)) => found,
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_owned(),
                };
                tracing::debug!(why, "cannot track every cluster primary yet; retrying");
                let Some(next) = wait(&cancel, backoff).await else {
                    return;
                };
                backoff = next;
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        if tracked.as_ref().is_some_and(|t| *t != topology) {
            metrics.topology_changed();
        }
        tracked = Some(topology.clone());
        metrics.primaries(sessions.len());
        hub.set_node_breakers(node_breakers(&topology, &mut breakers));

        // Whatever was cached may have changed while a primary was untracked.
        hub.invalidate_all();
        let leases = Mutex::new(sessions.iter().map(|s| s.since).collect::<Vec<_>>());
        // Renews primary `i`'s lease to `sent`; the hub gets the minimum.
        let renew_primary = |i: usize, sent: Instant| {
            let oldest = {
                let mut leases = leases.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(lease) = leases.get_mut(i) {
                    *lease = sent;
                }
                leases.iter().min().copied().unwrap_or(sent)
            };
            hub.renew(oldest, options.grace, epoch)
        };
        let first = sessions.iter().map(|s| s.since).min();
        if !first.is_some_and(|since| renew_primary(usize::MAX, since)) {
            continue;
        }
        let mode = if sessions
            .iter()
            .all(|s| s.mode == InvalidationMode::Tracking)
        {
            InvalidationMode::Tracking
        } else {
            InvalidationMode::PubSub
        };
        // Own writes go to their slot's primary on its tracking connection,
        // whose NOLOOP keeps their pushes from dropping what they installed.
        let writes = (mode == InvalidationMode::Tracking)
            .then(|| slot_writes(&topology, &sessions))
            .flatten();
        hub.connected(mode, writes);
        metrics.tracked(sessions.len());
        tracing::info!(primaries = sessions.len(), mode = ?mode, "invalidation listener tracks every cluster primary");

        let lost = {
            let renewers: Vec<_> = (0..sessions.len())
                .map(|i| move |sent: Instant| renew_primary(i, sent))
                .collect();
            let mut endings: Vec<Ending<'_>> = sessions
                .iter_mut()
                .zip(&renewers)
                .map(|(session, renew)| -> Ending<'_> {
                    Box::pin(listen(&hub, session, options, epoch, &cancel, renew))
                })
                .collect();
            endings.push(Box::pin(watch_topology(
                clients.connection.clone(),
                &topology,
                options,
                &hub,
            )));
            select_all(endings).await.0
        };
        hub.disconnected();
        metrics.tracked(0);
        match lost {
            Lost::Cancelled => return,
            Lost::Retrack => tracing::info!("a keyed cache was added; tracking its keyspace too"),
            Lost::Connection(why) => tracing::warn!(
                reason = why,
                "cluster invalidation session ended; L1 is not trusted until every primary is tracked again"
            ),
        }
    }
}

/// Each slot range's primary's breaker: the one in `breakers` for a node
/// seen before, a new one for a new primary; nodes no longer primaries are
/// forgotten.
fn node_breakers(
    topology: &Topology,
    breakers: &mut HashMap<Node, Arc<Breaker>>,
) -> Vec<(u16, u16, Arc<Breaker>)> {
    let primaries = topology.primaries();
    breakers.retain(|node, _| primaries.contains(node));
    topology
        .ranges()
        .iter()
        .map(|(first, last, node)| {
            let breaker = breakers
                .entry(node.clone())
                .or_insert_with(|| Arc::new(Breaker::new(BREAKER_THRESHOLD, BREAKER_COOLDOWN)));
            (*first, *last, Arc::clone(breaker))
        })
        .collect()
}

/// Each slot range's primary's tracking connection (`sessions` are in
/// [`Topology::primaries`] order); none unless every range has one.
fn slot_writes(topology: &Topology, sessions: &[Session]) -> Option<WriteRoute> {
    let primaries = topology.primaries();
    let mut ranges = Vec::with_capacity(topology.ranges().len());
    for (first, last, node) in topology.ranges() {
        let session = sessions.get(primaries.binary_search(node).ok()?)?;
        ranges.push((*first, *last, session.tracking_connection()?));
    }
    Some(WriteRoute::BySlot(ranges))
}

/// Polls the topology every PING interval; ends (withdrawing the lease at
/// once) when it differs from `tracked`.
async fn watch_topology(
    mut connection: redis::cluster_async::ClusterConnection,
    tracked: &Topology,
    options: InvalidationOptions,
    hub: &Hub,
) -> Lost {
    let every = options.effective_ping_interval();
    loop {
        tokio::time::sleep(every).await;
        // A failed poll changes nothing: a dead primary's own session ends.
        if let Ok(now) = fetch_topology(&mut connection, options.timeout).await {
            if now != *tracked {
                hub.withdraw();
                return Lost::Connection("the cluster topology changed");
            }
        }
    }
}
