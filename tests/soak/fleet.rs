//! The soak's actors, the same on every topology: the warmcache instances
//! and their workers, the foreign writer (ioredis in Node, in the
//! topology's own client mode), and the run they share (one clock, one
//! history, the loader's latency, the stop flag).
//!
//! `tests/soak.rs` starts them; the fault schedules (`faults.rs`,
//! `cluster_faults.rs`, `sentinel_faults.rs`) act on them.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use http::Request;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;
use warmcache::records::{AGE_VERIFICATION, CUSTOMER_PROFILE, Keyspace};
use warmcache::service::{AppState, app};
use warmcache::{
    CacheError, InvalidationListener, InvalidationOptions, L2Error, MockSource, Mode, RedisConfig,
    RedisHandle, Refresher, SnapshotCache, TieredCache,
};

use super::support::history::{Action, FALLBACK, Op, SOURCE};
use super::support::node::NodeProcess;
use super::support::proxy::FaultProxy;

pub(super) const IDS: u64 = 120;
pub(super) const GRACE: Duration = Duration::from_millis(300);
/// A loader's normal and slowed latency.
const LOADER_FAST: Duration = Duration::from_millis(2);
const LOADER_SLOW: Duration = Duration::from_millis(250);

/// The longest a call may take by its configuration (`op_timeout`, each
/// Redis command's bound): a fill is a read, the loader and a write-back
/// with its read-back (3 commands and the loader), and a read whose fills
/// invalidations keep overtaking runs up to 4 of them.
pub(super) fn call_bound(op_timeout: Duration) -> Duration {
    (op_timeout * 3 + LOADER_SLOW) * 4
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

/// What every actor of one run shares.
pub(super) struct Run {
    /// Time zero of the history's clock.
    origin: Instant,
    /// The history, appended to by every actor (a `Mutex`: actors run on
    /// tokio workers and on the foreign writer's thread).
    pub(super) ops: Mutex<Vec<Op>>,
    /// The loader's latency in ms (an atomic: the slow-loader fault sets
    /// it while workers read it).
    pub(super) loader_ms: AtomicU64,
    /// Set when the run ends; every loop checks it.
    pub(super) stop: AtomicBool,
}

impl Run {
    pub(super) fn new() -> Self {
        Self {
            origin: Instant::now(),
            ops: Mutex::new(Vec::new()),
            loader_ms: AtomicU64::new(LOADER_FAST.as_millis() as u64),
            stop: AtomicBool::new(false),
        }
    }

    pub(super) fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64() * 1_000.0
    }

    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub(super) fn record(&self, start: f64, actor: &str, id: &str, action: Action) {
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

    /// The loader slowed to [`LOADER_SLOW`] for `hold` (a fault).
    pub(super) async fn slow_loader(&self, hold: Duration) {
        self.loader_ms
            .store(LOADER_SLOW.as_millis() as u64, Ordering::Relaxed);
        tokio::time::sleep(hold).await;
        self.loader_ms
            .store(LOADER_FAST.as_millis() as u64, Ordering::Relaxed);
    }

    /// The history so far, taken out.
    pub(super) fn take_history(&self) -> Vec<Op> {
        std::mem::take(&mut *self.ops.lock().unwrap_or_else(PoisonError::into_inner))
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
pub(super) const ERROR_KINDS: [&str; 9] = [
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

/// One warmcache instance: the library as a service embeds it.
pub(super) struct Instance {
    /// `i0`, `i1`, ...: its actor name in the history.
    pub(super) name: String,
    /// The fault proxy in front of its Redis (standalone only: cluster
    /// nodes and sentinels announce their own addresses).
    pub(super) proxy: Option<FaultProxy>,
    ages: TieredCache<SoakRecord>,
    profiles: TieredCache<SoakRecord>,
    router: Router,
    _listener: InvalidationListener,
    _refresher: Refresher<MockSource>,
}

impl Instance {
    /// An instance behind its own fault proxy to `redis_port`.
    pub(super) async fn behind_proxy(index: usize, redis_port: u16) -> Self {
        let proxy = FaultProxy::start(redis_port).await;
        Self::start(index, &proxy.config(), Some(proxy)).await
    }

    /// An instance on `config` (its `proxy`, if any, is on the way).
    pub(super) async fn start(
        index: usize,
        config: &RedisConfig,
        proxy: Option<FaultProxy>,
    ) -> Self {
        let redis = RedisHandle::connect_lazy(config).expect("valid settings");
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

    /// Reads every id once, from both keyspaces (the run's last word).
    pub(super) async fn read_all(&self, run: &Run) {
        for n in 0..IDS {
            for (keyspace, cache) in [("age", &self.ages), ("profile", &self.profiles)] {
                let customer = format!("soak-{}{n}", &keyspace[..1]);
                let start = run.now();
                let read = cache.get(&customer).await;
                let action = Action::Read(
                    read.map(|found| found.map(seen))
                        .map_err(|e| error_kind(&e)),
                );
                run.record(start, &self.name, &format!("{keyspace}:{customer}"), action);
            }
        }
    }
}

/// One worker of an instance: a seeded random mix of operations.
pub(super) async fn work(instance: Arc<Instance>, seed: u64, run: Arc<Run>) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut seq = 0_u64;
    while !run.stopped() {
        seq += 1;
        let n = rng.u64(0..IDS);
        let (cache, keyspace, customer) = if rng.bool() {
            (&instance.ages, "age", format!("soak-a{n}"))
        } else {
            (&instance.profiles, "profile", format!("soak-p{n}"))
        };
        let id = format!("{keyspace}:{customer}");
        let start = run.now();
        let action = match rng.u32(0..100) {
            0..70 => {
                let read = if keyspace == "profile" {
                    let delay = Duration::from_millis(run.loader_ms.load(Ordering::Relaxed));
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
                run.record(
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
        run.record(start, &instance.name, &id, action);
        tokio::time::sleep(Duration::from_millis(rng.u64(0..3))).await;
    }
}

/// How the foreign writer reaches Redis: as a Node service in that
/// topology would (`tests/node/scripts/writer.js`).
pub(super) enum Writer {
    /// One address (`127.0.0.1:port`).
    Standalone(u16),
    /// An ioredis `Cluster` seeded with these nodes.
    Cluster(Vec<u16>),
    /// ioredis asking these sentinels for the primary.
    Sentinel(Vec<u16>, &'static str),
}

impl Writer {
    /// Starts the script and waits until its client is ready (its start is
    /// no command of the history).
    fn start(&self) -> NodeProcess {
        let list = |ports: &[u16]| {
            ports
                .iter()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut node = match self {
            Self::Standalone(port) => NodeProcess::start("writer.js", *port, &[]),
            Self::Cluster(nodes) => NodeProcess::start(
                "writer.js",
                nodes[0],
                &[
                    ("REDIS_MODE", "cluster"),
                    ("REDIS_CLUSTER_NODES", &list(nodes)),
                ],
            ),
            Self::Sentinel(sentinels, master) => NodeProcess::start(
                "writer.js",
                sentinels[0],
                &[
                    ("REDIS_MODE", "sentinel"),
                    ("REDIS_SENTINELS", &list(sentinels)),
                    ("REDIS_SENTINEL_MASTER", master),
                ],
            ),
        };
        node.request(&serde_json::json!({ "op": "ready" }));
        node
    }
}

/// The foreign writer: SETEX and DEL through a real ioredis client.
/// Returns how often ioredis failed with each message (the history has
/// them as one kind, [`FOREIGN_ERROR`]).
pub(super) fn foreign_writer(writer: &Writer, seed: u64, run: &Run) -> BTreeMap<String, u64> {
    let mut node = writer.start();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut seq = 0_u64;
    let mut errors = BTreeMap::new();
    let mut result = |answer: serde_json::Value| match answer.get("error") {
        None => Ok(()),
        Some(message) => {
            let message = message.as_str().unwrap_or_default().to_owned();
            *errors.entry(message).or_insert(0) += 1;
            Err(FOREIGN_ERROR.to_owned())
        }
    };
    while !run.stopped() {
        seq += 1;
        let n = rng.u64(0..IDS);
        let (keyspace, prefix, customer) = if rng.bool() {
            ("age", AGE_VERIFICATION.name, format!("soak-a{n}"))
        } else {
            ("profile", CUSTOMER_PROFILE.name, format!("soak-p{n}"))
        };
        let id = format!("{keyspace}:{customer}");
        let key = format!("{prefix}:{customer}");
        let start = run.now();
        if rng.u32(0..100) < 65 {
            let nonce = format!("foreign-{seq}");
            let value = serde_json::json!({ "customerId": customer, "nonce": nonce });
            let answer = node.request(&serde_json::json!({
                "op": "setex", "key": key, "ttl": 3600, "value": value
            }));
            run.record(
                start,
                "foreign",
                &id,
                Action::Write(nonce_hash(&nonce), result(answer)),
            );
        } else {
            let answer = node.request(&serde_json::json!({ "op": "del", "key": key }));
            run.record(start, "foreign", &id, Action::Erase(result(answer)));
        }
        std::thread::sleep(Duration::from_millis(rng.u64(5..25)));
    }
    errors
}

/// The Redis key of one of the soak's records, drawn from `rng`.
pub(super) fn soak_key(rng: &mut fastrand::Rng) -> String {
    let n = rng.u64(0..IDS);
    if rng.bool() {
        format!("{}:soak-a{n}", AGE_VERIFICATION.name)
    } else {
        format!("{}:soak-p{n}", CUSTOMER_PROFILE.name)
    }
}
