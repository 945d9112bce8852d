//! What a layer contains that flattening would change or lose: owners,
//! names, set-ID bits, devices, ID-bearing xattrs. Collected in the same
//! pass as the layer rules; `inspect` prints it and the producer rules for
//! `flattened` images judge it. Memory is bounded: counts are exact, and
//! each category keeps at most `max_examples` paths.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::io::Read;

use serde::Serialize;

use crate::diagnostic::Example;
use crate::layer::path::escape;
use crate::layer::{Entry, Kind, Sink, SinkError};
use crate::spec::ids;
use crate::spec::xattr::{self, Class};

/// Distinct owner (and name) pairs tracked individually; more are lumped
/// together so that a hostile layer cannot grow the map without bound.
pub const MAX_DISTINCT: usize = 1024;

/// How many entries are in one category, with the paths of the first few.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Tally {
    /// Entries counted, all of them.
    pub count: u64,
    /// The first paths counted, at most the `max` given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Example>,
}

impl Tally {
    fn add(&mut self, max: usize, path: impl FnOnce() -> String, detail: impl FnOnce() -> Option<String>) {
        self.count += 1;
        if self.examples.len() < max {
            self.examples.push(Example { path: path(), detail: detail() });
        }
    }

    /// Adds `other`'s count, and its examples while fewer than `max` are kept.
    pub fn merge(&mut self, other: &Tally, max: usize) {
        self.count += other.count;
        let room = max.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.iter().take(room).cloned());
    }
}

/// The entries recorded with one owner pair.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerTally {
    /// The recorded UID.
    pub uid: u64,
    /// The recorded GID.
    pub gid: u64,
    /// Entries with this pair.
    #[serde(flatten)]
    pub tally: Tally,
}

/// The entries recorded with one pair of user and group names.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NameTally {
    /// The user name, escaped (and cut when very long).
    pub uname: String,
    /// The group name, escaped (and cut when very long).
    pub gname: String,
    /// Entries with these names.
    #[serde(flatten)]
    pub tally: Tally,
}

/// What one layer (or several, merged) records that flattening would
/// change or lose.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerStats {
    /// Entries read, PAX global headers aside.
    pub entries: u64,
    /// Entries per UID:GID pair, most frequent first once finished.
    pub owners: Vec<OwnerTally>,
    /// Entries whose pair was not tracked because MAX_DISTINCT was reached.
    pub other_owners: u64,
    /// Entries per user and group name pair, most frequent first once
    /// finished; names a PAX record replaced count too.
    pub names: Vec<NameTally>,
    /// Entries named `root` whose UID (or GID, for the group name) is not 0.
    pub root_name_mismatch: Tally,
    /// Directories private to a non-root account (no access for others)
    /// that hold entries the same account owns: a service's data, which
    /// only that account may use (a reason for `caution`).
    pub private_dirs: Tally,
    /// Entries with the set-user-ID bit.
    pub setuid: Tally,
    /// Entries with the set-group-ID bit.
    pub setgid: Tally,
    /// Entries with either bit (an entry with both counts once).
    pub setid_entries: u64,
    /// Directories with the sticky bit.
    pub sticky_dirs: Tally,
    /// Character and block devices.
    pub devices: Tally,
    /// FIFOs.
    pub fifos: Tally,
    /// Entries of a type that is not POSIX or GNU.
    pub unknown_types: Tally,
    /// Hard links.
    pub hardlinks: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Entries whose name starts with `.wh.` (opaque markers included).
    pub whiteouts: u64,
    /// `security.capability`.
    pub capabilities: Tally,
    /// `user.rootlesscontainers`, `user.overlay.*` and the other `user.`
    /// attributes that record owners or overlay state.
    pub owner_xattrs: Tally,
    /// POSIX ACLs (PAX `SCHILY.acl.*` or `system.posix_acl_*`).
    pub acls: Tally,
    /// Other `security.*`, `trusted.*` and `system.*` attributes.
    pub other_privileged_xattrs: Tally,
    /// Other `user.` attributes, each counted; a consumer applies them
    /// where it can.
    pub user_xattrs: u64,
}

/// The sink that fills a [`LayerStats`].
pub struct Collector {
    max: usize,
    stats: LayerStats,
    owners: BTreeMap<(u64, u64), Tally>,
    names: BTreeMap<(Vec<u8>, Vec<u8>), Tally>,
    /// The names of the entries just seen, counted apart until they change.
    last_names: Option<(Vec<u8>, Vec<u8>, Tally)>,
    /// Private directories of non-root accounts seen so far (path hash →
    /// owner, whether confirmed, path), at most MAX_DISTINCT of them.
    private: std::collections::HashMap<u64, (u64, bool, String)>,
    keys: std::hash::RandomState,
}

/// Longest user or group name kept as it is; longer ones are cut (a name
/// is at most 32 bytes in a tar header, so only PAX records reach this).
const MAX_NAME: usize = 64;

/// Whether `kept` is what [`capped`] makes of `name`, without allocating.
fn same(kept: &[u8], name: &[u8]) -> bool {
    if name.len() <= MAX_NAME { kept == name } else { kept.len() > MAX_NAME && kept[..MAX_NAME] == name[..MAX_NAME] }
}

/// A name as kept for a report: cut to MAX_NAME bytes, marked when cut.
fn capped(name: &[u8]) -> Vec<u8> {
    if name.len() <= MAX_NAME {
        return name.to_vec();
    }
    let mut out = name[..MAX_NAME].to_vec();
    out.extend_from_slice("…".as_bytes());
    out
}

impl Collector {
    /// A collector that keeps at most `max_examples` paths per category.
    pub fn new(max_examples: usize) -> Self {
        Collector {
            max: max_examples,
            stats: LayerStats::default(),
            owners: BTreeMap::new(),
            names: BTreeMap::new(),
            last_names: None,
            private: std::collections::HashMap::new(),
            keys: std::hash::RandomState::new(),
        }
    }

    fn count_names(&mut self, names: (Vec<u8>, Vec<u8>), t: Tally) {
        if self.names.len() < MAX_DISTINCT || self.names.contains_key(&names) {
            self.names.entry(names).or_default().merge(&t, self.max);
        }
    }

    fn flush_names(&mut self) {
        if let Some((u, g, t)) = self.last_names.take() {
            self.count_names((u, g), t);
        }
    }

    /// Notes a directory private to a non-root account, and confirms it
    /// when an entry the same account owns lies directly inside it.
    fn private_dir(&mut self, e: &Entry) {
        let Ok(path) = &e.path else { return };
        if e.uid == 0 {
            return;
        }
        if e.kind == Kind::Dir && e.mode & 0o007 == 0 {
            let key = self.keys.hash_one(&path.0);
            if self.private.len() < MAX_DISTINCT {
                self.private.entry(key).or_insert((e.uid, false, e.display_path()));
            }
        }
        let parent = self.keys.hash_one(&path.parent().0);
        if let Some((uid, confirmed, dir)) = self.private.get_mut(&parent) {
            if *uid == e.uid && !*confirmed {
                *confirmed = true;
                let detail = format!("owned by UID {uid}, which owns {} inside it", e.display_path());
                let dir = std::mem::take(dir);
                self.stats.private_dirs.add(self.max, || dir, || Some(detail));
            }
        }
    }

    /// The statistics of the entries seen, owners and names sorted.
    pub fn finish(mut self) -> LayerStats {
        self.flush_names();
        let mut owners: Vec<OwnerTally> =
            self.owners.into_iter().map(|((uid, gid), tally)| OwnerTally { uid, gid, tally }).collect();
        owners.sort_by(|a, b| b.tally.count.cmp(&a.tally.count).then((a.uid, a.gid).cmp(&(b.uid, b.gid))));
        self.stats.owners = owners;
        let esc = crate::layer::path::escape;
        let mut names: Vec<NameTally> =
            self.names.into_iter().map(|((u, g), tally)| NameTally { uname: esc(&u), gname: esc(&g), tally }).collect();
        names.sort_by_key(|n| std::cmp::Reverse(n.tally.count));
        self.stats.names = names;
        self.stats
    }
}

impl Sink for Collector {
    fn entry(&mut self, e: &Entry, _data: &mut dyn Read) -> Result<(), SinkError> {
        if e.kind == Kind::Global {
            return Ok(());
        }
        let max = self.max;
        let path = || e.display_path();
        if let Some(t) = self.last_names.as_mut().filter(|(u, g, _)| same(u, &e.uname) && same(g, &e.gname)) {
            // Most entries repeat the previous entry's names: count them
            // without a map lookup, and fold them in when the names change.
            t.2.add(max, path, || None);
        } else {
            self.flush_names();
            self.last_names = Some((capped(&e.uname), capped(&e.gname), Tally::default()));
            self.last_names.as_mut().expect("just set").2.add(max, path, || None);
        }
        if let Some((u, g)) = &e.header_names {
            self.count_names(
                (capped(u), capped(g)),
                Tally { count: 1, examples: vec![crate::diagnostic::Example { path: path(), detail: None }] },
            );
        }
        let s = &mut self.stats;
        s.entries += 1;
        let path = || e.display_path();
        let owner = || Some(format!("{:o}, {}:{}", e.mode, e.uid, e.gid));
        let ids = (e.uid, e.gid);
        if self.owners.len() < MAX_DISTINCT || self.owners.contains_key(&ids) {
            self.owners.entry(ids).or_default().add(max, path, || None);
        } else {
            s.other_owners += 1;
        }
        if (e.uname == ids::ROOT && e.uid != 0) || (e.gname == ids::ROOT && e.gid != 0) {
            s.root_name_mismatch.add(max, path, || Some(format!("{}:{} named root", e.uid, e.gid)));
        }
        self.private_dir(e);
        let s = &mut self.stats;
        // Names a PAX record replaced count too (PRODUCER-NAMES names both).
        if e.mode & 0o6000 != 0 {
            s.setid_entries += 1;
        }
        if e.mode & 0o4000 != 0 {
            s.setuid.add(max, path, owner);
        }
        if e.mode & 0o2000 != 0 {
            s.setgid.add(max, path, owner);
        }
        match e.kind {
            Kind::Dir if e.mode & 0o1000 != 0 => s.sticky_dirs.add(max, path, || None),
            Kind::Char | Kind::Block => s.devices.add(max, path, || Some(e.kind.name().into())),
            Kind::Fifo => s.fifos.add(max, path, || None),
            Kind::Other(b) => s.unknown_types.add(max, path, || Some(format!("typeflag {:?}", b as char))),
            Kind::Hardlink => s.hardlinks += 1,
            Kind::Symlink => s.symlinks += 1,
            _ => {}
        }
        if e.path.as_ref().is_ok_and(|p| p.name().starts_with(b".wh.")) {
            s.whiteouts += 1;
        }
        if e.has_acl {
            s.acls.add(max, path, || None);
        }
        for (n, _) in &e.xattrs {
            match xattr::classify(n) {
                Class::Capability => s.capabilities.add(max, path, || None),
                Class::OwnerBearing => s.owner_xattrs.add(max, path, || Some(escape(n))),
                Class::Acl => s.acls.add(max, path, || None),
                Class::User => s.user_xattrs += 1,
                Class::Privileged => s.other_privileged_xattrs.add(max, path, || Some(escape(n))),
                Class::Other => {}
            }
        }
        Ok(())
    }
}

impl LayerStats {
    /// The statistics of several layers taken together (an image's layers,
    /// before whiteouts: what the layers record, not the final tree).
    pub fn merged(layers: &[&LayerStats], max: usize) -> LayerStats {
        let mut out = LayerStats::default();
        let mut owners: BTreeMap<(u64, u64), Tally> = BTreeMap::new();
        let mut names: BTreeMap<(String, String), Tally> = BTreeMap::new();
        for l in layers {
            out.entries += l.entries;
            out.other_owners += l.other_owners;
            for o in &l.owners {
                owners.entry((o.uid, o.gid)).or_default().merge(&o.tally, max);
            }
            for n in &l.names {
                names.entry((n.uname.clone(), n.gname.clone())).or_default().merge(&n.tally, max);
            }
            for (a, b) in [
                (&mut out.setuid, &l.setuid),
                (&mut out.setgid, &l.setgid),
                (&mut out.sticky_dirs, &l.sticky_dirs),
                (&mut out.devices, &l.devices),
                (&mut out.fifos, &l.fifos),
                (&mut out.unknown_types, &l.unknown_types),
                (&mut out.capabilities, &l.capabilities),
                (&mut out.owner_xattrs, &l.owner_xattrs),
                (&mut out.root_name_mismatch, &l.root_name_mismatch),
                (&mut out.private_dirs, &l.private_dirs),
                (&mut out.acls, &l.acls),
                (&mut out.other_privileged_xattrs, &l.other_privileged_xattrs),
            ] {
                a.merge(b, max);
            }
            out.hardlinks += l.hardlinks;
            out.setid_entries += l.setid_entries;
            out.symlinks += l.symlinks;
            out.whiteouts += l.whiteouts;
            out.user_xattrs += l.user_xattrs;
        }
        out.owners = owners.into_iter().map(|((uid, gid), tally)| OwnerTally { uid, gid, tally }).collect();
        out.owners.sort_by(|a, b| b.tally.count.cmp(&a.tally.count).then((a.uid, a.gid).cmp(&(b.uid, b.gid))));
        out.names = names.into_iter().map(|((uname, gname), tally)| NameTally { uname, gname, tally }).collect();
        out.names.sort_by_key(|n| std::cmp::Reverse(n.tally.count));
        out
    }
}
