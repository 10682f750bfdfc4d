//! The Redis admin commands the fault schedules send, each on a fresh
//! connection to one node, every error tolerated (a fault that cannot be
//! injected is skipped; the schedule goes on): `INFO`, `REPLICAOF`, the
//! wait for a replica to have everything, `CLIENT PAUSE`, `CLIENT KILL` of
//! tracking connections, and a server restart.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::support::RedisServer;

/// Longer than any `CLIENT PAUSE` of the soak's own, which an admin
/// command may have to wait out.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// One admin command on the node `port`: its reply, `None` on any error
/// or after [`ADMIN_TIMEOUT`].
pub(super) async fn query(port: u16, args: &[&str]) -> Option<redis::Value> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let mut cmd = redis::cmd(args[0]);
    cmd.arg(&args[1..]);
    let answer = async {
        let mut c = client.get_multiplexed_async_connection().await.ok()?;
        cmd.query_async::<redis::Value>(&mut c).await.ok()
    };
    tokio::time::timeout(ADMIN_TIMEOUT, answer).await.ok()?
}

/// [`query`] as text; errors are ignored (the fault schedule goes on), and
/// returned as an empty string.
pub(super) async fn command(port: u16, args: &[&str]) -> String {
    match query(port, args).await {
        Some(redis::Value::BulkString(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Some(redis::Value::VerbatimString { text, .. }) => text,
        Some(redis::Value::SimpleString(text)) => text,
        Some(redis::Value::Okay) => "OK".to_owned(),
        Some(redis::Value::Int(n)) => n.to_string(),
        _ => String::new(),
    }
}

pub(super) async fn info(port: u16, section: &str) -> String {
    command(port, &["INFO", section]).await
}

pub(super) async fn replicaof(port: u16, primary: Option<u16>) {
    let primary = primary.map(|p| p.to_string());
    match &primary {
        Some(p) => command(port, &["REPLICAOF", "127.0.0.1", p]).await,
        None => command(port, &["REPLICAOF", "NO", "ONE"]).await,
    };
}

/// A number field of an `INFO` reply.
pub(super) fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.parse().ok())
}

/// Whether the node `port` answers `INFO replication` as a primary.
pub(super) async fn is_primary(port: u16) -> bool {
    info(port, "replication").await.contains("role:master")
}

/// Whether an `INFO replication` reply is a replica's whose link to the
/// primary on `primary` is up.
fn linked(info: &str, primary: u16) -> bool {
    info.contains("master_link_status:up")
        && info_field(info, "master_port") == Some(u64::from(primary))
}

/// Whether the node `port` replicates from the primary on `primary`, link up.
pub(super) async fn linked_to(port: u16, primary: u16) -> bool {
    linked(&info(port, "replication").await, primary)
}

/// Whether the replica on `replica`, linked to the primary on `primary`,
/// has applied everything the primary has (call with writes paused there;
/// polled 200 times, about a second).
pub(super) async fn caught_up(primary: u16, replica: u16) -> bool {
    for _ in 0..200 {
        let wanted = info_field(&info(primary, "replication").await, "master_repl_offset");
        let theirs = info(replica, "replication").await;
        if linked(&theirs, primary)
            && wanted.is_some()
            && wanted == info_field(&theirs, "slave_repl_offset")
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

/// Restarts the server on `port` among `servers(set)`, on a blocking task
/// with the set locked; returns whether it runs again. A `dump.rdb` left
/// by a replica's full sync is removed first: a data node comes back empty,
/// not with an old data set. (A sentinel keeps its `sentinel.conf`.)
pub(super) async fn restart_server<T: Send + 'static>(
    set: &Arc<Mutex<T>>,
    servers: fn(&mut T) -> &mut Vec<RedisServer>,
    port: u16,
) -> bool {
    let set = Arc::clone(set);
    tokio::task::spawn_blocking(move || {
        let mut set = set.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(server) = servers(&mut set).iter_mut().find(|s| s.port() == port) else {
            return false;
        };
        let _ = std::fs::remove_file(server.dir().join("dump.rdb"));
        server.restart();
        server.is_running()
    })
    .await
    // A restart that panicked (did not start in time) is a fault that
    // went wrong, not the end of the schedule.
    .unwrap_or(false)
}

/// Full syncs from the node `port` start at once, not after Redis's 5 s
/// diskless-sync delay: a replica that restarted empty (the kill faults')
/// has its data within milliseconds, not seconds during which a failover
/// could promote it empty. Not kept across a restart.
pub(super) async fn sync_at_once(port: u16) {
    command(port, &["CONFIG", "SET", "repl-diskless-sync-delay", "0"]).await;
}

/// `CLIENT PAUSE` (every command) on the node `port` for `ms`, waited out.
pub(super) async fn client_pause(port: u16, ms: u64) {
    command(port, &["CLIENT", "PAUSE", &ms.to_string()]).await;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// `CLIENT KILL` of every connection with tracking on, on the node `port`.
pub(super) async fn kill_tracking(port: u16) {
    let list = command(port, &["CLIENT", "LIST"]).await;
    for id in tracking_client_ids(&list) {
        command(port, &["CLIENT", "KILL", "ID", &id]).await;
    }
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
