//! Fills in flight, by id: callers that miss L1 while a fill of their id
//! runs wait for its outcome instead of reading Redis (or loading) again.
//!
//! L1 is moka's synchronous cache, whose lookups are plain calls (an L1 hit
//! builds no future of moka's, which is most of what a hit costs there);
//! this map gives fills the coalescing that moka's async `try_get_with`
//! gave them. Each id in flight has one `OnceCell`: the first caller runs
//! the fill, the others wait on the cell and get a clone of its outcome. If
//! the caller running the fill is dropped, a waiter runs its own (as
//! `tokio::sync::OnceCell` hands the initialisation on). The cell leaves
//! the map once it holds an outcome or nobody waits on it any more, so the
//! map holds ids with a fill running, nothing else.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;

use super::CacheId;

/// The fills in flight; `T` is a fill's outcome.
pub(super) struct InFlight<T> {
    fills: Mutex<HashMap<CacheId, Arc<OnceCell<T>>>>,
}

impl<T: Clone> InFlight<T> {
    pub(super) fn new() -> Self {
        Self {
            fills: Mutex::new(HashMap::new()),
        }
    }

    /// The outcome of the fill of `id` in flight, or else of `fill`, run here.
    pub(super) async fn run<F>(&self, id: &CacheId, fill: F) -> T
    where
        F: Future<Output = T>,
    {
        let cell = Arc::clone(
            self.lock()
                .entry(id.clone())
                .or_insert_with(|| Arc::new(OnceCell::new())),
        );
        // Removes the cell however this call ends, dropped included.
        let _leave = Leave {
            fills: self,
            id,
            cell: &cell,
        };
        cell.get_or_init(|| fill).await.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheId, Arc<OnceCell<T>>>> {
        // The map is consistent after any panic (one insert or remove).
        self.fills.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many ids have a fill in flight (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// On drop, takes the cell out of the map if it is still the id's, and it
/// holds an outcome or no other caller waits on it.
struct Leave<'a, T: Clone> {
    fills: &'a InFlight<T>,
    id: &'a CacheId,
    cell: &'a Arc<OnceCell<T>>,
}

impl<T: Clone> Drop for Leave<'_, T> {
    fn drop(&mut self) {
        let mut fills = self.fills.lock();
        let ours = fills
            .get(self.id)
            .is_some_and(|cell| Arc::ptr_eq(cell, self.cell));
        // Joiners clone the cell under this lock: the map's and ours are
        // the only two references when nobody else waits.
        if ours && (self.cell.initialized() || Arc::strong_count(self.cell) <= 2) {
            fills.remove(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn id(name: &str) -> CacheId {
        CacheId::parse(name).expect("valid")
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fill_and_the_map_empties() {
        let in_flight = Arc::new(InFlight::<u64>::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..5)
            .map(|_| {
                let (in_flight, runs) = (Arc::clone(&in_flight), Arc::clone(&runs));
                tokio::spawn(async move {
                    in_flight
                        .run(&id("a"), async {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            7
                        })
                        .await
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.expect("caller"), 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(in_flight.len(), 0);
        // A later call fills afresh.
        assert_eq!(in_flight.run(&id("a"), async { 8 }).await, 8);
        assert_eq!(in_flight.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_filler_hands_the_fill_to_a_waiter() {
        let in_flight = Arc::new(InFlight::<u64>::new());
        let first = {
            let in_flight = Arc::clone(&in_flight);
            tokio::spawn(async move {
                in_flight
                    .run(&id("a"), async {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        1
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        let second = {
            let in_flight = Arc::clone(&in_flight);
            tokio::spawn(async move { in_flight.run(&id("a"), async { 2 }).await })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        first.abort();
        assert_eq!(second.await.expect("second"), 2);
        assert_eq!(in_flight.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_dropped_filler_leaves_nothing_behind() {
        let in_flight = InFlight::<u64>::new();
        let a = id("a");
        let call = in_flight.run(&a, std::future::pending());
        assert!(
            tokio::time::timeout(Duration::from_millis(5), call)
                .await
                .is_err()
        );
        assert_eq!(in_flight.len(), 0);
    }
}
