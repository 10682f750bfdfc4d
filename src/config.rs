//! Every setting of the service in one place, parsed and checked.
//!
//! [`SETTINGS`] is the single list of settings: the binary builds its clap
//! flags from it (each flag also reads its environment variable), the README
//! documents it, and [`Config::from_lookup`] parses it. A bad value becomes a
//! [`ConfigError`] whose one-line message names the variable, the value and
//! what is allowed.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::bullmq::BullmqConfig;
use crate::records::TimeFormat;
use crate::redis::{InvalidationOptions, RedisConfig};
use crate::snapshot::Mode;
use crate::source::BigQueryConfig;

/// One setting: its environment variable, its command-line flag and its help.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Environment variable, e.g. `BQ_CACHE_TTL_MS`. Also the clap argument id.
    pub env: &'static str,
    /// Long flag without dashes, e.g. `ttl-ms`; `None` for secrets, which
    /// must not appear on a command line (`ps` shows it to everyone).
    pub flag: Option<&'static str>,
    /// Default as shown to people (`None` when unset means "off").
    pub default: Option<&'static str>,
    /// One line of help.
    pub help: &'static str,
}

/// Environment variable names, so code never spells them twice.
pub mod vars {
    /// API listen address.
    pub const LISTEN: &str = "WARMCACHE_LISTEN";
    /// `auto`, `live` or `mock`.
    pub const MODE: &str = "WARMCACHE_MODE";
    /// Google Cloud project; its presence selects live mode under `auto`.
    pub const BQ_PROJECT_ID: &str = "BQ_PROJECT_ID";
    /// Dataset of the live-mode tables.
    pub const BQ_DATASET: &str = "BQ_DATASET";
    /// The transactions table.
    pub const BQ_TRANSACTIONS_TABLE: &str = "BQ_TRANSACTIONS_TABLE";
    /// The products table.
    pub const BQ_PRODUCTS_TABLE: &str = "BQ_PRODUCTS_TABLE";
    /// Directory of `.sql` files that replace the built-in queries.
    pub const BQ_QUERY_DIR: &str = "BQ_QUERY_DIR";
    /// Cap on the bytes one query may bill.
    pub const BQ_MAXIMUM_BYTES_BILLED: &str = "BQ_MAXIMUM_BYTES_BILLED";
    /// Currency of the live-mode amounts.
    pub const BQ_CURRENCY: &str = "BQ_CURRENCY";
    /// Time bound of every HTTP call to BigQuery, in milliseconds.
    pub const BQ_HTTP_TIMEOUT_MS: &str = "BQ_HTTP_TIMEOUT_MS";
    /// `host:port` of a BigQuery emulator (no credentials).
    pub const BIGQUERY_EMULATOR_HOST: &str = "BIGQUERY_EMULATOR_HOST";
    /// Service-account key file.
    pub const GOOGLE_APPLICATION_CREDENTIALS: &str = "GOOGLE_APPLICATION_CREDENTIALS";
    /// Snapshot refresh period in milliseconds.
    pub const TTL_MS: &str = "BQ_CACHE_TTL_MS";
    /// Time bound of one refresh in milliseconds.
    pub const REFRESH_TIMEOUT_MS: &str = "WARMCACHE_REFRESH_TIMEOUT_MS";
    /// Random spread of the refresh period, as a fraction.
    pub const REFRESH_JITTER: &str = "WARMCACHE_REFRESH_JITTER";
    /// Data age after which the service reports itself not ready.
    pub const MAX_STALENESS_MS: &str = "WARMCACHE_MAX_STALENESS_MS";
    /// Seed of the mock data.
    pub const MOCK_SEED: &str = "WARMCACHE_MOCK_SEED";
    /// Every Nth mock refresh fails (0: never).
    pub const MOCK_FAIL_EVERY: &str = "WARMCACHE_MOCK_FAIL_EVERY";
    /// Address of `GET /metrics`.
    pub const METRICS_LISTEN: &str = "WARMCACHE_METRICS_LISTEN";
    /// `text` or `json`.
    pub const LOG_FORMAT: &str = "WARMCACHE_LOG_FORMAT";
    /// L1 budget per keyspace, in bytes.
    pub const L1_MAX_BYTES: &str = "WARMCACHE_L1_MAX_BYTES";
    /// Upper bound of an L1 entry's life, in milliseconds.
    pub const L1_TTL_MS: &str = "WARMCACHE_L1_TTL_MS";
    /// How long L1 is trusted after the invalidation connection is lost.
    pub const L1_GRACE_MS: &str = "WARMCACHE_L1_GRACE_MS";
    /// Upper bound of an L1 entry's life in the pub/sub fallback.
    pub const FALLBACK_L1_TTL_MS: &str = "WARMCACHE_FALLBACK_L1_TTL_MS";
    /// BullMQ queue whose jobs `GET /jobs/{jobId}` reports (unset: BullMQ off).
    pub const BULLMQ_QUEUE: &str = "WARMCACHE_BULLMQ_QUEUE";
    /// BullMQ key prefix (`bull`, or hash-tagged like `{bull}`).
    pub const BULLMQ_PREFIX: &str = "WARMCACHE_BULLMQ_PREFIX";
    /// Whether job answers from BullMQ include the job's `data`.
    pub const BULLMQ_EXPOSE_DATA: &str = "WARMCACHE_BULLMQ_EXPOSE_DATA";
    /// How warmcache writes the times it creates in records: `iso` or `epoch_ms`.
    pub const RECORD_TIME_FORMAT: &str = "WARMCACHE_RECORD_TIME_FORMAT";
}

/// All settings, in the order `--help` and the README show them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        env: vars::LISTEN,
        flag: Some("listen"),
        default: Some("127.0.0.1:8080"),
        help: "Address the HTTP API listens on (port 0 picks a free port)",
    },
    Setting {
        env: vars::METRICS_LISTEN,
        flag: Some("metrics-listen"),
        default: Some("127.0.0.1:9464"),
        help: "Address GET /metrics listens on, apart from the API (port 0 picks a free port)",
    },
    Setting {
        env: vars::MODE,
        flag: Some("mode"),
        default: Some("auto"),
        help: "Data source: auto (live when BQ_PROJECT_ID is set, else mock), live or mock",
    },
    Setting {
        env: vars::BQ_PROJECT_ID,
        flag: Some("bq-project-id"),
        default: None,
        help: "Google Cloud project to query; setting it selects live mode under --mode auto",
    },
    Setting {
        env: vars::BQ_DATASET,
        flag: Some("bq-dataset"),
        default: None,
        help: "BigQuery dataset of the tables (required in live mode)",
    },
    Setting {
        env: vars::BQ_TRANSACTIONS_TABLE,
        flag: Some("bq-transactions-table"),
        default: Some("transactions"),
        help: "Transactions table: table, dataset.table or project.dataset.table",
    },
    Setting {
        env: vars::BQ_PRODUCTS_TABLE,
        flag: Some("bq-products-table"),
        default: Some("products"),
        help: "Products table: table, dataset.table or project.dataset.table",
    },
    Setting {
        env: vars::BQ_QUERY_DIR,
        flag: Some("bq-query-dir"),
        default: None,
        help: "Directory whose dashboard.sql, historical.sql or products.sql replace the built-in queries",
    },
    Setting {
        env: vars::BQ_MAXIMUM_BYTES_BILLED,
        flag: Some("bq-maximum-bytes-billed"),
        default: Some("1073741824"),
        help: "Cap on the bytes one query may bill (10485760 to 109951162777600); over it the refresh fails",
    },
    Setting {
        env: vars::BQ_CURRENCY,
        flag: Some("bq-currency"),
        default: Some("USD"),
        help: "ISO 4217 code of the amounts in live mode",
    },
    Setting {
        env: vars::BQ_HTTP_TIMEOUT_MS,
        flag: Some("bq-http-timeout-ms"),
        default: Some("15000"),
        help: "Time bound of every HTTP call to BigQuery and its token endpoint, and of building the client, in milliseconds (100 to 600000)",
    },
    Setting {
        env: vars::BIGQUERY_EMULATOR_HOST,
        flag: Some("bigquery-emulator-host"),
        default: None,
        help: "host:port of a BigQuery emulator; set, live mode queries it over HTTP with no credentials",
    },
    Setting {
        env: vars::GOOGLE_APPLICATION_CREDENTIALS,
        flag: None,
        default: None,
        help: "Service-account key file (environment only); unset: application default credentials (metadata server)",
    },
    Setting {
        env: vars::TTL_MS,
        flag: Some("ttl-ms"),
        default: Some("30000"),
        help: "Snapshot refresh period in milliseconds (1000 to 86400000)",
    },
    Setting {
        env: vars::REFRESH_TIMEOUT_MS,
        flag: Some("refresh-timeout-ms"),
        default: Some("10000"),
        help: "Time bound of one refresh in milliseconds (100 to 600000)",
    },
    Setting {
        env: vars::REFRESH_JITTER,
        flag: Some("refresh-jitter"),
        default: Some("0.1"),
        help: "Random spread of each refresh period, as a fraction (0 to 0.5)",
    },
    Setting {
        env: vars::MAX_STALENESS_MS,
        flag: Some("max-staleness-ms"),
        default: Some("4 x BQ_CACHE_TTL_MS"),
        help: "Data age in milliseconds after which /readyz answers 503 (at least the TTL)",
    },
    Setting {
        env: vars::MOCK_SEED,
        flag: Some("mock-seed"),
        default: Some("42"),
        help: "Seed of the generated mock data (any unsigned 64-bit number)",
    },
    Setting {
        env: vars::MOCK_FAIL_EVERY,
        flag: Some("mock-fail-every"),
        default: Some("0"),
        help: "Mock mode only: every Nth refresh fails, to see stale-if-error at work (0: never)",
    },
    Setting {
        env: vars::LOG_FORMAT,
        flag: Some("log-format"),
        default: Some("text"),
        help: "Log format: text or json (filter with RUST_LOG, default info)",
    },
    Setting {
        env: vars::L1_MAX_BYTES,
        flag: Some("l1-max-bytes"),
        default: Some("33554432"),
        help: "In-process (L1) budget of each keyed cache, in bytes (0 to 17179869184)",
    },
    Setting {
        env: vars::L1_TTL_MS,
        flag: Some("l1-ttl-ms"),
        default: Some("60000"),
        help: "Longest life of an L1 entry in milliseconds (also bounded by the key's Redis TTL)",
    },
    Setting {
        env: vars::L1_GRACE_MS,
        flag: Some("l1-grace-ms"),
        default: Some("1000"),
        help: "L1 lease: entries are served until the last answered PING's send time plus this (0: never while the listener runs)",
    },
    Setting {
        env: vars::FALLBACK_L1_TTL_MS,
        flag: Some("fallback-l1-ttl-ms"),
        default: Some("5000"),
        help: "Longest L1 life when Redis refuses CLIENT TRACKING and pub/sub invalidation is used",
    },
    Setting {
        env: vars::BULLMQ_QUEUE,
        flag: Some("bullmq-queue"),
        default: None,
        help: "BullMQ queue whose jobs GET /jobs/{jobId} reports and whose events are followed (unset: BullMQ off)",
    },
    Setting {
        env: vars::BULLMQ_PREFIX,
        flag: Some("bullmq-prefix"),
        default: Some("bull"),
        help: "BullMQ key prefix; hash-tagged (e.g. {bull}) in a Redis Cluster",
    },
    Setting {
        env: vars::BULLMQ_EXPOSE_DATA,
        flag: Some("bullmq-expose-data"),
        default: Some("false"),
        help: "Include the job's data (the prompt, maybe personal data) in job answers: true or false",
    },
    Setting {
        env: vars::RECORD_TIME_FORMAT,
        flag: Some("record-time-format"),
        default: Some("iso"),
        help: "How new record times are written: iso (Date#toISOString) or epoch_ms (Date.now()); updates keep a record's form",
    },
    Setting {
        env: "REDIS_HOST",
        flag: Some("redis-host"),
        default: Some("127.0.0.1"),
        help: "Redis host name or IP address",
    },
    Setting {
        env: "REDIS_PORT",
        flag: Some("redis-port"),
        default: Some("6379"),
        help: "Redis port",
    },
    Setting {
        env: "REDIS_USERNAME",
        flag: Some("redis-username"),
        default: None,
        help: "Redis ACL user",
    },
    Setting {
        env: "REDIS_PASSWORD",
        flag: None,
        default: None,
        help: "Redis password (environment only; never logged)",
    },
    Setting {
        env: "REDIS_USE_TLS",
        flag: Some("redis-use-tls"),
        default: Some("false"),
        help: "Connect to Redis with TLS: true or false",
    },
    Setting {
        env: "REDIS_TLS_CA_FILE",
        flag: Some("redis-tls-ca-file"),
        default: None,
        help: "PEM file of the CA of the Redis server certificate (default: the system roots)",
    },
    Setting {
        env: "REDIS_DB",
        flag: Some("redis-db"),
        default: Some("0"),
        help: "Redis database number, 0 to 15",
    },
    Setting {
        env: "REDIS_TIMEOUT_MS",
        flag: Some("redis-timeout-ms"),
        default: Some("250"),
        help: "Time bound of every Redis operation in milliseconds (10 to 60000)",
    },
    Setting {
        env: "REDIS_CONNECT_TIMEOUT_MS",
        flag: Some("redis-connect-timeout-ms"),
        default: Some("1000"),
        help: "Time bound of one Redis connection attempt in milliseconds (10 to 60000)",
    },
    Setting {
        env: "WARMCACHE_TOMBSTONE_TTL_MS",
        flag: Some("tombstone-ttl-ms"),
        default: Some("60000"),
        help: "Life of an erasure's tombstone, which stops loaders on any instance from writing the erased value back (1000 to 86400000 ms)",
    },
    Setting {
        env: "WARMCACHE_ERASURE_REPLICAS",
        flag: Some("erasure-replicas"),
        default: Some("0"),
        help: "Replicas an erasure waits for (WAIT) so that a failover cannot undo it (0 to 64; 0: do not wait)",
    },
    Setting {
        env: "WARMCACHE_ERASURE_WAIT_MS",
        flag: Some("erasure-wait-ms"),
        default: Some("100"),
        help: "How long an erasure waits for those replicas before it reports a shortfall (1 to 60000 ms)",
    },
    Setting {
        env: "REDIS_MODE",
        flag: Some("redis-mode"),
        default: Some("standalone"),
        help: "standalone (one server), cluster (a Redis Cluster; REDIS_HOST:REDIS_PORT is a seed node) or sentinel (the primary the sentinels name)",
    },
    Setting {
        env: "REDIS_CLUSTER_NODES",
        flag: Some("redis-cluster-nodes"),
        default: None,
        help: "More cluster seed nodes, comma-separated host:port (cluster mode)",
    },
    Setting {
        env: "REDIS_SENTINELS",
        flag: Some("redis-sentinels"),
        default: None,
        help: "Sentinels asked for the primary, in order, comma-separated host:port (required in sentinel mode)",
    },
    Setting {
        env: "REDIS_SENTINEL_MASTER",
        flag: Some("redis-sentinel-master"),
        default: Some("mymaster"),
        help: "Name the sentinels monitor the primary under (sentinel mode)",
    },
    Setting {
        env: "REDIS_SENTINEL_USERNAME",
        flag: Some("redis-sentinel-username"),
        default: None,
        help: "ACL user on the sentinels (sentinel mode; the data nodes use REDIS_USERNAME)",
    },
    Setting {
        env: "REDIS_SENTINEL_PASSWORD",
        flag: None,
        default: None,
        help: "Password of the sentinels (environment only; never logged; the data nodes use REDIS_PASSWORD)",
    },
];

const MAX_TTL_MS: u64 = 86_400_000;
const MAX_STALENESS_LIMIT_MS: u64 = 7 * MAX_TTL_MS;

/// A setting whose value cannot be used. `Display` is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {name}={value:?}: expected {expected}")]
pub struct ConfigError {
    /// The environment variable (or builder setting) at fault.
    pub name: &'static str,
    /// The value as given.
    pub value: String,
    /// What is allowed, in words.
    pub expected: String,
}

impl ConfigError {
    pub(crate) fn new(
        name: &'static str,
        value: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        Self {
            name,
            value: value.into(),
            expected: expected.into(),
        }
    }
}

/// Which source the service should use, before `auto` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModeSetting {
    Auto,
    Live,
    Mock,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Timing of the snapshot refresher.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshConfig {
    /// Refresh period (`BQ_CACHE_TTL_MS`); also the snapshot's lifetime.
    pub ttl: Duration,
    /// Time bound of one fetch.
    pub timeout: Duration,
    /// Each period is multiplied by a random factor in `1 ± jitter`.
    pub jitter: f64,
}

/// The validated configuration of the reference service.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// API listen address.
    pub listen: SocketAddr,
    /// `GET /metrics` listen address.
    pub metrics_listen: SocketAddr,
    /// Mock mode: every Nth refresh fails (0: never).
    pub mock_fail_every: u64,
    /// Resolved data source mode.
    pub mode: Mode,
    /// Google Cloud project for live mode.
    pub bq_project_id: Option<String>,
    /// Live-mode settings; `Some` exactly in live mode.
    pub bigquery: Option<BigQueryConfig>,
    /// Refresher timing.
    pub refresh: RefreshConfig,
    /// Data age after which the service is not ready.
    pub max_staleness: Duration,
    /// Seed of the mock data.
    pub mock_seed: u64,
    /// Log output format.
    pub log_format: LogFormat,
    /// The Redis server of the keyed caches.
    pub redis: RedisConfig,
    /// L1 budget of each keyed cache, in bytes.
    pub l1_max_bytes: u64,
    /// Upper bound of an L1 entry's life.
    pub l1_ttl: Duration,
    /// How invalidations keep L1 coherent across instances.
    pub invalidation: InvalidationOptions,
    /// The BullMQ queue of `GET /jobs/{jobId}`; `None`: BullMQ is not read.
    pub bullmq: Option<BullmqConfig>,
    /// How the times warmcache creates in records are written.
    pub record_time_format: TimeFormat,
}

impl Config {
    /// Reads every setting from the process environment.
    ///
    /// # Errors
    /// The first setting with a bad value.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads every setting through `lookup` (environment variable name to
    /// value). Empty values count as unset.
    ///
    /// # Errors
    /// The first setting with a bad value.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let listen = match get(vars::LISTEN) {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(v) => v.trim().parse().map_err(|_| {
                ConfigError::new(
                    vars::LISTEN,
                    &v,
                    "an IP address and port such as 127.0.0.1:8080",
                )
            })?,
        };
        let metrics_listen = match get(vars::METRICS_LISTEN) {
            None => SocketAddr::from(([127, 0, 0, 1], 9464)),
            Some(v) => v.trim().parse().map_err(|_| {
                ConfigError::new(
                    vars::METRICS_LISTEN,
                    &v,
                    "an IP address and port such as 127.0.0.1:9464",
                )
            })?,
        };
        let mock_fail_every = match get(vars::MOCK_FAIL_EVERY) {
            None => 0,
            Some(v) => v.trim().parse().map_err(|_| {
                ConfigError::new(vars::MOCK_FAIL_EVERY, &v, "a whole number (0: never)")
            })?,
        };
        let bq_project_id = get(vars::BQ_PROJECT_ID).map(|v| v.trim().to_owned());
        let mode = match get(vars::MODE).as_deref().map(str::trim) {
            None | Some("auto") => ModeSetting::Auto,
            Some("live") => ModeSetting::Live,
            Some("mock") => ModeSetting::Mock,
            Some(other) => {
                return Err(ConfigError::new(
                    vars::MODE,
                    other,
                    "one of auto, live, mock",
                ));
            }
        };
        let mode = match (mode, &bq_project_id) {
            (ModeSetting::Mock, _) | (ModeSetting::Auto, None) => Mode::Mock,
            (ModeSetting::Auto | ModeSetting::Live, Some(_)) => Mode::Live,
            (ModeSetting::Live, None) => {
                return Err(ConfigError::new(
                    vars::MODE,
                    "live",
                    "mock or auto while BQ_PROJECT_ID is unset (live mode needs a project)",
                ));
            }
        };

        let ttl_ms = parse_ms(get(vars::TTL_MS), vars::TTL_MS, 30_000, 1_000, MAX_TTL_MS)?;
        let timeout_ms = parse_ms(
            get(vars::REFRESH_TIMEOUT_MS),
            vars::REFRESH_TIMEOUT_MS,
            10_000,
            100,
            600_000,
        )?;
        let jitter = match get(vars::REFRESH_JITTER) {
            None => 0.1,
            Some(v) => parse_jitter(vars::REFRESH_JITTER, &v)?,
        };
        let default_staleness = ttl_ms.saturating_mul(4).min(MAX_STALENESS_LIMIT_MS);
        let staleness_ms = parse_ms(
            get(vars::MAX_STALENESS_MS),
            vars::MAX_STALENESS_MS,
            default_staleness,
            ttl_ms,
            MAX_STALENESS_LIMIT_MS,
        )?;
        let mock_seed = match get(vars::MOCK_SEED) {
            None => 42,
            Some(v) => v.trim().parse().map_err(|_| {
                ConfigError::new(
                    vars::MOCK_SEED,
                    &v,
                    "a whole number from 0 to 18446744073709551615",
                )
            })?,
        };
        let log_format = match get(vars::LOG_FORMAT).as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(ConfigError::new(vars::LOG_FORMAT, other, "text or json")),
        };

        let l1_max_bytes = match get(vars::L1_MAX_BYTES) {
            None => crate::tier::DEFAULT_L1_MAX_BYTES,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n <= 16 << 30 => n,
                _ => {
                    return Err(ConfigError::new(
                        vars::L1_MAX_BYTES,
                        v,
                        "a number of bytes from 0 to 17179869184",
                    ));
                }
            },
        };
        let l1_ttl_ms = parse_ms(get(vars::L1_TTL_MS), vars::L1_TTL_MS, 60_000, 1, MAX_TTL_MS)?;
        let invalidation = InvalidationOptions {
            grace: Duration::from_millis(parse_ms(
                get(vars::L1_GRACE_MS),
                vars::L1_GRACE_MS,
                1_000,
                0,
                3_600_000,
            )?),
            fallback_l1_ttl: Duration::from_millis(parse_ms(
                get(vars::FALLBACK_L1_TTL_MS),
                vars::FALLBACK_L1_TTL_MS,
                5_000,
                1,
                MAX_TTL_MS,
            )?),
            ..InvalidationOptions::default()
        };
        let record_time_format = match get(vars::RECORD_TIME_FORMAT) {
            None => TimeFormat::default(),
            Some(v) => TimeFormat::parse(v.trim())
                .ok_or_else(|| ConfigError::new(vars::RECORD_TIME_FORMAT, &v, "iso or epoch_ms"))?,
        };
        let redis = RedisConfig::from_lookup(&lookup)?;
        let bullmq = BullmqConfig::from_lookup(&get)?;
        let bigquery = match (mode, &bq_project_id) {
            (Mode::Live, Some(project)) => Some(BigQueryConfig::from_lookup(project, &lookup)?),
            _ => None,
        };

        Ok(Self {
            metrics_listen,
            mock_fail_every,
            redis,
            l1_max_bytes,
            l1_ttl: Duration::from_millis(l1_ttl_ms),
            invalidation,
            bullmq,
            record_time_format,
            listen,
            mode,
            bq_project_id,
            bigquery,
            refresh: RefreshConfig {
                ttl: Duration::from_millis(ttl_ms),
                timeout: Duration::from_millis(timeout_ms),
                jitter,
            },
            max_staleness: Duration::from_millis(staleness_ms),
            mock_seed,
            log_format,
        })
    }
}

/// Parses a whole number of milliseconds in `min..=max`.
pub(crate) fn parse_ms(
    value: Option<String>,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let expected = || format!("a whole number of milliseconds from {min} to {max}");
    match value.trim().parse::<u64>() {
        Ok(ms) if (min..=max).contains(&ms) => Ok(ms),
        _ => Err(ConfigError::new(name, value, expected())),
    }
}

/// Parses a jitter fraction in `0..=0.5`.
pub(crate) fn parse_jitter(name: &'static str, value: &str) -> Result<f64, ConfigError> {
    match value.trim().parse::<f64>() {
        Ok(j) if (0.0..=0.5).contains(&j) => Ok(j),
        _ => Err(ConfigError::new(
            name,
            value,
            "a fraction from 0 to 0.5, such as 0.1",
        )),
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_give_mock_mode_on_localhost() {
        let config = parse(&[]).expect("defaults are valid");
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(config.mode, Mode::Mock);
        assert_eq!(config.refresh.ttl, Duration::from_secs(30));
        assert_eq!(config.refresh.timeout, Duration::from_secs(10));
        assert!((config.refresh.jitter - 0.1).abs() < f64::EPSILON);
        assert_eq!(config.max_staleness, Duration::from_secs(120));
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn project_id_selects_live_mode_unless_mock_is_forced() {
        let live = parse(&[
            (vars::BQ_PROJECT_ID, "acme-prod"),
            (vars::BQ_DATASET, "shop"),
        ])
        .expect("valid");
        assert_eq!(live.mode, Mode::Live);
        assert_eq!(live.bq_project_id.as_deref(), Some("acme-prod"));
        let bigquery = live.bigquery.expect("live mode has its settings");
        assert_eq!(
            (bigquery.project_id.as_str(), bigquery.dataset.as_str()),
            ("acme-prod", "shop")
        );
        let forced =
            parse(&[(vars::BQ_PROJECT_ID, "acme-prod"), (vars::MODE, "mock")]).expect("valid");
        assert_eq!(forced.mode, Mode::Mock);
        assert!(
            forced.bigquery.is_none(),
            "mock mode ignores the BigQuery settings"
        );
    }

    #[test]
    fn live_mode_without_a_dataset_is_rejected_naming_it() {
        let err = parse(&[(vars::BQ_PROJECT_ID, "acme-prod")]).expect_err("incomplete");
        assert_eq!(err.name, vars::BQ_DATASET);
    }

    #[test]
    fn staleness_default_follows_the_ttl() {
        let config = parse(&[(vars::TTL_MS, "5000")]).expect("valid");
        assert_eq!(config.max_staleness, Duration::from_secs(20));
    }

    fn assert_rejected(name: &'static str, value: &str, expected_words: &str) {
        let err = parse(&[(name, value)]).expect_err("must be rejected");
        assert_eq!(err.name, name);
        assert_eq!(err.value, value);
        let line = err.to_string();
        assert!(!line.contains('\n'), "one line: {line}");
        assert!(line.contains(name) && line.contains(value), "{line}");
        assert!(line.contains(expected_words), "{line}");
    }

    #[test]
    fn ttl_rejects_non_numbers_zero_negatives_and_absurd_values() {
        for bad in [
            "abc",
            "0",
            "-5",
            "999",
            "86400001",
            "99999999999999999999999",
            "1.5e3",
        ] {
            assert_rejected(vars::TTL_MS, bad, "from 1000 to 86400000");
        }
    }

    #[test]
    fn timeout_jitter_and_staleness_are_bounded() {
        assert_rejected(vars::REFRESH_TIMEOUT_MS, "0", "from 100 to 600000");
        assert_rejected(vars::REFRESH_TIMEOUT_MS, "ten", "from 100 to 600000");
        assert_rejected(vars::REFRESH_JITTER, "0.9", "from 0 to 0.5");
        assert_rejected(vars::REFRESH_JITTER, "-0.1", "from 0 to 0.5");
        assert_rejected(vars::REFRESH_JITTER, "NaN", "from 0 to 0.5");
        // Staleness below the TTL would make a healthy service flap.
        assert_rejected(vars::MAX_STALENESS_MS, "1000", "from 30000 to");
    }

    #[test]
    fn unknown_words_are_rejected() {
        assert_rejected(vars::MODE, "bigquery", "auto, live, mock");
        assert_rejected(vars::LOG_FORMAT, "xml", "text or json");
        assert_rejected(vars::LISTEN, "localhost", "IP address and port");
        assert_rejected(vars::MOCK_SEED, "-1", "whole number");
        assert_rejected(vars::RECORD_TIME_FORMAT, "unix", "iso or epoch_ms");
    }

    #[test]
    fn record_times_default_to_iso_and_epoch_ms_is_chosen_by_name() {
        assert_eq!(
            parse(&[]).expect("valid").record_time_format,
            TimeFormat::Iso
        );
        let epoch = parse(&[(vars::RECORD_TIME_FORMAT, "epoch_ms")]).expect("valid");
        assert_eq!(epoch.record_time_format, TimeFormat::EpochMs);
    }

    #[test]
    fn live_mode_without_a_project_is_rejected() {
        assert_rejected(vars::MODE, "live", "BQ_PROJECT_ID");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let config = parse(&[(vars::TTL_MS, ""), (vars::MODE, " ")]).expect("valid");
        assert_eq!(config.refresh.ttl, Duration::from_secs(30));
        assert_eq!(config.mode, Mode::Mock);
    }

    #[test]
    fn every_setting_has_a_distinct_env_and_flag() {
        let mut envs: Vec<_> = SETTINGS.iter().map(|s| s.env).collect();
        let mut flags: Vec<_> = SETTINGS.iter().filter_map(|s| s.flag).collect();
        envs.sort_unstable();
        envs.dedup();
        flags.sort_unstable();
        flags.dedup();
        assert_eq!(envs.len(), SETTINGS.len());
        assert_eq!(
            flags.len(),
            SETTINGS.iter().filter(|s| s.flag.is_some()).count()
        );
        let passwords: Vec<&Setting> = SETTINGS
            .iter()
            .filter(|s| s.env.ends_with("_PASSWORD"))
            .collect();
        assert_eq!(
            passwords.len(),
            2,
            "REDIS_PASSWORD, REDIS_SENTINEL_PASSWORD"
        );
        for password in passwords {
            assert!(
                password.flag.is_none(),
                "a {} flag would show in `ps`",
                password.env
            );
        }
    }
}
