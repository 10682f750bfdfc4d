//! The dashboard snapshot and the lock-free cell that holds it.
//!
//! A [`Snapshot`] is immutable: the refresher builds a new one and swaps it
//! into the [`SnapshotCache`] in one atomic store, so a reader that did one
//! [`SnapshotCache::load`] sees all three sections of the same refresh. Each
//! [`Section`] carries its JSON body rendered once at refresh time and an ETag
//! of that body, so the HTTP layer serves it without serializing or copying.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, Guard};
use bytes::Bytes;
use http::HeaderValue;
use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

use crate::data::{Dashboard, Historical, Products, SnapshotData};
use crate::fnv::etag_of;

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

/// One section of a snapshot: the decoded value and its pre-rendered body.
#[derive(Debug)]
pub struct Section<T> {
    value: T,
    body: Bytes,
    etag: HeaderValue,
    generation: u64,
}

impl<T: Serialize> Section<T> {
    /// Renders `value` to JSON once and derives its ETag from the bytes.
    ///
    /// # Errors
    /// When `value` cannot be serialized (a non-finite float, for example).
    pub fn render(generation: u64, value: T) -> Result<Self, serde_json::Error> {
        let body = Bytes::from(serde_json::to_vec(&value)?);
        let etag = etag_of(&body);
        Ok(Self {
            value,
            body,
            etag,
            generation,
        })
    }
}

impl<T> Section<T> {
    /// The decoded value.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The JSON body. Cloning it copies no data.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Strong ETag of the body, quoted, ready for the `ETag` header.
    pub fn etag(&self) -> &HeaderValue {
        &self.etag
    }

    /// The refresh that produced this section.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// The three sections of one successful refresh, with its times.
#[derive(Debug)]
pub struct Sections {
    /// Refresh counter, starting at 1 for the first successful load.
    pub generation: u64,
    /// When the data was fetched.
    pub refreshed_at: Timestamp,
    /// `refreshed_at + ttl`: after this the data is stale.
    pub expires_at: Timestamp,
    /// The dashboard section.
    pub dashboard: Section<Dashboard>,
    /// The historical section.
    pub historical: Section<Historical>,
    /// The products section.
    pub products: Section<Products>,
}

impl Sections {
    /// Renders the three sections of `data`, fetched at `refreshed_at`.
    ///
    /// # Errors
    /// When a section cannot be serialized.
    pub fn render(
        generation: u64,
        data: SnapshotData,
        refreshed_at: Timestamp,
        ttl: Duration,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            generation,
            refreshed_at,
            expires_at: refreshed_at.after(ttl),
            dashboard: Section::render(generation, data.dashboard)?,
            historical: Section::render(generation, data.historical)?,
            products: Section::render(generation, data.products)?,
        })
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

/// What readers see: the latest data (if any), its mode and the latest error.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Source mode.
    pub mode: Mode,
    /// The data of the latest successful refresh; `None` until the first one.
    pub data: Option<Arc<Sections>>,
    /// Set after a failed refresh, cleared by a successful one.
    pub last_error: Option<LastError>,
}

impl Snapshot {
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
#[derive(Debug, Clone)]
pub struct SnapshotCache {
    /// `ArcSwap` rather than a lock: readers never wait, not even while a
    /// new snapshot is being stored, and never block the writer.
    current: Arc<ArcSwap<Snapshot>>,
}

impl SnapshotCache {
    /// An empty cache in `mode`: readers see no data until the first store.
    pub fn new(mode: Mode) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(Snapshot::empty(mode))),
        }
    }

    /// The current snapshot, without waiting and without touching a counter
    /// shared with other readers in the common case.
    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// The current snapshot as an owned `Arc` (for holding across `.await`).
    pub fn load_full(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replaces the snapshot. The refresher does this; it is public for
    /// custom refresh loops.
    pub fn store(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_depends_on_content_only() {
        let a = Section::render(1, vec![1, 2, 3]).expect("renders");
        let b = Section::render(7, vec![1, 2, 3]).expect("renders");
        let c = Section::render(1, vec![1, 2, 4]).expect("renders");
        assert_eq!(a.etag(), b.etag());
        assert_ne!(a.etag(), c.etag());
        assert_eq!(a.body().as_ref(), b"[1,2,3]");
        let tag = a.etag().to_str().expect("ascii");
        assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
    }
}
