//! A real Redis Cluster on loopback: 3 primaries and 3 replicas, each a
//! [`RedisServer`] in its own directory, joined with `redis-cli --cluster
//! create`, with a 1 s `cluster-node-timeout` so a killed primary's replica
//! takes over within seconds. Foreign clients are `redis-cli -c` processes
//! (they follow `MOVED` as any cluster client does).

use std::process::Command;
use std::time::{Duration, Instant};

use warmcache::RedisConfig;

use super::RedisServer;

/// Six `redis-server --cluster-enabled yes` processes, joined.
pub struct RedisCluster {
    /// Every node; primaries and replicas as the cluster decides.
    pub nodes: Vec<RedisServer>,
}

/// Runs `redis-cli -p port args...` and returns its stdout (trimmed).
///
/// # Panics
/// When redis-cli cannot run or exits with an error.
pub fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(
        output.status.success(),
        "redis-cli {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

impl RedisCluster {
    /// Starts six nodes and joins them (three shards of one replica each);
    /// returns once every node reports `cluster_state:ok` and every replica
    /// is in sync.
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                    // Any replica may take over, however long it was cut off.
                    "--cluster-replica-validity-factor",
                    "0",
                ])
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create runs");
        assert!(
            output.status.success(),
            "cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Self { nodes };
        cluster.wait_healthy();
        cluster
    }

    /// Waits (up to 20 s) until every live node reports `cluster_state:ok`,
    /// three primaries serve all slots, and every replica's link is up.
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = self.live_ports().iter().all(|&port| {
                let info = cli(port, &["CLUSTER", "INFO"]);
                let replication = cli(port, &["INFO", "replication"]);
                info.contains("cluster_state:ok")
                    && (replication.contains("role:master")
                        || replication.contains("master_link_status:up"))
            }) && self.primaries().len() == 3;
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not become healthy"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ports of the nodes that run.
    pub fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(RedisServer::port)
            .collect()
    }

    /// A live node to talk to.
    pub fn seed(&self) -> u16 {
        self.live_ports()[0]
    }

    /// Settings for warmcache: cluster mode, every node a seed, short timeouts.
    pub fn config(&self) -> RedisConfig {
        let mut config = RedisConfig::local_cluster(self.nodes[0].port());
        config.cluster_nodes = self.nodes[1..]
            .iter()
            .map(|n| ("127.0.0.1".to_owned(), n.port()))
            .collect();
        config.op_timeout = Duration::from_millis(300);
        config.connect_timeout = Duration::from_millis(300);
        config
    }

    /// `redis-cli -c` on a live node: a foreign cluster client.
    pub fn foreign(&self, args: &[&str]) -> String {
        let mut all = vec!["-c"];
        all.extend_from_slice(args);
        cli(self.seed(), &all)
    }

    /// The slot of `key` (`CLUSTER KEYSLOT`).
    pub fn slot(&self, key: &str) -> u16 {
        cli(self.seed(), &["CLUSTER", "KEYSLOT", key])
            .parse()
            .expect("a slot number")
    }

    /// `(node id, port, slot ranges)` of each primary, as a live node sees it.
    pub fn primaries(&self) -> Vec<(String, u16, Vec<(u16, u16)>)> {
        cli(self.seed(), &["CLUSTER", "NODES"])
            .lines()
            .filter(|line| line.contains("master") && !line.contains("fail"))
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let port = fields.get(1)?.split(['@', ':']).nth(1)?.parse().ok()?;
                let ranges: Vec<(u16, u16)> = fields[8..]
                    .iter()
                    .filter(|f| !f.starts_with('['))
                    .filter_map(|f| {
                        let (a, b) = f.split_once('-').unwrap_or((f, f));
                        Some((a.parse().ok()?, b.parse().ok()?))
                    })
                    .collect();
                (!ranges.is_empty()).then(|| (fields[0].to_owned(), port, ranges))
            })
            .collect()
    }

    /// The port of the primary serving `key`.
    pub fn primary_of(&self, key: &str) -> u16 {
        let slot = self.slot(key);
        self.primaries()
            .into_iter()
            .find(|(_, _, ranges)| ranges.iter().any(|&(a, b)| (a..=b).contains(&slot)))
            .map(|(_, port, _)| port)
            .expect("a primary serves the slot")
    }

    /// Kills the node on `port` (SIGKILL).
    pub fn kill(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port() == port) {
            node.kill();
        }
    }

    /// Moves `slot` and its keys from the primary on `from` to the one on
    /// `to` (`CLUSTER SETSLOT ... IMPORTING/MIGRATING`, `MIGRATE`, `SETSLOT
    /// NODE` on every primary), as `redis-cli --cluster reshard` does.
    pub fn migrate_slot(&self, slot: u16, from: u16, to: u16) {
        let id = |port| cli(port, &["CLUSTER", "MYID"]);
        let (from_id, to_id) = (id(from), id(to));
        let slot = slot.to_string();
        cli(to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]);
        cli(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]);
        let keys = cli(from, &["CLUSTER", "GETKEYSINSLOT", &slot, "1000"]);
        let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
        if !keys.is_empty() {
            let to_port = to.to_string();
            let mut args = vec!["MIGRATE", "127.0.0.1", &to_port, "", "0", "5000", "KEYS"];
            args.extend(keys);
            cli(from, &args);
        }
        for (_, port, _) in self.primaries() {
            cli(port, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
        }
    }
}
