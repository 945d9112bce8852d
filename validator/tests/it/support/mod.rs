//! Test helpers: a temporary directory, real OCI layouts written to it with
//! real tar/gzip/zstd streams, the `single-id` binary, and the schemas.
#![allow(dead_code)] // each test binary uses a different part

pub mod adversarial;
pub mod layers;
pub mod measure;
pub mod rawtar;
pub mod registry;
pub mod schema;
pub mod unprivileged;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

pub use single_id::annotation::KEY;
pub const REF: &str = "org.opencontainers.image.ref.name";

/// Root of the repository (the workspace).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A temporary directory that the `single-id` binary runs in, so that
/// paths in its output are short and stable.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> Self {
        TestDir { dir: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Runs `single-id ARGS` with this directory as working directory.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_single-id")).args(args).current_dir(self.path()).output().unwrap();
        Run(out)
    }

    /// Runs a third-party tool here; panics with its stderr if it fails.
    pub fn tool(&self, program: &str, args: &[&str]) -> Output {
        let out = Command::new(program).args(args).current_dir(self.path()).output().unwrap_or_else(|e| {
            panic!("{program} is required for this test and could not run: {e} (.ci/run installs it)")
        });
        assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        out
    }
}

pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().expect("single-id was killed by a signal")
    }
    pub fn stdout(&self) -> String {
        String::from_utf8(self.0.stdout.clone()).unwrap()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8(self.0.stderr.clone()).unwrap()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.0.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout()))
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    single_id::digest::sha256_of(bytes)
}

#[derive(Clone, Copy, Debug)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    pub fn compress(self, tar: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => tar.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(tar).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(tar, 3).unwrap(),
        }
    }
}

/// A tar stream of regular files and directories, owned by `uid:gid`,
/// with fixed mtimes so the bytes are the same on every run.
pub fn tar_of(files: &[(&str, &[u8])], uid: u64, gid: u64) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_ustar();
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
        }
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// What one image of a test layout declares and contains.
#[derive(Clone)]
pub struct ImageSpec {
    pub ref_name: Option<String>,
    pub layers: Vec<(Vec<u8>, Compression)>,
    pub manifest_value: Option<String>,
    pub label_value: Option<String>,
    pub index_value: Option<String>,
}

impl ImageSpec {
    /// One gzip layer, declared `value` in the manifest and the Label.
    pub fn declared(ref_name: &str, value: Option<&str>) -> Self {
        ImageSpec {
            ref_name: Some(ref_name.into()),
            layers: vec![(tar_of(&[("etc/", b""), ("etc/hostname", b"test\n")], 0, 0), Compression::Gzip)],
            manifest_value: value.map(String::from),
            label_value: value.map(String::from),
            index_value: None,
        }
    }
}

/// An OCI image layout directory written blob by blob.
pub struct OciDir {
    pub root: PathBuf,
    manifests: Vec<Value>,
}

impl OciDir {
    pub fn create(root: PathBuf) -> Self {
        fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        fs::write(root.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let dir = OciDir { root, manifests: Vec::new() };
        dir.write_index();
        dir
    }

    /// A layout written by someone else, to read its blobs.
    pub fn open(root: PathBuf) -> Self {
        OciDir { root, manifests: Vec::new() }
    }

    /// Writes a blob and returns its descriptor.
    pub fn blob(&self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = sha256(bytes);
        fs::write(self.blob_file(&digest), bytes).unwrap();
        json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
    }

    pub fn blob_file(&self, digest: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
    }

    pub fn json_blob(&self, media_type: &str, doc: &Value) -> Value {
        self.blob(media_type, serde_json::to_string(doc).unwrap().as_bytes())
    }

    /// Writes an image's layers, config and manifest; returns the manifest
    /// descriptor, without adding it to the index.
    pub fn image(&self, spec: &ImageSpec) -> Value {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for (tar, c) in &spec.layers {
            diff_ids.push(sha256(tar));
            layers.push(self.blob(c.media_type(), &c.compress(tar)));
        }
        let mut config = json!({
            "architecture": "amd64", "os": "linux",
            "config": {"User": ""},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        if let Some(v) = &spec.label_value {
            config["config"]["Labels"] = json!({KEY: v});
        }
        let config = self.json_blob("application/vnd.oci.image.config.v1+json", &config);
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config, "layers": layers,
        });
        if let Some(v) = &spec.manifest_value {
            manifest["annotations"] = json!({KEY: v});
        }
        let mut desc = self.json_blob("application/vnd.oci.image.manifest.v1+json", &manifest);
        let mut ann = serde_json::Map::new();
        if let Some(r) = &spec.ref_name {
            ann.insert(REF.into(), json!(r));
        }
        if let Some(v) = &spec.index_value {
            ann.insert(KEY.into(), json!(v));
        }
        if !ann.is_empty() {
            desc["annotations"] = Value::Object(ann);
        }
        desc
    }

    /// Reads the JSON blob `desc` points at, lets `edit` change it, and
    /// writes it back as a new blob; returns the new descriptor (keeping
    /// the old one's annotations).
    pub fn rewrite(&self, desc: &Value, edit: impl FnOnce(&mut Value)) -> Value {
        let bytes = fs::read(self.blob_file(desc["digest"].as_str().unwrap())).unwrap();
        let mut doc: Value = serde_json::from_slice(&bytes).unwrap();
        edit(&mut doc);
        let mut new = self.json_blob(desc["mediaType"].as_str().unwrap(), &doc);
        if let Some(a) = desc.get("annotations") {
            new["annotations"] = a.clone();
        }
        new
    }

    /// Reads the JSON blob a descriptor points at.
    pub fn read(&self, desc: &Value) -> Value {
        serde_json::from_slice(&fs::read(self.blob_file(desc["digest"].as_str().unwrap())).unwrap()).unwrap()
    }

    /// Adds a descriptor to `index.json`.
    pub fn add(&mut self, descriptor: Value) -> &mut Self {
        self.manifests.push(descriptor);
        self.write_index();
        self
    }

    pub fn add_image(&mut self, spec: &ImageSpec) -> Value {
        let desc = self.image(spec);
        self.add(desc.clone());
        desc
    }

    fn write_index(&self) {
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": self.manifests});
        fs::write(self.root.join("index.json"), serde_json::to_string(&index).unwrap()).unwrap();
    }

    /// Packs the layout into an uncompressed tar archive (an oci-archive).
    pub fn archive(&self, dest: &Path) {
        let mut b = tar::Builder::new(fs::File::create(dest).unwrap());
        b.mode(tar::HeaderMode::Deterministic);
        b.append_dir_all(".", &self.root).unwrap();
        b.finish().unwrap();
    }
}
