//! Mock mode's profile loader: a generated [`CustomerProfile`] for any id.

use crate::records::{CustomerProfile, RecordTime, TimeFormat};
use crate::rng::SplitMix64;
use crate::tier::CacheId;

const FIRST: [&str; 8] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
];
const LAST: [&str; 8] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
];
const TIERS: [&str; 4] = ["bronze", "silver", "gold", "platinum"];

/// Mock mode's source of truth: a generated profile for any id, the same
/// every time for the same id, its `updatedAt` written in `format`.
pub(crate) fn mock_profile(id: &CacheId, format: TimeFormat) -> CustomerProfile {
    let seed = crate::fnv::fnv1a64(id.as_str().as_bytes());
    let mut rng = SplitMix64::new(seed);
    let mut pick = |items: &[&'static str]| items[rng.below(items.len() as u64) as usize];
    let (first, last, tier) = (pick(&FIRST), pick(&LAST), pick(&TIERS));
    let mut profile = CustomerProfile::new(id.as_str());
    profile.name = Some(format!("{first} {last}"));
    profile.email = Some(format!(
        "{}.{}@example.com",
        first.to_lowercase(),
        id.as_str().to_lowercase()
    ));
    profile.tier = Some(tier.to_owned());
    profile.marketing_opt_in = Some(seed % 2 == 0);
    profile.updated_at =
        RecordTime::from_unix_ms(1_767_225_600_000 + (seed % 10_000_000) as i64, format);
    profile
}
