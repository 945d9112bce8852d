//! Where the output is written before it is in its final place: a
//! directory output is written in place, an archive is written as a
//! directory beside it, packed, then linked to its name. On failure,
//! everything this run wrote is removed, and nothing else.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use super::errors::write_io;
use super::output::Output;
use super::tar::{Header, TarWriter};
use crate::error::{Error, Result};

/// Where the layout is written before it is in its final place.
pub(super) enum Staging {
    /// Written in place; `created` says whether this run made the directory.
    Directory { dir: PathBuf, created: bool },
    /// Written to `temp/layout`, packed to `temp/archive.tar`, then linked
    /// to the final name.
    Archive { temp: PathBuf, layout: PathBuf },
}

impl Staging {
    /// Creates the place to write to: the directory OUTPUT (unless it is
    /// there, empty), or the temporary directory beside an archive.
    pub(super) fn prepare(output: &Output) -> Result<Staging> {
        match output {
            Output::Directory(dir) => {
                let created = match std::fs::create_dir(dir) {
                    Ok(()) => true,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                    Err(e) => return Err(Error::usage_io(format_args!("{}: cannot create", dir.display()), e)),
                };
                Ok(Staging::Directory { dir: dir.clone(), created })
            }
            Output::Archive(path) => {
                let name =
                    path.file_name().ok_or_else(|| Error::usage(format!("{}: not a file name", path.display())))?;
                let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                let temp = parent.join(format!(".{}.single-id-flatten", name.to_string_lossy()));
                if let Err(e) = std::fs::create_dir(&temp) {
                    // Only a leftover is worth naming the temporary
                    // directory for: the user has to remove it.
                    let message = if e.kind() == io::ErrorKind::AlreadyExists {
                        format!(
                            "{}: {} exists, left by an earlier run that was killed? remove it",
                            path.display(),
                            temp.display()
                        )
                    } else {
                        format!(
                            "{}: cannot write an archive in {}: {}",
                            path.display(),
                            parent.display(),
                            crate::error::os_message(&e)
                        )
                    };
                    return Err(Error::Usage { message, source: Some(e) });
                }
                let layout = temp.join("layout");
                Ok(Staging::Archive { temp, layout })
            }
        }
    }

    /// The directory the layout is written to.
    pub(super) fn layout_dir(&self) -> &Path {
        match self {
            Staging::Directory { dir, .. } => dir,
            Staging::Archive { layout, .. } => layout,
        }
    }

    /// Puts the output in its final place.
    pub(super) fn finish(&self, output: &Output) -> Result<()> {
        let (Staging::Archive { temp, layout }, Output::Archive(dest)) = (self, output) else {
            return Ok(());
        };
        let packed = temp.join("archive.tar");
        pack(layout, &packed)
            .map_err(|e| write_io(format_args!("{}: cannot write the archive", packed.display()), e))?;
        // A hard link, unlike a rename, never replaces a file that appeared
        // at the destination meanwhile.
        std::fs::hard_link(&packed, dest).map_err(|e| write_io(dest.display(), e))?;
        std::fs::remove_dir_all(temp).map_err(|e| write_io(format_args!("{}: cannot remove", temp.display()), e))
    }

    /// Removes what this run wrote, nothing else.
    pub(super) fn discard(&self, output: &Output) -> io::Result<()> {
        match self {
            Staging::Directory { dir, created: true } => std::fs::remove_dir_all(dir),
            Staging::Directory { dir, created: false } => {
                for entry in std::fs::read_dir(dir)? {
                    let path = entry?.path();
                    if std::fs::symlink_metadata(&path)?.is_dir() {
                        std::fs::remove_dir_all(&path)?;
                    } else {
                        std::fs::remove_file(&path)?;
                    }
                }
                Ok(())
            }
            Staging::Archive { temp, .. } => {
                if let Output::Archive(dest) = output {
                    // Only a link to our own packed file can be there: the
                    // destination was checked absent, and linking is the
                    // last step, after which nothing fails but the removal.
                    if temp.join("archive.tar").exists() && dest.exists() {
                        let ours = same_file(&temp.join("archive.tar"), dest)?;
                        if ours {
                            std::fs::remove_file(dest)?;
                        }
                    }
                }
                std::fs::remove_dir_all(temp)
            }
        }
    }
}

/// Whether `a` and `b` are the same file (one a hard link of the other).
fn same_file(a: &Path, b: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

/// Packs the layout in `root` into a tar archive at `dest`, deterministic:
/// fixed order (the layout files, then blobs by name), owners 0:0, mtime 0.
pub(super) fn pack(root: &Path, dest: &Path) -> io::Result<()> {
    let file = File::options().write(true).create_new(true).open(dest)?;
    let mut tar = TarWriter::new(BufWriter::with_capacity(1 << 16, file));
    let dir = |tar: &mut TarWriter<_>, name: &[u8]| {
        let h = Header {
            name,
            typeflag: b'5',
            mode: 0o755,
            mtime: 0,
            pax_mtime: None,
            size: 0,
            link: b"",
            owner_name: b"",
            xattrs: &[],
        };
        tar.entry(&h, None)
    };
    let file = |tar: &mut TarWriter<_>, name: &[u8], path: &Path| -> io::Result<()> {
        let mut f = File::open(path)?;
        let size = f.metadata()?.len();
        let h = Header {
            name,
            typeflag: b'0',
            mode: 0o644,
            mtime: 0,
            pax_mtime: None,
            size,
            link: b"",
            owner_name: b"",
            xattrs: &[],
        };
        tar.entry(&h, Some(&mut f))
    };
    file(&mut tar, b"oci-layout", &root.join("oci-layout"))?;
    file(&mut tar, b"index.json", &root.join("index.json"))?;
    dir(&mut tar, b"blobs/")?;
    // One directory per digest algorithm (copied blobs may use others).
    for algorithm in sorted_names(&root.join("blobs"))? {
        let sub = root.join("blobs").join(&algorithm);
        dir(&mut tar, format!("blobs/{algorithm}/").as_bytes())?;
        for n in sorted_names(&sub)? {
            file(&mut tar, format!("blobs/{algorithm}/{n}").as_bytes(), &sub.join(&n))?;
        }
    }
    let out = tar.finish()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// The names in `dir`, sorted.
fn sorted_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<_>>()?;
    names.sort();
    Ok(names)
}
