//! warmcache in a plain tokio worker, with no HTTP at all: a background
//! refresher keeps the snapshot fresh, and each job the worker takes reads
//! it (one lock-free load) and checks a customer's age verification through
//! a [`TieredCache`] whose loader is the source of truth (here a fake
//! database).
//!
//! It needs only the core (`default-features = false`). Without Redis the
//! cache is L1 only; with `REDIS_PORT` set it uses the Redis on
//! `127.0.0.1:$REDIS_PORT` as L2, kept coherent by the invalidation
//! listener, exactly as the service does.
//!
//! `cargo run --example worker` processes 200 jobs and exits, printing what
//! it did and the cache's counters:
//! `REDIS_PORT=6379 cargo run --example worker` does the same over Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use warmcache::records::{AGE_VERIFICATION, AgeVerification};
use warmcache::{
    CacheId, InvalidationOptions, MockSource, Mode, RedisConfig, RedisHandle, Refresher,
    SnapshotCache, TieredCache,
};

/// One unit of the worker's work: an order placed by a customer.
struct Job {
    order: u64,
    customer: String,
}

/// The source of truth behind the cache (a database in real life); it
/// counts its reads so the example can show how few reach it.
#[derive(Default)]
struct Database {
    reads: AtomicU64,
}

impl Database {
    async fn age_verification(&self, id: &CacheId) -> Result<AgeVerification, std::io::Error> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(2)).await; // a query's round trip
        let verified = !id.as_str().ends_with('7');
        Ok(AgeVerification::new(id.as_str(), verified))
    }
}

/// Takes jobs until the channel closes; returns (accepted, refused).
async fn work(
    mut jobs: mpsc::Receiver<Job>,
    snapshots: SnapshotCache,
    ages: TieredCache<AgeVerification>,
    database: Arc<Database>,
) -> Result<(u64, u64), Box<dyn std::error::Error + Send + Sync>> {
    let (mut accepted, mut refused) = (0, 0);
    while let Some(job) = jobs.recv().await {
        let database = Arc::clone(&database);
        let age = ages
            .get_or_load(&job.customer, |id| async move {
                database.age_verification(&id).await
            })
            .await?;
        // The snapshot: a load, never a query; `None` until the first refresh.
        let snapshot = snapshots.load();
        let currency = snapshot
            .data
            .as_ref()
            .map_or("?", |s| s.dashboard.value().currency.as_str());
        if age.value().verified {
            accepted += 1;
        } else {
            refused += 1;
            if refused == 1 {
                println!(
                    "order {} refused: customer not verified ({:?} answered; prices in {currency})",
                    job.order,
                    age.tier()
                );
            }
        }
    }
    Ok((accepted, refused))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let snapshots = SnapshotCache::new(Mode::Mock);
    let refresher = Refresher::builder()
        .ttl(Duration::from_secs(1))
        .spawn(MockSource::new(7), snapshots.clone())?;
    refresher.refresh_now().await?;

    let mut builder = TieredCache::builder(AGE_VERIFICATION).l1_max_bytes(4 << 20);
    let mut listener = None;
    if let Ok(port) = std::env::var("REDIS_PORT") {
        let redis = RedisHandle::connect_lazy(&RedisConfig::local(port.parse()?))?;
        listener = Some(redis.start_invalidation(InvalidationOptions::default()));
        builder = builder.redis(redis);
    }
    let ages = builder.build()?;

    let database = Arc::new(Database::default());
    let (sender, receiver) = mpsc::channel(16);
    let worker = tokio::spawn(work(
        receiver,
        snapshots.clone(),
        ages.clone(),
        Arc::clone(&database),
    ));
    for order in 0..200u64 {
        let customer = format!("cust-{}", order % 20);
        sender.send(Job { order, customer }).await?;
    }
    drop(sender);
    let (accepted, refused) = worker.await??;

    let stats = ages.stats();
    println!(
        "{accepted} orders accepted, {refused} refused; database read {} times; \
         cache: {} L1 hits, {} L2 hits, {} loads",
        database.reads.load(Ordering::Relaxed),
        stats.l1_hits,
        stats.l2_hits,
        stats.loads
    );
    if let Some(listener) = listener {
        listener.shutdown().await;
    }
    refresher.shutdown().await;
    Ok(())
}
