//! The unpack sink: applies each entry of a layer to the destination tree
//! the way the spec's consumer requirements say.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read};
use std::os::fd::AsFd;

use serde::Serialize;

use super::fs::{self, Kind as OnDisk, Root};
use crate::layer::path::{Normal, escape};
use crate::layer::{Entry, Kind, Sink, SinkError};
use crate::stats::Tally;

use crate::spec::whiteout::{self, Name};
use crate::spec::xattr::{self, Class};

/// What the unpack did, by the spec's requirement identifiers.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub fifos: u64,
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

pub struct Extractor<'r> {
    root: &'r mut Root,
    keys: RandomState,
    /// Paths created by the layer being applied, and every ancestor of
    /// one: whiteouts of the same layer must not remove them, only the
    /// lower content around them (CONSUMER-WHITEOUT, CONSUMER-OPAQUE).
    created: HashSet<u64>,
    /// Paths the layer being applied has entries for (not mere ancestors).
    explicit: HashSet<u64>,
    /// Final directory modes, applied after the last layer so that a
    /// read-only directory never stops a later entry (CONSUMER-READONLY-DIR).
    pub dir_modes: BTreeMap<Normal, u32>,
    pub summary: Summary,
    max: usize,
}

/// Why an entry was not applied; reported, not fatal.
enum Reject {
    /// Counted already in its own category (a hardlink without target).
    Skipped,
    /// Counted under `rejected`, with the reason.
    Because(&'static str),
}

impl<'r> Extractor<'r> {
    pub fn new(root: &'r mut Root, max_examples: usize) -> Self {
        Extractor {
            root,
            keys: RandomState::new(),
            created: HashSet::new(),
            explicit: HashSet::new(),
            dir_modes: BTreeMap::new(),
            summary: Summary::default(),
            max: max_examples,
        }
    }

    pub fn root(&self) -> &Root {
        self.root
    }

    /// Called between layers.
    pub fn next_layer(&mut self) {
        self.created.clear();
        self.explicit.clear();
        self.root.forget();
    }

    fn key(&self, p: &Normal) -> u64 {
        self.keys.hash_one(&p.0)
    }

    /// Marks `p` and its ancestors as this layer's.
    fn mark_created(&mut self, p: &Normal) {
        self.created.insert(self.key(p));
        for a in p.ancestors() {
            self.created.insert(self.keys.hash_one(a));
        }
    }

    fn note(t: &mut Tally, max: usize, e: &Entry, detail: Option<String>) {
        t.count += 1;
        if t.examples.len() < max {
            t.examples.push(crate::report::Example { path: e.display_path(), detail });
        }
    }

    fn apply(&mut self, e: &Entry, data: &mut dyn Read) -> io::Result<Result<(), Reject>> {
        if e.over_limit.is_some() {
            return Ok(Err(Reject::Because(
                "it exceeds a limit (--max-path-bytes, --max-path-depth, --max-pax-bytes)",
            )));
        }
        let path = match &e.path {
            Ok(p) => p.clone(),
            Err(_) => return Ok(Err(Reject::Because("the name climbs above the root"))),
        };
        if path.is_root() {
            if e.kind != Kind::Dir {
                return Ok(Err(Reject::Because("a non-directory entry names the root")));
            }
            self.dir_modes.insert(path, e.mode & 0o1777);
            return Ok(Ok(()));
        }
        let name = path.name().to_vec();
        // `.wh.` names are never created (CONSUMER-WHITEOUT), not even as the
        // directories a later component would need (CONSUMER-WHITEOUT-INVALID).
        if whiteout::under_whiteout(&path) {
            return Ok(Err(Reject::Because("a `.wh.` name used as a directory")));
        }
        match whiteout::classify(&name) {
            Name::Plain => {}
            Name::Invalid(why) => return Ok(Err(Reject::Because(why))),
            Name::Opaque => return self.opaque(&path),
            Name::Removes(rest) => return self.whiteout(&path, rest),
        }
        if e.mode & 0o6000 != 0 {
            Self::note(&mut self.summary.setid_cleared, self.max, e, Some(format!("{:o}", e.mode)));
        }
        // A hardlink's target is looked up before the link's own parent is
        // borrowed from the root.
        let target = match e.kind {
            Kind::Hardlink => match self.link_target(e, &path)? {
                Ok(t) => Some(t),
                Err(r) => return Ok(Err(r)),
            },
            _ => None,
        };
        let mut made = Vec::new();
        let Some(dir) = self.root.parent(&path, &mut |p| made.push(p))? else {
            return Ok(Err(Reject::Because("a parent of the path is not a directory, or is a symlink to nothing")));
        };
        let dir = dir.try_clone_to_owned()?;
        for p in made {
            self.mark_created(&p);
            self.dir_modes.entry(p).or_insert(0o755);
        }
        let existing = fs::kind_at(dir.as_fd(), &name)?;
        let replace = |root: &mut Root, modes: &mut BTreeMap<Normal, u32>| -> io::Result<()> {
            if existing.is_some() {
                root.forget();
                forget_modes(modes, &path);
                fs::remove(dir.as_fd(), &name)?;
            }
            Ok(())
        };
        match e.kind {
            Kind::Dir => {
                if existing != Some(OnDisk::Dir) {
                    replace(self.root, &mut self.dir_modes)?;
                    fs::make_dir(dir.as_fd(), &name)?;
                }
                self.dir_modes.insert(path.clone(), e.mode & 0o1777);
                if !e.xattrs.is_empty() {
                    let fd = fs::open_subdir(dir.as_fd(), &name)?;
                    self.xattrs(e, &fd);
                }
                self.summary.directories += 1;
            }
            Kind::File => {
                replace(self.root, &mut self.dir_modes)?;
                let file = fs::create_file(dir.as_fd(), &name, data)?;
                // Attributes before the mode: a read-only mode would make
                // the kernel refuse them.
                self.xattrs(e, &file);
                fs::set_mtime(&file, e.mtime)?;
                fs::set_mode(&file, e.mode & 0o777)?;
                self.summary.files += 1;
            }
            Kind::Symlink => {
                replace(self.root, &mut self.dir_modes)?;
                fs::make_symlink(dir.as_fd(), &name, e.link.as_deref().unwrap_or_default())?;
                fs::set_link_mtime(dir.as_fd(), &name, e.mtime)?;
                self.summary.symlinks += 1;
            }
            Kind::Hardlink => {
                let (tdir, tname) = target.expect("looked up above");
                replace(self.root, &mut self.dir_modes)?;
                match fs::make_hardlink(tdir.as_fd(), &tname, dir.as_fd(), &name) {
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
                replace(self.root, &mut self.dir_modes)?;
                fs::make_fifo(dir.as_fd(), &name, e.mode & 0o777)?;
                self.summary.fifos += 1;
            }
            Kind::Char | Kind::Block => {
                // Skipping leaves nothing at the path, not even what a
                // lower layer had there.
                replace(self.root, &mut self.dir_modes)?;
                Self::note(&mut self.summary.devices_skipped, self.max, e, Some(e.kind.name().into()));
            }
            Kind::Other(_) | Kind::Global => {
                replace(self.root, &mut self.dir_modes)?;
                Self::note(&mut self.summary.unknown_skipped, self.max, e, None);
            }
        }
        self.mark_created(&path);
        self.explicit.insert(self.key(&path));
        Ok(Ok(()))
    }

    /// The existing object a hardlink entry names: its directory and name.
    fn link_target(&mut self, e: &Entry, path: &Normal) -> io::Result<Result<(std::os::fd::OwnedFd, Vec<u8>), Reject>> {
        let Some(Ok(target)) = e.link.as_deref().map(Normal::parse) else {
            return Ok(Err(Reject::Because("the hardlink target climbs above the root")));
        };
        if target.is_root() || &target == path {
            return Ok(Err(Reject::Because("the hardlink names itself or the root")));
        }
        let Some(tdir) = self.root.lookup(&target.parent())? else {
            Self::note(&mut self.summary.hardlinks_skipped, self.max, e, Some(format!("target {}", target.display())));
            return Ok(Err(Reject::Skipped));
        };
        match fs::kind_at(tdir.as_fd(), target.name())? {
            None => {
                Self::note(
                    &mut self.summary.hardlinks_skipped,
                    self.max,
                    e,
                    Some(format!("target {}", target.display())),
                );
                Ok(Err(Reject::Skipped))
            }
            Some(OnDisk::Dir) => Ok(Err(Reject::Because("the hardlink targets a directory"))),
            Some(OnDisk::Other) => Ok(Ok((tdir, target.name().to_vec()))),
        }
    }

    /// CONSUMER-OPAQUE.
    fn opaque(&mut self, path: &Normal) -> io::Result<Result<(), Reject>> {
        let dir = path.parent();
        self.summary.whiteouts += 1;
        self.root.forget();
        if let Some(fd) = self.root.read_dir(&dir)? {
            self.prune(&fd, &dir)?;
        }
        Ok(Ok(()))
    }

    /// CONSUMER-WHITEOUT: `path` is `DIR/.wh.REST`.
    fn whiteout(&mut self, path: &Normal, rest: &[u8]) -> io::Result<Result<(), Reject>> {
        let dir = path.parent();
        self.summary.whiteouts += 1;
        self.root.forget();
        let Some(fd) = self.root.lookup(&dir)? else { return Ok(Ok(())) };
        let target = dir.join(rest);
        if !self.created.contains(&self.key(&target)) {
            forget_modes(&mut self.dir_modes, &target);
            fs::remove(fd.as_fd(), rest)?;
        } else if fs::kind_at(fd.as_fd(), rest)? == Some(OnDisk::Dir) {
            // This layer made it, or made something beneath it: only the
            // lower content goes, with the lower directory's own mode.
            self.lower_dir_gone(&target);
            let sub = fs::open_subdir(fd.as_fd(), rest)?;
            self.prune(&sub, &target)?;
        }
        Ok(Ok(()))
    }

    /// Removes from `dir` everything the current layer did not create.
    fn prune(&mut self, fd: &std::os::fd::OwnedFd, dir: &Normal) -> io::Result<()> {
        for child in fs::children(fd)? {
            let path = dir.join(&child);
            if !self.created.contains(&self.key(&path)) {
                forget_modes(&mut self.dir_modes, &path);
                fs::remove(fd.as_fd(), &child)?;
            } else if fs::kind_at(fd.as_fd(), &child)? == Some(OnDisk::Dir) {
                self.lower_dir_gone(&path);
                let sub = fs::open_subdir(fd.as_fd(), &child)?;
                self.prune(&sub, &path)?;
            }
        }
        Ok(())
    }

    /// A lower directory removed by a whiteout but kept on disk for what
    /// this layer wrote beneath it is, in effect, made again implicitly:
    /// unless this layer has an entry for it, it gets the implicit 0755, as
    /// it would had the whiteout come first.
    fn lower_dir_gone(&mut self, dir: &Normal) {
        if !self.explicit.contains(&self.key(dir)) {
            self.dir_modes.insert(dir.clone(), 0o755);
        }
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

/// Drops the recorded modes of `path` and everything beneath it: they
/// belong to directories that are gone, and a directory made again at the
/// same path must not inherit them.
fn forget_modes(modes: &mut BTreeMap<Normal, u32>, path: &Normal) {
    modes.remove(path);
    // Descendants sort from "path/" up to, not including, "path0" ('0'
    // follows '/'), whatever names like "path-x" sort between.
    let (mut from, mut to) = (path.0.clone(), path.0.clone());
    from.push(b'/');
    to.push(b'0');
    let doomed: Vec<Normal> = modes.range(Normal(from)..Normal(to)).map(|(p, _)| p.clone()).collect();
    for p in doomed {
        modes.remove(&p);
    }
}

impl Sink for Extractor<'_> {
    fn entry(&mut self, e: &Entry, data: &mut dyn Read) -> Result<(), SinkError> {
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
            Err(err) => Err(SinkError(format!("cannot apply {}: {err}", e.display_path()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgetting_modes_takes_descendants_only() {
        let n = |s: &str| Normal(s.as_bytes().to_vec());
        let mut m: BTreeMap<Normal, u32> =
            ["a", "a-b", "a/x", "a/x/y", "a0", "ab"].iter().map(|p| (n(p), 0o755)).collect();
        forget_modes(&mut m, &n("a"));
        assert_eq!(m.keys().map(|k| k.display()).collect::<Vec<_>>(), ["a-b", "a0", "ab"]);
    }
}
