//! The writing half of a layer's pipeline: the uncompressed tar stream is
//! handed in chunks to a thread that compresses it with fixed settings
//! (reproducible bytes) into the blob file, hashing as it goes.

use crate::spec::media_type;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::mpsc::{Receiver, SyncSender};

use crate::digest::{DigestAlgorithm, Hasher};

/// Output compression of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Codec {
    /// gzip, at the default level, with no name and mtime 0 in its header.
    Gzip,
    /// zstd, at level 3 on one thread.
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

/// A compressor with settings fixed for reproducible output: gzip at the
/// default level with a header that records no name and mtime 0, zstd at
/// level 3 on one thread.
enum Compressor<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    /// A compressor for `codec`, writing to `inner`.
    fn new(inner: W, codec: Codec) -> io::Result<Self> {
        Ok(match codec {
            Codec::None => Compressor::Plain(inner),
            Codec::Gzip => {
                Compressor::Gzip(flate2::GzBuilder::new().mtime(0).write(inner, flate2::Compression::default()))
            }
            Codec::Zstd => Compressor::Zstd(zstd::stream::write::Encoder::new(inner, 3)?),
        })
    }

    /// Ends the compressed stream; returns the inner writer.
    fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Plain(w) => Ok(w),
            Compressor::Gzip(e) => e.finish(),
            Compressor::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Plain(w) => w.write(buf),
            Compressor::Gzip(e) => e.write(buf),
            Compressor::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Plain(w) => w.flush(),
            Compressor::Gzip(e) => e.flush(),
            Compressor::Zstd(e) => e.flush(),
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

/// The compressing thread's work: every chunk through the compressor into
/// `file`, hashing the compressed bytes. Returns the blob digest and size.
pub(super) fn compress_into(file: File, codec: Codec, rx: Receiver<Vec<u8>>) -> io::Result<(String, u64)> {
    let mut out = Compressor::new(HashingWriter::new(BufWriter::with_capacity(1 << 16, file)), codec)?;
    for chunk in rx {
        out.write_all(&chunk)?;
    }
    let (buffered, digest, size) = out.finish()?.finish();
    let file = buffered.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok((digest, size))
}
