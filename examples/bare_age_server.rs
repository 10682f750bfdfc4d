//! The baseline of `benches/http_records_load.sh`: a bare axum + moka
//! server of `GET /age-verification/{id}` (or, with `BARE_RECORDS=jobs`,
//! `GET /jobs/{id}`) holding the same bytes as warmcache's L1.
//!
//! At start it reads every `age_verification:*` (or `reasoning_job:*`) key
//! of the Redis on `127.0.0.1:$REDIS_PORT` into a
//! `moka::future::Cache<String, _>`, then answers from it alone: no id
//! check, no tiers, no coherence, no metrics. A job answer carries an
//! `ETag` worked out when the record is loaded, as every warmcache job
//! answer does (issue 10's contract); an age verification answer carries
//! none, as warmcache's does not. It prints `listening on http://ADDR` on
//! stderr once loaded.
//!
//! With `BARE_FILL=miss` it loads nothing at start: a miss reads the key
//! from Redis (`GET`) and keeps it, as a read-through cache (and warmcache)
//! fills, so its entries are allocated while it serves, as warmcache's are,
//! rather than one after another into a fresh heap. `BARE_CACHE=sync`
//! (preloaded only) serves from moka's synchronous cache instead.
//!
//! `REDIS_PORT=6380 BARE_LISTEN=127.0.0.1:0 cargo run --release --example bare_age_server`

use std::hash::{DefaultHasher, Hasher};
use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use moka::future::Cache;
use moka::sync::Cache as SyncCache;

/// What the cache holds for one id, and how it is answered.
trait Record: Clone + Send + Sync + 'static {
    fn new(json: Vec<u8>) -> Self;
    fn weight(&self) -> usize;
    fn answer(self) -> Response;
}

/// An age verification: the JSON alone.
impl Record for Bytes {
    fn new(json: Vec<u8>) -> Self {
        Bytes::from(json)
    }

    fn weight(&self) -> usize {
        self.len()
    }

    fn answer(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self).into_response()
    }
}

/// A job: the JSON and its ETag, worked out once at load.
#[derive(Clone)]
struct Tagged {
    json: Bytes,
    etag: HeaderValue,
}

impl Record for Tagged {
    fn new(json: Vec<u8>) -> Self {
        let mut hasher = DefaultHasher::new();
        hasher.write(&json);
        let etag = format!("\"{:x}-{:016x}\"", json.len(), hasher.finish());
        Self {
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\"")),
            json: Bytes::from(json),
        }
    }

    fn weight(&self) -> usize {
        self.json.len() + self.etag.len()
    }

    fn answer(self) -> Response {
        let mut response =
            ([(header::CONTENT_TYPE, "application/json")], self.json).into_response();
        response.headers_mut().insert(header::ETAG, self.etag);
        response
    }
}

async fn preloaded<R: Record>(
    State(cache): State<Cache<String, R>>,
    Path(id): Path<String>,
) -> Response {
    answer(cache.get(&id).await)
}

async fn preloaded_sync<R: Record>(
    State(cache): State<SyncCache<String, R>>,
    Path(id): Path<String>,
) -> Response {
    answer(cache.get(&id))
}

/// `BARE_FILL=miss`: the cache, filled from Redis on a miss.
struct ReadThrough<R> {
    cache: Cache<String, R>,
    redis: redis::aio::MultiplexedConnection,
    prefix: &'static str,
}

impl<R> Clone for ReadThrough<R> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            redis: self.redis.clone(),
            prefix: self.prefix,
        }
    }
}

async fn read_through<R: Record>(
    State(state): State<ReadThrough<R>>,
    Path(id): Path<String>,
) -> Response {
    if let Some(record) = state.cache.get(&id).await {
        return answer(Some(record));
    }
    let mut redis = state.redis.clone();
    let found: Option<Vec<u8>> = redis::cmd("GET")
        .arg(format!("{}{id}", state.prefix))
        .query_async(&mut redis)
        .await
        .unwrap_or(None);
    let record = found.map(R::new);
    if let Some(record) = &record {
        state.cache.insert(id, record.clone()).await;
    }
    answer(record)
}

fn answer<R: Record>(record: Option<R>) -> Response {
    match record {
        Some(record) => record.answer(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// An entry's weight in bytes: both caches are bounded by bytes, as
/// warmcache's L1 is.
fn weight_of<R: Record>(id: &str, record: &R) -> u32 {
    u32::try_from(id.len() + record.weight()).unwrap_or(u32::MAX)
}

/// The caches' bound: far more than the records, so nothing is evicted.
const MAX_BYTES: u64 = 256 << 20;

async fn serve<R: Record>(
    mut redis: redis::aio::MultiplexedConnection,
    prefix: &'static str,
    route: &'static str,
) -> Result<(), Box<dyn std::error::Error>> {
    let read_through_fill = std::env::var("BARE_FILL").is_ok_and(|f| f == "miss");
    let pattern = if read_through_fill {
        // Nothing to load: a miss reads Redis.
        "bare-loads-nothing:".to_owned()
    } else {
        format!("{prefix}*")
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut redis)
        .await?;
    let cache: Cache<String, R> = Cache::builder()
        .max_capacity(MAX_BYTES)
        .weigher(|id: &String, record: &R| weight_of(id, record))
        .build();
    for key in &keys {
        let json: Vec<u8> = redis::cmd("GET").arg(key).query_async(&mut redis).await?;
        cache
            .insert(key[prefix.len()..].to_owned(), R::new(json))
            .await;
    }
    let listen: SocketAddr = std::env::var("BARE_LISTEN")
        .unwrap_or_else(|_| "127.0.0.1:0".to_owned())
        .parse()?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("loaded {} records", keys.len());
    eprintln!("listening on http://{}", listener.local_addr()?);
    let app = if read_through_fill {
        let state = ReadThrough {
            cache,
            redis,
            prefix,
        };
        Router::new()
            .route(route, get(read_through::<R>))
            .with_state(state)
    } else if std::env::var("BARE_CACHE").is_ok_and(|c| c == "sync") {
        let sync: SyncCache<String, R> = SyncCache::builder()
            .max_capacity(MAX_BYTES)
            .weigher(|id: &String, record: &R| weight_of(id, record))
            .build();
        for (id, record) in cache.iter() {
            sync.insert((*id).clone(), record);
        }
        Router::new()
            .route(route, get(preloaded_sync::<R>))
            .with_state(sync)
    } else {
        Router::new()
            .route(route, get(preloaded::<R>))
            .with_state(cache)
    };
    axum::serve(listener, app).await?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let port: u16 = std::env::var("REDIS_PORT")?.parse()?;
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
        let redis = client.get_multiplexed_async_connection().await?;
        if std::env::var("BARE_RECORDS").is_ok_and(|r| r == "jobs") {
            serve::<Tagged>(redis, "reasoning_job:", "/jobs/{id}").await
        } else {
            serve::<Bytes>(redis, "age_verification:", "/age-verification/{id}").await
        }
    })
}
