//! The JSON report (schema/validate-report.schema.json).

use serde::Serialize;

use crate::report::Report;

/// Bumped when the report changes incompatibly.
pub const REPORT_VERSION: u32 = 1;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    report_version: u32,
    #[serde(flatten)]
    report: &'a Report,
}

/// The report as pretty-printed JSON, with its version, ending in a newline.
pub fn render(report: &Report) -> String {
    let doc = Document { report_version: REPORT_VERSION, report };
    let mut out = serde_json::to_string_pretty(&doc).expect("a report always serialises");
    out.push('\n');
    out
}
