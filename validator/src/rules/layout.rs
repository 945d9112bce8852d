//! The layout's own files (OCI-LAYOUT).

use oci_spec::image::ImageIndex;
use serde::Deserialize;

use super::{LAYOUT_FILE, LAYOUT_INDEX, LIMIT_EXCEEDED};
use crate::diagnostic::{Findings, Location};
use crate::layout::{Layout, OpenError, ReadError};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciLayout {
    image_layout_version: serde_json::Value,
}

/// Checks `oci-layout`. Findings only: a wrong layout file does not stop
/// the rest of the image from being checked.
pub fn check_oci_layout(layout: &Layout, f: &mut Findings) {
    let loc = Location::file("oci-layout");
    let bytes = match layout.read_small("oci-layout") {
        Ok(b) => b,
        Err(e) => {
            f.push(&LAYOUT_FILE, loc, format!("oci-layout {}", describe(&e)));
            return;
        }
    };
    match serde_json::from_slice::<OciLayout>(&bytes) {
        Err(e) => f.push(&LAYOUT_FILE, loc, format!("oci-layout is not valid: {e}")),
        Ok(l) => match l.image_layout_version.as_str() {
            Some("1.0.0") => {}
            _ => f.push(
                &LAYOUT_FILE,
                loc.with_pointer("/imageLayoutVersion"),
                format!("imageLayoutVersion is {}, this tool reads layout version \"1.0.0\"", l.image_layout_version),
            ),
        },
    }
}

/// Reads and parses `index.json`; `None` (with a finding) when unusable.
/// The bytes come back too, for what other JSON readers make of them.
pub fn read_index(layout: &Layout, f: &mut Findings) -> Option<(ImageIndex, Vec<u8>)> {
    let loc = Location::file("index.json");
    match layout.read_small("index.json") {
        Ok(bytes) => match super::document::well_formed(&bytes).and_then(|()| serde_json::from_slice(&bytes)) {
            Ok(index) => {
                super::document::check_readers(&bytes, &loc, f);
                Some((index, bytes))
            }
            Err(e) => {
                f.push(&LAYOUT_INDEX, loc, format!("index.json is not a valid image index: {e}"));
                None
            }
        },
        Err(e @ ReadError::TooLarge { .. }) => {
            f.push(&LIMIT_EXCEEDED, loc, format!("index.json {}", describe(&e)));
            None
        }
        Err(e) => {
            f.push(&LAYOUT_INDEX, loc, format!("index.json {}", describe(&e)));
            None
        }
    }
}

fn describe(e: &ReadError) -> String {
    match e {
        ReadError::Open(OpenError::Missing) => "is missing".into(),
        other => other.to_string(),
    }
}
