//! The cluster soak's faults (`tests/soak.rs` runs them through
//! `schedule::schedule`), on a real 3-primary, 3-replica Redis Cluster with
//! no proxy in front (nodes announce their own addresses):
//!
//! - a graceful `CLUSTER FAILOVER` on the replica of a random primary;
//! - a primary killed (SIGKILL) once its replica has all its writes
//!   (`CLIENT PAUSE WRITE` on it until the replica's offset equals its own),
//!   so the replica the cluster promotes loses nothing acknowledged; the
//!   killed node is then restarted (empty, no `dump.rdb`) and rejoins as
//!   the promoted one's replica, so every primary has a replica again;
//! - a slot holding a soak key migrated to another primary while traffic
//!   runs (`MIGRATE` moves its keys);
//! - `CLIENT PAUSE` on one primary, `CLIENT KILL` of its tracking
//!   connections, and a slow loader, as on one address.
//!
//! Waits are bounded polls; when one runs out the fault is skipped or, if
//! data may really be gone (a killed primary that no replica replaced
//! comes back empty), the history gets an `Action::DataLoss`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::admin::{
    caught_up, client_pause, command, is_primary, kill_tracking, linked_to, restart_server,
    sync_at_once,
};
use super::fleet::{Run, soak_key};
use super::schedule::{Faults, poll_until};
use super::support::cluster::{NodeLine, RedisCluster, move_slot, parse_nodes};
use super::support::history::Action;

/// The faults the cluster schedule draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum ClusterFault {
    Failover,
    KillPrimary,
    MigrateSlot,
    ClientPause,
    KillTracking,
    SlowLoader,
}

/// Long enough for the cluster to detect a dead primary and promote its
/// replica (about 2.5 s with the 1 s `cluster-node-timeout`) on a loaded
/// machine, or for a restarted node to sync.
const RECOVERY: Duration = Duration::from_secs(20);

/// The cluster the fleet runs on.
pub(super) struct Cluster {
    /// The nodes (a `Mutex`: a kill or restart needs them mutably, from a
    /// blocking task; held for no `await`).
    pub(super) cluster: Arc<Mutex<RedisCluster>>,
    /// Every node's port (fixed: a restart keeps its port).
    ports: Vec<u16>,
}

impl Cluster {
    pub(super) async fn new(cluster: Arc<Mutex<RedisCluster>>) -> Self {
        let ports: Vec<u16> = cluster
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .nodes
            .iter()
            .map(|node| node.port())
            .collect();
        for &port in &ports {
            sync_at_once(port).await;
        }
        Self { cluster, ports }
    }

    /// The answer of the first node that answers `args`.
    async fn ask(&self, args: &[&str]) -> String {
        for &port in &self.ports {
            let answer = command(port, args).await;
            if !answer.is_empty() {
                return answer;
            }
        }
        String::new()
    }

    /// `CLUSTER NODES` as the first node that answers sees it.
    async fn topology(&self) -> Vec<NodeLine> {
        parse_nodes(&self.ask(&["CLUSTER", "NODES"]).await)
    }

    /// `(primary, replica)` ports of each primary with a replica up.
    async fn pairs(&self) -> Vec<(u16, u16)> {
        let nodes = self.topology().await;
        nodes
            .iter()
            .filter(|p| p.is_healthy_primary() && !p.slots.is_empty())
            .filter_map(|p| {
                let replica = nodes.iter().find(|r| {
                    r.flags.contains("slave") && !r.flags.contains("fail") && r.primary == p.id
                })?;
                Some((p.port, replica.port))
            })
            .collect()
    }

    /// A random primary's port.
    async fn any_primary(&self, rng: &mut fastrand::Rng) -> Option<u16> {
        let primaries: Vec<u16> = self
            .topology()
            .await
            .into_iter()
            .filter(|p| p.is_healthy_primary() && !p.slots.is_empty())
            .map(|p| p.port)
            .collect();
        (!primaries.is_empty()).then(|| primaries[rng.usize(0..primaries.len())])
    }

    /// Whether every node but `except` sees `port` as a primary serving slots.
    async fn all_see_primary(&self, port: u16, except: u16) -> bool {
        for &node in self.ports.iter().filter(|&&p| p != except) {
            let nodes = parse_nodes(&command(node, &["CLUSTER", "NODES"]).await);
            if !nodes
                .iter()
                .any(|n| n.port == port && n.is_healthy_primary() && !n.slots.is_empty())
            {
                return false;
            }
        }
        true
    }

    /// The graceful failover: the replica asks its primary to pause, takes
    /// everything, and is promoted; the old primary becomes its replica.
    async fn failover(&self, rng: &mut fastrand::Rng) -> Option<String> {
        let pairs = self.pairs().await;
        let &(primary, replica) = pairs.get(rng.usize(0..pairs.len().max(1)))?;
        if command(replica, &["CLUSTER", "FAILOVER"]).await != "OK" {
            return None;
        }
        // Redis gives up a manual failover after 5 s.
        let switched = poll_until(Duration::from_secs(10), || async {
            is_primary(replica).await && linked_to(primary, replica).await
        })
        .await;
        switched.then(|| format!("Failover {primary} -> {replica}"))
    }

    /// A primary killed once its replica has everything, restarted empty
    /// to rejoin as the promoted replica's replica.
    async fn kill_primary(&self, rng: &mut fastrand::Rng, run: &Run) -> Option<String> {
        let pairs = self.pairs().await;
        let &(primary, replica) = pairs.get(rng.usize(0..pairs.len().max(1)))?;
        command(primary, &["CLIENT", "PAUSE", "10000", "WRITE"]).await;
        if !caught_up(primary, replica).await {
            command(primary, &["CLIENT", "UNPAUSE"]).await;
            return None;
        }
        let start = run.now();
        self.cluster
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .kill(primary);
        // The restarted node learns its new role from the others: restart
        // it once all of them know, so none tells it it still owns slots.
        let promoted = poll_until(RECOVERY, || self.all_see_primary(replica, primary)).await;
        let restarted = restart_server(&self.cluster, |c| &mut c.nodes, primary).await;
        sync_at_once(primary).await;
        if !promoted {
            // The node comes back as the empty primary of its slots.
            run.record(start, "fault", "", Action::DataLoss);
        }
        let rejoined =
            restarted && promoted && poll_until(RECOVERY, || linked_to(primary, replica)).await;
        Some(format!(
            "KillPrimary {primary} (replica {replica} promoted: {promoted}, rejoined: {rejoined})"
        ))
    }

    /// The slot of a soak key moved, keys and all, to another primary.
    async fn migrate_slot(&self, rng: &mut fastrand::Rng) -> Option<String> {
        let key = soak_key(rng);
        let slot: u16 = self.ask(&["CLUSTER", "KEYSLOT", &key]).await.parse().ok()?;
        let nodes = self.topology().await;
        let primaries: Vec<&NodeLine> = nodes
            .iter()
            .filter(|p| p.is_healthy_primary() && !p.slots.is_empty())
            .collect();
        let from = primaries
            .iter()
            .find(|p| p.slots.iter().any(|&(a, b)| (a..=b).contains(&slot)))?
            .port;
        let others: Vec<u16> = primaries
            .iter()
            .map(|p| p.port)
            .filter(|&p| p != from)
            .collect();
        let to = *others.get(rng.usize(0..others.len().max(1)))?;
        let ports: Vec<u16> = primaries.iter().map(|p| p.port).collect();
        // Called again after a failure it finishes the move: a slot left
        // half-migrated would stay so.
        let mut outcome = Err(String::new());
        for _ in 0..10 {
            let ports = ports.clone();
            outcome = tokio::task::spawn_blocking(move || move_slot(slot, from, to, &ports))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            if outcome.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let how = outcome
            .err()
            .map_or_else(String::new, |e| format!(" unfinished: {e}"));
        Some(format!("MigrateSlot {slot} ({key}) {from} -> {to}{how}"))
    }
}

impl Faults for Cluster {
    type Fault = ClusterFault;
    const FAULTS: &'static [ClusterFault] = &[
        ClusterFault::Failover,
        ClusterFault::KillPrimary,
        ClusterFault::MigrateSlot,
        ClusterFault::ClientPause,
        ClusterFault::KillTracking,
        ClusterFault::SlowLoader,
    ];

    async fn inject(
        &mut self,
        fault: ClusterFault,
        rng: &mut fastrand::Rng,
        run: &Run,
    ) -> Option<String> {
        match fault {
            ClusterFault::Failover => self.failover(rng).await,
            ClusterFault::KillPrimary => self.kill_primary(rng, run).await,
            ClusterFault::MigrateSlot => self.migrate_slot(rng).await,
            ClusterFault::ClientPause => {
                let port = self.any_primary(rng).await?;
                client_pause(port, rng.u64(100..600)).await;
                Some(format!("ClientPause {port}"))
            }
            ClusterFault::KillTracking => {
                let port = self.any_primary(rng).await?;
                kill_tracking(port).await;
                Some(format!("KillTracking {port}"))
            }
            ClusterFault::SlowLoader => {
                run.slow_loader(Duration::from_millis(rng.u64(300..1_500)))
                    .await;
                Some("SlowLoader".to_owned())
            }
        }
    }
}
