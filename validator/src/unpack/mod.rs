//! `single-id unpack`: the reference single-ID consumer. Reads an image
//! through the same walk and layer stream as `validate`, decides by the
//! annotation whether it may flatten (spec "Policy by value"), and applies
//! the layers to DEST as the consumer requirements say.

mod extract;
mod fs;

use std::path::Path;

pub use extract::Summary;

use crate::annotation::Value;
use crate::diagnostic::Findings;
use crate::diagnostic::Severity;
use crate::error::Error;
use crate::image::{self, Image};
use crate::layer::{self, Compression};
use crate::layout::Layout;
use crate::policy;
use crate::reference::Reference;
use crate::rules::blob;

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The user consents to flattening a `caution` image (POLICY-CAUTION).
    pub confirm_flatten: bool,
    /// Leave a failed unpack's partial tree in place instead of removing it.
    pub keep_partial: bool,
    pub max_examples: usize,
    pub limits: crate::limits::Limits,
    /// Told how many layer bytes have been read.
    pub progress: crate::progress::Progress,
}

/// Why nothing (or not everything) was unpacked.
#[derive(Debug)]
pub enum Failure {
    /// The command could not start (bad DEST, unreadable image): exit 2.
    Usage(Error),
    /// The policy forbids flattening without consent: exit 1.
    Refused(String),
    /// The image is broken or the tree could not be written: exit 1.
    Failed(String),
}

pub struct Unpacked {
    pub image: String,
    pub value: Value,
    /// The POLICY-CAUTION message, shown even when consent was given.
    pub notice: Option<String>,
    pub summary: Summary,
}

pub fn unpack(reference: &Reference, dest: &Path, options: &Options) -> Result<Unpacked, Failure> {
    let layout = crate::layout::open(reference, &options.limits).map_err(Failure::Usage)?;
    let mut f = Findings::default();
    let walk = image::walk(&layout, reference.ref_name.as_deref(), &mut f).map_err(Failure::Usage)?;
    if walk.images.is_empty() {
        // Say why: a missing or oversized index.json, a symlinked blob...
        let why: Vec<String> =
            f.into_vec().into_iter().filter(|x| x.severity == Severity::Error).map(|x| x.message).collect();
        if !why.is_empty() {
            let message = format!("{}: no image can be read: {}", reference.path.display(), why.join("; "));
            return Err(Failure::Usage(Error::usage(message)));
        }
        return Err(Failure::Usage(Error::usage(format!("{}: the layout holds no image", reference.path.display()))));
    }
    let image = select(walk.images).map_err(Failure::Usage)?;
    // The walk has verified every document on the way; an error there
    // (a bad digest, a broken config) means the image cannot be trusted.
    let problems: Vec<String> =
        f.into_vec().into_iter().filter(|x| x.severity == Severity::Error).map(|x| x.message).collect();
    if !problems.is_empty() || image.config.is_none() {
        return Err(Failure::Failed(format!("image {} is not valid: {}", image.name, problems.join("; "))));
    }
    let declarations = image.declarations(&mut Findings::default());
    let doing = "unpacking it as a single user gives every file to you and clears set-ID bits";
    let notice = policy::decide(&image.name, &declarations, options.confirm_flatten, doing).map_err(|refusal| {
        Failure::Refused(format!(
            "{refusal}. Nothing was unpacked; run again with --confirm-flatten to unpack it anyway"
        ))
    })?;
    let choice = fs::Choice::from_env().map_err(|e| Failure::Usage(Error::usage(e)))?;
    let created = prepare(dest)?;
    let result = apply(&layout, &image, dest, choice, options);
    match result {
        Ok(summary) => Ok(Unpacked { image: image.name.clone(), value: declarations.effective, notice, summary }),
        Err(message) => {
            let kept = if options.keep_partial {
                format!("the partial tree is left in {} (--keep-partial)", dest.display())
            } else {
                match discard(dest, created) {
                    Ok(()) => format!("nothing is left in {}", dest.display()),
                    Err(e) => format!("removing the partial tree in {} failed too: {e}", dest.display()),
                }
            };
            Err(Failure::Failed(format!("{message}; {kept}")))
        }
    }
}

/// The one image to unpack: the only one, or the one for this machine's
/// platform among several (a multi-platform index).
fn select(mut images: Vec<Image>) -> Result<Image, Error> {
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

/// DEST must be absent (then it is created) or an empty directory.
/// Returns whether it was created.
fn prepare(dest: &Path) -> Result<bool, Failure> {
    let usage = |m: String| Failure::Usage(Error::usage(m));
    match std::fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => {
            let mut entries = std::fs::read_dir(dest).map_err(|e| usage(format!("{}: {e}", dest.display())))?;
            if entries.next().is_some() {
                return Err(usage(format!("{}: destination exists and is not empty", dest.display())));
            }
            Ok(false)
        }
        Ok(_) => Err(usage(format!("{}: destination exists and is not a directory", dest.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir(dest).map_err(|e| usage(format!("{}: cannot create: {e}", dest.display())))?;
            // Made inside a set-group-ID directory, DEST inherits the bit,
            // and every directory made in it would too
            // (CONSUMER-SETID-CLEARED).
            fs::clear_setid(dest).map_err(|e| usage(format!("{}: {e}", dest.display())))?;
            Ok(true)
        }
        Err(e) => Err(usage(format!("{}: {e}", dest.display()))),
    }
}

/// Applies every layer in order; an error names the layer and what broke.
fn apply(
    layout: &Layout,
    image: &Image,
    dest: &Path,
    choice: fs::Choice,
    options: &Options,
) -> Result<Summary, String> {
    let mut root =
        fs::Root::open(dest, choice, options.limits.max_path_depth).map_err(|e| format!("{}: {e}", dest.display()))?;
    let diff_ids = image.config.as_ref().map(|c| c.rootfs().diff_ids().clone()).unwrap_or_default();
    let layers = image.manifest.layers();
    if diff_ids.len() != layers.len() {
        return Err(format!("the config lists {} diff_ids for {} layers", diff_ids.len(), layers.len()));
    }
    let mut x = extract::Extractor::new(&mut root, options.max_examples);
    for (i, desc) in layers.iter().enumerate() {
        let at = format!("layer {i} ({})", desc.digest());
        let compression = Compression::of(desc.media_type())
            .ok_or_else(|| format!("{at}: media type `{}` is not one this tool can unpack", desc.media_type()))?;
        let mut f = Findings::default();
        let Some(opened) = blob::open(layout, desc, &image.location(), &mut f) else {
            let why: Vec<String> = f.into_vec().into_iter().map(|x| x.message).collect();
            return Err(format!("{at}: {}", why.join("; ")));
        };
        let len = opened.len;
        let (reader, result) = layer::scan(opened.reader, compression, &mut x, &options.progress, true, &layout.limits);
        if !(blob::OpenBlob { reader, len }).check(desc, &image.location(), &mut f) {
            let why: Vec<String> = f.into_vec().into_iter().map(|x| x.message).collect();
            return Err(format!("{at}: {}", why.join("; ")));
        }
        let scanned = result.map_err(|e| format!("{at}: {e}"))?;
        if scanned.diff_id != diff_ids[i] {
            return Err(format!("{at}: decompresses to {}, but the config says {}", scanned.diff_id, diff_ids[i]));
        }
        if scanned.gzip_header_string >= layer::GO_GZIP_STRING {
            // As validate reports it: Go's readers cannot read this layer.
            return Err(format!(
                "{at}: a gzip member header holds a name or comment of {} bytes, which Go's compress/gzip refuses; validate reports it as layer-ambiguous",
                scanned.gzip_header_string
            ));
        }
        x.next_layer();
    }
    x.finish().map_err(|e| format!("{}: cannot set the modes of directories: {e}", dest.display()))?;
    Ok(std::mem::take(&mut x.summary))
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
