//! `single-id flatten`: a producer that writes a new OCI layout in which
//! every image meets the requirements for `flattened` (spec section
//! "Producer requirements"). Reads through the same walk and layer stream
//! as `validate`; each layer is rewritten while it streams, straight into
//! a compressed blob, and the configs, manifests and indexes are rebuilt
//! around the new digests.
//!
//! [`flatten`] runs the steps in order, each in a module of its own:
//! `output` (is OUTPUT free?), `check` (is the input valid, and may its
//! images be flattened?), `staging` (where the layout is written first),
//! `writer` (the layout: `image`, `layer` with the `rewrite` sink, `index`,
//! `subject` (referrers re-pointed), into `blobs`, with `documents`, `tar`, `compress` and `gzip_blocks` making the bytes),
//! `check` again (does the output validate clean?), and `staging` again (to
//! the final place, or removed). `report` holds what the run reports,
//! `errors` how its failures become [`Error`]s.

mod blobs;
mod check;
mod compress;
mod documents;
mod errors;
mod gzip_blocks;
mod image;
mod index;
mod layer;
mod output;
mod report;
mod rewrite;
mod staging;
mod subject;
pub(crate) mod tar;
mod writer;

pub use compress::Codec;
pub use documents::HISTORY_CREATED_BY;
pub use output::Output;
pub use report::{Changes, CopiedBlob, FlattenReport, ImageReport, LayerReport, Resubjected};

use crate::error::{Error, Result};
use crate::reference::Reference;
use staging::Staging;

/// How to flatten.
#[derive(Clone, Debug)]
pub struct Options {
    /// Compression of every output layer; `None` keeps each layer's own.
    pub compression: Option<Codec>,
    /// The user consents to flattening `caution` images (POLICY-CAUTION).
    pub confirm_flatten: bool,
    /// Example paths the report keeps per kind of change.
    pub max_examples: usize,
    /// The resource limits reading the input applies (and the JSON limit
    /// the output's documents must stay within).
    pub limits: crate::limits::Limits,
    /// Told how many layer bytes have been read.
    pub progress: crate::progress::Progress,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            compression: None,
            confirm_flatten: false,
            max_examples: 5,
            limits: crate::limits::Limits::default(),
            progress: crate::progress::Progress::none(),
        }
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
///
/// ```
/// use single_id::reference::Reference;
///
/// let image = Reference::parse(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hello"), None)?;
/// let out = std::env::temp_dir().join(format!("single-id-doctest-{}", std::process::id()));
/// let report = single_id::flatten::flatten(&image, "hello".into(), out.to_str().unwrap(), &Default::default())?;
/// assert_eq!(report.images.len(), 1);
/// # std::fs::remove_dir_all(&out).unwrap();
/// # Ok::<(), single_id::error::Error>(())
/// ```
pub fn flatten(reference: &Reference, target: String, output_arg: &str, options: &Options) -> Result<FlattenReport> {
    let output = Output::parse(output_arg)?;
    output::check_free(&output)?;
    let layout = crate::layout::open(reference, &options.limits)?;
    let walk = check::walk_input(&layout, reference.ref_name.as_deref())?;
    let notices = check::consent(&walk, options.confirm_flatten)?;
    let staging = Staging::prepare(&output)?;
    let result = writer::write_layout(&layout, &walk, reference.ref_name.as_deref(), staging.layout_dir(), options)
        .and_then(|written| check::self_check(staging.layout_dir(), options, &walk, &written).map(|()| written))
        .and_then(|written| staging.finish(&output).map(|()| written));
    match result {
        Ok(writer::Written { images, copied, resubjected }) => Ok(FlattenReport {
            report_version: 1,
            notices,
            target,
            output: output_arg.to_string(),
            compression: options.compression.map_or("input", Codec::as_str),
            images,
            copied,
            resubjected,
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
