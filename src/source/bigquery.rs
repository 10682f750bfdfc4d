//! Live mode: [`BigQuerySource`] runs the three section queries against
//! BigQuery (or an emulator) and builds the snapshot data from their rows.
//!
//! One [`SnapshotSource::fetch`] sends exactly three queries, at the same
//! time (`dashboard`, `historical`, `products`), and returns data only when
//! all three succeeded and decoded, so a refresh swaps in all sections or
//! none. Each query carries the cost cap and labels; bytes processed, pages
//! and duration are recorded per section in [`BigQueryStats`], readable
//! through [`BigQuerySource::stats`] while the refresher owns a clone.
//!
//! Built with the `bigquery` cargo feature (on by default).

mod auth;
mod cancel;
mod cells;
mod jobs;
mod sections;
mod sql;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gcp_bigquery_client::model::query_parameter::QueryParameter;
use gcp_bigquery_client::model::query_parameter_type::QueryParameterType;
use gcp_bigquery_client::model::query_parameter_value::QueryParameterValue;
use time::{Date, OffsetDateTime};
use tokio::time::Instant;

use self::jobs::JobRunner;
use self::sql::{Queries, Query};
use super::{BigQueryConfig, BigQuerySetupError, SnapshotSource, SourceError};
use crate::data::SnapshotData;
use crate::metrics::QueryMetrics;

/// Days of the historical daily series.
const HISTORY_DAYS: u16 = 365;
/// Calendar months of the historical monthly series.
const HISTORY_MONTHS: u16 = 24;

/// What one section's queries cost and returned, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SectionStats {
    /// Queries sent (`jobs.query` calls), one per refresh attempt.
    pub queries: u64,
    /// Of those, the ones that failed (a query cancelled by the refresh
    /// timeout or by a sibling's failure is not counted).
    pub failures: u64,
    /// Bytes processed by the last successful query, as BigQuery reported.
    pub last_bytes_processed: Option<u64>,
    /// Bytes processed by all successful queries.
    pub total_bytes_processed: u64,
    /// Time from sending the last successful query to its last page.
    pub last_duration: Option<Duration>,
    /// Rows of the last successful result.
    pub last_rows: usize,
    /// Result pages of the last successful result.
    pub last_pages: u32,
}

/// Per-section query statistics of a [`BigQuerySource`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BigQueryStats {
    /// The dashboard query.
    pub dashboard: SectionStats,
    /// The historical query.
    pub historical: SectionStats,
    /// The products query.
    pub products: SectionStats,
}

impl BigQueryStats {
    /// Queries sent over all sections.
    pub fn queries(&self) -> u64 {
        self.dashboard.queries + self.historical.queries + self.products.queries
    }

    fn section_mut(&mut self, section: &str) -> &mut SectionStats {
        match section {
            "dashboard" => &mut self.dashboard,
            "historical" => &mut self.historical,
            _ => &mut self.products,
        }
    }
}

/// The live-mode source. Cloning is cheap and clones share the client and
/// the statistics, so a caller can keep one to read [`Self::stats`] while
/// the refresher owns another.
#[derive(Clone)]
pub struct BigQuerySource {
    inner: Arc<Inner>,
}

struct Inner {
    runner: JobRunner,
    queries: Queries,
    currency: String,
    top_products: u32,
    product_limit: u32,
    /// A fixed "now" for reproducible tests; the real clock when `None`.
    pinned_now: Option<OffsetDateTime>,
    /// A std mutex: held only to copy or update the counters, never across
    /// an `.await`.
    stats: Mutex<BigQueryStats>,
    metrics: SectionMetrics,
}

impl fmt::Debug for BigQuerySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client holds the credentials: show only where queries go.
        f.debug_struct("BigQuerySource")
            .field("endpoint", &self.inner.runner.endpoint)
            .field("project_id", &self.inner.runner.project_id)
            .finish_non_exhaustive()
    }
}

/// Builds a [`BigQuerySource`] from a [`BigQueryConfig`] and a few knobs
/// tests and special deployments need.
#[derive(Debug, Clone)]
#[must_use]
pub struct BigQuerySourceBuilder {
    config: BigQueryConfig,
    page_size: Option<u32>,
    top_products: u32,
    product_limit: u32,
    now: Option<OffsetDateTime>,
    /// Registered when the builder is made (under whatever recorder is
    /// current then), so queries record without a registry lookup.
    metrics: SectionMetrics,
}

/// Metric handles of the three sections.
#[derive(Debug, Clone)]
struct SectionMetrics {
    dashboard: QueryMetrics,
    historical: QueryMetrics,
    products: QueryMetrics,
}

impl SectionMetrics {
    fn register() -> Self {
        Self {
            dashboard: QueryMetrics::register("dashboard"),
            historical: QueryMetrics::register("historical"),
            products: QueryMetrics::register("products"),
        }
    }

    fn section(&self, section: &str) -> &QueryMetrics {
        match section {
            "dashboard" => &self.dashboard,
            "historical" => &self.historical,
            _ => &self.products,
        }
    }
}

impl BigQuerySourceBuilder {
    /// Rows per result page (`maxResults`); by default the server's choice
    /// (up to about 10 MB a page).
    pub fn page_size(mut self, rows: u32) -> Self {
        self.page_size = Some(rows);
        self
    }

    /// Best sellers on the dashboard (default 130).
    pub fn top_products(mut self, count: u32) -> Self {
        self.top_products = count;
        self
    }

    /// Upper bound on the catalog size (default 100,000).
    pub fn product_limit(mut self, count: u32) -> Self {
        self.product_limit = count;
        self
    }

    /// Pins "now" (and so "today"), for reproducible results.
    pub fn now(mut self, now: OffsetDateTime) -> Self {
        self.now = Some(now);
        self
    }

    /// Loads the query files and builds the client. Sends nothing.
    ///
    /// # Errors
    /// A missing, unreadable or malformed key file, an unusable query file,
    /// a zero page size or limit, or a client that cannot be built.
    pub async fn build(self) -> Result<BigQuerySource, BigQuerySetupError> {
        for (name, value) in [
            ("page_size", self.page_size.unwrap_or(1)),
            ("top_products", self.top_products),
            ("product_limit", self.product_limit),
        ] {
            if value == 0 {
                return Err(BigQuerySetupError::Client(format!(
                    "{name} must be at least 1"
                )));
            }
        }
        let queries = Queries::load(&self.config)?;
        let bound = self.config.http_timeout;
        let (client, endpoint) =
            tokio::time::timeout(bound, auth::client(&self.config.credentials))
                .await
                .map_err(|_| BigQuerySetupError::Timeout(bound))??;
        for query in queries.all() {
            tracing::debug!(section = query.section, origin = %query.origin, "bigquery query loaded");
        }
        Ok(BigQuerySource {
            inner: Arc::new(Inner {
                runner: JobRunner {
                    client,
                    project_id: self.config.project_id.into(),
                    maximum_bytes_billed: self.config.maximum_bytes_billed,
                    page_size: self.page_size,
                    endpoint,
                    http_timeout: bound,
                },
                queries,
                currency: self.config.currency,
                top_products: self.top_products,
                product_limit: self.product_limit,
                pinned_now: self.now,
                stats: Mutex::new(BigQueryStats::default()),
                metrics: self.metrics,
            }),
        })
    }
}

impl BigQuerySource {
    /// A builder for `config`.
    pub fn builder(config: BigQueryConfig) -> BigQuerySourceBuilder {
        BigQuerySourceBuilder {
            config,
            page_size: None,
            top_products: 130,
            product_limit: 100_000,
            now: None,
            metrics: SectionMetrics::register(),
        }
    }

    /// The source for `config` with default knobs.
    ///
    /// # Errors
    /// As [`BigQuerySourceBuilder::build`].
    pub async fn from_config(config: &BigQueryConfig) -> Result<Self, BigQuerySetupError> {
        Self::builder(config.clone()).build().await
    }

    /// Where queries go, e.g. `the emulator at 127.0.0.1:9050` (no secrets).
    pub fn endpoint(&self) -> &str {
        &self.inner.runner.endpoint
    }

    /// Where each section's query came from: `built-in` or a file path.
    pub fn query_origins(&self) -> [(&'static str, &str); 3] {
        self.inner
            .queries
            .all()
            .map(|q| (q.section, q.origin.as_str()))
    }

    /// A copy of the query statistics so far.
    pub fn stats(&self) -> BigQueryStats {
        *self
            .inner
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn update_stats(&self, section: &str, update: impl FnOnce(&mut SectionStats)) {
        let mut stats = self
            .inner
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        update(stats.section_mut(section));
    }

    /// The parameters `query` mentions, from the ones every query may use.
    fn parameters(&self, query: &Query, today: Date) -> Vec<QueryParameter> {
        let offered = [
            ("today", "DATE", today.to_string()),
            ("top_products", "INT64", self.inner.top_products.to_string()),
            (
                "product_limit",
                "INT64",
                self.inner.product_limit.to_string(),
            ),
            ("days", "INT64", HISTORY_DAYS.to_string()),
            ("months", "INT64", HISTORY_MONTHS.to_string()),
        ];
        offered
            .into_iter()
            .filter(|(name, _, _)| query.uses_parameter(name))
            .map(|(name, kind, value)| QueryParameter {
                name: Some(name.to_owned()),
                parameter_type: Some(QueryParameterType {
                    r#type: kind.to_owned(),
                    ..Default::default()
                }),
                parameter_value: Some(QueryParameterValue {
                    value: Some(value),
                    ..Default::default()
                }),
            })
            .collect()
    }

    /// Runs one section's query and records what it cost.
    async fn run(&self, query: &Query, today: Date) -> Result<cells::ResultTable, SourceError> {
        let section = query.section;
        self.update_stats(section, |s| s.queries += 1);
        let started = Instant::now();
        match self
            .inner
            .runner
            .run(
                query,
                self.parameters(query, today),
                self.inner.metrics.section(section).cancelled.clone(),
            )
            .await
        {
            Ok(finished) => {
                let elapsed = started.elapsed();
                tracing::info!(
                    section,
                    bytes_processed = finished.bytes_processed,
                    elapsed_ms = elapsed.as_millis() as u64,
                    rows = finished.table.rows.len(),
                    pages = finished.pages,
                    "bigquery query finished"
                );
                let metrics = self.inner.metrics.section(section);
                metrics.ok.increment(1);
                metrics
                    .bytes_processed
                    .increment(finished.bytes_processed.unwrap_or(0));
                metrics.duration.record(elapsed);
                self.update_stats(section, |s| {
                    s.last_bytes_processed = finished.bytes_processed;
                    s.total_bytes_processed += finished.bytes_processed.unwrap_or(0);
                    s.last_duration = Some(elapsed);
                    s.last_rows = finished.table.rows.len();
                    s.last_pages = finished.pages;
                });
                Ok(finished.table)
            }
            Err(error) => {
                self.inner.metrics.section(section).error.increment(1);
                self.update_stats(section, |s| s.failures += 1);
                Err(error)
            }
        }
    }
}

impl SnapshotSource for BigQuerySource {
    async fn fetch(&self) -> Result<SnapshotData, SourceError> {
        let now = self
            .inner
            .pinned_now
            .unwrap_or_else(OffsetDateTime::now_utc);
        let today = now.to_offset(time::UtcOffset::UTC).date();
        let queries = &self.inner.queries;
        // Concurrently; the first failure drops (cancels) the other two.
        let (dashboard, historical, products) = tokio::try_join!(
            self.run(&queries.dashboard, today),
            self.run(&queries.historical, today),
            self.run(&queries.products, today),
        )?;
        let products = sections::products(&products, &self.inner.currency)?;
        if products.count == self.inner.product_limit as usize {
            tracing::warn!(
                limit = self.inner.product_limit,
                "the catalog reached the product limit and may be cut short"
            );
        }
        Ok(SnapshotData {
            dashboard: sections::dashboard(&dashboard, today, &self.inner.currency)?,
            historical: sections::historical(&historical, today, HISTORY_DAYS, HISTORY_MONTHS)?,
            products,
        })
    }
}
