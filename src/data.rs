//! The shapes of the three snapshot sections, as the JSON a dashboard reads.
//!
//! Sources ([`crate::MockSource`], later BigQuery) build these; the snapshot
//! renders each once per refresh. Field names are camelCase, as the Node
//! services that read the same data expect.

use serde::{Deserialize, Serialize};

/// Everything one refresh produces: the three sections, fetched together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotData {
    /// KPIs and the series a dashboard draws.
    pub dashboard: Dashboard,
    /// Daily and monthly aggregates.
    pub historical: Historical,
    /// The product catalog.
    pub products: Products,
}

/// Revenue, transactions and distinct customers over one period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kpi {
    /// Revenue in the currency's main unit, rounded to cents.
    pub revenue: f64,
    /// Number of transactions.
    pub transactions: u64,
    /// Number of distinct customers.
    pub customers: u64,
    /// `revenue / transactions`, rounded to cents (0 without transactions).
    pub average_order_value: f64,
}

/// The KPI block for today, the last 7 days and the last 30 days.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kpis {
    /// Since midnight UTC.
    pub today: Kpi,
    /// Today and the 6 days before.
    pub last_7_days: Kpi,
    /// Today and the 29 days before.
    pub last_30_days: Kpi,
}

/// Revenue in one hour of today.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HourlyPoint {
    /// Hour of the day, 0 to 23 (UTC).
    pub hour: u8,
    /// Revenue in that hour.
    pub revenue: f64,
    /// Transactions in that hour.
    pub transactions: u64,
}

/// One of the best-selling products over the last 30 days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopProduct {
    /// Product id, as in the catalog.
    pub product_id: String,
    /// Display name.
    pub name: String,
    /// Category name.
    pub category: String,
    /// Units sold.
    pub units_sold: u64,
    /// Revenue.
    pub revenue: f64,
}

/// Revenue of one category over the last 30 days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CategoryRevenue {
    /// Category name.
    pub category: String,
    /// Revenue.
    pub revenue: f64,
    /// Transactions with at least one item of the category.
    pub transactions: u64,
    /// Share of the total revenue, 0 to 1.
    pub share: f64,
}

/// The dashboard section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    /// ISO currency code of every amount.
    pub currency: String,
    /// Today, 7 days, 30 days.
    pub kpis: Kpis,
    /// 24 points for today; hours still to come have zeros.
    pub hourly_revenue: Vec<HourlyPoint>,
    /// Daily revenue of the last 30 days, oldest first.
    pub daily_revenue_30_days: Vec<DailyAggregate>,
    /// Best sellers over 30 days, best first.
    pub top_products: Vec<TopProduct>,
    /// Revenue by category over 30 days, largest first.
    pub revenue_by_category: Vec<CategoryRevenue>,
}

/// Aggregates of one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DailyAggregate {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Revenue.
    pub revenue: f64,
    /// Transactions.
    pub transactions: u64,
    /// Distinct customers.
    pub customers: u64,
}

/// Aggregates of one calendar month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MonthlyAggregate {
    /// `YYYY-MM`.
    pub month: String,
    /// Revenue.
    pub revenue: f64,
    /// Transactions.
    pub transactions: u64,
    /// Distinct customers in the month.
    pub customers: u64,
}

/// The historical section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Historical {
    /// The last 365 days, oldest first (today excluded: it is not over).
    pub daily: Vec<DailyAggregate>,
    /// The last 24 calendar months, oldest first (this month included).
    pub monthly: Vec<MonthlyAggregate>,
}

/// Stock level of a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockStatus {
    /// Plenty in stock.
    InStock,
    /// A few left.
    LowStock,
    /// None left.
    OutOfStock,
}

impl StockStatus {
    /// The status of `quantity` units: none is out of stock, 1 to 10 is low.
    pub fn from_quantity(quantity: u64) -> Self {
        match quantity {
            0 => Self::OutOfStock,
            1..=10 => Self::LowStock,
            _ => Self::InStock,
        }
    }
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    /// Stable product id.
    pub id: String,
    /// Stock-keeping unit.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Category name.
    pub category: String,
    /// Unit price.
    pub price: f64,
    /// ISO currency code.
    pub currency: String,
    /// Derived from `stock_quantity`.
    pub stock_status: StockStatus,
    /// Units in stock.
    pub stock_quantity: u64,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

/// The products section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Products {
    /// Number of entries in `items`.
    pub count: usize,
    /// The catalog, by id.
    pub items: Vec<Product>,
}

/// Rounds an amount to cents, as every amount in the sections is.
pub(crate) fn cents(amount: f64) -> f64 {
    (amount * 100.0).round() / 100.0
}

impl Kpi {
    /// Builds a KPI, deriving the average order value.
    pub fn new(revenue: f64, transactions: u64, customers: u64) -> Self {
        let average_order_value = if transactions == 0 {
            0.0
        } else {
            cents(revenue / transactions as f64)
        };
        Self {
            revenue: cents(revenue),
            transactions,
            customers,
            average_order_value,
        }
    }
}
