//! Which IDs, names and `config.User` values count as root
//! (PRODUCER-ID-RANGE, PRODUCER-NAMES, PRODUCER-CONFIG-USER).

/// Largest ID Linux can give a file: `(uid_t)-1` is reserved.
pub const MAX_ID: u64 = u32::MAX as u64 - 1;

/// The name a flattened image may record, and only for ID 0.
pub const ROOT: &[u8] = b"root";

/// A user or group name a flattened image may record for an entry whose
/// corresponding ID is `id`: empty, or `root` where the ID is 0.
pub fn name_ok(name: &[u8], id: u64) -> bool {
    name.is_empty() || (name == ROOT && id == 0)
}

/// `config.User` values that mean root: absent, empty, and each of the
/// numeric and name forms of 0 for the user and, optionally, the group.
pub fn root_user(user: Option<&str>) -> bool {
    let Some(user) = user else { return true };
    let is_root = |s: &str| s == "0" || s == "root";
    match user.split_once(':') {
        None => user.is_empty() || is_root(user),
        Some((u, g)) => is_root(u) && is_root(g),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_forms() {
        for ok in
            [None, Some(""), Some("0"), Some("root"), Some("0:0"), Some("root:root"), Some("0:root"), Some("root:0")]
        {
            assert!(root_user(ok), "{ok:?}");
        }
        for bad in ["1000", "postgres", "0:1", "root:", ":0", "0:0:0", "Root"] {
            assert!(!root_user(Some(bad)), "{bad}");
        }
        assert!(name_ok(b"", 1000));
        assert!(name_ok(b"root", 0));
        assert!(!name_ok(b"root", 1000));
        assert!(!name_ok(b"alice", 0));
    }
}
