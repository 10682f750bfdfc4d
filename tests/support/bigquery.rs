//! Test support for live mode: a real BigQuery emulator process, a TCP proxy
//! that can stop answering, and (in [`fake`]) a scripted fake for what the
//! emulator cannot do (cost-cap refusals, jobs that are not complete at
//! once, cancellations, hangs).
//!
//! [`Emulator`] runs `bqemulator` (PyPI) from the virtualenv at
//! `<crate>/.venv-bq` (or `$WARMCACHE_BQ_VENV`), which `.ci/run` creates. It
//! listens on a free loopback port, keeps its data in its own temporary
//! directory (so a restart keeps the tables) and has its own HOME with the
//! DuckDB extensions linked in, so it never downloads anything. Dropping it
//! kills the process and removes the directories.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use warmcache::{BigQueryConfig, Credentials};

use super::{free_port, temp_dir};

pub mod fake;

/// The project every emulator serves.
pub const PROJECT: &str = "test-proj";

/// The emulator's virtualenv, or a panic saying how to create it.
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("WARMCACHE_BQ_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-bq"),
        PathBuf::from,
    );
    assert!(
        venv.join("bin/bqemulator").is_file(),
        "the BigQuery emulator is not installed: {} has no bin/bqemulator. \
         Run .ci/run (it creates the virtualenv), or see its `bqemulator_venv` step; \
         set WARMCACHE_BQ_VENV to use a virtualenv elsewhere",
        venv.display()
    );
    venv
}

/// A `bqemulator` child process on a free loopback port.
pub struct Emulator {
    port: u16,
    venv: PathBuf,
    home: PathBuf,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Emulator {
    /// Starts an emulator and waits until it answers (at most 60 s).
    pub fn start() -> Self {
        let venv = venv();
        let home = temp_dir("bq-home");
        link_duckdb_extensions(&venv, &home);
        let data = temp_dir("bq-data");
        let mut emulator = Self {
            port: free_port(),
            log: home.join("emulator.log"),
            venv,
            home,
            data,
            child: None,
        };
        emulator.spawn();
        emulator
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(&self.log).expect("create the emulator log");
        let child = Command::new(self.venv.join("bin/bqemulator"))
            .args(["start", "--rest-host", "127.0.0.1", "--rest-port"])
            .arg(self.port.to_string())
            .args(["--grpc-host", "127.0.0.1", "--grpc-port", "0"])
            .args(["--project", PROJECT, "--persistent", "--data-dir"])
            .arg(&self.data)
            .args(["--log-level", "warning", "--log-format", "console"])
            .env("HOME", &self.home)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("bqemulator starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let request = format!(
                    "GET /bigquery/v2/projects/{PROJECT}/datasets HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                );
                let mut answer = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.1 200")
                {
                    return;
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "bqemulator exited with {status} at start:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "bqemulator did not answer within 60 s:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `127.0.0.1:PORT`, the value of `BIGQUERY_EMULATOR_HOST`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port of its REST API.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Live-mode settings pointing at `dataset` in this emulator.
    pub fn config(&self, dataset: &str) -> BigQueryConfig {
        BigQueryConfig {
            credentials: Credentials::Emulator(self.host()),
            ..BigQueryConfig::new(PROJECT, dataset)
        }
    }

    /// Kills it at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// One REST call; panics unless it answers 200.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, answer) = http(&self.host(), method, path, body).await;
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer
    }

    /// Creates a dataset.
    pub async fn create_dataset(&self, dataset: &str) {
        let body = json!({ "datasetReference": { "projectId": PROJECT, "datasetId": dataset } });
        self.call(
            "POST",
            &format!("/bigquery/v2/projects/{PROJECT}/datasets"),
            Some(&body),
        )
        .await;
    }

    /// Runs a statement (DDL or DML) through `jobs.query`; panics on errors.
    pub async fn execute(&self, sql: &str) -> Value {
        let body = json!({ "query": sql, "useLegacySql": false });
        let answer = self
            .call(
                "POST",
                &format!("/bigquery/v2/projects/{PROJECT}/queries"),
                Some(&body),
            )
            .await;
        assert!(answer.get("errors").is_none(), "{sql}: {answer}");
        answer
    }

    /// Streams rows (JSON objects) into a table with `insertAll`.
    pub async fn insert(&self, dataset: &str, table: &str, rows: &[Value]) {
        for chunk in rows.chunks(500) {
            let body = json!({ "rows": chunk.iter().map(|row| json!({ "json": row })).collect::<Vec<_>>() });
            let answer = self
                .call(
                    "POST",
                    &format!("/bigquery/v2/projects/{PROJECT}/datasets/{dataset}/tables/{table}/insertAll"),
                    Some(&body),
                )
                .await;
            let errors = answer.get("insertErrors").and_then(Value::as_array);
            assert!(errors.is_none_or(Vec::is_empty), "{answer}");
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.home);
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Links the DuckDB extensions the pip packages ship into `home`, where
/// DuckDB looks for them, so the emulator never tries to download them.
fn link_duckdb_extensions(venv: &Path, home: &Path) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let lib = venv.join("lib");
    let site_packages = std::fs::read_dir(&lib)
        .expect("the virtualenv has lib/")
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
        .expect("the virtualenv has lib/python3.*/site-packages");
    for name in ["spatial", "avro"] {
        let versions = site_packages.join(format!("duckdb_extension_{name}/extensions"));
        let version = std::fs::read_dir(&versions)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (pip install duckdb-extension-{name})",
                    versions.display()
                )
            })
            .filter_map(Result::ok)
            .next()
            .unwrap_or_else(|| panic!("no version directory in {}", versions.display()))
            .file_name();
        let file = format!("{name}.duckdb_extension");
        let target_dir = home
            .join(".duckdb/extensions")
            .join(&version)
            .join(format!("linux_{arch}"));
        std::fs::create_dir_all(&target_dir).expect("create the extension directory");
        std::os::unix::fs::symlink(versions.join(&version).join(&file), target_dir.join(&file))
            .expect("link the extension");
    }
}

/// A minimal HTTP/1.1 JSON call (the emulator set-up needs nothing more).
pub async fn http(host: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(host).await.expect("connect");
    let body = body
        .map(|b| serde_json::to_vec(b).expect("json"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    stream.write_all(&body).await.expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("receive");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&answer[..split]).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let mut payload = answer[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        payload = dechunk(&payload);
    }
    let value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
    (status, value)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
    out
}

/// A TCP proxy on a free loopback port that forwards to a target, or, when
/// told to hang, accepts and reads but never answers (also on connections
/// already open).
pub struct Proxy {
    port: u16,
    hang: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// A forwarding proxy to `target` (`host:port`).
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let hang = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&hang);
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) ends every connection.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let flag = Arc::clone(&flag);
                let target = target.clone();
                connections.spawn(async move { relay(client, &target, &flag).await });
                while connections.try_join_next().is_some() {}
            }
        });
        Self { port, hang, task }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// From now on, swallow requests and answers, and hide closed
    /// connections.
    pub fn hang(&self) {
        self.hang.store(true, Ordering::SeqCst);
    }

    /// Forwards again; connections the server closed during the hang are
    /// closed now, and given a moment to be noticed by the client.
    pub async fn resume(&self) {
        self.hang.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(mut client: TcpStream, target: &str, hang: &Arc<AtomicBool>) {
    let mut buffer = vec![0u8; 64 * 1024];
    if hang.load(Ordering::SeqCst) {
        while matches!(client.read(&mut buffer).await, Ok(n) if n > 0) {}
        return;
    }
    let Ok(upstream) = TcpStream::connect(target).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let hang_back = Arc::clone(hang);
    let back = tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match upstream_read.read(&mut buffer).await {
                // While hanging nothing gets through, not even the server
                // closing an idle connection: the client sees silence, and
                // the close once the hang ends.
                Ok(0) | Err(_) => {
                    while hang_back.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    return;
                }
                Ok(_) if hang_back.load(Ordering::SeqCst) => {}
                Ok(n) => {
                    if client_write.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    loop {
        match client_read.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            // A request that arrives while hanging is read and dropped.
            Ok(_) if hang.load(Ordering::SeqCst) => {}
            Ok(n) => {
                if upstream_write.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    back.abort();
}
