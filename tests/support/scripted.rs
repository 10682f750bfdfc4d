//! A [`SnapshotSource`] that follows a script of steps (succeed, fail, hang,
//! answer slowly), producing real mock data and recording when each fetch
//! started and how many ran at once; and [`start`], a refresher on it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::macros::datetime;
use tokio::time::{Instant, sleep};
use warmcache::{
    MockSource, Mode, ReferenceSections, Refresher, SnapshotCache, SnapshotData, SnapshotSource,
    SourceError,
};

/// What the next fetch does.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    Succeed,
    Fail(&'static str),
    /// Never answers (until the refresher gives up on it).
    Hang,
    /// Answers after this long.
    Slow(Duration),
}

/// A source that follows a script (then succeeds at once).
#[derive(Clone)]
pub struct Scripted {
    pub inner: Arc<ScriptedInner>,
}

pub struct ScriptedInner {
    mock: MockSource,
    script: Mutex<VecDeque<Step>>,
    fetch_times: Mutex<Vec<Instant>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

impl Scripted {
    pub fn new(steps: &[Step]) -> Self {
        let mock = MockSource::new(42).with_now(datetime!(2026-11-26 12:00 UTC));
        Self {
            inner: Arc::new(ScriptedInner {
                mock,
                script: Mutex::new(steps.iter().copied().collect()),
                fetch_times: Mutex::new(Vec::new()),
                in_flight: AtomicUsize::new(0),
                most_in_flight: AtomicUsize::new(0),
            }),
        }
    }

    pub fn fetches(&self) -> usize {
        self.inner.fetch_times.lock().expect("not poisoned").len()
    }

    /// When each fetch started.
    pub fn fetch_times(&self) -> Vec<Instant> {
        self.inner.fetch_times.lock().expect("not poisoned").clone()
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
}

/// Counts a fetch in flight until dropped (however the fetch ends).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SnapshotSource for Scripted {
    type Set = ReferenceSections;

    async fn fetch(&self) -> Result<SnapshotData, SourceError> {
        self.inner
            .fetch_times
            .lock()
            .expect("not poisoned")
            .push(Instant::now());
        let now_in_flight = self.inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner
            .most_in_flight
            .fetch_max(now_in_flight, Ordering::SeqCst);
        let _in_flight = InFlight(&self.inner.in_flight);
        let step = self
            .inner
            .script
            .lock()
            .expect("not poisoned")
            .pop_front()
            .unwrap_or(Step::Succeed);
        match step {
            Step::Succeed => {}
            Step::Fail(why) => return Err(SourceError::Unavailable(why.to_owned())),
            Step::Hang => std::future::pending::<()>().await,
            Step::Slow(d) => sleep(d).await,
        }
        self.inner.mock.fetch().await
    }
}

/// A refresher on `source` (timeout 5 s) and the cache it fills.
pub fn start(
    source: &Scripted,
    ttl_secs: u64,
    jitter: f64,
) -> (Refresher<Scripted>, SnapshotCache) {
    let cache = SnapshotCache::new(Mode::Mock);
    let refresher = Refresher::builder()
        .ttl(Duration::from_secs(ttl_secs))
        .timeout(Duration::from_secs(5))
        .jitter(jitter)
        .spawn(source.clone(), cache.clone())
        .expect("valid settings");
    (refresher, cache)
}
