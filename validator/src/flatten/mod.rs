//! `single-id flatten`: a producer that writes a new OCI layout in which
//! every image meets the requirements for `flattened` (spec section
//! "Producer requirements"). Reads through the same walk and layer stream
//! as `validate`; each layer is rewritten while it streams, straight into
//! a compressed blob, and the configs, manifests and indexes are rebuilt
//! around the new digests.

mod errors;
mod rewrite;
pub mod write;

use std::collections::{HashMap, HashSet};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use oci_spec::image::Descriptor;
use serde::Serialize;
use serde_json::{Value, json};

pub use rewrite::Changes;
pub use write::Codec;

use crate::annotation::{KEY, KEYS, RESERVED_KEY};
use crate::diagnostic::Severity;
use crate::diagnostic::{Finding, Findings, Location};
use crate::error::{Error, Result};
use crate::image::{self, Image, REF_NAME};
use crate::layer::{self, Compression};
use crate::layout::{Layout, blob_path};
use crate::reference::{self, Reference};
use crate::rules::{
    DIFF_ID, DOCUMENT_INVALID, LAYER_MEDIA_TYPE, LAYER_UNREADABLE, LAYOUT_FILE, LAYOUT_INDEX, LIMIT_EXCEEDED, blob,
    layout as layout_rules,
};
use crate::stats::Collector;
use crate::{policy, validate};
use errors::{invalid, messages, refusal, write_failed, write_io};
use rewrite::{Dropped, Finished, Rewriter};
use write::{Blobs, CHANNEL_DEPTH, ChunkSender, HashingWriter, canonical_json};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// `created_by` of the history entry flatten appends.
pub const HISTORY_CREATED_BY: &str = "single-id flatten";

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Compression of every output layer; `None` keeps each layer's own.
    pub compression: Option<Codec>,
    /// The user consents to flattening `caution` images (POLICY-CAUTION).
    pub confirm_flatten: bool,
    pub max_examples: usize,
    pub limits: crate::limits::Limits,
    /// Told how many layer bytes have been read.
    pub progress: crate::progress::Progress,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlattenReport {
    pub report_version: u32,
    /// POLICY-CAUTION notices of the images flattened with consent.
    pub notices: Vec<String>,
    /// The IMAGE argument, as given.
    pub target: String,
    /// The OUTPUT argument, as given.
    pub output: String,
    /// `input` (each layer keeps its compression), `gzip`, `zstd` or `none`.
    pub compression: &'static str,
    pub images: Vec<ImageReport>,
    /// Blobs copied unchanged: artifacts and descriptors that are not images.
    pub copied: Vec<CopiedBlob>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageReport {
    pub name: String,
    /// Digest of the input manifest.
    pub manifest: String,
    pub output_manifest: String,
    pub output_config: String,
    /// `config.User` of the input, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_user: Option<String>,
    /// `config.User` named an account and was set to "".
    pub config_user_reset: bool,
    /// `org.opencontainers.image.base.digest` and `base.name`, removed
    /// from the manifest annotations and config Labels: they name the
    /// unflattened base, which the new image no longer builds on.
    pub base_annotations_dropped: Vec<String>,
    pub layers: Vec<LayerReport>,
    /// Every layer together.
    pub total: Changes,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerReport {
    pub index: usize,
    pub digest: String,
    pub media_type: String,
    pub output_digest: String,
    pub output_media_type: String,
    pub output_size: u64,
    pub output_diff_id: String,
    pub changes: Changes,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CopiedBlob {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// Where the new layout goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Directory(PathBuf),
    /// An OCI archive: the layout as an uncompressed tar.
    Archive(PathBuf),
}

impl Output {
    /// `DIR`, `oci:DIR`, `oci-archive:PATH`, or a PATH ending in `.tar`.
    pub fn parse(arg: &str) -> Result<Output> {
        let r = Reference::parse(arg, None)?;
        if let Some(name) = r.ref_name {
            return Err(Error::usage(format!(
                "{arg}: OUTPUT takes no `:{name}`; the output keeps the input's ref names (choose an image with --ref)"
            )));
        }
        Ok(match r.kind {
            reference::Kind::Archive => Output::Archive(r.path),
            reference::Kind::Directory => Output::Directory(r.path),
            reference::Kind::Detect if r.path.extension().is_some_and(|e| e == "tar") => Output::Archive(r.path),
            reference::Kind::Detect => Output::Directory(r.path),
        })
    }
}

/// Writes a `flattened` copy of the image(s) `reference` names to
/// `output_arg` (see [`Output::parse`]). `target` is how the user spelled
/// the image, echoed in the report.
///
/// Errors: [`Error::Usage`] when OUTPUT cannot be used or the input is no
/// readable layout; [`Error::Refused`] when an image is `caution` and
/// consent was not given; [`Error::Invalid`] when the input is broken (the
/// findings say where, with the rules `validate` reports); [`Error::Write`]
/// when the output could not be written. Only a successful run leaves
/// anything at OUTPUT.
pub fn flatten(reference: &Reference, target: String, output_arg: &str, options: &Options) -> Result<FlattenReport> {
    let output = Output::parse(output_arg)?;
    check_free(&output)?;
    let layout = crate::layout::open(reference, &options.limits)?;
    let walk = walk_input(&layout, reference.ref_name.as_deref())?;
    let notices = consent(&walk, options.confirm_flatten)?;
    let staging = Staging::prepare(&output)?;
    let result = write_layout(&layout, &walk, reference.ref_name.as_deref(), staging.layout_dir(), options)
        .and_then(|report| self_check(staging.layout_dir(), options).map(|()| report))
        .and_then(|report| staging.finish(&output).map(|()| report));
    match result {
        Ok((images, copied)) => Ok(FlattenReport {
            report_version: 1,
            notices,
            target,
            output: output_arg.to_string(),
            compression: options.compression.map_or("input", Codec::as_str),
            images,
            copied,
        }),
        Err(e) => {
            // A signal stops the layer reader mid-stream; the stream is not
            // at fault, so no finding blames it.
            let e = if crate::interrupt::requested() {
                Error::Interrupted { message: "stopped by a signal".into() }
            } else {
                e
            };
            let left = match staging.discard(&output) {
                Ok(()) => format!("nothing was written to {output_arg}"),
                Err(e) => format!("removing what was written for {output_arg} failed too: {e}"),
            };
            Err(e.and(&left))
        }
    }
}

/// Walks the input. A layout that cannot be read is a usage error; any
/// other error the walk finds (a document that fails its digest or does not
/// parse) refuses: output built on it cannot be trusted.
fn walk_input(layout: &Layout, selected: Option<&str>) -> Result<image::Walk> {
    let mut f = Findings::default();
    layout_rules::check_oci_layout(layout, &mut f);
    let walk = image::walk(layout, selected, &mut f)?;
    let errors: Vec<Finding> = f.into_vec().into_iter().filter(|x| x.severity == Severity::Error).collect();
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
fn consent(walk: &image::Walk, confirmed: bool) -> Result<Vec<String>> {
    let mut notices = Vec::new();
    for img in &walk.images {
        let d = img.declarations(&mut Findings::default());
        let doing = "flattening it gives every file to root, clears set-ID bits and lets every later consumer flatten it without asking";
        match policy::decide(&img.name, &d, confirmed, doing) {
            Ok(notice) => notices.extend(notice),
            Err(refusal) => {
                return Err(Error::Refused {
                    message: format!(
                        "{refusal}. Nothing was written; run again with --confirm-flatten to flatten it anyway"
                    ),
                });
            }
        }
    }
    Ok(notices)
}

/// The output must be a clean `flattened` image. Some faults of an input
/// (duplicate paths, hardlinks to nothing) cannot be repaired while
/// streaming; validating what was written turns them into a refusal
/// instead of a broken output.
fn self_check(dir: &Path, options: &Options) -> Result<()> {
    let reference = Reference { kind: crate::reference::Kind::Directory, path: dir.to_path_buf(), ref_name: None };
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
    let faults: Vec<Finding> = report.findings.into_iter().filter(|x| x.severity >= Severity::Warning).collect();
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
    Err(invalid(message, faults))
}

/// OUTPUT must not exist, or be an empty directory (a directory output).
fn check_free(output: &Output) -> Result<()> {
    match output {
        Output::Directory(p) => match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => {
                let mut entries = std::fs::read_dir(p).map_err(|e| Error::usage_io(p.display(), e))?;
                if entries.next().is_some() {
                    return Err(Error::usage(format!("{}: output exists and is not empty", p.display())));
                }
                Ok(())
            }
            Ok(_) => Err(Error::usage(format!("{}: output exists and is not a directory", p.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::usage_io(p.display(), e)),
        },
        Output::Archive(p) => match std::fs::symlink_metadata(p) {
            Ok(_) => Err(Error::usage(format!("{}: output archive exists already", p.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::usage_io(p.display(), e)),
        },
    }
}

/// Where the layout is written before it is in its final place.
enum Staging {
    /// Written in place; `created` says whether this run made the directory.
    Directory { dir: PathBuf, created: bool },
    /// Written to `temp/layout`, packed to `temp/archive.tar`, then linked
    /// to the final name.
    Archive { temp: PathBuf, layout: PathBuf },
}

impl Staging {
    fn prepare(output: &Output) -> Result<Staging> {
        match output {
            Output::Directory(dir) => {
                let created = match std::fs::create_dir(dir) {
                    Ok(()) => true,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                    Err(e) => return Err(Error::usage_io(format_args!("{}: cannot create", dir.display()), e)),
                };
                Ok(Staging::Directory { dir: dir.clone(), created })
            }
            Output::Archive(path) => {
                let name =
                    path.file_name().ok_or_else(|| Error::usage(format!("{}: not a file name", path.display())))?;
                let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                let temp = parent.join(format!(".{}.single-id-flatten", name.to_string_lossy()));
                if let Err(e) = std::fs::create_dir(&temp) {
                    let hint = if e.kind() == io::ErrorKind::AlreadyExists {
                        " (left by an earlier run that was killed? remove it)"
                    } else {
                        ""
                    };
                    let message = format!("{}: cannot create the temporary directory: {e}{hint}", temp.display());
                    return Err(Error::Usage { message, source: Some(e) });
                }
                let layout = temp.join("layout");
                Ok(Staging::Archive { temp, layout })
            }
        }
    }

    fn layout_dir(&self) -> &Path {
        match self {
            Staging::Directory { dir, .. } => dir,
            Staging::Archive { layout, .. } => layout,
        }
    }

    /// Puts the output in its final place.
    fn finish(&self, output: &Output) -> Result<()> {
        let (Staging::Archive { temp, layout }, Output::Archive(dest)) = (self, output) else {
            return Ok(());
        };
        let packed = temp.join("archive.tar");
        write::pack(layout, &packed)
            .map_err(|e| write_io(format_args!("{}: cannot write the archive", packed.display()), e))?;
        // A hard link, unlike a rename, never replaces a file that appeared
        // at the destination meanwhile.
        std::fs::hard_link(&packed, dest).map_err(|e| write_io(dest.display(), e))?;
        std::fs::remove_dir_all(temp).map_err(|e| write_io(format_args!("{}: cannot remove", temp.display()), e))
    }

    /// Removes what this run wrote, nothing else.
    fn discard(&self, output: &Output) -> io::Result<()> {
        match self {
            Staging::Directory { dir, created: true } => std::fs::remove_dir_all(dir),
            Staging::Directory { dir, created: false } => {
                for entry in std::fs::read_dir(dir)? {
                    let path = entry?.path();
                    if std::fs::symlink_metadata(&path)?.is_dir() {
                        std::fs::remove_dir_all(&path)?;
                    } else {
                        std::fs::remove_file(&path)?;
                    }
                }
                Ok(())
            }
            Staging::Archive { temp, .. } => {
                if let Output::Archive(dest) = output {
                    // Only a link to our own packed file can be there: the
                    // destination was checked absent, and linking is the
                    // last step, after which nothing fails but the removal.
                    if temp.join("archive.tar").exists() && dest.exists() {
                        let ours = same_file(&temp.join("archive.tar"), dest)?;
                        if ours {
                            std::fs::remove_file(dest)?;
                        }
                    }
                }
                std::fs::remove_dir_all(temp)
            }
        }
    }
}

fn same_file(a: &Path, b: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

/// A flattened layer, kept for the images that share it.
#[derive(Clone)]
struct LayerOut {
    media_type: &'static str,
    digest: String,
    size: u64,
    diff_id: String,
    changes: Changes,
    /// Paths dropped in this and lower layers, for the next layer.
    dropped: Dropped,
    /// The newest mtime of an entry written.
    newest: u64,
}

/// A layer's output depends on its blob, the compression and what lower
/// layers dropped (hardlinks to those are dropped too).
type LayerKey = (String, Codec, Dropped);

struct Writer<'a> {
    layout: &'a Layout,
    blobs: Blobs,
    options: &'a Options,
    layers: HashMap<LayerKey, LayerOut>,
    /// Blobs copied unchanged, by digest.
    copied_digests: HashSet<String>,
    /// Keys of the path hashes of every layer (dropped paths).
    keys: std::hash::RandomState,
    /// Nested indexes rebuilt: input digest → new digest and size.
    indexes_done: HashMap<String, (String, u64)>,
    copied: Vec<CopiedBlob>,
}

type Written = (Vec<ImageReport>, Vec<CopiedBlob>);

fn write_layout(
    layout: &Layout,
    walk: &image::Walk,
    selected: Option<&str>,
    root: &Path,
    options: &Options,
) -> Result<Written> {
    let blobs = Blobs::create(root).map_err(|e| write_io(format_args!("{}: cannot write the layout", root.display()), e))?;
    let mut w = Writer {
        layout,
        blobs,
        options,
        layers: HashMap::new(),
        copied_digests: HashSet::new(),
        indexes_done: HashMap::new(),
        keys: std::hash::RandomState::new(),
        copied: Vec::new(),
    };
    options.progress.start(layer_bytes(&walk.images), "flattening layers");
    let mut reports = Vec::new();
    // The new descriptor of each image, by where the walk found it.
    let mut flattened: HashMap<(String, String), (String, u64)> = HashMap::new();
    for img in &walk.images {
        let (report, manifest) = w.image(img)?;
        for entry in &img.referrers {
            flattened.insert((entry.file.clone(), entry.pointer.clone()), manifest.clone());
        }
        reports.push(report);
    }
    options.progress.finish();
    // The walk read and parsed index.json already; this fails only if it
    // changed meanwhile, which makes the layout unreadable.
    let unreadable = |e: &dyn std::fmt::Display| Error::usage(format!("{}/index.json: {e}", layout.root().display()));
    let bytes = layout.read_small("index.json").map_err(|e| unreadable(&e))?;
    let mut index: Value = serde_json::from_slice(&bytes).map_err(|e| unreadable(&e))?;
    w.index(&mut index, "index.json", &flattened, selected)?;
    for (desc, loc) in &walk.opaque {
        w.copy(desc, loc)?;
    }
    let bytes = canonical_json(&index);
    within_limit(&bytes, "index.json", options.limits.max_json_bytes, Location::file("index.json"))?;
    std::fs::write(root.join("index.json"), bytes).map_err(|e| write_io(root.join("index.json").display(), e))?;
    Ok((reports, w.copied))
}

/// Where a finding about layer `i` of `img` is, as validate puts it.
fn layer_location(img: &Image, i: usize) -> Location {
    let digest = img.manifest.layers()[i].digest();
    Location { layer: Some(i), blob: Some(digest.to_string()), file: Some(blob_path(digest)), ..img.location() }
}

/// Where a finding about the config of `img` is.
fn config_location(img: &Image) -> Location {
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

/// `old` pointing at a new blob: other members (annotations, platform)
/// kept; `urls` and embedded `data` removed, since they described the old.
fn retarget(old: &Value, media_type: &str, digest: &str, size: u64) -> Value {
    let mut d = match old {
        Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    d.remove("urls");
    d.remove("data");
    d.insert("mediaType".into(), json!(media_type));
    d.insert("digest".into(), json!(digest));
    d.insert("size".into(), json!(size));
    Value::Object(d)
}

/// Sets `doc[member][KEY]` to `flattened`, creating the map if needed, and
/// drops the reserved key (ANNOTATION-RESERVED-KEY).
fn declare(doc: &mut Value, member: &str) {
    if let Some(obj) = doc.as_object_mut() {
        let map = obj.entry(member).or_insert_with(|| json!({}));
        if !map.is_object() {
            *map = json!({});
        }
        if let Some(m) = map.as_object_mut() {
            m.remove(RESERVED_KEY);
            m.insert(KEY.into(), json!("flattened"));
        }
    }
}

/// What flatten adds (a history entry, a Label, an annotation) can take a
/// document within the JSON limit past it; every reader that applies the
/// limit would then refuse the output, so flatten refuses, naming the limit
/// (LIMIT-EXCEEDED, at the input document `at`).
fn within_limit(bytes: &[u8], what: &str, limit: u64, at: Location) -> Result<()> {
    if bytes.len() as u64 > limit {
        let message = format!(
            "the flattened {what} would be {} bytes, more than the {limit}-byte limit for JSON documents that validate and unpack apply (--max-json-bytes raises it, for flatten and for every later reader)",
            bytes.len()
        );
        return Err(refusal(&LIMIT_EXCEEDED, at, message.clone(), message));
    }
    Ok(())
}

/// The annotations that name an image's base.
const BASE_KEYS: [&str; 2] = ["org.opencontainers.image.base.digest", "org.opencontainers.image.base.name"];

/// Removes the base annotations from `map`; returns the keys removed.
fn drop_base(map: Option<&mut Value>) -> Vec<String> {
    let Some(m) = map.and_then(Value::as_object_mut) else { return Vec::new() };
    BASE_KEYS.iter().filter(|k| m.remove(**k).is_some()).map(|k| k.to_string()).collect()
}

/// `secs` since the epoch as an RFC 3339 UTC timestamp.
fn rfc3339(secs: u64) -> String {
    // Days to a civil date (proleptic Gregorian), after H. Hinnant's
    // public-domain algorithm.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Removes both id-flattening keys from `doc.annotations`, where they mean
/// nothing (ANNOTATION-PLACES): config and layer descriptors, an index's
/// own annotations.
fn undeclare(doc: &mut Value) {
    if let Some(m) = doc.get_mut("annotations").and_then(Value::as_object_mut) {
        for key in KEYS {
            m.remove(key);
        }
    }
}

impl Writer<'_> {
    /// Loads a JSON document blob, verified, as a `Value`; `loc` is where
    /// the descriptor `desc` was found.
    fn document(&self, desc: &Descriptor, what: &str, loc: &Location) -> Result<Value> {
        let mut f = Findings::default();
        let file = blob_path(desc.digest());
        let Some(bytes) = blob::load_document(self.layout, desc, loc, &mut f) else {
            let findings = f.into_vec();
            return Err(invalid(format!("{what} {file}: {}", messages(&findings)), findings));
        };
        let at = Location { blob: Some(desc.digest().to_string()), file: Some(file.clone()), pointer: None, ..loc.clone() };
        let doc: Value = serde_json::from_slice(&bytes)
            .map_err(|e| refusal(&DOCUMENT_INVALID, at.clone(), e.to_string(), format!("{what} {file}: {e}")))?;
        if !doc.is_object() {
            let why = "not a JSON object";
            return Err(refusal(&DOCUMENT_INVALID, at, why.into(), format!("{what} {file}: {why}")));
        }
        Ok(doc)
    }

    /// Writes `doc` as a blob; `at` is the input document it replaces.
    fn write_json(&mut self, doc: &Value, at: Location) -> Result<(String, u64)> {
        let bytes = canonical_json(doc);
        let kind = match doc.get("mediaType").and_then(Value::as_str) {
            Some(t) if t.contains("index") => "image index",
            Some(t) if t.contains("manifest") => "manifest",
            _ => "configuration",
        };
        within_limit(&bytes, kind, self.options.limits.max_json_bytes, at)?;
        self.blobs.write(&bytes).map_err(|e| write_io("writing a blob", e))
    }

    /// Flattens one image; returns its report and new manifest digest and size.
    fn image(&mut self, img: &Image) -> Result<(ImageReport, (String, u64))> {
        let at = format!("image {}", img.name);
        let manifest_at = img.location();
        let mut manifest = self.document(img.descriptor(), &format!("{at}: manifest"), &img.location())?;
        let config_desc = img.manifest.config();
        let config_at = config_location(img);
        let mut config = self.document(config_desc, &format!("{at}: config"), &img.location())?;
        let parsed = img.config.as_ref().ok_or_else(|| {
            let why = "the config could not be read";
            refusal(&DOCUMENT_INVALID, config_at.clone(), why.into(), format!("{at}: {why}"))
        })?;
        let diff_ids = parsed.rootfs().diff_ids();
        let layers = img.manifest.layers();
        if diff_ids.len() != layers.len() {
            return Err(refusal(
                &DIFF_ID,
                config_at.with_pointer("/rootfs/diff_ids"),
                format!("config lists {} diff_ids but the manifest has {} layers", diff_ids.len(), layers.len()),
                format!(
                    "{at}: config {} lists {} diff_ids for {} layers",
                    blob_path(config_desc.digest()),
                    diff_ids.len(),
                    layers.len()
                ),
            ));
        }
        let max = self.options.max_examples;
        let mut dropped = Dropped::new();
        let mut reports = Vec::new();
        let mut total = Changes::default();
        let mut newest = 0;
        for (i, desc) in layers.iter().enumerate() {
            let out = self.layer(img, i, desc, &diff_ids[i], dropped)?;
            dropped = out.dropped.clone();
            newest = newest.max(out.newest);
            total.merge(&out.changes, max);
            reports.push(LayerReport {
                index: i,
                digest: desc.digest().to_string(),
                media_type: desc.media_type().to_string(),
                output_digest: out.digest,
                output_media_type: out.media_type.to_string(),
                output_size: out.size,
                output_diff_id: out.diff_id,
                changes: out.changes,
            });
        }

        let user = parsed.config().as_ref().and_then(|c| c.user().clone());
        let reset = !crate::rules::producer::root_user(user.as_deref());
        let comment = history_comment(&total, reset.then_some(user.as_deref().unwrap_or_default()));
        let Some(obj) = config.as_object_mut() else {
            let why = "not a JSON object";
            let message = format!("{at}: config {} is not a JSON object", blob_path(config_desc.digest()));
            return Err(refusal(&DOCUMENT_INVALID, config_location(img), why.into(), message));
        };
        let rootfs = obj.entry("rootfs").or_insert_with(|| json!({}));
        if !rootfs.is_object() {
            *rootfs = json!({});
        }
        rootfs["type"] = json!("layers");
        rootfs["diff_ids"] = json!(reports.iter().map(|l| l.output_diff_id.clone()).collect::<Vec<_>>());
        let c = obj.entry("config").or_insert_with(|| json!({}));
        if !c.is_object() {
            *c = json!({});
        }
        if reset {
            c["User"] = json!(""); // PRODUCER-CONFIG-USER
        }
        declare(c, "Labels"); // ANNOTATION-LABEL
        let mut base_dropped = drop_base(c.get_mut("Labels"));
        // A `created` that depends on the input only, so the same input
        // gives the same bytes: the input's own, else the newest mtime of
        // the layers (tools such as umoci need one).
        let created = match obj.get("created").and_then(Value::as_str) {
            Some(c) => c.to_string(),
            None => rfc3339(newest),
        };
        let history = obj.entry("history").or_insert_with(|| json!([]));
        if !history.is_array() {
            *history = json!([]);
        }
        if let Some(h) = history.as_array_mut() {
            h.push(
                json!({"created": created, "created_by": HISTORY_CREATED_BY, "comment": comment, "empty_layer": true}),
            );
        }
        let (config_digest, config_size) = self.write_json(&config, config_location(img))?;

        let old_config = manifest.get("config").cloned().unwrap_or(Value::Null);
        manifest["mediaType"] = json!(OCI_MANIFEST);
        manifest["config"] = retarget(&old_config, OCI_CONFIG, &config_digest, config_size);
        undeclare(&mut manifest["config"]);
        let old_layers = manifest.get("layers").and_then(Value::as_array).cloned().unwrap_or_default();
        let new_layers: Vec<Value> = reports
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut d = retarget(
                    old_layers.get(i).unwrap_or(&Value::Null),
                    &l.output_media_type,
                    &l.output_digest,
                    l.output_size,
                );
                undeclare(&mut d);
                d
            })
            .collect();
        manifest["layers"] = json!(new_layers);
        declare(&mut manifest, "annotations"); // ANNOTATION-MANIFEST
        for key in drop_base(manifest.get_mut("annotations")) {
            if !base_dropped.contains(&key) {
                base_dropped.push(key);
            }
        }
        let (manifest_digest, manifest_size) = self.write_json(&manifest, manifest_at)?;
        let report = ImageReport {
            name: img.name.clone(),
            manifest: img.descriptor().digest().to_string(),
            output_manifest: manifest_digest.clone(),
            output_config: config_digest,
            config_user: user,
            config_user_reset: reset,
            base_annotations_dropped: base_dropped,
            layers: reports,
            total,
        };
        Ok((report, (manifest_digest, manifest_size)))
    }

    /// Flattens layer `i` of `img`, or reuses the result for an identical
    /// layer in an identical position.
    fn layer(
        &mut self,
        img: &Image,
        i: usize,
        desc: &Descriptor,
        diff_id: &str,
        dropped: Dropped,
    ) -> Result<LayerOut> {
        let at = format!("image {}: layer {i} ({})", img.name, desc.digest());
        let compression = Compression::of(desc.media_type()).ok_or_else(|| {
            refusal(
                &LAYER_MEDIA_TYPE,
                layer_location(img, i),
                format!("layer media type `{}` is not one this tool reads", desc.media_type()),
                format!("{at}: media type `{}` is not one this tool can read", desc.media_type()),
            )
        })?;
        let codec = self.options.compression.unwrap_or(Codec::from_layer(compression));
        let key = (desc.digest().to_string(), codec, dropped);
        if let Some(done) = self.layers.get(&key) {
            return Ok(done.clone());
        }
        let out = self.rewrite_layer(&at, img, i, desc, compression, codec, diff_id, key.2.clone())?;
        self.layers.insert(key, out.clone());
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn rewrite_layer(
        &mut self,
        at: &str,
        img: &Image,
        i: usize,
        desc: &Descriptor,
        compression: Compression,
        codec: Codec,
        diff_id: &str,
        dropped: Dropped,
    ) -> Result<LayerOut> {
        let max = self.options.max_examples;
        let loc = img.location();
        let mut f = Findings::default();
        let Some(opened) = blob::open(self.layout, desc, &loc, &mut f) else {
            let findings = f.into_vec();
            return Err(invalid(format!("{at}: {}", messages(&findings)), findings));
        };
        let len = opened.len;
        let (temp, file) =
            self.blobs.temp().map_err(|e| write_io(format_args!("{at}: cannot create a blob file"), e))?;
        let progress = &self.options.progress;
        // Three threads per layer: decompressing (in `layer::scan`), tar
        // parsing and rewriting (here), compressing and writing the blob.
        let (tx, rx) = mpsc::sync_channel(CHANNEL_DEPTH);
        let (reader, scanned, (changes, dropped, input_failed, newest), tar_end, blob_written, stats) =
            thread::scope(|s| {
                let writer = s.spawn(move || write::compress_into(file, codec, rx));
                let rewriter = Rewriter::new(HashingWriter::new(ChunkSender::new(tx)), dropped, self.keys.clone(), max);
                let mut sinks = (rewriter, Collector::new(max));
                let (reader, scanned) =
                    layer::scan(opened.reader, compression, &mut sinks, progress, true, &self.layout.limits);
                let (rewriter, collector) = sinks;
                let Finished { out, changes, dropped, input_failed, newest } = rewriter.finish();
                let tar_end = out.and_then(|hashing| {
                    let (mut sender, diff_id, _) = hashing.finish();
                    sender.flush()?;
                    Ok(diff_id)
                    // The sender is dropped here: the compressor sees the end.
                });
                let blob_written = match writer.join() {
                    Ok(r) => r,
                    Err(panic) => std::panic::resume_unwind(panic),
                };
                (reader, scanned, (changes, dropped, input_failed, newest), tar_end, blob_written, collector.finish())
            });
        let fail = |error: Error| {
            let _ = std::fs::remove_file(&temp);
            Err(error)
        };
        let layer_at = layer_location(img, i);
        // The blob's own digest first: a corrupt blob explains everything after.
        if !(blob::OpenBlob { reader, len }).check(desc, &loc, &mut f) {
            let findings = f.into_vec();
            return fail(invalid(format!("{at}: {}", messages(&findings)), findings));
        }
        let scanned = match scanned {
            Err(e) if !e.from_sink || input_failed => {
                // As validate reports it: a limit, else an unreadable layer
                // (a refusal of the rewriter names its own rule).
                let (rule, what) = match (&e.limit, e.rule) {
                    (Some(_), _) => (&LIMIT_EXCEEDED, "layer not read to its end"),
                    (None, Some(rule)) => (rule, "layer cannot be read to its end"),
                    (None, None) => (&LAYER_UNREADABLE, "layer cannot be read to its end"),
                };
                let message = format!("{at}: cannot be read to its end: {e}");
                return fail(refusal(rule, layer_at, format!("{what}: {e}"), message));
            }
            other => other,
        };
        // A failed write stops the scan too; the writer's error says why.
        let (digest, size) = match blob_written {
            Ok(d) => d,
            Err(e) => return fail(write_io(format_args!("{at}: writing the new layer {}", temp.display()), e)),
        };
        let scanned = match scanned {
            Ok(s) => s,
            // The rewriter refused an entry, as validate would report it.
            Err(e) if e.rule.is_some() => {
                let rule = e.rule.expect("checked");
                return fail(refusal(rule, layer_at, e.to_string(), format!("{at}: {e}")));
            }
            Err(e) => return fail(write_failed(format!("{at}: writing the new layer: {e}"))),
        };
        if scanned.diff_id != diff_id {
            let found = &scanned.diff_id;
            return fail(refusal(
                &DIFF_ID,
                config_location(img).with_pointer(format!("/rootfs/diff_ids/{i}")),
                format!("layer {i} decompresses to {found}, but the config says {diff_id}"),
                format!("{at}: decompresses to {found}, but the config says {diff_id}"),
            ));
        }
        let new_diff_id = match tar_end {
            Ok(d) => d,
            Err(e) => return fail(write_io(format_args!("{at}: writing the new layer"), e)),
        };
        if let Err(e) = self.blobs.commit(&temp, &digest) {
            return fail(write_io(format_args!("{at}: {}", temp.display()), e));
        }
        let mut changes = changes;
        changes.owners = stats.owners;
        changes.other_owners = stats.other_owners;
        Ok(LayerOut { media_type: codec.media_type(), digest, size, diff_id: new_diff_id, changes, dropped, newest })
    }

    /// Rebuilds the index `doc` (found at `file`): flattened images get
    /// their new descriptors, nested indexes are rebuilt, everything else
    /// is kept. At the top, `selected` keeps only the image of that name.
    fn index(
        &mut self,
        doc: &mut Value,
        file: &str,
        flattened: &HashMap<(String, String), (String, u64)>,
        selected: Option<&str>,
    ) -> Result<()> {
        undeclare(doc);
        let old = match doc.get_mut("manifests").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => {
                let why = "the index has no manifests array";
                let at = Location::file(file).with_pointer("/manifests");
                return Err(refusal(&DOCUMENT_INVALID, at, why.into(), format!("{file}: {why}")));
            }
        };
        let mut new = Vec::new();
        for (i, d) in old.into_iter().enumerate() {
            let ref_name = d.get("annotations").and_then(|a| a.get(REF_NAME)).and_then(Value::as_str);
            if selected.is_some_and(|s| ref_name != Some(s)) {
                continue;
            }
            let pointer = format!("/manifests/{i}");
            let media_type = d.get("mediaType").and_then(Value::as_str).unwrap_or_default();
            if let Some((digest, size)) = flattened.get(&(file.to_string(), pointer.clone())) {
                let mut nd = retarget(&d, OCI_MANIFEST, digest, *size);
                declare(&mut nd, "annotations"); // ANNOTATION-INDEX
                new.push(nd);
                continue;
            }
            let desc: Descriptor = serde_json::from_value(d.clone()).map_err(|e| {
                let at = Location::file(file).with_pointer(pointer.clone());
                refusal(&DOCUMENT_INVALID, at, format!("descriptor: {e}"), format!("{file}: descriptor {pointer}: {e}"))
            })?;
            match media_type {
                OCI_INDEX | DOCKER_LIST => {
                    // An index listed many times is rebuilt once.
                    let (digest, size) = match self.indexes_done.get(&desc.digest().to_string()) {
                        Some(done) => done.clone(),
                        None => {
                            let here = Location::file(file).with_pointer(pointer.clone());
                            let mut child = self.document(&desc, &format!("{file}: index"), &here)?;
                            let child_file = blob_path(desc.digest());
                            self.index(&mut child, &child_file, flattened, None)?;
                            child["mediaType"] = json!(OCI_INDEX);
                            let done = self.write_json(&child, Location::file(child_file))?;
                            self.indexes_done.insert(desc.digest().to_string(), done.clone());
                            done
                        }
                    };
                    let mut nd = retarget(&d, OCI_INDEX, &digest, size);
                    // A value here covers every image below, all flattened
                    // now (ANNOTATION-CONSISTENT).
                    if KEYS.iter().any(|k| nd.get("annotations").and_then(|a| a.get(k)).is_some()) {
                        declare(&mut nd, "annotations");
                    }
                    new.push(nd);
                }
                OCI_MANIFEST | DOCKER_MANIFEST => {
                    // An artifact: its config and layers come with the
                    // walk's opaque blobs, the manifest itself here.
                    self.copy(&desc, &Location::file(file.to_string()))?;
                    new.push(d);
                }
                _ => new.push(d),
            }
        }
        doc["manifests"] = Value::Array(new);
        doc["mediaType"] = json!(OCI_INDEX);
        Ok(())
    }

    /// Copies a blob unchanged, verifying its digest on the way. A blob
    /// that is absent but may be fetched from its `urls` stays absent.
    fn copy(&mut self, desc: &Descriptor, loc: &Location) -> Result<()> {
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

/// The `comment` of the history entry: what flattening changed, in words.
fn history_comment(c: &Changes, user: Option<&str>) -> String {
    let mut parts = vec![format!("owners set to 0:0 root/root on {} entries", c.written)];
    for (n, what) in [
        (c.setid_cleared.count, "set-ID bits cleared"),
        (c.devices_dropped.count, "devices dropped"),
        (c.hardlinks_dropped.count, "hardlinks to dropped entries dropped"),
        (c.paths_dropped.count, "entries dropped (outside the root, unknown type or invalid whiteout)"),
        (
            c.capabilities_removed.count + c.owner_xattrs_removed.count + c.acls_removed.count,
            "ID-bearing xattrs or ACLs removed",
        ),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    if let Some(u) = user {
        parts.push(format!("config.User {u:?} reset"));
    }
    format!("flattened user and group IDs ({KEY}=flattened): {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn outputs() {
        let p = |s: &str| Output::parse(s).unwrap();
        assert_eq!(p("out"), Output::Directory("out".into()));
        assert_eq!(p("oci:out"), Output::Directory("out".into()));
        assert_eq!(p("out.tar"), Output::Archive("out.tar".into()));
        assert_eq!(p("oci-archive:out"), Output::Archive("out".into()));
        assert!(Output::parse("oci:out:latest").is_err());
    }
}
