//! `--format junit`: JUnit XML, one `<testsuite>` per fixture and one
//! `<testcase>` per requirement, with `<failure>` (type = the level) and
//! `<skipped>`; the adapter, its user and its runs are properties, its
//! output `<system-out>` / `<system-err>`.

use std::fmt::Write as _;

use super::{difference_line, run_label, spec_ref};
use crate::harness::results::{Report, Status, level_name, outcome_name};

/// Text escaped for XML 1.0 content and attribute values. Control
/// characters other than newline, carriage return and tab (most of which
/// XML 1.0 cannot carry at all), U+FFFE and U+FFFF are written as
/// `\xNN` / `\u{...}` text instead.
pub fn xml(s: &str) -> String {
    escape(s, false)
}

/// Like [`xml`], for element content: newlines and tabs stay as they are.
pub fn xml_text(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, content: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\t' if content => out.push(c),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            '\u{fffe}' | '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

pub fn render(r: &Report) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    // Blocked requirements could not be checked: JUnit calls that skipped.
    let skipped = |st: Status| matches!(st, Status::Skip | Status::Blocked);
    let count = |st: Status| {
        r.fixtures
            .iter()
            .flat_map(|f| &f.results)
            .filter(|x| x.status == st || (st == Status::Skip && skipped(x.status)))
            .count()
    };
    let total: usize = r.fixtures.iter().map(|f| f.results.len()).sum();
    let _ = writeln!(
        s,
        "<testsuites name=\"{}\" tests=\"{total}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">",
        xml(&r.tool.name),
        count(Status::Fail),
        count(Status::Skip)
    );
    let a = &r.adapter;
    for f in &r.fixtures {
        let n = |st: Status| {
            f.results.iter().filter(|x| x.status == st || (st == Status::Skip && skipped(x.status))).count()
        };
        let time: u64 = f.runs.iter().map(|r| r.duration_ms).sum();
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
            xml(&f.case),
            f.results.len(),
            n(Status::Fail),
            n(Status::Skip),
            time as f64 / 1000.0
        );
        s.push_str("    <properties>\n");
        let mut prop = |name: &str, value: &str| {
            let _ = writeln!(s, "      <property name=\"{}\" value=\"{}\"/>", xml(name), xml(value));
        };
        prop("tool", &format!("{} {}", r.tool.name, r.tool.version));
        prop("adapter", &a.command);
        prop("uid", &a.uid.to_string());
        prop("gid", &a.gid.to_string());
        prop("description", &f.description);
        prop("ref", &f.reference);
        prop("outcome", outcome_name(f.outcome));
        for (i, run) in f.runs.iter().enumerate() {
            prop(&run_label(f, i), &run.status_text());
        }
        s.push_str("    </properties>\n");
        for res in &f.results {
            let _ = write!(
                s,
                "    <testcase classname=\"{}\" name=\"{} ({})\"",
                xml(&f.case),
                xml(&res.requirement),
                level_name(res.level)
            );
            match res.status {
                Status::Pass => s.push_str("/>\n"),
                Status::Implemented | Status::NotImplemented => {
                    let _ = writeln!(
                        s,
                        ">\n      <system-out>{}: {}</system-out>\n    </testcase>",
                        res.status.name(),
                        xml_text(res.reason.as_deref().unwrap_or_default())
                    );
                }
                Status::Skip | Status::Blocked => {
                    let what = if res.status == Status::Blocked { "blocked: " } else { "" };
                    let _ = writeln!(
                        s,
                        ">\n      <skipped message=\"{}{}\"/>\n    </testcase>",
                        what,
                        xml(res.reason.as_deref().unwrap_or("skipped"))
                    );
                }
                Status::Fail => {
                    let mut body: Vec<String> = vec![spec_ref(res)];
                    if let Some(reason) = &res.reason {
                        body.push(reason.clone());
                    }
                    body.extend(res.differences.iter().map(|d| difference_line(f, d)));
                    let message = format!(
                        "{} requirement {} failed ({}){}",
                        level_name(res.level),
                        res.requirement,
                        spec_ref(res),
                        if res.differences.is_empty() {
                            String::new()
                        } else {
                            format!(" ({} difference(s))", res.differences.len())
                        }
                    );
                    let _ = writeln!(
                        s,
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                        xml(&message),
                        level_name(res.level),
                        xml_text(&body.join("\n"))
                    );
                }
            }
        }
        let mut out = String::new();
        let mut err = String::new();
        for (i, run) in f.runs.iter().enumerate() {
            let _ = writeln!(out, "== {}: {} ==\n{}", run_label(f, i), run.status_text(), run.stdout.text);
            let _ = writeln!(err, "== {}: {} ==\n{}", run_label(f, i), run.status_text(), run.stderr.text);
        }
        let _ = writeln!(s, "    <system-out>{}</system-out>", xml_text(&out));
        let _ = writeln!(s, "    <system-err>{}</system-err>", xml_text(&err));
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}
