//! Byte access to an OCI image layout, whether a directory or a tar archive
//! of one. This layer knows file names and bytes, nothing of their meaning.

mod archive;
mod dir;

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::Error;
use crate::limits::Limits;
use crate::reference::{Kind, Reference};

pub use archive::Archive;
pub use dir::Directory;

/// A readable blob or metadata file.
pub struct Member {
    pub reader: Box<dyn Read + Send>,
    /// Length on disk (or in the archive).
    pub len: u64,
}

/// Why a file could not be opened.
#[derive(Debug)]
pub enum OpenError {
    Missing,
    /// Present, but a symlink, directory or other non-regular file.
    NotFile(String),
    Io(io::Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Missing => f.write_str("no such file"),
            OpenError::NotFile(kind) => write!(f, "is a {kind}, not a regular file"),
            OpenError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// An opened layout, with the limits every reader of it observes.
pub struct Layout {
    store: Store,
    pub limits: Limits,
}

enum Store {
    Directory(Directory),
    Archive(Archive),
}

impl Layout {
    pub fn open_directory(path: &Path, limits: Limits) -> Result<Layout, Error> {
        Ok(Layout { store: Store::Directory(Directory::open(path)?), limits })
    }

    pub fn open_archive(path: &Path, limits: Limits) -> Result<Layout, Error> {
        Ok(Layout { store: Store::Archive(Archive::open(path)?), limits })
    }

    /// Opens a file by its layout-relative path (`index.json`,
    /// `blobs/sha256/...`). The path must come from [`blob_path`] or be a
    /// fixed name: it is never taken from image content.
    pub fn open(&self, name: &str) -> Result<Member, OpenError> {
        match &self.store {
            Store::Directory(d) => d.open_file(name),
            Store::Archive(a) => a.open_file(name),
        }
    }

    /// Reads a whole JSON document, refusing anything longer than
    /// `--max-json-bytes`.
    pub fn read_small(&self, name: &str) -> Result<Vec<u8>, ReadError> {
        let member = self.open(name).map_err(ReadError::Open)?;
        read_bounded(member.reader, member.len, self.limits.max_json_bytes)
    }

    pub fn root(&self) -> &PathBuf {
        match &self.store {
            Store::Directory(d) => &d.root,
            Store::Archive(a) => &a.path,
        }
    }
}

#[derive(Debug)]
pub enum ReadError {
    Open(OpenError),
    TooLarge { len: u64, limit: u64 },
    Io(io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Open(e) => e.fmt(f),
            ReadError::TooLarge { len, limit } => {
                write!(
                    f,
                    "is {len} bytes, more than the {limit}-byte limit for JSON documents (--max-json-bytes raises it)"
                )
            }
            ReadError::Io(e) => write!(f, "read failed: {e}"),
        }
    }
}

/// Opens the layout an image reference names: a directory or an archive,
/// told apart by the reference's transport or, without one, by what the
/// path is.
pub fn open(reference: &Reference, limits: &Limits) -> Result<Layout, Error> {
    let path = &reference.path;
    let limits = limits.clone();
    match reference.kind {
        Kind::Directory => Layout::open_directory(path, limits),
        Kind::Archive => Layout::open_archive(path, limits),
        Kind::Detect => match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Layout::open_directory(path, limits),
            Ok(_) => Layout::open_archive(path, limits),
            Err(e) => Err(Error::usage_io(path.display(), e)),
        },
    }
}

/// Reads a file of length `len` into memory, at most `limit` bytes.
pub fn read_bounded(reader: impl Read, len: u64, limit: u64) -> Result<Vec<u8>, ReadError> {
    if len > limit {
        return Err(ReadError::TooLarge { len, limit });
    }
    let mut buf = Vec::with_capacity(len as usize);
    // One byte over the limit tells a file that grew while we read it.
    reader.take(limit + 1).read_to_end(&mut buf).map_err(ReadError::Io)?;
    if buf.len() as u64 > limit {
        return Err(ReadError::TooLarge { len: buf.len() as u64, limit });
    }
    Ok(buf)
}

/// Layout-relative path of a blob. Safe to join to a directory because
/// `oci-spec` restricts digest characters to `[a-z0-9+._-]` and
/// `[a-zA-Z0-9=_-]`, which excludes `/`, and neither part can be empty.
pub fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.digest())
}
