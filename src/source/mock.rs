//! Mock mode: realistic, deterministic data for local development.
//!
//! The same seed, clock and refresh number always give the same data. Each
//! refresh moves things a little (today's sales grow, some stock drains), so a
//! person watching `/dashboard` sees the refresh happen. The numbers are
//! self-consistent: today's KPI is the sum of the hourly series, the 7- and
//! 30-day revenues are sums of the daily series, and category revenues add up
//! to the 30-day revenue.

use std::sync::atomic::{AtomicU64, Ordering};

use time::{Date, Duration as TimeDuration, Month, OffsetDateTime};

use super::{SnapshotSource, SourceError};
use crate::data::{
    CategoryRevenue, DailyAggregate, Dashboard, Historical, HourlyPoint, Kpi, Kpis,
    MonthlyAggregate, Product, Products, SnapshotData, StockStatus, TopProduct, cents,
};
use crate::reference::ReferenceSections;
use crate::rng::SplitMix64;

mod catalog;

use self::catalog::{CATEGORIES, CatalogEntry, build_catalog};

const CURRENCY: &str = "USD";
const CATALOG_SIZE: usize = 500;
const TOP_PRODUCTS: usize = 130;
const HISTORY_DAYS: i64 = 365;
const HISTORY_MONTHS: u32 = 24;

/// Generates snapshot data from a seed. See the module docs.
#[derive(Debug)]
pub struct MockSource {
    seed: u64,
    /// A fixed "now" for reproducible output; the real clock when `None`.
    pinned_now: Option<OffsetDateTime>,
    catalog: Vec<CatalogEntry>,
    /// Fetches so far: the refresh number of the next fetch.
    fetches: AtomicU64,
    /// Every Nth fetch fails (0: never), to show stale-if-error.
    fail_every: u64,
}

impl MockSource {
    /// A source whose data is fixed by `seed` (and the clock).
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            pinned_now: None,
            catalog: build_catalog(seed),
            fetches: AtomicU64::new(0),
            fail_every: 0,
        }
    }

    /// Pins the clock, so the output depends only on the seed and the refresh number.
    #[must_use]
    pub fn with_now(mut self, now: OffsetDateTime) -> Self {
        self.pinned_now = Some(now);
        self
    }

    /// Makes every `n`th fetch fail (0: never), so a person or a test can
    /// watch stale-if-error, backoff and the alerts at work.
    #[must_use]
    pub fn fail_every(mut self, n: u64) -> Self {
        self.fail_every = n;
        self
    }

    /// How many times [`SnapshotSource::fetch`] has been called.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The data of refresh number `refresh` at `now`. Pure: same inputs, same output.
    pub fn generate(&self, now: OffsetDateTime, refresh: u64) -> SnapshotData {
        let now = now.to_offset(time::UtcOffset::UTC);
        let today = now.date();
        let day_fraction = f64::from(now.time().hour()) / 24.0
            + f64::from(now.time().minute()) / 1_440.0
            + f64::from(now.time().second()) / 86_400.0;

        let hourly = self.hourly_today(today, now.time().hour(), day_fraction, refresh);
        let today_kpi = sum_hourly(
            &hourly,
            self.day(today).customers as f64 / self.day(today).transactions.max(1) as f64,
        );
        let today_row = DailyAggregate {
            date: today.to_string(),
            revenue: today_kpi.revenue,
            transactions: today_kpi.transactions,
            customers: today_kpi.customers,
        };

        let mut last_30: Vec<DailyAggregate> = (1..30)
            .rev()
            .map(|back| self.day(today - TimeDuration::days(back)))
            .collect();
        last_30.push(today_row);
        let kpis = Kpis {
            today: today_kpi,
            last_7_days: sum_days(&last_30[23..], 0.72),
            last_30_days: sum_days(&last_30, 0.55),
        };

        let (top_products, revenue_by_category, products) =
            self.product_sections(&kpis.last_30_days, now, refresh);
        let dashboard = Dashboard {
            currency: CURRENCY.to_owned(),
            kpis,
            hourly_revenue: hourly,
            daily_revenue_30_days: last_30,
            top_products,
            revenue_by_category,
        };
        let historical = Historical {
            daily: self.daily_history(today),
            monthly: self.monthly_history(today),
        };
        SnapshotData {
            dashboard,
            historical,
            products,
        }
    }

    /// The full-day aggregates of a past day.
    fn day(&self, date: Date) -> DailyAggregate {
        let julian = i64::from(date.to_julian_day());
        let mut rng =
            SplitMix64::new(self.seed ^ (julian as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let weekend = matches!(
            date.weekday(),
            time::Weekday::Saturday | time::Weekday::Sunday
        );
        let weekday_factor = if weekend { 1.25 } else { 1.0 };
        let season = 1.0 + 0.15 * (std::f64::consts::TAU * f64::from(date.ordinal()) / 365.0).sin();
        let growth = 1.0 + 0.0004 * (julian - 2_460_000) as f64;
        let transactions = (420.0 * weekday_factor * season * growth * rng.range_f64(0.85, 1.15))
            .round()
            .max(1.0);
        let customers = (transactions * rng.range_f64(0.76, 0.88)).round();
        let revenue = transactions * rng.range_f64(44.0, 52.0);
        DailyAggregate {
            date: date.to_string(),
            revenue: cents(revenue),
            transactions: transactions as u64,
            customers: customers as u64,
        }
    }

    /// Today's 24 hours: past hours full, the current hour partly, the rest zero.
    /// Each refresh adds a few late sales to the current hour.
    fn hourly_today(
        &self,
        today: Date,
        current_hour: u8,
        day_fraction: f64,
        refresh: u64,
    ) -> Vec<HourlyPoint> {
        let full_day = self.day(today);
        let weights: Vec<f64> = (0..24).map(hour_weight).collect();
        let total_weight: f64 = weights.iter().sum();
        let hour_fraction = (day_fraction * 24.0).fract();
        let average_order = full_day.revenue / full_day.transactions.max(1) as f64;
        (0..24u8)
            .map(|hour| {
                let share = weights[usize::from(hour)] / total_weight;
                let elapsed = match hour.cmp(&current_hour) {
                    std::cmp::Ordering::Less => 1.0,
                    std::cmp::Ordering::Equal => hour_fraction,
                    std::cmp::Ordering::Greater => 0.0,
                };
                let mut transactions =
                    (full_day.transactions as f64 * share * elapsed).round() as u64;
                if hour == current_hour {
                    transactions += refresh * 2;
                }
                HourlyPoint {
                    hour,
                    revenue: cents(transactions as f64 * average_order),
                    transactions,
                }
            })
            .collect()
    }

    fn daily_history(&self, today: Date) -> Vec<DailyAggregate> {
        (1..=HISTORY_DAYS)
            .rev()
            .map(|back| self.day(today - TimeDuration::days(back)))
            .collect()
    }

    /// Calendar months, oldest first, up to and including yesterday.
    fn monthly_history(&self, today: Date) -> Vec<MonthlyAggregate> {
        let mut months = Vec::with_capacity(HISTORY_MONTHS as usize);
        let (mut year, mut month) = (today.year(), today.month());
        for _ in 0..HISTORY_MONTHS {
            months.push((year, month));
            if month == Month::January {
                year -= 1;
            }
            month = month.previous();
        }
        months
            .into_iter()
            .rev()
            .map(|(year, month)| {
                let mut total = MonthlyAggregate {
                    month: format!("{year:04}-{:02}", u8::from(month)),
                    revenue: 0.0,
                    transactions: 0,
                    customers: 0,
                };
                let Ok(mut date) = Date::from_calendar_date(year, month, 1) else {
                    return total;
                };
                let mut daily_customers = 0;
                while date.month() == month && date < today {
                    let day = self.day(date);
                    total.revenue += day.revenue;
                    total.transactions += day.transactions;
                    daily_customers += day.customers;
                    let Some(next) = date.next_day() else { break };
                    date = next;
                }
                total.revenue = cents(total.revenue);
                // Distinct customers over a month: many buy on more than one day.
                total.customers = (daily_customers as f64 * 0.6).round() as u64;
                total
            })
            .collect()
    }

    /// Splits the 30-day revenue between products by popularity and price;
    /// returns the top products, the category totals and the catalog.
    fn product_sections(
        &self,
        last_30: &Kpi,
        now: OffsetDateTime,
        refresh: u64,
    ) -> (Vec<TopProduct>, Vec<CategoryRevenue>, Products) {
        let weight = |e: &CatalogEntry| e.popularity * e.product.price;
        let total_weight: f64 = self.catalog.iter().map(weight).sum();
        let mut sold: Vec<TopProduct> = self
            .catalog
            .iter()
            .map(|entry| {
                let revenue = last_30.revenue * weight(entry) / total_weight;
                TopProduct {
                    product_id: entry.product.id.clone(),
                    name: entry.product.name.clone(),
                    category: entry.product.category.clone(),
                    units_sold: (revenue / entry.product.price).round() as u64,
                    revenue: cents(revenue),
                }
            })
            .collect();

        let average_order = last_30.average_order_value.max(1.0);
        let mut categories: Vec<CategoryRevenue> = CATEGORIES
            .iter()
            .map(|(name, ..)| {
                let revenue: f64 = sold
                    .iter()
                    .filter(|p| p.category == *name)
                    .map(|p| p.revenue)
                    .sum();
                CategoryRevenue {
                    category: (*name).to_owned(),
                    revenue: cents(revenue),
                    transactions: (revenue / average_order).round() as u64,
                    share: (revenue / last_30.revenue.max(0.01) * 10_000.0).round() / 10_000.0,
                }
            })
            .collect();
        categories.sort_by(|a, b| b.revenue.total_cmp(&a.revenue));

        sold.sort_by(|a, b| {
            b.revenue
                .total_cmp(&a.revenue)
                .then_with(|| a.product_id.cmp(&b.product_id))
        });
        sold.truncate(TOP_PRODUCTS);

        let now_text = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let items: Vec<Product> = self
            .catalog
            .iter()
            .map(|entry| {
                let mut product = entry.product.clone();
                if entry.drain_per_refresh > 0 && refresh > 0 {
                    let base = product.stock_quantity;
                    // Drains by a few units per refresh and is restocked when empty.
                    product.stock_quantity =
                        base - (refresh * entry.drain_per_refresh) % (base + 1);
                    product.stock_status = stock_status(product.stock_quantity);
                    product.updated_at.clone_from(&now_text);
                }
                product
            })
            .collect();
        (
            sold,
            categories,
            Products {
                count: items.len(),
                items,
            },
        )
    }
}

impl SnapshotSource for MockSource {
    type Set = ReferenceSections;

    async fn fetch(&self) -> Result<SnapshotData, SourceError> {
        let refresh = self.fetches.fetch_add(1, Ordering::Relaxed);
        if self.fail_every > 0 && (refresh + 1) % self.fail_every == 0 {
            return Err(SourceError::Unavailable(format!(
                "mock failure of refresh {} (WARMCACHE_MOCK_FAIL_EVERY)",
                refresh + 1
            )));
        }
        let now = self.pinned_now.unwrap_or_else(OffsetDateTime::now_utc);
        Ok(self.generate(now, refresh))
    }
}

/// Share of a day's sales in each hour: quiet nights, peaks at noon and 19:00.
fn hour_weight(hour: u8) -> f64 {
    let h = f64::from(hour);
    let bump = |center: f64, width: f64| (-((h - center) / width).powi(2)).exp();
    0.15 + bump(12.0, 2.5) + 1.3 * bump(19.0, 2.0)
}

fn sum_hourly(hourly: &[HourlyPoint], customers_per_transaction: f64) -> Kpi {
    let revenue: f64 = hourly.iter().map(|p| p.revenue).sum();
    let transactions: u64 = hourly.iter().map(|p| p.transactions).sum();
    Kpi::new(
        revenue,
        transactions,
        (transactions as f64 * customers_per_transaction).round() as u64,
    )
}

/// Sums daily rows; `distinct_ratio` turns the sum of daily distinct
/// customers into distinct customers over the whole period.
fn sum_days(days: &[DailyAggregate], distinct_ratio: f64) -> Kpi {
    let revenue: f64 = days.iter().map(|d| d.revenue).sum();
    let transactions: u64 = days.iter().map(|d| d.transactions).sum();
    let customers: u64 = days.iter().map(|d| d.customers).sum();
    Kpi::new(
        revenue,
        transactions,
        (customers as f64 * distinct_ratio).round() as u64,
    )
}

fn stock_status(quantity: u64) -> StockStatus {
    StockStatus::from_quantity(quantity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 14:30:00 UTC);

    #[test]
    fn same_inputs_give_the_same_data_and_each_refresh_changes_it() {
        let a = MockSource::new(42).generate(NOW, 3);
        let b = MockSource::new(42).generate(NOW, 3);
        assert_eq!(a, b);
        let next = MockSource::new(42).generate(NOW, 4);
        assert!(next.dashboard.kpis.today.transactions > a.dashboard.kpis.today.transactions);
        assert_ne!(MockSource::new(43).generate(NOW, 3), a);
    }

    #[test]
    fn sizes_match_what_a_dashboard_expects() {
        let data = MockSource::new(42).generate(NOW, 0);
        assert_eq!(data.historical.daily.len(), 365);
        assert_eq!(data.historical.monthly.len(), 24);
        assert_eq!(data.products.items.len(), 500);
        assert_eq!(data.products.count, 500);
        assert_eq!(data.dashboard.hourly_revenue.len(), 24);
        let dashboard_bytes = serde_json::to_vec(&data.dashboard)
            .expect("serializes")
            .len();
        assert!(
            (15_000..30_000).contains(&dashboard_bytes),
            "dashboard is {dashboard_bytes} bytes"
        );
        // History crosses a year boundary and ends yesterday.
        assert_eq!(
            data.historical.daily.last().map(|d| d.date.as_str()),
            Some("2026-02-28")
        );
        assert_eq!(
            data.historical.daily.first().map(|d| d.date.as_str()),
            Some("2025-03-01")
        );
        assert_eq!(
            data.historical.monthly.last().map(|m| m.month.as_str()),
            Some("2026-03")
        );
        assert_eq!(
            data.historical.monthly.first().map(|m| m.month.as_str()),
            Some("2024-04")
        );
    }

    #[test]
    fn numbers_add_up() {
        let d = MockSource::new(7).generate(NOW, 2).dashboard;
        let hourly: f64 = d.hourly_revenue.iter().map(|p| p.revenue).sum();
        assert!((hourly - d.kpis.today.revenue).abs() < 0.01);
        assert!(
            d.hourly_revenue[15..].iter().all(|p| p.transactions == 0),
            "future hours are empty"
        );
        let daily_30: f64 = d.daily_revenue_30_days.iter().map(|p| p.revenue).sum();
        assert!((daily_30 - d.kpis.last_30_days.revenue).abs() < 0.01);
        let by_category: f64 = d.revenue_by_category.iter().map(|c| c.revenue).sum();
        assert!(
            (by_category - d.kpis.last_30_days.revenue).abs() < 1.0,
            "{by_category} vs {}",
            d.kpis.last_30_days.revenue
        );
        assert!(d.kpis.last_7_days.revenue < d.kpis.last_30_days.revenue);
        assert!(
            d.top_products
                .windows(2)
                .all(|w| w[0].revenue >= w[1].revenue)
        );
    }

    #[test]
    fn this_months_aggregate_counts_only_days_so_far() {
        let data = MockSource::new(1).generate(NOW, 0);
        let february: f64 = data
            .historical
            .daily
            .iter()
            .filter(|d| d.date.starts_with("2026-02"))
            .map(|d| d.revenue)
            .sum();
        let month = data
            .historical
            .monthly
            .iter()
            .find(|m| m.month == "2026-02")
            .expect("february");
        assert!((month.revenue - february).abs() < 0.01);
        let march = data.historical.monthly.last().expect("march");
        assert_eq!(march.transactions, 0, "no complete day of March yet");
    }

    #[tokio::test]
    async fn fetch_counts_refreshes_and_drains_stock() {
        let source = MockSource::new(42).with_now(NOW);
        let first = source.fetch().await.expect("mock never fails");
        let mut later = first.clone();
        for _ in 0..5 {
            later = source.fetch().await.expect("mock never fails");
        }
        assert_eq!(source.fetch_count(), 6);
        let changed = first
            .products
            .items
            .iter()
            .zip(&later.products.items)
            .filter(|(a, b)| a.stock_quantity != b.stock_quantity)
            .count();
        assert!(
            changed > 0 && changed < 100,
            "{changed} products changed stock"
        );
    }
}
