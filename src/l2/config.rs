//! Redis connection settings from `REDIS_*` variables, with the password kept secret.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::settings::{ConfigError, parse_ms};

/// `REDIS_SENTINEL_MASTER` when unset.
const DEFAULT_SENTINEL_MASTER: &str = "mymaster";

/// A value that must never be printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where and how to reach Redis.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisConfig {
    /// Host name or IP address (`REDIS_HOST`, default `127.0.0.1`).
    pub host: String,
    /// Port (`REDIS_PORT`, default 6379).
    pub port: u16,
    /// ACL user (`REDIS_USERNAME`); `None` for the default user.
    pub username: Option<String>,
    /// Password (`REDIS_PASSWORD`).
    pub password: Option<Secret>,
    /// Connect with TLS (`REDIS_USE_TLS`).
    pub use_tls: bool,
    /// PEM file of the CA that signed the server certificate
    /// (`REDIS_TLS_CA_FILE`); the system roots when `None`.
    pub tls_ca_file: Option<PathBuf>,
    /// Database number 0 to 15 (`REDIS_DB`).
    pub db: u8,
    /// Time bound of every operation (`REDIS_TIMEOUT_MS`, default 250 ms).
    pub op_timeout: Duration,
    /// Time bound of one connection attempt (`REDIS_CONNECT_TIMEOUT_MS`, default 1000 ms).
    pub connect_timeout: Duration,
    /// Life of an erasure's tombstone, which keeps loaders from writing the
    /// erased value back (`WARMCACHE_TOMBSTONE_TTL_MS`, default 60 s).
    pub tombstone_ttl: Duration,
    /// Replicas an erasure waits for (`WARMCACHE_ERASURE_REPLICAS`, default 0).
    pub erasure_replicas: u32,
    /// How long an erasure waits for them (`WARMCACHE_ERASURE_WAIT_MS`, default 100 ms).
    pub erasure_wait: Duration,
    /// One server, a Redis Cluster, or a Sentinel-managed primary
    /// (`REDIS_MODE`, default `standalone`).
    pub mode: RedisMode,
    /// More seed nodes of a cluster besides `host:port`
    /// (`REDIS_CLUSTER_NODES`, comma-separated `host:port`).
    pub cluster_nodes: Vec<(String, u16)>,
    /// The sentinels to ask for the primary, in order (`REDIS_SENTINELS`,
    /// comma-separated `host:port`; required in sentinel mode).
    pub sentinels: Vec<(String, u16)>,
    /// The name the sentinels monitor the primary under
    /// (`REDIS_SENTINEL_MASTER`, default `mymaster`).
    pub sentinel_master: String,
    /// ACL user on the sentinels (`REDIS_SENTINEL_USERNAME`).
    pub sentinel_username: Option<String>,
    /// Password of the sentinels (`REDIS_SENTINEL_PASSWORD`); the data
    /// nodes' credentials are never sent to a sentinel.
    pub sentinel_password: Option<Secret>,
    /// How often the current primary is asked `ROLE`, which catches a
    /// failover whose `+switch-master` message was missed
    /// (`REDIS_SENTINEL_ROLE_CHECK_MS`, default 1000 ms).
    pub sentinel_role_check: Duration,
}

/// How warmcache reaches Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedisMode {
    /// One server (or a managed service behind one address).
    #[default]
    Standalone,
    /// A Redis Cluster: `REDIS_HOST:REDIS_PORT` and `REDIS_CLUSTER_NODES`
    /// are seeds; commands follow `MOVED`/`ASK`, and every primary is tracked.
    Cluster,
    /// A primary with replicas managed by Redis Sentinel: the sentinels
    /// (`REDIS_SENTINELS`) name the primary, and the handle follows every
    /// failover (`REDIS_HOST`/`REDIS_PORT` are not used).
    Sentinel,
}

impl RedisConfig {
    /// Plain TCP to `127.0.0.1:port`, database 0, default timeouts.
    pub fn local(port: u16) -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port,
            username: None,
            password: None,
            use_tls: false,
            tls_ca_file: None,
            db: 0,
            op_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_millis(1000),
            tombstone_ttl: Duration::from_secs(60),
            erasure_replicas: 0,
            erasure_wait: Duration::from_millis(100),
            mode: RedisMode::Standalone,
            cluster_nodes: Vec::new(),
            sentinels: Vec::new(),
            sentinel_master: DEFAULT_SENTINEL_MASTER.to_owned(),
            sentinel_username: None,
            sentinel_password: None,
            sentinel_role_check: Duration::from_secs(1),
        }
    }

    /// The primary named `master` by the sentinels on `127.0.0.1` at `ports`.
    pub fn local_sentinel(ports: &[u16], master: &str) -> Self {
        Self {
            mode: RedisMode::Sentinel,
            sentinels: ports.iter().map(|&p| ("127.0.0.1".to_owned(), p)).collect(),
            sentinel_master: master.to_owned(),
            ..Self::local(6379)
        }
    }

    /// A Redis Cluster reached through the seed node `127.0.0.1:port`.
    pub fn local_cluster(port: u16) -> Self {
        Self {
            mode: RedisMode::Cluster,
            ..Self::local(port)
        }
    }

    /// Every seed node: `host:port` first, then `REDIS_CLUSTER_NODES`.
    pub fn seeds(&self) -> Vec<(String, u16)> {
        std::iter::once((self.host.clone(), self.port))
            .chain(self.cluster_nodes.iter().cloned())
            .collect()
    }

    /// Reads the `REDIS_*` variables through `lookup`; empty values count as unset.
    ///
    /// # Errors
    /// The first variable with a bad value. The password is never validated,
    /// so it never appears in an error.
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut config = Self::local(6379);
        if let Some(host) = get("REDIS_HOST") {
            let host = host.trim();
            if host
                .chars()
                .any(|c| c.is_whitespace() || c == '/' || c == '@')
            {
                return Err(ConfigError::new(
                    "REDIS_HOST",
                    host,
                    "a host name or IP address",
                ));
            }
            host.clone_into(&mut config.host);
        }
        if let Some(port) = get("REDIS_PORT") {
            config.port = match port.trim().parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => {
                    return Err(ConfigError::new(
                        "REDIS_PORT",
                        port,
                        "a port number from 1 to 65535",
                    ));
                }
            };
        }
        config.username = get("REDIS_USERNAME").map(|u| u.trim().to_owned());
        // Not trimmed: spaces may be part of a password.
        config.password = lookup("REDIS_PASSWORD")
            .filter(|p| !p.is_empty())
            .map(Secret);
        if let Some(tls) = get("REDIS_USE_TLS") {
            config.use_tls = match tls.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => return Err(ConfigError::new("REDIS_USE_TLS", tls, "true or false")),
            };
        }
        config.tls_ca_file = get("REDIS_TLS_CA_FILE").map(|p| PathBuf::from(p.trim()));
        if let Some(db) = get("REDIS_DB") {
            config.db = match db.trim().parse::<u8>() {
                Ok(n) if n <= 15 => n,
                _ => {
                    return Err(ConfigError::new(
                        "REDIS_DB",
                        db,
                        "a database number from 0 to 15",
                    ));
                }
            };
        }
        config.op_timeout = Duration::from_millis(parse_ms(
            get("REDIS_TIMEOUT_MS"),
            "REDIS_TIMEOUT_MS",
            250,
            10,
            60_000,
        )?);
        config.connect_timeout = Duration::from_millis(parse_ms(
            get("REDIS_CONNECT_TIMEOUT_MS"),
            "REDIS_CONNECT_TIMEOUT_MS",
            1_000,
            10,
            60_000,
        )?);
        config.tombstone_ttl = Duration::from_millis(parse_ms(
            get("WARMCACHE_TOMBSTONE_TTL_MS"),
            "WARMCACHE_TOMBSTONE_TTL_MS",
            60_000,
            1_000,
            86_400_000,
        )?);
        if let Some(replicas) = get("WARMCACHE_ERASURE_REPLICAS") {
            config.erasure_replicas = match replicas.trim().parse::<u32>() {
                Ok(n) if n <= 64 => n,
                _ => {
                    return Err(ConfigError::new(
                        "WARMCACHE_ERASURE_REPLICAS",
                        replicas,
                        "a number of replicas from 0 to 64",
                    ));
                }
            };
        }
        config.erasure_wait = Duration::from_millis(parse_ms(
            get("WARMCACHE_ERASURE_WAIT_MS"),
            "WARMCACHE_ERASURE_WAIT_MS",
            100,
            1,
            60_000,
        )?);
        if let Some(mode) = get("REDIS_MODE") {
            config.mode = match mode.trim().to_ascii_lowercase().as_str() {
                "standalone" => RedisMode::Standalone,
                "cluster" => RedisMode::Cluster,
                "sentinel" => RedisMode::Sentinel,
                _ => {
                    return Err(ConfigError::new(
                        "REDIS_MODE",
                        mode,
                        "standalone, cluster or sentinel",
                    ));
                }
            };
        }
        if let Some(nodes) = get("REDIS_CLUSTER_NODES") {
            config.cluster_nodes = parse_nodes(&nodes).ok_or_else(|| {
                ConfigError::new(
                    "REDIS_CLUSTER_NODES",
                    &nodes,
                    "a comma-separated list of host:port",
                )
            })?;
        }
        config.read_sentinel_settings(&get, lookup)?;
        if config.mode == RedisMode::Cluster && config.db != 0 {
            return Err(ConfigError::new(
                "REDIS_DB",
                config.db.to_string(),
                "0 with REDIS_MODE=cluster (a Redis Cluster has only database 0)",
            ));
        }
        Ok(config)
    }

    /// `REDIS_SENTINELS` and the other `REDIS_SENTINEL_*` variables.
    fn read_sentinel_settings(
        &mut self,
        get: &impl Fn(&str) -> Option<String>,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        const LIST: &str = "a comma-separated list of host:port";
        match get("REDIS_SENTINELS") {
            Some(list) => {
                self.sentinels = parse_nodes(&list)
                    .filter(|nodes| !nodes.is_empty())
                    .ok_or_else(|| ConfigError::new("REDIS_SENTINELS", &list, LIST))?;
            }
            None if self.mode == RedisMode::Sentinel => {
                return Err(ConfigError::new(
                    "REDIS_SENTINELS",
                    "",
                    format!("{LIST} (required with REDIS_MODE=sentinel)"),
                ));
            }
            None => {}
        }
        if let Some(master) = get("REDIS_SENTINEL_MASTER") {
            let master = master.trim();
            if master.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigError::new(
                    "REDIS_SENTINEL_MASTER",
                    master,
                    "a master name without spaces",
                ));
            }
            master.clone_into(&mut self.sentinel_master);
        }
        self.sentinel_username = get("REDIS_SENTINEL_USERNAME").map(|u| u.trim().to_owned());
        self.sentinel_password = lookup("REDIS_SENTINEL_PASSWORD")
            .filter(|p| !p.is_empty())
            .map(Secret);
        self.sentinel_role_check = Duration::from_millis(parse_ms(
            get("REDIS_SENTINEL_ROLE_CHECK_MS"),
            "REDIS_SENTINEL_ROLE_CHECK_MS",
            1_000,
            50,
            3_600_000,
        )?);
        Ok(())
    }

    /// `host:port`, for log lines.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// `host:port,host:port`; `None` if any entry is malformed.
fn parse_nodes(list: &str) -> Option<Vec<(String, u16)>> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (host, port) = entry.rsplit_once(':')?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
            let bad = |c: char| c.is_whitespace() || c == '/' || c == '@';
            (!host.is_empty() && !host.contains(bad)).then(|| (host.to_owned(), port))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<RedisConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        RedisConfig::from_lookup(&|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_and_full_settings() {
        assert_eq!(parse(&[]).expect("defaults"), RedisConfig::local(6379));
        let config = parse(&[
            ("REDIS_HOST", "cache.internal"),
            ("REDIS_PORT", "6380"),
            ("REDIS_USERNAME", "warmcache"),
            ("REDIS_PASSWORD", "s3cret pass"),
            ("REDIS_USE_TLS", "TRUE"),
            ("REDIS_DB", "15"),
            ("REDIS_TIMEOUT_MS", "100"),
        ])
        .expect("valid");
        assert_eq!(config.endpoint(), "cache.internal:6380");
        assert_eq!(
            config.password.as_ref().map(Secret::expose),
            Some("s3cret pass")
        );
        assert!(config.use_tls);
        assert_eq!(config.db, 15);
        assert_eq!(config.op_timeout, Duration::from_millis(100));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("REDIS_PORT", "0"),
            ("REDIS_PORT", "70000"),
            ("REDIS_PORT", "http"),
            ("REDIS_DB", "16"),
            ("REDIS_DB", "-1"),
            ("REDIS_USE_TLS", "maybe"),
            ("REDIS_TIMEOUT_MS", "0"),
            ("REDIS_HOST", "user@host"),
            ("REDIS_MODE", "sharded"),
            ("REDIS_CLUSTER_NODES", "a:1,b"),
            ("REDIS_CLUSTER_NODES", "a:0"),
            ("REDIS_SENTINELS", "s1:26379,nope"),
            ("REDIS_SENTINELS", ","),
            ("REDIS_SENTINEL_MASTER", "my master"),
            ("REDIS_SENTINEL_ROLE_CHECK_MS", "10"),
            ("REDIS_SENTINEL_ROLE_CHECK_MS", "hourly"),
        ] {
            let err = parse(&[(name, value)]).expect_err("rejected");
            assert_eq!((err.name, err.value.as_str()), (name, value));
        }
    }

    #[test]
    fn cluster_mode_takes_seed_nodes_and_refuses_a_database_other_than_0() {
        let config = parse(&[
            ("REDIS_MODE", "Cluster"),
            ("REDIS_HOST", "10.0.0.1"),
            ("REDIS_PORT", "7000"),
            ("REDIS_CLUSTER_NODES", "10.0.0.2:7001, [::1]:7002"),
        ])
        .expect("valid");
        assert_eq!(config.mode, RedisMode::Cluster);
        assert_eq!(
            config.seeds(),
            vec![
                ("10.0.0.1".to_owned(), 7000),
                ("10.0.0.2".to_owned(), 7001),
                ("::1".to_owned(), 7002)
            ]
        );
        let err = parse(&[("REDIS_MODE", "cluster"), ("REDIS_DB", "2")]).expect_err("refused");
        assert_eq!((err.name, err.value.as_str()), ("REDIS_DB", "2"));
        assert!(err.to_string().contains("cluster"), "{err}");
        assert_eq!(parse(&[("REDIS_DB", "2")]).expect("standalone").db, 2);
    }

    #[test]
    fn sentinel_mode_needs_sentinels_and_keeps_their_password_secret() {
        let err = parse(&[("REDIS_MODE", "sentinel")]).expect_err("no sentinels");
        assert_eq!(err.name, "REDIS_SENTINELS");
        assert!(err.to_string().contains("required"), "{err}");
        let config = parse(&[
            ("REDIS_MODE", "Sentinel"),
            ("REDIS_SENTINELS", "10.0.0.1:26379, [::1]:26380"),
            ("REDIS_SENTINEL_USERNAME", "watcher"),
            ("REDIS_SENTINEL_PASSWORD", "sentinel-hunter2"),
            ("REDIS_DB", "3"),
        ])
        .expect("valid");
        assert_eq!(config.mode, RedisMode::Sentinel);
        assert_eq!(
            config.sentinels,
            vec![("10.0.0.1".to_owned(), 26379), ("::1".to_owned(), 26380)]
        );
        assert_eq!(config.sentinel_master, "mymaster");
        assert_eq!(config.sentinel_role_check, Duration::from_secs(1));
        assert_eq!(config.sentinel_username.as_deref(), Some("watcher"));
        assert_eq!(config.db, 3, "the data nodes' database");
        let shown = format!("{config:?}");
        assert!(!shown.contains("sentinel-hunter2"), "{shown}");
        let named = parse(&[
            ("REDIS_MODE", "sentinel"),
            ("REDIS_SENTINELS", "s:1"),
            ("REDIS_SENTINEL_MASTER", "orders"),
            ("REDIS_SENTINEL_ROLE_CHECK_MS", "250"),
        ])
        .expect("valid");
        assert_eq!(named.sentinel_master, "orders");
        assert_eq!(named.sentinel_role_check, Duration::from_millis(250));
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let config = parse(&[("REDIS_PASSWORD", "hunter2-very-secret")]).expect("valid");
        let shown = format!(
            "{config:?} {:?} {}",
            config.password,
            config
                .password
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"));
    }
}
