//! A layout that is a directory on disk.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{BlobStore, Member, OpenError};
use crate::error::Error;

/// A layout directory; files are opened without following symbolic links.
pub struct Directory {
    /// The directory holding `oci-layout` and `index.json`.
    pub root: PathBuf,
}

impl Directory {
    /// Takes `root`, which must be a directory.
    pub fn open(root: &Path) -> Result<Directory, Error> {
        let meta = fs::metadata(root)
            .map_err(|e| Error::usage(format!("{}: cannot read image layout: {e}", root.display())))?;
        if !meta.is_dir() {
            return Err(Error::usage(format!("{}: not a directory", root.display())));
        }
        Ok(Directory { root: root.to_path_buf() })
    }

    fn open_file(&self, name: &str) -> Result<Member, OpenError> {
        // Intermediate directories must not be symlinks either.
        let mut dir = self.root.clone();
        let mut parts = name.split('/').peekable();
        while let Some(part) = parts.next() {
            dir.push(part);
            if parts.peek().is_some() {
                match fs::symlink_metadata(&dir) {
                    Ok(m) if m.is_dir() => {}
                    Ok(m) => return Err(OpenError::NotFile(describe(&m.file_type()).into())),
                    Err(e) if e.kind() == ErrorKind::NotFound => return Err(OpenError::Missing),
                    Err(e) => return Err(OpenError::Io(e)),
                }
            }
        }
        // O_NOFOLLOW: a symlinked blob must not lead out of the layout.
        // O_NONBLOCK: opening a FIFO must not wait for a writer (it is
        // refused below as not a regular file); reads of files ignore it.
        let file = match File::options().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(&dir) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(OpenError::Missing),
            Err(e) => {
                return match fs::symlink_metadata(&dir) {
                    Ok(m) if !m.is_file() => Err(OpenError::NotFile(describe(&m.file_type()).into())),
                    _ => Err(OpenError::Io(e)),
                };
            }
        };
        let meta = file.metadata().map_err(OpenError::Io)?;
        if !meta.is_file() {
            return Err(OpenError::NotFile(describe(&meta.file_type()).into()));
        }
        Ok(Member { len: meta.len(), reader: Box::new(file) })
    }
}

fn describe(t: &fs::FileType) -> &'static str {
    if t.is_symlink() {
        "symbolic link"
    } else if t.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

impl BlobStore for Directory {
    fn open(&self, name: &str) -> Result<Member, OpenError> {
        self.open_file(name)
    }

    fn location(&self) -> &Path {
        &self.root
    }
}
