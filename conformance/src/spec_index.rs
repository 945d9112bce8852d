//! The spec's requirement index as the harness knows it: every requirement
//! that is not retired, with its level, the heading of the section that
//! states it, and its summary, taken from spec/single-id-images.md so that
//! the harness needs no checkout to name sections; `tests/fixtures.rs`
//! checks that ids, levels and sections match the spec.

use crate::expect::Level;

/// One row of the index.
#[derive(Clone, Copy, Debug)]
pub struct Requirement {
    pub id: &'static str,
    pub level: Level,
    /// The heading of the subsection that states the requirement.
    pub section: &'static str,
    pub summary: &'static str,
}

/// The version of the spec this table was taken from.
pub const SPEC_VERSION: &str = "0.2";

pub const INDEX: &[Requirement] = &[
    Requirement {
        id: "ANNOTATION-KEY",
        level: Level::Must,
        section: "Key",
        summary: "Producers write the provisional key `io.github.supercontainers.id-flattening`; consumers and validators read it and `org.opencontainers.image.id-flattening`.",
    },
    Requirement {
        id: "ANNOTATION-RESERVED-KEY",
        level: Level::Must,
        section: "Key",
        summary: "Producers do not write `org.opencontainers.image.id-flattening` before the image-spec defines it.",
    },
    Requirement {
        id: "ANNOTATION-VALUES",
        level: Level::Must,
        section: "Values",
        summary: "Producers write only `flattened`, `allowed`, `caution` or the empty string.",
    },
    Requirement {
        id: "ANNOTATION-DEFAULT",
        level: Level::Must,
        section: "Values",
        summary: "An image without the annotation anywhere is treated as `allowed`.",
    },
    Requirement {
        id: "ANNOTATION-UNKNOWN",
        level: Level::Must,
        section: "Values",
        summary: "Any other non-empty value is treated as `caution` by consumers and reported as an error by validators.",
    },
    Requirement {
        id: "ANNOTATION-EMPTY",
        level: Level::Must,
        section: "Values",
        summary: "An empty value counts as absent from its place.",
    },
    Requirement {
        id: "ANNOTATION-PLACES",
        level: Level::Should,
        section: "What the annotation describes",
        summary: "The key is not recorded on config or layer descriptors or in an index's top-level annotations.",
    },
    Requirement {
        id: "ANNOTATION-MANIFEST",
        level: Level::Must,
        section: "Placement",
        summary: "A declared value is recorded in the annotations of an OCI image manifest.",
    },
    Requirement {
        id: "ANNOTATION-DOCKER",
        level: Level::Must,
        section: "Placement",
        summary: "A Docker schema 2 image records a declared value in its configuration's Labels.",
    },
    Requirement {
        id: "ANNOTATION-LABEL",
        level: Level::Should,
        section: "Placement",
        summary: "The configuration's Labels carry the same value.",
    },
    Requirement {
        id: "ANNOTATION-INDEX",
        level: Level::May,
        section: "Placement",
        summary: "Index descriptors referencing the manifest may carry the value.",
    },
    Requirement {
        id: "ANNOTATION-CONSISTENT",
        level: Level::Must,
        section: "Consistency",
        summary: "Producers never record conflicting values for one image.",
    },
    Requirement {
        id: "ANNOTATION-CONFLICT-CAUTIOUS",
        level: Level::Must,
        section: "Consistency",
        summary: "On a conflict, or a document readers disagree on, a consumer uses the most cautious value found.",
    },
    Requirement {
        id: "PRODUCER-ID-RANGE",
        level: Level::Should,
        section: "Every image",
        summary: "Every UID and GID fits in 32 bits and is not 4294967295.",
    },
    Requirement {
        id: "PRODUCER-PAX-CONSISTENT",
        level: Level::Should,
        section: "Every image",
        summary: "Header fields agree, field by field, with the PAX records that override them; no global header sets entry fields.",
    },
    Requirement {
        id: "PRODUCER-UNAMBIGUOUS",
        level: Level::Must,
        section: "Every image",
        summary: "Every document and entry reads the same in GNU tar, bsdtar and Go's encoding/json and archive/tar.",
    },
    Requirement {
        id: "PRODUCER-SINGLE-ID",
        level: Level::Must,
        section: "Flattened images",
        summary: "Every entry of a flattened image has the same UID and the same GID.",
    },
    Requirement {
        id: "PRODUCER-ROOT-IDS",
        level: Level::Should,
        section: "Flattened images",
        summary: "The single UID and GID of a flattened image are 0:0.",
    },
    Requirement {
        id: "PRODUCER-NAMES",
        level: Level::Must,
        section: "Flattened images",
        summary: "User and group names in a flattened image are empty, or `root` where the ID is 0.",
    },
    Requirement {
        id: "PRODUCER-NO-SETID",
        level: Level::Must,
        section: "Flattened images",
        summary: "No entry of a flattened image has a set-user-ID or set-group-ID bit.",
    },
    Requirement {
        id: "PRODUCER-NO-DEVICES",
        level: Level::Should,
        section: "Flattened images",
        summary: "A flattened image contains no character or block devices.",
    },
    Requirement {
        id: "PRODUCER-NO-OWNER-XATTRS",
        level: Level::Must,
        section: "Flattened images",
        summary: "No entry of a flattened image carries an owner-bearing attribute.",
    },
    Requirement {
        id: "PRODUCER-NO-ID-XATTRS",
        level: Level::Should,
        section: "Flattened images",
        summary: "A flattened image carries no `security.capability` or ACL records.",
    },
    Requirement {
        id: "PRODUCER-CONFIG-USER",
        level: Level::Should,
        section: "Flattened images",
        summary: "The `config.User` of a flattened image is absent, empty, or a spelling of root such as `0:0` or `root:root`.",
    },
    Requirement {
        id: "PRODUCER-DECLARE-CAUTION",
        level: Level::Should,
        section: "Images whose IDs carry information",
        summary: "Images whose behavior depends on their IDs declare `caution`.",
    },
    Requirement {
        id: "OCI-LAYOUT",
        level: Level::Must,
        section: "Checks of existing OCI requirements",
        summary: "The layout has `oci-layout` with `imageLayoutVersion` and an `index.json`.",
    },
    Requirement {
        id: "OCI-BLOB-PRESENT",
        level: Level::Must,
        section: "Checks of existing OCI requirements",
        summary: "Every referenced blob is present unless its descriptor has `urls`.",
    },
    Requirement {
        id: "OCI-BLOB-INTEGRITY",
        level: Level::Must,
        section: "Checks of existing OCI requirements",
        summary: "Each blob's size and digest of its raw bytes match its descriptor, and so do the bytes of embedded `data`.",
    },
    Requirement {
        id: "OCI-DOCUMENTS",
        level: Level::Must,
        section: "Checks of existing OCI requirements",
        summary: "Indexes, manifests and configurations, OCI or Docker, parse, conform, and agree with their descriptor's media type.",
    },
    Requirement {
        id: "OCI-SUBJECT",
        level: Level::Must,
        section: "Checks of existing OCI requirements",
        summary: "A `subject` that names a blob in the layout has that blob's size and media type.",
    },
    Requirement {
        id: "OCI-DIFF-ID",
        level: Level::Must,
        section: "Checks of existing OCI requirements",
        summary: "Each diff ID is the digest of the corresponding uncompressed layer.",
    },
    Requirement {
        id: "OCI-LAYER-PATHS",
        level: Level::Must,
        section: "Checks of existing OCI requirements",
        summary: "No entry name or hardlink target climbs above the root.",
    },
    Requirement {
        id: "OCI-LAYER-HARDLINKS",
        level: Level::Must,
        section: "Checks of existing OCI requirements",
        summary: "Hardlinks target existing non-directories from this or a lower layer.",
    },
    Requirement {
        id: "OCI-LAYER-DUPLICATES",
        level: Level::Must,
        section: "Checks of existing OCI requirements",
        summary: "No layer has two entries with the same normalized path.",
    },
    Requirement {
        id: "OCI-LAYER-WHITEOUTS",
        level: Level::Must,
        section: "Checks of existing OCI requirements",
        summary: "Whiteout names follow layer.md, and a bare `.wh.` is invalid.",
    },
    Requirement {
        id: "OCI-LAYER-SPARSE",
        level: Level::Should,
        section: "Checks of existing OCI requirements",
        summary: "Layers contain no sparse entries.",
    },
    Requirement {
        id: "OCI-LAYER-READABLE",
        level: Level::Must,
        section: "Checks of existing OCI requirements",
        summary: "Every layer decompresses and parses as tar to its end.",
    },
    Requirement {
        id: "CONSUMER-LAYER-ORDER",
        level: Level::Must,
        section: "Scope",
        summary: "Layers are applied in manifest order, each decompressed by its media type, entries in stream order.",
    },
    Requirement {
        id: "CONSUMER-REPLACE",
        level: Level::Must,
        section: "Scope",
        summary: "An entry replaces what exists at its path; a directory over a directory keeps its content.",
    },
    Requirement {
        id: "CONSUMER-OWNER",
        level: Level::Must,
        section: "Ownership",
        summary: "Every object is owned by the invoking user.",
    },
    Requirement {
        id: "CONSUMER-MODE",
        level: Level::Must,
        section: "Permission bits",
        summary: "Permission bits are as recorded, with no umask applied.",
    },
    Requirement {
        id: "CONSUMER-OWNER-RAISE",
        level: Level::May,
        section: "Permission bits",
        summary: "Owner bits may be raised to u+rw for files and u+rwx for directories.",
    },
    Requirement {
        id: "CONSUMER-SETID-CLEARED",
        level: Level::Must,
        section: "Permission bits",
        summary: "No created object ever has a set-user-ID or set-group-ID bit.",
    },
    Requirement {
        id: "CONSUMER-STICKY",
        level: Level::Must,
        section: "Permission bits",
        summary: "Directories keep the sticky bit exactly as recorded.",
    },
    Requirement {
        id: "CONSUMER-READONLY-DIR",
        level: Level::Must,
        section: "Permission bits",
        summary: "A read-only directory does not stop later entries, and ends with its recorded mode.",
    },
    Requirement {
        id: "CONSUMER-DEVICES",
        level: Level::Must,
        section: "Entry types",
        summary: "Device entries are skipped with no substitute object.",
    },
    Requirement {
        id: "CONSUMER-DEVICES-REPORTED",
        level: Level::Should,
        section: "Entry types",
        summary: "Skipped devices and FIFOs are reported.",
    },
    Requirement {
        id: "CONSUMER-FIFO",
        level: Level::Should,
        section: "Entry types",
        summary: "FIFO entries are created as FIFOs.",
    },
    Requirement {
        id: "CONSUMER-FIFO-SKIPPED",
        level: Level::Must,
        section: "Entry types",
        summary: "A FIFO not created as a FIFO leaves nothing at its path.",
    },
    Requirement {
        id: "CONSUMER-UNKNOWN-TYPES",
        level: Level::Must,
        section: "Entry types",
        summary: "Entries of unknown type create nothing and are reported.",
    },
    Requirement {
        id: "CONSUMER-HARDLINK",
        level: Level::Must,
        section: "Entry types",
        summary: "Hardlink entries become hard links to their target inside the root.",
    },
    Requirement {
        id: "CONSUMER-SYMLINK",
        level: Level::Must,
        section: "Entry types",
        summary: "Symbolic links are created without following anything.",
    },
    Requirement {
        id: "CONSUMER-SYMLINK-TARGET",
        level: Level::Should,
        section: "Entry types",
        summary: "Symbolic-link targets are stored verbatim.",
    },
    Requirement {
        id: "CONSUMER-SPARSE",
        level: Level::Must,
        section: "Sparse entries",
        summary: "Sparse entries become regular files of their real size, with zeros outside the stored data.",
    },
    Requirement {
        id: "CONSUMER-XATTR-USER",
        level: Level::Should,
        section: "Extended attributes",
        summary: "Other `user.` attributes are applied where possible, and failure is not fatal.",
    },
    Requirement {
        id: "CONSUMER-XATTR-EXCLUDED",
        level: Level::Must,
        section: "Extended attributes",
        summary: "Owner-bearing attributes are never set.",
    },
    Requirement {
        id: "CONSUMER-XATTR-CAPABILITY",
        level: Level::Must,
        section: "Extended attributes",
        summary: "`security.capability` is never applied.",
    },
    Requirement {
        id: "CONSUMER-XATTR-OTHER",
        level: Level::Should,
        section: "Extended attributes",
        summary: "Other `security.`, `trusted.` and `system.` attributes and ACLs are not applied.",
    },
    Requirement {
        id: "CONSUMER-WHITEOUT",
        level: Level::Must,
        section: "Whiteouts",
        summary: "Whiteouts remove lower-layer objects and never remain on disk.",
    },
    Requirement {
        id: "CONSUMER-WHITEOUT-INVALID",
        level: Level::Must,
        section: "Whiteouts",
        summary: "Entries with invalid `.wh.` names are rejected, removing and creating nothing.",
    },
    Requirement {
        id: "CONSUMER-OPAQUE",
        level: Level::Must,
        section: "Whiteouts",
        summary: "An opaque whiteout empties its directory of lower-layer content whatever its position.",
    },
    Requirement {
        id: "CONSUMER-CONTAINED",
        level: Level::Must,
        section: "Path safety",
        summary: "Nothing outside the root is ever created, written, changed or removed.",
    },
    Requirement {
        id: "CONSUMER-SYMLINK-PARENT",
        level: Level::Must,
        section: "Path safety",
        summary: "A symbolic link among an entry's leading components is resolved inside the root, or the entry is rejected.",
    },
    Requirement {
        id: "CONSUMER-DOTDOT",
        level: Level::Must,
        section: "Path safety",
        summary: "Entries whose names climb above the root are rejected.",
    },
    Requirement {
        id: "CONSUMER-ABSOLUTE",
        level: Level::Must,
        section: "Path safety",
        summary: "Absolute entry names and hardlink targets are relative to the root.",
    },
    Requirement {
        id: "CONSUMER-HARDLINK-CONTAINED",
        level: Level::Must,
        section: "Path safety",
        summary: "Hardlink targets resolve inside the root and are never followed through a final symbolic link.",
    },
    Requirement {
        id: "CONSUMER-MTIME",
        level: Level::Should,
        section: "Times",
        summary: "Files and symbolic links get their recorded modification times.",
    },
    Requirement {
        id: "CONSUMER-INCOMPLETE",
        level: Level::Should,
        section: "Failure",
        summary: "A failed unpack is reported and its root cannot be mistaken for a complete one.",
    },
    Requirement {
        id: "CONSUMER-LIMITS",
        level: Level::May,
        section: "Failure",
        summary: "Inputs past a documented resource limit may be refused, naming the limit and how to raise it.",
    },
    Requirement {
        id: "POLICY-FLATTENED",
        level: Level::May,
        section: "Policy by value",
        summary: "A `flattened` image may be flattened without notice.",
    },
    Requirement {
        id: "POLICY-ALLOWED",
        level: Level::May,
        section: "Policy by value",
        summary: "An `allowed` or unmarked image may be flattened without asking.",
    },
    Requirement {
        id: "POLICY-CAUTION",
        level: Level::Must,
        section: "Policy by value",
        summary: "A `caution` image is flattened only after a notice naming key and value and the user's consent.",
    },
    Requirement {
        id: "POLICY-UNKNOWN",
        level: Level::Must,
        section: "Policy by value",
        summary: "An unknown value is handled as `caution`, and the message shows it.",
    },
    Requirement {
        id: "POLICY-OVERRIDE",
        level: Level::May,
        section: "Policy by value",
        summary: "The consumer's user may override the policy in either direction.",
    },
    Requirement {
        id: "POLICY-PRESERVING",
        level: Level::Should,
        section: "Policy by value",
        summary: "ID-preserving consumers preserve IDs whatever the value.",
    },
];
