//! What logs at `warn` and above may say about a record: its keyspace and
//! a short hash of its id, never the id (a customer id is personal data).
//! `debug` lines may show the full key.
//!
//! [`id_hash`] is 8 hex digits of FNV-1a: stable across instances and
//! restarts, so the lines of one id can be found on every instance (hash
//! the id you look for the same way). It tells ids apart; it does not hide
//! an id from someone who can guess it and hash the guess.

use std::fmt;

use crate::fnv::fnv1a64;

/// The short hash of an id, shown as 8 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdHash(u32);

impl fmt::Display for IdHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// The short hash of `id`: FNV-1a 64 folded to 32 bits.
pub fn id_hash(id: &str) -> IdHash {
    let hash = fnv1a64(id.as_bytes());
    IdHash((hash ^ (hash >> 32)) as u32)
}

/// `text` with every occurrence of `id` replaced by `#<hash>`: for messages
/// warmcache did not write (a loader's error), which may quote the id.
pub fn scrub(text: &str, id: &str) -> String {
    if id.is_empty() {
        return text.to_owned();
    }
    text.replace(id, &format!("#{}", id_hash(id)))
}

/// A Redis key `keyspace:id` as `keyspace:#<hash>`, for log lines that
/// only have the key.
pub fn key(key: &str) -> impl fmt::Display + '_ {
    RedactedKey(key)
}

struct RedactedKey<'a>(&'a str);

impl fmt::Display for RedactedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.rsplit_once(':') {
            Some((keyspace, id)) => write!(f, "{keyspace}:#{}", id_hash(id)),
            None => write!(f, "#{}", id_hash(self.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_short_stable_and_tell_ids_apart() {
        let hash = id_hash("cust-123").to_string();
        assert_eq!(hash.len(), 8);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(hash, id_hash("cust-123").to_string());
        assert_ne!(id_hash("cust-123"), id_hash("cust-124"));
        // Pinned: the hash must not change between releases.
        assert_eq!(id_hash("cust-123").to_string(), "aabe327b");
    }

    #[test]
    fn keys_keep_the_keyspace_and_lose_the_id() {
        let shown = key("age_verification:cust-123").to_string();
        assert_eq!(shown, format!("age_verification:#{}", id_hash("cust-123")));
        assert!(!shown.contains("cust-123"));
        assert!(!key("cust-123").to_string().contains("cust-123"));
    }

    #[test]
    fn scrub_replaces_every_occurrence() {
        let text = scrub("no row for cust-9 (cust-9 was erased)", "cust-9");
        assert!(!text.contains("cust-9"), "{text}");
        assert_eq!(text.matches(&id_hash("cust-9").to_string()).count(), 2);
    }
}
