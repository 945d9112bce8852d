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
    /// Directory of fixtures, each `<case>/{layout/,expected.json}`
    /// [default: the fixtures built into the harness].
    #[arg(long, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
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
    /// Where reports link requirements to: the spec's URL, to which
    /// `#requirement-id` is appended.
    #[arg(long, value_name = "URL", default_value = SPEC_URL)]
    pub spec_url: String,
}

/// The spec's path in the repository that ships the harness; reports
/// published elsewhere give `--spec-url` the spec's published address.
pub const SPEC_URL: &str = "spec/single-id-images.md";

pub fn run(args: RunArgs) -> ExitCode {
    let options = Options {
        adapter: args.adapter,
        fixtures: args.fixtures,
        spec_url: args.spec_url,
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

/// `list`: one line per fixture.
pub fn list(dir: Option<&std::path::Path>) -> ExitCode {
    let set = match super::fixture_set(dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("single-id-conformance: error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut out = String::new();
    let width = set.fixtures.iter().map(|f| f.expectation.case.len()).max().unwrap_or(0);
    for f in &set.fixtures {
        let e = &f.expectation;
        let ids: Vec<String> = e.requirements.iter().map(|r| r.id.clone()).collect();
        out.push_str(&format!("{:<width$}  {}\n", e.case, ids.join(", ")));
    }
    out.push_str(&format!("{} fixtures ({}); `describe NAME` shows one\n", set.fixtures.len(), set.described_as));
    print_or_fail(&out)
}

/// `describe CASE`: the expectation in words.
pub fn describe(case: &str, dir: Option<&std::path::Path>, json: bool, spec_url: &str) -> ExitCode {
    let set = match super::fixture_set(dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("single-id-conformance: error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(f) = set.fixtures.iter().find(|f| f.expectation.case == case) else {
        eprintln!("single-id-conformance: error: no fixture named {case:?}; `list` shows them");
        return ExitCode::from(2);
    };
    let e = &f.expectation;
    if json {
        let mut text = serde_json::to_string_pretty(e).expect("an expectation serialises");
        text.push('\n');
        return print_or_fail(&text);
    }
    print_or_fail(&describe_text(e, spec_url))
}

/// The text `describe` prints.
pub fn describe_text(e: &crate::expect::Expectation, spec_url: &str) -> String {
    use crate::harness::results::{level_name, outcome_name};
    let mut s = format!("{}\n\n{}\n\n", e.case, e.description);
    s.push_str("Requirements:\n");
    for r in &e.requirements {
        let (section, url) = super::spec_link(spec_url, &r.id);
        let need = if e.needs.contains(&r.id) { " (needed to unpack this image at all)" } else { "" };
        s.push_str(&format!("  {} ({}){need}: spec section \"{section}\", {url}\n", r.id, level_name(r.level)));
    }
    s.push_str(&format!(
        "\nEffective value: {}\nOutcome: {}\n",
        e.effective_value.name(),
        match e.outcome {
            crate::expect::Outcome::Unpack => "unpack: exit 0 and fill DEST (asking for consent first is allowed for this value)",
            crate::expect::Outcome::RefuseThenUnpack =>
                "refuse-then-unpack: without consent exit non-zero, write nothing and name the key; with SINGLE_ID_CONFIRM=1 unpack",
            crate::expect::Outcome::Any => "any: the exit status is free; what is in DEST is checked either way",
            crate::expect::Outcome::Fail => "fail: the image cannot be unpacked completely, so the adapter exits non-zero",
        }
    ));
    let _ = outcome_name;
    let a = &e.allowances;
    s.push_str(&format!(
        "Allowances: owner bits may be raised: {}; a FIFO may be absent: {}; other paths may exist: {}\n",
        yes(a.owner_raise),
        yes(a.fifo_may_be_absent),
        yes(a.extra_paths)
    ));
    s.push_str("\nExpected tree (paths relative to DEST):\n");
    for p in &e.present {
        let mut what = vec![format!("{:?}", p.kind).to_lowercase()];
        if let Some(m) = &p.mode {
            what.push(format!("mode {m}"));
        }
        if let Some(h) = &p.sha256 {
            what.push(format!("content {}", &h[..h.len().min(19)]));
        }
        if let Some(t) = &p.target {
            what.push(format!("-> {t}"));
        }
        if let Some(g) = &p.hardlink_group {
            what.push(format!("hard-link group {g}"));
        }
        if let Some(t) = p.mtime {
            what.push(format!("mtime {t}"));
        }
        for (k, v) in &p.xattrs {
            what.push(format!("xattr {k}={v:?}"));
        }
        for k in &p.xattrs_absent {
            what.push(format!("no xattr {k}"));
        }
        s.push_str(&format!(
            "  {}  {}  [{}]\n",
            crate::report::printable(&p.path),
            what.join(", "),
            p.requirements.join(", ")
        ));
    }
    for a in &e.absent {
        s.push_str(&format!("  {}  absent  [{}]\n", crate::report::printable(&a.path), a.requirements.join(", ")));
    }
    s
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn print_or_fail(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
