//! Helpers of the tests of the `warmcache` binary (tests/binary.rs,
//! tests/binary_config.rs): the child process, bounded waits, HTTP/1.1 over
//! a fresh connection, and a run to its exit.
//!
//! Every wait is bounded by [`BOUND`], so a broken binary fails a test with a
//! message (and the child is killed on drop) instead of hanging it.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};
use warmcache::SETTINGS;

/// The longest any single step may take.
pub const BOUND: Duration = Duration::from_secs(30);

/// Awaits `future` for at most [`BOUND`]; panics naming `what` otherwise.
pub async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    timeout(BOUND, future)
        .await
        .unwrap_or_else(|_| panic!("gave up after {BOUND:?} waiting for {what}"))
}

/// The binary with a clean, predictable environment: no setting inherited
/// from the caller (in particular no BQ_PROJECT_ID or WARMCACHE_MODE), a free
/// port, text logs at info level.
pub fn warmcache() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warmcache"));
    for setting in SETTINGS {
        command.env_remove(setting.env);
    }
    command
        .env_remove("BQ_PROJECT_ID")
        .env_remove("WARMCACHE_MODE")
        .env("WARMCACHE_LISTEN", "127.0.0.1:0")
        .env("WARMCACHE_METRICS_LISTEN", "127.0.0.1:0")
        .env("WARMCACHE_LOG_FORMAT", "text")
        .env("RUST_LOG", "info")
        // No Redis at all (a closed port), as on a bare machine; never the
        // machine's own Redis.
        .env("REDIS_PORT", warmcache::testing::free_port().to_string())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// A running service and everything it has written to stderr.
pub struct Server {
    pub child: Child,
    pub pid: u32,
    pub port: u16,
    /// Every stderr line so far (also after the line channel is drained).
    pub stderr: Arc<Mutex<Vec<String>>>,
    /// stderr lines as they arrive; closed when the process closes stderr.
    pub lines: mpsc::UnboundedReceiver<String>,
}

impl Server {
    /// Starts the binary and waits until it says where it listens.
    pub async fn start() -> Self {
        let mut child = warmcache()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the warmcache binary starts");
        let pid = child.id().expect("a running child has a pid");
        let stderr_pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::unbounded_channel();
        let all = Arc::clone(&stderr);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr_pipe).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                all.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line.clone());
                // The test may have stopped listening; the line is kept above.
                let _ = tx.send(line);
            }
        });
        let mut server = Self {
            child,
            pid,
            port: 0,
            stderr,
            lines,
        };
        let line = server.wait_for_line("listening on http://").await;
        let addr = line
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        let (host, port) = addr
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("no port in {addr:?}"));
        assert_eq!(host, "127.0.0.1", "{line}");
        server.port = port
            .parse()
            .unwrap_or_else(|e| panic!("bad port in {line:?}: {e}"));
        assert_ne!(server.port, 0, "{line}");
        server
    }

    /// Waits for the next stderr line containing `needle`.
    pub async fn wait_for_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + BOUND;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) if line.contains(needle) => return line,
                Ok(Some(_)) => {}
                Ok(None) => panic!(
                    "stderr closed before a line containing {needle:?}; stderr:\n{}",
                    self.stderr_text()
                ),
                Err(_) => panic!(
                    "no line containing {needle:?} after {BOUND:?}; stderr:\n{}",
                    self.stderr_text()
                ),
            }
        }
    }

    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n")
    }

    /// Polls `/readyz` until it answers 200.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "exited with {status} before becoming ready; stderr:\n{}",
                    self.stderr_text()
                );
            }
            if let Ok(response) = try_request(self.port, "GET", "/readyz", &[]).await {
                if response.status == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "/readyz not 200 after {BOUND:?}; stderr:\n{}",
                self.stderr_text()
            );
            sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn sigterm(&self) {
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .expect("`kill` runs");
        assert!(status.success(), "kill -TERM {} failed: {status}", self.pid);
    }

    /// Waits for the process to exit; returns its status and full stderr.
    pub async fn wait_exit(mut self) -> (ExitStatus, String) {
        let status = match timeout(BOUND, self.child.wait()).await {
            Ok(status) => status.expect("wait for the child"),
            Err(_) => panic!(
                "did not exit within {BOUND:?}; stderr:\n{}",
                self.stderr_text()
            ),
        };
        // Let the reader task drain what is left of stderr.
        while bounded("stderr to close", self.lines.recv())
            .await
            .is_some()
        {}
        (status, self.stderr_text())
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits a complete response (read until the server closed) into parts and
/// checks that the body is as long as `Content-Length` says.
pub fn parse_response(raw: &[u8]) -> HttpResponse {
    let text = String::from_utf8_lossy(raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {text:?}"));
    let head = std::str::from_utf8(&raw[..split]).expect("ASCII response head");
    let body = raw[split + 4..].to_vec();
    let mut head_lines = head.split("\r\n");
    let status_line = head_lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(
        parts.next(),
        Some("HTTP/1.1"),
        "status line {status_line:?}"
    );
    let status = parts
        .next()
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status code in {status_line:?}"));
    let headers: Vec<(String, String)> = head_lines
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("bad header line {line:?}"));
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    let response = HttpResponse {
        status,
        headers,
        body,
    };
    if let Some(length) = response.header("content-length") {
        assert_eq!(
            length,
            response.body.len().to_string(),
            "truncated or overlong body"
        );
    }
    response
}

pub fn request_text(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// One request on a fresh connection; errors are returned (for polling).
pub async fn try_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(request_text(method, path, headers).as_bytes())
            .await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = timeout(BOUND, exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request timed out"))??;
    Ok(parse_response(&raw))
}

pub async fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    try_request(port, "GET", path, headers)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Runs the binary to completion (bounded) with extra env and args.
pub async fn run_to_exit(env: &[(&str, &str)], args: &[&str]) -> (ExitStatus, String, String) {
    let mut command = warmcache();
    command
        .envs(env.iter().copied())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let what = format!("warmcache {args:?} with {env:?} to exit");
    let output = bounded(&what, command.output())
        .await
        .expect("the warmcache binary runs");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub fn assert_no_panic(stderr: &str) {
    let lower = stderr.to_lowercase();
    assert!(
        !lower.contains("panicked") && !lower.contains("backtrace"),
        "stderr shows a panic:\n{stderr}"
    );
}
