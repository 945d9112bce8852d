//! The default format: per fixture, per requirement, the differences under
//! each failure, the adapter's output for fixtures that did not pass, and a
//! tally per level.

use std::fmt::Write as _;

use super::{LEVELS, difference_line, mark, printable, run_label, show_output, spec_ref, tally_text};
use crate::harness::results::{Report, Status, level_name, outcome_name};

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let a = &r.adapter;
    let _ = writeln!(s, "{} {}", r.tool.name, r.tool.version);
    let _ = writeln!(s, "adapter:  {}", printable(&a.command));
    let how = if a.dropped_privileges { " (the harness runs as root and drops to it)" } else { " (the harness's own)" };
    let _ = writeln!(s, "user:     uid {}, gid {}{how}", a.uid, a.gid);
    let _ = writeln!(s, "fixtures: {} ({} run)", r.fixtures_dir, r.fixtures.len());
    if !r.only.is_empty() {
        let _ = writeln!(s, "only:     {}", r.only.join(" "));
    }
    for p in &r.probes {
        let how = if p.without_consent { "unpacked without consent" } else { "asked for consent, then unpacked" };
        let _ = writeln!(s, "probe:    {} image: {how}", p.value.name());
    }
    for f in &r.fixtures {
        let _ = writeln!(s);
        let _ = writeln!(s, "{} (outcome {}): {}", f.case, outcome_name(f.outcome), f.description);
        for (i, run) in f.runs.iter().enumerate() {
            let _ = writeln!(s, "  {}: {} in {} ms", run_label(f, i), run.status_text(), run.duration_ms);
        }
        for res in &f.results {
            let extra = if res.listed { "" } else { " (checked on every fixture)" };
            let _ = writeln!(s, "  {:<4}  {:<6}  {}{extra}", mark(res.status), level_name(res.level), res.requirement);
            if res.status == Status::Fail {
                let _ = writeln!(s, "          {}", spec_ref(res));
            }
            if let Some(reason) = &res.reason {
                let _ = writeln!(s, "          {reason}");
            }
            for d in &res.differences {
                let _ = writeln!(s, "          {}", difference_line(f, d));
            }
        }
        if show_output(f) {
            for (i, run) in f.runs.iter().enumerate() {
                for (name, c) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
                    if c.text.is_empty() {
                        continue;
                    }
                    let _ = writeln!(s, "  adapter {name}, {}:", run_label(f, i));
                    for line in printable(&c.text).lines() {
                        let _ = writeln!(s, "    | {line}");
                    }
                }
            }
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "summary: distinct requirements (checks: one per fixture and requirement)");
    for level in LEVELS {
        let _ = writeln!(
            s,
            "  {:<6}  {}  (checks: {})",
            level_name(level),
            tally_text(level, r.summary.requirements.get(level)),
            tally_text(level, r.summary.checks.get(level))
        );
    }
    let failing: Vec<&str> = r
        .requirements
        .iter()
        .filter(|q| q.status == Status::Fail && q.level == crate::expect::Level::Must)
        .map(|q| q.requirement.as_str())
        .collect();
    if r.summary.conformant {
        let _ = writeln!(s, "result: no MUST requirement failed");
    } else {
        let _ = writeln!(s, "result: {} MUST requirement(s) failed: {}", failing.len(), failing.join(", "));
    }
    s
}
