//! From `index.json` to images: follows (nested) indexes to every image
//! manifest and its config, verifying each document blob on the way.

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use crate::error::Error;
use crate::layout::{Layout, blob_path};
use crate::report::{Findings, Location};
use crate::spec::media_type::{self, Document};
use crate::rules::{DESCRIPTOR_SKIPPED, INDEX_NESTING, blob, document, layout as layout_rules};

/// The annotation that names an image in a layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";


/// An index entry on the way from `index.json` to an image.
#[derive(Clone)]
pub struct IndexEntry {
    /// Layout-relative file of the index holding the entry.
    pub file: String,
    /// JSON pointer of the descriptor in that file.
    pub pointer: String,
    pub descriptor: Descriptor,
}

/// One image: a manifest, its config, and how it was reached.
pub struct Image {
    /// `ref.name`, with the platform when reached through a nested index,
    /// or the manifest digest when nothing names it.
    pub name: String,
    /// Index entries from `index.json` down; the last one points at the manifest.
    pub path: Vec<IndexEntry>,
    pub manifest: ImageManifest,
    /// `None` when the config is missing or broken (reported already).
    pub config: Option<ImageConfiguration>,
}

impl Image {
    pub fn descriptor(&self) -> &Descriptor {
        &self.path.last().expect("an image is reached through at least one index entry").descriptor
    }

    pub fn manifest_file(&self) -> String {
        blob_path(self.descriptor().digest())
    }

    pub fn config_file(&self) -> String {
        blob_path(self.manifest.config().digest())
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
    pub images: Vec<Image>,
    pub opaque: Vec<(Descriptor, Location)>,
}

/// Every image of the layout, or those whose `ref.name` is `selected`.
/// A selection that names no image is an error: the user asked for
/// something that is not there.
pub fn walk(layout: &Layout, selected: Option<&str>, f: &mut Findings) -> Result<Walk, Error> {
    let Some(index) = layout_rules::read_index(layout, f) else {
        return Ok(Walk::default());
    };
    let mut walker = Walker { layout, f, out: Walk::default() };
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
    let out = walker.out;
    if let Some(s) = selected {
        if !refs.iter().any(|r| r == s) {
            let known = if refs.is_empty() {
                "it names no images".to_string()
            } else {
                format!("it names: {}", refs.join(", "))
            };
            return Err(Error::new(format!(
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
    out: Walk,
}

impl Walker<'_> {
    fn visit(&mut self, entry: IndexEntry, name: String, chain: &mut Vec<IndexEntry>) {
        let desc = &entry.descriptor;
        let loc = Location {
            image: Some(name.clone()),
            file: Some(entry.file.clone()),
            pointer: Some(entry.pointer.clone()),
            ..Location::default()
        };
        match media_type::document(desc.media_type()) {
            Document::Index => self.visit_index(entry, name, chain, loc),
            Document::Manifest | Document::DockerManifest => self.visit_manifest(entry, name, chain),
            Document::Other => {
                let other = desc.media_type();
                let message = format!(
                    "entry of media type `{other}` is not an image or index; its blob is only checked for integrity"
                );
                self.f.push(&DESCRIPTOR_SKIPPED, loc.clone(), message);
                self.out.opaque.push((entry.descriptor.clone(), loc));
            }
        }
    }

    fn visit_index(&mut self, entry: IndexEntry, name: String, chain: &mut Vec<IndexEntry>, loc: Location) {
        let digest = entry.descriptor.digest();
        if chain.iter().any(|e| e.descriptor.digest() == digest) {
            self.f.push(&INDEX_NESTING, loc, format!("index {digest} contains itself"));
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
        let file = blob_path(digest);
        let doc_loc = Location { file: Some(file.clone()), pointer: None, ..loc };
        if !document::check_media_type(&bytes, entry.descriptor.media_type(), &doc_loc, self.f) {
            return;
        }
        let Some(index) = document::parse::<ImageIndex>(&bytes, "image index", &doc_loc, self.f) else {
            return;
        };
        chain.push(entry);
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

    fn visit_manifest(&mut self, entry: IndexEntry, name: String, chain: &[IndexEntry]) {
        let desc = &entry.descriptor;
        let loc =
            Location { image: Some(name.clone()), manifest: Some(desc.digest().to_string()), ..Location::default() };
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
        if !media_type::is_image_config(config_desc.media_type()) {
            let what = config_desc.media_type();
            self.f.push(
                &DESCRIPTOR_SKIPPED,
                doc_loc.with_pointer("/config/mediaType"),
                format!(
                    "config of media type `{what}`: an artifact, not an image; its blobs are only checked for integrity"
                ),
            );
            let blobs = std::iter::once(config_desc).chain(manifest.layers());
            self.out.opaque.extend(blobs.map(|d| (d.clone(), loc.clone())));
            return;
        }
        let config_loc = Location { file: Some(blob_path(config_desc.digest())), ..loc };
        let config = blob::load_document(self.layout, config_desc, &config_loc, self.f)
            .and_then(|b| document::parse::<ImageConfiguration>(&b, "image config", &config_loc, self.f));
        let mut path = chain.to_vec();
        path.push(entry);
        self.out.images.push(Image { name, path, manifest, config });
    }
}
