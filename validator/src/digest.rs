//! Content digests: syntax comes from `oci-spec`, hashing from `sha2`.
//!
//! Blobs are always hashed over their raw bytes as stored; nothing is
//! re-serialised before hashing.

use std::io::{self, Read};

pub use oci_spec::image::{Digest, DigestAlgorithm};
use sha2::Digest as _;

/// A running hash for one of the algorithms the image-spec registers.
pub enum Hasher {
    /// `sha256`, the algorithm of diff IDs and of most blobs.
    Sha256(sha2::Sha256),
    /// `sha384`.
    Sha384(sha2::Sha384),
    /// `sha512`.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// `None` for algorithms this tool cannot compute.
    pub fn new(algorithm: &DigestAlgorithm) -> Option<Self> {
        Some(match algorithm {
            DigestAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            DigestAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            _ => return None,
        })
    }

    /// Hashes `bytes` after what was hashed before.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha384(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest string, `algorithm:hex`.
    pub fn finish(self) -> String {
        let (name, bytes) = match self {
            Hasher::Sha256(h) => ("sha256", h.finalize().to_vec()),
            Hasher::Sha384(h) => ("sha384", h.finalize().to_vec()),
            Hasher::Sha512(h) => ("sha512", h.finalize().to_vec()),
        };
        let mut out = String::with_capacity(name.len() + 1 + bytes.len() * 2);
        out.push_str(name);
        out.push(':');
        for b in bytes {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

/// sha256 of a byte slice, as `sha256:hex`.
pub fn sha256_of(bytes: &[u8]) -> String {
    let mut h = Hasher::Sha256(sha2::Sha256::new());
    h.update(bytes);
    h.finish()
}

/// A reader that hashes and counts everything read through it. Without a
/// hasher it only counts (for digests of an unknown algorithm).
pub struct HashingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Reads through `inner`, hashing with `hasher` if there is one.
    pub fn new(inner: R, hasher: Option<Hasher>) -> Self {
        HashingReader { inner, hasher, count: 0 }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The inner reader, and the digest and count of what was read so far.
    pub fn into_parts(self) -> (R, Option<String>, u64) {
        (self.inner, self.hasher.map(Hasher::finish), self.count)
    }

    /// The digest (if hashing) and byte count of what was read so far.
    pub fn finish(self) -> (Option<String>, u64) {
        (self.hasher.map(Hasher::finish), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sha256() {
        assert_eq!(sha256_of(b""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn hashing_reader_counts_and_hashes() {
        let mut r = HashingReader::new(&b"abc"[..], Hasher::new(&DigestAlgorithm::Sha256));
        io::copy(&mut r, &mut io::sink()).unwrap();
        let (d, n) = r.finish();
        assert_eq!(n, 3);
        assert_eq!(d.unwrap(), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
