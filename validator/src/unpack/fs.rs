//! The destination tree, touched only through directory file descriptors.
//!
//! Every directory is reached from a descriptor of one we hold, one plain
//! component at a time (`openat` with `O_NOFOLLOW`), starting from DEST or
//! from the deepest directory of a small cache of recent resolutions. A
//! symbolic link met among the leading components of a name is resolved
//! as though DEST were `/` (CONSUMER-CONTAINED, CONSUMER-SYMLINK-PARENT):
//! by the kernel with `openat2(RESOLVE_IN_ROOT)` where it is available, and
//! otherwise by [`Resolver::Portable`], which reads the link and walks its
//! target from descriptors with the same rules (an absolute target starts
//! at DEST, `..` at DEST stays there, at most 40 links). The last component
//! is always handled with a `*at` call on its parent and never followed.
//!
//! Every directory under DEST was made by this unpack (DEST starts empty),
//! so each is known by inode number in [`Dirs`]: its parent, its depth
//! below DEST and its final mode, a few tens of bytes whatever its name.
//! Walks of the tree (removal, pruning, the final pass over modes) are
//! iterative: they hold two descriptors at most, climb back with `..`,
//! check the inode they arrive at, and keep 16 bytes per level.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat, Timespec, Timestamps};
use rustix::io::Errno;

use crate::layer::path::Normal;

/// Symbolic links followed in one resolution, at most: Linux's limit
/// (MAXSYMLINKS), which CONSUMER-SYMLINK-PARENT adopts.
pub const MAX_LINKS: u32 = 40;

/// Directories kept open for resolving names: recent parents, and the
/// directories that symbolic links among leading components led to.
const CACHE: usize = 32;

/// The environment variable that chooses how names are resolved.
pub const RESOLVE_ENV: &str = "SINGLE_ID_RESOLVE";

/// How symbolic links among the leading components of a name are resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolver {
    /// `openat2(RESOLVE_IN_ROOT)`: Linux 5.6 and later.
    Openat2,
    /// From descriptors, one component at a time: any Linux, and where a
    /// seccomp profile refuses `openat2`.
    Portable,
}

/// [`RESOLVE_ENV`]: `auto` (or unset) uses `openat2` unless the kernel
/// refuses it; `openat2` requires it; `portable` never calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    Auto,
    Force(Resolver),
}

impl Choice {
    pub fn from_env() -> Result<Choice, String> {
        let Some(value) = std::env::var_os(RESOLVE_ENV) else { return Ok(Choice::Auto) };
        match value.to_str() {
            Some("" | "auto") => Ok(Choice::Auto),
            Some("openat2") => Ok(Choice::Force(Resolver::Openat2)),
            Some("portable") => Ok(Choice::Force(Resolver::Portable)),
            _ => Err(format!("{RESOLVE_ENV}={value:?}: expected auto, openat2 or portable")),
        }
    }
}

fn err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

fn changed() -> io::Error {
    io::Error::other("the destination changed while it was being written (a directory moved or appeared)")
}

#[allow(clippy::unnecessary_cast)] // c_ulong is u64 on 64-bit targets only
fn id(st: &Stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

fn is_dir(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

const PATH_DIR: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);
const READ_DIR: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);

/// What is at a path now, without following a symlink there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    Other,
}

/// Flags of a directory, about the layer being applied unless said.
pub mod flag {
    /// Made by this layer (so it holds nothing of a lower layer).
    pub const BORN: u8 = 1;
    /// This layer made it or something beneath it (CONSUMER-WHITEOUT,
    /// CONSUMER-OPAQUE: such a directory is pruned, not removed).
    pub const MARKED: u8 = 2;
    /// This layer has a directory entry for it.
    pub const EXPLICIT: u8 = 4;
    /// Nothing of a lower layer is left beneath it.
    pub const PRUNED: u8 = 8;
    pub(super) const OF_LAYER: u8 = BORN | MARKED | EXPLICIT | PRUNED;
    /// Its final mode is applied (the last pass; not about a layer).
    pub const FINAL: u8 = 16;
}

/// A directory under DEST, by inode number.
#[derive(Clone, Copy, Debug)]
pub struct DirInfo {
    pub parent: u64,
    /// Directories between it and DEST, plus one: DEST is 0.
    pub depth: u32,
    /// The layer the flags of [`flag::OF_LAYER`] were set in.
    layer: u32,
    flags: u8,
    /// The permission bits and sticky bit it ends with (CONSUMER-MODE,
    /// CONSUMER-READONLY-DIR): 0755 until an entry records another.
    pub mode: u16,
}

impl DirInfo {
    pub fn has(&self, layer: u32, f: u8) -> bool {
        let current = if self.layer == layer { self.flags } else { self.flags & !flag::OF_LAYER };
        current & f == f
    }

    pub fn set(&mut self, layer: u32, f: u8) {
        if self.layer != layer {
            self.layer = layer;
            self.flags &= !flag::OF_LAYER;
        }
        self.flags |= f;
    }
}

pub type Dirs = HashMap<u64, DirInfo>;

/// A directory under DEST, open (`O_PATH`) for `*at` calls.
#[derive(Clone, Debug)]
pub struct DirFd {
    fd: Rc<OwnedFd>,
    pub ino: u64,
    pub depth: u32,
}

impl DirFd {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Why a name's leading components do not lead to a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// A component does not exist (lookups only; parents are created).
    Missing,
    /// A component is neither a directory nor a symbolic link.
    NotDir,
    /// A symbolic link leads to nothing.
    Dangling,
    /// Symbolic links loop, or more than [`MAX_LINKS`] are followed.
    Loop,
    /// A symbolic link leads to something that is not a directory.
    LinkNotDir,
    /// A symbolic link has an empty target.
    EmptyLink,
    /// The entry would lie this many directories below DEST.
    TooDeep(u64),
}

impl Unresolved {
    /// Whether a symbolic link could not be resolved (CONSUMER-SYMLINK-PARENT).
    pub fn is_link(self) -> bool {
        matches!(self, Unresolved::Dangling | Unresolved::Loop | Unresolved::LinkNotDir | Unresolved::EmptyLink)
    }

    pub fn why(self, max_depth: u32) -> String {
        match self {
            Unresolved::Missing => "a parent of the path does not exist".into(),
            Unresolved::NotDir => "a parent of the path is not a directory".into(),
            Unresolved::Dangling => "a symlink among the parents leads to nothing".into(),
            Unresolved::Loop => format!("symlinks among the parents loop, or more than {MAX_LINKS} are followed"),
            Unresolved::LinkNotDir => "a symlink among the parents does not lead to a directory".into(),
            Unresolved::EmptyLink => "a symlink among the parents has an empty target".into(),
            Unresolved::TooDeep(depth) => format!(
                "it would lie {depth} directories deep once symlinks are resolved, more than {max_depth} (a limit; --max-path-depth raises it)"
            ),
        }
    }
}

struct Cached {
    path: Vec<u8>,
    components: usize,
    dir: DirFd,
    /// Symbolic links followed to reach it from DEST.
    links: u32,
}

pub struct Root {
    fd: Rc<OwnedFd>,
    dev: u64,
    pub ino: u64,
    resolver: Resolver,
    max_depth: u32,
    /// Most recently used first.
    cache: Vec<Cached>,
    pub dirs: Dirs,
    /// The layer being applied, counted from 1.
    pub layer: u32,
}

impl Root {
    /// Opens DEST, which must be empty, and decides how to resolve names:
    /// `openat2` unless `choice` says otherwise or the kernel (or a seccomp
    /// profile) refuses it, which is tried once, here.
    pub fn open(dest: &Path, choice: Choice, max_depth: usize) -> io::Result<Root> {
        let fd = rfs::open(dest, PATH_DIR, Mode::empty()).map_err(err)?;
        let st = rfs::fstat(&fd).map_err(err)?;
        let (dev, ino) = id(&st);
        let resolver = match choice {
            Choice::Force(Resolver::Portable) => Resolver::Portable,
            Choice::Force(Resolver::Openat2) | Choice::Auto => {
                // Opening DEST again cannot fail for any reason but a
                // refusal of the call itself (ENOSYS from an old kernel,
                // ENOSYS or EPERM from a seccomp profile).
                match rfs::openat2(&fd, c".", PATH_DIR, Mode::empty(), resolve_flags()) {
                    Ok(_) => Resolver::Openat2,
                    Err(_) if choice == Choice::Auto => Resolver::Portable,
                    Err(e) => {
                        return Err(io::Error::other(format!(
                            "openat2 is refused ({}) and {RESOLVE_ENV}=openat2 rules out the portable resolution",
                            err(e)
                        )));
                    }
                }
            }
        };
        let mut dirs = Dirs::new();
        dirs.insert(ino, DirInfo { parent: ino, depth: 0, layer: 0, flags: 0, mode: (st.st_mode & 0o1777) as u16 });
        Ok(Root {
            fd: Rc::new(fd),
            dev,
            ino,
            resolver,
            max_depth: max_depth.try_into().unwrap_or(u32::MAX),
            cache: Vec::new(),
            dirs,
            layer: 1,
        })
    }

    pub fn max_depth(&self) -> u32 {
        self.max_depth
    }

    /// Drops the cached resolutions: whenever anything is removed or
    /// replaced, since a cached name may lead through it.
    pub fn forget(&mut self) {
        self.cache.clear();
    }

    pub fn next_layer(&mut self) {
        self.layer += 1;
        self.forget();
    }

    fn top(&self) -> DirFd {
        DirFd { fd: Rc::clone(&self.fd), ino: self.ino, depth: 0 }
    }

    /// The directory `fd` is, with its depth; it must be one we made.
    fn dir_of(&self, fd: OwnedFd) -> io::Result<DirFd> {
        let (dev, ino) = id(&rfs::fstat(&fd).map_err(err)?);
        let info = self.dirs.get(&ino).filter(|_| dev == self.dev).ok_or_else(changed)?;
        Ok(DirFd { fd: Rc::new(fd), ino, depth: info.depth })
    }

    /// The deepest cached directory that `path` lies in or is: the
    /// directory, the links followed to reach it, its components.
    fn cached(&mut self, path: &[u8]) -> (DirFd, u32, usize) {
        let mut best: Option<usize> = None;
        for (i, c) in self.cache.iter().enumerate() {
            let within = path.starts_with(&c.path) && (path.len() == c.path.len() || path[c.path.len()] == b'/');
            if within && best.is_none_or(|b| self.cache[b].path.len() < c.path.len()) {
                best = Some(i);
            }
        }
        match best {
            Some(i) => {
                let c = self.cache.remove(i);
                let found = (c.dir.clone(), c.links, c.components);
                self.cache.insert(0, c);
                found
            }
            None => (self.top(), 0, 0),
        }
    }

    fn remember(&mut self, path: Vec<u8>, components: usize, dir: DirFd, links: u32) {
        self.cache.retain(|c| c.path != path);
        self.cache.insert(0, Cached { path, components, dir, links });
        self.cache.truncate(CACHE);
    }

    /// The directory holding `path`, its missing components created (0700
    /// for now, 0755 in the end unless an entry says otherwise).
    pub fn parent(&mut self, path: &Normal) -> io::Result<Result<DirFd, Unresolved>> {
        let dir = match self.resolve(&path.parent(), true)? {
            Ok(dir) => dir,
            Err(u) => return Ok(Err(u)),
        };
        if dir.depth >= self.max_depth {
            return Ok(Err(Unresolved::TooDeep(u64::from(dir.depth) + 1)));
        }
        Ok(Ok(dir))
    }

    /// A directory that must exist already (hardlink targets, whiteouts).
    pub fn lookup(&mut self, dir: &Normal) -> io::Result<Result<DirFd, Unresolved>> {
        self.resolve(dir, false)
    }

    fn resolve(&mut self, path: &Normal, create: bool) -> io::Result<Result<DirFd, Unresolved>> {
        let components: Vec<&[u8]> = path.components().collect();
        let (mut cur, mut links, start) = self.cached(&path.0);
        let mut i = start;
        while i < components.len() {
            let c = components[i];
            match rfs::openat(cur.fd(), c, PATH_DIR | OFlags::NOFOLLOW, Mode::empty()) {
                Ok(fd) => cur = self.dir_of(fd)?,
                Err(Errno::NOENT) if create => {
                    // Everything from here on is missing: its depth is known
                    // before anything is made. The entry itself adds one.
                    let depth = u64::from(cur.depth) + (components.len() - i) as u64 + 1;
                    if depth > u64::from(self.max_depth) {
                        return Ok(Err(Unresolved::TooDeep(depth)));
                    }
                    for c in &components[i..] {
                        let ino = self.make_dir(&cur, c)?;
                        let fd = rfs::openat(cur.fd(), *c, PATH_DIR | OFlags::NOFOLLOW, Mode::empty()).map_err(err)?;
                        cur = DirFd { fd: Rc::new(fd), ino, depth: cur.depth + 1 };
                    }
                    i = components.len();
                    break;
                }
                Err(Errno::NOENT) => return Ok(Err(Unresolved::Missing)),
                Err(Errno::NOTDIR | Errno::LOOP) => {
                    let st = rfs::statat(cur.fd(), c, AtFlags::SYMLINK_NOFOLLOW).map_err(err)?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                        return Ok(Err(Unresolved::NotDir));
                    }
                    cur = match self.follow(&cur, &components[..=i], &mut links)? {
                        Ok(dir) => dir,
                        Err(u) => return Ok(Err(u)),
                    };
                    // Where a link led is worth keeping: reaching it again
                    // costs a walk of the link's whole target.
                    self.remember(components[..=i].join(&b'/'), i + 1, cur.clone(), links);
                }
                Err(e) => return Err(err(e)),
            }
            i += 1;
        }
        if i > start {
            self.remember(path.0.clone(), components.len(), cur.clone(), links);
        }
        Ok(Ok(cur))
    }

    /// Resolves the symbolic link that is the last of `upto`, in `cur`.
    fn follow(&self, cur: &DirFd, upto: &[&[u8]], links: &mut u32) -> io::Result<Result<DirFd, Unresolved>> {
        match self.resolver {
            Resolver::Openat2 => {
                // The kernel resolves the whole prefix again from DEST, so
                // that its count of links covers the links before this one.
                let path = upto.join(&b'/');
                for _ in 0..16 {
                    match rfs::openat2(self.fd.as_fd(), &path[..], PATH_DIR, Mode::empty(), resolve_flags()) {
                        Ok(fd) => return self.dir_of(fd).map(Ok),
                        // A rename raced with `..`: only we write here.
                        Err(Errno::AGAIN) => continue,
                        Err(Errno::NOENT) => return Ok(Err(Unresolved::Dangling)),
                        Err(Errno::LOOP) => return Ok(Err(Unresolved::Loop)),
                        Err(Errno::NOTDIR) => return Ok(Err(Unresolved::LinkNotDir)),
                        Err(e) => return Err(err(e)),
                    }
                }
                Err(changed())
            }
            Resolver::Portable => self.follow_portable(cur, upto[upto.len() - 1], links),
        }
    }

    /// What `openat2(RESOLVE_IN_ROOT)` does, from descriptors: the link's
    /// target is spliced into the components still to walk; an absolute
    /// target restarts at DEST; `..` at DEST stays there and elsewhere goes
    /// to the real parent (checked against the one we recorded).
    fn follow_portable(&self, cur: &DirFd, name: &[u8], links: &mut u32) -> io::Result<Result<DirFd, Unresolved>> {
        // Components still to walk, last first.
        let mut todo: Vec<Vec<u8>> = Vec::new();
        let mut at = cur.clone();
        if let Err(u) = self.splice(&mut at, name, links, &mut todo)? {
            return Ok(Err(u));
        }
        while let Some(c) = todo.pop() {
            if c == b".." {
                if at.ino == self.ino {
                    continue;
                }
                let expected = self.dirs.get(&at.ino).map(|i| i.parent);
                let up = self.dir_of(rfs::openat(at.fd(), c"..", PATH_DIR, Mode::empty()).map_err(err)?)?;
                if Some(up.ino) != expected {
                    return Err(changed());
                }
                at = up;
                continue;
            }
            match rfs::openat(at.fd(), &c[..], PATH_DIR | OFlags::NOFOLLOW, Mode::empty()) {
                Ok(fd) => at = self.dir_of(fd)?,
                Err(Errno::NOENT) => return Ok(Err(Unresolved::Dangling)),
                Err(Errno::NOTDIR | Errno::LOOP) => {
                    let st = rfs::statat(at.fd(), &c[..], AtFlags::SYMLINK_NOFOLLOW).map_err(err)?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                        return Ok(Err(Unresolved::LinkNotDir));
                    }
                    if let Err(u) = self.splice(&mut at, &c, links, &mut todo)? {
                        return Ok(Err(u));
                    }
                }
                Err(e) => return Err(err(e)),
            }
        }
        Ok(Ok(at))
    }

    /// Reads the link `name` in `at` and queues its target; an absolute
    /// target moves `at` to DEST.
    fn splice(
        &self,
        at: &mut DirFd,
        name: &[u8],
        links: &mut u32,
        todo: &mut Vec<Vec<u8>>,
    ) -> io::Result<Result<(), Unresolved>> {
        *links += 1;
        if *links > MAX_LINKS {
            return Ok(Err(Unresolved::Loop));
        }
        let target = rfs::readlinkat(at.fd(), name, Vec::new()).map_err(err)?.into_bytes();
        if target.is_empty() {
            return Ok(Err(Unresolved::EmptyLink));
        }
        if target[0] == b'/' {
            *at = self.top();
        }
        todo.extend(target.split(|b| *b == b'/').filter(|c| !c.is_empty() && *c != b".").rev().map(<[u8]>::to_vec));
        Ok(Ok(()))
    }

    /// The directory `name` in `dir`, not followed if it is a symlink.
    pub fn subdir(&self, dir: &DirFd, name: &[u8]) -> io::Result<DirFd> {
        self.dir_of(rfs::openat(dir.fd(), name, PATH_DIR | OFlags::NOFOLLOW, Mode::empty()).map_err(err)?)
    }

    /// Makes the directory `name` in `parent` (0700 until the last pass),
    /// recorded as made by this layer with the implicit mode 0755.
    pub fn make_dir(&mut self, parent: &DirFd, name: &[u8]) -> io::Result<u64> {
        rfs::mkdirat(parent.fd(), name, Mode::from_raw_mode(0o700)).map_err(err)?;
        let st = rfs::statat(parent.fd(), name, AtFlags::SYMLINK_NOFOLLOW).map_err(err)?;
        let (dev, ino) = id(&st);
        if dev != self.dev || !is_dir(&st) {
            return Err(changed());
        }
        let info =
            DirInfo { parent: parent.ino, depth: parent.depth + 1, layer: self.layer, flags: flag::BORN, mode: 0o755 };
        self.dirs.insert(ino, info);
        Ok(ino)
    }

    /// Marks `ino` and every directory above it as holding something this
    /// layer made. Stops at the first one marked already: its ancestors
    /// were marked with it, so each directory is visited once per layer.
    pub fn mark(&mut self, mut ino: u64) {
        while let Some(info) = self.dirs.get_mut(&ino) {
            if info.has(self.layer, flag::MARKED) {
                return;
            }
            info.set(self.layer, flag::MARKED);
            if ino == self.ino {
                return;
            }
            ino = info.parent;
        }
    }

    /// Removes `name` from `dir`, a directory with everything beneath it,
    /// never following a symbolic link.
    pub fn remove(&mut self, dir: &DirFd, name: &[u8]) -> io::Result<()> {
        self.forget();
        remove_at(dir.fd(), name, self.dev, &mut self.dirs)
    }

    /// Walks the tree beneath `dir` (itself included), as `visit` says.
    pub fn walk(&mut self, dir: &DirFd, visit: &mut dyn Visit) -> io::Result<()> {
        self.forget();
        let fd = rfs::openat(dir.fd(), c".", READ_DIR, Mode::empty()).map_err(err)?;
        walk(fd, dir.ino, self.dev, &mut self.dirs, visit, false)
    }

    /// The last pass: every directory gets its final mode, children before
    /// their parent, so that no restrictive mode is in force while anything
    /// beneath it is still to be done; DEST gets `root_mode` if an entry
    /// recorded one.
    pub fn apply_modes(&mut self, root_mode: Option<u32>) -> io::Result<()> {
        let top = self.top();
        self.walk(&top, &mut Modes { root: self.ino, root_mode })
    }
}

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// What a walk does at each entry.
pub trait Visit {
    /// Whether the non-directory `name` in directory `dir` stays.
    fn keep(&mut self, dirs: &Dirs, dir: u64, name: &[u8]) -> bool;
    /// What to do with the directory `ino` found in `dir`. A directory
    /// descended into must read [`Step::Skip`] once [`Visit::leave`] has
    /// been called for it, since a directory is read again from its start
    /// (once, usually) after anything in it changed.
    fn dir(&mut self, dirs: &mut Dirs, dir: u64, ino: u64) -> Step;
    /// Everything beneath `ino` is done (it is still open as `fd`; its
    /// parent is open too, so its mode may now be anything).
    fn leave(&mut self, dirs: &mut Dirs, fd: BorrowedFd<'_>, ino: u64) -> io::Result<()>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Skip,
    Descend,
    /// Remove it with everything beneath it.
    Remove,
}

struct Modes {
    root: u64,
    root_mode: Option<u32>,
}

impl Visit for Modes {
    fn keep(&mut self, _: &Dirs, _: u64, _: &[u8]) -> bool {
        true
    }

    fn dir(&mut self, dirs: &mut Dirs, _: u64, ino: u64) -> Step {
        match dirs.get(&ino) {
            Some(info) if info.has(0, flag::FINAL) => Step::Skip,
            _ => Step::Descend,
        }
    }

    fn leave(&mut self, dirs: &mut Dirs, fd: BorrowedFd<'_>, ino: u64) -> io::Result<()> {
        if ino == self.root {
            return match self.root_mode {
                Some(mode) => set_mode(fd, mode),
                None => Ok(()),
            };
        }
        let info = dirs.get_mut(&ino).ok_or_else(changed)?;
        set_mode(fd, u32::from(info.mode))?;
        info.flags |= flag::FINAL;
        Ok(())
    }
}

/// Removes what a failed unpack wrote beneath DEST (DEST itself stays).
pub fn clear(dest: &Path) -> io::Result<()> {
    let fd = rfs::open(dest, READ_DIR | OFlags::NOFOLLOW, Mode::empty()).map_err(err)?;
    let (dev, ino) = id(&rfs::fstat(&fd).map_err(err)?);
    walk(fd, ino, dev, &mut Dirs::new(), &mut Modes { root: ino, root_mode: None }, true)
}

fn remove_at(dir: BorrowedFd<'_>, name: &[u8], dev: u64, dirs: &mut Dirs) -> io::Result<()> {
    let st = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(err(e)),
    };
    if !is_dir(&st) {
        return unlink(dir, name, AtFlags::empty());
    }
    let (_, ino) = id(&st);
    let sub = open_to_remove(dir, name)?;
    if id(&rfs::fstat(&sub).map_err(err)?) != (dev, ino) {
        return Err(changed());
    }
    walk(sub, ino, dev, dirs, &mut Modes { root: ino, root_mode: None }, true)?;
    unlink(dir, name, AtFlags::REMOVEDIR)?;
    dirs.remove(&ino);
    Ok(())
}

/// Opens a directory to empty it. One that an earlier, interrupted final
/// pass made unreadable is made ours again first (we own everything here).
fn open_to_remove(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    let flags = READ_DIR | OFlags::NOFOLLOW;
    match rfs::openat(dir, name, flags, Mode::empty()) {
        Err(Errno::ACCESS) => {
            rfs::chmodat(dir, name, Mode::from_raw_mode(0o700), AtFlags::empty()).map_err(err)?;
            rfs::openat(dir, name, flags, Mode::empty()).map_err(err)
        }
        other => other.map_err(err),
    }
}

/// `unlinkat`, tolerating a name already gone; a directory made read-only
/// by an interrupted final pass is made writable first.
fn unlink(dir: BorrowedFd<'_>, name: &[u8], flags: AtFlags) -> io::Result<()> {
    match rfs::unlinkat(dir, name, flags) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ACCESS) => {
            rfs::fchmod(dir, Mode::from_raw_mode(0o700)).map_err(err)?;
            rfs::unlinkat(dir, name, flags).map_err(err)
        }
        Err(e) => Err(err(e)),
    }
}

/// Removes the directory `name` if it is empty: `Some(true)` if it was
/// removed, `Some(false)` if it is not empty, `None` if it is gone.
fn rmdir(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<bool>> {
    let mut result = rfs::unlinkat(dir, name, AtFlags::REMOVEDIR);
    if result == Err(Errno::ACCESS) {
        // Made read-only by an interrupted final pass.
        rfs::fchmod(dir, Mode::from_raw_mode(0o700)).map_err(err)?;
        result = rfs::unlinkat(dir, name, AtFlags::REMOVEDIR);
    }
    match result {
        Ok(()) => Ok(Some(true)),
        Err(Errno::NOTEMPTY | Errno::EXIST) => Ok(Some(false)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(err(e)),
    }
}

/// One directory being walked, below the one above it in the stack.
struct Level {
    /// The inode `..` must lead back to.
    parent: u64,
    /// Where to go on reading the parent.
    resume: i64,
}

/// Walks the tree beneath `start` (inode `ino`) iteratively, holding one
/// directory open (two while climbing). With `remove_all`, everything
/// beneath `start` is removed and `start` is left empty.
///
/// Each directory is read from where its walk left it after a descent, and
/// then once more from its start whenever the pass changed anything, until
/// a pass from the start changes nothing: so a filesystem whose positions
/// shift when entries are removed (tmpfs before Linux 6.6) costs passes,
/// never a missed entry.
fn walk(
    start: OwnedFd,
    ino: u64,
    dev: u64,
    dirs: &mut Dirs,
    visit: &mut dyn Visit,
    remove_all: bool,
) -> io::Result<()> {
    let mut stack: Vec<Level> = Vec::new();
    // Levels at or below this one are being removed whole.
    let mut removing_from: Option<usize> = if remove_all { Some(0) } else { None };
    let mut dir = rfs::Dir::new(start).map_err(err)?;
    let mut ino = ino;
    let mut changed_any = false;
    let mut from_start = true;
    loop {
        let removing = removing_from.is_some_and(|d| stack.len() >= d);
        let Some(entry) = dir.read() else {
            if changed_any || !from_start {
                // A new descriptor rather than a rewind: ext4 does not go
                // back to the start of a directory whose descriptor was
                // first read at its end (a `seek` to a last cookie).
                let again = rfs::openat(dir.fd().map_err(err)?, c".", READ_DIR, Mode::empty()).map_err(err)?;
                dir = rfs::Dir::new(again).map_err(err)?;
                changed_any = false;
                from_start = true;
                continue;
            }
            let fd = dir.fd().map_err(err)?;
            let Some(level) = stack.pop() else {
                if !removing {
                    visit.leave(dirs, fd, ino)?;
                }
                return Ok(());
            };
            // Up first: the mode `leave` sets may deny the search that
            // `..` needs.
            let up = rfs::openat(fd, c"..", READ_DIR, Mode::empty()).map_err(err)?;
            if id(&rfs::fstat(&up).map_err(err)?) != (dev, level.parent) {
                return Err(changed());
            }
            if !removing {
                visit.leave(dirs, fd, ino)?;
            }
            if removing_from == Some(stack.len() + 1) {
                removing_from = None;
            }
            dir = rfs::Dir::new(up).map_err(err)?;
            dir.seek(level.resume).map_err(err)?;
            ino = level.parent;
            changed_any = true;
            from_start = false;
            continue;
        };
        let entry = entry.map_err(err)?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let fd = dir.fd().map_err(err)?;
        let mut file_type = entry.file_type();
        if file_type == FileType::Unknown {
            match rfs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => file_type = FileType::from_raw_mode(st.st_mode),
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(err(e)),
            }
        }
        if file_type != FileType::Directory {
            if removing || !visit.keep(dirs, ino, name) {
                unlink(fd, name, AtFlags::empty())?;
                changed_any = true;
            }
            continue;
        }
        let st = match rfs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if is_dir(&st) => st,
            Ok(_) => return Err(changed()),
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(err(e)),
        };
        let (_, child) = id(&st);
        let step = if removing { Step::Remove } else { visit.dir(dirs, ino, child) };
        match step {
            Step::Skip => continue,
            Step::Remove => match rmdir(fd, name)? {
                Some(true) => {
                    dirs.remove(&child);
                    changed_any = true;
                    continue;
                }
                Some(false) => {}
                None => continue,
            },
            Step::Descend => {}
        }
        let sub = if step == Step::Remove {
            open_to_remove(fd, name)?
        } else {
            rfs::openat(fd, name, READ_DIR | OFlags::NOFOLLOW, Mode::empty()).map_err(err)?
        };
        if id(&rfs::fstat(&sub).map_err(err)?) != (dev, child) {
            return Err(changed());
        }
        stack.push(Level { parent: ino, resume: entry.offset() });
        if step == Step::Remove && removing_from.is_none() {
            removing_from = Some(stack.len());
        }
        dir = rfs::Dir::new(sub).map_err(err)?;
        ino = child;
        changed_any = false;
        from_start = true;
    }
}

/// What is at `name` in `dir`, without following a symlink, and its inode.
pub fn kind_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<(Kind, u64)>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some((if is_dir(&st) { Kind::Dir } else { Kind::Other }, id(&st).1))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(err(e)),
    }
}

pub fn open_subdir(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    rfs::openat(dir, name, READ_DIR | OFlags::NOFOLLOW, Mode::empty()).map_err(err)
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

/// Clears the set-user-ID and set-group-ID bits of a directory we made
/// (DEST, made inside a set-group-ID directory, inherits the latter).
pub fn clear_setid(path: &Path) -> io::Result<()> {
    let fd = rfs::open(path, READ_DIR | OFlags::NOFOLLOW, Mode::empty()).map_err(err)?;
    let mode = rfs::fstat(&fd).map_err(err)?.st_mode;
    if mode & 0o6000 != 0 {
        set_mode(&fd, mode & 0o1777)?;
    }
    Ok(())
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
