//! Writing the output: tar headers and PAX records encoded by hand (so the
//! bytes depend on nothing but the entries), the compressors with fixed
//! settings, hashing writers, blobs written to a temporary file and renamed
//! to their digest, canonical JSON, and the archive form of a layout.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};

use serde_json::Value;

use crate::digest::{DigestAlgorithm, Hasher};

/// Largest number an 11-digit octal header field holds; beyond it the value
/// goes into a PAX record and the field holds 0.
const MAX_OCTAL_11: u64 = 0o77777777777;
const BLOCK: usize = 512;

/// Output compression of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Codec {
    Gzip,
    Zstd,
    /// No compression: a plain tar layer.
    None,
}

impl Codec {
    pub fn from_layer(c: crate::layer::Compression) -> Codec {
        match c {
            crate::layer::Compression::None => Codec::None,
            crate::layer::Compression::Gzip => Codec::Gzip,
            crate::layer::Compression::Zstd => Codec::Zstd,
        }
    }

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
            Codec::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Codec::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Codec::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

/// A writer that hashes (sha256) and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        let hasher = Hasher::new(&DigestAlgorithm::Sha256).expect("sha256 is always available");
        HashingWriter { inner, hasher, count: 0 }
    }

    /// The inner writer, the `sha256:` digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
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
pub enum Compressor<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    pub fn new(inner: W, codec: Codec) -> io::Result<Self> {
        Ok(match codec {
            Codec::None => Compressor::Plain(inner),
            Codec::Gzip => {
                Compressor::Gzip(flate2::GzBuilder::new().mtime(0).write(inner, flate2::Compression::default()))
            }
            Codec::Zstd => Compressor::Zstd(zstd::stream::write::Encoder::new(inner, 3)?),
        })
    }

    pub fn finish(self) -> io::Result<W> {
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
pub const CHUNK: usize = 256 << 10;
pub const CHANNEL_DEPTH: usize = 4;

/// The writing end of the hand-over to the compressing thread: collects
/// whole chunks, since small sends cost more than they carry.
pub struct ChunkSender {
    tx: SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChunkSender {
    pub fn new(tx: SyncSender<Vec<u8>>) -> Self {
        ChunkSender { tx, buf: Vec::with_capacity(CHUNK) }
    }

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
pub fn compress_into(file: File, codec: Codec, rx: Receiver<Vec<u8>>) -> io::Result<(String, u64)> {
    let mut out = Compressor::new(HashingWriter::new(BufWriter::with_capacity(1 << 16, file)), codec)?;
    for chunk in rx {
        out.write_all(&chunk)?;
    }
    let (buffered, digest, size) = out.finish()?.finish();
    let file = buffered.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok((digest, size))
}

/// One tar entry to write. Owners are always 0:0.
pub struct Header<'a> {
    pub name: &'a [u8],
    pub typeflag: u8,
    pub mode: u32,
    /// Whole seconds.
    pub mtime: u64,
    /// The input's PAX `mtime` record, written back byte for byte when it
    /// says more than the header can (a fraction, a time before the epoch).
    pub pax_mtime: Option<&'a [u8]>,
    pub size: u64,
    pub link: &'a [u8],
    /// User and group name.
    pub owner_name: &'a [u8],
    /// Extended attributes, as `SCHILY.xattr.NAME` PAX records.
    pub xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

/// A tar stream in POSIX ustar format with PAX extended headers where a
/// field does not fit (names and link targets over 100 bytes, sizes and
/// mtimes over 11 octal digits, xattrs). A long name holding a newline
/// goes into a GNU long-name entry instead, because some PAX readers split
/// records at newlines.
pub struct TarWriter<W: Write> {
    inner: W,
}

impl<W: Write> TarWriter<W> {
    pub fn new(inner: W) -> Self {
        TarWriter { inner }
    }

    /// Writes `h`, then `size` bytes of `data` (files only) and padding.
    pub fn entry(&mut self, h: &Header<'_>, data: Option<&mut dyn Read>) -> io::Result<()> {
        let mut pax = Vec::new();
        let mut long_name = None;
        let mut long_link = None;
        for (value, key, slot) in [(h.name, "path", &mut long_name), (h.link, "linkpath", &mut long_link)] {
            if value.len() > 100 {
                if value.contains(&b'\n') {
                    *slot = Some(value);
                } else {
                    pax_record(&mut pax, key.as_bytes(), value);
                }
            }
        }
        let size_field = if h.size > MAX_OCTAL_11 {
            pax_record(&mut pax, b"size", h.size.to_string().as_bytes());
            0
        } else {
            h.size
        };
        let exact = h.pax_mtime.filter(|t| t.contains(&b'.') || t.starts_with(b"-"));
        let mtime_field = match exact {
            Some(text) => {
                pax_record(&mut pax, b"mtime", text);
                if h.mtime > MAX_OCTAL_11 || text.starts_with(b"-") { 0 } else { h.mtime }
            }
            None if h.mtime > MAX_OCTAL_11 => {
                pax_record(&mut pax, b"mtime", h.mtime.to_string().as_bytes());
                0
            }
            None => h.mtime,
        };
        for (name, value) in h.xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(name);
            pax_record(&mut pax, &key, value);
        }
        for (typeflag, value) in [(b'L', long_name), (b'K', long_link)] {
            if let Some(value) = value {
                let mut body = value.to_vec();
                body.push(0);
                let block = raw_header(b"././@LongLink", typeflag, 0o644, body.len() as u64, 0, b"", b"", true);
                self.inner.write_all(&block)?;
                self.write_padded(&body)?;
            }
        }
        if !pax.is_empty() {
            let block = raw_header(&pax_name(h.name), b'x', 0o644, pax.len() as u64, 0, b"", b"", false);
            self.inner.write_all(&block)?;
            self.write_padded(&pax)?;
        }
        let block = raw_header(h.name, h.typeflag, h.mode, size_field, mtime_field, h.link, h.owner_name, false);
        self.inner.write_all(&block)?;
        if let Some(data) = data {
            let copied = io::copy(&mut data.take(h.size), &mut self.inner)?;
            if copied != h.size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("entry data ended after {copied} of {} bytes", h.size),
                ));
            }
            self.pad(h.size)?;
        }
        Ok(())
    }

    fn write_padded(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.pad(bytes.len() as u64)
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rest = (BLOCK - (len % BLOCK as u64) as usize) % BLOCK;
        self.inner.write_all(&[0u8; BLOCK][..rest])
    }

    /// Writes the end-of-archive marker (two zero blocks).
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(&[0u8; 2 * BLOCK])?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// The name of the PAX header for an entry: a fixed directory and the
/// entry's last component, cut to fit (readers never use it).
fn pax_name(name: &[u8]) -> Vec<u8> {
    let trimmed = name.strip_suffix(b"/").unwrap_or(name);
    let base = trimmed.rsplit(|b| *b == b'/').next().unwrap_or_default();
    let mut out = b"PaxHeaders/".to_vec();
    out.extend_from_slice(&base[..base.len().min(100 - out.len())]);
    out
}

/// Appends one `LEN KEY=VALUE\n` record, where LEN counts the whole record
/// including its own digits.
pub fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + digits(rest);
    // Adding the digits can carry into one more digit (e.g. 98 + 2 = 100).
    while len != rest + digits(len) {
        len = rest + digits(len);
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// One 512-byte header block. Fields that do not fit were moved to PAX
/// records by the caller; the name and link fields then hold a cut copy.
#[allow(clippy::too_many_arguments)]
fn raw_header(
    name: &[u8],
    typeflag: u8,
    mode: u32,
    size: u64,
    mtime: u64,
    link: &[u8],
    owner_name: &[u8],
    gnu: bool,
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    put(&mut b[0..100], name);
    octal(&mut b[100..108], u64::from(mode));
    octal(&mut b[108..116], 0); // uid
    octal(&mut b[116..124], 0); // gid
    octal(&mut b[124..136], size);
    octal(&mut b[136..148], mtime);
    b[156] = typeflag;
    put(&mut b[157..257], link);
    if gnu {
        b[257..265].copy_from_slice(b"ustar  \0");
    } else {
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
    }
    put(&mut b[265..297], owner_name);
    put(&mut b[297..329], owner_name);
    if !gnu {
        octal(&mut b[329..337], 0); // devmajor
        octal(&mut b[337..345], 0); // devminor
    }
    // The checksum is computed with its own field read as spaces.
    b[148..156].fill(b' ');
    let sum: u32 = b.iter().map(|x| u32::from(*x)).sum();
    let text = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(text.as_bytes());
    b
}

/// As much of `value` as fits, NUL-padded.
fn put(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Zero-padded octal digits and a terminating NUL.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    field[..width].copy_from_slice(&text.as_bytes()[text.len() - width..]);
    field[width] = 0;
}

/// JSON with object keys sorted and no white space: the same document
/// always gives the same bytes, whatever order maps were built in.
pub fn canonical_json(v: &Value) -> Vec<u8> {
    fn write(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(map) => {
                let sorted: BTreeMap<&String, &Value> = map.iter().collect();
                out.push(b'{');
                for (i, (k, v)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&serde_json::to_vec(k).expect("a string serialises"));
                    out.push(b':');
                    write(v, out);
                }
                out.push(b'}');
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(item, out);
                }
                out.push(b']');
            }
            scalar => out.extend_from_slice(&serde_json::to_vec(scalar).expect("a scalar serialises")),
        }
    }
    let mut out = Vec::new();
    write(v, &mut out);
    out
}

/// The blob store of the layout being written.
pub struct Blobs {
    root: PathBuf,
    dir: PathBuf,
    next_temp: u64,
}

impl Blobs {
    /// Creates `root/blobs/sha256` and writes `oci-layout`.
    pub fn create(root: &Path) -> io::Result<Blobs> {
        let dir = root.join("blobs/sha256");
        fs::create_dir_all(&dir)?;
        fs::write(root.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        Ok(Blobs { root: root.to_path_buf(), dir, next_temp: 0 })
    }

    /// A new temporary file in the blob directory; the name follows a
    /// fixed pattern so runs do not differ even in what they leave behind.
    pub fn temp(&mut self) -> io::Result<(PathBuf, File)> {
        let path = self.dir.join(format!(".partial-{}", self.next_temp));
        self.next_temp += 1;
        let file = File::options().write(true).create_new(true).open(&path)?;
        Ok((path, file))
    }

    /// Moves a finished temporary file to its digest's name.
    pub fn commit(&self, temp: &Path, digest: &str) -> io::Result<()> {
        fs::rename(temp, self.path(digest))
    }

    pub fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(digest.trim_start_matches("sha256:"))
    }

    /// Writes a small blob; returns its digest and size.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<(String, u64)> {
        let digest = crate::digest::sha256_of(bytes);
        let (temp, mut file) = self.temp()?;
        file.write_all(bytes)?;
        file.sync_all()?;
        self.commit(&temp, &digest)?;
        Ok((digest, bytes.len() as u64))
    }

    /// Copies a blob read from `reader` to `rel`, its layout-relative path
    /// in the input (from `blob_path`); the caller checks its digest.
    pub fn copy(&mut self, reader: &mut dyn Read, rel: &str) -> io::Result<()> {
        let (temp, file) = self.temp()?;
        let mut out = BufWriter::new(file);
        io::copy(reader, &mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(&temp, &path)
    }
}

/// Packs the layout in `root` into a tar archive at `dest`, deterministic:
/// fixed order (the layout files, then blobs by name), owners 0:0, mtime 0.
pub fn pack(root: &Path, dest: &Path) -> io::Result<()> {
    let file = File::options().write(true).create_new(true).open(dest)?;
    let mut tar = TarWriter::new(BufWriter::with_capacity(1 << 16, file));
    let dir = |tar: &mut TarWriter<_>, name: &[u8]| {
        let h = Header {
            name,
            typeflag: b'5',
            mode: 0o755,
            mtime: 0,
            pax_mtime: None,
            size: 0,
            link: b"",
            owner_name: b"",
            xattrs: &[],
        };
        tar.entry(&h, None)
    };
    let file = |tar: &mut TarWriter<_>, name: &[u8], path: &Path| -> io::Result<()> {
        let mut f = File::open(path)?;
        let size = f.metadata()?.len();
        let h = Header {
            name,
            typeflag: b'0',
            mode: 0o644,
            mtime: 0,
            pax_mtime: None,
            size,
            link: b"",
            owner_name: b"",
            xattrs: &[],
        };
        tar.entry(&h, Some(&mut f))
    };
    file(&mut tar, b"oci-layout", &root.join("oci-layout"))?;
    file(&mut tar, b"index.json", &root.join("index.json"))?;
    dir(&mut tar, b"blobs/")?;
    // One directory per digest algorithm (copied blobs may use others).
    for algorithm in sorted_names(&root.join("blobs"))? {
        let sub = root.join("blobs").join(&algorithm);
        dir(&mut tar, format!("blobs/{algorithm}/").as_bytes())?;
        for n in sorted_names(&sub)? {
            file(&mut tar, format!("blobs/{algorithm}/{n}").as_bytes(), &sub.join(&n))?;
        }
    }
    let out = tar.finish()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

fn sorted_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<_>>()?;
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_lengths_count_themselves() {
        for (key, len) in [("a", 1usize), ("path", 90), ("path", 91), ("path", 92), ("path", 993), ("path", 994)] {
            let mut out = Vec::new();
            pax_record(&mut out, key.as_bytes(), &vec![b'x'; len]);
            let text = String::from_utf8(out.clone()).unwrap();
            let (n, _) = text.split_once(' ').unwrap();
            assert_eq!(n.parse::<usize>().unwrap(), out.len(), "{text:?}");
        }
    }

    #[test]
    fn headers_read_back_with_the_tar_crate() {
        let long = "d/".repeat(80) + "file";
        let mut tar = TarWriter::new(Vec::new());
        let xattrs = vec![(b"user.note".to_vec(), b"hello".to_vec())];
        let h = Header {
            name: long.as_bytes(),
            typeflag: b'0',
            mode: 0o1755,
            mtime: 1_700_000_000,
            pax_mtime: None,
            size: 3,
            link: b"",
            owner_name: b"root",
            xattrs: &xattrs,
        };
        tar.entry(&h, Some(&mut &b"abc"[..])).unwrap();
        let newline = format!("{}\nx", "n".repeat(120));
        let h = Header { name: newline.as_bytes(), typeflag: b'5', size: 0, xattrs: &[], ..h };
        tar.entry(&h, None).unwrap();
        let bytes = tar.finish().unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut entries = archive.entries().unwrap();
        let mut e = entries.next().unwrap().unwrap();
        assert_eq!(e.path_bytes().as_ref(), long.as_bytes());
        assert_eq!(e.header().mode().unwrap(), 0o1755);
        assert_eq!(e.header().username().unwrap(), Some("root"));
        let pax: Vec<(String, Vec<u8>)> = e
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|r| r.unwrap())
            .map(|r| (r.key().unwrap().to_string(), r.value_bytes().to_vec()))
            .collect();
        assert!(pax.contains(&("SCHILY.xattr.user.note".into(), b"hello".to_vec())), "{pax:?}");
        let mut data = String::new();
        e.read_to_string(&mut data).unwrap();
        assert_eq!(data, "abc");
        let e = entries.next().unwrap().unwrap();
        assert_eq!(e.path_bytes().as_ref(), newline.as_bytes());
        assert!(entries.next().is_none());
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v: Value = serde_json::from_str(r#"{"b":1,"a":{"d":[1,"x"],"c":null}}"#).unwrap();
        assert_eq!(canonical_json(&v), br#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#);
    }
}
