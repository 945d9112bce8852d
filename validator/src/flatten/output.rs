//! The OUTPUT argument: where the new layout goes, and the check that
//! nothing is there yet.

use std::io;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::reference::{self, Reference};

/// Where the new layout goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// An OCI layout directory.
    Directory(PathBuf),
    /// An OCI archive: the layout as an uncompressed tar.
    Archive(PathBuf),
}

impl Output {
    /// `DIR`, `oci:DIR`, `oci-archive:PATH`, or a PATH ending in `.tar`.
    pub fn parse(arg: &str) -> Result<Output> {
        let r = Reference::parse(arg, None)?;
        if let Some(name) = r.ref_name {
            return Err(Error::usage(format!(
                "{arg}: OUTPUT takes no `:{name}`; the output keeps the input's ref names (choose an image with --ref)"
            )));
        }
        Ok(match r.kind {
            reference::Kind::Archive => Output::Archive(r.path),
            reference::Kind::Directory => Output::Directory(r.path),
            reference::Kind::Detect if r.path.extension().is_some_and(|e| e == "tar") => Output::Archive(r.path),
            reference::Kind::Detect => Output::Directory(r.path),
            reference::Kind::Registry | reference::Kind::DockerArchive | reference::Kind::ContainersStorage => {
                return Err(Error::usage(format!(
                    "{arg}: flatten writes an OCI layout (DIR, oci:DIR, oci-archive:PATH or PATH.tar); push or load it afterwards, e.g. `skopeo copy oci:DIR docker://NAME`"
                )));
            }
        })
    }
}

/// OUTPUT must not exist, or be an empty directory (a directory output).
pub(super) fn check_free(output: &Output) -> Result<()> {
    match output {
        Output::Directory(p) => match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => {
                let mut entries = std::fs::read_dir(p).map_err(|e| Error::usage_io(p.display(), e))?;
                if entries.next().is_some() {
                    return Err(Error::usage(format!("{}: output exists and is not empty", p.display())));
                }
                Ok(())
            }
            Ok(_) => Err(Error::usage(format!("{}: output exists and is not a directory", p.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::usage_io(p.display(), e)),
        },
        Output::Archive(p) => match std::fs::symlink_metadata(p) {
            Ok(_) => Err(Error::usage(format!("{}: output archive exists already", p.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::usage_io(p.display(), e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs() {
        let p = |s: &str| Output::parse(s).unwrap();
        assert_eq!(p("out"), Output::Directory("out".into()));
        assert_eq!(p("oci:out"), Output::Directory("out".into()));
        assert_eq!(p("out.tar"), Output::Archive("out.tar".into()));
        assert_eq!(p("oci-archive:out"), Output::Archive("out".into()));
        assert!(Output::parse("oci:out:latest").is_err());
    }
}
