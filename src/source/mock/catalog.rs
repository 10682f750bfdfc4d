//! The mock catalog: categories, names and the seeded product list the
//! mock source builds its sections from.

use time::{Date, Duration as TimeDuration, Month};

use super::{CATALOG_SIZE, CURRENCY};
use crate::data::{Product, StockStatus, cents};
use crate::rng::SplitMix64;

pub(super) const CATEGORIES: [(&str, &[&str], f64, f64); 10] = [
    (
        "Electronics",
        &["Headphones", "Charger", "Speaker", "Webcam", "Keyboard"],
        15.0,
        400.0,
    ),
    (
        "Home & Kitchen",
        &["Kettle", "Pan", "Knife Set", "Blender", "Mug"],
        8.0,
        180.0,
    ),
    (
        "Books",
        &["Novel", "Cookbook", "Atlas", "Biography", "Workbook"],
        6.0,
        45.0,
    ),
    (
        "Toys",
        &["Puzzle", "Building Set", "Plush Bear", "Kite", "Board Game"],
        5.0,
        90.0,
    ),
    (
        "Sports",
        &[
            "Yoga Mat",
            "Dumbbell",
            "Water Bottle",
            "Tennis Racket",
            "Helmet",
        ],
        9.0,
        220.0,
    ),
    (
        "Beauty",
        &["Face Cream", "Shampoo", "Perfume", "Lip Balm", "Serum"],
        4.0,
        120.0,
    ),
    (
        "Grocery",
        &["Coffee Beans", "Green Tea", "Olive Oil", "Granola", "Honey"],
        3.0,
        40.0,
    ),
    (
        "Garden",
        &["Hose", "Planter", "Pruner", "Seed Kit", "Lantern"],
        6.0,
        150.0,
    ),
    (
        "Fashion",
        &["Scarf", "Sneakers", "Backpack", "Jacket", "Sunglasses"],
        12.0,
        260.0,
    ),
    (
        "Office",
        &[
            "Notebook",
            "Desk Lamp",
            "Pen Set",
            "Monitor Stand",
            "Stapler",
        ],
        3.0,
        120.0,
    ),
];
const ADJECTIVES: [&str; 10] = [
    "Classic",
    "Compact",
    "Deluxe",
    "Eco",
    "Essential",
    "Pro",
    "Smart",
    "Travel",
    "Ultra",
    "Vintage",
];

/// One catalog entry before the per-refresh stock changes.
#[derive(Debug, Clone)]
pub(super) struct CatalogEntry {
    pub(super) product: Product,
    /// Relative popularity, used to split sales between products.
    pub(super) popularity: f64,
    /// Units sold per refresh (0 for most products).
    pub(super) drain_per_refresh: u64,
}

pub(super) fn build_catalog(seed: u64) -> Vec<CatalogEntry> {
    let mut rng = SplitMix64::new(seed);
    let base_date = Date::from_calendar_date(2026, Month::January, 1).unwrap_or(Date::MIN);
    (0..CATALOG_SIZE)
        .map(|index| {
            let (category, nouns, low, high) = CATEGORIES[index % CATEGORIES.len()];
            let noun = nouns[rng.below(nouns.len() as u64) as usize];
            let adjective = ADJECTIVES[rng.below(ADJECTIVES.len() as u64) as usize];
            let stock_quantity = if rng.below(10) == 0 {
                rng.below(11)
            } else {
                20 + rng.below(480)
            };
            let updated = base_date + TimeDuration::days(rng.below(300) as i64);
            let id = format!("P{:05}", index + 1);
            CatalogEntry {
                product: Product {
                    sku: format!("SKU-{}-{:04}", &category[..3].to_uppercase(), index + 1),
                    name: format!("{adjective} {noun} {}", 100 + rng.below(900)),
                    category: category.to_owned(),
                    price: cents(low * (high / low).powf(rng.next_f64())),
                    currency: CURRENCY.to_owned(),
                    stock_status: StockStatus::from_quantity(stock_quantity),
                    stock_quantity,
                    updated_at: format!("{updated}T00:00:00Z"),
                    id,
                },
                // A long tail: a few products sell most.
                popularity: 1.0 / (1.0 + rng.below(CATALOG_SIZE as u64) as f64).powf(0.8),
                drain_per_refresh: if rng.below(20) == 0 {
                    1 + rng.below(3)
                } else {
                    0
                },
            }
        })
        .collect()
}
