//! Crafted tar streams: a layer is a list of entry specs turned into bytes.
//!
//! Names, link targets and user/group names are written into the header
//! byte for byte (the `tar` crate's setters refuse `..`, absolute names and
//! other things a hostile layer contains), every entry has a fixed mtime,
//! and an entry may carry PAX records, GNU magic, a size field that
//! disagrees with its data, or raw edits of its header bytes.

use tar::{EntryType, Header};

/// The fixed mtime of every entry.
pub const MTIME: u64 = 1_700_000_000;

/// Byte offsets of header fields (ustar and GNU agree on these).
pub mod field {
    pub const NAME: usize = 0;
    pub const MODE: usize = 100;
    pub const UID: usize = 108;
    pub const GID: usize = 116;
    pub const SIZE: usize = 124;
    pub const MTIME: usize = 136;
    pub const LINKNAME: usize = 157;
    pub const UNAME: usize = 265;
    pub const GNAME: usize = 297;
}

/// One tar entry as a test wants it.
#[derive(Clone, Debug)]
pub struct Spec {
    name: Vec<u8>,
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    uname: Vec<u8>,
    gname: Vec<u8>,
    link: Vec<u8>,
    data: Vec<u8>,
    device: (u32, u32),
    /// Records of a PAX extended header (`x`) written before the entry.
    pax: Vec<(String, Vec<u8>)>,
    gnu: bool,
    /// The header's size field, when it should not be the data length.
    size_field: Option<u64>,
    /// Raw header edits, made just before the checksum is computed.
    patches: Vec<(usize, Vec<u8>)>,
}

fn spec(name: &[u8], typeflag: u8, mode: u32) -> Spec {
    Spec {
        name: name.to_vec(),
        typeflag,
        mode,
        uid: 0,
        gid: 0,
        uname: Vec::new(),
        gname: Vec::new(),
        link: Vec::new(),
        data: Vec::new(),
        device: (0, 0),
        pax: Vec::new(),
        gnu: false,
        size_field: None,
        patches: Vec::new(),
    }
}

pub fn file(name: impl AsRef<[u8]>, data: &[u8]) -> Spec {
    Spec { data: data.to_vec(), ..spec(name.as_ref(), b'0', 0o644) }
}

pub fn dir(name: impl AsRef<[u8]>) -> Spec {
    spec(name.as_ref(), b'5', 0o755)
}

pub fn symlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Spec {
    Spec { link: target.as_ref().to_vec(), ..spec(name.as_ref(), b'2', 0o777) }
}

pub fn hardlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Spec {
    Spec { link: target.as_ref().to_vec(), ..spec(name.as_ref(), b'1', 0o644) }
}

pub fn char_device(name: impl AsRef<[u8]>, major: u32, minor: u32) -> Spec {
    Spec { device: (major, minor), ..spec(name.as_ref(), b'3', 0o666) }
}

pub fn block_device(name: impl AsRef<[u8]>, major: u32, minor: u32) -> Spec {
    Spec { device: (major, minor), ..spec(name.as_ref(), b'4', 0o660) }
}

pub fn fifo(name: impl AsRef<[u8]>) -> Spec {
    spec(name.as_ref(), b'6', 0o644)
}

/// An entry with any typeflag, for types no reader knows.
pub fn typed(name: impl AsRef<[u8]>, typeflag: u8) -> Spec {
    spec(name.as_ref(), typeflag, 0o644)
}

/// A PAX global extended header (`g`) holding `records`.
pub fn global(records: &[(&str, &[u8])]) -> Spec {
    let owned: Vec<(String, Vec<u8>)> = records.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect();
    Spec { data: pax_records(&owned), ..spec(b"pax_global_header", b'g', 0o644) }
}

impl Spec {
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// User and group names in the header.
    pub fn names(mut self, uname: &str, gname: &str) -> Self {
        self.uname = uname.as_bytes().to_vec();
        self.gname = gname.as_bytes().to_vec();
        self
    }

    /// Adds a record to the PAX extended header written before the entry.
    pub fn pax(mut self, key: &str, value: impl AsRef<[u8]>) -> Self {
        self.pax.push((key.to_string(), value.as_ref().to_vec()));
        self
    }

    /// A GNU header (`ustar  ` magic) instead of POSIX ustar.
    pub fn gnu(mut self) -> Self {
        self.gnu = true;
        self
    }

    /// Writes `size` in the header's size field, whatever the data length.
    pub fn size_field(mut self, size: u64) -> Self {
        self.size_field = Some(size);
        self
    }

    /// Overwrites header bytes at `offset` (see [`field`]) before the
    /// checksum is computed.
    pub fn patch(mut self, offset: usize, bytes: &[u8]) -> Self {
        self.patches.push((offset, bytes.to_vec()));
        self
    }

    fn header(&self) -> Header {
        let mut h = if self.gnu { Header::new_gnu() } else { Header::new_ustar() };
        h.set_entry_type(EntryType::new(self.typeflag));
        h.set_mode(self.mode);
        h.set_uid(self.uid);
        h.set_gid(self.gid);
        h.set_mtime(MTIME);
        h.set_size(self.size_field.unwrap_or(self.data.len() as u64));
        if matches!(self.typeflag, b'3' | b'4') {
            h.set_device_major(self.device.0).unwrap();
            h.set_device_minor(self.device.1).unwrap();
        }
        let bytes = h.as_mut_bytes();
        put(bytes, field::NAME, 100, &self.name);
        put(bytes, field::LINKNAME, 100, &self.link);
        put(bytes, field::UNAME, 32, &self.uname);
        put(bytes, field::GNAME, 32, &self.gname);
        for (offset, patch) in &self.patches {
            bytes[*offset..offset + patch.len()].copy_from_slice(patch);
        }
        h.set_cksum();
        h
    }
}

/// Writes `value` into the `len`-byte field at `offset`, NUL-padded.
fn put(header: &mut [u8; 512], offset: usize, len: usize, value: &[u8]) {
    assert!(value.len() <= len, "{:?} does not fit a {len}-byte field; use a PAX record", value);
    header[offset..offset + len].fill(0);
    header[offset..offset + value.len()].copy_from_slice(value);
}

/// The body of a PAX extended header: `LEN KEY=VALUE\n` records, where LEN
/// counts the whole record including its own digits.
pub fn pax_records(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let base = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = base + 1;
        while len != base + len.to_string().len() {
            len = base + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// A GNU base-256 numeric field of `len` bytes holding `value` (two's
/// complement, so negative values can be written too).
pub fn base256(value: i64, len: usize) -> Vec<u8> {
    let fill = if value < 0 { 0xff } else { 0 };
    let mut out = vec![fill; len];
    for (i, b) in value.to_be_bytes().iter().enumerate() {
        out[len - 8 + i] = *b;
    }
    out[0] |= 0x80;
    out
}

fn write(specs: &[Spec]) -> tar::Builder<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for s in specs {
        if !s.pax.is_empty() {
            let body = pax_records(&s.pax);
            let mut x = Spec { data: body, ..spec(b"PaxHeaders/entry", b'x', 0o644) };
            x.gnu = s.gnu;
            b.append(&x.header(), &x.data[..]).unwrap();
        }
        b.append(&s.header(), &s.data[..]).unwrap();
    }
    b
}

/// A complete tar stream of `specs`, ending with the two zero blocks.
pub fn layer(specs: &[Spec]) -> Vec<u8> {
    write(specs).into_inner().unwrap()
}

/// The same stream without the end-of-archive blocks.
pub fn layer_without_end(specs: &[Spec]) -> Vec<u8> {
    write(specs).get_ref().clone()
}
