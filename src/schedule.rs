//! The refresher's timetable: rounds start to start on a fixed grid, each a
//! little ahead of its slot, so a snapshot is in place before the one it
//! replaces expires.
//!
//! **Slots.** The first round (and a manual refresh) anchors the grid at its
//! own start; round k's *slot* is then anchor + k × TTL, moved by a jitter
//! offset drawn for that round alone (uniform in ±jitter/2 × TTL, so
//! start-to-start periods stay within TTL × (1 ± jitter) and the offsets
//! never add up: no drift). A slot is the moment its round's snapshot is
//! due; the snapshot before it expires then (`expiresAt`, see
//! [`crate::Loaded::expires_at`]).
//!
//! **Lead.** A round starts [`Schedule::lead`] before its slot: 5/4 of the
//! longest of the last [`RECENT_ROUNDS`] successful rounds (fetch, render and
//! compression), at most half the TTL. Why the maximum and not an average
//! (an EWMA): an average lies below about half the samples it averages, so
//! about half the rounds would land after their slot and the data would be
//! served past its `expiresAt`; the maximum covers the variation seen lately,
//! and starting a little early only costs a little freshness. The extra
//! quarter covers a round somewhat slower than any recent one; four rounds
//! let a one-off slow round (a BigQuery hiccup) stop inflating the lead after
//! four TTLs. The cap at half the TTL bounds what starting early costs: data
//! is at most 1.5 TTL old when it expires, and a source slower than that
//! cannot be kept ahead of expiry at one round per TTL anyway.
//!
//! **Overruns and failures.** A round that ends after the next round should
//! have started starts the next one at once (one round at a time, never two);
//! slots already passed are skipped, so a slow spell causes no burst of
//! catching up. A failed round is retried with the refresher's backoff; a
//! retry that succeeds goes back to the grid (its snapshot expires at the
//! next slot still ahead).

use std::time::Duration;

use tokio::time::Instant;

/// How many recent successful rounds the lead looks at.
pub(crate) const RECENT_ROUNDS: usize = 4;

/// A round's place on the timetable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// The grid point, without jitter: the next slot counts from it.
    pub(crate) grid: Instant,
    /// The grid point moved by this round's jitter: when its snapshot is due.
    pub(crate) due: Instant,
}

/// The grid's period and jitter, and the durations the lead follows.
#[derive(Debug)]
pub(crate) struct Schedule {
    ttl: Duration,
    jitter: f64,
    /// Durations of the last successful rounds, oldest overwritten first.
    recent: [Duration; RECENT_ROUNDS],
    next_sample: usize,
}

impl Schedule {
    pub(crate) fn new(ttl: Duration, jitter: f64) -> Self {
        Self {
            ttl,
            jitter,
            recent: [Duration::ZERO; RECENT_ROUNDS],
            next_sample: 0,
        }
    }

    /// The slot of a round that starts the grid (the first, a manual
    /// refresh): due at its own start, with no jitter.
    pub(crate) fn anchor(now: Instant) -> Slot {
        Slot {
            grid: now,
            due: now,
        }
    }

    /// The slot after `current` for a round that succeeded at `now`: the
    /// first grid point TTL after `current` that is still ahead of `now`,
    /// moved by `unit` (uniform in 0..1) × jitter.
    pub(crate) fn next_slot(&self, current: Slot, now: Instant, unit: f64) -> Slot {
        let mut grid = current.grid + self.ttl;
        if grid <= now {
            let missed = now.duration_since(grid).as_nanos() / self.ttl.as_nanos().max(1);
            let skip = u32::try_from(missed + 1).unwrap_or(u32::MAX);
            grid += self.ttl.saturating_mul(skip);
        }
        let offset = self
            .ttl
            .mul_f64(self.jitter / 2.0 * (2.0 * unit - 1.0).abs());
        let due = if unit >= 0.5 {
            grid + offset
        } else {
            grid.checked_sub(offset).unwrap_or(grid)
        };
        Slot { grid, due }
    }

    /// The slot a round that starts at `now` for `slot` works for: `slot`
    /// itself, unless the next grid point has passed too (a retry after
    /// failures), then the last grid point before `now`, so that a retry
    /// that succeeds is followed by the next slot ahead, not at once.
    pub(crate) fn catch_up(&self, slot: Slot, now: Instant) -> Slot {
        if slot.grid + self.ttl > now {
            return slot;
        }
        let periods = now.duration_since(slot.grid).as_nanos() / self.ttl.as_nanos().max(1);
        let grid = slot.grid
            + self
                .ttl
                .saturating_mul(u32::try_from(periods).unwrap_or(u32::MAX));
        Slot { grid, due: grid }
    }

    /// Records how long a successful round took.
    pub(crate) fn record(&mut self, round: Duration) {
        self.recent[self.next_sample] = round;
        self.next_sample = (self.next_sample + 1) % RECENT_ROUNDS;
    }

    /// How long before its slot a round starts.
    pub(crate) fn lead(&self) -> Duration {
        let longest = self.recent.iter().max().copied().unwrap_or_default();
        longest.saturating_add(longest / 4).min(self.ttl / 2)
    }

    /// When the round for `next` starts, once the round for `current` has
    /// ended at `now`: [`Schedule::lead`] before `next` is due, or at once if
    /// that has passed or if the round for `current` overran (ended after
    /// the next grid point, which [`Schedule::next_slot`] then skipped).
    pub(crate) fn start_of(&self, current: Slot, next: Slot, now: Instant) -> Instant {
        if next.grid > current.grid + self.ttl {
            return now;
        }
        next.due
            .checked_sub(self.lead())
            .map_or(now, |start| start.max(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    #[test]
    fn slots_follow_the_grid_and_jitter_does_not_accumulate() {
        let origin = Instant::now();
        let schedule = Schedule::new(TTL, 0.2);
        let mut slot = Schedule::anchor(origin);
        for k in 1..=100u32 {
            let unit = if k % 2 == 0 { 0.99 } else { 0.01 };
            slot = schedule.next_slot(slot, slot.due, unit);
            assert_eq!(slot.grid, origin + TTL * k);
            let off = slot.due.max(slot.grid) - slot.due.min(slot.grid);
            assert!(off <= Duration::from_secs(1), "±jitter/2 × TTL: {off:?}");
        }
    }

    #[test]
    fn passed_slots_are_skipped() {
        let origin = Instant::now();
        let schedule = Schedule::new(TTL, 0.0);
        let first = Schedule::anchor(origin);
        let late = origin + Duration::from_secs(35);
        let next = schedule.next_slot(first, late, 0.5);
        assert_eq!(next.grid, origin + Duration::from_secs(40));
        assert_eq!(next.due, next.grid);
        let exact = schedule.next_slot(first, origin + Duration::from_secs(20), 0.5);
        assert_eq!(
            exact.grid,
            origin + Duration::from_secs(30),
            "a slot at `now` has passed"
        );
    }

    #[test]
    fn the_lead_is_five_quarters_of_the_longest_recent_round_capped_at_half_the_ttl() {
        let mut schedule = Schedule::new(TTL, 0.0);
        assert_eq!(schedule.lead(), Duration::ZERO);
        schedule.record(Duration::from_secs(2));
        schedule.record(Duration::from_millis(800));
        assert_eq!(schedule.lead(), Duration::from_millis(2_500));
        for _ in 0..RECENT_ROUNDS - 1 {
            schedule.record(Duration::from_secs(1));
        }
        assert_eq!(
            schedule.lead(),
            Duration::from_millis(1_250),
            "the 2 s round aged out"
        );
        schedule.record(Duration::from_secs(9));
        assert_eq!(schedule.lead(), TTL / 2);
    }

    #[test]
    fn a_round_starts_its_lead_before_its_slot_or_at_once_after_an_overrun() {
        let origin = Instant::now();
        let mut schedule = Schedule::new(TTL, 0.0);
        schedule.record(Duration::from_secs(2));
        let first = Schedule::anchor(origin);
        let next = schedule.next_slot(first, origin, 0.5);
        let start = schedule.start_of(first, next, origin + Duration::from_secs(2));
        assert_eq!(start, origin + Duration::from_millis(7_500));
        let late = origin + Duration::from_secs(8);
        assert_eq!(schedule.start_of(first, next, late), late);
        let overran = origin + Duration::from_secs(12);
        let skipped = schedule.next_slot(first, overran, 0.5);
        assert_eq!(skipped.grid, origin + Duration::from_secs(20));
        assert_eq!(schedule.start_of(first, skipped, overran), overran);
    }

    #[test]
    fn a_late_retry_works_for_the_last_grid_point_before_it() {
        let origin = Instant::now();
        let schedule = Schedule::new(TTL, 0.0);
        let first = Schedule::anchor(origin);
        let soon = origin + Duration::from_secs(3);
        assert_eq!(schedule.catch_up(first, soon), first);
        let retry = schedule.catch_up(first, origin + Duration::from_secs(91));
        assert_eq!(retry.grid, origin + Duration::from_secs(90));
        let next = schedule.next_slot(retry, origin + Duration::from_secs(92), 0.5);
        assert_eq!(next.grid, origin + Duration::from_secs(100));
        let start = schedule.start_of(retry, next, origin + Duration::from_secs(92));
        assert_eq!(start, next.due, "no lead recorded yet, and no overrun");
    }
}
