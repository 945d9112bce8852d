//! The library's one error type. Everything wrong *in* an image is a
//! [`Finding`]; an [`Error`] is what stops a job, and when findings are
//! the reason (unpack and flatten refuse what validate reports), it keeps
//! them, rule identifier, severity and location included.

use std::io;

use crate::diagnostic::Finding;

/// Why a job (validate, inspect, unpack, flatten) stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The job could not start: the reference names nothing readable, the
    /// destination cannot be used, or no single image can be chosen.
    /// Nothing was written.
    #[error("{message}")]
    Usage {
        /// Names what is at fault (file, layer, path).
        message: String,
        /// The operating-system error behind it, if any.
        #[source]
        source: Option<io::Error>,
    },
    /// The image declares that its IDs carry meaning (POLICY-CAUTION, or a
    /// value this tool does not know: POLICY-UNKNOWN) and the caller did
    /// not consent. Nothing was written.
    #[error("{message}")]
    Refused {
        /// What the image declares, where, and how to consent.
        message: String,
    },
    /// The image is broken: `findings` are what validate reports about the
    /// part that stopped the job. What was written has been removed
    /// unless the caller asked to keep it (the message says which).
    #[error("{message}")]
    Invalid {
        /// The findings in one sentence, and what was left behind.
        message: String,
        /// At least one finding. Most are errors; a warning stops a job
        /// only where it cannot go on faithfully (a layer of a media type
        /// it cannot read, or a flatten output that would not be clean).
        findings: Vec<Finding>,
    },
    /// The image is fine but the output could not be written (a full
    /// disk, a permission, a filesystem that refuses a name).
    #[error("{message}")]
    Write {
        /// The path that could not be written, and what was left behind.
        message: String,
        /// The operating-system error behind it, if any.
        #[source]
        source: Option<io::Error>,
    },
    /// A signal asked the job to stop; it cleaned up as after any failure.
    #[error("interrupted: {message}")]
    Interrupted {
        /// What was left behind.
        message: String,
    },
}

impl Error {
    /// A [`Error::Usage`] without an underlying OS error. The message must
    /// name what is at fault (file, layer, path).
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage { message: message.into(), source: None }
    }

    /// A [`Error::Usage`] caused by an OS error on `what`.
    pub fn usage_io(what: impl std::fmt::Display, source: io::Error) -> Self {
        Error::Usage { message: format!("{what}: {}", os_message(&source)), source: Some(source) }
    }

    /// The findings that made the job refuse, empty for the other kinds.
    pub fn findings(&self) -> &[Finding] {
        match self {
            Error::Invalid { findings, .. } => findings,
            _ => &[],
        }
    }

    /// The same error with `more` appended to its message (what a
    /// cleanup left behind, say).
    pub fn and(mut self, more: &str) -> Self {
        match &mut self {
            Error::Usage { message, .. }
            | Error::Refused { message }
            | Error::Invalid { message, .. }
            | Error::Write { message, .. }
            | Error::Interrupted { message } => {
                message.push_str("; ");
                message.push_str(more);
            }
        }
        self
    }
}

/// An OS error as a person reads it: "No such file or directory", without
/// the " (os error 2)" that only a programmer needs (the error itself keeps
/// it, as the `source` of the [`Error`]).
pub fn os_message(e: &io::Error) -> String {
    let text = e.to_string();
    match (e.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => text[..at].to_string(),
        _ => text,
    }
}

/// Results of this library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
