//! `GET /jobs/{id}` answered from L1, against its baselines.
//!
//! * `job_read/moka_bare`: `moka::future::Cache<String, Arc<V>>::get` on a
//!   bare cache of the same ids (the floor of any L1 hit).
//! * `job_read/tiered_get`: `TieredCache::<ReasoningJob>::get`, an L1 hit
//!   (what the age-verification bar measures, on the job keyspace).
//! * `job_read/route_jobs`: the whole route through the router (no socket):
//!   id check, `reasoning_job` L1 hit, ETag of the body, response headers,
//!   body collected.
//! * `job_read/route_age`: the age-verification route the same way, the
//!   bar the job route is held to (it has no ETag).
//!
//! 10,000 distinct ids read in turn, in a fixed order, on one current-thread
//! runtime; the bench starts its own `redis-server` (tests/support), never
//! 6379. Run with `cargo bench --bench job_read`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tokio::runtime::Runtime;
use tower::ServiceExt;
use warmcache::records::{
    AgeVerification, JobStatus, OtherFields, ReasoningJob, RecordTime, TimeFormat,
};
use warmcache::service::{AppState, KeyedCaches, app};
use warmcache::{Mode, RedisHandle, SnapshotCache};

const IDS: usize = 10_000;

fn job(i: usize) -> ReasoningJob {
    let time = |ms| RecordTime::from_unix_ms(ms, TimeFormat::EpochMs);
    let mut job = ReasoningJob::new(format!("job-{i}"), JobStatus::Completed);
    job.result = Some(serde_json::json!({ "answer": i, "tokens": 1234 }));
    job.added_at = time(1_767_225_600_000);
    job.started_at = time(1_767_225_600_005);
    job.finished_at = time(1_767_225_600_500);
    job
}

async fn get(router: &Router, path: &str) -> usize {
    let response = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert!(response.status().is_success(), "{path}");
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .len()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = support::RedisServer::start();
    let (router, keyed, bare) = rt.block_on(setup(&server));
    let jobs: Vec<String> = (0..IDS).map(|i| format!("/jobs/job-{i}")).collect();
    let ages: Vec<String> = (0..IDS)
        .map(|i| format!("/age-verification/c-{i}"))
        .collect();
    let ids: Vec<String> = (0..IDS).map(|i| format!("job-{i}")).collect();

    let mut group = c.benchmark_group("job_read");
    group
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    timed(&mut group, "moka_bare", &rt, |i| {
        let bare = bare.clone();
        let id = ids[i].clone();
        async move { bare.get(&id).await.is_some() as usize }
    });
    timed(&mut group, "tiered_get", &rt, |i| {
        let keyed = keyed.clone();
        let id = ids[i].clone();
        async move {
            keyed
                .jobs
                .get(&id)
                .await
                .expect("hit")
                .map_or(0, |c| c.json().len())
        }
    });
    timed(&mut group, "route_jobs", &rt, |i| {
        let router = router.clone();
        let path = jobs[i].clone();
        async move { get(&router, &path).await }
    });
    timed(&mut group, "route_age", &rt, |i| {
        let router = router.clone();
        let path = ages[i].clone();
        async move { get(&router, &path).await }
    });
    group.finish();
    drop(server);
}

/// Times `body(i)` for ids in turn, one `block_on` per sample.
fn timed<F, Fut>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    rt: &Runtime,
    body: F,
) where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let mut next = 0usize;
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(body(next).await);
                    next = (next + 7919) % IDS;
                }
                start.elapsed()
            })
        })
    });
}

async fn setup(
    server: &support::RedisServer,
) -> (
    Router,
    KeyedCaches,
    moka::future::Cache<String, Arc<ReasoningJob>>,
) {
    let redis = RedisHandle::connect_lazy(&server.config()).expect("settings");
    let keyed =
        KeyedCaches::new(&redis, 256 << 20, Duration::from_secs(3600), false).expect("caches");
    let bare = moka::future::Cache::builder()
        .max_capacity(IDS as u64)
        .build();
    for i in 0..IDS {
        let record = job(i);
        bare.insert(record.job_id.clone(), Arc::new(record.clone()))
            .await;
        keyed
            .jobs
            .insert(&record.job_id.clone(), record)
            .await
            .expect("stored");
        let age = AgeVerification {
            customer_id: format!("c-{i}"),
            verified: true,
            method: Some("id_document".to_owned()),
            verified_at: RecordTime::from_unix_ms(1_767_225_600_000, TimeFormat::Iso),
            date_of_birth: None,
            age_over: Some(18),
            other: OtherFields::new(),
        };
        keyed
            .ages
            .insert(&age.customer_id.clone(), age)
            .await
            .expect("stored");
    }
    let router = app(AppState {
        snapshots: SnapshotCache::new(Mode::Mock),
        ttl: Duration::from_secs(30),
        max_staleness: Duration::from_secs(120),
        keyed: Some(std::sync::Arc::new(keyed.clone())),
    });
    (router, keyed, bare)
}

criterion_group!(benches, bench);
criterion_main!(benches);
