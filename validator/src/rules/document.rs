//! Index, manifest and config documents (OCI-DOCUMENTS).

use oci_spec::image::MediaType;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{DOCUMENT_INVALID, MEDIA_TYPE_MISMATCH};
use crate::report::{Findings, Location};

/// Parses `bytes` as `what` (for messages: "image manifest", ...). The
/// `oci-spec` types reject documents that break the image-spec's structure.
pub fn parse<T: DeserializeOwned>(bytes: &[u8], what: &str, loc: &Location, f: &mut Findings) -> Option<T> {
    match well_formed(bytes).and_then(|()| serde_json::from_slice::<T>(bytes)) {
        Ok(doc) => Some(doc),
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
