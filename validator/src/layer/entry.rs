//! One tar entry as the rules see it: PAX and GNU extensions applied, raw
//! bytes kept, and every field that could not be read recorded as a problem
//! instead of stopping the scan.

use super::path::{Climbs, Normal};
use crate::limits::Exceeded;

/// The type of a tar entry, from its typeflag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file (`0`, the old-style NUL, contiguous `7`, GNU sparse `S`).
    File,
    /// A hard link (`1`) to an earlier entry.
    Hardlink,
    /// A symbolic link (`2`).
    Symlink,
    /// A character device (`3`).
    Char,
    /// A block device (`4`).
    Block,
    /// A directory (`5`, or an old-style file whose name ends in `/`).
    Dir,
    /// A FIFO (`6`).
    Fifo,
    /// A PAX global header (`g`): not a file, but carried as an entry.
    Global,
    /// Any other typeflag, with its byte.
    Other(u8),
}

impl Kind {
    /// The type in words, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::File => "regular file",
            Kind::Hardlink => "hard link",
            Kind::Symlink => "symbolic link",
            Kind::Char => "character device",
            Kind::Block => "block device",
            Kind::Dir => "directory",
            Kind::Fifo => "FIFO",
            Kind::Global => "PAX global header",
            Kind::Other(_) => "entry of unknown type",
        }
    }

    /// A character or block device.
    pub fn is_device(self) -> bool {
        matches!(self, Kind::Char | Kind::Block)
    }
}

/// How a field or header departs from what every tar reader agrees on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The field cannot be read as the tar formats define it
    /// (OCI-LAYER-READABLE).
    Unreadable,
    /// A PAX record contradicts the header field it overrides; readers
    /// agree on the PAX value (PRODUCER-PAX-CONSISTENT).
    Mismatch,
    /// Major readers (GNU tar, bsdtar, Go's archive/tar) read the name,
    /// link target, type or size differently, or lose step in the stream
    /// (PRODUCER-UNAMBIGUOUS): no one reading can be applied.
    Ambiguous,
    /// Major readers read the owner (IDs or names) differently
    /// (PRODUCER-UNAMBIGUOUS): a single-ID consumer, which gives every
    /// entry the invoking user, and flatten, which gives every entry 0:0,
    /// can still apply the entry.
    AmbiguousOwner,
}

impl Fault {
    /// Readers disagree about the entry in some way.
    pub fn is_ambiguous(self) -> bool {
        matches!(self, Fault::Ambiguous | Fault::AmbiguousOwner)
    }
}

/// One fault of an entry, with the field it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The header field or record concerned (`path`, `uid`, `pax`, ...).
    pub field: &'static str,
    /// What is wrong, and what readers make of it.
    pub detail: String,
    /// What kind of departure this is.
    pub fault: Fault,
}

/// One tar entry as the major readers read it, with every way they
/// disagree about it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The name as recorded (after PAX `path`, GNU long names and
    /// `GNU.sparse.name`).
    pub raw_path: Vec<u8>,
    /// The normalised name, or `Climbs` when `..` leads above the root.
    pub path: Result<Normal, Climbs>,
    /// The entry's type.
    pub kind: Kind,
    /// Permission and set-ID bits (07777); 0 when unreadable.
    pub mode: u32,
    /// The owner's UID (a PAX `uid` overrides the header).
    pub uid: u64,
    /// The owner's GID (a PAX `gid` overrides the header).
    pub gid: u64,
    /// User and group names (PAX `uname`/`gname` override the header).
    pub uname: Vec<u8>,
    /// The group name (see `uname`).
    pub gname: Vec<u8>,
    /// Bytes the entry's data reader yields: the file's content (for a
    /// sparse file, expanded to its real size).
    pub size: u64,
    /// Link target as recorded, for hard and symbolic links.
    pub link: Option<Vec<u8>>,
    /// Extended attribute names and values (`SCHILY.xattr.*`, `LIBARCHIVE.xattr.*`).
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// POSIX ACL records (`SCHILY.acl.*`), which name IDs.
    pub has_acl: bool,
    /// Whole seconds (a PAX `mtime` before the epoch keeps the header's).
    pub mtime: u64,
    /// The PAX `mtime` record as written, when there is one (it may hold
    /// a fraction that a rewrite must keep byte for byte).
    pub pax_mtime: Option<Box<[u8]>>,
    /// The entry was stored sparse (GNU `S`, or PAX `GNU.sparse.*`); its
    /// data reader expands it (CONSUMER-SPARSE).
    pub sparse: bool,
    /// Every way the entry departs from what all readers agree on.
    pub problems: Vec<Problem>,
    /// The header's (user, group) names, when a PAX record replaced one.
    pub header_names: Option<(Vec<u8>, Vec<u8>)>,
    /// The entry exceeds a path or PAX limit; consumers reject it.
    pub over_limit: Option<Exceeded>,
    /// The entry cannot be applied as recorded (a malformed sparse map);
    /// consumers reject it.
    pub malformed: Option<String>,
}

impl Entry {
    /// The recorded name, escaped for a report.
    pub fn display_path(&self) -> String {
        super::path::escape(&self.raw_path)
    }

    /// Whether the entry carries the extended attribute `name`.
    pub fn has_xattr(&self, name: &[u8]) -> bool {
        self.xattrs.iter().any(|(n, _)| n == name)
    }

    /// Readers disagree about this entry in a way no consumer can apply
    /// (anything but its owner).
    pub fn unappliable(&self) -> Option<&Problem> {
        self.problems.iter().find(|p| p.fault == Fault::Ambiguous)
    }
}

/// `%XX` escapes as libarchive writes xattr names.
pub(super) fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = std::str::from_utf8(s.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Standard base64, padding optional, as libarchive writes xattr values.
pub(super) fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let s = s.strip_suffix(b"==").or_else(|| s.strip_suffix(b"=")).unwrap_or(s);
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in s {
        acc = (acc << 6) | u32::from(value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libarchive_encodings() {
        assert_eq!(percent_decode(b"user.a%3Db").unwrap(), b"user.a=b");
        assert_eq!(percent_decode(b"bad%zz"), None);
        assert_eq!(base64_decode(b"aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode(b"AQAAAg").unwrap(), [1, 0, 0, 2]);
        assert_eq!(base64_decode(b"not base64!"), None);
    }
}
