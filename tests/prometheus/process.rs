//! Child processes owned by the test: the `warmcache` binary and
//! `prometheus`, each killed (and reaped) on drop, their stderr collected.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::BOUND;
use super::http::{Response, http, percent_encode};

/// What a child wrote to stderr, filled by a reader thread.
#[derive(Default)]
pub struct Log {
    /// The lines so far, and whether the child has closed stderr.
    pub lines: Mutex<(Vec<String>, bool)>,
    /// Notified on every line and on the close.
    pub grew: Condvar,
}

/// A child process, killed (and reaped) on drop, its stderr collected.
pub struct Process {
    pub name: &'static str,
    pub child: Child,
    pub log: Arc<Log>,
}

impl Process {
    pub fn spawn(name: &'static str, mut command: Command, hint: &str) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}; {hint}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Log::default());
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lines
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
                    .push(line);
                sink.grew.notify_all();
            }
            sink.lines.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
            sink.grew.notify_all();
        });
        Self { name, child, log }
    }

    /// The first stderr line containing `needle`, waiting for it if needed.
    pub fn wait_for_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + BOUND;
        let mut guard = self
            .log
            .lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(line) = guard.0.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            let now = Instant::now();
            assert!(
                !guard.1 && now < deadline,
                "{}: no line containing {needle:?} ({}); stderr:\n{}",
                self.name,
                if guard.1 {
                    "it closed stderr"
                } else {
                    "timed out"
                },
                guard.0.join("\n")
            );
            guard = self
                .log
                .grew
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The last lines of stderr, for failure messages.
    pub fn tail(&self) -> String {
        let guard = self
            .log
            .lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let skip = guard.0.len().saturating_sub(40);
        format!(
            "{} stderr (last lines):\n{}",
            self.name,
            guard.0[skip..].join("\n")
        )
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The address after `marker` in a log line (`listening on http://ADDR ...`).
pub fn address_after(line: &str, marker: &str) -> SocketAddr {
    let rest = line
        .split(marker)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address after {marker:?} in {line:?}"));
    let addr: SocketAddr = rest
        .trim_end_matches("/metrics")
        .parse()
        .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{line}");
    addr
}

/// The service binary, with nothing inherited from the caller's environment.
pub struct Service {
    pub process: Process,
    pub api: SocketAddr,
    pub metrics: SocketAddr,
}

impl Service {
    pub fn start(redis_port: u16) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_warmcache"));
        command
            .env_clear()
            .env("WARMCACHE_LISTEN", "127.0.0.1:0")
            .env("WARMCACHE_METRICS_LISTEN", "127.0.0.1:0")
            .env("WARMCACHE_MOCK_FAIL_EVERY", "3")
            .env("BQ_CACHE_TTL_MS", "1000")
            .env("REDIS_HOST", "127.0.0.1")
            .env("REDIS_PORT", redis_port.to_string())
            .env("WARMCACHE_BULLMQ_QUEUE", crate::support::bullmq::QUEUE)
            .env("WARMCACHE_LOG_FORMAT", "text")
            .env("RUST_LOG", "info");
        let process = Process::spawn("warmcache", command, "the binary is built by cargo test");
        let api = address_after(
            &process.wait_for_line("listening on http://"),
            "listening on http://",
        );
        let metrics = address_after(
            &process.wait_for_line("metrics on http://"),
            "metrics on http://",
        );
        assert_ne!(
            api, metrics,
            "the API and /metrics listen on separate ports"
        );
        Self {
            process,
            api,
            metrics,
        }
    }

    pub fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
        http(self.api, method, path, headers, body.as_bytes())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.process.tail()))
    }

    /// `method path` must answer `status`.
    pub fn expect(&self, method: &str, path: &str, body: &str, status: u16) -> Response {
        let response = self.call(method, path, &[], body);
        assert_eq!(
            response.status,
            status,
            "{method} {path}: {}",
            response.text()
        );
        response
    }

    /// A GET that must answer 200 from `tier` (`x-warmcache-tier`).
    pub fn expect_tier(&self, path: &str, tier: &str) -> Response {
        let response = self.expect("GET", path, "", 200);
        assert_eq!(
            response.header("x-warmcache-tier"),
            Some(tier),
            "GET {path}"
        );
        response
    }

    /// GETs `path` until L1 answers. A value this instance wrote or loaded
    /// may first come from L2: Redis also pushes the invalidation of its own
    /// write, which drops the fresh L1 copy whenever it arrives (so reads
    /// after this one are mostly, not surely, L1 hits).
    pub fn settle_in_l1(&self, path: &str) {
        let deadline = Instant::now() + BOUND;
        while self.expect("GET", path, "", 200).header("x-warmcache-tier") != Some("l1") {
            assert!(
                Instant::now() < deadline,
                "GET {path} never answered from L1"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Debian's `prometheus`, scraping the service every second, with the rules.
pub struct Prometheus {
    pub process: Process,
    pub addr: SocketAddr,
    pub dir: PathBuf,
}

impl Prometheus {
    pub fn start(target: SocketAddr) -> Self {
        let dir = crate::support::temp_dir("prometheus");
        let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/rules.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - '{rules}'\n\
             scrape_configs:\n  - job_name: warmcache\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("write prometheus.yml");
        let addr = SocketAddr::from(([127, 0, 0, 1], crate::support::free_port()));
        let mut command = Command::new("prometheus");
        command
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .current_dir(&dir);
        let process = Process::spawn(
            "prometheus",
            command,
            "install Debian's `prometheus` package (.ci/run does: apt-get install prometheus)",
        );
        let prometheus = Self { process, addr, dir };
        prometheus.wait_until(
            "/-/ready answers 200",
            || matches!(http(addr, "GET", "/-/ready", &[], b""), Ok(r) if r.status == 200),
        );
        prometheus
    }

    /// Polls `check` every 250 ms until it holds; panics after [`BOUND`].
    pub fn wait_until(&self, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + BOUND;
        while !check() {
            assert!(
                Instant::now() < deadline,
                "gave up after {BOUND:?} waiting until {what}\n{}",
                self.process.tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn api(&self, path: &str) -> Result<Value, String> {
        let response =
            http(self.addr, "GET", path, &[], b"").map_err(|e| format!("GET {path}: {e}"))?;
        let json: Value = serde_json::from_slice(&response.body).map_err(|e| {
            format!(
                "GET {path}: {} is not JSON ({e}): {}",
                response.status,
                response.text()
            )
        })?;
        if json["status"] == "success" {
            Ok(json["data"].clone())
        } else {
            Err(format!("{}: {}", json["errorType"], json["error"]))
        }
    }

    /// The samples of an instant query at the present time.
    pub fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        let data = self.api(&format!("/api/v1/query?query={}", percent_encode(expr)))?;
        let sample = |metric: &Value, value: &Value| Sample {
            labels: metric.to_string(),
            value: value[1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN),
        };
        Ok(match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .map(|all| {
                    all.iter()
                        .map(|s| sample(&s["metric"], &s["value"]))
                        .collect()
                })
                .unwrap_or_default(),
            Some("scalar") => vec![sample(&Value::Null, &data["result"])],
            other => return Err(format!("unexpected result type {other:?}")),
        })
    }

    /// Waits until `expr` returns at least one sample.
    pub fn wait_for_data(&self, expr: &str) {
        self.wait_until(&format!("{expr} returns data"), || {
            self.query(expr).is_ok_and(|samples| !samples.is_empty())
        });
    }

    /// Every rule Prometheus loaded: (name, type, query, health, state).
    pub fn rules(&self) -> Vec<LoadedRule> {
        let data = self
            .api("/api/v1/rules")
            .unwrap_or_else(|e| panic!("/api/v1/rules: {e}"));
        let groups = data["groups"].as_array().cloned().unwrap_or_default();
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .map(|r| LoadedRule {
                name: text(&r["name"]),
                kind: text(&r["type"]),
                query: text(&r["query"]),
                health: format!("{} {}", text(&r["health"]), text(&r["lastError"]))
                    .trim()
                    .to_owned(),
                state: text(&r["state"]),
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.process.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug)]
pub struct Sample {
    /// Read through `Debug`, in failure messages.
    #[allow(dead_code)]
    pub labels: String,
    pub value: f64,
}

#[derive(Debug)]
pub struct LoadedRule {
    pub name: String,
    pub kind: String,
    pub query: String,
    pub health: String,
    pub state: String,
}
