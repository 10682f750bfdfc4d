//! The cost of recording metrics on the hot path: an L1 hit through a cache
//! whose handles record into a Prometheus recorder, against the same cache
//! operation with no recorder installed (no-op handles).
//!
//! Both caches are L1-only and hold the same 1,000 ids; each iteration reads
//! 100 of them inside one `block_on`, so the runtime's overhead is shared and
//! criterion reports the time per read (throughput: 100 elements).

use std::time::Duration;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warmcache::records::{AGE_VERIFICATION, AgeVerification, OtherFields, RecordTime, TimeFormat};
use warmcache::{TieredCache, metrics};

const IDS: usize = 1_000;
const BATCH: usize = 100;

fn record(id: &str) -> AgeVerification {
    AgeVerification {
        customer_id: id.to_owned(),
        verified: true,
        method: Some("id_document".to_owned()),
        verified_at: RecordTime::from_unix_ms(1_764_115_200_000, TimeFormat::Iso),
        date_of_birth: None,
        age_over: Some(18),
        other: OtherFields::new(),
    }
}

fn l1_only() -> TieredCache<AgeVerification> {
    TieredCache::builder(AGE_VERIFICATION)
        .l1_ttl(Duration::from_secs(3600))
        .build()
        .expect("cache")
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let recorder = metrics::prometheus_builder()
        .expect("buckets")
        .build_recorder();
    let handle = recorder.handle();
    let without = l1_only();
    let with = ::metrics::with_local_recorder(&recorder, l1_only);
    let ids: Vec<String> = (0..IDS).map(|i| format!("cust-{i}")).collect();
    runtime.block_on(async {
        for id in &ids {
            without.insert(id, record(id)).await.expect("stored");
            with.insert(id, record(id)).await.expect("stored");
        }
    });

    let mut group = c.benchmark_group("metrics_overhead");
    group.throughput(Throughput::Elements(BATCH as u64));
    group
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    for (name, cache) in [
        ("l1_hit/no_recorder", &without),
        ("l1_hit/prometheus", &with),
    ] {
        let mut next = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    for _ in 0..BATCH {
                        let hit = cache
                            .get(&ids[next])
                            .await
                            .expect("reads")
                            .expect("present");
                        black_box(hit.json().len());
                        next = (next + 1) % IDS;
                    }
                });
            });
        });
    }
    group.finish();

    // The recording alone: one hit counter increment, Prometheus vs no-op.
    let mut group = c.benchmark_group("record_one_hit");
    let labels = [
        ("cache", "age_verification"),
        ("tier", "l1"),
        ("result", "hit"),
    ];
    let prometheus = ::metrics::with_local_recorder(&recorder, || {
        ::metrics::counter!("bench_hits_total", &labels)
    });
    let noop = ::metrics::counter!("bench_hits_total", &labels);
    group.bench_function("no_recorder", |b| b.iter(|| black_box(&noop).increment(1)));
    group.bench_function("prometheus", |b| {
        b.iter(|| black_box(&prometheus).increment(1))
    });
    group.finish();
    // The recorder really recorded (and is not optimised away).
    assert!(handle.render().contains(r#"tier="l1",result="hit"}"#));
}

criterion_group!(benches, bench);
criterion_main!(benches);
