//! Redis Cluster mode (issue 13) against a real cluster of 3 primaries and
//! 3 replicas ([`support::cluster`]): two warmcache instances and a foreign
//! client (`redis-cli -c`). Changes on every primary reach both L1s; a
//! killed primary is replaced and reads, writes and invalidations recover by
//! themselves; an erasure made during the failover stays final; a migrated
//! slot serves no stale read; own writes go to their primary's tracking
//! connection and stay cached; a stalled primary's breaker is its own.
//!
//! Real sockets, so the real clock: waits are bounded polls that fail with a
//! message; the recovery time is printed (it is reported, not asserted).

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::cluster::{RedisCluster, cli};
use support::instance::{Instance, eventually, key, own_writes_and_erasure_reach};
use warmcache::records::AgeVerification;
use warmcache::{InvalidationOptions, Tier};

fn record(customer: &str, method: &str) -> AgeVerification {
    support::age_record(customer, method)
}

/// The foreign writer's `SET key json EX 600`.
fn foreign_set(cluster: &RedisCluster, id: &str, method: &str) {
    let json = serde_json::to_string(&record(id, method)).expect("json");
    let reply = cluster.foreign(&["SET", &key(id), &json, "EX", "600"]);
    assert_eq!(reply, "OK");
}

/// An id whose key lives on the primary `port`.
fn id_on(cluster: &RedisCluster, port: u16, tag: &str) -> String {
    (0..)
        .map(|i| format!("{tag}{i}"))
        .find(|id| cluster.primary_of(&key(id)) == port)
        .expect("some id lands there")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_every_primary_reach_both_l1s() {
    let cluster = RedisCluster::start();
    // A's erasures wait for the replica of the key's primary.
    let mut waiting = cluster.config();
    waiting.erasure_replicas = 1;
    waiting.erasure_wait = Duration::from_secs(2);
    let (a, b) = (
        Instance::start(&waiting).await,
        Instance::start(&cluster.config()).await,
    );
    let ids: Vec<String> = (0..12).map(|i| format!("c{i}")).collect();
    let owners: BTreeSet<u16> = ids.iter().map(|id| cluster.primary_of(&key(id))).collect();
    assert_eq!(owners.len(), 3, "the keys spread over the three primaries");

    for id in &ids {
        foreign_set(&cluster, id, "v1");
    }
    for instance in [&a, &b] {
        for id in &ids {
            instance.cached(id, "v1").await;
        }
    }
    for id in &ids {
        foreign_set(&cluster, id, "v2");
    }
    for instance in [&a, &b] {
        for id in &ids {
            instance.reads(id, Some("v2")).await;
        }
    }
    for id in &ids {
        assert_eq!(cluster.foreign(&["DEL", &key(id)]), "1");
    }
    for instance in [&a, &b] {
        for id in &ids {
            instance.reads(id, None).await;
        }
    }

    // warmcache's own writes and erasures, on any primary, reach the other.
    let erased = own_writes_and_erasure_reach(&a, &b, &ids).await;
    let tombstone = format!("warmcache:erased:{{{}}}", key(erased));
    assert_eq!(cluster.slot(&tombstone), cluster.slot(&key(erased)));
    assert_eq!(cluster.foreign(&["EXISTS", &tombstone]), "1");
    assert_eq!(cluster.foreign(&["EXISTS", &key(erased)]), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_writes_on_every_primary_stay_cached() {
    let cluster = RedisCluster::start();
    let a = Instance::start(&cluster.config()).await;
    let primaries = cluster.primary_ports();
    let mine: Vec<String> = primaries
        .iter()
        .map(|port| id_on(&cluster, *port, "mine"))
        .collect();
    for id in &mine {
        a.ages.insert(id, record(id, "mine")).await.expect("insert");
    }
    // A foreign write after ours on each primary: on that primary's
    // tracking connection its push comes after any push of ours.
    for port in &primaries {
        foreign_set(&cluster, &id_on(&cluster, *port, "theirs"), "x");
    }
    let foreign = u64::try_from(primaries.len()).expect("few");
    eventually("the foreign writes' pushes", || async {
        a.ages.stats().remote_invalidations >= foreign
    })
    .await;
    for id in &mine {
        let got = a.ages.get(id).await.expect("reads").expect("present");
        assert_eq!(
            (got.tier(), got.value().method.as_deref()),
            (Tier::L1, Some("mine")),
            "{id}: our own write did not evict itself"
        );
    }
    assert_eq!(
        a.ages.stats().remote_invalidations,
        foreign,
        "no push of our own writes (NOLOOP on each primary)"
    );
}

/// How many `name` errors (`MOVED`, `ASK`) the node `port` has answered.
fn errors_answered(port: u16, name: &str) -> u64 {
    let stats = cli(port, &["INFO", "errorstats"]);
    let prefix = format!("errorstat_{name}:count=");
    stats
        .lines()
        .find_map(|line| line.trim().strip_prefix(prefix.as_str()))
        .map_or(0, |count| count.parse().expect("a count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_to_a_moving_or_moved_slot_are_redirected_and_land() {
    let cluster = RedisCluster::start();
    // The listener polls the topology once per PING interval: 10 s here, so
    // the instance still routes its writes by the old slot map.
    let a = Instance::start_with(
        &cluster.config(),
        InvalidationOptions {
            grace: Duration::from_secs(30),
            ping_interval: Duration::from_secs(10),
            ..InvalidationOptions::default()
        },
    )
    .await;
    let id = "redirected";
    let (from, slot) = (cluster.primary_of(&key(id)), cluster.slot(&key(id)));
    let to = cluster.other_primary(from);
    foreign_set(&cluster, id, "v1");
    a.cached(id, "v1").await;

    // Mid-migration, the key already moved: the old owner answers ASK.
    let node_id = |port| cli(port, &["CLUSTER", "MYID"]);
    let slot_arg = slot.to_string();
    cli(
        to,
        &["CLUSTER", "SETSLOT", &slot_arg, "IMPORTING", &node_id(from)],
    );
    cli(
        from,
        &["CLUSTER", "SETSLOT", &slot_arg, "MIGRATING", &node_id(to)],
    );
    let to_port = to.to_string();
    let migrated = cli(
        from,
        &["MIGRATE", "127.0.0.1", &to_port, &key(id), "0", "5000"],
    );
    assert_eq!(migrated, "OK");
    let asked = errors_answered(from, "ASK");
    a.ages
        .insert(id, record(id, "v2"))
        .await
        .expect("insert mid-migration");
    assert!(
        errors_answered(from, "ASK") > asked,
        "the write went to the old owner first"
    );

    // Migrated: the old owner answers MOVED.
    for port in cluster.primary_ports() {
        cli(
            port,
            &["CLUSTER", "SETSLOT", &slot_arg, "NODE", &node_id(to)],
        );
    }
    let moved = errors_answered(from, "MOVED");
    a.ages
        .insert(id, record(id, "v3"))
        .await
        .expect("insert after migration");
    assert!(
        errors_answered(from, "MOVED") > moved,
        "the write went to the old owner first"
    );
    assert!(
        cli(to, &["GET", &key(id)]).contains("v3"),
        "it landed on the new owner"
    );
    a.reads(id, Some("v3")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_primary_fails_its_own_keys_fast_and_no_others() {
    let cluster = RedisCluster::start();
    let a = Instance::start(&cluster.config()).await;
    let primaries = cluster.primary_ports();
    let (stalled, healthy) = (primaries[0], primaries[1]);
    let (theirs, others) = (
        id_on(&cluster, stalled, "stalled"),
        id_on(&cluster, healthy, "healthy"),
    );
    for id in [&theirs, &others] {
        foreign_set(&cluster, id, "v1");
        assert!(a.ages.get_from_l2(id).await.expect("reads").is_some());
    }

    // Every client's commands wait on that primary (the cluster bus does
    // not, so no failover starts): its keys time out until its breaker opens.
    cli(stalled, &["CLIENT", "PAUSE", "4000", "ALL"]);
    let paused = Instant::now();
    let mut timeouts = 0;
    loop {
        match a.ages.get_from_l2(&theirs).await {
            Err(warmcache::CacheError::L2(warmcache::L2Error::Unavailable)) => break,
            Err(warmcache::CacheError::L2(warmcache::L2Error::Timeout(_))) => timeouts += 1,
            other => panic!("a stalled primary answered {other:?}"),
        }
        assert!(
            paused.elapsed() < Duration::from_secs(3),
            "the breaker did not open"
        );
    }
    assert!(timeouts >= 1);
    // The other primaries' keys are still served: their breakers are theirs.
    let served = a.ages.get_from_l2(&others).await;
    assert!(
        matches!(&served, Ok(Some(found)) if found.value().method.as_deref() == Some("v1")),
        "a healthy primary's key while another primary's breaker is open: {served:?}"
    );
    assert!(
        paused.elapsed() < Duration::from_secs(4),
        "checked while paused"
    );
    // Once the pause ends, the stalled primary's keys come back by themselves.
    a.reads(&theirs, Some("v1")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_is_replaced_and_nothing_erased_comes_back() {
    let mut cluster = RedisCluster::start();
    let (a, b) = (
        Instance::start(&cluster.config()).await,
        Instance::start(&cluster.config()).await,
    );
    let victim = cluster.primary_of(&key("seed"));
    let (id, erased) = (id_on(&cluster, victim, "w"), id_on(&cluster, victim, "e"));
    let elsewhere = id_on(&cluster, cluster.other_primary(victim), "o");
    for i in [&id, &erased, &elsewhere] {
        a.ages.insert(i, record(i, "before")).await.expect("insert");
        b.cached(i, "before").await;
    }

    // Traffic on the other primaries goes on while the victim dies.
    let traffic = {
        let ages = a.ages.clone();
        let elsewhere = elsewhere.clone();
        tokio::spawn(async move {
            let mut ok = 0_u32;
            for _ in 0..200 {
                ok += u32::from(ages.get(&elsewhere).await.is_ok());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            ok
        })
    };
    let killed_at = Instant::now();
    cluster.kill(victim);

    // The erasure is retried until a primary takes it (the promoted replica).
    eventually("the erasure to be taken", || async {
        a.ages.erase(&erased).await.is_ok()
    })
    .await;
    eventually("a write to the failed-over slot", || async {
        a.ages.insert(&id, record(&id, "after")).await.is_ok()
    })
    .await;
    println!(
        "cluster failover: kill to first successful write {} ms",
        killed_at.elapsed().as_millis()
    );
    assert!(traffic.await.expect("traffic task") > 0);
    cluster.wait_healthy();

    // The erasure is final on the new primary, in both L1s, and against a
    // loader that still has the old value.
    assert_eq!(cluster.foreign(&["EXISTS", &key(&erased)]), "0");
    for instance in [&a, &b] {
        instance.reads(&erased, None).await;
        let loaded = instance
            .ages
            .get_or_load(&erased, |_| async {
                Ok::<_, std::io::Error>(record(&erased, "before"))
            })
            .await
            .expect("loader answers");
        assert_eq!(loaded.tier(), Tier::Loader);
    }
    assert_eq!(
        cluster.foreign(&["EXISTS", &key(&erased)]),
        "0",
        "not written back"
    );

    // Invalidations come from the new primary: both L1s follow it.
    b.reads(&id, Some("after")).await;
    a.cached(&id, "after").await;
    b.cached(&id, "after").await;
    foreign_set(&cluster, &id, "foreign");
    a.reads(&id, Some("foreign")).await;
    b.reads(&id, Some("foreign")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_slot_serves_no_stale_read() {
    let cluster = RedisCluster::start();
    let (a, b) = (
        Instance::start(&cluster.config()).await,
        Instance::start(&cluster.config()).await,
    );
    let id = "migrating";
    let from = cluster.primary_of(&key(id));
    let to = cluster.other_primary(from);
    foreign_set(&cluster, id, "v1");
    a.cached(id, "v1").await;
    b.cached(id, "v1").await;

    cluster.migrate_slot(cluster.slot(&key(id)), from, to);
    assert_eq!(cluster.primary_of(&key(id)), to);
    assert!(
        cli(to, &["GET", &key(id)]).contains("v1"),
        "the key moved with its slot"
    );

    // A foreign change on the new owner reaches both L1s.
    foreign_set(&cluster, id, "v2");
    a.reads(id, Some("v2")).await;
    b.reads(id, Some("v2")).await;
    a.cached(id, "v2").await;
    b.cached(id, "v2").await;
    // warmcache's own write follows the slot too, and reaches the other.
    a.ages.insert(id, record(id, "v3")).await.expect("insert");
    assert!(cli(to, &["GET", &key(id)]).contains("v3"));
    b.reads(id, Some("v3")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_failover_moves_tracking_to_the_promoted_replica() {
    let cluster = RedisCluster::start();
    let (a, b) = (
        Instance::start(&cluster.config()).await,
        Instance::start(&cluster.config()).await,
    );
    let id = "handover";
    let old = cluster.primary_of(&key(id));
    let new = cluster.replica_of(old);
    foreign_set(&cluster, id, "v1");
    a.cached(id, "v1").await;
    b.cached(id, "v1").await;

    // The old primary stays up (as a replica): its tracking connection
    // keeps answering PINGs, so only the topology shows the change.
    assert_eq!(cli(new, &["CLUSTER", "FAILOVER"]), "OK");
    eventually("the replica to take over", || async {
        cluster.primary_of(&key(id)) == new
    })
    .await;
    cluster.wait_healthy();
    assert_eq!(
        cli(
            new,
            &[
                "SET",
                &key(id),
                &serde_json::to_string(&record(id, "v2")).expect("json"),
                "EX",
                "600"
            ]
        ),
        "OK"
    );
    a.reads(id, Some("v2")).await;
    b.reads(id, Some("v2")).await;
    a.cached(id, "v2").await;
    b.cached(id, "v2").await;
    assert_eq!(cli(new, &["DEL", &key(id)]), "1");
    a.reads(id, None).await;
    b.reads(id, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_moved_to_a_new_node_is_tracked_there() {
    let mut cluster = RedisCluster::start();
    let (a, b) = (
        Instance::start(&cluster.config()).await,
        Instance::start(&cluster.config()).await,
    );
    let id = "newcomer";
    foreign_set(&cluster, id, "v1");
    a.cached(id, "v1").await;
    b.cached(id, "v1").await;

    // A node joins and takes the key's slot: no instance tracked it before.
    let joined = cluster.add_primary();
    let from = cluster.primary_of(&key(id));
    cluster.migrate_slot(cluster.slot(&key(id)), from, joined);
    cluster.wait_healthy();
    assert_eq!(cluster.primary_of(&key(id)), joined);
    assert!(
        cli(joined, &["GET", &key(id)]).contains("v1"),
        "moved with its slot"
    );
    for instance in [&a, &b] {
        instance.cached(id, "v1").await;
    }
    foreign_set(&cluster, id, "v2");
    a.reads(id, Some("v2")).await;
    b.reads(id, Some("v2")).await;
    a.cached(id, "v2").await;
    b.cached(id, "v2").await;
}
