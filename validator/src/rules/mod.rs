//! The rule registry: every diagnostic the validator can emit, with a stable
//! identifier, a default severity and the spec clause it enforces.
//!
//! Rule identifiers are part of the tool's interface (CI configurations and
//! SARIF consumers key on them): never rename or reuse one.

pub mod annotation;
pub mod blob;
pub mod document;
pub mod layer;
pub mod layout;
pub mod producer;

use crate::diagnostic::{Rule, Severity};

macro_rules! fix {
    () => {
        None
    };
    ($fix:literal) => {
        Some($fix)
    };
}

macro_rules! rules {
    ($( $name:ident = $id:literal, $sev:ident, $clause:literal, $summary:literal $(, fix $fix:literal)?; )*) => {
        $(
            #[doc = $summary]
            pub static $name: Rule = Rule {
                id: $id,
                severity: Severity::$sev,
                clause: $clause,
                summary: $summary,
                fix: fix!($($fix)?),
            };
        )*
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
    DESCRIPTOR_DATA = "descriptor-data", Error, "OCI-BLOB-INTEGRITY",
        "A descriptor's embedded `data` is base64 that decodes to the descriptor's `size` and `digest`, so readers that use it and readers that fetch the blob see the same bytes.";
    DOCUMENT_INVALID = "document-invalid", Error, "OCI-DOCUMENTS",
        "An index, manifest or config is well-formed JSON, within the size limit, and conforms to the image-spec.";
    MEDIA_TYPE_MISMATCH = "media-type-mismatch", Error, "OCI-DOCUMENTS",
        "The `mediaType` inside a document agrees with the descriptor that references it.";
    INDEX_NESTING = "index-nesting", Error, "OCI-DOCUMENTS",
        "Nested indexes form no cycle and stay within the nesting limit.";
    SUBJECT_MISSING = "subject-missing", Note, "OCI-SUBJECT",
        "A `subject` names a manifest that is not in the layout, which the image-spec allows (referrers may be stored apart).";
    SUBJECT_MISMATCH = "subject-mismatch", Error, "OCI-SUBJECT",
        "A `subject` that names a blob in the layout has that blob's size and media type.";
    DESCRIPTOR_SKIPPED = "descriptor-skipped", Note, "OCI-DOCUMENTS",
        "An index entry that is neither an image manifest nor an index (an artifact, for example) is not an image and was skipped.";
    DOCUMENT_AMBIGUOUS = "document-ambiguous", Error, "PRODUCER-UNAMBIGUOUS",
        "No JSON object repeats a member name, exactly or up to letter case, and no member name differs only in case from one the image-spec defines: Go's encoding/json would read another value than serde does.";
    ANNOTATION_VALUE = "annotation-value", Error, "ANNOTATION-UNKNOWN",
        "The id-flattening value is exactly `flattened`, `allowed` or `caution` (or empty, which means absent).", fix "annotation-value";
    ANNOTATION_RESERVED_KEY = "annotation-reserved-key", Error, "ANNOTATION-RESERVED-KEY",
        "The image declares id-flattening under the provisional key, not under `org.opencontainers.image.id-flattening`, which image-spec reserves until it adopts it.", fix "annotation-reserved-key";
    ANNOTATION_EMPTY = "annotation-empty", Note, "ANNOTATION-EMPTY",
        "An empty id-flattening value counts as absent at its place (the way to blank out an inherited Label).", fix "annotation-empty";
    ANNOTATION_MISPLACED = "annotation-misplaced", Warning, "ANNOTATION-PLACES",
        "id-flattening appears only on manifests, config Labels and the index descriptors that lead to a manifest, not on config or layer descriptors or an index's own annotations.", fix "annotation-misplaced";
    ANNOTATION_CONFLICT = "annotation-conflict", Error, "ANNOTATION-CONSISTENT",
        "The manifest annotation, config Label and index descriptors that carry id-flattening agree.", fix "annotation-conflict";
    ANNOTATION_LABEL_MISSING = "annotation-label-missing", Warning, "ANNOTATION-LABEL",
        "When the manifest declares id-flattening, the config repeats it in `config.Labels`.", fix "annotation-label-missing";
    ANNOTATION_MANIFEST_MISSING = "annotation-manifest-missing", Error, "ANNOTATION-MANIFEST",
        "When a Label or index descriptor declares id-flattening, the OCI manifest declares it too.", fix "annotation-manifest-missing";
    ANNOTATION_DOCKER_LABEL_MISSING = "annotation-docker-label-missing", Error, "ANNOTATION-DOCKER",
        "A Docker schema 2 image, whose manifest has no annotations, declares id-flattening in its config Labels.", fix "annotation-docker-label-missing";
    ANNOTATION_ABSENT = "annotation-absent", Note, "ANNOTATION-DEFAULT",
        "The image declares no id-flattening value, so consumers treat it as `allowed`.", fix "annotation-absent";
    LAYER_MEDIA_TYPE = "layer-media-type", Warning, "OCI-LAYER-READABLE",
        "The layer's media type is one this tool can decompress and read; otherwise only the blob is verified.";
    LAYER_UNREADABLE = "layer-unreadable", Error, "OCI-LAYER-READABLE",
        "The layer decompresses and parses as tar to its end (no truncation, corrupt compression or broken header).";
    LAYER_TRAILING_DATA = "layer-trailing-data", Error, "OCI-LAYER-READABLE",
        "Nothing but zero blocks follows the tar end-of-archive marker.";
    LAYER_END_MARKER = "layer-end-marker", Warning, "OCI-LAYER-READABLE",
        "The tar stream ends with an end-of-archive marker rather than just stopping.";
    LAYER_HEADER_FIELD = "layer-header-field", Error, "OCI-LAYER-READABLE",
        "Every numeric header field and PAX record of an entry can be read (no garbled or negative numbers).";
    LAYER_PAX_MISMATCH = "layer-pax-mismatch", Warning, "PRODUCER-PAX-CONSISTENT",
        "A PAX `size`, `uid`, `gid`, `mtime`, `uname` or `gname` record agrees with the header field it overrides (or the field is zero or empty).";
    LAYER_AMBIGUOUS = "layer-ambiguous", Error, "PRODUCER-UNAMBIGUOUS",
        "GNU tar, bsdtar and Go's archive/tar read every entry's name, link target, type, size and owner alike (no GNU long name against a PAX path, no NUL in PAX names, no global header setting entry fields, no unknown typeflag, no data on a link or directory).";
    LAYER_PARENT = "layer-parent-unresolvable", Warning, "CONSUMER-SYMLINK-PARENT",
        "No entry lies under a symbolic link, of its own layer or a lower one, that loops (consumers reject the entry) or has an empty target (consumers cannot create the link, so the entry lands in a directory in its place).";
    LAYER_SYMLINK_EMPTY = "layer-symlink-empty", Warning, "CONSUMER-SYMLINK",
        "No symbolic link has an empty target, which no Linux consumer can create.";
    LAYER_SPARSE = "layer-sparse", Warning, "OCI-LAYER-SPARSE",
        "The layer holds no sparse files, which layer.md advises against because tar implementations support them unevenly.";
    LAYER_ID_RANGE = "layer-id-range", Warning, "PRODUCER-ID-RANGE",
        "Every UID and GID fits the 32-bit IDs that Linux consumers can represent.";
    DIFF_ID = "diff-id", Error, "OCI-DIFF-ID",
        "The sha256 of each uncompressed layer equals its entry in the config's `rootfs.diff_ids`, and the counts agree.";
    LAYER_PATH_ESCAPE = "layer-path-escape", Error, "OCI-LAYER-PATHS",
        "No entry name or hardlink target climbs above the root with `..`.";
    LAYER_PATH_ABSOLUTE = "layer-path-absolute", Warning, "OCI-LAYER-PATHS",
        "Entry names are relative; consumers strip a leading `/`, but tools disagree on other details.";
    LAYER_DUPLICATE = "layer-duplicate", Error, "OCI-LAYER-DUPLICATES",
        "No two entries of one layer have the same normalised path.";
    LAYER_HARDLINK = "layer-hardlink", Error, "OCI-LAYER-HARDLINKS",
        "Every hardlink targets a non-directory present earlier in the layer or in a lower layer.";
    LAYER_WHITEOUT = "layer-whiteout", Error, "OCI-LAYER-WHITEOUTS",
        "Every `.wh.` name is a valid whiteout: not bare, not `.wh..`, only as the last component.";
    LAYER_WHITEOUT_CONTENT = "layer-whiteout-content", Warning, "OCI-LAYER-WHITEOUTS",
        "Whiteouts are empty regular files; consumers ignore their content, type and mode.";
    FLATTENED_SINGLE_ID = "flattened-single-id", Error, "PRODUCER-SINGLE-ID",
        "A `flattened` image records one UID and one GID across every entry of every layer.";
    FLATTENED_ROOT_IDS = "flattened-root-ids", Warning, "PRODUCER-ROOT-IDS",
        "The single UID and GID of a `flattened` image are 0:0.";
    FLATTENED_NAMES = "flattened-names", Error, "PRODUCER-NAMES",
        "Every uname and gname of a `flattened` image is empty, or `root` where the corresponding ID is 0.";
    FLATTENED_SETID = "flattened-setid", Error, "PRODUCER-NO-SETID",
        "No entry of a `flattened` image has the setuid or setgid bit.";
    FLATTENED_DEVICES = "flattened-devices", Warning, "PRODUCER-NO-DEVICES",
        "A `flattened` image contains no character or block devices.";
    FLATTENED_ID_XATTRS = "flattened-id-xattrs", Warning, "PRODUCER-NO-ID-XATTRS",
        "No entry of a `flattened` image carries `security.capability` or an ACL.";
    FLATTENED_OWNER_XATTRS = "flattened-owner-xattrs", Error, "PRODUCER-NO-OWNER-XATTRS",
        "No entry of a `flattened` image carries `user.rootlesscontainers`, `user.overlay.*`, `user.containers.override_stat` or `user.fuseoverlayfs.*`, which record owners or overlay state.";
    FLATTENED_CONFIG_USER = "flattened-config-user", Warning, "PRODUCER-CONFIG-USER",
        "The config of a `flattened` image has `config.User` absent, empty, or root by number or name (`0`, `root`, `0:0`, `root:root`, `0:root`, `root:0`).";
    LIMIT_EXCEEDED = "limit-exceeded", Error, "CONSUMER-LIMITS",
        "Documents, layers and entries stay within the resource limits (each names the flag that raises it); a layer past one is not read further.";
    CAUTION_CANDIDATE = "caution-candidate", Note, "PRODUCER-DECLARE-CAUTION",
        "An image not declared `caution` runs as a non-root account, or has a directory private to a non-root account that owns what is inside: flattening takes both away.";
}

/// Looks a rule up by identifier.
pub fn by_id(id: &str) -> Option<&'static Rule> {
    ALL.iter().copied().find(|r| r.id == id)
}

/// `docs/rules.md`: every rule with its severity, clause and summary.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Validator rules\n\n\
         Generated from `validator/src/rules/mod.rs` (`SINGLE_ID_BLESS=1 cargo test -p single-id --test it spec::` rewrites it).\n\
         Each rule enforces the requirement of `spec/single-id-images.md` named in the Clause column.\n\
         Rule identifiers are stable: they are never renamed or reused.\n\n\
         | Rule | Severity | Clause | Checks that |\n|---|---|---|---|\n",
    );
    for r in ALL {
        let fix = r.fix_link().map(|l| format!(" [How to fix it.](../{l})")).unwrap_or_default();
        out.push_str(&format!(
            "| `{}` | {} | [{}](../{}) | {}{fix} |\n",
            r.id,
            r.severity.as_str(),
            r.clause,
            r.spec_link(),
            r.summary
        ));
    }
    out
}
