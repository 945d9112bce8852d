//! Flattening one layer: the input blob streams through the layer reader
//! into the rewriter, whose tar stream a second thread compresses into the
//! new blob. A layer met again in the same position is flattened once.

use std::io::Write as _;
use std::sync::mpsc;
use std::thread;

use oci_spec::image::Descriptor;

use super::compress::{self, CHANNEL_DEPTH, ChunkSender, Codec, HashingWriter};
use super::errors::{invalid, messages, refusal, write_failed, write_io};
use super::report::Changes;
use super::rewrite::{Dropped, Finished, Rewriter};
use super::writer::{Writer, config_location, layer_location};
use crate::diagnostic::Findings;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::{self, Compression};
use crate::rules::{DIFF_ID, LAYER_MEDIA_TYPE, LAYER_UNREADABLE, LIMIT_EXCEEDED, blob};
use crate::stats::Collector;

/// A flattened layer, kept for the images that share it.
#[derive(Clone)]
pub(super) struct LayerOut {
    pub(super) media_type: &'static str,
    pub(super) digest: String,
    pub(super) size: u64,
    pub(super) diff_id: String,
    pub(super) changes: Changes,
    /// Paths dropped in this and lower layers, for the next layer.
    pub(super) dropped: Dropped,
    /// The newest mtime of an entry written.
    pub(super) newest: u64,
}

/// A layer's output depends on its blob, the compression and what lower
/// layers dropped (hardlinks to those are dropped too).
pub(super) type LayerKey = (String, Codec, Dropped);

impl Writer<'_> {
    /// Flattens layer `i` of `img`, or reuses the result for an identical
    /// layer in an identical position.
    pub(super) fn layer(
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
                let writer = s.spawn(move || compress::compress_into(file, codec, rx));
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
}
