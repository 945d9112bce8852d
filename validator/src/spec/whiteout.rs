//! Whiteout names (OCI-LAYER-WHITEOUTS, CONSUMER-WHITEOUT,
//! CONSUMER-OPAQUE, CONSUMER-WHITEOUT-INVALID).

use crate::layer::path::Normal;

/// The prefix of every whiteout name.
pub const PREFIX: &[u8] = b".wh.";
/// The opaque marker: empties its directory of lower-layer content.
pub const OPAQUE: &[u8] = b".wh..wh..opq";

/// What the last component of an entry name says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name<'a> {
    /// An ordinary name.
    Plain,
    /// `.wh..wh..opq`.
    Opaque,
    /// `.wh.NAME`: removes NAME from the same directory.
    Removes(&'a [u8]),
    /// A `.wh.` name that removes nothing a consumer may act on: a bare
    /// `.wh.`, `.wh..`, `.wh...` (NAME would be `.` or `..`, which the path
    /// normalization would turn into the directory or its parent), or a
    /// `.wh..wh.` name other than the opaque marker.
    Invalid(&'static str),
}

impl Name<'_> {
    /// Any `.wh.` name, valid or not.
    pub fn is_whiteout(self) -> bool {
        self != Name::Plain
    }
}

/// Classifies the last component `name` of an entry.
pub fn classify(name: &[u8]) -> Name<'_> {
    let Some(rest) = name.strip_prefix(PREFIX) else { return Name::Plain };
    if name == OPAQUE {
        return Name::Opaque;
    }
    match rest {
        b"" => Name::Invalid("a bare `.wh.` names nothing"),
        b"." | b".." => Name::Invalid("`.wh.` followed by `.` or `..` would name a directory or its parent"),
        r if r.starts_with(PREFIX) => Name::Invalid("a `.wh..wh.` name other than the opaque marker"),
        r => Name::Removes(r),
    }
}

/// A `.wh.` name used as a directory: no consumer creates such a
/// directory, and layer.md rules out ordinary objects with such names.
pub fn under_whiteout(path: &Normal) -> bool {
    let mut components = path.components().peekable();
    while let Some(c) = components.next() {
        if components.peek().is_some() && c.starts_with(PREFIX) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(classify(b"passwd"), Name::Plain);
        assert_eq!(classify(b".wh..wh..opq"), Name::Opaque);
        assert_eq!(classify(b".wh.passwd"), Name::Removes(b"passwd"));
        assert_eq!(classify(b".wh..hidden"), Name::Removes(b".hidden"));
        assert_eq!(classify(b".wh...."), Name::Removes(b"..."));
        for bad in [&b".wh."[..], b".wh..", b".wh...", b".wh..wh.x", b".wh..wh..opq2"] {
            assert!(matches!(classify(bad), Name::Invalid(_)), "{bad:?}");
        }
        let p = |s: &str| Normal::parse(s.as_bytes()).unwrap();
        assert!(under_whiteout(&p("a/.wh.b/c")));
        assert!(!under_whiteout(&p("a/b/.wh.c")));
    }
}
