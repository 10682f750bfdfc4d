//! [`Scripted`]: a controllable [`SnapshotSource`] that wraps another one
//! (by default a seeded [`MockSource`]) and follows a script of [`Step`]s:
//! succeed, fail, hang, answer slowly; its data can be replaced. It records
//! when each fetch started and how many ran at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use time::macros::datetime;
use tokio::time::{Instant, sleep};

use crate::{MockSource, ReferenceSections, SnapshotData, SnapshotSource, SourceError};

/// What one fetch does before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Answers at once with the data (the inner source's, or the data set
    /// by [`Scripted::set_data`]).
    Succeed,
    /// Fails with [`SourceError::Unavailable`] carrying this message.
    Fail(&'static str),
    /// Never answers (until the refresher's timeout drops the fetch).
    Hang,
    /// Answers (as [`Step::Succeed`]) after this long, on tokio's clock.
    Slow(Duration),
}

/// A source that follows a script of [`Step`]s, then succeeds at once.
///
/// Clones share the script, the data and the records, so a test keeps one
/// clone and gives another to the [`Refresher`](crate::Refresher).
///
/// ```
/// use std::time::Duration;
/// use warmcache::testing::{Scripted, Step};
/// use warmcache::{Mode, Refresher, SnapshotCache};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let source = Scripted::new(&[Step::Succeed]);
/// let cache = SnapshotCache::new(Mode::Mock);
/// let refresher = Refresher::builder()
///     .ttl(Duration::from_secs(30))
///     .spawn(source.clone(), cache.clone())?;
/// refresher.refresh_now().await?;
///
/// source.fail_next("bigquery is down");
/// assert!(refresher.refresh_now().await.is_err());
/// assert!(cache.load().data.is_some(), "the last good data stays");
/// assert_eq!(source.fetches(), 2);
/// refresher.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct Scripted<S = MockSource> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    source: S,
    script: Mutex<VecDeque<Step>>,
    data: Mutex<Option<SnapshotData>>,
    fetch_times: Mutex<Vec<Instant>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

impl<S> Clone for Scripted<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> std::fmt::Debug for Scripted<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripted")
            .field("script", &*lock(&self.inner.script))
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

/// A lock that a panicking test thread cannot make unusable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Scripted<MockSource> {
    /// A script over the mock data of seed 42 at 2026-11-26 12:00 UTC (the
    /// same data on every run).
    pub fn new(steps: &[Step]) -> Self {
        let mock = MockSource::new(42).with_now(datetime!(2026-11-26 12:00 UTC));
        Self::wrap(mock, steps)
    }
}

impl<S> Scripted<S> {
    /// A script over any source: a successful step answers with what
    /// `source` fetches (unless [`set_data`](Self::set_data) replaced it).
    pub fn wrap(source: S, steps: &[Step]) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                script: Mutex::new(steps.iter().copied().collect()),
                data: Mutex::new(None),
                fetch_times: Mutex::new(Vec::new()),
                in_flight: AtomicUsize::new(0),
                most_in_flight: AtomicUsize::new(0),
            }),
        }
    }

    /// Appends a step to the script.
    pub fn push(&self, step: Step) {
        lock(&self.inner.script).push_back(step);
    }

    /// The next fetch (after those already scripted) fails with `why`.
    pub fn fail_next(&self, why: &'static str) {
        self.push(Step::Fail(why));
    }

    /// The next fetch (after those already scripted) answers after `delay`.
    pub fn delay_next(&self, delay: Duration) {
        self.push(Step::Slow(delay));
    }

    /// The next fetch (after those already scripted) never answers.
    pub fn hang_next(&self) {
        self.push(Step::Hang);
    }

    /// Successful fetches answer with `data` from now on (`None`: with the
    /// inner source's data again).
    pub fn set_data(&self, data: Option<SnapshotData>) {
        *lock(&self.inner.data) = data;
    }

    /// How many fetches started.
    pub fn fetches(&self) -> usize {
        lock(&self.inner.fetch_times).len()
    }

    /// When each fetch started (tokio's clock, so paused-clock tests can
    /// compare them).
    pub fn fetch_times(&self) -> Vec<Instant> {
        lock(&self.inner.fetch_times).clone()
    }

    /// Start times of the fetches, in whole seconds after `origin`.
    pub fn fetch_seconds(&self, origin: Instant) -> Vec<u64> {
        self.fetch_times()
            .iter()
            .map(|t| t.duration_since(origin).as_secs())
            .collect()
    }

    /// Time between the starts of consecutive fetches.
    pub fn fetch_intervals(&self) -> Vec<Duration> {
        self.fetch_times().windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// The most fetches that ever ran at the same time.
    pub fn most_in_flight(&self) -> usize {
        self.inner.most_in_flight.load(Ordering::SeqCst)
    }

    /// How many clones of this source exist (this one included): 1 once a
    /// refresher that held one has stopped.
    pub fn clones(&self) -> usize {
        Arc::strong_count(&self.inner)
    }
}

/// Counts a fetch in flight until dropped (however the fetch ends).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<S: SnapshotSource<Set = ReferenceSections>> SnapshotSource for Scripted<S> {
    type Set = ReferenceSections;

    async fn fetch(&self) -> Result<SnapshotData, SourceError> {
        lock(&self.inner.fetch_times).push(Instant::now());
        let now_in_flight = self.inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner
            .most_in_flight
            .fetch_max(now_in_flight, Ordering::SeqCst);
        let _in_flight = InFlight(&self.inner.in_flight);
        let step = lock(&self.inner.script)
            .pop_front()
            .unwrap_or(Step::Succeed);
        match step {
            Step::Succeed => {}
            Step::Fail(why) => return Err(SourceError::Unavailable(why.to_owned())),
            Step::Hang => std::future::pending::<()>().await,
            Step::Slow(d) => sleep(d).await,
        }
        let set = lock(&self.inner.data).clone();
        match set {
            Some(data) => Ok(data),
            None => self.inner.source.fetch().await,
        }
    }
}
