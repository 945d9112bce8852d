//! The summary `single-id unpack` prints when it is done.

use std::fmt::Write;

use crate::stats::Tally;
use crate::unpack::Unpacked;

/// The JSON report of a finished unpack (schema/unpack-report.schema.json).
pub fn json(u: &Unpacked, target: &str, dest: &str) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct UnpackReport<'a> {
        report_version: u32,
        target: &'a str,
        destination: &'a str,
        #[serde(flatten)]
        unpacked: &'a Unpacked,
    }
    super::to_json(&UnpackReport { report_version: 1, target, destination: dest, unpacked: u })
}

/// The text summary of a finished unpack.
pub fn render(u: &Unpacked, dest: &str) -> String {
    let s = &u.summary;
    let mut out = String::new();
    let _ = writeln!(out, "unpacked image {} (id-flattening: {}) into {dest}", u.image, u.value.as_str());
    let _ = writeln!(
        out,
        "  written: {} files, {} directories, {} symlinks, {} hardlinks, {} FIFOs; {} whiteouts applied",
        s.files, s.directories, s.symlinks, s.hardlinks, s.fifos, s.whiteouts
    );
    // Each line names the requirement that made the change.
    for (what, t, clause) in [
        ("cleared setuid/setgid bits on", &s.setid_cleared, "CONSUMER-SETID-CLEARED"),
        ("skipped devices:", &s.devices_skipped, "CONSUMER-DEVICES"),
        ("skipped entries of unknown type:", &s.unknown_skipped, "CONSUMER-UNKNOWN-TYPES"),
        ("skipped hardlinks whose target does not exist:", &s.hardlinks_skipped, "CONSUMER-HARDLINK"),
        (
            "rejected entries:",
            &s.rejected,
            "CONSUMER-DOTDOT, CONSUMER-SYMLINK-PARENT, CONSUMER-WHITEOUT-INVALID, CONSUMER-SPARSE, CONSUMER-LIMITS",
        ),
        ("did not apply security.capability on", &s.capabilities_dropped, "CONSUMER-XATTR-CAPABILITY"),
        ("did not apply owner or overlay xattrs on", &s.owner_xattrs_excluded, "CONSUMER-XATTR-EXCLUDED"),
        ("did not apply other xattrs on", &s.xattrs_not_applied, "CONSUMER-XATTR-OTHER"),
        ("the filesystem refused user.* xattrs on", &s.user_xattrs_refused, "CONSUMER-XATTR-USER"),
    ] {
        line(&mut out, what, t, clause);
    }
    out
}

fn line(out: &mut String, what: &str, t: &Tally, clause: &str) {
    if t.count > 0 {
        let _ = writeln!(out, "  {what} {}{} [{clause}]", t.count, super::examples(t));
    }
}
