//! The media types that make an image (spec "Terminology": an OCI or a
//! Docker schema 2 manifest with its config, indexes of either kind, and
//! the layer types of both).

use oci_spec::image::MediaType;

/// An OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// A Docker manifest list, read as an index.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// A Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The config of a Docker schema 2 image.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// What a descriptor's media type makes of its blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Document {
    /// An OCI index or a Docker manifest list.
    Index,
    /// An OCI image manifest.
    Manifest,
    /// A Docker schema 2 manifest: no `annotations` member of its own, so
    /// the config Labels carry the declaration (ANNOTATION-DOCKER).
    DockerManifest,
    /// Anything else (a config, a layer, an artifact): not a document the
    /// walk follows.
    Other,
}

/// What a descriptor with media type `t` points at.
pub fn document(t: &MediaType) -> Document {
    match t {
        MediaType::ImageIndex => Document::Index,
        MediaType::ImageManifest => Document::Manifest,
        MediaType::Other(t) if t == DOCKER_LIST => Document::Index,
        MediaType::Other(t) if t == DOCKER_MANIFEST => Document::DockerManifest,
        _ => Document::Other,
    }
}

/// A config media type that makes a manifest an image rather than an artifact.
pub fn is_image_config(t: &MediaType) -> bool {
    match t {
        MediaType::ImageConfig => true,
        MediaType::Other(t) => t == DOCKER_CONFIG,
        _ => false,
    }
}

/// The OCI layer media types this tool writes, by compression.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// A gzip-compressed OCI layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// A zstd-compressed OCI layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// How a layer blob is compressed, from its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// An uncompressed tar stream.
    None,
    /// gzip, possibly several members one after the other.
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// `None` for a media type that is not a layer this tool can read.
    pub fn of(media_type: &MediaType) -> Option<Compression> {
        use MediaType::*;
        Some(match media_type {
            ImageLayer | ImageLayerNonDistributable => Compression::None,
            ImageLayerGzip | ImageLayerNonDistributableGzip => Compression::Gzip,
            ImageLayerZstd | ImageLayerNonDistributableZstd => Compression::Zstd,
            Other(t) => match t.as_str() {
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
                | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
                "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
                "application/vnd.docker.image.rootfs.diff.tar.zstd" => Compression::Zstd,
                _ => return None,
            },
            _ => return None,
        })
    }
}
