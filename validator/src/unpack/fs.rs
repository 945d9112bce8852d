//! The destination tree, touched only through directory file descriptors.
//!
//! Every parent directory is found with `openat2(RESOLVE_IN_ROOT)`: the
//! kernel resolves `..` and symbolic links (absolute ones too) as though
//! the root were `/`, so no entry, link target or symlinked parent can
//! reach outside it (CONSUMER-CONTAINED). The last component is always
//! handled with a `*at` call on that parent and never followed.

use std::ffi::CStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps};

use crate::layer::path::Normal;

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

fn err(e: rustix::io::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

/// What is at a path now, without following a symlink there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    Other,
}

pub struct Root {
    fd: OwnedFd,
    /// The parent used last, since entries come grouped by directory.
    /// Dropped whenever anything is removed or replaced.
    cache: Option<(Vec<u8>, OwnedFd)>,
}

impl Root {
    pub fn open(dest: &Path) -> io::Result<Root> {
        let fd = rfs::open(dest, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(err)?;
        Ok(Root { fd, cache: None })
    }

    pub fn forget(&mut self) {
        self.cache = None;
    }

    /// A directory that must already exist (hardlink targets, whiteouts):
    /// `None` when it does not, or is not a directory.
    pub fn lookup(&self, dir: &Normal) -> io::Result<Option<OwnedFd>> {
        match self.open_dir(&dir.0) {
            Ok(fd) => Ok(Some(fd)),
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    fn open_dir(&self, path: &[u8]) -> rustix::io::Result<OwnedFd> {
        if path.is_empty() {
            return rustix::io::dup(&self.fd);
        }
        rfs::openat2(&self.fd, path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty(), resolve_flags())
    }

    /// The directory holding `path`, created (0700, reported through
    /// `made`) where missing. `Ok(None)` when a component is not a directory.
    pub fn parent(&mut self, path: &Normal, made: &mut dyn FnMut(Normal)) -> io::Result<Option<BorrowedFd<'_>>> {
        let parent = path.parent();
        let hit = self.cache.as_ref().is_some_and(|(p, _)| *p == parent.0);
        if !hit {
            let fd = match self.open_dir(&parent.0) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => match self.make_dirs(&parent, made)? {
                    Some(fd) => fd,
                    None => return Ok(None),
                },
                Err(rustix::io::Errno::NOTDIR) => return Ok(None),
                Err(e) => return Err(err(e)),
            };
            self.cache = Some((parent.0.clone(), fd));
        }
        Ok(self.cache.as_ref().map(|(_, fd)| fd.as_fd()))
    }

    /// `mkdir -p`, one component at a time, each resolved in the root.
    fn make_dirs(&self, dir: &Normal, made: &mut dyn FnMut(Normal)) -> io::Result<Option<OwnedFd>> {
        let mut at = self.open_dir(b"").map_err(err)?;
        let mut so_far = Normal(Vec::new());
        for c in dir.components() {
            so_far = so_far.join(c);
            match self.open_dir(&so_far.0) {
                Ok(fd) => at = fd,
                Err(rustix::io::Errno::NOENT) => {
                    match rfs::mkdirat(&at, c, Mode::from_raw_mode(0o700)) {
                        Ok(()) => made(so_far.clone()),
                        // Something is there yet does not resolve: a
                        // dangling symlink. Creating its target is not ours
                        // to do; the entry is rejected.
                        Err(rustix::io::Errno::EXIST) => return Ok(None),
                        Err(e) => return Err(err(e)),
                    }
                    at = self.open_dir(&so_far.0).map_err(err)?;
                }
                Err(rustix::io::Errno::NOTDIR) => return Ok(None),
                Err(e) => return Err(err(e)),
            }
        }
        Ok(Some(at))
    }

    /// An existing directory opened for reading its entries, resolved in
    /// the root like a parent; `None` if it is absent or not a directory.
    pub fn read_dir(&self, dir: &Normal) -> io::Result<Option<OwnedFd>> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let path: &[u8] = if dir.is_root() { b"." } else { &dir.0 };
        match rfs::openat2(&self.fd, path, flags, Mode::empty(), resolve_flags()) {
            Ok(fd) => Ok(Some(fd)),
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    /// An existing directory, for the final pass over modes; `None` if the
    /// path is no longer a directory (a later layer replaced it).
    pub fn existing_dir(&self, path: &Normal) -> Option<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        if path.is_root() {
            return rfs::openat(&self.fd, c".", flags, Mode::empty()).ok();
        }
        rfs::openat2(&self.fd, &path.0, flags, Mode::empty(), resolve_flags()).ok()
    }
}

pub fn kind_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<Kind>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => Ok(Some(Kind::Dir)),
        Ok(_) => Ok(Some(Kind::Other)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(err(e)),
    }
}

/// Removes `name` from `dir`, a directory with everything beneath it,
/// never following a symbolic link.
pub fn remove(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match kind_at(dir, name)? {
        None => Ok(()),
        Some(Kind::Other) => rfs::unlinkat(dir, name, AtFlags::empty()).map_err(err),
        Some(Kind::Dir) => {
            let fd = open_subdir(dir, name)?;
            for child in children(&fd)? {
                remove(fd.as_fd(), &child)?;
            }
            rfs::unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(err)
        }
    }
}

pub fn open_subdir(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    rfs::openat(dir, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
        .map_err(err)
}

/// Names in a directory, `.` and `..` excluded.
pub fn children(dir: &OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for entry in rfs::Dir::read_from(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let name: &CStr = entry.file_name();
        let name = name.to_bytes();
        if name != b"." && name != b".." {
            out.push(name.to_vec());
        }
    }
    Ok(out)
}

/// Writes a regular file that did not exist (0600 for now), returning it
/// open for attributes; the caller sets the recorded mode last.
pub fn create_file(dir: BorrowedFd<'_>, name: &[u8], data: &mut dyn Read) -> io::Result<std::fs::File> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rfs::openat(dir, name, flags, Mode::from_raw_mode(0o600)).map_err(err)?;
    let mut file = std::fs::File::from(fd);
    io::copy(data, &mut file)?;
    file.flush()?;
    Ok(file)
}

pub fn make_dir(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700)).map_err(err)
}

pub fn make_symlink(dir: BorrowedFd<'_>, name: &[u8], target: &[u8]) -> io::Result<()> {
    rfs::symlinkat(target, dir, name).map_err(err)
}

pub fn make_fifo(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> io::Result<()> {
    rfs::mknodat(dir, name, FileType::Fifo, Mode::from_raw_mode(0o600), 0).map_err(err)?;
    // Just created by us as a FIFO: chmod by name cannot reach anything else.
    rfs::chmodat(dir, name, Mode::from_raw_mode(mode), AtFlags::empty()).map_err(err)
}

/// A hard link at `dir/name` to `target_dir/target_name`; the target's last
/// component is not followed, so a link to a symlink links the symlink.
pub fn make_hardlink(
    target_dir: BorrowedFd<'_>,
    target_name: &[u8],
    dir: BorrowedFd<'_>,
    name: &[u8],
) -> io::Result<()> {
    rfs::linkat(target_dir, target_name, dir, name, AtFlags::empty()).map_err(err)
}

pub fn set_mode(fd: impl AsFd, mode: u32) -> io::Result<()> {
    rfs::fchmod(fd, Mode::from_raw_mode(mode)).map_err(err)
}

fn timestamps(mtime: u64) -> Timestamps {
    let t = Timespec { tv_sec: mtime.min(i64::MAX as u64) as i64, tv_nsec: 0 };
    // Access time is not constrained; give it the same value.
    Timestamps { last_access: t, last_modification: t }
}

pub fn set_mtime(fd: impl AsFd, mtime: u64) -> io::Result<()> {
    rfs::futimens(fd, &timestamps(mtime)).map_err(err)
}

pub fn set_link_mtime(dir: BorrowedFd<'_>, name: &[u8], mtime: u64) -> io::Result<()> {
    rfs::utimensat(dir, name, &timestamps(mtime), AtFlags::SYMLINK_NOFOLLOW).map_err(err)
}

pub fn set_xattr(fd: impl AsFd, name: &[u8], value: &[u8]) -> io::Result<()> {
    rfs::fsetxattr(fd, name, value, rfs::XattrFlags::empty()).map_err(err)
}

/// Clears the set-user-ID and set-group-ID bits of a directory we made
/// (DEST, made inside a set-group-ID directory, inherits the latter).
pub fn clear_setid(path: &Path) -> io::Result<()> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rfs::open(path, flags, Mode::empty()).map_err(err)?;
    let mode = rfs::fstat(&fd).map_err(err)?.st_mode;
    if mode & 0o6000 != 0 {
        set_mode(&fd, mode & 0o1777)?;
    }
    Ok(())
}
