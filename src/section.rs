//! The generic snapshot core: a rendered [`Section`] any serializable type
//! can use, the [`SectionSet`] trait for "the sections one refresh
//! produces", and [`Loaded`], a section set with its refresh times.
//!
//! A user who wants a snapshot of their own defines a struct of
//! `Section<...>` fields, implements [`SectionSet`] for it (its `Data` is
//! what a [`crate::SnapshotSource`] fetches; `render` turns that into the
//! sections, usually with [`Section::render_off_thread`] per field) and
//! reads it through a [`crate::SnapshotCache`] of that type. The reference
//! set the service serves is [`crate::ReferenceSections`].

use std::future::Future;
use std::ops::Deref;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use serde::Serialize;

use crate::body::EncodedBody;
use crate::snapshot::Timestamp;

/// One section of a snapshot: the decoded value and its body, rendered to
/// JSON once per refresh, compressed once in gzip and brotli (an
/// [`EncodedBody`]), with a strong ETag per coding.
///
/// The name is kept from the fixed snapshot it came from (the service and
/// its users already say `Section<Dashboard>`); it works for any type.
#[derive(Debug)]
pub struct Section<T> {
    value: T,
    body: EncodedBody,
    generation: u64,
}

impl<T: Serialize> Section<T> {
    /// Renders `value` to JSON once, derives its ETag from the bytes and
    /// compresses it, on the calling thread.
    ///
    /// # Errors
    /// When `value` cannot be serialized (a non-finite float, for example).
    pub fn render(generation: u64, value: T) -> Result<Self, serde_json::Error> {
        let body = EncodedBody::compress(to_json(&value)?);
        Ok(Self::new(generation, value, body))
    }

    /// [`Section::render`] for async callers: serializes on the calling
    /// task and compresses a body over [`crate::OFF_THREAD_BYTES`] on
    /// tokio's blocking pool, so a worker thread that serves requests is
    /// never held by brotli. Join several with `tokio::try_join!` to
    /// compress them at the same time.
    ///
    /// # Errors
    /// When `value` cannot be serialized.
    pub async fn render_off_thread(generation: u64, value: T) -> Result<Self, serde_json::Error> {
        let json = to_json(&value)?;
        let body = EncodedBody::compress_off_thread(json).await;
        Ok(Self::new(generation, value, body))
    }

    /// [`Section::render_off_thread`], except that when `previous` has the
    /// same JSON its compressed variants are reused: nothing is compressed
    /// ([`EncodedBody::compress_reusing`]).
    ///
    /// # Errors
    /// When `value` cannot be serialized.
    pub async fn render_reusing(
        generation: u64,
        value: T,
        previous: Option<&Section<T>>,
    ) -> Result<Self, serde_json::Error> {
        let json = to_json(&value)?;
        let body = EncodedBody::compress_reusing(json, previous.map(Section::encoded)).await;
        Ok(Self::new(generation, value, body))
    }
}

impl<T> Section<T> {
    /// A section of `value` with an already encoded `body` (which should be
    /// `value` rendered; nothing checks it).
    pub fn new(generation: u64, value: T, body: EncodedBody) -> Self {
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

/// JSON bytes of `value`.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Bytes, serde_json::Error> {
    serde_json::to_vec(value).map(Bytes::from)
}

/// The set of sections one refresh produces, swapped in together.
///
/// ```
/// use warmcache::{Section, SectionSet};
///
/// struct Shop {
///     orders: Section<Vec<u32>>,
///     regions: Section<Vec<String>>,
/// }
///
/// impl SectionSet for Shop {
///     type Data = (Vec<u32>, Vec<String>);
///
///     async fn render(data: Self::Data, generation: u64) -> Result<Self, serde_json::Error> {
///         let (orders, regions) = tokio::try_join!(
///             Section::render_off_thread(generation, data.0),
///             Section::render_off_thread(generation, data.1),
///         )?;
///         Ok(Self { orders, regions })
///     }
/// }
/// ```
pub trait SectionSet: Sized + Send + Sync + 'static {
    /// What one fetch returns (the sections' values, not yet rendered).
    type Data: Send + 'static;

    /// Renders and compresses every section of `data`, produced by refresh
    /// number `generation`. The refresher awaits it inside the round, so
    /// heavy work belongs off the worker threads
    /// ([`Section::render_off_thread`]).
    ///
    /// # Errors
    /// When a section cannot be serialized; the refresh then fails and the
    /// old data stays.
    fn render(
        data: Self::Data,
        generation: u64,
    ) -> impl Future<Output = Result<Self, serde_json::Error>> + Send;

    /// What the refresher calls: [`SectionSet::render`], given the set now
    /// served (`None` on the first refresh) so that a section whose JSON
    /// did not change can keep its compressed variants instead of
    /// compressing again ([`Section::render_reusing`]). The default ignores
    /// `previous`; the reference set reuses.
    ///
    /// # Errors
    /// As [`SectionSet::render`].
    fn render_after(
        data: Self::Data,
        generation: u64,
        previous: Option<&Self>,
    ) -> impl Future<Output = Result<Self, serde_json::Error>> + Send {
        let _ = previous;
        Self::render(data, generation)
    }

    /// Time spent compressing the sections (their sum), for the refresh
    /// log; zero unless the set reports it.
    fn compress_time(&self) -> Duration {
        Duration::ZERO
    }
}

/// A section set with the refresh it came from: its generation, when it
/// was fetched and when it expires. Derefs to the set, so
/// `loaded.dashboard` reads a section of the reference set.
#[derive(Debug)]
pub struct Loaded<T> {
    /// Refresh counter, starting at 1 for the first successful load.
    pub generation: u64,
    /// When the data was fetched (the start of the refresh round).
    pub refreshed_at: Timestamp,
    /// After this the data is stale. The refresher sets it to the moment the
    /// next snapshot is due (see [`crate::Refresher`]): `refreshed_at` plus
    /// the TTL, plus the lead by which the round started ahead of its slot.
    pub expires_at: Timestamp,
    /// The sections.
    pub sections: T,
}

impl<T> Loaded<T> {
    /// `sections` of refresh `generation`, fetched at `refreshed_at`, valid
    /// for `lifetime` from then.
    pub fn new(generation: u64, refreshed_at: Timestamp, lifetime: Duration, sections: T) -> Self {
        Self {
            generation,
            refreshed_at,
            expires_at: refreshed_at.after(lifetime),
            sections,
        }
    }

    /// The snapshot's lifetime: from `refreshed_at` to `expires_at`.
    pub fn lifetime(&self) -> Duration {
        self.expires_at
            .instant
            .saturating_duration_since(self.refreshed_at.instant)
    }
}

impl<T: SectionSet> Loaded<T> {
    /// Renders `data` with [`SectionSet::render`] and wraps it with its times.
    ///
    /// # Errors
    /// When a section cannot be serialized.
    pub async fn render_off_thread(
        generation: u64,
        data: T::Data,
        refreshed_at: Timestamp,
        lifetime: Duration,
    ) -> Result<Self, serde_json::Error> {
        Self::render_after(generation, data, refreshed_at, lifetime, None).await
    }

    /// [`Loaded::render_off_thread`] with the set now served, for
    /// [`SectionSet::render_after`] (what the refresher calls).
    ///
    /// # Errors
    /// When a section cannot be serialized.
    pub async fn render_after(
        generation: u64,
        data: T::Data,
        refreshed_at: Timestamp,
        lifetime: Duration,
        previous: Option<&T>,
    ) -> Result<Self, serde_json::Error> {
        let sections = T::render_after(data, generation, previous).await?;
        Ok(Self::new(generation, refreshed_at, lifetime, sections))
    }

    /// Time spent compressing the sections ([`SectionSet::compress_time`]).
    pub fn compress_time(&self) -> Duration {
        self.sections.compress_time()
    }
}

impl<T> Deref for Loaded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.sections
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
