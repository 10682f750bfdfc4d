//! The chaos soak: a small fleet under many faults at once, its history
//! judged by the checker in `support::history`, on three topologies.
//!
//! The fleet (`tests/soak/fleet.rs`): 3 warmcache instances (the library
//! with its real Redis clients: a `RedisHandle`, the age-verification and
//! profile caches, the invalidation listener, and a snapshot refresher
//! behind the real router), plus a foreign writer (ioredis in a Node
//! process, in the topology's own client mode) talking to Redis directly.
//! Workers read, write, overwrite and erase a few hundred ids, and read
//! `/dashboard`, while a seeded schedule injects faults:
//!
//! - one address (`tests/soak/faults.rs`): each instance behind its own
//!   fault proxy to a primary and replica: blackhole, RST, added latency,
//!   Redis restart, `CLIENT PAUSE`, `CLIENT KILL` of tracking connections,
//!   a slow loader and a primary failover behind the same address;
//! - a Redis Cluster of 3 primaries and 3 replicas
//!   (`tests/soak/cluster_faults.rs`): `CLUSTER FAILOVER`, a primary killed
//!   after its replica synced, a slot migrated, `CLIENT PAUSE`, tracking
//!   kills, a slow loader;
//! - Sentinel, a primary, a replica and 3 sentinels
//!   (`tests/soak/sentinel_faults.rs`): `SENTINEL FAILOVER` (loss-free), a
//!   primary killed after its replica synced, a sentinel killed and
//!   restarted, `CLIENT PAUSE`, tracking kills, a slow loader.
//!
//! `WARMCACHE_SOAK_SECS` sets each soak's duration (default 45 on one
//! address, 30 on a cluster and on Sentinel, as CI runs them; by hand, e.g.
//! 600) and `WARMCACHE_SOAK_SEED` the seed (default 1);
//! `WARMCACHE_SOAK_DUMP=path` writes each soak's whole history to
//! `path.standalone`, `path.cluster` and `path.sentinel`. The soaks run one
//! at a time: each loads a 2-core machine on its own.

#[path = "soak/admin.rs"]
mod admin;
#[path = "soak/cluster_faults.rs"]
mod cluster_faults;
#[path = "soak/faults.rs"]
mod faults;
#[path = "soak/fleet.rs"]
mod fleet;
#[path = "soak/schedule.rs"]
mod schedule;
#[path = "soak/sentinel_faults.rs"]
mod sentinel_faults;
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster_faults::Cluster;
use faults::{Pair, Standalone};
use fleet::{ERROR_KINDS, GRACE, Instance, Run, Writer, call_bound, foreign_writer, work};
use schedule::{Faults, schedule};
use sentinel_faults::Sentinel;
use support::cluster::RedisCluster;
use support::history::{Rules, check};
use support::proxy::{Fault as ProxyFault, FaultProxy};
use support::sentinel::{MASTER, SentinelSet};
use warmcache::RedisConfig;

const INSTANCES: usize = 3;

/// Held by each soak while it runs (a tokio `Mutex`: held across awaits,
/// by tests on runtimes of their own).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One soak: how long, on what, with which faults.
struct Soak {
    /// `standalone`, `cluster` or `sentinel`: in the output and the
    /// history file's name.
    topology: &'static str,
    seconds: u64,
    seed: u64,
    /// The instances' Redis command bound (their `RedisConfig::op_timeout`).
    op_timeout: Duration,
    run: Arc<Run>,
    instances: Vec<Arc<Instance>>,
    writer: Writer,
}

impl Soak {
    /// A soak of 30 s by default whose instances connect as `config` says
    /// (cluster and Sentinel: no proxy, the nodes announce themselves).
    async fn connected(topology: &'static str, config: &RedisConfig, writer: Writer) -> Self {
        let mut instances = Vec::new();
        for index in 0..INSTANCES {
            instances.push(Arc::new(Instance::start(index, config, None).await));
        }
        Self {
            topology,
            seconds: env_u64("WARMCACHE_SOAK_SECS", 30),
            seed: env_u64("WARMCACHE_SOAK_SEED", 1),
            op_timeout: config.op_timeout,
            run: Arc::new(Run::new()),
            instances,
            writer,
        }
    }

    /// Runs the workers, the foreign writer and `faults` for the soak's
    /// duration, lets the fleet settle, reads every id once more on every
    /// instance, and checks the history.
    async fn run<S: Faults + Send + 'static>(self, faults: S) {
        let Self {
            topology,
            seconds,
            seed,
            op_timeout,
            run,
            instances,
            writer,
        } = self;
        let mut workers = Vec::new();
        for (index, instance) in instances.iter().enumerate() {
            for worker in 0..2 {
                workers.push(tokio::spawn(work(
                    Arc::clone(instance),
                    seed * 100 + (index * 2 + worker) as u64,
                    Arc::clone(&run),
                )));
            }
        }
        let foreign = {
            let run = Arc::clone(&run);
            std::thread::spawn(move || foreign_writer(&writer, seed * 100 + 99, &run))
        };
        let faults = tokio::spawn(schedule(faults, seed, Arc::clone(&run)));

        tokio::time::sleep(Duration::from_secs(seconds)).await;
        run.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let faults = faults.await.expect("fault schedule");
        for worker in workers {
            worker.await.expect("worker");
        }
        let foreign_errors = foreign.join().expect("foreign writer");

        // Quiet now: every instance reads every id once more.
        for proxy in instances.iter().filter_map(|i| i.proxy.as_ref()) {
            proxy.set(ProxyFault::Pass);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        for instance in &instances {
            instance.read_all(&run).await;
        }

        let history = run.take_history();
        let rules = Rules {
            bound_ms: GRACE.as_secs_f64() * 1_000.0 + 10.0,
            call_bound_ms: call_bound(op_timeout).as_secs_f64() * 1_000.0,
            error_kinds: ERROR_KINDS.iter().map(|k| (*k).to_owned()).collect(),
        };
        let report = check(&history, &rules);
        if let Ok(path) = std::env::var("WARMCACHE_SOAK_DUMP") {
            // One file per soak: they run in one test binary.
            let text: String = history.iter().map(|op| format!("{op}\n")).collect();
            std::fs::write(format!("{path}.{topology}"), text).expect("write the history");
        }
        println!(
            "soak ({topology}): {seconds} s, seed {seed}, {INSTANCES} instances + foreign writer, {} operations\nfaults: {:?}\nskipped (could not be injected): {:?}\nforeign writer's errors (ioredis): {foreign_errors:?}\n{}",
            history.len(),
            faults.injected,
            faults.skipped,
            report.summary(&rules)
        );
        assert!(
            faults.injected.values().sum::<u64>() > 0,
            "the schedule injected faults"
        );
        assert!(report.violations.is_empty(), "{}", report.summary(&rules));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_keeps_its_promises_under_many_faults() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let pair = Pair::start().await;
    let port = pair.primary_port();
    let pair = Arc::new(Mutex::new(pair));
    // The foreign writer reaches Redis at the same address as the fleet (a
    // proxy that injects nothing), which a failover moves too.
    let foreign_proxy = Arc::new(FaultProxy::start(port).await);
    let run = Arc::new(Run::new());
    let mut instances = Vec::new();
    for index in 0..INSTANCES {
        instances.push(Arc::new(Instance::behind_proxy(index, port).await));
    }
    let faults = Standalone {
        pair: Arc::clone(&pair),
        instances: instances.clone(),
        foreign_proxy: Arc::clone(&foreign_proxy),
    };
    Soak {
        topology: "standalone",
        seconds: env_u64("WARMCACHE_SOAK_SECS", 45),
        seed: env_u64("WARMCACHE_SOAK_SEED", 1),
        op_timeout: foreign_proxy.config().op_timeout,
        run,
        instances,
        writer: Writer::Standalone(foreign_proxy.port()),
    }
    .run(faults)
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_keeps_its_promises_on_a_cluster_under_many_faults() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let cluster = RedisCluster::start();
    let config = cluster.config();
    let writer = Writer::Cluster(cluster.nodes.iter().map(|n| n.port()).collect());
    let cluster = Arc::new(Mutex::new(cluster));
    Soak::connected("cluster", &config, writer)
        .await
        .run(Cluster::new(Arc::clone(&cluster)).await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_keeps_its_promises_on_sentinel_under_many_faults() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let set = SentinelSet::start();
    let config = set.config();
    let writer = Writer::Sentinel(set.sentinel_ports(), MASTER);
    let set = Arc::new(Mutex::new(set));
    Soak::connected("sentinel", &config, writer)
        .await
        .run(Sentinel::new(Arc::clone(&set)).await)
        .await;
}
