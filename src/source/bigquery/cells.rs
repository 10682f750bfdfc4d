//! BigQuery result rows as typed values, with errors that name the section,
//! the row and the column.
//!
//! BigQuery's REST API sends every cell as a JSON string (or `null`):
//! INT64 as `"42"`, NUMERIC as `"15.750000000"`, FLOAT64 as `"0.1"` (or
//! `"NaN"`), TIMESTAMP as microseconds (`"1767323045123456"`) or as float
//! seconds (`"1.767323045123456E9"`) depending on the server and the page,
//! DATE as `"2026-01-02"`. [`Row`] turns them into Rust values or into a
//! [`SourceError::BadRow`].

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::source::SourceError;

/// One column of a result: its name and its BigQuery type (e.g. `INTEGER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) kind: String,
}

/// The whole result of one section's query, every page read.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultTable {
    /// `dashboard`, `historical` or `products`.
    pub(crate) section: &'static str,
    pub(crate) columns: Vec<Column>,
    /// Cells in column order; `Value::Null` for NULL.
    pub(crate) rows: Vec<Vec<Value>>,
}

impl ResultTable {
    /// The section whose query this is the result of.
    pub fn section(&self) -> &'static str {
        self.section
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the result has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The column names, in order.
    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }

    /// The rows, each able to name itself in an error.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().enumerate().map(|(index, cells)| Row {
            table: self,
            index,
            cells,
        })
    }

    /// A result-level error of this section ([`SourceError::BadResult`]).
    pub fn error(&self, problem: impl Into<String>) -> SourceError {
        SourceError::BadResult {
            section: self.section,
            problem: problem.into(),
        }
    }
}

/// One row of a [`ResultTable`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    table: &'a ResultTable,
    index: usize,
    cells: &'a [Value],
}

impl<'a> Row<'a> {
    /// Zero-based index of this row in the result.
    pub fn index(&self) -> usize {
        self.index
    }

    /// A [`SourceError::BadRow`] for `column` of this row.
    pub fn error(&self, column: &str, problem: impl Into<String>) -> SourceError {
        SourceError::BadRow {
            section: self.table.section,
            row: self.index,
            column: column.to_owned(),
            problem: problem.into(),
        }
    }

    /// The cell and the column type, `None` for NULL.
    fn cell(&self, column: &str) -> Result<Option<(&'a str, &'a str)>, SourceError> {
        let Some(position) = self.table.columns.iter().position(|c| c.name == column) else {
            let names: Vec<&str> = self.table.columns.iter().map(|c| c.name.as_str()).collect();
            return Err(self.error(
                column,
                format!("missing from the result (it has: {})", names.join(", ")),
            ));
        };
        let kind = self.table.columns[position].kind.as_str();
        match self.cells.get(position) {
            None => Err(self.error(
                column,
                format!(
                    "the row has {} cells for {} columns",
                    self.cells.len(),
                    self.table.columns.len()
                ),
            )),
            Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some((text.as_str(), kind))),
            Some(other) => Err(self.error(
                column,
                format!(
                    "expected a scalar value, got {} (the column is {kind})",
                    json_kind(other)
                ),
            )),
        }
    }

    fn required(&self, column: &str) -> Result<(&'a str, &'a str), SourceError> {
        self.cell(column)?
            .ok_or_else(|| self.error(column, "NULL where a value is required"))
    }

    /// A STRING; NULL is an error.
    pub fn string(&self, column: &str) -> Result<String, SourceError> {
        self.required(column).map(|(text, _)| text.to_owned())
    }

    /// A STRING or NULL.
    pub fn opt_string(&self, column: &str) -> Result<Option<String>, SourceError> {
        Ok(self.cell(column)?.map(|(text, _)| text.to_owned()))
    }

    /// A non-negative INT64; NULL is an error.
    pub fn count(&self, column: &str) -> Result<u64, SourceError> {
        let (text, kind) = self.required(column)?;
        parse_count(text).map_err(|why| self.error(column, typed(why, text, kind)))
    }

    /// A finite NUMERIC, BIGNUMERIC or FLOAT64; NULL is an error.
    pub fn number(&self, column: &str) -> Result<f64, SourceError> {
        let (text, kind) = self.required(column)?;
        parse_number(text).map_err(|why| self.error(column, typed(why, text, kind)))
    }

    /// A DATE; NULL is an error.
    pub fn date(&self, column: &str) -> Result<Date, SourceError> {
        let (text, kind) = self.required(column)?;
        parse_date(text).map_err(|why| self.error(column, typed(why, text, kind)))
    }

    /// A TIMESTAMP; NULL is an error.
    pub fn timestamp(&self, column: &str) -> Result<OffsetDateTime, SourceError> {
        let (text, kind) = self.required(column)?;
        parse_timestamp(text).map_err(|why| self.error(column, typed(why, text, kind)))
    }
}

fn typed(expected: &str, text: &str, kind: &str) -> String {
    // Cells are query results (aggregates and catalog fields), never
    // credentials, so quoting a short prefix of the bad value is safe and
    // makes the error actionable.
    let shown: String = text.chars().take(40).collect();
    format!("expected {expected}, got {shown:?} (the column is {kind})")
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a bare number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a record",
    }
}

/// INT64 text that must be a count (zero or more).
pub(crate) fn parse_count(text: &str) -> Result<u64, &'static str> {
    text.trim()
        .parse::<u64>()
        .map_err(|_| "a non-negative INT64")
}

/// NUMERIC (`"15.750000000"`), BIGNUMERIC or FLOAT64 text, finite.
pub(crate) fn parse_number(text: &str) -> Result<f64, &'static str> {
    match text.trim().parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(n),
        _ => Err("a finite NUMERIC or FLOAT64"),
    }
}

/// DATE text, `YYYY-MM-DD`.
pub(crate) fn parse_date(text: &str) -> Result<Date, &'static str> {
    Date::parse(text.trim(), format_description!("[year]-[month]-[day]"))
        .map_err(|_| "a DATE (YYYY-MM-DD)")
}

/// TIMESTAMP text: integer microseconds since the epoch, float seconds
/// (plain or with an exponent), or RFC 3339.
pub(crate) fn parse_timestamp(text: &str) -> Result<OffsetDateTime, &'static str> {
    const EXPECTED: &str = "a TIMESTAMP (microseconds, seconds or RFC 3339)";
    let text = text.trim();
    let digits = text.strip_prefix('-').unwrap_or(text);
    let micros: i128 = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<i128>().map_err(|_| EXPECTED)?
    } else if let Ok(seconds) = text.parse::<f64>() {
        if !seconds.is_finite() {
            return Err(EXPECTED);
        }
        // f64 holds today's epoch microseconds exactly (< 2^53), so
        // rounding recovers the microsecond BigQuery meant.
        (seconds * 1e6).round() as i128
    } else {
        return OffsetDateTime::parse(text, &Rfc3339).map_err(|_| EXPECTED);
    };
    OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).map_err(|_| EXPECTED)
}

/// A result table of `section` with these columns (name, BigQuery type),
/// for the tests of this module and of the sections.
#[cfg(test)]
pub(crate) fn table(
    section: &'static str,
    columns: &[(&str, &str)],
    rows: Vec<Vec<Value>>,
) -> ResultTable {
    ResultTable {
        section,
        columns: columns
            .iter()
            .map(|(name, kind)| Column {
                name: (*name).to_owned(),
                kind: (*kind).to_owned(),
            })
            .collect(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::{date, datetime};

    #[test]
    fn numbers_dates_and_timestamps_in_every_encoding() {
        assert_eq!(parse_count("42"), Ok(42));
        assert!(parse_count("-1").is_err());
        assert!(parse_count("2.5").is_err());
        assert_eq!(parse_number("15.750000000"), Ok(15.75));
        assert_eq!(parse_number("0E-9"), Ok(0.0));
        assert_eq!(parse_number("1e3"), Ok(1000.0));
        assert!(parse_number("NaN").is_err());
        assert!(parse_number("Infinity").is_err());
        assert_eq!(parse_date("2026-02-28"), Ok(date!(2026 - 02 - 28)));
        assert!(parse_date("2026-02-30").is_err());

        let expected = datetime!(2026-01-02 03:04:05.123456 UTC);
        for text in [
            "1767323045123456",
            "1.767323045123456E9",
            "1767323045.123456",
            "2026-01-02T03:04:05.123456Z",
        ] {
            assert_eq!(parse_timestamp(text), Ok(expected), "{text}");
        }
        assert_eq!(
            parse_timestamp("-1000000"),
            Ok(datetime!(1969-12-31 23:59:59 UTC))
        );
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn errors_name_section_row_and_column() {
        let t = table(
            "products",
            &[("id", "STRING"), ("stock", "INTEGER")],
            vec![
                vec![json!("p1"), json!("3")],
                vec![json!("p2"), json!("lots")],
                vec![json!("p3"), Value::Null],
                vec![json!("p4")],
            ],
        );
        let rows: Vec<Row<'_>> = t.rows().collect();
        assert_eq!(rows[0].count("stock").expect("valid"), 3);
        let message = |e: SourceError| e.to_string();
        assert_eq!(
            message(rows[1].count("stock").expect_err("text")),
            "products: row 1: column `stock`: expected a non-negative INT64, got \"lots\" (the column is INTEGER)"
        );
        assert_eq!(
            message(rows[2].count("stock").expect_err("null")),
            "products: row 2: column `stock`: NULL where a value is required"
        );
        assert!(
            message(rows[3].count("stock").expect_err("short")).contains("1 cells for 2 columns")
        );
        assert_eq!(
            message(rows[0].string("price").expect_err("missing")),
            "products: row 0: column `price`: missing from the result (it has: id, stock)"
        );
        assert_eq!(rows[2].opt_string("stock").expect("null is allowed"), None);
    }
}
