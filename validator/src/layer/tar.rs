//! A streaming tar reader that sees what every major reader sees.
//!
//! The verdicts of this tool are only worth something if the entries it
//! judges are the entries GNU tar, bsdtar and Go's archive/tar (umoci,
//! skopeo, containers/storage) extract. Where those readers disagree about
//! a name, a link target, a type, a size or an owner, this reader records
//! the disagreement as an [`Fault::Ambiguous`] problem of the entry
//! (PRODUCER-UNAMBIGUOUS) instead of silently picking one reading. It also
//! reads what general-purpose tar crates hide or mishandle: the raw GNU
//! long name beside a PAX `path`, PAX records whose values hold newlines
//! (binary xattrs), PAX `uid`/`gid` beside the header's, and the three PAX
//! sparse formats beside GNU's `S` entries, which it expands as every major
//! reader does (CONSUMER-SPARSE), counting the holes against the limits.
//!
//! Memory is bounded: extended headers are read into memory only up to
//! `--max-pax-bytes`, and a sparse map is kept only up to the same size.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::entry::{Entry, Fault, Kind, Problem, base64_decode, percent_decode};
use super::path::Normal;
use crate::limits::{Exceeded, Limits};

const BLOCK: usize = 512;

/// Bytes of a layer counted for the expansion limits: what the decoder
/// read (compressed) and the holes of sparse files, which a reader of the
/// layer materializes without them being in the stream.
#[derive(Debug, Default)]
pub struct Meter {
    /// Compressed bytes the decoder has read.
    pub compressed: AtomicU64,
    /// Bytes of the holes of the sparse files met so far.
    pub holes: AtomicU64,
    /// The longest name or comment of a gzip member header seen.
    pub gzip_header_string: AtomicU64,
}

/// Why the stream cannot be read further.
#[derive(Debug)]
pub enum ReadError {
    /// The underlying stream failed (a decoder error included).
    Io(io::Error),
    /// A header that no reader accepts, or data cut short.
    Format(String),
    /// A resource limit was reached.
    Limit(Exceeded),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // flate2's own limit: name it, as it is not a fault of gzip's.
            ReadError::Io(e) if e.to_string() == "gzip header field too long" => write!(
                f,
                "{e}: a gzip member header holds a name or comment over 65,535 bytes, more than single-id's gzip \
                 decoder reads (gzip(1) reads it; Go's compress/gzip refuses any over 511 bytes)"
            ),
            ReadError::Io(e) => e.fmt(f),
            ReadError::Format(m) => f.write_str(m),
            ReadError::Limit(e) => e.fmt(f),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// How the stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// A zero block, where a header was due.
    ZeroBlock,
    /// The end of the stream, where a header was due.
    Eof,
}

/// A sparse map, (offset, length) of each stored region, and the real size.
type SparseMap = (Vec<(u64, u64)>, u64);

/// The records of a PAX header, in order: (key, value).
type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// Stored data and sparse expansion of the current entry.
#[derive(Default)]
struct Data {
    /// Stream bytes of data still unread.
    stored: u64,
    /// Padding after the data.
    padding: u64,
    sparse: Option<Sparse>,
}

/// A sparse file being expanded: `map` holds (offset, length) of the
/// stored segments, in order, within `real` bytes.
struct Sparse {
    map: Vec<(u64, u64)>,
    real: u64,
    pos: u64,
    next: usize,
}

/// Extended headers met before the entry they apply to.
#[derive(Default)]
struct Pending {
    pax: Option<Records>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    problems: Vec<Problem>,
    over_limit: Option<Exceeded>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.pax.is_none() && self.long_name.is_none() && self.long_link.is_none()
    }
}

/// Reads tar entries one after the other from an uncompressed stream;
/// [`TarReader::data`] reads the content of the current one.
pub struct TarReader<R> {
    inner: R,
    /// Stream bytes consumed.
    pos: u64,
    limits: Limits,
    meter: Arc<Meter>,
    data: Data,
    scratch: Vec<u8>,
}

impl<R: Read> TarReader<R> {
    /// A reader at the start of `inner`, holding to `limits`; sparse holes
    /// are counted in `meter`.
    pub fn new(inner: R, limits: Limits, meter: Arc<Meter>) -> Self {
        TarReader { inner, pos: 0, limits, meter, data: Data::default(), scratch: Vec::new() }
    }

    /// Stream bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The underlying stream, positioned after the last block read.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next entry, or how the stream ended. The previous entry's
    /// remaining data is skipped first.
    pub fn next_entry(&mut self) -> Result<Result<Entry, End>, ReadError> {
        if crate::interrupt::requested() {
            return Err(ReadError::Format("interrupted by a signal".into()));
        }
        self.skip_rest()?;
        let mut pending = Pending::default();
        loop {
            let mut block = [0u8; BLOCK];
            let got = self.read_block(&mut block)?;
            if got == 0 || block.iter().all(|b| *b == 0) {
                if !pending.is_empty() {
                    return Err(ReadError::Format("an extended header (x, L or K) is not followed by an entry".into()));
                }
                return Ok(Err(if got == 0 { End::Eof } else { End::ZeroBlock }));
            }
            check_sum(&block)?;
            let typeflag = block[156];
            let size = match number(&block[124..136]) {
                Ok(n) => n,
                Err(why) => return Err(ReadError::Format(format!("header size field is unreadable: {why}"))),
            };
            match typeflag {
                b'x' | b'L' | b'K' => {
                    let body = self.read_extension(size, &mut pending)?;
                    let Some(body) = body else { continue };
                    let twice = |what: &str| Problem {
                        field: "header",
                        detail: format!("two {what} headers in a row; readers keep different ones"),
                        fault: Fault::Ambiguous,
                    };
                    match typeflag {
                        b'x' => {
                            let records = match pax_records(&body) {
                                Ok(r) => r,
                                Err(why) => return Err(ReadError::Format(format!("malformed PAX header: {why}"))),
                            };
                            if pending.pax.is_some() {
                                pending.problems.push(twice("PAX extended"));
                            }
                            pending.pax = Some(records);
                        }
                        b'L' => {
                            if pending.long_name.is_some() {
                                pending.problems.push(twice("GNU long-name"));
                            }
                            pending.long_name = Some(c_string(&body).to_vec());
                        }
                        _ => {
                            if pending.long_link.is_some() {
                                pending.problems.push(twice("GNU long-link"));
                            }
                            pending.long_link = Some(c_string(&body).to_vec());
                        }
                    }
                }
                b'g' => return self.global(&block, size, pending).map(Ok),
                _ => return self.entry(&block, size, pending).map(Ok),
            }
        }
    }

    /// Reads the data of an extended header into memory, or skips it (and
    /// marks the entry it belongs to) when it is over the limit.
    fn read_extension(&mut self, size: u64, pending: &mut Pending) -> Result<Option<Vec<u8>>, ReadError> {
        let padding = pad(size);
        if size > self.limits.max_pax_bytes as u64 {
            pending.over_limit.get_or_insert(Exceeded {
                what: format!("an extended header of {size} bytes, more than {}", self.limits.max_pax_bytes),
                flag: "--max-pax-bytes",
            });
            self.skip(size + padding)?;
            return Ok(None);
        }
        let mut body = vec![0u8; size as usize];
        self.read_exact(&mut body)?;
        self.skip(padding)?;
        Ok(Some(body))
    }

    fn global(&mut self, block: &[u8; BLOCK], size: u64, pending: Pending) -> Result<Entry, ReadError> {
        let mut entry = base_entry(block);
        entry.kind = Kind::Global;
        let stray = !pending.is_empty();
        entry.problems = pending.problems;
        if stray {
            entry.problems.push(ambiguous("header", "an extended header stands before a PAX global header"));
        }
        let mut unused = Pending::default();
        if let Some(body) = self.read_extension(size, &mut unused)? {
            let records =
                pax_records(&body).map_err(|why| ReadError::Format(format!("malformed PAX global header: {why}")))?;
            let mut set: Vec<String> = records
                .iter()
                .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                .filter(|k| GLOBAL_ENTRY_KEYS.contains(&k.as_str()))
                .collect();
            set.dedup();
            if !set.is_empty() {
                let detail = format!(
                    "a PAX global header sets {}: GNU tar applies it to later entries, Go and bsdtar do not",
                    set.join(", ")
                );
                let owners_only = set.iter().all(|k| OWNER_KEYS.contains(&k.as_str()));
                entry.problems.push(if owners_only {
                    ambiguous_owner("global", &detail)
                } else {
                    ambiguous("global", &detail)
                });
            }
        }
        entry.over_limit = unused.over_limit;
        entry.size = 0;
        Ok(entry)
    }

    fn entry(&mut self, block: &[u8; BLOCK], header_size: u64, mut pending: Pending) -> Result<Entry, ReadError> {
        let mut e = base_entry(block);
        e.problems.extend(std::mem::take(&mut pending.problems));
        e.over_limit = pending.over_limit.take();
        let typeflag = block[156];
        let header_name = e.raw_path.clone();
        if let Some(name) = &pending.long_name {
            e.raw_path = name.clone();
        }
        if let Some(link) = &pending.long_link {
            e.link = Some(link.clone());
        }
        let mut size = header_size;
        let mut sparse_records = SparseRecords::default();
        if let Some(records) = &pending.pax {
            size = self.apply_pax(&mut e, records, header_size, &pending, &mut sparse_records);
        }
        let named_dir = e.raw_path.last() == Some(&b'/');
        e.kind = match typeflag {
            b'0' | b'7' => Kind::File,
            // An old-style regular file whose name ends in `/` is a
            // directory to GNU tar, bsdtar and Go alike.
            0 if named_dir => Kind::Dir,
            0 => Kind::File,
            b'1' => Kind::Hardlink,
            b'2' => Kind::Symlink,
            b'3' => Kind::Char,
            b'4' => Kind::Block,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            b'S' => Kind::File,
            other => {
                e.problems.push(ambiguous(
                    "typeflag",
                    &format!(
                        "typeflag {:?} is not a POSIX or GNU type: GNU tar extracts it as a regular file, Go hands it on as is",
                        other as char
                    ),
                ));
                Kind::Other(other)
            }
        };
        if matches!(typeflag, b'0' | b'7' | b'S') && named_dir {
            e.problems.push(ambiguous(
                "typeflag",
                "a regular, contiguous or sparse file whose name ends in `/`: readers disagree whether it is a directory",
            ));
        }
        // IDs past 32 bits: GNU tar ignores such a PAX record (and refuses
        // such a header field), Go and bsdtar take the value.
        if e.uid > u64::from(u32::MAX) || e.gid > u64::from(u32::MAX) {
            e.problems.push(ambiguous_owner(
                "uid",
                &format!("{}:{} does not fit 32 bits: GNU tar ignores it, Go and bsdtar take it", e.uid, e.gid),
            ));
        }
        prefix_readings(block, &mut e);
        if !matches!(e.kind, Kind::Hardlink | Kind::Symlink) {
            e.link = None;
        } else if e.link.is_none() {
            e.link = Some(Vec::new());
        }
        let header_only =
            matches!(e.kind, Kind::Hardlink | Kind::Symlink | Kind::Char | Kind::Block | Kind::Dir | Kind::Fifo);
        if header_only && size != 0 {
            e.problems.push(ambiguous(
                "size",
                &format!(
                    "a {} records {size} bytes of data: Go reads none, GNU tar skips them, so the readers lose step",
                    e.kind.name()
                ),
            ));
        }
        self.data = Data { stored: size, padding: pad(size), sparse: None };
        e.size = if header_only { 0 } else { size };
        // GNU's own sparse entries, and the PAX sparse formats.
        let map = if typeflag == b'S' {
            Some(self.gnu_sparse_map(block, &mut e)?)
        } else if sparse_records.present() {
            if e.kind != Kind::File {
                e.problems.push(ambiguous("GNU.sparse", "sparse records on an entry that is not a regular file"));
                None
            } else {
                self.pax_sparse_map(&sparse_records, &mut e, header_name.as_slice())?
            }
        } else {
            None
        };
        if let Some((map, real)) = map {
            self.expand(&mut e, map, real)?;
        }
        let path_limit = self.limits.check_path(&e.raw_path, e.link.as_deref());
        if let Err(over) = path_limit {
            e.over_limit.get_or_insert(over);
        }
        e.path = Normal::parse(&e.raw_path);
        Ok(e)
    }

    /// Applies the PAX records of an entry; returns its data size.
    fn apply_pax(
        &mut self,
        e: &mut Entry,
        records: &[(Vec<u8>, Vec<u8>)],
        header_size: u64,
        pending: &Pending,
        sparse: &mut SparseRecords,
    ) -> u64 {
        let mut size = header_size;
        let mut seen: Vec<&[u8]> = Vec::new();
        // `hdrcharset=BINARY` says the values are raw bytes; bsdtar then
        // takes them as GNU tar and Go do (GNU tar and Python write it).
        let binary = records.iter().any(|(k, v)| k == b"hdrcharset" && v == b"BINARY");
        for (key, value) in records {
            if !pax_record_usable(e, key, value, &mut seen, self.limits.max_pax_bytes) {
                continue;
            }
            match key.as_slice() {
                b"path" => pax_path(e, value, pending, binary),
                b"linkpath" => pax_linkpath(e, value, pending, binary),
                b"uname" => pax_owner_name(e, "uname", value, binary),
                b"gname" => pax_owner_name(e, "gname", value, binary),
                b"uid" => pax_number(e, "uid", value, header_size, &mut size),
                b"gid" => pax_number(e, "gid", value, header_size, &mut size),
                b"size" => pax_number(e, "size", value, header_size, &mut size),
                b"mtime" => pax_mtime(e, value),
                k if k.starts_with(b"GNU.sparse.") => sparse.add(k, value),
                k => pax_other(e, k, value),
            }
        }
        size
    }

    /// The sparse map of a GNU `S` entry: four slots in the header, more in
    /// extension blocks after it, and the real size.
    fn gnu_sparse_map(&mut self, block: &[u8; BLOCK], e: &mut Entry) -> Result<SparseMap, ReadError> {
        let mut map = Vec::new();
        let mut bad = None;
        let mut slots = |area: &[u8], map: &mut Vec<(u64, u64)>| {
            for slot in area.chunks_exact(24) {
                if slot.iter().all(|b| *b == 0) {
                    continue;
                }
                match (number(&slot[..12]), number(&slot[12..])) {
                    (Ok(o), Ok(n)) => map.push((o, n)),
                    _ => bad = Some("an unreadable sparse map slot"),
                }
            }
        };
        slots(&block[386..482], &mut map);
        let mut extended = block[482] != 0;
        let most = self.limits.max_pax_bytes / 24;
        while extended {
            let mut ext = [0u8; BLOCK];
            if self.read_block(&mut ext)? != BLOCK {
                return Err(ReadError::Format("the stream ends inside a sparse header".into()));
            }
            slots(&ext[..504], &mut map);
            extended = ext[504] != 0;
            if map.len() > most {
                return Err(ReadError::Limit(Exceeded {
                    what: format!("a sparse map of more than {most} segments"),
                    flag: "--max-pax-bytes",
                }));
            }
        }
        let real = number(&block[483..495]).unwrap_or_else(|_| {
            bad = Some("an unreadable real size");
            0
        });
        if let Some(why) = bad {
            e.problems.push(unreadable("sparse", why));
        }
        Ok((map, real))
    }

    /// The sparse map of an entry with `GNU.sparse.*` PAX records, or
    /// `None` (with a problem) when the records do not make one.
    fn pax_sparse_map(
        &mut self,
        records: &SparseRecords,
        e: &mut Entry,
        header_name: &[u8],
    ) -> Result<Option<SparseMap>, ReadError> {
        let number = |v: &Option<Vec<u8>>| v.as_deref().and_then(decimal);
        if let Some(name) = &records.name {
            if name.contains(&0) {
                e.problems.push(ambiguous("GNU.sparse.name", "GNU.sparse.name holds a NUL byte"));
            }
            // GNU tar, bsdtar and Go all take the real name from here;
            // the header holds a placeholder (`GNUSparseFile.0/...`).
            if e.raw_path != header_name && e.raw_path != *name {
                e.problems.push(ambiguous(
                    "path",
                    &format!(
                        "GNU.sparse.name {:?} and a PAX path or long name {:?} disagree",
                        super::path::escape(name),
                        super::path::escape(&e.raw_path)
                    ),
                ));
            }
            e.raw_path = name.clone();
        }
        let version = (records.major.as_deref(), records.minor.as_deref());
        let (map, real) = if version == (Some(&b"1"[..]), Some(&b"0"[..])) {
            let Some(real) = number(&records.realsize) else {
                e.malformed = Some("a PAX 1.0 sparse file without a readable GNU.sparse.realsize".into());
                return Ok(None);
            };
            match self.sparse_map_1_0(e)? {
                Some(map) => (map, real),
                None => return Ok(None),
            }
        } else if let Some(text) = &records.map {
            if records.major.is_some() || records.minor.is_some() {
                e.problems.push(ambiguous(
                    "GNU.sparse",
                    "a PAX 0.1 sparse map with GNU.sparse.major or minor: bsdtar calls the format unrecognized",
                ));
            }
            let numbers: Option<Vec<u64>> =
                if text.is_empty() { Some(Vec::new()) } else { text.split(|b| *b == b',').map(decimal).collect() };
            let Some(numbers) = numbers.filter(|n| n.len() % 2 == 0) else {
                e.malformed = Some("GNU.sparse.map is not a list of offset,size pairs".into());
                return Ok(None);
            };
            let Some(real) = number(&records.size) else {
                e.malformed = Some("a PAX 0.1 sparse file without a readable GNU.sparse.size".into());
                return Ok(None);
            };
            (numbers.chunks(2).map(|p| (p[0], p[1])).collect(), real)
        } else if !records.offsets.is_empty() || !records.numbytes.is_empty() {
            let pairs: Option<Vec<(u64, u64)>> = (records.offsets.len() == records.numbytes.len())
                .then(|| {
                    records
                        .offsets
                        .iter()
                        .zip(&records.numbytes)
                        .map(|(o, n)| Some((decimal(o)?, decimal(n)?)))
                        .collect()
                })
                .flatten();
            let (Some(map), Some(real)) = (pairs, number(&records.size)) else {
                e.malformed = Some("PAX 0.0 sparse records do not make a map".into());
                return Ok(None);
            };
            (map, real)
        } else {
            e.problems.push(ambiguous("GNU.sparse", "GNU.sparse records that make no sparse format readers agree on"));
            return Ok(None);
        };
        Ok(Some((map, real)))
    }

    /// PAX 1.0: the map opens the data, as decimal numbers each ended by a
    /// newline (a count, then offset and size pairs), padded to a block.
    fn sparse_map_1_0(&mut self, e: &mut Entry) -> Result<Option<Vec<(u64, u64)>>, ReadError> {
        let mut text: Vec<u8> = Vec::new();
        let mut numbers: Vec<u64> = Vec::new();
        // Where the next number starts in `text`.
        let mut start = 0;
        let mut wanted = None;
        loop {
            if wanted.is_some_and(|w| numbers.len() >= w) {
                break;
            }
            if self.data.stored < BLOCK as u64 {
                e.malformed = Some("the PAX 1.0 sparse map runs past the entry's data".into());
                return Ok(None);
            }
            let mut block = [0u8; BLOCK];
            self.read_exact(&mut block)?;
            self.data.stored -= BLOCK as u64;
            text.extend_from_slice(&block);
            if text.len() > self.limits.max_pax_bytes {
                return Err(ReadError::Limit(Exceeded {
                    what: format!("a sparse map of more than {} bytes", self.limits.max_pax_bytes),
                    flag: "--max-pax-bytes",
                }));
            }
            // Take every complete number in what was read so far.
            while let Some(nl) = text[start..].iter().position(|b| *b == b'\n') {
                let Some(n) = decimal(&text[start..start + nl]) else {
                    e.malformed = Some("the PAX 1.0 sparse map holds something other than decimal numbers".into());
                    return Ok(None);
                };
                numbers.push(n);
                start += nl + 1;
                if wanted.is_none() {
                    wanted = n.checked_mul(2).and_then(|w| w.checked_add(1)).map(|w| w as usize);
                    if wanted.is_none_or(|w| w > self.limits.max_pax_bytes) {
                        e.malformed = Some("the PAX 1.0 sparse map declares too many segments".into());
                        return Ok(None);
                    }
                }
                if wanted.is_some_and(|w| numbers.len() >= w) {
                    break;
                }
            }
        }
        e.size = self.data.stored;
        Ok(Some(numbers[1..].chunks(2).map(|p| (p[0], p[1])).collect()))
    }

    /// Checks a sparse map against the stored data and sets the entry up
    /// to expand it; a map no reader can follow rejects the entry.
    fn expand(&mut self, e: &mut Entry, map: Vec<(u64, u64)>, real: u64) -> Result<(), ReadError> {
        e.sparse = true;
        let stored = self.data.stored;
        let mut end = 0u64;
        let mut sum = 0u64;
        let mut why = None;
        for &(offset, len) in &map {
            let Some(stop) = offset.checked_add(len) else {
                why = Some("a segment past the largest offset");
                break;
            };
            if offset < end {
                why = Some("segments overlap or are out of order");
                break;
            }
            end = stop;
            sum = sum.saturating_add(len);
        }
        if why.is_none() && end > real {
            why = Some("a segment reaches past the real size");
        }
        if why.is_none() && sum != stored {
            why = Some("the segments do not add up to the stored data");
        }
        if let Some(why) = why {
            e.malformed = Some(format!("sparse map: {why}"));
            e.size = stored;
            return Ok(());
        }
        // Checked by hand with GNU tar 1.34 and bsdtar 3.6: GNU tar reads
        // each stored region from a fresh block, the others back to back;
        // and GNU tar ends a file that ends in a hole early unless the map
        // closes with an empty region at the real size, as it writes them.
        let mut regions = map.iter().filter(|&&(_, len)| len > 0).rev().skip(1);
        if regions.any(|&(_, len)| len % BLOCK as u64 != 0) {
            e.problems.push(ambiguous(
                "GNU.sparse",
                "a stored region other than the last is not a whole number of blocks: GNU tar reads each region from a fresh block, bsdtar and Go read them back to back",
            ));
        }
        if end < real && map.last() != Some(&(real, 0)) {
            e.problems.push(ambiguous(
                "GNU.sparse",
                "the sparse map does not close with an empty region at the real size: GNU tar extracts the file short",
            ));
        }
        // The holes are bytes a reader writes out: count them.
        let holes = real - stored;
        let total = self.meter.holes.fetch_add(holes, Ordering::Relaxed).saturating_add(holes);
        let out = self.pos.saturating_add(total);
        self.limits.check_expansion(self.meter.compressed.load(Ordering::Relaxed), out).map_err(ReadError::Limit)?;
        e.size = real;
        self.data.sparse = Some(Sparse { map, real, pos: 0, next: 0 });
        Ok(())
    }

    /// Skips what the sink left of the current entry's data, and its padding.
    fn skip_rest(&mut self) -> Result<(), ReadError> {
        let n = self.data.stored + self.data.padding;
        self.data = Data::default();
        self.skip(n)
    }

    fn skip(&mut self, mut n: u64) -> Result<(), ReadError> {
        if self.scratch.is_empty() {
            self.scratch = vec![0u8; 64 << 10];
        }
        while n > 0 {
            let want = n.min(self.scratch.len() as u64) as usize;
            let got = self.inner.read(&mut self.scratch[..want])?;
            if got == 0 {
                return Err(ReadError::Format("the stream ends inside an entry's data".into()));
            }
            n -= got as u64;
            self.pos += got as u64;
        }
        Ok(())
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), ReadError> {
        if self.read_block_like(buf)? != buf.len() {
            return Err(ReadError::Format("the stream ends inside an entry's data".into()));
        }
        Ok(())
    }

    /// Reads a whole block; returns 0 at a clean end of stream.
    fn read_block(&mut self, block: &mut [u8; BLOCK]) -> Result<usize, ReadError> {
        match self.read_block_like(block)? {
            0 => Ok(0),
            BLOCK => Ok(BLOCK),
            n => Err(ReadError::Format(format!("the stream ends {n} bytes into a header"))),
        }
    }

    fn read_block_like(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.pos += filled as u64;
        Ok(filled)
    }

    /// Reads the current entry's data (expanded, for a sparse file).
    pub fn data(&mut self) -> EntryData<'_, R> {
        EntryData { r: self }
    }
}

/// The content of the current entry.
pub struct EntryData<'a, R> {
    r: &'a mut TarReader<R>,
}

impl<R: Read> EntryData<'_, R> {
    fn stored(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.r.data.stored) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.r.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the stream ends inside an entry's data"));
        }
        self.r.data.stored -= n as u64;
        self.r.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(s) = self.r.data.sparse.as_mut() else { return self.stored(buf) };
        loop {
            if s.pos >= s.real || buf.is_empty() {
                return Ok(0);
            }
            let (offset, len) = s.map.get(s.next).copied().unwrap_or((s.real, 0));
            if s.pos < offset {
                let n = (offset - s.pos).min(buf.len() as u64) as usize;
                buf[..n].fill(0);
                s.pos += n as u64;
                return Ok(n);
            }
            if s.pos < offset + len {
                let want = (offset + len - s.pos).min(buf.len() as u64) as usize;
                let pos = s.pos;
                let n = self.stored(&mut buf[..want])?;
                if let Some(s) = self.r.data.sparse.as_mut() {
                    s.pos = pos + n as u64;
                }
                return Ok(n);
            }
            s.next += 1;
        }
    }
}

/// `GNU.sparse.*` records of one entry.
#[derive(Default)]
struct SparseRecords {
    major: Option<Vec<u8>>,
    minor: Option<Vec<u8>>,
    name: Option<Vec<u8>>,
    realsize: Option<Vec<u8>>,
    size: Option<Vec<u8>>,
    map: Option<Vec<u8>>,
    offsets: Vec<Vec<u8>>,
    numbytes: Vec<Vec<u8>>,
}

impl SparseRecords {
    fn add(&mut self, key: &[u8], value: &[u8]) {
        let v = Some(value.to_vec());
        match key {
            b"GNU.sparse.major" => self.major = v,
            b"GNU.sparse.minor" => self.minor = v,
            b"GNU.sparse.name" => self.name = v,
            b"GNU.sparse.realsize" => self.realsize = v,
            b"GNU.sparse.size" => self.size = v,
            b"GNU.sparse.map" => self.map = v,
            b"GNU.sparse.offset" => self.offsets.push(value.to_vec()),
            b"GNU.sparse.numbytes" => self.numbytes.push(value.to_vec()),
            _ => {}
        }
    }

    /// Records that make the entry sparse for GNU tar, bsdtar and Go.
    fn present(&self) -> bool {
        self.major.is_some() || self.map.is_some() || !self.offsets.is_empty() || !self.numbytes.is_empty()
    }
}

/// PAX keys that, in a global header, would change the entries after it
/// for readers that apply global headers.
const GLOBAL_ENTRY_KEYS: [&str; 8] = ["uid", "gid", "uname", "gname", "path", "linkpath", "size", "mtime"];

/// PAX keys that carry only the owner.
const OWNER_KEYS: [&str; 4] = ["uid", "gid", "uname", "gname"];

fn ambiguous(field: &'static str, detail: &str) -> Problem {
    Problem { field, detail: detail.to_string(), fault: Fault::Ambiguous }
}

fn ambiguous_owner(field: &'static str, detail: &str) -> Problem {
    Problem { field, detail: detail.to_string(), fault: Fault::AmbiguousOwner }
}

fn unreadable(field: &'static str, detail: &str) -> Problem {
    Problem { field, detail: detail.to_string(), fault: Fault::Unreadable }
}

fn pad(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// The header's own fields, before extended headers are applied.
fn base_entry(h: &[u8; BLOCK]) -> Entry {
    let mut problems = Vec::new();
    let mut field = |name: &'static str, range: std::ops::Range<usize>| match number(&h[range.clone()]) {
        Ok(n) => n,
        Err(why) => {
            let text = super::path::escape(c_string(&h[range.clone()]));
            problems.push(unreadable(name, &format!("{name} field {text:?}: {why}")));
            0
        }
    };
    let mode = field("mode", 100..108) as u32 & 0o7777;
    let uid = field("uid", 108..116);
    let gid = field("gid", 116..124);
    let mtime = field("mtime", 136..148);
    let magic = &h[257..265];
    // POSIX ustar splits long names into a prefix; GNU's old format uses
    // those bytes for other fields, and v7 headers have neither.
    let ustar = &magic[..6] == b"ustar\0";
    let gnu = magic == b"ustar  \0";
    let mut raw_path = c_string(&h[0..100]).to_vec();
    if ustar {
        let prefix = c_string(&h[345..500]);
        if !prefix.is_empty() {
            let mut full = prefix.to_vec();
            full.push(b'/');
            full.extend_from_slice(&raw_path);
            raw_path = full;
        }
    }
    let (uname, gname) = if ustar || gnu {
        (c_string(&h[265..297]).to_vec(), c_string(&h[297..329]).to_vec())
    } else {
        (Vec::new(), Vec::new())
    };
    Entry {
        path: Normal::parse(&raw_path),
        raw_path,
        kind: Kind::File,
        mode,
        uid,
        gid,
        uname,
        gname,
        size: 0,
        link: Some(c_string(&h[157..257]).to_vec()),
        xattrs: Vec::new(),
        has_acl: false,
        mtime,
        pax_mtime: None,
        sparse: false,
        problems,
        header_names: None,
        over_limit: None,
        malformed: None,
    }
}

/// Where Go's archive/tar finds another name prefix than GNU tar and
/// bsdtar do: in a GNU header whose access and change times do not read as
/// numbers (Go takes that area for a ustar prefix, as a buggy old Go writer
/// put one there), and in a ustar header with star's `tar` trailer (Go
/// takes a 131-byte prefix where the others take 155 bytes).
fn prefix_readings(h: &[u8; BLOCK], e: &mut Entry) {
    let magic = &h[257..265];
    let used = |r: std::ops::Range<usize>| h[r].iter().any(|b| *b != 0);
    if magic == b"ustar  \0" && used(345..500) && (number(&h[345..357]).is_err() || number(&h[357..369]).is_err()) {
        e.problems.push(ambiguous(
            "name",
            "a GNU header whose time fields hold text: Go takes it for a name prefix, GNU tar and bsdtar do not",
        ));
    }
    if &magic[..6] == b"ustar\0" && &h[508..512] == b"tar\0" && used(476..500) {
        e.problems.push(ambiguous(
            "name",
            "a ustar prefix past byte 131 with star's trailer: Go cuts the prefix there, GNU tar and bsdtar do not",
        ));
    }
}

/// A header field up to its first NUL.
fn c_string(field: &[u8]) -> &[u8] {
    field.iter().position(|b| *b == 0).map_or(field, |i| &field[..i])
}

/// A numeric header field: octal digits (leading spaces and NULs
/// allowed, ended by a space or NUL), or GNU base-256 when the first byte
/// has its high bit set. Negative base-256 values are refused.
fn number(field: &[u8]) -> Result<u64, &'static str> {
    if let Some(&first) = field.first() {
        if first & 0x80 != 0 {
            if first == 0xff {
                return Err("a negative base-256 number");
            }
            let mut n: u64 = u64::from(first & 0x7f);
            for &b in &field[1..] {
                n = n
                    .checked_mul(256)
                    .and_then(|n| n.checked_add(u64::from(b)))
                    .ok_or("a base-256 number past 64 bits")?;
            }
            return Ok(n);
        }
    }
    let start = field.iter().position(|b| *b != b' ' && *b != 0).unwrap_or(field.len());
    let digits = &field[start..];
    let end = digits.iter().position(|b| *b == b' ' || *b == 0).unwrap_or(digits.len());
    if digits[end..].iter().any(|b| *b != b' ' && *b != 0) {
        return Err("bytes after the octal number");
    }
    let mut n: u64 = 0;
    for &b in &digits[..end] {
        if !(b'0'..=b'7').contains(&b) {
            return Err("not an octal number");
        }
        n = n.checked_mul(8).and_then(|n| n.checked_add(u64::from(b - b'0'))).ok_or("an octal number past 64 bits")?;
    }
    Ok(n)
}

/// A non-negative decimal integer, as PAX records and sparse maps hold.
fn decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// The header checksum: the sum of its bytes with the checksum field read
/// as spaces, as an unsigned or (as some old writers computed it) signed sum.
fn check_sum(h: &[u8; BLOCK]) -> Result<(), ReadError> {
    let recorded = number(&h[148..156]).map_err(|_| ReadError::Format("header checksum field is unreadable".into()))?;
    // The checksum field counts as eight spaces.
    let (head, rest) = h.split_at(148);
    let tail = &rest[8..];
    let unsigned: u64 = head.iter().chain(tail).map(|b| u64::from(*b)).sum::<u64>() + 8 * 32;
    if recorded == unsigned {
        return Ok(());
    }
    let signed: i64 = head.iter().chain(tail).map(|b| i64::from(*b as i8)).sum::<i64>() + 8 * 32;
    if i64::try_from(recorded).is_ok_and(|r| r == signed) {
        Ok(())
    } else {
        Err(ReadError::Format(format!("header checksum is {recorded}, the header sums to {unsigned}")))
    }
}

/// The records of a PAX extended header: `LEN KEY=VALUE\n`, where LEN
/// counts the whole record. Values may hold any byte, newlines included.
fn pax_records(body: &[u8]) -> Result<Records, String> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let space = rest.iter().position(|b| *b == b' ').ok_or("a record without a length")?;
        let len = decimal(&rest[..space]).ok_or("a record length that is not a number")? as usize;
        if len <= space + 1 || len > rest.len() {
            return Err(format!("a record length of {len} that does not fit"));
        }
        let record = &rest[space + 1..len];
        let Some((&b'\n', record)) = record.split_last() else { return Err("a record not ended by a newline".into()) };
        let eq = record.iter().position(|b| *b == b'=').ok_or("a record without `=`")?;
        if eq == 0 {
            return Err("a record with an empty key".into());
        }
        out.push((record[..eq].to_vec(), record[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(out)
}

/// Whether a PAX record is applied: not when its key holds a NUL or its
/// value is over `--max-pax-bytes`. A key seen before (other than the
/// sparse map's repeated ones) is applied but noted, as readers keep
/// different ones.
fn pax_record_usable<'r>(
    e: &mut Entry,
    key: &'r [u8],
    value: &[u8],
    seen: &mut Vec<&'r [u8]>,
    max_pax_bytes: usize,
) -> bool {
    if key.contains(&0) {
        e.problems.push(ambiguous(
            "pax",
            &format!(
                "PAX record key {:?} holds a NUL byte: GNU tar and bsdtar call it malformed, Go rejects the header",
                super::path::escape(key)
            ),
        ));
        return false;
    }
    let repeatable = key == b"GNU.sparse.offset" || key == b"GNU.sparse.numbytes";
    if !repeatable && seen.contains(&key) {
        e.problems.push(ambiguous(
            "pax",
            &format!("PAX record {:?} appears twice; readers may keep either", super::path::escape(key)),
        ));
    }
    seen.push(key);
    if value.len() > max_pax_bytes {
        e.over_limit.get_or_insert(Exceeded {
            what: format!("a PAX record of {} bytes, more than {max_pax_bytes}", value.len()),
            flag: "--max-pax-bytes",
        });
        return false;
    }
    true
}

/// Notes a PAX text value (`what`) that readers take differently: one
/// holding a NUL, or one that is not UTF-8 while the header does not say
/// `hdrcharset=BINARY`.
fn pax_text_readings(e: &mut Entry, what: &str, value: &[u8], binary: bool) {
    let owner = what == "uname" || what == "gname";
    if value.contains(&0) {
        let detail = format!("PAX {what} holds a NUL byte: GNU tar and bsdtar cut it there, Go rejects the header");
        e.problems.push(if owner { ambiguous_owner("pax", &detail) } else { ambiguous("pax", &detail) });
    } else if !binary && std::str::from_utf8(value).is_err() {
        // PAX values are UTF-8 unless the header says otherwise;
        // bsdtar 3.6 then exits 1 and drops a link target.
        let detail = format!("PAX {what} is not UTF-8: bsdtar does not take it as GNU tar and Go do");
        e.problems.push(if owner { ambiguous_owner("pax", &detail) } else { ambiguous("pax", &detail) });
    }
}

/// PAX `path`: replaces the name, unless it is empty; readers disagree
/// when a GNU long name says otherwise.
fn pax_path(e: &mut Entry, value: &[u8], pending: &Pending, binary: bool) {
    pax_text_readings(e, "path", value, binary);
    if let Some(long) = &pending.long_name {
        if long != value {
            e.problems.push(ambiguous(
                "path",
                &format!(
                    "a GNU long name {:?} and a PAX path {:?}: GNU tar takes the PAX one, bsdtar and Go the GNU one",
                    super::path::escape(long),
                    super::path::escape(value)
                ),
            ));
        }
    }
    if value.is_empty() {
        e.problems.push(ambiguous("path", "an empty PAX path: readers fall back differently"));
    } else {
        e.raw_path = value.to_vec();
    }
}

/// PAX `linkpath`: replaces the link target; readers disagree when a GNU
/// long link says otherwise.
fn pax_linkpath(e: &mut Entry, value: &[u8], pending: &Pending, binary: bool) {
    pax_text_readings(e, "linkpath", value, binary);
    if let Some(long) = &pending.long_link {
        if long != value {
            e.problems.push(ambiguous(
                "linkpath",
                &format!(
                    "a GNU long link {:?} and a PAX linkpath {:?}: GNU tar takes the PAX one, bsdtar and Go the GNU one",
                    super::path::escape(long),
                    super::path::escape(value)
                ),
            ));
        }
    }
    e.link = Some(value.to_vec());
}

/// PAX `uname` or `gname` (`field`): replaces the header's name, which is
/// kept in `header_names` when the two differ.
fn pax_owner_name(e: &mut Entry, field: &'static str, value: &[u8], binary: bool) {
    pax_text_readings(e, field, value, binary);
    let slot = if field == "uname" { &mut e.uname } else { &mut e.gname };
    if !slot.is_empty() && slot.as_slice() != value {
        let old = std::mem::replace(slot, value.to_vec());
        let names = e.header_names.get_or_insert_with(|| (e.uname.clone(), e.gname.clone()));
        if field == "uname" {
            names.0 = old;
        } else {
            names.1 = old;
        }
        e.problems.push(Problem {
            field,
            detail: format!("PAX {field} {:?} disagrees with the header's", super::path::escape(value)),
            fault: Fault::Mismatch,
        });
    } else {
        *slot = value.to_vec();
    }
}

/// PAX `uid`, `gid` or `size` (`field`): replaces the header's value (the
/// size into `size`), noting a header value other than 0 that differs.
fn pax_number(e: &mut Entry, field: &'static str, value: &[u8], header_size: u64, size: &mut u64) {
    let Some(n) = decimal(value) else {
        e.problems.push(Problem {
            field,
            detail: format!("PAX {field} {:?} is not a non-negative integer", super::path::escape(value)),
            fault: Fault::Unreadable,
        });
        return;
    };
    let header = match field {
        "uid" => e.uid,
        "gid" => e.gid,
        _ => header_size,
    };
    if header != n && header != 0 {
        e.problems.push(Problem {
            field,
            detail: format!("PAX {field} {n} disagrees with the header's {header}"),
            fault: Fault::Mismatch,
        });
    }
    match field {
        "uid" => e.uid = n,
        "gid" => e.gid = n,
        _ => *size = n,
    }
}

/// PAX `mtime`: seconds with an optional fraction, kept as written too.
fn pax_mtime(e: &mut Entry, value: &[u8]) {
    let text = std::str::from_utf8(value).unwrap_or("");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let fraction_ok = !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit());
    match (whole.parse::<u64>(), whole.parse::<i64>()) {
        (Ok(t), _) if fraction_ok => {
            if e.mtime != t && e.mtime != 0 {
                e.problems.push(Problem {
                    field: "mtime",
                    detail: format!("PAX mtime {text} disagrees with the header's {}", e.mtime),
                    fault: Fault::Mismatch,
                });
            }
            e.mtime = t;
            e.pax_mtime = Some(value.to_vec().into_boxed_slice());
        }
        // Before the epoch: the header's value is kept.
        (_, Ok(_)) if fraction_ok => e.pax_mtime = Some(value.to_vec().into_boxed_slice()),
        _ => e.problems.push(Problem {
            field: "mtime",
            detail: format!("PAX mtime {:?} is not a number", super::path::escape(value)),
            fault: Fault::Unreadable,
        }),
    }
}

/// Other PAX records: the xattrs of the SCHILY and LIBARCHIVE forms, and
/// whether the entry has an ACL. The rest are ignored.
fn pax_other(e: &mut Entry, key: &[u8], value: &[u8]) {
    if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
        if name.is_empty() {
            e.problems.push(unreadable("xattr", "an xattr record with an empty name"));
        } else {
            e.xattrs.push((name.to_vec(), value.to_vec()));
        }
    } else if let Some(name) = key.strip_prefix(b"LIBARCHIVE.xattr.") {
        // libarchive's own form: URL-encoded name, base64 value.
        match (percent_decode(name), base64_decode(value)) {
            (Some(n), Some(v)) if !n.is_empty() && !n.contains(&0) => e.xattrs.push((n, v)),
            _ => e.problems.push(unreadable(
                "xattr",
                &format!("LIBARCHIVE.xattr record {:?} is not URL/base64 encoded", super::path::escape(name)),
            )),
        }
    } else if key.starts_with(b"SCHILY.acl.") {
        e.has_acl = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number(b"0000644\0"), Ok(0o644));
        assert_eq!(number(b"  644 \0\0"), Ok(0o644));
        assert_eq!(number(b"\0\0\0\0\0\0\0\0"), Ok(0));
        assert!(number(b"64x\0").is_err());
        assert!(number(b"12\0x").is_err());
        assert_eq!(number(&[0x80, 0, 0, 0, 0, 0, 1, 0]), Ok(256));
        assert!(number(&[0xff; 8]).is_err());
    }

    fn record(key: &str, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        crate::flatten::tar::pax_record(&mut out, key.as_bytes(), value);
        out
    }

    #[test]
    fn pax_values_may_hold_newlines() {
        let body = [record("path", b"a\nb/c.d"), record("SCHILY.xattr.x", b"\n")].concat();
        let r = pax_records(&body).unwrap();
        assert_eq!(r[0], (b"path".to_vec(), b"a\nb/c.d".to_vec()));
        assert_eq!(r[1], (b"SCHILY.xattr.x".to_vec(), b"\n".to_vec()));
        assert!(pax_records(b"8 path=a\n").is_err());
        assert_eq!(pax_records(b"9 path=a\n").unwrap().len(), 1);
        assert!(pax_records(b"5 =\n").is_err());
    }
}
