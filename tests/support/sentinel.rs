//! A Sentinel-managed Redis on loopback: 1 primary, 1 replica and 3
//! `redis-sentinel` processes (quorum 2, `down-after-milliseconds` 1000), each
//! a [`RedisServer`] in its own directory, killed when dropped. Foreign
//! clients are `redis-cli` processes ([`cli`]).

use std::time::{Duration, Instant};

use warmcache::RedisConfig;
use warmcache::testing::TlsFiles;

use super::RedisServer;
pub use super::cluster::cli;
use super::cluster::cli_as;

/// The name the sentinels monitor the primary under.
pub const MASTER: &str = "mymaster";

/// The data nodes and the sentinels.
pub struct SentinelSet {
    /// The first primary and the first replica (roles change on failover).
    pub nodes: Vec<RedisServer>,
    /// Three sentinels.
    pub sentinels: Vec<RedisServer>,
    /// The data nodes' `requirepass` (and `masterauth`), if any.
    pub data_password: Option<String>,
    /// The sentinels' own `requirepass`, if any.
    pub sentinel_password: Option<String>,
    /// The certificates when every node and sentinel listens on TLS only.
    pub tls: Option<TlsFiles>,
}

impl SentinelSet {
    /// Starts the primary, its replica (once in sync) and three sentinels;
    /// returns once every sentinel knows the replica and the other two.
    pub fn start() -> Self {
        Self::start_with_passwords(None, None)
    }

    /// [`SentinelSet::start`] with passwords: `data` on the primary and the
    /// replica (which the sentinels are given with `auth-pass`), `sentinel`
    /// on the sentinels (which they give each other with `sentinel-pass`).
    pub fn start_with_passwords(data: Option<&str>, sentinel: Option<&str>) -> Self {
        Self::start_as(data, sentinel, None)
    }

    /// [`SentinelSet::start`] with every node and sentinel on TLS only (a
    /// private CA, [`TlsFiles`]), replicating and monitoring over TLS.
    pub fn start_tls() -> Self {
        Self::start_as(None, None, Some(TlsFiles::generate()))
    }

    fn start_as(data: Option<&str>, sentinel: Option<&str>, tls: Option<TlsFiles>) -> Self {
        let auth: Vec<&str> = data
            .map(|pw| vec!["--requirepass", pw, "--masterauth", pw])
            .unwrap_or_default();
        let node = |args: &[&str]| match &tls {
            Some(files) => RedisServer::start_tls_with(files, args),
            None => RedisServer::start_with(args),
        };
        let primary = node(&auth);
        let port = primary.port().to_string();
        let mut replica_args = vec!["--replicaof", "127.0.0.1", &port];
        replica_args.extend(&auth);
        let replica = node(&replica_args);
        let set = Self {
            nodes: vec![primary, replica],
            sentinels: Vec::new(),
            data_password: data.map(str::to_owned),
            sentinel_password: sentinel.map(str::to_owned),
            tls,
        };
        set.wait_replicas_in_sync();
        let mut config = format!(
            "sentinel resolve-hostnames no\n\
             sentinel monitor {MASTER} 127.0.0.1 {port} 2\n\
             sentinel down-after-milliseconds {MASTER} 1000\n\
             sentinel failover-timeout {MASTER} 3000\n"
        );
        if let Some(data) = data {
            config.push_str(&format!("sentinel auth-pass {MASTER} {data}\n"));
        }
        if let Some(sentinel) = sentinel {
            config.push_str(&format!(
                "requirepass {sentinel}\nsentinel sentinel-pass {sentinel}\n"
            ));
        }
        let sentinels = (0..3)
            .map(|_| match &set.tls {
                Some(files) => RedisServer::start_sentinel_tls(&config, files),
                None => RedisServer::start_sentinel(&config),
            })
            .collect();
        let set = Self { sentinels, ..set };
        set.wait_sentinels_ready();
        set
    }

    /// Waits (up to 20 s) until every sentinel sees the primary up, its
    /// replica, and the two other sentinels.
    fn wait_sentinels_ready(&self) {
        wait_until("the sentinels to know each other and the replica", || {
            self.sentinel_ports().iter().all(|&port| {
                let fields = flat_fields(&self.sentinel_cli(port, &["SENTINEL", "MASTER", MASTER]));
                let field = |name: &str| {
                    fields
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.as_str())
                };
                field("flags") == Some("master")
                    && field("num-slaves") == Some("1")
                    && field("num-other-sentinels") == Some("2")
            })
        });
    }

    /// Waits (up to 20 s) until every live replica's link is up.
    pub fn wait_replicas_in_sync(&self) {
        wait_until("the replicas to be in sync", || {
            self.live_ports().iter().all(|&port| {
                let info = self.node_cli(port, &["INFO", "replication"]);
                info.contains("role:master") || info.contains("master_link_status:up")
            })
        });
    }

    /// Ports of the data nodes that run.
    pub fn live_ports(&self) -> Vec<u16> {
        RedisServer::live_ports(&self.nodes)
    }

    /// Ports of the sentinels.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(RedisServer::port).collect()
    }

    /// Settings for warmcache: sentinel mode, every sentinel, short
    /// timeouts, TLS trusting the set's CA when it has one.
    pub fn config(&self) -> RedisConfig {
        let mut config = RedisConfig::local_sentinel(&self.sentinel_ports(), MASTER);
        config.op_timeout = Duration::from_millis(300);
        config.connect_timeout = Duration::from_millis(300);
        if let Some(files) = &self.tls {
            config.use_tls = true;
            config.tls_ca_file = Some(files.ca.clone());
        }
        config
    }

    /// The primary's port as the first sentinel names it.
    pub fn primary(&self) -> u16 {
        let reply = self.sentinel_cli(
            self.sentinel_ports()[0],
            &["SENTINEL", "get-master-addr-by-name", MASTER],
        );
        reply
            .lines()
            .nth(1)
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("a primary address, not {reply:?}"))
    }

    /// `SENTINEL FAILOVER` on the first sentinel.
    pub fn failover(&self) {
        assert_eq!(
            self.sentinel_cli(self.sentinel_ports()[0], &["SENTINEL", "FAILOVER", MASTER]),
            "OK"
        );
    }

    /// Waits until every sentinel names a primary other than `old` and that
    /// node answers `ROLE` as a master; returns its port.
    pub fn wait_switched_from(&self, old: u16) -> u16 {
        let mut new = 0;
        wait_until("the sentinels to name the new primary", || {
            let named: Vec<u16> = self
                .sentinel_ports()
                .iter()
                .map(|&port| {
                    self.sentinel_cli(port, &["SENTINEL", "get-master-addr-by-name", MASTER])
                        .lines()
                        .nth(1)
                        .and_then(|p| p.trim().parse().ok())
                        .unwrap_or(0)
                })
                .collect();
            new = named[0];
            named.iter().all(|&p| p == new)
                && new != old
                && self.node_cli(new, &["ROLE"]).starts_with("master")
        });
        new
    }

    /// Kills the data node on `port` (SIGKILL).
    pub fn kill(&mut self, port: u16) {
        self.node(port).kill();
    }

    /// The data node on `port`.
    pub fn node(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .expect("a data node on that port")
    }

    /// `CLIENT LIST` lines on the data node `port` of clients other than the
    /// sentinels, replication links and the `redis-cli` asking: warmcache's.
    pub fn warmcache_clients(&self, port: u16) -> Vec<String> {
        self.node_cli(port, &["CLIENT", "LIST"])
            .lines()
            .filter(|line| {
                let field = |name: &str| {
                    line.split_whitespace()
                        .find_map(|f| f.strip_prefix(name))
                        .unwrap_or_default()
                        .to_owned()
                };
                !field("name=").starts_with("sentinel-")
                    && !field("flags=").contains(['S', 'M'])
                    && field("cmd=") != "client|list"
            })
            .map(str::to_owned)
            .collect()
    }
}

impl SentinelSet {
    /// [`cli`] on the data node `port`, with the data password (over TLS
    /// in a TLS set).
    pub fn node_cli(&self, port: u16, args: &[&str]) -> String {
        cli_as(port, self.data_password.as_deref(), self.ca(), args)
    }

    /// [`cli`] on the sentinel `port`, with the sentinels' password (over
    /// TLS in a TLS set).
    pub fn sentinel_cli(&self, port: u16, args: &[&str]) -> String {
        cli_as(port, self.sentinel_password.as_deref(), self.ca(), args)
    }

    fn ca(&self) -> Option<&std::path::Path> {
        self.tls.as_ref().map(|files| files.ca.as_path())
    }

    /// Makes the replica the primary and the primary its replica by hand,
    /// then has every sentinel monitor the new primary afresh (`SENTINEL
    /// REMOVE`, `MONITOR`): no `+switch-master` is published, and the old
    /// primary's clients are not disconnected (as they are in a Sentinel
    /// failover). Returns (old, new) primary ports; sets without passwords.
    pub fn switch_unannounced(&self) -> (u16, u16) {
        let old = self.primary();
        let new = *self
            .live_ports()
            .iter()
            .find(|&&p| p != old)
            .expect("a replica");
        assert_eq!(self.node_cli(new, &["REPLICAOF", "NO", "ONE"]), "OK");
        assert_eq!(
            self.node_cli(old, &["REPLICAOF", "127.0.0.1", &new.to_string()]),
            "OK"
        );
        for sentinel in self.sentinel_ports() {
            let new = new.to_string();
            for args in [
                &["SENTINEL", "REMOVE", MASTER][..],
                &["SENTINEL", "MONITOR", MASTER, "127.0.0.1", &new, "2"],
                &["SENTINEL", "SET", MASTER, "down-after-milliseconds", "1000"],
                &["SENTINEL", "SET", MASTER, "failover-timeout", "3000"],
            ] {
                assert_eq!(self.sentinel_cli(sentinel, args), "OK", "{args:?}");
            }
        }
        (old, new)
    }
}

/// `redis-cli` prints a flat reply one element a line: pair them up.
fn flat_fields(reply: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = reply.lines().map(str::trim).collect();
    lines
        .chunks(2)
        .filter_map(|pair| Some((pair.first()?.to_string(), pair.get(1)?.to_string())))
        .collect()
}

/// Polls `check` every 50 ms for up to 20 s (blocking; setup only).
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
