//! A circuit breaker, so that a Redis outage costs one timeout, not one per request.
//!
//! Closed: every call goes through; `threshold` failures in a row open it.
//! Open: calls fail at once for `cooldown`. Then one call is let through as a
//! probe (half-open): its success closes the breaker, its failure (or its
//! cancellation) opens it again. Uses tokio's clock, so tests can pause it.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A probe is in flight; everyone else fails fast until it reports.
    HalfOpen,
}

/// The breaker. Its mutex is held for a few instructions, never across an `.await`.
#[derive(Debug)]
pub(crate) struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    cooldown: Duration,
}

/// Permission to make one call. Report the outcome with [`Permit::success`]
/// or [`Permit::failure`]; dropping it unreported counts as a failure only
/// for a probe (a cancelled probe must not leave the breaker half-open).
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            state: Mutex::new(State::Closed { failures: 0 }),
            threshold: threshold.max(1),
            cooldown,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A permit, or `None` while the breaker is open (fail fast).
    pub(crate) fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut state = self.state();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => return None,
        };
        Some(Permit {
            breaker: self,
            probe,
            reported: false,
        })
    }

    /// Forgets every failure: the server behind it changed (a new primary).
    pub(crate) fn reset(&self) {
        self.on_success();
    }

    /// Whether calls currently fail fast.
    pub(crate) fn is_open(&self) -> bool {
        !matches!(*self.state(), State::Closed { .. })
    }

    fn on_success(&self) {
        *self.state() = State::Closed { failures: 0 };
    }

    fn on_failure(&self, probe: bool) -> bool {
        let mut state = self.state();
        let open = match *state {
            _ if probe => true,
            State::Closed { failures } if failures + 1 >= self.threshold => true,
            State::Closed { failures } => {
                *state = State::Closed {
                    failures: failures + 1,
                };
                false
            }
            // Another call already opened it; keep its deadline.
            State::Open { .. } | State::HalfOpen => false,
        };
        if open {
            *state = State::Open {
                until: Instant::now() + self.cooldown,
            };
        }
        open
    }
}

impl Permit<'_> {
    /// The call reached Redis and got an answer.
    pub(crate) fn success(mut self) {
        self.reported = true;
        self.breaker.on_success();
    }

    /// The call failed to reach Redis. Returns whether this opened the breaker.
    pub(crate) fn failure(mut self) -> bool {
        self.reported = true;
        self.breaker.on_failure(self.probe)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.reported && self.probe {
            self.breaker.on_failure(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_fails_fast_then_probes() {
        let breaker = Breaker::new(3, Duration::from_secs(1));
        for _ in 0..2 {
            assert!(!breaker.try_acquire().expect("closed").failure());
        }
        assert!(
            breaker.try_acquire().expect("closed").failure(),
            "third failure opens"
        );
        assert!(breaker.try_acquire().is_none(), "open: fail fast");
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(breaker.try_acquire().is_none());
        tokio::time::advance(Duration::from_millis(1)).await;
        let probe = breaker.try_acquire().expect("cooldown over: one probe");
        assert!(breaker.try_acquire().is_none(), "only one probe at a time");
        probe.success();
        assert!(!breaker.is_open());
        assert!(breaker.try_acquire().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_or_cancelled_probe_reopens() {
        let breaker = Breaker::new(1, Duration::from_secs(1));
        assert!(breaker.try_acquire().expect("closed").failure());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(breaker.try_acquire().expect("probe").failure());
        assert!(breaker.try_acquire().is_none());
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(breaker.try_acquire().expect("probe"));
        assert!(
            breaker.try_acquire().is_none(),
            "a dropped probe counts as a failure"
        );
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let breaker = Breaker::new(2, Duration::from_secs(1));
        assert!(!breaker.try_acquire().expect("closed").failure());
        breaker.try_acquire().expect("closed").success();
        assert!(
            !breaker.try_acquire().expect("closed").failure(),
            "count restarted"
        );
    }
}
