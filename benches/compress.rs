//! Render and compression time of the mock snapshot, the work a refresh does
//! once after its queries (no request ever compresses).
//!
//! * `dashboard/json`: serializing the mock `/dashboard` section only.
//! * `dashboard/json+gzip+br`: serializing and compressing it, as
//!   `Section::render` does for each section.
//! * `sections/json+gzip+br`: all three sections, `Sections::render`.
//!
//! Before measuring, prints the bytes of each section in identity, gzip and
//! brotli, and the compression time of one refresh. Run with
//! `cargo bench --bench compress`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use time::macros::datetime;
use warmcache::{Coding, MockSource, Sections, SnapshotData, Timestamp};

const TTL: Duration = Duration::from_secs(30);

fn mock_data() -> SnapshotData {
    let now = datetime!(2026-03-10 14:30:00 UTC);
    MockSource::new(42).with_now(now).generate(now, 0)
}

fn print_sizes() {
    let sections = Sections::render(1, mock_data(), Timestamp::now(), TTL)
        .unwrap_or_else(|e| panic!("mock data renders: {e}"));
    let bytes = |encoded: &warmcache::EncodedBody, coding| {
        encoded
            .get(coding)
            .map_or_else(|| "-".to_owned(), |v| v.bytes().len().to_string())
    };
    for (name, encoded) in [
        ("/dashboard", sections.dashboard.encoded()),
        ("/historical", sections.historical.encoded()),
        ("/products", sections.products.encoded()),
    ] {
        println!(
            "{name}: identity {} B, gzip {} B, br {} B, compressed in {:.1} ms",
            bytes(encoded, Coding::Identity),
            bytes(encoded, Coding::Gzip),
            bytes(encoded, Coding::Br),
            encoded.compress_time().as_secs_f64() * 1e3,
        );
    }
    println!(
        "one refresh: {:.1} ms of compression (three sections, one after another)",
        sections.compress_time().as_secs_f64() * 1e3
    );
}

fn compress(c: &mut Criterion) {
    print_sizes();
    let mut group = c.benchmark_group("render");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    let data = mock_data();
    group.bench_function("dashboard/json", |b| {
        b.iter(|| serde_json::to_vec(black_box(&data.dashboard)).map(|v| v.len()))
    });
    group.bench_function("dashboard/json+gzip+br", |b| {
        b.iter(|| {
            warmcache::Section::render(1, black_box(data.dashboard.clone()))
                .map(|s| s.body().len())
        })
    });
    group.bench_function("sections/json+gzip+br", |b| {
        b.iter(|| {
            Sections::render(1, black_box(data.clone()), Timestamp::now(), TTL)
                .map(|s| s.generation)
        })
    });
    group.finish();
}

criterion_group!(benches, compress);
criterion_main!(benches);
