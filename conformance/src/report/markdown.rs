//! `--format markdown`: a page to publish. Tool and adapter first, a tally
//! per level, then a table of requirement x fixture results, then every
//! failure with its differences and the adapter's output.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{LEVELS, printable, run_label, show_output, tally_text};
use crate::expect::Level;
use crate::harness::results::{Check, Report, Status, level_name, outcome_name};

/// Text as an inline code span, whatever backticks it holds; newlines and
/// table pipes cannot break out of it.
pub fn code(s: &str) -> String {
    let s = printable(s).replace(['\n', '\r'], " ").replace('|', "\\|");
    let longest = longest_backtick_run(&s);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || s.is_empty() { " " } else { "" };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// A fenced code block that the text cannot close early.
fn block(s: &str) -> String {
    let s = &printable(s);
    let fence = "`".repeat((longest_backtick_run(s) + 1).max(3));
    let mut body = s.to_string();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    format!("{fence}text\n{body}{fence}\n")
}

fn longest_backtick_run(s: &str) -> usize {
    let (mut best, mut cur) = (0, 0);
    for c in s.chars() {
        if c == '`' {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

/// A link destination that cannot break out of `(...)`.
fn link_target(url: &str) -> String {
    format!("<{}>", printable(url).replace(['<', '>', '\n', '\r'], ""))
}

/// Text inside an HTML element such as `<summary>`.
fn html(s: &str) -> String {
    printable(s).replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Plain text for a table cell or list item: markup characters escaped.
fn text(s: &str) -> String {
    let mut out = String::new();
    for c in s.replace(['\n', '\r'], " ").chars() {
        if "\\`*_[]<>|~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub fn render(r: &Report) -> String {
    let mut s = String::from("# Single-ID consumer conformance report\n\n");
    let a = &r.adapter;
    s.push_str("| | |\n|---|---|\n");
    let _ = writeln!(s, "| Tool | {} |", code(&format!("{} {}", r.tool.name, r.tool.version)));
    let _ = writeln!(s, "| Adapter | {} |", code(&a.command));
    let how = if a.dropped_privileges { " (dropped from root)" } else { "" };
    let _ = writeln!(s, "| Adapter user | uid {}, gid {}{how} |", a.uid, a.gid);
    let _ = writeln!(s, "| Fixtures | {} ({}) |", code(&r.fixtures_dir), r.fixtures.len());
    if !r.only.is_empty() {
        let _ = writeln!(s, "| Only | {} |", r.only.iter().map(|id| code(id)).collect::<Vec<_>>().join(" "));
    }
    let verdict = if r.summary.conformant {
        "no MUST requirement failed".to_string()
    } else {
        format!("**{} MUST requirement(s) failed**", r.summary.requirements.must.fail)
    };
    let _ = writeln!(s, "| Result | {verdict} |");

    s.push_str(
        "\n## Summary\n\nDistinct requirements per level; checks count one result per fixture and requirement.\n\n",
    );
    s.push_str("| Level | requirements | checks |\n|---|---|---|\n");
    for level in LEVELS {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            level_name(level),
            tally_text(level, r.summary.requirements.get(level)),
            tally_text(level, r.summary.checks.get(level))
        );
    }

    // Requirement x fixture.
    let mut reqs: BTreeMap<(Level, String), ()> = BTreeMap::new();
    for f in &r.fixtures {
        for res in &f.results {
            reqs.insert((res.level, res.requirement.clone()), ());
        }
    }
    s.push_str("\n## Results\n\n");
    s.push_str("pass, **FAIL**, blocked, skip (MAY: implemented, not implemented) per requirement (rows) and fixture (columns); a blank cell: the fixture does not test that requirement.\n\n");
    s.push_str("| Requirement | Level |");
    for f in &r.fixtures {
        let _ = write!(s, " {} |", code(&f.case));
    }
    s.push_str("\n|---|---|");
    for _ in &r.fixtures {
        s.push_str(":---:|");
    }
    s.push('\n');
    for (level, id) in reqs.keys() {
        let url = r.requirements.iter().find(|q| &q.requirement == id).map(|q| q.url.clone()).unwrap_or_default();
        let _ = write!(s, "| [{}]({}) | {} |", code(id), link_target(&url), level_name(*level));
        for f in &r.fixtures {
            let cell = match f.results.iter().find(|x| &x.requirement == id && x.level == *level) {
                Some(x) if x.status == Status::Fail => "**FAIL**",
                Some(x) => x.status.name(),
                None => "",
            };
            let _ = write!(s, " {cell} |");
        }
        s.push('\n');
    }

    let failing: Vec<_> = r.fixtures.iter().filter(|f| show_output(f)).collect();
    if !failing.is_empty() {
        s.push_str("\n## Details\n");
    }
    for f in failing {
        let _ = writeln!(s, "\n### {}\n", code(&f.case));
        let _ = writeln!(s, "{} (outcome {})\n", text(&f.description), code(outcome_name(f.outcome)));
        for res in f.results.iter().filter(|x| !matches!(x.status, Status::Pass | Status::Implemented)) {
            if res.status == Status::Skip && res.reason.as_deref() == Some("not selected by --only") {
                continue;
            }
            let _ = writeln!(
                s,
                "- {} {} [{}]({}) (spec section \"{}\"){}",
                res.status.name(),
                level_name(res.level),
                code(&res.requirement),
                link_target(&res.url),
                text(&res.section),
                res.reason.as_deref().map(|r| format!(": {}", text(r))).unwrap_or_default()
            );
            for d in &res.differences {
                let at = match d.check {
                    Check::ExitStatus | Check::Notice | Check::DestEmpty => String::new(),
                    _ if d.path.is_empty() => "DEST ".to_string(),
                    _ => format!("{} ", code(&d.path)),
                };
                let run = if f.runs.len() > 1 { format!(" ({})", text(&run_label(f, d.run))) } else { String::new() };
                let _ = writeln!(
                    s,
                    "  - {at}{}: expected {}, found {}{run}",
                    d.check.name(),
                    code(&d.expected),
                    code(&d.found)
                );
            }
        }
        for (i, run) in f.runs.iter().enumerate() {
            let _ =
                writeln!(s, "\n<details><summary>{}: {}</summary>\n", html(&run_label(f, i)), html(&run.status_text()));
            for (name, c) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
                let _ = writeln!(s, "{name}:\n");
                s.push_str(&block(&c.text));
                s.push('\n');
            }
            s.push_str("</details>\n");
        }
    }
    s
}
