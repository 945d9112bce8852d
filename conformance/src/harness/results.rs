//! The one results structure every output format is a view of
//! (schema/conformance-report.schema.json).

use serde::Serialize;

use super::exec::RunRecord;
use crate::expect::{Level, Outcome};

pub const REPORT_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub report_version: u32,
    pub tool: Tool,
    pub adapter: Adapter,
    /// The fixtures directory as given.
    pub fixtures_dir: String,
    /// `--only`: the requirement ids selected; empty when all are.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    pub fixtures: Vec<FixtureReport>,
    pub summary: Summary,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequirementResult {
    pub requirement: String,
    pub level: Level,
    pub status: Status,
    /// False for CONSUMER-CONTAINED when the fixture does not list it: the
    /// harness checks it on every fixture.
    pub listed: bool,
    /// Why the requirement was skipped, or failed without (only) differences.
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
pub struct Tally {
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
}

impl Tally {
    pub fn add(&mut self, s: Status) {
        match s {
            Status::Pass => self.pass += 1,
            Status::Fail => self.fail += 1,
            Status::Skip => self.skip += 1,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    #[serde(rename = "MUST")]
    pub must: Tally,
    #[serde(rename = "SHOULD")]
    pub should: Tally,
    #[serde(rename = "MAY")]
    pub may: Tally,
    /// True when no MUST requirement failed: the harness then exits 0.
    pub conformant: bool,
}

impl Summary {
    pub fn of(fixtures: &[FixtureReport]) -> Summary {
        let mut s =
            Summary { must: Tally::default(), should: Tally::default(), may: Tally::default(), conformant: true };
        for r in fixtures.iter().flat_map(|f| &f.results) {
            s.tally_mut(r.level).add(r.status);
        }
        s.conformant = s.must.fail == 0;
        s
    }

    pub fn tally(&self, level: Level) -> Tally {
        match level {
            Level::Must => self.must,
            Level::Should => self.should,
            Level::May => self.may,
        }
    }

    fn tally_mut(&mut self, level: Level) -> &mut Tally {
        match level {
            Level::Must => &mut self.must,
            Level::Should => &mut self.should,
            Level::May => &mut self.may,
        }
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
    }
}
