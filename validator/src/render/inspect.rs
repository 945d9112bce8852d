//! Plain-text view of an inspect report.

use std::fmt::Write;

use crate::inspect::{ImageReport, InspectReport};
use crate::stats::{LayerStats, Tally};

/// The text view of `single-id inspect`: per image, what the layers
/// record, what a single-ID consumer changes, and the value recommended.
pub fn render(report: &InspectReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "inspecting {}", report.target);
    for img in &report.images {
        image(&mut out, img);
    }
    if !report.findings.is_empty() {
        let _ = writeln!(out, "\nnot everything could be read (run `single-id validate` for details):");
        for f in &report.findings {
            let _ = writeln!(out, "  {}[{}]: {}", f.severity.as_str(), f.rule.id, f.message);
        }
    }
    out
}

fn image(out: &mut String, img: &ImageReport) {
    let _ = writeln!(out, "\nimage {}\n  manifest {}", img.name, img.manifest);
    let d = &img.id_flattening;
    let declared = if d.declared.is_empty() {
        "nothing declared (consumers assume \"allowed\")".to_string()
    } else {
        format!(
            "declared {}",
            d.declared.iter().map(|d| format!("{} {:?}", d.place_words(), d.value)).collect::<Vec<_>>().join(", ")
        )
    };
    let _ = writeln!(out, "  id-flattening: {declared}");
    let _ = writeln!(out, "  config.User: {:?}", img.config_user.as_deref().unwrap_or(""));
    for l in &img.layers {
        let _ = write!(out, "  layer {} {} ({})", l.index, l.digest, l.media_type);
        match &l.stats {
            None => {
                let _ = writeln!(out, ": could not be read");
            }
            Some(s) => {
                let _ = writeln!(out, ": {} entries", s.entries);
                stats(out, s);
            }
        }
    }
    let c = &img.on_unpack;
    let _ = writeln!(out, "  a single-ID consumer would, on unpack:");
    let _ = writeln!(
        out,
        "    - give all {} entries (now {} distinct UID:GID pairs) to the invoking user",
        c.owners_replaced, c.distinct_owners
    );
    if c.names_ignored > 0 {
        let _ = writeln!(out, "    - ignore the user/group names of {} entries", c.names_ignored);
    }
    change(out, "clear setuid/setgid bits on", &c.setid_cleared);
    change(out, "skip devices:", &c.devices_skipped);
    change(out, "skip entries of unknown type:", &c.unknown_types_skipped);
    change(out, "not apply security.capability on", &c.capabilities_dropped);
    change(out, "not apply ACLs or other privileged xattrs on", &c.privileged_xattrs_dropped);
    if c.user_loses_meaning {
        let _ = writeln!(
            out,
            "    - run as the invoking user, not as config.User {:?}",
            img.config_user.as_deref().unwrap_or("")
        );
    }
    let r = &img.recommendation;
    let _ = writeln!(out, "  recommended id-flattening: {} ({})", r.value.as_str(), r.reason);
}

fn stats(out: &mut String, s: &LayerStats) {
    let owners: Vec<String> =
        s.owners.iter().map(|o| format!("{}:{} x{}{}", o.uid, o.gid, o.tally.count, first(&o.tally))).collect();
    let _ = writeln!(out, "    owners: {}", owners.join(", "));
    if s.other_owners > 0 {
        let _ = writeln!(out, "      and {} entries with other owners (not tracked one by one)", s.other_owners);
    }
    let names: Vec<String> =
        s.names.iter().map(|n| format!("{}/{} x{}", name(&n.uname), name(&n.gname), n.tally.count)).collect();
    let _ = writeln!(out, "    names: {}", names.join(", "));
    for (what, t) in [
        ("setuid", &s.setuid),
        ("setgid", &s.setgid),
        ("sticky directories", &s.sticky_dirs),
        ("devices", &s.devices),
        ("FIFOs", &s.fifos),
        ("unknown types", &s.unknown_types),
        ("security.capability", &s.capabilities),
        ("owner or overlay records (user.rootlesscontainers, user.overlay.*, ...)", &s.owner_xattrs),
        ("ACLs", &s.acls),
        ("other privileged xattrs", &s.other_privileged_xattrs),
    ] {
        if t.count > 0 {
            let _ = writeln!(out, "    {what}: {}{}", t.count, super::examples(t));
        }
    }
    let _ = writeln!(
        out,
        "    hardlinks: {}, symlinks: {}, whiteouts: {}, user.* xattrs: {}",
        s.hardlinks, s.symlinks, s.whiteouts, s.user_xattrs
    );
}

fn change(out: &mut String, what: &str, t: &Tally) {
    if t.count > 0 {
        let _ = writeln!(out, "    - {what} {}{}", t.count, super::examples(t));
    }
}

fn first(t: &Tally) -> String {
    t.examples.first().map(|e| format!(" (e.g. {})", e.path)).unwrap_or_default()
}

/// A user or group name as recorded: `(none)` when the entry records none,
/// quoted otherwise, so that spaces and oddities stay visible.
fn name(n: &str) -> String {
    if n.is_empty() { "(none)".to_string() } else { format!("{n:?}") }
}
