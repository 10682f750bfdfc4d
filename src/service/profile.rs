//! The customer profile as the reference service types it, and its mock loader.
//!
//! The library caches profiles as opaque JSON; the service gives them a
//! shape. Fields it does not know are kept (`extra`), so a profile a Node
//! service wrote with more fields survives a round trip through warmcache.

use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;
use crate::tier::CacheId;

/// A customer profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerProfile {
    /// The customer.
    pub customer_id: String,
    /// Display name.
    pub name: String,
    /// Contact address.
    pub email: String,
    /// Loyalty tier, e.g. `gold`.
    pub tier: String,
    /// Whether marketing e-mail is allowed.
    pub marketing_opt_in: bool,
    /// Last change, milliseconds since the epoch.
    pub updated_at: i64,
    /// Fields this service does not know, kept as they are.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

const FIRST: [&str; 8] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
];
const LAST: [&str; 8] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
];
const TIERS: [&str; 4] = ["bronze", "silver", "gold", "platinum"];

/// Mock mode's source of truth: a generated profile for any id, the same
/// every time for the same id.
pub(crate) fn mock_profile(id: &CacheId) -> CustomerProfile {
    let seed = id.as_str().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut rng = SplitMix64::new(seed);
    let mut pick = |items: &[&'static str]| items[rng.below(items.len() as u64) as usize];
    let (first, last, tier) = (pick(&FIRST), pick(&LAST), pick(&TIERS));
    CustomerProfile {
        customer_id: id.to_string(),
        name: format!("{first} {last}"),
        email: format!(
            "{}.{}@example.com",
            first.to_lowercase(),
            id.as_str().to_lowercase()
        ),
        tier: tier.to_owned(),
        marketing_opt_in: seed % 2 == 0,
        updated_at: 1_767_225_600_000 + (seed % 10_000_000) as i64,
        extra: serde_json::Map::new(),
    }
}
