//! Where snapshot data comes from: the [`SnapshotSource`] trait (generic
//! over the section set it fills) and its error.
//!
//! The refresher calls [`SnapshotSource::fetch`] on its timer; nothing on the
//! request path does. [`MockSource`] generates data for local development;
//! `BigQuerySource` (live mode, cargo feature `bigquery`) queries BigQuery,
//! configured by [`BigQueryConfig`].

#[cfg(feature = "bigquery")]
mod bigquery;
mod bigquery_config;
mod mock;

use std::future::Future;
use std::time::Duration;

#[cfg(feature = "bigquery")]
pub use bigquery::{
    BigQuerySource, BigQuerySourceBuilder, BigQueryStats, QueryParam, QueryResults, QuerySet,
    ReferenceQueries, ResultTable, Row, SectionQuery, SectionStats,
};
pub use bigquery_config::{
    BigQueryConfig, BigQuerySetupError, Credentials, DEFAULT_HTTP_TIMEOUT,
    DEFAULT_MAXIMUM_BYTES_BILLED,
};
pub use mock::MockSource;

use crate::section::SectionSet;

/// The data a source of section set `T` fetches.
pub type DataOf<T> = <T as SectionSet>::Data;

/// A producer of complete snapshot data. One call fetches every section of
/// its [`SnapshotSource::Set`], so a refresh swaps in all of them or none.
pub trait SnapshotSource: Send + Sync + 'static {
    /// The section set this source fills ([`crate::ReferenceSections`] for
    /// the reference service; a user's own [`SectionSet`] otherwise).
    type Set: SectionSet;

    /// Fetches all sections. Called only by the refresher, one call at a time,
    /// under the refresh timeout (the future is dropped when it fires: work
    /// started elsewhere must not outlive it, as `BigQuerySource` cancels
    /// its running jobs).
    fn fetch(&self) -> impl Future<Output = Result<DataOf<Self::Set>, SourceError>> + Send;
}

/// Why a fetch failed. Messages never contain credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The backend could not be reached or answered with an error.
    #[error("source unavailable: {0}")]
    Unavailable(String),
    /// One call to the backend (or to the token endpoint it needs) did not
    /// answer within its time bound (`BQ_HTTP_TIMEOUT_MS`).
    #[error("{section} query: {call} did not answer within {} ms (BQ_HTTP_TIMEOUT_MS)", .after.as_millis())]
    Timeout {
        /// The section, e.g. `dashboard`, `historical` or `products`.
        section: &'static str,
        /// The REST call, e.g. `jobs.query` or `getQueryResults`.
        call: &'static str,
        /// The bound that passed.
        after: Duration,
    },
    /// The backend refused or failed one section's query (a SQL error, a
    /// missing table or column, the cost cap).
    #[error("{section} query failed: {message}")]
    Query {
        /// The section, e.g. `dashboard`, `historical` or `products`.
        section: &'static str,
        /// What the backend said.
        message: String,
    },
    /// A row did not have the expected shape.
    #[error("{section}: row {row}: column `{column}`: {problem}")]
    BadRow {
        /// The section, e.g. `dashboard`, `historical` or `products`.
        section: &'static str,
        /// Zero-based row index in the result.
        row: usize,
        /// Column name.
        column: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A section's result as a whole is wrong (a row it needs is missing,
    /// or rows were lost between pages).
    #[error("{section}: {problem}")]
    BadResult {
        /// The section, e.g. `dashboard`, `historical` or `products`.
        section: &'static str,
        /// What is wrong.
        problem: String,
    },
}
