//! `single-id inspect`: what the layers of each image record about
//! ownership, and what a single-ID consumer would change on unpack. Shares
//! the walk and the layer scan with `validate`.

use std::hash::RandomState;

use serde::Serialize;

use crate::annotation::{Declarations, Value};
use crate::diagnostic::{Finding, Findings, Location};
use crate::error::Error;
use crate::image;
use crate::reference::Reference;
use crate::rules;
use crate::rules::producer::{Assessment, LayerFacts};
use crate::scan;
use crate::stats::{LayerStats, Tally};
use crate::validate::Options;

/// What `single-id inspect` reports about the images of a layout (the
/// JSON output; the human output renders it).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectReport {
    /// The version of this report's JSON format.
    pub report_version: u32,
    /// The IMAGE argument, as given.
    pub target: String,
    /// Every image inspected, in the order of the walk.
    pub images: Vec<ImageReport>,
    /// Problems that kept part of an image from being inspected (missing
    /// or unreadable blobs, for instance); `validate` explains them fully.
    pub findings: Vec<Finding>,
}

/// What one image records about ownership, and what unpacking it
/// single-ID would change.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageReport {
    /// The image's name, as in findings (see [`image::Image::name`]).
    pub name: String,
    /// Digest of the image manifest.
    pub manifest: String,
    /// What the image declares, and the effective value.
    pub id_flattening: Declarations,
    /// `config.User`, when the config sets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_user: Option<String>,
    /// Each layer, in manifest order.
    pub layers: Vec<LayerReport>,
    /// All layers together.
    pub total: LayerStats,
    /// What a single-ID consumer would change in the unpacked tree.
    pub on_unpack: Changes,
    /// The id-flattening value the layers suggest.
    pub recommendation: Recommendation,
}

/// One layer of an image and what it records.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerReport {
    /// Position in the manifest, counting from 0.
    pub index: usize,
    /// The layer's blob digest.
    pub digest: String,
    /// The layer's media type, as the manifest gives it.
    pub media_type: String,
    /// `None` when the layer could not be read (see findings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<LayerStats>,
}

/// What a single-ID consumer changes, by the spec's consumer requirements.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    /// Entries whose recorded owner is replaced by the invoking user's
    /// (CONSUMER-OWNER): all of them, in this many distinct pairs.
    pub owners_replaced: u64,
    /// Distinct UID:GID pairs among them, of those tracked individually
    /// (see [`LayerStats::other_owners`]).
    pub distinct_owners: usize,
    /// Entries with a user or group name other than empty or `root`,
    /// whose names play no part.
    pub names_ignored: u64,
    /// CONSUMER-SETID-CLEARED.
    pub setid_cleared: Tally,
    /// CONSUMER-DEVICES.
    pub devices_skipped: Tally,
    /// CONSUMER-UNKNOWN-TYPES.
    pub unknown_types_skipped: Tally,
    /// CONSUMER-XATTR-CAPABILITY.
    pub capabilities_dropped: Tally,
    /// CONSUMER-XATTR-OTHER: ACLs and other privileged attributes.
    pub privileged_xattrs_dropped: Tally,
    /// `config.User` names an account that, flattened, owns nothing.
    pub user_loses_meaning: bool,
}

/// The value a producer should declare for an image.
#[derive(Serialize)]
pub struct Recommendation {
    /// The value recommended.
    pub value: Value,
    /// Why, in a sentence or two.
    pub reason: String,
    /// The facts the recommendation is made from.
    pub assessment: Assessment,
}

/// Inspects every image of `reference` (or the one it names); `target` is
/// the IMAGE argument as given, for the report. Fails when the layout
/// cannot be opened or the named image is not there; what kept part of an
/// image from being inspected is in the report's findings instead.
///
/// ```
/// use single_id::annotation::Value;
/// use single_id::reference::Reference;
///
/// let image = Reference::parse(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hello"), None)?;
/// let report = single_id::inspect::inspect(&image, "hello".into(), &Default::default())?;
/// // Every entry of the example is 0:0: flattening loses nothing.
/// assert_eq!(report.images[0].recommendation.value, Value::Flattened);
/// # Ok::<(), single_id::error::Error>(())
/// ```
pub fn inspect(reference: &Reference, target: String, options: &Options) -> Result<InspectReport, Error> {
    let layout = crate::layout::open(reference, &options.limits)?;
    let mut f = Findings::default();
    let walk = image::walk(&layout, reference.ref_name.as_deref(), &mut f)?;
    let jobs = scan::layer_jobs(&walk.images);
    let scans = scan::run(&layout, &jobs, &RandomState::new(), options.max_examples, &options.progress);
    let mut images = Vec::new();
    let mut notes = Findings::default();
    for img in &walk.images {
        let declarations = img.declarations(&mut notes);
        let user = img.config.as_ref().and_then(|c| c.config().as_ref()).and_then(|c| c.user().clone());
        let layers: Vec<LayerReport> = img
            .manifest
            .layers()
            .iter()
            .enumerate()
            .map(|(index, l)| LayerReport {
                index,
                digest: l.digest().to_string(),
                media_type: l.media_type().to_string(),
                stats: scans.get(&l.digest().to_string()).and_then(|s| s.stats.clone()),
            })
            .collect();
        let read: Vec<&LayerStats> = layers.iter().filter_map(|l| l.stats.as_ref()).collect();
        let total = LayerStats::merged(&read, options.max_examples);
        let facts: Vec<LayerFacts<'_>> =
            read.iter().map(|s| LayerFacts { stats: s, at: Location::default() }).collect();
        let assessment = Assessment::of(&facts, user.as_deref());
        let (value, mut reason) = assessment.recommend();
        if read.len() < layers.len() {
            reason.push_str(&format!(" (only {} of {} layers could be read)", read.len(), layers.len()));
        }
        let mut setid = total.setuid.clone();
        setid.merge(&total.setgid, options.max_examples);
        let mut privileged = total.acls.clone();
        privileged.merge(&total.other_privileged_xattrs, options.max_examples);
        let on_unpack = Changes {
            owners_replaced: total.entries,
            distinct_owners: total.owners.len(),
            names_ignored: total
                .names
                .iter()
                .filter(|n| !(n.uname.is_empty() || n.uname == "root") || !(n.gname.is_empty() || n.gname == "root"))
                .map(|n| n.tally.count)
                .sum(),
            setid_cleared: setid,
            devices_skipped: total.devices.clone(),
            unknown_types_skipped: total.unknown_types.clone(),
            capabilities_dropped: total.capabilities.clone(),
            privileged_xattrs_dropped: privileged,
            user_loses_meaning: !crate::rules::producer::root_user(user.as_deref()),
        };
        images.push(ImageReport {
            name: img.name.clone(),
            manifest: img.descriptor().digest().to_string(),
            id_flattening: declarations,
            config_user: user,
            layers,
            total,
            on_unpack,
            recommendation: Recommendation { value, reason, assessment },
        });
    }
    // Only what stopped inspection: errors from the walk, and layers that
    // could not be read. What the layers contain is validate's business.
    let unread = [
        &rules::BLOB_MISSING,
        &rules::BLOB_NOT_FILE,
        &rules::BLOB_SIZE,
        &rules::BLOB_DIGEST,
        &rules::BLOB_UNREADABLE,
        &rules::LAYER_UNREADABLE,
        &rules::LIMIT_EXCEEDED,
    ];
    let mut findings: Vec<Finding> = f.into_vec();
    for job in &jobs {
        if let Some(s) = scans.get(&job.descriptor.digest().to_string()) {
            findings.extend(s.findings.iter().filter(|x| unread.contains(&x.rule)).cloned());
        }
    }
    findings.retain(|x| x.severity == crate::diagnostic::Severity::Error);
    Ok(InspectReport { report_version: 1, target, images, findings })
}
