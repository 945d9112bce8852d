//! The default format: per fixture, per requirement, the differences under
//! each failure, the adapter's output for fixtures that did not pass, and a
//! tally per level.

use std::fmt::Write as _;

use super::{LEVELS, difference_line, printable, run_label, show_output};
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
    for f in &r.fixtures {
        let _ = writeln!(s);
        let _ = writeln!(s, "{} (outcome {}): {}", f.case, outcome_name(f.outcome), f.description);
        for (i, run) in f.runs.iter().enumerate() {
            let _ = writeln!(s, "  {}: {} in {} ms", run_label(f, i), run.status_text(), run.duration_ms);
        }
        for res in &f.results {
            let mark = match res.status {
                Status::Pass => "pass",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            let extra = if res.listed { "" } else { " (checked on every fixture)" };
            let _ = writeln!(s, "  {mark}  {:<6}  {}{extra}", level_name(res.level), res.requirement);
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
    let _ = writeln!(s, "summary  pass  fail  skip");
    for level in LEVELS {
        let t = r.summary.tally(level);
        let _ = writeln!(s, "  {:<6} {:>4}  {:>4}  {:>4}", level_name(level), t.pass, t.fail, t.skip);
    }
    if r.summary.conformant {
        let _ = writeln!(s, "result: every MUST requirement passed");
    } else {
        let _ = writeln!(s, "result: {} MUST requirement result(s) failed", r.summary.must.fail);
    }
    s
}
