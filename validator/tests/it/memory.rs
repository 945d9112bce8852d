//! Memory is bounded as SECURITY.md says: a fixed base, plus the hash
//! tables of path hashes that the duplicate and hardlink checks (validate)
//! and whiteout handling (unpack) keep, 9 bytes a slot, with as many slots
//! as the power of two that holds the entries at 7/8 load, and half as
//! much again while a table grows. Checked at several sizes up to two
//! million entries, each against the formula, and the largest under
//! 64 MiB; unpack runs as the unprivileged user, into tmpfs when there is
//! one.

use crate::support;

use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use single_id::digest::Hasher;
use support::measure::measure;
use support::rawtar::{self, BLOCK};
use support::unprivileged::user;

/// What every run costs whatever the layer: the binary, buffers, the
/// decompression pipeline, the reports.
const BASE: u64 = 16 << 20;

/// Bytes the tables of `n` path hashes may take at their largest.
fn tables(n: u64) -> u64 {
    let slots = (n * 8).div_ceil(7).next_power_of_two();
    9 * slots * 3 / 2
}

/// SECURITY.md's bound for a layer of `n` entries, in KiB.
fn bound_kib(n: u64) -> u64 {
    (BASE + tables(n)) >> 10
}

/// A directory for the test's large files: tmpfs when there is one (the
/// disk here is slow), owned by the unprivileged user, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let base = if Path::new("/dev/shm").is_dir() { Path::new("/dev/shm") } else { Path::new("/tmp") };
        let dir = tempfile::Builder::new().prefix("single-id-memory-").tempdir_in(base).unwrap().keep();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let (uid, gid) = user();
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        fs::copy(env!("CARGO_BIN_EXE_single-id"), dir.join("single-id")).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// An image layout at `dir` whose one plain-tar layer holds `n` empty
/// files, a thousand to a directory, written as a stream.
fn layout(dir: &Path, n: u64) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let tmp = blobs.join("layer");
    let mut hasher = Hasher::Sha256(Default::default());
    let mut size = 0u64;
    let mut out = BufWriter::with_capacity(1 << 20, fs::File::create(&tmp).unwrap());
    let mut put = |bytes: &[u8]| {
        hasher.update(bytes);
        size += bytes.len() as u64;
        out.write_all(bytes).unwrap();
    };
    for d in 0..n.div_ceil(1000) {
        put(&rawtar::header(format!("d{d:05}/").as_bytes(), b'5', 0).mode(0o755).bytes());
    }
    for i in 0..n {
        put(&rawtar::header(format!("d{:05}/f{i:07}", i / 1000).as_bytes(), b'0', 0).bytes());
    }
    put(&[0u8; 2 * BLOCK]);
    out.into_inner().unwrap().sync_all().unwrap();
    let digest = hasher.finish();
    fs::rename(&tmp, blobs.join(digest.trim_start_matches("sha256:"))).unwrap();
    let blob = |doc: serde_json::Value| {
        let bytes = serde_json::to_vec(&doc).unwrap();
        let d = support::sha256(&bytes);
        fs::write(blobs.join(d.trim_start_matches("sha256:")), &bytes).unwrap();
        (d, bytes.len())
    };
    let key = support::KEY;
    let (cd, cs) = blob(json!({"architecture": "amd64", "os": "linux",
        "config": {"Labels": {key: "flattened"}}, "rootfs": {"type": "layers", "diff_ids": [digest]}}));
    let (md, ms) = blob(json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size}],
        "annotations": {key: "flattened"}}));
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md, "size": ms, "annotations": {support::REF: "latest"}}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    for e in walkdir::WalkDir::new(dir) {
        let p = e.unwrap().into_path();
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Runs `single-id ARGS` from `s` as the unprivileged user; returns its
/// peak RSS in KiB after checking it succeeded.
fn peak(s: &Scratch, args: &[&str]) -> u64 {
    let mut c = Command::new(s.0.join("single-id"));
    c.args(args).current_dir(&s.0);
    let (uid, gid) = user();
    if (uid, gid) != (0, 0) {
        c.uid(uid).gid(gid);
    }
    let m = measure(&mut c);
    assert_eq!(m.run.code(), 0, "single-id {args:?}: {}{}", m.run.stdout(), m.run.stderr());
    m.max_rss_kib
}

#[test]
fn memory_follows_the_formula_up_to_two_million_entries() {
    let mut rows = Vec::new();
    for (n, unpack) in [(250_000u64, true), (1_000_000, false), (2_000_000, true)] {
        let s = Scratch::new();
        let image = s.0.join("image");
        layout(&image, n);
        // Directories count too: a thousand files to one.
        let entries = n + n.div_ceil(1000);
        let validate = peak(&s, &["validate", "image"]);
        assert!(validate <= bound_kib(entries), "validate of {n} entries: {validate} KiB > {} KiB", bound_kib(entries));
        let unpacked = unpack.then(|| {
            let kib = peak(&s, &["unpack", "image", "root"]);
            assert!(kib <= bound_kib(entries), "unpack of {n} entries: {kib} KiB > {} KiB", bound_kib(entries));
            kib
        });
        rows.push((n, validate, unpacked, bound_kib(entries)));
    }
    for (n, v, u, bound) in &rows {
        let u = u.map_or("-".to_string(), |k| format!("{:.1}", k as f64 / 1024.0));
        println!(
            "{n:>9} entries: validate {:.1} MiB, unpack {u} MiB, formula {:.1} MiB",
            *v as f64 / 1024.0,
            *bound as f64 / 1024.0
        );
    }
    let (_, validate, unpack, _) = rows.last().unwrap();
    assert!(*validate < 64 << 10, "validate of two million entries took {validate} KiB");
    assert!(unpack.unwrap() < 64 << 10, "unpack of two million entries took {unpack:?} KiB");
}
