//! The rule registry: every diagnostic the validator can emit, with a stable
//! identifier, a default severity and the spec clause it enforces.
//!
//! Rule identifiers are part of the tool's interface (CI configurations and
//! SARIF consumers key on them): never rename or reuse one.

pub mod annotation;
pub mod blob;
pub mod document;
pub mod layout;

use serde::Serialize;

/// How bad a finding is. Ordered from least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One kind of finding.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    /// Stable, kebab-case identifier.
    pub id: &'static str,
    pub severity: Severity,
    /// The identifier of the requirement in `spec/single-id-images.md`.
    pub clause: &'static str,
    /// One sentence: what the rule checks.
    pub summary: &'static str,
}

impl Rule {
    /// Link to the clause, relative to the repository root.
    pub fn spec_link(&self) -> String {
        format!("spec/single-id-images.md#{}", self.clause.to_ascii_lowercase())
    }
}

macro_rules! rules {
    ($( $name:ident = $id:literal, $sev:ident, $clause:literal, $summary:literal; )*) => {
        $( pub static $name: Rule = Rule {
            id: $id,
            severity: Severity::$sev,
            clause: $clause,
            summary: $summary,
        }; )*
        /// Every rule, in documentation order.
        pub static ALL: &[&Rule] = &[$( &$name ),*];
    };
}

rules! {
    LAYOUT_FILE = "layout-file", Error, "OCI-LAYOUT",
        "The `oci-layout` file exists, is JSON, and names a supported `imageLayoutVersion`.";
    LAYOUT_INDEX = "layout-index", Error, "OCI-LAYOUT",
        "The layout's `index.json` exists and is a valid image index.";
    BLOB_MISSING = "blob-missing", Error, "OCI-BLOB-PRESENT",
        "Every blob a descriptor references is present in the layout.";
    BLOB_FOREIGN = "blob-foreign", Note, "OCI-BLOB-PRESENT",
        "A blob is absent but its descriptor lists `urls` to fetch it from, which the image-spec permits.";
    BLOB_NOT_FILE = "blob-not-file", Error, "OCI-BLOB-PRESENT",
        "A blob path is a regular file, not a symbolic link, directory or device.";
    BLOB_SIZE = "blob-size", Error, "OCI-BLOB-INTEGRITY",
        "The blob's length equals the `size` of its descriptor.";
    BLOB_DIGEST = "blob-digest", Error, "OCI-BLOB-INTEGRITY",
        "The digest of the blob's raw bytes equals the `digest` of its descriptor.";
    DIGEST_UNSUPPORTED = "digest-unsupported", Warning, "OCI-BLOB-INTEGRITY",
        "The descriptor uses a digest algorithm this tool cannot compute, so the blob was not verified.";
    BLOB_UNREADABLE = "blob-unreadable", Error, "OCI-BLOB-INTEGRITY",
        "The blob can be read to its end.";
    DOCUMENT_INVALID = "document-invalid", Error, "OCI-DOCUMENTS",
        "An index, manifest or config is well-formed JSON, within the size limit, and conforms to the image-spec.";
    MEDIA_TYPE_MISMATCH = "media-type-mismatch", Error, "OCI-DOCUMENTS",
        "The `mediaType` inside a document agrees with the descriptor that references it.";
    INDEX_NESTING = "index-nesting", Error, "OCI-DOCUMENTS",
        "Nested indexes form no cycle and stay within the nesting limit.";
    DESCRIPTOR_SKIPPED = "descriptor-skipped", Note, "OCI-DOCUMENTS",
        "An index entry that is neither an image manifest nor an index (an artifact, for example) is not an image and was skipped.";
    ANNOTATION_VALUE = "annotation-value", Error, "ANNOTATION-UNKNOWN",
        "The id-flattening value is exactly `flattened`, `allowed` or `caution`.";
    ANNOTATION_CONFLICT = "annotation-conflict", Error, "ANNOTATION-CONSISTENT",
        "The manifest annotation, config Label and index descriptors that carry id-flattening agree.";
    ANNOTATION_LABEL_MISSING = "annotation-label-missing", Warning, "ANNOTATION-LABEL",
        "When the manifest declares id-flattening, the config repeats it in `config.Labels`.";
    ANNOTATION_MANIFEST_MISSING = "annotation-manifest-missing", Error, "ANNOTATION-MANIFEST",
        "When a Label or index descriptor declares id-flattening, the manifest declares it too.";
    ANNOTATION_ABSENT = "annotation-absent", Note, "ANNOTATION-DEFAULT",
        "The image declares no id-flattening value, so consumers treat it as `allowed`.";
}

/// Looks a rule up by identifier.
pub fn by_id(id: &str) -> Option<&'static Rule> {
    ALL.iter().copied().find(|r| r.id == id)
}

/// `docs/rules.md`: every rule with its severity, clause and summary.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Validator rules\n\n\
         Generated from `validator/src/rules/mod.rs` (`SINGLE_ID_BLESS=1 cargo test --test spec` rewrites it).\n\
         Each rule enforces the requirement of `spec/single-id-images.md` named in the Clause column.\n\
         Rule identifiers are stable: they are never renamed or reused.\n\n\
         | Rule | Severity | Clause | Checks that |\n|---|---|---|---|\n",
    );
    for r in ALL {
        out.push_str(&format!(
            "| `{}` | {} | [{}](../{}) | {} |\n",
            r.id,
            r.severity.as_str(),
            r.clause,
            r.spec_link(),
            r.summary
        ));
    }
    out
}
