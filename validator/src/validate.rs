//! `single-id validate`: layout → images → layer streams and rules → report.

use std::hash::RandomState;

use crate::diagnostic::{Findings, Groups, Location};
use crate::error::Error;
use crate::image::{self, Image};
use crate::limits::Limits;
use crate::progress::Progress;
use crate::reference::Reference;
use crate::report::{ImageSummary, Report};
use crate::rules::producer::{self, LayerFacts};
use crate::rules::{DIFF_ID, LAYER_HARDLINK, LAYER_PARENT, layer, layout as layout_rules};
use crate::scan::{self, Job, LayerScan};

/// How `validate` and `inspect` read an image.
#[derive(Clone, Debug)]
pub struct Options {
    /// Example paths kept per grouped finding.
    pub max_examples: usize,
    /// Resource limits every reader of the image observes.
    pub limits: Limits,
    /// Told how many layer bytes have been read.
    pub progress: Progress,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_examples: 5, limits: Limits::default(), progress: Progress::none() }
    }
}

/// Validates the image(s) `reference` names. `target` is how the user
/// spelled it, echoed in the report.
pub fn validate(reference: &Reference, target: String, options: &Options) -> Result<Report, Error> {
    let layout = crate::layout::open(reference, &options.limits)?;
    let mut f = Findings::default();
    layout_rules::check_oci_layout(&layout, &mut f);
    let image::Walk { images, opaque } = image::walk(&layout, reference.ref_name.as_deref(), &mut f)?;

    let mut jobs = scan::layer_jobs(&images);
    jobs.extend(opaque.into_iter().map(|(descriptor, location)| Job { descriptor, location, read_tar: false }));
    let keys = RandomState::new();
    let mut scans = scan::run(&layout, &jobs, &keys, options.max_examples, &options.progress);

    let mut summaries = Vec::new();
    for image in &images {
        let declarations = image.declarations(&mut f);
        let layers: Vec<Option<&LayerScan>> =
            image.manifest.layers().iter().map(|l| scans.get(&l.digest().to_string())).collect();
        check_diff_ids(image, &layers, &mut f);
        check_lower_links(image, &layers, &keys, options.max_examples, &mut f);
        if layers.iter().all(|l| l.is_some_and(|l| l.stats.is_some())) {
            let facts: Vec<LayerFacts<'_>> = layers
                .iter()
                .enumerate()
                .map(|(i, l)| LayerFacts {
                    stats: l.and_then(|l| l.stats.as_ref()).expect("checked above"),
                    at: layer_location(image, i),
                })
                .collect();
            let user = image.config.as_ref().and_then(|c| c.config().as_ref()).and_then(|c| c.user().as_deref());
            let config_at = Location { file: Some(image.config_file()), ..image.location() };
            if image.config.is_some() {
                producer::check(
                    declarations.effective,
                    &facts,
                    user,
                    &image.location(),
                    &config_at,
                    options.max_examples,
                    &mut f,
                );
            }
        }
        summaries.push(ImageSummary {
            name: image.name.clone(),
            manifest: image.descriptor().digest().to_string(),
            id_flattening: declarations,
        });
    }
    // Layer findings once per distinct blob, in job order.
    for job in &jobs {
        if let Some(scan) = scans.remove(&job.descriptor.digest().to_string()) {
            for finding in scan.findings {
                f.push_finding(finding);
            }
        }
    }
    Ok(Report::new(target, summaries, f.into_vec()))
}

fn layer_location(image: &Image, i: usize) -> Location {
    let digest = image.manifest.layers()[i].digest();
    Location {
        layer: Some(i),
        blob: Some(digest.to_string()),
        file: Some(crate::layout::blob_path(digest)),
        ..image.location()
    }
}

/// OCI-DIFF-ID: one diff_id per layer, each the sha256 of the uncompressed layer.
fn check_diff_ids(image: &Image, layers: &[Option<&LayerScan>], f: &mut Findings) {
    let Some(config) = &image.config else { return };
    let diff_ids = config.rootfs().diff_ids();
    let at = Location { file: Some(image.config_file()), ..image.location() };
    if diff_ids.len() != layers.len() {
        let message = format!("config lists {} diff_ids but the manifest has {} layers", diff_ids.len(), layers.len());
        f.push(&DIFF_ID, at.clone().with_pointer("/rootfs/diff_ids"), message);
    }
    for (i, (scan, expected)) in layers.iter().zip(diff_ids).enumerate() {
        if let Some(found) = scan.and_then(|s| s.diff_id.as_ref()) {
            if found != expected {
                let message = format!("layer {i} decompresses to {found}, but the config says {expected}");
                f.push(&DIFF_ID, at.clone().with_pointer(format!("/rootfs/diff_ids/{i}")), message);
            }
        }
    }
}

/// OCI-LAYER-HARDLINKS and CONSUMER-SYMLINK-PARENT across layers,
/// grouped per layer like the rest.
fn check_lower_links(image: &Image, layers: &[Option<&LayerScan>], keys: &RandomState, max: usize, f: &mut Findings) {
    let Some(links) = layers.iter().map(|l| l.and_then(|l| l.links.as_ref())).collect::<Option<Vec<_>>>() else {
        return;
    };
    let mut groups: std::collections::BTreeMap<usize, Groups> = Default::default();
    layer::check_lower_links(keys, &links, &mut |i, problem, names| {
        let g = groups.entry(i).or_insert_with(|| Groups::new(max));
        let named = names.map(|(link, detail)| (link, Some(detail)));
        g.add_maybe_named(&LAYER_HARDLINK, &layer_location(image, i), problem.to_string(), named);
    });
    layer::check_lower_symlinks(keys, &links, &mut |i, link, why| {
        let g = groups.entry(i).or_insert_with(|| Groups::new(max));
        let message = "entries lie under a symbolic link of a lower layer that cannot be resolved";
        let named = Some((crate::layer::path::escape(link), Some(why.to_string())));
        g.add_maybe_named(&LAYER_PARENT, &layer_location(image, i), message.to_string(), named);
    });
    for g in groups.into_values() {
        for finding in g.into_findings() {
            f.push_finding(finding);
        }
    }
}
