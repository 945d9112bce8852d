//! `single-id rules`: the registry as aligned text, or as one JSON
//! document (schema/rules.schema.json) for tools that build on the ids.

use std::fmt::Write;

use serde::Serialize;

use crate::rules::ALL;

/// One line per rule: id, default severity, clause and summary, in
/// columns as wide as their longest entry.
pub fn text() -> String {
    let id = ALL.iter().map(|r| r.id.len()).max().unwrap_or_default();
    let clause = ALL.iter().map(|r| r.clause.len()).max().unwrap_or_default();
    let mut out = String::new();
    for r in ALL {
        let _ = writeln!(out, "{:<id$}  {:<7}  {:<clause$}  {}", r.id, r.severity.as_str(), r.clause, r.summary);
    }
    out
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    report_version: u32,
    rules: Vec<RuleDoc>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleDoc {
    id: &'static str,
    severity: &'static str,
    clause: &'static str,
    summary: &'static str,
    spec: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

/// Every rule, in documentation order, as JSON.
pub fn json() -> String {
    let rules = ALL
        .iter()
        .map(|r| RuleDoc {
            id: r.id,
            severity: r.severity.as_str(),
            clause: r.clause,
            summary: r.summary,
            spec: r.spec_link(),
            fix: r.fix_link(),
        })
        .collect();
    super::to_json(&Document { report_version: 1, rules })
}
