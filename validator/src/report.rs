//! Findings and the report they make up. Every output format renders this
//! one structure; nothing else decides what a finding says.

use serde::Serialize;

use crate::annotation::Declarations;
use crate::rules::{Rule, Severity};

/// Where a finding is. Fields are filled from the outside in: the image,
/// then the file in the layout, then the place inside that file.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// The image, by `ref.name` (with platform when reached through a
    /// nested index), or by manifest digest when it has no name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Digest of the image manifest the finding belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// Digest of the blob at fault, when it is not the manifest itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// Path of the file at fault, relative to the layout root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// JSON pointer into that file, when the fault is one value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

impl Location {
    pub fn file(file: impl Into<String>) -> Self {
        Location { file: Some(file.into()), ..Location::default() }
    }

    pub fn with_pointer(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = Some(pointer.into());
        self
    }
}

#[derive(Debug, Serialize)]
pub struct Finding {
    #[serde(rename = "rule", serialize_with = "rule_id")]
    pub rule: &'static Rule,
    pub severity: Severity,
    /// The spec requirement the rule enforces.
    pub clause: &'static str,
    pub message: String,
    pub location: Location,
}

fn rule_id<S: serde::Serializer>(rule: &&'static Rule, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(rule.id)
}

/// What the validator learned about one image, findings aside.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSummary {
    pub name: String,
    pub manifest: String,
    pub id_flattening: Declarations,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub images: usize,
    pub errors: usize,
    pub warnings: usize,
    pub notes: usize,
}

#[derive(Debug, Serialize)]
pub struct Report {
    /// The IMAGE argument, as given.
    pub target: String,
    pub images: Vec<ImageSummary>,
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

/// Collects findings while the pipeline runs.
#[derive(Debug, Default)]
pub struct Findings(Vec<Finding>);

impl Findings {
    pub fn push(&mut self, rule: &'static Rule, location: Location, message: impl Into<String>) {
        self.0.push(Finding { rule, severity: rule.severity, clause: rule.clause, message: message.into(), location });
    }

    pub fn extend(&mut self, other: Findings) {
        self.0.extend(other.0);
    }

    pub fn into_vec(self) -> Vec<Finding> {
        self.0
    }
}

impl Report {
    pub fn new(target: String, images: Vec<ImageSummary>, findings: Vec<Finding>) -> Self {
        let mut summary = Summary { images: images.len(), ..Summary::default() };
        for f in &findings {
            match f.severity {
                Severity::Error => summary.errors += 1,
                Severity::Warning => summary.warnings += 1,
                Severity::Note => summary.notes += 1,
            }
        }
        Report { target, images, findings, summary }
    }

    /// The most severe finding, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}
