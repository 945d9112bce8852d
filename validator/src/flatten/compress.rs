//! The writing half of a layer's pipeline: the uncompressed tar stream is
//! handed in chunks to a thread that compresses it with fixed settings
//! into the blob file, hashing as it goes. gzip and zstd compress on
//! several threads, and the bytes depend on neither the number of threads
//! nor how the stream was chunked: the same input gives the same blob.

use crate::spec::media_type;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::mpsc::{Receiver, SyncSender};

use crate::digest::{DigestAlgorithm, Hasher};

/// Output compression of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Codec {
    /// gzip at the default level (6), in 256 KiB blocks compressed in
    /// parallel (see `gzip_blocks`), with no name and mtime 0 in its header.
    Gzip,
    /// zstd at level 3, in libzstd's multi-threaded mode with 4 MiB jobs.
    Zstd,
    /// No compression: a plain tar layer.
    None,
}

impl Codec {
    /// The codec that keeps a layer's own compression.
    pub fn from_layer(c: crate::layer::Compression) -> Codec {
        match c {
            crate::layer::Compression::None => Codec::None,
            crate::layer::Compression::Gzip => Codec::Gzip,
            crate::layer::Compression::Zstd => Codec::Zstd,
        }
    }

    /// Its name: `gzip`, `zstd` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
            Codec::None => "none",
        }
    }

    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Codec::Gzip => media_type::OCI_LAYER_GZIP,
            Codec::Zstd => media_type::OCI_LAYER_ZSTD,
            Codec::None => media_type::OCI_LAYER,
        }
    }
}

/// A writer that hashes (sha256) and counts everything written through it.
pub(super) struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Hashes what is written on to `inner`.
    pub(super) fn new(inner: W) -> Self {
        let hasher = Hasher::new(&DigestAlgorithm::Sha256).expect("sha256 is always available");
        HashingWriter { inner, hasher, count: 0 }
    }

    /// The inner writer, the `sha256:` digest and the byte count.
    pub(super) fn finish(self) -> (W, String, u64) {
        (self.inner, self.hasher.finish(), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// zstd's level: its default, and the one `zstd -3` and the Go
/// implementations' "default" use.
const ZSTD_LEVEL: i32 = 3;

/// zstd's job size. In multi-threaded mode libzstd cuts the input into jobs
/// of this size whatever the number of workers, so the frame is the same
/// for one worker or many (`zstd_output_is_the_same_for_any_number_of_workers`
/// checks it). Its default at level 3 is 8 MiB; 4 MiB costs 0.6 % in size
/// on the benchmark's layers and halves the memory, about 23 MiB a worker.
const ZSTD_JOB: u32 = 4 << 20;

/// A zstd encoder with the settings above, writing to `inner`.
fn zstd_encoder<W: Write>(inner: W, workers: usize) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut e = zstd::stream::write::Encoder::new(inner, ZSTD_LEVEL)?;
    // One worker at least: with none, libzstd compresses in its single-
    // threaded mode, whose frames differ.
    e.multithread(u32::try_from(workers.max(1)).unwrap_or(u32::MAX))?;
    e.set_parameter(zstd::zstd_safe::CParameter::JobSize(ZSTD_JOB))?;
    Ok(e)
}

/// Compresses every chunk of `chunks` with `codec` into `out` on `workers`
/// threads; returns `out`.
pub(super) fn compress<W: Write + Send>(
    chunks: impl IntoIterator<Item = Vec<u8>>,
    mut out: W,
    codec: Codec,
    workers: usize,
) -> io::Result<W> {
    match codec {
        Codec::None => {
            for chunk in chunks {
                out.write_all(&chunk)?;
            }
            Ok(out)
        }
        Codec::Gzip => super::gzip_blocks::compress(chunks, out, workers, flate2::Compression::default()),
        Codec::Zstd => {
            let mut e = zstd_encoder(out, workers)?;
            for chunk in chunks {
                e.write_all(&chunk)?;
            }
            e.finish()
        }
    }
}

/// Chunks handed to the compressing thread; with the channel depth this
/// bounds the memory in flight per layer to about a megabyte.
const CHUNK: usize = 256 << 10;

/// Chunks in flight between the rewriter and the compressing thread.
pub(super) const CHANNEL_DEPTH: usize = 4;

/// The writing end of the hand-over to the compressing thread: collects
/// whole chunks, since small sends cost more than they carry.
pub(super) struct ChunkSender {
    tx: SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChunkSender {
    /// A sender on `tx`, with an empty chunk.
    pub(super) fn new(tx: SyncSender<Vec<u8>>) -> Self {
        ChunkSender { tx, buf: Vec::with_capacity(CHUNK) }
    }

    /// Hands the chunk collected so far over, if there is one.
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        // The receiver hangs up only when it failed; its error is the one
        // worth reporting, and the caller gets it when it joins the thread.
        self.tx.send(chunk).map_err(|_| io::Error::other("the blob writer stopped"))
    }
}

impl Write for ChunkSender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&buf[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The compressing thread's work: every chunk through the compressor (on
/// `workers` threads) into `file`, hashing the compressed bytes. Returns
/// the blob digest and size.
pub(super) fn compress_into(
    file: File,
    codec: Codec,
    rx: Receiver<Vec<u8>>,
    workers: usize,
) -> io::Result<(String, u64)> {
    let out = HashingWriter::new(BufWriter::with_capacity(1 << 16, file));
    let (buffered, digest, size) = compress(rx, out, codec, workers)?.finish();
    let file = buffered.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok((digest, size))
}

#[cfg(test)]
mod tests {
    use super::super::gzip_blocks::tests::sample;
    use super::*;

    #[test]
    fn zstd_output_is_the_same_for_any_number_of_workers() {
        let data = sample(3 * ZSTD_JOB as usize + 4321);
        let run = |chunk: usize, workers: usize| {
            compress(data.chunks(chunk).map(<[u8]>::to_vec), Vec::new(), Codec::Zstd, workers).unwrap()
        };
        let one = run(1 << 16, 1);
        for (chunk, workers) in [(1 << 16, 2), (100_003, 4), (1 << 20, 8)] {
            assert!(one == run(chunk, workers), "chunks of {chunk}, {workers} workers");
        }
        assert_eq!(zstd::decode_all(&one[..]).unwrap(), data);
        // Several jobs, or the comparison proves nothing.
        assert!(data.len() > 2 * ZSTD_JOB as usize);
    }
}
