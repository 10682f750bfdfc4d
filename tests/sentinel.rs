//! Sentinel mode (issue 13) against real servers ([`support::sentinel`]): a
//! primary, its replica and three `redis-sentinel` processes; two warmcache
//! instances and a foreign client (`redis-cli`) on the primary. Changes reach
//! both L1s; `SENTINEL FAILOVER` and a killed primary are followed by
//! themselves, no connection stays on the demoted primary, L1 is distrusted
//! until tracking runs on the new one, and an erasure made during the
//! failover stays final. The same over TLS and with passwords; and a switch
//! the sentinels never announce is found by a write's `READONLY` alone, or
//! with no write by the periodic `ROLE` check alone.
//!
//! Real sockets, so the real clock: waits are bounded polls that fail with a
//! message; recovery times are printed (reported, not asserted).

mod support;

use std::time::{Duration, Instant};

use support::age_record as record;
use support::instance::{
    GRACE, Instance, eventually, key, own_writes_and_erasure_reach, record_json,
};
use support::sentinel::{SentinelSet, cli};
use warmcache::bullmq::{BullmqConfig, BullmqJobs, FollowerOptions};
use warmcache::records::AgeVerification;
use warmcache::{RedisConfig, Tier, TieredCache};

/// warmcache's connections on the node `port` blocked in (or last running)
/// `XREAD`: the BullMQ events follower's.
fn xread_clients(set: &SentinelSet, port: u16) -> usize {
    set.warmcache_clients(port)
        .iter()
        .filter(|line| line.contains("cmd=xread"))
        .count()
}

/// The foreign writer's `SET key json EX 600` on the node `port` of `set`.
fn foreign_set(set: &SentinelSet, port: u16, id: &str, method: &str) {
    let reply = set.node_cli(
        port,
        &["SET", &key(id), &record_json(id, method), "EX", "600"],
    );
    assert_eq!(reply, "OK");
}

/// Writes `id` through `ages` until a write lands on the new primary, as
/// `get` (a `GET` of the key there) reads it back (call once the new primary
/// is chosen, so no replication from the old one can bring it); returns how
/// long it took from `since`.
async fn first_write_on(
    ages: &TieredCache<AgeVerification>,
    get: impl Fn(&str) -> String,
    id: &str,
    since: Instant,
) -> Duration {
    let mut n = 0_u32;
    eventually("a write to reach the new primary", || {
        n += 1;
        let method = format!("after-{n}");
        let get = &get;
        async move {
            ages.insert(id, record(id, &method)).await.is_ok() && get(&key(id)).contains(&method)
        }
    })
    .await;
    since.elapsed()
}

/// The lease's promise: once `GRACE` has passed since changes were
/// acknowledged, no read of `ids` on either instance returns `old`.
async fn nothing_stale_after_grace(instances: [&Instance; 2], ids: &[String], old: &str) {
    tokio::time::sleep(GRACE).await;
    for instance in instances {
        for id in ids {
            if let Ok(Some(found)) = instance.ages.get(id).await {
                assert_ne!(
                    found.value().method.as_deref(),
                    Some(old),
                    "{id}: {old} served from {:?} past the grace",
                    found.tier()
                );
            }
        }
    }
}

/// Whether the node on `port` answers `ROLE` as a replica. Polled without
/// `cli`, which panics: a demoted or restarted node may reset connections
/// while it resyncs or loads.
fn is_replica(port: u16) -> bool {
    std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "ROLE"])
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"slave"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_the_primary_reach_both_l1s() {
    let set = SentinelSet::start();
    let primary = set.primary();
    let mut waiting = set.config();
    waiting.erasure_replicas = 1;
    waiting.erasure_wait = Duration::from_secs(2);
    let (a, b) = (
        Instance::start(&waiting).await,
        Instance::start(&set.config()).await,
    );
    let ids: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
    for id in &ids {
        foreign_set(&set, primary, id, "v1");
    }
    for instance in [&a, &b] {
        for id in &ids {
            instance.cached(id, "v1").await;
        }
    }
    for id in &ids {
        foreign_set(&set, primary, id, "v2");
    }
    nothing_stale_after_grace([&a, &b], &ids, "v1").await;
    for instance in [&a, &b] {
        for id in &ids {
            instance.reads(id, Some("v2")).await;
            instance.cached(id, "v2").await;
        }
    }
    for id in &ids {
        assert_eq!(cli(primary, &["DEL", &key(id)]), "1");
    }
    nothing_stale_after_grace([&a, &b], &ids, "v2").await;
    for instance in [&a, &b] {
        for id in &ids {
            instance.reads(id, None).await;
        }
    }

    // warmcache's own writes and erasures reach the other instance too.
    let erased = own_writes_and_erasure_reach(&a, &b, &ids).await;
    assert_eq!(cli(primary, &["EXISTS", &key(erased)]), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_moves_every_connection_and_serves_nothing_stale() {
    let set = SentinelSet::start();
    let old = set.primary();
    let (a, b) = (
        Instance::start(&set.config()).await,
        Instance::start(&set.config()).await,
    );
    // A's BullMQ events follower blocks in XREAD on a connection of its own.
    let jobs = BullmqJobs::new(
        &a.redis,
        BullmqConfig::new("reasoning").expect("valid queue"),
        Duration::from_secs(60),
    );
    let follower = jobs.start_follower(FollowerOptions::default());
    let (id, probe) = ("handover", "probe");
    foreign_set(&set, old, id, "v1");
    a.cached(id, "v1").await;
    b.cached(id, "v1").await;
    assert!(
        !set.warmcache_clients(old).is_empty(),
        "the instances are connected to the primary"
    );
    eventually("the events follower to read on the primary", || async {
        xread_clients(&set, old) == 1
    })
    .await;

    let started = Instant::now();
    set.failover();
    let new = set.wait_switched_from(old);
    let switched = started.elapsed();
    let writes = {
        let ages = a.ages.clone();
        tokio::spawn(async move {
            first_write_on(&ages, |k| cli(new, &["GET", k]), probe, started).await
        })
    };
    // A change on the new primary right after the switch: the old primary
    // never sees it, so an L1 still trusted on its tracking would serve v1.
    foreign_set(&set, new, id, "v2");
    let changed = Instant::now();
    let mut l1_reads = 0;
    while changed.elapsed() < Duration::from_secs(2) {
        for instance in [&a, &b] {
            if let Ok(Some(got)) = instance.ages.get(id).await {
                let method = got.value().method.as_deref();
                assert!(
                    !(got.tier() == Tier::L1 && method == Some("v1")),
                    "v1 served from L1 {} ms after v2 was written on the new primary",
                    changed.elapsed().as_millis()
                );
                l1_reads += u32::from(got.tier() == Tier::L1);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        l1_reads > 0,
        "L1 is trusted again once tracking runs on {new}"
    );
    let took = writes.await.expect("writer");
    println!(
        "sentinel failover: SENTINEL FAILOVER to the sentinels' switch {} ms, to first write on the new primary {} ms",
        switched.as_millis(),
        took.as_millis()
    );

    // Both instances follow the new primary's changes from L1.
    for instance in [&a, &b] {
        instance.cached(id, "v2").await;
    }
    assert_eq!(cli(new, &["DEL", &key(id)]), "1");
    a.reads(id, None).await;
    b.reads(id, None).await;

    // Nothing of ours stays on the demoted primary (now a replica), the
    // events follower's XREAD included: it reads on the new primary.
    eventually("no warmcache connection on the demoted primary", || async {
        set.warmcache_clients(old).is_empty()
    })
    .await;
    eventually("the events follower to read on the new primary", || async {
        xread_clients(&set, new) == 1
    })
    .await;
    assert!(follower.connects() >= 2, "the follower reconnected");
    eventually(
        "the sentinels to make the old primary a replica",
        || async { is_replica(old) },
    )
    .await;
    a.ages.insert(id, record(id, "v3")).await.expect("insert");
    assert!(cli(new, &["GET", &key(id)]).contains("v3"));
    assert!(
        set.warmcache_clients(old).is_empty(),
        "{:?}",
        set.warmcache_clients(old)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_is_replaced_and_nothing_erased_comes_back() {
    let mut set = SentinelSet::start();
    let old = set.primary();
    let (a, b) = (
        Instance::start(&set.config()).await,
        Instance::start(&set.config()).await,
    );
    let (id, erased) = ("survivor", "erased");
    for i in [id, erased] {
        a.ages.insert(i, record(i, "before")).await.expect("insert");
        b.cached(i, "before").await;
    }
    set.wait_replicas_in_sync();

    let killed_at = Instant::now();
    set.kill(old);
    // The erasure is retried until a primary takes it (the promoted replica).
    eventually("the erasure to be taken", || async {
        a.ages.erase(erased).await.is_ok()
    })
    .await;
    let new = set.wait_switched_from(old);
    let switched = killed_at.elapsed();
    let took = first_write_on(&a.ages, |k| cli(new, &["GET", k]), id, killed_at).await;
    println!(
        "sentinel failover: kill to the sentinels' switch {} ms, to first write on the new primary {} ms",
        switched.as_millis(),
        took.as_millis()
    );

    // The old primary comes back empty; the sentinels make it a replica of
    // the new one. The erasure is final everywhere, also against a loader
    // that still has the old value.
    set.node(old).restart();
    eventually("the old primary to rejoin as a replica", || async {
        is_replica(old)
    })
    .await;
    set.wait_replicas_in_sync();
    assert_eq!(cli(new, &["EXISTS", &key(erased)]), "0");
    for instance in [&a, &b] {
        instance.reads(erased, None).await;
        let loaded = instance
            .ages
            .get_or_load(erased, |_| async {
                Ok::<_, std::io::Error>(record(erased, "before"))
            })
            .await
            .expect("loader answers");
        assert_eq!(loaded.tier(), Tier::Loader);
    }
    assert_eq!(cli(new, &["EXISTS", &key(erased)]), "0", "not written back");

    // Invalidations come from the new primary: both L1s follow it.
    foreign_set(&set, new, id, "foreign");
    a.reads(id, Some("foreign")).await;
    b.reads(id, Some("foreign")).await;
    a.cached(id, "foreign").await;
    b.cached(id, "foreign").await;
    assert_eq!(cli(new, &["DEL", &key(id)]), "1");
    a.reads(id, None).await;
    b.reads(id, None).await;
    assert!(
        set.warmcache_clients(old).is_empty(),
        "{:?}",
        set.warmcache_clients(old)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reachable_sentinel_is_a_bounded_connection_error() {
    let mut config = warmcache::RedisConfig::local_sentinel(
        &[support::free_port(), support::free_port()],
        "mymaster",
    );
    config.op_timeout = Duration::from_millis(200);
    config.connect_timeout = Duration::from_millis(200);
    let redis = warmcache::RedisHandle::connect_lazy(&config).expect("valid settings");
    let started = Instant::now();
    let error = redis.ping().await.expect_err("no primary");
    assert!(
        matches!(error, warmcache::L2Error::Connection(_)),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "bounded");
    assert_eq!(redis.endpoint(), "sentinel:mymaster");

    config.sentinels.clear();
    assert!(warmcache::RedisHandle::connect_lazy(&config).is_err());
}

/// Two instances on `config` cache ids a foreign client wrote on the
/// primary; after a `SENTINEL FAILOVER` a write of theirs reaches the new
/// primary, and a foreign change there reaches both L1s. `tag` prefixes the ids.
async fn two_instances_follow_a_failover(set: &SentinelSet, config: &RedisConfig, tag: &str) {
    let (a, b) = (Instance::start(config).await, Instance::start(config).await);
    let primary = set.primary();
    let ids: Vec<String> = (0..3).map(|i| format!("{tag}{i}")).collect();
    for id in &ids {
        foreign_set(set, primary, id, "v1");
    }
    for instance in [&a, &b] {
        for id in &ids {
            instance.cached(id, "v1").await;
        }
    }

    set.failover();
    let new = set.wait_switched_from(primary);
    let read_back = |k: &str| set.node_cli(new, &["GET", k]);
    first_write_on(&a.ages, read_back, &ids[0], Instant::now()).await;
    foreign_set(set, new, &ids[1], "v2");
    for instance in [&a, &b] {
        instance.reads(&ids[1], Some("v2")).await;
        instance.cached(&ids[1], "v2").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_passwords_each_side_gets_its_own_and_a_failover_is_followed() {
    let (data, sentinel) = ("data-secret", "sentinel-secret");
    let set = SentinelSet::start_with_passwords(Some(data), Some(sentinel));
    let mut config = set.config();
    config.password = Some(warmcache::Secret::new(data));
    config.sentinel_password = Some(warmcache::Secret::new(sentinel));
    two_instances_follow_a_failover(&set, &config, "pw").await;

    // The wrong sentinel password: a bounded error that does not show it.
    let mut wrong = set.config();
    wrong.password = Some(warmcache::Secret::new(data));
    wrong.sentinel_password = Some(warmcache::Secret::new("not-the-password"));
    let redis = warmcache::RedisHandle::connect_lazy(&wrong).expect("valid settings");
    let started = Instant::now();
    let error = redis.ping().await.expect_err("no sentinel lets us in");
    assert!(started.elapsed() < Duration::from_secs(3), "bounded");
    let shown = format!("{error} {error:?}");
    assert!(
        !shown.contains("not-the-password") && !shown.contains(data),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_changes_reach_both_l1s_and_a_failover_is_followed() {
    let set = SentinelSet::start_tls();
    let config = set.config();
    two_instances_follow_a_failover(&set, &config, "tls").await;

    // Plain TCP to TLS-only sentinels: a bounded connection error.
    let mut plain = set.config();
    plain.use_tls = false;
    let redis = warmcache::RedisHandle::connect_lazy(&plain).expect("valid settings");
    let started = Instant::now();
    let error = redis
        .ping()
        .await
        .expect_err("no sentinel speaks plain TCP");
    assert!(
        matches!(error, warmcache::L2Error::Connection(_)),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3), "bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_meets_readonly_finds_the_new_primary_unannounced() {
    let set = SentinelSet::start();
    let mut config = set.config();
    // Only a write's READONLY can tell: the switch is not announced, and the
    // periodic ROLE check does not come within the test.
    config.sentinel_role_check = Duration::from_secs(3600);
    let a = Instance::start(&config).await;
    let ids: Vec<String> = (0..3).map(|i| format!("ro{i}")).collect();
    for id in &ids {
        foreign_set(&set, set.primary(), id, "v1");
        a.cached(id, "v1").await;
    }

    let (old, new) = set.switch_unannounced();
    assert_eq!(set.wait_switched_from(old), new);
    let since = Instant::now();
    let took = first_write_on(&a.ages, |k| cli(new, &["GET", k]), &ids[0], since).await;
    println!("unannounced switch: first write on the new primary after {took:?}");
    eventually("no warmcache connection on the demoted primary", || async {
        set.warmcache_clients(old).is_empty()
    })
    .await;
    foreign_set(&set, new, &ids[1], "v2");
    a.reads(&ids[1], Some("v2")).await;
    a.cached(&ids[1], "v2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_check_alone_finds_an_unannounced_new_primary() {
    let set = SentinelSet::start();
    let mut config = set.config();
    config.sentinel_role_check = Duration::from_millis(200);
    let a = Instance::start(&config).await;
    let id = "role0";
    foreign_set(&set, set.primary(), id, "v1");
    a.cached(id, "v1").await;

    // No write, no +switch-master, no client killed: only the periodic
    // ROLE check can tell that the primary is now a replica.
    let (old, new) = set.switch_unannounced();
    eventually("no warmcache connection on the demoted primary", || async {
        set.warmcache_clients(old).is_empty()
    })
    .await;
    foreign_set(&set, new, id, "v2");
    a.reads(id, Some("v2")).await;
    a.cached(id, "v2").await;
}
