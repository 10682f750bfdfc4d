//! What the core shares about settings: the environment variable names
//! ([`vars`]), the error a bad value gives ([`ConfigError`]), the
//! refresher's timing ([`RefreshConfig`]) and the parse helpers the
//! components' own `from_lookup`s use.
//!
//! A leaf: it imports nothing else of the crate, so every module may import
//! it without a cycle. The service's whole configuration (`Config`, read from
//! the environment, and the `SETTINGS` list the binary's flags come from)
//! lives with the service.

use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_default_when_unset_and_are_bounded() {
        assert_eq!(
            parse_ms(None, vars::TTL_MS, 30_000, 1_000, 60_000),
            Ok(30_000)
        );
        assert_eq!(
            parse_ms(Some(" 2000 ".into()), vars::TTL_MS, 30_000, 1_000, 60_000),
            Ok(2_000)
        );
        let err = parse_ms(Some("999".into()), vars::TTL_MS, 30_000, 1_000, 60_000)
            .expect_err("below the minimum");
        assert_eq!((err.name, err.value.as_str()), (vars::TTL_MS, "999"));
        assert!(err.to_string().contains("from 1000 to 60000"), "{err}");
    }

    #[test]
    fn jitter_is_a_fraction_up_to_one_half() {
        assert_eq!(parse_jitter(vars::REFRESH_JITTER, "0.25"), Ok(0.25));
        for bad in ["0.6", "-0.1", "NaN", "x"] {
            assert!(parse_jitter(vars::REFRESH_JITTER, bad).is_err(), "{bad}");
        }
    }
}
