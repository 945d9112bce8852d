//! Rebuilding the indexes: flattened images get their new descriptors,
//! nested indexes are rebuilt once each, artifacts are copied (or
//! re-pointed at a flattened subject), everything else is kept.

use std::collections::HashMap;

use oci_spec::image::Descriptor;
use serde_json::{Value, json};

use super::documents::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, declare, retarget, undeclare};
use super::errors::refusal;
use super::writer::Writer;
use crate::annotation::KEYS;
use crate::diagnostic::Location;
use crate::error::Result;
use crate::image::REF_NAME;
use crate::layout::blob_path;
use crate::rules::DOCUMENT_INVALID;

/// The new manifest (digest and size) of each flattened image, by where
/// the walk found its descriptor: index file and JSON pointer.
pub(super) type Flattened = HashMap<(String, String), (String, u64)>;

impl Writer<'_> {
    /// Rebuilds the index `doc` (found at `file`): flattened images get
    /// their new descriptors, nested indexes are rebuilt, everything else
    /// is kept. At the top, `selected` keeps only the image of that name.
    pub(super) fn index(
        &mut self,
        doc: &mut Value,
        file: &str,
        flattened: &Flattened,
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
            new.push(self.index_entry(d, file, &format!("/manifests/{i}"), flattened)?);
        }
        doc["manifests"] = Value::Array(new);
        doc["mediaType"] = json!(OCI_INDEX);
        Ok(())
    }

    /// The descriptor `d`, found at `pointer` in `file`, in the new index.
    fn index_entry(&mut self, d: Value, file: &str, pointer: &str, flattened: &Flattened) -> Result<Value> {
        if let Some((digest, size)) = flattened.get(&(file.to_string(), pointer.to_string())) {
            let mut nd = retarget(&d, OCI_MANIFEST, digest, *size);
            declare(&mut nd, "annotations"); // ANNOTATION-INDEX
            return Ok(nd);
        }
        let desc: Descriptor = serde_json::from_value(d.clone()).map_err(|e| {
            let at = Location::file(file).with_pointer(pointer);
            refusal(&DOCUMENT_INVALID, at, format!("descriptor: {e}"), format!("{file}: descriptor {pointer}: {e}"))
        })?;
        match d.get("mediaType").and_then(Value::as_str).unwrap_or_default() {
            OCI_INDEX | DOCKER_LIST => {
                let (digest, size) = self.nested_index(&desc, file, pointer, flattened)?;
                let mut nd = retarget(&d, OCI_INDEX, &digest, size);
                // A value here covers every image below, all flattened
                // now (ANNOTATION-CONSISTENT).
                if KEYS.iter().any(|k| nd.get("annotations").and_then(|a| a.get(k)).is_some()) {
                    declare(&mut nd, "annotations");
                }
                Ok(nd)
            }
            OCI_MANIFEST | DOCKER_MANIFEST => {
                // An artifact: its config and layers come with the
                // walk's opaque blobs, the manifest itself here.
                self.artifact(d, &desc, &Location::file(file).with_pointer(pointer))
            }
            _ => Ok(d),
        }
    }

    /// Rebuilds the nested index `desc` points at (from `pointer` in
    /// `file`); returns its new digest and size. An index listed many times
    /// is rebuilt once.
    fn nested_index(
        &mut self,
        desc: &Descriptor,
        file: &str,
        pointer: &str,
        flattened: &Flattened,
    ) -> Result<(String, u64)> {
        if let Some(done) = self.indexes_done.get(&desc.digest().to_string()) {
            return Ok(done.clone());
        }
        let here = Location::file(file).with_pointer(pointer);
        let mut child = self.document(desc, &format!("{file}: index"), &here)?;
        let child_file = blob_path(desc.digest());
        self.index(&mut child, &child_file, flattened, None)?;
        child["mediaType"] = json!(OCI_INDEX);
        let re = self.resubject(&mut child, desc.digest().as_ref());
        let done = self.write_json(&child, Location::file(child_file))?;
        if let Some(r) = re {
            self.record(r, &done.0);
        }
        self.indexes_done.insert(desc.digest().to_string(), done.clone());
        Ok(done)
    }
}
