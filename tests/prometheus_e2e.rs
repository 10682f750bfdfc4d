//! Proof that `dashboards/` works against the real thing: every expression
//! of the Grafana dashboard and of the Prometheus rules returns data from a
//! real Prometheus scraping the real service.
//!
//! [`dashboard_and_rules_against_a_real_prometheus`] starts a `redis-server`
//! (tests/support), the `warmcache` binary (API and metrics on port 0, a 1 s
//! TTL, every third mock refresh failing) and Debian's `prometheus` (scraping
//! every second, `dashboards/rules.yml` loaded), all on loopback ports and
//! owned by the test: each is killed when its handle drops, also on a panic.
//! It drives traffic that moves every metric of the contract (snapshot 200s
//! and 304s, 404s, L1 and L2 hits and misses, a loaded profile, remote and
//! local invalidations, a corrupt value), kills Redis and drives more, then
//! evaluates every dashboard expression (with the template variables
//! substituted as Grafana does when "All" is selected) and every rule
//! expression through `/api/v1/query`. An expression that returns nothing,
//! or only NaN, fails the test.
//!
//! Alert expressions return data only while their condition holds, so:
//! - the alerts whose condition the test causes ([`INDUCED`]: refresh errors,
//!   Redis killed, an erasure during the outage, a corrupt value) must return
//!   data as written, and Prometheus must show them pending or firing;
//! - every alert is also evaluated with `bool` added to each comparison
//!   (`a > b` becomes `a > bool b`): that returns a 0/1 sample for every
//!   series the comparison sees, so it proves the alert's underlying series
//!   exist, carry matching labels on both sides (a label mismatch would make
//!   the alert silent forever) and are evaluated, without the condition. The
//!   others ([`NOT_INDUCED`]) are proven that way; `dashboards/rules.test.yml`
//!   shows each alert firing on its condition and silent otherwise.
//!
//! [`dashboard_and_rules_are_well_formed`] needs no server: the JSON parses
//! as an importable dashboard and every metric name either file uses is one
//! of the contract or a recording rule.
//!
//! Every wait is bounded; a missing `prometheus` binary fails with a hint
//! (`.ci/run` installs it).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::RedisServer;

/// The longest any single wait may take.
const BOUND: Duration = Duration::from_secs(30);

const DASHBOARD: &str = include_str!("../dashboards/warmcache.json");
const RULES: &str = include_str!("../dashboards/rules.yml");

/// Counters and gauges of the metric contract (`dashboards/README.md`).
const PLAIN_METRICS: &[&str] = &[
    "warmcache_requests_total",
    "warmcache_loads_total",
    "warmcache_invalidations_total",
    "warmcache_invalidation_failures_total",
    "warmcache_l2_errors_total",
    "warmcache_corrupt_values_total",
    "warmcache_invalidation_connected",
    "warmcache_snapshot_refresh_total",
    "warmcache_snapshot_age_seconds",
    "warmcache_snapshot_ttl_seconds",
    "warmcache_snapshot_max_staleness_seconds",
    "warmcache_snapshot_mode",
    "warmcache_http_requests_total",
    "warmcache_job_reads_total",
    "warmcache_bullmq_events_total",
    "warmcache_bullmq_follower_lag_events",
    "warmcache_bullmq_follower_reconnects_total",
    "warmcache_bullmq_follower_connected",
    "warmcache_bullmq_records_total",
    "warmcache_bullmq_malformed_jobs_total",
    "warmcache_job_waiters",
];
/// Histograms of the contract (exported as `_bucket`, `_sum`, `_count`).
const HISTOGRAMS: &[&str] = &[
    "warmcache_load_duration_seconds",
    "warmcache_l2_duration_seconds",
    "warmcache_snapshot_refresh_duration_seconds",
    "warmcache_http_request_duration_seconds",
];

/// Alerts whose condition this test causes, and how.
const INDUCED: &[(&str, &str)] = &[
    (
        "WarmcacheSnapshotRefreshFailing",
        "WARMCACHE_MOCK_FAIL_EVERY=3 fails a third of the refreshes",
    ),
    (
        "WarmcacheRedisUnreachable",
        "redis-server is killed while keyed traffic goes on",
    ),
    (
        "WarmcacheInvalidationListenerDisconnected",
        "redis-server is killed",
    ),
    (
        "WarmcacheErasureFailing",
        "DELETE /age-verification/... while Redis is down",
    ),
    (
        "WarmcacheCorruptValues",
        "another writer stores a value that is not JSON",
    ),
    (
        "WarmcacheBullmqFollowerDisconnected",
        "redis-server is killed while the follower reads the events stream",
    ),
];
/// Alerts proven only through their underlying series, and why.
const NOT_INDUCED: &[(&str, &str)] = &[
    (
        "WarmcacheSnapshotStale",
        "refreshes recover, so the data stays within its bound",
    ),
    (
        "WarmcacheInvalidationFailing",
        "the service invalidates only age verification over HTTP",
    ),
    (
        "WarmcacheHitRatioCollapsed",
        "it needs over 1 lookup/s for 5 minutes",
    ),
    (
        "WarmcacheBullmqFollowerLagging",
        "the follower keeps up with a few jobs",
    ),
    (
        "WarmcacheBullmqStatusNotRecorded",
        "final statuses are written while Redis is up",
    ),
    (
        "WarmcacheBullmqMalformedJobs",
        "the jobs are written by BullMQ itself",
    ),
];

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

/// What a child wrote to stderr, filled by a reader thread.
#[derive(Default)]
struct Log {
    /// The lines so far, and whether the child has closed stderr.
    lines: Mutex<(Vec<String>, bool)>,
    /// Notified on every line and on the close.
    grew: Condvar,
}

/// A child process, killed (and reaped) on drop, its stderr collected.
struct Process {
    name: &'static str,
    child: Child,
    log: Arc<Log>,
}

impl Process {
    fn spawn(name: &'static str, mut command: Command, hint: &str) -> Self {
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
    fn wait_for_line(&self, needle: &str) -> String {
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
    fn tail(&self) -> String {
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

    fn stop(&mut self) {
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
fn address_after(line: &str, marker: &str) -> SocketAddr {
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
struct Service {
    process: Process,
    api: SocketAddr,
    metrics: SocketAddr,
}

impl Service {
    fn start(redis_port: u16) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_warmcache"));
        command
            .env_clear()
            .env("WARMCACHE_LISTEN", "127.0.0.1:0")
            .env("WARMCACHE_METRICS_LISTEN", "127.0.0.1:0")
            .env("WARMCACHE_MOCK_FAIL_EVERY", "3")
            .env("BQ_CACHE_TTL_MS", "1000")
            .env("REDIS_HOST", "127.0.0.1")
            .env("REDIS_PORT", redis_port.to_string())
            .env("WARMCACHE_BULLMQ_QUEUE", support::bullmq::QUEUE)
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

    fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
        http(self.api, method, path, headers, body.as_bytes())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.process.tail()))
    }

    /// `method path` must answer `status`.
    fn expect(&self, method: &str, path: &str, body: &str, status: u16) -> Response {
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
    fn expect_tier(&self, path: &str, tier: &str) -> Response {
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
    fn settle_in_l1(&self, path: &str) {
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
struct Prometheus {
    process: Process,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Self {
        let dir = support::temp_dir("prometheus");
        let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/rules.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - '{rules}'\n\
             scrape_configs:\n  - job_name: warmcache\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("write prometheus.yml");
        let addr = SocketAddr::from(([127, 0, 0, 1], support::free_port()));
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
    fn wait_until(&self, what: &str, mut check: impl FnMut() -> bool) {
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

    fn api(&self, path: &str) -> Result<Value, String> {
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
    fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
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
    fn wait_for_data(&self, expr: &str) {
        self.wait_until(&format!("{expr} returns data"), || {
            self.query(expr).is_ok_and(|samples| !samples.is_empty())
        });
    }

    /// Every rule Prometheus loaded: (name, type, query, health, state).
    fn rules(&self) -> Vec<LoadedRule> {
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
struct Sample {
    /// Read through `Debug`, in failure messages.
    #[allow(dead_code)]
    labels: String,
    value: f64,
}

#[derive(Debug)]
struct LoadedRule {
    name: String,
    kind: String,
    query: String,
    health: String,
    state: String,
}

// ---------------------------------------------------------------------------
// HTTP/1.1 on a fresh loopback connection
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, BOUND)?;
    stream.set_read_timeout(Some(BOUND))?;
    stream.set_write_timeout(Some(BOUND))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad response {:?}", String::from_utf8_lossy(&raw)),
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut response = Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    };
    if response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        response.body = dechunk(&response.body)?;
    }
    Some(response)
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The expressions of the two files
// ---------------------------------------------------------------------------

fn dashboard() -> Value {
    serde_json::from_str(DASHBOARD).expect("dashboards/warmcache.json is JSON")
}

/// Every panel (rows' nested panels too), flattened.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// `$name` and `${name}` replaced by the value Grafana sends with "All"
/// selected (the variable's `allValue`), for every multi-value variable.
fn substitute(dashboard: &Value, expr: &str) -> String {
    let mut out = expr.to_owned();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let (Some(name), Some(all)) = (variable["name"].as_str(), variable["allValue"].as_str())
        {
            out = out
                .replace(&format!("${{{name}}}"), all)
                .replace(&format!("${name}"), all);
        }
    }
    out
}

/// (panel title and refId, expression with variables substituted).
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            let place = format!(
                "panel {:?} query {}",
                panel["title"].as_str().unwrap_or("?"),
                target["refId"]
            );
            queries.push((place, substitute(dashboard, expr)));
        }
    }
    queries
}

/// (variable name, selector, label) of each `label_values(selector, label)`
/// template variable.
fn variable_queries(dashboard: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(definition) = variable["definition"].as_str() else {
            continue;
        };
        let inner = definition
            .strip_prefix("label_values(")
            .and_then(|d| d.strip_suffix(')'))
            .unwrap_or_else(|| panic!("unsupported variable query {definition:?}"));
        let (selector, label) = inner
            .rsplit_once(',')
            .expect("label_values(selector, label)");
        let name = variable["name"].as_str().unwrap_or_default().to_owned();
        out.push((
            name,
            substitute(dashboard, selector.trim()),
            label.trim().to_owned(),
        ));
    }
    out
}

/// `expr` with `bool` after every comparison operator outside label
/// matchers, ranges and strings, and how many it changed. A comparison with
/// `bool` returns 0 or 1 for every pair of series it compares instead of
/// dropping the false ones, so the result is not empty exactly when the
/// series under the alert exist and match.
fn with_bool(expr: &str) -> (String, usize) {
    let bytes = expr.as_bytes();
    // Bytes: everything inserted is ASCII, so the result stays UTF-8.
    let (mut out, mut changed, mut depth, mut quote) = (Vec::new(), 0, 0_i32, None::<u8>);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' && i + 1 < bytes.len() {
                out.extend_from_slice(&bytes[i..i + 2]);
                i += 2;
                continue;
            }
            if b == q {
                quote = None;
            }
        } else if matches!(b, b'"' | b'\'' | b'`') {
            quote = Some(b);
        } else if matches!(b, b'{' | b'[') {
            depth += 1;
        } else if matches!(b, b'}' | b']') {
            depth -= 1;
        } else if depth == 0 {
            let two = expr.get(i..i + 2).unwrap_or("");
            let op = if ["==", "!=", ">=", "<="].contains(&two) {
                Some(two)
            } else if matches!(b, b'>' | b'<') {
                Some(&expr[i..=i])
            } else {
                None
            };
            if let Some(op) = op {
                out.extend_from_slice(op.as_bytes());
                i += op.len();
                let rest = expr[i..].trim_start();
                let has_bool = rest.starts_with("bool")
                    && !rest[4..].starts_with(|c: char| c.is_alphanumeric() || c == '_');
                if !has_bool {
                    out.extend_from_slice(b" bool");
                }
                changed += 1;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    let out = String::from_utf8(out).expect("only ASCII was inserted, at ASCII positions");
    (out, changed)
}

/// The names of `record:` and `alert:` rules in rules.yml, by kind.
fn rule_names_in_file() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut records = BTreeSet::new();
    let mut alerts = BTreeSet::new();
    for line in RULES.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- record:") {
            records.insert(name.trim().to_owned());
        } else if let Some(name) = line.strip_prefix("- alert:") {
            alerts.insert(name.trim().to_owned());
        }
    }
    (records, alerts)
}

/// Identifiers in `text` that look like warmcache metric names (raw or
/// recorded), skipping comments.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
            if word.starts_with("warmcache_") || word.contains(":warmcache_") {
                names.insert(word.trim_matches(':').to_owned());
            }
        }
    }
    names
}

fn contract_names() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = PLAIN_METRICS.iter().map(|n| (*n).to_owned()).collect();
    for h in HISTOGRAMS {
        for suffix in ["_bucket", "_sum", "_count"] {
            names.insert(format!("{h}{suffix}"));
        }
    }
    names
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn dashboard_and_rules_are_well_formed() {
    let dashboard = dashboard();
    let schema = dashboard["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    assert_eq!(dashboard["uid"], "warmcache");
    assert!(dashboard["id"].is_null(), "an exported dashboard has no id");
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    assert!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a Prometheus data-source variable"
    );

    let mut ids = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "every panel has a title: {panel}");
        assert!(
            ids.insert(panel["id"].as_u64().expect("numeric id")),
            "duplicate id in {title:?}"
        );
        for key in ["h", "w", "x", "y"] {
            assert!(panel["gridPos"][key].is_u64(), "{title:?}: gridPos.{key}");
        }
        if panel["type"] == "row" {
            continue;
        }
        assert!(
            !panel["description"].as_str().unwrap_or_default().is_empty(),
            "{title:?} says what it means"
        );
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title:?}");
        let targets = panel["targets"].as_array().filter(|t| !t.is_empty());
        let mut refs = BTreeSet::new();
        for target in targets.unwrap_or_else(|| panic!("{title:?} has no query")) {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title:?}");
            assert!(
                refs.insert(target["refId"].to_string()),
                "{title:?}: duplicate refId"
            );
            assert!(
                !target["expr"].as_str().unwrap_or_default().is_empty(),
                "{title:?}: empty expr"
            );
        }
    }

    // Only variables the test (like Grafana) substitutes; none of Grafana's
    // own ($__rate_interval and friends), which Prometheus cannot evaluate.
    for (place, expr) in dashboard_queries(&dashboard) {
        assert!(!expr.contains('$'), "{place}: {expr}");
    }

    // Every name either file uses is of the contract or recorded in rules.yml,
    // and every metric of the contract shows up in one of them.
    let (records, alerts) = rule_names_in_file();
    assert!(
        records.len() >= 3 && alerts.len() >= 6,
        "{records:?} {alerts:?}"
    );
    let known: BTreeSet<String> = contract_names()
        .into_iter()
        .chain(records.iter().cloned())
        .collect();
    let in_dashboard = metric_names(DASHBOARD);
    let in_rules = metric_names(RULES);
    for name in in_dashboard.iter().chain(&in_rules) {
        assert!(
            known.contains(name),
            "{name} is neither a contract metric nor a recording rule"
        );
    }
    for name in PLAIN_METRICS.iter().chain(HISTOGRAMS) {
        assert!(
            in_dashboard
                .union(&in_rules)
                .any(|used| used.starts_with(name)),
            "{name} is on no panel and in no rule"
        );
    }
    assert!(
        records
            .iter()
            .all(|r| in_dashboard.contains(r) || in_rules.contains(r)),
        "unused recording rule"
    );

    // Each alert is classified for the end-to-end test.
    let classified: BTreeSet<String> = INDUCED
        .iter()
        .chain(NOT_INDUCED)
        .map(|(n, _)| (*n).to_owned())
        .collect();
    assert_eq!(
        classified, alerts,
        "INDUCED and NOT_INDUCED together name every alert once"
    );
}

#[test]
fn bool_is_added_to_comparisons_only() {
    assert_eq!(with_bool("a > 0.5"), ("a > bool 0.5".to_owned(), 1));
    assert_eq!(with_bool("a >= bool 1"), ("a >= bool 1".to_owned(), 1));
    assert_eq!(
        with_bool(r#"x{a!="b", c=~"d>e"} > on (job) y"#),
        (r#"x{a!="b", c=~"d>e"} > bool on (job) y"#.to_owned(), 1)
    );
    assert_eq!(
        with_bool("r < 0.5 and on (job) sum(rate(l[5m])) > 1"),
        (
            "r < bool 0.5 and on (job) sum(rate(l[5m])) > bool 1".to_owned(),
            2
        )
    );
    assert_eq!(with_bool("g == 0"), ("g == bool 0".to_owned(), 1));
    assert_eq!(
        with_bool(r#"x{l="é\">"} < y"#),
        (r#"x{l="é\">"} < bool y"#.to_owned(), 1)
    );
    assert_eq!(with_bool("rate(x[1m])"), ("rate(x[1m])".to_owned(), 0));
}

/// JSON bodies of the keyed routes, as a Node service writes them.
fn age_json(id: &str, verified: bool) -> String {
    format!(
        r#"{{"customerId":"{id}","verified":{verified},"method":"id_document","verifiedAt":1767225600000}}"#
    )
}

/// Traffic with Redis up: every route, both tiers, loads, invalidations.
fn drive_healthy_traffic(service: &Service, redis: &RedisServer) {
    for path in ["/dashboard", "/historical", "/products"] {
        let first = service.expect("GET", path, "", 200);
        let etag = first
            .header("etag")
            .unwrap_or_else(|| panic!("{path}: no ETag"))
            .to_owned();
        let again = service.call("GET", path, &[("If-None-Match", &etag)], "");
        assert_eq!(again.status, 304, "{path} revalidated");
    }
    for path in ["/snapshot", "/healthz"] {
        service.expect("GET", path, "", 200);
    }
    service.expect("GET", "/no-such-route", "", 404);
    service.expect("POST", "/dashboard", "", 405);

    let mut foreign = redis
        .client()
        .get_connection_with_timeout(BOUND)
        .expect("a foreign Redis client");
    let mut foreign_set = |key: &str, value: &str| {
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query::<()>(&mut foreign)
            .expect("foreign SET");
    };

    // Age verification: a write, L1 hits, a miss in both tiers (404).
    service.expect(
        "PUT",
        "/age-verification/cust-1",
        &age_json("cust-1", true),
        200,
    );
    service.settle_in_l1("/age-verification/cust-1");
    for _ in 0..5 {
        service.expect("GET", "/age-verification/cust-1", "", 200);
    }
    service.expect("GET", "/age-verification/nobody", "", 404);
    // A record another writer stored: in Redis, not in this L1: an L2 hit.
    foreign_set("age_verification:cust-2", &age_json("cust-2", true));
    service.expect_tier("/age-verification/cust-2", "l2");
    // Another writer changes cust-1: Redis pushes the key (a remote
    // invalidation) and the next reads see the new value.
    foreign_set("age_verification:cust-1", &age_json("cust-1", false));
    let deadline = Instant::now() + BOUND;
    while !service
        .expect("GET", "/age-verification/cust-1", "", 200)
        .text()
        .contains(r#""verified":false"#)
    {
        assert!(
            Instant::now() < deadline,
            "the change of cust-1 never reached this instance"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A value that is not JSON: counted as corrupt, never served.
    foreign_set("age_verification:corrupt-1", "not json");
    service.expect("GET", "/age-verification/corrupt-1", "", 502);
    // An erasure Redis confirms (a local invalidation).
    service.expect("DELETE", "/age-verification/cust-2", "", 204);
    service.expect("GET", "/age-verification/cust-2", "", 404);

    // Profiles: the mock loader, then L1; an update written through.
    service.expect_tier("/customers/p-1/profile", "loader");
    service.settle_in_l1("/customers/p-1/profile");
    let profile = r#"{"customerId":"p-2","name":"Ada Lovelace","email":"ada@example.com","tier":"gold","marketingOptIn":false,"updatedAt":1767225600000}"#;
    service.expect("PUT", "/customers/p-2/profile", profile, 200);
    service.expect("PUT", "/customers/p-2/profile", "{", 400);

    // Jobs: a write, L1 hits, a miss.
    let job = r#"{"jobId":"job-1","status":"waiting","addedAt":1767225600000}"#;
    service.expect("PUT", "/jobs/job-1", job, 200);
    service.expect("GET", "/jobs/job-none", "", 404);
    service.settle_in_l1("/jobs/job-1");
    for _ in 0..5 {
        service.expect("GET", "/jobs/job-1", "", 200);
        service.expect("GET", "/customers/p-1/profile", "", 200);
    }
}

/// A real BullMQ queue and worker run jobs: events followed, final
/// statuses recorded, answers from BullMQ and from reasoning_job, a long
/// poll that runs out.
fn drive_bullmq_traffic(service: &Service, redis: &RedisServer) {
    use support::bullmq::{QUEUE, add_jobs};
    let mut worker = support::node::NodeProcess::start(
        "bullmq.js",
        redis.port(),
        &[("BULLMQ_CMD", "worker"), ("QUEUE", QUEUE)],
    );
    let mut until = |wanted: &dyn Fn(&Value) -> bool| loop {
        let line = worker.next_json().expect("the BullMQ worker runs");
        if wanted(&line) {
            break;
        }
    };
    until(&|line| line["ready"] == true);
    add_jobs(
        redis.port(),
        &serde_json::json!([
            { "name": "ok", "data": { "n": 2 }, "opts": { "jobId": "e2e-ok" } },
            { "name": "flaky", "opts": { "jobId": "e2e-failed" } },
            { "name": "ok", "opts": { "jobId": "e2e-delayed", "delay": 600000 } },
        ]),
    );
    until(&|line| line["event"] == "completed" && line["id"] == "e2e-ok");
    until(&|line| line["event"] == "failed" && line["id"] == "e2e-failed");
    let delayed = service.expect("GET", "/jobs/e2e-delayed", "", 200);
    assert_eq!(delayed.header("x-warmcache-source"), Some("bullmq"));
    let etag = delayed.header("etag").expect("an ETag").to_owned();
    let expired = service.call(
        "GET",
        "/jobs/e2e-delayed?waitMs=50",
        &[("If-None-Match", &etag)],
        "",
    );
    assert_eq!(expired.status, 304);
    for _ in 0..3 {
        service.expect("GET", "/jobs/e2e-delayed", "", 200);
        service.expect("GET", "/jobs/e2e-ok", "", 200);
        service.expect("GET", "/jobs/e2e-failed", "", 200);
    }
}

/// Keyed traffic while Redis is down: reads only Redis can answer fail, a
/// profile still comes from its loader, writes and erasures fail.
fn drive_outage_traffic(service: &Service, round: usize) {
    for i in 0..5 {
        service.expect(
            "GET",
            &format!("/age-verification/outage-{round}-{i}"),
            "",
            503,
        );
        service.expect("GET", &format!("/jobs/outage-{round}-{i}"), "", 503);
        service.expect_tier(&format!("/customers/outage-{round}-{i}/profile"), "loader");
    }
    service.expect(
        "PUT",
        "/age-verification/cust-3",
        &age_json("cust-3", true),
        503,
    );
    service.expect("DELETE", "/age-verification/cust-1", "", 503);
}

#[test]
fn dashboard_and_rules_against_a_real_prometheus() {
    let mut redis = RedisServer::start();
    let service = Service::start(redis.port());
    let deadline = Instant::now() + BOUND;
    while service.call("GET", "/readyz", &[], "").status != 200 {
        assert!(
            Instant::now() < deadline,
            "/readyz not 200 after {BOUND:?}\n{}",
            service.process.tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let prometheus = Prometheus::start(service.metrics);
    prometheus.wait_for_data(r#"up{job="warmcache"} == 1"#);

    drive_healthy_traffic(&service, &redis);
    drive_bullmq_traffic(&service, &redis);
    // Every metric of the contract is exported (a clear message here beats a
    // list of empty panels later).
    let exposition = http(service.metrics, "GET", "/metrics", &[], b"")
        .expect("GET /metrics")
        .text();
    for name in contract_names().iter().filter(|n| !n.ends_with("_sum")) {
        assert!(
            exposition.contains(name.as_str()),
            "/metrics lacks {name}:\n{exposition}"
        );
    }
    prometheus.wait_for_data(r#"warmcache_snapshot_refresh_total{result="error"} > 0"#);
    prometheus.wait_for_data(r#"warmcache_invalidations_total{origin="remote"} > 0"#);
    prometheus.wait_for_data(r#"warmcache_requests_total{tier="l2", result="hit"} > 0"#);
    prometheus.wait_for_data(r#"warmcache_bullmq_events_total{event="completed"} > 0"#);
    prometheus.wait_for_data(r#"warmcache_job_reads_total{source="bullmq"} > 0"#);

    // The L2 outage.
    redis.kill();
    let mut round = 0;
    drive_outage_traffic(&service, round);
    prometheus.wait_for_data("warmcache_invalidation_connected == 0");
    prometheus
        .wait_for_data(r#"warmcache_invalidation_failures_total{cache="age_verification"} > 0"#);

    // Rule and query results lag the scrapes by a second or two: check
    // everything, and until it all holds (or the bound passes) drive another
    // round of outage traffic, so the induced conditions stay true, and
    // check again.
    let dashboard = dashboard();
    let (records, alerts) = rule_names_in_file();
    let deadline = Instant::now() + BOUND;
    loop {
        let failures = check_everything(&prometheus, &dashboard, &records, &alerts);
        if failures.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} checks still fail after {BOUND:?}:\n{}\n\n{}\n\n{}",
            failures.len(),
            failures.join("\n"),
            service.process.tail(),
            prometheus.process.tail()
        );
        round += 1;
        drive_outage_traffic(&service, round);
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Everything the dashboard and the rules ask of Prometheus; the failures.
fn check_everything(
    prometheus: &Prometheus,
    dashboard: &Value,
    records: &BTreeSet<String>,
    alerts: &BTreeSet<String>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (place, expr) in dashboard_queries(dashboard) {
        failures.extend(data_problem(prometheus, &place, &expr));
    }
    for (name, selector, label) in variable_queries(dashboard) {
        let expr = format!("count by ({label}) ({selector})");
        failures.extend(data_problem(
            prometheus,
            &format!("variable ${name}"),
            &expr,
        ));
    }

    let loaded = prometheus.rules();
    let loaded_names: BTreeMap<&str, &LoadedRule> =
        loaded.iter().map(|r| (r.name.as_str(), r)).collect();
    let in_file: BTreeSet<&str> = records.iter().chain(alerts).map(String::as_str).collect();
    if loaded.len() != in_file.len()
        || loaded_names.keys().copied().collect::<BTreeSet<_>>() != in_file
    {
        failures.push(format!(
            "Prometheus loaded {:?}, rules.yml has {in_file:?}",
            loaded.iter().map(|r| &r.name).collect::<Vec<_>>()
        ));
    }
    for rule in &loaded {
        if rule.health != "ok" {
            failures.push(format!("rule {}: health {:?}", rule.name, rule.health));
        }
        if rule.kind == "recording" {
            let what = format!("recording rule {}", rule.name);
            failures.extend(data_problem(prometheus, &what, &rule.query));
            failures.extend(data_problem(prometheus, &what, &rule.name));
            continue;
        }
        // Every alert: its series exist and match (see the module doc).
        let (bool_form, comparisons) = with_bool(&rule.query);
        if comparisons == 0 {
            failures.push(format!(
                "alert {}: no comparison in `{}`",
                rule.name, rule.query
            ));
        }
        match prometheus.query(&bool_form) {
            Ok(samples) if !samples.is_empty() => {}
            other => failures.push(format!(
                "alert {} underlying series: `{bool_form}` gave {other:?}",
                rule.name
            )),
        }
        // Induced alerts: the expression as written returns data, and
        // Prometheus's rule manager has it pending or firing.
        if let Some((_, how)) = INDUCED.iter().find(|(name, _)| *name == rule.name) {
            match prometheus.query(&rule.query) {
                Ok(samples) if !samples.is_empty() => {}
                other => failures.push(format!(
                    "induced alert {} ({how}): `{}` gave {other:?}",
                    rule.name, rule.query
                )),
            }
            if !matches!(rule.state.as_str(), "pending" | "firing") {
                failures.push(format!(
                    "induced alert {} ({how}) is {:?}",
                    rule.name, rule.state
                ));
            }
        }
    }
    failures
}

/// Why `expr` fails the dashboard's standard: an error, no data, or only
/// NaN (a ratio of 0/0 shows as empty as no data).
fn data_problem(prometheus: &Prometheus, what: &str, expr: &str) -> Option<String> {
    match prometheus.query(expr) {
        Err(e) => Some(format!("{what}: `{expr}` failed: {e}")),
        Ok(samples) if samples.is_empty() => Some(format!("{what}: `{expr}` returned nothing")),
        Ok(samples) if samples.iter().all(|s| s.value.is_nan()) => {
            Some(format!("{what}: `{expr}` returned only NaN: {samples:?}"))
        }
        Ok(_) => None,
    }
}
