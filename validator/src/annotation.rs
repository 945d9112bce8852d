//! The id-flattening annotation: its keys, its values and how a consumer
//! resolves what an image declares (spec section "The annotation").

use serde::Serialize;

/// The key producers write until image-spec adopts one (ANNOTATION-KEY):
/// a namespace of the working group the idea comes from.
pub const KEY: &str = "io.github.supercontainers.id-flattening";

/// The key proposed to image-spec. Read wherever [`KEY`] is read, as the
/// same annotation; producers must not write it before image-spec defines
/// it (ANNOTATION-RESERVED-KEY).
pub const RESERVED_KEY: &str = "org.opencontainers.image.id-flattening";

/// Both keys, in the order they are read.
pub const KEYS: [&str; 2] = [KEY, RESERVED_KEY];

/// A valid value, ordered from least to most cautious so that `max` picks
/// the value a consumer must honour (ANNOTATION-CONFLICT-CAUTIOUS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Value {
    /// The IDs in the layers carry no information (the producer rules of
    /// "Flattened images" apply).
    Flattened,
    /// The IDs carry information the image does not depend on; also what
    /// an image without the annotation means.
    Allowed,
    /// The image depends on its IDs: a single-ID consumer asks for consent
    /// before flattening it.
    Caution,
}

impl Value {
    /// Exact, case-sensitive match (ANNOTATION-VALUES).
    pub fn parse(s: &str) -> Option<Value> {
        match s {
            "flattened" => Some(Value::Flattened),
            "allowed" => Some(Value::Allowed),
            "caution" => Some(Value::Caution),
            _ => None,
        }
    }

    /// The value as written in the annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            Value::Flattened => "flattened",
            Value::Allowed => "allowed",
            Value::Caution => "caution",
        }
    }
}

/// One place an image declares the value, with the raw string found there.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Declaration {
    /// `manifest`, `config-label` or `index-descriptor`.
    pub place: &'static str,
    /// Which of [`KEYS`] it was found under.
    pub key: &'static str,
    /// Layout-relative file holding the declaration.
    pub file: String,
    /// The string found, as written (it may be empty or no valid value).
    pub value: String,
}

/// Everything an image declares, and what a consumer makes of it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Declarations {
    /// Every place that holds the annotation.
    pub declared: Vec<Declaration>,
    /// The value a consumer acts on.
    pub effective: Value,
}

impl Declaration {
    /// The place in words for a person: `manifest`, `config Label`,
    /// `index descriptor` (the JSON keeps the identifiers).
    pub fn place_words(&self) -> &'static str {
        place_words(self.place)
    }
}

/// `place` (`manifest`, `config-label`, `index-descriptor`) in words.
pub fn place_words(place: &str) -> &'static str {
    match place {
        "config-label" => "config Label",
        "index-descriptor" => "index descriptor",
        "manifest" => "manifest",
        _ => "another place",
    }
}

impl Declarations {
    /// Resolves the effective value of what `declared` holds.
    pub fn new(declared: Vec<Declaration>) -> Self {
        let effective = resolve(declared.iter().map(|d| d.value.as_str()));
        Declarations { declared, effective }
    }
}

/// What a consumer acts on, given every raw value the image declares:
/// an empty value is no declaration (ANNOTATION-EMPTY), absent means
/// `allowed` (ANNOTATION-DEFAULT), an unknown value counts as `caution`
/// (ANNOTATION-UNKNOWN), and the most cautious value wins
/// (ANNOTATION-CONFLICT-CAUTIOUS).
pub fn resolve<'a>(values: impl IntoIterator<Item = &'a str>) -> Value {
    values
        .into_iter()
        .filter(|v| !v.is_empty())
        .map(|v| Value::parse(v).unwrap_or(Value::Caution))
        .max()
        .unwrap_or(Value::Allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_follows_the_spec() {
        assert_eq!(resolve([]), Value::Allowed);
        assert_eq!(resolve(["flattened"]), Value::Flattened);
        assert_eq!(resolve(["flattened", "allowed"]), Value::Allowed);
        assert_eq!(resolve(["allowed", "caution", "flattened"]), Value::Caution);
        assert_eq!(resolve([""]), Value::Allowed);
        assert_eq!(resolve(["", "flattened"]), Value::Flattened);
        assert_eq!(resolve([" caution"]), Value::Caution);
        assert_eq!(resolve(["Flattened"]), Value::Caution);
    }
}
