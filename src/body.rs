//! A rendered body and its pre-compressed variants (gzip, brotli), each with
//! its own ETag.
//!
//! The refresher renders each section once per refresh; [`EncodedBody::compress`]
//! then compresses it once in gzip and in brotli (off the runtime's worker
//! threads, through [`EncodedBody::compress_off_thread`], for bodies over
//! [`OFF_THREAD_BYTES`]). A request picks a variant with [`EncodedBody::get`]
//! and clones its `Bytes` handle: serving a compressed body costs what serving
//! the identity body costs, and no request ever compresses.

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;

use crate::fnv::etag_of;

/// Bodies larger than this are compressed on tokio's blocking pool rather than
/// on the refresher's worker thread (brotli at quality 11 takes about 50 ms
/// per 16 KiB, far too long to hold a worker that serves requests).
pub const OFF_THREAD_BYTES: usize = 16 * 1024;

/// Brotli quality (0 to 11) for bodies up to [`DENSE_BROTLI_MAX_BYTES`]: the
/// densest, since the work happens once per refresh, not per request.
const DENSE_BROTLI_QUALITY: i32 = 11;
/// Bodies up to this size get [`DENSE_BROTLI_QUALITY`]. Quality 11 costs
/// about 3 ms per KiB (50 ms for the 18 KB mock dashboard, 0.6 s for the
/// 98 KB product list on a 2-core machine), which would take a large part
/// of a short TTL and lengthen every round's lead; larger bodies get
/// [`LARGE_BROTLI_QUALITY`], within 20 % of the size at 1 % of the time.
const DENSE_BROTLI_MAX_BYTES: usize = 32 * 1024;
/// Brotli quality for bodies over [`DENSE_BROTLI_MAX_BYTES`].
const LARGE_BROTLI_QUALITY: i32 = 6;
/// Brotli window, log2 of bytes (the encoder's default).
const BROTLI_WINDOW: i32 = 22;

/// A content coding this crate serves (RFC 9110 §8.4.1), in the order of
/// preference when a client weighs several the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Coding {
    /// Brotli (RFC 7932): the smallest.
    Br,
    /// Gzip (RFC 1952).
    Gzip,
    /// No coding.
    Identity,
}

impl Coding {
    /// Every coding, most preferred first.
    pub const ALL: [Coding; 3] = [Coding::Br, Coding::Gzip, Coding::Identity];

    /// The token of the coding, as in `Content-Encoding`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Br => "br",
            Self::Gzip => "gzip",
            Self::Identity => "identity",
        }
    }

    /// The ETag suffix that tells this coding's variant apart (empty for identity).
    fn etag_suffix(self) -> &'static str {
        match self {
            Self::Br => "-br",
            Self::Gzip => "-gz",
            Self::Identity => "",
        }
    }
}

/// One representation of a body: its bytes and their ETag.
#[derive(Debug, Clone)]
pub struct Variant {
    bytes: Bytes,
    etag: HeaderValue,
}

impl Variant {
    /// The bytes as sent. Cloning them copies no data.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Strong ETag of this representation, quoted, ready for the `ETag` header.
    pub fn etag(&self) -> &HeaderValue {
        &self.etag
    }
}

/// A body in identity coding and, where compression makes it smaller, in
/// gzip and brotli.
#[derive(Debug, Clone)]
pub struct EncodedBody {
    identity: Variant,
    /// `None` when gzip would not be smaller than the identity body.
    gzip: Option<Variant>,
    /// `None` when brotli would not be smaller than the identity body.
    br: Option<Variant>,
    /// Time spent compressing (zero for [`EncodedBody::identity`]).
    compress_time: Duration,
}

impl EncodedBody {
    /// The body with no compressed variants.
    pub fn identity(body: Bytes) -> Self {
        let etag = etag_of(&body);
        Self {
            identity: Variant { bytes: body, etag },
            gzip: None,
            br: None,
            compress_time: Duration::ZERO,
        }
    }

    /// The body and its gzip and brotli variants, each kept only when smaller
    /// than the body. Runs on the calling thread; see
    /// [`EncodedBody::compress_off_thread`] for async callers.
    pub fn compress(body: Bytes) -> Self {
        let started = Instant::now();
        let mut encoded = Self::identity(body);
        let body = encoded.identity.bytes.as_ref();
        encoded.gzip = encoded.smaller(Coding::Gzip, gzip(body));
        encoded.br = encoded.smaller(Coding::Br, brotli(body));
        encoded.compress_time = started.elapsed();
        encoded
    }

    /// [`EncodedBody::compress`], on tokio's blocking pool when the body is
    /// over [`OFF_THREAD_BYTES`] (inline otherwise). Should the blocking task
    /// fail, the body is served uncompressed (and an error is logged).
    pub async fn compress_off_thread(body: Bytes) -> Self {
        if body.len() <= OFF_THREAD_BYTES {
            return Self::compress(body);
        }
        let fallback = body.clone();
        match tokio::task::spawn_blocking(move || Self::compress(body)).await {
            Ok(encoded) => encoded,
            Err(e) => {
                tracing::error!(error = %e, bytes = fallback.len(), "compressing a section failed; serving it uncompressed");
                Self::identity(fallback)
            }
        }
    }

    /// [`EncodedBody::compress_off_thread`], unless `previous` holds the
    /// same bytes: then its variants are reused (no compression at all, a
    /// `compress_time` of zero). Data often does not change between two
    /// refreshes, and brotli is most of a refresh's CPU.
    pub async fn compress_reusing(body: Bytes, previous: Option<&EncodedBody>) -> Self {
        match previous {
            Some(previous) if previous.identity.bytes == body => Self {
                compress_time: Duration::ZERO,
                ..previous.clone()
            },
            _ => Self::compress_off_thread(body).await,
        }
    }

    /// The variant in `coding`, if there is one (identity always is).
    pub fn get(&self, coding: Coding) -> Option<&Variant> {
        match coding {
            Coding::Identity => Some(&self.identity),
            Coding::Gzip => self.gzip.as_ref(),
            Coding::Br => self.br.as_ref(),
        }
    }

    /// Whether a variant in `coding` exists.
    pub fn has(&self, coding: Coding) -> bool {
        self.get(coding).is_some()
    }

    /// The identity variant.
    pub fn identity_variant(&self) -> &Variant {
        &self.identity
    }

    /// Time [`EncodedBody::compress`] took for this body.
    pub fn compress_time(&self) -> Duration {
        self.compress_time
    }

    /// A variant of `compressed` in `coding` if it is smaller than the body.
    fn smaller(&self, coding: Coding, compressed: Option<Vec<u8>>) -> Option<Variant> {
        let compressed = compressed.filter(|c| c.len() < self.identity.bytes.len())?;
        Some(Variant {
            bytes: Bytes::from(compressed),
            etag: tagged(&self.identity.etag, coding.etag_suffix()),
        })
    }
}

/// `"tag"` becomes `"tag<suffix>"`: a strong ETag of its own for each coding
/// (RFC 9110 §8.8.3: representations that differ in coding differ in tag).
fn tagged(identity: &HeaderValue, suffix: &str) -> HeaderValue {
    let tag = identity.as_bytes();
    let inner = tag
        .strip_prefix(b"\"")
        .and_then(|t| t.strip_suffix(b"\""))
        .unwrap_or(tag);
    let mut out = Vec::with_capacity(inner.len() + suffix.len() + 2);
    out.push(b'"');
    out.extend_from_slice(inner);
    out.extend_from_slice(suffix.as_bytes());
    out.push(b'"');
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| identity.clone())
}

/// Gzip at the best level; `None` only if the encoder fails (it writes to memory).
fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let out = Vec::with_capacity(body.len() / 4);
    let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::best());
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

/// Brotli at a quality for the body's size; `None` only if the encoder fails.
fn brotli(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len() / 4);
    let quality = if body.len() <= DENSE_BROTLI_MAX_BYTES {
        DENSE_BROTLI_QUALITY
    } else {
        LARGE_BROTLI_QUALITY
    };
    let params = brotli::enc::BrotliEncoderParams {
        mode: brotli::enc::backward_references::BrotliEncoderMode::BROTLI_MODE_TEXT,
        quality,
        lgwin: BROTLI_WINDOW,
        size_hint: body.len(),
        ..Default::default()
    };
    let mut input = body;
    brotli::BrotliCompress(&mut input, &mut out, &params).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn json_body(items: usize) -> Bytes {
        let items: Vec<String> = (0..items)
            .map(|i| format!(r#"{{"id":{i},"name":"product {i}","stock":{}}}"#, i % 7))
            .collect();
        Bytes::from(format!("[{}]", items.join(",")))
    }

    #[test]
    fn variants_decompress_to_the_body_and_have_their_own_etags() {
        let body = json_body(400);
        let encoded = EncodedBody::compress(body.clone());
        let identity = encoded.get(Coding::Identity).expect("always there");
        let gzip = encoded.get(Coding::Gzip).expect("JSON shrinks");
        let br = encoded.get(Coding::Br).expect("JSON shrinks");

        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(gzip.bytes().as_ref())
            .read_to_end(&mut unzipped)
            .expect("valid gzip");
        assert_eq!(unzipped, body);
        let mut unbrotli = Vec::new();
        brotli::Decompressor::new(br.bytes().as_ref(), 4096)
            .read_to_end(&mut unbrotli)
            .expect("valid brotli");
        assert_eq!(unbrotli, body);

        let tag = identity.etag().to_str().expect("ascii");
        let stem = tag.trim_end_matches('"');
        assert_eq!(gzip.etag().to_str().expect("ascii"), format!("{stem}-gz\""));
        assert_eq!(br.etag().to_str().expect("ascii"), format!("{stem}-br\""));
        assert!(br.bytes().len() < body.len() / 4, "{}", br.bytes().len());
    }

    #[test]
    fn a_body_compression_does_not_shrink_is_served_as_identity_only() {
        let encoded = EncodedBody::compress(Bytes::from_static(b"[1]"));
        assert!(encoded.has(Coding::Identity));
        assert!(!encoded.has(Coding::Gzip), "gzip adds a header of 18 bytes");
        assert!(!encoded.has(Coding::Br));
    }

    #[tokio::test]
    async fn an_unchanged_body_reuses_the_previous_variants_and_a_changed_one_is_compressed() {
        let previous = EncodedBody::compress(json_body(200));
        let same = EncodedBody::compress_reusing(json_body(200), Some(&previous)).await;
        assert_eq!(same.compress_time(), Duration::ZERO);
        for coding in [Coding::Identity, Coding::Gzip, Coding::Br] {
            let (a, b) = (same.get(coding), previous.get(coding));
            let (a, b) = (a.expect("variant"), b.expect("variant"));
            assert_eq!(a.etag(), b.etag());
            // The very same buffer: nothing was compressed again.
            assert_eq!(a.bytes().as_ptr(), b.bytes().as_ptr());
        }
        let changed = EncodedBody::compress_reusing(json_body(201), Some(&previous)).await;
        let fresh = EncodedBody::compress(json_body(201));
        assert_ne!(
            changed.identity_variant().etag(),
            previous.identity_variant().etag()
        );
        for coding in [Coding::Gzip, Coding::Br] {
            let (a, b) = (changed.get(coding), fresh.get(coding));
            assert_eq!(a.expect("variant").bytes(), b.expect("variant").bytes());
        }
        let first = EncodedBody::compress_reusing(json_body(200), None).await;
        assert!(first.has(Coding::Br));
    }

    #[tokio::test]
    async fn compressing_off_thread_gives_the_variants_of_inline_compression() {
        let body = json_body(2_000);
        assert!(body.len() > OFF_THREAD_BYTES);
        let off = EncodedBody::compress_off_thread(body.clone()).await;
        let inline = EncodedBody::compress(body);
        for coding in Coding::ALL {
            let (a, b) = (off.get(coding), inline.get(coding));
            assert_eq!(a.map(Variant::bytes), b.map(Variant::bytes), "{coding:?}");
            assert_eq!(a.map(Variant::etag), b.map(Variant::etag), "{coding:?}");
        }
    }
}
