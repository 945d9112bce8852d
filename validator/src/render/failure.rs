//! What `unpack` and `flatten` write with `--format json` when they stop,
//! and `validate` when it cannot read the image:
//! the error, and the findings that made them refuse, in the same shape
//! as validate's (schema/failure-report.schema.json).

use serde::Serialize;

use crate::diagnostic::Finding;
use crate::error::Error;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FailureReport<'a> {
    report_version: u32,
    command: &'a str,
    target: &'a str,
    outcome: &'static str,
    message: String,
    findings: &'a [Finding],
}

/// The failure document for `command` (`unpack`, `flatten`) run on
/// `target` (the IMAGE argument as given).
pub fn json(e: &Error, command: &str, target: &str) -> String {
    let outcome = match e {
        Error::Usage { .. } => "usage",
        Error::Refused { .. } => "refused",
        Error::Invalid { .. } => "invalid",
        Error::Write { .. } => "write",
        Error::Interrupted { .. } => "interrupted",
    };
    let report =
        FailureReport { report_version: 1, command, target, outcome, message: e.to_string(), findings: e.findings() };
    super::to_json(&report)
}
