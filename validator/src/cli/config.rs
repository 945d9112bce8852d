//! `single-id.toml`: the per-rule levels a project keeps with its
//! sources, in the style of cargo-deny's `deny.toml`. Looked for in the
//! current directory, or named with `--config`. Its shape is documented in
//! `docs/configuration.md` and described by `schema/config.schema.json`;
//! unknown keys are refused so a typo is never silently ignored.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use single_id::error::Error;
use single_id::levels::{Level, Levels};

/// The file looked for in the current directory.
pub const FILE_NAME: &str = "single-id.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    rules: Rules,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rules {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    warn: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

/// The rule levels of the configuration file `explicit`, or of
/// `single-id.toml` in the current directory when there is one; then those
/// of the command line (`cli`: level and rule, in order), which win.
pub fn levels(explicit: Option<&Path>, cli: &[(Level, &str)]) -> Result<Levels, Error> {
    let mut levels = Levels::default();
    let found = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from(FILE_NAME)).filter(|p| p.is_file()),
    };
    if let Some(path) = found {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::usage_io(format!("{source}: cannot read"), e))?;
        let file: File =
            toml::from_str(&text).map_err(|e| Error::usage(format!("{source}: {}", e.to_string().trim_end())))?;
        for (level, rules) in
            [(Level::Allow, &file.rules.allow), (Level::Warn, &file.rules.warn), (Level::Deny, &file.rules.deny)]
        {
            for rule in rules {
                levels.set(rule, level, &source)?;
            }
        }
    }
    for (level, rule) in cli {
        levels.set(rule, *level, "command line")?;
    }
    Ok(levels)
}
