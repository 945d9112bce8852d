//! `--format tap`: TAP version 13, one test point per fixture and
//! requirement. Failures carry a YAML diagnostics block with every
//! difference (and, on a fixture's first failure, the adapter's runs with
//! their output). SHOULD and MAY failures are `not ok ... # TODO`, which
//! TAP consumers report without failing the run, as the harness does.

use std::fmt::Write as _;

use super::tally_text;
use crate::expect::Level;
use crate::harness::results::{Report, Status, level_name, outcome_name};

/// A YAML double-quoted scalar: `"` and `\` escaped, and every character
/// YAML does not allow as printable (controls, DEL, C1) as `\uXXXX`.
pub fn yaml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A test point's description or directive text: one line, no `#` that a
/// TAP parser would read as a directive.
fn tap_text(s: &str) -> String {
    super::printable(s).replace(['\n', '\r'], " ").replace('#', "\\#")
}

pub fn render(r: &Report) -> String {
    let mut s = String::from("TAP version 13\n");
    let a = &r.adapter;
    let _ = writeln!(s, "# {} {}", r.tool.name, r.tool.version);
    let _ = writeln!(s, "# adapter: {}", tap_text(&a.command));
    let _ = writeln!(s, "# user: uid {}, gid {}", a.uid, a.gid);
    let total: usize = r.fixtures.iter().map(|f| f.results.len()).sum();
    let _ = writeln!(s, "1..{total}");
    let mut n = 0;
    for f in &r.fixtures {
        let mut output_shown_at: Option<usize> = None;
        for res in &f.results {
            n += 1;
            let name = tap_text(&format!("{}: {} ({})", f.case, res.requirement, level_name(res.level)));
            match res.status {
                Status::Pass => {
                    let _ = writeln!(s, "ok {n} - {name}");
                }
                Status::Skip | Status::Blocked => {
                    let reason = res.reason.as_deref().unwrap_or("skipped");
                    let what = if res.status == Status::Blocked { "blocked: " } else { "" };
                    let _ = writeln!(s, "ok {n} - {name} # SKIP {what}{}", tap_text(reason));
                }
                Status::Implemented | Status::NotImplemented => {
                    let _ = writeln!(
                        s,
                        "ok {n} - {name} {} # {}",
                        res.status.name(),
                        tap_text(res.reason.as_deref().unwrap_or_default())
                    );
                }
                Status::Fail => {
                    if res.level == Level::Must {
                        let _ = writeln!(s, "not ok {n} - {name}");
                    } else {
                        let _ = writeln!(
                            s,
                            "not ok {n} - {name} # TODO {} requirement: reported, not fatal",
                            level_name(res.level)
                        );
                    }
                    s.push_str("  ---\n");
                    let _ = writeln!(s, "  fixture: {}", yaml_str(&f.case));
                    let _ = writeln!(s, "  outcome: {}", outcome_name(f.outcome));
                    let _ = writeln!(s, "  requirement: {}", yaml_str(&res.requirement));
                    let _ = writeln!(s, "  level: {}", level_name(res.level));
                    let _ = writeln!(s, "  section: {}", yaml_str(&res.section));
                    let _ = writeln!(s, "  spec: {}", yaml_str(&res.url));
                    if let Some(reason) = &res.reason {
                        let _ = writeln!(s, "  reason: {}", yaml_str(reason));
                    }
                    if !res.differences.is_empty() {
                        s.push_str("  differences:\n");
                        for d in &res.differences {
                            let _ = writeln!(s, "    - path: {}", yaml_str(&d.path));
                            let _ = writeln!(s, "      check: {}", d.check.name());
                            let _ = writeln!(s, "      expected: {}", yaml_str(&d.expected));
                            let _ = writeln!(s, "      found: {}", yaml_str(&d.found));
                            let _ = writeln!(s, "      run: {}", d.run + 1);
                        }
                    }
                    let _ = writeln!(s, "  adapter: {}", yaml_str(&a.command));
                    let _ = writeln!(s, "  uid: {}", a.uid);
                    let _ = writeln!(s, "  gid: {}", a.gid);
                    match output_shown_at {
                        Some(at) => {
                            let _ = writeln!(s, "  runs: {}", yaml_str(&format!("see test {at}")));
                        }
                        None => {
                            output_shown_at = Some(n);
                            s.push_str("  runs:\n");
                            for run in &f.runs {
                                let _ = writeln!(s, "    - consent: {}", run.consent);
                                let _ = writeln!(s, "      status: {}", yaml_str(&run.status_text()));
                                let _ = writeln!(s, "      stdout: {}", yaml_str(&run.stdout.text));
                                let _ = writeln!(s, "      stderr: {}", yaml_str(&run.stderr.text));
                            }
                        }
                    }
                    s.push_str("  ...\n");
                }
            }
        }
    }
    for level in [Level::Must, Level::Should, Level::May] {
        let _ = writeln!(
            s,
            "# {}: {} distinct requirement(s): {}; checks: {}",
            level_name(level),
            r.summary.requirements.get(level).total(),
            tally_text(level, r.summary.requirements.get(level)),
            tally_text(level, r.summary.checks.get(level))
        );
    }
    s
}
