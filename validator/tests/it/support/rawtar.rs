//! Tar streams block by block, for what the entry specs of `layers.rs`
//! cannot say: GNU long-name and long-link headers (`L`, `K`), extended
//! headers in any order or number, headers without magic, GNU sparse (`S`)
//! headers with their map, and PAX records with any bytes in key or value.
//! Every header gets a correct checksum unless a test breaks it afterwards.

use super::layers::{MTIME, pax_records};

pub const BLOCK: usize = 512;

/// Magic and version of a POSIX ustar header.
pub const USTAR: &[u8; 8] = b"ustar\x0000";
/// Magic and version of a GNU header.
pub const GNU: &[u8; 8] = b"ustar  \0";

/// One 512-byte header being built.
#[derive(Clone)]
pub struct Header(pub [u8; BLOCK]);

/// A numeric field of `len` bytes: octal digits and a NUL, or, for a value
/// too large for them, GNU base-256 (as GNU tar writes sizes past 8 GiB).
fn octal(value: u64, len: usize) -> Vec<u8> {
    let mut s = format!("{value:0width$o}", width = len - 1).into_bytes();
    if s.len() >= len {
        return super::layers::base256(value as i64, len);
    }
    s.push(0);
    s
}

/// A ustar header: mode 0644, owner 0:0, the fixed mtime, the size field
/// `size` (whatever data follows).
pub fn header(name: &[u8], typeflag: u8, size: u64) -> Header {
    let mut h = Header([0; BLOCK]);
    h.set(0, name);
    h.set(100, &octal(0o644, 8));
    h.set(108, &octal(0, 8));
    h.set(116, &octal(0, 8));
    h.set(124, &octal(size, 12));
    h.set(136, &octal(MTIME, 12));
    h.0[156] = typeflag;
    h.set(257, USTAR);
    h
}

impl Header {
    /// Writes `bytes` at `offset`.
    pub fn set(&mut self, offset: usize, bytes: &[u8]) -> &mut Self {
        self.0[offset..offset + bytes.len()].copy_from_slice(bytes);
        self
    }

    pub fn link(mut self, target: &[u8]) -> Self {
        self.0[157..257].fill(0);
        self.set(157, target);
        self
    }

    pub fn magic(mut self, magic: &[u8; 8]) -> Self {
        self.set(257, magic);
        self
    }

    pub fn mode(mut self, mode: u32) -> Self {
        self.set(100, &octal(u64::from(mode), 8));
        self
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> Self {
        self.set(108, &octal(uid, 8));
        self.set(116, &octal(gid, 8));
        self
    }

    pub fn names(mut self, uname: &[u8], gname: &[u8]) -> Self {
        self.0[265..329].fill(0);
        self.set(265, uname);
        self.set(297, gname);
        self
    }

    pub fn device(mut self, major: u64, minor: u64) -> Self {
        self.set(329, &octal(major, 8));
        self.set(337, &octal(minor, 8));
        self
    }

    /// The header with its checksum computed.
    pub fn bytes(&self) -> [u8; BLOCK] {
        let mut h = self.0;
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }
}

/// `data` padded with zeros to whole blocks.
pub fn padded(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

/// A header and `data` after it (padded), whatever its size field says.
pub fn entry(h: &Header, data: &[u8]) -> Vec<u8> {
    let mut out = h.bytes().to_vec();
    out.extend_from_slice(&padded(data));
    out
}

/// A regular file holding `data`.
pub fn file(name: &[u8], data: &[u8]) -> Vec<u8> {
    entry(&header(name, b'0', data.len() as u64), data)
}

/// An extended header of type `typeflag` (`x` or `g`) holding `records`,
/// written byte for byte (a key may hold `=` or NUL).
pub fn pax(typeflag: u8, records: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (key, value) in records {
        let base = key.len() + value.len() + 3;
        let mut len = base + 1;
        while len != base + len.to_string().len() {
            len = base + len.to_string().len();
        }
        body.extend_from_slice(format!("{len} ").as_bytes());
        body.extend_from_slice(key);
        body.push(b'=');
        body.extend_from_slice(value);
        body.push(b'\n');
    }
    entry(&header(b"PaxHeaders/entry", typeflag, body.len() as u64), &body)
}

/// A PAX extended header from `(String, bytes)` records, as `layers.rs`
/// writes them.
pub fn pax_owned(typeflag: u8, records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let body = pax_records(records);
    entry(&header(b"PaxHeaders/entry", typeflag, body.len() as u64), &body)
}

/// A GNU long-name (`L`) or long-link (`K`) header holding `text` (NUL
/// added), as GNU tar writes it.
pub fn long(typeflag: u8, text: &[u8]) -> Vec<u8> {
    let mut body = text.to_vec();
    body.push(0);
    entry(&header(b"././@LongLink", typeflag, body.len() as u64).magic(GNU), &body)
}

/// A GNU sparse file (`S`): `map` (offset, length) in the header's four
/// slots and extension blocks after it, `real` the real size, then the
/// stored data (`stored`, whose length is the size field).
pub fn gnu_sparse(name: &[u8], map: &[(u64, u64)], real: u64, stored: &[u8]) -> Vec<u8> {
    let mut h = header(name, b'S', stored.len() as u64).magic(GNU);
    let slot = |(offset, len): (u64, u64)| [octal(offset, 12), octal(len, 12)].concat();
    for (i, s) in map.iter().take(4).enumerate() {
        h.set(386 + 24 * i, &slot(*s));
    }
    h.set(483, &octal(real, 12));
    let rest: Vec<&[(u64, u64)]> = map.get(4..).unwrap_or(&[]).chunks(21).collect();
    if !rest.is_empty() {
        h.0[482] = 1;
    }
    let mut out = h.bytes().to_vec();
    for (i, chunk) in rest.iter().enumerate() {
        let mut ext = [0u8; BLOCK];
        for (j, s) in chunk.iter().enumerate() {
            ext[24 * j..24 * j + 24].copy_from_slice(&slot(*s));
        }
        ext[504] = u8::from(i + 1 < rest.len());
        out.extend_from_slice(&ext);
    }
    out.extend_from_slice(&padded(stored));
    out
}

/// The two zero blocks that end an archive.
pub fn end() -> Vec<u8> {
    vec![0; 2 * BLOCK]
}
