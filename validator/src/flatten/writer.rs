//! The writer of one run: the state shared while the output layout is
//! written (blob store, layers already flattened, blobs already copied),
//! and `write_layout`, which writes every image, then the indexes, then
//! the blobs copied unchanged.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use oci_spec::image::Descriptor;
use serde_json::Value;

use super::Options;
use super::blobs::Blobs;
use super::documents::{canonical_json, within_limit};
use super::errors::{invalid, messages, refusal, write_io};
use super::index::Flattened;
use super::layer::{LayerKey, LayerOut};
use super::report::{CopiedBlob, ImageReport, Resubjected};
use super::subject::subject_order;
use crate::diagnostic::{Findings, Location, Severity};
use crate::error::{Error, Result};
use crate::image::{self, Image};
use crate::layout::{Layout, blob_path};
use crate::rules::{DOCUMENT_INVALID, blob};

/// The state of one run while it writes the output layout.
pub(super) struct Writer<'a> {
    pub(super) layout: &'a Layout,
    pub(super) blobs: Blobs,
    pub(super) options: &'a Options,
    pub(super) layers: HashMap<LayerKey, LayerOut>,
    /// Digests of the layers that manifests name: a layer flattened on a
    /// guess that proved wrong (see `image_layers`) is removed at the end.
    pub(super) used: HashSet<String>,
    /// The cores this process may run on.
    pub(super) cores: usize,
    /// Blobs copied unchanged, by digest.
    pub(super) copied_digests: HashSet<String>,
    /// Keys of the path hashes of every layer (dropped paths).
    pub(super) keys: std::hash::RandomState,
    /// Nested indexes rebuilt: input digest → new digest and size.
    pub(super) indexes_done: HashMap<String, (String, u64)>,
    pub(super) copied: Vec<CopiedBlob>,
    /// Manifests flattened: input digest → new digest and size.
    pub(super) renamed: HashMap<String, (String, u64)>,
    /// Artifact manifests re-pointed: input digest → new digest and size.
    pub(super) artifacts_done: HashMap<String, (String, u64)>,
    /// Documents whose `subject` was re-pointed.
    pub(super) resubjected: Vec<Resubjected>,
}

/// What the layout holds.
pub(super) struct Written {
    /// The images flattened, in the walk's order.
    pub(super) images: Vec<ImageReport>,
    /// The blobs copied unchanged.
    pub(super) copied: Vec<CopiedBlob>,
    /// The documents whose `subject` now names a flattened manifest.
    pub(super) resubjected: Vec<Resubjected>,
}

/// Writes the flattened layout of `walk` to `root`: every image, then
/// index.json (keeping only the image named `selected`, if any) and the
/// indexes below it, then the blobs copied unchanged.
pub(super) fn write_layout(
    layout: &Layout,
    walk: &image::Walk,
    selected: Option<&str>,
    root: &Path,
    options: &Options,
) -> Result<Written> {
    let blobs =
        Blobs::create(root).map_err(|e| write_io(format_args!("{}: cannot write the layout", root.display()), e))?;
    let mut w = Writer {
        layout,
        blobs,
        options,
        layers: HashMap::new(),
        used: HashSet::new(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        copied_digests: HashSet::new(),
        indexes_done: HashMap::new(),
        keys: std::hash::RandomState::new(),
        copied: Vec::new(),
        renamed: HashMap::new(),
        artifacts_done: HashMap::new(),
        resubjected: Vec::new(),
    };
    options.progress.start(layer_bytes(&walk.images), "flattening layers");
    let mut reports: Vec<Option<ImageReport>> = walk.images.iter().map(|_| None).collect();
    // The new descriptor of each image, by where the walk found it.
    let mut flattened = Flattened::new();
    let images = subject_order(&walk.images).into_iter().try_for_each(|i| {
        let img = &walk.images[i];
        let (report, manifest) = w.image(img)?;
        for entry in &img.referrers {
            flattened.insert((entry.file.clone(), entry.pointer.clone()), manifest.clone());
        }
        w.renamed.insert(report.manifest.clone(), manifest);
        reports[i] = Some(report);
        Ok(())
    });
    // Finished on failure too, so a progress bar is cleared before the error.
    options.progress.finish();
    images?;
    // The walk read and parsed index.json already; this fails only if it
    // changed meanwhile, which makes the layout unreadable.
    let unreadable = |e: &dyn std::fmt::Display| Error::usage(format!("{}/index.json: {e}", layout.root().display()));
    let bytes = layout.read_small("index.json").map_err(|e| unreadable(&e))?;
    let mut index: Value = serde_json::from_slice(&bytes).map_err(|e| unreadable(&e))?;
    w.index(&mut index, "index.json", &flattened, selected)?;
    for (desc, loc) in &walk.opaque {
        w.copy(desc, loc)?;
    }
    // Layers flattened on a guess that proved wrong (see `image_layers`)
    // and named by no manifest. Two of them can have the same bytes, and a
    // blob copied unchanged can too: each digest once, and never a kept one.
    let unused: HashSet<&String> = w
        .layers
        .values()
        .map(|out| &out.digest)
        .filter(|d| !w.used.contains(*d) && !w.copied_digests.contains(*d))
        .collect();
    for digest in unused {
        w.blobs.remove(digest).map_err(|e| write_io(w.blobs.path(digest).display(), e))?;
    }
    let bytes = canonical_json(&index);
    within_limit(&bytes, "index.json", options.limits.max_json_bytes, Location::file("index.json"))?;
    std::fs::write(root.join("index.json"), bytes).map_err(|e| write_io(root.join("index.json").display(), e))?;
    Ok(Written { images: reports.into_iter().flatten().collect(), copied: w.copied, resubjected: w.resubjected })
}

/// Where a finding about layer `i` of `img` is, as validate puts it.
pub(super) fn layer_location(img: &Image, i: usize) -> Location {
    let digest = img.manifest.layers()[i].digest();
    Location { layer: Some(i), blob: Some(digest.to_string()), file: Some(blob_path(digest)), ..img.location() }
}

/// Where a finding about the config of `img` is.
pub(super) fn config_location(img: &Image) -> Location {
    let digest = img.manifest.config().digest();
    Location { blob: Some(digest.to_string()), file: Some(blob_path(digest)), ..img.location() }
}

/// The sum of the sizes of the distinct layers of `images`.
fn layer_bytes(images: &[Image]) -> u64 {
    let mut seen = HashSet::new();
    images
        .iter()
        .flat_map(|i| i.manifest.layers())
        .filter(|l| seen.insert(l.digest().to_string()))
        .map(|l| l.size())
        .sum()
}

impl Writer<'_> {
    /// Loads a JSON document blob, verified, as a `Value`; `loc` is where
    /// the descriptor `desc` was found.
    pub(super) fn document(&self, desc: &Descriptor, what: &str, loc: &Location) -> Result<Value> {
        match self.document_if_present(desc, what, loc, false)? {
            Some(doc) => Ok(doc),
            // Not returned when absence is not allowed; kept an error anyway.
            None => Err(invalid(format!("{what} {}: absent", blob_path(desc.digest())), Vec::new())),
        }
    }

    /// Like `document`, but when `absent_ok`, a blob that is absent and
    /// may be (its descriptor has `urls`) gives `None` instead of an error.
    pub(super) fn document_if_present(
        &self,
        desc: &Descriptor,
        what: &str,
        loc: &Location,
        absent_ok: bool,
    ) -> Result<Option<Value>> {
        let mut f = Findings::default();
        let file = blob_path(desc.digest());
        let Some(bytes) = blob::load_document(self.layout, desc, loc, &mut f) else {
            let findings = f.into_vec();
            if absent_ok && findings.iter().all(|x| x.severity != Severity::Error) {
                return Ok(None);
            }
            return Err(invalid(format!("{what} {file}: {}", messages(&findings)), findings));
        };
        let at =
            Location { blob: Some(desc.digest().to_string()), file: Some(file.clone()), pointer: None, ..loc.clone() };
        let doc: Value = serde_json::from_slice(&bytes)
            .map_err(|e| refusal(&DOCUMENT_INVALID, at.clone(), e.to_string(), format!("{what} {file}: {e}")))?;
        if !doc.is_object() {
            let why = "not a JSON object";
            return Err(refusal(&DOCUMENT_INVALID, at, why.into(), format!("{what} {file}: {why}")));
        }
        Ok(Some(doc))
    }

    /// Writes `doc` as a blob; `at` is the input document it replaces.
    pub(super) fn write_json(&mut self, doc: &Value, at: Location) -> Result<(String, u64)> {
        let bytes = canonical_json(doc);
        let kind = match doc.get("mediaType").and_then(Value::as_str) {
            Some(t) if t.contains("index") => "image index",
            Some(t) if t.contains("manifest") => "manifest",
            _ => "configuration",
        };
        within_limit(&bytes, kind, self.options.limits.max_json_bytes, at)?;
        self.blobs.write(&bytes).map_err(|e| write_io("writing a blob", e))
    }

    /// Copies a blob unchanged, verifying its digest on the way. A blob
    /// that is absent but may be fetched from its `urls` stays absent.
    pub(super) fn copy(&mut self, desc: &Descriptor, loc: &Location) -> Result<()> {
        let digest = desc.digest().to_string();
        if !self.copied_digests.insert(digest.clone()) {
            return Ok(());
        }
        let file = blob_path(desc.digest());
        let mut f = Findings::default();
        let Some(mut opened) = blob::open(self.layout, desc, loc, &mut f) else {
            let findings = f.into_vec();
            if findings.iter().all(|x| x.severity != Severity::Error) {
                return Ok(());
            }
            return Err(invalid(format!("{file}: {}", messages(&findings)), findings));
        };
        self.blobs.copy(&mut opened.reader, &file).map_err(|e| write_io(format_args!("{file}: copying"), e))?;
        if !opened.check(desc, loc, &mut f) {
            let findings = f.into_vec();
            return Err(invalid(format!("{file}: {}", messages(&findings)), findings));
        }
        self.copied.push(CopiedBlob { digest, media_type: desc.media_type().to_string(), size: desc.size() });
        Ok(())
    }
}
