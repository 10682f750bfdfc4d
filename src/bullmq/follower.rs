//! The events follower: one task per process reading the queue's events
//! stream with `XREAD BLOCK` on a connection of its own.
//!
//! On `completed` / `failed` it reads the job and records its final status
//! in `reasoning_job` ([`super::record`]), then wakes the job's long polls.
//! On any other event of a job it drops the job's L1 copy, and re-reads the
//! job only if somebody waits on it. It resumes from its last id after a
//! reconnect; when the stream no longer holds what came after that id
//! (trimmed, or lost with a Redis restart), the events are gone, so it
//! forgets every L1 copy and re-reads the jobs being waited on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::job::{JobAnswer, JobState, Rendered};
use super::state::text;
use super::{BullmqJobs, record};
use crate::l2::Dedicated;
use crate::tier::CacheId;

mod stream;

use stream::{Entry, StreamId, StreamInfo};

/// How the follower reads.
#[derive(Debug, Clone, Copy)]
pub struct FollowerOptions {
    /// Longest `XREAD BLOCK`.
    pub block: Duration,
    /// Entries per read.
    pub count: usize,
    /// Time bound of connecting and of a reply beyond the block.
    pub timeout: Duration,
}

impl Default for FollowerOptions {
    fn default() -> Self {
        Self {
            block: Duration::from_secs(1),
            count: 500,
            timeout: Duration::from_secs(1),
        }
    }
}

/// Handle of the follower task; dropping it stops the task.
#[derive(Debug)]
pub struct EventsFollower {
    progress: Arc<Progress>,
    task: Option<JoinHandle<()>>,
    cancel: CancellationToken,
    _stop_on_drop: DropGuard,
}

#[derive(Debug, Default)]
struct Progress {
    last_id: Mutex<Option<String>>,
    connects: AtomicU64,
    events: AtomicU64,
    gaps: AtomicU64,
}

impl EventsFollower {
    pub(super) fn spawn(jobs: BullmqJobs, options: FollowerOptions, start: Option<String>) -> Self {
        let cancel = CancellationToken::new();
        let progress = Arc::new(Progress::default());
        let start = start.as_deref().and_then(StreamId::parse);
        let task = tokio::spawn(run(
            jobs,
            options,
            start,
            Arc::clone(&progress),
            cancel.clone(),
        ));
        Self {
            progress,
            task: Some(task),
            _stop_on_drop: cancel.clone().drop_guard(),
            cancel,
        }
    }

    /// The id of the last event read (`None` before the first connect).
    pub fn last_id(&self) -> Option<String> {
        self.progress
            .last_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Successful connections so far (1 + reconnects).
    pub fn connects(&self) -> u64 {
        self.progress.connects.load(Ordering::Acquire)
    }

    /// Events read so far.
    pub fn events(&self) -> u64 {
        self.progress.events.load(Ordering::Acquire)
    }

    /// Times events were found missing (trimmed or lost) and held jobs re-read.
    pub fn gaps(&self) -> u64 {
        self.progress.gaps.load(Ordering::Acquire)
    }

    /// Stops the task, waits for it, and returns the last id read.
    pub async fn shutdown(mut self) -> Option<String> {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.last_id()
    }
}

/// Where the follower is: last id, and the calibration of its lag.
struct Position {
    last: Option<StreamId>,
    /// `entries-added` of the stream when it was last caught up, and the
    /// entries read since.
    calibration: Option<u64>,
    read_since: u64,
}

async fn run(
    jobs: BullmqJobs,
    options: FollowerOptions,
    start: Option<StreamId>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) {
    let metrics = &jobs.inner.metrics;
    let mut position = Position {
        last: start,
        calibration: None,
        read_since: 0,
    };
    let mut backoff = Duration::from_millis(50);
    loop {
        let connected = tokio::select! {
            () = cancel.cancelled() => return,
            c = jobs.inner.redis.dedicated_connection(options.block + options.timeout) => c,
        };
        let mut dedicated = match connected {
            Ok(dedicated) => dedicated,
            Err(e) => {
                tracing::debug!(error = %e, "BullMQ events follower cannot connect; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        if progress.connects.fetch_add(1, Ordering::AcqRel) > 0 {
            metrics.reconnects.increment(1);
        }
        let why = tokio::select! {
            () = cancel.cancelled() => None,
            why = follow(&jobs, &mut dedicated, options, &mut position, &progress) => Some(why),
        };
        jobs.set_following(false);
        metrics.connected.set(0.0);
        match why {
            None => return,
            Some(why) => tracing::warn!(
                queue = %jobs.inner.config.queue,
                reason = %why,
                "BullMQ events follower lost its connection; job answers come from Redis until it is back"
            ),
        }
    }
}

/// Positions, then reads until the connection fails or (Sentinel) its
/// node stops being the primary: a demoted primary still serves `XREAD`
/// as a replica, behind the new primary by the replication lag.
async fn follow(
    jobs: &BullmqJobs,
    dedicated: &mut Dedicated,
    options: FollowerOptions,
    position: &mut Position,
    progress: &Progress,
) -> String {
    let events_key = jobs.inner.keys.events.clone();
    let (redis, dedicated_epoch) = (&jobs.inner.redis, dedicated.epoch);
    let connection = &mut dedicated.connection;
    let info = match stream::info(connection, &events_key, options.timeout).await {
        Ok(info) => info,
        Err(e) => return e,
    };
    if place(position, info.as_ref()) {
        recheck(jobs, progress).await;
    }
    jobs.set_following(true);
    jobs.inner.metrics.connected.set(1.0);
    tracing::info!(queue = %jobs.inner.config.queue, "BullMQ events follower connected");
    loop {
        let last = position.last.unwrap_or_default();
        // Only the read is raced: an event being handled is finished first.
        let read = tokio::select! {
            read = stream::read(connection, &events_key, last, options) => read,
            () = redis.primary_moved(dedicated_epoch) => {
                return "its node is no longer the primary (Sentinel switch)".to_owned();
            }
        };
        let entries = match read {
            Ok(entries) => entries,
            Err(e) => return e,
        };
        let full = entries.len() >= options.count;
        let idle = entries.is_empty();
        for entry in entries {
            position.last = Some(entry.id);
            position.read_since += 1;
            *progress
                .last_id
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(entry.id.to_string());
            progress.events.fetch_add(1, Ordering::AcqRel);
            handle(jobs, entry).await;
        }
        if full || idle {
            // Behind (how far?) or idle (calibrate; is anything missing?).
            let info = match stream::info(connection, &events_key, options.timeout).await {
                Ok(info) => info,
                Err(e) => return e,
            };
            if place(position, info.as_ref()) {
                recheck(jobs, progress).await;
            }
            let lag = match (info, position.calibration) {
                (Some(info), Some(base)) => info
                    .entries_added
                    .saturating_sub(base + position.read_since),
                _ => 0,
            };
            jobs.inner.metrics.lag.set(lag as f64);
        } else {
            jobs.inner.metrics.lag.set(0.0);
        }
    }
}

/// Places the follower against the stream as it is now; true when events
/// after the last id are gone (the held jobs must be re-read).
fn place(position: &mut Position, info: Option<&StreamInfo>) -> bool {
    let Some(last) = position.last else {
        // First start: from the head, nothing missed.
        position.last = Some(info.map_or_else(StreamId::default, |i| i.last_generated));
        position.calibration = info.map(|i| i.entries_added);
        position.read_since = 0;
        return false;
    };
    let Some(info) = info else {
        // The stream is gone (deleted, or lost with a Redis restart).
        position.last = Some(StreamId::default());
        position.calibration = Some(0);
        position.read_since = 0;
        return last != StreamId::default();
    };
    if info.last_generated == last {
        position.calibration = Some(info.entries_added);
        position.read_since = 0;
        return false;
    }
    if info.last_generated < last {
        // A new stream, younger than the last id: read it from the start.
        position.last = Some(StreamId::default());
        position.calibration = Some(0);
        position.read_since = 0;
        return true;
    }
    // Newer events exist; missing ones if the oldest kept is after `last`.
    info.first.is_none_or(|first| first > last)
}

/// Forgets L1 and re-reads every job somebody waits on.
async fn recheck(jobs: &BullmqJobs, progress: &Progress) {
    progress.gaps.fetch_add(1, Ordering::AcqRel);
    jobs.forget_all();
    let watched = jobs.waiters().watched();
    tracing::info!(
        jobs = watched.len(),
        "BullMQ events were missed; re-reading the jobs waited on"
    );
    for id in watched {
        refresh(jobs, &id).await;
    }
}

async fn handle(jobs: &BullmqJobs, entry: Entry) {
    jobs.inner
        .metrics
        .event(entry.field("event").unwrap_or(""))
        .increment(1);
    let Some(id) = entry.field("jobId").and_then(|id| CacheId::parse(id).ok()) else {
        return;
    };
    jobs.forget(&id);
    match entry.field("event") {
        Some(event @ ("completed" | "failed")) => finished(jobs, &id, event, &entry).await,
        _ if jobs.waiters().is_watched(&id) => refresh(jobs, &id).await,
        _ => {}
    }
}

/// A job finished: its final answer from the hash, or from the event when
/// the hash is gone; recorded, then published.
async fn finished(jobs: &BullmqJobs, id: &CacheId, event: &str, entry: &Entry) {
    let rendered = match read_retrying(jobs, id).await {
        Ok(Some(rendered)) if rendered.is_final => rendered,
        // Retried meanwhile: no final status to record.
        Ok(Some(rendered)) => return jobs.waiters().publish(id, &rendered),
        Ok(None) => Arc::new(Rendered::new(from_event(id, event, entry))),
        Err(e) => {
            return tracing::warn!(error = %e, "cannot read a finished BullMQ job; its status is recorded on its next read");
        }
    };
    let stored = record::write_final(jobs, &rendered).await;
    jobs.waiters().publish(id, &stored);
}

/// Reads a job, trying again a few times (50 ms to 0.8 s apart) while Redis
/// fails: a final event is not replayed, so giving up at once would leave
/// the status unrecorded until the next read.
async fn read_retrying(
    jobs: &BullmqJobs,
    id: &CacheId,
) -> Result<Option<Arc<Rendered>>, super::BullmqError> {
    let mut pause = Duration::from_millis(50);
    loop {
        match jobs.read(id).await {
            Err(super::BullmqError::L2(e)) if pause <= Duration::from_millis(800) => {
                tracing::debug!(error = %e, "cannot read a finished BullMQ job yet; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            other => return other,
        }
    }
}

/// Re-reads a job somebody waits on and publishes what BullMQ has now.
async fn refresh(jobs: &BullmqJobs, id: &CacheId) {
    match jobs.read(id).await {
        Ok(Some(rendered)) if rendered.is_final => {
            let stored = record::write_final(jobs, &rendered).await;
            jobs.waiters().publish(id, &stored);
        }
        Ok(Some(rendered)) => jobs.waiters().publish(id, &rendered),
        Ok(None) => {}
        Err(e) => tracing::debug!(error = %e, "cannot re-read a BullMQ job"),
    }
}

/// What the event alone tells of a job whose hash is already removed
/// (`removeOnComplete: true`): no attempts count (so the record is not
/// authoritative), no added or started time.
fn from_event(id: &CacheId, event: &str, entry: &Entry) -> JobAnswer {
    let completed = event == "completed";
    JobAnswer {
        job_id: id.as_str().to_owned(),
        status: if completed {
            JobState::Completed
        } else {
            JobState::Failed
        },
        result: completed
            .then(|| {
                entry
                    .field("returnvalue")
                    .and_then(|v| serde_json::from_str(v).ok())
            })
            .flatten(),
        error: (!completed)
            .then(|| entry.field("failedReason").map(str::to_owned))
            .flatten(),
        added_at: None,
        started_at: None,
        finished_at: i64::try_from(entry.id.ms).ok(),
        progress: None,
        attempts_made: None,
        data: None,
    }
}

/// `text` for the stream module.
fn value_text(value: &Value) -> Option<String> {
    text(value)
}
