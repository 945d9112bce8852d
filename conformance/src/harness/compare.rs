//! Comparing what an adapter left against the expectation, and deciding
//! which requirement each difference counts against.
//!
//! Attribution rule. A `present` or `absent` path lists the requirements a
//! mismatch there violates. Some aspects of a path have a requirement of
//! their own; a difference in such an aspect counts against that
//! requirement when the path lists it, and against every requirement of the
//! path otherwise:
//!
//! | aspect | own requirements |
//! |---|---|
//! | set-ID bits of the mode | CONSUMER-SETID-CLEARED |
//! | sticky bit of the mode | CONSUMER-STICKY |
//! | permission bits (0777) | CONSUMER-MODE, CONSUMER-READONLY-DIR |
//! | modification time | CONSUMER-MTIME |
//! | symbolic-link target | CONSUMER-SYMLINK-TARGET |
//! | a `user.` attribute that should be there | CONSUMER-XATTR-USER |
//! | `security.capability` that should not | CONSUMER-XATTR-CAPABILITY |
//! | an owner-bearing `user.` attribute that should not | CONSUMER-XATTR-EXCLUDED |
//! | another attribute that should not | CONSUMER-XATTR-OTHER |
//! | the output naming a skipped path | CONSUMER-DEVICES-REPORTED |
//!
//! A missing path or a wrong type counts against every requirement of the
//! path; content and hard-link identity count against the path's
//! requirements that own none of the aspects above (all of them if none is
//! left). CONSUMER-DEVICES-REPORTED is only ever judged by the output check.
//! A path that no expectation accounts for (with `extraPaths` false) counts
//! against every requirement that some `present` or `absent` path lists;
//! directories above listed paths are accounted for, and so are names
//! starting with `.wh.` when the fixture lists CONSUMER-WHITEOUT or
//! CONSUMER-WHITEOUT-INVALID, whose own check reports them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use super::results::{Check, Difference, Status};
use super::tree::{Kind, Node, Tree, display_path, escape_bytes};
use crate::expect::{self, Expectation, Present};

pub const CONTAINED: &str = "CONSUMER-CONTAINED";
pub const OWNER: &str = "CONSUMER-OWNER";
pub const SETID_CLEARED: &str = "CONSUMER-SETID-CLEARED";
pub const WHITEOUT: &str = "CONSUMER-WHITEOUT";
pub const WHITEOUT_INVALID: &str = "CONSUMER-WHITEOUT-INVALID";
pub const POLICY_CAUTION: &str = "POLICY-CAUTION";
pub const POLICY_UNKNOWN: &str = "POLICY-UNKNOWN";
pub const POLICY_FLATTENED: &str = "POLICY-FLATTENED";
pub const POLICY_ALLOWED: &str = "POLICY-ALLOWED";
pub const DEVICES_REPORTED: &str = "CONSUMER-DEVICES-REPORTED";
const DEVICES: &str = "CONSUMER-DEVICES";
/// The annotation keys, provisional and reserved; a refusal's message must
/// name one of them (POLICY-CAUTION, POLICY-UNKNOWN).
pub const KEYS: [&str; 2] = ["io.github.supercontainers.id-flattening", "org.opencontainers.image.id-flattening"];

const SETID: &[&str] = &[SETID_CLEARED];
const STICKY: &[&str] = &["CONSUMER-STICKY"];
pub const MODE: &str = "CONSUMER-MODE";
pub const OWNER_RAISE: &str = "CONSUMER-OWNER-RAISE";
const PERMS: &[&str] = &[MODE, "CONSUMER-READONLY-DIR"];
const MTIME: &[&str] = &["CONSUMER-MTIME"];
const TARGET: &[&str] = &["CONSUMER-SYMLINK-TARGET"];
const XATTR_USER: &[&str] = &["CONSUMER-XATTR-USER"];
const XATTR_CAP: &[&str] = &["CONSUMER-XATTR-CAPABILITY"];
const XATTR_OTHER: &[&str] = &["CONSUMER-XATTR-OTHER"];
const XATTR_EXCLUDED: &[&str] = &["CONSUMER-XATTR-EXCLUDED"];
const REPORTED: &[&str] = &[DEVICES_REPORTED];
const DEDICATED: &[&[&str]] =
    &[SETID, STICKY, PERMS, MTIME, TARGET, XATTR_USER, XATTR_CAP, XATTR_OTHER, XATTR_EXCLUDED, REPORTED];

/// Which of a path's requirements an aspect's difference counts against.
#[derive(Clone, Copy)]
enum Aspect {
    /// Existence and type: every requirement of the path.
    Whole,
    /// Content, hard-link identity: the requirements no aspect owns.
    Generic,
    /// Permission bits (0777): CONSUMER-MODE, or CONSUMER-READONLY-DIR
    /// where the path lists it.
    Perms,
    Own(&'static [&'static str]),
}

fn owners(reqs: &[String], aspect: Aspect) -> Vec<String> {
    let not_reported: Vec<String> = reqs.iter().filter(|r| r.as_str() != DEVICES_REPORTED).cloned().collect();
    let base = if not_reported.is_empty() { reqs.to_vec() } else { not_reported };
    let picked: Vec<String> = match aspect {
        Aspect::Whole => return base,
        Aspect::Generic => {
            base.iter().filter(|r| !DEDICATED.iter().any(|set| set.contains(&r.as_str()))).cloned().collect()
        }
        // Permission bits are CONSUMER-MODE's (or CONSUMER-READONLY-DIR's,
        // where the path lists it) and nobody else's: a umask is never
        // charged to the requirement a path is really about.
        Aspect::Perms => {
            let listed: Vec<String> = reqs.iter().filter(|r| PERMS.contains(&r.as_str())).cloned().collect();
            return if listed.is_empty() { vec![MODE.to_string()] } else { listed };
        }
        Aspect::Own(set) => reqs.iter().filter(|r| set.contains(&r.as_str())).cloned().collect(),
    };
    if picked.is_empty() { base } else { picked }
}

/// Why an expectation would charge a difference to a requirement it does
/// not test, or could not charge one at all; `None` when every check has
/// an owner among the requirements of its path (or, for permission bits,
/// CONSUMER-MODE among the fixture's). The generator refuses such cases
/// and the harness such fixtures.
pub fn attribution_problems(exp: &Expectation) -> Option<String> {
    let listed = |id: &str| exp.requirements.iter().any(|r| r.id == id);
    let may = |id: &str| exp.requirements.iter().any(|r| r.id == id && r.level == expect::Level::May);
    let mut problems = Vec::new();
    for (path, reqs) in exp
        .present
        .iter()
        .map(|p| (&p.path, &p.requirements))
        .chain(exp.absent.iter().map(|a| (&a.path, &a.requirements)))
    {
        if reqs.iter().all(|r| may(r) || r == DEVICES_REPORTED) {
            problems.push(format!(
                "{path}: lists only MAY requirements or CONSUMER-DEVICES-REPORTED, so a difference there would count against nothing"
            ));
        }
    }
    for p in &exp.present {
        let has = |set: &[&str]| p.requirements.iter().any(|r| set.contains(&r.as_str()));
        if let Some(m) = p.mode.as_deref().and_then(parse_mode) {
            if !has(PERMS) && !listed(MODE) {
                problems.push(format!("{}: checks permission bits, so the fixture lists {MODE}", p.path));
            }
            if m & 0o6000 != 0 {
                problems.push(format!("{}: expects a set-ID bit, which no conforming consumer leaves", p.path));
            }
            if m & 0o1000 != 0 && !has(STICKY) {
                problems.push(format!("{}: expects the sticky bit, so the path lists CONSUMER-STICKY", p.path));
            }
        }
        if p.mtime.is_some() && !has(MTIME) {
            problems.push(format!("{}: checks a modification time, so the path lists CONSUMER-MTIME", p.path));
        }
        if p.target.as_deref().is_some_and(|t| t.starts_with('/')) && !has(TARGET) {
            problems.push(format!(
                "{}: an absolute target, which some consumers rewrite, so the path lists CONSUMER-SYMLINK-TARGET",
                p.path
            ));
        }
        if p.xattrs.keys().any(|k| k.starts_with("user.")) && !has(XATTR_USER) {
            problems.push(format!("{}: checks a user. attribute, so the path lists CONSUMER-XATTR-USER", p.path));
        }
        for name in &p.xattrs_absent {
            let own = absent_xattr_owner(name);
            if let Aspect::Own(set) = own {
                if !has(set) {
                    problems.push(format!("{}: checks that {name} is absent, so the path lists {}", p.path, set[0]));
                }
            }
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

fn absent_xattr_owner(name: &str) -> Aspect {
    if name == "security.capability" {
        Aspect::Own(XATTR_CAP)
    } else if is_owner_bearing(name) {
        Aspect::Own(XATTR_EXCLUDED)
    } else if name.starts_with("user.") {
        Aspect::Generic
    } else {
        Aspect::Own(XATTR_OTHER)
    }
}

/// Per requirement: whether any check concerned it, its differences, and
/// why it fails, is blocked or is skipped beyond them; for a MAY
/// requirement, what the unpack showed of it.
#[derive(Debug, Default)]
struct Entry {
    may: bool,
    checked: bool,
    differences: Vec<Difference>,
    failures: Vec<String>,
    blocked: Option<String>,
    /// Failures that say nothing because something this requirement's
    /// checks depend on failed: reported as blocked, differences kept.
    failures_blocked: Option<String>,
    skip_reason: Option<String>,
    /// MAY only: (implemented?, what showed it).
    evidence: Vec<(bool, String)>,
}

/// What every check found, by requirement id.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: BTreeMap<String, Entry>,
}

impl Ledger {
    pub fn new<'a>(ids: impl IntoIterator<Item = (&'a str, expect::Level)>) -> Ledger {
        Ledger {
            entries: ids
                .into_iter()
                .map(|(id, level)| (id.to_string(), Entry { may: level == expect::Level::May, ..Entry::default() }))
                .collect(),
        }
    }

    /// The requirements a check concerns, without MAY ones: a MAY
    /// requirement is never scored, only observed.
    fn each<'a>(&mut self, reqs: impl IntoIterator<Item = &'a String>, mut f: impl FnMut(&mut Entry)) {
        for r in reqs {
            if let Some(e) = self.entries.get_mut(r).filter(|e| !e.may) {
                f(e);
            }
        }
    }

    /// A check concerning `reqs` ran.
    pub fn checked<'a>(&mut self, reqs: impl IntoIterator<Item = &'a String>) {
        self.each(reqs, |e| e.checked = true);
    }

    /// A check concerning `reqs` found `d` (recorded once per requirement).
    pub fn differ<'a>(&mut self, reqs: impl IntoIterator<Item = &'a String>, d: Difference) {
        self.each(reqs, |e| {
            e.checked = true;
            if !e.differences.iter().any(|x| x.run == d.run && x.path == d.path && x.check == d.check) {
                e.differences.push(d.clone());
            }
        });
    }

    /// `reqs` fail for a reason that is not one difference (the tree could
    /// not be checked at all).
    pub fn fail<'a>(&mut self, reqs: impl IntoIterator<Item = &'a String>, reason: &str) {
        self.each(reqs, |e| {
            e.checked = true;
            if !e.failures.iter().any(|f| f == reason) {
                e.failures.push(reason.to_string());
            }
        });
    }

    /// `reqs` could not be checked because the adapter lacks a feature that
    /// another requirement covers (and fails).
    pub fn block<'a>(&mut self, reqs: impl IntoIterator<Item = &'a String>, reason: &str) {
        for r in reqs {
            if let Some(e) = self.entries.get_mut(r) {
                e.blocked.get_or_insert_with(|| reason.to_string());
            }
        }
    }

    /// If `reqs` fail, they are reported as blocked for `reason`, with
    /// their differences.
    pub fn block_failures<'a>(&mut self, reqs: impl IntoIterator<Item = &'a String>, reason: &str) {
        self.each(reqs, |e| {
            e.failures_blocked.get_or_insert_with(|| reason.to_string());
        });
    }

    /// Whether `id` has a difference or a failure.
    pub fn failing(&self, id: &str) -> bool {
        self.entries.get(id).is_some_and(|e| !e.differences.is_empty() || !e.failures.is_empty())
    }

    /// The reason given for `reqs` if no check ends up concerning them.
    pub fn skip_unless_checked<'a>(&mut self, reqs: impl IntoIterator<Item = &'a String>, reason: &str) {
        for r in reqs {
            if let Some(e) = self.entries.get_mut(r) {
                e.skip_reason.get_or_insert_with(|| reason.to_string());
            }
        }
    }

    /// What the unpack showed of a MAY requirement: that the consumer uses
    /// the latitude (`implemented`) or does not.
    pub fn observe(&mut self, id: &str, implemented: bool, note: &str) {
        if let Some(e) = self.entries.get_mut(id).filter(|e| e.may) {
            if !e.evidence.iter().any(|(i, n)| *i == implemented && n == note) {
                e.evidence.push((implemented, note.to_string()));
            }
        }
    }

    /// The verdict. MUST and SHOULD: fail on any difference or failure,
    /// blocked when the tree could not be checked for want of another
    /// requirement's feature, pass when some check concerned the
    /// requirement, skip otherwise. MAY: implemented when anything showed
    /// the latitude used, not implemented when something showed it unused,
    /// blocked or skip otherwise; never fail.
    pub fn verdict(&self, id: &str) -> (Status, Option<String>, Vec<Difference>) {
        let Some(e) = self.entries.get(id) else {
            return (Status::Skip, Some("not among the fixture's requirements".into()), Vec::new());
        };
        if e.may {
            let first = |want: bool| e.evidence.iter().find(|(i, _)| *i == want).map(|(_, n)| n.clone());
            if let Some(n) = first(true) {
                return (Status::Implemented, Some(n), Vec::new());
            }
            if let Some(n) = first(false) {
                return (Status::NotImplemented, Some(n), Vec::new());
            }
        } else {
            if !e.differences.is_empty() || !e.failures.is_empty() {
                if let Some(b) = &e.failures_blocked {
                    let mut reason = b.clone();
                    if !e.failures.is_empty() {
                        reason.push_str(&format!(" (found: {})", e.failures.join("; ")));
                    }
                    return (Status::Blocked, Some(reason), e.differences.clone());
                }
                let reason = if e.failures.is_empty() { None } else { Some(e.failures.join("; ")) };
                return (Status::Fail, reason, e.differences.clone());
            }
            if let Some(b) = &e.blocked {
                return (Status::Blocked, Some(b.clone()), Vec::new());
            }
            if e.checked {
                return (Status::Pass, None, Vec::new());
            }
        }
        if let Some(b) = &e.blocked {
            return (Status::Blocked, Some(b.clone()), Vec::new());
        }
        let reason =
            e.skip_reason.clone().unwrap_or_else(|| "no check the harness makes applies to it in this fixture".into());
        (Status::Skip, Some(reason), Vec::new())
    }
}

/// How much of the expectation applies to DEST.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The adapter unpacked: every check.
    Full,
    /// The adapter failed and the fixture allows it (`any`): `absent`
    /// paths, the global checks and the output; not `present` paths nor
    /// unexpected ones.
    AfterFailure,
}

/// The user the adapter ran as.
#[derive(Clone, Copy)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// Parses an expectation's octal mode (`"0755"`, `"1777"`).
pub fn parse_mode(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 5 {
        return None;
    }
    u32::from_str_radix(s, 8).ok().filter(|m| *m <= 0o7777)
}

/// An expectation path as the relative path it names in DEST: leading
/// `/`, `.` components and trailing slashes carry no meaning.
pub fn rel_path(s: &str) -> PathBuf {
    Path::new(s).components().filter(|c| matches!(c, Component::Normal(_))).collect()
}

fn kind_name(k: expect::Kind) -> &'static str {
    match k {
        expect::Kind::File => "file",
        expect::Kind::Dir => "dir",
        expect::Kind::Symlink => "symlink",
        expect::Kind::Fifo => "fifo",
    }
}

fn kind_matches(k: expect::Kind, found: Kind) -> bool {
    matches!(
        (k, found),
        (expect::Kind::File, Kind::File)
            | (expect::Kind::Dir, Kind::Dir)
            | (expect::Kind::Symlink, Kind::Symlink)
            | (expect::Kind::Fifo, Kind::Fifo)
    )
}

struct Cx<'a> {
    exp: &'a Expectation,
    run: usize,
    ledger: &'a mut Ledger,
}

impl Cx<'_> {
    fn diff(&mut self, reqs: &[String], aspect: Aspect, path: &str, check: Check, expected: String, found: String) {
        let d = Difference { run: self.run, path: path.to_string(), check, expected, found };
        let who = owners(reqs, aspect);
        self.ledger.differ(&who, d);
    }
}

/// Compares DEST's tree with the expectation, recording into `ledger`.
/// `output` is what the adapter printed (for CONSUMER-DEVICES-REPORTED).
pub fn compare_tree(
    exp: &Expectation,
    tree: &Tree,
    user: User,
    scope: Scope,
    run: usize,
    output: &str,
    ledger: &mut Ledger,
) {
    let mut cx = Cx { exp, run, ledger };
    if scope == Scope::Full {
        for p in &exp.present {
            present(&mut cx, p, tree, output);
        }
        hardlinks(&mut cx, tree);
    }
    for a in &exp.absent {
        let rel = rel_path(&a.path);
        cx.ledger.checked(&owners(&a.requirements, Aspect::Whole));
        if let Some(node) = tree.get(&rel) {
            cx.diff(&a.requirements, Aspect::Whole, &a.path, Check::Absent, "nothing".into(), node.describe());
        } else if must_report(exp, &a.requirements, DEVICES) {
            reported(&mut cx, &a.path, output);
        }
    }
    if scope == Scope::Full && !exp.allowances.extra_paths {
        extra_paths(&mut cx, tree);
    }
    globals(&mut cx, tree, user);
    for (rel, node) in &tree.nodes {
        if let Some(why) = &node.unreadable {
            let all: Vec<String> = exp.requirements.iter().map(|r| r.id.clone()).filter(|r| r != CONTAINED).collect();
            cx.diff(
                &all,
                Aspect::Whole,
                &display_path(rel),
                Check::Unreadable,
                "readable by the harness".into(),
                why.clone(),
            );
        }
    }
}

/// Whether a skipped path must be named in the output: the path cites
/// CONSUMER-DEVICES-REPORTED, or the fixture lists it and the path cites
/// `also` (CONSUMER-DEVICES for absent paths, anything for a skipped FIFO).
fn must_report(exp: &Expectation, reqs: &[String], also: &str) -> bool {
    reqs.iter().any(|r| r == DEVICES_REPORTED)
        || (exp.requirements.iter().any(|r| r.id == DEVICES_REPORTED)
            && (also.is_empty() || reqs.iter().any(|r| r == also)))
}

/// The adapter's output names `path` (a skipped device or FIFO): checked
/// for CONSUMER-DEVICES-REPORTED, and only against it.
fn reported(cx: &mut Cx, path: &str, output: &str) {
    let own = vec![DEVICES_REPORTED.to_string()];
    cx.ledger.checked(&own);
    let needle = rel_path(path);
    let needle = needle.to_string_lossy();
    if !output.contains(needle.as_ref()) {
        cx.diff(
            &own,
            Aspect::Whole,
            path,
            Check::Reported,
            format!("the adapter's output names {needle}"),
            "not named in stdout or stderr".into(),
        );
    }
}

fn present(cx: &mut Cx, p: &Present, tree: &Tree, output: &str) {
    let reqs = &p.requirements;
    let rel = rel_path(&p.path);
    cx.ledger.checked(&owners(reqs, Aspect::Whole));
    let Some(node) = tree.get(&rel) else {
        if p.kind == expect::Kind::Fifo && cx.exp.allowances.fifo_may_be_absent {
            if must_report(cx.exp, reqs, "") {
                reported(cx, &p.path, output);
            }
            return;
        }
        let want = if p.kind == expect::Kind::Fifo { "fifo" } else { kind_name(p.kind) };
        cx.diff(reqs, Aspect::Whole, &p.path, Check::Exists, want.into(), "nothing".into());
        return;
    };
    if !kind_matches(p.kind, node.kind) {
        let mut want = kind_name(p.kind).to_string();
        if p.kind == expect::Kind::Fifo && cx.exp.allowances.fifo_may_be_absent {
            want.push_str(" or nothing");
        }
        cx.diff(reqs, Aspect::Whole, &p.path, Check::Type, want, node.describe());
        return;
    }
    if let (Some(mode), false) = (&p.mode, p.kind == expect::Kind::Symlink) {
        let expected = parse_mode(mode).unwrap_or(0);
        mode_check(cx, p, expected, node);
    }
    if let Some(want) = &p.sha256 {
        match &node.sha256 {
            Some(h) if h == want => cx.ledger.checked(&owners(reqs, Aspect::Generic)),
            Some(h) => cx.diff(reqs, Aspect::Generic, &p.path, Check::Sha256, want.clone(), h.clone()),
            None => cx.diff(
                reqs,
                Aspect::Generic,
                &p.path,
                Check::Sha256,
                want.clone(),
                node.unreadable.clone().unwrap_or_else(|| "unreadable".into()),
            ),
        }
    }
    if let Some(want) = &p.target {
        let found = node.target.as_deref().unwrap_or_default();
        if found == want.as_bytes() {
            cx.ledger.checked(&owners(reqs, Aspect::Own(TARGET)));
        } else {
            cx.diff(
                reqs,
                Aspect::Own(TARGET),
                &p.path,
                Check::Target,
                escape_bytes(want.as_bytes()),
                escape_bytes(found),
            );
        }
    }
    if let Some(want) = p.mtime {
        if node.mtime == want as i64 {
            cx.ledger.checked(&owners(reqs, Aspect::Own(MTIME)));
        } else {
            cx.diff(reqs, Aspect::Own(MTIME), &p.path, Check::Mtime, want.to_string(), node.mtime.to_string());
        }
    }
    for (name, want) in &p.xattrs {
        let aspect = if name.starts_with("user.") { Aspect::Own(XATTR_USER) } else { Aspect::Generic };
        let at = format!("{} [{}]", p.path, name);
        match node.xattrs.get(name) {
            Some(v) if v == want.as_bytes() => cx.ledger.checked(&owners(reqs, aspect)),
            Some(v) => cx.diff(reqs, aspect, &at, Check::Xattr, escape_bytes(want.as_bytes()), escape_bytes(v)),
            None => cx.diff(reqs, aspect, &at, Check::Xattr, escape_bytes(want.as_bytes()), "no such attribute".into()),
        }
    }
    for name in &p.xattrs_absent {
        let aspect = absent_xattr_owner(name);
        match node.xattrs.get(name) {
            None => cx.ledger.checked(&owners(reqs, aspect)),
            Some(v) => cx.diff(
                reqs,
                aspect,
                &format!("{} [{}]", p.path, name),
                Check::XattrAbsent,
                "no such attribute".into(),
                format!("set ({} bytes)", v.len()),
            ),
        }
    }
}

/// Mode: missing bits are always wrong; extra owner bits are fine within
/// CONSUMER-OWNER-RAISE when the fixture allows it. Differences are split
/// by the bits concerned, so that each goes to its own requirement:
/// permission bits to CONSUMER-MODE (or CONSUMER-READONLY-DIR), set-ID
/// bits to CONSUMER-SETID-CLEARED and the sticky bit to CONSUMER-STICKY,
/// the last two only in fixtures that test them. Raised owner bits are
/// evidence that CONSUMER-OWNER-RAISE is implemented.
fn mode_check(cx: &mut Cx, p: &Present, expected: u32, node: &Node) {
    let raise = match (cx.exp.allowances.owner_raise, p.kind) {
        (true, expect::Kind::File) => 0o600,
        (true, expect::Kind::Dir) => 0o700,
        _ => 0,
    };
    let raised = node.mode & !expected & raise;
    let bad = (expected ^ node.mode) & !raised;
    if raise != 0 && bad & 0o777 == 0 {
        if raised != 0 {
            cx.ledger.observe(OWNER_RAISE, true, &format!("{} is {:04o}, recorded {expected:04o}", p.path, node.mode));
        } else if expected & raise != raise {
            cx.ledger.observe(OWNER_RAISE, false, &format!("{} keeps its recorded {expected:04o}", p.path));
        }
    }
    let want = if raise != 0 {
        format!("{expected:04o} (owner bits may be raised to u+{})", if raise == 0o700 { "rwx" } else { "rw" })
    } else {
        format!("{expected:04o}")
    };
    let found = format!("{:04o}", node.mode);
    let listed = |id: &str| cx.exp.requirements.iter().any(|r| r.id == id);
    let setid = listed(SETID_CLEARED) || p.requirements.iter().any(|r| r == SETID_CLEARED);
    let sticky = listed(STICKY[0]) || p.requirements.iter().any(|r| r == STICKY[0]);
    for (bits, check, aspect, on) in [
        (0o6000, Check::Setid, Aspect::Own(SETID), setid),
        (0o1000, Check::Sticky, Aspect::Own(STICKY), sticky),
        (0o0777, Check::Mode, Aspect::Perms, true),
    ] {
        if !on {
            continue;
        }
        let who = match aspect {
            Aspect::Own(set) => vec![set[0].to_string()],
            other => owners(&p.requirements, other),
        };
        if bad & bits != 0 {
            let d =
                Difference { run: cx.run, path: p.path.clone(), check, expected: want.clone(), found: found.clone() };
            cx.ledger.differ(&who, d);
        } else {
            cx.ledger.checked(&who);
        }
    }
}

/// Paths of one group name the same object; different groups differ.
fn hardlinks(cx: &mut Cx, tree: &Tree) {
    // Per group name: each member and the (device, inode) it names.
    type Members<'a> = Vec<(&'a Present, (u64, u64))>;
    let mut groups: BTreeMap<&str, Members> = BTreeMap::new();
    for p in &cx.exp.present {
        let Some(group) = &p.hardlink_group else { continue };
        // A missing path or wrong type was reported already.
        if let Some(node) = tree.get(&rel_path(&p.path)).filter(|n| kind_matches(p.kind, n.kind)) {
            groups.entry(group).or_default().push((p, (node.dev, node.ino)));
        }
    }
    let mut firsts: Vec<(&str, &Present, (u64, u64))> = Vec::new();
    for (name, members) in &groups {
        let (first, id) = members[0];
        for (p, other) in &members[1..] {
            if *other == id {
                cx.ledger.checked(&owners(&p.requirements, Aspect::Generic));
            } else {
                cx.diff(
                    &p.requirements,
                    Aspect::Generic,
                    &p.path,
                    Check::Hardlink,
                    format!("the same object as {} (hardlink group {name})", first.path),
                    format!("a different object (inode {} vs {})", other.1, id.1),
                );
            }
        }
        for (other_name, other_first, other_id) in &firsts {
            if *other_id == id {
                cx.diff(
                    &first.requirements,
                    Aspect::Generic,
                    &first.path,
                    Check::Hardlink,
                    format!("a different object from {} (group {name} is not group {other_name})", other_first.path),
                    format!("the same object (inode {})", id.1),
                );
            }
        }
        firsts.push((name, first, id));
    }
}

fn extra_paths(cx: &mut Cx, tree: &Tree) {
    let present: BTreeSet<PathBuf> = cx.exp.present.iter().map(|p| rel_path(&p.path)).collect();
    let absent: BTreeSet<PathBuf> = cx.exp.absent.iter().map(|a| rel_path(&a.path)).collect();
    let mut ancestors: BTreeSet<PathBuf> = BTreeSet::new();
    for p in present.iter().chain(absent.iter()) {
        ancestors.extend(p.ancestors().skip(1).map(Path::to_path_buf));
    }
    let mut tree_reqs: Vec<String> = Vec::new();
    for r in
        cx.exp.present.iter().flat_map(|p| &p.requirements).chain(cx.exp.absent.iter().flat_map(|a| &a.requirements))
    {
        if !tree_reqs.contains(r) {
            tree_reqs.push(r.clone());
        }
    }
    if tree_reqs.is_empty() {
        tree_reqs = cx.exp.requirements.iter().map(|r| r.id.clone()).filter(|r| r != CONTAINED).collect();
    }
    cx.ledger.checked(&owners(&tree_reqs, Aspect::Whole));
    let whiteout_listed = cx.exp.requirements.iter().any(|r| r.id == WHITEOUT || r.id == WHITEOUT_INVALID);
    for (rel, node) in &tree.nodes {
        if rel.as_os_str().is_empty() || present.contains(rel) || absent.contains(rel) {
            continue;
        }
        if node.kind == Kind::Dir && ancestors.contains(rel) {
            continue;
        }
        // Beneath an `absent` path: that path's own difference says it all.
        if rel.ancestors().skip(1).any(|a| absent.contains(a)) {
            continue;
        }
        // A whiteout left on disk: the CONSUMER-WHITEOUT check reports it.
        if whiteout_listed && is_whiteout_name(rel) {
            continue;
        }
        cx.diff(
            &tree_reqs,
            Aspect::Whole,
            &display_path(rel),
            Check::ExtraPath,
            "nothing (the fixture does not allow extra paths)".into(),
            node.describe(),
        );
    }
}

/// CONSUMER-OWNER, CONSUMER-SETID-CLEARED and CONSUMER-WHITEOUT over every
/// object in DEST (DEST itself included), for the fixtures that list them;
/// the whiteout check (no name starting with `.wh.`) also runs, against
/// CONSUMER-WHITEOUT-INVALID, for the fixtures that list that one.
fn globals(cx: &mut Cx, tree: &Tree, user: User) {
    let listed = |id: &str| cx.exp.requirements.iter().any(|r| r.id == id);
    let (owner, setid) = (listed(OWNER), listed(SETID_CLEARED));
    let one = |id: &str| vec![id.to_string()];
    for (id, on) in [(OWNER, owner), (SETID_CLEARED, setid)] {
        if on {
            cx.ledger.checked(&one(id));
        }
    }
    let whiteout: Vec<String> =
        [WHITEOUT, WHITEOUT_INVALID].into_iter().filter(|id| listed(id)).map(String::from).collect();
    cx.ledger.checked(&whiteout);
    for (rel, node) in &tree.nodes {
        let path = display_path(rel);
        if owner {
            if node.uid != user.uid {
                cx.diff(
                    &one(OWNER),
                    Aspect::Whole,
                    &path,
                    Check::Owner,
                    format!("uid {}", user.uid),
                    format!("uid {}", node.uid),
                );
            }
            let parent_gid = rel.parent().and_then(|p| tree.get(p)).map(|n| n.gid).unwrap_or(user.gid);
            if node.gid != user.gid && node.gid != parent_gid {
                cx.diff(
                    &one(OWNER),
                    Aspect::Whole,
                    &path,
                    Check::Group,
                    format!("gid {} or the parent directory's group", user.gid),
                    format!("gid {}", node.gid),
                );
            }
        }
        if setid && node.kind != Kind::Symlink && node.mode & 0o6000 != 0 {
            cx.diff(
                &one(SETID_CLEARED),
                Aspect::Whole,
                &path,
                Check::Setid,
                "no set-user-ID or set-group-ID bit".into(),
                format!("{:04o}", node.mode),
            );
        }
        if !whiteout.is_empty() && is_whiteout_name(rel) {
            cx.diff(
                &whiteout,
                Aspect::Whole,
                &path,
                Check::Whiteout,
                "no name starting with .wh.".into(),
                node.describe(),
            );
        }
    }
}

/// The attributes CONSUMER-XATTR-EXCLUDED names: what umoci, overlayfs
/// in unprivileged mounts, fuse-overlayfs and containers/storage read as
/// an owner, a mode or a redirection.
pub fn is_owner_bearing(name: &str) -> bool {
    name == "user.rootlesscontainers"
        || name == "user.containers.override_stat"
        || name.starts_with("user.overlay.")
        || name.starts_with("user.fuseoverlayfs.")
}

fn is_whiteout_name(rel: &Path) -> bool {
    rel.file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(b".wh."))
}

/// Paths under the run directory, as seen from DEST (`attempt/dest`).
pub fn outside_path(rel: &Path) -> String {
    match rel.strip_prefix("attempt") {
        Ok(rest) if rest.as_os_str().is_empty() => "..".into(),
        Ok(rest) => format!("../{}", display_path(rest)),
        Err(_) => format!("../../{}", display_path(rel)),
    }
}

/// What changed outside DEST between two snapshots of the run directory
/// (DEST and the scratch directory are left out by the caller).
pub fn outside_changes(before: &Tree, after: &Tree, skip: &[PathBuf], run: usize) -> Vec<Difference> {
    let mut out = Vec::new();
    let keys: BTreeSet<&PathBuf> = before.nodes.keys().chain(after.nodes.keys()).collect();
    for rel in keys {
        if skip.contains(rel) {
            continue;
        }
        let (expected, found) = match (before.get(rel), after.get(rel)) {
            (Some(b), None) => (b.describe(), "nothing (removed)".to_string()),
            (None, Some(a)) => ("nothing".to_string(), format!("{} (created)", a.describe())),
            (Some(b), Some(a)) => match changed(b, a) {
                Some(pair) => pair,
                None => continue,
            },
            (None, None) => continue,
        };
        out.push(Difference { run, path: outside_path(rel), check: Check::OutsideDest, expected, found });
    }
    out
}

/// The attributes that differ, as (before, after) descriptions.
fn changed(b: &Node, a: &Node) -> Option<(String, String)> {
    let mut was = Vec::new();
    let mut now = Vec::new();
    let mut note = |name: &str, x: String, y: String| {
        if x != y {
            was.push(format!("{name} {x}"));
            now.push(format!("{name} {y}"));
        }
    };
    note("type", b.kind.name().into(), a.kind.name().into());
    note("mode", format!("{:04o}", b.mode), format!("{:04o}", a.mode));
    note("owner", format!("{}:{}", b.uid, b.gid), format!("{}:{}", a.uid, a.gid));
    note("content", b.sha256.clone().unwrap_or_default(), a.sha256.clone().unwrap_or_default());
    note(
        "target",
        escape_bytes(b.target.as_deref().unwrap_or_default()),
        escape_bytes(a.target.as_deref().unwrap_or_default()),
    );
    note(
        "xattrs",
        format!("{:?}", b.xattrs.keys().collect::<Vec<_>>()),
        format!("{:?}", a.xattrs.keys().collect::<Vec<_>>()),
    );
    note("xattr values", format!("{:x}", xattr_sum(b)), format!("{:x}", xattr_sum(a)));
    if b.kind != Kind::Dir {
        note("inode", b.ino.to_string(), a.ino.to_string());
        note("mtime", b.mtime.to_string(), a.mtime.to_string());
    }
    if was.is_empty() { None } else { Some((was.join(", "), now.join(", "))) }
}

fn xattr_sum(n: &Node) -> u64 {
    // A cheap fingerprint of the values; names are compared separately.
    n.xattrs.values().flatten().fold(0xcbf29ce484222325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3))
}
