//! The scripted source (`warmcache::testing::Scripted`), re-exported under
//! the path the tests use, and [`start`], a refresher on it.

use std::time::Duration;

pub use warmcache::testing::{Scripted, Step};
use warmcache::{Mode, Refresher, SnapshotCache};

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
