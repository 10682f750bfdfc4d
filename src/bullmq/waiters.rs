//! Long-poll waiters: one `tokio::sync::watch` per job somebody waits on.
//!
//! A waiting request holds a receiver and awaits it: no task, no timer
//! besides its own deadline, no Redis call. The follower publishes a job's
//! new answer once, whoever waits; the last waiter to leave removes the
//! job's channel. The map's lock is held only to look up, insert or remove
//! a channel, never across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use metrics::Gauge;
use tokio::sync::watch;

use super::Rendered;
use crate::tier::CacheId;

type Slot = Option<Arc<Rendered>>;

/// The channels of the jobs being waited on.
#[cfg_attr(not(feature = "service"), allow(dead_code))] // the service's job routes read it
pub(crate) struct Waiters {
    channels: Mutex<HashMap<CacheId, watch::Sender<Slot>>>,
    gauge: Gauge,
}

#[cfg_attr(not(feature = "service"), allow(dead_code))]
impl Waiters {
    pub(crate) fn new(gauge: Gauge) -> Self {
        Self {
            channels: Mutex::new(HashMap::new()),
            gauge,
        }
    }

    /// Starts waiting on `id`. Answers published from now on wake the guard.
    pub(crate) fn watch(self: &Arc<Self>, id: &CacheId) -> WaitGuard {
        let receiver = {
            let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
            channels
                .entry(id.clone())
                .or_insert_with(|| watch::channel(None).0)
                .subscribe()
        };
        self.gauge.increment(1.0);
        WaitGuard {
            waiters: Arc::clone(self),
            id: id.clone(),
            receiver: Some(receiver),
        }
    }

    /// Whether anybody waits on `id`.
    pub(crate) fn is_watched(&self, id: &CacheId) -> bool {
        self.lock().contains_key(id)
    }

    /// Waiting requests, over all jobs.
    pub(crate) fn waiting(&self) -> usize {
        self.lock()
            .values()
            .map(watch::Sender::receiver_count)
            .sum()
    }

    /// The ids being waited on.
    pub(crate) fn watched(&self) -> Vec<CacheId> {
        self.lock().keys().cloned().collect()
    }

    /// Wakes the waiters of `answer`'s job (if any) with it.
    pub(crate) fn publish(&self, id: &CacheId, answer: &Arc<Rendered>) {
        if let Some(sender) = self.lock().get(id) {
            sender.send_replace(Some(Arc::clone(answer)));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheId, watch::Sender<Slot>>> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One waiting request; leaving (drop) removes the job's channel if it was
/// the last waiter.
#[cfg_attr(not(feature = "service"), allow(dead_code))] // the service's job routes read it
pub(crate) struct WaitGuard {
    waiters: Arc<Waiters>,
    id: CacheId,
    receiver: Option<watch::Receiver<Slot>>,
}

#[cfg_attr(not(feature = "service"), allow(dead_code))]
impl WaitGuard {
    /// The next answer published for the job after the last one seen.
    /// `None` never happens while the map holds the sender.
    pub(crate) async fn changed(&mut self) -> Option<Arc<Rendered>> {
        let receiver = self.receiver.as_mut()?;
        receiver.changed().await.ok()?;
        receiver.borrow_and_update().clone()
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        drop(self.receiver.take());
        self.waiters.gauge.decrement(1.0);
        let mut channels = self.waiters.lock();
        if channels
            .get(&self.id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            channels.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bullmq::{JobAnswer, JobState};

    fn answer(status: JobState) -> Arc<Rendered> {
        Arc::new(Rendered::new(JobAnswer {
            job_id: "j".to_owned(),
            status,
            result: None,
            error: None,
            added_at: Some(1),
            started_at: None,
            finished_at: None,
            progress: None,
            attempts_made: None,
            data: None,
        }))
    }

    #[tokio::test]
    async fn a_publish_wakes_every_waiter_and_the_last_to_leave_removes_the_channel() {
        let waiters = Arc::new(Waiters::new(Gauge::noop()));
        let id = CacheId::parse("j").expect("valid");
        let mut first = waiters.watch(&id);
        let mut second = waiters.watch(&id);
        assert!(waiters.is_watched(&id));
        waiters.publish(&id, &answer(JobState::Completed));
        for guard in [&mut first, &mut second] {
            let woken = guard.changed().await.expect("published");
            assert_eq!(woken.answer.status, JobState::Completed);
        }
        drop(first);
        assert!(waiters.is_watched(&id), "one waiter is left");
        drop(second);
        assert!(!waiters.is_watched(&id));
        assert!(waiters.watched().is_empty());
    }
}
