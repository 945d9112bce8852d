//! The `run` subcommand's arguments, and what it does with them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::Options;
use crate::report;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Tap,
    Junit,
    Json,
    Markdown,
}

/// Run an adapter over the fixtures and report per requirement.
///
/// The harness executes `/bin/sh -c 'CMD "$@"' adapter LAYOUT REF DEST`
/// once per fixture (twice for refuse-then-unpack: without, then with
/// SINGLE_ID_CONFIRM=1). Exit status: 0 when every MUST requirement
/// passes, 1 when one fails, 2 when the harness could not run.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The adapter: a shell command line; LAYOUT REF DEST are appended.
    #[arg(long, value_name = "CMD")]
    pub adapter: String,
    /// Directory of fixtures, each `<case>/{layout/,expected.json}`.
    #[arg(long, value_name = "DIR", default_value = "conformance/fixtures")]
    pub fixtures: PathBuf,
    /// Only this fixture (repeatable).
    #[arg(long = "case", value_name = "NAME")]
    pub cases: Vec<String>,
    /// Only these requirement ids, and the fixtures that list one of them.
    #[arg(long, value_name = "ID", num_args = 1.., value_delimiter = ',')]
    pub only: Vec<String>,
    /// Output format, all views of the same results.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// As root: the UID adapters run as [default: 65534].
    #[arg(long)]
    pub uid: Option<u32>,
    /// As root: the GID adapters run as [default: 65534].
    #[arg(long)]
    pub gid: Option<u32>,
    /// Seconds an adapter may take per run before it is killed.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,
    /// Bytes of the adapter's stdout and of its stderr kept per run.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub max_output: usize,
    /// Where to create work directories [default: $TMPDIR or /tmp].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

pub fn run(args: RunArgs) -> ExitCode {
    let options = Options {
        adapter: args.adapter,
        fixtures: args.fixtures,
        cases: args.cases,
        only: args.only,
        uid: args.uid,
        gid: args.gid,
        timeout: Duration::from_secs(args.timeout.max(1)),
        max_output: args.max_output.max(64),
        work_dir: args.work_dir,
    };
    let report = match super::run(&options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("single-id-conformance: error: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match args.format {
        Format::Human => report::human::render(&report),
        Format::Tap => report::tap::render(&report),
        Format::Junit => report::junit::render(&report),
        Format::Json => report::json::render(&report),
        Format::Markdown => report::markdown::render(&report),
    };
    let mut out = std::io::stdout().lock();
    if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
        return ExitCode::from(2);
    }
    if report.summary.conformant { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
