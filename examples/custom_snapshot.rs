//! A snapshot type of your own: two sections (`orders`, `regions`) filled by
//! a source of your own, kept fresh by warmcache's refresher and served by a
//! tiny axum route from the pre-rendered bodies.
//!
//! `cargo run --example custom_snapshot` refreshes once, answers one
//! request to its own route and exits; with `--serve` it keeps serving on
//! `127.0.0.1:8081` (`curl localhost:8081/orders`) until Ctrl-C.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warmcache::{Mode, Refresher, Section, SectionSet, SnapshotCache, SnapshotSource, SourceError};

/// One row of the `orders` section.
#[derive(Debug, Clone, Serialize)]
struct Order {
    id: u64,
    region: &'static str,
    cents: u64,
}

/// The sections, rendered and compressed once per refresh.
struct Shop {
    orders: Section<Vec<Order>>,
    regions: Section<Vec<&'static str>>,
}

impl SectionSet for Shop {
    /// What the source fetches.
    type Data = (Vec<Order>, Vec<&'static str>);

    async fn render(data: Self::Data, generation: u64) -> Result<Self, serde_json::Error> {
        let (orders, regions) = tokio::try_join!(
            Section::render_off_thread(generation, data.0),
            Section::render_off_thread(generation, data.1),
        )?;
        Ok(Self { orders, regions })
    }
}

/// Your own source: here generated, in real life your database.
#[derive(Default)]
struct ShopSource {
    refreshes: AtomicU64,
}

impl SnapshotSource for ShopSource {
    type Set = Shop;

    async fn fetch(&self) -> Result<(Vec<Order>, Vec<&'static str>), SourceError> {
        let round = self.refreshes.fetch_add(1, Ordering::Relaxed);
        let regions = vec!["east", "west"];
        let orders = (0..20)
            .map(|id| Order {
                id,
                region: regions[(id % 2) as usize],
                cents: 100 * id + round,
            })
            .collect();
        Ok((orders, regions))
    }
}

/// `GET /orders`: the pre-rendered body, no serialization per request.
async fn orders(State(cache): State<SnapshotCache<Shop>>) -> Response {
    let snapshot = cache.load();
    match snapshot.data.as_deref() {
        Some(shop) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (header::ETAG, shop.orders.etag().clone()),
            ],
            shop.orders.body().clone(),
        )
            .into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let serve = std::env::args().any(|a| a == "--serve");
    let cache: SnapshotCache<Shop> = SnapshotCache::new(Mode::Live);
    let refresher = Refresher::builder()
        .ttl(Duration::from_secs(5))
        .spawn(ShopSource::default(), cache.clone())?;
    refresher.refresh_now().await?;
    if let Some(shop) = cache.load().data.as_deref() {
        println!(
            "generation {}: {} orders, regions {:?} ({} bytes of orders JSON)",
            shop.generation,
            shop.orders.value().len(),
            shop.regions.value(),
            shop.orders.body().len()
        );
    }

    let app = Router::new()
        .route("/orders", get(orders))
        .with_state(cache);
    let addr = if serve {
        "127.0.0.1:8081"
    } else {
        "127.0.0.1:0"
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    if serve {
        println!("serving http://{addr}/orders; Ctrl-C stops");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
    } else {
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        let status = answer.lines().next().unwrap_or_default();
        println!("GET /orders -> {status}, {} bytes", answer.len());
        server.abort();
    }
    refresher.shutdown().await;
    Ok(())
}
