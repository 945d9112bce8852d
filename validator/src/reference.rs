//! The IMAGE argument: a layout directory, an archive, or the skopeo-style
//! `oci:PATH[:REF]` and `oci-archive:PATH[:REF]` references.

use std::path::PathBuf;

use crate::error::Error;

/// What kind of IMAGE argument was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `oci:PATH`: an OCI image layout directory.
    Directory,
    /// `oci-archive:PATH`: a tar archive of an image layout.
    Archive,
    /// A bare path: a directory is a layout, a file an archive.
    Detect,
}

/// The image layout an IMAGE argument names, and the image in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// How the path is to be read.
    pub kind: Kind,
    /// The layout directory or archive.
    pub path: PathBuf,
    /// The `org.opencontainers.image.ref.name` to select, if any.
    pub ref_name: Option<String>,
}

impl Reference {
    /// Parses IMAGE; `--ref` (if given) must agree with a `:REF` suffix.
    pub fn parse(arg: &str, ref_flag: Option<&str>) -> Result<Reference, Error> {
        let (kind, rest) = if let Some(rest) = arg.strip_prefix("oci-archive:") {
            (Kind::Archive, rest)
        } else if let Some(rest) = arg.strip_prefix("oci:") {
            (Kind::Directory, rest)
        } else {
            (Kind::Detect, arg)
        };
        let (path, suffix) = match kind {
            Kind::Detect => (rest, None),
            _ => split_ref(rest),
        };
        if path.is_empty() {
            return Err(Error::usage(format!("{arg}: no path given")));
        }
        let ref_name = match (suffix, ref_flag) {
            (Some(a), Some(b)) if a != b => {
                return Err(Error::usage(format!("{arg}: the reference names image `{a}` but --ref names `{b}`")));
            }
            (a, b) => a.or(b).map(str::to_string),
        };
        Ok(Reference { kind, path: PathBuf::from(path), ref_name })
    }
}

/// `PATH:REF` splits at the last colon when what follows it cannot be part
/// of a path (no `/`), so `oci:/a:b/c` keeps its colon.
fn split_ref(s: &str) -> (&str, Option<&str>) {
    match s.rsplit_once(':') {
        Some((path, r)) if !r.is_empty() && !r.contains('/') => (path, Some(r)),
        _ => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &str, r: Option<&str>) -> Reference {
        Reference::parse(a, r).unwrap()
    }

    #[test]
    fn forms() {
        assert_eq!(parse("img", None).kind, Kind::Detect);
        let r = parse("oci:img:latest", None);
        assert_eq!((r.kind, r.path.to_str(), r.ref_name.as_deref()), (Kind::Directory, Some("img"), Some("latest")));
        let r = parse("oci-archive:/t/a.tar", Some("v1"));
        assert_eq!((r.kind, r.path.to_str(), r.ref_name.as_deref()), (Kind::Archive, Some("/t/a.tar"), Some("v1")));
        assert_eq!(parse("oci:/a:b/c", None).path.to_str(), Some("/a:b/c"));
        assert_eq!(parse("img:x", None).path.to_str(), Some("img:x"));
    }

    #[test]
    fn conflicting_refs_are_refused() {
        assert!(Reference::parse("oci:img:a", Some("b")).is_err());
        assert!(Reference::parse("oci:", None).is_err());
    }
}
