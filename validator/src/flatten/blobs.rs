//! The blob store of the layout being written: `blobs/sha256`, filled
//! through temporary files renamed to their digest once complete.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The blob store of the layout being written.
pub(super) struct Blobs {
    root: PathBuf,
    dir: PathBuf,
    /// Layers are written by several threads at once.
    next_temp: AtomicU64,
}

impl Blobs {
    /// Creates `root/blobs/sha256` and writes `oci-layout`.
    pub(super) fn create(root: &Path) -> io::Result<Blobs> {
        let dir = root.join("blobs/sha256");
        fs::create_dir_all(&dir)?;
        fs::write(root.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        Ok(Blobs { root: root.to_path_buf(), dir, next_temp: AtomicU64::new(0) })
    }

    /// A new temporary file in the blob directory; the name follows a
    /// fixed pattern so runs do not differ even in what they leave behind.
    pub(super) fn temp(&self) -> io::Result<(PathBuf, File)> {
        let path = self.dir.join(format!(".partial-{}", self.next_temp.fetch_add(1, Ordering::Relaxed)));
        let file = File::options().write(true).create_new(true).open(&path)?;
        Ok((path, file))
    }

    /// Moves a finished temporary file to its digest's name.
    pub(super) fn commit(&self, temp: &Path, digest: &str) -> io::Result<()> {
        fs::rename(temp, self.path(digest))
    }

    /// Removes the blob of `digest`, written but not used after all.
    pub(super) fn remove(&self, digest: &str) -> io::Result<()> {
        fs::remove_file(self.path(digest))
    }

    /// Where the blob of `digest` goes.
    pub(super) fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(digest.trim_start_matches("sha256:"))
    }

    /// Writes a small blob; returns its digest and size.
    pub(super) fn write(&self, bytes: &[u8]) -> io::Result<(String, u64)> {
        let digest = crate::digest::sha256_of(bytes);
        let (temp, mut file) = self.temp()?;
        file.write_all(bytes)?;
        file.sync_all()?;
        self.commit(&temp, &digest)?;
        Ok((digest, bytes.len() as u64))
    }

    /// Copies a blob read from `reader` to `rel`, its layout-relative path
    /// in the input (from `blob_path`); the caller checks its digest.
    pub(super) fn copy(&self, reader: &mut dyn Read, rel: &str) -> io::Result<()> {
        let (temp, file) = self.temp()?;
        let mut out = BufWriter::new(file);
        io::copy(reader, &mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(&temp, &path)
    }
}
