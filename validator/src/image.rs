//! From `index.json` to images: follows (nested) indexes to every image
//! manifest and its config, verifying each document blob on the way.
//!
//! Indexes may share children, so the paths from `index.json` can be
//! exponentially many (an index listing another ten times, which lists a
//! third ten times, ...). The walk therefore reads each distinct document
//! once and keeps one image per distinct manifest, with every index
//! descriptor that points at it: work and memory grow with the number of
//! distinct documents and descriptors, not paths.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use crate::annotation::{Declarations, KEYS};
use crate::diagnostic::{Findings, Location};
use crate::error::Error;
use crate::json;
use crate::layout::{Layout, blob_path};
use crate::rules::{DESCRIPTOR_SKIPPED, INDEX_NESTING, annotation, blob, document, layout as layout_rules};
use crate::spec::media_type::{self, Document};

/// The annotation that names an image in a layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// At most this many distinct id-flattening declarations found on the
/// indexes above an image are kept per index; past it every further value
/// is unknown, so the image is `caution` whatever the rest say.
const MAX_INHERITED: usize = 16;

/// A descriptor in an index.
#[derive(Clone)]
pub struct IndexEntry {
    /// Layout-relative file of the index holding the entry.
    pub file: String,
    /// JSON pointer of the descriptor in that file.
    pub pointer: String,
    /// The descriptor as the index records it.
    pub descriptor: Descriptor,
}

/// An id-flattening declaration on a descriptor of an index through which
/// an image is reached (ANNOTATION-CONFLICT-CAUTIOUS counts it too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inherited {
    /// `index-descriptor`, or for another reading of a document, the place
    /// it was found at (`manifest`, `config-label`).
    pub place: &'static str,
    /// Layout-relative file holding the declaration.
    pub file: String,
    /// JSON pointer of the annotation map.
    pub pointer: String,
    /// Only the id-flattening keys of the descriptor's annotations.
    pub map: std::collections::HashMap<String, String>,
}

/// One image: a manifest, its config, and how it was reached.
pub struct Image {
    /// `ref.name`, with the platform when reached through a nested index,
    /// or the manifest digest when nothing names it (from the first path
    /// that reaches it).
    pub name: String,
    /// Every index descriptor that points at this manifest, the first one
    /// found first.
    pub referrers: Vec<IndexEntry>,
    /// Declarations on the descriptors of indexes through which the
    /// manifest is reached, each distinct one once.
    pub inherited: Arc<Vec<Inherited>>,
    /// The image manifest.
    pub manifest: ImageManifest,
    /// `None` when the config is missing or broken (reported already).
    pub config: Option<ImageConfiguration>,
    /// Values that Go's JSON readers take where serde reads another (or
    /// none), at the manifest, config and referring descriptors, each a
    /// place of its own (PRODUCER-UNAMBIGUOUS: the most cautious reading
    /// governs).
    pub other_readings: Vec<Inherited>,
    /// Some reader may find no value at any place, though serde finds one.
    pub may_read_absent: bool,
}

impl Image {
    /// The descriptor of the first index entry that reaches the manifest.
    pub fn descriptor(&self) -> &Descriptor {
        &self.referrers.first().expect("an image is reached through at least one index entry").descriptor
    }

    /// Layout-relative path of the manifest blob.
    pub fn manifest_file(&self) -> String {
        blob_path(self.descriptor().digest())
    }

    /// Layout-relative path of the config blob.
    pub fn config_file(&self) -> String {
        blob_path(self.manifest.config().digest())
    }

    /// Every place the image may declare id-flattening: manifest first,
    /// then the config Labels (when the config was read), then the index
    /// descriptors that lead to the manifest.
    pub fn annotation_sources(&self) -> Vec<annotation::Source<'_>> {
        let mut out = vec![annotation::Source {
            place: "manifest",
            file: self.manifest_file(),
            pointer: "/annotations".into(),
            map: self.manifest.annotations().as_ref(),
        }];
        if let Some(config) = &self.config {
            out.push(annotation::Source {
                place: "config-label",
                file: self.config_file(),
                pointer: "/config/Labels".into(),
                map: config.config().as_ref().and_then(|c| c.labels().as_ref()),
            });
        }
        for entry in &self.referrers {
            out.push(annotation::Source {
                place: "index-descriptor",
                file: entry.file.clone(),
                pointer: format!("{}/annotations", entry.pointer),
                map: entry.descriptor.annotations().as_ref(),
            });
        }
        for other in &self.other_readings {
            out.push(annotation::Source {
                place: other.place,
                file: other.file.clone(),
                pointer: other.pointer.clone(),
                map: Some(&other.map),
            });
        }
        for above in self.inherited.iter() {
            out.push(annotation::Source {
                place: above.place,
                file: above.file.clone(),
                pointer: above.pointer.clone(),
                map: Some(&above.map),
            });
        }
        out
    }

    /// What the image declares and the value a consumer acts on, with the
    /// findings about the declarations in `f`.
    pub fn declarations(&self, f: &mut Findings) -> Declarations {
        let kind = match media_type::document(self.descriptor().media_type()) {
            Document::DockerManifest => annotation::Manifest::Docker,
            _ => annotation::Manifest::Oci,
        };
        let mut d = annotation::check(&self.annotation_sources(), kind, &self.location(), f);
        if self.may_read_absent {
            // A reader that finds no value treats the image as `allowed`.
            d.effective = d.effective.max(crate::annotation::Value::Allowed);
        }
        d
    }

    /// Where findings about this image point by default.
    pub fn location(&self) -> Location {
        Location {
            image: Some(self.name.clone()),
            manifest: Some(self.descriptor().digest().to_string()),
            file: Some(self.manifest_file()),
            ..Location::default()
        }
    }
}

/// What the walk found: images, and blobs that are not interpreted (the
/// targets of unknown descriptors, the blobs of artifacts) but must still
/// be present and intact (OCI-BLOB-PRESENT, OCI-BLOB-INTEGRITY).
#[derive(Default)]
pub struct Walk {
    /// Every image reached, each distinct manifest once.
    pub images: Vec<Image>,
    /// Blobs that are only checked for presence and integrity, with where
    /// findings about them point.
    pub opaque: Vec<(Descriptor, Location)>,
}

/// Every image of the layout, or those whose `ref.name` is `selected`.
/// A selection that names no image is an error: the user asked for
/// something that is not there.
pub fn walk(layout: &Layout, selected: Option<&str>, f: &mut Findings) -> Result<Walk, Error> {
    let Some((index, bytes)) = layout_rules::read_index(layout, f) else {
        return Ok(Walk::default());
    };
    annotation::check_misplaced(
        index.annotations().as_ref(),
        "the index's own annotations",
        &Location::file("index.json").with_pointer("/annotations"),
        f,
    );
    let mut walker = Walker::new(layout, f);
    walker.descriptor_readings("index.json", &bytes, &index);
    let mut refs = Vec::new();
    for (i, desc) in index.manifests().iter().enumerate() {
        let ref_name = desc.annotations().as_ref().and_then(|a| a.get(REF_NAME));
        refs.extend(ref_name.cloned());
        if selected.is_some_and(|s| ref_name.is_none_or(|r| r != s)) {
            continue;
        }
        let entry =
            IndexEntry { file: "index.json".into(), pointer: format!("/manifests/{i}"), descriptor: desc.clone() };
        let name = ref_name.cloned().unwrap_or_else(|| desc.digest().to_string());
        walker.visit(entry, name, &mut Vec::new());
    }
    let out = walker.finish();
    if let Some(s) = selected {
        if !refs.iter().any(|r| r == s) {
            let known = if refs.is_empty() {
                "it names no images".to_string()
            } else {
                format!("it names: {}", refs.join(", "))
            };
            return Err(Error::usage(format!(
                "{}: no image named `{s}` in index.json; {known}",
                layout.root().display()
            )));
        }
    }
    Ok(out)
}

struct Walker<'a> {
    layout: &'a Layout,
    f: &'a mut Findings,
    images: Vec<Image>,
    /// Manifest digest → position in `images`.
    manifests: HashMap<String, usize>,
    /// Index digests read already (or found broken).
    indexes: HashSet<String>,
    /// Index digest → the descriptors that point at it.
    index_referrers: HashMap<String, Vec<IndexEntry>>,
    /// Index digests in the order they were first read.
    index_order: Vec<String>,
    /// Layout-relative file → digest, for the indexes read.
    index_files: HashMap<String, String>,
    opaque: Vec<(Descriptor, Location)>,
    opaque_seen: HashSet<String>,
    /// What other JSON readers read at an annotation map (file, pointer),
    /// where that differs from serde's reading.
    readings: HashMap<(String, String), Reading>,
}

/// Another reader's view of one annotation map: values serde did not
/// read, and whether the reader may find no value at all.
#[derive(Clone, Debug, Default)]
struct Reading {
    others: Vec<(&'static str, String)>,
    absent: bool,
}

impl Reading {
    /// Compares every reader's values of both keys (`readings`, in the order
    /// of [`KEYS`]) with serde's map.
    fn new(readings: &[json::Readings], serde: Option<&HashMap<String, String>>) -> Reading {
        let mut others = Vec::new();
        for (key, r) in KEYS.iter().zip(readings) {
            for v in &r.values {
                let seen = serde.and_then(|m| m.get(*key)) == Some(v);
                if !seen && !others.iter().any(|(k, x)| k == key && x == v) {
                    others.push((*key, v.clone()));
                }
            }
        }
        Reading { others, absent: readings.iter().all(|r| r.may_be_absent) }
    }
}

impl<'a> Walker<'a> {
    fn new(layout: &'a Layout, f: &'a mut Findings) -> Self {
        Walker {
            layout,
            f,
            images: Vec::new(),
            manifests: HashMap::new(),
            indexes: HashSet::new(),
            index_referrers: HashMap::new(),
            index_order: Vec::new(),
            index_files: HashMap::new(),
            opaque: Vec::new(),
            opaque_seen: HashSet::new(),
            readings: HashMap::new(),
        }
    }

    /// Other readers' values at the descriptors of the index in `file`,
    /// looked for only when the document has members readers take
    /// differently (PRODUCER-UNAMBIGUOUS; reported by `check_readers`).
    fn descriptor_readings(&mut self, file: &str, bytes: &[u8], index: &ImageIndex) {
        if json::ambiguities(bytes).is_ok_and(|a| a.is_empty()) {
            return;
        }
        let per_key: Vec<Vec<json::Readings>> = KEYS
            .iter()
            .map(|k| json::values_in_each(bytes, &["manifests"], &["annotations"], k).unwrap_or_default())
            .collect();
        let longest = per_key.iter().map(Vec::len).max().unwrap_or(0);
        for i in 0..longest {
            let readings: Vec<json::Readings> = per_key.iter().map(|r| r.get(i).cloned().unwrap_or_default()).collect();
            let serde = index.manifests().get(i).and_then(|d| d.annotations().as_ref());
            let reading = Reading::new(&readings, serde);
            self.readings.insert((file.to_string(), format!("/manifests/{i}/annotations")), reading);
        }
    }

    /// Other readers' values at the annotation map at `path` of a manifest
    /// or config, when the document has members they take differently.
    fn document_readings(&mut self, file: &str, bytes: &[u8], path: &[&str], serde: Option<&HashMap<String, String>>) {
        if json::ambiguities(bytes).is_ok_and(|a| a.is_empty()) {
            return;
        }
        let readings: Vec<json::Readings> =
            KEYS.iter().map(|k| json::values_at(bytes, path, k).unwrap_or_default()).collect();
        let pointer = format!("/{}", path.join("/"));
        self.readings.insert((file.to_string(), pointer), Reading::new(&readings, serde));
    }

    /// `chain` holds the digests of the indexes on the way, for cycles and
    /// the nesting limit.
    fn visit(&mut self, entry: IndexEntry, name: String, chain: &mut Vec<String>) {
        let desc = &entry.descriptor;
        let loc = Location {
            image: Some(name.clone()),
            file: Some(entry.file.clone()),
            pointer: Some(entry.pointer.clone()),
            ..Location::default()
        };
        blob::check_data(desc, &loc, self.f);
        match media_type::document(desc.media_type()) {
            Document::Index => self.visit_index(entry, name, chain, loc),
            Document::Manifest | Document::DockerManifest => self.visit_manifest(entry, name),
            Document::Other => {
                let other = desc.media_type();
                let message = format!(
                    "entry of media type `{other}` is not an image or index; its blob is only checked for integrity"
                );
                self.f.push(&DESCRIPTOR_SKIPPED, loc.clone(), message);
                self.opaque_blob(entry.descriptor.clone(), loc);
            }
        }
    }

    fn opaque_blob(&mut self, descriptor: Descriptor, loc: Location) {
        if self.opaque_seen.insert(descriptor.digest().to_string()) {
            self.opaque.push((descriptor, loc));
        }
    }

    fn visit_index(&mut self, entry: IndexEntry, name: String, chain: &mut Vec<String>, loc: Location) {
        let digest = entry.descriptor.digest().to_string();
        if chain.contains(&digest) {
            self.f.push(&INDEX_NESTING, loc, format!("index {digest} contains itself"));
            return;
        }
        // Reached before through another descriptor: its children are
        // known; only this descriptor is new.
        if !self.indexes.insert(digest.clone()) {
            if let Some(referrers) = self.index_referrers.get_mut(&digest) {
                referrers.push(entry);
            }
            return;
        }
        // Real images use one or two levels.
        let max = self.layout.limits.max_index_depth;
        if chain.len() >= max {
            self.f.push(
                &INDEX_NESTING,
                loc,
                format!("indexes nest more than {max} deep (--max-index-depth raises it)"),
            );
            return;
        }
        let Some(bytes) = blob::load_document(self.layout, &entry.descriptor, &loc, self.f) else {
            return;
        };
        let file = blob_path(entry.descriptor.digest());
        let doc_loc = Location { file: Some(file.clone()), pointer: None, ..loc };
        if !document::check_media_type(&bytes, entry.descriptor.media_type(), &doc_loc, self.f) {
            return;
        }
        let Some(index) = document::parse::<ImageIndex>(&bytes, "image index", &doc_loc, self.f) else {
            return;
        };
        if let Some(subject) = index.subject() {
            let at = Location { pointer: Some("/subject".into()), ..doc_loc.clone() };
            document::check_subject(self.layout, subject, &at, self.f);
        }
        let own = Location { pointer: Some("/annotations".into()), ..doc_loc };
        annotation::check_misplaced(index.annotations().as_ref(), "the index's own annotations", &own, self.f);
        self.descriptor_readings(&file, &bytes, &index);
        self.index_referrers.insert(digest.clone(), vec![entry]);
        self.index_order.push(digest.clone());
        self.index_files.insert(file.clone(), digest.clone());
        chain.push(digest);
        for (i, desc) in index.manifests().iter().enumerate() {
            let child_name = match desc.platform() {
                Some(p) => {
                    let variant = p.variant().as_ref().map(|v| format!("/{v}")).unwrap_or_default();
                    format!("{name} ({}/{}{variant})", p.os(), p.architecture())
                }
                None => format!("{name} ({})", desc.digest()),
            };
            let child = IndexEntry { file: file.clone(), pointer: format!("/manifests/{i}"), descriptor: desc.clone() };
            self.visit(child, child_name, chain);
        }
        chain.pop();
    }

    fn visit_manifest(&mut self, entry: IndexEntry, name: String) {
        let digest = entry.descriptor.digest().to_string();
        if let Some(&i) = self.manifests.get(&digest) {
            self.images[i].referrers.push(entry);
            return;
        }
        let desc = &entry.descriptor;
        let loc = Location { image: Some(name.clone()), manifest: Some(digest.clone()), ..Location::default() };
        let Some(bytes) = blob::load_document(self.layout, desc, &loc, self.f) else {
            return;
        };
        let doc_loc = Location { file: Some(blob_path(desc.digest())), ..loc.clone() };
        if !document::check_media_type(&bytes, desc.media_type(), &doc_loc, self.f) {
            return;
        }
        let Some(manifest) = document::parse::<ImageManifest>(&bytes, "image manifest", &doc_loc, self.f) else {
            return;
        };
        let config_desc = manifest.config();
        // Artifacts too: their blobs are checked like any other.
        let data_at = |p: String| Location { pointer: Some(p), ..doc_loc.clone() };
        blob::check_data(config_desc, &data_at("/config".into()), self.f);
        for (i, layer) in manifest.layers().iter().enumerate() {
            blob::check_data(layer, &data_at(format!("/layers/{i}")), self.f);
        }
        if let Some(subject) = manifest.subject() {
            document::check_subject(self.layout, subject, &data_at("/subject".into()), self.f);
        }
        if !media_type::is_image_config(config_desc.media_type()) {
            let what = config_desc.media_type();
            self.f.push(
                &DESCRIPTOR_SKIPPED,
                doc_loc.with_pointer("/config/mediaType"),
                format!(
                    "config of media type `{what}`: an artifact, not an image; its blobs are only checked for integrity"
                ),
            );
            for d in std::iter::once(config_desc).chain(manifest.layers()) {
                self.opaque_blob(d.clone(), loc.clone());
            }
            return;
        }
        let at = |p: String| Location { pointer: Some(p), ..doc_loc.clone() };
        annotation::check_misplaced(
            config_desc.annotations().as_ref(),
            "the config descriptor",
            &at("/config/annotations".into()),
            self.f,
        );
        for (i, layer) in manifest.layers().iter().enumerate() {
            let what = format!("layer descriptor {i}");
            annotation::check_misplaced(
                layer.annotations().as_ref(),
                &what,
                &at(format!("/layers/{i}/annotations")),
                self.f,
            );
        }
        self.document_readings(&blob_path(desc.digest()), &bytes, &["annotations"], manifest.annotations().as_ref());
        let config_file = blob_path(config_desc.digest());
        let config_loc = Location { file: Some(config_file.clone()), ..loc };
        let config_bytes = blob::load_document(self.layout, config_desc, &config_loc, self.f);
        let config = config_bytes
            .as_ref()
            .and_then(|b| document::parse::<ImageConfiguration>(b, "image config", &config_loc, self.f));
        if let (Some(bytes), Some(c)) = (&config_bytes, &config) {
            let labels = c.config().as_ref().and_then(|c| c.labels().as_ref());
            self.document_readings(&config_file, bytes, &["config", "Labels"], labels);
        }
        self.manifests.insert(digest, self.images.len());
        self.images.push(Image {
            name,
            referrers: vec![entry],
            inherited: Arc::new(Vec::new()),
            manifest,
            config,
            other_readings: Vec::new(),
            may_read_absent: false,
        });
    }

    /// Gives every image the declarations of the index descriptors above
    /// it. Each index's set is computed once, from the descriptors that
    /// point at it and the sets of the indexes holding those descriptors;
    /// indexes are taken in an order where every index comes after those
    /// that hold a descriptor of it (the walk admits no cycle).
    fn finish(mut self) -> Walk {
        let mut above: HashMap<String, Arc<Vec<Inherited>>> = HashMap::new();
        for digest in topological(&self.index_order, &self.index_referrers, &self.index_files) {
            let mut set = Vec::new();
            for r in &self.index_referrers[&digest] {
                gather(&mut set, r, &self.index_files, &above);
            }
            above.insert(digest, Arc::new(set));
        }
        for image in &mut self.images {
            let mut set = Vec::new();
            for r in &image.referrers {
                if let Some(parent) = self.index_files.get(&r.file).and_then(|d| above.get(d)) {
                    for x in parent.iter() {
                        if set.len() < MAX_INHERITED && !set.contains(x) {
                            set.push(x.clone());
                        }
                    }
                }
            }
            image.inherited = Arc::new(set);
            other_readings(&self.readings, image);
        }
        Walk { images: self.images, opaque: self.opaque }
    }
}

/// Gives `image` what other JSON readers read at its own places.
fn other_readings(readings: &HashMap<(String, String), Reading>, image: &mut Image) {
    let manifest = (image.manifest_file(), "/annotations".to_string());
    let config = (image.config_file(), "/config/Labels".to_string());
    let mut places: Vec<(&'static str, (String, String), bool)> = vec![
        ("manifest", manifest, has_key(image.manifest.annotations().as_ref())),
        (
            "config-label",
            config,
            has_key(image.config.as_ref().and_then(|c| c.config().as_ref()).and_then(|c| c.labels().as_ref())),
        ),
    ];
    for r in &image.referrers {
        let at = (r.file.clone(), format!("{}/annotations", r.pointer));
        places.push(("index-descriptor", at, has_key(r.descriptor.annotations().as_ref())));
    }
    let mut all_absent = image.inherited.is_empty();
    for (place, at, serde_has) in places {
        match readings.get(&at) {
            Some(reading) => {
                all_absent &= reading.absent;
                for (key, value) in &reading.others {
                    let map = HashMap::from([(key.to_string(), value.clone())]);
                    image.other_readings.push(Inherited { place, file: at.0.clone(), pointer: at.1.clone(), map });
                }
            }
            None => all_absent &= !serde_has,
        }
    }
    image.may_read_absent = all_absent;
}

/// The map holds the annotation under either key.
fn has_key(map: Option<&HashMap<String, String>>) -> bool {
    map.is_some_and(|m| KEYS.iter().any(|k| m.contains_key(*k)))
}

/// Adds to `set` what descriptor `r` declares and what stands above the
/// index holding it, each distinct (key, value) once.
fn gather(
    set: &mut Vec<Inherited>,
    r: &IndexEntry,
    files: &HashMap<String, String>,
    above: &HashMap<String, Arc<Vec<Inherited>>>,
) {
    let map: HashMap<String, String> = r
        .descriptor
        .annotations()
        .iter()
        .flatten()
        .filter(|(k, _)| KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut add = |x: Inherited| {
        let dup = set.iter().any(|y| y.map == x.map);
        if !dup && set.len() < MAX_INHERITED {
            set.push(x);
        }
    };
    if !map.is_empty() {
        let pointer = format!("{}/annotations", r.pointer);
        add(Inherited { place: "index-descriptor", file: r.file.clone(), pointer, map });
    }
    if let Some(parent) = files.get(&r.file).and_then(|d| above.get(d)) {
        for x in parent.iter() {
            add(x.clone());
        }
    }
}

/// Index digests ordered so that an index comes after every index that
/// holds a descriptor of it.
fn topological(
    order: &[String],
    referrers: &HashMap<String, Vec<IndexEntry>>,
    files: &HashMap<String, String>,
) -> Vec<String> {
    // Kahn's algorithm over "parent index → child index" edges.
    let mut pending: HashMap<&str, usize> = HashMap::new();
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for digest in order {
        let parents: HashSet<&str> =
            referrers[digest].iter().filter_map(|r| files.get(&r.file)).map(String::as_str).collect();
        pending.insert(digest, parents.len());
        for p in parents {
            children.entry(p).or_default().push(digest);
        }
    }
    let mut ready: Vec<&str> = order.iter().map(String::as_str).filter(|d| pending[d] == 0).collect();
    let mut out = Vec::with_capacity(order.len());
    while let Some(d) = ready.pop() {
        out.push(d.to_string());
        for c in children.get(d).into_iter().flatten() {
            let n = pending.get_mut(c).expect("every child is an index read");
            *n -= 1;
            if *n == 0 {
                ready.push(c);
            }
        }
    }
    out
}
