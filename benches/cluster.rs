//! Cluster mode against a real 3 + 3 Redis Cluster on loopback (the test
//! support's [`support::cluster::RedisCluster`]), `cargo bench --bench cluster`:
//!
//! - an L2 hit of a keyed cache (`get_from_l2`: GET through the cluster
//!   connection, decode) against a bare redis-rs cluster `GET` of the same
//!   key, timed by criterion in the same run;
//! - a foreign `DEL` to the L1 copy gone on another instance, per primary
//!   (1,000 changes each; p50, p99, max printed).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use criterion::Criterion;
use redis::AsyncCommands;
use support::cluster::RedisCluster;
use warmcache::records::{AGE_VERIFICATION, AgeVerification};
use warmcache::{InvalidationMode, InvalidationOptions, RedisHandle, TieredCache};

const CHANGES: usize = 1_000;
/// Blocks of the alternating comparison, and reads per block.
const ROUNDS: usize = 20;
const BLOCK: u32 = 2_000;

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
    let cluster = RedisCluster::start();
    let (cache, listener, mut bare) = runtime.block_on(async {
        let mut config = cluster.config();
        config.op_timeout = Duration::from_secs(2);
        let redis = RedisHandle::connect_lazy(&config).expect("settings");
        let cache: TieredCache<AgeVerification> = TieredCache::builder(AGE_VERIFICATION)
            .redis(redis.clone())
            .build()
            .expect("cache");
        let listener = redis.start_invalidation(InvalidationOptions::default());
        let start = Instant::now();
        while !(listener.mode() == InvalidationMode::Tracking && listener.l1_trusted()) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "tracking did not start"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let seeds: Vec<String> = cluster
            .live_ports()
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect();
        let bare = redis::cluster::ClusterClient::new(seeds)
            .expect("cluster client")
            .get_async_connection()
            .await
            .expect("bare cluster connection");
        (cache, listener, bare)
    });

    let id = "bench1";
    let key = format!("age_verification:{id}");
    runtime.block_on(async {
        cache.insert(id, record(id)).await.expect("insert");
    });
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = criterion.benchmark_group("cluster_l2_hit");
    group.bench_function("bare redis-rs cluster GET", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let value: Option<Vec<u8>> = bare.get(&key).await.expect("get");
                    std::hint::black_box(value);
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("warmcache get_from_l2", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let hit = cache.get_from_l2(id).await.expect("get");
                    std::hint::black_box(hit);
                }
                start.elapsed()
            })
        });
    });
    group.finish();

    // The machine is shared: alternate the two sides in blocks, and report
    // the median of the per-block ratios next to each side's median.
    runtime.block_on(async {
        let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let (mut time_bare, mut time_ours) = (Duration::ZERO, Duration::ZERO);
            for side in [round % 2, 1 - round % 2] {
                let start = Instant::now();
                for _ in 0..BLOCK {
                    if side == 0 {
                        let value: Option<Vec<u8>> = bare.get(&key).await.expect("get");
                        std::hint::black_box(value);
                    } else {
                        std::hint::black_box(cache.get_from_l2(id).await.expect("get"));
                    }
                }
                *(if side == 0 { &mut time_bare } else { &mut time_ours }) = start.elapsed();
            }
            theirs.push(time_bare / BLOCK);
            ours.push(time_ours / BLOCK);
            ratios.push(time_ours.as_secs_f64() / time_bare.as_secs_f64());
        }
        theirs.sort_unstable();
        ours.sort_unstable();
        ratios.sort_by(f64::total_cmp);
        println!(
            "alternating blocks ({ROUNDS} x {BLOCK}): bare cluster GET median {:.1} µs, get_from_l2 median {:.1} µs, median ratio {:.2}",
            theirs[ROUNDS / 2].as_secs_f64() * 1e6,
            ours[ROUNDS / 2].as_secs_f64() * 1e6,
            ratios[ROUNDS / 2]
        );
    });

    runtime.block_on(async {
        println!("\nforeign DEL -> L1 gone, per primary ({CHANGES} changes each):");
        let json = serde_json::to_string(&record("x")).expect("json");
        for (i, (_, port, _)) in cluster.primaries().iter().enumerate() {
            let id = (0..)
                .map(|n| format!("d{n}"))
                .find(|id| cluster.primary_of(&format!("age_verification:{id}")) == *port)
                .expect("an id on this primary");
            let key = format!("age_verification:{id}");
            let mut latencies = Vec::with_capacity(CHANGES);
            for _ in 0..CHANGES {
                latencies.push(
                    support::latency::foreign_del_to_l1_gone(&cache, &mut bare, &id, &key, &json)
                        .await,
                );
            }
            report(&format!("primary {i}"), latencies);
        }
        listener.shutdown().await;
    });
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<12} n={:>5}  p50={:>8.1} µs  p99={:>8.1} µs  max={:>8.1} µs",
        samples.len(),
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
    );
}

fn record(id: &str) -> AgeVerification {
    support::age_record(id, "id_document")
}
