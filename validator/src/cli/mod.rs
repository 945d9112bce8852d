//! What only the command needs besides argument parsing: the
//! configuration file, writing a report where the user asked, and the
//! shell completions and manual page generated from the clap definition.

pub mod completions;
pub mod config;
pub mod output;
