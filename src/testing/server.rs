//! [`RedisServer`]: a `redis-server` (or `redis-sentinel`) child process
//! owned by a test, on a free loopback port in its own temporary directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{RedisConfig, Secret};

/// The password of the ACL user that [`RedisServer::config_denying`] creates.
const ACL_PASSWORD: &str = "pw";

/// A `redis-server` (or `redis-sentinel`) child process, killed (and its
/// directory removed) when dropped.
///
/// It binds 127.0.0.1 only, keeps nothing on disk (`--save ""`, no AOF) and
/// logs to a file in its directory. [`kill`](Self::kill) ends it at once
/// (SIGKILL, as a crash would); [`restart`](Self::restart) starts it again on
/// the same port with the same arguments. Its `Debug` shows the program,
/// port and state, never the arguments (they may hold a `--requirepass`).
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    /// `redis-server`, or `redis-sentinel` (its config file is the first argument).
    program: &'static str,
}

/// Settings for warmcache to reach `127.0.0.1:port` (plain TCP, db 0,
/// 200 ms operation and connect timeouts).
pub fn loopback_config(port: u16) -> RedisConfig {
    let mut config = RedisConfig::local(port);
    config.op_timeout = Duration::from_millis(200);
    config.connect_timeout = Duration::from_millis(200);
    config
}

/// A loopback port nobody listens on right now (it may be taken again
/// before it is used: [`RedisServer::start`] retries with another one).
///
/// # Panics
/// If no ephemeral port can be bound.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener
        .local_addr()
        .expect("read the local address of a bound listener")
        .port()
}

/// A fresh, empty directory under the system temp dir, named after `tag`;
/// the caller removes it.
///
/// # Panics
/// If the directory cannot be created.
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("warmcache-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("create the temp dir {}: {e}", dir.display()));
    dir
}

/// The arguments that make a server listen on `port`: plain TCP, or TLS
/// only (plain port off) with the certificate, key and CA in `tls`, clients
/// not asked for certificates, and replication (a replica's link, a
/// sentinel's links) over TLS.
fn port_args(port: u16, tls: Option<[&Path; 3]>) -> Vec<String> {
    let Some([cert, key, ca]) = tls else {
        return vec!["--port".to_owned(), port.to_string()];
    };
    let path = |p: &Path| p.display().to_string();
    [
        "--port",
        "0",
        "--tls-port",
        &port.to_string(),
        "--tls-cert-file",
        &path(cert),
        "--tls-key-file",
        &path(key),
        "--tls-ca-cert-file",
        &path(ca),
        "--tls-auth-clients",
        "no",
        "--tls-replication",
        "yes",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn tls_paths(tls: &super::TlsFiles) -> [&Path; 3] {
    [&tls.cert, &tls.key, &tls.ca]
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
    ///
    /// # Panics
    /// If `redis-server` is not installed or does not start.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server with extra `redis-server` arguments (e.g. `--requirepass x`).
    /// The port is chosen here; TLS servers use [`RedisServer::start_tls`].
    /// With `--cluster-enabled` the cluster bus port is chosen free too.
    ///
    /// # Panics
    /// If `redis-server` is not installed or does not start.
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_program("redis-server", None, extra, None)
    }

    /// A `redis-sentinel` on a free port; `config` is its configuration
    /// after the `port`, `bind` and `dir` lines (Sentinel needs a writable
    /// file: it records what it learns there).
    ///
    /// # Panics
    /// If `redis-sentinel` is not installed or does not start.
    pub fn start_sentinel(config: &str) -> Self {
        Self::start_program("redis-sentinel", Some(config), &[], None)
    }

    /// A TLS-only server (plain port off) using the given PEM files (see
    /// [`TlsFiles`](super::TlsFiles)); clients are not asked for certificates.
    ///
    /// # Panics
    /// If `redis-server` (built with TLS) is not installed or does not start.
    pub fn start_tls(cert: &Path, key: &Path, ca: &Path) -> Self {
        Self::start_program("redis-server", None, &[], Some([cert, key, ca]))
    }

    /// [`start_tls`](Self::start_tls) with the files of `tls` and extra
    /// arguments; it replicates over TLS too (`--tls-replication yes`).
    ///
    /// # Panics
    /// If `redis-server` (built with TLS) is not installed or does not start.
    pub fn start_tls_with(tls: &super::TlsFiles, extra: &[&str]) -> Self {
        Self::start_program("redis-server", None, extra, Some(tls_paths(tls)))
    }

    /// [`start_sentinel`](Self::start_sentinel) listening on TLS only and
    /// reaching the servers and the other sentinels over TLS.
    ///
    /// # Panics
    /// If `redis-sentinel` (built with TLS) is not installed or does not start.
    pub fn start_sentinel_tls(config: &str, tls: &super::TlsFiles) -> Self {
        Self::start_program("redis-sentinel", Some(config), &[], Some(tls_paths(tls)))
    }

    /// `tls`: the certificate, key and CA files of a TLS-only server.
    fn start_program(
        program: &'static str,
        config: Option<&str>,
        extra: &[&str],
        tls: Option<[&Path; 3]>,
    ) -> Self {
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
                std::fs::write(&file, text)
                    .unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
                args.push(file.display().to_string());
            }
            args.extend(port_args(port, tls));
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
        panic!("{}: port {} stayed in use for 2 s", self.program, self.port);
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
                    "{} must be installed (apt-get install {}): {e}",
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
                self.child = None;
                let message = format!("{} exited with {status} at start:\n{text}", self.program);
                return Err(if text.contains("Address already in use") {
                    SpawnError::AddressInUse(message)
                } else {
                    SpawnError::Failed(message)
                });
            }
            if Instant::now() >= deadline {
                self.kill();
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

    /// Its directory (its log file is `redis.log` there).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Settings for warmcache to reach it (plain TCP, db 0, short timeouts:
    /// see [`loopback_config`]).
    pub fn config(&self) -> RedisConfig {
        loopback_config(self.port)
    }

    /// Creates an ACL user `warm` who may do everything but the `denied`
    /// commands (e.g. `client|tracking`), and returns settings that log in
    /// as that user. The password is held as a [`Secret`] (never printed).
    ///
    /// # Panics
    /// If the server does not accept the `ACL SETUSER`.
    pub async fn config_denying(&self, denied: &[&str]) -> RedisConfig {
        let password = format!(">{ACL_PASSWORD}");
        let mut rules = vec!["SETUSER", "warm", "on", &password, "~*", "&*", "+@all"];
        let denied: Vec<String> = denied.iter().map(|c| format!("-{c}")).collect();
        rules.extend(denied.iter().map(String::as_str));
        let () = ::redis::cmd("ACL")
            .arg(&rules[..])
            .query_async(&mut self.foreign().await)
            .await
            .unwrap_or_else(|e| panic!("ACL SETUSER warm on port {}: {e}", self.port));
        let mut config = self.config();
        config.username = Some("warm".to_owned());
        config.password = Some(Secret::new(ACL_PASSWORD));
        config
    }

    /// A plain redis-rs client: a "foreign" writer such as a Node service.
    ///
    /// # Panics
    /// Never for a loopback URL; the message names the port if it does.
    pub fn client(&self) -> ::redis::Client {
        ::redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .unwrap_or_else(|e| panic!("a redis-rs client for port {}: {e}", self.port))
    }

    /// A connection of a foreign client.
    ///
    /// # Panics
    /// If the server does not accept it (e.g. it was killed).
    pub async fn foreign(&self) -> ::redis::aio::MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("a foreign client connects to port {}: {e}", self.port))
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
    ///
    /// # Panics
    /// If it does not start again within about 2 s of retries.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("program", &self.program)
            .field("port", &self.port)
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
