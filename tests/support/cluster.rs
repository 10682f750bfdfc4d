//! A real Redis Cluster on loopback: 3 primaries and 3 replicas, each a
//! [`RedisServer`] in its own directory, joined with `redis-cli --cluster
//! create`, with a 1 s `cluster-node-timeout` so a killed primary's replica
//! takes over within seconds. Foreign clients are `redis-cli -c` processes
//! (they follow `MOVED` as any cluster client does).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use warmcache::RedisConfig;

use super::RedisServer;

/// A primary as `CLUSTER NODES` shows it: node id, port, slot ranges.
pub type Primary = (String, u16, Vec<(u16, u16)>);

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
    cli_as(port, None, None, args)
}

/// [`cli`], authenticated with `password` when given (passed in the
/// environment, `REDISCLI_AUTH`, not on the command line), over TLS
/// trusting the CA file `tls_ca` when given.
pub fn cli_as(port: u16, password: Option<&str>, tls_ca: Option<&Path>, args: &[&str]) -> String {
    try_cli_as(port, password, tls_ca, args).unwrap_or_else(|e| panic!("{e}"))
}

/// [`cli`] for fault schedules: an error reply, or redis-cli failing to
/// run or to connect, is an `Err` with the message [`cli`] would panic with.
pub fn try_cli(port: u16, args: &[&str]) -> Result<String, String> {
    try_cli_as(port, None, None, args)
}

fn try_cli_as(
    port: u16,
    password: Option<&str>,
    tls_ca: Option<&Path>,
    args: &[&str],
) -> Result<String, String> {
    let mut command = Command::new("redis-cli");
    if let Some(password) = password {
        command.env("REDISCLI_AUTH", password);
    }
    if let Some(ca) = tls_ca {
        command.arg("--tls").arg("--cacert").arg(ca);
    }
    let output = command
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map_err(|e| format!("redis-cli does not run: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "redis-cli {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let reply = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    // redis-cli exits 0 on an error reply: look at the reply itself.
    let first = reply.split_whitespace().next().unwrap_or_default();
    if first.ends_with("ERR") || first == "(error)" {
        return Err(format!("redis-cli {args:?} answered {reply}"));
    }
    Ok(reply)
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct NodeLine {
    /// The node id.
    pub id: String,
    /// The port it announces.
    pub port: u16,
    /// `myself,master`, `slave`, `master,fail?`, ...
    pub flags: String,
    /// The id of its primary (`-` for a primary).
    pub primary: String,
    /// The slot ranges it serves (none for a replica).
    pub slots: Vec<(u16, u16)>,
}

impl NodeLine {
    /// Whether it is a primary that nobody suspects of failing.
    pub fn is_healthy_primary(&self) -> bool {
        self.flags.contains("master") && !self.flags.contains("fail")
    }
}

/// The lines of a `CLUSTER NODES` reply (migrating-slot entries, `[...]`,
/// left out).
pub fn parse_nodes(reply: &str) -> Vec<NodeLine> {
    reply
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = fields.get(1)?.split(['@', ':']).nth(1)?.parse().ok()?;
            let slots = fields
                .get(8..)
                .unwrap_or_default()
                .iter()
                .filter(|f| !f.starts_with('['))
                .filter_map(|f| {
                    let (a, b) = f.split_once('-').unwrap_or((f, f));
                    Some((a.parse().ok()?, b.parse().ok()?))
                })
                .collect();
            Some(NodeLine {
                id: (*fields.first()?).to_owned(),
                port,
                flags: (*fields.get(2)?).to_owned(),
                primary: (*fields.get(3)?).to_owned(),
                slots,
            })
        })
        .collect()
}

/// Moves `slot` and its keys from the primary on `from` to the one on `to`
/// (`CLUSTER SETSLOT ... IMPORTING/MIGRATING`, `MIGRATE`, `SETSLOT NODE` on
/// `to` first, then on every port of `primaries`), as `redis-cli --cluster
/// reshard` does. Stops at the first failure; called again, it picks up
/// where it stopped (the keys still on `from` are moved).
pub fn move_slot(slot: u16, from: u16, to: u16, primaries: &[u16]) -> Result<(), String> {
    let id = |port| try_cli(port, &["CLUSTER", "MYID"]);
    let (from_id, to_id) = (id(from)?, id(to)?);
    let slot = slot.to_string();
    try_cli(to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id])?;
    try_cli(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id])?;
    let keys = try_cli(from, &["CLUSTER", "GETKEYSINSLOT", &slot, "1000"])?;
    let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
    if !keys.is_empty() {
        let to_port = to.to_string();
        let mut args = vec!["MIGRATE", "127.0.0.1", &to_port, "", "0", "5000", "KEYS"];
        args.extend(keys);
        try_cli(from, &args)?;
    }
    // The new owner first: the old one then redirects to a node that
    // already serves the slot.
    let others = primaries.iter().copied().filter(|&p| p != to);
    for port in std::iter::once(to).chain(others) {
        try_cli(port, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id])?;
    }
    Ok(())
}

impl RedisCluster {
    /// Starts six nodes and joins them (three shards of one replica each);
    /// returns once every node reports `cluster_state:ok` and every replica
    /// is in sync.
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..6).map(|_| start_node()).collect();
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
            }) && self.primaries().len() >= 3;
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
        RedisServer::live_ports(&self.nodes)
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
    pub fn primaries(&self) -> Vec<Primary> {
        parse_nodes(&cli(self.seed(), &["CLUSTER", "NODES"]))
            .into_iter()
            .filter(|node| node.is_healthy_primary() && !node.slots.is_empty())
            .map(|node| (node.id, node.port, node.slots))
            .collect()
    }

    /// The ports of the primaries, in `CLUSTER NODES` order.
    pub fn primary_ports(&self) -> Vec<u16> {
        self.primaries()
            .into_iter()
            .map(|(_, port, _)| port)
            .collect()
    }

    /// The port of a primary other than `port`.
    pub fn other_primary(&self, port: u16) -> u16 {
        self.primary_ports()
            .into_iter()
            .find(|p| *p != port)
            .expect("another primary")
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

    /// Starts a seventh node and has it join as a primary without slots;
    /// returns its port once a live node lists it.
    pub fn add_primary(&mut self) -> u16 {
        let node = start_node();
        let port = node.port();
        let seed = self.seed();
        // The bus port is chosen apart from the port (see `start_node`):
        // MEET must name it, or it assumes port + 10000.
        let bus = cli(seed, &["CONFIG", "GET", "cluster-port"]);
        let bus = bus.lines().last().unwrap_or_default().trim().to_owned();
        cli(
            port,
            &["CLUSTER", "MEET", "127.0.0.1", &seed.to_string(), &bus],
        );
        self.nodes.push(node);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.live_ports().iter().all(|&p| {
            let nodes = cli(p, &["CLUSTER", "NODES"]);
            nodes.lines().count() == self.nodes.len() && !nodes.contains("handshake")
        }) || !cli(port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
        {
            assert!(Instant::now() < deadline, "the new node did not join");
            std::thread::sleep(Duration::from_millis(50));
        }
        port
    }

    /// The port of a replica of the primary on `primary`.
    pub fn replica_of(&self, primary: u16) -> u16 {
        let id = cli(primary, &["CLUSTER", "MYID"]);
        parse_nodes(&cli(self.seed(), &["CLUSTER", "NODES"]))
            .into_iter()
            .find(|node| node.flags.contains("slave") && node.primary == id)
            .map(|node| node.port)
            .expect("the primary has a replica")
    }

    /// Kills the node on `port` (SIGKILL).
    pub fn kill(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port() == port) {
            node.kill();
        }
    }

    /// Moves `slot` and its keys from the primary on `from` to the one on
    /// `to` ([`move_slot`]).
    ///
    /// # Panics
    /// When a step fails.
    pub fn migrate_slot(&self, slot: u16, from: u16, to: u16) {
        move_slot(slot, from, to, &self.primary_ports()).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// One `redis-server --cluster-enabled yes` with a 1 s node timeout (and a
/// bus port of its own, see `RedisServer::start_with`).
fn start_node() -> RedisServer {
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
}
