//! How flatten's failures become [`Error`]s: a broken input refuses with
//! the findings `validate` reports for it (rule, severity, location), a
//! failed write keeps the operating-system error behind it.

use std::io;

use crate::diagnostic::{Finding, Location, Rule};
use crate::error::Error;

/// The input is broken, as `findings` say; `message` says it in one sentence.
pub(super) fn invalid(message: String, findings: Vec<Finding>) -> Error {
    Error::Invalid { message, findings }
}

/// The input is broken, as one finding of `rule` at `location` says.
/// `message` names the image and layer for the user; the finding says
/// what `validate` says, its location doing the naming.
pub(super) fn refusal(rule: &'static Rule, location: Location, finding_message: String, message: String) -> Error {
    invalid(message, vec![Finding::new(rule, location, finding_message)])
}

/// Writing the output failed: `what` (a path, and what was being done to
/// it) and the operating-system error, which stays the source.
pub(super) fn write_io(what: impl std::fmt::Display, source: io::Error) -> Error {
    Error::Write { message: format!("{what}: {}", crate::error::os_message(&source)), source: Some(source) }
}

/// Writing the output failed for a reason with no OS error of its own.
pub(super) fn write_failed(message: String) -> Error {
    Error::Write { message, source: None }
}

/// The messages of `findings`, joined, as flatten's errors quote them.
pub(super) fn messages(findings: &[Finding]) -> String {
    findings.iter().map(|x| x.message.as_str()).collect::<Vec<_>>().join("; ")
}
