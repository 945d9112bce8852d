//! The id-flattening annotation on one image: valid values, keys,
//! placement and agreement (spec section "The annotation").

use std::collections::HashMap;

use super::{
    ANNOTATION_ABSENT, ANNOTATION_CONFLICT, ANNOTATION_DOCKER_LABEL_MISSING, ANNOTATION_EMPTY,
    ANNOTATION_LABEL_MISSING, ANNOTATION_MANIFEST_MISSING, ANNOTATION_MISPLACED, ANNOTATION_RESERVED_KEY,
    ANNOTATION_VALUE,
};
use crate::annotation::{Declaration, Declarations, KEY, KEYS, RESERVED_KEY, Value};
use crate::diagnostic::{Findings, Location};

/// One annotation map of an image and where it sits.
pub struct Source<'a> {
    /// `manifest`, `config-label` or `index-descriptor`.
    pub place: &'static str,
    /// Layout-relative file holding the map.
    pub file: String,
    /// JSON pointer of the map inside `file`.
    pub pointer: String,
    /// `None`: the map is absent. (A config that could not be read is not
    /// a source at all.)
    pub map: Option<&'a HashMap<String, String>>,
}

/// The kind of manifest the declarations belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manifest {
    /// An OCI image manifest, which has `annotations` of its own.
    Oci,
    /// Docker schema 2: no `annotations` of its own, so the config Labels
    /// carry the declaration (ANNOTATION-DOCKER).
    Docker,
}

/// JSON pointer of `key` in the map at `pointer` (`~` and `/` escaped).
fn pointer_to(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// Checks the declarations of one image. `sources` holds the manifest
/// first, then the config (if it was read), then index descriptors.
pub fn check(sources: &[Source<'_>], manifest: Manifest, image: &Location, f: &mut Findings) -> Declarations {
    let at = |s: &Source<'_>, key: &str| Location {
        file: Some(s.file.clone()),
        pointer: Some(pointer_to(&s.pointer, key)),
        ..image.clone()
    };
    let mut declared = Vec::new();
    for s in sources {
        for key in KEYS {
            let Some(value) = s.map.and_then(|m| m.get(key)) else { continue };
            if key == RESERVED_KEY {
                f.push(
                    &ANNOTATION_RESERVED_KEY,
                    at(s, key),
                    format!("{key} is reserved for image-spec until it adopts the key; declare {KEY} instead (consumers read both)"),
                );
            }
            if value.is_empty() {
                f.push(&ANNOTATION_EMPTY, at(s, key), format!("{key} is empty here, which counts as absent"));
            } else if Value::parse(value).is_none() {
                f.push(
                    &ANNOTATION_VALUE,
                    at(s, key),
                    format!("{key} is {value:?}; the only values are \"flattened\", \"allowed\" and \"caution\" (consumers treat this image as \"caution\")"),
                );
            }
            declared.push(Declaration { place: s.place, key, file: s.file.clone(), value: value.clone() });
        }
    }
    let declarations = Declarations::new(declared);
    let present: Vec<&Declaration> = declarations.declared.iter().filter(|d| !d.value.is_empty()).collect();
    let primary = &sources[0];
    let mut values: Vec<&str> = present.iter().map(|d| d.value.as_str()).collect();
    values.sort_unstable();
    values.dedup();
    if values.len() > 1 {
        let listing: Vec<String> =
            present.iter().map(|d| format!("{} {} {:?} in {}", d.place_words(), d.key, d.value, d.file)).collect();
        f.push(
            &ANNOTATION_CONFLICT,
            at(primary, KEY),
            format!(
                "id-flattening is declared with different values: {}; consumers use the most cautious, \"{}\"",
                listing.join(", "),
                declarations.effective.as_str()
            ),
        );
    }
    let declared_at = |place: &str| present.iter().any(|d| d.place == place);
    let config = sources.iter().find(|s| s.place == "config-label");
    if present.is_empty() {
        f.push(
            &ANNOTATION_ABSENT,
            at(primary, KEY),
            format!("no {KEY} annotation; consumers treat the image as \"allowed\""),
        );
    } else if manifest == Manifest::Docker {
        if let Some(config) = config.filter(|_| !declared_at("config-label")) {
            f.push(
                &ANNOTATION_DOCKER_LABEL_MISSING,
                at(config, KEY),
                format!("a Docker schema 2 manifest has no annotations of its own: declare {KEY} in config.Labels"),
            );
        }
    } else if !declared_at("manifest") {
        f.push(
            &ANNOTATION_MANIFEST_MISSING,
            at(primary, KEY),
            format!("{KEY} is declared elsewhere but not in the image manifest's annotations"),
        );
    } else if let Some(config) = config.filter(|_| !declared_at("config-label")) {
        f.push(
            &ANNOTATION_LABEL_MISSING,
            at(config, KEY),
            format!("the manifest declares {KEY} but config.Labels does not repeat it; runtime bundles made from this image lose the value"),
        );
    }
    declarations
}

/// ANNOTATION-PLACES: the key means nothing on config or layer
/// descriptors or in an index's own annotations; say so where it appears.
pub fn check_misplaced(map: Option<&HashMap<String, String>>, what: &str, at: &Location, f: &mut Findings) {
    for key in KEYS {
        if map.is_some_and(|m| m.contains_key(key)) {
            let pointer = at.pointer.as_deref().unwrap_or("");
            f.push(
                &ANNOTATION_MISPLACED,
                Location { pointer: Some(pointer_to(pointer, key)), ..at.clone() },
                format!("{key} on {what} has no meaning; consumers ignore it there (declare it on the manifest and in config.Labels)"),
            );
        }
    }
}
