//! Reading through the [`TieredCache`] against bare moka and bare redis-rs.
//!
//! One run measures two pairs, each reading 100,000 distinct ids in turn
//! (one id per iteration, cycling through them in a fixed shuffled order, the
//! same on every side), all on one tokio current-thread runtime:
//!
//! * `l1_hit/warmcache`: `TieredCache::get(id)` answered from L1, against
//!   `l1_hit/moka_bare`: `moka::future::Cache<String, Arc<V>>::get(&id)` on
//!   a bare cache holding the same 100,000 keys. Goal: within 1.2x. The
//!   invalidation listener runs (on a runtime of its own), so every hit
//!   checks a live lease, as in production.
//! * `l2_hit/warmcache`: `TieredCache::get_from_l2(id)` (`GET` and `PTTL`
//!   pipelined, breaker, timeout, JSON decode; L1 neither used nor filled),
//!   against `l2_hit/redis_bare`: a bare `GET` of the same key on the same
//!   `ConnectionManager`. Goal: within 1.15x.
//!
//! The `*_parts` groups time the pieces in between, to show where any
//! overhead comes from:
//!
//! * `l1_parts/moka_like_l1`: a moka cache built like warmcache's L1
//!   (moka's synchronous cache, keyed by `CacheId`, byte weigher, per-entry
//!   expiry, entry of `Arc<V>`, JSON `Bytes` and deadline), read with an
//!   already parsed id. The bare side stays moka's async cache, which is
//!   what moka offers async code and what a bare server would use.
//! * `l1_parts/moka_like_l1_full`: the same plus what an L1 hit adds
//!   around moka (id check, deadline check, copies of value and JSON),
//!   without the invalidation stripes, the hub check and the counter.
//! * `l1_parts/cache_id_parse`, `l1_parts/tokio_instant_now`: the id check
//!   and the clock read that `get` adds on an L1 hit.
//! * `l2_parts/redis_pipe_get_pttl`: the bare pipeline warmcache sends.
//! * `l2_parts/redis_get_decode`: a bare `GET` plus the JSON decode.
//! * `l2_parts/decode_only`: the decode alone.
//! * interleaved `like_get_from_l2`: what `get_from_l2` does, but on the
//!   bare connection (no `RedisHandle`: no breaker, timeout, stripes).
//! * `l2_parts/handle_ping` vs `l2_parts/redis_ping`: `PING` through
//!   `RedisHandle` (breaker, timeout, connection clone) vs bare.
//!
//! After the criterion groups, `interleaved ...` lines on stderr compare
//! pairs again in alternating blocks, so that a machine whose load drifts
//! between two criterion benchmarks cannot skew their ratio.
//!
//! Async code is timed with `iter_custom`: one `block_on` per criterion
//! sample wraps the whole timing loop (what criterion's `to_async(..).iter`
//! does), so the runtime costs nothing per iteration and the same on every
//! side. The bench starts its own `redis-server` on a free loopback port
//! (`warmcache::testing::RedisServer`)
//! (never 6379) and kills it at the end. Run with `cargo bench --bench tier`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use redis::AsyncCommands;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;
use warmcache::records::{AGE_VERIFICATION, AgeVerification};
use warmcache::testing::RedisServer;
use warmcache::{
    CacheId, InvalidationMode, InvalidationOptions, RedisConfig, RedisHandle, Tier, TieredCache,
};

#[path = "tier/support.rs"]
mod support;

use support::{LikeL1Entry, like_get_from_l2, like_l1_full, median, shuffled, verification};

/// Distinct ids read in turn, in every tier.
const KEYS: usize = 100_000;
/// Concurrent `insert`s while filling.
const FILL_BATCH: usize = 1_000;

/// Runs `$body` (which may `.await`) once per iteration, with `$i` the index
/// of the next id in `$order` (a fixed shuffle of 0..KEYS, cycled), timing
/// the whole loop inside one `block_on` per sample. The result is passed through `black_box` and
/// dropped inside the timed loop, on every side alike.
macro_rules! bench_cycle {
    ($group:expr, $name:expr, $rt:expr, $order:expr, |$i:ident| $body:expr) => {{
        let mut next = 0usize;
        $group.bench_function($name, |b| {
            b.iter_custom(|iters| {
                $rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let $i = $order[next];
                        let _ = black_box($body);
                        next = if next + 1 == KEYS { 0 } else { next + 1 };
                    }
                    start.elapsed()
                })
            })
        });
    }};
}

/// Cross-check of a pair, immune to drift on a busy machine: `$rounds`
/// rounds, each timing `$block` iterations of `$a` and of `$b` back to back
/// (the order alternating), one `block_on` for all. Prints the median
/// per-iteration time of each side and the median of the per-round ratios.
macro_rules! interleaved {
    (
        $label:expr, $rt:expr, $order:expr, $rounds:expr, $block:expr,
        |$i:ident| $a:expr, |$j:ident| $b:expr
    ) => {{
        let (mut next_a, mut next_b) = (0usize, 0usize);
        let (mut a_ns, mut b_ns, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        $rt.block_on(async {
            for round in 0..$rounds {
                let (mut time_a, mut time_b) = (Duration::ZERO, Duration::ZERO);
                for side in [round % 2, 1 - round % 2] {
                    let start = Instant::now();
                    if side == 0 {
                        for _ in 0..$block {
                            let $i = $order[next_a];
                            let _ = black_box($a);
                            next_a = if next_a + 1 == KEYS { 0 } else { next_a + 1 };
                        }
                        time_a = start.elapsed();
                    } else {
                        for _ in 0..$block {
                            let $j = $order[next_b];
                            let _ = black_box($b);
                            next_b = if next_b + 1 == KEYS { 0 } else { next_b + 1 };
                        }
                        time_b = start.elapsed();
                    }
                }
                a_ns.push(time_a.as_nanos() as f64 / $block as f64);
                b_ns.push(time_b.as_nanos() as f64 / $block as f64);
                ratios.push(time_a.as_secs_f64() / time_b.as_secs_f64());
            }
        });
        eprintln!(
            "interleaved {}: {:.1} ns vs {:.1} ns per read, ratio {:.3} (median of {} rounds of {})",
            $label,
            median(&mut a_ns),
            median(&mut b_ns),
            median(&mut ratios),
            $rounds,
            $block
        );
    }};
}

fn tier(c: &mut Criterion) {
    let server = RedisServer::start();
    let rt: Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");

    let ids: Vec<String> = (0..KEYS).map(|i| format!("cust-{i:06}")).collect();
    let order = shuffled(KEYS);
    let order = order.as_slice();
    let keys: Vec<String> = ids
        .iter()
        .map(|id| format!("{}:{id}", AGE_VERIFICATION.name))
        .collect();
    let parsed: Vec<CacheId> = ids
        .iter()
        .map(|id| CacheId::parse(id).expect("valid id"))
        .collect();

    // The invalidation listener, on a thread of its own: a hit checks its lease.
    let listener_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");

    // Setup: warmcache filled through `insert` (Redis and L1), a bare moka
    // and an L1-shaped moka with the same values.
    let (cache, redis, bare, like_l1, listener) = rt.block_on(async {
        let mut config = RedisConfig::local(server.port());
        // Generous, so a busy machine cannot turn a slow answer into an error
        // (the timeout's cost per call does not depend on its length).
        config.op_timeout = Duration::from_secs(2);
        config.connect_timeout = Duration::from_secs(2);
        let redis = RedisHandle::connect_lazy(&config).expect("valid redis settings");
        redis.ping().await.expect("the bench's redis answers");
        let cache: TieredCache<AgeVerification> = TieredCache::builder(AGE_VERIFICATION)
            .redis(redis.clone())
            .l1_max_bytes(256 * 1024 * 1024)
            .l1_ttl(Duration::from_secs(3600))
            .build()
            .expect("valid cache");
        let listener = {
            let _on_its_runtime = listener_rt.enter();
            redis.start_invalidation(InvalidationOptions {
                // Generous, so a busy machine cannot let the lease lapse.
                grace: Duration::from_secs(10),
                ..InvalidationOptions::default()
            })
        };
        while listener.mode() != InvalidationMode::Tracking {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        let bare: moka::future::Cache<String, Arc<AgeVerification>> =
            moka::future::Cache::builder()
                .max_capacity(KEYS as u64)
                .build();
        let like_l1: moka::sync::Cache<CacheId, LikeL1Entry> = moka::sync::Cache::builder()
            .max_capacity(256 * 1024 * 1024)
            .weigher(|id: &CacheId, entry: &LikeL1Entry| {
                let bytes = id.as_str().len() + 2 * entry.json.len() + 96;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            // As warmcache's L1: one TTL bounds memory; reads check the deadline.
            .time_to_live(Duration::from_secs(3600))
            .build();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3600);

        // All three caches are filled by the same concurrent tasks, each
        // with its own copies, so their entries are scattered in memory
        // alike (filled apart, the bare ones would sit in allocation order).
        for batch in ids.chunks(FILL_BATCH) {
            let mut set = JoinSet::new();
            for id in batch {
                let (cache, bare, like_l1) = (cache.clone(), bare.clone(), like_l1.clone());
                let id = id.clone();
                set.spawn(async move {
                    cache.insert(&id, verification(&id)).await?;
                    bare.insert(id.clone(), Arc::new(verification(&id))).await;
                    let value = verification(&id);
                    let json = Bytes::from(serde_json::to_vec(&value).expect("encodes"));
                    let entry = LikeL1Entry {
                        value: Arc::new(value),
                        json,
                        expires_at: deadline,
                    };
                    like_l1.insert(CacheId::parse(&id)?, entry);
                    Ok::<_, warmcache::CacheError>(())
                });
            }
            while let Some(done) = set.join_next().await {
                done.expect("fill task").expect("insert");
            }
        }
        // Concurrent inserts of ids that share an invalidation stripe leave
        // L1 empty for them (never stale): one read fills those from Redis.
        for id in &ids {
            cache.get(id).await.expect("get").expect("present");
        }
        for id in &ids {
            let hit = cache.get(id).await.expect("get").expect("present");
            assert_eq!(hit.tier(), Tier::L1, "{id} must be in L1");
        }
        bare.run_pending_tasks().await;
        like_l1.run_pending_tasks();
        assert_eq!(bare.entry_count(), KEYS as u64, "bare moka holds every key");
        assert_eq!(
            like_l1.entry_count(),
            KEYS as u64,
            "L1-shaped moka holds every key"
        );
        (cache, redis, bare, like_l1, listener)
    });
    let json_sample = rt
        .block_on(cache.get(&ids[0]))
        .expect("get")
        .expect("present")
        .json()
        .clone();
    eprintln!("value: {} bytes of JSON per key", json_sample.len());
    let jsons: Vec<Bytes> = ids
        .iter()
        .map(|id| Bytes::from(serde_json::to_vec(&verification(id)).expect("encodes")))
        .collect();
    let before = cache.stats();
    let mut conn = redis.connection().expect("standalone mode");
    let mut bare_misses = 0u64;

    // 1. L1 hits.
    let mut group = c.benchmark_group("l1_hit");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    bench_cycle!(group, "warmcache", rt, order, |i| cache.get(&ids[i]).await);
    bench_cycle!(group, "moka_bare", rt, order, |i| {
        let found = bare.get(ids[i].as_str()).await;
        bare_misses += u64::from(found.is_none());
        found
    });
    group.finish();
    interleaved!(
        "l1_hit warmcache/moka_bare",
        rt,
        order,
        100,
        10_000,
        |i| cache.get(&ids[i]).await,
        |j| {
            let found = bare.get(ids[j].as_str()).await;
            bare_misses += u64::from(found.is_none());
            found
        }
    );
    let after_l1 = cache.stats();

    let mut group = c.benchmark_group("l1_parts");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    bench_cycle!(group, "moka_like_l1", rt, order, |i| {
        // The entry as moka clones it out; hand back its value, as `get` does.
        let found = like_l1.get(&parsed[i]);
        bare_misses += u64::from(found.is_none());
        found.map(|entry| entry.value)
    });
    bench_cycle!(group, "moka_like_l1_full", rt, order, |i| {
        // What an L1 hit does around moka, minus the stripes, hub and counter.
        like_l1_full(&like_l1, &ids[i])
    });
    bench_cycle!(group, "cache_id_parse", rt, order, |i| CacheId::parse(
        &ids[i]
    ));
    bench_cycle!(group, "tokio_instant_now", rt, order, |i| (
        i,
        tokio::time::Instant::now()
    ));
    group.finish();
    interleaved!(
        "l1_parts warmcache/moka_like_l1_full",
        rt,
        order,
        100,
        10_000,
        |i| cache.get(&ids[i]).await,
        |j| like_l1_full(&like_l1, &ids[j])
    );

    // 2. L2 hits.
    let mut group = c.benchmark_group("l2_hit");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    bench_cycle!(group, "warmcache", rt, order, |i| cache
        .get_from_l2(&ids[i])
        .await);
    bench_cycle!(group, "redis_bare", rt, order, |i| {
        let found: redis::RedisResult<Option<Vec<u8>>> = conn.get(&keys[i]).await;
        bare_misses += u64::from(!matches!(found, Ok(Some(_))));
        found
    });
    group.finish();
    interleaved!(
        "l2_hit warmcache/redis_bare",
        rt,
        order,
        100,
        500,
        |i| cache.get_from_l2(&ids[i]).await,
        |j| {
            let found: redis::RedisResult<Option<Vec<u8>>> = conn.get(&keys[j]).await;
            bare_misses += u64::from(!matches!(found, Ok(Some(_))));
            found
        }
    );
    let mut group = c.benchmark_group("l2_parts");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    bench_cycle!(group, "redis_pipe_get_pttl", rt, order, |i| {
        let found: redis::RedisResult<(Option<Vec<u8>>, i64)> = redis::pipe()
            .get(&keys[i])
            .pttl(&keys[i])
            .query_async(&mut conn)
            .await;
        bare_misses += u64::from(!matches!(found, Ok((Some(_), _))));
        found
    });
    bench_cycle!(group, "redis_get_decode", rt, order, |i| {
        let found: redis::RedisResult<Option<Vec<u8>>> = conn.get(&keys[i]).await;
        match found {
            Ok(Some(json)) => serde_json::from_slice::<AgeVerification>(&json).ok(),
            _ => {
                bare_misses += 1;
                None
            }
        }
    });
    bench_cycle!(group, "decode_only", rt, order, |i| {
        serde_json::from_slice::<AgeVerification>(&jsons[i]).ok()
    });
    bench_cycle!(group, "handle_ping", rt, order, |_i| {
        let pong = redis.ping().await;
        bare_misses += u64::from(pong.is_err());
        pong
    });
    bench_cycle!(group, "redis_ping", rt, order, |_i| {
        let pong = redis::cmd("PING").query_async::<()>(&mut conn).await;
        bare_misses += u64::from(pong.is_err());
        pong
    });
    group.finish();
    interleaved!(
        "l2_parts pipe_get_pttl/redis_bare",
        rt,
        order,
        100,
        500,
        |i| {
            let found: redis::RedisResult<(Option<Vec<u8>>, i64)> = redis::pipe()
                .get(&keys[i])
                .pttl(&keys[i])
                .query_async(&mut conn)
                .await;
            bare_misses += u64::from(!matches!(found, Ok((Some(_), _))));
            found
        },
        |j| {
            let found: redis::RedisResult<Option<Vec<u8>>> = conn.get(&keys[j]).await;
            bare_misses += u64::from(!matches!(found, Ok(Some(_))));
            found
        }
    );

    interleaved!(
        "l2_parts warmcache/pipe_get_pttl",
        rt,
        order,
        100,
        500,
        |i| cache.get_from_l2(&ids[i]).await,
        |j| {
            let found: redis::RedisResult<(Option<Vec<u8>>, i64)> = redis::pipe()
                .get(&keys[j])
                .pttl(&keys[j])
                .query_async(&mut conn)
                .await;
            bare_misses += u64::from(!matches!(found, Ok((Some(_), _))));
            found
        }
    );
    interleaved!(
        "l2_parts handle_ping/redis_ping",
        rt,
        order,
        100,
        500,
        |_i| {
            let pong = redis.ping().await;
            bare_misses += u64::from(pong.is_err());
            pong
        },
        |_j| {
            let pong = redis::cmd("PING").query_async::<()>(&mut conn).await;
            bare_misses += u64::from(pong.is_err());
            pong
        }
    );

    interleaved!(
        "l2_parts warmcache/like_get_from_l2",
        rt,
        order,
        100,
        500,
        |i| cache.get_from_l2(&ids[i]).await,
        |j| {
            let found = like_get_from_l2(&mut conn, &ids[j]).await;
            bare_misses += u64::from(found.is_none());
            found
        }
    );
    interleaved!(
        "l2_parts like_get_from_l2/pipe_get_pttl",
        rt,
        order,
        100,
        500,
        |i| {
            let found = like_get_from_l2(&mut conn, &ids[i]).await;
            bare_misses += u64::from(found.is_none());
            found
        },
        |j| {
            let found: redis::RedisResult<(Option<Vec<u8>>, i64)> = redis::pipe()
                .get(&keys[j])
                .pttl(&keys[j])
                .query_async(&mut conn)
                .await;
            bare_misses += u64::from(!matches!(found, Ok((Some(_), _))));
            found
        }
    );

    let after = cache.stats();
    eprintln!("warmcache stats before: {before:?}");
    eprintln!("warmcache stats after l1_hit: {after_l1:?}");
    eprintln!("warmcache stats at the end: {after:?}");
    assert_eq!(
        (after_l1.l2_hits, after_l1.misses, after_l1.l2_errors),
        (before.l2_hits, before.misses, before.l2_errors),
        "l1_hit/warmcache must be answered by L1 alone"
    );
    assert_eq!(
        (after.misses, after.l2_errors, after.corrupt_values),
        (before.misses, before.l2_errors, before.corrupt_values),
        "every warmcache read must hit"
    );
    assert_eq!(bare_misses, 0, "every bare read must hit");
    drop((cache, redis, conn, listener));
    drop(listener_rt);
    drop(rt);
    drop(server);
}

criterion_group!(benches, tier);
criterion_main!(benches);
