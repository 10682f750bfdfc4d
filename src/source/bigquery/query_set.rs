//! BigQuery for user types: a [`QuerySet`] names one query per section and
//! maps their result rows to the data of the user's own
//! [`crate::SectionSet`]; `BigQuerySource::with_queries` runs it with the
//! same job runner, HTTP bounds, cancellation and cost cap as the
//! reference queries.

use time::{Date, OffsetDateTime};

use super::cells::ResultTable;
use crate::section::SectionSet;
use crate::source::{BigQuerySetupError, DataOf, SourceError};

/// One section's query: its name (in labels, metrics, logs and errors) and
/// its standard SQL, tables already named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionQuery {
    /// The section, e.g. `orders`.
    pub section: &'static str,
    /// Standard SQL; named parameters (`@name`) are filled from
    /// [`QuerySet::parameters`], each sent only to queries that mention it.
    pub sql: String,
    /// Where the text came from, for logs: `built-in` or a file path.
    pub origin: String,
}

impl SectionQuery {
    /// The query of `section`, built into the program.
    pub fn new(section: &'static str, sql: impl Into<String>) -> Self {
        Self {
            section,
            sql: sql.into(),
            origin: "built-in".to_owned(),
        }
    }

    /// Whether the text mentions the named parameter `@name` (a prefix of a
    /// longer name is not a use).
    pub fn uses_parameter(&self, name: &str) -> bool {
        let needle = format!("@{name}");
        self.sql.match_indices(&needle).any(|(at, _)| {
            self.sql[at + needle.len()..]
                .chars()
                .next()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
        })
    }
}

/// A named query parameter of one refresh, e.g. `@today`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParam {
    /// The name, without `@`.
    pub name: String,
    /// The BigQuery type, e.g. `DATE`, `INT64`, `STRING`.
    pub kind: &'static str,
    /// The value as BigQuery's REST API spells it.
    pub value: String,
}

impl QueryParam {
    /// A parameter of any type.
    pub fn new(name: impl Into<String>, kind: &'static str, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind,
            value: value.into(),
        }
    }

    /// A `DATE` parameter.
    pub fn date(name: impl Into<String>, value: Date) -> Self {
        Self::new(name, "DATE", value.to_string())
    }

    /// An `INT64` parameter.
    pub fn int64(name: impl Into<String>, value: i64) -> Self {
        Self::new(name, "INT64", value.to_string())
    }

    /// A `STRING` parameter.
    pub fn string(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::new(name, "STRING", value)
    }
}

/// The results of one refresh's queries, every page read.
#[derive(Debug)]
pub struct QueryResults {
    pub(crate) tables: Vec<ResultTable>,
}

impl QueryResults {
    /// The result of `section`'s query.
    ///
    /// # Errors
    /// [`SourceError::BadResult`] when no query of that name ran (a typo
    /// in [`QuerySet::decode`]).
    pub fn section(&self, section: &'static str) -> Result<&ResultTable, SourceError> {
        self.tables
            .iter()
            .find(|t| t.section == section)
            .ok_or_else(|| SourceError::BadResult {
                section,
                problem: "no query of this section ran".to_owned(),
            })
    }

    /// Every result, in the order of [`QuerySet::queries`].
    pub fn all(&self) -> &[ResultTable] {
        &self.tables
    }
}

/// A user's BigQuery queries: one per section, and how their rows become
/// the data of [`QuerySet::Set`]. See `examples/custom_snapshot.rs` and
/// the README's "Your own snapshot".
///
/// One fetch sends every query at the same time and decodes only when all
/// succeeded (the first failure cancels the others), so a refresh swaps in
/// all sections or none.
pub trait QuerySet: Send + Sync + 'static {
    /// The section set the rows fill.
    type Set: SectionSet;

    /// The queries, one per section with distinct names; called once, when
    /// the source is built.
    ///
    /// # Errors
    /// A query that cannot be loaded (an unreadable file, say); the build
    /// fails with it.
    fn queries(&self) -> Result<Vec<SectionQuery>, BigQuerySetupError>;

    /// The named parameters of the refresh at `now` (UTC); each is sent to
    /// the queries whose text mentions it. None by default.
    fn parameters(&self, now: OffsetDateTime) -> Vec<QueryParam> {
        let _ = now;
        Vec::new()
    }

    /// Builds the data from the results (read cells with
    /// [`crate::BigQueryRow`]'s typed getters, whose errors name the
    /// section, row and column).
    ///
    /// # Errors
    /// A row or result of the wrong shape; the refresh fails with it.
    fn decode(
        &self,
        results: &QueryResults,
        now: OffsetDateTime,
    ) -> Result<DataOf<Self::Set>, SourceError>;
}
