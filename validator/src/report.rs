//! Findings and the report they make up. Every output format renders this
//! one structure; nothing else decides what a finding says.

use serde::Serialize;

use crate::annotation::Declarations;
use crate::diagnostic::{Finding, Severity};
use crate::levels::Override;

/// What the validator learned about one image, findings aside.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSummary {
    /// The image's name, as in findings (see [`crate::image::Image::name`]).
    pub name: String,
    /// Digest of the image manifest.
    pub manifest: String,
    /// What the image declares, and the effective value.
    pub id_flattening: Declarations,
}

/// How many images were validated, and how many findings of each
/// severity they gave.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Images validated.
    pub images: usize,
    /// Findings of severity error.
    pub errors: usize,
    /// Findings of severity warning.
    pub warnings: usize,
    /// Findings of severity note.
    pub notes: usize,
    /// Findings left out because their rule was set to `allow`.
    #[serde(skip_serializing_if = "is_zero")]
    pub allowed: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The outcome of `single-id validate`, which every output format renders.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The IMAGE argument, as given.
    pub target: String,
    /// Every image validated, in the order of the walk.
    pub images: Vec<ImageSummary>,
    /// Every finding, in the order the checks ran (the same for the same
    /// image).
    pub findings: Vec<Finding>,
    /// Counts of the above.
    pub summary: Summary,
    /// Rules whose level the configuration set (see [`crate::levels`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
}

impl Report {
    /// A report of `findings` about `images`, with the counts made.
    pub fn new(target: String, images: Vec<ImageSummary>, findings: Vec<Finding>) -> Self {
        let mut summary = Summary { images: images.len(), ..Summary::default() };
        for f in &findings {
            match f.severity {
                Severity::Error => summary.errors += 1,
                Severity::Warning => summary.warnings += 1,
                Severity::Note => summary.notes += 1,
            }
        }
        Report { target, images, findings, summary, overrides: Vec::new() }
    }

    /// The most severe finding, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}
