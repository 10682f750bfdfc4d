//! The fault schedule every soak runs: a topology says which faults it has
//! and how each is injected ([`Faults`]); [`schedule`] draws one after
//! another (seeded) until the run stops, records each in the history and
//! counts them. `tests/soak.rs` spawns it with the topology's faults
//! (`faults.rs`, `cluster_faults.rs`, `sentinel_faults.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::fleet::Run;
use super::support::history::Action;

/// A topology's faults: what [`schedule`] draws from and how each is
/// injected.
pub(super) trait Faults {
    type Fault: Copy + Ord + std::fmt::Debug + Send + 'static;
    const FAULTS: &'static [Self::Fault];

    /// Injects `fault` (drawing what it needs from `rng`) and returns what
    /// the history records of it, or `None` when it could not be injected
    /// (then nothing changed, or nothing that loses data). Records a data
    /// loss itself. Tolerates every error: the schedule goes on.
    fn inject(
        &mut self,
        fault: Self::Fault,
        rng: &mut fastrand::Rng,
        run: &Run,
    ) -> impl Future<Output = Option<String>> + Send;
}

/// How many faults of each kind were injected, and how many were drawn but
/// could not be.
#[derive(Debug)]
pub(super) struct Counts<F> {
    pub(super) injected: BTreeMap<F, u64>,
    pub(super) skipped: BTreeMap<F, u64>,
}

/// Injects one fault after another (one every 0.5 to 1.5 s, seeded) until
/// the run stops; each in the history as an `Action::Fault`.
pub(super) async fn schedule<S: Faults>(
    mut faults: S,
    seed: u64,
    run: Arc<Run>,
) -> Counts<S::Fault> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut counts = Counts {
        injected: BTreeMap::new(),
        skipped: BTreeMap::new(),
    };
    while !run.stopped() {
        tokio::time::sleep(Duration::from_millis(rng.u64(500..1_500))).await;
        let fault = S::FAULTS[rng.usize(0..S::FAULTS.len())];
        let start = run.now();
        match faults.inject(fault, &mut rng, &run).await {
            Some(what) => {
                *counts.injected.entry(fault).or_insert(0) += 1;
                run.record(start, "fault", "", Action::Fault(what));
            }
            None => *counts.skipped.entry(fault).or_insert(0) += 1,
        }
    }
    counts
}

/// Polls `check` every 50 ms until it holds or `bound` has passed;
/// returns whether it held.
pub(super) async fn poll_until<F, Fut>(bound: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
