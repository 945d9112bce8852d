//! The `single-id-conformance` command: argument parsing only.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "single-id-conformance",
    version,
    about = "Conformance fixtures and harness for single-ID OCI consumers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write every fixture (OCI layout and expected.json) from its case description.
    Generate {
        /// Directory of case descriptions (*.json).
        #[arg(long, value_name = "DIR", default_value = "conformance/cases")]
        cases: std::path::PathBuf,
        /// Directory to write the fixtures into, one subdirectory per case.
        #[arg(long, value_name = "DIR", default_value = "conformance/fixtures")]
        out: std::path::PathBuf,
    },
    Run(single_id_conformance::harness::cli::RunArgs),
    /// List the fixtures: name, requirements, what each tests.
    List {
        /// Directory of fixtures [default: the fixtures built into the harness].
        #[arg(long, value_name = "DIR")]
        fixtures: Option<std::path::PathBuf>,
    },
    /// Describe one fixture: what it tests, its requirements with their
    /// spec sections, its outcome and the expected tree.
    Describe {
        /// The fixture's name (see `list`).
        case: String,
        /// Directory of fixtures [default: the fixtures built into the harness].
        #[arg(long, value_name = "DIR")]
        fixtures: Option<std::path::PathBuf>,
        /// Print expected.json instead of text.
        #[arg(long)]
        json: bool,
        /// The spec's URL, for the links.
        #[arg(long, value_name = "URL", default_value = single_id_conformance::harness::cli::SPEC_URL)]
        spec_url: String,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    match cli.command {
        Command::Generate { cases, out } => single_id_conformance::generate::main(&cases, &out),
        Command::Run(args) => single_id_conformance::harness::cli::run(args),
        Command::List { fixtures } => single_id_conformance::harness::cli::list(fixtures.as_deref()),
        Command::Describe { case, fixtures, json, spec_url } => {
            single_id_conformance::harness::cli::describe(&case, fixtures.as_deref(), json, &spec_url)
        }
    }
}
