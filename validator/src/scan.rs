//! Reads every distinct layer of a set of images once, on all cores, with
//! the layer rules and the statistics collector as sinks.

use std::collections::HashMap;
use std::hash::RandomState;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use oci_spec::image::Descriptor;

use crate::diagnostic::{Finding, Findings, Location};
use crate::image::Image;
use crate::layer::{self, Compression, Pipeline};
use crate::layout::{Layout, blob_path};
use crate::progress::Progress;
use crate::rules::layer::{LayerRules, LinkIndex};
use crate::rules::{
    LAYER_AMBIGUOUS, LAYER_END_MARKER, LAYER_MEDIA_TYPE, LAYER_TRAILING_DATA, LAYER_UNREADABLE, LIMIT_EXCEEDED, blob,
};
use crate::stats::{Collector, LayerStats};

/// What reading one layer blob produced.
#[derive(Default)]
pub struct LayerScan {
    /// Findings about the blob and its entries, the entries' grouped.
    pub findings: Vec<Finding>,
    /// `None` when the layer could not be read as a tar stream at all.
    pub stats: Option<LayerStats>,
    /// What the layer creates and removes, for the hardlink checks across
    /// layers; `None` unless the layer was read to its end.
    pub links: Option<LinkIndex>,
    /// sha256 of the uncompressed stream, when read to its end.
    pub diff_id: Option<String>,
}

/// One blob to read: a layer (with its position in the first image that
/// uses it) or a blob that is only verified.
pub struct Job {
    /// The blob's descriptor.
    pub descriptor: Descriptor,
    /// Where findings about the blob point.
    pub location: Location,
    /// Read the blob as a layer; otherwise only its presence and digest
    /// are checked.
    pub read_tar: bool,
}

/// Layer jobs for `images`, each distinct digest once.
pub fn layer_jobs(images: &[Image]) -> Vec<Job> {
    let mut seen = std::collections::HashSet::new();
    let mut jobs = Vec::new();
    for img in images {
        for (i, l) in img.manifest.layers().iter().enumerate() {
            if seen.insert(l.digest().to_string()) {
                let location = Location { layer: Some(i), ..img.location() };
                jobs.push(Job { descriptor: l.clone(), location, read_tar: true });
            }
        }
    }
    jobs
}

/// Runs every job on all cores. Results are keyed by digest; per-job
/// findings keep job order, so output does not depend on scheduling.
pub fn run(
    layout: &Layout,
    jobs: &[Job],
    keys: &RandomState,
    max_examples: usize,
    progress: &Progress,
) -> HashMap<String, LayerScan> {
    progress.start(jobs.iter().filter(|j| j.read_tar).map(|j| j.descriptor.size()).sum(), "reading layers");
    let next = AtomicUsize::new(0);
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let workers = cores.min(jobs.len().max(1));
    let done: Vec<(usize, LayerScan)> = thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        // Pipeline a layer only when no other layer is
                        // waiting for a core (the last ones, or a lone one).
                        let pipeline = if jobs.len() - i < cores { Pipeline::Decoder } else { Pipeline::Off };
                        out.push((i, scan_one(layout, job, keys, max_examples, progress, pipeline)));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a layer worker panicked")).collect()
    });
    progress.finish();
    done.into_iter().map(|(i, scan)| (jobs[i].descriptor.digest().to_string(), scan)).collect()
}

fn scan_one(
    layout: &Layout,
    job: &Job,
    keys: &RandomState,
    max_examples: usize,
    progress: &Progress,
    pipeline: Pipeline,
) -> LayerScan {
    let desc = &job.descriptor;
    let mut f = Findings::default();
    let compression = if job.read_tar { Compression::of(desc.media_type()) } else { None };
    if job.read_tar && compression.is_none() {
        f.push(
            &LAYER_MEDIA_TYPE,
            Location {
                blob: Some(desc.digest().to_string()),
                file: Some(blob_path(desc.digest())),
                ..job.location.clone()
            },
            format!("layer media type `{}` is not one this tool reads; only its digest was checked", desc.media_type()),
        );
    }
    let Some(compression) = compression else {
        blob::verify_stream(layout, desc, &job.location, &mut f);
        return LayerScan { findings: f.into_vec(), ..LayerScan::default() };
    };
    let Some(opened) = blob::open(layout, desc, &job.location, &mut f) else {
        return LayerScan { findings: f.into_vec(), ..LayerScan::default() };
    };
    let at = Location {
        blob: Some(desc.digest().to_string()),
        file: Some(blob_path(desc.digest())),
        pointer: None,
        ..job.location.clone()
    };
    let mut sinks = (LayerRules::new(keys, at.clone(), max_examples), Collector::new(max_examples));
    let len = opened.len;
    let (reader, result) = layer::scan(opened.reader, compression, &mut sinks, progress, pipeline, &layout.limits);
    let intact = blob::OpenBlob { reader, len }.check(desc, &job.location, &mut f);
    let (groups, links) = sinks.0.finish();
    let mut scan = LayerScan::default();
    match result {
        Err(e) if e.limit.is_some() => {
            f.push(&LIMIT_EXCEEDED, at.clone(), format!("layer not read to its end: {e}"));
        }
        Err(e) => {
            // Statistics of a part of a layer would be mistaken for the whole.
            // A blob that fails its digest explains a broken stream; say both,
            // the digest first, since it is the cause.
            let what =
                if intact { "layer cannot be read to its end" } else { "layer (already corrupt) cannot be read" };
            f.push(&LAYER_UNREADABLE, at.clone(), format!("{what}: {e}"));
        }
        Ok(s) => {
            if s.trailing_data {
                f.push(&LAYER_TRAILING_DATA, at.clone(), "non-zero data follows the tar end-of-archive marker");
            }
            if s.missing_end_marker {
                f.push(&LAYER_END_MARKER, at.clone(), "the tar stream stops without an end-of-archive marker");
            }
            if s.gzip_header_string >= layer::GO_GZIP_STRING {
                let message = format!(
                    "a gzip member header holds a name or comment of {} bytes: Go's compress/gzip (umoci, skopeo) refuses the layer, gzip(1) reads it",
                    s.gzip_header_string
                );
                f.push(&LAYER_AMBIGUOUS, at.clone(), message);
            }
            scan.diff_id = Some(s.diff_id);
            scan.stats = Some(sinks.1.finish());
            scan.links = Some(links);
        }
    }
    let mut findings = f.into_vec();
    findings.extend(groups.into_findings());
    scan.findings = findings;
    scan
}
