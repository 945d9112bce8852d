//! The `single-id` command: argument parsing and exit codes only.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use indicatif::{ProgressDrawTarget, ProgressStyle};
use single_id::diagnostic::Severity;
use single_id::error::Error;
use single_id::levels::Level;
use single_id::limits::Limits;
use single_id::progress::{Event, Progress};
use single_id::reference::{Reference, Source};
use single_id::render::{self, Format};

mod cli;

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
        /// An OCI layout directory or archive (oci:PATH[:REF], oci-archive:PATH[:REF]), a
        /// registry image (docker://NAME[:TAG|@DIGEST]), a docker save archive
        /// (docker-archive:PATH[:REF]) or an image in podman's store (containers-storage:NAME).
        image: String,
        /// Only the image whose org.opencontainers.image.ref.name is NAME.
        #[arg(long = "ref", value_name = "NAME")]
        ref_name: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Fail (exit 1) on warnings as well as errors.
        #[arg(long)]
        strict: bool,
        /// Leave out the findings of RULE (repeatable, or comma-separated).
        #[arg(long, value_name = "RULE", value_delimiter = ',')]
        allow: Vec<String>,
        /// Report the findings of RULE as warnings.
        #[arg(long, value_name = "RULE", value_delimiter = ',')]
        warn: Vec<String>,
        /// Report the findings of RULE as errors.
        #[arg(long, value_name = "RULE", value_delimiter = ',')]
        deny: Vec<String>,
        /// Rule levels from FILE instead of ./single-id.toml (docs/configuration.md).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// Write the report to FILE instead of stdout (whole, or not at all).
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<std::path::PathBuf>,
        /// Print nothing unless the run fails (human format; JSON and SARIF are always written).
        #[arg(long, short = 'q')]
        quiet: bool,
        /// Colour in the human format: auto (a terminal, and NO_COLOR unset), always or never.
        #[arg(long, value_enum, value_name = "WHEN", default_value_t = Color::Auto)]
        color: Color,
        /// Example paths listed per grouped finding.
        #[arg(long, value_name = "N", default_value_t = 5)]
        max_examples: usize,
        /// Base URL where this repository's documents are published (e.g. a
        /// GitHub tree URL): SARIF then links each rule to its spec clause and fix.
        #[arg(long, value_name = "URL")]
        docs_url: Option<String>,
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        limits: Limits,
    },
    /// Report what each image's layers record about ownership, what a
    /// single-ID consumer would change on unpack, and which id-flattening
    /// value to declare.
    Inspect {
        /// An OCI layout directory or archive (oci:PATH[:REF], oci-archive:PATH[:REF]), a
        /// registry image (docker://NAME[:TAG|@DIGEST]), a docker save archive
        /// (docker-archive:PATH[:REF]) or an image in podman's store (containers-storage:NAME).
        image: String,
        /// Only the image whose org.opencontainers.image.ref.name is NAME.
        #[arg(long = "ref", value_name = "NAME")]
        ref_name: Option<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
        format: ReportFormat,
        /// Example paths listed per category.
        #[arg(long, value_name = "N", default_value_t = 5)]
        max_examples: usize,
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        limits: Limits,
    },
    /// Unpack an image into DEST as a single-ID consumer: every file becomes
    /// yours, set-ID bits are cleared, devices skipped, whiteouts applied.
    ///
    /// Images declared "caution" (or with an unknown value) are refused
    /// unless --confirm-flatten is given. DEST must not exist or be empty;
    /// on failure what was written is removed (unless --keep-partial).
    /// Exit status: 0 unpacked, 1 refused or failed, 2 could not start.
    Unpack {
        /// An OCI layout directory or archive (oci:PATH[:REF], oci-archive:PATH[:REF]), a
        /// registry image (docker://NAME[:TAG|@DIGEST]), a docker save archive
        /// (docker-archive:PATH[:REF]) or an image in podman's store (containers-storage:NAME).
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
        #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
        format: ReportFormat,
        /// Example paths listed per category in the summary.
        #[arg(long, value_name = "N", default_value_t = 5)]
        max_examples: usize,
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        limits: Limits,
    },
    /// Write a new OCI layout in which every image is `flattened`: every
    /// entry 0:0 root/root, set-ID bits cleared, devices and ID-bearing
    /// xattrs dropped, config.User reset, the annotation declared.
    ///
    /// OUTPUT is a directory that must not exist (or be empty), or an OCI
    /// archive: oci-archive:PATH or a PATH ending in .tar. On failure what
    /// was written is removed. Exit status: 0 written, 1 the input is broken
    /// or the output could not be written, 2 could not start.
    Flatten {
        /// An OCI layout directory or archive (oci:PATH[:REF], oci-archive:PATH[:REF]), a
        /// registry image (docker://NAME[:TAG|@DIGEST]), a docker save archive
        /// (docker-archive:PATH[:REF]) or an image in podman's store (containers-storage:NAME).
        image: String,
        /// Directory (or oci:DIR) or archive (oci-archive:PATH, PATH.tar) to write.
        output: String,
        /// Only the image whose org.opencontainers.image.ref.name is NAME.
        #[arg(long = "ref", value_name = "NAME")]
        ref_name: Option<String>,
        /// Compression of every new layer; by default each keeps its own.
        #[arg(long, value_enum)]
        compression: Option<single_id::flatten::Codec>,
        /// Consent to flattening an image that declares its IDs meaningful
        /// ("caution", or a value this tool does not know).
        #[arg(long)]
        confirm_flatten: bool,
        #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
        format: ReportFormat,
        /// Example paths listed per category.
        #[arg(long, value_name = "N", default_value_t = 5)]
        max_examples: usize,
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        limits: Limits,
    },
    /// Print the completion script for SHELL.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), generated from these definitions.
    Man,
    /// List every rule with its severity and the spec clause it enforces.
    Rules {
        /// `json`: one document (schema/rules.schema.json).
        #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
        format: ReportFormat,
    },
}

/// When the human format is coloured.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Color {
    /// When stdout is a terminal and NO_COLOR is unset or empty.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Output of the commands that describe rather than judge.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportFormat {
    /// Readable text.
    Human,
    /// One JSON document (schema/inspect-report.schema.json, schema/flatten-report.schema.json,
    /// schema/unpack-report.schema.json; on failure schema/failure-report.schema.json).
    Json,
}

/// Reports a problem on stderr and exits with `code` (2: could not start,
/// 1: refused or failed).
fn fail(code: u8, kind: &str, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("single-id: {kind}: {message}");
    ExitCode::from(code)
}

/// The one mapping from a library error to an exit status: 2 when the
/// command could not start, 1 when it refused or failed, 130 when a
/// signal stopped it.
fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Usage { .. } => 2,
        Error::Interrupted { .. } => 130,
        _ => 1,
    }
}

/// Reports `e` on stderr, with the rules of the findings behind it, and
/// as a JSON document on stdout when JSON output was asked for.
fn failed(e: &Error, command: &str, target: &str, format: ReportFormat) -> ExitCode {
    let label = if matches!(e, Error::Refused { .. }) { "refused" } else { "error" };
    let mut rules: Vec<&str> = e.findings().iter().map(|f| f.rule.id).collect();
    rules.dedup();
    let rules = if rules.is_empty() { String::new() } else { format!(" [{}]", rules.join(", ")) };
    eprintln!("single-id: {label}: {e}{rules}");
    if format == ReportFormat::Json {
        emit(&render::failure::json(e, command, target));
    }
    ExitCode::from(exit_code(e))
}

/// Writes a report; `false` when stdout is gone. An interrupted command
/// writes none: what it read is incomplete.
fn emit(text: &str) -> bool {
    // Writing to stdout never fails with an error, only with `false`.
    cli::output::write(None, text).unwrap_or(false)
}

/// A bar of compressed layer bytes on stderr, drawn only when stderr is a
/// terminal (indicatif hides it otherwise) and the layers are large enough
/// to take a moment.
fn progress_bar() -> Progress {
    let bar = std::sync::OnceLock::<indicatif::ProgressBar>::new();
    Progress::new(move |event| match event {
        Event::Start { total, job } => {
            bar.get_or_init(|| {
                if total < 32 << 20 {
                    return indicatif::ProgressBar::hidden();
                }
                let b = indicatif::ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                let template = format!(
                    "{job} {{wide_bar}} {{binary_bytes}}/{{binary_total_bytes}} {{binary_bytes_per_sec}} eta {{eta}}"
                );
                if let Ok(style) = ProgressStyle::with_template(&template) {
                    b.set_style(style);
                }
                b
            });
        }
        Event::Advance { bytes } => {
            if let Some(b) = bar.get() {
                b.inc(bytes);
            }
        }
        Event::Finish => {
            if let Some(b) = bar.get() {
                b.finish_and_clear();
            }
        }
        _ => {}
    })
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
    // SIGINT and SIGTERM make the running command fail and clean up like
    // any other failure; a second one ends the process at once.
    let flag = single_id::interrupt::flag();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, std::sync::Arc::clone(&flag));
        let _ = signal_hook::flag::register(signal, std::sync::Arc::clone(&flag));
    }
    let code = run(cli);
    if single_id::interrupt::requested() {
        eprintln!("single-id: interrupted by a signal");
        return ExitCode::from(130);
    }
    code
}

fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate {
            image,
            ref_name,
            format,
            strict,
            allow,
            warn,
            deny,
            config,
            output,
            quiet,
            color,
            max_examples,
            docs_url,
            source,
            limits,
        } => {
            let docs = render::sarif::Docs(docs_url.as_deref());
            let progress = if quiet { Progress::none() } else { progress_bar() };
            let options = single_id::validate::Options { max_examples, limits, progress };
            let asked: Vec<(Level, &str)> = [(Level::Allow, &allow), (Level::Warn, &warn), (Level::Deny, &deny)]
                .into_iter()
                .flat_map(|(level, rules)| rules.iter().map(move |r| (level, r.as_str())))
                .collect();
            let started = cli::config::levels(config.as_deref(), &asked).and_then(|levels| {
                let reference = Reference::parse(&image, ref_name.as_deref())?.with_source(source);
                let report = single_id::validate::validate(&reference, image.clone(), &options)?;
                Ok((reference, levels.apply(report)))
            });
            let (reference, report) = match started {
                Ok(r) => r,
                Err(e) => {
                    // Machine formats still get a document saying why.
                    let doc = match format {
                        Format::Human => None,
                        Format::Json => Some(render::failure::json(&e, "validate", &image)),
                        Format::Sarif => Some(render::sarif::render_failure(&e.to_string(), docs)),
                    };
                    if let Some(doc) = doc {
                        if let Err(w) = cli::output::write(output.as_deref(), &doc) {
                            eprintln!("single-id: error: {w}");
                        }
                    }
                    return fail(2, "error", e);
                }
            };
            let fail_at = if strict { Severity::Warning } else { Severity::Error };
            let failing = report.worst().is_some_and(|w| w >= fail_at);
            let text = match format {
                Format::Human if quiet && !failing => String::new(),
                Format::Human => {
                    let paint = match color {
                        Color::Auto => render::human::use_color(output.is_none() && std::io::stdout().is_terminal()),
                        Color::Always => true,
                        Color::Never => false,
                    };
                    render::human::render(&report, paint)
                }
                Format::Json => render::json::render(&report),
                Format::Sarif => render::sarif::render(&report, &reference.path.to_string_lossy(), docs),
            };
            match cli::output::write(output.as_deref(), &text) {
                Ok(true) => {}
                Ok(false) => return ExitCode::from(2),
                Err(e) => return fail(2, "error", e),
            }
            ExitCode::from(u8::from(failing))
        }
        Command::Inspect { image, ref_name, format, max_examples, source, limits } => {
            let options = single_id::validate::Options { max_examples, limits, progress: progress_bar() };
            let report = Reference::parse(&image, ref_name.as_deref())
                .map(|r| r.with_source(source))
                .and_then(|r| single_id::inspect::inspect(&r, image.clone(), &options));
            let report = match report {
                Ok(r) => r,
                Err(e) => return fail(2, "error", e),
            };
            let text = match format {
                ReportFormat::Human => render::inspect::render(&report),
                ReportFormat::Json => render::to_json(&report),
            };
            if !emit(&text) {
                return ExitCode::from(2);
            }
            // Inspect describes; it fails only when it could not read everything.
            ExitCode::from(u8::from(!report.findings.is_empty()))
        }
        Command::Unpack {
            image,
            dest,
            ref_name,
            confirm_flatten,
            keep_partial,
            format,
            max_examples,
            source,
            limits,
        } => {
            use single_id::unpack;
            let options =
                unpack::Options { confirm_flatten, keep_partial, max_examples, limits, progress: progress_bar() };
            let done = Reference::parse(&image, ref_name.as_deref())
                .map(|r| r.with_source(source))
                .and_then(|reference| unpack::unpack(&reference, &dest, &options));
            match done {
                Ok(done) => {
                    if let Some(notice) = &done.notice {
                        eprintln!("single-id: warning: {notice}; flattening anyway, as --confirm-flatten asks");
                    }
                    let dest = dest.to_string_lossy();
                    emit(&match format {
                        ReportFormat::Human => render::unpack::render(&done, &dest),
                        ReportFormat::Json => render::unpack::json(&done, &image, &dest),
                    });
                    ExitCode::SUCCESS
                }
                Err(e) => failed(&e, "unpack", &image, format),
            }
        }
        Command::Flatten {
            image,
            output,
            ref_name,
            compression,
            confirm_flatten,
            format,
            max_examples,
            source,
            limits,
        } => {
            use single_id::flatten;
            let options =
                flatten::Options { compression, confirm_flatten, max_examples, limits, progress: progress_bar() };
            let report = Reference::parse(&image, ref_name.as_deref())
                .map(|r| r.with_source(source))
                .and_then(|reference| flatten::flatten(&reference, image.clone(), &output, &options));
            let report = match report {
                Ok(r) => r,
                Err(e) => return failed(&e, "flatten", &image, format),
            };
            for notice in &report.notices {
                eprintln!("single-id: warning: {notice}; flattening anyway, as --confirm-flatten asks");
            }
            let text = match format {
                ReportFormat::Human => render::flatten::render(&report),
                ReportFormat::Json => render::to_json(&report),
            };
            // The output is written; a closed stdout loses only the report.
            emit(&text);
            ExitCode::SUCCESS
        }
        Command::Completions { shell } => {
            let mut text = Vec::new();
            let _ = cli::completions::completions(Cli::command(), shell, &mut text);
            emit(&String::from_utf8_lossy(&text));
            ExitCode::SUCCESS
        }
        Command::Man => {
            let mut text = Vec::new();
            let _ = cli::completions::man(Cli::command(), &mut text);
            emit(&String::from_utf8_lossy(&text));
            ExitCode::SUCCESS
        }
        Command::Rules { format } => {
            let text = match format {
                ReportFormat::Human => render::rules::text(),
                ReportFormat::Json => render::rules::json(),
            };
            // A closed pipe (`rules | head`) is not an error of ours.
            emit(&text);
            ExitCode::SUCCESS
        }
    }
}
