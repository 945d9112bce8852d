//! Rules on the entries of a layer, for every image whatever it declares:
//! paths, duplicates, hardlinks, whiteouts, header fields (spec section
//! "Checks of existing OCI requirements", and PRODUCER-ID-RANGE and
//! PRODUCER-PAX-CONSISTENT).
//!
//! Paths are remembered as keyed 64-bit hashes, not strings: 8 bytes per
//! entry is the one structure here that grows with the entry count, and it
//! is what duplicate and hardlink checks need.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::io::Read;

use super::{
    LAYER_AMBIGUOUS, LAYER_DUPLICATE, LAYER_HARDLINK, LAYER_HEADER_FIELD, LAYER_ID_RANGE, LAYER_PARENT,
    LAYER_PATH_ABSOLUTE, LAYER_PATH_ESCAPE, LAYER_PAX_MISMATCH, LAYER_SPARSE, LAYER_SYMLINK_EMPTY, LAYER_WHITEOUT,
    LAYER_WHITEOUT_CONTENT, LIMIT_EXCEEDED,
};
use crate::diagnostic::{Groups, Location};
use crate::layer::path::{Normal, escape};
use crate::layer::{Entry, Fault, Kind, Sink, SinkError};

use crate::spec::ids::MAX_ID;
use crate::spec::whiteout::{self, Name};

/// What one layer created and removed, for hardlink checks across layers.
///
/// Paths are keyed 64-bit hashes: a layer of N entries costs about
/// 9 bytes × the table's capacity (at most 2N), whatever the names' length.
#[derive(Default)]
pub struct LinkIndex {
    /// Every path the layer creates, as its hash with the lowest bit set
    /// for a directory (see [`tagged`]).
    created: HashSet<u64>,
    /// Paths the layer's whiteouts remove from lower layers.
    removed: HashSet<u64>,
    /// Directories the layer makes opaque.
    opaque: HashSet<u64>,
    /// Hardlinks whose target this layer did not create.
    deferred: Vec<Deferred>,
    /// Parent (hash) of every directory (hash) on the way to a deferred
    /// target, for the whiteouts and opaque markers above it.
    parents: HashMap<u64, u64>,
    /// Every directory that some entry of the layer lies under, for the
    /// symbolic links of lower layers that entries use as parents.
    dirs_used: HashSet<u64>,
    /// The symbolic links the layer made (path hash → path and target);
    /// at most [`SYMLINK_BUDGET`] bytes of them are kept.
    symlinks: HashMap<u64, (Vec<u8>, Vec<u8>)>,
}

/// A hardlink to resolve against the lower layers.
struct Deferred {
    /// Tagged hash of the target, and of its parent directory.
    target: u64,
    parent: u64,
    /// The link's and the target's names, kept for the first
    /// [`NAMED_DEFERRED`] links of a layer only: the reports show a few
    /// examples, and the rest is counted.
    names: Option<Box<(Vec<u8>, Vec<u8>)>>,
}

/// Deferred hardlinks of a layer whose names are kept for reports.
const NAMED_DEFERRED: usize = 256;

/// A path hash with its lowest bit saying whether it is a directory, so
/// one set of `u64` says both that a path exists and what it is.
fn tagged(hash: u64, dir: bool) -> u64 {
    (hash & !1) | u64::from(dir)
}

impl LinkIndex {
    /// Is `hash` created by this layer (`Some(is_dir)`)?
    fn created(&self, hash: u64) -> Option<bool> {
        if self.created.contains(&tagged(hash, true)) {
            Some(true)
        } else if self.created.contains(&tagged(hash, false)) {
            Some(false)
        } else {
            None
        }
    }
}

/// The sink that applies the rules on entries to one layer, grouping its
/// findings per rule and message.
pub struct LayerRules<'a> {
    keys: &'a RandomState,
    at: Location,
    groups: Groups,
    index: LinkIndex,
    /// Bytes of `index.symlinks` so far.
    symlink_bytes: usize,
}

/// Bytes of symbolic-link names and targets a layer's check keeps (links
/// past it are not followed, which can only hide a loop, never invent one).
const SYMLINK_BUDGET: usize = 16 << 20;

/// Links followed in one resolution, as Linux does.
const MAX_LINKS: usize = 40;

impl<'a> LayerRules<'a> {
    /// `keys` must be shared by every layer of an image so hashes compare.
    pub fn new(keys: &'a RandomState, at: Location, max_examples: usize) -> Self {
        LayerRules { keys, at, groups: Groups::new(max_examples), index: LinkIndex::default(), symlink_bytes: 0 }
    }

    /// The findings of the layer, and what it created and removed for the
    /// checks across layers.
    pub fn finish(self) -> (Groups, LinkIndex) {
        (self.groups, self.index)
    }

    fn key(&self, p: &[u8]) -> u64 {
        self.keys.hash_one(p)
    }

    fn add(&mut self, rule: &'static super::Rule, message: impl Into<String>, e: &Entry, detail: Option<String>) {
        self.groups.add(rule, &self.at, message.into(), e.display_path(), detail);
    }

    fn whiteout(&mut self, e: &Entry, path: &Normal, name: Name<'_>) {
        match name {
            Name::Opaque => {
                let dir = self.key(&path.parent().0);
                self.index.opaque.insert(dir);
            }
            Name::Removes(rest) => {
                let target = self.key(&path.parent().join(rest).0);
                self.index.removed.insert(target);
            }
            Name::Invalid(why) => {
                self.add(&LAYER_WHITEOUT, "invalid whiteout name", e, Some(why.to_string()));
                return;
            }
            Name::Plain => return,
        }
        if e.kind != Kind::File || e.size != 0 {
            let detail = format!("{}, {} bytes", e.kind.name(), e.size);
            self.add(&LAYER_WHITEOUT_CONTENT, "whiteout is not an empty regular file", e, Some(detail));
        }
    }

    /// Keeps a hardlink whose target is not in this layer, to look for it
    /// in the lower layers once they are read.
    fn defer(&mut self, e: &Entry, target: Normal) {
        let mut child = self.key(&target.0);
        for dir in target.ancestors().collect::<Vec<_>>().into_iter().rev().chain(std::iter::once(&b""[..])) {
            let parent = self.key(dir);
            if self.index.parents.insert(child, parent).is_some() {
                break; // the rest of the way up is known
            }
            child = parent;
        }
        let parent = self.key(&target.parent().0);
        let names =
            (self.index.deferred.len() < NAMED_DEFERRED).then(|| Box::new((e.raw_path.clone(), target.0.clone())));
        self.index.deferred.push(Deferred { target: self.key(&target.0), parent, names });
    }

    /// CONSUMER-SYMLINK-PARENT: does a symbolic link this layer made, met
    /// among the parents of `path`, loop or have an empty target? Links of
    /// lower layers are not known here and count as directories, so
    /// nothing is invented; [`check_lower_symlinks`] looks at those.
    fn unresolvable_parent(&self, path: &Normal) -> Option<&'static str> {
        let links = &self.index.symlinks;
        // Most entries have no link among their parents: look for one
        // without allocating before resolving.
        if links.is_empty() || !path.ancestors().any(|a| links.contains_key(&self.key(a))) {
            return None;
        }
        follow(self.keys, &path.parent().0, |k| links.get(&k).map(|(_, t)| t.as_slice()))
    }

    /// Records every directory `path` lies under, nearest first, stopping
    /// at one already known: about one hash per entry.
    fn use_parents(&mut self, path: &Normal) {
        let p = &path.0;
        let mut end = p.len();
        while let Some(i) = p[..end].iter().rposition(|b| *b == b'/') {
            if !self.index.dirs_used.insert(self.keys.hash_one(&p[..i])) {
                break;
            }
            end = i;
        }
    }

    fn hardlink(&mut self, e: &Entry, path: &Normal) {
        let Some(raw) = &e.link else { return };
        let target = match Normal::parse(raw) {
            Ok(t) => t,
            Err(_) => {
                let detail = format!("target {}", crate::layer::path::escape(raw));
                self.add(&LAYER_PATH_ESCAPE, "hardlink target climbs above the root", e, Some(detail));
                return;
            }
        };
        let detail = || Some(format!("target {}", target.display()));
        if &target == path {
            self.add(&LAYER_HARDLINK, "hardlink names itself as its target", e, detail());
            return;
        }
        if target.ancestors().any(|a| a == path.0.as_slice()) {
            // Applying the link first removes the directory its target is in.
            self.add(&LAYER_HARDLINK, "hardlink replaces the directory that holds its target", e, detail());
            return;
        }
        match self.index.created(self.key(&target.0)) {
            Some(true) => self.add(&LAYER_HARDLINK, "hardlink targets a directory", e, detail()),
            Some(false) => {}
            None => self.defer(e, target),
        }
    }
}

impl Sink for LayerRules<'_> {
    fn entry(&mut self, e: &Entry, _data: &mut dyn Read) -> Result<(), SinkError> {
        for p in &e.problems {
            let (rule, what) = match p.fault {
                Fault::Mismatch => (&LAYER_PAX_MISMATCH, "a PAX record disagrees with the header"),
                Fault::Unreadable => (&LAYER_HEADER_FIELD, "unreadable header field"),
                Fault::Ambiguous => (&LAYER_AMBIGUOUS, "tar readers disagree about the entry"),
                Fault::AmbiguousOwner => (&LAYER_AMBIGUOUS, "tar readers disagree about the entry's owner"),
            };
            self.add(rule, format!("{what}: {}", p.field), e, Some(p.detail.clone()));
        }
        if let Some(over) = &e.over_limit {
            self.add(
                &LIMIT_EXCEEDED,
                format!("entry exceeds a limit ({} raises it)", over.flag),
                e,
                Some(over.what.clone()),
            );
            return Ok(());
        }
        if e.kind == Kind::Global {
            return Ok(());
        }
        if e.sparse {
            self.add(&LAYER_SPARSE, "sparse file (consumers expand it; some tar readers do not)", e, None);
        }
        if let Some(why) = &e.malformed {
            self.add(&LAYER_HEADER_FIELD, "unreadable header field: sparse map", e, Some(why.clone()));
        }
        if e.uid > MAX_ID || e.gid > MAX_ID {
            let detail = Some(format!("{}:{}", e.uid, e.gid));
            self.add(&LAYER_ID_RANGE, "UID or GID beyond what Linux can represent (4294967294)", e, detail);
        }
        let path = match &e.path {
            Ok(p) => p.clone(),
            Err(_) => {
                self.add(&LAYER_PATH_ESCAPE, "entry name climbs above the root", e, None);
                return Ok(());
            }
        };
        if e.raw_path.starts_with(b"/") {
            self.add(&LAYER_PATH_ABSOLUTE, "absolute entry name (consumers apply it relative to the root)", e, None);
        }
        if whiteout::under_whiteout(&path) {
            self.add(&LAYER_WHITEOUT, "a `.wh.` name used as a directory", e, None);
        }
        if let Some(why) = self.unresolvable_parent(&path) {
            self.add(&LAYER_PARENT, "a parent is a symbolic link that cannot be resolved", e, Some(why.to_string()));
        }
        self.use_parents(&path);
        if e.kind == Kind::Symlink {
            let target = e.link.as_deref().unwrap_or_default();
            if target.is_empty() {
                self.add(&LAYER_SYMLINK_EMPTY, "symbolic link with an empty target", e, None);
            }
            let cost = path.0.len() + target.len();
            if self.symlink_bytes + cost <= SYMLINK_BUDGET {
                self.symlink_bytes += cost;
                self.index.symlinks.insert(self.key(&path.0), (path.0.clone(), target.to_vec()));
            }
        } else if !self.index.symlinks.is_empty() {
            // Something else at that path now.
            self.index.symlinks.remove(&self.key(&path.0));
        }
        let key = self.key(&path.0);
        if self.index.created(key).is_some() || !self.index.created.insert(tagged(key, e.kind == Kind::Dir)) {
            self.add(&LAYER_DUPLICATE, "path appears more than once in the layer", e, None);
        }
        let name = whiteout::classify(path.name());
        if name.is_whiteout() {
            self.whiteout(e, &path, name);
        } else if e.kind == Kind::Hardlink {
            self.hardlink(e, &path);
        }
        Ok(())
    }
}

/// Hardlinks whose target was not in their own layer must find it in the
/// tree the lower layers built, not removed by their own layer's whiteouts.
/// `layers[i]` is layer i of the image; `report(i, problem, link, detail)`
/// gets each failure (the link and its target escaped; `None` past the
/// links whose names are kept).
pub fn check_lower_links(
    keys: &RandomState,
    layers: &[&LinkIndex],
    report: &mut dyn FnMut(usize, &'static str, Option<(String, String)>),
) {
    for (i, layer) in layers.iter().enumerate() {
        for link in &layer.deferred {
            let problem = match resolve(keys, &layers[..i], layer, link) {
                Some(true) => "hardlink targets a directory",
                Some(false) => continue,
                None => "hardlink target is not in this layer or any lower layer",
            };
            let names = link.names.as_ref().map(|n| (escape(&n.0), format!("target {}", escape(&n.1))));
            report(i, problem, names);
        }
    }
}

/// Follows the symbolic links among the components of the directory
/// `dir`, inside the root, as a consumer resolving a parent does; `link`
/// gives the target of the link at a path hash, if one is there. Says why
/// `dir` cannot resolve, or `None`.
fn follow<'t>(keys: &RandomState, dir: &[u8], link: impl Fn(u64) -> Option<&'t [u8]>) -> Option<&'static str> {
    let mut todo: Vec<&[u8]> = dir.split(|b| *b == b'/').rev().collect();
    let mut at: Vec<&[u8]> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        match c {
            b"" | b"." => continue,
            b".." => {
                at.pop();
                continue;
            }
            _ => {}
        }
        at.push(c);
        let Some(target) = link(keys.hash_one(at.join(&b'/'))) else { continue };
        if target.is_empty() {
            // No consumer can create it (CONSUMER-SYMLINK): the entry
            // lands in a new directory instead of where the layer meant.
            return Some(
                "a symbolic link with an empty target, which consumers cannot create, so a directory takes its place",
            );
        }
        links += 1;
        if links > MAX_LINKS {
            return Some("symbolic links that loop, or more than 40 of them: consumers reject the entry");
        }
        at.pop();
        if target.starts_with(b"/") {
            at.clear();
        }
        todo.extend(target.split(|b| *b == b'/').rev());
    }
    None
}

/// CONSUMER-SYMLINK-PARENT across layers: a symbolic link that a lower
/// layer left, that loops or has an empty target through the links the
/// lower layers left, and that some entry of a higher layer lies under.
/// `layers[i]` is layer i of the image; `report(i, link, why)` gets each
/// such link once per layer whose entries need it, in path order.
pub fn check_lower_symlinks(
    keys: &RandomState,
    layers: &[&LinkIndex],
    report: &mut dyn FnMut(usize, &[u8], &'static str),
) {
    // The links the layers below the current one leave: hash → (path, target).
    let mut live: HashMap<u64, (&[u8], &[u8])> = HashMap::new();
    for (i, layer) in layers.iter().enumerate() {
        // Layer i puts something else at `path` (hash `k`), or removes it:
        // the lower link is then no link for layer i's entries.
        let replaced = |path: &[u8], k: u64| layer.created(k).is_some() || removes(keys, layer, path);
        let mut found: Vec<(&[u8], &'static str)> = Vec::new();
        for (&k, &(path, _)) in &live {
            if !layer.dirs_used.contains(&k) || replaced(path, k) {
                continue;
            }
            let lookup = |h: u64| live.get(&h).filter(|(p, _)| !replaced(p, h)).map(|(_, t)| *t);
            if let Some(why) = follow(keys, path, lookup) {
                found.push((path, why));
            }
        }
        found.sort_unstable();
        for (path, why) in found {
            report(i, path, why);
        }
        live.retain(|&k, (path, _)| !replaced(path, k));
        live.extend(layer.symlinks.iter().map(|(&k, (p, t))| (k, (p.as_slice(), t.as_slice()))));
    }
}

/// Do `layer`'s whiteouts remove `path` from the layers below it?
fn removes(keys: &RandomState, layer: &LinkIndex, path: &[u8]) -> bool {
    let hidden = |dir: &[u8]| layer.removed.contains(&keys.hash_one(dir)) || layer.opaque.contains(&keys.hash_one(dir));
    layer.removed.contains(&keys.hash_one(path))
        || layer.opaque.contains(&keys.hash_one(b""))
        || path.iter().enumerate().filter(|(_, b)| **b == b'/').any(|(i, _)| hidden(&path[..i]))
}

/// Is the target of `link` present below `top` (Some(is_dir)) or absent (None)?
fn resolve(keys: &RandomState, lower: &[&LinkIndex], top: &LinkIndex, link: &Deferred) -> Option<bool> {
    let root = keys.hash_one(b"");
    // The target's ancestors, up to the root, from the parent map.
    let mut ancestors = vec![link.parent];
    let mut at = link.parent;
    while at != root {
        match top.parents.get(&at) {
            Some(&p) if !ancestors.contains(&p) => {
                ancestors.push(p);
                at = p;
            }
            _ => break,
        }
    }
    let t = link.target;
    let hides = |l: &LinkIndex| {
        l.removed.contains(&t) || ancestors.iter().any(|a| l.opaque.contains(a) || l.removed.contains(a))
    };
    if hides(top) {
        return None;
    }
    for l in lower.iter().rev() {
        if let Some(is_dir) = l.created(t) {
            return Some(is_dir);
        }
        if hides(l) {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(keys: &RandomState, created: &[(&str, bool)], removed: &[&str], opaque: &[&str]) -> LinkIndex {
        LinkIndex {
            created: created.iter().map(|(p, d)| tagged(keys.hash_one(p.as_bytes()), *d)).collect(),
            removed: removed.iter().map(|p| keys.hash_one(p.as_bytes())).collect(),
            opaque: opaque.iter().map(|p| keys.hash_one(p.as_bytes())).collect(),
            ..LinkIndex::default()
        }
    }

    /// `top`, holding a deferred link to `target`, with its parent map.
    fn with_link(keys: &RandomState, mut top: LinkIndex, target: &str) -> (LinkIndex, Deferred) {
        let t = Normal::parse(target.as_bytes()).unwrap();
        let mut child = keys.hash_one(&t.0);
        for dir in t.ancestors().collect::<Vec<_>>().into_iter().rev().chain(std::iter::once(&b""[..])) {
            let parent = keys.hash_one(dir);
            top.parents.insert(child, parent);
            child = parent;
        }
        let link = Deferred { target: keys.hash_one(&t.0), parent: keys.hash_one(&t.parent().0), names: None };
        (top, link)
    }

    #[test]
    fn lower_layer_resolution_respects_whiteouts() {
        let k = RandomState::new();
        let base = index(&k, &[("etc", true), ("etc/passwd", false)], &[], &[]);
        let none = || index(&k, &[], &[], &[]);
        let check = |lower: &[&LinkIndex], top: LinkIndex, target: &str| {
            let (top, link) = with_link(&k, top, target);
            resolve(&k, lower, &top, &link)
        };
        assert_eq!(check(&[&base], none(), "etc/passwd"), Some(false));
        assert_eq!(check(&[&base], none(), "etc"), Some(true));
        let wh = || index(&k, &[], &["etc/passwd"], &[]);
        assert_eq!(check(&[&base, &wh()], none(), "etc/passwd"), None);
        assert_eq!(check(&[&base], wh(), "etc/passwd"), None);
        let opq = index(&k, &[], &[], &["etc"]);
        assert_eq!(check(&[&base, &opq], none(), "etc/passwd"), None);
        let root_opq = index(&k, &[], &[], &[""]);
        assert_eq!(check(&[&base, &root_opq], none(), "etc/passwd"), None);
        let again = index(&k, &[("etc/passwd", false)], &[], &["etc"]);
        assert_eq!(check(&[&base, &again], none(), "etc/passwd"), Some(false));
        let gone_dir = index(&k, &[], &["etc"], &[]);
        assert_eq!(check(&[&base], gone_dir, "etc/passwd"), None);
    }
}
