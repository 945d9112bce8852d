//! The checks around the writing: the input must be a valid layout whose
//! images may be flattened (consent for `caution`), and the output must
//! validate clean.

use std::collections::HashMap;
use std::path::Path;

use super::Options;
use super::errors::invalid;
use super::writer::Written;
use crate::diagnostic::{Finding, Findings, Location, Severity};
use crate::error::{Error, Result};
use crate::image;
use crate::layout::Layout;
use crate::reference::Reference;
use crate::rules::{LAYOUT_FILE, LAYOUT_INDEX, layout as layout_rules};
use crate::{policy, validate};

/// Walks the input. A layout that cannot be read is a usage error; any
/// other error the walk finds (a document that fails its digest or does not
/// parse) refuses: output built on it cannot be trusted.
pub(super) fn walk_input(layout: &Layout, selected: Option<&str>) -> Result<image::Walk> {
    let mut f = Findings::default();
    layout_rules::check_oci_layout(layout, &mut f);
    let walk = image::walk(layout, selected, &mut f)?;
    let errors: Vec<Finding> = f.into_errors();
    let describe = |x: &Finding| match &x.location.file {
        Some(file) => format!("{file}: {}", x.message),
        None => x.message.clone(),
    };
    let why = errors.iter().map(describe).collect::<Vec<_>>().join("; ");
    let root = layout.root().display();
    if errors.iter().any(|x| x.rule == &LAYOUT_FILE || x.rule == &LAYOUT_INDEX) {
        return Err(Error::usage(format!("{root}: not a readable OCI image layout: {why}")));
    }
    if !errors.is_empty() {
        return Err(invalid(format!("{root}: the input is not valid: {why}"), errors));
    }
    if walk.images.is_empty() {
        return Err(Error::usage(format!("{root}: the layout holds no image to flatten")));
    }
    Ok(walk)
}

/// The output tells every later consumer to flatten without asking, so
/// flattening a `caution` image needs the consent unpacking it would
/// (POLICY-CAUTION); without it nothing is written. Returns the notices of
/// the images flattened with consent.
pub(super) fn consent(walk: &image::Walk, confirmed: bool) -> Result<Vec<String>> {
    let mut notices = Vec::new();
    for img in &walk.images {
        let d = img.declarations(&mut Findings::default());
        let asking = policy::Asking {
            doing: "flattening it gives every file to root, clears set-ID bits and lets every later consumer flatten it without asking",
            refused: "Nothing was written; run again with --confirm-flatten to flatten it anyway",
        };
        notices.extend(policy::decide(&img.name, &d, confirmed, asking)?);
    }
    Ok(notices)
}

/// The output must be a clean `flattened` image. Some faults of an input
/// (duplicate paths, hardlinks to nothing) cannot be repaired while
/// streaming; validating what was written turns them into a refusal
/// instead of a broken output.
pub(super) fn self_check(dir: &Path, options: &Options, walk: &image::Walk, written: &Written) -> Result<()> {
    let reference = Reference::directory(dir);
    // The output is this run's own writing: a layer flatten compressed
    // well is no decompression bomb.
    let mut limits = options.limits.clone();
    limits.max_ratio = u64::MAX;
    let check = validate::Options { max_examples: 3, limits, progress: crate::progress::Progress::none() };
    let report = validate::validate(&reference, String::new(), &check).map_err(|e| match e {
        // What cannot be read back was not written as it should have been.
        Error::Usage { message, source } => Error::Write { message, source },
        other => other,
    })?;
    let mut faults: Vec<Finding> = report.findings.into_iter().filter(|x| x.severity >= Severity::Warning).collect();
    if faults.is_empty() {
        return Ok(());
    }
    let described: Vec<String> = faults
        .iter()
        .map(|x| {
            let at = x.examples.first().map(|e| format!(" ({})", e.path)).unwrap_or_default();
            format!("{}: {}{at}", x.rule.id, x.message)
        })
        .collect();
    let message = format!(
        "the input has faults flatten cannot repair, so the output would not validate clean: {} (run `single-id validate` on the input)",
        described.join("; ")
    );
    let to_input = input_names(walk, written);
    for finding in &mut faults {
        to_input.relocate(&mut finding.location);
    }
    Err(invalid(message, faults))
}

/// The input's names for the output's blobs: the fault is in the input,
/// and the output is removed.
struct InputNames {
    /// Output digest → input digest, of manifests, configs and layers.
    digests: HashMap<String, String>,
    /// The same, as layout-relative blob paths.
    files: HashMap<String, String>,
}

/// The names of `written` blobs in the input of `walk`.
fn input_names(walk: &image::Walk, written: &Written) -> InputNames {
    let mut digests = HashMap::new();
    // The reports are in the order of the walk's images.
    for (img, report) in walk.images.iter().zip(&written.images) {
        digests.insert(report.output_manifest.clone(), report.manifest.clone());
        digests.insert(report.output_config.clone(), img.manifest.config().digest().to_string());
        for layer in &report.layers {
            digests.insert(layer.output_digest.clone(), layer.digest.clone());
        }
    }
    for r in &written.resubjected {
        digests.insert(r.output_digest.clone(), r.digest.clone());
    }
    let file = |digest: &str| format!("blobs/{}", digest.replacen(':', "/", 1));
    let files = digests.iter().map(|(out, input)| (file(out), file(input))).collect();
    InputNames { digests, files }
}

impl InputNames {
    /// `at`, a location in the output, as the same place in the input.
    fn relocate(&self, at: &mut Location) {
        for (value, names) in
            [(&mut at.manifest, &self.digests), (&mut at.blob, &self.digests), (&mut at.file, &self.files)]
        {
            if let Some(input) = value.as_ref().and_then(|v| names.get(v)) {
                *value = Some(input.clone());
            }
        }
    }
}
