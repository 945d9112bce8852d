//! Plain-text report for people, grouped by image.

use std::fmt::Write;

use crate::diagnostic::{Finding, Location};
use crate::report::Report;

/// `color` adds ANSI colour to severities and headings; the caller decides
/// (a terminal on stdout and no `NO_COLOR`).
pub fn render(report: &Report, color: bool) -> String {
    let paint = Paint(color);
    let mut out = String::new();
    let _ = writeln!(out, "validating {}", report.target);

    // Layout-wide findings first, then each image in index order, then
    // images whose manifest could not be read (they have no summary).
    let mut groups: Vec<Option<&str>> = vec![None];
    groups.extend(report.images.iter().map(|i| Some(i.name.as_str())));
    for f in &report.findings {
        let g = f.location.image.as_deref();
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    for group in groups {
        let findings: Vec<&Finding> = report.findings.iter().filter(|f| f.location.image.as_deref() == group).collect();
        let summary = group.and_then(|g| report.images.iter().find(|i| i.name == g));
        match (group, summary) {
            (None, _) if findings.is_empty() => continue,
            (None, _) => {
                let _ = writeln!(out, "\n{}", paint.bold("layout"));
            }
            (Some(name), Some(s)) => {
                let _ = writeln!(out, "\n{}\n  manifest {}", paint.bold(&format!("image {name}")), s.manifest);
                let d = &s.id_flattening;
                let from = if d.declared.is_empty() {
                    "not declared, so the default".to_string()
                } else {
                    let places: Vec<String> =
                        d.declared.iter().map(|d| format!("{} {:?}", d.place_words(), d.value)).collect();
                    format!("declared by {}", places.join(", "))
                };
                let _ = writeln!(out, "  id-flattening: {} ({from})", d.effective.as_str());
            }
            (Some(name), None) => {
                let _ = writeln!(out, "\n{}", paint.bold(&format!("image {name}")));
            }
        }
        for f in findings {
            let label = paint.severity(f.severity, &format!("{}[{}]", f.severity.as_str(), f.rule.id));
            let _ = writeln!(out, "  {label}: {}", f.message);
            if let Some(at) = where_(&f.location) {
                let _ = writeln!(out, "    at {at}");
            }
            if let (Some(path), true) = (&f.location.path, f.examples.is_empty()) {
                let _ = writeln!(out, "    path {path}");
            }
            if !f.examples.is_empty() {
                let shown = f.examples.len() as u64;
                let tail = if f.count > shown { format!(", {shown} shown") } else { String::new() };
                let _ = writeln!(out, "    {} {}{tail}:", f.count, if f.count == 1 { "entry" } else { "entries" });
                for e in &f.examples {
                    match &e.detail {
                        Some(d) => writeln!(out, "      {}  ({d})", e.path),
                        None => writeln!(out, "      {}", e.path),
                    }
                    .expect("writing to a String cannot fail");
                }
            }
            let _ = writeln!(out, "    spec {}", f.rule.clause);
            if let Some(link) = f.rule.fix_link() {
                let _ = writeln!(out, "    fix  {link}");
            }
        }
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "\n{} image{}: {} error{}, {} warning{}, {} note{}",
        s.images,
        plural(s.images),
        s.errors,
        plural(s.errors),
        s.warnings,
        plural(s.warnings),
        s.notes,
        plural(s.notes)
    );
    out
}

fn where_(loc: &Location) -> Option<String> {
    let mut at = loc.file.clone()?;
    if let Some(p) = &loc.pointer {
        at.push_str(&format!(" {p}"));
    }
    if let Some(i) = loc.layer {
        at.push_str(&format!(" (layer {i})"));
    }
    Some(at)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// ANSI styling, or none.
struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.0 { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }

    fn bold(&self, text: &str) -> String {
        self.wrap("1", text)
    }

    fn severity(&self, s: crate::diagnostic::Severity, text: &str) -> String {
        use crate::diagnostic::Severity::*;
        self.wrap(
            match s {
                Error => "1;31",
                Warning => "1;33",
                Note => "1;36",
            },
            text,
        )
    }
}

/// Colour only for a terminal, and never when `NO_COLOR` is set to
/// anything non-empty (no-color.org).
pub fn use_color(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
