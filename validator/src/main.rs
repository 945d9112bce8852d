//! The `single-id` command: argument parsing and exit codes only.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use single_id::reference::{Kind, Reference};
use single_id::render::{self, Format};
use single_id::rules::Severity;

#[derive(Parser)]
#[command(name = "single-id", version, about = "Check and handle OCI images for runtimes that have a single user ID")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate an image against the single-ID images spec and the OCI rules it relies on.
    ///
    /// Exit status: 0 when no error-level finding, 1 when there is one (or a
    /// warning, with --strict), 2 when the image could not be read at all.
    Validate {
        /// An OCI layout directory or archive, or oci:PATH[:REF] / oci-archive:PATH[:REF].
        image: String,
        /// Only the image whose org.opencontainers.image.ref.name is NAME.
        #[arg(long = "ref", value_name = "NAME")]
        ref_name: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Fail (exit 1) on warnings as well as errors.
        #[arg(long)]
        strict: bool,
        /// Example paths listed per grouped finding.
        #[arg(long, value_name = "N", default_value_t = 5)]
        max_examples: usize,
    },
    /// Report what each image's layers record about ownership, what a
    /// single-ID consumer would change on unpack, and which id-flattening
    /// value to declare.
    Inspect {
        /// An OCI layout directory or archive, or oci:PATH[:REF] / oci-archive:PATH[:REF].
        image: String,
        /// Only the image whose org.opencontainers.image.ref.name is NAME.
        #[arg(long = "ref", value_name = "NAME")]
        ref_name: Option<String>,
        /// human or json.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Example paths listed per category.
        #[arg(long, value_name = "N", default_value_t = 5)]
        max_examples: usize,
    },
    /// Unpack an image into DEST as a single-ID consumer: every file becomes
    /// yours, set-ID bits are cleared, devices skipped, whiteouts applied.
    ///
    /// Images declared "caution" (or with an unknown value) are refused
    /// unless --confirm-flatten is given. DEST must not exist or be empty;
    /// on failure what was written is removed (unless --keep-partial).
    /// Exit status: 0 unpacked, 1 refused or failed, 2 could not start.
    Unpack {
        /// An OCI layout directory or archive, or oci:PATH[:REF] / oci-archive:PATH[:REF].
        image: String,
        /// Directory to create (or an empty one) for the root filesystem.
        dest: std::path::PathBuf,
        /// Only the image whose org.opencontainers.image.ref.name is NAME.
        #[arg(long = "ref", value_name = "NAME")]
        ref_name: Option<String>,
        /// Consent to flattening an image that declares its IDs meaningful.
        #[arg(long)]
        confirm_flatten: bool,
        /// On failure, leave the partial tree in DEST for inspection.
        #[arg(long)]
        keep_partial: bool,
        /// Example paths listed per category in the summary.
        #[arg(long, value_name = "N", default_value_t = 5)]
        max_examples: usize,
    },
    /// List every rule with its severity and the spec clause it enforces.
    Rules,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap uses 0 for --help/--version and 2 for usage errors.
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    match cli.command {
        Command::Validate { image, ref_name, format, strict, max_examples } => {
            let options = single_id::validate::Options { max_examples };
            let report = Reference::parse(&image, ref_name.as_deref())
                .and_then(|r| single_id::validate::validate(&r, image.clone(), &options));
            let report = match report {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("single-id: error: {e}");
                    return ExitCode::from(2);
                }
            };
            let text = match format {
                Format::Human => {
                    let color = render::human::use_color(std::io::stdout().is_terminal());
                    render::human::render(&report, color)
                }
                Format::Json => render::json::render(&report),
                Format::Sarif => {
                    let r = Reference::parse(&image, None).expect("parsed above");
                    let archive = r.kind == Kind::Archive || (r.kind == Kind::Detect && r.path.is_file());
                    render::sarif::render(&report, &r.path.to_string_lossy(), archive)
                }
            };
            if std::io::stdout().write_all(text.as_bytes()).is_err() {
                return ExitCode::from(2);
            }
            let fail_at = if strict { Severity::Warning } else { Severity::Error };
            ExitCode::from(u8::from(report.worst().is_some_and(|w| w >= fail_at)))
        }
        Command::Inspect { image, ref_name, format, max_examples } => {
            let options = single_id::validate::Options { max_examples };
            let report = Reference::parse(&image, ref_name.as_deref())
                .and_then(|r| single_id::inspect::inspect(&r, image.clone(), &options));
            let report = match report {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("single-id: error: {e}");
                    return ExitCode::from(2);
                }
            };
            let text = match format {
                Format::Human => render::inspect::render(&report),
                Format::Sarif => {
                    eprintln!("single-id: error: --format sarif is for validate; inspect writes human or json");
                    return ExitCode::from(2);
                }
                Format::Json => {
                    let mut s = serde_json::to_string_pretty(&report).expect("a report always serialises");
                    s.push('\n');
                    s
                }
            };
            if std::io::stdout().write_all(text.as_bytes()).is_err() {
                return ExitCode::from(2);
            }
            // Inspect describes; it fails only when it could not read everything.
            ExitCode::from(u8::from(!report.findings.is_empty()))
        }
        Command::Unpack { image, dest, ref_name, confirm_flatten, keep_partial, max_examples } => {
            use single_id::unpack::{self, Failure};
            let options = unpack::Options { confirm_flatten, keep_partial, max_examples };
            let reference = match Reference::parse(&image, ref_name.as_deref()) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("single-id: error: {e}");
                    return ExitCode::from(2);
                }
            };
            match unpack::unpack(&reference, &dest, &options) {
                Ok(done) => {
                    if let Some(notice) = &done.notice {
                        eprintln!("single-id: warning: {notice}; flattening anyway, as --confirm-flatten asks");
                    }
                    print!("{}", render::unpack::render(&done, &dest.to_string_lossy()));
                    ExitCode::SUCCESS
                }
                Err(Failure::Usage(e)) => {
                    eprintln!("single-id: error: {e}");
                    ExitCode::from(2)
                }
                Err(Failure::Refused(m)) => {
                    eprintln!("single-id: refused: {m}");
                    ExitCode::from(1)
                }
                Err(Failure::Failed(m)) => {
                    eprintln!("single-id: error: {m}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Rules => {
            for r in single_id::rules::ALL {
                println!("{:<28} {:<8} {:<22} {}", r.id, r.severity.as_str(), r.clause, r.summary);
            }
            ExitCode::SUCCESS
        }
    }
}
