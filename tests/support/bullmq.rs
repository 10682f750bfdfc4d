//! BullMQ for the job tests: the real queue and worker of
//! `tests/node/scripts/bullmq.js`, and a warmcache router whose job routes
//! read that queue, with its events follower.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tower::ServiceExt;
use warmcache::bullmq::{BullmqConfig, BullmqJobs, EventsFollower, FollowerOptions};
use warmcache::service::{AppState, KeyedCaches, app};
use warmcache::{Mode, RedisHandle, SnapshotCache};

use super::RedisServer;
use super::node::NodeProcess;

/// The queue every job test uses.
pub const QUEUE: &str = "reasoning";

/// A router answering `/jobs` from `reasoning_job` and BullMQ.
pub struct JobsService {
    pub router: Router,
    pub jobs: BullmqJobs,
    pub follower: Option<EventsFollower>,
}

impl JobsService {
    /// On `server`, with the follower started (needs a tokio runtime).
    pub fn start(server: &RedisServer) -> Self {
        let redis = RedisHandle::connect_lazy(&server.config()).expect("valid settings");
        let jobs = BullmqJobs::new(
            &redis,
            BullmqConfig::new(QUEUE).expect("valid queue"),
            Duration::from_secs(60),
        );
        let keyed = KeyedCaches::new(&redis, 1 << 20, Duration::from_secs(60), false)
            .expect("valid caches")
            .with_bullmq(jobs.clone());
        let router = app(AppState {
            snapshots: SnapshotCache::new(Mode::Mock),
            ttl: Duration::from_secs(30),
            max_staleness: Duration::from_secs(120),
            keyed: Some(std::sync::Arc::new(keyed)),
        });
        let follower = Some(jobs.start_follower(FollowerOptions::default()));
        Self {
            router,
            jobs,
            follower,
        }
    }

    /// Reads `path` until the job's status is `status`; that answer.
    pub async fn until_status(&self, path: &str, status: &str) -> Answer {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let answer = self.get(path, None).await;
                if answer.body["status"] == status {
                    return answer;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{path} never became {status}"))
    }

    /// `GET path` with an optional `If-None-Match`.
    pub async fn get(&self, path: &str, if_none_match: Option<&str>) -> Answer {
        get_with(&self.router, path, if_none_match).await
    }
}

/// `GET path` on `router` with an optional `If-None-Match`.
pub async fn get_with(router: &Router, path: &str, if_none_match: Option<&str>) -> Answer {
    let mut request = Request::builder().uri(path);
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    }
}

/// A response.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn etag(&self) -> String {
        self.headers["etag"].to_str().expect("ascii").to_owned()
    }
}

/// Runs a one-shot command of `bullmq.js` and returns its lines.
fn command(port: u16, env: &[(&str, &str)]) -> Vec<Value> {
    let mut process = NodeProcess::start("bullmq.js", port, env);
    std::iter::from_fn(|| process.next_json()).collect()
}

/// Adds jobs (`[{name, data, opts}]`) with a BullMQ `Queue`; their ids.
pub fn add_jobs(port: u16, jobs: &Value) -> Vec<String> {
    let jobs = jobs.to_string();
    command(
        port,
        &[("BULLMQ_CMD", "add"), ("QUEUE", QUEUE), ("JOBS", &jobs)],
    )
    .into_iter()
    .map(|line| line["id"].as_str().expect("an id").to_owned())
    .collect()
}

/// What BullMQ itself says of `ids` (`Job.fromId` + `getState()`).
pub fn report(port: u16, ids: &[&str]) -> Vec<Value> {
    let ids = serde_json::to_string(ids).expect("ids");
    command(
        port,
        &[("BULLMQ_CMD", "report"), ("QUEUE", QUEUE), ("IDS", &ids)],
    )
}

/// The BullMQ worker, its printed lines forwarded to a channel.
pub struct Worker {
    lines: mpsc::UnboundedReceiver<Value>,
    _process: NodeProcess,
}

impl Worker {
    /// Starts it and waits until it is ready.
    pub async fn start(port: u16) -> Self {
        let mut process = NodeProcess::start(
            "bullmq.js",
            port,
            &[("BULLMQ_CMD", "worker"), ("QUEUE", QUEUE)],
        );
        let lines = process.lines_to_channel();
        let mut worker = Self {
            lines,
            _process: process,
        };
        worker.until(|line| line["ready"] == true).await;
        worker
    }

    /// Waits for the first line `wanted` accepts (others are dropped).
    pub async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), self.lines.recv())
                .await
                .expect("the worker printed it within 30 s")
                .expect("the worker is running");
            if wanted(&line) {
                return line;
            }
        }
    }
}
