//! `single-id-conformance run`: unpacks every fixture with an adapter, as
//! an unprivileged user, in a fresh work directory, and reports one result
//! per requirement per fixture. See conformance/README.md for the adapter
//! contract and [`compare`] for how differences are attributed.

pub mod cli;
pub mod compare;
pub mod exec;
pub mod results;
pub mod tree;
pub mod workdir;

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use compare::{CONTAINED, KEYS, Ledger, POLICY_CAUTION, POLICY_UNKNOWN, Scope, User};
use exec::{Launch, RunRecord};
use results::{Adapter, Check, Difference, FixtureReport, Report, RequirementResult, Status, Summary, Tool};
use tree::Tree;
use workdir::RunDir;

use crate::expect::{Expectation, Level, Outcome};

/// The user adapters run as when the harness is root and no `--uid` /
/// `--gid` is given: nobody / nogroup.
pub const DEFAULT_ID: u32 = 65534;

#[derive(Clone, Debug)]
pub struct Options {
    /// CMD: a shell command line to which LAYOUT REF DEST are appended.
    pub adapter: String,
    pub fixtures: PathBuf,
    /// Only fixtures with these directory names (all when empty).
    pub cases: Vec<String>,
    /// Only these requirement ids (all when empty).
    pub only: Vec<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub timeout: Duration,
    /// Bytes of each output stream kept per run in the report.
    pub max_output: usize,
    /// Where the work directories go (the system's temporary directory by default).
    pub work_dir: Option<PathBuf>,
}

/// Why the harness could not run as asked (exit status 2).
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error {
    fn io(what: impl fmt::Display, e: io::Error) -> Error {
        Error(format!("{what}: {e}"))
    }
}

/// One fixture directory: `layout/` and `expected.json`.
#[derive(Clone, Debug)]
pub struct Fixture {
    pub dir: PathBuf,
    pub expectation: Expectation,
}

/// Reads every fixture under `dir` (each subdirectory, in name order) and
/// checks that its `expected.json` is consistent.
pub fn load_fixtures(dir: &Path) -> Result<Vec<Fixture>, Error> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(format!("fixtures directory {}", dir.display()), e))?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for e in entries {
        let e = e.map_err(|e| Error::io(dir.display(), e))?;
        if e.file_type().map_err(|e| Error::io(e.to_string(), e))?.is_dir() {
            dirs.push(e.path());
        }
    }
    dirs.sort();
    let mut fixtures = Vec::new();
    let mut problems = Vec::new();
    for d in dirs {
        match load_one(&d) {
            Ok(f) => fixtures.push(f),
            Err(p) => problems.extend(p.into_iter().map(|p| format!("{}: {p}", d.display()))),
        }
    }
    if !problems.is_empty() {
        return Err(Error(format!("broken fixtures:\n  {}", problems.join("\n  "))));
    }
    if fixtures.is_empty() {
        return Err(Error(format!(
            "no fixtures in {} (each is a directory with layout/ and expected.json)",
            dir.display()
        )));
    }
    Ok(fixtures)
}

fn load_one(dir: &Path) -> Result<Fixture, Vec<String>> {
    let path = dir.join("expected.json");
    let text = fs::read_to_string(&path).map_err(|e| vec![format!("expected.json: {e}")])?;
    let exp: Expectation = serde_json::from_str(&text).map_err(|e| vec![format!("expected.json: {e}")])?;
    let mut problems = Vec::new();
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    if exp.case != name {
        problems.push(format!("case is {:?} but the directory is {name:?}", exp.case));
    }
    if !dir.join("layout/index.json").is_file() {
        problems.push("layout/index.json is missing".to_string());
    }
    let mut seen = Vec::new();
    for r in &exp.requirements {
        if seen.contains(&&r.id) {
            problems.push(format!("requirement {} is listed twice", r.id));
        }
        seen.push(&r.id);
    }
    let paths = exp
        .present
        .iter()
        .map(|p| (&p.path, &p.requirements))
        .chain(exp.absent.iter().map(|a| (&a.path, &a.requirements)));
    for (path, reqs) in paths {
        if std::path::Path::new(path).components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            problems.push(format!("{path}: a `..` component; paths are relative to DEST and stay inside it"));
        }
        if reqs.is_empty() {
            problems.push(format!("{path}: names no requirement"));
        }
        for r in reqs {
            if !seen.contains(&r) {
                problems.push(format!("{path}: cites {r}, which the fixture's requirements do not list"));
            }
        }
    }
    for p in &exp.present {
        if let Some(m) = &p.mode {
            if compare::parse_mode(m).is_none() {
                problems.push(format!("{}: mode {m:?} is not an octal mode", p.path));
            }
        }
    }
    if problems.is_empty() { Ok(Fixture { dir: dir.to_path_buf(), expectation: exp }) } else { Err(problems) }
}

/// The user adapters run as, and whether the harness drops to it.
fn adapter_user(o: &Options) -> Result<(User, bool), Error> {
    // SAFETY: these calls have no preconditions and cannot fail.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if euid == 0 {
        return Ok((User { uid: o.uid.unwrap_or(DEFAULT_ID), gid: o.gid.unwrap_or(DEFAULT_ID) }, true));
    }
    if o.uid.is_some_and(|u| u != euid) || o.gid.is_some_and(|g| g != egid) {
        return Err(Error(format!(
            "--uid/--gid need root: the harness runs as {euid}:{egid} and runs adapters as itself"
        )));
    }
    Ok((User { uid: euid, gid: egid }, false))
}

/// Runs the adapter on every selected fixture.
pub fn run(o: &Options) -> Result<Report, Error> {
    if o.adapter.trim().is_empty() {
        return Err(Error("--adapter is empty".into()));
    }
    let mut fixtures = load_fixtures(&o.fixtures)?;
    for c in &o.cases {
        if !fixtures.iter().any(|f| &f.expectation.case == c) {
            return Err(Error(format!("--case {c}: no such fixture in {}", o.fixtures.display())));
        }
    }
    if !o.cases.is_empty() {
        fixtures.retain(|f| o.cases.contains(&f.expectation.case));
    }
    if !o.only.is_empty() {
        fixtures.retain(|f| {
            o.only.iter().any(|id| id == CONTAINED || f.expectation.requirements.iter().any(|r| &r.id == id))
        });
        if fixtures.is_empty() {
            return Err(Error(format!("--only {}: no selected fixture lists these requirements", o.only.join(" "))));
        }
    }
    let (user, drop) = adapter_user(o)?;
    let base = o.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    if drop {
        if let Some(d) = workdir::first_unsearchable(&base, user.uid, user.gid) {
            return Err(Error(format!(
                "{} is not searchable by {}:{}, who must reach the work directory; choose another with --work-dir",
                d.display(),
                user.uid,
                user.gid
            )));
        }
    }
    let run_dir = RunDir::new(Some(&base), drop.then_some((user.uid, user.gid)))
        .map_err(|e| Error::io(format!("creating a work directory in {}", base.display()), e))?;
    let ctx = Ctx { o, user, drop, run_dir: &run_dir };
    let mut reports = Vec::new();
    for f in &fixtures {
        reports.push(run_fixture(&ctx, f)?);
    }
    let summary = Summary::of(&reports);
    Ok(Report {
        report_version: results::REPORT_VERSION,
        tool: Tool { name: env!("CARGO_PKG_NAME").into(), version: env!("CARGO_PKG_VERSION").into() },
        adapter: Adapter {
            command: o.adapter.clone(),
            uid: user.uid,
            gid: user.gid,
            dropped_privileges: drop,
            timeout_seconds: o.timeout.as_secs(),
        },
        fixtures_dir: o.fixtures.display().to_string(),
        only: o.only.clone(),
        fixtures: reports,
        summary,
    })
}

struct Ctx<'a> {
    o: &'a Options,
    user: User,
    drop: bool,
    run_dir: &'a RunDir,
}

/// DEST as the adapter left it.
enum DestState {
    Tree(Tree),
    Gone,
    Broken(String),
}

impl DestState {
    fn entries(&self) -> Vec<String> {
        match self {
            DestState::Tree(t) => {
                t.nodes.keys().filter(|k| !k.as_os_str().is_empty()).map(|k| tree::display_path(k)).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// One execution of the adapter in a fresh attempt directory: the
/// containment check is recorded for CONSUMER-CONTAINED, DEST returned.
fn attempt(
    ctx: &Ctx,
    f: &Fixture,
    consent: bool,
    run: usize,
    ledger: &mut Ledger,
) -> Result<(RunRecord, DestState), Error> {
    let exp = &f.expectation;
    let a = ctx
        .run_dir
        .attempt(&f.dir.join("layout"))
        .map_err(|e| Error::io(format!("{}: preparing the work directory", exp.case), e))?;
    let skip = a.unmonitored();
    let root = ctx.run_dir.path();
    let before = tree::snapshot(root, &skip).map_err(|e| Error::io("reading the work directory", e))?;
    let markers_before = workdir::host_markers();
    let rec = exec::launch(&Launch {
        command: &ctx.o.adapter,
        layout: &a.layout,
        reference: &exp.reference,
        dest: &a.dest,
        scratch: &a.scratch,
        consent,
        drop_to: ctx.drop.then_some((ctx.user.uid, ctx.user.gid)),
        timeout: ctx.o.timeout,
        max_output: ctx.o.max_output,
    });
    let contained = vec![CONTAINED.to_string()];
    ledger.checked(&contained);
    let skip_rel: Vec<PathBuf> = skip.iter().filter_map(|p| p.strip_prefix(root).ok().map(Path::to_path_buf)).collect();
    match tree::snapshot(root, &skip) {
        Ok(after) => {
            for d in compare::outside_changes(&before, &after, &skip_rel, run) {
                ledger.differ(&contained, d);
            }
        }
        Err(e) => ledger.differ(
            &contained,
            Difference {
                run,
                path: "../..".into(),
                check: Check::OutsideDest,
                expected: "the work directory unchanged".into(),
                found: format!("unreadable: {e}"),
            },
        ),
    }
    // Host paths that escape fixtures aim at; what appeared is reported
    // and then removed, so that it cannot affect the next attempt.
    for p in workdir::host_markers().difference(&markers_before) {
        let found = fs::symlink_metadata(p)
            .map(|m| format!("{} (created)", if m.is_dir() { "a directory" } else { "an object" }))
            .unwrap_or_else(|_| "an object (created)".into());
        ledger.differ(
            &contained,
            Difference {
                run,
                path: p.display().to_string(),
                check: Check::OutsideDest,
                expected: "nothing".into(),
                found,
            },
        );
        let _ = workdir::remove_tree(p).or_else(|_| fs::remove_file(p));
    }
    let dest = match fs::symlink_metadata(&a.dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => DestState::Gone,
        Err(e) => DestState::Broken(format!("DEST cannot be examined: {e}")),
        Ok(m) if !m.is_dir() => DestState::Broken("DEST is no longer a directory after the adapter ran".into()),
        Ok(_) => match tree::snapshot(&a.dest, &[]) {
            Ok(t) => DestState::Tree(t),
            Err(e) => DestState::Broken(format!("DEST cannot be read: {e}")),
        },
    };
    a.remove().map_err(|e| Error::io(format!("{}: removing the work directory", exp.case), e))?;
    Ok((rec, dest))
}

fn run_fixture(ctx: &Ctx, f: &Fixture) -> Result<FixtureReport, Error> {
    let exp = &f.expectation;
    let mut ids: Vec<(String, Level, bool)> = exp.requirements.iter().map(|r| (r.id.clone(), r.level, true)).collect();
    if !ids.iter().any(|(id, _, _)| id == CONTAINED) {
        ids.push((CONTAINED.to_string(), Level::Must, false));
    }
    let mut ledger = Ledger::new(ids.iter().map(|(id, _, _)| id.as_str()));
    let listed: Vec<String> = exp.requirements.iter().map(|r| r.id.clone()).collect();
    let without_contained: Vec<String> = listed.iter().filter(|r| *r != CONTAINED).cloned().collect();
    let mut runs = Vec::new();
    match exp.outcome {
        Outcome::Unpack => {
            let (rec, dest) = attempt(ctx, f, false, 0, &mut ledger)?;
            if !rec.succeeded() {
                let why = format!(
                    "the adapter {} where this fixture needs an unpack (outcome unpack), so the tree could not be checked",
                    rec.status_text()
                );
                ledger.fail(&without_contained, &why);
            } else {
                ledger.checked(&without_contained);
                check_dest(ctx, exp, &dest, Scope::Full, 0, &rec.searchable, &without_contained, &mut ledger);
            }
            runs.push(rec);
        }
        Outcome::Any => {
            let (rec, dest) = attempt(ctx, f, false, 0, &mut ledger)?;
            let scope = if rec.succeeded() {
                Scope::Full
            } else {
                let why = format!(
                    "the adapter {}, which this fixture allows; after a failed unpack only absent paths and the global checks apply, and none concerns this requirement",
                    rec.status_text()
                );
                ledger.skip_unless_checked(&without_contained, &why);
                Scope::AfterFailure
            };
            if !matches!(dest, DestState::Gone) || scope == Scope::Full {
                check_dest(ctx, exp, &dest, scope, 0, &rec.searchable, &without_contained, &mut ledger);
            }
            runs.push(rec);
        }
        Outcome::RefuseThenUnpack => {
            let mut policy: Vec<String> =
                listed.iter().filter(|r| *r == POLICY_CAUTION || *r == POLICY_UNKNOWN).cloned().collect();
            let names_key = !policy.is_empty();
            if policy.is_empty() {
                policy = without_contained.clone();
            }
            let rest: Vec<String> = without_contained.iter().filter(|r| !policy.contains(r)).cloned().collect();

            let (rec, dest) = attempt(ctx, f, false, 0, &mut ledger)?;
            ledger.checked(&policy);
            if rec.exit_code == Some(0) || rec.exit_code.is_none() {
                ledger.differ(
                    &policy,
                    Difference {
                        run: 0,
                        path: String::new(),
                        check: Check::ExitStatus,
                        expected: "non-zero: a refusal, without SINGLE_ID_CONFIRM".into(),
                        found: rec.status_text(),
                    },
                );
            }
            let left = dest.entries();
            if !left.is_empty() || matches!(dest, DestState::Broken(_)) {
                let found = match &dest {
                    DestState::Broken(why) => why.clone(),
                    _ => format!("{} entries: {}", left.len(), first_few(&left)),
                };
                ledger.differ(
                    &policy,
                    Difference {
                        run: 0,
                        path: String::new(),
                        check: Check::DestEmpty,
                        expected: "DEST empty: nothing written without consent".into(),
                        found,
                    },
                );
            }
            if names_key && rec.exit_code.is_some_and(|c| c != 0) && !KEYS.iter().any(|k| rec.searchable.contains(k)) {
                ledger.differ(
                    &policy,
                    Difference {
                        run: 0,
                        path: String::new(),
                        check: Check::Notice,
                        expected: format!("a message naming {} or {}", KEYS[0], KEYS[1]),
                        found: "neither key appears in stdout or stderr".into(),
                    },
                );
            }
            runs.push(rec);

            let (rec, dest) = attempt(ctx, f, true, 1, &mut ledger)?;
            if !rec.succeeded() {
                ledger.differ(
                    &policy,
                    Difference {
                        run: 1,
                        path: String::new(),
                        check: Check::ExitStatus,
                        expected: "0: an unpack, with SINGLE_ID_CONFIRM=1".into(),
                        found: rec.status_text(),
                    },
                );
                let why = format!(
                    "with SINGLE_ID_CONFIRM=1 the adapter {} where this fixture needs an unpack, so the tree could not be checked",
                    rec.status_text()
                );
                ledger.fail(&rest, &why);
            } else {
                ledger.checked(&rest);
                check_dest(ctx, exp, &dest, Scope::Full, 1, &rec.searchable, &without_contained, &mut ledger);
            }
            runs.push(rec);
        }
    }
    let results = ids
        .into_iter()
        .map(|(id, level, listed)| {
            let (status, reason, differences) = if !ctx.o.only.is_empty() && !ctx.o.only.contains(&id) {
                (Status::Skip, Some("not selected by --only".to_string()), Vec::new())
            } else {
                ledger.verdict(&id)
            };
            RequirementResult { requirement: id, level, status, listed, reason, differences }
        })
        .collect();
    Ok(FixtureReport {
        case: exp.case.clone(),
        description: exp.description.clone(),
        reference: exp.reference.clone(),
        outcome: exp.outcome,
        runs,
        results,
    })
}

#[allow(clippy::too_many_arguments)]
fn check_dest(
    ctx: &Ctx,
    exp: &Expectation,
    dest: &DestState,
    scope: Scope,
    run: usize,
    output: &str,
    reqs: &[String],
    ledger: &mut Ledger,
) {
    match dest {
        DestState::Tree(t) => compare::compare_tree(exp, t, ctx.user, scope, run, output, ledger),
        DestState::Gone => ledger.differ(
            reqs,
            Difference {
                run,
                path: String::new(),
                check: Check::Dest,
                expected: "DEST, a directory".into(),
                found: "nothing: DEST was removed".into(),
            },
        ),
        DestState::Broken(why) => ledger.differ(
            reqs,
            Difference {
                run,
                path: String::new(),
                check: Check::Dest,
                expected: "DEST, a directory".into(),
                found: why.clone(),
            },
        ),
    }
}

fn first_few(items: &[String]) -> String {
    let mut s = items.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 5 {
        s.push_str(", ...");
    }
    s
}
