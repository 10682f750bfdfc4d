//! The shop that live-mode tests load into the BigQuery emulator: known
//! products and transaction rows (crossing day, month and year boundaries),
//! the aggregates the snapshot must show for them, computed here
//! independently of the SQL, and helpers that build the source under test.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::{Date, Duration as Days, Month, OffsetDateTime};
use tokio::time::timeout;
use warmcache::{
    BigQueryConfig, BigQuerySource, BigQuerySourceBuilder, Mode, RefreshError, Refresher, Sections,
    SnapshotCache, SnapshotData, SourceError,
};

use super::bigquery::{Emulator, PROJECT};

pub const NOW: OffsetDateTime = datetime!(2026-03-02 10:15:00 UTC);
pub const DATASET: &str = "shop";
pub const TOP_PRODUCTS: usize = 10;
pub const PAGE_SIZE: u32 = 40;
/// Every wait on the emulator is bounded by this.
pub const BOUND: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// The shop: known rows, and what the snapshot must say about them
// ---------------------------------------------------------------------------

pub struct Item {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub category: &'static str,
    pub price_cents: i64,
    pub currency: Option<&'static str>,
    pub stock: u64,
    pub updated_at: OffsetDateTime,
}

pub struct Line {
    pub transaction_id: String,
    pub customer_id: String,
    pub product_id: String,
    pub quantity: u64,
    pub amount_cents: i64,
    pub created_at: OffsetDateTime,
}

pub struct Shop {
    pub items: Vec<Item>,
    pub lines: Vec<Line>,
}

/// xorshift64*: deterministic rows without a dependency.
pub struct Rng(pub u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

pub fn shop() -> Shop {
    const CATEGORIES: [&str; 5] = ["Books", "Garden", "Home", "Office", "Toys"];
    let items: Vec<Item> = (1..=30usize)
        .map(|i| Item {
            id: format!("P{i:03}"),
            sku: format!("SKU-{i:04}"),
            name: format!("Product {i}"),
            category: CATEGORIES[i % CATEGORIES.len()],
            price_cents: 199 + (i as i64 * 737) % 9_000,
            currency: (i != 7).then_some("USD"),
            stock: [0, 3, 10, 11, 250][i % 5],
            updated_at: datetime!(2026-01-02 03:04:05.123456 UTC) + Days::hours(i as i64 * 7),
        })
        .collect();
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let mut lines = Vec::new();
    let mut add = |at: OffsetDateTime, rng: &mut Rng| {
        let transaction_id = format!("T{:05}", lines.len());
        let customer_id = format!("C{:03}", rng.below(150));
        for _ in 0..=rng.below(3) {
            let item = &items[rng.below(items.len() as u64) as usize];
            let quantity = 1 + rng.below(4);
            lines.push(Line {
                transaction_id: transaction_id.clone(),
                customer_id: customer_id.clone(),
                product_id: item.id.clone(),
                quantity,
                amount_cents: item.price_cents * quantity as i64,
                created_at: at,
            });
        }
    };
    let seconds = |s: u64| Days::seconds(s as i64);
    // Over 25 months, the last 30 days, and today up to now.
    for _ in 0..500 {
        add(NOW - seconds(1 + rng.below(770 * 86_400)), &mut rng);
    }
    for _ in 0..250 {
        add(NOW - seconds(1 + rng.below(30 * 86_400)), &mut rng);
    }
    for _ in 0..40 {
        add(NOW - seconds(1 + rng.below(10 * 3_600 + 900)), &mut rng);
    }
    // Exactly on and next to the boundaries the queries draw.
    for at in [
        datetime!(2026-03-02 00:00:00 UTC),        // today starts
        datetime!(2026-03-01 23:59:59.999999 UTC), // yesterday ends
        datetime!(2026-03-01 00:00:00 UTC),        // this month starts
        datetime!(2026-02-28 23:59:59 UTC),        // last month ends
        datetime!(2026-02-24 00:00:00 UTC),        // 7-day window starts
        datetime!(2026-02-23 23:59:59.999999 UTC), // just before it
        datetime!(2026-01-31 00:00:00 UTC),        // 30-day window starts
        datetime!(2026-01-30 23:59:59.999999 UTC), // just before it
        datetime!(2026-01-01 00:00:00 UTC),        // a year starts
        datetime!(2025-03-02 00:00:00 UTC),        // the 365 days start
        datetime!(2025-03-01 23:59:59.999999 UTC), // just before them
        datetime!(2024-04-01 00:00:00 UTC),        // the 24 months start
        datetime!(2024-03-31 23:59:59.999999 UTC), // just before them
        datetime!(2026-03-03 00:00:00 UTC),        // tomorrow: in no series
    ] {
        add(at, &mut rng);
    }
    Shop { items, lines }
}

pub fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("formats")
}

/// Creates the dataset and both tables in `emulator` and loads `shop`.
pub async fn load(emulator: &Emulator, shop: &Shop) {
    emulator.create_dataset(DATASET).await;
    emulator
        .execute(&format!(
            "CREATE TABLE `{PROJECT}.{DATASET}.transactions` (
               transaction_id STRING NOT NULL, customer_id STRING NOT NULL,
               product_id STRING NOT NULL, quantity INT64 NOT NULL,
               amount NUMERIC NOT NULL, created_at TIMESTAMP NOT NULL)"
        ))
        .await;
    emulator
        .execute(&format!(
            "CREATE TABLE `{PROJECT}.{DATASET}.products` (
               product_id STRING NOT NULL, sku STRING NOT NULL, name STRING NOT NULL,
               category STRING NOT NULL, price NUMERIC, currency STRING,
               stock_quantity INT64 NOT NULL, updated_at TIMESTAMP NOT NULL)"
        ))
        .await;
    let products: Vec<Value> = shop
        .items
        .iter()
        .map(|i| {
            json!({
                "product_id": i.id, "sku": i.sku, "name": i.name, "category": i.category,
                "price": money(i.price_cents), "currency": i.currency,
                "stock_quantity": i.stock, "updated_at": rfc3339(i.updated_at),
            })
        })
        .collect();
    emulator.insert(DATASET, "products", &products).await;
    let transactions: Vec<Value> = shop
        .lines
        .iter()
        .map(|l| {
            json!({
                "transaction_id": l.transaction_id, "customer_id": l.customer_id,
                "product_id": l.product_id, "quantity": l.quantity,
                "amount": money(l.amount_cents), "created_at": rfc3339(l.created_at),
            })
        })
        .collect();
    emulator
        .insert(DATASET, "transactions", &transactions)
        .await;
}

/// An emulator with the shop loaded.
pub async fn seeded() -> (Emulator, Shop) {
    let emulator = Emulator::start();
    let shop = shop();
    load(&emulator, &shop).await;
    (emulator, shop)
}

/// Sums of a set of lines, in cents, with distinct counts.
#[derive(Default)]
pub struct Sums {
    pub cents: i64,
    pub transactions: HashSet<String>,
    pub customers: HashSet<String>,
    pub units: u64,
}

impl Sums {
    fn of<'a>(lines: impl Iterator<Item = &'a Line>) -> Self {
        let mut sums = Self::default();
        for line in lines {
            sums.cents += line.amount_cents;
            sums.transactions.insert(line.transaction_id.clone());
            sums.customers.insert(line.customer_id.clone());
            sums.units += line.quantity;
        }
        sums
    }
}

pub fn cents(amount: f64) -> i64 {
    (amount * 100.0).round() as i64
}

/// Checks every number of `data` against sums over `shop`'s rows.
pub fn assert_matches_the_rows(data: &SnapshotData, shop: &Shop) {
    let today = NOW.date();
    let on = |d: Date| move |l: &&Line| l.created_at.date() == d;
    let between =
        |first: Date, last: Date| move |l: &&Line| (first..=last).contains(&l.created_at.date());

    // Dashboard KPIs.
    let kpis = &data.dashboard.kpis;
    for (kpi, sums, what) in [
        (
            &kpis.today,
            Sums::of(shop.lines.iter().filter(on(today))),
            "today",
        ),
        (
            &kpis.last_7_days,
            Sums::of(
                shop.lines
                    .iter()
                    .filter(between(today - Days::days(6), today)),
            ),
            "7 days",
        ),
        (
            &kpis.last_30_days,
            Sums::of(
                shop.lines
                    .iter()
                    .filter(between(today - Days::days(29), today)),
            ),
            "30 days",
        ),
    ] {
        assert_eq!(cents(kpi.revenue), sums.cents, "{what} revenue");
        assert_eq!(
            kpi.transactions,
            sums.transactions.len() as u64,
            "{what} transactions"
        );
        assert_eq!(
            kpi.customers,
            sums.customers.len() as u64,
            "{what} customers"
        );
        assert!(sums.transactions.len() > 1, "{what} has data");
    }
    let aov =
        (kpis.last_30_days.revenue / kpis.last_30_days.transactions as f64 * 100.0).round() / 100.0;
    assert_eq!(kpis.last_30_days.average_order_value, aov);

    // Today's hours (only hours up to now have sales).
    assert_eq!(data.dashboard.hourly_revenue.len(), 24);
    for point in &data.dashboard.hourly_revenue {
        let sums = Sums::of(
            shop.lines
                .iter()
                .filter(on(today))
                .filter(|l| l.created_at.hour() == point.hour),
        );
        assert_eq!(cents(point.revenue), sums.cents, "hour {}", point.hour);
        assert_eq!(
            point.transactions,
            sums.transactions.len() as u64,
            "hour {}",
            point.hour
        );
    }
    assert!(
        data.dashboard.hourly_revenue[..=10]
            .iter()
            .filter(|p| p.transactions > 0)
            .count()
            > 5
    );

    // 30 daily points, including days without sales.
    let days = &data.dashboard.daily_revenue_30_days;
    assert_eq!(days.len(), 30);
    for (i, day) in days.iter().enumerate() {
        let date = today - Days::days(29 - i as i64);
        assert_eq!(day.date, date.to_string());
        let sums = Sums::of(shop.lines.iter().filter(on(date)));
        assert_eq!(cents(day.revenue), sums.cents, "{date}");
        assert_eq!(day.transactions, sums.transactions.len() as u64, "{date}");
        assert_eq!(day.customers, sums.customers.len() as u64, "{date}");
    }

    // Top products and categories over 30 days.
    let item = |id: &str| {
        shop.items
            .iter()
            .find(|i| i.id == id)
            .expect("known product")
    };
    let recent: Vec<&Line> = shop
        .lines
        .iter()
        .filter(between(today - Days::days(29), today))
        .collect();
    let mut by_product: BTreeMap<&str, Sums> = BTreeMap::new();
    for line in &recent {
        let sums = by_product.entry(line.product_id.as_str()).or_default();
        sums.cents += line.amount_cents;
        sums.units += line.quantity;
    }
    let mut top: Vec<(&str, i64, u64)> = by_product
        .iter()
        .map(|(id, s)| (*id, s.cents, s.units))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    top.truncate(TOP_PRODUCTS);
    let got: Vec<(&str, i64, u64)> = data
        .dashboard
        .top_products
        .iter()
        .map(|p| (p.product_id.as_str(), cents(p.revenue), p.units_sold))
        .collect();
    assert_eq!(got, top);
    for product in &data.dashboard.top_products {
        assert_eq!(
            (product.name.as_str(), product.category.as_str()),
            (
                item(&product.product_id).name.as_str(),
                item(&product.product_id).category
            )
        );
    }
    let total_30 = Sums::of(recent.iter().copied()).cents;
    let mut categories: HashMap<&str, Sums> = HashMap::new();
    for line in &recent {
        let sums = categories
            .entry(item(&line.product_id).category)
            .or_default();
        sums.cents += line.amount_cents;
        sums.transactions.insert(line.transaction_id.clone());
    }
    assert_eq!(data.dashboard.revenue_by_category.len(), categories.len());
    for category in &data.dashboard.revenue_by_category {
        let sums = &categories[category.category.as_str()];
        assert_eq!(cents(category.revenue), sums.cents, "{}", category.category);
        assert_eq!(category.transactions, sums.transactions.len() as u64);
        assert!((category.share - sums.cents as f64 / total_30 as f64).abs() < 1e-4);
    }
    assert!(
        data.dashboard
            .revenue_by_category
            .windows(2)
            .all(|w| w[0].revenue >= w[1].revenue)
    );

    // 365 days before today, and 24 calendar months up to yesterday.
    let history = &data.historical;
    assert_eq!(history.daily.len(), 365);
    for (i, day) in history.daily.iter().enumerate() {
        let date = today - Days::days(365 - i as i64);
        assert_eq!(day.date, date.to_string());
        let sums = Sums::of(shop.lines.iter().filter(on(date)));
        assert_eq!(
            (cents(day.revenue), day.transactions, day.customers),
            (
                sums.cents,
                sums.transactions.len() as u64,
                sums.customers.len() as u64
            ),
            "{date}"
        );
    }
    assert_eq!(history.monthly.len(), 24);
    assert_eq!(history.monthly[0].month, "2024-04");
    assert_eq!(history.monthly[23].month, "2026-03");
    for month in &history.monthly {
        let (year, number) = month.month.split_once('-').expect("YYYY-MM");
        let (year, number): (i32, u8) =
            (year.parse().expect("year"), number.parse().expect("month"));
        let month_of = Month::try_from(number).expect("month");
        let sums = Sums::of(shop.lines.iter().filter(|l| {
            let d = l.created_at.date();
            d.year() == year && d.month() == month_of && d < today
        }));
        assert_eq!(
            (cents(month.revenue), month.transactions, month.customers),
            (
                sums.cents,
                sums.transactions.len() as u64,
                sums.customers.len() as u64
            ),
            "{}",
            month.month
        );
    }

    // The catalog, by id.
    let products = &data.products;
    assert_eq!(products.count, shop.items.len());
    for (got, want) in products.items.iter().zip(&shop.items) {
        assert_eq!(got.id, want.id);
        assert_eq!(
            (got.sku.as_str(), got.name.as_str(), got.category.as_str()),
            (want.sku.as_str(), want.name.as_str(), want.category)
        );
        assert_eq!(cents(got.price), want.price_cents);
        assert_eq!(got.currency, want.currency.unwrap_or("USD"));
        assert_eq!(got.stock_quantity, want.stock);
        assert_eq!(got.updated_at, rfc3339(want.updated_at));
    }
    let status = |id: &str| {
        format!(
            "{:?}",
            products
                .items
                .iter()
                .find(|p| p.id == id)
                .expect("listed")
                .stock_status
        )
    };
    assert_eq!(
        [
            status("P005"),
            status("P001"),
            status("P003"),
            status("P004")
        ],
        ["OutOfStock", "LowStock", "InStock", "InStock"]
    );
}

// ---------------------------------------------------------------------------
// The source under test
// ---------------------------------------------------------------------------

pub fn builder(config: BigQueryConfig) -> BigQuerySourceBuilder {
    BigQuerySource::builder(config)
        .now(NOW)
        .page_size(PAGE_SIZE)
        .top_products(TOP_PRODUCTS as u32)
}

pub async fn source(config: BigQueryConfig) -> BigQuerySource {
    builder(config).build().await.expect("the source builds")
}

/// A refresher that fetches only when asked (after its first fetch): long
/// TTL, long backoff, no jitter.
pub fn refresher(
    source: BigQuerySource,
    timeout: Duration,
) -> (Refresher<BigQuerySource>, SnapshotCache) {
    let cache = SnapshotCache::new(Mode::Live);
    let refresher = Refresher::builder()
        .ttl(Duration::from_secs(3_600))
        .timeout(timeout)
        .backoff_start(Duration::from_secs(600))
        .jitter(0.0)
        .spawn(source, cache.clone())
        .expect("valid settings");
    (refresher, cache)
}

/// A [`refresher`] over `config` that has loaded once, and what it loaded.
pub async fn loaded(
    config: BigQueryConfig,
    timeout: Duration,
) -> (Refresher<BigQuerySource>, SnapshotCache, Arc<Sections>) {
    let (refresher, cache) = refresher(source(config).await, timeout);
    refresh(&refresher)
        .await
        .expect("the first refresh succeeds");
    let good = cache.load_full().data.clone().expect("loaded");
    (refresher, cache, good)
}

pub async fn refresh(refresher: &Refresher<BigQuerySource>) -> Result<(), Arc<RefreshError>> {
    timeout(BOUND, refresher.refresh_now())
        .await
        .expect("a refresh ends within the bound")
}

pub fn generation(cache: &SnapshotCache) -> Option<u64> {
    cache.load().data.as_ref().map(|d| d.generation)
}

pub fn source_error(error: &RefreshError) -> &SourceError {
    match error {
        RefreshError::Source(e) => e,
        other => panic!("expected a source error, got {other}"),
    }
}
