//! A refresh compresses only the sections whose JSON changed: an unchanged
//! section keeps the very buffers of its gzip and brotli variants (and
//! their ETags) from the snapshot it replaces, so a refresh of unchanged
//! data costs no compression at all.

use std::time::Duration;

use bytes::Bytes;
use time::macros::datetime;
use warmcache::testing::{Scripted, Step};
use warmcache::{Coding, EncodedBody, MockSource, Mode, Refresher, SnapshotCache, SnapshotData};

fn data() -> SnapshotData {
    let now = datetime!(2026-03-10 14:30:00 UTC);
    MockSource::new(42).with_now(now).generate(now, 0)
}

/// The compressed buffers of a section: (gzip, br).
fn buffers(body: &EncodedBody) -> (Bytes, Bytes) {
    let bytes = |coding| {
        body.get(coding)
            .expect("compressed variant")
            .bytes()
            .clone()
    };
    (bytes(Coding::Gzip), bytes(Coding::Br))
}

fn same_buffers(a: &(Bytes, Bytes), b: &(Bytes, Bytes)) -> bool {
    a.0.as_ptr() == b.0.as_ptr() && a.1.as_ptr() == b.1.as_ptr()
}

#[tokio::test(start_paused = true)]
async fn only_changed_sections_are_compressed_again() {
    let source = Scripted::new(&[Step::Succeed]);
    source.set_data(Some(data()));
    let cache = SnapshotCache::new(Mode::Mock);
    let refresher = Refresher::builder()
        .ttl(Duration::from_secs(30))
        .jitter(0.0)
        .spawn(source.clone(), cache.clone())
        .expect("valid settings");

    refresher.refresh_now().await.expect("first refresh");
    let first = cache.load().data.clone().expect("loaded");
    assert!(
        first.compress_time() > Duration::ZERO,
        "the first refresh compresses"
    );

    refresher.refresh_now().await.expect("same data");
    let second = cache.load().data.clone().expect("loaded");
    assert_eq!(second.generation, first.generation + 1);
    assert_eq!(
        second.compress_time(),
        Duration::ZERO,
        "nothing changed: nothing compressed"
    );
    for (a, b) in [
        (first.dashboard.encoded(), second.dashboard.encoded()),
        (first.historical.encoded(), second.historical.encoded()),
        (first.products.encoded(), second.products.encoded()),
    ] {
        assert!(
            same_buffers(&buffers(a), &buffers(b)),
            "an unchanged section keeps its buffers"
        );
        assert_eq!(
            a.get(Coding::Br).map(|v| v.etag()),
            b.get(Coding::Br).map(|v| v.etag())
        );
    }

    let mut changed = data();
    changed.dashboard.kpis.today.transactions += 1;
    source.set_data(Some(changed.clone()));
    refresher.refresh_now().await.expect("changed data");
    let third = cache.load().data.clone().expect("loaded");
    assert!(
        same_buffers(
            &buffers(second.historical.encoded()),
            &buffers(third.historical.encoded())
        ),
        "historical did not change"
    );
    let dashboard = buffers(third.dashboard.encoded());
    assert!(!same_buffers(
        &buffers(second.dashboard.encoded()),
        &dashboard
    ));
    let fresh = EncodedBody::compress(Bytes::from(
        serde_json::to_vec(&changed.dashboard).expect("serializes"),
    ));
    assert_eq!(
        dashboard,
        buffers(&fresh),
        "the changed section is compressed anew"
    );
    assert_ne!(
        third.dashboard.etag(),
        second.dashboard.etag(),
        "and gets a new ETag"
    );
    assert_eq!(
        third.dashboard.value().kpis.today.transactions,
        changed.dashboard.kpis.today.transactions
    );
    refresher.shutdown().await;
}
