//! Output formats: thin views over one [`Report`](crate::report::Report).

pub mod failure;
pub mod flatten;
pub mod human;
pub mod inspect;
pub mod json;
pub mod rules;
pub mod sarif;
pub mod unpack;

/// Output format of `validate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Format {
    /// Readable text, grouped by image.
    Human,
    /// One JSON document; see schema/validate-report.schema.json.
    Json,
    /// SARIF 2.1.0 for code scanning (validate only).
    Sarif,
}

/// A tally's examples for text output: `(a [detail], b, ...)`, empty when
/// there are none; `...` says there were more than shown.
pub fn examples(t: &crate::stats::Tally) -> String {
    if t.examples.is_empty() {
        return String::new();
    }
    let items: Vec<String> = t
        .examples
        .iter()
        .map(|e| match &e.detail {
            Some(d) => format!("{} [{d}]", e.path),
            None => e.path.clone(),
        })
        .collect();
    let more = if t.count > t.examples.len() as u64 { ", ..." } else { "" };
    format!(" ({}{more})", items.join(", "))
}

/// Pretty JSON with a final newline, as every JSON output is written.
pub fn to_json(value: &impl serde::Serialize) -> String {
    // Reports are plain data (strings, numbers, maps with string keys).
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}
