//! Index, manifest and config documents (OCI-DOCUMENTS).

use oci_spec::image::{Descriptor, MediaType};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{DOCUMENT_AMBIGUOUS, DOCUMENT_INVALID, MEDIA_TYPE_MISMATCH, SUBJECT_MISMATCH, SUBJECT_MISSING};
use crate::diagnostic::{Findings, Location};
use crate::layout::{Layout, OpenError, blob_path, read_bounded};

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

/// OCI-SUBJECT: a `subject` (at `at`) naming a blob of the layout has its
/// size and declared media type; one naming a blob the layout lacks is a
/// note. Other failures to open the blob are reported where it is read.
pub fn check_subject(layout: &Layout, subject: &Descriptor, at: &Location, f: &mut Findings) {
    let digest = subject.digest();
    let member = match layout.open(&blob_path(digest)) {
        Ok(m) => m,
        Err(OpenError::Missing) => {
            let message =
                format!("subject {digest} is not in the layout; the manifest it names may be stored elsewhere");
            f.push(&SUBJECT_MISSING, at.clone(), message);
            return;
        }
        Err(_) => return,
    };
    if member.len != subject.size() {
        let message = format!("subject says {} bytes, but {digest} in the layout has {}", subject.size(), member.len);
        f.push(&SUBJECT_MISMATCH, at.clone().with_pointer(format!("{}/size", pointer(at))), message);
        return;
    }
    let Ok(bytes) = read_bounded(member.reader, member.len, layout.limits.max_json_bytes) else { return };
    // A blob that declares no media type cannot contradict the subject.
    let Ok(Typed { media_type: Some(declared) }) = serde_json::from_slice::<Typed>(&bytes) else { return };
    if MediaType::from(declared.as_str()) != *subject.media_type() {
        let message = format!("subject says `{}`, but {digest} declares `{declared}`", subject.media_type());
        f.push(&SUBJECT_MISMATCH, at.clone().with_pointer(format!("{}/mediaType", pointer(at))), message);
    }
}

fn pointer(at: &Location) -> &str {
    at.pointer.as_deref().unwrap_or("")
}
