//! Findings and the report they make up. Every output format renders this
//! one structure; nothing else decides what a finding says.

use serde::Serialize;

use crate::annotation::Declarations;
use crate::diagnostic::{Finding, Severity};

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
