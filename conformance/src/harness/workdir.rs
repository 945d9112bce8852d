//! The directories an adapter works in. One run directory per harness run,
//! owned by the adapter's user with mode 0700, holding one attempt at a
//! time:
//!
//! ```text
//! RUN/                      monitored: nothing may appear or disappear here
//!   attempt/                monitored
//!     layout/               a copy of the fixture's OCI layout
//!     canary/               known content (see CANARY) that must not change
//!     dest/                 DEST: empty, the adapter fills it
//!     scratch/              HOME (when privileges are dropped) and TMPDIR
//! ```
//!
//! Everything is owned by the adapter's user, so that a consumer that
//! writes outside DEST (through `..`, a symbolic link, a hard link) can do
//! so and be caught, instead of being stopped by a permission it would not
//! meet in a user's home directory. Everything under RUN except DEST and
//! the scratch directory is compared before and after the adapter runs
//! (CONSUMER-CONTAINED).

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};

/// The canary beside DEST: (path under `attempt/`, content, mode); a
/// content of `None` is a directory, `Some` starting with `->` a symlink.
pub const CANARY: &[(&str, Option<&str>, u32)] = &[
    ("canary", None, 0o755),
    ("canary/file", Some("single-id-conformance canary: a consumer wrote outside DEST if this changed\n"), 0o644),
    ("canary/readonly", Some("read-only canary\n"), 0o444),
    ("canary/link", Some("->file"), 0o777),
    ("canary/sub", None, 0o755),
    ("canary/sub/nested", Some("nested canary\n"), 0o644),
];

/// The harness's directory for one run.
pub struct RunDir {
    dir: tempfile::TempDir,
    owner: Option<(u32, u32)>,
}

/// The directories of one attempt (one execution of the adapter).
pub struct Attempt {
    pub root: PathBuf,
    pub layout: PathBuf,
    pub dest: PathBuf,
    pub scratch: PathBuf,
}

impl RunDir {
    /// Creates the run directory under `base` (the system's temporary
    /// directory when `None`). `owner` is the user to give it to when the
    /// harness runs as root and drops privileges.
    pub fn new(base: Option<&Path>, owner: Option<(u32, u32)>) -> io::Result<RunDir> {
        let mut b = tempfile::Builder::new();
        b.prefix("single-id-conformance.");
        let dir = match base {
            Some(base) => b.tempdir_in(base)?,
            None => b.tempdir()?,
        };
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))?;
        let run = RunDir { dir, owner };
        run.own(run.dir.path())?;
        Ok(run)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn own(&self, p: &Path) -> io::Result<()> {
        match self.owner {
            Some((uid, gid)) => lchown(p, Some(uid), Some(gid)),
            None => Ok(()),
        }
    }

    /// Prepares a fresh attempt: the layout copied from `fixture_layout`,
    /// the canary, an empty DEST and the scratch directory.
    pub fn attempt(&self, fixture_layout: &Path) -> io::Result<Attempt> {
        let root = self.path().join("attempt");
        if fs::symlink_metadata(&root).is_ok() {
            remove_tree(&root)?;
        }
        let a = Attempt { layout: root.join("layout"), dest: root.join("dest"), scratch: root.join("scratch"), root };
        self.mkdir(&a.root, 0o755)?;
        self.copy_tree(fixture_layout, &a.layout)?;
        for (rel, content, mode) in CANARY {
            let p = a.root.join(rel);
            match content {
                None => self.mkdir(&p, *mode)?,
                Some(link) if link.starts_with("->") => {
                    symlink(&link[2..], &p)?;
                    self.own(&p)?;
                }
                Some(text) => self.write(&p, text.as_bytes(), *mode)?,
            }
        }
        self.mkdir(&a.dest, 0o755)?;
        self.mkdir(&a.scratch, 0o700)?;
        self.mkdir(&a.scratch.join("home"), 0o700)?;
        self.mkdir(&a.scratch.join("tmp"), 0o700)?;
        Ok(a)
    }

    fn mkdir(&self, p: &Path, mode: u32) -> io::Result<()> {
        fs::create_dir(p)?;
        // Explicitly, so that neither the umask nor a set-group-ID parent
        // leaves anything but `mode`.
        fs::set_permissions(p, fs::Permissions::from_mode(mode))?;
        self.own(p)
    }

    fn write(&self, p: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
        fs::write(p, bytes)?;
        fs::set_permissions(p, fs::Permissions::from_mode(mode))?;
        self.own(p)
    }

    /// Copies an OCI layout: directories become 0755 and files 0644 (a
    /// layout holds nothing else that matters), so that the adapter's user
    /// can read every blob whoever generated the fixture.
    fn copy_tree(&self, from: &Path, to: &Path) -> io::Result<()> {
        let meta = fs::symlink_metadata(from)?;
        if meta.is_dir() {
            self.mkdir(to, 0o755)?;
            let mut names: Vec<_> = fs::read_dir(from)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
            names.sort();
            for name in names {
                self.copy_tree(&from.join(&name), &to.join(&name))?;
            }
        } else if meta.file_type().is_symlink() {
            symlink(fs::read_link(from)?, to)?;
            self.own(to)?;
        } else {
            fs::copy(from, to)?;
            fs::set_permissions(to, fs::Permissions::from_mode(0o644))?;
            self.own(to)?;
        }
        Ok(())
    }
}

impl Attempt {
    /// What the containment check leaves out: DEST (compared on its own)
    /// and the scratch directory (the adapter's to use).
    pub fn unmonitored(&self) -> Vec<PathBuf> {
        vec![self.dest.clone(), self.scratch.clone()]
    }

    pub fn remove(self) -> io::Result<()> {
        remove_tree(&self.root)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        // Adapters leave 0555 directories and 0000 files behind; TempDir's
        // own removal would fail on them when the harness is not root.
        let _ = make_removable(self.dir.path());
    }
}

/// Removes a tree whatever modes its adapter left on it.
pub fn remove_tree(p: &Path) -> io::Result<()> {
    make_removable(p)?;
    match fs::remove_dir_all(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Gives every directory under `p` (not following symlinks) u+rwx, top
/// down, so that its entries can be listed and removed.
pub fn make_removable(p: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o700 != 0o700 {
        fs::set_permissions(p, fs::Permissions::from_mode(mode | 0o700))?;
    }
    for e in fs::read_dir(p)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            make_removable(&e.path())?;
        }
    }
    Ok(())
}

/// Checks, as root, that every directory above `dir` lets `uid:gid` search
/// it; returns the first one that does not.
pub fn first_unsearchable(dir: &Path, uid: u32, gid: u32) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if let Ok(m) = fs::metadata(d) {
            let mode = m.mode();
            let ok = if m.uid() == uid {
                mode & 0o100 != 0
            } else if m.gid() == gid {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            };
            if !ok {
                return Some(d.to_path_buf());
            }
        }
        cur = d.parent();
    }
    None
}

/// What the names of host paths contain that fixtures aim at outside the
/// work directory (e.g. through a symbolic link to `/tmp`); a whiteout
/// extracted as a file, `.wh.single-id-conformance-escaped-x`, counts too.
pub const ESCAPE_PREFIX: &str = "single-id-conformance-escaped";

/// The host directories watched for entries named with [`ESCAPE_PREFIX`]: `/tmp`,
/// `/var/tmp` and the harness's temporary directory.
pub fn host_watch_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/tmp"), PathBuf::from("/var/tmp"), std::env::temp_dir()];
    dirs.dedup();
    dirs
}

/// Every entry whose name contains [`ESCAPE_PREFIX`] in the watched host
/// directories.
pub fn host_markers() -> std::collections::BTreeSet<PathBuf> {
    let mut out = std::collections::BTreeSet::new();
    for d in host_watch_dirs() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let name = e.file_name();
            if name.as_encoded_bytes().windows(ESCAPE_PREFIX.len()).any(|w| w == ESCAPE_PREFIX.as_bytes()) {
                out.insert(e.path());
            }
        }
    }
    out
}
