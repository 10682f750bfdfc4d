//! How the [`Follower`] talks to the sentinels: discovery (`SENTINEL
//! get-master-addr-by-name`, then `ROLE` on the named server, each under the
//! connect timeout) and the `+switch-master` subscriptions.

use std::sync::Arc;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError, Role, Value};
use tokio_util::sync::CancellationToken;

use super::super::cluster::{Node, NodeClients};
use super::super::tracking::wait;
use super::{FIRST_BACKOFF, Follower, SUBSCRIPTION_PING_EVERY, SWITCH_CHANNEL};

impl Follower {
    /// Asks the sentinels in order; the first named server that answers
    /// `ROLE` as a master wins.
    pub(super) async fn discover(&self) -> Result<Node, String> {
        let mut reasons = Vec::new();
        for sentinel in &self.settings.addresses {
            let named =
                tokio::time::timeout(self.settings.connect_timeout, self.ask(sentinel)).await;
            let node = match named {
                Ok(Ok(Some(node))) => node,
                Ok(Ok(None)) => {
                    reasons.push(format!(
                        "{} does not know {}",
                        sentinel.address(),
                        self.settings.master
                    ));
                    continue;
                }
                Ok(Err(e)) => {
                    reasons.push(format!("{}: {e}", sentinel.address()));
                    continue;
                }
                Err(_) => {
                    reasons.push(format!("{}: timed out", sentinel.address()));
                    continue;
                }
            };
            match self.is_primary(&node).await {
                Ok(true) => return Ok(node),
                Ok(false) => reasons.push(format!(
                    "{} names {}, which is not a master",
                    sentinel.address(),
                    node.address()
                )),
                Err(e) => reasons.push(format!(
                    "{} names {}: {e}",
                    sentinel.address(),
                    node.address()
                )),
            }
        }
        Err(reasons.join("; "))
    }

    /// `SENTINEL get-master-addr-by-name` on one sentinel.
    pub(super) async fn ask(&self, sentinel: &Node) -> Result<Option<Node>, RedisError> {
        let mut connection = self.connect(&self.settings.sentinels, sentinel).await?;
        let reply: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.settings.master)
            .query_async(&mut connection)
            .await?;
        Ok(reply.map(|(host, port)| Node { host, port }))
    }

    /// Whether `node` answers `ROLE` as a master, within the connect timeout.
    pub(super) async fn is_primary(&self, node: &Node) -> Result<bool, String> {
        let asked = async {
            let mut connection = self.connect(&self.settings.data_resp2, node).await?;
            redis::cmd("ROLE")
                .query_async::<Role>(&mut connection)
                .await
        };
        match tokio::time::timeout(self.settings.connect_timeout, asked).await {
            Ok(Ok(role)) => Ok(matches!(role, Role::Primary { .. })),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_owned()),
        }
    }

    pub(super) async fn connect(
        &self,
        clients: &NodeClients,
        node: &Node,
    ) -> Result<MultiplexedConnection, RedisError> {
        let timeout = Some(self.settings.connect_timeout);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout);
        clients
            .client(node)?
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// A subscription to `+switch-master` on sentinel `index`, for good.
    pub(super) async fn subscribe(self: Arc<Self>, index: usize, cancel: CancellationToken) {
        let sentinel = self.settings.addresses[index].clone();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let connect = async {
                let mut pubsub = self
                    .settings
                    .sentinels
                    .client(&sentinel)?
                    .get_async_pubsub()
                    .await?;
                pubsub.subscribe(SWITCH_CHANNEL).await?;
                Ok::<_, RedisError>(pubsub.split())
            };
            let connected = tokio::select! {
                () = cancel.cancelled() => return,
                connected = tokio::time::timeout(self.settings.connect_timeout, connect) => connected,
            };
            let ended = match connected {
                Ok(Ok((mut sink, mut stream))) => {
                    backoff = FIRST_BACKOFF;
                    // A switch may have been announced while nobody listened.
                    self.wake.notify_one();
                    loop {
                        tokio::select! {
                            () = cancel.cancelled() => return,
                            message = stream.next() => match message {
                                Some(message) => self.on_switch_message(message.get_payload_bytes()),
                                None => break "the connection closed".to_owned(),
                            },
                            () = tokio::time::sleep(SUBSCRIPTION_PING_EVERY) => {
                                let pong = tokio::time::timeout(self.settings.connect_timeout, sink.ping::<Value>()).await;
                                if !matches!(pong, Ok(Ok(_))) {
                                    break "no answer to PING".to_owned();
                                }
                            }
                        }
                    }
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "timed out connecting".to_owned(),
            };
            tracing::debug!(sentinel = %sentinel.address(), why = ended, "sentinel subscription lost; reconnecting");
            match wait(&cancel, backoff).await {
                Some(next) => backoff = next,
                None => return,
            }
        }
    }

    /// `<master> <old ip> <old port> <new ip> <new port>`.
    pub(super) fn on_switch_message(&self, payload: &[u8]) {
        match parse_switch(payload) {
            Some((master, node)) if master == self.settings.master => self.announce(node),
            Some(_) => {}
            None => tracing::debug!("unexpected +switch-master message"),
        }
    }
}

/// The master name and new primary of a `+switch-master` message.
fn parse_switch(payload: &[u8]) -> Option<(&str, Node)> {
    let text = std::str::from_utf8(payload).ok()?;
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [master, _, _, host, port] = fields[..] else {
        return None;
    };
    let port = port.parse().ok().filter(|p| *p > 0)?;
    Some((
        master,
        Node {
            host: host.to_owned(),
            port,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_messages_name_the_master_and_its_new_address() {
        let (master, node) =
            parse_switch(b"mymaster 127.0.0.1 6379 10.0.0.7 6380").expect("parses");
        assert_eq!(master, "mymaster");
        assert_eq!(node.address(), "10.0.0.7:6380");
        assert!(parse_switch(b"mymaster 127.0.0.1 6379").is_none());
        assert!(parse_switch(b"mymaster a 1 b 0").is_none());
        assert!(parse_switch(&[0xff, 0xfe]).is_none());
    }
}
