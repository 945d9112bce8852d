//! What only the command needs besides argument parsing: the
//! configuration file, and writing a report where the user asked.

pub mod config;
pub mod output;
