//! warmcache's routes and caches inside an axum app you already have.
//!
//! The host keeps its own routes, state and middleware; warmcache's router
//! ([`warmcache::service::app`]) is nested under `/cache`, with the
//! snapshot kept fresh by a refresher the host owns (and shuts down). With
//! `REDIS_PORT` set, the keyed routes (`/cache/age-verification/{id}`, ...)
//! run on the Redis at `127.0.0.1:$REDIS_PORT`; without it they answer 503
//! and the snapshot routes still work. The host's own handler reads the
//! same snapshot directly. warmcache installs no metrics recorder and no
//! crypto provider: those stay the host's choice.
//!
//! `cargo run --example embed_router` sends three requests through the
//! composed router and exits; with `--serve` it listens on `127.0.0.1:8082`
//! (`curl --compressed localhost:8082/cache/dashboard`) until Ctrl-C.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, header};
use axum::routing::get;
use tower::ServiceExt;
use warmcache::service::{AppState, KeyedCaches, app};
use warmcache::{
    InvalidationOptions, MockSource, Mode, RedisConfig, RedisHandle, Refresher, SnapshotCache,
};

/// The host application's own state.
#[derive(Clone)]
struct HostState {
    greetings: Arc<AtomicU64>,
    snapshots: SnapshotCache,
}

/// A host route that uses the snapshot too: one load, no query.
async fn hello(State(host): State<HostState>) -> String {
    let n = host.greetings.fetch_add(1, Ordering::Relaxed) + 1;
    let snapshot = host.snapshots.load();
    let today = snapshot
        .data
        .as_ref()
        .map(|s| s.dashboard.value().kpis.today.transactions);
    format!("hello #{n}; transactions today: {today:?}\n")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let serve = std::env::args().any(|a| a == "--serve");
    let snapshots = SnapshotCache::new(Mode::Mock);
    let ttl = Duration::from_secs(30);
    let refresher = Refresher::builder()
        .ttl(ttl)
        .spawn(MockSource::new(42), snapshots.clone())?;
    refresher.refresh_now().await?;

    let mut listener = None;
    let keyed = match std::env::var("REDIS_PORT") {
        Ok(port) => {
            let redis = RedisHandle::connect_lazy(&RedisConfig::local(port.parse()?))?;
            listener = Some(redis.start_invalidation(InvalidationOptions::default()));
            Some(std::sync::Arc::new(KeyedCaches::new(
                &redis,
                16 << 20,
                ttl,
                true,
            )?))
        }
        Err(_) => None,
    };
    let cache_routes = app(AppState {
        snapshots: snapshots.clone(),
        ttl,
        max_staleness: ttl * 4,
        keyed,
    });
    let host = HostState {
        greetings: Arc::default(),
        snapshots,
    };
    let router = Router::new()
        .route("/hello", get(hello))
        .with_state(host)
        .nest("/cache", cache_routes);

    if serve {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:8082").await?;
        println!(
            "serving http://{}/hello and /cache/...; Ctrl-C stops",
            tcp.local_addr()?
        );
        axum::serve(tcp, router)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
    } else {
        for (path, accept) in [
            ("/hello", "identity"),
            ("/cache/dashboard", "gzip, br"),
            ("/cache/age-verification/cust-1", "identity"),
        ] {
            let request = Request::get(path)
                .header(header::ACCEPT_ENCODING, accept)
                .body(Body::empty())?;
            let response = router.clone().oneshot(request).await?;
            let coding = response
                .headers()
                .get(header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("identity")
                .to_owned();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
            println!("GET {path} -> {status}, {} bytes {coding}", body.len());
        }
    }
    if let Some(listener) = listener {
        listener.shutdown().await;
    }
    refresher.shutdown().await;
    Ok(())
}
