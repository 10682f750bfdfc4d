//! `GET /jobs/{jobId}` against a real BullMQ queue and worker (Node, in
//! `tests/node`) on the test's own redis-server: answers equal to what BullMQ
//! reports, final statuses recorded in `reasoning_job`, ETags and long
//! polls, the events follower across a trimmed stream and a Redis restart,
//! and bad input.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use redis::AsyncCommands;
use serde_json::{Value, json};
use support::RedisServer;
use support::bullmq::{JobsService, Worker, add_jobs, report};

/// Checks warmcache's answer against BullMQ's report, field by field.
fn assert_same(warm: &Value, bull: &Value) {
    let id = bull["id"].as_str().expect("id");
    let absent_is_null = |v: &Value| if v.is_null() { Value::Null } else { v.clone() };
    let pairs = [
        ("jobId", "id"),
        ("status", "state"),
        ("progress", "progress"),
        ("result", "returnvalue"),
        ("error", "failedReason"),
        ("attemptsMade", "attemptsMade"),
        ("addedAt", "timestamp"),
        ("startedAt", "processedOn"),
        ("finishedAt", "finishedOn"),
    ];
    for (ours, theirs) in pairs {
        assert_eq!(
            absent_is_null(&warm[ours]),
            absent_is_null(&bull[theirs]),
            "{id}: warmcache's {ours} differs from BullMQ's {theirs}\nwarmcache: {warm}\nBullMQ: {bull}"
        );
    }
    assert!(warm.get("data").is_none(), "data is not exposed by default");
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_micros() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_equal_what_bullmq_reports_and_final_statuses_outlive_removal() {
    let server = RedisServer::start();
    let port = server.port();
    let service = JobsService::start(&server);
    let mut worker = Worker::start(port).await;

    add_jobs(
        port,
        &json!([
        { "name": "ok", "data": { "n": 21 }, "opts": { "jobId": "job-ok" } },
        { "name": "progress", "opts": { "jobId": "job-progress" } },
        { "name": "flaky", "opts": { "jobId": "job-flaky", "attempts": 3, "backoff": { "type": "fixed", "delay": 5 } } },
        { "name": "ok", "opts": { "jobId": "job-delayed", "delay": 600000 } },
        ]),
    );
    for (event, id) in [("completed", "job-ok"), ("completed", "job-progress")] {
        worker.until(|l| l["event"] == event && l["id"] == id).await;
    }
    worker
        .until(|l| l["event"] == "failed" && l["id"] == "job-flaky" && l["attemptsMade"] == 3)
        .await;

    let mut reports = report(
        port,
        &["job-ok", "job-progress", "job-flaky", "job-delayed"],
    );
    // removeOnComplete: 1 keeps only the newest completed job: job-ok and
    // job-progress go now, and this one when the next completes.
    add_jobs(
        port,
        &json!([{ "name": "ok", "data": { "n": 1 }, "opts": { "jobId": "job-removed", "removeOnComplete": 1 } }]),
    );
    worker
        .until(|l| l["event"] == "completed" && l["id"] == "job-removed")
        .await;
    reports.extend(report(port, &["job-removed"]));
    assert_eq!(
        report(port, &["job-ok"])[0]["missing"],
        true,
        "BullMQ removed it"
    );
    for bull in &reports {
        let answer = service
            .get(&format!("/jobs/{}", bull["id"].as_str().expect("id")), None)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{bull}");
        assert_same(&answer.body, bull);
    }
    let by_id = |id: &str| {
        reports
            .iter()
            .find(|r| r["id"] == id)
            .expect("reported")
            .clone()
    };
    assert_eq!(by_id("job-ok")["returnvalue"], json!({ "answer": 42 }));
    assert_eq!(
        by_id("job-progress")["progress"],
        json!({ "stage": "half" })
    );
    assert_eq!(by_id("job-flaky")["state"], "failed");
    assert_eq!(by_id("job-flaky")["attemptsMade"], 3);
    assert_eq!(by_id("job-delayed")["state"], "delayed");

    // Another job with removeOnComplete: 1 makes BullMQ remove the first.
    add_jobs(
        port,
        &json!([{ "name": "ok", "opts": { "jobId": "job-next", "removeOnComplete": 1 } }]),
    );
    worker
        .until(|l| l["event"] == "completed" && l["id"] == "job-next")
        .await;
    assert_eq!(
        report(port, &["job-removed"])[0]["missing"],
        true,
        "BullMQ removed it"
    );
    let removed = service.get("/jobs/job-removed", None).await;
    assert_eq!(
        removed.status,
        StatusCode::OK,
        "still served: {:?}",
        removed.body
    );
    assert_eq!(removed.headers["x-warmcache-source"], "reasoning_job");
    assert_same(&removed.body, &by_id("job-removed"));
    let mut redis = server.foreign().await;
    let ttl: i64 = redis.ttl("reasoning_job:job-removed").await.expect("ttl");
    assert!((86_390..=86_400).contains(&ttl), "24 h, got {ttl}");

    let unknown = service.get("/jobs/no-such-job", None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etags_give_304_and_a_long_poll_returns_when_the_job_completes() {
    let server = RedisServer::start();
    let port = server.port();
    let service = std::sync::Arc::new(JobsService::start(&server));
    let mut worker = Worker::start(port).await;
    add_jobs(
        port,
        &json!([{ "name": "gated", "opts": { "jobId": "job-gated" } }]),
    );
    // Active once the worker took it (waiting before): poll the plain route.
    let active = service.until_status("/jobs/job-gated", "active").await;
    let etag = active.etag();
    assert_eq!(
        service.get("/jobs/job-gated", Some(&etag)).await.status,
        StatusCode::NOT_MODIFIED
    );
    let expired = service.get("/jobs/job-gated?waitMs=20", Some(&etag)).await;
    assert_eq!(
        expired.status,
        StatusCode::NOT_MODIFIED,
        "nothing changed within 20 ms"
    );
    assert_eq!(
        service
            .get("/jobs/job-gated?waitMs=30001", Some(&etag))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        service
            .get("/jobs/job-gated?waitMs=soon", Some(&etag))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    let poll = tokio::spawn({
        let service = std::sync::Arc::clone(&service);
        let etag = etag.clone();
        async move {
            let answer = service
                .get("/jobs/job-gated?waitMs=30000", Some(&etag))
                .await;
            (answer, now_us())
        }
    });
    // The poll is registered before the job can finish.
    while service.jobs.waiting() == 0 {
        tokio::task::yield_now().await;
    }
    let mut redis = server.foreign().await;
    let () = redis.set("gate:job-gated", 1).await.expect("set");
    let returning = worker.until(|l| l["returning"] == "job-gated").await;
    let (answer, woke_at) = poll.await.expect("poll task");
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["status"], "completed");
    assert_eq!(answer.body["result"], json!({ "gated": true }));
    assert_ne!(answer.etag(), etag);
    let returned_at = returning["atUs"].as_u64().expect("atUs");
    eprintln!(
        "long poll woke {} µs after the worker's processor returned",
        woke_at.saturating_sub(returned_at)
    );
    assert_eq!(service.jobs.waiting(), 0, "the waiter left");
    // The same answer (and ETag) from the record afterwards.
    let after = service.get("/jobs/job-gated", None).await;
    assert_eq!(after.etag(), answer.etag());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_recovers_missed_events_after_a_trim_and_a_redis_restart() {
    let mut server = RedisServer::start();
    let port = server.port();
    let mut service = JobsService::start(&server);
    let service_jobs = service.jobs.clone();
    let mut worker = Worker::start(port).await;
    add_jobs(
        port,
        &json!([{ "name": "gated", "opts": { "jobId": "job-trim" } }]),
    );
    let active = service.until_status("/jobs/job-trim", "active").await;
    let poll = {
        let router = service.router.clone();
        let etag = active.etag();
        tokio::spawn(async move {
            support::bullmq::get_with(&router, "/jobs/job-trim?waitMs=30000", Some(&etag)).await
        })
    };
    while service_jobs.waiting() == 0 {
        tokio::task::yield_now().await;
    }
    // The follower stops (as when its connection is down); the job completes
    // and the stream is trimmed past everything it read.
    let follower = service.follower.take().expect("started");
    let last_id = follower.shutdown().await.expect("it read events");
    let mut redis = server.foreign().await;
    let () = redis.set("gate:job-trim", 1).await.expect("set");
    worker
        .until(|l| l["event"] == "completed" && l["id"] == "job-trim")
        .await;
    let _: i64 = redis::cmd("XTRIM")
        .arg("bull:reasoning:events")
        .arg("MAXLEN")
        .arg(0)
        .query_async(&mut redis)
        .await
        .expect("xtrim");
    let resumed = service_jobs.resume_follower(Default::default(), &last_id);
    let answer = poll.await.expect("poll task");
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["status"], "completed", "the re-check found it");
    assert_eq!(resumed.gaps(), 1);
    let recorded: Option<String> = redis.get("reasoning_job:job-trim").await.expect("get");
    assert!(recorded.is_some_and(|r| r.contains("\"completed\"")));

    // Redis restarts (empty): the follower reconnects by itself and sees
    // the jobs of the new stream.
    server.restart();
    while resumed.connects() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    add_jobs(
        port,
        &json!([{ "name": "ok", "data": { "n": 5 }, "opts": { "jobId": "job-after" } }]),
    );
    worker
        .until(|l| l["event"] == "completed" && l["id"] == "job-after")
        .await;
    let mut redis = server.foreign().await;
    let recorded = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let record: Option<String> = redis.get("reasoning_job:job-after").await.expect("get");
            if let Some(record) = record {
                break record;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the follower recorded it within 10 s");
    assert!(recorded.contains(r#""result":{"answer":10}"#), "{recorded}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_are_400_without_redis_and_malformed_hashes_are_typed_errors() {
    let server = RedisServer::start();
    let service = JobsService::start(&server);
    let mut redis = server.foreign().await;
    let () = redis
        .zadd("bull:reasoning:completed", "job-string", 1)
        .await
        .expect("zadd");
    let () = redis
        .set("bull:reasoning:job-string", "not a hash")
        .await
        .expect("set");
    let () = redis
        .lpush("bull:reasoning:wait", "job-bad-time")
        .await
        .expect("lpush");
    let () = redis
        .hset("bull:reasoning:job-bad-time", "timestamp", "soon")
        .await
        .expect("hset");
    for id in ["job-string", "job-bad-time"] {
        for _ in 0..3 {
            let answer = service.get(&format!("/jobs/{id}"), None).await;
            assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{id}");
            assert_eq!(answer.body["error"]["code"], "bullmq_job_malformed", "{id}");
        }
    }

    // No Redis at all: a good id needs it (503), a bad id never gets there.
    let mut gone = server;
    gone.kill();
    for bad in ["a%3Ab", "a*", "%20"] {
        let answer = service.get(&format!("/jobs/{bad}"), None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(answer.body["error"]["code"], "invalid_id");
    }
    let good = service.get("/jobs/job-1", None).await;
    assert_eq!(good.status, StatusCode::SERVICE_UNAVAILABLE);
}
