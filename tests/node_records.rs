//! Records against real Node (ioredis, `JSON.stringify`): what Node writes
//! is served byte for byte and decoded; what warmcache writes is what Node
//! would have written; Node's `SETEX` and `DEL` reach L1; numbers print as
//! V8 prints them. The Node side is `tests/node/scripts/fleet.js`.

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::node::node_eval;
use support::{RedisServer, eventually};
use warmcache::records::{
    AGE_VERIFICATION, AgeVerification, CUSTOMER_PROFILE, CustomerProfile, JobStatus, Keyspace,
    REASONING_JOB, ReasoningJob, RecordTime, TimeFormat, js_json,
};
use warmcache::{InvalidationMode, InvalidationOptions, RedisHandle, Tier, TieredCache};

/// `new Date(Date.UTC(2026, 10, 26, 12, 34, 56, 789))`, the fleet's time.
const AT: &str = "new Date(Date.UTC(2026, 10, 26, 12, 34, 56, 789))";

fn cache<V>(redis: &RedisHandle, keyspace: Keyspace, l1_max_bytes: u64) -> TieredCache<V>
where
    V: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    TieredCache::builder(keyspace)
        .redis(redis.clone())
        .l1_max_bytes(l1_max_bytes)
        .build()
        .expect("valid cache")
}

struct Caches {
    ages: TieredCache<AgeVerification>,
    profiles: TieredCache<CustomerProfile>,
    jobs: TieredCache<ReasoningJob>,
}

impl Caches {
    fn new(server: &RedisServer) -> Self {
        let redis = RedisHandle::connect_lazy(&server.config()).expect("valid settings");
        Self {
            ages: cache(&redis, AGE_VERIFICATION, 1 << 20),
            profiles: cache(&redis, CUSTOMER_PROFILE, 1 << 20),
            jobs: cache(&redis, REASONING_JOB, 1 << 20),
        }
    }

    /// The bytes served for a Redis key, and the tier that served them.
    async fn served(&self, key: &str) -> (Vec<u8>, Tier) {
        let (space, id) = key.split_once(':').expect("prefixed key");
        let found = match space {
            "age_verification" => self
                .ages
                .get(id)
                .await
                .map(|c| c.map(|c| (c.json().clone(), c.tier()))),
            "customer_profile" => self
                .profiles
                .get(id)
                .await
                .map(|c| c.map(|c| (c.json().clone(), c.tier()))),
            _ => self
                .jobs
                .get(id)
                .await
                .map(|c| c.map(|c| (c.json().clone(), c.tier()))),
        };
        let (json, tier) = found.expect("reads").expect("present");
        (json.to_vec(), tier)
    }
}

/// Node stores the fleet's records; returns key -> JSON text, and the time in ms.
fn store_fleet(port: u16) -> (BTreeMap<String, String>, i64) {
    let lines = node_eval(
        port,
        &format!(
            "const at = {AT}; const texts = await require('./fleet').storeFleetRecords(redis, at);
             out({{ texts, ms: at.getTime() }});"
        ),
    );
    let texts = serde_json::from_value(lines[0]["texts"].clone()).expect("key -> text");
    (texts, lines[0]["ms"].as_i64().expect("ms"))
}

#[tokio::test]
async fn what_node_writes_is_served_as_written_and_decoded_once() {
    let server = RedisServer::start();
    let (texts, ms) = store_fleet(server.port());
    let caches = Caches::new(&server);
    for (key, text) in &texts {
        assert_eq!(
            caches.served(key).await,
            (text.clone().into_bytes(), Tier::L2),
            "{key}"
        );
        assert_eq!(
            caches.served(key).await,
            (text.clone().into_bytes(), Tier::L1),
            "{key}"
        );
    }

    let ages = &caches.ages;
    let age =
        |id: &'static str| async move { ages.get(id).await.expect("reads").expect("present") };
    let time = |record: &AgeVerification| {
        let at = record.verified_at.as_ref().expect("a time");
        (at.unix_ms(), at.format())
    };
    let iso = age("iso").await;
    assert_eq!(
        (time(&iso), iso.method.as_deref()),
        ((ms, TimeFormat::Iso), Some("id_document"))
    );
    let epoch = age("epoch").await;
    assert_eq!(
        (time(&epoch), epoch.verified, epoch.age_over),
        ((ms, TimeFormat::EpochMs), false, Some(21))
    );
    assert_eq!(time(&*age("float").await), (ms, TimeFormat::EpochMs));
    assert_eq!(time(&*age("offset").await), (ms, TimeFormat::Iso));
    assert_eq!(time(&*age("nofrac").await), (ms - 789, TimeFormat::Iso));
    let extra = age("extra").await;
    assert_eq!(extra.method, None, "null reads as absent");
    assert_eq!(extra.other.get("method"), Some(&Value::Null), "and is kept");
    assert_eq!(extra.other.get("nested").expect("kept")["2"], "two");
    assert_eq!(extra.other.get("numbers").expect("kept")[1], json!(1e21));

    let profile = caches
        .profiles
        .get("p1")
        .await
        .expect("reads")
        .expect("present");
    assert_eq!(profile.name.as_deref(), Some("Zoë"));
    assert_eq!(profile.other.get("loyaltyPoints"), Some(&json!(120)));
    assert_eq!(
        profile.updated_at.as_ref().map(RecordTime::unix_ms),
        Some(ms)
    );
    let job = caches
        .jobs
        .get("j1")
        .await
        .expect("reads")
        .expect("present");
    assert_eq!(
        job.status,
        JobStatus::Other("delayed".to_owned()),
        "an unknown status is kept"
    );
    assert_eq!(
        (job.added_at.as_ref(), job.other.get("attempts")),
        (None, Some(&json!(2)))
    );

    // An L1 hit hands out the value decoded at the fill, not a new decode.
    let (first, second) = (age("iso").await, age("iso").await);
    assert!(std::ptr::eq(first.value(), second.value()));
    assert_eq!(caches.ages.stats().l2_hits, 6, "one decode per record");
}

#[tokio::test]
async fn what_warmcache_writes_is_what_node_would_have_written() {
    let server = RedisServer::start();
    let (texts, ms) = store_fleet(server.port());
    let caches = Caches::new(&server);
    // A value from a writer that is not JSON.stringify: its numbers, key
    // order and escapes are not V8's, until warmcache writes it back.
    let raw = r#"{"verified":true,"customerId":"raw","n":1.0,"big":9007199254740993,"e":1E21,"neg":-0.0,"2":"b","1":"a","s":"\u00e9\/"}"#;
    let mut foreign = server.foreign().await;
    for key in ["age_verification:raw", "raw_source"] {
        let () = redis::AsyncCommands::set_ex(&mut foreign, key, raw, 3600)
            .await
            .expect("set");
    }

    // Written back unchanged.
    for key in texts
        .keys()
        .map(String::as_str)
        .chain(["age_verification:raw"])
    {
        let (space, id) = key.split_once(':').expect("prefixed");
        match space {
            "age_verification" => rewrite(&caches.ages, id).await,
            "customer_profile" => rewrite(&caches.profiles, id).await,
            _ => rewrite(&caches.jobs, id).await,
        }
    }
    // Changed, as a Node service would change them.
    let mut extra = (*caches
        .ages
        .get("extra")
        .await
        .expect("reads")
        .expect("present")
        .value())
    .clone();
    extra.verified = false;
    caches.ages.insert("extra", extra).await.expect("stored");
    let mut profile = (*caches
        .profiles
        .get("p1")
        .await
        .expect("ok")
        .expect("present")
        .value())
    .clone();
    profile.name = Some("Renamed".to_owned());
    profile.other.insert("vip", json!(true));
    caches.profiles.insert("p1", profile).await.expect("stored");
    let mut job = (*caches
        .jobs
        .get("j1")
        .await
        .expect("ok")
        .expect("present")
        .value())
    .clone();
    job.status = JobStatus::Completed;
    job.result = Some(json!({ "answer": 42, "score": 0.5 }));
    job.finished_at = RecordTime::from_unix_ms(ms + 1000, TimeFormat::Iso);
    caches.jobs.insert("j1", job).await.expect("stored");
    // New records, in both time forms.
    for (id, format) in [
        ("new-iso", TimeFormat::Iso),
        ("new-epoch", TimeFormat::EpochMs),
    ] {
        let mut record = AgeVerification::new(id, true);
        record.method = Some("id_document".to_owned());
        record.verified_at = RecordTime::from_unix_ms(ms, format);
        caches.ages.insert(id, record).await.expect("stored");
    }

    node_eval(
        server.port(),
        &format!(
            "const assert = require('node:assert');
             const at = {AT};
             const want = {{}};
             for (const [k, r] of Object.entries(require('./fleet').fleetRecords(at))) {{
               want[k] = JSON.parse(JSON.stringify(r));
             }}
             want['age_verification:raw'] = JSON.parse(JSON.stringify(JSON.parse(await redis.get('raw_source'))));
             want['age_verification:extra'].verified = false;
             Object.assign(want['customer_profile:p1'], {{ name: 'Renamed', vip: true }});
             Object.assign(want['reasoning_job:j1'], {{
               status: 'completed', result: {{ answer: 42, score: 0.5 }},
               finishedAt: new Date(at.getTime() + 1000).toISOString(),
             }});
             want['age_verification:new-iso'] = JSON.parse(JSON.stringify(
               {{ customerId: 'new-iso', verified: true, method: 'id_document', verifiedAt: at }}));
             want['age_verification:new-epoch'] =
               {{ customerId: 'new-epoch', verified: true, method: 'id_document', verifiedAt: at.getTime() }};
             for (const [key, expected] of Object.entries(want)) {{
               const stored = await redis.get(key);
               const parsed = JSON.parse(stored);
               assert.deepStrictEqual(parsed, expected, key);
               assert.strictEqual(JSON.stringify(parsed), stored, key);
               assert.strictEqual(stored, JSON.stringify(expected), key + ': key order');
             }}
             out(Object.keys(want).length);"
        ),
    );
}

async fn rewrite<V>(cache: &TieredCache<V>, id: &str)
where
    V: Clone + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let cached = cache.get(id).await.expect("reads").expect("present");
    cache
        .insert(id, cached.value().clone())
        .await
        .expect("stored");
}

/// A few thousand doubles from a fixed seed, as JSON number text.
fn random_number_texts(count: usize) -> Vec<String> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut texts = Vec::with_capacity(count);
    while texts.len() < count {
        let bits = next();
        let x = match texts.len() % 3 {
            0 => f64::from_bits(bits),
            // Everyday magnitudes: prices, scores, timestamps.
            1 => (bits >> 11) as f64 / (1u64 << 53) as f64 * 10f64.powi((bits % 40) as i32 - 20),
            _ => (bits >> (bits % 64)) as f64,
        };
        if x.is_finite() {
            texts.push(format!("{x:e}"));
        }
    }
    texts
}

#[tokio::test]
async fn number_and_key_order_text_is_v8s() {
    let server = RedisServer::start();
    let mut texts: Vec<String> = [
        "0.1",
        "1e21",
        "1E21",
        "1e-7",
        "-0",
        "-0.0",
        "9007199254740993",
        "123456789012345680000",
        "1.5e300",
        "5e-324",
        "1.0",
        "100",
        "1e20",
        "123e-20",
        "0.000001",
        "1.7976931348623157e308",
        "18446744073709551615",
        "-9223372036854775809",
        "123456789012345678901234567890",
        "4.35",
        "2.5e-7",
        "-1e-7",
        "1e+21",
        "0.1e1",
        "[1.0,-0,2e0]",
        r#"{"b":1,"10":2,"a":3,"2":4,"01":5,"4294967295":6,"4294967294":7,"-1":8,"1.5":9}"#,
        r#""\u0000\u001f\u007f\u2028\ud83d\ude00 \"\\\/é""#,
    ]
    .iter()
    .map(|t| (*t).to_owned())
    .collect();
    texts.extend(random_number_texts(2_000));
    let node = node_eval(
        server.port(),
        &format!(
            "const texts = {}; out(texts.map((t) => JSON.stringify(JSON.parse(t))));",
            serde_json::to_string(&texts).expect("json")
        ),
    );
    let node: Vec<String> = serde_json::from_value(node[0].clone()).expect("strings");
    let mismatches: Vec<_> = texts
        .iter()
        .zip(&node)
        .filter_map(|(text, node)| {
            let value: Value = serde_json::from_str(text).expect("valid JSON");
            let ours = String::from_utf8(js_json::to_vec(&value).expect("writes")).expect("utf-8");
            (ours != *node).then(|| format!("{text}: warmcache {ours}, node {node}"))
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_setex_and_del_reach_l1() {
    let server = RedisServer::start();
    let redis = RedisHandle::connect_lazy(&server.config()).expect("valid settings");
    let ages: TieredCache<AgeVerification> = cache(&redis, AGE_VERIFICATION, 1 << 20);
    let listener = redis.start_invalidation(InvalidationOptions::default());
    eventually("client tracking", || async {
        listener.mode() == InvalidationMode::Tracking
    })
    .await;
    store_fleet(server.port());
    ages.get("iso").await.expect("reads").expect("present");
    assert_eq!(
        ages.get("iso").await.expect("ok").expect("present").tier(),
        Tier::L1
    );

    node_eval(
        server.port(),
        "await redis.setex('age_verification:iso', 3600,
           JSON.stringify({ customerId: 'iso', verified: false, verifiedAt: new Date() }));",
    );
    eventually("the overwrite in L1", || async {
        ages.get("iso")
            .await
            .ok()
            .flatten()
            .is_some_and(|c| !c.value().verified)
    })
    .await;
    node_eval(server.port(), "await redis.del('age_verification:iso');");
    eventually("the delete in L1", || async {
        matches!(ages.get("iso").await, Ok(None))
    })
    .await;
    assert!(ages.stats().remote_invalidations >= 2);
    listener.shutdown().await;
}

#[tokio::test]
async fn values_over_the_l1_entry_cap_are_served_but_not_kept() {
    let server = RedisServer::start();
    let redis = RedisHandle::connect_lazy(&server.config()).expect("valid settings");
    // A 1 MiB budget keeps entries up to 16 KiB; the big record is ~100 KB.
    let ages: TieredCache<AgeVerification> = cache(&redis, AGE_VERIFICATION, 1 << 20);
    let lines = node_eval(
        server.port(),
        "const text = JSON.stringify({ customerId: 'big', verified: true, scan: 'x'.repeat(100000) });
         await redis.setex('age_verification:big', 3600, text); out(text);",
    );
    let text = lines[0].as_str().expect("text");
    for _ in 0..2 {
        let got = ages.get("big").await.expect("reads").expect("present");
        assert_eq!(
            (got.json().as_ref(), got.tier()),
            (text.as_bytes(), Tier::L2)
        );
    }
    assert!(ages.l1_time_to_live("big").await.is_none());
    let mut big = AgeVerification::new("big2", true);
    big.other.insert("scan", json!("y".repeat(100_000)));
    ages.insert("big2", big).await.expect("stored");
    assert!(
        ages.l1_time_to_live("big2").await.is_none(),
        "an insert is not kept either"
    );
    assert_eq!(ages.stats().l1_oversize, 3);
    // A small one still is.
    ages.insert("small", AgeVerification::new("small", true))
        .await
        .expect("stored");
    assert!(ages.l1_time_to_live("small").await.is_some());
}
