//! How long a foreign `DEL` takes to end the L1 copy on another instance.
//!
//! A measurement program (`cargo bench --bench invalidation_latency`): it
//! starts its own redis-server on a free loopback port
//! (`warmcache::testing::RedisServer`), one warmcache
//! instance with its invalidation listener, and a plain client standing in
//! for a Node service. For each of 10,000 changes it warms the key into the
//! instance's L1, sends `DEL` from the plain client, and times from sending
//! the `DEL` until the instance no longer serves its L1 copy. The raw Redis
//! round trip (`PING` on the plain client) is measured in the same run.
//! Prints p50, p99 and max of both.
//!
//! Then the cost of an erasure (`TieredCache::erase`: DEL and tombstone in
//! one script) against a plain `DEL` on the same server, and, once a replica
//! has joined, of an erasure that waits for it (`WAIT 1`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use warmcache::records::{AGE_VERIFICATION, AgeVerification, OtherFields, RecordTime, TimeFormat};
use warmcache::testing::RedisServer;
use warmcache::{InvalidationMode, InvalidationOptions, RedisConfig, RedisHandle, TieredCache};

const CHANGES: usize = 10_000;
/// Erasures timed per variant.
const ERASURES: usize = 2_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    println!(
        "{name:<28} n={:>6}  p50={:>8.1} µs  p99={:>8.1} µs  max={:>8.1} µs",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
    );
}

fn record(id: &str) -> AgeVerification {
    AgeVerification {
        customer_id: id.to_owned(),
        verified: true,
        method: Some("id_document".to_owned()),
        verified_at: RecordTime::from_unix_ms(1_764_115_200_000, TimeFormat::Iso),
        date_of_birth: None,
        age_over: Some(18),
        other: OtherFields::new(),
    }
}

fn main() {
    // `cargo test --benches` runs bench targets with --bench absent: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(measure());
}

async fn measure() {
    // A replica joins later: the primary sends it the data at once.
    let server = RedisServer::start_with(&["--repl-diskless-sync-delay", "0"]);
    let port = server.port();
    let redis = RedisHandle::connect_lazy(&RedisConfig::local(port)).expect("settings");
    let ages: TieredCache<AgeVerification> = TieredCache::builder(AGE_VERIFICATION)
        .redis(redis.clone())
        .build()
        .expect("cache");
    let listener = redis.start_invalidation(InvalidationOptions::default());
    let start = Instant::now();
    while listener.mode() != InvalidationMode::Tracking {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "tracking did not start"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let mut node = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let json = serde_json::to_string(&record("c1")).expect("json");

    let mut round_trips = Vec::with_capacity(CHANGES);
    for _ in 0..CHANGES {
        let sent = Instant::now();
        let () = redis::cmd("PING")
            .query_async(&mut node)
            .await
            .expect("ping");
        round_trips.push(sent.elapsed());
    }

    let mut latencies = Vec::with_capacity(CHANGES);
    for i in 0..CHANGES {
        let id = format!("c{}", i % 100);
        let key = format!("age_verification:{id}");
        latencies.push(
            support::latency::foreign_del_to_l1_gone(&ages, &mut node, &id, &key, &json).await,
        );
    }

    println!("\ninvalidation latency on loopback ({CHANGES} changes each):");
    report("redis round trip (PING)", round_trips);
    report("foreign DEL -> L1 gone", latencies);
    listener.shutdown().await;

    println!("\ncost of an erasure ({ERASURES} each):");
    report(
        "plain DEL (bare client)",
        time_erasures(
            |key, _| {
                let mut node = node.clone();
                async move {
                    let () = node.del(&key).await.expect("del");
                }
            },
            &ages,
        )
        .await,
    );
    report(
        "erase, no WAIT",
        time_erasures(
            |_, id| {
                let ages = ages.clone();
                async move {
                    ages.erase(&id).await.expect("erased");
                }
            },
            &ages,
        )
        .await,
    );
    let port_text = port.to_string();
    let _replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port_text]);
    let synced = Instant::now();
    loop {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut node)
            .await
            .expect("info");
        if info.contains("connected_slaves:1") && info.contains("state=online") {
            break;
        }
        assert!(
            synced.elapsed() < Duration::from_secs(10),
            "replica did not sync"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut config = RedisConfig::local(port);
    config.erasure_replicas = 1;
    config.erasure_wait = Duration::from_secs(1);
    let waiting = RedisHandle::connect_lazy(&config).expect("settings");
    let replicated: TieredCache<AgeVerification> = TieredCache::builder(AGE_VERIFICATION)
        .redis(waiting)
        .build()
        .expect("cache");
    report(
        "erase, WAIT 1 replica",
        time_erasures(
            |_, id| {
                let replicated = replicated.clone();
                async move {
                    let erasure = replicated.erase(&id).await.expect("erased");
                    assert!(erasure.is_replicated(), "the replica confirmed");
                }
            },
            &replicated,
        )
        .await,
    );
}

/// Times `erase(key, id)` on records `insert`ed first (untimed).
async fn time_erasures<F, Fut>(erase: F, ages: &TieredCache<AgeVerification>) -> Vec<Duration>
where
    F: Fn(String, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(ERASURES);
    for i in 0..ERASURES {
        let id = format!("e{}", i % 100);
        ages.insert(&id, record(&id)).await.expect("stored");
        let sent = Instant::now();
        erase(format!("age_verification:{id}"), id).await;
        samples.push(sent.elapsed());
    }
    samples
}
