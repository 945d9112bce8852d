//! Output formats: each a view of one [`Report`](crate::harness::results::Report).

pub mod human;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod tap;

use crate::expect::{Level, Outcome};
use crate::harness::results::{Check, Difference, FixtureReport, RequirementResult, Status, Tally, level_name};

/// The levels in the order reports list them.
pub const LEVELS: [Level; 3] = [Level::Must, Level::Should, Level::May];

/// "run 1", or "run 1 (without consent)" for refuse-then-unpack.
pub fn run_label(f: &FixtureReport, run: usize) -> String {
    if f.outcome == Outcome::RefuseThenUnpack {
        let how = if f.runs.get(run).is_some_and(|r| r.consent) { "with" } else { "without" };
        format!("run {} ({how} SINGLE_ID_CONFIRM)", run + 1)
    } else {
        format!("run {}", run + 1)
    }
}

/// One difference on one line: `PATH: CHECK: expected E, found F`.
pub fn difference_line(f: &FixtureReport, d: &Difference) -> String {
    let mut s = match d.check {
        // About the run, not a path.
        Check::ExitStatus | Check::Notice | Check::DestEmpty => String::new(),
        _ if d.path.is_empty() => "DEST: ".to_string(),
        _ => format!("{}: ", d.path),
    };
    s.push_str(&format!("{}: expected {}, found {}", d.check.name(), d.expected, d.found));
    if f.runs.len() > 1 {
        s.push_str(&format!(" [{}]", run_label(f, d.run)));
    }
    s
}

/// Whether a fixture's adapter output belongs in the report: when some
/// requirement failed, or anything was skipped for a reason other than
/// `--only`.
pub fn show_output(f: &FixtureReport) -> bool {
    f.failed()
        || f.results.iter().any(|r| {
            matches!(r.status, Status::Skip | Status::Blocked) && r.reason.as_deref() != Some("not selected by --only")
        })
}

/// Text safe to print: control characters other than newline and tab
/// (terminal escapes, DEL, C1) written as `\xNN` / `\u{...}`.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            if (c as u32) < 0x100 {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Where the spec states a requirement: `section "Permission bits": URL`.
pub fn spec_ref(r: &RequirementResult) -> String {
    format!("spec section \"{}\": {}", r.section, r.url)
}

/// A tally as words, leaving out zero counts: `20 pass, 3 fail`; MAY
/// tallies speak of implemented and not implemented.
pub fn tally_text(level: Level, t: Tally) -> String {
    let mut parts = Vec::new();
    for (n, what) in [
        (t.pass, "pass"),
        (t.fail, "fail"),
        (t.blocked, "blocked"),
        (t.implemented, "implemented"),
        (t.not_implemented, "not implemented"),
        (t.skip, "skip"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    if parts.is_empty() {
        return "none".into();
    }
    let _ = level_name(level);
    parts.join(", ")
}

/// The word a status is shown as in text formats.
pub fn mark(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Fail => "FAIL",
        Status::Blocked => "blocked",
        Status::Skip => "skip",
        Status::Implemented => "implemented",
        Status::NotImplemented => "not implemented",
    }
}
