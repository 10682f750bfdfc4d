//! The background task that keeps the snapshot fresh.
//!
//! [`Refresher::builder`] spawns one tokio task that fetches from a
//! [`SnapshotSource`] on a fixed timetable, start to start every TTL (each
//! round moved by its own random jitter, so a fleet does not query in
//! lock-step, and started ahead of its slot by the recent refresh duration so
//! that its snapshot is in place before the current one's `expiresAt`; see
//! [`crate::schedule`] for the rules and why), under a timeout, and swaps
//! each result into the [`SnapshotCache`]. Rendering and compression happen
//! in the round (off the worker threads for large sections) and count in its
//! duration. On failure it keeps the last good data, records the error in a
//! new snapshot and retries with exponential backoff (1 s, 2 s, 4 s, ...
//! capped at the TTL); a retry that succeeds goes back to the timetable.
//! [`Refresher::refresh_now`] asks for a fetch that starts after the call;
//! concurrent callers share one fetch, and a manual fetch starts a new
//! timetable from its own start. Dropping the handle or calling
//! [`Refresher::shutdown`] stops the task.

use std::fmt;
use std::mem;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::metrics::RefreshMetrics;
use crate::rng::SplitMix64;
use crate::schedule::{Schedule, Slot};
use crate::section::Loaded;
use crate::settings::{ConfigError, RefreshConfig, parse_jitter};
use crate::snapshot::{LastError, Snapshot, SnapshotCache, Timestamp};
use crate::source::{SnapshotSource, SourceError};

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The source reported an error.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The source did not answer within the refresh timeout.
    #[error("refresh timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The data could not be rendered to JSON.
    #[error("could not render the snapshot: {0}")]
    Render(#[from] serde_json::Error),
    /// The refresher has stopped; no fetch will happen.
    #[error("the refresher has stopped")]
    Stopped,
}

/// The result every waiter of one fetch receives (the same `Arc`).
pub type RefreshResult = Result<(), Arc<RefreshError>>;

/// Builds and spawns a [`Refresher`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RefresherBuilder {
    ttl: Duration,
    timeout: Duration,
    jitter: f64,
    backoff_start: Duration,
}

impl Default for RefresherBuilder {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            jitter: 0.1,
            backoff_start: Duration::from_secs(1),
        }
    }
}

impl RefresherBuilder {
    /// Refresh period, start to start, and snapshot lifetime (default 30 s).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Time bound of one fetch (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Each round starts up to `jitter / 2 × TTL` before or after its slot
    /// (so periods stay within `TTL × (1 ± jitter)`), and each retry delay
    /// is multiplied by a random factor in `1 ± jitter`; 0 to 0.5 (default 0.1).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// First retry delay after a failure; doubles per failure up to the TTL (default 1 s).
    pub fn backoff_start(mut self, backoff_start: Duration) -> Self {
        self.backoff_start = backoff_start;
        self
    }

    /// Takes TTL, timeout and jitter from the service configuration.
    pub fn config(self, config: &RefreshConfig) -> Self {
        self.ttl(config.ttl)
            .timeout(config.timeout)
            .jitter(config.jitter)
    }

    /// Spawns the refresh task on the current tokio runtime. The first fetch
    /// starts at once.
    ///
    /// # Errors
    /// A zero TTL, timeout or backoff, or a jitter outside 0 to 0.5.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn<S: SnapshotSource>(
        self,
        source: S,
        cache: SnapshotCache<S::Set>,
    ) -> Result<Refresher<S>, ConfigError> {
        for (name, value) in [
            ("ttl", self.ttl),
            ("timeout", self.timeout),
            ("backoff_start", self.backoff_start),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(name, "0", "a positive duration"));
            }
        }
        parse_jitter("jitter", &self.jitter.to_string())?;

        let shared = Arc::new(Shared {
            waiters: Mutex::new(Waiters::default()),
            wake: Notify::new(),
        });
        let cancel = CancellationToken::new();
        let source = Arc::new(source);
        let task = RefreshTask {
            schedule: Schedule::new(self.ttl, self.jitter),
            settings: self,
            source: Arc::clone(&source),
            cache,
            shared: Arc::clone(&shared),
            rng: SplitMix64::from_entropy(),
            metrics: RefreshMetrics::register(),
        };
        let handle = tokio::spawn(task.run(cancel.clone()));
        Ok(Refresher {
            source,
            shared,
            task: Some(handle),
            _stop_on_drop: cancel.clone().drop_guard(),
            cancel,
        })
    }
}

/// Handle to the refresh task of source `S`. Dropping it stops the task.
///
/// The handle keeps the source too ([`Refresher::source`]), so a caller can
/// read what the source knows (`BigQuerySource::stats`, a test source's
/// counters) without keeping a clone of it.
///
/// # Timetable
///
/// Rounds start every TTL, start to start: the first round (or a manual
/// [`Refresher::refresh_now`]) anchors the timetable, and round k is due k
/// TTLs after it, moved by a jitter of up to `jitter / 2 × TTL` drawn for
/// that round alone, so the offsets never add up. A round starts ahead of
/// its slot by 5/4 of the longest of the last four successful rounds (at
/// most half the TTL), so that, while the source is healthy, its snapshot
/// is in place before the current one's [`Loaded::expires_at`], which is
/// that slot. A round that overruns is followed at once, never by two
/// rounds at a time; missed slots are skipped. Failures are retried with
/// backoff, and a retry that succeeds returns to the timetable.
pub struct Refresher<S> {
    source: Arc<S>,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
    cancel: CancellationToken,
    _stop_on_drop: DropGuard,
}

/// State shared by the handle (and its `refresh_now` callers) and the task.
#[derive(Debug)]
struct Shared {
    /// A std mutex: held only to push or take the waiter list, never across
    /// an `.await`.
    waiters: Mutex<Waiters>,
    /// Wakes the task when a `refresh_now` caller arrives.
    wake: Notify,
}

#[derive(Debug, Default)]
struct Waiters {
    /// Callers waiting for the next fetch to start and finish.
    pending: Vec<oneshot::Sender<RefreshResult>>,
    /// Set when the task has ended: new callers get `Stopped` at once.
    closed: bool,
}

impl<S> fmt::Debug for Refresher<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refresher")
            .field("source", &std::any::type_name::<S>())
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

impl Refresher<()> {
    /// A builder with the defaults (TTL 30 s, timeout 10 s, jitter 0.1).
    /// (Named on `Refresher<()>` so that `Refresher::builder()` needs no
    /// type; [`RefresherBuilder::spawn`] fixes the source type.)
    pub fn builder() -> RefresherBuilder {
        RefresherBuilder::default()
    }
}

impl<S> Refresher<S> {
    /// The source the task fetches from (shared with it).
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Asks for a fetch that starts after this call and waits for its result.
    /// Any number of concurrent callers share one fetch. A manual refresh
    /// that succeeds starts a new timetable: the next round is due one TTL
    /// after it started.
    ///
    /// # Errors
    /// The fetch's error (shared by every caller of that fetch), or
    /// [`RefreshError::Stopped`] once the task has ended.
    pub async fn refresh_now(&self) -> RefreshResult {
        let (tx, rx) = oneshot::channel();
        {
            let mut waiters = self
                .shared
                .waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if waiters.closed {
                return Err(Arc::new(RefreshError::Stopped));
            }
            waiters.pending.push(tx);
        }
        self.shared.wake.notify_one();
        rx.await
            .unwrap_or_else(|_| Err(Arc::new(RefreshError::Stopped)))
    }

    /// Stops the task (cancelling a fetch in progress) and waits for it to end.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            // The task never panics by design; if it did, there is nothing left to stop.
            let _ = task.await;
        }
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

/// The task itself: owns the source and the schedule.
struct RefreshTask<S: SnapshotSource> {
    settings: RefresherBuilder,
    schedule: Schedule,
    source: Arc<S>,
    cache: SnapshotCache<S::Set>,
    shared: Arc<Shared>,
    rng: SplitMix64,
    metrics: RefreshMetrics,
}

/// Closes the waiter list when the task ends, however it ends, so no
/// `refresh_now` caller waits forever.
struct CloseOnExit(Arc<Shared>);

impl Drop for CloseOnExit {
    fn drop(&mut self) {
        let mut waiters = self
            .0
            .waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        waiters.closed = true;
        waiters.pending.clear();
    }
}

impl<S: SnapshotSource> RefreshTask<S> {
    async fn run(mut self, cancel: CancellationToken) {
        let _close = CloseOnExit(Arc::clone(&self.shared));
        let mut next_fetch = Instant::now();
        // The slot of the next scheduled round; `None` until the first round
        // has anchored the timetable.
        let mut next_slot: Option<Slot> = None;
        let mut generation = 0u64;
        let mut failures = 0u32;
        loop {
            let scheduled = tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                () = sleep_until(next_fetch) => true,
                () = self.shared.wake.notified() => {
                    // A stale wake-up (its caller was served by the last fetch) is no reason to fetch.
                    if self.no_waiters() && Instant::now() < next_fetch {
                        continue;
                    }
                    Instant::now() >= next_fetch
                }
            };
            let waiters = mem::take(
                &mut self
                    .shared
                    .waiters
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pending,
            );
            // A round the timetable did not call for (the first, a manual
            // one) starts a new timetable at its own start.
            let slot = match next_slot {
                Some(slot) if scheduled => self.schedule.catch_up(slot, Instant::now()),
                _ => Schedule::anchor(Instant::now()),
            };
            let result = tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                result = self.refresh_once(generation + 1, failures + 1, slot) => result,
            };
            next_fetch = match &result {
                Ok(next) => {
                    generation += 1;
                    failures = 0;
                    next_slot = Some(*next);
                    self.schedule.start_of(slot, *next, Instant::now())
                }
                Err(_) => {
                    failures = failures.saturating_add(1);
                    // Retries keep the failed round's slot: a success goes back to its grid.
                    next_slot = Some(slot);
                    let wait = backoff(self.settings.backoff_start, self.settings.ttl, failures);
                    Instant::now() + self.jittered(wait)
                }
            };
            let result = result.map(|_| ());
            for waiter in waiters {
                // A caller that gave up waiting is not an error.
                let _ = waiter.send(result.clone());
            }
        }
    }

    fn no_waiters(&self) -> bool {
        self.shared
            .waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pending
            .is_empty()
    }

    /// Fetches, renders and stores; on failure stores the old data with the
    /// error. On success, returns the slot of the next round (its
    /// snapshot's `expiresAt` is that slot).
    async fn refresh_once(
        &mut self,
        generation: u64,
        failure_number: u32,
        slot: Slot,
    ) -> Result<Slot, Arc<RefreshError>> {
        // The data is as of the moment the queries started.
        let started = Timestamp::now();
        let fetched = match timeout(self.settings.timeout, self.source.fetch()).await {
            Err(_) => Err(RefreshError::Timeout(self.settings.timeout)),
            Ok(Err(e)) => Err(RefreshError::Source(e)),
            Ok(Ok(data)) => {
                let next = self
                    .schedule
                    .next_slot(slot, Instant::now(), self.rng.next_f64());
                let lifetime = next.due.saturating_duration_since(started.instant);
                let rendering = Instant::now();
                // Sections that did not change keep their compressed bytes.
                let serving = self.cache.load_full();
                let previous = serving.data.as_deref().map(|loaded| &loaded.sections);
                Loaded::<S::Set>::render_after(generation, data, started, lifetime, previous)
                    .await
                    .map(|sections| (sections, next, rendering.elapsed()))
                    .map_err(RefreshError::from)
            }
        };
        let elapsed = started.age();
        self.metrics.duration.record(elapsed);
        if fetched.is_ok() {
            &self.metrics.ok
        } else {
            &self.metrics.error
        }
        .increment(1);
        let previous = self.cache.load_full();
        match fetched {
            Ok((sections, next, render_time)) => {
                let compress_ms = sections.compress_time().as_secs_f64() * 1e3;
                let render_ms = render_time.as_secs_f64() * 1e3;
                tracing::debug!(
                    generation,
                    render_ms,
                    compress_ms,
                    "sections rendered and compressed"
                );
                tracing::info!(generation, elapsed_ms = elapsed.as_millis() as u64, mode = %previous.mode, "snapshot refreshed");
                self.cache.store(Snapshot {
                    mode: previous.mode,
                    data: Some(Arc::new(sections)),
                    last_error: None,
                });
                self.schedule.record(started.age());
                Ok(next)
            }
            Err(error) => {
                let message: Arc<str> = error.to_string().into();
                tracing::warn!(error = %message, consecutive_failures = failure_number, serving_generation = previous.data.as_ref().map(|d| d.generation), "snapshot refresh failed; keeping the last good data");
                self.cache.store(Snapshot {
                    mode: previous.mode,
                    data: previous.data.clone(),
                    last_error: Some(LastError {
                        message,
                        at: Timestamp::now(),
                        consecutive_failures: failure_number,
                    }),
                });
                Err(Arc::new(error))
            }
        }
    }

    fn jittered(&mut self, wait: Duration) -> Duration {
        let factor = 1.0 + self.settings.jitter * (2.0 * self.rng.next_f64() - 1.0);
        wait.mul_f64(factor)
    }
}

/// Delay before retry number `failures` (1-based): `start * 2^(failures-1)`, at most `cap`.
fn backoff(start: Duration, cap: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    start.saturating_mul(1 << doublings).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_start_and_stops_at_the_cap() {
        let s = Duration::from_secs(1);
        let cap = Duration::from_secs(30);
        let delays: Vec<u64> = (1..=7).map(|n| backoff(s, cap, n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(s, cap, u32::MAX), cap);
    }
}
