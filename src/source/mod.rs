//! Where snapshot data comes from: the [`SnapshotSource`] trait and its error.
//!
//! The refresher calls [`SnapshotSource::fetch`] on its timer; nothing on the
//! request path does. [`MockSource`] generates data for local development; the
//! BigQuery source (live mode) is added by its own module.

mod mock;

use std::future::Future;

pub use mock::MockSource;

use crate::data::SnapshotData;

/// A producer of complete snapshot data. One call fetches all three
/// sections, so a refresh swaps in all of them or none.
pub trait SnapshotSource: Send + Sync + 'static {
    /// Fetches all sections. Called only by the refresher, one call at a time,
    /// under the refresh timeout (the future is dropped when it fires).
    fn fetch(&self) -> impl Future<Output = Result<SnapshotData, SourceError>> + Send;
}

/// Why a fetch failed. Messages never contain credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The backend could not be reached or answered with an error.
    #[error("source unavailable: {0}")]
    Unavailable(String),
    /// A row did not have the expected shape.
    #[error("{section}: row {row}: column `{column}`: {problem}")]
    BadRow {
        /// `dashboard`, `historical` or `products`.
        section: &'static str,
        /// Zero-based row index in the result.
        row: usize,
        /// Column name.
        column: String,
        /// What is wrong with it.
        problem: String,
    },
}
