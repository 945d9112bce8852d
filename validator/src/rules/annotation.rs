//! The id-flattening annotation on one image: valid values, placement and
//! agreement (spec section "The annotation").

use std::collections::HashMap;

use super::{
    ANNOTATION_ABSENT, ANNOTATION_CONFLICT, ANNOTATION_LABEL_MISSING, ANNOTATION_MANIFEST_MISSING, ANNOTATION_VALUE,
};
use crate::annotation::{Declaration, Declarations, KEY, Value};
use crate::report::{Findings, Location};

/// One annotation map of an image and where it sits.
pub struct Source<'a> {
    /// `manifest`, `config-label` or `index-descriptor`.
    pub place: &'static str,
    pub file: String,
    /// JSON pointer of the map inside `file`.
    pub pointer: String,
    /// `None`: the map is absent. (A config that could not be read is not
    /// a source at all.)
    pub map: Option<&'a HashMap<String, String>>,
}

/// Checks the declarations of one image. `sources` holds the manifest
/// first, then the config (if it was read), then index descriptors.
pub fn check(sources: &[Source<'_>], image: &Location, f: &mut Findings) -> Declarations {
    let at = |s: &Source<'_>| Location {
        file: Some(s.file.clone()),
        pointer: Some(format!("{}/{KEY}", s.pointer)),
        ..image.clone()
    };
    let mut declared = Vec::new();
    for s in sources {
        if let Some(value) = s.map.and_then(|m| m.get(KEY)) {
            if Value::parse(value).is_none() {
                f.push(
                    &ANNOTATION_VALUE,
                    at(s),
                    format!("{KEY} is {value:?}; the only values are \"flattened\", \"allowed\" and \"caution\" (consumers treat this image as \"caution\")"),
                );
            }
            declared.push(Declaration { place: s.place, file: s.file.clone(), value: value.clone() });
        }
    }
    let declarations = Declarations::new(declared);
    let manifest = &sources[0];
    let in_manifest = declarations.declared.iter().any(|d| d.place == "manifest");
    let mut values: Vec<&str> = declarations.declared.iter().map(|d| d.value.as_str()).collect();
    values.sort_unstable();
    values.dedup();
    if values.len() > 1 {
        let listing: Vec<String> =
            declarations.declared.iter().map(|d| format!("{} {:?} in {}", d.place, d.value, d.file)).collect();
        f.push(
            &ANNOTATION_CONFLICT,
            at(manifest),
            format!(
                "{KEY} is declared with different values: {}; consumers use the most cautious, \"{}\"",
                listing.join(", "),
                declarations.effective.as_str()
            ),
        );
    }
    if declarations.declared.is_empty() {
        f.push(
            &ANNOTATION_ABSENT,
            at(manifest),
            format!("no {KEY} annotation; consumers treat the image as \"allowed\""),
        );
    } else if !in_manifest {
        f.push(
            &ANNOTATION_MANIFEST_MISSING,
            at(manifest),
            format!("{KEY} is declared elsewhere but not in the image manifest's annotations"),
        );
    } else if let Some(config) = sources.iter().find(|s| s.place == "config-label") {
        if config.map.is_none_or(|m| !m.contains_key(KEY)) {
            f.push(
                &ANNOTATION_LABEL_MISSING,
                at(config),
                format!("the manifest declares {KEY} but config.Labels does not repeat it; runtime bundles made from this image lose the value"),
            );
        }
    }
    declarations
}
