//! Index, manifest and config documents (OCI-DOCUMENTS).

use oci_spec::image::MediaType;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{DOCUMENT_AMBIGUOUS, DOCUMENT_INVALID, MEDIA_TYPE_MISMATCH};
use crate::diagnostic::{Findings, Location};

/// Parses `bytes` as `what` (for messages: "image manifest", ...). The
/// `oci-spec` types reject documents that break the image-spec's structure;
/// members that Go's readers take differently are reported too.
pub fn parse<T: DeserializeOwned>(bytes: &[u8], what: &str, loc: &Location, f: &mut Findings) -> Option<T> {
    match well_formed(bytes).and_then(|()| serde_json::from_slice::<T>(bytes)) {
        Ok(doc) => {
            check_readers(bytes, loc, f);
            Some(doc)
        }
        Err(e) => {
            f.push(&DOCUMENT_INVALID, loc.clone(), format!("not a valid {what}: {e}"));
            None
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Typed {
    media_type: Option<String>,
}

/// A document's own `mediaType`, when present, must be the descriptor's.
/// Checked before parsing, so a manifest mislabelled as an index is
/// reported as such rather than as a broken index. `false` on mismatch.
pub fn check_media_type(bytes: &[u8], descriptor: &MediaType, loc: &Location, f: &mut Findings) -> bool {
    let Ok(Typed { media_type: Some(inside) }) = serde_json::from_slice::<Typed>(bytes) else { return true };
    if MediaType::from(inside.as_str()) == *descriptor {
        return true;
    }
    f.push(
        &MEDIA_TYPE_MISMATCH,
        loc.clone().with_pointer("/mediaType"),
        format!("document says `{inside}` but its descriptor says `{descriptor}`"),
    );
    false
}

/// The typed views skip members they do not know without looking inside,
/// so a document nested 10,000 deep in such a member would pass them while
/// other tools (flatten among them, through `serde_json::Value`) stop at
/// serde_json's recursion limit. Parse it whole once to agree.
pub fn well_formed(bytes: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_slice::<serde_json::Value>(bytes).map(drop)
}

/// PRODUCER-UNAMBIGUOUS: members that Go's encoding/json (skopeo, umoci,
/// podman, containerd) reads differently from serde: repeated, or differing
/// only in case from each other or from a member the image-spec defines.
/// Returns whether there were any.
pub fn check_readers(bytes: &[u8], loc: &Location, f: &mut Findings) -> bool {
    let found = crate::json::ambiguities(bytes).unwrap_or_default();
    for a in &found {
        let at = if a.pointer.is_empty() { loc.clone() } else { loc.clone().with_pointer(a.pointer.clone()) };
        f.push(&DOCUMENT_AMBIGUOUS, at, a.message.clone());
    }
    !found.is_empty()
}
