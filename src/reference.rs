//! The reference snapshot: the three sections the service serves
//! (`dashboard`, `historical`, `products`), which [`crate::MockSource`] and
//! `BigQuerySource` produce. [`Sections`] is that set with its refresh
//! times, the shape every snapshot had before the core became generic.

use std::time::Duration;

use crate::data::{Dashboard, Historical, Products, SnapshotData};
use crate::section::{Loaded, Section, SectionSet};
use crate::snapshot::Timestamp;

/// The three sections of one refresh of the reference service.
#[derive(Debug)]
pub struct ReferenceSections {
    /// The dashboard section.
    pub dashboard: Section<Dashboard>,
    /// The historical section.
    pub historical: Section<Historical>,
    /// The products section.
    pub products: Section<Products>,
}

/// The reference sections with their refresh times (`generation`,
/// `refreshed_at`, `expires_at`); derefs to [`ReferenceSections`].
pub type Sections = Loaded<ReferenceSections>;

impl SectionSet for ReferenceSections {
    type Data = SnapshotData;

    /// Serializes the three sections on the calling task and compresses
    /// them at the same time, each over [`crate::OFF_THREAD_BYTES`] on
    /// tokio's blocking pool.
    async fn render(data: SnapshotData, generation: u64) -> Result<Self, serde_json::Error> {
        Self::render_after(data, generation, None).await
    }

    /// [`SectionSet::render`], reusing the compressed variants of every
    /// section whose JSON is the same as in `previous`.
    async fn render_after(
        data: SnapshotData,
        generation: u64,
        previous: Option<&Self>,
    ) -> Result<Self, serde_json::Error> {
        let (dashboard, historical, products) = tokio::try_join!(
            Section::render_reusing(generation, data.dashboard, previous.map(|p| &p.dashboard)),
            Section::render_reusing(generation, data.historical, previous.map(|p| &p.historical)),
            Section::render_reusing(generation, data.products, previous.map(|p| &p.products)),
        )?;
        Ok(Self {
            dashboard,
            historical,
            products,
        })
    }

    fn compress_time(&self) -> Duration {
        self.dashboard.encoded().compress_time()
            + self.historical.encoded().compress_time()
            + self.products.encoded().compress_time()
    }
}

impl Loaded<ReferenceSections> {
    /// Renders and compresses the three sections of `data`, fetched at
    /// `refreshed_at`, valid for `lifetime` from then; on the calling
    /// thread (the refresher uses [`Loaded::render_off_thread`]).
    ///
    /// # Errors
    /// When a section cannot be serialized.
    pub fn render(
        generation: u64,
        data: SnapshotData,
        refreshed_at: Timestamp,
        lifetime: Duration,
    ) -> Result<Self, serde_json::Error> {
        let sections = ReferenceSections {
            dashboard: Section::render(generation, data.dashboard)?,
            historical: Section::render(generation, data.historical)?,
            products: Section::render(generation, data.products)?,
        };
        Ok(Self::new(generation, refreshed_at, lifetime, sections))
    }
}
