//! `single-id unpack`: the reference single-ID consumer. Reads an image
//! through the same walk and layer stream as `validate`, decides by the
//! annotation whether it may flatten (spec "Policy by value"), and applies
//! the layers to DEST as the consumer requirements say.
//!
//! Three levels, for three kinds of caller:
//! - [`unpack`]: an image reference, as the command line gives it;
//! - [`unpack_layout`]: an opened [`Layout`], over any [`BlobStore`]
//!   (a runtime's own content store, say);
//! - [`Unpacker`]: one layer stream at a time, for a caller that fetches
//!   and orders layers itself.
//!
//! [`BlobStore`]: crate::layout::BlobStore

mod extract;
mod fs;

use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::Descriptor;

pub use extract::Summary;

use crate::annotation::Value;
use crate::diagnostic::{Finding, Findings, Location};
use crate::digest::{Hasher, HashingReader};
use crate::error::{Error, Result};
use crate::image::{self, Image};
use crate::layer::{self, Compression, StreamError};
use crate::layout::{Layout, blob_path};
use crate::limits::Limits;
use crate::policy;
use crate::progress::Progress;
use crate::reference::Reference;
use crate::rules::{DIFF_ID, LAYER_AMBIGUOUS, LAYER_MEDIA_TYPE, LAYER_UNREADABLE, LIMIT_EXCEEDED, blob};

/// How to unpack.
#[derive(Clone, Debug)]
pub struct Options {
    /// The user consents to flattening a `caution` image (POLICY-CAUTION).
    pub confirm_flatten: bool,
    /// Leave a failed unpack's partial tree in place instead of removing it.
    pub keep_partial: bool,
    /// Example paths kept per category of the [`Summary`].
    pub max_examples: usize,
    /// Resource limits every reader of the image observes.
    pub limits: Limits,
    /// Told how many layer bytes have been read.
    pub progress: Progress,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            confirm_flatten: false,
            keep_partial: false,
            max_examples: 5,
            limits: Limits::default(),
            progress: Progress::none(),
        }
    }
}

/// A finished unpack.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unpacked {
    /// The image unpacked, by `ref.name` or manifest digest.
    pub image: String,
    /// The id-flattening value the image declares (the one acted on).
    #[serde(rename = "idFlattening")]
    pub value: Value,
    /// The POLICY-CAUTION message, shown even when consent was given.
    pub notice: Option<String>,
    /// What was written and what the consumer requirements changed.
    pub summary: Summary,
}

/// Unpacks the image `reference` names into `dest`, which must be absent
/// or an empty directory. On failure nothing is left in `dest` (unless
/// [`Options::keep_partial`]).
///
/// ```no_run
/// use single_id::reference::Reference;
/// use single_id::unpack::{self, Options};
///
/// let image = Reference::parse("oci:examples/hello", None)?;
/// let done = unpack::unpack(&image, "rootfs".as_ref(), &Options::default())?;
/// println!("{} files, setuid/setgid cleared on {}", done.summary.files, done.summary.setid_cleared.count);
/// # Ok::<(), single_id::error::Error>(())
/// ```
pub fn unpack(reference: &Reference, dest: &Path, options: &Options) -> Result<Unpacked> {
    let layout = crate::layout::open(reference, &options.limits)?;
    unpack_layout(&layout, reference.ref_name.as_deref(), dest, options)
}

/// Unpacks the image of an opened layout: the one whose `ref.name` is
/// `ref_name`, or the only one, or the one for this machine's platform.
pub fn unpack_layout(layout: &Layout, ref_name: Option<&str>, dest: &Path, options: &Options) -> Result<Unpacked> {
    let image = choose(layout, ref_name)?;
    let declarations = image.declarations(&mut Findings::default());
    let asking = policy::Asking {
        doing: "unpacking it as a single user gives every file to you and clears set-ID bits",
        refused: "Nothing was unpacked; run again with --confirm-flatten to unpack it anyway",
    };
    let notice = policy::decide(&image.name, &declarations, options.confirm_flatten, asking)?;
    let mut unpacker = Unpacker::new(dest, options)?;
    match unpacker.apply_image(layout, &image) {
        Ok(()) => {
            let summary = unpacker.finish()?;
            Ok(Unpacked { image: image.name.clone(), value: declarations.effective, notice, summary })
        }
        Err(e) => Err(unpacker.fail(e)),
    }
}

/// The image to unpack, its documents verified on the way.
fn choose(layout: &Layout, ref_name: Option<&str>) -> Result<Image> {
    let mut f = Findings::default();
    let walk = image::walk(layout, ref_name, &mut f)?;
    let at = layout.root().display();
    if walk.images.is_empty() {
        // Say why: a missing or oversized index.json, a symlinked blob...
        let why: Vec<String> = f.into_errors().into_iter().map(|x| x.message).collect();
        if !why.is_empty() {
            return Err(Error::usage(format!("{at}: no image can be read: {}", why.join("; "))));
        }
        return Err(Error::usage(format!("{at}: the layout holds no image")));
    }
    let image = select(walk.images)?;
    // The walk has verified every document on the way; an error there
    // (a bad digest, a broken config) means the image cannot be trusted.
    let problems = f.into_errors();
    if !problems.is_empty() || image.config.is_none() {
        let why: Vec<&str> = problems.iter().map(|x| x.message.as_str()).collect();
        return Err(Error::Invalid {
            message: format!("image {} is not valid: {}", image.name, why.join("; ")),
            findings: problems,
        });
    }
    Ok(image)
}

/// The one image to unpack: the only one, or the one for this machine's
/// platform among several (a multi-platform index).
fn select(mut images: Vec<Image>) -> Result<Image> {
    if images.len() == 1 {
        return Ok(images.remove(0));
    }
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let names: Vec<String> = images.iter().map(|i| i.name.clone()).collect();
    let mut here: Vec<Image> = images
        .into_iter()
        .filter(|i| {
            i.descriptor()
                .platform()
                .as_ref()
                .is_some_and(|p| p.os().to_string() == "linux" && p.architecture().to_string() == arch)
        })
        .collect();
    match here.len() {
        1 => Ok(here.remove(0)),
        0 if names.is_empty() => Err(Error::usage("the layout holds no image")),
        _ => Err(Error::usage(format!(
            "the layout holds several images ({}); choose one with --ref or IMAGE:REF",
            names.join(", ")
        ))),
    }
}

/// A destination directory being filled the spec's way, one layer at a
/// time: every entry becomes the invoking user's, set-ID bits are
/// cleared, devices skipped, whiteouts applied, and no entry reaches
/// outside the directory. Call [`Unpacker::finish`] after the last layer
/// (it sets directory modes), or [`Unpacker::abandon`] to remove what was
/// written. The layers are not checked against any policy: that is the
/// caller's decision ([`crate::policy::decide`]).
///
/// ```no_run
/// use single_id::unpack::{Options, Unpacker};
/// # fn layers() -> Vec<(std::fs::File, oci_spec::image::Descriptor, String)> { Vec::new() }
///
/// let mut unpacker = Unpacker::new("rootfs".as_ref(), &Options::default())?;
/// for (blob, descriptor, diff_id) in layers() {
///     // Checks the blob's size and digest, and the diff_id, as it reads.
///     if let Err(e) = unpacker.apply_layer(blob, &descriptor, Some(&diff_id)) {
///         unpacker.abandon()?;
///         return Err(e);
///     }
/// }
/// let summary = unpacker.finish()?;
/// # Ok::<(), single_id::error::Error>(())
/// ```
pub struct Unpacker {
    extractor: extract::Extractor,
    dest: PathBuf,
    /// This unpacker made `dest` (so abandoning removes it).
    created: bool,
    keep_partial: bool,
    limits: Limits,
    progress: Progress,
    /// Layers applied so far.
    applied: usize,
}

impl Unpacker {
    /// Prepares `dest`: creates it, or takes an empty directory.
    pub fn new(dest: &Path, options: &Options) -> Result<Unpacker> {
        let choice = fs::Choice::from_env().map_err(Error::usage)?;
        let created = prepare(dest)?;
        let root = match fs::Root::open(dest, choice, options.limits.max_path_depth) {
            Ok(root) => root,
            Err(e) => {
                // DEST exists but cannot be written the way asked (openat2
                // forced where the kernel refuses it): a failure, exit 1.
                let _ = discard(dest, created);
                let message = format!("{}: {}", dest.display(), crate::error::os_message(&e));
                return Err(Error::Write { message, source: Some(e) });
            }
        };
        Ok(Unpacker {
            extractor: extract::Extractor::new(root, options.max_examples),
            dest: dest.to_path_buf(),
            created,
            keep_partial: options.keep_partial,
            limits: options.limits.clone(),
            progress: options.progress.clone(),
            applied: 0,
        })
    }

    /// Applies the next layer, read from `blob` (compressed as the
    /// descriptor's media type says). The blob's size and digest are
    /// checked against `layer`, and the digest of the uncompressed stream
    /// against `diff_id` when given; a mismatch is an [`Error::Invalid`]
    /// whose findings say which (the layer's entries may already be on
    /// disk: abandon the unpack).
    pub fn apply_layer(
        &mut self,
        blob: impl Read + Send + 'static,
        layer: &Descriptor,
        diff_id: Option<&str>,
    ) -> Result<()> {
        let at = Location { layer: Some(self.applied), ..Location::default() };
        let reader =
            HashingReader::new(Box::new(blob) as Box<dyn Read + Send>, Hasher::new(layer.digest().algorithm()));
        self.apply(blob::OpenBlob { reader, len: layer.size() }, layer, diff_id, &at)
    }

    /// Applies every layer of `image`, read from `layout`.
    fn apply_image(&mut self, layout: &Layout, image: &Image) -> Result<()> {
        let diff_ids = image.config.as_ref().map(|c| c.rootfs().diff_ids().clone()).unwrap_or_default();
        let layers = image.manifest.layers();
        if diff_ids.len() != layers.len() {
            let message = format!("the config lists {} diff_ids for {} layers", diff_ids.len(), layers.len());
            let mut f = Findings::default();
            let at = Location { file: Some(image.config_file()), ..image.location() };
            f.push(&DIFF_ID, at.with_pointer("/rootfs/diff_ids"), message.clone());
            return Err(Error::Invalid { message, findings: f.into_vec() });
        }
        self.progress.start(layers.iter().map(|l| l.size()).sum(), "unpacking layers");
        let applied = layers.iter().enumerate().try_for_each(|(i, desc)| {
            let at = Location { layer: Some(i), ..image.location() };
            let mut f = Findings::default();
            let Some(opened) = blob::open(layout, desc, &at, &mut f) else {
                return Err(invalid(&at, desc, f.into_vec()));
            };
            self.apply(opened, desc, Some(&diff_ids[i]), &at)
        });
        // Finished on failure too, so a progress bar is cleared before the error.
        self.progress.finish();
        applied
    }

    /// One layer: stream it through the extractor, then verify what was
    /// read. Findings carry `at` (image and layer position).
    fn apply(&mut self, opened: blob::OpenBlob, desc: &Descriptor, diff_id: Option<&str>, at: &Location) -> Result<()> {
        let layer_at =
            Location { blob: Some(desc.digest().to_string()), file: Some(blob_path(desc.digest())), ..at.clone() };
        let mut f = Findings::default();
        let Some(compression) = Compression::of(desc.media_type()) else {
            let message = format!("layer media type `{}` is not one this tool can unpack", desc.media_type());
            f.push(&LAYER_MEDIA_TYPE, layer_at, message);
            return Err(invalid(at, desc, f.into_vec()));
        };
        let len = opened.len;
        let (reader, result) = layer::scan(
            opened.reader,
            compression,
            &mut self.extractor,
            &self.progress,
            layer::Pipeline::DecoderAndHash,
            &self.limits,
        );
        // A blob that fails its digest explains a broken stream: say it first.
        let intact = (blob::OpenBlob { reader, len }).check(desc, at, &mut f);
        let scanned = match result {
            Ok(s) if intact => s,
            Ok(_) => return Err(invalid(at, desc, f.into_vec())),
            Err(e) => return Err(stream_error(e, at, desc, &layer_at, f)),
        };
        if let Some(expected) = diff_id.filter(|d| *d != scanned.diff_id) {
            let message = format!("decompresses to {}, but the config says {expected}", scanned.diff_id);
            f.push(&DIFF_ID, layer_at, message);
            return Err(invalid(at, desc, f.into_vec()));
        }
        if scanned.gzip_header_string >= layer::GO_GZIP_STRING {
            // As validate reports it: Go's readers cannot read this layer.
            let message = format!(
                "a gzip member header holds a name or comment of {} bytes, which Go's compress/gzip refuses",
                scanned.gzip_header_string
            );
            f.push(&LAYER_AMBIGUOUS, layer_at, message);
            return Err(invalid(at, desc, f.into_vec()));
        }
        self.extractor.next_layer();
        self.applied += 1;
        Ok(())
    }

    /// After the last layer: sets directory modes, children first, and
    /// returns what was done.
    pub fn finish(mut self) -> Result<Summary> {
        if let Err(e) = self.extractor.finish() {
            let e = Error::Write {
                message: format!("{}: cannot set the modes of directories: {e}", self.dest.display()),
                source: Some(e),
            };
            return Err(self.fail(e));
        }
        Ok(std::mem::take(&mut self.extractor.summary))
    }

    /// Removes what was written: `dest` itself if this unpacker made it,
    /// else its contents. Nothing outside `dest` is touched.
    pub fn abandon(self) -> Result<()> {
        discard(&self.dest, self.created).map_err(|e| Error::Write {
            message: format!("{}: cannot remove the partial tree: {e}", self.dest.display()),
            source: Some(e),
        })
    }

    /// `e`, after removing (or, with `keep_partial`, keeping) what was
    /// written, saying which.
    fn fail(self, e: Error) -> Error {
        // A signal stops the layer reader mid-stream; the stream is not
        // at fault, so no finding blames it.
        let e = if crate::interrupt::requested() {
            Error::Interrupted { message: "stopped by a signal".into() }
        } else {
            e
        };
        let dest = self.dest.display().to_string();
        if self.keep_partial {
            return e.and(&format!("the partial tree is left in {dest} (--keep-partial)"));
        }
        match self.abandon() {
            Ok(()) => e.and(&format!("nothing is left in {dest}")),
            Err(gone) => e.and(&format!("removing the partial tree in {dest} failed too: {gone}")),
        }
    }
}

/// The layer at `at` is broken as `findings` say.
fn invalid(at: &Location, desc: &Descriptor, findings: Vec<Finding>) -> Error {
    let why: Vec<&str> = findings.iter().map(|x| x.message.as_str()).collect();
    let message = format!("layer {} ({}): {}", at.layer.unwrap_or(0), desc.digest(), why.join("; "));
    Error::Invalid { message, findings }
}

/// A layer stream that stopped: a finding under the rule that stopped it
/// (the extractor's refusal, a limit, an unreadable stream), or a write
/// that failed.
fn stream_error(e: StreamError, at: &Location, desc: &Descriptor, layer_at: &Location, mut f: Findings) -> Error {
    let rule = match (&e.limit, e.rule, e.from_sink) {
        (Some(_), _, _) => &LIMIT_EXCEEDED,
        (None, Some(rule), _) => rule,
        (None, None, false) => &LAYER_UNREADABLE,
        (None, None, true) => {
            let message = format!("layer {} ({}): {e}", at.layer.unwrap_or(0), desc.digest());
            return Error::Write { message, source: None };
        }
    };
    f.push(rule, layer_at.clone(), e.to_string());
    invalid(at, desc, f.into_vec())
}

/// DEST must be absent (then it is created) or an empty directory.
/// Returns whether it was created.
fn prepare(dest: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => {
            let mut entries = std::fs::read_dir(dest).map_err(|e| Error::usage_io(dest.display(), e))?;
            if entries.next().is_some() {
                return Err(Error::usage(format!("{}: destination exists and is not empty", dest.display())));
            }
            Ok(false)
        }
        Ok(_) => Err(Error::usage(format!("{}: destination exists and is not a directory", dest.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir(dest)
                .map_err(|e| Error::usage_io(format_args!("{}: cannot create", dest.display()), e))?;
            // Made inside a set-group-ID directory, DEST inherits the bit,
            // and every directory made in it would too
            // (CONSUMER-SETID-CLEARED).
            fs::clear_setid(dest).map_err(|e| Error::usage_io(dest.display(), e))?;
            Ok(true)
        }
        Err(e) => Err(Error::usage_io(dest.display(), e)),
    }
}

/// Removes what a failed unpack wrote: DEST itself if this run created it,
/// else its contents. Nothing outside DEST is touched.
fn discard(dest: &Path, created: bool) -> std::io::Result<()> {
    fs::clear(dest)?;
    if created {
        std::fs::remove_dir(dest)?;
    }
    Ok(())
}
