//! Render and compression time of the mock snapshot, the work a refresh does
//! once after its queries (no request ever compresses).
//!
//! * `dashboard/json`: serializing the mock `/dashboard` section only.
//! * `dashboard/json+gzip+br`: serializing and compressing it, as
//!   `Section::render` does for each section.
//! * `sections/json+gzip+br`: all three sections, `Sections::render`
//!   (inline, one after another).
//! * `refresh/changed`: what a refresh round does with new data
//!   (`Loaded::render_after`: the three compressed at once, on tokio's
//!   blocking pool); `refresh/unchanged`: the same with the data of the
//!   snapshot it replaces (the compressed variants are reused).
//!
//! Before measuring, prints the bytes of each section in identity, gzip and
//! brotli, and the compression time of one refresh; with `COMPRESS_SWEEP=1`,
//! also bytes and time at other brotli qualities and gzip levels. Run with
//! `cargo bench --bench compress`.

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

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

/// Bytes and time of brotli at several qualities and gzip at several levels,
/// for the largest and the smallest section: how the crate's choice compares.
fn print_sweep() {
    let data = mock_data();
    let bodies = [
        ("/dashboard", serde_json::to_vec(&data.dashboard)),
        ("/products", serde_json::to_vec(&data.products)),
    ];
    for (name, body) in bodies {
        let body = body.unwrap_or_else(|e| panic!("renders: {e}"));
        for quality in [4, 5, 6, 9, 10, 11] {
            let started = Instant::now();
            let mut out = Vec::new();
            let params = brotli::enc::BrotliEncoderParams {
                quality,
                size_hint: body.len(),
                ..Default::default()
            };
            brotli::BrotliCompress(&mut body.as_slice(), &mut out, &params)
                .unwrap_or_else(|e| panic!("brotli: {e}"));
            let ms = started.elapsed().as_secs_f64() * 1e3;
            println!("{name}: br q{quality}: {} B in {ms:.1} ms", out.len());
        }
        for level in [1, 6, 9] {
            let started = Instant::now();
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            encoder
                .write_all(&body)
                .unwrap_or_else(|e| panic!("gzip: {e}"));
            let out = encoder.finish().unwrap_or_else(|e| panic!("gzip: {e}"));
            let ms = started.elapsed().as_secs_f64() * 1e3;
            println!("{name}: gzip {level}: {} B in {ms:.1} ms", out.len());
        }
    }
}

fn compress(c: &mut Criterion) {
    print_sizes();
    if std::env::var_os("COMPRESS_SWEEP").is_some() {
        print_sweep();
    }
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
            warmcache::Section::render(1, black_box(data.dashboard.clone())).map(|s| s.body().len())
        })
    });
    group.bench_function("sections/json+gzip+br", |b| {
        b.iter(|| {
            Sections::render(1, black_box(data.clone()), Timestamp::now(), TTL)
                .map(|s| s.generation)
        })
    });
    // What a refresh round does (`Loaded::render_after`, compression on
    // tokio's blocking pool, three sections at once), with new data and
    // with the same data as the snapshot it replaces.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let refresh = |previous: Option<&Sections>| {
        let previous = previous.map(|p| &p.sections);
        rt.block_on(Sections::render_after(
            2,
            black_box(data.clone()),
            Timestamp::now(),
            TTL,
            previous,
        ))
        .map(|s| s.generation)
    };
    group.bench_function("refresh/changed", |b| b.iter(|| refresh(None)));
    let previous = Sections::render(1, data.clone(), Timestamp::now(), TTL)
        .unwrap_or_else(|e| panic!("mock data renders: {e}"));
    group.bench_function("refresh/unchanged", |b| b.iter(|| refresh(Some(&previous))));
    group.finish();
}

criterion_group!(benches, compress);
criterion_main!(benches);
