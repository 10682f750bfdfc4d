//! FNV-1a, the one non-cryptographic hash of the crate: stable across
//! processes, builds and platforms (ETags, id hashes in logs).

use http::HeaderValue;

/// The 64-bit FNV-1a hash of `bytes`.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A strong ETag from the content: length and 64-bit FNV-1a of the body.
/// Stable across processes and builds, so every instance behind a load
/// balancer gives the same ETag for the same data.
pub(crate) fn etag_of(body: &[u8]) -> HeaderValue {
    let hash = fnv1a64(body);
    let tag = format!("\"{:x}-{hash:016x}\"", body.len());
    HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
