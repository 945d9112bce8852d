//! Tar encoding for the output: headers and PAX records written by hand,
//! so that the bytes depend on nothing but the entries (owners always
//! 0:0).

use std::io::{self, Read, Write};

/// Largest number an 11-digit octal header field holds; beyond it the value
/// goes into a PAX record and the field holds 0.
const MAX_OCTAL_11: u64 = 0o77777777777;

/// The tar block: headers are one, data is padded to whole ones.
const BLOCK: usize = 512;

/// One tar entry to write. Owners are always 0:0.
pub(super) struct Header<'a> {
    pub(super) name: &'a [u8],
    pub(super) typeflag: u8,
    pub(super) mode: u32,
    /// Whole seconds.
    pub(super) mtime: u64,
    /// The input's PAX `mtime` record, written back byte for byte when it
    /// says more than the header can (a fraction, a time before the epoch).
    pub(super) pax_mtime: Option<&'a [u8]>,
    pub(super) size: u64,
    pub(super) link: &'a [u8],
    /// User and group name.
    pub(super) owner_name: &'a [u8],
    /// Extended attributes, as `SCHILY.xattr.NAME` PAX records.
    pub(super) xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

/// A tar stream in POSIX ustar format with PAX extended headers where a
/// field does not fit (names and link targets over 100 bytes, sizes and
/// mtimes over 11 octal digits, xattrs). A long name holding a newline
/// goes into a GNU long-name entry instead, because some PAX readers split
/// records at newlines.
pub(super) struct TarWriter<W: Write> {
    inner: W,
}

impl<W: Write> TarWriter<W> {
    /// A tar stream written to `inner`.
    pub(super) fn new(inner: W) -> Self {
        TarWriter { inner }
    }

    /// Writes `h`, then `size` bytes of `data` (files only) and padding.
    pub(super) fn entry(&mut self, h: &Header<'_>, data: Option<&mut dyn Read>) -> io::Result<()> {
        let x = Extended::of(h);
        for (typeflag, value) in [(b'L', x.long_name), (b'K', x.long_link)] {
            if let Some(value) = value {
                let mut body = value.to_vec();
                body.push(0);
                let block = raw_header(b"././@LongLink", typeflag, 0o644, body.len() as u64, 0, b"", b"", true);
                self.inner.write_all(&block)?;
                self.write_padded(&body)?;
            }
        }
        if !x.pax.is_empty() {
            let block = raw_header(&pax_name(h.name), b'x', 0o644, x.pax.len() as u64, 0, b"", b"", false);
            self.inner.write_all(&block)?;
            self.write_padded(&x.pax)?;
        }
        let block = raw_header(h.name, h.typeflag, h.mode, x.size_field, x.mtime_field, h.link, h.owner_name, false);
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

    /// Writes `bytes`, padded to a whole block.
    fn write_padded(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.pad(bytes.len() as u64)
    }

    /// Pads `len` bytes written to a whole block.
    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rest = (BLOCK - (len % BLOCK as u64) as usize) % BLOCK;
        self.inner.write_all(&[0u8; BLOCK][..rest])
    }

    /// Writes the end-of-archive marker (two zero blocks).
    pub(super) fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(&[0u8; 2 * BLOCK])?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// What of a header does not fit its ustar fields, and what the fields
/// then hold.
struct Extended<'a> {
    /// PAX records: long names and link targets, a size or mtime past the
    /// octal fields, an exact mtime, the xattrs.
    pax: Vec<u8>,
    /// A long name holding a newline, for a GNU long-name entry.
    long_name: Option<&'a [u8]>,
    /// A long link target holding a newline, for a GNU long-link entry.
    long_link: Option<&'a [u8]>,
    size_field: u64,
    mtime_field: u64,
}

impl<'a> Extended<'a> {
    /// What of `h` goes beyond the ustar fields.
    fn of(h: &Header<'a>) -> Self {
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
        Extended { pax, long_name, long_link, size_field, mtime_field }
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
pub(crate) fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
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

/// The number of decimal digits of `n`.
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
}
