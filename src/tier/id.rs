//! `CacheId`: a customer or job id checked before it becomes part of a Redis key.

use std::borrow::Borrow;
use std::fmt;

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// An id of 1 to 128 bytes of `[A-Za-z0-9._-]`: no whitespace, control
/// bytes, `:` (key separator) or glob characters, so it can never reach
/// another key or pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheId(Box<str>);

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
        Self::check(id).map(|id| Self(id.into()))
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
        Self(id.into())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Hashes and compares as the `str` it holds, so moka finds an entry by a
/// borrowed `&str`.
impl Borrow<str> for CacheId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CacheId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
    fn the_error_escapes_and_shortens_the_id() {
        let err = CacheId::parse(&format!("a\u{1b}[31m{}", "z".repeat(500))).expect_err("rejected");
        assert!(!err.to_string().contains('\u{1b}'));
        assert!(err.shown.len() < 80, "{}", err.shown);
    }
}
