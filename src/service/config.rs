//! The reference service's configuration, read from the environment.
//!
//! [`SETTINGS`](super::SETTINGS) is the single list of settings: the binary
//! builds its clap flags from it (each flag also reads its environment
//! variable), the README documents it, and [`Config::from_lookup`] parses
//! it. A bad value becomes a [`ConfigError`] whose one-line message names the
//! variable, the value and what is allowed. Each component parses its own
//! part (`RedisConfig::from_lookup`, `BigQueryConfig::from_lookup`,
//! `BullmqConfig::from_lookup`) with the helpers of the core's leaf module
//! `settings`; this module only puts them together.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::bullmq::BullmqConfig;
use crate::l2::{InvalidationOptions, RedisConfig};
use crate::records::TimeFormat;
use crate::settings::{ConfigError, RefreshConfig, parse_jitter, parse_ms, vars};
use crate::snapshot::Mode;
use crate::source::BigQueryConfig;

const MAX_TTL_MS: u64 = 86_400_000;
const MAX_STALENESS_LIMIT_MS: u64 = 7 * MAX_TTL_MS;

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
    use crate::service::setting_list::{SETTINGS, Setting};
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
