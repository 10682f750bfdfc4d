//! Waiting in tests: [`eventually`] polls a condition on real sockets (real
//! time), [`advance_until`] moves tokio's paused clock until a condition
//! holds, and [`settle`] lets woken tasks run without moving the clock.

use std::future::Future;
use std::time::Duration;

/// How often [`eventually`] polls, and how long it waits by default.
const POLL: Duration = Duration::from_millis(10);
const EVENTUALLY: Duration = Duration::from_secs(5);

/// Polls `check` every 10 ms for up to 5 s of real time; panics naming
/// `what` if it never holds. For events on real sockets (an invalidation
/// push, a reconnect), which a test cannot await directly.
///
/// # Panics
/// If `check` is still false after 5 s.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(what, EVENTUALLY, check).await;
}

/// [`eventually`] with a bound of its own (e.g. long enough for a failover).
///
/// The bound is real time (`std::time::Instant`), so it holds on a paused
/// tokio clock too (where each 10 ms poll sleep advances the clock).
///
/// # Panics
/// If `check` is still false after `bound`.
pub async fn eventually_within<F, Fut>(what: &str, bound: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + bound;
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what} after {} ms",
            bound.as_millis()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Lets every task that is ready run (the refresher after a timer fired,
/// a spawned fill), without moving the clock: yields to the scheduler a
/// number of times.
pub async fn settle() {
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
}

/// On tokio's paused clock: checks `check`, and while it is false advances
/// the clock by `step` (then [`settle`]s) for at most `bound` of virtual
/// time. Returns the virtual time it advanced.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::time::Duration;
/// use warmcache::testing::advance_until;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// tokio::time::pause();
/// let fired = Arc::new(AtomicBool::new(false));
/// tokio::spawn({
///     let fired = Arc::clone(&fired);
///     async move {
///         tokio::time::sleep(Duration::from_secs(30)).await;
///         fired.store(true, Ordering::SeqCst);
///     }
/// });
/// let took = advance_until("the timer", Duration::from_secs(1), Duration::from_secs(60), || {
///     let fired = Arc::clone(&fired);
///     async move { fired.load(Ordering::SeqCst) }
/// })
/// .await;
/// // Timers fire on the millisecond tick after their deadline: one step more.
/// assert!(took >= Duration::from_secs(30), "{took:?}");
/// # }
/// ```
///
/// # Panics
/// If `check` is still false after `bound`, or if the clock is not paused
/// (`tokio::time::advance` requires it: `#[tokio::test(start_paused = true)]`
/// or `tokio::time::pause()`), or if `step` is zero.
pub async fn advance_until<F, Fut>(
    what: &str,
    step: Duration,
    bound: Duration,
    mut check: F,
) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    assert!(
        !step.is_zero(),
        "advance_until({what}): the step must not be zero"
    );
    let mut advanced = Duration::ZERO;
    settle().await;
    while !check().await {
        assert!(
            advanced < bound,
            "gave up waiting for {what} after {} ms on the paused clock",
            bound.as_millis()
        );
        tokio::time::advance(step).await;
        advanced += step;
        settle().await;
    }
    advanced
}
