//! FNV-1a, the one non-cryptographic hash of the crate: stable across
//! processes, builds and platforms (ETags, id hashes in logs).

use bytes::Bytes;
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

/// `body` and its [`etag_of`] in one buffer, the tag first: an answer that
/// sends both clones one buffer's reference count and reads one place in
/// memory, not two of each.
pub(crate) fn tagged(body: &[u8]) -> (Bytes, HeaderValue) {
    let tag = etag_of(body);
    let tag_len = tag.len();
    let mut buffer = Vec::with_capacity(tag_len + body.len());
    buffer.extend_from_slice(tag.as_bytes());
    buffer.extend_from_slice(body);
    let buffer = Bytes::from(buffer);
    let etag = HeaderValue::from_maybe_shared(buffer.slice(..tag_len)).unwrap_or(tag);
    (buffer.slice(tag_len..), etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tagged_body_is_the_body_and_its_etag() {
        let body = br#"{"jobId":"j1","status":"completed"}"#;
        let (json, etag) = tagged(body);
        assert_eq!(&json[..], body);
        assert_eq!(etag, etag_of(body));
    }

    #[test]
    fn matches_the_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
