//! Flattening one image: each of its layers, then its config and
//! manifest rewritten around the new layers.

use oci_spec::image::ImageConfiguration;
use serde_json::{Value, json};

use super::documents::{
    HISTORY_CREATED_BY, OCI_CONFIG, OCI_MANIFEST, declare, drop_base, history_comment, retarget, rfc3339, undeclare,
};
use super::errors::refusal;
use super::report::{Changes, ImageReport, LayerReport};
use super::writer::{Writer, config_location};
use crate::error::Result;
use crate::image::Image;
use crate::layout::blob_path;
use crate::rules::{DIFF_ID, DOCUMENT_INVALID};

/// The layers of one image, flattened.
struct Layers {
    reports: Vec<LayerReport>,
    /// Every layer's changes together.
    total: Changes,
    /// The newest mtime of an entry written, in any layer.
    newest: u64,
}

impl Writer<'_> {
    /// Flattens one image; returns its report and new manifest digest and size.
    pub(super) fn image(&mut self, img: &Image) -> Result<(ImageReport, (String, u64))> {
        let at = format!("image {}", img.name);
        let mut manifest = self.document(img.descriptor(), &format!("{at}: manifest"), &img.location())?;
        let mut config = self.document(img.manifest.config(), &format!("{at}: config"), &img.location())?;
        let parsed = img.config.as_ref().ok_or_else(|| {
            let why = "the config could not be read";
            refusal(&DOCUMENT_INVALID, config_location(img), why.into(), format!("{at}: {why}"))
        })?;
        let diff_ids = checked_diff_ids(img, parsed, &at)?;
        let layers = self.layers(img, diff_ids)?;
        let user = parsed.config().as_ref().and_then(|c| c.user().clone());
        let reset = !crate::rules::producer::root_user(user.as_deref());
        let comment = history_comment(&layers.total, reset.then_some(user.as_deref().unwrap_or_default()));
        let Some(mut base_dropped) = rewrite_config(&mut config, &layers, reset, comment) else {
            let why = "not a JSON object";
            let file = blob_path(img.manifest.config().digest());
            let message = format!("{at}: config {file} is not a JSON object");
            return Err(refusal(&DOCUMENT_INVALID, config_location(img), why.into(), message));
        };
        let (config_digest, config_size) = self.write_json(&config, config_location(img))?;
        for key in rewrite_manifest(&mut manifest, &layers.reports, &config_digest, config_size) {
            if !base_dropped.contains(&key) {
                base_dropped.push(key);
            }
        }
        let re = self.resubject(&mut manifest, img.descriptor().digest().as_ref());
        let (manifest_digest, manifest_size) = self.write_json(&manifest, img.location())?;
        if let Some(r) = re {
            self.record(r, &manifest_digest);
        }
        let report = ImageReport {
            name: img.name.clone(),
            manifest: img.descriptor().digest().to_string(),
            output_manifest: manifest_digest.clone(),
            output_config: config_digest,
            config_user: user,
            config_user_reset: reset,
            base_annotations_dropped: base_dropped,
            layers: layers.reports,
            total: layers.total,
        };
        Ok((report, (manifest_digest, manifest_size)))
    }

    /// Flattens every layer of `img` and tallies what changed.
    fn layers(&mut self, img: &Image, diff_ids: &[String]) -> Result<Layers> {
        let max = self.options.max_examples;
        let mut done = Layers { reports: Vec::new(), total: Changes::default(), newest: 0 };
        let outs = self.image_layers(img, diff_ids)?;
        for ((i, desc), out) in img.manifest.layers().iter().enumerate().zip(outs) {
            done.newest = done.newest.max(out.newest);
            done.total.merge(&out.changes, max);
            done.reports.push(LayerReport {
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
        Ok(done)
    }
}

/// The config's diff_ids, one per layer (OCI-DIFF-ID), or a refusal.
fn checked_diff_ids<'c>(img: &Image, config: &'c ImageConfiguration, at: &str) -> Result<&'c [String]> {
    let diff_ids = config.rootfs().diff_ids();
    let layers = img.manifest.layers().len();
    if diff_ids.len() != layers {
        return Err(refusal(
            &DIFF_ID,
            config_location(img).with_pointer("/rootfs/diff_ids"),
            format!("config lists {} diff_ids but the manifest has {layers} layers", diff_ids.len()),
            format!(
                "{at}: config {} lists {} diff_ids for {layers} layers",
                blob_path(img.manifest.config().digest()),
                diff_ids.len()
            ),
        ));
    }
    Ok(diff_ids)
}

/// Makes `config` describe the flattened layers: their diff_ids, `User`
/// reset when `reset`, the declaration in the Labels, and a history entry
/// with `comment`. Returns the base Labels removed, or `None` when
/// `config` is not an object.
fn rewrite_config(config: &mut Value, layers: &Layers, reset: bool, comment: String) -> Option<Vec<String>> {
    let obj = config.as_object_mut()?;
    let rootfs = obj.entry("rootfs").or_insert_with(|| json!({}));
    if !rootfs.is_object() {
        *rootfs = json!({});
    }
    rootfs["type"] = json!("layers");
    rootfs["diff_ids"] = json!(layers.reports.iter().map(|l| l.output_diff_id.clone()).collect::<Vec<_>>());
    let c = obj.entry("config").or_insert_with(|| json!({}));
    if !c.is_object() {
        *c = json!({});
    }
    if reset {
        c["User"] = json!(""); // PRODUCER-CONFIG-USER
    }
    declare(c, "Labels"); // ANNOTATION-LABEL
    let base_dropped = drop_base(c.get_mut("Labels"));
    // A `created` that depends on the input only, so the same input
    // gives the same bytes: the input's own, else the newest mtime of
    // the layers (tools such as umoci need one).
    let created = match obj.get("created").and_then(Value::as_str) {
        Some(c) => c.to_string(),
        None => rfc3339(layers.newest),
    };
    let history = obj.entry("history").or_insert_with(|| json!([]));
    if !history.is_array() {
        *history = json!([]);
    }
    if let Some(h) = history.as_array_mut() {
        h.push(json!({"created": created, "created_by": HISTORY_CREATED_BY, "comment": comment, "empty_layer": true}));
    }
    Some(base_dropped)
}

/// Makes `manifest` an OCI manifest of the new config and `layers`, with
/// the declaration in its annotations. Returns the base annotations removed.
fn rewrite_manifest(
    manifest: &mut Value,
    layers: &[LayerReport],
    config_digest: &str,
    config_size: u64,
) -> Vec<String> {
    let old_config = manifest.get("config").cloned().unwrap_or(Value::Null);
    manifest["mediaType"] = json!(OCI_MANIFEST);
    manifest["config"] = retarget(&old_config, OCI_CONFIG, config_digest, config_size);
    undeclare(&mut manifest["config"]);
    let old_layers = manifest.get("layers").and_then(Value::as_array).cloned().unwrap_or_default();
    let new_layers: Vec<Value> = layers
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
    declare(manifest, "annotations"); // ANNOTATION-MANIFEST
    drop_base(manifest.get_mut("annotations"))
}
