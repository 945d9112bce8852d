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

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use compare::attribution_problems;
use compare::{CONTAINED, KEYS, Ledger, POLICY_ALLOWED, POLICY_CAUTION, POLICY_FLATTENED, POLICY_UNKNOWN, Scope, User};
use exec::{Launch, RunRecord};
use results::{Adapter, Check, Difference, FixtureReport, Report, RequirementResult, Status, Summary, Tool};
use tree::Tree;
use workdir::RunDir;

use crate::expect::{Expectation, Level, Outcome, Value};

/// The user adapters run as when the harness is root and no `--uid` /
/// `--gid` is given: nobody / nogroup.
pub const DEFAULT_ID: u32 = 65534;

#[derive(Clone, Debug)]
pub struct Options {
    /// CMD: a shell command line to which LAYOUT REF DEST are appended.
    pub adapter: String,
    /// A fixtures directory; `None` for the fixtures built into the harness.
    pub fixtures: Option<PathBuf>,
    /// The spec URL that requirement anchors are appended to.
    pub spec_url: String,
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
    for n in &exp.needs {
        if !seen.contains(&n) {
            problems.push(format!("needs {n}, which the fixture's requirements do not list"));
        }
    }
    for a in &exp.assumes {
        if seen.contains(&&a.requirement) {
            problems.push(format!("assumes {} absent for {}, which the fixture tests itself", a.path, a.requirement));
        }
    }
    if let Some(p) = attribution_problems(&exp) {
        problems.push(p);
    }
    if problems.is_empty() { Ok(Fixture { dir: dir.to_path_buf(), expectation: exp }) } else { Err(problems) }
}

/// The user adapters run as, and whether the harness drops to it.
fn adapter_user(o: &Options) -> Result<(User, bool), Error> {
    let (euid, egid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
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

/// The fixtures a run uses: a directory given with `--fixtures`, or the
/// ones built into the harness, generated into a temporary directory.
pub struct FixtureSet {
    pub fixtures: Vec<Fixture>,
    pub described_as: String,
    _dir: Option<tempfile::TempDir>,
}

/// Loads the fixtures of `dir`, or generates the embedded ones.
pub fn fixture_set(dir: Option<&Path>) -> Result<FixtureSet, Error> {
    if let Some(dir) = dir {
        return Ok(FixtureSet { fixtures: load_fixtures(dir)?, described_as: dir.display().to_string(), _dir: None });
    }
    let tmp = tempfile::Builder::new()
        .prefix("single-id-conformance-fixtures.")
        .tempdir()
        .map_err(|e| Error::io("creating a directory for the embedded fixtures", e))?;
    for (name, text) in crate::embedded::CASES {
        write_case(tmp.path(), name, text)?;
    }
    Ok(FixtureSet { fixtures: load_fixtures(tmp.path())?, described_as: "(embedded)".into(), _dir: Some(tmp) })
}

/// Generates the fixture of one case (JSON text) into `dir/<name>/`.
fn write_case(dir: &Path, name: &str, text: &str) -> Result<(), Error> {
    let case: crate::case::Case =
        serde_json::from_str(text).map_err(|e| Error(format!("embedded case {name}: {e}")))?;
    let files = crate::generate::fixture(name, &case).map_err(|e| Error(format!("embedded case {name}: {e}")))?;
    for (rel, bytes) in files {
        let path = dir.join(name).join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent.display(), e))?;
        }
        fs::write(&path, bytes).map_err(|e| Error::io(path.display(), e))?;
    }
    Ok(())
}

/// The harness's own probe image for `value`: one gzip layer with two
/// top-level directories and a file, the annotation in the manifest and
/// the Label. Any consumer unpacks it, with consent if it asks; one that
/// cannot is broken, and nothing it reports about the fixtures means
/// anything.
fn probe_case(value: Value) -> String {
    serde_json::json!({
        "description": format!("The harness's probe image: nothing unusual, effective value {}.", value.name()),
        "annotation": {"manifest": value.name(), "label": value.name()},
        "requirements": [{"id": "CONSUMER-LAYER-ORDER", "level": "MUST"}],
        "outcome": "unpack",
        "allowances": {"ownerRaise": true, "extraPaths": true},
        "layers": [{"compression": "gzip", "entries": [
            {"path": "etc/", "type": "dir"},
            {"path": "etc/probe", "content": PROBE_CONTENT},
            {"path": "srv/", "type": "dir"}
        ]}],
        "present": [{"path": "etc/probe", "type": "file", "content": PROBE_CONTENT,
                     "requirements": ["CONSUMER-LAYER-ORDER"]}]
    })
    .to_string()
}

const PROBE_CONTENT: &str = "single-id-conformance probe: any consumer unpacks this\n";

/// Runs the probe image of `value`: without consent, then with it if the
/// adapter refused. Returns whether it unpacked without consent, or an
/// error naming what the adapter printed when it unpacked neither way.
fn probe(ctx: &Ctx, dir: &Path, value: Value) -> Result<results::Probe, Error> {
    let name = format!("probe-{}", value.name());
    write_case(dir, &name, &probe_case(value))?;
    let f = load_one(&dir.join(&name)).map_err(|p| Error(p.join("; ")))?;
    let mut runs = Vec::new();
    for consent in [false, true] {
        let mut ledger = Ledger::new([(CONTAINED, Level::Must), ("CONSUMER-LAYER-ORDER", Level::Must)]);
        let (rec, dest) = attempt(ctx, &f, consent, runs.len(), &mut ledger)?;
        let ok = rec.succeeded()
            && matches!(&dest, DestState::Tree(t) if t.get(Path::new("etc/probe")).and_then(|n| n.sha256.clone())
                == Some(crate::generate::sha256(PROBE_CONTENT.as_bytes())));
        runs.push(rec);
        if ok {
            return Ok(results::Probe { value, without_consent: !consent, runs });
        }
    }
    let last = runs.last().expect("two runs");
    let mut msg = format!(
        "the adapter is broken: it cannot unpack the harness's {} probe image (one gzip layer holding etc/probe and srv/), \
         without consent or with SINGLE_ID_CONFIRM=1; with consent it {}",
        value.name(),
        last.status_text()
    );
    let ok_but_wrong = last.succeeded();
    if ok_but_wrong {
        msg.push_str(", but etc/probe is not in DEST with its content");
    }
    for (name, c) in [("standard error", &last.stderr), ("standard output", &last.stdout)] {
        if c.text.trim().is_empty() {
            msg.push_str(&format!("\nits {name} was empty"));
        } else {
            msg.push_str(&format!("\nits {name}:"));
            for line in crate::report::printable(&c.text).lines() {
                msg.push_str(&format!("\n  | {line}"));
            }
        }
    }
    msg.push_str(
        "\nno fixture was scored: fix the adapter (conformance/README.md, \"Writing an adapter\") and run again",
    );
    Err(Error(msg))
}

/// Runs the adapter on every selected fixture.
pub fn run(o: &Options) -> Result<Report, Error> {
    if o.adapter.trim().is_empty() {
        return Err(Error("--adapter is empty".into()));
    }
    let set = fixture_set(o.fixtures.as_deref())?;
    let mut fixtures = set.fixtures.clone();
    for c in &o.cases {
        if !fixtures.iter().any(|f| &f.expectation.case == c) {
            return Err(Error(format!("--case {c}: no such fixture in {}", set.described_as)));
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
    let mut ctx = Ctx { o, user, drop, run_dir: &run_dir, asks: BTreeMap::new() };
    // Probes first: a broken adapter stops the run before any scoring.
    let probe_dir = tempfile::Builder::new()
        .prefix("single-id-conformance-probes.")
        .tempdir()
        .map_err(|e| Error::io("creating a directory for the probe images", e))?;
    let mut probes = Vec::new();
    for value in [Value::Flattened, Value::Allowed] {
        let p = probe(&ctx, probe_dir.path(), value)?;
        ctx.asks.insert(value, !p.without_consent);
        probes.push(p);
    }
    let mut reports = Vec::new();
    for f in &fixtures {
        reports.push(run_fixture(&ctx, f)?);
    }
    let (summary, requirements) = Summary::of(&reports);
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
        fixtures_dir: set.described_as.clone(),
        spec: results::Spec { version: crate::spec_index::SPEC_VERSION.into(), url: o.spec_url.clone() },
        probes,
        only: o.only.clone(),
        fixtures: reports,
        requirements,
        summary,
    })
}

struct Ctx<'a> {
    o: &'a Options,
    user: User,
    drop: bool,
    run_dir: &'a RunDir,
    /// Per value, whether the adapter asked for consent for the probe image.
    asks: BTreeMap<Value, bool>,
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

/// The annotation requirements a fixture lists: each fixes the effective
/// value, so a consumer that asks when it should not (or does not ask
/// when it should) violates it as well as the policy.
fn annotation_ids(listed: &[String]) -> Vec<String> {
    listed.iter().filter(|r| r.starts_with("ANNOTATION-")).cloned().collect()
}

/// The MAY requirement that lets a consumer flatten an image of `value`
/// without asking.
fn policy_may(value: Value) -> Option<&'static str> {
    match value {
        Value::Flattened => Some(POLICY_FLATTENED),
        Value::Allowed => Some(POLICY_ALLOWED),
        Value::Caution => None,
    }
}

/// Whether DEST is as it was before the adapter ran: a refusal.
fn untouched(dest: &DestState) -> bool {
    match dest {
        DestState::Gone => true,
        DestState::Tree(_) => dest.entries().is_empty(),
        DestState::Broken(_) => false,
    }
}

fn run_fixture(ctx: &Ctx, f: &Fixture) -> Result<FixtureReport, Error> {
    let exp = &f.expectation;
    let ids = requirement_ids(exp);
    let mut fixture = FixtureRun::new(ctx, f, &ids);
    match exp.outcome {
        Outcome::Unpack => fixture.unpack()?,
        Outcome::Any => fixture.any()?,
        Outcome::Fail => fixture.fail()?,
        Outcome::RefuseThenUnpack => fixture.refuse_then_unpack()?,
    }
    // What this fixture's checks depend on: a need that fails, or an
    // assumed-absent path that exists, turns the other failures into
    // blocked results.
    fixture.block_on_needs();
    fixture.block_on_assumptions();
    let results = fixture.results(ids);
    Ok(FixtureReport {
        case: exp.case.clone(),
        description: exp.description.clone(),
        reference: exp.reference.clone(),
        outcome: exp.outcome,
        runs: fixture.runs,
        results,
    })
}

/// Every requirement a fixture is scored on, with its level and whether
/// the fixture lists it: CONSUMER-CONTAINED is checked on every fixture,
/// listed or not.
fn requirement_ids(exp: &Expectation) -> Vec<(String, Level, bool)> {
    let mut ids: Vec<(String, Level, bool)> = exp.requirements.iter().map(|r| (r.id.clone(), r.level, true)).collect();
    if !ids.iter().any(|(id, _, _)| id == CONTAINED) {
        ids.push((CONTAINED.to_string(), Level::Must, false));
    }
    ids
}

/// One fixture being run: the adapter's runs so far, the ledger they
/// are recorded in, and the tree the last checked run left in DEST.
struct FixtureRun<'a> {
    ctx: &'a Ctx<'a>,
    f: &'a Fixture,
    exp: &'a Expectation,
    /// The requirements the fixture lists.
    listed: Vec<String>,
    /// The same without CONSUMER-CONTAINED, which [`attempt`] records.
    without_contained: Vec<String>,
    /// The listed annotation requirements (see [`annotation_ids`]).
    annotations: Vec<String>,
    /// Whether the adapter asks for consent for images of this value, as
    /// the probe image showed.
    asks: bool,
    ledger: Ledger,
    runs: Vec<RunRecord>,
    /// What the assumed-absent paths are looked up in.
    last_tree: Option<Tree>,
}

impl<'a> FixtureRun<'a> {
    fn new(ctx: &'a Ctx<'a>, f: &'a Fixture, ids: &[(String, Level, bool)]) -> Self {
        let exp = &f.expectation;
        let listed: Vec<String> = exp.requirements.iter().map(|r| r.id.clone()).collect();
        let without_contained: Vec<String> = listed.iter().filter(|r| *r != CONTAINED).cloned().collect();
        let annotations = annotation_ids(&listed);
        FixtureRun {
            ctx,
            f,
            exp,
            ledger: Ledger::new(ids.iter().map(|(id, level, _)| (id.as_str(), *level))),
            listed,
            without_contained,
            annotations,
            asks: ctx.asks.get(&exp.effective_value).copied().unwrap_or(false),
            runs: Vec::new(),
            last_tree: None,
        }
    }

    fn attempt(&mut self, consent: bool, run: usize) -> Result<(RunRecord, DestState), Error> {
        attempt(self.ctx, self.f, consent, run, &mut self.ledger)
    }

    /// Compares DEST with what the fixture expects, and keeps its tree for
    /// the assumed-absent paths (see [`Self::block_on_assumptions`]).
    fn check_dest(&mut self, dest: DestState, scope: Scope, run: usize, rec: &RunRecord) {
        check_dest(self.ctx, self.exp, &dest, scope, run, &rec.searchable, &self.without_contained, &mut self.ledger);
        if let DestState::Tree(t) = dest {
            self.last_tree = Some(t);
        }
    }

    /// A run that should have unpacked: the tree is checked if it did,
    /// `reqs` fail (or are blocked) if it did not. `how` says whether it
    /// ran with consent, for the reason given.
    fn judge_unpack(&mut self, rec: RunRecord, dest: DestState, run: usize, how: &str, reqs: &[String]) {
        if !rec.succeeded() {
            unpack_failed(self.exp, &rec, how, reqs, &mut self.ledger);
        } else {
            self.ledger.checked(reqs);
            self.check_dest(dest, Scope::Full, run, &rec);
        }
        self.runs.push(rec);
    }

    /// Outcome `unpack`: the adapter unpacks the image, with consent if it
    /// refused without; whether it asked is judged against the probe.
    fn unpack(&mut self) -> Result<(), Error> {
        let value = self.exp.effective_value;
        let may = policy_may(value).filter(|id| self.listed.iter().any(|r| r == id));
        let policy_matters = may.is_some() || !self.annotations.is_empty();
        // A consumer that asks for consent for every image of this
        // value is given it at once, unless the fixture is about that.
        let mut consent = self.asks && !policy_matters;
        let (mut rec, mut dest) = self.attempt(consent, 0)?;
        if !consent && !rec.succeeded() && untouched(&dest) {
            // A refusal: try again with consent.
            self.runs.push(rec);
            consent = true;
            let again = self.attempt(true, 1)?;
            (rec, dest) = again;
            if rec.succeeded() {
                self.refused_then_unpacked(value, may);
            }
        } else if !consent && rec.succeeded() {
            self.unpacked_without_consent(value, may, &rec);
        }
        let run = self.runs.len();
        let how = if consent { " with SINGLE_ID_CONFIRM=1" } else { "" };
        let reqs = self.without_contained.clone();
        self.judge_unpack(rec, dest, run, how, &reqs);
        Ok(())
    }

    /// The adapter refused the image without consent and unpacked it with
    /// consent: the MAY policy is not implemented, and the annotations
    /// were misread unless the probe of this value was refused too.
    fn refused_then_unpacked(&mut self, value: Value, may: Option<&str>) {
        if let Some(id) = may {
            self.ledger.observe(id, false, &format!("refused this {} image without consent", value.name()));
        }
        self.ledger.checked(&self.annotations);
        if !self.asks {
            self.ledger.differ(
                &self.annotations,
                Difference {
                    run: 0,
                    path: String::new(),
                    check: Check::ExitStatus,
                    expected: format!(
                        "0: an unpack without consent, as for the harness's {} probe image (effective value {})",
                        value.name(),
                        value.name()
                    ),
                    found: format!(
                        "{}, and an unpack with SINGLE_ID_CONFIRM=1: the image was read as more cautious than {}",
                        self.runs[0].status_text(),
                        value.name()
                    ),
                },
            );
        }
    }

    /// The adapter unpacked the image without consent: the MAY policy is
    /// implemented, and the annotations were misread if the probe of this
    /// value was refused.
    fn unpacked_without_consent(&mut self, value: Value, may: Option<&str>, rec: &RunRecord) {
        if let Some(id) = may {
            self.ledger.observe(id, true, &format!("unpacked this {} image without consent", value.name()));
        }
        self.ledger.checked(&self.annotations);
        if self.asks {
            self.ledger.differ(
                &self.annotations,
                Difference {
                    run: 0,
                    path: String::new(),
                    check: Check::ExitStatus,
                    expected: format!(
                        "a refusal without consent, as for the harness's {} probe image (effective value {})",
                        value.name(),
                        value.name()
                    ),
                    found: format!("{}: the image was read as less cautious than {}", rec.status_text(), value.name()),
                },
            );
        }
    }

    /// Outcome `any`: the adapter may unpack or fail; after a failure only
    /// what DEST must not hold is checked.
    fn any(&mut self) -> Result<(), Error> {
        let (rec, dest) = self.attempt(self.asks, 0)?;
        let scope = if rec.succeeded() {
            Scope::Full
        } else {
            let why = format!(
                "the adapter {}, which this fixture allows; after a failed unpack only absent paths and the global checks apply, and none concerns this requirement",
                rec.status_text()
            );
            self.ledger.skip_unless_checked(&self.without_contained, &why);
            Scope::AfterFailure
        };
        if !matches!(dest, DestState::Gone) || scope == Scope::Full {
            self.check_dest(dest, scope, 0, &rec);
        }
        self.runs.push(rec);
        Ok(())
    }

    /// Outcome `fail`: the adapter must report that it could not unpack
    /// the image completely.
    fn fail(&mut self) -> Result<(), Error> {
        let (rec, dest) = self.attempt(self.asks, 0)?;
        self.ledger.checked(&self.without_contained);
        if rec.exit_code == Some(0) && !rec.timed_out {
            self.ledger.differ(
                &self.without_contained,
                Difference {
                    run: 0,
                    path: String::new(),
                    check: Check::ExitStatus,
                    expected: "non-zero: this image cannot be unpacked completely, and the failure must be reported"
                        .into(),
                    found: rec.status_text(),
                },
            );
        }
        if !matches!(dest, DestState::Gone) {
            self.check_dest(dest, Scope::AfterFailure, 0, &rec);
        }
        self.runs.push(rec);
        Ok(())
    }

    /// Outcome `refuse-then-unpack`: without consent the adapter must
    /// refuse and write nothing; with consent it must unpack.
    fn refuse_then_unpack(&mut self) -> Result<(), Error> {
        let groups = RefusalGroups::of(&self.listed, &self.without_contained, &self.annotations);
        let (rec, dest) = self.attempt(false, 0)?;
        self.judge_refusal(&rec, &dest, &groups);
        self.runs.push(rec);

        let (rec, dest) = self.attempt(true, 1)?;
        if !rec.succeeded() {
            self.ledger.differ(
                &groups.policy,
                Difference {
                    run: 1,
                    path: String::new(),
                    check: Check::ExitStatus,
                    expected: "0: an unpack, with SINGLE_ID_CONFIRM=1".into(),
                    found: rec.status_text(),
                },
            );
        }
        self.judge_unpack(rec, dest, 1, " with SINGLE_ID_CONFIRM=1", &groups.rest);
        Ok(())
    }

    /// The run without consent of a refuse-then-unpack fixture: it must
    /// fail, leave DEST empty and, when the fixture is about the policy,
    /// name the annotation key it refused for.
    fn judge_refusal(&mut self, rec: &RunRecord, dest: &DestState, groups: &RefusalGroups) {
        self.ledger.checked(&groups.value_wrong);
        if rec.exit_code == Some(0) || rec.exit_code.is_none() {
            self.ledger.differ(
                &groups.value_wrong,
                Difference {
                    run: 0,
                    path: String::new(),
                    check: Check::ExitStatus,
                    expected: "non-zero: a refusal, without SINGLE_ID_CONFIRM".into(),
                    found: rec.status_text(),
                },
            );
        }
        if let Some(found) = written_without_consent(dest) {
            self.ledger.differ(
                &groups.policy,
                Difference {
                    run: 0,
                    path: String::new(),
                    check: Check::DestEmpty,
                    expected: "DEST empty: nothing written without consent".into(),
                    found,
                },
            );
        }
        if groups.names_key && rec.exit_code.is_some_and(|c| c != 0) && !KEYS.iter().any(|k| rec.searchable.contains(k))
        {
            self.ledger.differ(
                &groups.policy,
                Difference {
                    run: 0,
                    path: String::new(),
                    check: Check::Notice,
                    expected: format!("a message naming {} or {}", KEYS[0], KEYS[1]),
                    found: "neither key appears in stdout or stderr".into(),
                },
            );
        }
    }

    /// A need that fails turns the failures of the fixture's other
    /// requirements into blocked results: they depend on what it covers.
    fn block_on_needs(&mut self) {
        let needs_failing: Vec<&String> = self.exp.needs.iter().filter(|n| self.ledger.failing(n)).collect();
        if needs_failing.is_empty() {
            return;
        }
        let others: Vec<String> =
            self.without_contained.iter().filter(|r| !self.exp.needs.contains(r)).cloned().collect();
        let names: Vec<&str> = needs_failing.iter().map(|s| s.as_str()).collect();
        self.ledger.block_failures(
            &others,
            &format!("not judged: this fixture depends on what {} covers, which fails here", names.join(" and ")),
        );
    }

    /// An assumed-absent path that exists in the last tree turns the
    /// failures of the fixture's other requirements into blocked results.
    fn block_on_assumptions(&mut self) {
        let Some(tree) = &self.last_tree else { return };
        for a in &self.exp.assumes {
            if let Some(node) = tree.get(&compare::rel_path(&a.path)) {
                let others: Vec<String> =
                    self.without_contained.iter().filter(|r| **r != a.requirement).cloned().collect();
                self.ledger.block_failures(
                    &others,
                    &format!(
                        "not judged: this fixture assumes {} absent, as {} requires (tested by its own fixture), but found {}",
                        a.path,
                        a.requirement,
                        node.describe()
                    ),
                );
            }
        }
    }

    /// One result per requirement of `ids`, in order; those `--only`
    /// leaves out are skipped.
    fn results(&self, ids: Vec<(String, Level, bool)>) -> Vec<RequirementResult> {
        let o = self.ctx.o;
        ids.into_iter()
            .map(|(id, level, listed)| {
                let (status, reason, differences) = if !o.only.is_empty() && !o.only.contains(&id) {
                    (Status::Skip, Some("not selected by --only".to_string()), Vec::new())
                } else {
                    self.ledger.verdict(&id)
                };
                let (section, url) = spec_link(&o.spec_url, &id);
                RequirementResult { requirement: id, level, section, url, status, listed, reason, differences }
            })
            .collect()
    }
}

/// How a refuse-then-unpack fixture's requirements are scored.
struct RefusalGroups {
    /// What an unpack without consent, or a failure with it, fails: the
    /// policy requirements the fixture lists, else all it lists.
    policy: Vec<String>,
    /// The refusal must name the annotation key: the fixture lists a
    /// policy requirement.
    names_key: bool,
    /// `policy` and the annotation requirements: what a consumer that
    /// does not refuse has got wrong.
    value_wrong: Vec<String>,
    /// The others, judged on the unpack with consent.
    rest: Vec<String>,
}

impl RefusalGroups {
    fn of(listed: &[String], without_contained: &[String], annotations: &[String]) -> Self {
        let mut policy: Vec<String> =
            listed.iter().filter(|r| *r == POLICY_CAUTION || *r == POLICY_UNKNOWN).cloned().collect();
        let names_key = !policy.is_empty();
        if policy.is_empty() {
            policy = without_contained.to_vec();
        }
        // A consumer that flattens without consent has read the wrong
        // effective value: that counts against the annotation
        // requirement that fixes the value as well.
        let mut value_wrong = policy.clone();
        value_wrong.extend(annotations.iter().filter(|a| !policy.contains(a)).cloned());
        let rest: Vec<String> = without_contained.iter().filter(|r| !value_wrong.contains(r)).cloned().collect();
        RefusalGroups { policy, names_key, value_wrong, rest }
    }
}

/// What a refusal left in DEST, which should hold nothing.
fn written_without_consent(dest: &DestState) -> Option<String> {
    let left = dest.entries();
    if left.is_empty() && !matches!(dest, DestState::Broken(_)) {
        return None;
    }
    Some(match dest {
        DestState::Broken(why) => why.clone(),
        _ => format!("{} entries: {}", left.len(), first_few(&left)),
    })
}

/// The adapter did not unpack a fixture that needs an unpack: the tree
/// cannot be checked. The requirements whose features the fixture needs
/// fail; the others are blocked by them. Without such requirements, all
/// fail.
fn unpack_failed(exp: &Expectation, rec: &RunRecord, how: &str, reqs: &[String], ledger: &mut Ledger) {
    let needs: Vec<String> = exp.needs.iter().filter(|n| reqs.contains(n)).cloned().collect();
    let why = format!(
        "the adapter {}{how} where this fixture needs an unpack, so the tree could not be checked",
        rec.status_text()
    );
    if needs.is_empty() {
        ledger.fail(reqs, &why);
        return;
    }
    ledger.fail(&needs, &format!("{why}; the image needs what this requirement covers"));
    let others: Vec<String> = reqs.iter().filter(|r| !needs.contains(r)).cloned().collect();
    ledger.block(
        &others,
        &format!("not checked: {why}, and the image needs what {} covers, which fails here", needs.join(" and ")),
    );
}

/// The heading of the spec section stating `id`, and a link to it.
pub fn spec_link(base: &str, id: &str) -> (String, String) {
    let section = crate::spec_index::INDEX
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.section.to_string())
        .unwrap_or_else(|| "Requirement index".into());
    (section, format!("{base}#{}", id.to_ascii_lowercase()))
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
