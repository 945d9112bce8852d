//! One tar entry as the rules see it: PAX and GNU extensions applied, raw
//! bytes kept, and every field that could not be read recorded as a problem
//! instead of stopping the scan.

use std::io::Read;

use tar::EntryType;

use super::path::{Climbs, Normal};
use crate::limits::{Exceeded, Limits};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Hardlink,
    Symlink,
    Char,
    Block,
    Dir,
    Fifo,
    /// A PAX global header (`g`): not a file, but carried as an entry.
    Global,
    /// Any other typeflag, with its byte.
    Other(u8),
}

impl Kind {
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

    pub fn is_device(self) -> bool {
        matches!(self, Kind::Char | Kind::Block)
    }
}

/// A field that could not be read as the tar formats define it, or (when
/// `mismatch`) a PAX record that contradicts the header field it overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: &'static str,
    pub detail: String,
    pub mismatch: bool,
}

#[derive(Clone, Debug)]
pub struct Entry {
    /// The name as recorded (after PAX `path` / GNU long names).
    pub raw_path: Vec<u8>,
    pub path: Result<Normal, Climbs>,
    pub kind: Kind,
    /// Permission and set-ID bits (07777); 0 when unreadable.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// User and group names (PAX `uname`/`gname` override the header).
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub size: u64,
    /// Link target as recorded, for hard and symbolic links.
    pub link: Option<Vec<u8>>,
    /// Extended attribute names and values (`SCHILY.xattr.*`, `LIBARCHIVE.xattr.*`).
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// POSIX ACL records (`SCHILY.acl.*`), which name IDs.
    pub has_acl: bool,
    pub mtime: u64,
    pub problems: Vec<Problem>,
    /// The header's (user, group) names, when a PAX record replaced one.
    pub header_names: Option<(Vec<u8>, Vec<u8>)>,
    /// A PAX record could not be parsed; later records were not read.
    pub pax_unread: bool,
    /// The entry exceeds a path or PAX limit; consumers reject it.
    pub over_limit: Option<Exceeded>,
}

/// Upper bound for a PAX extended header kept in memory; real ones are a
/// few hundred bytes (larger ones carry big xattrs).
pub const PAX_LIMIT: usize = 1 << 20;

impl Entry {
    pub fn read<R: Read>(e: &mut tar::Entry<'_, R>, limits: &Limits) -> Entry {
        let mut problems = Vec::new();
        let h = e.header();
        let kind = match h.entry_type() {
            EntryType::Regular | EntryType::Continuous => Kind::File,
            EntryType::Link => Kind::Hardlink,
            EntryType::Symlink => Kind::Symlink,
            EntryType::Char => Kind::Char,
            EntryType::Block => Kind::Block,
            EntryType::Directory => Kind::Dir,
            EntryType::Fifo => Kind::Fifo,
            EntryType::XGlobalHeader => Kind::Global,
            other => Kind::Other(other.as_byte()),
        };
        let mut field = |name: &'static str, r: std::io::Result<u64>| {
            r.unwrap_or_else(|err| {
                problems.push(Problem { field: name, detail: err.to_string(), mismatch: false });
                0
            })
        };
        let mode = field("mode", h.mode().map(u64::from)) as u32 & 0o7777;
        let uid = field("uid", h.uid());
        let gid = field("gid", h.gid());
        let mtime = field("mtime", h.mtime());
        let header_size = field("size", h.entry_size());
        let size = e.size();
        let uname = h.username_bytes().unwrap_or_default().to_vec();
        let gname = h.groupname_bytes().unwrap_or_default().to_vec();
        let raw_path = e.path_bytes().into_owned();
        let link = e.link_name_bytes().map(|l| l.into_owned());
        let mut entry = Entry {
            path: Normal::parse(&raw_path),
            raw_path,
            kind,
            mode,
            uid,
            gid,
            uname,
            gname,
            size,
            link,
            xattrs: Vec::new(),
            has_acl: false,
            mtime,
            problems,
            header_names: None,
            pax_unread: false,
            over_limit: None,
        };
        if size != header_size && header_size != 0 {
            entry.problems.push(Problem {
                field: "size",
                detail: format!("PAX size {size} disagrees with the header's {header_size}"),
                mismatch: true,
            });
        }
        // A global header's body is its own PAX records: leave it unread
        // for the rules (`pax_extensions` would consume it).
        let from_pax = if kind != Kind::Global { entry.apply_pax(e, limits.max_pax_bytes) } else { Vec::new() };
        if let Err(over) = limits.check_path(&entry.raw_path, entry.link.as_deref()) {
            entry.over_limit.get_or_insert(over);
        }
        // The tar crate writes a PAX uid or gid into the header (as
        // base-256 when large), so only fields no PAX record set are raw.
        entry.negative_numbers(e.header(), &from_pax);
        entry
    }

    /// GNU base-256 fields whose sign bit is set: the tar crate reads them
    /// as huge positive numbers, so look at the raw bytes.
    fn negative_numbers(&mut self, h: &tar::Header, from_pax: &[&'static str]) {
        let raw = h.as_bytes();
        for (field, range) in [("uid", 108..116), ("gid", 116..124), ("size", 124..136), ("mtime", 136..148)] {
            if raw[range.start] == 0xff && !from_pax.contains(&field) {
                // Garbage, like any unreadable field: read as 0.
                match field {
                    "uid" => self.uid = 0,
                    "gid" => self.gid = 0,
                    _ => {}
                }
                self.problems.push(Problem {
                    field,
                    detail: format!("{field} is a negative base-256 number"),
                    mismatch: false,
                });
            }
        }
    }

    /// Reads what the tar crate leaves to its caller from the PAX records:
    /// names, xattrs, and the validity of the numbers it applied silently.
    /// Returns the numeric fields PAX records set.
    fn apply_pax<R: Read>(&mut self, e: &mut tar::Entry<'_, R>, max_value: usize) -> Vec<&'static str> {
        let mut set = Vec::new();
        let pax = match e.pax_extensions() {
            Ok(Some(p)) => p,
            Ok(None) => return set,
            Err(err) => {
                self.problems.push(Problem { field: "pax", detail: err.to_string(), mismatch: false });
                return set;
            }
        };
        for record in pax {
            let record = match record {
                Ok(r) => r,
                Err(_) => {
                    // The tar crate splits PAX headers at newlines, so a value
                    // holding one (a binary xattr) breaks its parse: a limit of
                    // this tool, not necessarily a fault of the image.
                    self.pax_unread = true;
                    break;
                }
            };
            let (key, value) = (record.key_bytes(), record.value_bytes());
            if value.len() > max_value {
                self.over_limit.get_or_insert(Exceeded {
                    what: format!("a PAX record of {} bytes, more than {max_value}", value.len()),
                    flag: "--max-pax-bytes",
                });
                continue;
            }
            match key {
                b"uname" | b"gname" => {
                    let (field, slot) =
                        if key == b"uname" { ("uname", &mut self.uname) } else { ("gname", &mut self.gname) };
                    if !slot.is_empty() && slot.as_slice() != value {
                        // Both names count for PRODUCER-NAMES; keep the header's.
                        let old = std::mem::replace(slot, value.to_vec());
                        let names = self.header_names.get_or_insert_with(|| (self.uname.clone(), self.gname.clone()));
                        if field == "uname" {
                            names.0 = old
                        } else {
                            names.1 = old
                        }
                        self.problems.push(Problem {
                            field,
                            detail: format!("PAX {field} {:?} disagrees with the header's", super::path::escape(value)),
                            mismatch: true,
                        });
                    } else {
                        *slot = value.to_vec();
                    }
                }
                b"uid" | b"gid" | b"size" => {
                    set.push(match key {
                        b"uid" => "uid",
                        b"gid" => "gid",
                        _ => "size",
                    });
                    // tar applies these only when they parse; say when not.
                    let text = std::str::from_utf8(value).unwrap_or("");
                    if text.parse::<u64>().is_err() {
                        let field = if key == b"uid" {
                            "uid"
                        } else if key == b"gid" {
                            "gid"
                        } else {
                            "size"
                        };
                        self.problems.push(Problem {
                            field,
                            detail: format!(
                                "PAX {field} {:?} is not a non-negative integer",
                                super::path::escape(value)
                            ),
                            mismatch: false,
                        });
                    }
                }
                b"mtime" => {
                    let text = std::str::from_utf8(value).unwrap_or("");
                    // Seconds, optionally fractional; as wide as a GNU
                    // base-256 header field can be, and possibly negative
                    // (before the epoch: the header's value is kept).
                    let whole = text.split('.').next().unwrap_or("");
                    match (whole.parse::<u64>(), whole.parse::<i64>()) {
                        (Ok(t), _) => self.mtime = t,
                        (_, Ok(_)) => {}
                        _ => self.problems.push(Problem {
                            field: "mtime",
                            detail: format!("PAX mtime {:?} is not a number", super::path::escape(value)),
                            mismatch: false,
                        }),
                    }
                }
                _ => {
                    if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                        self.xattrs.push((name.to_vec(), value.to_vec()));
                    } else if let Some(name) = key.strip_prefix(b"LIBARCHIVE.xattr.") {
                        // libarchive's own form: URL-encoded name, base64 value.
                        match (percent_decode(name), base64_decode(value)) {
                            (Some(n), Some(v)) => self.xattrs.push((n, v)),
                            _ => self.problems.push(Problem {
                                field: "xattr",
                                detail: format!(
                                    "LIBARCHIVE.xattr record {:?} is not URL/base64 encoded",
                                    super::path::escape(name)
                                ),
                                mismatch: false,
                            }),
                        }
                    } else if key.starts_with(b"SCHILY.acl.") {
                        self.has_acl = true;
                    }
                }
            }
        }
        set
    }

    pub fn display_path(&self) -> String {
        super::path::escape(&self.raw_path)
    }

    pub fn has_xattr(&self, name: &[u8]) -> bool {
        self.xattrs.iter().any(|(n, _)| n == name)
    }
}

/// `%XX` escapes as libarchive writes xattr names.
fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
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
fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
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
