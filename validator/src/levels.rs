//! Rule levels a CI configuration sets, in the style of cargo-deny and
//! hadolint: `allow` drops a rule's findings, `warn` and `deny` make them
//! warnings or errors, whatever the rule's default severity. The command
//! line's `--allow`, `--warn` and `--deny` and the `[rules]` table of
//! `single-id.toml` fill one [`Levels`], which [`Levels::apply`] then
//! applies to a validate report. The report keeps what was changed, so a
//! reader of the JSON or SARIF sees that a rule was lowered, and by whom.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::diagnostic::{Rule, Severity};
use crate::error::Error;
use crate::report::Report;
use crate::rules::ALL;

/// What a configuration makes of a rule's findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Not reported, and never fails the run.
    Allow,
    /// Reported as warnings (which fail the run only with `--strict`).
    Warn,
    /// Reported as errors (which fail the run).
    Deny,
}

impl Level {
    /// The word used on the command line and in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Allow => "allow",
            Level::Warn => "warn",
            Level::Deny => "deny",
        }
    }
}

/// One rule whose level was set, and where.
#[derive(Clone, Debug, Serialize)]
pub struct Override {
    /// The rule's id.
    pub rule: &'static str,
    /// The level set.
    pub level: Level,
    /// Where it was set: `command line`, or the configuration file's path.
    pub source: String,
}

/// The levels set for some rules; every other rule keeps its severity.
#[derive(Clone, Debug, Default)]
pub struct Levels(BTreeMap<&'static str, Override>);

impl Levels {
    /// Sets `rule` to `level`, as `source` asks. A later call for the same
    /// rule wins (the command line is applied after the file); `source`
    /// giving one rule two levels is an error, as is a rule that does not
    /// exist.
    pub fn set(&mut self, rule: &str, level: Level, source: &str) -> Result<(), Error> {
        let Some(r) = ALL.iter().find(|r| r.id == rule) else {
            return Err(Error::usage(format!("{source}: unknown rule `{rule}`{}", suggestion(rule))));
        };
        if let Some(old) = self.0.get(r.id).filter(|o| o.source == source && o.level != level) {
            return Err(Error::usage(format!(
                "{source}: rule `{}` is set to both {} and {}",
                r.id,
                old.level.as_str(),
                level.as_str()
            )));
        }
        self.0.insert(r.id, Override { rule: r.id, level, source: source.to_string() });
        Ok(())
    }

    /// Whether no rule's level was set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `report` with the levels applied: findings of allowed rules removed
    /// (and counted), the others given their new severity, the summary
    /// counted again, and the overrides recorded.
    pub fn apply(&self, report: Report) -> Report {
        if self.is_empty() {
            return report;
        }
        let Report { target, images, findings, .. } = report;
        let mut allowed = 0;
        let mut kept = Vec::with_capacity(findings.len());
        for mut f in findings {
            match self.0.get(f.rule.id).map(|o| o.level) {
                Some(Level::Allow) => allowed += 1,
                Some(Level::Warn) => {
                    f.severity = Severity::Warning;
                    kept.push(f);
                }
                Some(Level::Deny) => {
                    f.severity = Severity::Error;
                    kept.push(f);
                }
                None => kept.push(f),
            }
        }
        let mut report = Report::new(target, images, kept);
        report.summary.allowed = allowed;
        report.overrides = self.0.values().cloned().collect();
        report
    }
}

/// ", did you mean `x`?" for the registered rule closest to `rule`, when
/// one is close enough to be a typo.
fn suggestion(rule: &str) -> String {
    let best = ALL.iter().map(|r: &&Rule| (distance(rule, r.id), r.id)).min();
    match best {
        Some((d, id)) if d <= 3.max(rule.len() / 4) => {
            format!("; did you mean `{id}`? (`single-id rules` lists them all)")
        }
        _ => " (`single-id rules` lists them all)".to_string(),
    }
}

/// Levenshtein distance, for short identifiers.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_a_suggestion_and_conflicts_are_refused() {
        let mut l = Levels::default();
        let e = l.set("layer-trailing-dat", Level::Allow, "command line").unwrap_err();
        assert!(e.to_string().contains("did you mean `layer-trailing-data`"), "{e}");
        let e = l.set("nonsense", Level::Allow, "command line").unwrap_err();
        assert!(!e.to_string().contains("did you mean"), "{e}");
        l.set("layer-trailing-data", Level::Allow, "single-id.toml").unwrap();
        l.set("layer-trailing-data", Level::Deny, "command line").unwrap();
        let e = l.set("layer-trailing-data", Level::Warn, "command line").unwrap_err();
        assert!(e.to_string().contains("both deny and warn"), "{e}");
        assert_eq!(l.0["layer-trailing-data"].level, Level::Deny);
    }
}
