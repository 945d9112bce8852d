//! What the stores that read other formats make for themselves: the
//! layout's own files (`oci-layout`, `index.json`) and the documents they
//! write, held in memory and served by name.

use std::collections::HashMap;
use std::io;

use serde_json::{Value, json};

use super::Member;
use crate::digest::{Digest, sha256_of};

/// Files made in memory, by layout-relative name.
#[derive(Default)]
pub(super) struct Made(HashMap<String, Vec<u8>>);

impl Made {
    /// `oci-layout`, and an `index.json` listing `manifests`.
    pub(super) fn layout(manifests: Vec<Value>) -> Made {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        let mut made = Made::default();
        made.0.insert("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
        made.0.insert("index.json".to_string(), serde_json::to_vec(&index).expect("a JSON value serialises"));
        made
    }

    /// Adds a file.
    pub(super) fn insert(&mut self, name: String, bytes: Vec<u8>) {
        self.0.insert(name, bytes);
    }

    /// The file of that name, if it was made here.
    pub(super) fn open(&self, name: &str) -> Option<Member> {
        let bytes = self.0.get(name)?;
        Some(Member { len: bytes.len() as u64, reader: Box::new(io::Cursor::new(bytes.clone())) })
    }
}

/// The sha256 digest of `bytes`.
pub(super) fn digest_of(bytes: &[u8]) -> Digest {
    sha256_of(bytes).parse().expect("a sha256 digest is valid")
}

/// A config's `rootfs.diff_ids`, or none when it has no readable list
/// (the validator reports that when it reads the config).
pub(super) fn diff_ids(config: &[u8]) -> Vec<String> {
    serde_json::from_slice::<Value>(config)
        .ok()
        .and_then(|c| c.pointer("/rootfs/diff_ids").cloned())
        .and_then(|d| serde_json::from_value(d).ok())
        .unwrap_or_default()
}
