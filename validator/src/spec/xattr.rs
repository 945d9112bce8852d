//! Extended attributes by what they carry (PRODUCER-NO-ID-XATTRS,
//! PRODUCER-NO-OWNER-XATTRS, CONSUMER-XATTR-USER, CONSUMER-XATTR-EXCLUDED,
//! CONSUMER-XATTR-CAPABILITY, CONSUMER-XATTR-OTHER).

/// What an attribute name means to a single-ID consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// `security.capability`: privilege relative to an owner.
    Capability,
    /// POSIX ACLs stored as `system.posix_acl_*`: they name IDs.
    Acl,
    /// A `user.` attribute that records owners or overlay state for
    /// another tool: umoci's `user.rootlesscontainers`, the kernel's
    /// `user.overlay.*`, fuse-overlayfs and containers/storage's
    /// `user.fuseoverlayfs.*` and `user.containers.override_stat`. Never
    /// applied by a consumer, never in a flattened image.
    OwnerBearing,
    /// Any other `user.` attribute: applied where the filesystem allows.
    User,
    /// Any other `security.`, `trusted.` or `system.` attribute.
    Privileged,
    /// A namespace Linux does not know; nothing sets it.
    Other,
}

/// `user.` names (exact, or a prefix ending in `.`) that carry owners or
/// overlay metadata.
const OWNER_BEARING: [&[u8]; 4] =
    [b"user.rootlesscontainers", b"user.containers.override_stat", b"user.overlay.", b"user.fuseoverlayfs."];

/// What the attribute `name` carries.
pub fn classify(name: &[u8]) -> Class {
    match name {
        b"security.capability" => Class::Capability,
        b"system.posix_acl_access" | b"system.posix_acl_default" => Class::Acl,
        n if OWNER_BEARING.iter().any(|p| if p.ends_with(b".") { n.starts_with(p) } else { n == *p }) => {
            Class::OwnerBearing
        }
        n if n.starts_with(b"user.") => Class::User,
        n if n.starts_with(b"security.") || n.starts_with(b"trusted.") || n.starts_with(b"system.") => {
            Class::Privileged
        }
        _ => Class::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(classify(b"security.capability"), Class::Capability);
        assert_eq!(classify(b"system.posix_acl_default"), Class::Acl);
        assert_eq!(classify(b"user.rootlesscontainers"), Class::OwnerBearing);
        assert_eq!(classify(b"user.overlay.redirect"), Class::OwnerBearing);
        assert_eq!(classify(b"user.fuseoverlayfs.override_stat"), Class::OwnerBearing);
        assert_eq!(classify(b"user.containers.override_stat"), Class::OwnerBearing);
        assert_eq!(classify(b"user.overlayish"), Class::User);
        assert_eq!(classify(b"user.comment"), Class::User);
        assert_eq!(classify(b"security.selinux"), Class::Privileged);
        assert_eq!(classify(b"trusted.overlay.opaque"), Class::Privileged);
        assert_eq!(classify(b"foo.bar"), Class::Other);
    }
}
