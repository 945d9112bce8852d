//! Shell completions and the manual page, both generated from the clap
//! definition of the command line, so neither can drift from the flags the
//! binary accepts.
//!
//! Part of the binary, not of the library: `main.rs` passes
//! `Cli::command()` in.

use std::io::{self, Write};

use clap::Command;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

/// The name the binary is installed under, which completion scripts
/// register themselves for.
const BIN: &str = "single-id";

/// Writes the completion script for `shell` to `out`.
///
/// clap_complete panics when its writer fails, so the script is built in
/// memory first: a closed pipe (`single-id completions bash | head`) is an
/// error returned to the caller, never a panic.
pub fn completions(mut cmd: Command, shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN, &mut script);
    out.write_all(&script)?;
    out.flush()
}

/// Writes one manual page, section 1, in roff to `out`: the command's
/// name, synopsis, description and global options, the list of
/// subcommands, a section per subcommand with its own synopsis,
/// description and options, and the version.
///
/// One page rather than one per subcommand, so that `man single-id` alone
/// documents every flag. The page carries no date, so that every build
/// writes the same bytes.
pub fn man(cmd: Command, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = cmd.name(BIN).disable_help_subcommand(true);
    cmd.build();
    let top = Man::new(cmd.clone()).manual("single-id manual");
    // Every section rendered alone starts with the same preamble; the page
    // keeps the first, from the title.
    let preamble = Roff::new().render();
    let mut page = Vec::new();
    top.render_title(&mut page)?;
    let mut piece = Vec::new();
    for render in [
        Man::render_name_section,
        Man::render_synopsis_section,
        Man::render_description_section,
        Man::render_options_section,
    ] {
        piece.clear();
        render(&top, &mut piece)?;
        append(&piece, &preamble, &mut page);
    }
    let subcommands: Vec<&Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    // The list, naming the sections below rather than pages of their own.
    let mut list = Roff::new();
    list.control("SH", ["COMMANDS"]);
    for sub in &subcommands {
        list.control("TP", []).text([bold(format!("{BIN} {}", sub.get_name()))]);
        list.text([roman(sub.get_about().map(|a| a.to_string()).unwrap_or_default())]);
    }
    append(list.render().as_bytes(), &preamble, &mut page);
    for sub in subcommands {
        let title = format!("{BIN} {}", sub.get_name()).to_uppercase();
        append(Roff::new().control("SH", [title.as_str()]).render().as_bytes(), &preamble, &mut page);
        let man = Man::new(sub.clone());
        // The headings options are grouped under, as the definition spells
        // them (clap_mangen writes them in capitals).
        let headings: Vec<&str> = sub.get_arguments().filter_map(|a| a.get_help_heading()).collect();
        piece.clear();
        man.render_synopsis_section(&mut piece)?;
        demote(&piece, &preamble, &headings, &mut page);
        if sub.get_about().is_some() || sub.get_long_about().is_some() {
            piece.clear();
            man.render_description_section(&mut piece)?;
            demote(&piece, &preamble, &headings, &mut page);
        }
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            piece.clear();
            man.render_options_section(&mut piece)?;
            demote(&piece, &preamble, &headings, &mut page);
        }
    }
    piece.clear();
    top.render_version_section(&mut piece)?;
    append(&piece, &preamble, &mut page);
    out.write_all(&page)?;
    out.flush()
}

/// Appends a piece rendered on its own to the page, less its preamble.
fn append(piece: &[u8], preamble: &str, page: &mut Vec<u8>) {
    page.extend_from_slice(piece.strip_prefix(preamble.as_bytes()).unwrap_or(piece));
}

/// Appends to the page a section that clap_mangen rendered on its own,
/// as a subsection of the current section: the preamble is dropped and
/// each `.SH TITLE` becomes `.SS Title`, or `.SS` with the heading of
/// `headings` that TITLE capitalises.
fn demote(piece: &[u8], preamble: &str, headings: &[&str], page: &mut Vec<u8>) {
    let text = String::from_utf8_lossy(piece);
    for line in text.strip_prefix(preamble).unwrap_or(&text).lines() {
        match line.strip_prefix(".SH ") {
            Some(title) => {
                let title = title.trim_matches('"');
                let title = match headings.iter().find(|h| h.to_uppercase() == title) {
                    Some(heading) => heading.to_string(),
                    None => capitalise(title),
                };
                let heading = Roff::new().control("SS", [title.as_str()]).render();
                append(heading.as_bytes(), preamble, page);
            }
            None => {
                page.extend_from_slice(line.as_bytes());
                page.push(b'\n');
            }
        }
    }
}

/// `OPTIONS` as `Options`, for a subsection heading.
fn capitalise(title: &str) -> String {
    let title = title.to_lowercase();
    let mut chars = title.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
