//! Test support: real `redis-server` and `redis-sentinel` processes owned by
//! the test (and, in [`bigquery`], BigQuery emulator processes and fakes; in
//! [`app`], the reference router in mock mode; in [`scripted`], a
//! controllable source).
//!
//! Each [`RedisServer`] runs on a free loopback port in its own temporary
//! directory, and is killed (and its directory removed) when dropped. Tests
//! can kill and restart it on the same port to simulate an outage.

#![allow(dead_code, unreachable_pub)]

pub mod app;
pub mod bigquery;
pub mod bullmq;
pub mod cluster;
pub mod history;
pub mod instance;
pub mod keyed;
pub mod latency;
pub mod node;
pub mod proxy;
pub mod scripted;
pub mod sentinel;
#[cfg(feature = "bigquery")]
pub mod shop;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use warmcache::records::{AgeVerification, OtherFields, RecordTime, TimeFormat};
use warmcache::{RedisConfig, Secret};

/// Polls `check` every 10 ms for up to 5 s; panics naming `what` if it
/// never holds. For events on real sockets (an invalidation push), which a
/// test cannot await directly.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(what, Duration::from_secs(5), check).await;
}

/// [`eventually`] with a bound of its own (e.g. long enough for a failover).
pub async fn eventually_within<F, Fut>(what: &str, bound: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + bound;
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A `redis-server` (or `redis-sentinel`) child process.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    /// `redis-server`, or `redis-sentinel` (its config file is the first argument).
    program: &'static str,
}

/// An age-verification record whose `method` tells versions apart.
pub fn age_record(customer: &str, method: &str) -> AgeVerification {
    AgeVerification {
        customer_id: customer.to_owned(),
        verified: true,
        method: Some(method.to_owned()),
        verified_at: RecordTime::from_unix_ms(1_764_115_200_000, TimeFormat::Iso),
        date_of_birth: None,
        age_over: Some(18),
        other: OtherFields::new(),
    }
}

/// Settings for warmcache to reach `127.0.0.1:port` (plain TCP, db 0,
/// short timeouts).
pub fn loopback_config(port: u16) -> RedisConfig {
    let mut config = RedisConfig::local(port);
    config.op_timeout = Duration::from_millis(200);
    config.connect_timeout = Duration::from_millis(200);
    config
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// A fresh directory under the system temp dir, removed by the caller.
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("warmcache-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Why a redis-server did not start.
enum SpawnError {
    /// A port it was given was taken: worth another try.
    AddressInUse(String),
    /// Anything else: a test setup bug.
    Failed(String),
}

impl RedisServer {
    /// A plain server on a free port.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server with extra `redis-server` arguments (e.g. `--requirepass x`).
    /// The port is chosen here; TLS servers pass `--tls-port` themselves
    /// and use [`RedisServer::start_tls`].
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_program("redis-server", None, extra)
    }

    /// A `redis-sentinel` on a free port; `config` is its configuration
    /// after the `port`, `bind` and `dir` lines (Sentinel needs a writable
    /// file: it records what it learns there).
    pub fn start_sentinel(config: &str) -> Self {
        Self::start_program("redis-sentinel", Some(config), &[])
    }

    fn start_program(program: &'static str, config: Option<&str>, extra: &[&str]) -> Self {
        // A port picked free may be taken before redis-server binds it (by
        // a parallel test's server or an outgoing connection): pick again.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let dir = temp_dir("redis");
            let mut args: Vec<String> = Vec::new();
            if let Some(config) = config {
                let file = dir.join("sentinel.conf");
                let text = format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\n{config}",
                    dir.display()
                );
                std::fs::write(&file, text).expect("write the sentinel config");
                args.push(file.display().to_string());
            }
            args.extend(["--port".to_owned(), port.to_string()]);
            args.extend(extra.iter().map(|s| (*s).to_owned()));
            if extra.contains(&"--cluster-enabled") {
                // The default bus port (port + 10000) is neither checked
                // free nor always below 65536: choose it as well.
                args.extend(["--cluster-port".to_owned(), free_port().to_string()]);
            }
            let mut server = Self {
                port,
                dir,
                args,
                child: None,
                program,
            };
            match server.try_spawn() {
                Ok(()) => return server,
                Err(SpawnError::AddressInUse(text)) => last_error = text,
                Err(SpawnError::Failed(text)) => panic!("{text}"),
            }
        }
        panic!("{program} found no free port in 5 tries:\n{last_error}");
    }

    /// A TLS-only server (plain port off) using the given PEM files.
    pub fn start_tls(cert: &Path, key: &Path, ca: &Path) -> Self {
        let port = free_port();
        let dir = temp_dir("redis-tls");
        let path = |p: &Path| p.display().to_string();
        let args = vec![
            "--port".to_owned(),
            "0".to_owned(),
            "--tls-port".to_owned(),
            port.to_string(),
            "--tls-cert-file".to_owned(),
            path(cert),
            "--tls-key-file".to_owned(),
            path(key),
            "--tls-ca-cert-file".to_owned(),
            path(ca),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
        ];
        let mut server = Self {
            port,
            dir,
            args,
            child: None,
            program: "redis-server",
        };
        server.spawn();
        server
    }

    /// Starts (or restarts) the server on its ports; a port taken meanwhile
    /// by a short-lived outgoing connection is waited out for up to 2 s.
    fn spawn(&mut self) {
        for _ in 0..20 {
            match self.try_spawn() {
                Ok(()) => return,
                Err(SpawnError::AddressInUse(_)) => std::thread::sleep(Duration::from_millis(100)),
                Err(SpawnError::Failed(text)) => panic!("{text}"),
            }
        }
        panic!("redis-server: port {} stayed in use for 2 s", self.port);
    }

    fn try_spawn(&mut self) -> Result<(), SpawnError> {
        let log = self.dir.join("redis.log");
        let _ = std::fs::remove_file(&log);
        let child = Command::new(self.program)
            .args(&self.args)
            .args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} must be installed (run .ci/run, or apt-get install {}): {e}",
                    self.program, self.program
                )
            });
        self.child = Some(child);
        // A sentinel logs its id once it listens (it never says "Ready").
        let ready = match self.program {
            "redis-sentinel" => "Sentinel ID is",
            _ => "Ready to accept connections",
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(ready) {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let message = format!("{} exited with {status} at start:\n{text}", self.program);
                return Err(if text.contains("Address already in use") {
                    SpawnError::AddressInUse(message)
                } else {
                    SpawnError::Failed(message)
                });
            }
            if Instant::now() >= deadline {
                return Err(SpawnError::Failed(format!(
                    "{} did not start within 10 s:\n{text}",
                    self.program
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The port it listens on (the TLS port for a TLS server).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Settings for warmcache to reach it (plain TCP, db 0, short timeouts).
    pub fn config(&self) -> RedisConfig {
        loopback_config(self.port)
    }

    /// Settings of an ACL user `warm` who may do everything but the
    /// `denied` commands (e.g. `client|tracking`).
    pub async fn config_denying(&self, denied: &[&str]) -> RedisConfig {
        let mut rules = vec!["SETUSER", "warm", "on", ">pw", "~*", "&*", "+@all"];
        let denied: Vec<String> = denied.iter().map(|c| format!("-{c}")).collect();
        rules.extend(denied.iter().map(String::as_str));
        let () = redis::cmd("ACL")
            .arg(&rules[..])
            .query_async(&mut self.foreign().await)
            .await
            .expect("ACL SETUSER");
        let mut config = self.config();
        config.username = Some("warm".to_owned());
        config.password = Some(Secret::new("pw"));
        config
    }

    /// A plain redis-rs client: a "foreign" writer such as a Node service.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("client")
    }

    /// A connection of a foreign client.
    pub async fn foreign(&self) -> redis::aio::MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .expect("foreign client connects")
    }

    /// Whether it runs (not killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The ports of those of `servers` that run.
    pub fn live_ports(servers: &[Self]) -> Vec<u16> {
        servers
            .iter()
            .filter(|n| n.is_running())
            .map(Self::port)
            .collect()
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same arguments (empty: it
    /// keeps nothing on disk).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
