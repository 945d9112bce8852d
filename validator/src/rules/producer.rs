//! Producer requirements, judged on the statistics of all layers of one
//! image (spec section "Producer requirements").

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    CAUTION_CANDIDATE, FLATTENED_CONFIG_USER, FLATTENED_DEVICES, FLATTENED_ID_XATTRS, FLATTENED_NAMES,
    FLATTENED_OWNER_XATTRS, FLATTENED_ROOT_IDS, FLATTENED_SETID, FLATTENED_SINGLE_ID, Rule,
};
use crate::annotation::Value;
use crate::diagnostic::{Example, Finding, Findings, Location};
use crate::stats::{LayerStats, Tally};

pub use crate::spec::ids::root_user;

/// One layer's statistics with where findings about it point.
pub struct LayerFacts<'a> {
    /// What the layer records.
    pub stats: &'a LayerStats,
    /// Where findings about the layer point.
    pub at: Location,
}

/// Distinct values of one ID across layers, each with its entry count and
/// a few example paths.
fn distinct(layers: &[LayerFacts<'_>], pick: fn(u64, u64) -> u64, max: usize) -> BTreeMap<u64, Tally> {
    let mut out: BTreeMap<u64, Tally> = BTreeMap::new();
    for l in layers {
        for o in &l.stats.owners {
            out.entry(pick(o.uid, o.gid)).or_default().merge(&o.tally, max);
        }
    }
    out
}

/// Why an image is not (or not cleanly) `flattened`, and why it might
/// deserve `caution`: the facts `inspect` recommends from.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Assessment {
    /// Every distinct UID among the owner pairs the layers track, ascending.
    pub uids: Vec<u64>,
    /// Every distinct GID among the owner pairs the layers track, ascending.
    pub gids: Vec<u64>,
    /// Entries whose owner pair was not tracked individually.
    pub untracked_owners: u64,
    /// Entries with a name other than empty or `root`, or named `root`
    /// with a non-zero ID.
    pub bad_names: u64,
    /// Entries with the set-user-ID or set-group-ID bit.
    pub setid: u64,
    /// Character and block devices.
    pub devices: u64,
    /// `security.capability` and ACLs.
    pub id_xattrs: u64,
    /// `user.rootlesscontainers`, `user.overlay.*` and the like.
    pub owner_xattrs: u64,
    /// Directories private to a non-root account that owns what is inside.
    pub private_dirs: Tally,
    /// `config.User`, when the config sets it.
    pub config_user: Option<String>,
}

impl Assessment {
    /// The facts of an image whose layers are `layers` and whose config
    /// sets `config_user`.
    pub fn of(layers: &[LayerFacts<'_>], config_user: Option<&str>) -> Self {
        let mut a = Assessment { config_user: config_user.map(str::to_string), ..Assessment::default() };
        a.uids = distinct(layers, |u, _| u, 0).into_keys().collect();
        a.gids = distinct(layers, |_, g| g, 0).into_keys().collect();
        for l in layers {
            let s = l.stats;
            a.untracked_owners += s.other_owners;
            a.bad_names +=
                s.names.iter().filter(|n| !ok_name(&n.uname) || !ok_name(&n.gname)).map(|n| n.tally.count).sum::<u64>();
            a.bad_names += s.root_name_mismatch.count;
            a.setid += s.setid_entries;
            a.devices += s.devices.count;
            a.id_xattrs += s.capabilities.count + s.acls.count;
            a.owner_xattrs += s.owner_xattrs.count;
            a.private_dirs.merge(&s.private_dirs, 3);
        }
        a
    }

    /// Every MUST of "Flattened images" holds.
    pub fn meets_flattened_musts(&self) -> bool {
        self.uids.len() <= 1
            && self.gids.len() <= 1
            && self.untracked_owners == 0
            && self.bad_names == 0
            && self.setid == 0
            && self.owner_xattrs == 0
    }

    /// Every MUST and SHOULD holds: the image could declare `flattened`.
    pub fn meets_flattened(&self) -> bool {
        self.meets_flattened_musts()
            && self.uids.iter().all(|u| *u == 0)
            && self.gids.iter().all(|g| *g == 0)
            && self.devices == 0
            && self.id_xattrs == 0
            && root_user(self.config_user.as_deref())
    }

    /// Reasons flattening would break how the image is meant to behave
    /// (the spec's table of typical images): it runs as a dedicated
    /// account, or a service account owns data only it may use. Set-ID
    /// programs and set-group-ID directories of a base system are not
    /// reasons; a single-ID consumer clears the bits and the system still
    /// works for the one user there is.
    pub fn caution_reasons(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !root_user(self.config_user.as_deref()) {
            let user = self.config_user.as_deref().unwrap_or_default();
            out.push(format!(
                "config.User is {user:?}: the image runs as a dedicated account, which flattening removes"
            ));
        }
        if self.private_dirs.count > 0 {
            let dirs: Vec<String> = self
                .private_dirs
                .examples
                .iter()
                .map(|e| format!("{} ({})", e.path, e.detail.as_deref().unwrap_or_default()))
                .collect();
            out.push(format!(
                "{} director{} private to a non-root account that owns what is inside ({}): once flattened, the service that account runs no longer owns its data alone",
                self.private_dirs.count,
                if self.private_dirs.count == 1 { "y is" } else { "ies are" },
                dirs.join("; ")
            ));
        }
        out
    }

    /// The value a producer should declare, and why.
    pub fn recommend(&self) -> (Value, String) {
        if self.meets_flattened() {
            return (Value::Flattened, "every entry is 0:0 with no set-ID bits, devices or ID-bearing xattrs, and config.User is root: the IDs carry no information".into());
        }
        let reasons = self.caution_reasons();
        if !reasons.is_empty() {
            return (Value::Caution, reasons.join("; "));
        }
        (
            Value::Allowed,
            format!(
                "the layers record {} UID(s) and {} GID(s) that a single-ID consumer replaces with the invoking user's, but nothing here depends on them visibly",
                self.uids.len(),
                self.gids.len()
            ),
        )
    }
}

fn ok_name(n: &str) -> bool {
    n.is_empty() || n == "root"
}

fn tally_finding(rule: &'static Rule, at: &Location, message: String, t: &Tally) -> Finding {
    Finding {
        rule,
        severity: rule.severity,
        clause: rule.clause,
        message,
        location: Location { path: t.examples.first().map(|e| e.path.clone()), ..at.clone() },
        count: t.count,
        examples: t.examples.clone(),
    }
}

/// Producer rules for one image whose effective value is `value`.
pub fn check(
    value: Value,
    layers: &[LayerFacts<'_>],
    config_user: Option<&str>,
    image: &Location,
    config: &Location,
    max: usize,
    f: &mut Findings,
) {
    let a = Assessment::of(layers, config_user);
    if value != Value::Flattened {
        suggest_caution(value, &a, image, f);
        return;
    }
    check_ids(layers, &a, image, max, f);
    for l in layers {
        check_layer(l, f);
    }
    check_config_user(config_user, config, f);
}

/// An `allowed` image that flattening would break could say so with
/// `caution` (the other values need no advice).
fn suggest_caution(value: Value, a: &Assessment, image: &Location, f: &mut Findings) {
    let reasons = a.caution_reasons();
    if value == Value::Allowed && !reasons.is_empty() {
        f.push(&CAUTION_CANDIDATE, image.clone(), format!("consider declaring \"caution\": {}", reasons.join("; ")));
    }
}

/// A flattened image records one UID and one GID, and they should be 0.
fn check_ids(layers: &[LayerFacts<'_>], a: &Assessment, image: &Location, max: usize, f: &mut Findings) {
    let uids = distinct(layers, |u, _| u, max);
    let gids = distinct(layers, |_, g| g, max);
    if uids.len() > 1 || gids.len() > 1 || a.untracked_owners > 0 {
        f.push_finding(several_ids(layers, &uids, &gids, a.untracked_owners, image, max));
    } else if let (Some(u), Some(g)) = (uids.keys().next(), gids.keys().next()) {
        if (*u, *g) != (0, 0) {
            f.push(
                &FLATTENED_ROOT_IDS,
                image.clone(),
                format!("every entry is {u}:{g}; 0:0 leaks nothing about the build host"),
            );
        }
    }
}

/// The FLATTENED-SINGLE-ID finding of an image whose entries record more
/// than one UID or GID (or owners not tracked individually).
fn several_ids(
    layers: &[LayerFacts<'_>],
    uids: &BTreeMap<u64, Tally>,
    gids: &BTreeMap<u64, Tally>,
    untracked_owners: u64,
    image: &Location,
    max: usize,
) -> Finding {
    // The most common UID and GID stand for "the" ID; examples and the
    // count are of the entries that differ from it.
    let main = |m: &BTreeMap<u64, Tally>| m.iter().max_by_key(|(_, t)| t.count).map(|(id, _)| *id);
    let (count, examples) = owner_outliers(layers, (main(uids), main(gids)), untracked_owners, max);
    let list = |m: &BTreeMap<u64, Tally>| m.keys().map(u64::to_string).collect::<Vec<_>>().join(", ");
    let mut message =
        format!("entries record {} UIDs ({}) and {} GIDs ({})", uids.len(), list(uids), gids.len(), list(gids));
    if untracked_owners > 0 {
        message.push_str(&format!(", and {untracked_owners} entries have yet other owners"));
    }
    Finding {
        rule: &FLATTENED_SINGLE_ID,
        severity: FLATTENED_SINGLE_ID.severity,
        clause: FLATTENED_SINGLE_ID.clause,
        message,
        location: Location { path: examples.first().map(|e| e.path.clone()), ..image.clone() },
        count,
        examples,
    }
}

/// Count and examples of the entries whose owner pair differs from
/// `main`: a few per pair, each path once, at most `max` in all. Entries
/// with untracked owners count too.
fn owner_outliers(
    layers: &[LayerFacts<'_>],
    main: (Option<u64>, Option<u64>),
    untracked_owners: u64,
    max: usize,
) -> (u64, Vec<Example>) {
    let (main_uid, main_gid) = main;
    let mut count = untracked_owners;
    let mut examples: Vec<Example> = Vec::new();
    for l in layers {
        for o in l.stats.owners.iter().filter(|o| Some(o.uid) != main_uid || Some(o.gid) != main_gid) {
            count += o.tally.count;
            let detail = format!(
                "{}:{}, in layer {} with {}",
                o.uid,
                o.gid,
                l.at.layer.unwrap_or_default(),
                entries(o.tally.count)
            );
            let fresh: Vec<Example> = o
                .tally
                .examples
                .iter()
                .filter(|e| !examples.iter().any(|x| x.path == e.path))
                .take(2)
                .map(|e| Example { path: e.path.clone(), detail: Some(detail.clone()) })
                .collect();
            examples.extend(fresh);
        }
    }
    examples.truncate(max);
    (count, examples)
}

/// What one layer of a flattened image must not hold: names other than
/// root, set-ID bits, devices and ID-bearing or owner-recording xattrs.
fn check_layer(l: &LayerFacts<'_>, f: &mut Findings) {
    let s = l.stats;
    for n in s.names.iter().filter(|n| !ok_name(&n.uname) || !ok_name(&n.gname)) {
        let msg =
            format!("entries name user {:?} and group {:?}; only \"\" and \"root\" are allowed", n.uname, n.gname);
        f.push_finding(tally_finding(&FLATTENED_NAMES, &l.at, msg, &n.tally));
    }
    if s.root_name_mismatch.count > 0 {
        let msg = "entries are named \"root\" but their ID is not 0".to_string();
        f.push_finding(tally_finding(&FLATTENED_NAMES, &l.at, msg, &s.root_name_mismatch));
    }
    for (bit, t) in [("setuid", &s.setuid), ("setgid", &s.setgid)] {
        if t.count > 0 {
            f.push_finding(tally_finding(&FLATTENED_SETID, &l.at, format!("entries have the {bit} bit"), t));
        }
    }
    if s.devices.count > 0 {
        f.push_finding(tally_finding(
            &FLATTENED_DEVICES,
            &l.at,
            "device entries (single-ID consumers skip them)".into(),
            &s.devices,
        ));
    }
    for (name, t) in [("security.capability", &s.capabilities), ("a POSIX ACL", &s.acls)] {
        if t.count > 0 {
            f.push_finding(tally_finding(&FLATTENED_ID_XATTRS, &l.at, format!("entries carry {name}"), t));
        }
    }
    if s.owner_xattrs.count > 0 {
        let msg = "entries carry attributes that record owners or overlay state".to_string();
        f.push_finding(tally_finding(&FLATTENED_OWNER_XATTRS, &l.at, msg, &s.owner_xattrs));
    }
}

/// A flattened image has no account but root to run as.
fn check_config_user(config_user: Option<&str>, config: &Location, f: &mut Findings) {
    if !root_user(config_user) {
        let at = config.clone().with_pointer("/config/User");
        f.push(
            &FLATTENED_CONFIG_USER,
            at,
            format!("config.User is {:?}; a flattened image has no account but root", config_user.unwrap_or_default()),
        );
    }
}

/// "1 entry", "2 entries".
pub fn entries(n: u64) -> String {
    if n == 1 { "1 entry".into() } else { format!("{n} entries") }
}
