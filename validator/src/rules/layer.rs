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
    LAYER_AMBIGUOUS, LAYER_DUPLICATE, LAYER_HARDLINK, LAYER_HEADER_FIELD, LAYER_ID_RANGE, LAYER_PATH_ABSOLUTE,
    LAYER_PATH_ESCAPE, LAYER_PAX_MISMATCH, LAYER_SPARSE, LAYER_WHITEOUT, LAYER_WHITEOUT_CONTENT, LIMIT_EXCEEDED,
};
use crate::layer::path::Normal;
use crate::layer::{Entry, Fault, Kind, Sink, SinkError};
use crate::report::{Groups, Location};

use crate::spec::ids::MAX_ID;
use crate::spec::whiteout::{self, Name};

/// What one layer created and removed, for hardlink checks across layers.
#[derive(Default)]
pub struct LinkIndex {
    /// Path hash → is a directory, for every entry the layer creates.
    created: HashMap<u64, bool>,
    /// Paths the layer's whiteouts remove from lower layers.
    removed: HashSet<u64>,
    /// Directories the layer makes opaque.
    opaque: HashSet<u64>,
    /// Hardlinks whose target this layer did not create: (link, target).
    deferred: Vec<(String, Normal)>,
}

pub struct LayerRules<'a> {
    keys: &'a RandomState,
    at: Location,
    groups: Groups,
    index: LinkIndex,
}

impl<'a> LayerRules<'a> {
    /// `keys` must be shared by every layer of an image so hashes compare.
    pub fn new(keys: &'a RandomState, at: Location, max_examples: usize) -> Self {
        LayerRules { keys, at, groups: Groups::new(max_examples), index: LinkIndex::default() }
    }

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
        match self.index.created.get(&self.key(&target.0)) {
            Some(true) => self.add(&LAYER_HARDLINK, "hardlink targets a directory", e, detail()),
            Some(false) => {}
            None => self.index.deferred.push((e.display_path(), target)),
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
        let key = self.key(&path.0);
        if self.index.created.insert(key, e.kind == Kind::Dir).is_some() {
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
/// `layers[i]` is layer i of the image; findings go to `groups[i]`.
pub fn check_lower_links(
    keys: &RandomState,
    layers: &[&LinkIndex],
    report: &mut dyn FnMut(usize, &'static str, &str, String),
) {
    for (i, layer) in layers.iter().enumerate() {
        for (link, target) in &layer.deferred {
            let found = resolve(keys, &layers[..i], layer, target);
            let problem = match found {
                Some(true) => "hardlink targets a directory",
                Some(false) => continue,
                None => "hardlink target is not in this layer or any lower layer",
            };
            report(i, problem, link, format!("target {}", target.display()));
        }
    }
}

/// Is `target` present below `top` (Some(is_dir)) or absent (None)?
fn resolve(keys: &RandomState, lower: &[&LinkIndex], top: &LinkIndex, target: &Normal) -> Option<bool> {
    let t = keys.hash_one(&target.0);
    let ancestors: Vec<u64> = std::iter::once(&b""[..]).chain(target.ancestors()).map(|a| keys.hash_one(a)).collect();
    let hides = |l: &LinkIndex| {
        l.removed.contains(&t) || ancestors.iter().any(|a| l.opaque.contains(a) || l.removed.contains(a))
    };
    if hides(top) {
        return None;
    }
    for l in lower.iter().rev() {
        if let Some(&is_dir) = l.created.get(&t) {
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
            created: created.iter().map(|(p, d)| (keys.hash_one(p.as_bytes()), *d)).collect(),
            removed: removed.iter().map(|p| keys.hash_one(p.as_bytes())).collect(),
            opaque: opaque.iter().map(|p| keys.hash_one(p.as_bytes())).collect(),
            deferred: Vec::new(),
        }
    }

    #[test]
    fn lower_layer_resolution_respects_whiteouts() {
        let k = RandomState::new();
        let base = index(&k, &[("etc", true), ("etc/passwd", false)], &[], &[]);
        let none = index(&k, &[], &[], &[]);
        let t = Normal::parse(b"etc/passwd").unwrap();
        assert_eq!(resolve(&k, &[&base], &none, &t), Some(false));
        assert_eq!(resolve(&k, &[&base], &none, &Normal::parse(b"etc").unwrap()), Some(true));
        let wh = index(&k, &[], &["etc/passwd"], &[]);
        assert_eq!(resolve(&k, &[&base, &wh], &none, &t), None);
        assert_eq!(resolve(&k, &[&base], &wh, &t), None);
        let opq = index(&k, &[], &[], &["etc"]);
        assert_eq!(resolve(&k, &[&base, &opq], &none, &t), None);
        let again = index(&k, &[("etc/passwd", false)], &[], &["etc"]);
        assert_eq!(resolve(&k, &[&base, &again], &none, &t), Some(false));
    }
}
