//! Measurement, not a check (set `WARMCACHE_BENCH_WAITERS=1`; skipped
//! otherwise, and never in CI by default): long-poll wake latency from the
//! BullMQ worker's completion with 1 and 10,000 waiters on one job, and the
//! memory the 10,000 waiting requests take.
//!
//! Each waiter is a request through the router (`oneshot`) on a task of the
//! test, standing for a client connection; the service itself spawns
//! nothing per waiter. Latency: from just before the worker's processor
//! returns (Node, microseconds of wall clock) to the moment each waiter has
//! its response. Memory: the process's resident set before the waiters and
//! once all are registered. Run with
//! `WARMCACHE_BENCH_WAITERS=1 cargo test --release --test bullmq_waiters -- --nocapture`.

mod support;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use redis::AsyncCommands;
use serde_json::json;
use support::RedisServer;
use support::bullmq::{JobsService, Worker, add_jobs};
use tower::ServiceExt;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_micros() as u64
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("linux");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("rss");
    pages * 4096
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn round(
    service: &Arc<JobsService>,
    worker: &mut Worker,
    server: &RedisServer,
    round: usize,
    n: usize,
) {
    let id = format!("wait-{round}-{n}");
    add_jobs(
        server.port(),
        &json!([{ "name": "gated", "opts": { "jobId": id } }]),
    );
    let path = format!("/jobs/{id}");
    let etag = service.until_status(&path, "active").await.etag();
    let before = resident_bytes();
    let mut polls = Vec::with_capacity(n);
    for _ in 0..n {
        let router = service.router.clone();
        let path = format!("{path}?waitMs=30000");
        let etag = etag.clone();
        polls.push(tokio::spawn(async move {
            // Timed when the router hands the response over (before the
            // test reads the body), to measure the service, not the test.
            let request = Request::get(path)
                .header("if-none-match", etag)
                .body(Body::empty())
                .expect("request");
            let response = router.oneshot(request).await.expect("infallible");
            (response.status(), now_us())
        }));
    }
    while service.jobs.waiting() < n {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let after = resident_bytes();
    let mut redis = server.foreign().await;
    let () = redis.set(format!("gate:{id}"), 1).await.expect("set");
    let returning = worker.until(|l| l["returning"] == id.as_str()).await;
    let returned_at = returning["atUs"].as_u64().expect("atUs");
    let mut latencies = Vec::with_capacity(n);
    for poll in polls {
        let (status, woke_at) = poll.await.expect("poll");
        assert_eq!(status, StatusCode::OK);
        latencies.push(woke_at.saturating_sub(returned_at));
    }
    latencies.sort_unstable();
    eprintln!(
        "{n} waiter(s): wake latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; resident set +{} KiB ({} bytes per waiter)",
        percentile(&latencies, 0.5) as f64 / 1000.0,
        percentile(&latencies, 0.99) as f64 / 1000.0,
        latencies[latencies.len() - 1] as f64 / 1000.0,
        after.saturating_sub(before) / 1024,
        after.saturating_sub(before) / n as u64,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_wake_latency_and_memory() {
    if std::env::var_os("WARMCACHE_BENCH_WAITERS").is_none() {
        eprintln!("skipped: set WARMCACHE_BENCH_WAITERS=1 to measure");
        return;
    }
    let server = RedisServer::start();
    let service = Arc::new(JobsService::start(&server));
    let mut worker = Worker::start(server.port()).await;
    for (i, n) in [1, 1, 10_000, 10_000].into_iter().enumerate() {
        round(&service, &mut worker, &server, i, n).await;
    }
}
