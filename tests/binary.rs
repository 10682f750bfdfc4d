//! End-to-end tests of the `warmcache` binary: start-up on a free port,
//! serving over real HTTP/1.1, graceful shutdown on SIGTERM and the exit
//! status and message of bad configurations.
//!
//! Every wait is bounded by [`BOUND`], so a broken binary fails a test with a
//! message (and the child is killed on drop) instead of hanging it.

mod support;

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

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The longest any single step may take.
const BOUND: Duration = Duration::from_secs(30);

/// Awaits `future` for at most [`BOUND`]; panics naming `what` otherwise.
async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    timeout(BOUND, future)
        .await
        .unwrap_or_else(|_| panic!("gave up after {BOUND:?} waiting for {what}"))
}

/// The binary with a clean, predictable environment: no setting inherited
/// from the caller (in particular no BQ_PROJECT_ID or WARMCACHE_MODE), a free
/// port, text logs at info level.
fn warmcache() -> Command {
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
        .env("REDIS_PORT", support::free_port().to_string())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// A running service and everything it has written to stderr.
struct Server {
    child: Child,
    pid: u32,
    port: u16,
    /// Every stderr line so far (also after the line channel is drained).
    stderr: Arc<Mutex<Vec<String>>>,
    /// stderr lines as they arrive; closed when the process closes stderr.
    lines: mpsc::UnboundedReceiver<String>,
}

impl Server {
    /// Starts the binary and waits until it says where it listens.
    async fn start() -> Self {
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
    async fn wait_for_line(&mut self, needle: &str) -> String {
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

    fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n")
    }

    /// Polls `/readyz` until it answers 200.
    async fn wait_ready(&mut self) {
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

    fn sigterm(&self) {
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .expect("`kill` runs");
        assert!(status.success(), "kill -TERM {} failed: {status}", self.pid);
    }

    /// Waits for the process to exit; returns its status and full stderr.
    async fn wait_exit(mut self) -> (ExitStatus, String) {
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
struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits a complete response (read until the server closed) into parts and
/// checks that the body is as long as `Content-Length` says.
fn parse_response(raw: &[u8]) -> HttpResponse {
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

fn request_text(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// One request on a fresh connection; errors are returned (for polling).
async fn try_request(
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

async fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    try_request(port, "GET", path, headers)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Runs the binary to completion (bounded) with extra env and args.
async fn run_to_exit(env: &[(&str, &str)], args: &[&str]) -> (ExitStatus, String, String) {
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

fn assert_no_panic(stderr: &str) {
    let lower = stderr.to_lowercase();
    assert!(
        !lower.contains("panicked") && !lower.contains("backtrace"),
        "stderr shows a panic:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------

#[tokio::test]
async fn serves_the_dashboard_with_etags_over_http() {
    let mut server = Server::start().await;
    server.wait_ready().await;

    let health = get(server.port, "/healthz", &[]).await;
    assert_eq!(health.status, 200, "{}", health.body_text());

    let dashboard = get(server.port, "/dashboard", &[]).await;
    assert_eq!(dashboard.status, 200, "{}", dashboard.body_text());
    assert_eq!(dashboard.header("content-type"), Some("application/json"));
    let etag = dashboard
        .header("etag")
        .unwrap_or_else(|| panic!("no ETag in {:?}", dashboard.headers))
        .to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert!(
        dashboard
            .header("cache-control")
            .is_some_and(|v| v.starts_with("max-age=")),
        "{:?}",
        dashboard.headers
    );
    let json: serde_json::Value =
        serde_json::from_slice(&dashboard.body).expect("the dashboard is JSON");
    assert_eq!(json["currency"], "USD");
    assert!(json["kpis"]["today"]["revenue"].is_number(), "{json}");

    let revalidated = get(server.port, "/dashboard", &[("If-None-Match", &etag)]).await;
    assert_eq!(revalidated.status, 304, "{}", revalidated.body_text());
    assert!(revalidated.body.is_empty());
    assert_eq!(revalidated.header("etag"), Some(etag.as_str()));

    let snapshot = get(server.port, "/snapshot", &[]).await;
    let status: serde_json::Value =
        serde_json::from_slice(&snapshot.body).expect("/snapshot is JSON");
    assert_eq!(status["mode"], "mock");
    assert_eq!(status["sections"]["dashboard"]["etag"], etag.as_str());

    let missing = get(server.port, "/missing", &[]).await;
    assert_eq!(missing.status, 404);

    // No Redis on this machine's chosen port: keyed routes say so clearly,
    // while mock profiles still come from their loader.
    let keyed = get(server.port, "/age-verification/c1", &[]).await;
    assert_eq!(keyed.status, 503);
    assert!(String::from_utf8_lossy(&keyed.body).contains("redis_unavailable"));
    let profile = get(server.port, "/customers/c1/profile", &[]).await;
    assert_eq!(profile.status, 200);

    server.sigterm();
    let (status, stderr) = server.wait_exit().await;
    assert!(status.success(), "{status}; stderr:\n{stderr}");
    assert_no_panic(&stderr);
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_and_exits_zero() {
    let mut server = Server::start().await;
    server.wait_ready().await;

    // A request in flight: headers sent but not finished. (A fresh
    // connection: hyper closes connections that are idle between requests.)
    let mut in_flight = bounded("connect", TcpStream::connect(("127.0.0.1", server.port)))
        .await
        .expect("connect");
    bounded(
        "write",
        in_flight.write_all(b"GET /dashboard HTTP/1.1\r\nHost: x\r\n"),
    )
    .await
    .expect("write the first half of the request");
    // The accept loop takes connections in order: once a later connection
    // has been served, the in-flight one has been accepted too.
    assert_eq!(get(server.port, "/healthz", &[]).await.status, 200);

    server.sigterm();
    server.wait_for_line("SIGTERM received").await;

    // New connections are refused once the listener is closed...
    let deadline = Instant::now() + BOUND;
    loop {
        match TcpStream::connect(("127.0.0.1", server.port)).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            // Reset while the listener was closing; the next try tells.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("unexpected connect error: {e}"),
            Ok(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "still accepting connections {BOUND:?} after SIGTERM"
        );
        sleep(Duration::from_millis(10)).await;
    }
    // ...but the process waits for the request in flight.
    assert!(
        server.child.try_wait().expect("try_wait").is_none(),
        "exited with a request in flight; stderr:\n{}",
        server.stderr_text()
    );

    bounded("write", in_flight.write_all(b"Connection: close\r\n\r\n"))
        .await
        .expect("write the rest of the request");
    let mut raw = Vec::new();
    bounded("the in-flight response", in_flight.read_to_end(&mut raw))
        .await
        .expect("read the in-flight response");
    let response = parse_response(&raw);
    assert_eq!(response.status, 200, "{}", response.body_text());
    let json: serde_json::Value =
        serde_json::from_slice(&response.body).expect("a complete JSON body");
    assert_eq!(json["currency"], "USD");

    let (status, stderr) = server.wait_exit().await;
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{stderr}");
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|line| line.trim_end().ends_with("stopped")),
        "{stderr}"
    );
    assert_no_panic(&stderr);
}

// ---------------------------------------------------------------------------
// Bad configuration
// ---------------------------------------------------------------------------

/// A bad configuration and what its error line must name.
struct BadConfig {
    env: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    /// The setting the message must name.
    name: &'static str,
    /// The rejected value, quoted in the message.
    value: &'static str,
}

#[tokio::test]
async fn invalid_settings_exit_2_with_one_line_naming_the_setting() {
    let cases = [
        BadConfig {
            env: &[("BQ_CACHE_TTL_MS", "abc")],
            args: &[],
            name: "BQ_CACHE_TTL_MS",
            value: "abc",
        },
        BadConfig {
            env: &[("WARMCACHE_MODE", "bogus")],
            args: &[],
            name: "WARMCACHE_MODE",
            value: "bogus",
        },
        BadConfig {
            env: &[("WARMCACHE_REFRESH_JITTER", "2")],
            args: &[],
            name: "WARMCACHE_REFRESH_JITTER",
            value: "2",
        },
        BadConfig {
            env: &[],
            args: &["--ttl-ms", "0"],
            name: "BQ_CACHE_TTL_MS",
            value: "0",
        },
        BadConfig {
            env: &[],
            args: &["serve", "--ttl-ms", "0"],
            name: "BQ_CACHE_TTL_MS",
            value: "0",
        },
        // The flag wins over a valid environment variable.
        BadConfig {
            env: &[("BQ_CACHE_TTL_MS", "5000")],
            args: &["--ttl-ms", "0"],
            name: "BQ_CACHE_TTL_MS",
            value: "0",
        },
    ];
    for BadConfig {
        env,
        args,
        name,
        value,
    } in cases
    {
        let (status, stdout, stderr) = run_to_exit(env, args).await;
        let case = format!("env {env:?}, args {args:?}");
        assert_eq!(
            status.code(),
            Some(2),
            "{case}: {status}; stderr:\n{stderr}"
        );
        assert_no_panic(&stderr);
        assert!(stdout.is_empty(), "{case}: stdout:\n{stdout}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{case}: exactly one line expected:\n{stderr}"
        );
        assert!(stderr.ends_with('\n'), "{case}: {stderr:?}");
        assert!(stderr.contains(name), "{case}: {stderr}");
        assert!(stderr.contains(&format!("\"{value}\"")), "{case}: {stderr}");
    }
}

#[tokio::test]
async fn live_mode_without_a_dataset_exits_2_naming_it() {
    let (status, _stdout, stderr) = run_to_exit(&[("BQ_PROJECT_ID", "some-project")], &[]).await;
    assert_eq!(status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("BQ_DATASET"), "{stderr}");
    assert!(
        stderr.contains("BQ_PROJECT_ID"),
        "says why it is needed: {stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
    assert_no_panic(&stderr);
}

/// Live mode with a key file that is missing, or present but unusable:
/// start-up fails naming the file, and never shows what is inside it.
#[cfg(feature = "bigquery")]
#[tokio::test]
async fn live_mode_with_a_bad_key_file_fails_start_up_naming_it() {
    let dir = support::temp_dir("key-file");
    let missing = dir.join("missing-key.json");
    let partial = dir.join("partial-key.json");
    std::fs::write(
        &partial,
        r#"{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----TOPSECRET"}"#,
    )
    .expect("write the key file");
    for (key, problem) in [
        (&missing, "the file does not exist"),
        (&partial, "missing field"),
    ] {
        let key_path = key.display().to_string();
        let (status, _stdout, stderr) = run_to_exit(
            &[
                ("BQ_PROJECT_ID", "some-project"),
                ("BQ_DATASET", "shop"),
                ("GOOGLE_APPLICATION_CREDENTIALS", key_path.as_str()),
            ],
            &[],
        )
        .await;
        assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
        assert!(
            stderr.contains("GOOGLE_APPLICATION_CREDENTIALS") && stderr.contains(&key_path),
            "{stderr}"
        );
        assert!(stderr.contains(problem), "{stderr}");
        assert!(!stderr.contains("TOPSECRET"), "{stderr}");
        assert!(!stderr.contains("listening on"), "{stderr}");
        assert_no_panic(&stderr);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Built without the `bigquery` feature, a complete live configuration is
/// refused with a message saying what the build lacks.
#[cfg(not(feature = "bigquery"))]
#[tokio::test]
async fn live_mode_is_refused_cleanly_without_the_bigquery_feature() {
    let (status, _stdout, stderr) = run_to_exit(
        &[("BQ_PROJECT_ID", "some-project"), ("BQ_DATASET", "shop")],
        &[],
    )
    .await;
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("`bigquery` feature"), "{stderr}");
    assert!(stderr.contains("BQ_PROJECT_ID"), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
    assert_no_panic(&stderr);
}

#[tokio::test]
async fn a_wrong_redis_password_stops_start_up_without_showing_it() {
    let redis = support::RedisServer::start_with(&["--requirepass", "the-right-pass"]);
    let port = redis.port().to_string();
    let (status, _stdout, stderr) = run_to_exit(
        &[
            ("REDIS_PORT", port.as_str()),
            ("REDIS_PASSWORD", "a-wrong-pass-123"),
        ],
        &[],
    )
    .await;
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("redis refused the credentials"), "{stderr}");
    assert!(
        !stderr.contains("a-wrong-pass-123") && !stderr.contains("the-right-pass"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
    assert_no_panic(&stderr);
}
