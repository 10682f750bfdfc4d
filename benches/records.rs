//! Decoding and encoding records that real Node wrote.
//!
//! At start the bench runs `node` on `tests/node/scripts/fleet.js` (the
//! records of the interop tests) and takes two `JSON.stringify` texts: a
//! plain age verification with an ISO time (`small`), and one with extra,
//! nested and unicode fields and the number edge cases (`extra`). Then:
//!
//! * `decode/<record>/age_verification`: `serde_json::from_slice` into
//!   [`AgeVerification`], what a fill does once per Redis read;
//! * `decode/<record>/serde_value`: into a `serde_json::Value`, the floor
//!   any reader that keeps unknown fields pays;
//! * `encode/<record>/js_json`: [`js_json::to_vec`], what an insert writes;
//!   `encode/<record>/serde_json`: `serde_json::to_vec`, whose numbers are
//!   not V8's, for scale.
//!
//! Needs Node and the test package (`npm ci --prefix tests/node`). Run with
//! `cargo bench --bench records`.

use std::hint::black_box;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};
use warmcache::records::{AgeVerification, js_json};

/// The two Node-written texts: `small` and `extra`.
fn node_written() -> Vec<(&'static str, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node/scripts");
    let output = Command::new("node")
        .current_dir(dir)
        .arg("-e")
        .arg(
            "const r = require('./fleet').fleetRecords(new Date());
             console.log(JSON.stringify([JSON.stringify(r['age_verification:iso']),
                                         JSON.stringify(r['age_verification:extra'])]));",
        )
        .output()
        .expect("node must be installed");
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let texts: Vec<String> = serde_json::from_slice(&output.stdout).expect("two texts");
    ["small", "extra"]
        .into_iter()
        .zip(texts.into_iter().map(String::into_bytes))
        .collect()
}

fn records(c: &mut Criterion) {
    for (name, text) in node_written() {
        let record: AgeVerification = serde_json::from_slice(&text).expect("decodes");
        assert_eq!(
            js_json::to_vec(&record).expect("encodes"),
            text,
            "round trip"
        );
        let mut group = c.benchmark_group(format!("decode/{name}"));
        group.bench_function("age_verification", |b| {
            b.iter(|| serde_json::from_slice::<AgeVerification>(black_box(&text)))
        });
        group.bench_function("serde_value", |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&text)))
        });
        group.finish();
        let mut group = c.benchmark_group(format!("encode/{name}"));
        group.bench_function("js_json", |b| {
            b.iter(|| js_json::to_vec(black_box(&record)))
        });
        group.bench_function("serde_json", |b| {
            b.iter(|| serde_json::to_vec(black_box(&record)))
        });
        group.finish();
    }
}

criterion_group!(benches, records);
criterion_main!(benches);
