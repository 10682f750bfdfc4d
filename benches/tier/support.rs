//! What the tier benches compare warmcache against, and their helpers: the
//! bare baselines (an L1-shaped moka entry and expiry, the L2 read on a bare
//! connection), a fixed shuffle, the median, and the record they read.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use warmcache::CacheId;
use warmcache::records::{AGE_VERIFICATION, AgeVerification, OtherFields, RecordTime, TimeFormat};

/// 0..n in a fixed pseudo-random order (splitmix64, Fisher-Yates), so reads
/// do not walk memory in allocation order on any side.
pub(super) fn shuffled(n: usize) -> Vec<usize> {
    let mut state: u64 = 0x5eed_1234_abcd_9876;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// The median of `values` (sorted in place).
pub(super) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// A small record (about 130 bytes of JSON, an ISO time).
pub(super) fn verification(customer: &str) -> AgeVerification {
    AgeVerification {
        customer_id: customer.to_owned(),
        verified: true,
        method: Some("id_document".to_owned()),
        verified_at: RecordTime::from_unix_ms(1_764_115_200_000, TimeFormat::Iso),
        date_of_birth: Some("1990-04-01".to_owned()),
        age_over: None,
        other: OtherFields::new(),
    }
}

/// The shape of warmcache's L1 entry, rebuilt here (the real one is private).
#[derive(Clone)]
pub(super) struct LikeL1Entry {
    pub(super) value: Arc<AgeVerification>,
    pub(super) json: Bytes,
    pub(super) expires_at: tokio::time::Instant,
}

/// An L1 hit on the L1-shaped moka as warmcache serves one: check the id,
/// look it up, check the deadline, copy out the value and the JSON.
pub(super) fn like_l1_full(
    like_l1: &moka::sync::Cache<CacheId, LikeL1Entry>,
    id: &str,
) -> Option<(Arc<AgeVerification>, Bytes)> {
    let id = CacheId::parse(id).ok()?;
    let entry = like_l1.get(&id)?;
    if entry.expires_at <= tokio::time::Instant::now() {
        return None;
    }
    Some((Arc::clone(&entry.value), entry.json.clone()))
}

/// What `get_from_l2` does, on the bare connection instead of through
/// `RedisHandle` (no breaker, no timeout, no stripes, no counters): check the
/// id, build the key, `GET` + `PTTL` pipelined, decode, wrap.
pub(super) async fn like_get_from_l2(
    conn: &mut redis::aio::ConnectionManager,
    id: &str,
) -> Option<(Arc<AgeVerification>, Bytes, Option<Duration>)> {
    let id = CacheId::parse(id).ok()?;
    let key = format!("{}:{id}", AGE_VERIFICATION.name);
    let (json, pttl): (Option<Vec<u8>>, i64) = redis::pipe()
        .get(&key)
        .pttl(&key)
        .query_async(conn)
        .await
        .ok()?;
    let json = Bytes::from(json?);
    let value = serde_json::from_slice::<AgeVerification>(&json).ok()?;
    let ttl = u64::try_from(pttl).ok().map(Duration::from_millis);
    Some((Arc::new(value), json, ttl))
}
