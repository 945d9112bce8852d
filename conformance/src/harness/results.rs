//! The one results structure every output format is a view of
//! (schema/conformance-report.schema.json).

use serde::Serialize;

use super::exec::RunRecord;
use crate::expect::{Level, Outcome, Value};

pub const REPORT_VERSION: u32 = 2;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub report_version: u32,
    pub tool: Tool,
    pub adapter: Adapter,
    /// The fixtures directory as given, or `(embedded)` for the fixtures
    /// built into the harness.
    pub fixtures_dir: String,
    /// The spec the requirements come from, and the base of the links to
    /// its sections.
    pub spec: Spec,
    /// What the harness learnt from its own probe images before scoring:
    /// that the adapter can unpack at all, and whether it asks for consent
    /// for `flattened` and `allowed` images.
    pub probes: Vec<Probe>,
    /// `--only`: the requirement ids selected; empty when all are.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    pub fixtures: Vec<FixtureReport>,
    /// Every requirement over the fixtures that test it.
    pub requirements: Vec<RequirementSummary>,
    pub summary: Summary,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub version: String,
    /// The URL a requirement's anchor is appended to (`URL#consumer-mode`).
    pub url: String,
}

/// One run of the harness's own probe image with the given value.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub value: Value,
    /// Whether the adapter unpacked it without consent; `false` when it
    /// refused and unpacked it with SINGLE_ID_CONFIRM=1.
    pub without_consent: bool,
    pub runs: Vec<RunRecord>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Adapter {
    /// CMD as given to `--adapter`.
    pub command: String,
    /// The UID and GID the adapter ran as.
    pub uid: u32,
    pub gid: u32,
    /// Whether the harness ran as root and dropped to `uid:gid`.
    pub dropped_privileges: bool,
    pub timeout_seconds: u64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FixtureReport {
    pub case: String,
    pub description: String,
    #[serde(rename = "ref")]
    pub reference: String,
    pub outcome: Outcome,
    /// Every execution of the adapter, in order: one, or two for
    /// `refuse-then-unpack` (without, then with consent).
    pub runs: Vec<RunRecord>,
    pub results: Vec<RequirementResult>,
}

impl FixtureReport {
    /// Whether any requirement failed (whatever its level).
    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| r.status == Status::Fail)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pass,
    Fail,
    /// Could not be checked: the adapter lacks a feature another
    /// requirement covers (and fails), such as zstd layers.
    Blocked,
    Skip,
    /// MAY: the consumer uses the latitude.
    Implemented,
    /// MAY: the consumer does not use it (never a failure).
    NotImplemented,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Blocked => "blocked",
            Status::Skip => "skip",
            Status::Implemented => "implemented",
            Status::NotImplemented => "not-implemented",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequirementResult {
    pub requirement: String,
    pub level: Level,
    /// The heading of the spec section that states the requirement.
    pub section: String,
    /// A link to the requirement in the spec.
    pub url: String,
    pub status: Status,
    /// False for CONSUMER-CONTAINED when the fixture does not list it: the
    /// harness checks it on every fixture.
    pub listed: bool,
    /// Why the requirement was skipped or blocked, or failed without (only)
    /// differences; for MAY, what showed it implemented or not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<Difference>,
}

/// One concrete way the result differs from the expectation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// Index into `runs` of the execution this was found after.
    pub run: usize,
    /// Relative to DEST (`""` is DEST itself); paths outside DEST start
    /// with `../`. Bytes that are not UTF-8 appear as `\xNN`.
    pub path: String,
    pub check: Check,
    pub expected: String,
    pub found: String,
}

/// What was compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The adapter's exit status.
    ExitStatus,
    /// DEST after a refusal: empty.
    DestEmpty,
    /// The refusal's message names the annotation key.
    Notice,
    /// DEST itself is still a directory.
    Dest,
    /// A `present` path exists.
    Exists,
    Type,
    Mode,
    /// The sticky bit of a `present` path's mode.
    Sticky,
    Sha256,
    Target,
    Hardlink,
    Mtime,
    Xattr,
    XattrAbsent,
    /// An `absent` path does not exist.
    Absent,
    /// A path no expectation accounts for (`extraPaths` false).
    ExtraPath,
    Owner,
    Group,
    Setid,
    Whiteout,
    /// The adapter's output names a skipped path (CONSUMER-DEVICES-REPORTED).
    Reported,
    /// Something outside DEST changed.
    OutsideDest,
    /// The harness could not read part of DEST.
    Unreadable,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::ExitStatus => "exit-status",
            Check::DestEmpty => "dest-empty",
            Check::Notice => "notice",
            Check::Dest => "dest",
            Check::Exists => "exists",
            Check::Type => "type",
            Check::Mode => "mode",
            Check::Sticky => "sticky",
            Check::Sha256 => "sha256",
            Check::Target => "target",
            Check::Hardlink => "hardlink",
            Check::Mtime => "mtime",
            Check::Xattr => "xattr",
            Check::XattrAbsent => "xattr-absent",
            Check::Absent => "absent",
            Check::ExtraPath => "extra-path",
            Check::Owner => "owner",
            Check::Group => "group",
            Check::Setid => "setid",
            Check::Whiteout => "whiteout",
            Check::Reported => "reported",
            Check::OutsideDest => "outside-dest",
            Check::Unreadable => "unreadable",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub pass: usize,
    pub fail: usize,
    pub blocked: usize,
    pub skip: usize,
    pub implemented: usize,
    pub not_implemented: usize,
}

impl Tally {
    pub fn add(&mut self, s: Status) {
        match s {
            Status::Pass => self.pass += 1,
            Status::Fail => self.fail += 1,
            Status::Blocked => self.blocked += 1,
            Status::Skip => self.skip += 1,
            Status::Implemented => self.implemented += 1,
            Status::NotImplemented => self.not_implemented += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.pass + self.fail + self.blocked + self.skip + self.implemented + self.not_implemented
    }
}

/// One tally per level.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Levels {
    #[serde(rename = "MUST")]
    pub must: Tally,
    #[serde(rename = "SHOULD")]
    pub should: Tally,
    #[serde(rename = "MAY")]
    pub may: Tally,
}

impl Levels {
    pub fn get(&self, level: Level) -> Tally {
        match level {
            Level::Must => self.must,
            Level::Should => self.should,
            Level::May => self.may,
        }
    }

    fn get_mut(&mut self, level: Level) -> &mut Tally {
        match level {
            Level::Must => &mut self.must,
            Level::Should => &mut self.should,
            Level::May => &mut self.may,
        }
    }
}

/// One requirement over every fixture that tests it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequirementSummary {
    pub requirement: String,
    pub level: Level,
    pub section: String,
    pub url: String,
    /// Fail if any fixture failed it; otherwise blocked if any fixture was
    /// blocked, pass if any passed, skip. MAY: implemented if any fixture
    /// showed it, otherwise not implemented if any showed it unused.
    pub status: Status,
    /// The fixtures by their result for this requirement.
    pub fixtures: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Distinct requirements per level, each counted once with its
    /// overall status (see [`RequirementSummary`]).
    pub requirements: Levels,
    /// Checks: one per fixture and requirement it lists (CONSUMER-CONTAINED
    /// on every fixture), per level.
    pub checks: Levels,
    /// True when no MUST requirement failed: the harness then exits 0.
    pub conformant: bool,
}

/// The overall status of one requirement from its per-fixture results.
pub fn overall(statuses: &[Status]) -> Status {
    let has = |s: Status| statuses.contains(&s);
    for s in [Status::Fail, Status::Implemented, Status::NotImplemented, Status::Blocked, Status::Pass] {
        if has(s) {
            // A requirement blocked in one fixture and passed in another
            // has been shown to pass where it could be checked.
            if s == Status::Blocked && has(Status::Pass) {
                return Status::Pass;
            }
            return s;
        }
    }
    Status::Skip
}

impl Summary {
    pub fn of(fixtures: &[FixtureReport]) -> (Summary, Vec<RequirementSummary>) {
        let mut checks = Levels::default();
        let mut by_req: std::collections::BTreeMap<(Level, String), (Vec<Status>, RequirementSummary)> =
            std::collections::BTreeMap::new();
        for f in fixtures {
            for r in &f.results {
                checks.get_mut(r.level).add(r.status);
                let entry = by_req.entry((r.level, r.requirement.clone())).or_insert_with(|| {
                    (
                        Vec::new(),
                        RequirementSummary {
                            requirement: r.requirement.clone(),
                            level: r.level,
                            section: r.section.clone(),
                            url: r.url.clone(),
                            status: Status::Skip,
                            fixtures: Default::default(),
                        },
                    )
                });
                entry.0.push(r.status);
                entry.1.fixtures.entry(r.status.name().to_string()).or_default().push(f.case.clone());
            }
        }
        let mut requirements = Levels::default();
        let mut list = Vec::new();
        for (_, (statuses, mut summary)) in by_req {
            summary.status = overall(&statuses);
            requirements.get_mut(summary.level).add(summary.status);
            list.push(summary);
        }
        let conformant = requirements.must.fail == 0;
        (Summary { requirements, checks, conformant }, list)
    }
}

pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Must => "MUST",
        Level::Should => "SHOULD",
        Level::May => "MAY",
    }
}

pub fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Unpack => "unpack",
        Outcome::RefuseThenUnpack => "refuse-then-unpack",
        Outcome::Any => "any",
        Outcome::Fail => "fail",
    }
}
