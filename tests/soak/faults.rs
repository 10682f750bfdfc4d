//! The faults of the soak on one address (`tests/soak.rs` runs them
//! through `schedule::schedule`): blackhole of one instance's path, RST of
//! its connections, added latency, Redis restart (nothing kept on disk: an
//! `Action::DataLoss`), `CLIENT PAUSE`, `CLIENT KILL` of the tracking
//! connections, a slow loader, and a primary failover.
//!
//! Redis is a primary and its replica behind one address (every proxy's
//! upstream, as a managed service's DNS name). A failover is the kind that
//! loses nothing acknowledged, as `SENTINEL FAILOVER` and `CLUSTER
//! FAILOVER` do it: writes paused on the primary until the replica has
//! everything, the replica promoted, the address moved to it, the old
//! primary made its replica, writes resumed (they fail there with
//! `READONLY`, and warmcache must reconnect by itself).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::admin::{caught_up, client_pause, command, info, kill_tracking, replicaof};
use super::fleet::{Instance, Run};
use super::schedule::Faults;
use super::support::RedisServer;
use super::support::history::Action;
use super::support::proxy::{Fault as ProxyFault, FaultProxy};

/// The faults on one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Fault {
    Blackhole,
    Reset,
    Latency,
    RedisRestart,
    ClientPause,
    KillTracking,
    SlowLoader,
    Failover,
}

/// The primary and its replica; which is which changes on a failover.
pub(super) struct Pair {
    pub(super) nodes: [RedisServer; 2],
    pub(super) primary: usize,
}

impl Pair {
    /// Starts both, the second a replica of the first (set at run time, so
    /// that a restart brings a node back as a primary, empty).
    pub(super) async fn start() -> Self {
        // A replica loads what it syncs without writing it to disk: a
        // `dump.rdb` left by a full sync would bring an old data set back
        // when the node restarts as a primary (seen: values 12 s old).
        let node = || {
            RedisServer::start_with(&[
                "--repl-diskless-load",
                "swapdb",
                "--repl-diskless-sync-delay",
                "0",
            ])
        };
        let pair = Self {
            nodes: [node(), node()],
            primary: 0,
        };
        replicaof(pair.nodes[1].port(), Some(pair.nodes[0].port())).await;
        while !info(pair.nodes[1].port(), "replication")
            .await
            .contains("master_link_status:up")
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pair
    }

    pub(super) fn primary_port(&self) -> u16 {
        self.nodes[self.primary].port()
    }

    fn replica_port(&self) -> u16 {
        self.nodes[1 - self.primary].port()
    }
}

/// The failover that loses nothing; returns whether it happened (the
/// replica may not catch up within a second, then nothing changes).
async fn fail_over(pair: &Mutex<Pair>, proxies: &[&FaultProxy]) -> bool {
    let (old, new) = {
        let pair = pair.lock().unwrap_or_else(PoisonError::into_inner);
        (pair.primary_port(), pair.replica_port())
    };
    command(old, &["CLIENT", "PAUSE", "3000", "WRITE"]).await;
    let caught_up = caught_up(old, new).await;
    if caught_up {
        replicaof(new, None).await;
        for proxy in proxies {
            proxy.set_upstream(new);
        }
        replicaof(old, Some(new)).await;
        let mut pair = pair.lock().unwrap_or_else(PoisonError::into_inner);
        pair.primary = 1 - pair.primary;
    }
    command(old, &["CLIENT", "UNPAUSE"]).await;
    caught_up
}

/// The standalone fleet's faults: each instance behind its proxy, the
/// foreign writer behind one that injects nothing, all to `pair`.
pub(super) struct Standalone {
    pub(super) pair: Arc<Mutex<Pair>>,
    pub(super) instances: Vec<Arc<Instance>>,
    pub(super) foreign_proxy: Arc<FaultProxy>,
}

impl Standalone {
    fn proxy(instance: &Instance) -> &FaultProxy {
        instance
            .proxy
            .as_ref()
            .expect("standalone instances are behind proxies")
    }
}

impl Faults for Standalone {
    type Fault = Fault;
    const FAULTS: &'static [Fault] = &[
        Fault::Blackhole,
        Fault::Reset,
        Fault::Latency,
        Fault::RedisRestart,
        Fault::ClientPause,
        Fault::KillTracking,
        Fault::SlowLoader,
        Fault::Failover,
    ];

    async fn inject(&mut self, fault: Fault, rng: &mut fastrand::Rng, run: &Run) -> Option<String> {
        let primary = self
            .pair
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .primary_port();
        let target = &self.instances[rng.usize(0..self.instances.len())];
        let hold = Duration::from_millis(rng.u64(300..1_500));
        let start = run.now();
        match fault {
            Fault::Blackhole => {
                Self::proxy(target).set(ProxyFault::Blackhole);
                tokio::time::sleep(hold).await;
                Self::proxy(target).set(ProxyFault::Pass);
            }
            Fault::Reset => Self::proxy(target).reset_all(),
            Fault::Latency => {
                let delay = Duration::from_millis(rng.u64(20..150));
                Self::proxy(target).set(ProxyFault::Latency(delay));
                tokio::time::sleep(hold).await;
                Self::proxy(target).set(ProxyFault::Pass);
            }
            Fault::RedisRestart => {
                // The primary; its replica then syncs the empty data set.
                let pair = Arc::clone(&self.pair);
                tokio::task::spawn_blocking(move || {
                    let mut pair = pair.lock().unwrap_or_else(PoisonError::into_inner);
                    let primary = pair.primary;
                    pair.nodes[primary].restart();
                })
                .await
                .expect("restart redis");
                run.record(start, "fault", "", Action::DataLoss);
            }
            Fault::ClientPause => client_pause(primary, rng.u64(100..600)).await,
            Fault::KillTracking => kill_tracking(primary).await,
            Fault::SlowLoader => run.slow_loader(hold).await,
            Fault::Failover => {
                let mut proxies: Vec<&FaultProxy> =
                    self.instances.iter().map(|i| Self::proxy(i)).collect();
                proxies.push(&self.foreign_proxy);
                if !fail_over(&self.pair, &proxies).await {
                    return None;
                }
            }
        }
        Some(format!("{fault:?} {}", target.name))
    }
}
