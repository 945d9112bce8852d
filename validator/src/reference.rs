//! The IMAGE argument: a layout directory or archive (`oci:PATH[:REF]`,
//! `oci-archive:PATH[:REF]`, or a bare path), or an image that skopeo
//! reaches: `docker://` (a registry), `docker-archive:` (a `docker save`
//! archive) and `containers-storage:` (podman's and buildah's store).

use std::path::PathBuf;

use crate::error::Error;

/// What kind of IMAGE argument was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `oci:PATH`: an OCI image layout directory.
    Directory,
    /// `oci-archive:PATH`: a tar archive of an image layout.
    Archive,
    /// A bare path: a directory is a layout; a file an OCI archive, or a
    /// `docker save` archive, told apart by what it holds.
    Detect,
    /// `docker://NAME[:TAG|@DIGEST]`: an image in a registry.
    Registry,
    /// `docker-archive:PATH[:REF]`: a `docker save` (or `podman save`)
    /// archive, in either of its formats.
    DockerArchive,
    /// `containers-storage:[STORE]NAME`: an image in podman's or buildah's
    /// local store.
    ContainersStorage,
}

/// How skopeo reaches an image outside a layout: registry credentials and
/// TLS, and the platform to choose from a multi-platform index. Ignored
/// for layouts and OCI archives.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[cfg_attr(
    feature = "cli",
    command(next_help_heading = "Image sources (docker://, docker-archive:, containers-storage:)")
)]
pub struct Source {
    /// Choose the image for OS/ARCH[/VARIANT] from a multi-platform index
    /// (default: this machine's platform).
    #[cfg_attr(feature = "cli", arg(long, value_name = "OS/ARCH[/VARIANT]"))]
    pub platform: Option<String>,
    /// Registry credentials from FILE (default: the files podman, skopeo
    /// and docker log in to).
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub authfile: Option<PathBuf>,
    /// Trust the CA certificates (*.crt) in DIR for the registry.
    #[cfg_attr(feature = "cli", arg(long, value_name = "DIR"))]
    pub cert_dir: Option<PathBuf>,
    /// Verify the registry's TLS certificate and refuse plain HTTP;
    /// --tls-verify=false for a local registry without a trusted
    /// certificate.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)
    )]
    pub tls_verify: bool,
}

impl Default for Source {
    fn default() -> Self {
        Source { platform: None, authfile: None, cert_dir: None, tls_verify: true }
    }
}

/// The image an IMAGE argument names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// How the path is to be read.
    pub kind: Kind,
    /// The layout directory or archive; for a registry or a store, the
    /// whole argument (`docker://...`), which names it in messages.
    pub path: PathBuf,
    /// The `org.opencontainers.image.ref.name` to select, if any; for
    /// `docker-archive:`, the archive's own reference (`NAME:TAG` or
    /// `@INDEX`).
    pub ref_name: Option<String>,
    /// How skopeo reaches a registry or store.
    pub source: Source,
}

/// Transports of containers-transports(5) that are not read, and what to
/// run instead.
const UNREAD: [(&str, &str); 5] = [
    ("dir", "skopeo copy dir:PATH oci:LAYOUT"),
    ("docker-daemon", "docker save NAME -o FILE.tar, then docker-archive:FILE.tar"),
    ("ostree", "skopeo copy ostree:REF oci:LAYOUT"),
    ("sif", "skopeo copy sif:FILE oci:LAYOUT"),
    ("tarball", "skopeo copy tarball:FILE oci:LAYOUT"),
];

/// The transports that are read, for messages.
pub const TRANSPORTS: &str = "oci:, oci-archive:, docker://, docker-archive: and containers-storage:";

impl Reference {
    /// A layout directory, with no image selected.
    pub fn directory(path: impl Into<PathBuf>) -> Reference {
        Reference { kind: Kind::Directory, path: path.into(), ref_name: None, source: Source::default() }
    }

    /// Parses IMAGE; `--ref` (if given) must agree with a `:REF` suffix.
    pub fn parse(arg: &str, ref_flag: Option<&str>) -> Result<Reference, Error> {
        let (kind, rest) = if let Some(rest) = arg.strip_prefix("oci-archive:") {
            (Kind::Archive, rest)
        } else if let Some(rest) = arg.strip_prefix("oci:") {
            (Kind::Directory, rest)
        } else if let Some(rest) = arg.strip_prefix("docker://") {
            (Kind::Registry, rest)
        } else if let Some(rest) = arg.strip_prefix("docker-archive:") {
            (Kind::DockerArchive, rest)
        } else if let Some(rest) = arg.strip_prefix("containers-storage:") {
            (Kind::ContainersStorage, rest)
        } else {
            if let Some((transport, _)) = arg.split_once(':') {
                if let Some((_, instead)) = UNREAD.iter().find(|(t, _)| *t == transport) {
                    return Err(Error::usage(format!(
                        "{arg}: the {transport}: transport is not read (read are {TRANSPORTS}); run `{instead}` and name the result"
                    )));
                }
                if transport == "docker" {
                    return Err(Error::usage(format!(
                        "{arg}: a registry image is written docker://NAME (two slashes)"
                    )));
                }
            }
            (Kind::Detect, arg)
        };
        if rest.is_empty() {
            return Err(Error::usage(format!("{arg}: no path or image name given")));
        }
        if matches!(kind, Kind::Registry | Kind::ContainersStorage) {
            if let Some(r) = ref_flag {
                return Err(Error::usage(format!(
                    "{arg}: --ref {r} selects by org.opencontainers.image.ref.name in a layout; name the tag or digest in the reference itself"
                )));
            }
            return Ok(Reference { kind, path: PathBuf::from(arg), ref_name: None, source: Source::default() });
        }
        let (path, suffix) = match kind {
            Kind::Detect => (rest, None),
            // skopeo's own rule: the path ends at the first colon.
            Kind::DockerArchive => match rest.split_once(':') {
                Some((p, r)) if !r.is_empty() => (p, Some(r)),
                _ => (rest.trim_end_matches(':'), None),
            },
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
        Ok(Reference { kind, path: PathBuf::from(path), ref_name, source: Source::default() })
    }

    /// The same reference, reached with `source`.
    pub fn with_source(self, source: Source) -> Reference {
        Reference { source, ..self }
    }

    /// What skopeo is given for this reference (`docker://...`,
    /// `docker-archive:PATH[:REF]`, `containers-storage:...`); `None` for
    /// the kinds read here.
    pub fn skopeo_reference(&self) -> Option<String> {
        match self.kind {
            Kind::Registry | Kind::ContainersStorage => Some(self.path.to_string_lossy().into_owned()),
            Kind::DockerArchive | Kind::Detect => {
                let mut s = format!("docker-archive:{}", self.path.display());
                if let Some(r) = &self.ref_name {
                    s.push(':');
                    s.push_str(r);
                }
                Some(s)
            }
            Kind::Directory | Kind::Archive => None,
        }
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
    fn skopeo_transports() {
        let r = parse("docker://127.0.0.1:5000/a/b:v1", None);
        assert_eq!((r.kind, r.skopeo_reference().as_deref()), (Kind::Registry, Some("docker://127.0.0.1:5000/a/b:v1")));
        let r = parse("docker-archive:/t/x.tar:busybox:latest", None);
        assert_eq!(
            (r.kind, r.path.to_str(), r.ref_name.as_deref()),
            (Kind::DockerArchive, Some("/t/x.tar"), Some("busybox:latest"))
        );
        let r = parse("containers-storage:localhost/x:1", None);
        assert_eq!(r.kind, Kind::ContainersStorage);
        assert!(Reference::parse("docker://x", Some("a")).is_err());
        for unread in ["dir:/x", "docker-daemon:x:1", "sif:x.sif", "docker:x"] {
            let e = Reference::parse(unread, None).unwrap_err().to_string();
            assert!(e.contains("docker://"), "{e}");
        }
    }

    #[test]
    fn conflicting_refs_are_refused() {
        assert!(Reference::parse("oci:img:a", Some("b")).is_err());
        assert!(Reference::parse("oci:", None).is_err());
    }
}
