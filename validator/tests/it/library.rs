//! The library as a runtime calls it: `validator/examples/in_memory_store`
//! unpacks from a blob store of its own (the bytes in memory), through the
//! documented API, and must give the same tree as `single-id unpack`, and
//! refuse a corrupt blob with the rule validate reports. Both run as the
//! unprivileged user; the JSON each outcome writes matches its schema.

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use support::layers::{self, char_device, dir, file};
use support::unprivileged::{install, run_as_user, run_installed_as_user, user, user_dir};
use support::{Compression, ImageSpec, OciDir, TestDir, schema};

/// The example program, which `cargo test --all-targets` builds beside the
/// test binary: `examples/in_memory_store` after `cargo build --examples`,
/// `examples/in_memory_store-HASH` after `cargo test`, where an older build
/// of it with a test harness may sit too. The newest that answers a wrong
/// argument with its own usage line (outside cargo, where it would run its
/// demonstration instead) is taken.
fn example() -> PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let dir = deps.parent().unwrap().join("examples");
    let built = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}: cargo test builds the examples; run it with --all-targets", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name == "in_memory_store" || name.strip_prefix("in_memory_store-").is_some_and(|h| !h.contains('.')))
                && fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
                && std::process::Command::new(p)
                    .arg("--usage")
                    .env_remove("CARGO_MANIFEST_DIR")
                    .output()
                    .is_ok_and(|o| o.status.code() == Some(2) && o.stderr.starts_with(b"usage: in_memory_store"))
        })
        .max_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).unwrap());
    built.unwrap_or_else(|| panic!("no in_memory_store example in {}: was validator/examples/ removed?", dir.display()))
}

/// A two-layer image whose unpack clears a setuid bit, skips a device
/// and applies a whiteout.
fn image(t: &TestDir) -> (OciDir, serde_json::Value) {
    let base = layers::layer(&[
        dir("bin/"),
        file("bin/tool", b"#!/bin/sh\n").mode(0o4755).owner(0, 0),
        file("etc/gone", b"removed by the upper layer\n"),
        char_device("dev/null", 1, 3),
    ]);
    let upper = layers::layer(&[file("etc/.wh.gone", b""), file("etc/motd", b"hello\n").owner(1000, 1000)]);
    let mut oci = OciDir::create(t.join("image"));
    let mut spec = ImageSpec::declared("latest", Some("allowed"));
    spec.layers = vec![(base, Compression::Gzip), (upper, Compression::Zstd)];
    let manifest = oci.add_image(&spec);
    (oci, manifest)
}

/// Every path under `root` with its type, mode, owner and content.
fn tree(root: &Path) -> BTreeMap<PathBuf, (u32, u32, u32, Vec<u8>)> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            let data = if m.is_file() { fs::read(e.path()).unwrap() } else { Vec::new() };
            (e.path().strip_prefix(root).unwrap().to_path_buf(), (m.mode(), m.uid(), m.gid(), data))
        })
        .collect()
}

/// The test directory, with the example program and the image, and the
/// image's second layer blob.
fn prepare() -> (TestDir, PathBuf) {
    let t = user_dir();
    install(&t, &example(), "in_memory_store");
    let (oci, manifest) = image(&t);
    let layer = oci.blob_file(oci.read(&manifest)["layers"][1]["digest"].as_str().unwrap());
    // The unprivileged user reads the image from its own directory.
    let (uid, gid) = user();
    for e in walkdir::WalkDir::new(oci.root.as_path()) {
        std::os::unix::fs::lchown(e.unwrap().path(), Some(uid), Some(gid)).unwrap();
    }
    (t, layer)
}

#[test]
fn example_unpacks_from_its_own_blob_store_like_the_command() {
    let (t, _) = prepare();
    let ran = run_installed_as_user(&t, "in_memory_store", &["image", "from-memory"]);
    assert_eq!(ran.code(), 0, "{}", ran.stderr());
    assert!(ran.stdout().contains("set-ID bits cleared on 1"), "{}", ran.stdout());
    let cli = run_as_user(&t, &["unpack", "image", "from-cli", "--format", "json"]);
    assert_eq!(cli.code(), 0, "{}", cli.stderr());
    schema::assert_valid("unpack-report.schema.json", &cli.json());

    let from_memory = tree(&t.join("from-memory"));
    assert_eq!(from_memory, tree(&t.join("from-cli")), "the library and the command unpacked different trees");
    let (uid, _) = user();
    let tool = &from_memory[Path::new("bin/tool")];
    assert_eq!((tool.0 & 0o7777, tool.1), (0o755, uid), "setuid cleared, owned by the invoking user");
    assert!(!from_memory.contains_key(Path::new("etc/gone")), "the whiteout was applied");
    assert!(!from_memory.contains_key(Path::new("etc/.wh.gone")), "no whiteout left on disk");
    assert!(!from_memory.contains_key(Path::new("dev/null")), "the device was skipped");
}

#[test]
fn example_refuses_a_corrupt_blob_with_the_rule_validate_reports() {
    let (t, blob) = prepare();
    let mut bytes = fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&blob, bytes).unwrap();

    let ran = run_installed_as_user(&t, "in_memory_store", &["image", "from-memory"]);
    assert_eq!(ran.code(), 1, "{}", ran.stderr());
    assert!(ran.stderr().contains("blob-digest (OCI-BLOB-INTEGRITY)"), "{}", ran.stderr());
    assert!(!t.join("from-memory").exists(), "a refused unpack leaves nothing behind");

    let cli = run_as_user(&t, &["unpack", "image", "from-cli", "--format", "json"]);
    assert_eq!(cli.code(), 1, "{}", cli.stderr());
    let doc = cli.json();
    schema::assert_valid("failure-report.schema.json", &doc);
    assert_eq!(doc["outcome"], "invalid");
    assert_eq!(doc["findings"][0]["rule"], "blob-digest");
    assert_eq!(doc["findings"][0]["location"]["layer"], 1);
    assert!(cli.stderr().contains("[blob-digest"), "{}", cli.stderr());

    // flatten refuses the same image with the same rule, in the same shape.
    let flat = t.run(&["flatten", "image", "flat", "--format", "json"]);
    assert_eq!(flat.code(), 1, "{}", flat.stderr());
    let doc = flat.json();
    schema::assert_valid("failure-report.schema.json", &doc);
    assert_eq!((doc["command"].as_str(), doc["outcome"].as_str()), (Some("flatten"), Some("invalid")));
    assert_eq!(doc["findings"][0]["rule"], "blob-digest");
    assert!(!t.join("flat").exists());

    let validate = t.run(&["validate", t.join("image").to_str().unwrap(), "--format", "json"]);
    let report = validate.json();
    let rules: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"blob-digest"), "validate reports {rules:?}");
}
