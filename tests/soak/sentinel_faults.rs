//! The Sentinel soak's faults (`tests/soak.rs` runs them through
//! `schedule::schedule`), on a real primary, replica and three sentinels
//! with no proxy in front:
//!
//! - `SENTINEL FAILOVER`, made loss-free: Sentinel promotes the replica
//!   without pausing the old primary, which keeps accepting writes until it
//!   is demoted (seconds later, by Sentinel), and those are lost when it
//!   syncs from the new one. So writes are paused on the old primary until
//!   the replica has everything, kept paused through the switch, and the
//!   old primary is made the new one's replica before they resume (then
//!   they fail with `READONLY`);
//! - the primary killed once its replica has everything; the sentinels
//!   promote the replica, and the old primary is restarted (empty) as the
//!   new one's replica;
//! - one sentinel killed and restarted (warmcache must ask the others);
//! - `CLIENT PAUSE` on the primary, `CLIENT KILL` of its tracking
//!   connections, and a slow loader, as on one address.
//!
//! Waits are bounded polls; when one runs out the fault is skipped or, if
//! data may really be gone (a killed primary the sentinels did not replace
//! comes back empty), the history gets an `Action::DataLoss`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::admin::{
    caught_up, client_pause, command, is_primary, kill_tracking, linked_to, query, replicaof,
    restart_server, sync_at_once,
};
use super::fleet::Run;
use super::schedule::{Faults, poll_until};
use super::support::history::Action;
use super::support::sentinel::{MASTER, SentinelSet};

/// The faults the Sentinel schedule draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum SentinelFault {
    Failover,
    KillPrimary,
    KillSentinel,
    ClientPause,
    KillTracking,
    SlowLoader,
}

/// Long enough for the sentinels to detect a dead primary and promote the
/// replica (about 2.4 s with `down-after-milliseconds` 1000) on a loaded
/// machine, or for a restarted node to sync.
const RECOVERY: Duration = Duration::from_secs(20);

/// The servers the fleet runs on.
pub(super) struct Sentinel {
    /// The data nodes and sentinels (a `Mutex`: a kill or restart needs
    /// them mutably, from a blocking task; held for no `await`).
    pub(super) set: Arc<Mutex<SentinelSet>>,
    /// The two data nodes' ports.
    data: [u16; 2],
    /// The sentinels' ports.
    sentinels: Vec<u16>,
}

impl Sentinel {
    pub(super) async fn new(set: Arc<Mutex<SentinelSet>>) -> Self {
        let (data, sentinels) = {
            let set = set.lock().unwrap_or_else(PoisonError::into_inner);
            (
                [set.nodes[0].port(), set.nodes[1].port()],
                set.sentinel_ports(),
            )
        };
        for port in data {
            sync_at_once(port).await;
        }
        Self {
            set,
            data,
            sentinels,
        }
    }

    /// The other data node.
    fn other(&self, port: u16) -> u16 {
        if port == self.data[0] {
            self.data[1]
        } else {
            self.data[0]
        }
    }

    /// The primary the first answering sentinel names, if it answers
    /// `INFO` as one; with the other data node.
    async fn primary(&self) -> Option<(u16, u16)> {
        for &sentinel in &self.sentinels {
            if let Some(named) = named_by(sentinel).await {
                return is_primary(named).await.then(|| (named, self.other(named)));
            }
        }
        None
    }

    /// Whether any sentinel names `port` and it answers as a primary: the
    /// switch is decided (the leader published the new configuration).
    async fn switched_to(&self, port: u16) -> bool {
        for &sentinel in &self.sentinels {
            if named_by(sentinel).await == Some(port) {
                return is_primary(port).await;
            }
        }
        false
    }

    /// Whether every sentinel names `port` and it answers as a primary:
    /// no client is sent anywhere else any more.
    async fn all_name(&self, port: u16) -> bool {
        for &sentinel in &self.sentinels {
            if named_by(sentinel).await != Some(port) {
                return false;
            }
        }
        is_primary(port).await
    }

    /// Whether every sentinel has had a PONG from `port`, its primary, since
    /// it switched to it (polled up to [`RECOVERY`]). A switch resets the
    /// sentinel's link with a ping pending, and it reconnects at most once a
    /// second (until then it was trying the dead primary): with
    /// `down-after-milliseconds` 1000 the new primary may look down a second
    /// later, and Sentinel may fail over again at once, to any replica,
    /// even one that never synced (seen: the killed node, restarted 70 ms
    /// after the switch and still empty, promoted; everything lost).
    async fn settled_on(&self, port: u16) -> bool {
        let mut answered = vec![false; self.sentinels.len()];
        let deadline = tokio::time::Instant::now() + RECOVERY;
        while tokio::time::Instant::now() < deadline {
            for (i, &sentinel) in self.sentinels.iter().enumerate() {
                answered[i] = answered[i] || pong_since_switch(sentinel, port).await;
            }
            if answered.iter().all(|a| *a) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// `SENTINEL FAILOVER` with the old primary's writes paused from
    /// before the replica caught up until it is the new one's replica.
    async fn failover(&self) -> Option<String> {
        let (old, new) = self.primary().await?;
        command(old, &["CLIENT", "PAUSE", "10000", "WRITE"]).await;
        if !caught_up(old, new).await {
            command(old, &["CLIENT", "UNPAUSE"]).await;
            return None;
        }
        let mut asked = false;
        for &sentinel in &self.sentinels {
            if command(sentinel, &["SENTINEL", "FAILOVER", MASTER]).await == "OK" {
                asked = true;
                break;
            }
        }
        // Sentinel gives up after its failover-timeout (3 s): a switch not
        // seen in 8 s did not happen, and the old primary stays the one.
        let switched = asked && poll_until(Duration::from_secs(8), || self.switched_to(new)).await;
        if switched {
            replicaof(old, Some(new)).await;
        }
        command(old, &["CLIENT", "UNPAUSE"]).await;
        if !switched {
            return None;
        }
        let linked = poll_until(RECOVERY, || linked_to(old, new)).await;
        Some(format!("Failover {old} -> {new} (old linked: {linked})"))
    }

    /// The primary killed once its replica has everything, restarted empty
    /// as the promoted one's replica.
    async fn kill_primary(&self, run: &Run) -> Option<String> {
        let (old, new) = self.primary().await?;
        command(old, &["CLIENT", "PAUSE", "10000", "WRITE"]).await;
        if !caught_up(old, new).await {
            command(old, &["CLIENT", "UNPAUSE"]).await;
            return None;
        }
        let start = run.now();
        self.set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .kill(old);
        // Until every sentinel names the new primary, one may still send a
        // client to the old address, where the restarted node (without
        // `--replicaof`) would be an empty primary that takes writes; and
        // until each has heard from it, the restarted node could be promoted
        // empty (`settled_on`).
        let promoted = poll_until(RECOVERY, || self.all_name(new)).await;
        let settled = promoted && self.settled_on(new).await;
        let restarted = restart_server(&self.set, |s| &mut s.nodes, old).await;
        sync_at_once(old).await;
        if promoted {
            // No sentinel names it and no client is on it: demote it at once.
            replicaof(old, Some(new)).await;
        }
        if !settled {
            // A sentinel still names the empty node, or may promote it.
            run.record(start, "fault", "", Action::DataLoss);
        }
        let linked = restarted && promoted && poll_until(RECOVERY, || linked_to(old, new)).await;
        Some(format!(
            "KillPrimary {old} (replica {new} promoted: {promoted}, settled: {settled}, old linked: {linked})"
        ))
    }

    /// One sentinel killed for `hold`, then restarted with what it knew.
    async fn kill_sentinel(&self, rng: &mut fastrand::Rng) -> Option<String> {
        let port = self.sentinels[rng.usize(0..self.sentinels.len())];
        let hold = Duration::from_millis(rng.u64(300..3_000));
        {
            let mut set = self.set.lock().unwrap_or_else(PoisonError::into_inner);
            set.sentinels.iter_mut().find(|s| s.port() == port)?.kill();
        }
        tokio::time::sleep(hold).await;
        let restarted = restart_server(&self.set, |s| &mut s.sentinels, port).await;
        Some(format!("KillSentinel {port} (restarted: {restarted})"))
    }
}

/// The primary's port that the sentinel on `sentinel` names.
async fn named_by(sentinel: u16) -> Option<u16> {
    let reply = query(sentinel, &["SENTINEL", "get-master-addr-by-name", MASTER]).await?;
    let redis::Value::Array(fields) = reply else {
        return None;
    };
    match fields.get(1)? {
        redis::Value::BulkString(port) => String::from_utf8_lossy(port).parse().ok(),
        _ => None,
    }
}

/// Whether the sentinel on `sentinel` has `port` as its primary, suspects
/// nothing, and has no ping pending (`last-ping-sent` is 0 once a PONG came).
async fn pong_since_switch(sentinel: u16, port: u16) -> bool {
    let Some(redis::Value::Array(reply)) = query(sentinel, &["SENTINEL", "MASTER", MASTER]).await
    else {
        return false;
    };
    let text: Vec<String> = reply
        .iter()
        .map(|v| match v {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        })
        .collect();
    let field = |name: &str| {
        text.chunks(2)
            .find(|kv| kv[0] == name)
            .and_then(|kv| kv.get(1))
            .map(String::as_str)
    };
    field("port") == Some(port.to_string().as_str())
        && field("flags") == Some("master")
        && field("last-ping-sent") == Some("0")
}

impl Faults for Sentinel {
    type Fault = SentinelFault;
    const FAULTS: &'static [SentinelFault] = &[
        SentinelFault::Failover,
        SentinelFault::KillPrimary,
        SentinelFault::KillSentinel,
        SentinelFault::ClientPause,
        SentinelFault::KillTracking,
        SentinelFault::SlowLoader,
    ];

    async fn inject(
        &mut self,
        fault: SentinelFault,
        rng: &mut fastrand::Rng,
        run: &Run,
    ) -> Option<String> {
        match fault {
            SentinelFault::Failover => self.failover().await,
            SentinelFault::KillPrimary => self.kill_primary(run).await,
            SentinelFault::KillSentinel => self.kill_sentinel(rng).await,
            SentinelFault::ClientPause => {
                let (port, _) = self.primary().await?;
                client_pause(port, rng.u64(100..600)).await;
                Some(format!("ClientPause {port}"))
            }
            SentinelFault::KillTracking => {
                let (port, _) = self.primary().await?;
                kill_tracking(port).await;
                Some(format!("KillTracking {port}"))
            }
            SentinelFault::SlowLoader => {
                run.slow_loader(Duration::from_millis(rng.u64(300..1_500)))
                    .await;
                Some("SlowLoader".to_owned())
            }
        }
    }
}
