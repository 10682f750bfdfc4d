//! A scripted stand-in for the BigQuery REST API (`jobs.query`,
//! `getQueryResults` and `jobs.cancel`) on a free loopback port. It records
//! every request; `jobs.cancel` is always accepted and can be awaited
//! ([`FakeBigQuery::cancels`]); an answer of [`hang`] never comes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use warmcache::{BigQueryConfig, Credentials};

use super::PROJECT;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `POST` or `GET`.
    pub method: Method,
    /// The job id for `getQueryResults`, `None` for `jobs.query`.
    pub job: Option<String>,
    /// The raw query string.
    pub query: String,
    /// The JSON body (`Null` for GET).
    pub body: Value,
}

/// What the fake answers: a function of the request (and of the requests
/// before it, which it can count). [`hang`] as the answer: none, ever.
pub type Responder = Box<dyn Fn(&Recorded, &[Recorded]) -> (StatusCode, Value) + Send + Sync>;

/// The answer that never comes: the request is recorded, then the fake
/// keeps the connection open and silent.
pub fn hang() -> (StatusCode, Value) {
    (StatusCode::OK, json!({ "__fake_hangs": true }))
}

/// `answer`, held back until [`FakeBigQuery::release`] is called.
pub fn held(answer: (StatusCode, Value)) -> (StatusCode, Value) {
    (answer.0, json!({ "__fake_holds": answer.1 }))
}

struct FakeState {
    responder: Responder,
    seen: Mutex<Vec<Recorded>>,
    /// How many requests `seen` holds.
    seen_count: watch::Sender<usize>,
    /// `jobs.cancel` calls, in order; the count is published on `cancelled`.
    cancels: Mutex<Vec<Recorded>>,
    cancelled: watch::Sender<usize>,
    /// Set once by [`FakeBigQuery::release`]: held answers go out.
    released: watch::Sender<bool>,
}

/// The fake server; dropping it stops it.
pub struct FakeBigQuery {
    port: u16,
    state: Arc<FakeState>,
    task: JoinHandle<()>,
}

impl FakeBigQuery {
    /// Serves `responder`'s answers.
    pub async fn start(responder: Responder) -> Self {
        let state = Arc::new(FakeState {
            responder,
            seen: Mutex::new(Vec::new()),
            seen_count: watch::channel(0).0,
            cancels: Mutex::new(Vec::new()),
            cancelled: watch::channel(0).0,
            released: watch::channel(false).0,
        });
        let app = axum::Router::new()
            .route("/bigquery/v2/projects/{project}/queries", post(fake_query))
            .route(
                "/bigquery/v2/projects/{project}/queries/{job}",
                axum::routing::get(fake_results),
            )
            .route(
                "/bigquery/v2/projects/{project}/jobs/{job}/cancel",
                post(fake_cancel),
            )
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { port, state, task }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every `jobs.query` and `getQueryResults` request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until at least `count` `jobs.query` or `getQueryResults`
    /// requests have arrived (bound it with a timeout).
    pub async fn received(&self, count: usize) {
        let mut arrived = self.state.seen_count.subscribe();
        arrived
            .wait_for(|n| *n >= count)
            .await
            .expect("the fake keeps its sender");
    }

    /// Sends the answers made with [`held`], now and from now on.
    pub fn release(&self) {
        self.state.released.send_replace(true);
    }

    /// Waits until at least `count` `jobs.cancel` calls have arrived and
    /// returns them all (`job` is the cancelled job's id). Bound it with a
    /// timeout: it waits as long as it takes.
    pub async fn cancels(&self, count: usize) -> Vec<Recorded> {
        let mut arrived = self.state.cancelled.subscribe();
        arrived
            .wait_for(|n| *n >= count)
            .await
            .expect("the fake keeps its sender");
        self.state
            .cancels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for FakeBigQuery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(state: &FakeState, request: Recorded) -> (StatusCode, Json<Value>) {
    let (status, body) = {
        let mut seen = state.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let answer = (state.responder)(&request, &seen);
        seen.push(request);
        state.seen_count.send_replace(seen.len());
        answer
    };
    if body.get("__fake_hangs").is_some() {
        std::future::pending::<()>().await;
    }
    if let Some(held) = body.get("__fake_holds") {
        let mut released = state.released.subscribe();
        let _ = released.wait_for(|r| *r).await;
        return (status, Json(held.clone()));
    }
    (status, Json(body))
}

async fn fake_query(
    State(state): State<Arc<FakeState>>,
    RawQuery(query): RawQuery,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let request = Recorded {
        method: Method::POST,
        job: None,
        query: query.unwrap_or_default(),
        body,
    };
    answer(&state, request).await
}

async fn fake_results(
    State(state): State<Arc<FakeState>>,
    UrlPath((_project, job)): UrlPath<(String, String)>,
    RawQuery(query): RawQuery,
) -> (StatusCode, Json<Value>) {
    let request = Recorded {
        method: Method::GET,
        job: Some(job),
        query: query.unwrap_or_default(),
        body: Value::Null,
    };
    answer(&state, request).await
}

async fn fake_cancel(
    State(state): State<Arc<FakeState>>,
    UrlPath((_project, job)): UrlPath<(String, String)>,
    RawQuery(query): RawQuery,
) -> (StatusCode, Json<Value>) {
    let body = json!({
        "kind": "bigquery#jobCancelResponse",
        "job": { "jobReference": { "projectId": PROJECT, "jobId": job }, "status": { "state": "DONE" } },
    });
    let request = Recorded {
        method: Method::POST,
        job: Some(job),
        query: query.unwrap_or_default(),
        body: Value::Null,
    };
    let count = {
        let mut cancels = state.cancels.lock().unwrap_or_else(PoisonError::into_inner);
        cancels.push(request);
        cancels.len()
    };
    state.cancelled.send_replace(count);
    (StatusCode::OK, Json(body))
}

/// A query answer in BigQuery's JSON: `columns` as `(name, type)`, rows of
/// cells (strings or null). Not complete: the job reference only, with
/// location `US`.
pub fn result_page(
    job: &str,
    complete: bool,
    columns: &[(&str, &str)],
    rows: &[Vec<Value>],
) -> Value {
    if !complete {
        return json!({ "kind": "bigquery#queryResponse", "jobReference": { "projectId": PROJECT, "jobId": job, "location": "US" }, "jobComplete": false });
    }
    json!({
        "kind": "bigquery#queryResponse",
        "jobReference": { "projectId": PROJECT, "jobId": job, "location": "US" },
        "jobComplete": true,
        "totalBytesProcessed": "1234",
        "schema": { "fields": columns.iter().map(|(name, kind)| json!({ "name": name, "type": kind, "mode": "NULLABLE" })).collect::<Vec<_>>() },
        "rows": rows.iter().map(|cells| json!({ "f": cells.iter().map(|v| json!({ "v": v })).collect::<Vec<_>>() })).collect::<Vec<_>>(),
        "totalRows": rows.len().to_string(),
    })
}

/// A queue of answers, for scripts that go step by step.
pub fn scripted(answers: Vec<(StatusCode, Value)>) -> Responder {
    let queue = Mutex::new(VecDeque::from(answers));
    Box::new(move |_, _| {
        queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
            .unwrap_or((StatusCode::INTERNAL_SERVER_ERROR, json!({})))
    })
}

const DASHBOARD_COLUMNS: [(&str, &str); 10] = [
    ("kind", "STRING"),
    ("key", "STRING"),
    ("day", "DATE"),
    ("hour", "INTEGER"),
    ("name", "STRING"),
    ("category", "STRING"),
    ("revenue", "NUMERIC"),
    ("transactions", "INTEGER"),
    ("customers", "INTEGER"),
    ("units", "INTEGER"),
];
const PRODUCT_COLUMNS: [(&str, &str); 8] = [
    ("product_id", "STRING"),
    ("sku", "STRING"),
    ("name", "STRING"),
    ("category", "STRING"),
    ("price", "NUMERIC"),
    ("currency", "STRING"),
    ("stock_quantity", "INTEGER"),
    ("updated_at", "TIMESTAMP"),
];

/// A complete, valid answer for the section a request is labelled with.
pub fn canned(section: &str, job: &str) -> Value {
    let kpi = |key: &str| {
        vec![
            json!("kpi"),
            json!(key),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            json!("12.500000000"),
            json!("1"),
            json!("1"),
            json!("2"),
        ]
    };
    match section {
        "dashboard" => result_page(
            job,
            true,
            &DASHBOARD_COLUMNS,
            &[kpi("today"), kpi("7d"), kpi("30d")],
        ),
        "historical" => result_page(
            job,
            true,
            &[
                ("kind", "STRING"),
                ("period", "DATE"),
                ("revenue", "NUMERIC"),
                ("transactions", "INTEGER"),
                ("customers", "INTEGER"),
            ],
            &[],
        ),
        _ => result_page(
            job,
            true,
            &PRODUCT_COLUMNS,
            // A TIMESTAMP as float seconds, as BigQuery sends it by default.
            &[vec![
                json!("P1"),
                json!("S1"),
                json!("Kettle"),
                json!("Home"),
                json!("7.875000000"),
                Value::Null,
                json!("4"),
                json!("1.767323045123456E9"),
            ]],
        ),
    }
}

/// The `section` label of a `jobs.query` request.
pub fn section_of(request: &Recorded) -> String {
    request.body["labels"]["section"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Live-mode settings pointing at `fake` (dataset `shop`, a 50 MiB cap).
pub fn fake_config(fake: &FakeBigQuery) -> BigQueryConfig {
    BigQueryConfig {
        credentials: Credentials::Emulator(fake.host()),
        maximum_bytes_billed: 52_428_800,
        ..BigQueryConfig::new(PROJECT, "shop")
    }
}
