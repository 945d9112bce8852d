//! What a flatten run reports: per image and layer, what was changed to
//! make the image `flattened`. Serialised as the JSON report (schema in
//! `schema/flatten-report.schema.json`) and rendered as text by
//! `render::flatten`.

use serde::Serialize;

use crate::diagnostic::Example;
use crate::stats::{OwnerTally, Tally};

/// What a finished flatten reports (`schema/flatten-report.schema.json`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlattenReport {
    /// The version of this report's format: 1.
    pub report_version: u32,
    /// POLICY-CAUTION notices of the images flattened with consent.
    pub notices: Vec<String>,
    /// The IMAGE argument, as given.
    pub target: String,
    /// The OUTPUT argument, as given.
    pub output: String,
    /// `input` (each layer keeps its compression), `gzip`, `zstd` or `none`.
    pub compression: &'static str,
    /// Every image flattened, in the order the walk found them.
    pub images: Vec<ImageReport>,
    /// Blobs copied unchanged: artifacts and descriptors that are not images.
    pub copied: Vec<CopiedBlob>,
    /// Manifests and indexes whose `subject` named a manifest flattened
    /// here, rewritten to name the flattened one (OCI-SUBJECT).
    pub resubjected: Vec<Resubjected>,
}

/// A manifest or index (typically an artifact: a signature, an SBOM)
/// whose `subject` was re-pointed at a flattened manifest. What it says
/// about the old manifest, such as a signature over its digest, no longer
/// holds for the new one.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resubjected {
    /// Digest of the input document.
    pub digest: String,
    /// Digest of its rewritten copy.
    pub output_digest: String,
    /// Its `artifactType`, or when absent its config's media type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The input manifest its `subject` named.
    pub subject: String,
    /// The flattened manifest its `subject` names now.
    pub output_subject: String,
}

/// One image flattened.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageReport {
    /// The image's `ref.name` (with platform when reached through a nested
    /// index), or its manifest digest.
    pub name: String,
    /// Digest of the input manifest.
    pub manifest: String,
    /// Digest of the new manifest, which declares `flattened`.
    pub output_manifest: String,
    /// Digest of the new config: new diff_ids, the Label, a history entry.
    pub output_config: String,
    /// `config.User` of the input, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_user: Option<String>,
    /// `config.User` named an account and was set to "".
    pub config_user_reset: bool,
    /// `org.opencontainers.image.base.digest` and `base.name`, removed
    /// from the manifest annotations and config Labels: they name the
    /// unflattened base, which the new image no longer builds on.
    pub base_annotations_dropped: Vec<String>,
    /// Every layer, in manifest order.
    pub layers: Vec<LayerReport>,
    /// Every layer together.
    pub total: Changes,
}

/// One layer of an image, flattened.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerReport {
    /// Position of the layer in the manifest, from 0.
    pub index: usize,
    /// Digest of the input layer blob.
    pub digest: String,
    /// The input layer's media type.
    pub media_type: String,
    /// Digest of the new layer blob.
    pub output_digest: String,
    /// The new layer's media type (OCI, with the output compression).
    pub output_media_type: String,
    /// Size of the new layer blob, in bytes.
    pub output_size: u64,
    /// sha256 of the new layer's uncompressed tar stream.
    pub output_diff_id: String,
    /// What flattening changed in this layer.
    pub changes: Changes,
}

/// A blob copied byte for byte.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CopiedBlob {
    /// Its digest, the same in input and output.
    pub digest: String,
    /// The media type of the descriptor that referenced it.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What flattening changed in one layer (or, summed, in an image).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    /// Entries read, PAX global headers excluded.
    pub entries: u64,
    /// Entries written to the output layer.
    pub written: u64,
    /// Written entries whose recorded owner was not 0:0.
    pub owners_replaced: u64,
    /// The UID:GID pairs the input entries recorded, most frequent first.
    pub owners: Vec<OwnerTally>,
    /// Input entries whose pair was not tracked one by one.
    pub other_owners: u64,
    /// Written entries whose user or group name was neither empty nor `root`.
    pub names_replaced: u64,
    /// Entries written without their setuid or setgid bit; the detail is
    /// the recorded mode.
    pub setid_cleared: Tally,
    /// Character and block devices, not written.
    pub devices_dropped: Tally,
    /// Hardlinks whose target was dropped (a device, or another such link).
    pub hardlinks_dropped: Tally,
    /// Entries dropped with the reason in their detail: a name or hardlink
    /// target climbing above the root, an unknown type, an invalid whiteout.
    pub paths_dropped: Tally,
    /// Names and hardlink targets written without their leading `/`.
    pub absolute_stripped: Tally,
    /// Entries written without their `security.capability` attribute.
    pub capabilities_removed: Tally,
    /// `user.rootlesscontainers`, `user.overlay.*` and the other
    /// attributes that record owners or overlay state.
    pub owner_xattrs_removed: Tally,
    /// Entries written without their POSIX ACLs (PAX `SCHILY.acl`
    /// records or `system.posix_acl_*` attributes).
    pub acls_removed: Tally,
    /// Sparse files, written as ordinary (dense) files.
    pub sparse_expanded: Tally,
    /// PAX global headers, not written.
    pub global_headers_dropped: u64,
}

impl Changes {
    /// Adds another layer's changes (examples stay bounded by `max`).
    pub fn merge(&mut self, o: &Changes, max: usize) {
        self.entries += o.entries;
        self.written += o.written;
        self.owners_replaced += o.owners_replaced;
        self.other_owners += o.other_owners;
        self.names_replaced += o.names_replaced;
        self.global_headers_dropped += o.global_headers_dropped;
        for (a, b) in [
            (&mut self.setid_cleared, &o.setid_cleared),
            (&mut self.devices_dropped, &o.devices_dropped),
            (&mut self.hardlinks_dropped, &o.hardlinks_dropped),
            (&mut self.paths_dropped, &o.paths_dropped),
            (&mut self.absolute_stripped, &o.absolute_stripped),
            (&mut self.capabilities_removed, &o.capabilities_removed),
            (&mut self.owner_xattrs_removed, &o.owner_xattrs_removed),
            (&mut self.acls_removed, &o.acls_removed),
            (&mut self.sparse_expanded, &o.sparse_expanded),
        ] {
            a.merge(b, max);
        }
        let mut owners: std::collections::BTreeMap<(u64, u64), Tally> =
            self.owners.drain(..).map(|o| ((o.uid, o.gid), o.tally)).collect();
        for x in &o.owners {
            owners.entry((x.uid, x.gid)).or_default().merge(&x.tally, max);
        }
        self.owners = owners.into_iter().map(|((uid, gid), tally)| OwnerTally { uid, gid, tally }).collect();
        self.owners.sort_by(|a, b| b.tally.count.cmp(&a.tally.count).then((a.uid, a.gid).cmp(&(b.uid, b.gid))));
    }

    /// Anything besides owners and names changed.
    pub fn dropped(&self) -> u64 {
        self.devices_dropped.count + self.hardlinks_dropped.count + self.paths_dropped.count
    }
}

/// Counts one occurrence in `t`, keeping `path` (and `detail`) as an
/// example while fewer than `max` are kept.
pub(super) fn add(t: &mut Tally, max: usize, path: impl FnOnce() -> String, detail: Option<String>) {
    t.count += 1;
    if t.examples.len() < max {
        t.examples.push(Example { path: path(), detail });
    }
}
