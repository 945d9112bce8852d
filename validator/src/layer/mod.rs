//! The layer stream: one pass over a layer blob that hashes the compressed
//! bytes (blob digest), decompresses, hashes the uncompressed bytes (diff
//! ID) and reads every tar entry, handing each to a [`Sink`]. Validate,
//! inspect, flatten and unpack all read layers through here.

pub mod entry;
pub mod path;
pub mod tar;

use std::fmt;
use std::io::{self, BufReader, Read};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;

use flate2::bufread::MultiGzDecoder;

pub use entry::{Entry, Fault, Kind, Problem};
use tar::{End, Meter, ReadError, TarReader};

pub use crate::spec::media_type::Compression;

use crate::diagnostic::Rule;
use crate::digest::{DigestAlgorithm, Hasher, HashingReader};
use crate::limits::{Exceeded, Limits};
use crate::progress::Progress;

/// Receives the entries of a layer in stream order.
pub trait Sink {
    /// `data` reads the entry's content; a sink that does not need it
    /// leaves it, and the reader skips it.
    fn entry(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<(), SinkError>;
}

/// Why a sink cannot go on: an entry it refuses (the rule validate reports
/// it under), or a write that failed.
#[derive(Debug)]
pub struct SinkError {
    /// The rule whose finding this is, when the image is at fault.
    pub rule: Option<&'static Rule>,
    /// Names the entry and what is wrong with it.
    pub message: String,
}

impl SinkError {
    /// The image is at fault, as `rule` says.
    pub fn finding(rule: &'static Rule, message: String) -> Self {
        SinkError { rule: Some(rule), message }
    }

    /// The sink failed on its own side (a write, a limit of its store).
    pub fn other(message: String) -> Self {
        SinkError { rule: None, message }
    }
}

impl<A: Sink, B: Sink> Sink for (A, B) {
    fn entry(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<(), SinkError> {
        self.0.entry(entry, data)?;
        self.1.entry(entry, data)
    }
}

/// The compressed side of a layer stream: what was read from the blob.
pub type BlobReader = HashingReader<Box<dyn Read + Send>>;

enum Decoder<R: io::BufRead> {
    Plain(R),
    Gzip(Box<MultiGzDecoder<R>>),
    Zstd(zstd::stream::zio::Reader<R, zstd::stream::raw::Decoder<'static>>),
}

impl<R: io::BufRead> Decoder<R> {
    /// Gives `inner` back when the decoder cannot be made, so the blob can
    /// still be read to its end and verified.
    fn new(inner: R, c: Compression) -> Result<Self, (io::Error, R)> {
        Ok(match c {
            Compression::None => Decoder::Plain(inner),
            Compression::Gzip => Decoder::Gzip(Box::new(MultiGzDecoder::new(inner))),
            // zstd's default cap on the window (128 MiB) bounds memory.
            Compression::Zstd => match zstd::stream::raw::Decoder::new() {
                Ok(op) => Decoder::Zstd(zstd::stream::zio::Reader::new(inner, op)),
                Err(e) => return Err((e, inner)),
            },
        })
    }

    fn into_inner(self) -> R {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Zstd(d) => d.into_inner(),
        }
    }
}

impl<R: io::BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}

/// How a layer stream ended.
pub struct Scanned {
    /// `sha256:` digest of the uncompressed stream.
    pub diff_id: String,
    /// Bytes of the uncompressed stream.
    pub uncompressed: u64,
    /// Entries handed to the sink, PAX global headers included.
    pub entries: u64,
    /// The stream stopped without the end-of-archive marker.
    pub missing_end_marker: bool,
    /// Non-zero bytes after the end-of-archive marker.
    pub trailing_data: bool,
    /// The longest file name or comment in a gzip member header, in bytes
    /// (see [`GO_GZIP_STRING`]).
    pub gzip_header_string: u64,
}

/// Go's compress/gzip (umoci, skopeo, containerd) refuses a member header
/// whose file name or comment runs to this many bytes or more; gzip(1) and
/// flate2 read it.
pub const GO_GZIP_STRING: u64 = 512;

/// The stream could not be read to its end.
#[derive(Debug)]
pub struct StreamError {
    /// Uncompressed bytes read before the failure.
    pub offset: u64,
    /// The last entry read completely, if any.
    pub after: Option<String>,
    /// What went wrong, for a person.
    pub message: String,
    /// The sink stopped the scan, not the stream.
    pub from_sink: bool,
    /// The rule of the sink's refusal, when the image was at fault.
    pub rule: Option<&'static Rule>,
    /// A resource limit stopped it.
    pub limit: Option<Exceeded>,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at uncompressed byte {}", self.message, self.offset)?;
        match &self.after {
            Some(p) => write!(f, ", after entry {p})"),
            None => f.write_str(", before the first entry)"),
        }
    }
}

/// Counts compressed bytes into the caller's progress callback and into
/// the meter that the expansion limits read.
struct Tick<R> {
    inner: R,
    progress: Progress,
    meter: Arc<Meter>,
}

impl<R: Read> Read for Tick<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        self.meter.compressed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The decoder's output, stopped (with an error) when the layer expands
/// past a limit: a decompression bomb is reported, not followed to the end
/// of the disk. The limit hit is also left in `hit` for the caller.
struct Guarded {
    decoder: Decoder<BufReader<Tick<BlobReader>>>,
    out: u64,
    limits: Limits,
    meter: Arc<Meter>,
    hit: Arc<Mutex<Option<Exceeded>>>,
}

impl Read for Guarded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.decoder.read(buf)?;
        self.out += n as u64;
        if let Decoder::Gzip(d) = &self.decoder {
            // Each member's header, as the decoder reaches it.
            if let Some(h) = d.header() {
                let longest = h.filename().map_or(0, <[u8]>::len).max(h.comment().map_or(0, <[u8]>::len));
                self.meter.gzip_header_string.fetch_max(longest as u64, Ordering::Relaxed);
            }
        }
        // Holes of sparse files count as output too: readers write them.
        let out = self.out.saturating_add(self.meter.holes.load(Ordering::Relaxed));
        if let Err(e) = self.limits.check_expansion(self.meter.compressed.load(Ordering::Relaxed), out) {
            *self.hit.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
            return Err(io::Error::other(e));
        }
        Ok(n)
    }
}

/// How [`scan`] spreads a layer over threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pipeline {
    /// Everything on the calling thread: other layers keep the cores busy,
    /// and a hand-over between threads would be pure cost.
    Off,
    /// Decompressing on a thread of its own; hashing the uncompressed
    /// stream (the diff_id) beside the tar parsing, for sinks that are
    /// light next to the decoder (validate).
    Decoder,
    /// Decompressing and hashing the uncompressed stream on a thread of
    /// their own, for sinks heavier than the decoder (unpack, whose
    /// writing of files is the slower half).
    DecoderAndHash,
}

/// Reads a whole layer. On return the blob reader has been read to its end
/// (so its digest and size can be checked) unless the stream broke first.
pub fn scan(
    blob: BlobReader,
    compression: Compression,
    sink: &mut dyn Sink,
    progress: &Progress,
    pipeline: Pipeline,
    limits: &Limits,
) -> (BlobReader, Result<Scanned, StreamError>) {
    let meter = Arc::new(Meter::default());
    let blob = Tick { inner: blob, progress: progress.clone(), meter: Arc::clone(&meter) };
    let decoder = match Decoder::new(BufReader::with_capacity(1 << 16, blob), compression) {
        Ok(d) => d,
        Err((e, inner)) => {
            let error = StreamError {
                offset: 0,
                after: None,
                message: e.to_string(),
                from_sink: false,
                rule: None,
                limit: None,
            };
            let mut blob = inner.into_inner().inner;
            let _ = io::copy(&mut blob, &mut io::sink());
            return (blob, Err(error));
        }
    };
    let hit = Arc::new(Mutex::new(None));
    let decoder = Guarded { decoder, out: 0, limits: limits.clone(), meter: Arc::clone(&meter), hit: Arc::clone(&hit) };
    let sha256 = || Hasher::new(&DigestAlgorithm::Sha256);
    if pipeline == Pipeline::Off {
        // Decoders are slow at small reads (tar asks for 512 bytes at a
        // time): buffer whole chunks, as the pipelined path does.
        let diff = HashingReader::new(BufReader::with_capacity(CHUNK, decoder), sha256());
        return consume(diff, sink, limits, &meter, &hit, |r| (BufReader::into_inner(r), None));
    }
    // Decompression runs on its own thread, tar parsing on this one: with a
    // core to spare the stream moves at the speed of the slower half, and
    // the diff_id is hashed on the side the caller says is the faster.
    let early = pipeline == Pipeline::DecoderAndHash;
    let (tx, rx) = mpsc::sync_channel(CHANNEL_DEPTH);
    let (spare_tx, spare_rx) = mpsc::sync_channel(CHANNEL_DEPTH + 1);
    thread::scope(|s| {
        let producer = s.spawn(move || pump(decoder, tx, spare_rx, early.then(sha256).flatten()));
        let diff = HashingReader::new(Chunks::new(rx, spare_tx), if early { None } else { sha256() });
        consume(diff, sink, limits, &meter, &hit, |chunks| {
            drop(chunks); // a producer still sending stops
            match producer.join() {
                Ok(d) => d,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    })
}

/// Chunks of this size cross from the decompressing thread; with the
/// channel depth this bounds the memory in flight to about 2.5 MiB per layer.
const CHUNK: usize = 256 << 10;
const CHANNEL_DEPTH: usize = 4;

type Decompressor = Guarded;

/// Decompresses until the end, an error, or the reader hanging up, hashing
/// what it sends with `hasher` if given; gives the decoder back (so the
/// rest of the blob can still be hashed) with that digest. Emptied chunks
/// come back on `spare`, so a layer allocates a handful of buffers.
fn pump(
    mut decoder: Decompressor,
    tx: SyncSender<io::Result<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
    mut hasher: Option<Hasher>,
) -> (Decompressor, Option<String>) {
    let done = |decoder, hasher: Option<Hasher>| (decoder, hasher.map(Hasher::finish));
    loop {
        let mut buf = spare.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
        buf.resize(CHUNK, 0);
        let mut filled = 0;
        // Fill whole chunks: decoders return small reads.
        let result = loop {
            match decoder.read(&mut buf[filled..]) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    filled += n;
                    if filled == CHUNK {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let at_end = filled < CHUNK;
        buf.truncate(filled);
        if let Some(h) = &mut hasher {
            h.update(&buf);
        }
        if filled > 0 && tx.send(Ok(buf)).is_err() {
            return done(decoder, hasher);
        }
        match result {
            Err(e) => {
                let _ = tx.send(Err(e));
                return done(decoder, hasher);
            }
            Ok(()) if at_end => return done(decoder, hasher),
            Ok(()) => {}
        }
    }
}

/// The reading end of [`pump`].
struct Chunks {
    rx: Receiver<io::Result<Vec<u8>>>,
    spare: SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Chunks {
    fn new(rx: Receiver<io::Result<Vec<u8>>>, spare: SyncSender<Vec<u8>>) -> Self {
        Chunks { rx, spare, chunk: Vec::new(), pos: 0 }
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    let used = std::mem::replace(&mut self.chunk, chunk);
                    let _ = self.spare.try_send(used);
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0), // the decompressor is done
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The tar side of [`scan`]: every entry to the sink, then the end checks.
/// `decoder_back` turns the reader into the decoder again, once the
/// stream is done with, with the diff_id if the decoder's side hashed it.
/// The stream is read to its end on success, so either side hashes all of it.
fn consume<R: Read>(
    diff: HashingReader<R>,
    sink: &mut dyn Sink,
    limits: &Limits,
    meter: &Arc<Meter>,
    hit: &Mutex<Option<Exceeded>>,
    decoder_back: impl FnOnce(R) -> (Decompressor, Option<String>),
) -> (BlobReader, Result<Scanned, StreamError>) {
    let mut reader = TarReader::new(diff, limits.clone(), Arc::clone(meter));
    let mut walked = Walked::default();
    let mut result = walked.read_entries(&mut reader, sink, limits);
    // A limit tripped inside the decoder surfaces as a read error; say which.
    if let Err(e) = &mut result {
        e.limit = e.limit.take().or_else(|| hit.lock().unwrap_or_else(|p| p.into_inner()).take());
    }
    let mut diff = reader.into_inner();
    let result = result.and_then(|end| end_checks(&mut diff, end, &walked));
    let (reader, diff_id, uncompressed) = diff.into_parts();
    let (decoder, hashed_early) = decoder_back(reader);
    let diff_id = diff_id.or(hashed_early);
    // Read whatever the decoder left (or, after a failure, everything not
    // yet read) so that the blob digest covers the whole blob.
    let mut blob = decoder.decoder.into_inner().into_inner().inner;
    let drained = io::copy(&mut blob, &mut io::sink());
    let result = result.and_then(|(trailing_data, missing_end_marker)| {
        drained.map_err(|e| walked.error(uncompressed, e.to_string()))?;
        Ok(Scanned {
            diff_id: diff_id.expect("sha256 is always computed"),
            uncompressed,
            entries: walked.entries,
            missing_end_marker,
            trailing_data,
            gzip_header_string: meter.gzip_header_string.load(Ordering::Relaxed),
        })
    });
    (blob, result)
}

/// How far [`consume`] got through the entries; errors say where they
/// stopped from it.
#[derive(Default)]
struct Walked {
    entries: u64,
    /// The raw name of the last entry read, escaped only for an error.
    last: Option<Vec<u8>>,
}

impl Walked {
    /// Hands every entry to the sink, up to the end of the archive or the
    /// first error (of the stream, the entry limit or the sink).
    fn read_entries<R: Read>(
        &mut self,
        reader: &mut TarReader<R>,
        sink: &mut dyn Sink,
        limits: &Limits,
    ) -> Result<End, StreamError> {
        loop {
            let entry = match reader.next_entry() {
                Ok(Ok(entry)) => entry,
                Ok(Err(end)) => return Ok(end),
                Err(e) => return Err(self.read_error(e, reader.position())),
            };
            if self.entries >= limits.max_entries {
                let limit = Exceeded {
                    what: format!("the layer has more than {} entries", limits.max_entries),
                    flag: "--max-entries",
                };
                return Err(self.read_error(ReadError::Limit(limit), reader.position()));
            }
            sink.entry(&entry, &mut reader.data()).map_err(|SinkError { rule, message }| StreamError {
                from_sink: true,
                rule,
                ..self.error(reader.position(), message)
            })?;
            self.entries += 1;
            self.last = Some(entry.raw_path);
        }
    }

    /// The stream failed at `offset`, after the last entry read.
    fn error(&self, offset: u64, message: String) -> StreamError {
        StreamError {
            offset,
            after: self.last.as_deref().map(path::escape),
            message,
            from_sink: false,
            rule: None,
            limit: None,
        }
    }

    /// The tar reader failed at `offset`; a limit it hit is named.
    fn read_error(&self, e: ReadError, offset: u64) -> StreamError {
        let limit = match &e {
            ReadError::Limit(l) => Some(l.clone()),
            _ => None,
        };
        StreamError { limit, ..self.error(offset, e.to_string()) }
    }
}

/// After the end of the archive: whether non-zero bytes follow it, and
/// whether its marker is missing or cut short, as (trailing data, missing
/// marker).
fn end_checks<R: Read>(diff: &mut HashingReader<R>, end: End, walked: &Walked) -> Result<(bool, bool), StreamError> {
    let before = diff.count();
    let trailing_data = drain_zeros(diff).map_err(|e| walked.error(diff.count(), e.to_string()))?;
    // The marker is two zero blocks; the reader stops after the first,
    // so the second must be among what was left.
    let missing_end_marker = end == End::Eof || diff.count() - before < 512;
    Ok((trailing_data, missing_end_marker))
}

/// Reads to the end; `true` if any byte was not zero.
fn drain_zeros(r: &mut impl Read) -> io::Result<bool> {
    let mut buf = vec![0u8; 1 << 16];
    let mut dirty = false;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(dirty),
            Ok(n) => dirty |= buf[..n].iter().any(|b| *b != 0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
