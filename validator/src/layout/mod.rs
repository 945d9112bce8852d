//! Byte access to an OCI image layout, whether a directory or a tar archive
//! of one. This layer knows file names and bytes, nothing of their meaning.

mod archive;
mod dir;
mod docker_save;
mod made;
#[cfg(feature = "sources")]
mod remote;

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use crate::digest::Digest;
use crate::error::Error;
use crate::limits::Limits;
use crate::reference::{Kind, Reference};

pub use archive::Archive;
pub use dir::Directory;
pub use docker_save::DockerSave;
#[cfg(feature = "sources")]
pub use remote::Remote;

/// A readable blob or metadata file.
pub struct Member {
    /// Its bytes, from the start.
    pub reader: Box<dyn Read + Send>,
    /// Length on disk (or in the archive).
    pub len: u64,
}

/// Why a file could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The store has no file of that name.
    Missing,
    /// Present, but a symlink, directory or other non-regular file.
    NotFile(String),
    /// Reading the store failed.
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

/// Where the files of an OCI image layout are kept: a directory, an OCI
/// archive, or a caller's own content store. The store hands out bytes
/// by name and nothing else; every check (digests, sizes, limits) is made
/// by the reader, so a store need not be trusted.
///
/// Names are layout-relative: `oci-layout`, `index.json` and
/// `blobs/<algorithm>/<encoded>` (see [`blob_path`]).
///
/// ```
/// use std::collections::HashMap;
/// use std::path::Path;
/// use single_id::layout::{BlobStore, Layout, Member, OpenError};
///
/// struct InMemory(HashMap<String, Vec<u8>>);
///
/// impl BlobStore for InMemory {
///     fn open(&self, name: &str) -> Result<Member, OpenError> {
///         let bytes = self.0.get(name).ok_or(OpenError::Missing)?.clone();
///         Ok(Member { len: bytes.len() as u64, reader: Box::new(std::io::Cursor::new(bytes)) })
///     }
///     fn location(&self) -> &Path {
///         Path::new("memory:")
///     }
/// }
///
/// let layout = Layout::new(InMemory(HashMap::new()), Default::default());
/// assert!(layout.read_small("index.json").is_err());
/// ```
pub trait BlobStore: Send + Sync {
    /// Opens a file by its layout-relative name. The name comes from
    /// [`blob_path`] or is a fixed one; it is never taken from image
    /// content.
    fn open(&self, name: &str) -> Result<Member, OpenError>;

    /// Where the store is, for messages: a path, or any name that tells
    /// the user which store is meant.
    fn location(&self) -> &Path;
}

/// An opened layout, with the limits every reader of it observes.
pub struct Layout {
    store: Box<dyn BlobStore>,
    /// Resource limits for every reader of this layout.
    pub limits: Limits,
}

impl Layout {
    /// A layout over any store.
    pub fn new(store: impl BlobStore + 'static, limits: Limits) -> Layout {
        Layout { store: Box::new(store), limits }
    }

    /// A layout directory on disk.
    pub fn open_directory(path: &Path, limits: Limits) -> Result<Layout, Error> {
        Ok(Layout::new(Directory::open(path)?, limits))
    }

    /// An OCI archive: a plain tar of a layout (`skopeo copy ... oci-archive:`).
    pub fn open_archive(path: &Path, limits: Limits) -> Result<Layout, Error> {
        Ok(Layout::new(Archive::open(path)?, limits))
    }

    /// Opens a file by its layout-relative path (`index.json`,
    /// `blobs/sha256/...`). The path must come from [`blob_path`] or be a
    /// fixed name: it is never taken from image content.
    pub fn open(&self, name: &str) -> Result<Member, OpenError> {
        self.store.open(name)
    }

    /// Reads a whole JSON document, refusing anything longer than
    /// `--max-json-bytes`.
    pub fn read_small(&self, name: &str) -> Result<Vec<u8>, ReadError> {
        let member = self.open(name).map_err(ReadError::Open)?;
        read_bounded(member.reader, member.len, self.limits.max_json_bytes)
    }

    /// Where the layout is, for messages.
    pub fn root(&self) -> &Path {
        self.store.location()
    }
}

/// Why a small document could not be read whole.
#[derive(Debug)]
pub enum ReadError {
    /// It could not be opened.
    Open(OpenError),
    /// It is longer than the limit for JSON documents.
    TooLarge {
        /// Its length, or how far it was read.
        len: u64,
        /// The limit (`--max-json-bytes`).
        limit: u64,
    },
    /// Reading it failed.
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
/// path is; or, through skopeo, a registry, a store or a `docker save`
/// archive that has no OCI layout inside.
pub fn open(reference: &Reference, limits: &Limits) -> Result<Layout, Error> {
    let path = &reference.path;
    let limits = limits.clone();
    match reference.kind {
        Kind::Directory => Layout::open_directory(path, limits),
        Kind::Archive => Layout::open_archive(path, limits),
        Kind::Registry | Kind::ContainersStorage => remote(reference, limits),
        Kind::DockerArchive => {
            let archive = Archive::open(path)?;
            match docker_archive_kind(&archive) {
                DockerArchive::OciInside => Ok(Layout::new(archive, limits)),
                DockerArchive::Legacy => {
                    let store = DockerSave::open(archive, reference.ref_name.as_deref(), &limits)?;
                    Ok(Layout::new(store, limits))
                }
                DockerArchive::Neither => Err(Error::usage(format!(
                    "{}: is a tar archive, but holds neither manifest.json (docker save) nor index.json (an OCI layout)",
                    path.display()
                ))),
            }
        }
        Kind::Detect => match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Layout::open_directory(path, limits),
            Ok(_) => {
                let archive = Archive::open(path)?;
                match docker_archive_kind(&archive) {
                    DockerArchive::OciInside => Ok(Layout::new(archive, limits)),
                    DockerArchive::Legacy => Ok(Layout::new(DockerSave::open(archive, None, &limits)?, limits)),
                    DockerArchive::Neither => Err(Error::usage(format!(
                        "{}: is a tar archive, but not an OCI archive (no index.json) nor a docker save archive (no manifest.json); an OCI layout is read from its directory or a tar of it, other images as docker://, docker-archive: or containers-storage:",
                        path.display()
                    ))),
                }
            }
            Err(e) => {
                // `podman:x` or a misspelt transport reads as a missing path.
                let hint = match path.to_str().and_then(|p| p.split_once(':')) {
                    Some((t, _)) if !t.contains('/') => {
                        format!(" (`{t}:` is not a transport read here; those are {})", crate::reference::TRANSPORTS)
                    }
                    _ => String::new(),
                };
                Err(Error::usage(format!("{}: {}{hint}", path.display(), crate::error::os_message(&e))))
            }
        },
    }
}

/// What a tar archive is, by the files at its root.
enum DockerArchive {
    /// index.json and oci-layout: an OCI archive, or a `docker save` of
    /// Docker 25 or later (which embeds one): read as a layout, with the
    /// manifests and annotations it really holds.
    OciInside,
    /// manifest.json alone: the older `docker save` format, which has no
    /// manifests ([`DockerSave`]).
    Legacy,
    /// Neither.
    Neither,
}

fn docker_archive_kind(archive: &Archive) -> DockerArchive {
    if archive.has("index.json") || archive.has("oci-layout") {
        DockerArchive::OciInside
    } else if archive.has("manifest.json") {
        DockerArchive::Legacy
    } else {
        DockerArchive::Neither
    }
}

#[cfg(feature = "sources")]
fn remote(reference: &Reference, limits: Limits) -> Result<Layout, Error> {
    Ok(Layout::new(Remote::open(reference)?, limits))
}

#[cfg(not(feature = "sources"))]
fn remote(reference: &Reference, _: Limits) -> Result<Layout, Error> {
    Err(Error::usage(format!(
        "{}: this build of single-id reads only OCI layouts and archives (built without the `sources` feature)",
        reference.path.display()
    )))
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
