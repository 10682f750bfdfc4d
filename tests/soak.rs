//! The chaos soak: a small fleet under many faults at once, its history
//! judged by the checker in `support::history`.
//!
//! The fleet: 3 warmcache instances (the library with its real Redis
//! clients: a `RedisHandle`, the age-verification and profile caches, the
//! invalidation listener, and a snapshot refresher behind the real router),
//! each behind its own fault proxy to one redis-server, plus a foreign
//! writer (ioredis in a Node process) talking to Redis directly. Workers
//! read, write, overwrite and erase a few hundred ids, and read `/dashboard`,
//! while a seeded schedule injects faults: blackhole, RST, added latency,
//! Redis restart, `CLIENT PAUSE`, `CLIENT KILL` of tracking connections, a
//! slow loader and a primary failover to the replica behind the same
//! address (the schedule: `tests/soak/faults.rs`).
//!
//! `WARMCACHE_SOAK_SECS` sets the duration (default 45, as CI runs it; by
//! hand, e.g. 600) and `WARMCACHE_SOAK_SEED` the seed (default 1).

#[path = "soak/faults.rs"]
mod faults;
mod support;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use faults::inject_faults;
use http::Request;
use serde::{Deserialize, Serialize};
use support::history::{Action, FALLBACK, Op, Rules, SOURCE, check};
use support::node::NodeProcess;
use support::proxy::{Fault as ProxyFault, FaultProxy};
use tower::ServiceExt;
use warmcache::records::{AGE_VERIFICATION, CUSTOMER_PROFILE, Keyspace};
use warmcache::service::{AppState, app};
use warmcache::{
    CacheError, InvalidationListener, InvalidationOptions, L2Error, MockSource, Mode, RedisHandle,
    Refresher, SnapshotCache, TieredCache,
};

const INSTANCES: usize = 3;
const IDS: u64 = 120;
const GRACE: Duration = Duration::from_millis(300);
/// A loader's normal and slowed latency.
const LOADER_FAST: Duration = Duration::from_millis(2);
const LOADER_SLOW: Duration = Duration::from_millis(250);

/// Each Redis command's bound (`FaultProxy::config`).
const OP_TIMEOUT: Duration = Duration::from_millis(200);

/// The longest a call may take by its configuration: a fill is a read, the
/// loader and a write-back with its read-back (3 commands and the loader), and
/// a read whose fills invalidations keep overtaking runs up to 4 of them.
fn call_bound() -> Duration {
    (OP_TIMEOUT * 3 + LOADER_SLOW) * 4
}

/// What the soak stores: the nonce names the write it came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SoakRecord {
    customer_id: String,
    nonce: String,
}

/// What a read saw: the loader's own answers are its documented fallback.
fn seen(cached: warmcache::Cached<SoakRecord>) -> u64 {
    if cached.tier() == warmcache::Tier::Loader {
        FALLBACK
    } else {
        nonce_hash(&cached.value().nonce)
    }
}

fn nonce_hash(nonce: &str) -> u64 {
    if nonce.starts_with("source-") {
        return SOURCE;
    }
    let mut hasher = DefaultHasher::new();
    nonce.hash(&mut hasher);
    // Below 2^63: never SOURCE or FALLBACK.
    hasher.finish() >> 1
}

/// The run's clock and history, shared by every actor.
struct Recorder {
    origin: Instant,
    ops: Mutex<Vec<Op>>,
}

impl Recorder {
    fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64() * 1_000.0
    }

    fn record(&self, start: f64, actor: &str, id: &str, action: Action) {
        let op = Op {
            start,
            end: self.now(),
            actor: actor.to_owned(),
            id: id.to_owned(),
            action,
        };
        self.ops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(op);
    }
}

/// The documented kind of a keyed-cache failure. A malformed id, a corrupt
/// value or an encoding failure cannot happen in this workload: they would
/// be a bug (a poisoned entry), so they count as unexpected.
fn error_kind(e: &CacheError) -> String {
    let kind = match e {
        CacheError::L2(L2Error::Unavailable) => "unavailable",
        CacheError::L2(L2Error::Timeout(_)) => "timeout",
        CacheError::L2(L2Error::Connection(_)) => "connection",
        CacheError::L2(L2Error::Auth(_)) => "auth",
        CacheError::L2(L2Error::NotPrimary(_)) => "not-primary",
        CacheError::L2(L2Error::Loading(_)) => "loading",
        CacheError::L2(L2Error::Refused(_)) => "refused",
        CacheError::Loader(_) => "loader",
        other => return format!("unexpected: {other}"),
    };
    kind.to_owned()
}

/// A failed command of the foreign writer (ioredis's own errors).
const FOREIGN_ERROR: &str = "foreign";
const ERROR_KINDS: [&str; 9] = [
    "unavailable",
    "timeout",
    "connection",
    "auth",
    "not-primary",
    "loading",
    "refused",
    "loader",
    FOREIGN_ERROR,
];

struct Instance {
    name: String,
    proxy: FaultProxy,
    ages: TieredCache<SoakRecord>,
    profiles: TieredCache<SoakRecord>,
    router: Router,
    _listener: InvalidationListener,
    _refresher: Refresher<MockSource>,
}

impl Instance {
    async fn start(index: usize, redis_port: u16) -> Self {
        let proxy = FaultProxy::start(redis_port).await;
        let redis = RedisHandle::connect_lazy(&proxy.config()).expect("valid settings");
        let cache = |keyspace: Keyspace| {
            TieredCache::builder(keyspace)
                .redis(redis.clone())
                .build()
                .expect("cache")
        };
        let (ages, profiles) = (cache(AGE_VERIFICATION), cache(CUSTOMER_PROFILE));
        let listener = redis.start_invalidation(InvalidationOptions {
            grace: GRACE,
            ..InvalidationOptions::default()
        });
        let snapshots = SnapshotCache::new(Mode::Mock);
        let refresher = Refresher::builder()
            .ttl(Duration::from_secs(1))
            .spawn(MockSource::new(index as u64), snapshots.clone())
            .expect("refresher");
        refresher.refresh_now().await.expect("first snapshot");
        let router = app(AppState {
            snapshots,
            ttl: Duration::from_secs(1),
            max_staleness: Duration::from_secs(60),
            keyed: None,
        });
        Self {
            name: format!("i{index}"),
            proxy,
            ages,
            profiles,
            router,
            _listener: listener,
            _refresher: refresher,
        }
    }
}

/// One worker of an instance: a seeded random mix of operations.
async fn work(
    instance: Arc<Instance>,
    seed: u64,
    recorder: Arc<Recorder>,
    loader_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut seq = 0_u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let n = rng.u64(0..IDS);
        let (cache, keyspace, customer) = if rng.bool() {
            (&instance.ages, "age", format!("soak-a{n}"))
        } else {
            (&instance.profiles, "profile", format!("soak-p{n}"))
        };
        let id = format!("{keyspace}:{customer}");
        let start = recorder.now();
        let action = match rng.u32(0..100) {
            0..70 => {
                let read = if keyspace == "profile" {
                    let delay = Duration::from_millis(loader_ms.load(Ordering::Relaxed));
                    cache
                        .get_or_load(&customer, |id| async move {
                            tokio::time::sleep(delay).await;
                            Ok::<_, std::io::Error>(SoakRecord {
                                customer_id: id.to_string(),
                                nonce: format!("source-{id}"),
                            })
                        })
                        .await
                        .map(Some)
                } else {
                    cache.get(&customer).await
                };
                Action::Read(
                    read.map(|found| found.map(seen))
                        .map_err(|e| error_kind(&e)),
                )
            }
            70..82 => {
                let nonce = format!("{}-{seed}-{seq}", instance.name);
                let record = SoakRecord {
                    customer_id: customer.clone(),
                    nonce: nonce.clone(),
                };
                let written = cache.insert(&customer, record).await;
                Action::Write(
                    nonce_hash(&nonce),
                    written.map(drop).map_err(|e| error_kind(&e)),
                )
            }
            82..88 => Action::Erase(
                cache
                    .invalidate(&customer)
                    .await
                    .map_err(|e| error_kind(&e)),
            ),
            _ => {
                let request = Request::get("/dashboard")
                    .body(Body::empty())
                    .expect("request");
                let response = instance.router.clone().oneshot(request).await;
                recorder.record(
                    start,
                    &instance.name,
                    "",
                    Action::Snapshot(
                        response
                            .map(|r| r.status().as_u16())
                            .map_err(|e| e.to_string()),
                    ),
                );
                continue;
            }
        };
        recorder.record(start, &instance.name, &id, action);
        tokio::time::sleep(Duration::from_millis(rng.u64(0..3))).await;
    }
}

/// The foreign writer: SETEX and DEL through a real ioredis client.
fn foreign_writer(redis_port: u16, seed: u64, recorder: Arc<Recorder>, stop: Arc<AtomicBool>) {
    let mut node = NodeProcess::start("writer.js", redis_port, &[]);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut seq = 0_u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let n = rng.u64(0..IDS);
        let (keyspace, prefix, customer) = if rng.bool() {
            ("age", AGE_VERIFICATION.name, format!("soak-a{n}"))
        } else {
            ("profile", CUSTOMER_PROFILE.name, format!("soak-p{n}"))
        };
        let id = format!("{keyspace}:{customer}");
        let key = format!("{prefix}:{customer}");
        let start = recorder.now();
        let result = |answer: serde_json::Value| match answer.get("error") {
            None => Ok(()),
            Some(_) => Err(FOREIGN_ERROR.to_owned()),
        };
        if rng.u32(0..100) < 65 {
            let nonce = format!("foreign-{seq}");
            let value = serde_json::json!({ "customerId": customer, "nonce": nonce });
            let answer = node.request(&serde_json::json!({
                "op": "setex", "key": key, "ttl": 3600, "value": value
            }));
            recorder.record(
                start,
                "foreign",
                &id,
                Action::Write(nonce_hash(&nonce), result(answer)),
            );
        } else {
            let answer = node.request(&serde_json::json!({ "op": "del", "key": key }));
            recorder.record(start, "foreign", &id, Action::Erase(result(answer)));
        }
        std::thread::sleep(Duration::from_millis(rng.u64(5..25)));
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_keeps_its_promises_under_many_faults() {
    let seconds = env_u64("WARMCACHE_SOAK_SECS", 45);
    let seed = env_u64("WARMCACHE_SOAK_SEED", 1);
    let pair = faults::Pair::start().await;
    let port = pair.primary_port();
    let pair = Arc::new(Mutex::new(pair));
    // The foreign writer reaches Redis at the same address as the fleet (a
    // proxy that injects nothing), which a failover moves too.
    let foreign_proxy = Arc::new(FaultProxy::start(port).await);
    let foreign_port = foreign_proxy.port();
    let recorder = Arc::new(Recorder {
        origin: Instant::now(),
        ops: Mutex::new(Vec::new()),
    });
    let loader_ms = Arc::new(AtomicU64::new(LOADER_FAST.as_millis() as u64));
    let stop = Arc::new(AtomicBool::new(false));
    let mut instances = Vec::new();
    for index in 0..INSTANCES {
        instances.push(Arc::new(Instance::start(index, port).await));
    }

    let mut workers = Vec::new();
    for (index, instance) in instances.iter().enumerate() {
        for worker in 0..2 {
            workers.push(tokio::spawn(work(
                Arc::clone(instance),
                seed * 100 + (index * 2 + worker) as u64,
                Arc::clone(&recorder),
                Arc::clone(&loader_ms),
                Arc::clone(&stop),
            )));
        }
    }
    let foreign = {
        let (recorder, stop) = (Arc::clone(&recorder), Arc::clone(&stop));
        std::thread::spawn(move || foreign_writer(foreign_port, seed * 100 + 99, recorder, stop))
    };
    let faults = tokio::spawn(inject_faults(
        seed,
        Arc::clone(&pair),
        instances.clone(),
        Arc::clone(&foreign_proxy),
        Arc::clone(&loader_ms),
        Arc::clone(&recorder),
        Arc::clone(&stop),
    ));

    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let faults = faults.await.expect("fault schedule");
    for worker in workers {
        worker.await.expect("worker");
    }
    foreign.join().expect("foreign writer");

    // Quiet now: every instance reads every id once more.
    for instance in &instances {
        instance.proxy.set(ProxyFault::Pass);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for instance in &instances {
        for n in 0..IDS {
            for (keyspace, cache) in [("age", &instance.ages), ("profile", &instance.profiles)] {
                let customer = format!("soak-{}{n}", &keyspace[..1]);
                let start = recorder.now();
                let read = cache.get(&customer).await;
                let action = Action::Read(
                    read.map(|found| found.map(seen))
                        .map_err(|e| error_kind(&e)),
                );
                recorder.record(
                    start,
                    &instance.name,
                    &format!("{keyspace}:{customer}"),
                    action,
                );
            }
        }
    }

    let history = std::mem::take(&mut *recorder.ops.lock().unwrap_or_else(PoisonError::into_inner));
    let rules = Rules {
        bound_ms: GRACE.as_secs_f64() * 1_000.0 + 10.0,
        call_bound_ms: call_bound().as_secs_f64() * 1_000.0,
        error_kinds: ERROR_KINDS.iter().map(|k| (*k).to_owned()).collect(),
    };
    let report = check(&history, &rules);
    if let Ok(path) = std::env::var("WARMCACHE_SOAK_DUMP") {
        let text: String = history.iter().map(|op| format!("{op}\n")).collect();
        std::fs::write(path, text).expect("write the history");
    }
    println!(
        "soak: {seconds} s, seed {seed}, {INSTANCES} instances + foreign writer, {} operations\nfaults: {faults:?}\n{}",
        history.len(),
        report.summary(&rules)
    );
    assert!(
        faults.values().sum::<u64>() > 0,
        "the schedule injected faults"
    );
    assert!(report.violations.is_empty(), "{}", report.summary(&rules));
}
