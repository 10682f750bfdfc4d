//! The connection one operation runs on, and how clients are built (with
//! the CA of `REDIS_TLS_CA_FILE` when given).

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::{
    Client, Cmd, ConnectionInfo, Pipeline, RedisError, RedisFuture, TlsCertificates, Value,
};

/// The connection one operation runs on.
#[derive(Clone)]
pub(crate) enum Conn {
    /// The main, reconnecting connection.
    Main(ConnectionManager),
    /// The listener's tracking connection (`NOLOOP`).
    Tracking(MultiplexedConnection),
    /// A Redis Cluster connection (routes by key, follows redirects).
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Main(c) => c.req_packed_command(cmd),
            Self::Tracking(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Main(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Tracking(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Main(c) => c.get_db(),
            Self::Tracking(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

pub(crate) fn make_client(
    info: ConnectionInfo,
    root_cert: Option<Vec<u8>>,
) -> Result<Client, RedisError> {
    match root_cert {
        Some(root_cert) => Client::build_with_tls(
            info,
            TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            },
        ),
        None => Client::open(info),
    }
}
