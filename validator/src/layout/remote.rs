//! Images that skopeo reaches (a registry, a `docker save` archive without
//! an OCI layout inside, podman's or buildah's store), served as a layout
//! of one image so that every command reads them through the same
//! pipeline as a layout on disk.
//!
//! skopeo runs as a child process (its image proxy). It resolves the
//! reference, the platform, the credentials and TLS exactly as `skopeo
//! copy` would, and hands each blob over a pipe: nothing is written to
//! disk, and what is held in memory is a few chunks per blob being read.
//! Digests and sizes are checked by the reader, as for any store.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use containers_image_proxy::{ImageProxy, ImageProxyConfig, OpenedImage};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::made::{Made, diff_ids, digest_of};
use super::{BlobStore, Member, OpenError, blob_path};
use crate::digest::Digest;
use crate::error::Error;
use crate::reference::{Kind, Reference};

/// Bytes per chunk handed from skopeo's pipe to the reader, and chunks in
/// flight per blob: bounds the memory of a blob being read.
const CHUNK: usize = 256 << 10;
const CHUNKS_IN_FLIGHT: usize = 4;

/// Blobs fetched on demand, by layout-relative name: digest and size.
type Blobs = HashMap<String, (Digest, u64)>;

/// One image read through skopeo, as a layout: `oci-layout`, an
/// `index.json` naming its manifest, and the blobs the manifest names.
pub struct Remote {
    runtime: Option<tokio::runtime::Runtime>,
    proxy: Arc<ImageProxy>,
    image: Arc<OpenedImage>,
    /// `oci-layout`, `index.json`, the manifest (and a converted config).
    files: Made,
    /// The blobs the manifest names.
    blobs: Blobs,
    location: PathBuf,
}

impl Remote {
    /// Starts skopeo, opens the image and reads its manifest.
    pub fn open(reference: &Reference) -> Result<Remote, Error> {
        let name = reference.skopeo_reference().ok_or_else(|| Error::usage("not a skopeo reference"))?;
        let location = reference.path.clone();
        let at = |what: &str, e: &dyn std::fmt::Display| Error::usage(format!("{name}: {what}: {}", explain(e)));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("single-id-skopeo")
            .enable_all()
            .build()
            .map_err(|e| at("cannot start the skopeo client", &e))?;
        let config = config(reference)?;
        let (proxy, image, manifest, config) = runtime.block_on(async {
            let proxy = match ImageProxy::new_with_config(config).await {
                Ok(p) => p,
                Err(containers_image_proxy::Error::SkopeoSpawnError(e)) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(Error::usage(format!(
                        "{name}: reading registries, docker-archive: and containers-storage: needs skopeo, which is not installed (Debian and Fedora package skopeo); or copy the image to a layout first"
                    )));
                }
                Err(e) => return Err(at("cannot start skopeo", &e)),
            };
            let image = proxy.open_image(&name).await.map_err(|e| at("cannot open the image", &e))?;
            let (original, manifest) =
                proxy.fetch_manifest_raw_oci(&image).await.map_err(|e| at("cannot read the manifest", &e))?;
            // skopeo hands an OCI manifest over as it is; any other (a
            // Docker schema 2 one) converted, under the original's digest.
            let manifest = if original == crate::digest::sha256_of(&manifest) { manifest } else { as_docker(manifest) };
            let config = proxy.fetch_config_raw(&image).await.map_err(|e| at("cannot read the config", &e))?;
            let manifest = if reference.kind == Kind::ContainersStorage {
                stored_layers(&proxy, &image, manifest, &config).await.map_err(|e| at("cannot read a layer", &e))?
            } else {
                manifest
            };
            Ok((proxy, image, manifest, config))
        })?;
        let (mut files, blobs) = synthesise(&manifest);
        // skopeo 1.9 to 1.13 give a Docker schema 2 image's manifest
        // converted to OCI, naming the config as converted too, which the
        // source does not hold; the converted config is served from
        // here. It is used only when its digest is the one the manifest
        // names (for an OCI image, the config is fetched as stored).
        let config_path = blob_path(&digest_of(&config));
        if blobs.contains_key(&config_path) {
            files.insert(config_path, config);
        }
        Ok(Remote { runtime: Some(runtime), proxy: Arc::new(proxy), image: Arc::new(image), files, blobs, location })
    }

    /// Streams one blob from skopeo's pipe through a bounded channel.
    fn fetch(&self, digest: Digest, size: u64) -> Member {
        let (tx, rx) = mpsc::channel::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
        let proxy = Arc::clone(&self.proxy);
        let image = Arc::clone(&self.image);
        let runtime = self.runtime.as_ref().expect("the runtime lives as long as the store");
        runtime.spawn(async move {
            let (mut reader, driver) = match proxy.get_blob(&image, &digest, size).await {
                Ok(parts) => parts,
                Err(e) => {
                    let _ = tx.send(Err(io::Error::other(format!("skopeo: {}", explain(&e))))).await;
                    return;
                }
            };
            let sender = tx.clone();
            // Owns the pipe: when the reader stops early, dropping this
            // closes it, and skopeo's side of the transfer ends too.
            let copy = async move {
                loop {
                    let mut chunk = vec![0u8; CHUNK];
                    match reader.read(&mut chunk).await {
                        Ok(0) => return true,
                        Ok(n) => {
                            chunk.truncate(n);
                            if sender.send(Ok(chunk)).await.is_err() {
                                return false;
                            }
                        }
                        Err(e) => {
                            let _ = sender.send(Err(e)).await;
                            return false;
                        }
                    }
                }
            };
            let (whole, finished) = tokio::join!(copy, driver);
            if let (true, Err(e)) = (whole, finished) {
                let _ = tx.send(Err(io::Error::other(format!("skopeo: {}", explain(&e))))).await;
            }
        });
        Member { len: size, reader: Box::new(Chunks { rx, chunk: Vec::new(), at: 0 }) }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // A transfer the reader abandoned may still wait on skopeo: do not
        // wait for it. Closing the socket ends skopeo.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl BlobStore for Remote {
    fn open(&self, name: &str) -> Result<Member, OpenError> {
        if let Some(member) = self.files.open(name) {
            return Ok(member);
        }
        match self.blobs.get(name) {
            Some((digest, size)) => Ok(self.fetch(digest.clone(), *size)),
            None => Err(OpenError::Missing),
        }
    }

    fn location(&self) -> &Path {
        &self.location
    }
}

/// The reader's end of a blob's channel.
struct Chunks {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => (self.chunk, self.at) = (chunk, 0),
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The converted manifest of a Docker schema 2 image, typed as what it
/// came from: Docker's format has no annotations, and the validator asks
/// such an image for the config Label instead (ANNOTATION-DOCKER), as it
/// does for one in a layout. Digests and sizes are kept.
fn as_docker(manifest: Vec<u8>) -> Vec<u8> {
    use crate::spec::media_type::{DOCKER_CONFIG, DOCKER_MANIFEST};
    let Ok(mut m) = serde_json::from_slice::<Value>(&manifest) else { return manifest };
    m["mediaType"] = json!(DOCKER_MANIFEST);
    if let Some(config) = m.get_mut("config").filter(|c| c.is_object()) {
        config["mediaType"] = json!(DOCKER_CONFIG);
    }
    for layer in m.get_mut("layers").and_then(Value::as_array_mut).into_iter().flatten() {
        let docker = match layer.get("mediaType").and_then(Value::as_str) {
            Some("application/vnd.oci.image.layer.v1.tar+gzip") => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Some("application/vnd.oci.image.layer.v1.tar") => "application/vnd.docker.image.rootfs.diff.tar",
            _ => continue,
        };
        layer["mediaType"] = json!(docker);
    }
    serde_json::to_vec(&m).expect("a JSON value serialises")
}

/// A store keeps layers uncompressed, under their diff_ids. An image
/// built here names them so; one that was pulled keeps the manifest it was
/// pulled with, naming compressed blobs the store no longer has (skopeo
/// copy and podman push compress the layers anew). Such layers are named by
/// their diff_id instead, as uncompressed tars, their sizes counted by
/// reading each once; the rest of the manifest is kept as stored.
async fn stored_layers(
    proxy: &ImageProxy,
    image: &OpenedImage,
    manifest: Vec<u8>,
    config: &[u8],
) -> Result<Vec<u8>, containers_image_proxy::Error> {
    let Ok(mut parsed) = serde_json::from_slice::<Value>(&manifest) else { return Ok(manifest) };
    let diff_ids = diff_ids(config);
    let Some(layers) = parsed.get_mut("layers").and_then(Value::as_array_mut) else { return Ok(manifest) };
    let mut changed = false;
    for (layer, diff_id) in layers.iter_mut().zip(&diff_ids) {
        let media_type = layer.get("mediaType").and_then(Value::as_str).unwrap_or_default();
        let compressed = media_type.ends_with("gzip") || media_type.ends_with("zstd");
        let Ok(digest) = diff_id.parse::<Digest>() else { continue };
        if !compressed || layer.get("digest").and_then(Value::as_str) == Some(diff_id) {
            continue;
        }
        let (mut reader, driver) = proxy.get_blob(image, &digest, 0).await?;
        let count = async move {
            let mut chunk = vec![0u8; CHUNK];
            let mut total = 0u64;
            loop {
                match reader.read(&mut chunk).await? {
                    0 => return Ok::<u64, io::Error>(total),
                    n => total += n as u64,
                }
            }
        };
        let (size, finished) = tokio::join!(count, driver);
        let size = size?;
        // The proxy checks the size asked for after the digest, and its
        // protocol before 0.2.5 has no way to ask a layer's size: asked
        // for 0 bytes, a blob whose digest holds fails with exactly this.
        match finished {
            Ok(()) => {}
            Err(e) if e.to_string().ends_with(&format!("expected 0 bytes in blob, got {size}")) => {}
            Err(e) => return Err(e),
        }
        layer["size"] = json!(size);
        layer["digest"] = json!(diff_id);
        layer["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar");
        changed = true;
    }
    Ok(if changed { serde_json::to_vec(&parsed).expect("a JSON value serialises") } else { manifest })
}

/// skopeo's options for `reference`.
fn config(reference: &Reference) -> Result<ImageProxyConfig, Error> {
    let source = &reference.source;
    let mut config = ImageProxyConfig::default();
    config.authfile = source.authfile.clone();
    config.certificate_directory = source.cert_dir.clone();
    config.insecure_skip_tls_verification = Some(!source.tls_verify);
    if let Some(platform) = &source.platform {
        let parts: Vec<&str> = platform.split('/').collect();
        let (os, arch, variant) = match parts[..] {
            [os, arch] if !os.is_empty() && !arch.is_empty() => (os, arch, None),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                (os, arch, Some(variant))
            }
            _ => {
                return Err(Error::usage(format!(
                    "--platform {platform}: write OS/ARCH or OS/ARCH/VARIANT, e.g. linux/arm64/v8"
                )));
            }
        };
        // Global options of skopeo, before the proxy's subcommand.
        let mut command = std::process::Command::new("skopeo");
        command.args(["--override-os", os, "--override-arch", arch]);
        if let Some(variant) = variant {
            command.args(["--override-variant", variant]);
        }
        config.skopeo_cmd = Some(command);
    }
    Ok(config)
}

/// The layout of the one image: `oci-layout`, `index.json` naming the
/// manifest skopeo gave (OCI, converted by skopeo when the source holds a
/// Docker schema 2 manifest), and the manifest's config and layers.
fn synthesise(manifest: &[u8]) -> (Made, Blobs) {
    let digest = digest_of(manifest);
    let parsed: Value = serde_json::from_slice(manifest).unwrap_or(Value::Null);
    let media_type = parsed
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_string();
    let mut files =
        Made::layout(vec![json!({"mediaType": media_type, "digest": digest.to_string(), "size": manifest.len()})]);
    files.insert(blob_path(&digest), manifest.to_vec());
    // Only what the manifest names can be fetched; a descriptor the
    // validator finds malformed is reported by it, not here.
    let mut blobs = HashMap::new();
    let descriptors =
        parsed.get("config").into_iter().chain(parsed.get("layers").and_then(Value::as_array).into_iter().flatten());
    for d in descriptors {
        let digest = d.get("digest").and_then(Value::as_str).and_then(|s| s.parse::<Digest>().ok());
        if let (Some(digest), Some(size)) = (digest, d.get("size").and_then(Value::as_u64)) {
            blobs.insert(blob_path(&digest), (digest, size));
        }
    }
    (files, blobs)
}

/// skopeo's error, with a hint for the failures users meet first.
fn explain(e: &dyn std::fmt::Display) -> String {
    let mut message = e.to_string();
    // The proxy's method names say nothing to a user.
    if let Some(rest) = message.strip_prefix("failed to invoke method ") {
        if let Some((_, why)) = rest.split_once(": ") {
            message = why.to_string();
        }
    }
    let hint = if message.contains("x509:") || message.contains("certificate") {
        " (--cert-dir DIR trusts the CA certificates in DIR; --tls-verify=false skips the check for a local registry)"
    } else if message.contains("unauthorized")
        || message.contains("authentication required")
        || message.contains("denied")
    {
        " (log in with `podman login` or `skopeo login`, or give --authfile FILE)"
    } else if message.contains("http: server gave HTTP response to HTTPS client") {
        " (a registry without TLS needs --tls-verify=false)"
    } else {
        ""
    };
    format!("{message}{hint}")
}
