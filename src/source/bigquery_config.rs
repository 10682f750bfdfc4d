//! Live-mode settings: where the tables are, which queries run, the cost cap
//! and how to authenticate.
//!
//! [`BigQueryConfig::from_lookup`] reads the `BQ_*`, `BIGQUERY_EMULATOR_HOST`
//! and `GOOGLE_APPLICATION_CREDENTIALS` variables; [`crate::Config`] calls it
//! only in live mode. It is plain data with no Google dependency, so builds
//! without the `bigquery` feature still parse and check it.
//! [`BigQuerySetupError`] is what building the source from it can fail with.

use std::path::PathBuf;
use std::time::Duration;

use crate::settings::{ConfigError, parse_ms, vars};

/// The default cap on the bytes one query may bill: 1 GiB.
pub const DEFAULT_MAXIMUM_BYTES_BILLED: u64 = 1 << 30;
/// The smallest cap accepted: BigQuery bills at least 10 MiB per query anyway.
const MIN_MAXIMUM_BYTES_BILLED: u64 = 10 << 20;
/// The largest cap accepted: 100 TiB.
const MAX_MAXIMUM_BYTES_BILLED: u64 = 100 << 40;
/// The default bound of one HTTP call to BigQuery or its token endpoint.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// How the source proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// An emulator at `host:port` (`BIGQUERY_EMULATOR_HOST`): plain HTTP, no credentials.
    Emulator(String),
    /// A service-account (or authorized-user) key file (`GOOGLE_APPLICATION_CREDENTIALS`).
    KeyFile(PathBuf),
    /// Application default credentials: on Google Cloud, the metadata server
    /// (workload identity); elsewhere the `gcloud auth application-default` login.
    ApplicationDefault,
}

/// Where live mode reads from and what it may spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BigQueryConfig {
    /// Project that runs (and pays for) the queries (`BQ_PROJECT_ID`).
    pub project_id: String,
    /// Dataset of the tables (`BQ_DATASET`).
    pub dataset: String,
    /// The transactions table (`BQ_TRANSACTIONS_TABLE`): `table`,
    /// `dataset.table` or `project.dataset.table`.
    pub transactions_table: String,
    /// The products table (`BQ_PRODUCTS_TABLE`), in the same forms.
    pub products_table: String,
    /// Directory whose `dashboard.sql`, `historical.sql` or `products.sql`
    /// replace the built-in queries (`BQ_QUERY_DIR`).
    pub query_dir: Option<PathBuf>,
    /// Cap on the bytes one query may bill (`BQ_MAXIMUM_BYTES_BILLED`).
    pub maximum_bytes_billed: u64,
    /// ISO code of the amounts (`BQ_CURRENCY`).
    pub currency: String,
    /// Time bound of every HTTP call to BigQuery, token fetch included, and
    /// of building the client (`BQ_HTTP_TIMEOUT_MS`).
    pub http_timeout: Duration,
    /// How to authenticate.
    pub credentials: Credentials,
}

impl BigQueryConfig {
    /// The settings for `project_id` with everything else at its default,
    /// authenticating with application default credentials.
    pub fn new(project_id: impl Into<String>, dataset: impl Into<String>) -> Self {
        Self {
            project_id: project_id.into(),
            dataset: dataset.into(),
            transactions_table: "transactions".to_owned(),
            products_table: "products".to_owned(),
            query_dir: None,
            maximum_bytes_billed: DEFAULT_MAXIMUM_BYTES_BILLED,
            currency: "USD".to_owned(),
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            credentials: Credentials::ApplicationDefault,
        }
    }

    /// Reads the live-mode variables through `lookup` for `project_id`
    /// (already read from `BQ_PROJECT_ID`); empty values count as unset.
    ///
    /// # Errors
    /// A missing dataset or a bad value, naming the variable. Files are not
    /// opened here: building the source does that.
    pub fn from_lookup(
        project_id: &str,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        check_name(vars::BQ_PROJECT_ID, project_id, "a Google Cloud project id")?;
        let dataset = get(vars::BQ_DATASET).ok_or_else(|| {
            ConfigError::new(
                vars::BQ_DATASET,
                "",
                "the BigQuery dataset of the tables (live mode, selected by BQ_PROJECT_ID, needs it)",
            )
        })?;
        if !dataset
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ConfigError::new(
                vars::BQ_DATASET,
                dataset,
                "a dataset name of letters, digits and underscores",
            ));
        }
        let mut config = Self::new(project_id, dataset);
        for (name, table) in [
            (vars::BQ_TRANSACTIONS_TABLE, &mut config.transactions_table),
            (vars::BQ_PRODUCTS_TABLE, &mut config.products_table),
        ] {
            if let Some(value) = get(name) {
                check_name(
                    name,
                    &value,
                    "a table name, dataset.table or project.dataset.table",
                )?;
                if value.split('.').count() > 3 || value.split('.').any(str::is_empty) {
                    return Err(ConfigError::new(
                        name,
                        value,
                        "a table name, dataset.table or project.dataset.table",
                    ));
                }
                *table = value;
            }
        }
        config.query_dir = get(vars::BQ_QUERY_DIR).map(PathBuf::from);
        if let Some(value) = get(vars::BQ_MAXIMUM_BYTES_BILLED) {
            config.maximum_bytes_billed = match value.parse::<u64>() {
                Ok(n) if (MIN_MAXIMUM_BYTES_BILLED..=MAX_MAXIMUM_BYTES_BILLED).contains(&n) => n,
                _ => {
                    return Err(ConfigError::new(
                        vars::BQ_MAXIMUM_BYTES_BILLED,
                        value,
                        format!(
                            "a number of bytes from {MIN_MAXIMUM_BYTES_BILLED} (10 MiB) to {MAX_MAXIMUM_BYTES_BILLED} (100 TiB)"
                        ),
                    ));
                }
            };
        }
        if let Some(value) = get(vars::BQ_CURRENCY) {
            if value.len() != 3 || !value.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(ConfigError::new(
                    vars::BQ_CURRENCY,
                    value,
                    "a three-letter ISO 4217 code such as USD",
                ));
            }
            config.currency = value;
        }
        config.http_timeout = Duration::from_millis(parse_ms(
            get(vars::BQ_HTTP_TIMEOUT_MS),
            vars::BQ_HTTP_TIMEOUT_MS,
            DEFAULT_HTTP_TIMEOUT.as_millis() as u64,
            100,
            600_000,
        )?);
        config.credentials = match (
            get(vars::BIGQUERY_EMULATOR_HOST),
            get(vars::GOOGLE_APPLICATION_CREDENTIALS),
        ) {
            (Some(host), _) => Credentials::Emulator(parse_emulator_host(&host)?),
            (None, Some(path)) => Credentials::KeyFile(PathBuf::from(path)),
            (None, None) => Credentials::ApplicationDefault,
        };
        Ok(config)
    }

    /// `` `project.dataset.table` `` of a table setting, filling in the
    /// project and dataset it leaves out.
    pub fn qualified(&self, table: &str) -> String {
        let parts: Vec<&str> = table.split('.').collect();
        match parts.as_slice() {
            [table] => format!("`{}.{}.{table}`", self.project_id, self.dataset),
            [dataset, table] => format!("`{}.{dataset}.{table}`", self.project_id),
            _ => format!("`{table}`"),
        }
    }
}

/// Accepts the characters of project, dataset and table names and nothing
/// that could end a quoted identifier in SQL.
fn check_name(name: &'static str, value: &str, expected: &str) -> Result<(), ConfigError> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(name, value, expected))
    }
}

/// `host:port`, with an optional `http://` in front.
fn parse_emulator_host(value: &str) -> Result<String, ConfigError> {
    let host = value.strip_prefix("http://").unwrap_or(value);
    let host = host.strip_suffix('/').unwrap_or(host);
    let port_ok = host
        .rsplit_once(':')
        .is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if port_ok
        && !host
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '@')
    {
        Ok(host.to_owned())
    } else {
        Err(ConfigError::new(
            vars::BIGQUERY_EMULATOR_HOST,
            value,
            "host:port of a BigQuery emulator, such as 127.0.0.1:9050",
        ))
    }
}

/// Why the BigQuery source could not be built. Messages name files and
/// settings, never the contents of a key file.
#[derive(Debug, thiserror::Error)]
pub enum BigQuerySetupError {
    /// The key file of `GOOGLE_APPLICATION_CREDENTIALS` cannot be used.
    #[error("cannot use GOOGLE_APPLICATION_CREDENTIALS={path:?}: {problem}")]
    KeyFile {
        /// The file as configured.
        path: PathBuf,
        /// What is wrong, without the file's contents.
        problem: String,
    },
    /// A query file cannot be read or is not usable.
    #[error("cannot use the query file {path:?}: {problem}")]
    QueryFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The Google client could not be built.
    #[error("cannot set up the BigQuery client: {0}")]
    Client(String),
    /// Building the client did not finish within `BQ_HTTP_TIMEOUT_MS`.
    #[error("cannot set up the BigQuery client: not done within {} ms (BQ_HTTP_TIMEOUT_MS)", .0.as_millis())]
    Timeout(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<BigQueryConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        BigQueryConfig::from_lookup("acme-prod", &|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_need_only_a_dataset() {
        let config = parse(&[(vars::BQ_DATASET, "shop")]).expect("valid");
        assert_eq!(config, BigQueryConfig::new("acme-prod", "shop"));
        assert_eq!(config.maximum_bytes_billed, 1_073_741_824);
        assert_eq!(
            config.qualified(&config.transactions_table),
            "`acme-prod.shop.transactions`"
        );
        let err = parse(&[]).expect_err("no dataset");
        assert_eq!(err.name, vars::BQ_DATASET);
        assert!(err.to_string().contains("BQ_PROJECT_ID"), "{err}");
    }

    #[test]
    fn every_setting_is_read() {
        let config = parse(&[
            (vars::BQ_DATASET, "shop"),
            (vars::BQ_TRANSACTIONS_TABLE, "sales.orders"),
            (vars::BQ_PRODUCTS_TABLE, "other-proj.catalog.items"),
            (vars::BQ_QUERY_DIR, "/etc/warmcache/sql"),
            (vars::BQ_MAXIMUM_BYTES_BILLED, "52428800"),
            (vars::BQ_CURRENCY, "EUR"),
            (vars::BQ_HTTP_TIMEOUT_MS, "2500"),
            (vars::GOOGLE_APPLICATION_CREDENTIALS, "/keys/sa.json"),
        ])
        .expect("valid");
        assert_eq!(
            config.qualified(&config.transactions_table),
            "`acme-prod.sales.orders`"
        );
        assert_eq!(
            config.qualified(&config.products_table),
            "`other-proj.catalog.items`"
        );
        assert_eq!(config.query_dir, Some(PathBuf::from("/etc/warmcache/sql")));
        assert_eq!(config.maximum_bytes_billed, 52_428_800);
        assert_eq!(config.currency, "EUR");
        assert_eq!(config.http_timeout, Duration::from_millis(2_500));
        assert_eq!(
            config.credentials,
            Credentials::KeyFile("/keys/sa.json".into())
        );
    }

    #[test]
    fn the_emulator_wins_over_a_key_file() {
        for host in ["127.0.0.1:9050", "http://127.0.0.1:9050/"] {
            let config = parse(&[
                (vars::BQ_DATASET, "shop"),
                (vars::BIGQUERY_EMULATOR_HOST, host),
                (vars::GOOGLE_APPLICATION_CREDENTIALS, "/keys/sa.json"),
            ])
            .expect("valid");
            assert_eq!(
                config.credentials,
                Credentials::Emulator("127.0.0.1:9050".into())
            );
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            (vars::BQ_DATASET, "shop; DROP"),
            (vars::BQ_DATASET, "a.b"),
            (vars::BQ_TRANSACTIONS_TABLE, "tx`; --"),
            (vars::BQ_TRANSACTIONS_TABLE, "a.b.c.d"),
            (vars::BQ_PRODUCTS_TABLE, "shop..products"),
            (vars::BQ_MAXIMUM_BYTES_BILLED, "1000"),
            (vars::BQ_MAXIMUM_BYTES_BILLED, "1GB"),
            (vars::BQ_CURRENCY, "dollars"),
            (vars::BQ_HTTP_TIMEOUT_MS, "0"),
            (vars::BQ_HTTP_TIMEOUT_MS, "soon"),
            (vars::BIGQUERY_EMULATOR_HOST, "localhost"),
            (vars::BIGQUERY_EMULATOR_HOST, "host:0"),
        ] {
            let mut pairs = vec![(vars::BQ_DATASET, "shop")];
            pairs.retain(|(n, _)| *n != name);
            pairs.push((name, value));
            let err = parse(&pairs).expect_err("rejected");
            assert_eq!((err.name, err.value.as_str()), (name, value), "{err}");
        }
    }

    #[test]
    fn a_bad_project_id_is_rejected() {
        let err = BigQueryConfig::from_lookup("acme prod", &|_| Some("shop".to_owned()))
            .expect_err("space");
        assert_eq!(err.name, vars::BQ_PROJECT_ID);
    }
}
