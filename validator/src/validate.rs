//! `single-id validate`: layout → images → blobs and rules → report.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use oci_spec::image::Descriptor;

use crate::error::Error;
use crate::image::{self, Image};
use crate::layout::Layout;
use crate::reference::{Kind, Reference};
use crate::report::{Findings, ImageSummary, Location, Report};
use crate::rules::{annotation, blob, layout as layout_rules};

/// Opens the layout an IMAGE reference names.
pub fn open_layout(reference: &Reference) -> Result<Layout, Error> {
    let path = &reference.path;
    match reference.kind {
        Kind::Directory => Layout::open_directory(path),
        Kind::Archive => Layout::open_archive(path),
        Kind::Detect => match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Layout::open_directory(path),
            Ok(_) => Layout::open_archive(path),
            Err(e) => Err(Error::new(format!("{}: {e}", path.display()))),
        },
    }
}

/// Validates the image(s) `reference` names. `target` is how the user
/// spelled it, echoed in the report.
pub fn validate(reference: &Reference, target: String) -> Result<Report, Error> {
    let layout = open_layout(reference)?;
    let mut f = Findings::default();
    layout_rules::check_oci_layout(&layout, &mut f);
    let image::Walk { images, opaque } = image::walk(&layout, reference.ref_name.as_deref(), &mut f)?;
    let mut summaries = Vec::new();
    for image in &images {
        let declarations = annotation::check(&sources(image), &image.location(), &mut f);
        summaries.push(ImageSummary {
            name: image.name.clone(),
            manifest: image.descriptor().digest().to_string(),
            id_flattening: declarations,
        });
    }
    for layer_findings in verify_blobs(&layout, &images, opaque) {
        f.extend(layer_findings);
    }
    Ok(Report::new(target, summaries, f.into_vec()))
}

/// Every place the image may declare id-flattening: manifest first.
fn sources(image: &Image) -> Vec<annotation::Source<'_>> {
    let mut out = vec![annotation::Source {
        place: "manifest",
        file: image.manifest_file(),
        pointer: "/annotations".into(),
        map: image.manifest.annotations().as_ref(),
    }];
    if let Some(config) = &image.config {
        out.push(annotation::Source {
            place: "config-label",
            file: image.config_file(),
            pointer: "/config/Labels".into(),
            map: config.config().as_ref().and_then(|c| c.labels().as_ref()),
        });
    }
    for entry in &image.path {
        out.push(annotation::Source {
            place: "index-descriptor",
            file: entry.file.clone(),
            pointer: format!("{}/annotations", entry.pointer),
            map: entry.descriptor.annotations().as_ref(),
        });
    }
    out
}

/// Streams every distinct layer (and uninterpreted) blob once, on all
/// cores; findings come back in job order so output does not depend on
/// scheduling.
fn verify_blobs(layout: &Layout, images: &[Image], opaque: Vec<(Descriptor, Location)>) -> Vec<Findings> {
    let mut seen = HashSet::new();
    let jobs: Vec<(Descriptor, Location)> = images
        .iter()
        .flat_map(|img| img.manifest.layers().iter().map(move |l| (l.clone(), img.location())))
        .chain(opaque)
        .filter(|(l, _)| seen.insert(l.digest().to_string()))
        .collect();
    let next = AtomicUsize::new(0);
    let workers = thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len().max(1));
    let mut results: Vec<(usize, Findings)> = thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((desc, loc)) = jobs.get(i) else {
                            break;
                        };
                        let mut f = Findings::default();
                        blob::verify_stream(layout, desc, loc, &mut f);
                        done.push((i, f));
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("layer worker panicked")).collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, f)| f).collect()
}
