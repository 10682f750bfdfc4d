//! The three queries: the built-in `.sql` files of `queries/`, or the ones a
//! deployment puts in `BQ_QUERY_DIR`, with the table names filled in.
//!
//! A query names its tables `{{transactions}}` and `{{products}}` (table
//! names cannot be query parameters in BigQuery) and its varying values as
//! named query parameters (`@today`, ...). Only the parameters a query's
//! text mentions are sent with it.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::query_set::SectionQuery;
use crate::source::{BigQueryConfig, BigQuerySetupError};

const DASHBOARD_SQL: &str = include_str!("../../../queries/dashboard.sql");
const HISTORICAL_SQL: &str = include_str!("../../../queries/historical.sql");
const PRODUCTS_SQL: &str = include_str!("../../../queries/products.sql");

/// One section's query, ready to send (the public [`SectionQuery`]).
pub(crate) type Query = SectionQuery;

/// The three queries of a refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Queries {
    pub(crate) dashboard: Query,
    pub(crate) historical: Query,
    pub(crate) products: Query,
}

impl Queries {
    /// The built-in queries, each replaced by its file in `config.query_dir`
    /// when there is one, with the configured tables filled in.
    ///
    /// # Errors
    /// An unreadable directory or file, an empty file, a directory with none
    /// of the three files, or an unknown `{{placeholder}}`.
    pub(crate) fn load(config: &BigQueryConfig) -> Result<Self, BigQuerySetupError> {
        let queries = Self {
            dashboard: load_one(config, "dashboard", DASHBOARD_SQL)?,
            historical: load_one(config, "historical", HISTORICAL_SQL)?,
            products: load_one(config, "products", PRODUCTS_SQL)?,
        };
        if let Some(dir) = &config.query_dir {
            if queries.all().iter().all(|q| q.origin == "built-in") {
                return Err(BigQuerySetupError::QueryFile {
                    path: dir.clone(),
                    problem: "has none of dashboard.sql, historical.sql, products.sql".to_owned(),
                });
            }
        }
        Ok(queries)
    }

    /// The three queries, in section order.
    pub(crate) fn all(&self) -> [&Query; 3] {
        [&self.dashboard, &self.historical, &self.products]
    }

    /// The three queries, owned, in section order.
    pub(crate) fn into_vec(self) -> Vec<Query> {
        vec![self.dashboard, self.historical, self.products]
    }
}

/// One section's query: its file in the query directory, or the built-in one.
fn load_one(
    config: &BigQueryConfig,
    section: &'static str,
    built_in: &str,
) -> Result<Query, BigQuerySetupError> {
    let replacement = match &config.query_dir {
        Some(dir) => read_override(dir, section)?,
        None => None,
    };
    let (mut sql, origin) = match replacement {
        Some((text, path)) => (text, Some(path)),
        None => (built_in.to_owned(), None),
    };
    for (placeholder, table) in [
        ("{{transactions}}", &config.transactions_table),
        ("{{products}}", &config.products_table),
    ] {
        sql = sql.replace(placeholder, &config.qualified(table));
    }
    if let Some(at) = sql.find("{{") {
        let rest: String = sql[at..].chars().take(30).collect();
        return Err(BigQuerySetupError::QueryFile {
            path: origin.unwrap_or_else(|| PathBuf::from(format!("built-in {section}.sql"))),
            problem: format!(
                "unknown placeholder at {rest:?}: only {{{{transactions}}}} and {{{{products}}}} are filled in"
            ),
        });
    }
    Ok(Query {
        section,
        sql,
        origin: origin.map_or_else(|| "built-in".to_owned(), |p| p.display().to_string()),
    })
}

/// `dir/section.sql` if it exists.
fn read_override(
    dir: &Path,
    section: &str,
) -> Result<Option<(String, PathBuf)>, BigQuerySetupError> {
    let error = |path: &Path, problem: String| BigQuerySetupError::QueryFile {
        path: path.to_owned(),
        problem,
    };
    if !dir.is_dir() {
        return Err(error(
            dir,
            "BQ_QUERY_DIR is not a readable directory".to_owned(),
        ));
    }
    let path = dir.join(format!("{section}.sql"));
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().is_empty() => Err(error(&path, "the file is empty".to_owned())),
        Ok(text) => Ok(Some((text, path))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(error(&path, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("warmcache-sql-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn built_in_queries_get_the_configured_tables() {
        let mut config = BigQueryConfig::new("proj", "shop");
        config.products_table = "catalog.items".to_owned();
        let queries = Queries::load(&config).expect("built-in queries load");
        for query in queries.all() {
            assert!(!query.sql.contains("{{"), "{}", query.section);
            assert_eq!(query.origin, "built-in");
        }
        assert!(queries.dashboard.sql.contains("`proj.shop.transactions`"));
        assert!(queries.dashboard.sql.contains("`proj.catalog.items`"));
        assert!(queries.products.sql.contains("`proj.catalog.items`"));
        assert!(queries.dashboard.uses_parameter("today"));
        assert!(queries.dashboard.uses_parameter("top_products"));
        assert!(!queries.dashboard.uses_parameter("product_limit"));
        assert!(queries.historical.uses_parameter("days"));
        assert!(
            !queries.historical.uses_parameter("day"),
            "a prefix is not a use"
        );
        assert!(queries.products.uses_parameter("product_limit"));
    }

    #[test]
    fn a_file_in_the_query_dir_replaces_its_query_only() {
        let dir = temp_dir("override");
        std::fs::write(
            dir.join("products.sql"),
            "SELECT * FROM {{products}} WHERE price > 1",
        )
        .expect("write");
        let mut config = BigQueryConfig::new("proj", "shop");
        config.query_dir = Some(dir.clone());
        let queries = Queries::load(&config).expect("loads");
        assert_eq!(
            queries.products.sql,
            "SELECT * FROM `proj.shop.products` WHERE price > 1"
        );
        assert!(queries.products.origin.ends_with("products.sql"));
        assert_eq!(queries.dashboard.origin, "built-in");

        std::fs::write(dir.join("historical.sql"), "SELECT 1 FROM {{orders}}").expect("write");
        let err = Queries::load(&config).expect_err("unknown placeholder");
        assert!(
            err.to_string().contains("historical.sql") && err.to_string().contains("{{orders}}"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_query_dir_without_queries_or_missing_is_an_error() {
        let dir = temp_dir("empty");
        let mut config = BigQueryConfig::new("proj", "shop");
        config.query_dir = Some(dir.clone());
        let err = Queries::load(&config).expect_err("none of the files");
        assert!(err.to_string().contains("has none of"), "{err}");
        config.query_dir = Some(dir.join("nope"));
        let err = Queries::load(&config).expect_err("no such directory");
        assert!(
            err.to_string().contains("not a readable directory"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
