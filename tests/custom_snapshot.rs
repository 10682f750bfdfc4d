//! A snapshot type of the user's own (two sections, `orders` and
//! `regions`, with a source of its own) refreshed by `Refresher<S>` on
//! tokio's paused clock and read through `SnapshotCache<T>`; and, with the
//! `bigquery` feature, a user-defined query set run against the BigQuery
//! emulator.

mod support;

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use warmcache::{
    Coding, Mode, Refresher, Section, SectionSet, SnapshotCache, SnapshotSource, SourceError,
};

/// One order of the user's shop.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Order {
    id: String,
    region: String,
    cents: u64,
}

/// What one fetch returns.
#[derive(Debug, Clone, PartialEq)]
struct ShopData {
    orders: Vec<Order>,
    regions: Vec<String>,
}

/// The user's section set.
struct Shop {
    orders: Section<Vec<Order>>,
    regions: Section<Vec<String>>,
}

impl SectionSet for Shop {
    type Data = ShopData;

    async fn render(data: ShopData, generation: u64) -> Result<Self, serde_json::Error> {
        let (orders, regions) = tokio::try_join!(
            Section::render_off_thread(generation, data.orders),
            Section::render_off_thread(generation, data.regions),
        )?;
        Ok(Self { orders, regions })
    }
}

/// A source whose data the test sets, and whose next fetch it can fail.
#[derive(Default)]
struct ShopSource {
    data: Mutex<Option<ShopData>>,
    fail_next: AtomicBool,
    fetches: AtomicU64,
}

impl SnapshotSource for ShopSource {
    type Set = Shop;

    async fn fetch(&self) -> Result<ShopData, SourceError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err(SourceError::Unavailable("the shop database is down".into()));
        }
        self.data
            .lock()
            .expect("not poisoned")
            .clone()
            .ok_or_else(|| SourceError::Unavailable("no data yet".into()))
    }
}

/// Data with `n` orders spread over three regions (compressible, so both
/// compressed variants exist).
fn shop_data(n: u64, extra_cents: u64) -> ShopData {
    let regions = ["north", "south", "west"];
    ShopData {
        orders: (0..n)
            .map(|i| Order {
                id: format!("order-{i:05}"),
                region: regions[(i % 3) as usize].to_owned(),
                cents: 100 * (i % 17) + extra_cents,
            })
            .collect(),
        regions: regions.iter().map(|r| (*r).to_owned()).collect(),
    }
}

fn decompressed<T>(section: &Section<T>, coding: Coding) -> Vec<u8> {
    let variant = section.encoded().get(coding).expect("the variant exists");
    let bytes = variant.bytes().as_ref();
    let mut out = Vec::new();
    match coding {
        Coding::Identity => out.extend_from_slice(bytes),
        Coding::Gzip => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .expect("valid gzip");
        }
        Coding::Br => {
            brotli::Decompressor::new(bytes, 4096)
                .read_to_end(&mut out)
                .expect("valid brotli");
        }
    }
    out
}

/// Every coding `section` has decompresses to the JSON of its value
/// (a body too small to shrink has no compressed variants).
fn assert_bodies_match<T: Serialize>(section: &Section<T>) {
    let json = serde_json::to_vec(section.value()).expect("serializes");
    assert_eq!(section.body().as_ref(), json.as_slice());
    for coding in Coding::ALL
        .into_iter()
        .filter(|c| section.encoded().has(*c))
    {
        assert_eq!(decompressed(section, coding), json, "{coding:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_custom_snapshot_is_refreshed_and_read_through_the_generic_core() {
    let ttl = Duration::from_secs(10);
    let source = ShopSource::default();
    *source.data.lock().expect("not poisoned") = Some(shop_data(200, 0));
    let cache: SnapshotCache<Shop> = SnapshotCache::new(Mode::Live);
    let refresher = Refresher::builder()
        .ttl(ttl)
        .jitter(0.0)
        .spawn(source, cache.clone())
        .expect("valid settings");
    refresher.refresh_now().await.expect("the first refresh");

    let first = cache.load_full();
    let loaded = first.data.clone().expect("loaded");
    assert!(first.last_error.is_none());
    let expected = shop_data(200, 0);
    assert_eq!(loaded.orders.value(), &expected.orders);
    assert_eq!(loaded.regions.value(), &expected.regions);
    assert_eq!(loaded.orders.generation(), loaded.generation);
    assert_eq!(loaded.lifetime(), ttl);
    assert!(Coding::ALL.iter().all(|c| loaded.orders.encoded().has(*c)));
    assert_bodies_match(&loaded.orders);
    assert_bodies_match(&loaded.regions);
    let generation = loaded.generation;

    // New orders; the regions stay as they were.
    *refresher.source().data.lock().expect("not poisoned") = Some(shop_data(200, 1));
    tokio::time::sleep(ttl + Duration::from_millis(1)).await;
    let second = cache.load_full();
    let reloaded = second.data.clone().expect("loaded");
    assert_eq!(reloaded.generation, generation + 1);
    assert_eq!(reloaded.orders.value(), &shop_data(200, 1).orders);
    assert_bodies_match(&reloaded.orders);
    assert_ne!(reloaded.orders.etag(), loaded.orders.etag());
    assert_eq!(reloaded.regions.etag(), loaded.regions.etag());
    for coding in [Coding::Gzip, Coding::Br] {
        let etag = |s: &Section<Vec<Order>>| s.encoded().get(coding).map(|v| v.etag().clone());
        assert_ne!(etag(&reloaded.orders), etag(&loaded.orders), "{coding:?}");
    }

    // A failing fetch keeps the old data and reports the error.
    refresher.source().fail_next.store(true, Ordering::SeqCst);
    let error = refresher.refresh_now().await.expect_err("the fetch fails");
    assert!(
        error.to_string().contains("shop database is down"),
        "{error}"
    );
    let failed = cache.load();
    let kept = failed.data.as_ref().expect("the old data stays");
    assert_eq!(kept.generation, reloaded.generation);
    assert!(Arc::ptr_eq(kept, &reloaded));
    let last_error = failed.last_error.as_ref().expect("the error is shown");
    assert!(last_error.message.contains("shop database is down"));
    assert_eq!(last_error.consecutive_failures, 1);

    // The next refresh clears it.
    refresher.refresh_now().await.expect("recovers");
    let recovered = cache.load();
    assert!(recovered.last_error.is_none());
    assert_eq!(
        recovered.data.as_ref().map(|d| d.generation),
        Some(reloaded.generation + 1)
    );
    assert!(refresher.source().fetches.load(Ordering::SeqCst) >= 4);
    refresher.shutdown().await;
}

#[cfg(feature = "bigquery")]
mod bigquery {
    //! A user-defined query set against the emulator.

    use serde_json::json;
    use time::OffsetDateTime;
    use time::macros::datetime;
    use warmcache::{
        BigQuerySetupError, BigQuerySource, QueryParam, QueryResults, QuerySet, SectionQuery,
        SnapshotSource, SourceError,
    };

    use super::support::bigquery::{Emulator, PROJECT};
    use super::{Order, Shop, ShopData};

    const DATASET: &str = "usershop";

    /// Orders over a minimum amount, and the regions that have orders.
    struct ShopQueries;

    impl QuerySet for ShopQueries {
        type Set = Shop;

        fn queries(&self) -> Result<Vec<SectionQuery>, BigQuerySetupError> {
            let table = format!("`{PROJECT}.{DATASET}.orders`");
            Ok(vec![
                SectionQuery::new(
                    "orders",
                    format!(
                        "SELECT id, region, cents FROM {table} WHERE cents >= @min_cents ORDER BY id"
                    ),
                ),
                SectionQuery::new(
                    "regions",
                    format!("SELECT DISTINCT region FROM {table} ORDER BY region"),
                ),
            ])
        }

        fn parameters(&self, _now: OffsetDateTime) -> Vec<QueryParam> {
            vec![QueryParam::int64("min_cents", 200)]
        }

        fn decode(
            &self,
            results: &QueryResults,
            _now: OffsetDateTime,
        ) -> Result<ShopData, SourceError> {
            let orders = results
                .section("orders")?
                .rows()
                .map(|row| {
                    Ok(Order {
                        id: row.string("id")?,
                        region: row.string("region")?,
                        cents: row.count("cents")?,
                    })
                })
                .collect::<Result<_, SourceError>>()?;
            let regions = results
                .section("regions")?
                .rows()
                .map(|row| row.string("region"))
                .collect::<Result<_, _>>()?;
            Ok(ShopData { orders, regions })
        }
    }

    #[tokio::test]
    async fn a_user_query_set_runs_against_the_emulator() {
        let emulator = Emulator::start();
        emulator.create_dataset(DATASET).await;
        emulator
            .execute(&format!(
                "CREATE TABLE `{PROJECT}.{DATASET}.orders` (id STRING, region STRING, cents INT64)"
            ))
            .await;
        let rows: Vec<_> = (0..12u64)
            .map(|i| {
                let region = ["east", "west"][(i % 2) as usize];
                json!({ "id": format!("o{i:02}"), "region": region, "cents": (i * 50).to_string() })
            })
            .collect();
        emulator.insert(DATASET, "orders", &rows).await;

        let source = BigQuerySource::with_queries(emulator.config(DATASET), ShopQueries)
            .now(datetime!(2026-01-02 03:04:05 UTC))
            .build()
            .await
            .expect("the source builds");
        let data = source.fetch().await.expect("the fetch succeeds");

        let expected: Vec<Order> = (0..12u64)
            .filter(|i| i * 50 >= 200)
            .map(|i| Order {
                id: format!("o{i:02}"),
                region: ["east", "west"][(i % 2) as usize].to_owned(),
                cents: i * 50,
            })
            .collect();
        assert_eq!(data.orders, expected);
        assert_eq!(data.regions, ["east", "west"]);
        let stats = source.section_stats();
        let names: Vec<&str> = stats.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["orders", "regions"]);
        assert!(stats.iter().all(|(_, s)| s.queries == 1 && s.failures == 0));
        assert_eq!(stats[0].1.last_rows, expected.len());

        // A column the decoder needs and the query lacks names the section.
        struct Broken;
        impl QuerySet for Broken {
            type Set = Shop;
            fn queries(&self) -> Result<Vec<SectionQuery>, BigQuerySetupError> {
                ShopQueries.queries()
            }
            fn parameters(&self, now: OffsetDateTime) -> Vec<QueryParam> {
                ShopQueries.parameters(now)
            }
            fn decode(&self, r: &QueryResults, _: OffsetDateTime) -> Result<ShopData, SourceError> {
                r.section("regions")?
                    .rows()
                    .try_for_each(|row| row.string("name").map(drop))?;
                Err(r.section("orders")?.error("unreachable"))
            }
        }
        let broken = BigQuerySource::with_queries(emulator.config(DATASET), Broken)
            .build()
            .await
            .expect("builds");
        let error = broken.fetch().await.expect_err("a missing column");
        assert!(
            matches!(&error, SourceError::BadRow { section: "regions", column, .. } if column == "name"),
            "{error}"
        );
    }
}
