//! Plain-text view of a flatten report: per image and layer, what was
//! changed to make the image `flattened`.

use std::fmt::Write;

use crate::flatten::{Changes, FlattenReport, ImageReport};
use crate::rules::producer::entries;

/// The text summary of a finished flatten.
pub fn render(report: &FlattenReport) -> String {
    let mut out = String::new();
    let compression = match report.compression {
        "input" => "each layer compressed as in the input".to_string(),
        c => format!("every layer compressed with {c}"),
    };
    let _ = writeln!(out, "flattened {} into {} ({compression})", report.target, report.output);
    for img in &report.images {
        image(&mut out, img);
    }
    if !report.copied.is_empty() {
        let _ = writeln!(out, "\ncopied unchanged (not images): {} blob(s)", report.copied.len());
        for c in &report.copied {
            let _ = writeln!(out, "  {} ({})", c.digest, c.media_type);
        }
    }
    if !report.resubjected.is_empty() {
        let _ = writeln!(
            out,
            "\nre-pointed at the flattened manifest: {} document(s) whose subject was an input manifest",
            report.resubjected.len()
        );
        for r in &report.resubjected {
            let kind = r.artifact_type.as_deref().map(|t| format!(" ({t})")).unwrap_or_default();
            let _ = writeln!(out, "  {}{kind}\n        -> {}", r.digest, r.output_digest);
        }
        let _ = writeln!(
            out,
            "  what they say about the old manifest, such as a signature over its digest, does not hold for the new one: sign the flattened image again"
        );
    }
    out
}

fn image(out: &mut String, img: &ImageReport) {
    let _ = writeln!(out, "\nimage {}", img.name);
    let _ = writeln!(out, "  manifest {}\n        -> {}", img.manifest, img.output_manifest);
    for l in &img.layers {
        let c = &l.changes;
        let _ = writeln!(
            out,
            "  layer {} {} ({})\n        -> {} ({}): {} entries read, {} written",
            l.index, l.digest, l.media_type, l.output_digest, l.output_media_type, c.entries, c.written
        );
        changes(out, c);
    }
    if img.config_user_reset {
        let _ = writeln!(
            out,
            "  config.User {:?} reset to \"\": a flattened image has no account but root",
            img.config_user.as_deref().unwrap_or_default()
        );
    }
    if !img.base_annotations_dropped.is_empty() {
        let _ = writeln!(
            out,
            "  removed {} from the manifest and config.Labels: they name the unflattened base",
            img.base_annotations_dropped.join(" and ")
        );
    }
    let t = &img.total;
    let _ = writeln!(
        out,
        "  total: {} layer(s), {} entries read, {} written, {} dropped; owners replaced on {}, set-ID bits cleared on {}",
        img.layers.len(),
        t.entries,
        t.written,
        t.dropped(),
        t.owners_replaced,
        t.setid_cleared.count
    );
    let _ =
        writeln!(out, "  declared id-flattening \"flattened\" in the manifest, config.Labels and index descriptors");
}

fn changes(out: &mut String, c: &Changes) {
    let pairs: Vec<String> = c.owners.iter().map(|o| format!("{}:{} x{}", o.uid, o.gid, o.tally.count)).collect();
    let mut owners = format!("    - owners: {} UID:GID pair(s) ({})", c.owners.len(), pairs.join(", "));
    if c.other_owners > 0 {
        let _ = write!(owners, " and {} entries with other owners", c.other_owners);
    }
    let _ = writeln!(out, "{owners} -> 0:0 root/root; {} changed", entries(c.owners_replaced));
    if c.names_replaced > 0 {
        let _ = writeln!(out, "    - user/group names replaced on {}", entries(c.names_replaced));
    }
    for (what, t) in [
        ("setuid/setgid bits cleared on", &c.setid_cleared),
        ("devices dropped:", &c.devices_dropped),
        ("hardlinks to dropped entries dropped:", &c.hardlinks_dropped),
        ("entries dropped (outside the root, unknown type, invalid whiteout):", &c.paths_dropped),
        ("leading / stripped from", &c.absolute_stripped),
        ("security.capability removed from", &c.capabilities_removed),
        ("owner or overlay xattrs removed from", &c.owner_xattrs_removed),
        ("ACLs removed from", &c.acls_removed),
        ("sparse files written dense:", &c.sparse_expanded),
    ] {
        if t.count > 0 {
            let _ = writeln!(out, "    - {what} {}{}", t.count, super::examples(t));
        }
    }
    if c.global_headers_dropped > 0 {
        let _ = writeln!(out, "    - PAX global headers dropped: {}", c.global_headers_dropped);
    }
}
