//! The reference [`QuerySet`]: the `dashboard`, `historical` and `products`
//! queries of `queries/` (or `BQ_QUERY_DIR`) and the mapping of their rows
//! to [`SnapshotData`].

use time::OffsetDateTime;

use super::query_set::{QueryParam, QueryResults, QuerySet, SectionQuery};
use super::sections;
use super::sql::Queries;
use crate::data::SnapshotData;
use crate::reference::ReferenceSections;
use crate::source::{BigQueryConfig, BigQuerySetupError, SourceError};

/// Days of the historical daily series.
const HISTORY_DAYS: u16 = 365;
/// Calendar months of the historical monthly series.
const HISTORY_MONTHS: u16 = 24;

/// The queries of the reference service, configured by a
/// [`BigQueryConfig`] (tables, `BQ_QUERY_DIR`, currency).
#[derive(Debug, Clone)]
pub struct ReferenceQueries {
    config: BigQueryConfig,
    pub(crate) top_products: u32,
    pub(crate) product_limit: u32,
}

impl ReferenceQueries {
    /// The reference queries of `config`, with 130 best sellers and at most
    /// 100,000 products.
    pub fn new(config: &BigQueryConfig) -> Self {
        Self {
            config: config.clone(),
            top_products: 130,
            product_limit: 100_000,
        }
    }
}

impl QuerySet for ReferenceQueries {
    type Set = ReferenceSections;

    fn queries(&self) -> Result<Vec<SectionQuery>, BigQuerySetupError> {
        for (name, value) in [
            ("top_products", self.top_products),
            ("product_limit", self.product_limit),
        ] {
            if value == 0 {
                return Err(BigQuerySetupError::Client(format!(
                    "{name} must be at least 1"
                )));
            }
        }
        Ok(Queries::load(&self.config)?.into_vec())
    }

    fn parameters(&self, now: OffsetDateTime) -> Vec<QueryParam> {
        vec![
            QueryParam::date("today", now.date()),
            QueryParam::int64("top_products", self.top_products.into()),
            QueryParam::int64("product_limit", self.product_limit.into()),
            QueryParam::int64("days", HISTORY_DAYS.into()),
            QueryParam::int64("months", HISTORY_MONTHS.into()),
        ]
    }

    fn decode(
        &self,
        results: &QueryResults,
        now: OffsetDateTime,
    ) -> Result<SnapshotData, SourceError> {
        let today = now.date();
        let currency = &self.config.currency;
        let products = sections::products(results.section("products")?, currency)?;
        if products.count == self.product_limit as usize {
            tracing::warn!(
                limit = self.product_limit,
                "the catalog reached the product limit and may be cut short"
            );
        }
        Ok(SnapshotData {
            dashboard: sections::dashboard(results.section("dashboard")?, today, currency)?,
            historical: sections::historical(
                results.section("historical")?,
                today,
                HISTORY_DAYS,
                HISTORY_MONTHS,
            )?,
            products,
        })
    }
}
