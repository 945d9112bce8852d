//! The unpack sink: applies each entry of a layer to the destination tree
//! the way the spec's consumer requirements say.

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};

use serde::Serialize;

use super::fs::{self, DirFd, DirInfo, Dirs, Kind as OnDisk, Root, Step, Unresolved, flag};
use crate::layer::path::{Normal, escape};
use crate::layer::{Entry, Kind, Sink, SinkError};
use crate::rules::LAYER_AMBIGUOUS;
use crate::stats::Tally;

use crate::spec::whiteout::{self, Name};
use crate::spec::xattr::{self, Class};

/// What the unpack did, by the spec's requirement identifiers.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Regular files written.
    pub files: u64,
    /// Directories made.
    pub directories: u64,
    /// Symbolic links made.
    pub symlinks: u64,
    /// Hard links made.
    pub hardlinks: u64,
    /// FIFOs made.
    pub fifos: u64,
    /// Whiteouts and opaque markers applied (CONSUMER-WHITEOUT, CONSUMER-OPAQUE).
    pub whiteouts: u64,
    /// CONSUMER-SETID-CLEARED: entries that recorded setuid or setgid.
    pub setid_cleared: Tally,
    /// CONSUMER-DEVICES, CONSUMER-DEVICES-REPORTED.
    pub devices_skipped: Tally,
    /// CONSUMER-UNKNOWN-TYPES.
    pub unknown_skipped: Tally,
    /// CONSUMER-HARDLINK: links whose target did not exist.
    pub hardlinks_skipped: Tally,
    /// CONSUMER-DOTDOT, CONSUMER-HARDLINK-CONTAINED and entries that
    /// cannot be applied (a parent that is not a directory, say).
    pub rejected: Tally,
    /// CONSUMER-XATTR-CAPABILITY.
    pub capabilities_dropped: Tally,
    /// CONSUMER-XATTR-EXCLUDED: `user.` attributes that record owners or
    /// overlay state for other tools, not applied.
    pub owner_xattrs_excluded: Tally,
    /// CONSUMER-XATTR-OTHER: attributes outside `user.`, not applied.
    pub xattrs_not_applied: Tally,
    /// CONSUMER-XATTR-USER: `user.*` attributes the filesystem refused.
    pub user_xattrs_refused: Tally,
}

/// The unpack sink: owns the destination tree while layers are applied.
pub struct Extractor {
    root: Root,
    keys: RandomState,
    /// Non-directories made by the layer being applied, by parent
    /// directory and name (8 bytes each): whiteouts of the same layer must
    /// not remove them (CONSUMER-WHITEOUT, CONSUMER-OPAQUE). Directories
    /// carry the same facts as flags, by inode ([`fs::flag`]).
    created: HashSet<u64>,
    /// The mode DEST ends with, if an entry names the root.
    root_mode: Option<u32>,
    pub summary: Summary,
    max: usize,
}

/// Why an entry was not applied; reported, not fatal.
enum Reject {
    /// Counted already in its own category (a hardlink without target).
    Skipped,
    /// Counted under `rejected`, with the reason.
    Because(Cow<'static, str>),
}

fn because(why: impl Into<Cow<'static, str>>) -> io::Result<Result<(), Reject>> {
    Ok(Err(Reject::Because(why.into())))
}

impl Extractor {
    /// An extractor writing into `root`, keeping `max_examples` example
    /// paths per category of its summary.
    pub fn new(root: Root, max_examples: usize) -> Self {
        Extractor {
            root,
            keys: RandomState::new(),
            created: HashSet::new(),
            root_mode: None,
            summary: Summary::default(),
            max: max_examples,
        }
    }

    /// Called between layers.
    pub fn next_layer(&mut self) {
        self.created.clear();
        self.root.next_layer();
    }

    /// Called after the last layer: directory modes, children first, so
    /// that a read-only directory never stopped an entry
    /// (CONSUMER-READONLY-DIR), and no directory keeps a set-group-ID bit
    /// inherited from DEST (CONSUMER-SETID-CLEARED).
    pub fn finish(&mut self) -> io::Result<()> {
        self.root.apply_modes(self.root_mode)
    }

    fn key(&self, dir: u64, name: &[u8]) -> u64 {
        self.keys.hash_one((dir, name))
    }

    fn note(t: &mut Tally, max: usize, e: &Entry, detail: Option<String>) {
        t.count += 1;
        if t.examples.len() < max {
            t.examples.push(crate::diagnostic::Example { path: e.display_path(), detail });
        }
    }

    fn rejected(&self, u: Unresolved) -> Reject {
        Reject::Because(u.why(self.root.max_depth()).into())
    }

    fn apply(&mut self, e: &Entry, data: &mut dyn Read) -> io::Result<Result<(), Reject>> {
        if e.over_limit.is_some() {
            return because("it exceeds a limit (--max-path-bytes, --max-path-depth, --max-pax-bytes)");
        }
        if let Some(why) = &e.malformed {
            // CONSUMER-SPARSE: a sparse map that cannot be applied as recorded.
            return because(why.clone());
        }
        let path = match &e.path {
            Ok(p) => p.clone(),
            Err(_) => return because("the name climbs above the root"),
        };
        // No system call takes a name with a NUL byte in it.
        if path.0.contains(&0) || e.link.as_deref().is_some_and(|l| l.contains(&0)) {
            return because("a NUL byte in the name or link target");
        }
        // Nor a component longer than NAME_MAX.
        if path.components().any(|c| c.len() > 255) {
            return because("a name component longer than 255 bytes, which Linux cannot create");
        }
        if path.is_root() {
            if e.kind != Kind::Dir {
                return because("a non-directory entry names the root");
            }
            self.root_mode = Some(e.mode & 0o1777);
            return Ok(Ok(()));
        }
        let name = path.name().to_vec();
        // `.wh.` names are never created (CONSUMER-WHITEOUT), not even as the
        // directories a later component would need (CONSUMER-WHITEOUT-INVALID).
        if whiteout::under_whiteout(&path) {
            return because("a `.wh.` name used as a directory");
        }
        match whiteout::classify(&name) {
            Name::Plain => {}
            Name::Invalid(why) => return because(why),
            Name::Opaque => return self.opaque(&path),
            Name::Removes(rest) => return self.whiteout(&path, rest),
        }
        if e.kind == Kind::Symlink && e.link.as_deref().unwrap_or_default().is_empty() {
            return because("a symlink with an empty target, which Linux cannot create");
        }
        if e.mode & 0o6000 != 0 {
            Self::note(&mut self.summary.setid_cleared, self.max, e, Some(format!("{:o}", e.mode)));
        }
        // A hardlink's target is looked up before the link's own parent.
        let target = match e.kind {
            Kind::Hardlink => match self.link_target(e, &path)? {
                Ok(t) => Some(t),
                Err(r) => return Ok(Err(r)),
            },
            _ => None,
        };
        let dir = match self.root.parent(&path)? {
            Ok(dir) => dir,
            Err(u) => return Ok(Err(self.rejected(u))),
        };
        let existing = fs::kind_at(dir.fd(), &name)?;
        let replace = |root: &mut Root| -> io::Result<()> {
            if existing.is_some() {
                root.remove(&dir, &name)?;
            }
            Ok(())
        };
        match e.kind {
            Kind::Dir => {
                let ino = match existing {
                    Some((OnDisk::Dir, ino)) => ino,
                    _ => {
                        replace(&mut self.root)?;
                        self.root.make_dir(&dir, &name)?
                    }
                };
                let layer = self.root.layer;
                if let Some(info) = self.root.dirs.get_mut(&ino) {
                    info.set(layer, flag::EXPLICIT);
                    info.mode = (e.mode & 0o1777) as u16;
                }
                if !e.xattrs.is_empty() {
                    let fd = fs::open_subdir(dir.fd(), &name)?;
                    self.xattrs(e, &fd);
                }
                self.root.mark(ino);
                self.summary.directories += 1;
            }
            Kind::File => {
                replace(&mut self.root)?;
                let file = fs::create_file(dir.fd(), &name, data)?;
                // Attributes before the mode: a read-only mode would make
                // the kernel refuse them.
                self.xattrs(e, &file);
                fs::set_mtime(&file, e.mtime)?;
                fs::set_mode(&file, e.mode & 0o777)?;
                self.summary.files += 1;
            }
            Kind::Symlink => {
                replace(&mut self.root)?;
                fs::make_symlink(dir.fd(), &name, e.link.as_deref().unwrap_or_default())?;
                fs::set_link_mtime(dir.fd(), &name, e.mtime)?;
                self.summary.symlinks += 1;
            }
            Kind::Hardlink => {
                let (tdir, tname) = target.expect("looked up above");
                replace(&mut self.root)?;
                match fs::make_hardlink(tdir.fd(), &tname, dir.fd(), &name) {
                    Ok(()) => self.summary.hardlinks += 1,
                    // The target lived inside what the link replaced (a link
                    // `a` to `a/x`): nothing is left to link to.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {
                        let detail = Some(format!("target {} went with what the link replaced", escape(&tname)));
                        Self::note(&mut self.summary.hardlinks_skipped, self.max, e, detail);
                        return Ok(Ok(()));
                    }
                    Err(err) => return Err(err),
                }
            }
            Kind::Fifo => {
                replace(&mut self.root)?;
                fs::make_fifo(dir.fd(), &name, e.mode & 0o777)?;
                self.summary.fifos += 1;
            }
            Kind::Char | Kind::Block => {
                // Skipping leaves nothing at the path, not even what a
                // lower layer had there.
                replace(&mut self.root)?;
                Self::note(&mut self.summary.devices_skipped, self.max, e, Some(e.kind.name().into()));
            }
            Kind::Other(_) | Kind::Global => {
                replace(&mut self.root)?;
                Self::note(&mut self.summary.unknown_skipped, self.max, e, None);
            }
        }
        self.created.insert(self.key(dir.ino, &name));
        self.root.mark(dir.ino);
        Ok(Ok(()))
    }

    /// The existing object a hardlink entry names: its directory and name.
    fn link_target(&mut self, e: &Entry, path: &Normal) -> io::Result<Result<(DirFd, Vec<u8>), Reject>> {
        let Some(Ok(target)) = e.link.as_deref().map(Normal::parse) else {
            return Ok(Err(Reject::Because("the hardlink target climbs above the root".into())));
        };
        if target.is_root() || &target == path {
            return Ok(Err(Reject::Because("the hardlink names itself or the root".into())));
        }
        let tdir = match self.root.lookup(&target.parent())? {
            Ok(dir) => Some(dir),
            // CONSUMER-SYMLINK-PARENT: a link that does not resolve.
            Err(u) if u.is_link() => return Ok(Err(self.rejected(u))),
            // Nothing is at the target path (CONSUMER-HARDLINK).
            Err(_) => None,
        };
        let found = match &tdir {
            Some(dir) => fs::kind_at(dir.fd(), target.name())?,
            None => None,
        };
        match (tdir, found) {
            (Some(dir), Some((OnDisk::Other, _))) => Ok(Ok((dir, target.name().to_vec()))),
            (_, Some((OnDisk::Dir, _))) => Ok(Err(Reject::Because("the hardlink targets a directory".into()))),
            _ => {
                let detail = Some(format!("target {}", target.display()));
                Self::note(&mut self.summary.hardlinks_skipped, self.max, e, detail);
                Ok(Err(Reject::Skipped))
            }
        }
    }

    /// The directory that holds a whiteout, or `None` when there is none
    /// (the whiteout then has no effect).
    fn whiteout_dir(&mut self, dir: &Normal) -> io::Result<Result<Option<DirFd>, Reject>> {
        self.summary.whiteouts += 1;
        match self.root.lookup(dir)? {
            Ok(fd) => Ok(Ok(Some(fd))),
            Err(u) if u.is_link() => {
                self.summary.whiteouts -= 1;
                Ok(Err(self.rejected(u)))
            }
            Err(_) => Ok(Ok(None)),
        }
    }

    /// CONSUMER-OPAQUE.
    fn opaque(&mut self, path: &Normal) -> io::Result<Result<(), Reject>> {
        match self.whiteout_dir(&path.parent())? {
            Ok(Some(dir)) => self.prune(&dir)?,
            Ok(None) => {}
            Err(r) => return Ok(Err(r)),
        }
        Ok(Ok(()))
    }

    /// CONSUMER-WHITEOUT: `path` is `DIR/.wh.REST`.
    fn whiteout(&mut self, path: &Normal, rest: &[u8]) -> io::Result<Result<(), Reject>> {
        let dir = match self.whiteout_dir(&path.parent())? {
            Ok(Some(dir)) => dir,
            Ok(None) => return Ok(Ok(())),
            Err(r) => return Ok(Err(r)),
        };
        let layer = self.root.layer;
        match fs::kind_at(dir.fd(), rest)? {
            None => {}
            Some((OnDisk::Other, _)) if self.created.contains(&self.key(dir.ino, rest)) => {}
            Some((OnDisk::Other, _)) => self.root.remove(&dir, rest)?,
            Some((OnDisk::Dir, ino)) => match self.root.dirs.get_mut(&ino) {
                Some(info) if info.has(layer, flag::MARKED) => {
                    // This layer made it, or made something beneath it:
                    // only the lower content goes, with the lower
                    // directory's own mode.
                    lower_dir_gone(info, layer);
                    let sub = self.root.subdir(&dir, rest)?;
                    self.prune(&sub)?;
                }
                _ => self.root.remove(&dir, rest)?,
            },
        }
        Ok(Ok(()))
    }

    /// Removes from `dir` everything the current layer did not make.
    fn prune(&mut self, dir: &DirFd) -> io::Result<()> {
        let layer = self.root.layer;
        let clean =
            self.root.dirs.get(&dir.ino).is_some_and(|i| i.has(layer, flag::BORN) || i.has(layer, flag::PRUNED));
        if clean {
            // Nothing of a lower layer is in it.
            return Ok(());
        }
        let mut visit = Prune { created: &self.created, keys: &self.keys, layer };
        self.root.walk(dir, &mut visit)
    }

    fn xattrs(&mut self, e: &Entry, fd: &impl AsFd) {
        for (name, value) in &e.xattrs {
            let shown = Some(escape(name));
            match xattr::classify(name) {
                Class::Capability => Self::note(&mut self.summary.capabilities_dropped, self.max, e, None),
                Class::OwnerBearing => Self::note(&mut self.summary.owner_xattrs_excluded, self.max, e, shown),
                Class::Acl | Class::Privileged | Class::Other => {
                    Self::note(&mut self.summary.xattrs_not_applied, self.max, e, shown)
                }
                Class::User => {
                    if fs::set_xattr(fd.as_fd(), name, value).is_err() {
                        Self::note(&mut self.summary.user_xattrs_refused, self.max, e, shown);
                    }
                }
            }
        }
    }
}

/// A lower directory removed by a whiteout but kept on disk for what this
/// layer wrote beneath it is, in effect, made again implicitly: unless this
/// layer has an entry for it, it gets the implicit 0755, as it would had
/// the whiteout come first.
fn lower_dir_gone(info: &mut DirInfo, layer: u32) {
    if !info.has(layer, flag::EXPLICIT) {
        info.mode = 0o755;
    }
}

/// Walks a directory whose lower content goes, keeping what this layer
/// made (CONSUMER-OPAQUE, and CONSUMER-WHITEOUT of a directory this layer
/// wrote into).
struct Prune<'a> {
    created: &'a HashSet<u64>,
    keys: &'a RandomState,
    layer: u32,
}

impl fs::Visit for Prune<'_> {
    fn keep(&mut self, _: &Dirs, dir: u64, name: &[u8]) -> bool {
        self.created.contains(&self.keys.hash_one((dir, name)))
    }

    fn dir(&mut self, dirs: &mut Dirs, _: u64, ino: u64) -> Step {
        let Some(info) = dirs.get_mut(&ino) else { return Step::Remove };
        if !info.has(self.layer, flag::MARKED) {
            return Step::Remove;
        }
        lower_dir_gone(info, self.layer);
        if info.has(self.layer, flag::BORN) || info.has(self.layer, flag::PRUNED) { Step::Skip } else { Step::Descend }
    }

    fn leave(&mut self, dirs: &mut Dirs, _: BorrowedFd<'_>, ino: u64) -> io::Result<()> {
        if let Some(info) = dirs.get_mut(&ino) {
            info.set(self.layer, flag::PRUNED);
        }
        Ok(())
    }
}

impl Sink for Extractor {
    fn entry(&mut self, e: &Entry, data: &mut dyn Read) -> Result<(), SinkError> {
        // What GNU tar, bsdtar and Go read differently has no one right
        // reading to apply, and the entries after it may be in doubt too:
        // the unpack stops, as validate reports it (PRODUCER-UNAMBIGUOUS).
        // An entry of unknown type is the exception: readers disagree on
        // what it is, but a consumer creates nothing for it whatever it is
        // (CONSUMER-UNKNOWN-TYPES), and its data is skipped by all alike.
        // A disagreement about the owner does not matter either: the entry
        // becomes the invoking user's whatever it records.
        let unknown = matches!(e.kind, Kind::Other(_));
        if let Some(p) = e.unappliable().filter(|_| !unknown) {
            return Err(SinkError::finding(
                &LAYER_AMBIGUOUS,
                format!(
                    "tar readers disagree about {} ({}); validate reports it as layer-ambiguous",
                    e.display_path(),
                    p.detail
                ),
            ));
        }
        if e.kind == Kind::Global {
            return Ok(());
        }
        match self.apply(e, data) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Reject::Skipped)) => Ok(()),
            Ok(Err(Reject::Because(why))) => {
                Self::note(&mut self.summary.rejected, self.max, e, Some(why.into()));
                Ok(())
            }
            Err(err) => Err(SinkError::other(format!("cannot apply {}: {err}", e.display_path()))),
        }
    }
}
