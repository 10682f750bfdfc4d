//! The dashboard snapshot and the lock-free cell that holds it.
//!
//! A [`Snapshot`] is immutable: the refresher builds a new one and swaps it
//! into the [`SnapshotCache`] in one atomic store, so a reader that did one
//! [`SnapshotCache::load`] sees all three sections of the same refresh. Each
//! [`Section`] carries its JSON body rendered once at refresh time, compressed
//! once in gzip and brotli (an [`EncodedBody`]), with an ETag per coding, so
//! the HTTP layer serves it without serializing, compressing or copying.

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

use crate::body::EncodedBody;
use crate::data::{Dashboard, Historical, Products, SnapshotData};

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
    body: EncodedBody,
    generation: u64,
}

impl<T: Serialize> Section<T> {
    /// Renders `value` to JSON once, derives its ETag from the bytes and
    /// compresses it (on the calling thread; the refresher uses
    /// [`Sections::render_off_thread`]).
    ///
    /// # Errors
    /// When `value` cannot be serialized (a non-finite float, for example).
    pub fn render(generation: u64, value: T) -> Result<Self, serde_json::Error> {
        let body = EncodedBody::compress(to_json(&value)?);
        Ok(Self::new(generation, value, body))
    }
}

impl<T> Section<T> {
    fn new(generation: u64, value: T, body: EncodedBody) -> Self {
        Self {
            value,
            body,
            generation,
        }
    }

    /// The decoded value.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The JSON body in identity coding. Cloning it copies no data.
    pub fn body(&self) -> &Bytes {
        self.body.identity_variant().bytes()
    }

    /// Strong ETag of the identity body, quoted, ready for the `ETag` header.
    pub fn etag(&self) -> &HeaderValue {
        self.body.identity_variant().etag()
    }

    /// The body in every coding it has, each with its own ETag.
    pub fn encoded(&self) -> &EncodedBody {
        &self.body
    }

    /// The refresh that produced this section.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Bytes, serde_json::Error> {
    serde_json::to_vec(value).map(Bytes::from)
}

/// The three sections of one successful refresh, with its times.
#[derive(Debug)]
pub struct Sections {
    /// Refresh counter, starting at 1 for the first successful load.
    pub generation: u64,
    /// When the data was fetched (the start of the refresh round).
    pub refreshed_at: Timestamp,
    /// After this the data is stale. The refresher sets it to the moment the
    /// next snapshot is due (see [`crate::Refresher`]): `refreshed_at` plus
    /// the TTL, plus the lead by which the round started ahead of its slot.
    pub expires_at: Timestamp,
    /// The dashboard section.
    pub dashboard: Section<Dashboard>,
    /// The historical section.
    pub historical: Section<Historical>,
    /// The products section.
    pub products: Section<Products>,
}

impl Sections {
    /// Renders and compresses the three sections of `data`, fetched at
    /// `refreshed_at`, valid for `lifetime` from then; on the calling thread.
    ///
    /// # Errors
    /// When a section cannot be serialized.
    pub fn render(
        generation: u64,
        data: SnapshotData,
        refreshed_at: Timestamp,
        lifetime: Duration,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            generation,
            refreshed_at,
            expires_at: refreshed_at.after(lifetime),
            dashboard: Section::render(generation, data.dashboard)?,
            historical: Section::render(generation, data.historical)?,
            products: Section::render(generation, data.products)?,
        })
    }

    /// [`Sections::render`] for async callers: serializes on the calling
    /// task and compresses the three bodies at the same time, each over
    /// [`crate::OFF_THREAD_BYTES`] on tokio's blocking pool, so a worker
    /// thread that serves requests is never held by brotli.
    ///
    /// # Errors
    /// When a section cannot be serialized.
    pub async fn render_off_thread(
        generation: u64,
        data: SnapshotData,
        refreshed_at: Timestamp,
        lifetime: Duration,
    ) -> Result<Self, serde_json::Error> {
        let (dashboard, historical, products) = (
            to_json(&data.dashboard)?,
            to_json(&data.historical)?,
            to_json(&data.products)?,
        );
        let (dashboard, historical, products) = tokio::join!(
            EncodedBody::compress_off_thread(dashboard),
            EncodedBody::compress_off_thread(historical),
            EncodedBody::compress_off_thread(products),
        );
        Ok(Self {
            generation,
            refreshed_at,
            expires_at: refreshed_at.after(lifetime),
            dashboard: Section::new(generation, data.dashboard, dashboard),
            historical: Section::new(generation, data.historical, historical),
            products: Section::new(generation, data.products, products),
        })
    }

    /// Time spent compressing the three sections (their sum, though the
    /// refresher compresses them at the same time).
    pub fn compress_time(&self) -> Duration {
        self.dashboard.encoded().compress_time()
            + self.historical.encoded().compress_time()
            + self.products.encoded().compress_time()
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
