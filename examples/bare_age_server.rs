//! The baseline of `benches/http_records_load.sh`: a bare axum + moka
//! server of `GET /age-verification/{id}` (or, with `BARE_RECORDS=jobs`,
//! `GET /jobs/{id}`) holding the same bytes as warmcache's L1.
//!
//! At start it reads every `age_verification:*` (or `reasoning_job:*`) key
//! of the Redis on `127.0.0.1:$REDIS_PORT` into a
//! `moka::future::Cache<String, Bytes>`, then answers from it alone: no id
//! check, no tiers, no coherence, no metrics, no ETag. It prints
//! `listening on http://ADDR` on stderr once loaded.
//!
//! With `BARE_FILL=miss` it loads nothing at start: a miss reads the key
//! from Redis (`GET`) and keeps it, as a read-through cache (and warmcache)
//! fills, so its entries are allocated while it serves, as warmcache's are,
//! rather than one after another into a fresh heap.
//!
//! `REDIS_PORT=6380 BARE_LISTEN=127.0.0.1:0 cargo run --release --example bare_age_server`

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use moka::future::Cache;
use moka::sync::Cache as SyncCache;

async fn age(State(cache): State<Cache<String, Bytes>>, Path(id): Path<String>) -> Response {
    answer(cache.get(&id).await)
}

async fn age_sync(
    State(cache): State<SyncCache<String, Bytes>>,
    Path(id): Path<String>,
) -> Response {
    answer(cache.get(&id))
}

/// `BARE_FILL=miss`: the cache, filled from Redis on a miss.
#[derive(Clone)]
struct ReadThrough {
    cache: Cache<String, Bytes>,
    redis: redis::aio::MultiplexedConnection,
    prefix: &'static str,
}

async fn age_read_through(State(state): State<ReadThrough>, Path(id): Path<String>) -> Response {
    if let Some(json) = state.cache.get(&id).await {
        return answer(Some(json));
    }
    let mut redis = state.redis.clone();
    let found: Option<Vec<u8>> = redis::cmd("GET")
        .arg(format!("{}{id}", state.prefix))
        .query_async(&mut redis)
        .await
        .unwrap_or(None);
    let json = found.map(Bytes::from);
    if let Some(json) = &json {
        state.cache.insert(id, json.clone()).await;
    }
    answer(json)
}

fn answer(json: Option<Bytes>) -> Response {
    match json {
        Some(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let port: u16 = std::env::var("REDIS_PORT")?.parse()?;
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
        let mut redis = client.get_multiplexed_async_connection().await?;
        let jobs = std::env::var("BARE_RECORDS").is_ok_and(|r| r == "jobs");
        let (prefix, route) = if jobs {
            ("reasoning_job:", "/jobs/{id}")
        } else {
            ("age_verification:", "/age-verification/{id}")
        };
        let read_through = std::env::var("BARE_FILL").is_ok_and(|f| f == "miss");
        let pattern = if read_through {
            // Nothing to load: a miss reads Redis.
            "bare-loads-nothing:".to_owned()
        } else {
            format!("{prefix}*")
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut redis)
            .await?;
        let cache: Cache<String, Bytes> = Cache::builder()
            .max_capacity(256 << 20)
            .weigher(|id: &String, json: &Bytes| {
                u32::try_from(id.len() + json.len()).unwrap_or(u32::MAX)
            })
            .build();
        for key in &keys {
            let json: Vec<u8> = redis::cmd("GET").arg(key).query_async(&mut redis).await?;
            cache
                .insert(key[prefix.len()..].to_owned(), Bytes::from(json))
                .await;
        }
        let listen: SocketAddr = std::env::var("BARE_LISTEN")
            .unwrap_or_else(|_| "127.0.0.1:0".to_owned())
            .parse()?;
        let listener = tokio::net::TcpListener::bind(listen).await?;
        eprintln!("loaded {} records", keys.len());
        eprintln!("listening on http://{}", listener.local_addr()?);
        let app = if read_through {
            let state = ReadThrough {
                cache,
                redis,
                prefix,
            };
            Router::new()
                .route(route, get(age_read_through))
                .with_state(state)
        } else if std::env::var("BARE_CACHE").is_ok_and(|c| c == "sync") {
            let sync: SyncCache<String, Bytes> = SyncCache::builder()
                .max_capacity(256 << 20)
                .weigher(|id: &String, json: &Bytes| {
                    u32::try_from(id.len() + json.len()).unwrap_or(u32::MAX)
                })
                .build();
            for (id, json) in cache.iter() {
                sync.insert((*id).clone(), json);
            }
            Router::new().route(route, get(age_sync)).with_state(sync)
        } else {
            Router::new().route(route, get(age)).with_state(cache)
        };
        axum::serve(listener, app).await?;
        Ok(())
    })
}
