//! A layout packed in an uncompressed tar archive (skopeo's `oci-archive`).
//!
//! The archive is indexed once, by header, and blobs are then read in place
//! by seeking: nothing is extracted and every blob can be streamed, on any
//! thread, from its own file handle.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{BlobStore, Member, OpenError};
use crate::error::Error;

/// An OCI archive, indexed once; its members are read in place.
pub struct Archive {
    /// The archive file.
    pub path: PathBuf,
    members: HashMap<String, Entry>,
}

enum Entry {
    File {
        offset: u64,
        len: u64,
    },
    /// A symbolic or hard link, with its target as a member name (None when
    /// it cannot name one). A layout's files are never read through one.
    Link(Option<String>),
    Other(&'static str),
}

impl Archive {
    /// Indexes the archive at `path`, refusing a compressed one.
    pub fn open(path: &Path) -> Result<Archive, Error> {
        let at = |e: &dyn std::fmt::Display| Error::usage(format!("{}: {e}", path.display()));
        // Opening a FIFO would wait for a writer, and a device or a pipe
        // cannot be read twice: only a regular file can be an archive.
        let meta = std::fs::metadata(path).map_err(|e| at(&e))?;
        if meta.is_dir() {
            return Err(at(
                &"is a directory, and oci-archive: names a tar file; name a layout directory as oci:PATH or by its path alone",
            ));
        }
        if !meta.is_file() {
            return Err(at(&format!(
                "is {}, not an OCI layout (a directory) or an OCI archive (a tar file)",
                file_kind(&meta.file_type())
            )));
        }
        let mut file = File::open(path).map_err(|e| at(&format!("cannot open archive: {e}")))?;
        let mut magic = [0u8; 4];
        let n = file.read(&mut magic).map_err(|e| at(&e))?;
        if n >= 2 && magic[..2] == [0x1f, 0x8b] || n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
            return Err(at(&"the archive is compressed; an OCI archive is a plain tar (decompress it first)"));
        }
        file.rewind().map_err(|e| at(&e))?;
        let mut archive = tar::Archive::new(file);
        let mut members = HashMap::new();
        let entries = archive.entries_with_seek().map_err(|e| at(&format!("not a readable OCI archive (tar): {e}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| at(&format!("not a readable OCI archive (tar): {e}")))?;
            let raw = entry.path_bytes();
            let Some(name) = normalise(&raw) else {
                continue;
            };
            let kind = entry.header().entry_type();
            let value = if kind.is_file() || kind == tar::EntryType::Continuous {
                Entry::File { offset: entry.raw_file_position(), len: entry.size() }
            } else if kind.is_dir() {
                Entry::Other("directory")
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = entry.link_name_bytes().and_then(|t| {
                    // A symbolic link is relative to its own directory; a
                    // hard link names a member from the archive's root.
                    let t = if kind.is_symlink() && !t.starts_with(b"/") {
                        let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                        [dir.as_bytes(), b"/", &t].concat()
                    } else {
                        t.to_vec()
                    };
                    resolve_dots(&t)
                });
                Entry::Link(target)
            } else {
                Entry::Other("special file")
            };
            // Later members replace earlier ones, as extraction would.
            members.insert(name, value);
        }
        Ok(Archive { path: path.to_path_buf(), members })
    }

    /// Opens a member, following links (at most 8) within the archive: a
    /// `docker save` archive shares identical layers by linking them.
    pub fn open_following_links(&self, name: &str) -> Result<Member, OpenError> {
        let mut name = name.to_string();
        for _ in 0..8 {
            match self.members.get(&name) {
                Some(Entry::Link(Some(target))) => name = target.clone(),
                Some(Entry::Link(None)) => return Err(OpenError::NotFile("link that leaves the archive".into())),
                _ => return self.open_file(&name),
            }
        }
        Err(OpenError::NotFile("chain of more than 8 links".into()))
    }

    /// Whether the archive holds a member of that name.
    pub fn has(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    fn open_file(&self, name: &str) -> Result<Member, OpenError> {
        match self.members.get(name) {
            None => Err(OpenError::Missing),
            Some(Entry::Other(kind)) => Err(OpenError::NotFile((*kind).to_string())),
            Some(Entry::Link(_)) => Err(OpenError::NotFile("link".to_string())),
            Some(&Entry::File { offset, len }) => {
                let mut f = File::open(&self.path).map_err(OpenError::Io)?;
                f.seek(SeekFrom::Start(offset)).map_err(OpenError::Io)?;
                Ok(Member { len, reader: Box::new(f.take(len)) })
            }
        }
    }
}

/// `a/../b` is `b`; a name that climbs out of the archive is none.
fn resolve_dots(raw: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(raw).ok()?;
    let mut parts: Vec<&str> = Vec::new();
    for p in s.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// `./blobs/sha256/x` and `blobs/sha256/x/` name the same member. Names with
/// `..` or non-UTF-8 bytes can never be a layout file we look up: skip them.
fn normalise(raw: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(raw).ok()?;
    let parts: Vec<&str> = s.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.is_empty() || parts.contains(&"..") {
        return None;
    }
    Some(parts.join("/"))
}

impl BlobStore for Archive {
    fn open(&self, name: &str) -> Result<Member, OpenError> {
        self.open_file(name)
    }

    fn location(&self) -> &Path {
        &self.path
    }
}

/// What a path that is neither a directory nor a regular file is.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalise(b"./index.json").as_deref(), Some("index.json"));
        assert_eq!(normalise(b"blobs//sha256/ab/").as_deref(), Some("blobs/sha256/ab"));
        assert_eq!(normalise(b"../index.json"), None);
        assert_eq!(normalise(b"./"), None);
    }
}
