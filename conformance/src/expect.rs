//! `expected.json`: what a conforming single-ID unpack of one fixture
//! produces (schema/conformance-expectation.schema.json). The owner of
//! every object is always "the unpacking user", so it is not written here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expectation {
    /// The fixture's directory name.
    pub case: String,
    pub description: String,
    /// `org.opencontainers.image.ref.name` of the image to unpack.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The spec requirements this fixture tests; results are reported per
    /// requirement, and only for these.
    pub requirements: Vec<Requirement>,
    pub outcome: Outcome,
    /// The image's effective value (spec: Determining the effective
    /// value), which decides whether a consumer may ask for consent.
    pub effective_value: Value,
    /// Requirements whose features the image needs before anything else in
    /// it can be checked (zstd layers: CONSUMER-LAYER-ORDER; a hard link to
    /// a skipped device: CONSUMER-HARDLINK). When the adapter cannot unpack
    /// the fixture, these fail and the fixture's other requirements are
    /// blocked rather than failed; with none listed, all of them fail.
    /// The same holds when the unpack succeeds but one of them fails: the
    /// others' failures are then reported as blocked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Paths that another requirement, tested by another fixture, makes
    /// absent and that this fixture's checks take for granted (a hard link
    /// to a device tells nothing when the device was not skipped). When
    /// one exists after the unpack, this fixture's failures are reported
    /// as blocked by that requirement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assumes: Vec<Assumption>,
    #[serde(default)]
    pub allowances: Allowances,
    /// Paths that must exist after the unpack, with their properties.
    #[serde(default)]
    pub present: Vec<Present>,
    /// Paths that must not exist (whiteouts, devices, removed objects).
    #[serde(default)]
    pub absent: Vec<Absent>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub id: String,
    pub level: Level,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    #[serde(rename = "MUST")]
    Must,
    #[serde(rename = "SHOULD")]
    Should,
    #[serde(rename = "MAY")]
    May,
}

/// What the adapter must do with the fixture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Exit 0 and fill DEST.
    Unpack,
    /// Exit non-zero without consent (writing nothing into DEST), then
    /// with `SINGLE_ID_CONFIRM=1` exit 0 and fill DEST (POLICY-CAUTION).
    RefuseThenUnpack,
    /// Exit status free (hostile input may be rejected); only the tree
    /// checks and "nothing outside DEST" apply.
    Any,
    /// The image cannot be unpacked completely (a layer breaks off): the
    /// adapter must exit with a failure status (CONSUMER-INCOMPLETE); the
    /// absent paths and the global checks still apply.
    Fail,
}

/// A path this fixture assumes absent, and the requirement that makes it so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assumption {
    pub path: String,
    pub requirement: String,
}

/// An effective value of the id-flattening annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Value {
    Flattened,
    Allowed,
    Caution,
}

impl Value {
    pub fn name(self) -> &'static str {
        match self {
            Value::Flattened => "flattened",
            Value::Allowed => "allowed",
            Value::Caution => "caution",
        }
    }
}

/// Latitude the spec grants, stated per fixture so that the harness
/// hard-codes none of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Allowances {
    /// CONSUMER-OWNER-RAISE: owner bits may be raised to u+rw (files) and
    /// u+rwx (directories) above the expected mode.
    #[serde(default)]
    pub owner_raise: bool,
    /// CONSUMER-FIFO is a SHOULD: a FIFO may be absent instead.
    #[serde(default)]
    pub fifo_may_be_absent: bool,
    /// Paths not listed may exist (consumers add their own, e.g. `etc/hosts`).
    #[serde(default)]
    pub extra_paths: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Present {
    /// Relative to DEST, no leading `/`.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Permission bits with sticky and set-ID bits, octal (`"0755"`,
    /// `"1777"`); not checked for symlinks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// `sha256:` of a regular file's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A symlink's target, byte for byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Paths with the same group name must be one inode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardlink_group: Option<String>,
    /// Expected modification time, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<u64>,
    /// Extended attributes that must be present with these values (UTF-8).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, String>,
    /// Extended attributes that must not be present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs_absent: Vec<String>,
    /// The requirements a mismatch at this path violates.
    pub requirements: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Absent {
    pub path: String,
    pub requirements: Vec<String>,
}

/// Checks the harness makes on every fixture that lists the requirement,
/// beyond the per-path expectations:
/// - CONSUMER-OWNER: every object in DEST is owned by the adapter's UID;
/// - CONSUMER-SETID-CLEARED: no object in DEST has a set-ID bit;
/// - CONSUMER-WHITEOUT, CONSUMER-WHITEOUT-INVALID: no name in DEST starts
///   with `.wh.`;
/// - CONSUMER-CONTAINED (always checked): the canary directory beside DEST
///   and everything else outside DEST is unchanged;
/// - POLICY-CAUTION / POLICY-UNKNOWN: the outcome (refusal without consent).
pub const GLOBAL_CHECKS: [&str; 6] = [
    "CONSUMER-OWNER",
    "CONSUMER-SETID-CLEARED",
    "CONSUMER-WHITEOUT",
    "CONSUMER-WHITEOUT-INVALID",
    "CONSUMER-CONTAINED",
    "POLICY-CAUTION",
];
