//! The background task that keeps the snapshot fresh.
//!
//! [`Refresher::builder`] spawns one tokio task that fetches from a
//! [`SnapshotSource`] every TTL (with random jitter, so a fleet does not query
//! in lock-step), under a timeout, and swaps each result into the
//! [`SnapshotCache`]. On failure it keeps the last good data, records the error
//! in a new snapshot and retries with exponential backoff (1 s, 2 s, 4 s, ...
//! capped at the TTL). [`Refresher::refresh_now`] asks for a fetch that starts
//! after the call; concurrent callers share one fetch. Dropping the handle or
//! calling [`Refresher::shutdown`] stops the task.

use std::mem;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::config::{ConfigError, RefreshConfig, parse_jitter};
use crate::metrics::RefreshMetrics;
use crate::rng::SplitMix64;
use crate::snapshot::{LastError, Sections, Snapshot, SnapshotCache, Timestamp};
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
    /// Refresh period and snapshot lifetime (default 30 s).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Time bound of one fetch (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Each wait is multiplied by a random factor in `1 ± jitter`; 0 to 0.5 (default 0.1).
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
        cache: SnapshotCache,
    ) -> Result<Refresher, ConfigError> {
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
        let task = RefreshTask {
            settings: self,
            source,
            cache,
            shared: Arc::clone(&shared),
            rng: SplitMix64::from_entropy(),
            metrics: RefreshMetrics::register(),
        };
        let handle = tokio::spawn(task.run(cancel.clone()));
        Ok(Refresher {
            shared,
            task: Some(handle),
            _stop_on_drop: cancel.clone().drop_guard(),
            cancel,
        })
    }
}

/// Handle to the refresh task. Dropping it stops the task.
#[derive(Debug)]
pub struct Refresher {
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

impl Refresher {
    /// A builder with the defaults (TTL 30 s, timeout 10 s, jitter 0.1).
    pub fn builder() -> RefresherBuilder {
        RefresherBuilder::default()
    }

    /// Asks for a fetch that starts after this call and waits for its result.
    /// Any number of concurrent callers share one fetch. A successful manual
    /// refresh restarts the TTL period.
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
struct RefreshTask<S> {
    settings: RefresherBuilder,
    source: S,
    cache: SnapshotCache,
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
        let mut generation = 0u64;
        let mut failures = 0u32;
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                () = sleep_until(next_fetch) => {}
                () = self.shared.wake.notified() => {
                    // A stale wake-up (its caller was served by the last fetch) is no reason to fetch.
                    if self.no_waiters() && Instant::now() < next_fetch {
                        continue;
                    }
                }
            }
            let waiters = mem::take(
                &mut self
                    .shared
                    .waiters
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pending,
            );
            let result = tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                result = self.refresh_once(generation + 1, failures + 1) => result,
            };
            let wait = match &result {
                Ok(()) => {
                    generation += 1;
                    failures = 0;
                    self.settings.ttl
                }
                Err(_) => {
                    failures = failures.saturating_add(1);
                    backoff(self.settings.backoff_start, self.settings.ttl, failures)
                }
            };
            next_fetch = Instant::now() + self.jittered(wait);
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

    /// Fetches, renders and stores; on failure stores the old data with the error.
    async fn refresh_once(&mut self, generation: u64, failure_number: u32) -> RefreshResult {
        // The data is as of the moment the queries started.
        let started = Timestamp::now();
        let fetched = match timeout(self.settings.timeout, self.source.fetch()).await {
            Err(_) => Err(RefreshError::Timeout(self.settings.timeout)),
            Ok(Err(e)) => Err(RefreshError::Source(e)),
            Ok(Ok(data)) => Sections::render(generation, data, started, self.settings.ttl)
                .map_err(RefreshError::from),
        };
        self.metrics.duration.record(started.age());
        if fetched.is_ok() {
            &self.metrics.ok
        } else {
            &self.metrics.error
        }
        .increment(1);
        let previous = self.cache.load_full();
        match fetched {
            Ok(sections) => {
                tracing::info!(generation, elapsed_ms = started.age().as_millis() as u64, mode = %previous.mode, "snapshot refreshed");
                self.cache.store(Snapshot {
                    mode: previous.mode,
                    data: Some(Arc::new(sections)),
                    last_error: None,
                });
                Ok(())
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
