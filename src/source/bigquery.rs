//! Live mode: [`BigQuerySource`] runs one query per section against
//! BigQuery (or an emulator) and builds the snapshot data from their rows.
//!
//! What the queries are and how their rows become data is a [`QuerySet`]:
//! [`ReferenceQueries`] (the default: `dashboard`, `historical`,
//! `products`) or a user's own, given to [`BigQuerySource::with_queries`].
//! One [`SnapshotSource::fetch`] sends every query at the same time and
//! returns data only when all succeeded and decoded, so a refresh swaps in
//! all sections or none. Each query carries the cost cap and labels; bytes
//! processed, pages and duration are recorded per section
//! ([`BigQuerySource::section_stats`], or [`BigQueryStats`] for the
//! reference set), readable through a clone of the source or
//! [`crate::Refresher::source`].
//!
//! Built with the `bigquery` cargo feature (on by default).

mod auth;
mod cancel;
mod cells;
mod jobs;
mod query_set;
mod reference;
mod sections;
mod sql;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::try_join_all;
use gcp_bigquery_client::model::query_parameter::QueryParameter;
use gcp_bigquery_client::model::query_parameter_type::QueryParameterType;
use gcp_bigquery_client::model::query_parameter_value::QueryParameterValue;
use time::OffsetDateTime;
use tokio::time::Instant;

pub use self::cells::{ResultTable, Row};
use self::jobs::JobRunner;
pub use self::query_set::{QueryParam, QueryResults, QuerySet, SectionQuery};
pub use self::reference::ReferenceQueries;
use self::sql::Query;
use super::{BigQueryConfig, BigQuerySetupError, DataOf, SnapshotSource, SourceError};
use crate::metrics::QueryMetrics;

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

/// Per-section query statistics of a [`BigQuerySource`] of the reference
/// set.
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
}

/// The live-mode source of query set `Q`. Cloning is cheap and clones share
/// the client and the statistics, so a caller can keep one to read
/// [`Self::section_stats`] while the refresher owns another.
pub struct BigQuerySource<Q = ReferenceQueries> {
    inner: Arc<Inner<Q>>,
}

impl<Q> Clone for BigQuerySource<Q> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<Q> {
    runner: JobRunner,
    set: Q,
    /// The queries of `set`, in its order; `metrics` and `stats` follow it.
    queries: Vec<Query>,
    /// A fixed "now" for reproducible tests; the real clock when `None`.
    pinned_now: Option<OffsetDateTime>,
    /// A std mutex: held only to copy or update the counters, never across
    /// an `.await`.
    stats: Mutex<Vec<SectionStats>>,
    metrics: Vec<QueryMetrics>,
}

impl<Q> fmt::Debug for BigQuerySource<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client holds the credentials: show only where queries go.
        f.debug_struct("BigQuerySource")
            .field("endpoint", &self.inner.runner.endpoint)
            .field("project_id", &self.inner.runner.project_id)
            .finish_non_exhaustive()
    }
}

/// Builds a [`BigQuerySource`] from a [`BigQueryConfig`], a query set and
/// a few knobs tests and special deployments need.
#[derive(Debug, Clone)]
#[must_use]
pub struct BigQuerySourceBuilder<Q = ReferenceQueries> {
    config: BigQueryConfig,
    set: Q,
    page_size: Option<u32>,
    now: Option<OffsetDateTime>,
    /// The reference sections' metrics, registered when the builder is made
    /// (under whatever recorder is current then), so queries record without
    /// a registry lookup. `None`: registered by [`Self::build`] from the
    /// query names.
    metrics: Option<Vec<QueryMetrics>>,
}

impl BigQuerySourceBuilder<ReferenceQueries> {
    /// Best sellers on the dashboard (default 130).
    pub fn top_products(mut self, count: u32) -> Self {
        self.set.top_products = count;
        self
    }

    /// Upper bound on the catalog size (default 100,000).
    pub fn product_limit(mut self, count: u32) -> Self {
        self.set.product_limit = count;
        self
    }
}

impl<Q: QuerySet> BigQuerySourceBuilder<Q> {
    /// Rows per result page (`maxResults`); by default the server's choice
    /// (up to about 10 MB a page).
    pub fn page_size(mut self, rows: u32) -> Self {
        self.page_size = Some(rows);
        self
    }

    /// Pins "now" (and so "today"), for reproducible results.
    pub fn now(mut self, now: OffsetDateTime) -> Self {
        self.now = Some(now);
        self
    }

    /// Loads the queries and builds the client. Sends nothing.
    ///
    /// # Errors
    /// A missing, unreadable or malformed key file, an unusable query
    /// ([`QuerySet::queries`]), no queries or two of the same section, a
    /// zero page size, or a client that cannot be built.
    pub async fn build(self) -> Result<BigQuerySource<Q>, BigQuerySetupError> {
        if self.page_size == Some(0) {
            return Err(BigQuerySetupError::Client(
                "page_size must be at least 1".to_owned(),
            ));
        }
        let queries = self.set.queries()?;
        check_sections(&queries)?;
        let metrics = match self.metrics {
            Some(metrics) if metrics.len() == queries.len() => metrics,
            _ => queries
                .iter()
                .map(|q| QueryMetrics::register(q.section))
                .collect(),
        };
        let bound = self.config.http_timeout;
        let (client, endpoint) =
            tokio::time::timeout(bound, auth::client(&self.config.credentials))
                .await
                .map_err(|_| BigQuerySetupError::Timeout(bound))??;
        for query in &queries {
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
                set: self.set,
                stats: Mutex::new(vec![SectionStats::default(); queries.len()]),
                queries,
                pinned_now: self.now,
                metrics,
            }),
        })
    }
}

/// At least one query, and no section named twice.
fn check_sections(queries: &[Query]) -> Result<(), BigQuerySetupError> {
    if queries.is_empty() {
        return Err(BigQuerySetupError::Client(
            "the query set has no queries".to_owned(),
        ));
    }
    for (i, query) in queries.iter().enumerate() {
        if queries[..i].iter().any(|q| q.section == query.section) {
            return Err(BigQuerySetupError::Client(format!(
                "two queries of section {:?}",
                query.section
            )));
        }
    }
    Ok(())
}

impl BigQuerySource<ReferenceQueries> {
    /// A builder of the reference source for `config`.
    pub fn builder(config: BigQueryConfig) -> BigQuerySourceBuilder<ReferenceQueries> {
        let metrics = ["dashboard", "historical", "products"]
            .map(QueryMetrics::register)
            .into();
        BigQuerySourceBuilder {
            set: ReferenceQueries::new(&config),
            config,
            page_size: None,
            now: None,
            metrics: Some(metrics),
        }
    }

    /// The reference source for `config` with default knobs.
    ///
    /// # Errors
    /// As [`BigQuerySourceBuilder::build`].
    pub async fn from_config(config: &BigQueryConfig) -> Result<Self, BigQuerySetupError> {
        Self::builder(config.clone()).build().await
    }

    /// Where each section's query came from: `built-in` or a file path.
    pub fn query_origins(&self) -> [(&'static str, &str); 3] {
        let q = &self.inner.queries;
        [0, 1, 2].map(|i| (q[i].section, q[i].origin.as_str()))
    }

    /// A copy of the query statistics so far.
    pub fn stats(&self) -> BigQueryStats {
        let stats = self.section_stats();
        let of = |i: usize| stats.get(i).map(|s| s.1).unwrap_or_default();
        BigQueryStats {
            dashboard: of(0),
            historical: of(1),
            products: of(2),
        }
    }
}

impl<Q: QuerySet> BigQuerySource<Q> {
    /// A builder of a source that runs `set`'s queries, with the
    /// connection, cost cap and HTTP bound of `config` (its table and
    /// query-directory settings belong to the reference queries and are not
    /// used). Each section's metrics are registered by
    /// [`BigQuerySourceBuilder::build`].
    pub fn with_queries(config: BigQueryConfig, set: Q) -> BigQuerySourceBuilder<Q> {
        BigQuerySourceBuilder {
            config,
            set,
            page_size: None,
            now: None,
            metrics: None,
        }
    }

    /// Where queries go, e.g. `the emulator at 127.0.0.1:9050` (no secrets).
    pub fn endpoint(&self) -> &str {
        &self.inner.runner.endpoint
    }

    /// The query set.
    pub fn query_set(&self) -> &Q {
        &self.inner.set
    }

    /// A copy of each section's query statistics so far, in query order.
    pub fn section_stats(&self) -> Vec<(&'static str, SectionStats)> {
        let stats = self
            .inner
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.inner
            .queries
            .iter()
            .zip(stats.iter())
            .map(|(q, s)| (q.section, *s))
            .collect()
    }

    fn update_stats(&self, index: usize, update: impl FnOnce(&mut SectionStats)) {
        let mut stats = self
            .inner
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(stats) = stats.get_mut(index) {
            update(stats);
        }
    }

    /// The parameters `query` mentions, from the ones of this refresh.
    fn parameters(query: &Query, offered: &[QueryParam]) -> Vec<QueryParameter> {
        offered
            .iter()
            .filter(|p| query.uses_parameter(&p.name))
            .map(|p| QueryParameter {
                name: Some(p.name.clone()),
                parameter_type: Some(QueryParameterType {
                    r#type: p.kind.to_owned(),
                    ..Default::default()
                }),
                parameter_value: Some(QueryParameterValue {
                    value: Some(p.value.clone()),
                    ..Default::default()
                }),
            })
            .collect()
    }

    /// Runs query number `index` and records what it cost.
    async fn run(&self, index: usize, offered: &[QueryParam]) -> Result<ResultTable, SourceError> {
        let query = &self.inner.queries[index];
        let metrics = &self.inner.metrics[index];
        let section = query.section;
        self.update_stats(index, |s| s.queries += 1);
        let started = Instant::now();
        match self
            .inner
            .runner
            .run(
                query,
                Self::parameters(query, offered),
                metrics.cancelled.clone(),
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
                metrics.ok.increment(1);
                metrics
                    .bytes_processed
                    .increment(finished.bytes_processed.unwrap_or(0));
                metrics.duration.record(elapsed);
                self.update_stats(index, |s| {
                    s.last_bytes_processed = finished.bytes_processed;
                    s.total_bytes_processed += finished.bytes_processed.unwrap_or(0);
                    s.last_duration = Some(elapsed);
                    s.last_rows = finished.table.rows.len();
                    s.last_pages = finished.pages;
                });
                Ok(finished.table)
            }
            Err(error) => {
                metrics.error.increment(1);
                self.update_stats(index, |s| s.failures += 1);
                Err(error)
            }
        }
    }
}

impl<Q: QuerySet> SnapshotSource for BigQuerySource<Q> {
    type Set = Q::Set;

    async fn fetch(&self) -> Result<DataOf<Q::Set>, SourceError> {
        let now = self
            .inner
            .pinned_now
            .unwrap_or_else(OffsetDateTime::now_utc)
            .to_offset(time::UtcOffset::UTC);
        let offered = self.inner.set.parameters(now);
        // Concurrently; the first failure drops (cancels) the others.
        let tables =
            try_join_all((0..self.inner.queries.len()).map(|index| self.run(index, &offered)))
                .await?;
        self.inner.set.decode(&QueryResults { tables }, now)
    }
}
