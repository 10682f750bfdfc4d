//! The soak's fault schedule: which faults it draws from, and the task that
//! injects one after another (seeded) into the fleet until told to stop,
//! recording each in the history and counting them.
//!
//! Redis is a primary and its replica behind one address (every proxy's
//! upstream, as a managed service's DNS name). A failover is the kind that
//! loses nothing acknowledged, as `SENTINEL FAILOVER` and `CLUSTER
//! FAILOVER` do it: writes paused on the primary until the replica has
//! everything, the replica promoted, the address moved to it, the old
//! primary made its replica, writes resumed (they fail there with
//! `READONLY`, and warmcache must reconnect by itself).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::support::RedisServer;
use super::support::history::Action;
use super::support::proxy::{Fault as ProxyFault, FaultProxy};
use super::{Instance, LOADER_FAST, LOADER_SLOW, Recorder};

/// The faults the schedule draws from.
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

const FAULTS: [Fault; 8] = [
    Fault::Blackhole,
    Fault::Reset,
    Fault::Latency,
    Fault::RedisRestart,
    Fault::ClientPause,
    Fault::KillTracking,
    Fault::SlowLoader,
    Fault::Failover,
];

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

fn admin(port: u16) -> redis::Client {
    redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client")
}

/// One admin command on the node `port`; errors are ignored (the fault
/// schedule goes on), and returned as an empty string.
async fn command(port: u16, args: &[&str]) -> String {
    let Ok(mut c) = admin(port).get_multiplexed_async_connection().await else {
        return String::new();
    };
    let mut cmd = redis::cmd(args[0]);
    cmd.arg(&args[1..]);
    match cmd.query_async::<redis::Value>(&mut c).await {
        Ok(redis::Value::BulkString(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(redis::Value::VerbatimString { text, .. }) => text,
        Ok(redis::Value::SimpleString(text)) => text,
        _ => String::new(),
    }
}

async fn info(port: u16, section: &str) -> String {
    command(port, &["INFO", section]).await
}

async fn replicaof(port: u16, primary: Option<u16>) {
    let primary = primary.map(|p| p.to_string());
    match &primary {
        Some(p) => command(port, &["REPLICAOF", "127.0.0.1", p]).await,
        None => command(port, &["REPLICAOF", "NO", "ONE"]).await,
    };
}

/// A number field of an `INFO` reply.
fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.parse().ok())
}

/// The failover that loses nothing; returns whether it happened (the
/// replica may not catch up within a second, then nothing changes).
async fn fail_over(pair: &Mutex<Pair>, proxies: &[&FaultProxy]) -> bool {
    let (old, new) = {
        let pair = pair.lock().unwrap_or_else(PoisonError::into_inner);
        (pair.primary_port(), pair.replica_port())
    };
    command(old, &["CLIENT", "PAUSE", "3000", "WRITE"]).await;
    let mut caught_up = false;
    for _ in 0..200 {
        let wanted = info_field(&info(old, "replication").await, "master_repl_offset");
        let applied = info_field(&info(new, "replication").await, "slave_repl_offset");
        if wanted.is_some() && wanted == applied {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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

/// Injects one fault after another until `stop`; returns the counts.
pub(super) async fn inject_faults(
    seed: u64,
    pair: Arc<Mutex<Pair>>,
    instances: Vec<Arc<Instance>>,
    foreign_proxy: Arc<FaultProxy>,
    loader_ms: Arc<AtomicU64>,
    recorder: Arc<Recorder>,
    stop: Arc<AtomicBool>,
) -> BTreeMap<Fault, u64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut counts = BTreeMap::new();
    while !stop.load(Ordering::Relaxed) {
        let admin = admin(
            pair.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .primary_port(),
        );
        tokio::time::sleep(Duration::from_millis(rng.u64(500..1_500))).await;
        let fault = FAULTS[rng.usize(0..FAULTS.len())];
        let target = &instances[rng.usize(0..instances.len())];
        let hold = Duration::from_millis(rng.u64(300..1_500));
        *counts.entry(fault).or_insert(0) += 1;
        let start = recorder.now();
        match fault {
            Fault::Blackhole => {
                target.proxy.set(ProxyFault::Blackhole);
                tokio::time::sleep(hold).await;
                target.proxy.set(ProxyFault::Pass);
            }
            Fault::Reset => target.proxy.reset_all(),
            Fault::Latency => {
                let delay = Duration::from_millis(rng.u64(20..150));
                target.proxy.set(ProxyFault::Latency(delay));
                tokio::time::sleep(hold).await;
                target.proxy.set(ProxyFault::Pass);
            }
            Fault::RedisRestart => {
                // The primary; its replica then syncs the empty data set.
                let pair = Arc::clone(&pair);
                tokio::task::spawn_blocking(move || {
                    let mut pair = pair.lock().unwrap_or_else(PoisonError::into_inner);
                    let primary = pair.primary;
                    pair.nodes[primary].restart();
                })
                .await
                .expect("restart redis");
                recorder.record(start, "fault", "", Action::DataLoss);
            }
            Fault::ClientPause => {
                let pause = rng.u64(100..600);
                if let Ok(mut c) = admin.get_multiplexed_async_connection().await {
                    let _: Result<(), _> = redis::cmd("CLIENT")
                        .arg("PAUSE")
                        .arg(pause)
                        .query_async(&mut c)
                        .await;
                }
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            Fault::KillTracking => {
                if let Ok(mut c) = admin.get_multiplexed_async_connection().await {
                    let list: String = redis::cmd("CLIENT")
                        .arg("LIST")
                        .query_async(&mut c)
                        .await
                        .unwrap_or_default();
                    for id in tracking_client_ids(&list) {
                        let _: Result<(), _> = redis::cmd("CLIENT")
                            .arg("KILL")
                            .arg("ID")
                            .arg(id)
                            .query_async(&mut c)
                            .await;
                    }
                }
            }
            Fault::SlowLoader => {
                loader_ms.store(LOADER_SLOW.as_millis() as u64, Ordering::Relaxed);
                tokio::time::sleep(hold).await;
                loader_ms.store(LOADER_FAST.as_millis() as u64, Ordering::Relaxed);
            }
            Fault::Failover => {
                let mut proxies: Vec<&FaultProxy> = instances.iter().map(|i| &i.proxy).collect();
                proxies.push(&foreign_proxy);
                if !fail_over(&pair, &proxies).await {
                    *counts.entry(fault).or_insert(0) -= 1;
                    continue;
                }
            }
        }
        let what = format!("{fault:?} {}", target.name);
        recorder.record(start, "fault", "", Action::Fault(what));
    }
    counts
}

/// Ids of the connections with client tracking on (`flags` holds `t`).
fn tracking_client_ids(client_list: &str) -> Vec<String> {
    client_list
        .lines()
        .filter(|line| {
            line.split(' ').any(|field| {
                field
                    .strip_prefix("flags=")
                    .is_some_and(|f| f.contains('t'))
            })
        })
        .filter_map(|line| {
            line.split(' ')
                .find_map(|f| f.strip_prefix("id="))
                .map(str::to_owned)
        })
        .collect()
}
