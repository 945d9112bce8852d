//! `conformance/cases/<case>.json`: the declarative description of one
//! fixture (schema/conformance-case.schema.json, documented in
//! `conformance/cases/README.md`). A case names the annotation values, the
//! layers entry by entry, and the expectation; `generate` turns it into an
//! OCI image layout and an `expected.json`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::expect::{Absent, Allowances, Kind, Outcome, Requirement};

/// Entries record this modification time unless they say otherwise
/// (2023-11-14T22:13:20Z), so that every fixture is reproducible.
pub const DEFAULT_MTIME: u64 = 1_700_000_000;

/// Prefix of a content, xattr or PAX value given in base64 instead of text.
pub const BASE64_PREFIX: &str = "base64:";

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Case {
    pub description: String,
    /// Where the image records the id-flattening annotation, and under
    /// which key.
    #[serde(default)]
    pub annotation: Annotation,
    /// The image's layers, lowest first.
    pub layers: Vec<Layer>,
    /// Copied to `expected.json` as they are.
    pub requirements: Vec<Requirement>,
    pub outcome: Outcome,
    /// Copied to `expected.json`: the requirements whose features the
    /// image needs before its other requirements can be checked.
    #[serde(default)]
    pub needs: Vec<String>,
    /// Copied to `expected.json`: paths another requirement makes absent,
    /// which this case's checks take for granted.
    #[serde(default)]
    pub assumes: Vec<crate::expect::Assumption>,
    #[serde(default)]
    pub allowances: Allowances,
    #[serde(default)]
    pub present: Vec<Present>,
    #[serde(default)]
    pub absent: Vec<Absent>,
}

/// The annotation's value in each place; an absent member means the place
/// does not carry the key.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Annotation {
    /// The key to write instead of the provisional key
    /// `io.github.supercontainers.id-flattening` (ANNOTATION-KEY: a near
    /// miss is another annotation).
    pub key: Option<String>,
    /// The image manifest's `annotations`.
    pub manifest: Option<String>,
    /// The image configuration's `config.Labels`.
    pub label: Option<String>,
    /// The `annotations` of the manifest's descriptor in `index.json`.
    pub index: Option<String>,
    /// Values recorded under the reserved key
    /// `org.opencontainers.image.id-flattening`, beside or instead of the
    /// provisional key (consumers read both: ANNOTATION-KEY,
    /// ANNOTATION-CONFLICT-CAUTIOUS).
    #[serde(default)]
    pub reserved: Places,
}

/// A value per place, for the reserved key.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Places {
    pub manifest: Option<String>,
    pub label: Option<String>,
    pub index: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl Compression {
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Layer {
    pub compression: Compression,
    pub entries: Vec<Entry>,
    /// Keep only this many bytes of the compressed blob: a layer that
    /// breaks off in the middle (CONSUMER-INCOMPLETE). The descriptor
    /// describes the cut blob; the diff ID stays that of the whole tar.
    #[serde(default)]
    pub truncate: Option<u64>,
}

/// One tar entry. Every field but `path` has a default.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    /// Written to the header as given: `..`, a leading `/`, `.wh.` names.
    pub path: String,
    #[serde(rename = "type", default)]
    pub kind: EntryType,
    /// Octal, with set-ID and sticky bits (`"4755"`); by default 0755 for
    /// directories, 0777 for symbolic links, 0644 for everything else.
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub uid: u64,
    #[serde(default)]
    pub gid: u64,
    #[serde(default)]
    pub uname: String,
    #[serde(default)]
    pub gname: String,
    /// Seconds; [`DEFAULT_MTIME`] when absent.
    #[serde(default)]
    pub mtime: Option<u64>,
    /// The entry's data: text, or `base64:` and the bytes in base64.
    #[serde(default)]
    pub content: Option<String>,
    /// Target of a symbolic link or hard link, written as given.
    #[serde(default)]
    pub link: Option<String>,
    /// Device numbers of a `char` or `block` entry.
    #[serde(default)]
    pub major: u32,
    #[serde(default)]
    pub minor: u32,
    /// Extended attributes, written as PAX `SCHILY.xattr.NAME` records.
    #[serde(default)]
    pub xattrs: BTreeMap<String, String>,
    /// Further PAX records written as they are (e.g. `SCHILY.acl.access`).
    #[serde(default)]
    pub pax: BTreeMap<String, String>,
    /// The sparse format, map and real size of a `sparse` entry (required
    /// for that type, not allowed for others).
    #[serde(default)]
    pub sparse: Option<Sparse>,
}

/// How a `sparse` entry is written: one of GNU tar's sparse formats
/// (<https://www.gnu.org/software/tar/manual/html_node/Sparse-Formats.html>).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sparse {
    pub format: SparseFormat,
    /// `[offset, length]` of each stored region, in the order written;
    /// GNU tar ends the map with `[realSize, 0]` when the file ends in a
    /// hole, and so may a case.
    pub map: Vec<[u64; 2]>,
    /// The size of the file the entry expands to.
    pub real_size: u64,
    /// For `pax-0.1` and `pax-1.0`: the name written to the ustar header
    /// instead of `path` (which goes into `GNU.sparse.name`); by default
    /// `DIR/GNUSparseFile.0/BASE`, what GNU tar writes with a process ID
    /// of 0.
    #[serde(default)]
    pub placeholder: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum SparseFormat {
    /// Old GNU format: typeflag `S`, the map in the header (and extension
    /// blocks after it), the real size in the header.
    #[serde(rename = "gnu")]
    Gnu,
    /// PAX 0.0: `GNU.sparse.size`, `GNU.sparse.numblocks` and repeated
    /// `GNU.sparse.offset` / `GNU.sparse.numbytes` records; the header
    /// keeps the real name.
    #[serde(rename = "pax-0.0")]
    Pax00,
    /// PAX 0.1: `GNU.sparse.size`, `GNU.sparse.numblocks`,
    /// `GNU.sparse.name` and `GNU.sparse.map` records; a placeholder name.
    #[serde(rename = "pax-0.1")]
    Pax01,
    /// PAX 1.0: `GNU.sparse.major=1`, `GNU.sparse.minor=0`,
    /// `GNU.sparse.name` and `GNU.sparse.realsize` records, a placeholder
    /// name, and the map in decimal lines at the start of the data, padded
    /// to a 512-byte block.
    #[serde(rename = "pax-1.0")]
    Pax10,
}

impl Entry {
    /// The bytes the entry stores after its header (for a sparse entry,
    /// the stored regions, without a PAX 1.0 map): `content`, or for a
    /// sparse entry without `content` the [`sparse_pattern`] at each
    /// region.
    pub fn stored_data(&self) -> Result<Vec<u8>, String> {
        match (&self.content, &self.sparse) {
            (Some(c), _) => decode_value(c),
            (None, Some(s)) => Ok(s.map.iter().flat_map(|[off, len]| sparse_pattern(*off, *len)).collect()),
            (None, None) => Ok(Vec::new()),
        }
    }

    /// What the entry unpacks to: its content, or a sparse entry's data
    /// expanded to its real size with zeros in the holes. Errors on a map
    /// that is unsorted, overlapping or reaches past the real size.
    pub fn expanded(&self) -> Result<Vec<u8>, String> {
        let data = self.stored_data()?;
        let Some(s) = &self.sparse else { return Ok(data) };
        let size = usize::try_from(s.real_size).map_err(|_| "realSize too large".to_string())?;
        let mut out = vec![0u8; size];
        let (mut at, mut end) = (0usize, 0u64);
        for [off, len] in &s.map {
            if *off < end || off.checked_add(*len).is_none_or(|e| e > s.real_size) {
                return Err(format!("sparse map entry [{off}, {len}] overlaps, is out of order or passes realSize"));
            }
            let (o, l) = (*off as usize, *len as usize);
            let chunk = data.get(at..at + l).ok_or("the content is shorter than the map's regions")?;
            out[o..o + l].copy_from_slice(chunk);
            at += l;
            end = off + len;
        }
        Ok(out)
    }
}

/// The data stored for a sparse region `[offset, offset + length)` when a
/// case gives no content: 16-byte lines `offset XXXXXXXX\n` naming the
/// offset (hexadecimal) at which each line starts in the expanded file,
/// cut to the region, so that a region applied at the wrong offset shows.
pub fn sparse_pattern(offset: u64, length: u64) -> Vec<u8> {
    (offset..offset + length)
        .map(|i| {
            let line = format!("offset {:08x}\n", i - i % 16);
            line.as_bytes()[(i % 16) as usize]
        })
        .collect()
}

/// The entry's typeflag: a name, or any other single character written
/// as the raw typeflag byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EntryType {
    #[default]
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
    /// A sparse regular file, written in the format its `sparse` member
    /// gives.
    Sparse,
    Raw(u8),
}

impl EntryType {
    pub fn typeflag(self) -> u8 {
        match self {
            EntryType::File => b'0',
            EntryType::Hardlink => b'1',
            EntryType::Symlink => b'2',
            EntryType::Char => b'3',
            EntryType::Block => b'4',
            EntryType::Dir => b'5',
            EntryType::Fifo => b'6',
            // PAX sparse formats use a regular file's typeflag; the old
            // GNU format writes `S` itself.
            EntryType::Sparse => b'0',
            EntryType::Raw(b) => b,
        }
    }

    pub fn default_mode(self) -> u32 {
        match self {
            EntryType::Dir => 0o755,
            EntryType::Symlink => 0o777,
            _ => 0o644,
        }
    }
}

impl<'de> Deserialize<'de> for EntryType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "file" => EntryType::File,
            "dir" => EntryType::Dir,
            "symlink" => EntryType::Symlink,
            "hardlink" => EntryType::Hardlink,
            "char" => EntryType::Char,
            "block" => EntryType::Block,
            "fifo" => EntryType::Fifo,
            "sparse" => EntryType::Sparse,
            raw if raw.len() == 1 && raw.as_bytes()[0].is_ascii_graphic() => EntryType::Raw(raw.as_bytes()[0]),
            other => {
                return Err(de::Error::custom(format!(
                    "unknown entry type {other:?}: expected file, dir, symlink, hardlink, char, block, fifo, sparse or one printable character (a raw typeflag)"
                )));
            }
        })
    }
}

impl fmt::Display for EntryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryType::File => f.write_str("file"),
            EntryType::Dir => f.write_str("dir"),
            EntryType::Symlink => f.write_str("symlink"),
            EntryType::Hardlink => f.write_str("hardlink"),
            EntryType::Char => f.write_str("char"),
            EntryType::Block => f.write_str("block"),
            EntryType::Fifo => f.write_str("fifo"),
            EntryType::Sparse => f.write_str("sparse"),
            EntryType::Raw(b) => write!(f, "typeflag {:?}", *b as char),
        }
    }
}

/// A path that must exist after the unpack: [`crate::expect::Present`]
/// with `content` in place of `sha256`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Present {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    #[serde(default)]
    pub mode: Option<String>,
    /// The file's expected content (text, or `base64:`); the generator
    /// writes its digest as `sha256`.
    #[serde(default)]
    pub content: Option<String>,
    /// Instead of `content`: the file's expected content is what the last
    /// entry of the case's layers with this name unpacks to (a sparse
    /// entry expanded to its real size), which may be too long to write.
    #[serde(default)]
    pub content_of: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub hardlink_group: Option<String>,
    #[serde(default)]
    pub mtime: Option<u64>,
    #[serde(default)]
    pub xattrs: BTreeMap<String, String>,
    #[serde(default)]
    pub xattrs_absent: Vec<String>,
    pub requirements: Vec<String>,
}

/// Text as UTF-8, or `base64:` followed by standard base64 (padding
/// optional, no line breaks).
pub fn decode_value(value: &str) -> Result<Vec<u8>, String> {
    match value.strip_prefix(BASE64_PREFIX) {
        Some(b64) => base64_decode(b64),
        None => Ok(value.as_bytes().to_vec()),
    }
}

fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.trim_end_matches('=');
    if text.len() - digits.len() > 2 || digits.len() % 4 == 1 {
        return Err(format!("not base64: {text:?} has the wrong length"));
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in digits.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("not base64: {:?} in {text:?}", c as char)),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if acc != 0 {
        return Err(format!("not base64: {text:?} has stray bits at the end"));
    }
    Ok(out)
}

/// An octal mode string (`"0755"`, `"4755"`, `"755"`) as a number.
pub fn parse_mode(mode: &str) -> Result<u32, String> {
    if mode.is_empty() || mode.len() > 4 || !mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!("mode {mode:?} is not an octal number of at most four digits"));
    }
    u32::from_str_radix(mode, 8).map_err(|e| format!("mode {mode:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_known_values() {
        assert_eq!(decode_value("base64:").unwrap(), b"");
        assert_eq!(decode_value("base64:Zg==").unwrap(), b"f");
        assert_eq!(decode_value("base64:Zm8=").unwrap(), b"fo");
        assert_eq!(decode_value("base64:Zm9v").unwrap(), b"foo");
        assert_eq!(decode_value("base64:Zm9vYg").unwrap(), b"foob");
        assert_eq!(decode_value("base64:AAECA/7/").unwrap(), [0, 1, 2, 3, 254, 255]);
        assert_eq!(decode_value("plain text").unwrap(), b"plain text");
        assert!(decode_value("base64:Zm9v!").is_err());
        assert!(decode_value("base64:Z").is_err());
        assert!(decode_value("base64:Zh==").is_err());
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("0755").unwrap(), 0o755);
        assert_eq!(parse_mode("4755").unwrap(), 0o4755);
        assert!(parse_mode("0855").is_err());
        assert!(parse_mode("10755").is_err());
        assert!(parse_mode("").is_err());
    }

    #[test]
    fn entry_types_parse() {
        let t: EntryType = serde_json::from_str("\"hardlink\"").unwrap();
        assert_eq!(t, EntryType::Hardlink);
        let t: EntryType = serde_json::from_str("\"Z\"").unwrap();
        assert_eq!(t.typeflag(), b'Z');
        assert!(serde_json::from_str::<EntryType>("\"socket\"").is_err());
        let t: EntryType = serde_json::from_str("\"sparse\"").unwrap();
        assert_eq!(t, EntryType::Sparse);
    }

    #[test]
    fn sparse_entries_expand_with_zeros_in_the_holes() {
        assert_eq!(sparse_pattern(0, 16), b"offset 00000000\n");
        assert_eq!(sparse_pattern(20, 6), b"et 000");
        let e: Entry = serde_json::from_str(
            r#"{"path": "f", "type": "sparse", "content": "abcd",
                "sparse": {"format": "gnu", "map": [[2, 1], [5, 3], [10, 0]], "realSize": 10}}"#,
        )
        .unwrap();
        assert_eq!(e.expanded().unwrap(), b"\0\0a\0\0bcd\0\0");
        let e: Entry = serde_json::from_str(
            r#"{"path": "f", "type": "sparse", "sparse": {"format": "pax-1.0", "map": [[4, 4], [2, 1]], "realSize": 10}}"#,
        )
        .unwrap();
        assert!(e.expanded().is_err(), "an unsorted map");
        let e: Entry = serde_json::from_str(
            r#"{"path": "f", "type": "sparse", "sparse": {"format": "pax-0.1", "map": [[8, 4]], "realSize": 10}}"#,
        )
        .unwrap();
        assert!(e.expanded().is_err(), "a region past the real size");
    }
}
