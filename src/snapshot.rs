//! The snapshot and the lock-free cell that holds it, generic over the
//! section set (the reference set by default).
//!
//! A [`Snapshot`] is immutable: the refresher builds a new one and swaps it
//! into the [`SnapshotCache`] in one atomic store, so a reader that did one
//! [`SnapshotCache::load`] sees every section of the same refresh. Each
//! [`crate::Section`] carries its JSON body rendered once at refresh time,
//! compressed once in gzip and brotli, with an ETag per coding, so the HTTP
//! layer serves it without serializing, compressing or copying.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, Guard};
use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

use crate::reference::ReferenceSections;
use crate::section::Loaded;

/// Where the data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Queried from BigQuery.
    Live,
    /// Generated for local development.
    Mock,
}

impl Mode {
    /// `"live"` or `"mock"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Mock => "mock",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A moment, both as wall-clock time (for people) and as a monotonic instant
/// (for ages and expiry, so that they follow tokio's clock in tests and never
/// jump with the system clock).
#[derive(Debug, Clone, Copy)]
pub struct Timestamp {
    /// Wall-clock time.
    pub wall: SystemTime,
    /// Monotonic time on tokio's clock.
    pub instant: Instant,
}

impl Timestamp {
    /// Now, on both clocks.
    pub fn now() -> Self {
        Self {
            wall: SystemTime::now(),
            instant: Instant::now(),
        }
    }

    /// This moment plus `d`.
    pub fn after(self, d: Duration) -> Self {
        Self {
            wall: self.wall + d,
            instant: self.instant + d,
        }
    }

    /// Time since this moment (zero if it lies ahead).
    pub fn age(&self) -> Duration {
        Instant::now().saturating_duration_since(self.instant)
    }

    /// Time until this moment (zero if it has passed).
    pub fn remaining(&self) -> Duration {
        self.instant.saturating_duration_since(Instant::now())
    }

    /// RFC 3339 in UTC, e.g. `2026-11-26T02:46:31.123Z`.
    pub fn rfc3339(&self) -> String {
        OffsetDateTime::from(self.wall)
            .format(&Rfc3339)
            .unwrap_or_else(|_| String::from("invalid time"))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.rfc3339())
    }
}

/// The most recent refresh failure.
#[derive(Debug, Clone)]
pub struct LastError {
    /// What went wrong, in one line.
    pub message: Arc<str>,
    /// When the failed attempt ended.
    pub at: Timestamp,
    /// Failures in a row so far.
    pub consecutive_failures: u32,
}

/// What readers see: the latest data (if any), its mode and the latest
/// error. `T` is the section set ([`ReferenceSections`] unless named).
pub struct Snapshot<T = ReferenceSections> {
    /// Source mode.
    pub mode: Mode,
    /// The data of the latest successful refresh; `None` until the first one.
    pub data: Option<Arc<Loaded<T>>>,
    /// Set after a failed refresh, cleared by a successful one.
    pub last_error: Option<LastError>,
}

impl<T> Clone for Snapshot<T> {
    fn clone(&self) -> Self {
        Self {
            mode: self.mode,
            data: self.data.clone(),
            last_error: self.last_error.clone(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Snapshot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("mode", &self.mode)
            .field("data", &self.data)
            .field("last_error", &self.last_error)
            .finish()
    }
}

impl<T> Snapshot<T> {
    /// A snapshot with no data yet.
    pub fn empty(mode: Mode) -> Self {
        Self {
            mode,
            data: None,
            last_error: None,
        }
    }

    /// Age of the data, `None` before the first load.
    pub fn age(&self) -> Option<Duration> {
        self.data.as_ref().map(|d| d.refreshed_at.age())
    }

    /// Whether there is data no older than `max_staleness`.
    pub fn is_fresh_within(&self, max_staleness: Duration) -> bool {
        self.age().is_some_and(|age| age <= max_staleness)
    }
}

/// The shared cell readers load snapshots from. Cloning is cheap (an `Arc`).
pub struct SnapshotCache<T = ReferenceSections> {
    /// `ArcSwap` rather than a lock: readers never wait, not even while a
    /// new snapshot is being stored, and never block the writer.
    current: Arc<ArcSwap<Snapshot<T>>>,
}

impl<T> Clone for SnapshotCache<T> {
    fn clone(&self) -> Self {
        Self {
            current: Arc::clone(&self.current),
        }
    }
}

impl<T> fmt::Debug for SnapshotCache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The sections may be large (and need not be `Debug`): show what
        // identifies the current snapshot.
        let snapshot = self.current.load();
        f.debug_struct("SnapshotCache")
            .field("mode", &snapshot.mode)
            .field("generation", &snapshot.data.as_ref().map(|d| d.generation))
            .field("failing", &snapshot.last_error.is_some())
            .finish()
    }
}

impl<T> SnapshotCache<T> {
    /// An empty cache in `mode`: readers see no data until the first store.
    pub fn new(mode: Mode) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(Snapshot::empty(mode))),
        }
    }

    /// The current snapshot, without waiting and without touching a counter
    /// shared with other readers in the common case.
    pub fn load(&self) -> Guard<Arc<Snapshot<T>>> {
        self.current.load()
    }

    /// The current snapshot as an owned `Arc` (for holding across `.await`).
    pub fn load_full(&self) -> Arc<Snapshot<T>> {
        self.current.load_full()
    }

    /// Replaces the snapshot. The refresher does this; it is public for
    /// custom refresh loops.
    pub fn store(&self, snapshot: Snapshot<T>) {
        self.current.store(Arc::new(snapshot));
    }
}
