//! Property tests over randomly generated, valid multi-layer images: a few
//! layers of files, directories, symlinks, hardlinks, FIFOs, whiteouts and
//! opaque whiteouts, with assorted owners, user names, modes (set-ID and
//! sticky bits, read-only directories) and xattrs.
//!
//! The expected tree comes from a small model of layer application written
//! here, independently of `src/unpack`: later entries replace earlier ones
//! (a directory over a directory only updates its mode), whiteouts remove
//! what the lower layers left at their path whatever their position in the
//! layer, hardlinks share their target's object, missing parents are
//! 0755 directories, set-ID bits are cleared, directories keep the sticky
//! bit, every object belongs to the invoking user, and only `user.*`
//! xattrs survive
//! (less those that record owners or overlay state, which neither unpack
//! nor flatten carries).
//!
//! Properties:
//! - `validate` finds no error or warning in the generated image (it is
//!   valid by construction), and `inspect` reads it;
//! - `flatten` succeeds, `validate --strict` finds nothing in its output,
//!   and `unpack` of the output and of the input both give the model's tree;
//! - the position of whiteouts within a layer does not change what
//!   `unpack` gives (CONSUMER-WHITEOUT "whatever the order",
//!   CONSUMER-OPAQUE "wherever the marker stands").
//!
//! Runs are deterministic: a fixed seed, a modest number of cases, and no
//! failure persistence files. `SINGLE_ID_PROPTEST_CASES=N` and
//! `SINGLE_ID_PROPTEST_SEED=S` run more cases or other ones.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::Value;
use support::layers::{self, Spec};
use support::unprivileged::{run_as_user, user, user_dir};
use support::{Compression, ImageSpec, OciDir, TestDir};

// ---------------------------------------------------------------------------
// Running as the consumer would

/// Whether the filesystem of `dir` takes `user.*` xattrs from the user.
fn user_xattrs_work(t: &TestDir) -> bool {
    let probe = t.join("xattr-probe");
    fs::write(&probe, b"").unwrap();
    rustix::fs::setxattr(&probe, "user.probe", b"1", rustix::fs::XattrFlags::empty()).is_ok()
}

// ---------------------------------------------------------------------------
// Images: entries, and the model of what unpacking them gives

const FILE_MODES: [u32; 8] = [0o644, 0o600, 0o755, 0o4755, 0o2711, 0o6755, 0o444, 0o400];
const DIR_MODES: [u32; 6] = [0o755, 0o700, 0o555, 0o1777, 0o2775, 0o750];
const FIFO_MODES: [u32; 3] = [0o644, 0o600, 0o4620];
const OWNERS: [(u64, u64); 5] = [(0, 0), (1000, 1000), (0, 5), (65534, 65534), (4_000_000, 4_000_000)];
const UNAMES: [&str; 3] = ["", "root", "alice"];
const SYMLINK_TARGETS: [&str; 6] = ["a", "../x", "/etc/passwd", "b/x/p", "nowhere", "/"];
/// A capability set (CAP_NET_BIND_SERVICE), which no consumer applies.
const CAPABILITY: &[u8] = b"\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";

/// Every path an entry can have: few enough that layers collide often.
fn paths() -> Vec<String> {
    let mut out = Vec::new();
    for a in ["a", "b", "c"] {
        out.push(a.to_string());
        for x in ["x", "y"] {
            out.push(format!("{a}/{x}"));
            out.push(format!("{a}/{x}/p"));
        }
    }
    out
}

#[derive(Clone, Debug)]
enum Entry {
    File {
        path: String,
        data: Vec<u8>,
        mode: u32,
        owner: (u64, u64),
        uname: &'static str,
        xattrs: Vec<(String, Vec<u8>)>,
    },
    Dir {
        path: String,
        mode: u32,
        owner: (u64, u64),
    },
    Symlink {
        path: String,
        target: &'static str,
        owner: (u64, u64),
    },
    Hardlink {
        path: String,
        target: String,
        mode: u32,
    },
    Fifo {
        path: String,
        mode: u32,
    },
    /// `DIR/.wh.NAME`, as the path it removes.
    Whiteout {
        path: String,
    },
    /// `DIR/.wh..wh..opq`.
    Opaque {
        dir: String,
    },
}

impl Entry {
    fn is_whiteout(&self) -> bool {
        matches!(self, Entry::Whiteout { .. } | Entry::Opaque { .. })
    }

    fn spec(&self) -> Spec {
        match self {
            Entry::File { path, data, mode, owner, uname, xattrs } => {
                let mut s = layers::file(path, data).mode(*mode).owner(owner.0, owner.1).names(uname, uname);
                for (k, v) in xattrs {
                    s = s.pax(&format!("SCHILY.xattr.{k}"), v);
                }
                s
            }
            Entry::Dir { path, mode, owner } => layers::dir(format!("{path}/")).mode(*mode).owner(owner.0, owner.1),
            Entry::Symlink { path, target, owner } => layers::symlink(path, target).owner(owner.0, owner.1),
            Entry::Hardlink { path, target, mode } => layers::hardlink(path, target).mode(*mode),
            Entry::Fifo { path, mode } => layers::fifo(path).mode(*mode),
            Entry::Whiteout { path } => {
                let (dir, name) = split(path);
                layers::file(join(dir, &format!(".wh.{name}")), b"")
            }
            Entry::Opaque { dir } => layers::file(join(dir, ".wh..wh..opq"), b""),
        }
    }
}

fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") }
}

fn ancestors(path: &str) -> Vec<&str> {
    path.match_indices('/').map(|(i, _)| &path[..i]).collect()
}

/// An object of the model tree.
#[derive(Clone, Debug, PartialEq)]
enum Obj {
    File(usize),
    Dir(u32),
    Symlink(&'static str),
    Fifo(u32),
}

/// The content, mode and xattrs of a regular file, shared by its links.
#[derive(Clone, Debug)]
struct Inode {
    data: Vec<u8>,
    mode: u32,
    xattrs: BTreeMap<String, Vec<u8>>,
}

#[derive(Clone, Debug, Default)]
struct Model {
    tree: BTreeMap<String, Obj>,
    inodes: Vec<Inode>,
}

impl Model {
    /// Removes `path` and everything beneath it.
    fn remove(&mut self, path: &str) {
        let below = format!("{path}/");
        self.tree.retain(|p, _| p != path && !p.starts_with(&below));
    }

    /// Removes everything beneath `dir` (the root when empty).
    fn empty(&mut self, dir: &str) {
        if dir.is_empty() {
            self.tree.clear();
        } else {
            let below = format!("{dir}/");
            self.tree.retain(|p, _| !p.starts_with(&below));
        }
    }

    /// Whether an entry at `path` could be applied: every ancestor is a
    /// directory or absent (no write through a file or a symlink).
    fn placeable(&self, path: &str) -> bool {
        ancestors(path).iter().all(|a| matches!(self.tree.get(*a), None | Some(Obj::Dir(_))))
    }

    /// Creates missing parents of `path` as 0755 directories.
    fn parents(&mut self, path: &str) {
        for a in ancestors(path) {
            self.tree.entry(a.to_string()).or_insert(Obj::Dir(0o755));
        }
    }

    fn apply(&mut self, e: &Entry) {
        match e {
            Entry::Whiteout { path } => self.remove(path),
            Entry::Opaque { dir } => self.empty(dir),
            Entry::Dir { path, mode, .. } => {
                self.parents(path);
                if !matches!(self.tree.get(path), Some(Obj::Dir(_))) {
                    self.remove(path);
                }
                self.tree.insert(path.clone(), Obj::Dir(mode & 0o1777));
            }
            Entry::File { path, data, mode, xattrs, .. } => {
                self.parents(path);
                self.remove(path);
                // CONSUMER-XATTR-USER, less what CONSUMER-XATTR-EXCLUDED
                // keeps out: attributes that record owners or overlay state.
                let owner_bearing = |k: &str| {
                    k == "user.rootlesscontainers"
                        || k == "user.containers.override_stat"
                        || k.starts_with("user.overlay.")
                        || k.starts_with("user.fuseoverlayfs.")
                };
                let kept = xattrs
                    .iter()
                    .filter(|(k, _)| k.starts_with("user.") && !owner_bearing(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                self.inodes.push(Inode { data: data.clone(), mode: mode & 0o777, xattrs: kept });
                self.tree.insert(path.clone(), Obj::File(self.inodes.len() - 1));
            }
            Entry::Symlink { path, target, .. } => {
                self.parents(path);
                self.remove(path);
                self.tree.insert(path.clone(), Obj::Symlink(target));
            }
            Entry::Hardlink { path, target, .. } => {
                let Some(Obj::File(ino)) = self.tree.get(target).cloned() else { panic!("bad hardlink {e:?}") };
                self.parents(path);
                self.remove(path);
                self.tree.insert(path.clone(), Obj::File(ino));
            }
            Entry::Fifo { path, mode } => {
                self.parents(path);
                self.remove(path);
                self.tree.insert(path.clone(), Obj::Fifo(mode & 0o777));
            }
        }
    }

    /// Applies a layer: its whiteouts first (they remove only what lower
    /// layers left), then its other entries in order.
    fn apply_layer(&mut self, layer: &[Entry]) {
        for e in layer.iter().filter(|e| e.is_whiteout()) {
            self.apply(e);
        }
        for e in layer.iter().filter(|e| !e.is_whiteout()) {
            self.apply(e);
        }
    }
}

/// One random choice of the generator; `Steps` are turned into valid
/// layers by [`build`], which skips choices that would make them invalid.
/// `op % OPS` picks the kind (see [`kind`]), `a` the path, `b` and `c` the
/// mode, owner, target and xattrs, `data` the content.
#[derive(Clone, Debug)]
struct Step {
    op: u8,
    a: u8,
    b: u8,
    c: u8,
    data: Vec<u8>,
}

const OPS: u8 = 11;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Fifo,
    Whiteout,
    Opaque,
}

fn kind(op: u8) -> Kind {
    match op % OPS {
        0..=2 => Kind::File,
        3 | 4 => Kind::Dir,
        5 => Kind::Symlink,
        6 | 7 => Kind::Hardlink,
        8 => Kind::Fifo,
        9 => Kind::Whiteout,
        _ => Kind::Opaque,
    }
}

fn step() -> impl Strategy<Value = Step> {
    (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), proptest::collection::vec(0x20u8..0x7f, 0..40))
        .prop_map(|(op, a, b, c, data)| Step { op, a, b, c, data })
}

/// A few layers of steps.
fn script() -> impl Strategy<Value = Vec<Vec<Step>>> {
    proptest::collection::vec(proptest::collection::vec(step(), 0..10), 1..5)
}

/// Turns `script` into layers that are valid by the OCI layer rules (no
/// duplicate, hardlinks to existing files, valid whiteouts, nothing
/// written beneath a file or symlink), whiteouts first in each layer.
fn build(script: &[Vec<Step>]) -> Vec<Vec<Entry>> {
    let all = paths();
    let mut model = Model::default();
    let mut out = Vec::new();
    for steps in script {
        let mut layer = Vec::new();
        let mut used: BTreeSet<String> = BTreeSet::new();
        // The tree as a consumer that meets this layer's whiteouts last
        // would see it: an entry must be placeable there too (a file that
        // a whiteout removes later in the layer still blocks an entry
        // beneath it then, which the spec leaves open).
        let mut raw = model.clone();
        // Whiteouts of what the lower layers left.
        for s in steps.iter().filter(|s| matches!(kind(s.op), Kind::Whiteout | Kind::Opaque)) {
            let whiteout = kind(s.op) == Kind::Whiteout;
            let candidates: Vec<String> = if whiteout {
                model.tree.keys().cloned().collect()
            } else {
                let mut dirs: Vec<String> =
                    model.tree.iter().filter(|(_, o)| matches!(o, Obj::Dir(_))).map(|(p, _)| p.clone()).collect();
                dirs.push(String::new());
                dirs
            };
            if candidates.is_empty() {
                continue;
            }
            let pick = candidates[s.a as usize % candidates.len()].clone();
            let e = if whiteout { Entry::Whiteout { path: pick } } else { Entry::Opaque { dir: pick } };
            let key = format!("{e:?}");
            if used.insert(key) {
                model.apply(&e);
                layer.push(e);
            }
        }
        for s in steps.iter().filter(|s| !matches!(kind(s.op), Kind::Whiteout | Kind::Opaque)) {
            let path = all[s.a as usize % all.len()].clone();
            if used.contains(&path) || !model.placeable(&path) || !raw.placeable(&path) {
                continue;
            }
            let owner = OWNERS[s.c as usize % OWNERS.len()];
            let e = match kind(s.op) {
                Kind::File => {
                    let mut xattrs = Vec::new();
                    if s.c & 0x10 != 0 {
                        xattrs.push(("user.note".to_string(), s.data.clone()));
                    }
                    if s.c & 0x20 != 0 {
                        xattrs.push(("security.capability".to_string(), CAPABILITY.to_vec()));
                    }
                    if s.c & 0x40 != 0 {
                        xattrs.push(("user.rootlesscontainers".to_string(), b"\x08\xe8\x07".to_vec()));
                    }
                    Entry::File {
                        path: path.clone(),
                        data: s.data.clone(),
                        mode: FILE_MODES[s.b as usize % FILE_MODES.len()],
                        owner,
                        uname: UNAMES[s.c as usize % UNAMES.len()],
                        xattrs,
                    }
                }
                Kind::Dir => Entry::Dir { path: path.clone(), mode: DIR_MODES[s.b as usize % DIR_MODES.len()], owner },
                Kind::Symlink => Entry::Symlink {
                    path: path.clone(),
                    target: SYMLINK_TARGETS[s.b as usize % SYMLINK_TARGETS.len()],
                    owner,
                },
                Kind::Hardlink => {
                    // A file of the tree as it stands, not the link's own
                    // path and not beneath it (replacing the link's path
                    // would remove the target first).
                    let below = format!("{path}/");
                    let files: Vec<String> = model
                        .tree
                        .iter()
                        .filter(|(p, o)| matches!(o, Obj::File(_)) && **p != path && !p.starts_with(&below))
                        .map(|(p, _)| p.clone())
                        .collect();
                    if files.is_empty() {
                        continue;
                    }
                    let target = files[s.b as usize % files.len()].clone();
                    Entry::Hardlink { path: path.clone(), target, mode: FILE_MODES[s.c as usize % FILE_MODES.len()] }
                }
                Kind::Fifo | Kind::Whiteout | Kind::Opaque => {
                    Entry::Fifo { path: path.clone(), mode: FIFO_MODES[s.b as usize % FIFO_MODES.len()] }
                }
            };
            used.insert(path);
            model.apply(&e);
            // Every file of `model` is in `raw` too (it only lacks removals).
            raw.apply(&e);
            layer.push(e);
        }
        out.push(layer);
    }
    out
}

/// What the layers give, by the model.
fn predict(layers: &[Vec<Entry>]) -> Model {
    let mut m = Model::default();
    for l in layers {
        m.apply_layer(l);
    }
    m
}

/// The same layer with its whiteouts moved to the positions `script` says.
fn interleave(layer: &[Entry], steps: &[Step]) -> Vec<Entry> {
    let mut out: Vec<Entry> = layer.iter().filter(|e| !e.is_whiteout()).cloned().collect();
    for (i, w) in layer.iter().filter(|e| e.is_whiteout()).enumerate() {
        let at = steps.get(i).map_or(out.len(), |s| s.c as usize % (out.len() + 1));
        out.insert(at, w.clone());
    }
    out
}

/// Writes the layers as one image `latest` (declared `allowed`) with
/// assorted compressions.
fn write_image(t: &TestDir, name: &str, layers: &[Vec<Entry>]) {
    let compressions = [Compression::Gzip, Compression::Zstd, Compression::None];
    let mut oci = OciDir::create(t.join(name));
    let mut spec = ImageSpec::declared("latest", Some("allowed"));
    spec.layers = layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let specs: Vec<Spec> = l.iter().map(Entry::spec).collect();
            (layers::layer(&specs), compressions[i % compressions.len()])
        })
        .collect();
    oci.add_image(&spec);
    // The tests run as root; the unpacking user must read the layout.
    for e in walkdir::WalkDir::new(t.join(name)) {
        let e = e.unwrap();
        let mode = if e.file_type().is_dir() { 0o755 } else { 0o644 };
        fs::set_permissions(e.path(), fs::Permissions::from_mode(mode)).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Comparing a tree with the model

fn xattrs_of(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut names = vec![0u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(p, &mut names) else { return BTreeMap::new() };
    let mut out = BTreeMap::new();
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let mut value = vec![0u8; 4096];
        if let Ok(len) = rustix::fs::lgetxattr(p, name.as_str(), &mut value) {
            out.insert(name, value[..len].to_vec());
        }
    }
    out
}

/// Every difference between the tree at `root` and the model. `xattrs`
/// says whether to compare them.
fn compare(root: &Path, model: &Model, xattrs: bool) -> Vec<String> {
    let (uid, gid) = user();
    let mut problems = Vec::new();
    let mut found = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
        found.insert(rel, e.path().to_path_buf());
    }
    let want: BTreeSet<&String> = model.tree.keys().collect();
    let have: BTreeSet<&String> = found.keys().collect();
    for p in want.difference(&have) {
        problems.push(format!("{p}: missing ({:?})", model.tree[*p]));
    }
    for p in have.difference(&want) {
        problems.push(format!("{p}: present but the model has nothing there"));
    }
    // Hardlink groups: the model's inode numbers against the disk's.
    let mut groups: BTreeMap<usize, BTreeSet<u64>> = BTreeMap::new();
    let mut inodes: BTreeMap<u64, BTreeSet<usize>> = BTreeMap::new();
    for (p, obj) in &model.tree {
        let Some(path) = found.get(p) else { continue };
        let m = fs::symlink_metadata(path).unwrap();
        if (m.uid(), m.gid()) != (uid, gid) {
            problems.push(format!("{p}: owned by {}:{}, not the invoking user {uid}:{gid}", m.uid(), m.gid()));
        }
        let mode = m.mode() & 0o7777;
        let t = m.file_type();
        match obj {
            Obj::Dir(want) => {
                if !t.is_dir() {
                    problems.push(format!("{p}: not a directory"));
                } else if mode != *want {
                    problems.push(format!("{p}: directory mode {mode:o}, expected {want:o}"));
                }
            }
            Obj::Fifo(want) => {
                if !t.is_fifo() {
                    problems.push(format!("{p}: not a FIFO"));
                } else if mode != *want {
                    problems.push(format!("{p}: FIFO mode {mode:o}, expected {want:o}"));
                }
            }
            Obj::Symlink(target) => {
                if !t.is_symlink() {
                    problems.push(format!("{p}: not a symlink"));
                } else if fs::read_link(path).unwrap() != Path::new(target) {
                    problems.push(format!("{p}: points to {:?}, expected {target:?}", fs::read_link(path).unwrap()));
                }
            }
            Obj::File(ino) => {
                let inode = &model.inodes[*ino];
                if !t.is_file() {
                    problems.push(format!("{p}: not a regular file"));
                    continue;
                }
                if mode != inode.mode {
                    problems.push(format!("{p}: file mode {mode:o}, expected {:o}", inode.mode));
                }
                if fs::read(path).unwrap() != inode.data {
                    problems.push(format!("{p}: content differs"));
                }
                let want = inode.xattrs.clone();
                if xattrs && xattrs_of(path) != want {
                    problems.push(format!("{p}: xattrs {:?}, expected {want:?}", xattrs_of(path)));
                }
                groups.entry(*ino).or_default().insert(m.ino());
                inodes.entry(m.ino()).or_default().insert(*ino);
            }
        }
    }
    for (ino, disk) in &groups {
        if disk.len() > 1 {
            problems.push(format!("the links to model object {ino} are {} objects on disk", disk.len()));
        }
    }
    for (disk, model_inos) in &inodes {
        if model_inos.len() > 1 {
            problems.push(format!("disk inode {disk} is {} objects of the model", model_inos.len()));
        }
    }
    problems
}

fn describe(layers: &[Vec<Entry>]) -> String {
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| format!("layer {i}:\n{}", l.iter().map(|e| format!("  {e:?}\n")).collect::<String>()))
        .collect()
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if ok { Ok(()) } else { Err(TestCaseError::fail(what())) }
}

fn rules(doc: &Value) -> Vec<String> {
    doc["findings"].as_array().into_iter().flatten().map(|f| f["rule"].as_str().unwrap_or("?").to_string()).collect()
}

/// Fails with the shrunk case's own message (the layers), not the raw
/// generator input.
fn report(result: Result<(), proptest::test_runner::TestError<Vec<Vec<Step>>>>) {
    match result {
        Ok(()) => {}
        Err(proptest::test_runner::TestError::Fail(reason, _)) => panic!("{reason}"),
        Err(e) => panic!("{e}"),
    }
}

/// A deterministic runner: `cases` cases from `seed`, unless
/// `SINGLE_ID_PROPTEST_CASES` or `SINGLE_ID_PROPTEST_SEED` ask for a longer
/// or different run.
fn runner(cases: u32, seed: u64) -> TestRunner {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    TestRunner::new(Config {
        cases: env("SINGLE_ID_PROPTEST_CASES").map_or(cases, |n| n as u32),
        rng_seed: RngSeed::Fixed(env("SINGLE_ID_PROPTEST_SEED").unwrap_or(seed)),
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    })
}

// ---------------------------------------------------------------------------
// The properties

/// Valid by construction: validate finds nothing but the `caution-candidate`
/// note an `allowed` image with set-ID files gets; flatten succeeds and its
/// output is strictly clean; unpacking input and output gives the model.
#[test]
fn flatten_then_unpack_gives_the_model() {
    let mut runner = runner(48, 0x5eed_0001);
    let result = runner.run(&script(), |script| {
        let layers = build(&script);
        let expected = predict(&layers);
        let t = user_dir();
        write_image(&t, "image", &layers);
        let xattrs = user_xattrs_work(&t);
        let story = || describe(&layers);

        let v = run_as_user(&t, &["validate", "--format", "json", "image"]);
        let found = rules(&v.json());
        ensure(v.code() == 0 && found.iter().all(|r| r == "caution-candidate"), || {
            format!("validate of a valid image: exit {}, findings {found:?}\n{}\n{}", v.code(), v.stdout(), story())
        })?;
        let i = run_as_user(&t, &["inspect", "image"]);
        ensure(i.code() == 0, || format!("inspect exit {}: {}\n{}", i.code(), i.stderr(), story()))?;

        let f = run_as_user(&t, &["flatten", "image", "flat"]);
        ensure(f.code() == 0, || format!("flatten exit {}: {}\n{}", f.code(), f.stderr(), story()))?;
        let s = run_as_user(&t, &["validate", "--strict", "--format", "json", "flat"]);
        let found = rules(&s.json());
        ensure(s.code() == 0 && found.is_empty(), || {
            format!("validate --strict of flatten's output: exit {}, findings {found:?}\n{}", s.code(), story())
        })?;

        for (image, dest) in [("flat", "from-flat"), ("image", "from-image")] {
            let u = run_as_user(&t, &["unpack", image, dest]);
            ensure(u.code() == 0, || format!("unpack {image}: exit {}: {}\n{}", u.code(), u.stderr(), story()))?;
            let problems = compare(&t.join(dest), &expected, xattrs);
            ensure(problems.is_empty(), || {
                format!("unpack of {image} differs from the model:\n{}\n{}", problems.join("\n"), story())
            })?;
        }
        Ok(())
    });
    report(result);
}

/// Moving a layer's whiteouts among its other entries changes nothing.
#[test]
fn whiteout_position_does_not_matter() {
    let mut runner = runner(32, 0x5eed_0002);
    let result = runner.run(&script(), |script| {
        let first = build(&script);
        if !first.iter().flatten().any(Entry::is_whiteout) {
            return Ok(());
        }
        let moved: Vec<Vec<Entry>> = first.iter().zip(&script).map(|(l, s)| interleave(l, s)).collect();
        let expected = predict(&first);
        let t = user_dir();
        write_image(&t, "image", &moved);
        let u = run_as_user(&t, &["unpack", "image", "dest"]);
        ensure(u.code() == 0, || format!("unpack exit {}: {}\n{}", u.code(), u.stderr(), describe(&moved)))?;
        let problems = compare(&t.join("dest"), &expected, user_xattrs_work(&t));
        ensure(problems.is_empty(), || {
            format!(
                "whiteouts moved within their layer change the tree:\n{}\n{}",
                problems.join("\n"),
                describe(&moved)
            )
        })
    });
    report(result);
}

/// The smallest case of the property above (found by it): a directory that
/// a layer whites out (or empties with an opaque marker) while creating
/// something beneath it must end with the mode of a directory made anew
/// (0755, as when the whiteout comes first), not keep the removed
/// directory's recorded mode because the whiteout came last.
#[test]
fn whiteout_after_an_entry_beneath_it_still_removes_the_directory() {
    for whiteouts_last in [false, true] {
        let base = vec![
            Entry::Dir { path: "a".into(), mode: 0o700, owner: (0, 0) },
            Entry::Dir { path: "o".into(), mode: 0o755, owner: (0, 0) },
            Entry::Dir { path: "o/sub".into(), mode: 0o750, owner: (0, 0) },
        ];
        let new = |p: &str| Entry::File {
            path: p.into(),
            data: b"n".to_vec(),
            mode: 0o644,
            owner: (0, 0),
            uname: "",
            xattrs: Vec::new(),
        };
        let mut top = vec![Entry::Whiteout { path: "a".into() }, Entry::Opaque { dir: "o".into() }];
        let files = vec![new("a/new"), new("o/sub/new")];
        if whiteouts_last {
            top = files.into_iter().chain(top).collect();
        } else {
            top.extend(files);
        }
        let layers = vec![base, top];
        let t = user_dir();
        write_image(&t, "image", &layers);
        let u = run_as_user(&t, &["unpack", "image", "dest"]);
        assert_eq!(u.code(), 0, "{}", u.stderr());
        let problems = compare(&t.join("dest"), &predict(&layers), false);
        assert!(
            problems.is_empty(),
            "whiteouts last: {whiteouts_last}\n{}\n{}",
            problems.join("\n"),
            describe(&layers)
        );
    }
}

/// A PAX `mtime` as producers write it: whole seconds (before the epoch
/// too, and past what the 11-digit octal header field holds) with a
/// fraction of one to nine digits.
fn pax_mtime() -> impl Strategy<Value = String> {
    (any::<bool>(), 0u64..(1 << 40), proptest::collection::vec(0u8..10, 1..10)).prop_map(|(negative, secs, digits)| {
        let fraction: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
        format!("{}{secs}.{fraction}", if negative { "-" } else { "" })
    })
}

/// The PAX `mtime` record of each entry of a plain tar stream, by name.
fn pax_mtimes(tar: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let field = |block: &[u8], at: usize, len: usize| {
        let raw = &block[at..at + len];
        raw[..raw.iter().position(|b| *b == 0).unwrap_or(len)].to_vec()
    };
    let mut out = BTreeMap::new();
    let mut pending: Option<Vec<u8>> = None;
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|b| *b != 0) {
        let block = &tar[at..at + 512];
        let size_text = String::from_utf8(field(block, 124, 12)).unwrap();
        let size = u64::from_str_radix(size_text.trim(), 8).unwrap() as usize;
        let data = &tar[at + 512..at + 512 + size];
        if block[156] == b'x' {
            let mut rest = data;
            while let Some(space) = rest.iter().position(|b| *b == b' ') {
                let len: usize = std::str::from_utf8(&rest[..space]).unwrap().parse().unwrap();
                let record = &rest[space + 1..len - 1];
                if let Some(value) = record.strip_prefix(b"mtime=") {
                    pending = Some(value.to_vec());
                }
                rest = &rest[len..];
            }
        } else if let Some(mtime) = pending.take() {
            out.insert(String::from_utf8(field(block, 0, 100)).unwrap(), mtime);
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

/// flatten writes every fractional PAX `mtime` back byte for byte, never
/// rounded to whole seconds.
#[test]
fn flatten_keeps_fractional_pax_mtimes_byte_for_byte() {
    let mut runner = runner(16, 0x5eed_0004);
    let result = runner.run(&proptest::collection::vec(pax_mtime(), 1..40), |mtimes| {
        let t = TestDir::new();
        let mut tar = Vec::new();
        let mut expected = BTreeMap::new();
        for (i, m) in mtimes.iter().enumerate() {
            let name = format!("f{i}");
            tar.extend(support::rawtar::pax(b'x', &[(b"mtime", m.as_bytes())]));
            tar.extend(support::rawtar::file(name.as_bytes(), b"x"));
            expected.insert(name, m.as_bytes().to_vec());
        }
        tar.extend(support::rawtar::end());
        let mut oci = OciDir::create(t.join("image"));
        let mut spec = ImageSpec::declared("latest", Some("allowed"));
        spec.layers = vec![(tar, Compression::None)];
        oci.add_image(&spec);

        let f = t.run(&["flatten", "image", "flat"]);
        ensure(f.code() == 0, || format!("flatten exit {}: {}\n{mtimes:?}", f.code(), f.stderr()))?;
        let flat = OciDir::open(t.join("flat"));
        let index: Value = serde_json::from_slice(&fs::read(t.join("flat/index.json")).unwrap()).unwrap();
        let manifest = flat.read(&index["manifests"][0]);
        let layer = fs::read(flat.blob_file(manifest["layers"][0]["digest"].as_str().unwrap())).unwrap();
        let found = pax_mtimes(&layer);
        ensure(found == expected, || {
            let show = |m: &BTreeMap<String, Vec<u8>>| -> Vec<String> {
                m.iter().map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v))).collect()
            };
            format!("flatten rewrote PAX mtimes:\n  in:  {:?}\n  out: {:?}", show(&expected), show(&found))
        })
    });
    match result {
        Ok(()) => {}
        Err(proptest::test_runner::TestError::Fail(reason, _)) => panic!("{reason}"),
        Err(e) => panic!("{e}"),
    }
}
