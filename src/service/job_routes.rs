//! The job routes: `GET /jobs/{jobId}` (from `reasoning_job`, else from
//! BullMQ's records; ETags and long polls) and `PUT /jobs/{jobId}`.
//!
//! Every answer carries an `ETag` of its body; `If-None-Match` naming it
//! gets 304. With `?waitMs=N` (N ≤ 30,000) and a matching `If-None-Match`,
//! the request waits until the job's answer differs (the BullMQ follower
//! publishes it) or N runs out (304). A waiting request is its own future:
//! it holds a watch receiver, and costs no task and no Redis call.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;

use super::http_metrics::HttpMetricsLayer;
use super::keyed_routes::{TIER_HEADER, body, json_response, keyed, path_id, same_id};
use super::snapshot_routes::if_none_match;
use super::{ApiError, AppState, KeyedCaches};
use crate::bullmq::{BullmqJobs, Rendered};
use crate::records::ReasoningJob;
use crate::tier::{CacheId, Tier};

/// `x-warmcache-source`, built once rather than parsed on every answer.
const SOURCE_HEADER: HeaderName = HeaderName::from_static("x-warmcache-source");

/// The request's `If-None-Match` values alone, boxed when there are any:
/// the `HeaderMap` extractor would copy every header of every request, and
/// a map held inline would make every read's future 88 bytes larger (each
/// request's future is copied into a fresh allocation).
struct IfNoneMatch(Option<Box<HeaderMap>>);

impl IfNoneMatch {
    /// Whether the request names `etag` (or `*`).
    fn matches(&self, etag: &HeaderValue) -> bool {
        self.0
            .as_deref()
            .is_some_and(|only| if_none_match(only, etag))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatch {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let mut values = parts
            .headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .peekable();
        if values.peek().is_none() {
            return Ok(Self(None));
        }
        let mut only = HeaderMap::new();
        for value in values {
            only.append(header::IF_NONE_MATCH, value.clone());
        }
        Ok(Self(Some(Box::new(only))))
    }
}

/// `?waitMs`, checked; a request without a query string (an ordinary
/// read) skips the query parser altogether.
struct Wait(Result<Duration, ApiError>);

impl<S: Send + Sync> FromRequestParts<S> for Wait {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self(match parts.uri.query() {
            None => Ok(Duration::ZERO),
            Some(_) => wait_of(Query::try_from_uri(&parts.uri)),
        }))
    }
}

/// The longest long poll.
const MAX_WAIT: Duration = Duration::from_secs(30);

pub(super) fn router(m: &HttpMetricsLayer) -> Router<AppState> {
    const JOB: &str = "/jobs/{job_id}";
    Router::new().route(JOB, get(m.timed(JOB, get_job)).put(m.timed(JOB, put_job)))
}

#[derive(Debug, Deserialize)]
struct JobQuery {
    #[serde(rename = "waitMs")]
    wait_ms: Option<String>,
}

/// `waitMs`, checked: a whole number of milliseconds up to 30,000.
fn wait_of(query: Result<Query<JobQuery>, QueryRejection>) -> Result<Duration, ApiError> {
    let query = query.map_err(|r| ApiError::InvalidWait(r.body_text()))?;
    let Some(text) = query.0.wait_ms else {
        return Ok(Duration::ZERO);
    };
    match text.parse::<u64>() {
        Ok(ms) if ms <= MAX_WAIT.as_millis() as u64 => Ok(Duration::from_millis(ms)),
        _ => Err(ApiError::InvalidWait(
            "expected a whole number of milliseconds from 0 to 30000".to_owned(),
        )),
    }
}

/// One answer: its body, ETag, and where it came from.
struct Answer {
    body: Bytes,
    etag: HeaderValue,
    tier: &'static str,
    source: &'static str,
}

impl Answer {
    fn published(rendered: &Rendered) -> Self {
        Self {
            body: rendered.body.clone(),
            etag: rendered.etag.clone(),
            tier: "l1",
            source: if rendered.is_final {
                "reasoning_job"
            } else {
                "bullmq"
            },
        }
    }

    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::ETAG, self.etag);
        headers.insert(TIER_HEADER, HeaderValue::from_static(self.tier));
        headers.insert(SOURCE_HEADER, HeaderValue::from_static(self.source));
        response
    }
}

fn not_modified(etag: HeaderValue) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    response.headers_mut().insert(header::ETAG, etag);
    response
}

/// The job now: `reasoning_job` (L1, then Redis), else BullMQ.
async fn current(keyed: &KeyedCaches, id: &CacheId) -> Result<Option<Answer>, ApiError> {
    if let Some(cached) = keyed.jobs.get_id(id).await? {
        let (tier, counter) = match cached.tier() {
            Tier::L1 => ("l1", &keyed.job_reads.record_l1),
            Tier::L2 | Tier::Loader => ("l2", &keyed.job_reads.record_l2),
        };
        counter.increment(1);
        return Ok(Some(Answer {
            etag: cached.etag().clone(),
            body: cached.json().clone(),
            tier,
            source: "reasoning_job",
        }));
    }
    if let Some(bullmq) = &keyed.bullmq {
        // Boxed: BullMQ's script call is a large state machine, and inline
        // it would make every read's future (an L1 hit's too) that large,
        // copied into a fresh allocation on every request.
        if let Some(rendered) = Box::pin(bullmq.lookup(id)).await? {
            return Ok(Some(Answer {
                body: rendered.body.clone(),
                etag: rendered.etag.clone(),
                tier: "l2",
                source: "bullmq",
            }));
        }
    }
    keyed.job_reads.not_found.increment(1);
    Ok(None)
}

async fn get_job(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    Wait(wait): Wait,
    asked: IfNoneMatch,
) -> Result<Response, ApiError> {
    let id = CacheId::parse(&path_id(id)?)?;
    let wait = wait?;
    let keyed = keyed(&state)?;
    match &keyed.bullmq {
        // A long poll's state (the watch, the timer) is boxed, so that an
        // ordinary read's future stays small: it is moved and copied at
        // every layer, on every request.
        Some(bullmq) if !wait.is_zero() && asked.0.is_some() => {
            Box::pin(long_poll(keyed, bullmq, id, wait, asked)).await
        }
        _ => {
            let answer = found(current(keyed, &id).await?, &id)?;
            Ok(if asked.matches(&answer.etag) {
                not_modified(answer.etag)
            } else {
                answer.into_response()
            })
        }
    }
}

/// The answer, or the job's 404.
fn found(answer: Option<Answer>, id: &CacheId) -> Result<Answer, ApiError> {
    answer.ok_or_else(|| ApiError::NoSuchRecord {
        what: "job",
        id: id.as_str().to_owned(),
    })
}

/// `?waitMs` with `If-None-Match`: the answer once it differs from the
/// client's, else 304 when `wait` runs out.
async fn long_poll(
    keyed: &KeyedCaches,
    bullmq: &BullmqJobs,
    id: CacheId,
    wait: Duration,
    asked: IfNoneMatch,
) -> Result<Response, ApiError> {
    // Registered before the read: nothing published from now on is missed.
    let mut guard = bullmq.waiters().watch(&id);
    let answer = found(current(keyed, &id).await?, &id)?;
    if !asked.matches(&answer.etag) {
        return Ok(answer.into_response());
    }
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, guard.changed()).await {
            Ok(Some(rendered)) if !asked.matches(&rendered.etag) => {
                return Ok(Answer::published(&rendered).into_response());
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Ok(not_modified(answer.etag)),
        }
    }
}

async fn put_job(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    job: Result<Json<ReasoningJob>, JsonRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let job = body(job)?;
    same_id(&id, &job.job_id)?;
    Ok(json_response(&keyed(&state)?.jobs.insert(&id, job).await?))
}

#[cfg(test)]
mod tests {
    /// The size of the future `handler` returns, without calling it.
    fn future_size<A, B, C, D, Fut, F: Fn(A, B, C, D) -> Fut>(_: &F) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// Every request's future is moved into a fresh allocation: a large
    /// one is that many cold cache lines written per request. Inline, the
    /// BullMQ lookup and the `If-None-Match` map made a read's 1,520 bytes.
    #[test]
    fn a_job_reads_future_stays_small() {
        let size = future_size(&super::get_job);
        assert!(size <= 512, "get_job's future is {size} bytes");
    }
}
