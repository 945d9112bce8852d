//! The older `docker save` format (Docker before 25, `podman save`):
//! `manifest.json` lists each image's config file and layer tars, and no
//! manifest blob exists. It is served as a layout whose index and
//! manifests are written here, naming the archive's own config and layer
//! files by their digests, so every check still reads the real bytes.
//! (An archive of Docker 25 or later embeds an OCI layout and is read as
//! one: see [`super::open`].)

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;

use serde::Deserialize;
use serde_json::json;

use super::made::{Made, diff_ids, digest_of};
use super::{Archive, BlobStore, Member, OpenError, blob_path, read_bounded};
use crate::digest::{Digest, DigestAlgorithm, Hasher, HashingReader};
use crate::error::Error;
use crate::limits::Limits;
use crate::spec::media_type::{DOCKER_CONFIG, DOCKER_MANIFEST};

/// One image of `manifest.json`.
#[derive(Deserialize)]
struct Listed {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// A `docker save` archive without an OCI layout, read as a layout.
pub struct DockerSave {
    archive: Archive,
    /// `oci-layout`, `index.json`, the manifests and configs made or read here.
    files: Made,
    /// Layer blob paths, and the archive member each is read from.
    layers: HashMap<String, String>,
}

impl DockerSave {
    /// Reads `manifest.json` and the configs; `reference` (`NAME:TAG` as in
    /// RepoTags, or `@INDEX`) selects one image, else all are served.
    pub fn open(archive: Archive, reference: Option<&str>, limits: &Limits) -> Result<DockerSave, Error> {
        let path = archive.path.clone();
        let at = |what: &str, e: &dyn std::fmt::Display| Error::usage(format!("{}: {what}: {e}", path.display()));
        let read = |name: &str| -> Result<Vec<u8>, Error> {
            let m = archive.open_following_links(name).map_err(|e| at(name, &e))?;
            read_bounded(m.reader, m.len, limits.max_json_bytes).map_err(|e| at(name, &e))
        };
        let listed: Vec<Listed> = serde_json::from_slice(&read("manifest.json")?)
            .map_err(|e| at("manifest.json", &format!("not a docker save manifest: {e}")))?;
        let chosen: Vec<(usize, &Listed)> = match reference {
            None => listed.iter().enumerate().collect(),
            Some(r) => {
                let found = match r.strip_prefix('@') {
                    Some(n) => n.parse::<usize>().ok().and_then(|n| listed.get(n).map(|l| (n, l))),
                    None => listed.iter().enumerate().find(|(_, l)| l.repo_tags.iter().flatten().any(|t| t == r)),
                };
                let Some(found) = found else {
                    let tags: Vec<&str> =
                        listed.iter().flat_map(|l| l.repo_tags.iter().flatten()).map(String::as_str).collect();
                    return Err(at(
                        "manifest.json",
                        &format!(
                            "has no image {r}; it lists {} image(s){}, chosen by NAME:TAG or by @INDEX from 0",
                            listed.len(),
                            if tags.is_empty() { String::new() } else { format!(" tagged {}", tags.join(", ")) }
                        ),
                    ));
                };
                vec![found]
            }
        };
        let mut files = Vec::new();
        let mut layers = HashMap::new();
        let mut entries = Vec::new();
        for (n, image) in chosen {
            let config = read(&image.config)?;
            let config_digest = digest_of(&config);
            let diff_ids = diff_ids(&config);
            let mut descriptors = Vec::new();
            for (i, member) in image.layers.iter().enumerate() {
                let (media_type, digest, size) = describe_layer(&archive, member, diff_ids.get(i))
                    .map_err(|e| at(&format!("layer {i} ({member})"), &e))?;
                layers.insert(blob_path(&digest), member.clone());
                descriptors.push(json!({"mediaType": media_type, "digest": digest.to_string(), "size": size}));
            }
            // A Docker schema 2 manifest, which is what `docker load`
            // makes of the entry, and which like this format holds no
            // annotations: the validator then asks for the config Label.
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {
                    "mediaType": DOCKER_CONFIG,
                    "digest": config_digest.to_string(),
                    "size": config.len(),
                },
                "layers": descriptors,
            });
            let manifest = serde_json::to_vec(&manifest).expect("a JSON value serialises");
            let manifest_digest = digest_of(&manifest);
            let name = match reference {
                Some(r) => Some(r.to_string()),
                None => image.repo_tags.iter().flatten().next().cloned(),
            };
            let mut entry = json!({
                "mediaType": DOCKER_MANIFEST,
                "digest": manifest_digest.to_string(),
                "size": manifest.len(),
            });
            // The tag names the image in reports and for --ref; without
            // one, its position in manifest.json does.
            entry["annotations"] =
                json!({"org.opencontainers.image.ref.name": name.unwrap_or_else(|| format!("@{n}"))});
            entries.push(entry);
            files.push((blob_path(&config_digest), config));
            files.push((blob_path(&manifest_digest), manifest));
        }
        let mut made = Made::layout(entries);
        for (name, bytes) in files {
            made.insert(name, bytes);
        }
        Ok(DockerSave { archive, files: made, layers })
    }
}

impl BlobStore for DockerSave {
    fn open(&self, name: &str) -> Result<Member, OpenError> {
        if let Some(member) = self.files.open(name) {
            return Ok(member);
        }
        match self.layers.get(name) {
            Some(member) => self.archive.open_following_links(member),
            None => Err(OpenError::Missing),
        }
    }

    fn location(&self) -> &Path {
        &self.archive.path
    }
}

/// A layer file's media type (by its first bytes), digest and size. An
/// uncompressed layer is named by the config's diff_id, which the reader
/// then checks against the bytes; a compressed one is hashed here.
fn describe_layer(
    archive: &Archive,
    member: &str,
    diff_id: Option<&String>,
) -> io::Result<(&'static str, Digest, u64)> {
    let open = || archive.open_following_links(member).map_err(|e| io::Error::other(e.to_string()));
    let mut m = open()?;
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match m.reader.read(&mut magic[got..])? {
            0 => break,
            n => got += n,
        }
    }
    // Docker's own layer types: these are Docker images.
    let media_type = if got >= 2 && magic[..2] == [0x1f, 0x8b] {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    } else if got == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        "application/vnd.docker.image.rootfs.diff.tar.zstd"
    } else {
        "application/vnd.docker.image.rootfs.diff.tar"
    };
    let named = diff_id.and_then(|d| d.parse::<Digest>().ok());
    let digest = match named {
        Some(d) if media_type.ends_with(".diff.tar") => d,
        _ => {
            let hasher = Hasher::new(&DigestAlgorithm::Sha256);
            let mut reader = HashingReader::new(open()?.reader, hasher);
            io::copy(&mut reader, &mut io::sink())?;
            reader.finish().0.expect("sha256 is computed").parse().expect("a sha256 digest is valid")
        }
    };
    Ok((media_type, digest, m.len))
}
