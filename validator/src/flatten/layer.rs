//! Flattening the layers of an image: each input blob streams through the
//! layer reader into the rewriter, whose tar stream is compressed into the
//! new blob on other threads. The layers of an image are flattened on all
//! cores at once; a layer met again in the same position is flattened once.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
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
use crate::layer::{self, BlobReader, Compression, Pipeline, Scanned, StreamError};
use crate::rules::{DIFF_ID, LAYER_MEDIA_TYPE, LAYER_UNREADABLE, LIMIT_EXCEEDED, blob};
use crate::stats::{Collector, LayerStats};

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

/// One layer to flatten, and how.
struct Job<'a> {
    img: &'a Image,
    /// Its position in the manifest.
    index: usize,
    desc: &'a Descriptor,
    /// What the config says the layer decompresses to.
    diff_id: &'a str,
    compression: Compression,
    codec: Codec,
    /// `image NAME: layer I (DIGEST)`, which every message starts with.
    at: String,
}

impl Job<'_> {
    /// The key of this job's output when the layers below dropped `dropped`.
    fn key(&self, dropped: &Dropped) -> LayerKey {
        (self.desc.digest().to_string(), self.codec, dropped.clone())
    }
}

/// What streaming a layer through the rewriter and the compressor left,
/// each part to be judged in turn.
struct Streamed {
    /// The input blob, read to its end, to check its digest.
    reader: BlobReader,
    scanned: std::result::Result<Scanned, StreamError>,
    /// The rewriter's tally; the owners are in `stats`.
    changes: Changes,
    dropped: Dropped,
    /// Reading an entry's data failed (not writing it).
    input_failed: bool,
    newest: u64,
    /// The diff_id of the new tar stream, or why it could not be ended.
    tar_end: io::Result<String>,
    /// The new blob's digest and size, or why it could not be written.
    blob_written: io::Result<(String, u64)>,
    stats: LayerStats,
}

impl Writer<'_> {
    /// Flattens every layer of `img`, in manifest order, each knowing what
    /// the layers below it dropped.
    ///
    /// What a layer drops below changes only a hardlink to a dropped path,
    /// so the layers not done yet are first flattened together on all cores
    /// as if nothing below was dropped. That guess is right for every layer
    /// whose lower layers dropped nothing, the usual case; a layer whose
    /// lower layers did drop something is flattened again, alone, knowing
    /// what. Either way each output is the one the sequential order gives,
    /// and failures are reported in that order too.
    pub(super) fn image_layers(&mut self, img: &Image, diff_ids: &[String]) -> Result<Vec<LayerOut>> {
        let layers = img.manifest.layers();
        let jobs: Vec<Result<Job<'_>>> =
            layers.iter().enumerate().map(|(i, desc)| self.job(img, i, desc, &diff_ids[i])).collect();
        let mut failed = self.flatten_together(&jobs);
        let mut dropped = Dropped::new();
        let mut outs = Vec::with_capacity(jobs.len());
        for job in jobs {
            let job = job?;
            let key = job.key(&dropped);
            let out = match (self.layers.get(&key), failed.remove(&key)) {
                (Some(done), _) => done.clone(),
                (None, Some(e)) => return Err(e),
                (None, None) => {
                    let out = self.rewrite_layer(&job, dropped.clone(), self.cores)?;
                    self.layers.insert(key, out.clone());
                    out
                }
            };
            self.used.insert(out.digest.clone());
            dropped = out.dropped.clone();
            outs.push(out);
        }
        Ok(outs)
    }

    /// Layer `i` of `img` as a job, or the refusal of its media type.
    fn job<'a>(&self, img: &'a Image, i: usize, desc: &'a Descriptor, diff_id: &'a str) -> Result<Job<'a>> {
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
        Ok(Job { img, index: i, desc, diff_id, compression, codec, at })
    }

    /// Flattens, on all cores, every job not done yet with nothing dropped
    /// below it, largest first; keeps what succeeded in `self.layers` and
    /// returns what failed.
    fn flatten_together(&mut self, jobs: &[Result<Job<'_>>]) -> HashMap<LayerKey, Error> {
        let none = Dropped::new();
        let mut todo: Vec<&Job<'_>> = Vec::new();
        for job in jobs.iter().flatten() {
            let key = job.key(&none);
            if !self.layers.contains_key(&key) && !todo.iter().any(|t| t.key(&none) == key) {
                todo.push(job);
            }
        }
        // Largest first, so that no big layer starts last and runs alone.
        todo.sort_by_key(|j| std::cmp::Reverse(j.desc.size()));
        let together = self.cores.min(todo.len()).max(1);
        // Compressing threads per layer: zstd's hold a job's worth of
        // memory each, so the cores are shared out. gzip's hold a block,
        // so each layer gets every core and none idles while the last
        // layer finishes.
        let share = (self.cores / together).max(1);
        let next = AtomicUsize::new(0);
        let this = &*self;
        let done: Vec<(LayerKey, Result<LayerOut>)> = thread::scope(|s| {
            let handles: Vec<_> = (0..together)
                .map(|_| {
                    s.spawn(|| {
                        let mut done = Vec::new();
                        while let Some(job) = todo.get(next.fetch_add(1, Ordering::Relaxed)) {
                            let workers = if job.codec == Codec::Zstd { share } else { this.cores };
                            done.push((job.key(&none), this.rewrite_layer(job, Dropped::new(), workers)));
                        }
                        done
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| match h.join() {
                    Ok(done) => done,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        });
        let mut failed = HashMap::new();
        for (key, result) in done {
            match result {
                Ok(out) => {
                    self.layers.insert(key, out);
                }
                Err(e) => {
                    failed.insert(key, e);
                }
            }
        }
        failed
    }

    /// Streams the layer of `job` into a new blob, checks what the stream
    /// left, and gives the blob its digest's name. A failed layer leaves no
    /// blob file behind.
    fn rewrite_layer(&self, job: &Job<'_>, dropped: Dropped, workers: usize) -> Result<LayerOut> {
        let at = &job.at;
        let mut f = Findings::default();
        let Some(opened) = blob::open(self.layout, job.desc, &job.img.location(), &mut f) else {
            let findings = f.into_vec();
            return Err(invalid(format!("{at}: {}", messages(&findings)), findings));
        };
        let len = opened.len;
        let (temp, file) =
            self.blobs.temp().map_err(|e| write_io(format_args!("{at}: cannot create a blob file"), e))?;
        let streamed = self.stream(job, opened.reader, file, dropped, workers);
        let out = judge(job, streamed, len, f, &temp).and_then(|out| {
            self.blobs.commit(&temp, &out.digest).map_err(|e| write_io(format_args!("{at}: {}", temp.display()), e))?;
            Ok(out)
        });
        if out.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        out
    }

    /// Runs the layer's pipeline: decompressing (in `layer::scan`), tar
    /// parsing and rewriting (here), compressing on `workers` threads and
    /// writing the blob to `file`.
    fn stream(&self, job: &Job<'_>, blob: BlobReader, file: File, dropped: Dropped, workers: usize) -> Streamed {
        let max = self.options.max_examples;
        let progress = &self.options.progress;
        let (tx, rx) = mpsc::sync_channel(CHANNEL_DEPTH);
        let codec = job.codec;
        thread::scope(|s| {
            let writer = s.spawn(move || compress::compress_into(file, codec, rx, workers));
            let rewriter = Rewriter::new(HashingWriter::new(ChunkSender::new(tx)), dropped, self.keys.clone(), max);
            let mut sinks = (rewriter, Collector::new(max));
            let (reader, scanned) =
                layer::scan(blob, job.compression, &mut sinks, progress, Pipeline::Decoder, &self.layout.limits);
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
            let stats = collector.finish();
            Streamed { reader, scanned, changes, dropped, input_failed, newest, tar_end, blob_written, stats }
        })
    }
}

/// What the stream of `job` left, judged in the order that names the
/// cause: the input blob's digest (a corrupt blob explains everything
/// after), the input stream, the writing, the rewriter's refusals, the
/// diff_id. `f` holds what opening the blob found; `len` is its length,
/// `temp` the new blob's temporary file.
fn judge(job: &Job<'_>, s: Streamed, len: u64, mut f: Findings, temp: &Path) -> Result<LayerOut> {
    let at = &job.at;
    if !(blob::OpenBlob { reader: s.reader, len }).check(job.desc, &job.img.location(), &mut f) {
        let findings = f.into_vec();
        return Err(invalid(format!("{at}: {}", messages(&findings)), findings));
    }
    let scanned = match s.scanned {
        Err(e) if !e.from_sink || s.input_failed => return Err(unreadable(job, &e)),
        other => other,
    };
    // A failed write stops the scan too; the writer's error says why.
    let (digest, size) =
        s.blob_written.map_err(|e| write_io(format_args!("{at}: writing the new layer {}", temp.display()), e))?;
    let scanned = match scanned {
        Ok(scanned) => scanned,
        // The rewriter refused an entry, as validate reports it.
        Err(e) if e.rule.is_some() => {
            let rule = e.rule.expect("checked");
            return Err(refusal(rule, layer_location(job.img, job.index), e.to_string(), format!("{at}: {e}")));
        }
        Err(e) => return Err(write_failed(format!("{at}: writing the new layer: {e}"))),
    };
    if scanned.diff_id != job.diff_id {
        let (i, found, expected) = (job.index, &scanned.diff_id, job.diff_id);
        return Err(refusal(
            &DIFF_ID,
            config_location(job.img).with_pointer(format!("/rootfs/diff_ids/{i}")),
            format!("layer {i} decompresses to {found}, but the config says {expected}"),
            format!("{at}: decompresses to {found}, but the config says {expected}"),
        ));
    }
    let diff_id = s.tar_end.map_err(|e| write_io(format_args!("{at}: writing the new layer"), e))?;
    let mut changes = s.changes;
    changes.owners = s.stats.owners;
    changes.other_owners = s.stats.other_owners;
    let (dropped, newest) = (s.dropped, s.newest);
    Ok(LayerOut { media_type: job.codec.media_type(), digest, size, diff_id, changes, dropped, newest })
}

/// The input stream of `job` stopped: a finding as validate reports it,
/// under LIMIT-EXCEEDED for a limit, else LAYER-UNREADABLE.
fn unreadable(job: &Job<'_>, e: &StreamError) -> Error {
    let (rule, what) = match (&e.limit, e.rule) {
        (Some(_), _) => (&LIMIT_EXCEEDED, "layer not read to its end"),
        (None, Some(rule)) => (rule, "layer cannot be read to its end"),
        (None, None) => (&LAYER_UNREADABLE, "layer cannot be read to its end"),
    };
    let message = format!("{}: cannot be read to its end: {e}", job.at);
    refusal(rule, layer_location(job.img, job.index), format!("{what}: {e}"), message)
}
