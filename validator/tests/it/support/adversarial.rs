//! The adversarial corpus: hostile OCI layouts under
//! `validator/tests/adversarial/<case>/`, each with the outcome that
//! `validate`, `inspect`, `unpack` and `flatten` must produce on it
//! (`outcome.json`). This module writes the corpus; `tests/adversarial.rs`
//! checks that the committed copy is what it writes and runs every case.
//!
//! A case directory holds `layout/` (the OCI layout given as IMAGE), any
//! file a hostile symlink of the layout points at beside it, and
//! `outcome.json`:
//!
//! ```json
//! {
//!   "description": "what the case attacks",
//!   "setup": {"pad": {"file": "layout/index.json", "size": 52428800}},
//!   "validate": {"exit": 1, "rules": ["layer-path-escape"], "messages_contain": ["..."]},
//!   "inspect": {"exit": 0},
//!   "unpack": {"exit": 0, "present": [{"path": "a", "kind": "file", "content": "x"}], "absent": ["b"],
//!              "hardlinked": [["a", "c"]], "host_absent": ["/x"],
//!              "stdout_contains": ["..."], "stderr_contains": ["..."]},
//!   "flatten": {"exit": [0, 1], "output": {"exit": 0, "rules": []}, "stderr_contains": ["..."]}
//! }
//! ```
//!
//! - `validate.rules` is the sorted list of rule ids of
//!   `validate --format json`, `messages_contain` texts its findings hold;
//! - `exit` is a status or a list of acceptable ones;
//! - `inspect` exits 1 only when part of an image could not be read (a
//!   finding about readable content is validate's business);
//! - `unpack`: paths are relative to DEST (`""` is DEST itself), with `\xNN`
//!   for bytes that are not printable UTF-8 and `\\` for a backslash;
//!   `present` entries may give `content` or a symlink `target`;
//!   `hardlinked` lists pairs that must be one object; `host_absent`, host
//!   paths that must not appear; a failed unpack leaves no DEST;
//! - `flatten.output` is what `validate --strict --format json` must say
//!   of OUTPUT whenever flatten exits 0 (for a broken input flatten may
//!   refuse, exit 1 and write nothing, or repair it, but what it writes is
//!   a valid `flattened` image), and when both unpack and flatten succeed,
//!   unpacking OUTPUT must give the same tree as unpacking the input;
//! - `setup.pad` grows a file with trailing spaces (valid JSON white space)
//!   before the run, so that a 50 MiB document need not be committed;
//!   `setup.built_at_test_time` marks a case whose layout is too large to
//!   commit: the generator writes it into the copy a test runs (the
//!   memory cases, a 4 MiB config, a 70 KB gzip header);
//! - `args` are given to every command (to raise a limit);
//! - `max_seconds` and `max_rss_mib` (per command) bound the wall time and
//!   the peak resident memory (`/usr/bin/time`) of each command on the
//!   input; every command also runs with files capped at 512 MiB, so one
//!   that began to write out a sparse file's holes or a bomb is stopped;
//! - `validate.message_byte_between` bounds the uncompressed byte position
//!   at which the report says a layer stopped;
//! - whenever flatten exits 0 it is run again with `--compression gzip`,
//!   and that output must be unpacked by `umoci unpack --rootless` and
//!   listed by GNU tar and bsdtar; `flatten.rejected_by` records the tools
//!   known to reject it (or `flatten --compression gzip` itself failing),
//!   each with why, and `flatten.output_unpack_fails` an output unpack is
//!   known to refuse: flatten bugs, written down so the case fails once
//!   they are fixed.
//!
//! Every case is run unprivileged in a sandbox directory `S` holding a copy
//! of the case, DEST `S/dest`, OUTPUT `S/flat` and a canary directory
//! `S/canary` (with `S/canary/secret`): hostile names aim at `../canary`
//! (beside DEST) and `../..` (the directory around the sandbox), which
//! the runner watches.

use std::fs;
use std::os::unix::fs::symlink as make_symlink;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::layers::{self, Spec, base256, dir, field, file, hardlink, layer, layer_without_end, symlink};
use super::{Compression, ImageSpec, KEY, OciDir, REF, repo_root, sha256};

mod documents;
mod large;
mod readers;
mod sparse;
mod streams;

/// Where the committed corpus lives.
pub fn corpus_dir() -> PathBuf {
    repo_root().join("validator/tests/adversarial")
}

/// Writes (part of) a case into its directory.
pub type Build = Box<dyn Fn(&Path)>;

/// One hostile layout and what every command must do with it.
pub struct Case {
    pub name: &'static str,
    pub description: &'static str,
    /// Writes the case into its (empty) directory.
    pub build: Build,
    /// Writes what is too large to commit into a copy of the case, before
    /// a test runs it (`"setup": {"built_at_test_time": true}`).
    pub at_test_time: Option<Build>,
    /// `outcome.json` without the description.
    pub outcome: Value,
}

fn case(name: &'static str, description: &'static str, build: impl Fn(&Path) + 'static, outcome: Value) -> Case {
    Case { name, description, build: Box::new(build), at_test_time: None, outcome }
}

/// A case whose layout is written when a test runs it: only its
/// `outcome.json` is committed.
fn large_case(name: &'static str, description: &'static str, build: impl Fn(&Path) + 'static, outcome: Value) -> Case {
    let mut outcome = outcome;
    let setup = outcome.as_object_mut().unwrap().entry("setup").or_insert_with(|| json!({}));
    setup["built_at_test_time"] = json!(true);
    Case { name, description, build: Box::new(|_| {}), at_test_time: Some(Box::new(build)), outcome }
}

/// Copies `from` into `to` (which must not exist), symlinks as symlinks,
/// files readable by everyone.
pub fn copy_tree(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        let t = e.file_type();
        if t.is_symlink() {
            make_symlink(fs::read_link(e.path()).unwrap(), &dest).unwrap();
        } else if t.is_dir() {
            fs::create_dir(&dest).unwrap();
        } else {
            fs::copy(e.path(), &dest).unwrap();
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

/// Makes a copy of the committed case `name` at `to` ready to run: the
/// `setup` of its outcome applied (files padded, large layouts written).
/// Returns `to`.
pub fn prepared(name: &str, to: &Path) -> PathBuf {
    copy_tree(&corpus_dir().join(name), to);
    let outcome: Value = serde_json::from_slice(&fs::read(to.join("outcome.json")).unwrap()).unwrap();
    if let Some(pad) = outcome.pointer("/setup/pad") {
        use std::io::Write;
        let file = to.join(pad["file"].as_str().unwrap());
        let size = pad["size"].as_u64().unwrap();
        let mut f = fs::OpenOptions::new().append(true).open(&file).unwrap();
        let have = f.metadata().unwrap().len();
        let spaces = vec![b' '; 1 << 20];
        let mut left = size - have;
        while left > 0 {
            let n = left.min(spaces.len() as u64) as usize;
            f.write_all(&spaces[..n]).unwrap();
            left -= n as u64;
        }
    }
    if outcome.pointer("/setup/built_at_test_time") == Some(&json!(true)) {
        let cases = cases();
        let c = cases.iter().find(|c| c.name == name).expect("a case of the generator");
        (c.at_test_time.as_ref().expect("a case built at test time"))(to);
    }
    to.to_path_buf()
}

/// Writes every case under `root` (which must be empty or absent).
pub fn generate(root: &Path) {
    fs::create_dir_all(root).unwrap();
    for c in cases() {
        let dir = root.join(c.name);
        fs::create_dir(&dir).unwrap();
        (c.build)(&dir);
        let mut outcome = serde_json::Map::new();
        outcome.insert("description".into(), json!(c.description));
        for (k, v) in c.outcome.as_object().expect("an outcome is an object") {
            outcome.insert(k.clone(), v.clone());
        }
        let mut text = serde_json::to_string_pretty(&Value::Object(outcome)).unwrap();
        text.push('\n');
        fs::write(dir.join("outcome.json"), text).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Building layouts

fn gz(specs: &[Spec]) -> (Vec<u8>, Compression) {
    (layer(specs), Compression::Gzip)
}

fn plain(tar: Vec<u8>) -> (Vec<u8>, Compression) {
    (tar, Compression::None)
}

/// A layout at `dir/layout` with one image `latest` made of `layers`,
/// declared `value` in the manifest and the config Label.
fn image(dir: &Path, value: Option<&str>, layers: Vec<(Vec<u8>, Compression)>) -> (OciDir, Value) {
    let mut oci = OciDir::create(dir.join("layout"));
    let mut spec = ImageSpec::declared("latest", value);
    spec.layers = layers;
    let desc = oci.add_image(&spec);
    (oci, desc)
}

/// Like [`image`] with one layer, whose blob is `blob` (with a correct
/// descriptor, of `media_type`) while the config's diff_id is that of `tar`.
fn image_with_blob(dir: &Path, value: Option<&str>, tar: &[u8], blob: &[u8], media_type: &str) {
    let mut oci = OciDir::create(dir.join("layout"));
    let mut spec = ImageSpec::declared("latest", value);
    spec.layers = vec![(tar.to_vec(), Compression::None)];
    let desc = oci.image(&spec);
    let new = oci.blob(media_type, blob);
    let desc = oci.rewrite(&desc, |m| m["layers"][0] = new);
    oci.add(desc);
    remove_unreferenced(&oci);
}

/// Removes blobs that nothing in the layout references (left by rewrites).
fn remove_unreferenced(oci: &OciDir) {
    let mut used = Vec::new();
    let index: Value = serde_json::from_slice(&fs::read(oci.root.join("index.json")).unwrap()).unwrap();
    for m in index["manifests"].as_array().unwrap() {
        used.push(m["digest"].as_str().unwrap().to_string());
        let Ok(bytes) = fs::read(oci.blob_file(m["digest"].as_str().unwrap())) else { continue };
        let Ok(manifest) = serde_json::from_slice::<Value>(&bytes) else { continue };
        if let Some(d) = manifest["config"]["digest"].as_str() {
            used.push(d.to_string());
        }
        for l in manifest["layers"].as_array().into_iter().flatten() {
            used.push(l["digest"].as_str().unwrap().to_string());
        }
    }
    for entry in fs::read_dir(oci.root.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let digest = format!("sha256:{}", entry.file_name().to_string_lossy());
        if !used.contains(&digest) {
            fs::remove_file(entry.path()).unwrap();
        }
    }
}

fn index_of(oci: &OciDir) -> Value {
    serde_json::from_slice(&fs::read(oci.root.join("index.json")).unwrap()).unwrap()
}

fn write_index(oci: &OciDir, manifests: Vec<Value>) {
    let index =
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    fs::write(oci.root.join("index.json"), serde_json::to_string(&index).unwrap()).unwrap();
}

/// Replaces the blob file of `digest` by a symlink to `target`, after
/// moving its bytes to `dir/outside` (so that following the link would
/// find exactly the right content).
fn blob_to_symlink(oci: &OciDir, digest: &str, dir: &Path, outside: &str, target: &str) {
    let file = oci.blob_file(digest);
    fs::rename(&file, dir.join(outside)).unwrap();
    make_symlink(target, &file).unwrap();
}

/// A manifest (JSON text written by hand) for `config` and `layers`.
fn manifest_text(config: &Value, layers: &[Value], annotations: &str) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":{},"annotations":{}}}"#,
        serde_json::to_string(config).unwrap(),
        serde_json::to_string(layers).unwrap(),
        annotations
    )
}

fn with_ref(mut desc: Value) -> Value {
    desc["annotations"] = json!({REF: "latest"});
    desc
}

// ---------------------------------------------------------------------------
// Outcome shorthands

/// `validate --format json`: exit status and sorted rule ids.
fn validate(exit: i32, rules: &[&str]) -> Value {
    let mut rules: Vec<&str> = rules.to_vec();
    rules.sort();
    json!({"exit": exit, "rules": rules})
}

fn inspect(exit: i32) -> Value {
    json!({"exit": exit})
}

/// A clean flatten: exit 0 and an output `validate --strict` finds nothing in.
fn flatten_clean() -> Value {
    json!({"exit": 0, "output": {"exit": 0, "rules": []}})
}

/// Flatten refuses the input and writes nothing.
fn flatten_fails(stderr: &str) -> Value {
    json!({"exit": 1, "stderr_contains": [stderr]})
}

/// Flatten may refuse the input (exit 1, nothing written) or repair it,
/// but what it writes must be a valid `flattened` image.
fn flatten_refuse_or_clean() -> Value {
    json!({"exit": [0, 1], "output": {"exit": 0, "rules": []}})
}

/// `flatten` whose output `tools` (umoci, tar, bsdtar) are known to
/// reject, each with why: a flatten bug, recorded so that the case fails
/// once the tool accepts it.
fn known_rejections(mut flatten: Value, tools: &[(&str, &str)]) -> Value {
    for (tool, why) in tools {
        flatten["rejected_by"][*tool] = json!(why);
    }
    flatten
}

/// Unpack fails, naming `stderr`, and leaves no DEST.
fn unpack_fails(stderr: &str) -> Value {
    json!({"exit": 1, "stderr_contains": [stderr], "absent": [""]})
}

fn f(path: &str, content: &str) -> Value {
    json!({"path": path, "kind": "file", "content": content})
}

fn d(path: &str) -> Value {
    json!({"path": path, "kind": "dir"})
}

fn l(path: &str, target: &str) -> Value {
    json!({"path": path, "kind": "symlink", "target": target})
}

fn outcome(validate: Value, inspect: Value, unpack: Value, flatten: Value) -> Value {
    json!({"validate": validate, "inspect": inspect, "unpack": unpack, "flatten": flatten})
}

const ALLOWED: Option<&str> = Some("allowed");

/// A stream with every structure a cut can fall into: entry 1 (a directory,
/// header only), entry 2 (700 bytes of data, padded to 1024), entry 3 (one
/// byte), then the two end blocks.
fn cut_sample() -> Vec<u8> {
    let data: Vec<u8> = (0..700u32).map(|i| b'a' + (i % 26) as u8).collect();
    layer(&[dir("srv/"), file("srv/data", &data), file("srv/last", b"z")])
}

/// Offsets in [`cut_sample`].
mod cut {
    pub const ENTRY2: usize = 512;
    pub const ENTRY2_DATA: usize = ENTRY2 + 512;
    pub const ENTRY2_PADDING: usize = ENTRY2_DATA + 700;
    pub const ENTRY3: usize = ENTRY2_DATA + 1024;
    pub const END: usize = ENTRY3 + 1024;
}

/// A case whose single uncompressed layer is [`cut_sample`] cut at `at`
/// (descriptor and diff_id those of the cut stream: only the cut is wrong).
fn truncated(dir: &Path, at: usize) {
    let tar = cut_sample()[..at].to_vec();
    image(dir, ALLOWED, vec![plain(tar)]);
}

/// A zstd frame of `tar` as raw blocks, whose header declares a window of
/// 2^`window_log` bytes.
fn zstd_frame(tar: &[u8], window_log: u8) -> Vec<u8> {
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd];
    // Frame header descriptor: no single segment, no checksum, no content
    // size, no dictionary; then the window descriptor (exponent, mantissa 0).
    out.push(0x00);
    out.push((window_log - 10) << 3);
    let chunks: Vec<&[u8]> = tar.chunks(1 << 16).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = u32::from(i + 1 == chunks.len());
        let header = last | (chunk.len() as u32) << 3; // block type 0: raw
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(chunk);
    }
    out
}

/// `depth` nested JSON arrays.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

// ---------------------------------------------------------------------------
// The cases

pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(path_cases());
    v.extend(link_cases());
    v.extend(whiteout_cases());
    v.extend(header_cases());
    v.extend(stream_cases());
    v.extend(document_cases());
    v.extend(readers::cases());
    v.extend(sparse::cases());
    v.extend(documents::cases());
    v.extend(streams::cases());
    v.extend(large::cases());
    v
}

fn path_cases() -> Vec<Case> {
    vec![
        case(
            "dotdot-paths",
            "Entry names that climb above the root with `..`, directly, after a directory, through PAX `path`, and a file name that climbs back in.",
            |at| {
                image(
                    at,
                    ALLOWED,
                    vec![gz(&[
                        dir("a/"),
                        file("../canary/dotdot-1", b"x"),
                        file("a/../../canary/dotdot-2", b"x"),
                        file("../../dotdot-3", b"x"),
                        file("innocent", b"x").pax("path", "a/../../canary/dotdot-4"),
                        dir("../canary/dotdot-dir/"),
                        symlink("../canary/dotdot-link", "/etc/passwd"),
                        file("a/../stays-inside", b"inside"),
                    ])],
                );
            },
            outcome(
                validate(1, &["layer-path-escape"]),
                inspect(0),
                json!({"exit": 0, "present": [d("a"), f("stays-inside", "inside")],
                       "absent": ["canary", "dotdot-1", "dotdot-3", "innocent"],
                       "stdout_contains": ["rejected entries: 6"]}),
                flatten_clean(),
            ),
        ),
        case(
            "absolute-paths",
            "Absolute entry names, repeated leading slashes, and an absolute hardlink target: all mean the root.",
            |at| {
                image(
                    at,
                    ALLOWED,
                    vec![gz(&[
                        dir("/abs-dir/"),
                        file("/abs-dir/file", b"abs"),
                        file("//double-slash", b"double"),
                        file("/abs-file", b"file"),
                        hardlink("/abs-dir/link", "/abs-file"),
                        symlink("/abs-sym", "/etc/passwd"),
                    ])],
                );
            },
            outcome(
                validate(0, &["layer-path-absolute"]),
                inspect(0),
                json!({"exit": 0, "present": [d("abs-dir"), f("abs-dir/file", "abs"), f("double-slash", "double"),
                       f("abs-dir/link", "file"), l("abs-sym", "/etc/passwd")],
                       "hardlinked": [["abs-dir/link", "abs-file"]]}),
                flatten_clean(),
            ),
        ),
        case(
            "symlink-parent-relative",
            "Relative symlinks that point above the root (`..`, `../..`, `../canary`) and files written through them, in the same layer and in a later one.",
            |at| {
                let base = layer(&[
                    symlink("up", ".."),
                    symlink("upup", "../.."),
                    symlink("canary-link", "../canary"),
                    dir("d/"),
                    symlink("d/out", "../../canary"),
                    file("up/same-layer", b"1"),
                    file("canary-link/same-layer", b"2"),
                ]);
                let top = layer(&[
                    file("up/through-up", b"3"),
                    file("upup/through-upup", b"4"),
                    file("canary-link/through-canary-link", b"5"),
                    file("d/out/through-d-out", b"6"),
                    file("canary-link/secret", b"overwritten"),
                ]);
                image(at, ALLOWED, vec![(base, Compression::Gzip), (top, Compression::Zstd)]);
            },
            outcome(
                validate(0, &[]),
                inspect(0),
                json!({"exit": 0,
                       "present": [l("up", ".."), l("upup", "../.."), l("canary-link", "../canary"),
                                   l("d/out", "../../canary"), f("same-layer", "1"), f("through-up", "3"),
                                   f("through-upup", "4")],
                       "absent": ["canary", "through-canary-link", "through-d-out"],
                       "stdout_contains": ["rejected entries: 4"]}),
                flatten_clean(),
            ),
        ),
        case(
            "symlink-parent-absolute",
            "Absolute symlinks to `/`, `/etc` and `/tmp` and files written through them: they resolve inside DEST (`/etc` there exists by then) or are rejected (`/tmp` there does not).",
            |at| {
                let base = layer(&[
                    symlink("rootlink", "/"),
                    symlink("etclink", "/etc"),
                    symlink("tmplink", "/tmp"),
                    file("rootlink/adversarial-through-root", b"1"),
                ]);
                let top = layer(&[
                    file("rootlink/etc/adversarial-passwd", b"2"),
                    file("etclink/adversarial-through-etc", b"3"),
                    file("tmplink/adversarial-through-tmp", b"4"),
                ]);
                image(at, ALLOWED, vec![gz_raw(base), gz_raw(top)]);
            },
            outcome(
                validate(0, &[]),
                inspect(0),
                json!({"exit": 0,
                       "present": [l("rootlink", "/"), l("etclink", "/etc"), f("adversarial-through-root", "1"),
                                   f("etc/adversarial-passwd", "2"), f("etc/adversarial-through-etc", "3")],
                       "absent": ["tmp", "adversarial-through-tmp"],
                       "host_absent": ["/adversarial-through-root", "/etc/adversarial-passwd",
                                       "/etc/adversarial-through-etc", "/tmp/adversarial-through-tmp"]}),
                flatten_clean(),
            ),
        ),
        case(
            "symlink-replaced-by-directory",
            "A symlink pointing outside (relative and absolute) replaced by a directory in a later layer, then a file under it.",
            |at| {
                let base = layer(&[symlink("d", "../canary"), symlink("e", "/"), symlink("f", "../..")]);
                let top = layer(&[dir("d/"), file("d/x", b"x"), dir("e/"), file("e/y", b"y"), file("f/z", b"z")]);
                image(at, ALLOWED, vec![gz_raw(base), gz_raw(top)]);
            },
            outcome(
                validate(0, &[]),
                inspect(0),
                json!({"exit": 0, "present": [d("d"), f("d/x", "x"), d("e"), f("e/y", "y"), l("f", "../.."), f("z", "z")]}),
                flatten_clean(),
            ),
        ),
        case(
            "symlink-loop",
            "Symlinks that loop (`a -> b -> a`) used as a parent directory: the kernel cannot resolve the parent, and unpack rejects the entry and goes on (the spec lets a consumer reject the entry and go on, or stop). Validate warns (layer-parent-unresolvable); flatten refuses, as its output would carry the same warning.",
            |at| {
                image(
                    at,
                    ALLOWED,
                    vec![gz(&[symlink("a", "b"), symlink("b", "a"), file("a/x", b"x"), file("after", b"after")])],
                );
            },
            outcome(
                validate(0, &["layer-parent-unresolvable"]),
                inspect(0),
                json!({"exit": 0, "present": [l("a", "b"), l("b", "a"), f("after", "after")],
                       "stdout_contains": ["rejected entries: 1 (a/x [symlinks among the parents loop"]}),
                flatten_fails("layer-parent-unresolvable"),
            ),
        ),
        case(
            "root-entry-types",
            "Entries whose normalised name is the root itself: a directory (fine) and a file, a symlink and a hardlink (rejected).",
            |at| {
                image(
                    at,
                    ALLOWED,
                    vec![gz(&[
                        dir("./").mode(0o755),
                        file("keep", b"keep"),
                        file("/", b"root as a file"),
                        symlink(".", "/etc"),
                        hardlink("a/..", "keep"),
                    ])],
                );
            },
            outcome(
                validate(1, &["layer-ambiguous", "layer-duplicate", "layer-path-absolute"]),
                inspect(0),
                unpack_fails("tar readers disagree about /"),
                flatten_refuse_or_clean(),
            ),
        ),
    ]
}

fn gz_raw(tar: Vec<u8>) -> (Vec<u8>, Compression) {
    (tar, Compression::Gzip)
}

fn link_cases() -> Vec<Case> {
    vec![
        case(
            "hardlink-replaces-its-target-directory",
            "A hardlink at `a` whose target `a/x` lies beneath it (valid: the target exists when the entry is reached). Replacing `a` removes the target; the consumer must link the object that was there or skip the entry (CONSUMER-HARDLINK), not abort the whole unpack. Validate reports the link as one to nothing (the target is gone when the link is made), and flatten refuses, as its output would carry the same error.",
            |at| {
                let base = layer(&[dir("a/"), file("a/x", b"x"), file("keep", b"keep")]);
                let top = layer(&[hardlink("a", "a/x"), file("after", b"after")]);
                image(at, ALLOWED, vec![gz_raw(base), gz_raw(top)]);
            },
            outcome(
                validate(1, &["layer-hardlink"]),
                inspect(0),
                json!({"exit": 0, "present": [f("keep", "keep"), f("after", "after")], "absent": ["a/x"]}),
                flatten_fails("hardlink replaces the directory that holds its target"),
            ),
        ),
        case(
            "symlink-empty-target",
            "A symlink whose target is empty, which Linux cannot create: validate warns (layer-symlink-empty), unpack rejects the entry and goes on, and flatten drops it, so umoci, GNU tar and bsdtar accept its output.",
            |at| {
                image(at, ALLOWED, vec![gz(&[symlink("empty", ""), file("after", b"after")])]);
            },
            outcome(
                validate(0, &["layer-symlink-empty"]),
                inspect(0),
                json!({"exit": 0, "present": [f("after", "after")], "absent": ["empty"],
                       "stdout_contains": ["rejected entries: 1 (empty [a symlink with an empty target"]}),
                flatten_clean(),
            ),
        ),
        case(
            "hardlink-outside",
            "Hardlinks whose targets lie outside the root: `../../x`, `../canary/secret`, `/etc/passwd` (absent from the image), and through a symlinked parent; a hardlink to a symlink links the symlink.",
            |at| {
                let base = layer(&[
                    symlink("canary-dir", "../canary"),
                    symlink("rootlink", "/"),
                    symlink("passwd-link", "/etc/passwd"),
                    file("inside", b"inside"),
                ]);
                let top = layer(&[
                    hardlink("hl-dotdot", "../../x"),
                    hardlink("hl-canary", "../canary/secret"),
                    hardlink("hl-passwd", "/etc/passwd"),
                    hardlink("hl-through-symlink", "canary-dir/secret"),
                    hardlink("hl-through-root", "rootlink/etc/passwd"),
                    hardlink("hl-to-symlink", "passwd-link"),
                    hardlink("hl-inside", "inside"),
                ]);
                image(at, ALLOWED, vec![gz_raw(base), gz_raw(top)]);
            },
            outcome(
                validate(1, &["layer-hardlink", "layer-path-escape"]),
                inspect(0),
                json!({"exit": 0,
                       "present": [l("hl-to-symlink", "/etc/passwd"), f("hl-inside", "inside")],
                       "absent": ["hl-dotdot", "hl-canary", "hl-passwd", "hl-through-symlink", "hl-through-root"],
                       "hardlinked": [["hl-inside", "inside"], ["hl-to-symlink", "passwd-link"]],
                       "stdout_contains": ["rejected entries: 3", "skipped hardlinks whose target does not exist: 2"]}),
                flatten_refuse_or_clean(),
            ),
        ),
        case(
            "hardlink-to-whited-out",
            "Hardlinks to lower-layer paths that a whiteout of their own layer removes: the whiteout before the link, after it, and an opaque whiteout of the target's directory.",
            |at| {
                let base =
                    layer(&[file("victim1", b"v1"), file("victim2", b"v2"), dir("dir/"), file("dir/inner", b"in")]);
                let top = layer(&[
                    file(".wh.victim1", b""),
                    hardlink("link1", "victim1"),
                    hardlink("link2", "victim2"),
                    file(".wh.victim2", b""),
                    file("dir/.wh..wh..opq", b""),
                    hardlink("link3", "dir/inner"),
                ]);
                image(at, ALLOWED, vec![gz_raw(base), gz_raw(top)]);
            },
            outcome(
                validate(1, &["layer-hardlink"]),
                inspect(0),
                json!({"exit": 0, "present": [f("link2", "v2"), d("dir")],
                       "absent": ["victim1", "victim2", "link1", "link3", "dir/inner"]}),
                flatten_refuse_or_clean(),
            ),
        ),
    ]
}

fn whiteout_cases() -> Vec<Case> {
    vec![
        case(
            "whiteout-typed-entries",
            "Whiteouts that are not empty regular files: a symlink and a hardlink aiming at the canary beside DEST, a directory, a FIFO. A consumer ignores their type and content and creates nothing named `.wh.`; flatten must keep every one of them as a whiteout (an empty regular file), whatever its link target.",
            |at| {
                let base =
                    layer(&[file("a", b"a"), file("b", b"b"), dir("c/"), file("c/inner", b"i"), file("d", b"d")]);
                let top = layer(&[
                    symlink(".wh.a", "../canary"),
                    hardlink(".wh.b", "../canary/secret"),
                    dir(".wh.c/"),
                    layers::fifo(".wh.d"),
                ]);
                image(at, ALLOWED, vec![gz_raw(base), gz_raw(top)]);
            },
            outcome(
                validate(0, &["layer-whiteout-content"]),
                inspect(0),
                json!({"exit": 0, "absent": ["a", "b", "c", "d", ".wh.a", ".wh.b", ".wh.c", ".wh.d"]}),
                flatten_clean(),
            ),
        ),
        case(
            "whiteout-escape",
            "Whiteouts that would delete outside the root or the root itself: `../.wh.canary`, `.wh..`, `.wh...`, `.wh../x`, `sub/.wh...`, `sub/../../.wh.canary`.",
            |at| {
                let base = layer(&[file("x", b"x"), dir("sub/"), file("sub/y", b"y")]);
                let top = layer(&[
                    file("../.wh.canary", b""),
                    file(".wh..", b""),
                    file(".wh...", b""),
                    file(".wh../x", b""),
                    file("sub/.wh..", b""),
                    file("sub/.wh...", b""),
                    file("sub/../../.wh.canary", b""),
                ]);
                image(at, ALLOWED, vec![gz_raw(base), gz_raw(top)]);
            },
            outcome(
                validate(1, &["layer-path-escape", "layer-whiteout", "layer-whiteout"]),
                inspect(0),
                json!({"exit": 0, "present": [f("x", "x"), d("sub"), f("sub/y", "y")],
                       "absent": [".wh..", ".wh../x", "canary"]}),
                flatten_refuse_or_clean(),
            ),
        ),
        case(
            "whiteout-through-symlink",
            "Whiteouts and opaque whiteouts whose directory is a symlink leading above the root or to `/`: they act inside DEST only.",
            |at| {
                let base = layer(&[
                    symlink("up", "../.."),
                    symlink("canary-link", "../canary"),
                    dir("keep/"),
                    file("keep/me", b"me"),
                    dir("stay/"),
                    file("stay/here", b"here"),
                ]);
                let top = layer(&[
                    file("up/.wh.canary", b""),
                    file("canary-link/.wh.secret", b""),
                    file("canary-link/.wh..wh..opq", b""),
                    file("up/.wh.keep", b""),
                ]);
                image(at, ALLOWED, vec![gz_raw(base), gz_raw(top)]);
            },
            outcome(
                validate(0, &[]),
                inspect(0),
                json!({"exit": 0, "present": [l("up", "../.."), f("stay/here", "here")], "absent": ["keep"]}),
                flatten_clean(),
            ),
        ),
        case(
            "opaque-whiteout-through-root-symlink",
            "An opaque whiteout under a symlink to `/` empties DEST of lower content, and nothing else.",
            |at| {
                let base = layer(&[symlink("rootlink", "/"), symlink("out", "../canary"), file("lower", b"lower")]);
                let top =
                    layer(&[file("out/.wh..wh..opq", b""), file("rootlink/.wh..wh..opq", b""), file("new", b"new")]);
                image(at, ALLOWED, vec![gz_raw(base), gz_raw(top)]);
            },
            outcome(
                validate(0, &[]),
                inspect(0),
                json!({"exit": 0, "present": [f("new", "new")], "absent": ["lower", "rootlink", "out"]}),
                flatten_clean(),
            ),
        ),
        case(
            "duplicate-entries",
            "Duplicate paths in one layer: a file twice, `./x` then `x/`, a directory replaced by a symlink out of the root and a file written through it.",
            |at| {
                image(
                    at,
                    ALLOWED,
                    vec![gz(&[
                        file("dup", b"first"),
                        file("dup", b"second"),
                        file("./dup2", b"file"),
                        dir("dup2/"),
                        file("dup2/child", b"child"),
                        dir("d/"),
                        symlink("d", "../canary"),
                        file("d/x", b"x"),
                        file("sub//file", b"one"),
                        file("sub/file", b"two"),
                    ])],
                );
            },
            outcome(
                validate(1, &["layer-duplicate"]),
                inspect(0),
                json!({"exit": 0, "present": [f("dup", "second"), d("dup2"), f("dup2/child", "child"),
                       l("d", "../canary"), f("sub/file", "two")],
                       "stdout_contains": ["rejected entries: 1"]}),
                flatten_refuse_or_clean(),
            ),
        ),
    ]
}

/// Names every report must escape: invalid UTF-8, ESC sequences, BEL,
/// carriage return, DEL and a C1 control.
const NASTY: [&[u8]; 6] = [
    b"bad-utf8-\xff\xfe",
    b"esc-\x1b[2J\x1b]0;pwned\x07",
    b"bell-\x07\x07",
    b"cr-\roverwrite",
    b"del-\x7f",
    b"c1-\xc2\x9b31m",
];

fn header_cases() -> Vec<Case> {
    vec![
        case(
            "hostile-names",
            "Names, user names and PAX paths with invalid UTF-8 and control characters (ESC sequences, BEL, CR, DEL, C1), set-ID so that every report lists them: no raw control byte may reach any output. The PAX path that is not UTF-8 is one bsdtar cannot take, so validate calls it ambiguous and unpack and flatten refuse the layer.",
            |at| {
                let mut specs = vec![dir("n/")];
                for (i, name) in NASTY.iter().enumerate() {
                    let mut path = b"n/".to_vec();
                    path.extend_from_slice(name);
                    specs.push(file(&path, b"x").mode(0o4755).owner(1000 + i as u64, 1000));
                }
                specs.push(file("n/uname", b"x").owner(7, 7).names("\x1b[31mevil\x07", "\x1b]2;t\x07"));
                specs.push(file("n/pax", b"x").mode(0o2755).pax("path", b"n/pax-\x1b[5m\xff\x07"));
                specs.push(file(b"../\x1b[2Jclimb\x07", b"x"));
                specs.push(symlink("n/link", b"\x1b[2J\x07target"));
                image(at, ALLOWED, vec![gz(&specs)]);
            },
            outcome(
                validate(1, &["layer-ambiguous", "layer-path-escape"]),
                inspect(0),
                unpack_fails("PAX path is not UTF-8"),
                flatten_fails("PAX path is not UTF-8"),
            ),
        ),
        case(
            "pax-header-mismatch",
            "PAX records that contradict the ustar header: uname, gname and size (same block count) disagree; PAX `path` and `linkpath` differ from the header's name and link, including a header name that climbs above the root hidden by an innocent PAX path.",
            |at| {
                image(
                    at,
                    ALLOWED,
                    vec![gz(&[
                        file("names", b"x").names("alice", "staff").pax("uname", "root").pax("gname", "root"),
                        file("sized", b"0123456789").size_field(5).pax("size", "10"),
                        file("../canary/header-name", b"x").pax("path", "pax-name"),
                        symlink("link", "header-target").pax("linkpath", "pax-target"),
                    ])],
                );
            },
            outcome(
                validate(0, &["layer-pax-mismatch", "layer-pax-mismatch", "layer-pax-mismatch"]),
                inspect(0),
                json!({"exit": 0, "present": [f("names", "x"), f("sized", "0123456789"), f("pax-name", "x"),
                       l("link", "pax-target")], "absent": ["canary"]}),
                flatten_clean(),
            ),
        ),
        case(
            "pax-size-larger-than-stream",
            "A PAX `size` far larger than the entry's data and everything after it: the stream ends inside the entry.",
            |at| {
                image(
                    at,
                    ALLOWED,
                    vec![gz(&[file("liar", b"0123456789").pax("size", "1000000"), file("after", b"a")])],
                );
            },
            outcome(
                validate(1, &["layer-pax-mismatch", "layer-unreadable"]),
                inspect(1),
                unpack_fails("layer 0"),
                flatten_fails("layer 0"),
            ),
        ),
        case(
            "pax-size-larger-hides-entry",
            "A PAX `size` that swallows the next entry (a set-ID file owned by 1000 that climbs out of the root): PAX readers see one entry, header readers two.",
            |at| {
                // Entry `cover`: header size 1, PAX size 1024 = its own data
                // block + the hidden entry's header + its data block.
                let hidden = layer_without_end(&[file("../canary/hidden", b"h").mode(0o4755).owner(1000, 1000)]);
                let mut data = b"c".to_vec();
                data.resize(512, 0);
                data.extend_from_slice(&hidden);
                let tar = layer(&[file("cover", &data).size_field(1).pax("size", "1536"), file("after", b"a")]);
                image(at, Some("flattened"), vec![plain(tar)]);
            },
            outcome(
                validate(0, &["layer-pax-mismatch"]),
                inspect(0),
                json!({"exit": 0, "present": [f("after", "a")], "absent": ["canary", "hidden"]}),
                flatten_clean(),
            ),
        ),
        case(
            "pax-size-smaller-smuggles-entry",
            "A PAX `size` of 0 over a header saying 1024: PAX readers take the entry's data blocks for headers and see a smuggled set-ID entry that climbs out of the root, which header readers never see.",
            |at| {
                let smuggled = layer_without_end(&[
                    file("../canary/smuggled", b"").mode(0o4755),
                    file("after-smuggle", b"").mode(0o4755).owner(1000, 1000),
                ]);
                assert_eq!(smuggled.len(), 1024);
                let tar = layer(&[file("cover", &smuggled).pax("size", "0")]);
                image(at, Some("flattened"), vec![plain(tar)]);
            },
            outcome(
                validate(1, &["flattened-setid", "flattened-single-id", "layer-path-escape", "layer-pax-mismatch"]),
                inspect(0),
                json!({"exit": 0, "present": [f("cover", ""), f("after-smuggle", "")], "absent": ["canary", "smuggled"]}),
                flatten_clean(),
            ),
        ),
        case(
            "bad-header-checksum",
            "The second header's checksum is wrong (one byte of its name changed after the checksum was computed).",
            |at| {
                let mut tar = layer(&[file("first", b"1"), file("second", b"2"), file("third", b"3")]);
                tar[1024] = b'S';
                image(at, ALLOWED, vec![plain(tar)]);
            },
            outcome(validate(1, &["layer-unreadable"]), inspect(1), unpack_fails("layer 0"), flatten_fails("layer 0")),
        ),
        case(
            "gnu-huge-size",
            "A GNU base-256 size of 2^62 bytes on a one-byte entry: the reader must stop at the stream's end, not allocate or seek that far.",
            |at| {
                let tar =
                    layer(&[file("huge", b"h").gnu().patch(field::SIZE, &base256(1 << 62, 12)), file("after", b"a")]);
                image(at, ALLOWED, vec![plain(tar)]);
            },
            outcome(validate(1, &["layer-unreadable"]), inspect(1), unpack_fails("layer 0"), flatten_fails("layer 0")),
        ),
    ]
}

fn stream_cases() -> Vec<Case> {
    let cuts: [(&'static str, &'static str, usize); 7] = [
        ("truncated-mid-header", "The tar stream stops in the middle of the second header.", cut::ENTRY2 + 100),
        (
            "truncated-after-header",
            "The tar stream stops right after a header whose entry has 700 bytes of data.",
            cut::ENTRY2_DATA,
        ),
        ("truncated-mid-data", "The tar stream stops in the middle of an entry's data.", cut::ENTRY2_DATA + 300),
        (
            "truncated-mid-padding",
            "The tar stream stops after an entry's data, inside the zero padding to its block.",
            cut::ENTRY2_PADDING + 100,
        ),
        (
            "truncated-mid-end-block",
            "The tar stream stops in the middle of the first end-of-archive block.",
            cut::END + 200,
        ),
        (
            "truncated-before-end-blocks",
            "The tar stream stops after the last entry, without end-of-archive blocks: readable, but a warning.",
            cut::END,
        ),
        (
            "truncated-between-end-blocks",
            "The tar stream has one end-of-archive block instead of two: readable, but a warning.",
            cut::END + 512,
        ),
    ];
    let mut v = Vec::new();
    for (name, description, at) in cuts {
        let readable = at >= cut::END && at % 512 == 0;
        let expected = if readable {
            outcome(
                validate(0, &["layer-end-marker"]),
                inspect(0),
                json!({"exit": 0, "present": [d("srv"), f("srv/last", "z")]}),
                flatten_clean(),
            )
        } else {
            outcome(validate(1, &["layer-unreadable"]), inspect(1), unpack_fails("layer 0"), flatten_fails("layer 0"))
        };
        v.push(case(name, description, move |out| truncated(out, at), expected));
    }
    v.extend([
        case(
            "truncated-gzip",
            "A gzip layer cut in the middle of its compressed data.",
            |at| {
                let tar = cut_sample();
                let gz = Compression::Gzip.compress(&tar);
                image_with_blob(at, ALLOWED, &tar, &gz[..gz.len() - 30], Compression::Gzip.media_type());
            },
            outcome(validate(1, &["layer-unreadable"]), inspect(1), unpack_fails("layer 0"), flatten_fails("layer 0")),
        ),
        case(
            "truncated-zstd",
            "A zstd layer cut in the middle of its frame.",
            |at| {
                let tar = cut_sample();
                let z = Compression::Zstd.compress(&tar);
                image_with_blob(at, ALLOWED, &tar, &z[..z.len() / 2], Compression::Zstd.media_type());
            },
            outcome(validate(1, &["layer-unreadable"]), inspect(1), unpack_fails("layer 0"), flatten_fails("layer 0")),
        ),
        case(
            "gzip-concatenated-members",
            "A valid gzip layer made of three concatenated members, split mid-header and mid-data: it must validate clean.",
            |at| {
                let tar = cut_sample();
                let mut blob = Vec::new();
                for part in [&tar[..300], &tar[300..cut::ENTRY2_DATA + 100], &tar[cut::ENTRY2_DATA + 100..]] {
                    blob.extend_from_slice(&Compression::Gzip.compress(part));
                }
                image_with_blob(at, ALLOWED, &tar, &blob, Compression::Gzip.media_type());
            },
            outcome(
                validate(0, &[]),
                inspect(0),
                json!({"exit": 0, "present": [d("srv"), f("srv/last", "z")]}),
                flatten_clean(),
            ),
        ),
        case(
            "gzip-trailing-garbage",
            "A gzip member followed by bytes that are not another member.",
            |at| {
                let tar = cut_sample();
                let mut blob = Compression::Gzip.compress(&tar);
                blob.extend_from_slice(b"this is not a gzip member\n");
                image_with_blob(at, ALLOWED, &tar, &blob, Compression::Gzip.media_type());
            },
            outcome(validate(1, &["layer-unreadable"]), inspect(1), unpack_fails("layer 0"), flatten_fails("layer 0")),
        ),
        case(
            "zstd-huge-window",
            "A zstd frame whose header declares a 2 GiB window (windowLog 31): the decoder must refuse it, not allocate it.",
            |at| {
                let tar = cut_sample();
                image_with_blob(at, ALLOWED, &tar, &zstd_frame(&tar, 31), Compression::Zstd.media_type());
            },
            json!({
                "validate": {"exit": 1, "rules": ["layer-unreadable"], "messages_contain": ["too much memory"]},
                "inspect": inspect(1),
                "unpack": unpack_fails("too much memory"),
                "flatten": flatten_fails("too much memory"),
            }),
        ),
        case(
            "zstd-ordinary-window",
            "The same hand-made zstd frame with an ordinary 1 MiB window (windowLog 20): valid, so the refusal above is the window's doing.",
            |at| {
                let tar = cut_sample();
                image_with_blob(at, ALLOWED, &tar, &zstd_frame(&tar, 20), Compression::Zstd.media_type());
            },
            outcome(
                validate(0, &[]),
                inspect(0),
                json!({"exit": 0, "present": [d("srv"), f("srv/last", "z")]}),
                flatten_clean(),
            ),
        ),
    ]);
    v
}

fn document_cases() -> Vec<Case> {
    vec![
        case(
            "json-duplicate-keys",
            "Manifest annotations with the id-flattening key twice, `caution` first and `flattened` last. serde_json keeps the last value, a parser keeping the first sees `caution`: the document is ambiguous (an error), the image is `caution`, and unpack and flatten refuse it.",
            |at| {
                let mut oci = OciDir::create(at.join("layout"));
                let tar = layer(&[file("f", b"x")]);
                let layer_desc = oci.blob(Compression::Gzip.media_type(), &Compression::Gzip.compress(&tar));
                let config = json!({"architecture": "amd64", "os": "linux", "config": {"User": "", "Labels": {KEY: "flattened"}},
                                    "rootfs": {"type": "layers", "diff_ids": [sha256(&tar)]}});
                let config_desc = oci.json_blob("application/vnd.oci.image.config.v1+json", &config);
                let annotations = format!(r#"{{"{KEY}":"caution","{KEY}":"flattened"}}"#);
                let text = manifest_text(&config_desc, &[layer_desc], &annotations);
                let desc = oci.blob("application/vnd.oci.image.manifest.v1+json", text.as_bytes());
                oci.add(with_ref(desc));
            },
            outcome(
                validate(1, &["annotation-conflict", "document-ambiguous"]),
                inspect(1),
                unpack_fails("appears more than once"),
                flatten_fails("appears more than once"),
            ),
        ),
        case(
            "json-deep-nesting-config",
            "A config holding 10,000 nested arrays in a member the image-spec does not define. Typed parsing skips it without recursing, but flatten (which keeps unknown members, as a serde_json Value) hits serde_json's recursion limit: validate must report the document it cannot carry through, as document-invalid, not pass it.",
            |at| {
                let (oci, desc) = image(at, ALLOWED, vec![gz(&[file("f", b"x")])]);
                let manifest = oci.read(&desc);
                let config = oci.read(&manifest["config"]);
                let mut text = serde_json::to_string(&config).unwrap();
                text.pop();
                text.push_str(&format!(r#","deep":{}}}"#, nested(10_000)));
                let config_desc = oci.blob("application/vnd.oci.image.config.v1+json", text.as_bytes());
                let new = oci.rewrite(&desc, |m| m["config"] = config_desc);
                write_index(&oci, vec![new]);
                remove_unreferenced(&oci);
            },
            json!({
                "validate": validate(1, &["document-invalid"]),
                "inspect": {"exit": [0, 1]},
                "unpack": {"exit": [0, 1]},
                "flatten": flatten_fails("recursion limit"),
            }),
        ),
        case(
            "json-deep-nesting-index",
            "An index.json holding 10,000 nested arrays in a member the image-spec does not define: as for the config, flatten cannot carry it (recursion limit), so validate must report it.",
            |at| {
                let (oci, _) = image(at, ALLOWED, vec![gz(&[file("f", b"x")])]);
                let mut text = serde_json::to_string(&index_of(&oci)).unwrap();
                text.pop();
                text.push_str(&format!(r#","deep":{}}}"#, nested(10_000)));
                fs::write(oci.root.join("index.json"), text).unwrap();
            },
            json!({
                "validate": validate(1, &["layout-index"]),
                "inspect": {"exit": [0, 1]},
                "unpack": {"exit": [0, 1, 2]},
                "flatten": {"exit": [1, 2], "stderr_contains": ["index.json", "recursion limit"]},
            }),
        ),
        case(
            "index-json-50mib",
            "An index.json of 50 MiB (a valid index followed by white space): refused by size, never read whole.",
            |at| {
                image(at, ALLOWED, vec![gz(&[file("f", b"x")])]);
            },
            json!({
                "setup": {"pad": {"file": "layout/index.json", "size": 50 << 20}},
                "validate": validate(1, &["limit-exceeded"]),
                "inspect": inspect(1),
                "unpack": {"exit": 2, "stderr_contains": ["index.json", "limit"], "absent": [""]},
                "flatten": {"exit": [1, 2], "stderr_contains": ["index.json", "limit"]},
            }),
        ),
        case(
            "blob-symlink-layer",
            "The layer blob is a symlink to a file outside the layout that holds exactly the right bytes: it must not count as present.",
            |at| {
                let (oci, desc) = image(at, ALLOWED, vec![gz(&[file("f", b"x")])]);
                let digest = oci.read(&desc)["layers"][0]["digest"].as_str().unwrap().to_string();
                blob_to_symlink(&oci, &digest, at, "outside-layer", "../../../outside-layer");
            },
            outcome(
                validate(1, &["blob-not-file"]),
                inspect(1),
                unpack_fails("symbolic link"),
                flatten_fails("symbolic link"),
            ),
        ),
        case(
            "blob-symlink-manifest",
            "The manifest blob is a relative symlink out of the layout, to a file holding exactly the right bytes.",
            |at| {
                let (oci, desc) = image(at, ALLOWED, vec![gz(&[file("f", b"x")])]);
                let digest = desc["digest"].as_str().unwrap().to_string();
                blob_to_symlink(&oci, &digest, at, "outside-manifest", "../../../outside-manifest");
            },
            outcome(
                validate(1, &["blob-not-file"]),
                inspect(1),
                json!({"exit": [1, 2], "stderr_contains": ["symbolic link"], "absent": [""]}),
                flatten_fails("symbolic link"),
            ),
        ),
        case(
            "blobs-dir-symlink",
            "`blobs/sha256` is a symlink to a directory outside the layout holding every blob.",
            |at| {
                let (oci, _) = image(at, ALLOWED, vec![gz(&[file("f", b"x")])]);
                fs::rename(oci.root.join("blobs/sha256"), at.join("outside-blobs")).unwrap();
                make_symlink("../../outside-blobs", oci.root.join("blobs/sha256")).unwrap();
            },
            outcome(
                validate(1, &["blob-not-file"]),
                inspect(1),
                json!({"exit": [1, 2], "stderr_contains": ["symbolic link"], "absent": [""]}),
                flatten_fails("symbolic link"),
            ),
        ),
        case(
            "index-json-symlink",
            "`index.json` is a symlink to a valid index outside the layout.",
            |at| {
                let (oci, _) = image(at, ALLOWED, vec![gz(&[file("f", b"x")])]);
                fs::rename(oci.root.join("index.json"), at.join("outside-index.json")).unwrap();
                make_symlink("../outside-index.json", oci.root.join("index.json")).unwrap();
            },
            outcome(
                validate(1, &["layout-index"]),
                inspect(1),
                json!({"exit": 2, "stderr_contains": ["index.json", "symbolic link"], "absent": [""]}),
                json!({"exit": [1, 2], "stderr_contains": ["index.json", "symbolic link"]}),
            ),
        ),
    ]
}
