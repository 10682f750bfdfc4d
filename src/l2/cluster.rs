//! Redis Cluster (`REDIS_MODE=cluster`): the data connection, the topology
//! and slot-safe tombstone keys.
//!
//! Reads and writes go through redis-rs's `cluster-async` connection, which
//! maps slots to nodes, follows `MOVED` and `ASK`, and refreshes its slot map
//! by itself; we chose it over a hand-made router because it is the same
//! crate and protocol code as the standalone path. Coherence needs more than
//! routing: every keyspace prefix spans all 16384 slots, so the invalidation
//! listener tracks **every primary** on a connection of its own
//! ([`super::topology`]). This module gives it the topology (`CLUSTER
//! SLOTS`: which primary serves which slot range) and the clients to reach
//! each node with the same credentials and TLS settings.
//!
//! **Tombstones.** The erasure and write-back scripts touch the record key
//! and its tombstone in one `EVAL`, which a cluster allows only when both
//! keys hash to one slot. Record keys have no hash tag (ids are
//! `[A-Za-z0-9._-]`), so the tombstone wraps the whole record key in one:
//! `warmcache:erased:{customer_profile:c1}` hashes exactly
//! `customer_profile:c1`, the record key's own slot.

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{
    Client, ErrorKind, IntoConnectionInfo, RedisConnectionInfo, RedisError, TlsCertificates, Value,
};

use super::{RedisConfig, TOMBSTONE_PREFIX};

/// What the listener needs in cluster mode.
#[derive(Clone)]
pub(crate) struct ClusterClients {
    /// Asks the cluster for its topology (any node answers).
    pub(crate) connection: ClusterConnection,
    /// Opens a tracking connection to one node.
    pub(crate) nodes: NodeClients,
}

/// Builds a client for any node, with the settings of every node.
#[derive(Clone)]
pub(crate) struct NodeClients {
    scheme: &'static str,
    /// RESP3, credentials.
    settings: RedisConnectionInfo,
    root_cert: Option<Vec<u8>>,
}

impl NodeClients {
    pub(crate) fn new(
        scheme: &'static str,
        settings: RedisConnectionInfo,
        root_cert: Option<Vec<u8>>,
    ) -> Self {
        Self {
            scheme,
            settings,
            root_cert,
        }
    }

    /// A client of `node`.
    pub(crate) fn client(&self, node: &Node) -> Result<Client, RedisError> {
        let info = format!("{}://{}", self.scheme, node.address())
            .into_connection_info()?
            .set_redis_settings(self.settings.clone());
        super::make_client(info, self.root_cert.clone())
    }
}

/// The cluster connection for reads and writes: lazy (it connects in the
/// background), every command under `op_timeout`.
pub(crate) fn data_connection(
    config: &RedisConfig,
    scheme: &str,
    root_cert: Option<Vec<u8>>,
) -> Result<ClusterConnection, RedisError> {
    let seeds = config
        .seeds()
        .into_iter()
        .map(|(host, port)| {
            format!("{scheme}://{}", Node { host, port }.address()).into_connection_info()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut builder = ClusterClientBuilder::new(seeds)
        .connection_timeout(config.connect_timeout)
        .response_timeout(config.op_timeout)
        // Our breaker and timeout bound the whole operation; a couple of
        // retries let a redirect or a refreshed slot map land within it.
        .retries(2)
        .min_retry_wait(10)
        .max_retry_wait(100);
    if let Some(username) = &config.username {
        builder = builder.username(username);
    }
    if let Some(password) = &config.password {
        builder = builder.password(password.expose());
    }
    if let Some(root_cert) = root_cert {
        builder = builder.certs(TlsCertificates {
            client_tls: None,
            root_cert: Some(root_cert),
        });
    }
    let client = builder.build()?;
    Ok(client.get_pending_async_connection_with_config(
        ClusterConfig::new()
            .set_connection_timeout(config.connect_timeout)
            .set_response_timeout(config.op_timeout),
    ))
}

/// One node's address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Node {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Node {
    /// `host:port` (`[v6]:port`).
    pub(crate) fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Which primary serves which slots, sorted by first slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Topology {
    ranges: Vec<(u16, u16, Node)>,
}

impl Topology {
    /// Each slot range (first, last) and the primary serving it, sorted.
    pub(crate) fn ranges(&self) -> &[(u16, u16, Node)] {
        &self.ranges
    }

    /// The primaries, each once, in address order.
    pub(crate) fn primaries(&self) -> Vec<Node> {
        let mut nodes: Vec<Node> = self.ranges.iter().map(|(_, _, n)| n.clone()).collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// Parses a `CLUSTER SLOTS` reply.
    fn parse(reply: &Value) -> Option<Self> {
        let Value::Array(entries) = reply else {
            return None;
        };
        let mut ranges = Vec::with_capacity(entries.len());
        for entry in entries {
            let Value::Array(fields) = entry else {
                return None;
            };
            let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(primary))) =
                (fields.first(), fields.get(1), fields.get(2))
            else {
                return None;
            };
            let host = match primary.first()? {
                Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok()?,
                Value::SimpleString(text) => text.clone(),
                _ => return None,
            };
            let Some(Value::Int(port)) = primary.get(1) else {
                return None;
            };
            if host.is_empty() {
                return None;
            }
            ranges.push((
                u16::try_from(*start).ok()?,
                u16::try_from(*end).ok()?,
                Node {
                    host,
                    port: u16::try_from(*port).ok()?,
                },
            ));
        }
        ranges.sort();
        Some(Self { ranges })
    }
}

/// Asks the cluster (any node) for its topology, within `timeout`.
pub(crate) async fn fetch_topology(
    connection: &mut ClusterConnection,
    timeout: Duration,
) -> Result<Topology, RedisError> {
    let cmd = redis::cmd("CLUSTER").arg("SLOTS").clone();
    let reply = tokio::time::timeout(timeout, connection.req_packed_command(&cmd))
        .await
        .map_err(|_| RedisError::from((ErrorKind::Io, "CLUSTER SLOTS timed out")))??;
    Topology::parse(&reply)
        .filter(|t| !t.ranges.is_empty())
        .ok_or_else(|| RedisError::from((ErrorKind::Parse, "unexpected CLUSTER SLOTS reply")))
}

/// The tombstone key of `key`: in cluster mode hash-tagged to `key`'s slot.
pub(crate) fn tombstone_key(key: &str, cluster: bool) -> String {
    if cluster && hash_tag(key).is_none() {
        format!("{TOMBSTONE_PREFIX}{{{key}}}")
    } else {
        // Standalone, or the key's own tag already decides its slot (the
        // prefix has no brace, so the key's first `{` is the tombstone's).
        format!("{TOMBSTONE_PREFIX}{key}")
    }
}

/// The part of `key` that decides its slot: the text between its first `{`
/// and the next `}`, when that is not empty.
fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let len = key[open + 1..].find('}')?;
    (len > 0).then(|| &key[open + 1..open + 1 + len])
}

/// What serves `key`'s slot in `ranges` (first slot, last slot, what),
/// sorted by first slot.
pub(crate) fn serving<'a, T>(ranges: &'a [(u16, u16, T)], key: &str) -> Option<&'a T> {
    let slot = slot_of(key);
    let after = ranges.partition_point(|(first, _, _)| *first <= slot);
    let (_, last, what) = ranges.get(after.checked_sub(1)?)?;
    (slot <= *last).then_some(what)
}

/// The cluster slot of `key`, as Redis computes it: CRC16 (XMODEM) of its
/// hash tag, or of the whole key, modulo 16384.
pub(crate) fn slot_of(key: &str) -> u16 {
    let hashed = hash_tag(key).unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(hashed.as_bytes()) % 16384
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::cluster_routing::Slot;

    #[test]
    fn a_tombstone_hashes_to_its_record_key_slot() {
        for key in [
            "customer_profile:c1",
            "age_verification:cust-42",
            "reasoning_job:j.9_x",
            "tagged:{user7}:x",
        ] {
            let tombstone = tombstone_key(key, true);
            assert_eq!(
                Slot::for_key(&tombstone),
                Slot::for_key(key),
                "{tombstone} vs {key}"
            );
        }
        assert_eq!(
            tombstone_key("customer_profile:c1", true),
            "warmcache:erased:{customer_profile:c1}"
        );
        assert_eq!(
            tombstone_key("customer_profile:c1", false),
            "warmcache:erased:customer_profile:c1"
        );
    }

    #[test]
    fn slots_are_computed_as_redis_computes_them() {
        for key in [
            "customer_profile:c1",
            "age_verification:cust-42",
            "reasoning_job:j.9_x",
            "tagged:{user7}:x",
            "{}empty-tag",
            "{a}{b}",
            "open{only",
            "",
        ] {
            assert_eq!(Slot::new(slot_of(key)), Some(Slot::for_key(key)), "{key:?}");
        }
        // Redis's own examples (cluster specification): "123456789" is 0x31C3.
        assert_eq!(slot_of("123456789"), 0x31C3);
        assert_eq!(slot_of("{user1000}.following"), slot_of("user1000"));
    }

    #[test]
    fn cluster_slots_replies_parse_to_primaries() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("10.0.0.2", 7001),
                node("10.0.0.5", 7004),
            ]),
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
            ]),
        ]);
        let topology = Topology::parse(&reply).expect("parses");
        assert_eq!(
            topology
                .primaries()
                .iter()
                .map(Node::address)
                .collect::<Vec<_>>(),
            vec!["10.0.0.1:7000", "10.0.0.2:7001"]
        );
        assert_eq!(Topology::parse(&Value::Int(1)), None);
    }
}
