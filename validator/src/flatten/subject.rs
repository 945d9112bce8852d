//! Referrers kept attached (OCI-SUBJECT): a kept manifest or index whose
//! `subject` names a manifest this run flattened is written anew with its
//! `subject` pointing at the flattened manifest. The artifact stays
//! discoverable from the image it describes; a signature inside it still
//! covers the old manifest, so it no longer verifies against the new one,
//! which is the truth, and the report lists every such document.

use std::collections::HashMap;

use oci_spec::image::Descriptor;
use serde_json::Value;

use super::documents::{OCI_MANIFEST, retarget};
use super::report::Resubjected;
use super::writer::Writer;
use crate::diagnostic::Location;
use crate::error::Result;
use crate::image::Image;

impl Writer<'_> {
    /// Points the `subject` of `doc` (a manifest or index, input digest
    /// `digest`) at the flattened manifest, if this run flattened the one
    /// it names. `output` is filled in by `record` once `doc` is written.
    pub(super) fn resubject(&self, doc: &mut Value, digest: &str) -> Option<Resubjected> {
        let subject = doc.get("subject")?;
        let old = subject.get("digest")?.as_str()?.to_string();
        let (new, size) = self.renamed.get(&old)?;
        let artifact_type = doc
            .get("artifactType")
            .or_else(|| doc.get("config").and_then(|c| c.get("mediaType")))
            .and_then(Value::as_str)
            .map(str::to_string);
        doc["subject"] = retarget(subject, OCI_MANIFEST, new, *size);
        Some(Resubjected {
            digest: digest.to_string(),
            output_digest: String::new(),
            artifact_type,
            subject: old,
            output_subject: new.clone(),
        })
    }

    /// Records a document re-pointed by `resubject`, now written as `output`.
    pub(super) fn record(&mut self, mut r: Resubjected, output: &str) {
        r.output_digest = output.to_string();
        self.resubjected.push(r);
    }

    /// The index entry `d` for the artifact manifest `desc`, found at `at`:
    /// copied unchanged, or written anew when its subject was flattened.
    pub(super) fn artifact(&mut self, d: Value, desc: &Descriptor, at: &Location) -> Result<Value> {
        let digest = desc.digest().to_string();
        if let Some((new, size)) = self.artifacts_done.get(&digest) {
            return Ok(retarget(&d, desc.media_type().as_ref(), new, *size));
        }
        // Nothing flattened, nothing to re-point: no need to read it twice.
        let doc =
            if self.renamed.is_empty() { None } else { self.document_if_present(desc, "artifact manifest", at, true)? };
        let Some((doc, r)) = doc.and_then(|mut doc| self.resubject(&mut doc, &digest).map(|r| (doc, r))) else {
            self.copy(desc, at)?;
            return Ok(d);
        };
        let (new, size) = self.write_json(&doc, at.clone())?;
        self.record(r, &new);
        self.artifacts_done.insert(digest, (new.clone(), size));
        Ok(retarget(&d, desc.media_type().as_ref(), &new, size))
    }
}

/// The order to flatten `images` in: an image whose `subject` names
/// another image's manifest comes after it, so its subject can be
/// re-pointed; otherwise the walk's order.
pub(super) fn subject_order(images: &[Image]) -> Vec<usize> {
    let by_manifest: HashMap<String, usize> =
        images.iter().enumerate().map(|(i, img)| (img.descriptor().digest().to_string(), i)).collect();
    // The image each image must wait for, if any.
    let after: Vec<Option<usize>> = images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            let s = img.manifest.subject().as_ref()?.digest().to_string();
            by_manifest.get(&s).copied().filter(|&j| j != i)
        })
        .collect();
    let mut order = Vec::with_capacity(images.len());
    let mut placed = vec![false; images.len()];
    while order.len() < images.len() {
        let before = order.len();
        for i in 0..images.len() {
            let waits = after[i].is_some_and(|j| !placed[j]);
            if !placed[i] && !waits {
                placed[i] = true;
                order.push(i);
            }
        }
        if order.len() == before {
            // Only a digest cycle could stop progress; keep the walk's order.
            order.extend((0..images.len()).filter(|&i| !placed[i]));
        }
    }
    order
}
