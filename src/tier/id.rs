//! `CacheId`: a customer or job id checked before it becomes part of a Redis key.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Longest id held inline, without a heap allocation of its own (a UUID's 36
/// bytes fit). L1 keeps its keys behind one pointer: an inline id is read
/// where the key is, one cache miss fewer per lookup than a boxed one.
const INLINE_LEN: usize = 38;

/// An id of 1 to 128 bytes of `[A-Za-z0-9._-]`: no whitespace, control
/// bytes, `:` (key separator) or glob characters, so it can never reach
/// another key or pattern.
///
/// Hashes, compares and orders as the bytes it holds (its `str`'s order).
#[derive(Clone)]
pub struct CacheId(Repr);

#[derive(Clone)]
enum Repr {
    /// `len` bytes of `bytes`, every one ASCII (checked).
    Inline {
        len: u8,
        bytes: [u8; INLINE_LEN],
    },
    Heap(Box<str>),
}

/// Why an id was rejected. Shows the id escaped and shortened, never raw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id {shown}: {reason}")]
pub struct InvalidId {
    /// The id, escaped and cut to 64 characters.
    pub shown: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl CacheId {
    /// Checks `id`.
    ///
    /// # Errors
    /// Empty, longer than 128 bytes, or a byte outside `[A-Za-z0-9._-]`.
    pub fn parse(id: &str) -> Result<Self, InvalidId> {
        Self::check(id).map(Self::from_checked)
    }

    /// Checks `id` as [`CacheId::parse`] does, without copying it: an L1
    /// lookup borrows the caller's string.
    pub(crate) fn check(id: &str) -> Result<&str, InvalidId> {
        let reject = |reason| {
            let escaped: String = id.escape_debug().take(64).collect();
            Err(InvalidId {
                shown: format!("\"{escaped}\""),
                reason,
            })
        };
        if id.is_empty() {
            return reject("it is empty");
        }
        if id.len() > MAX_ID_LEN {
            return reject("it is longer than 128 bytes");
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return reject("only letters, digits, '.', '_' and '-' are allowed");
        }
        Ok(id)
    }

    /// An id [`CacheId::check`] accepted.
    pub(crate) fn from_checked(id: &str) -> Self {
        let Ok(len) = u8::try_from(id.len()) else {
            return Self(Repr::Heap(id.into()));
        };
        if id.len() > INLINE_LEN {
            return Self(Repr::Heap(id.into()));
        }
        let mut bytes = [0; INLINE_LEN];
        bytes[..id.len()].copy_from_slice(id.as_bytes());
        Self(Repr::Inline { len, bytes })
    }

    /// The id's bytes (ASCII): what L1 hashes and compares, with no UTF-8
    /// check on the way (`as_str` makes one).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(id) => id.as_bytes(),
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // ASCII by construction, so this never fails; `unsafe` (which
            // would skip the check) is forbidden in this crate, and the
            // check of at most 38 ASCII bytes costs a few nanoseconds.
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Heap(id) => id,
        }
    }
}

impl PartialEq for CacheId {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for CacheId {}

impl PartialOrd for CacheId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CacheId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

/// As its bytes' hash: required by [`Borrow<[u8]>`].
impl Hash for CacheId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for CacheId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CacheId").field(&self.as_str()).finish()
    }
}

/// Hashes and compares as the bytes it holds, so moka finds an entry by the
/// bytes of a borrowed id (one that [`CacheId::parse`] accepts), copying
/// nothing.
impl Borrow<[u8]> for CacheId {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Display for CacheId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        for id in [
            "c",
            "cust_123",
            "A-b.c_9",
            "550e8400-e29b-41d4-a716-446655440000",
            &"x".repeat(128),
        ] {
            assert_eq!(CacheId::parse(id).expect("valid").as_str(), id);
        }
    }

    #[test]
    fn rejects_everything_that_could_reach_another_key() {
        for id in [
            "",
            &"x".repeat(129),
            "a b",
            "a:b",
            "a*",
            "a?",
            "[a]",
            "a\nb",
            "a\0",
            "é",
            "a/b",
            "a\\b",
            "{a}",
        ] {
            assert!(CacheId::parse(id).is_err(), "{id:?} must be rejected");
        }
    }

    #[test]
    fn inline_and_boxed_ids_hash_compare_and_order_as_their_str() {
        use std::collections::hash_map::RandomState;
        use std::hash::BuildHasher;
        let hasher = RandomState::new();
        let uuid = "550e8400-e29b-41d4-a716-446655440000";
        let ids = [uuid.to_owned(), format!("{uuid}abc"), "x".repeat(128)];
        for id in &ids {
            let parsed = CacheId::parse(id).expect("valid");
            assert_eq!(parsed.as_str(), id);
            assert_eq!(hasher.hash_one(&parsed), hasher.hash_one(id.as_bytes()));
            assert_eq!(format!("{parsed:?}"), format!("CacheId({id:?})"));
            assert_eq!(parsed, CacheId::parse(id).expect("valid"));
        }
        let a = CacheId::parse(&ids[0]).expect("valid");
        let b = CacheId::parse(&ids[1]).expect("valid");
        assert!(a < b && a != b, "a prefix orders first, whichever form");
        assert!(matches!(a.0, Repr::Inline { .. }) && matches!(b.0, Repr::Heap(_)));
    }

    #[test]
    fn the_error_escapes_and_shortens_the_id() {
        let err = CacheId::parse(&format!("a\u{1b}[31m{}", "z".repeat(500))).expect_err("rejected");
        assert!(!err.to_string().contains('\u{1b}'));
        assert!(err.shown.len() < 80, "{}", err.shown);
    }
}
