//! Invalidation latency, measured the same way by every bench: how long a
//! foreign client's `DEL` takes to end another instance's L1 copy.
//!
//! The waits poll every [`POLL_PAUSE`] with a thread sleep rather than
//! spinning: a spinning poller takes a core from the redis-servers and the
//! listener it is waiting for (2 cores, up to 6 servers in cluster mode), and
//! its tail is then the scheduler's, not warmcache's. The pause (plus the
//! kernel's timer slack, about 50 µs) is part of every figure, so they
//! overstate the latency by at most that much.

use std::time::{Duration, Instant};

/// Between two polls of a wait.
pub const POLL_PAUSE: Duration = Duration::from_micros(20);

use redis::AsyncCommands;
use warmcache::TieredCache;
use warmcache::records::AgeVerification;

/// Writes `json` at `key` through `foreign`, waits until `cache` has seen
/// that write's push and holds `id` in L1, then times a `DEL` of `key` until
/// the L1 copy is gone.
pub async fn foreign_del_to_l1_gone<C>(
    cache: &TieredCache<AgeVerification>,
    foreign: &mut C,
    id: &str,
    key: &str,
    json: &str,
) -> Duration
where
    C: redis::aio::ConnectionLike + Send + Sync,
{
    let pushes = cache.stats().remote_invalidations;
    let () = foreign.set_ex(key, json, 3600).await.expect("setex");
    while cache.stats().remote_invalidations == pushes {
        std::thread::sleep(POLL_PAUSE);
    }
    cache.get(id).await.expect("reads").expect("present");
    assert!(cache.l1_time_to_live(id).await.is_some(), "warm in L1");
    let sent = Instant::now();
    let () = foreign.del(key).await.expect("del");
    while cache.l1_time_to_live(id).await.is_some() {
        std::thread::sleep(POLL_PAUSE);
    }
    sent.elapsed()
}
