//! Errors that stop a command before it can report findings (exit status 2).
//! Everything wrong *in* an image is a finding instead.

use std::fmt;

#[derive(Debug)]
pub struct Error(String);

impl Error {
    /// The message must name what is at fault (file, layer, path).
    pub fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}
