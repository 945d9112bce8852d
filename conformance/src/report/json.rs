//! `--format json`: the results structure itself, valid against
//! schema/conformance-report.schema.json.

use crate::harness::results::Report;

pub fn render(r: &Report) -> String {
    let mut s = serde_json::to_string_pretty(r).expect("the report serialises");
    s.push('\n');
    s
}
