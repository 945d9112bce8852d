//! `single-id-conformance generate`: turns every `cases/<case>.json` into
//! `fixtures/<case>/layout/` (an OCI image layout) and
//! `fixtures/<case>/expected.json`.
//!
//! The output is byte-for-byte reproducible: tar headers are written here
//! field by field (ustar, with PAX `x` headers where a value does not fit),
//! every mtime is fixed, gzip carries no timestamp or name, zstd runs at
//! level 3, and JSON is written with sorted keys.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};
use sha2::Digest as _;

use crate::case::{self, Case, Compression, Entry, EntryType, SparseFormat};
use crate::expect::{Expectation, Kind, Outcome, Present, Value as Flattening};

/// The key producers write (ANNOTATION-KEY), used unless a case says
/// otherwise.
pub const KEY: &str = "io.github.supercontainers.id-flattening";
/// The key image-spec would define, which consumers read too; a case
/// writes it only through `annotation.reserved`.
pub const RESERVED_KEY: &str = "org.opencontainers.image.id-flattening";
pub const REF_KEY: &str = "org.opencontainers.image.ref.name";
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// The command: generate, print what was written, exit 0 or 1.
pub fn main(cases: &Path, out: &Path) -> ExitCode {
    match generate(cases, out) {
        Ok(names) => {
            let plural = if names.len() == 1 { "" } else { "s" };
            println!("wrote {} fixture{plural} from {} to {}", names.len(), cases.display(), out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("single-id-conformance generate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes every fixture into `out`, replacing what was there for each case
/// and removing fixtures (directories holding an `expected.json`) whose
/// case no longer exists. Returns the case names.
pub fn generate(cases: &Path, out: &Path) -> Result<Vec<String>, String> {
    let loaded = load_cases(cases)?;
    let mut built = Vec::new();
    for (name, case) in &loaded {
        built.push((name.clone(), fixture(name, case).map_err(|e| format!("{}/{name}.json: {e}", cases.display()))?));
    }
    fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let names: BTreeSet<&String> = loaded.iter().map(|(n, _)| n).collect();
    for stale in fs::read_dir(out).map_err(|e| format!("{}: {e}", out.display()))? {
        let stale = stale.map_err(|e| format!("{}: {e}", out.display()))?.path();
        let is_fixture = stale.join("expected.json").is_file();
        let name = stale.file_name().and_then(|n| n.to_str()).map(String::from).unwrap_or_default();
        if is_fixture && !names.contains(&name) {
            fs::remove_dir_all(&stale).map_err(|e| format!("{}: {e}", stale.display()))?;
        }
    }
    for (name, files) in built {
        let dir = out.join(&name);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        for (rel, bytes) in files {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(names.into_iter().cloned().collect())
}

/// Every `*.json` in `dir` (README.md and other files are ignored), by name.
pub fn load_cases(dir: &Path) -> Result<Vec<(String, Case)>, String> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    paths.retain(|p| p.extension().is_some_and(|x| x == "json"));
    paths.sort();
    if paths.is_empty() {
        return Err(format!("{}: no case files (*.json)", dir.display()));
    }
    let mut out = Vec::new();
    for path in paths {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        if !is_case_name(&name) {
            return Err(format!("{}: a case name is lower-case words joined by `-`", path.display()));
        }
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let case: Case = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        out.push((name, case));
    }
    Ok(out)
}

fn is_case_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('-').all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// The files of one fixture, relative to `fixtures/<case>/`.
pub fn fixture(name: &str, case: &Case) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let expected = expectation(name, case)?;
    let mut files = BTreeMap::new();
    let mut blob = |bytes: Vec<u8>, media_type: &str| -> Value {
        let digest = sha256(&bytes);
        let desc = json!({"mediaType": media_type, "digest": digest, "size": bytes.len()});
        files.insert(format!("layout/blobs/sha256/{}", &digest["sha256:".len()..]), bytes);
        desc
    };
    if case.layers.is_empty() {
        return Err("an image needs at least one layer".into());
    }
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, layer) in case.layers.iter().enumerate() {
        let tar = tar_stream(&layer.entries).map_err(|e| format!("layer {i}: {e}"))?;
        diff_ids.push(sha256(&tar));
        let mut bytes = compress(&tar, layer.compression).map_err(|e| format!("layer {i}: {e}"))?;
        if let Some(n) = layer.truncate {
            if n >= bytes.len() as u64 {
                return Err(format!("layer {i}: truncate {n} does not cut the {}-byte blob", bytes.len()));
            }
            bytes.truncate(n as usize);
        }
        layers.push(blob(bytes, layer.compression.media_type()));
    }
    // The annotation under each key at each place: (manifest, label, index).
    let a = &case.annotation;
    let key = a.key.as_deref().unwrap_or(KEY);
    let mut places: [BTreeMap<String, String>; 3] = Default::default();
    for (k, values) in [
        (key, [&a.manifest, &a.label, &a.index]),
        (RESERVED_KEY, [&a.reserved.manifest, &a.reserved.label, &a.reserved.index]),
    ] {
        for (place, value) in places.iter_mut().zip(values) {
            if let Some(v) = value {
                if place.insert(k.to_string(), v.clone()).is_some_and(|old| &old != v) {
                    return Err(format!(
                        "annotation: {k} is given two values at one place (`key` names the reserved key)"
                    ));
                }
            }
        }
    }
    let [manifest_annotations, labels, index_annotations] = places;
    // `config` and `history`, though optional in OCI, are what real images
    // carry, and Charliecloud 0.31 stops on a config without them.
    let history: Vec<serde_json::Value> = (0..diff_ids.len())
        .map(|i| json!({"created_by": format!("single-id-conformance generate: layer {i}")}))
        .collect();
    let mut config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "history": history,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    if !labels.is_empty() {
        config["config"] = json!({"Labels": labels});
    }
    let config = blob(canonical_bytes(&config), CONFIG_TYPE);
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": config,
        "layers": layers,
    });
    if !manifest_annotations.is_empty() {
        manifest["annotations"] = json!(manifest_annotations);
    }
    let mut descriptor = blob(canonical_bytes(&manifest), MANIFEST_TYPE);
    descriptor["annotations"] = json!({REF_KEY: expected.reference});
    for (k, v) in index_annotations {
        descriptor["annotations"][k] = json!(v);
    }
    let index = json!({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [descriptor]});
    files.insert("layout/index.json".into(), pretty_bytes(&index));
    files.insert("layout/oci-layout".into(), pretty_bytes(&json!({"imageLayoutVersion": "1.0.0"})));
    let expected = serde_json::to_value(&expected).map_err(|e| e.to_string())?;
    files.insert("expected.json".into(), pretty_bytes(&expected));
    Ok(files)
}

/// The case's expectation, checked for consistency, with content digests.
pub fn expectation(name: &str, case: &Case) -> Result<Expectation, String> {
    if case.requirements.is_empty() {
        return Err("a case tests at least one requirement".into());
    }
    let ids: BTreeSet<&str> = case.requirements.iter().map(|r| r.id.as_str()).collect();
    if ids.len() != case.requirements.len() {
        return Err("a requirement is listed twice".into());
    }
    let check_path = |path: &str, requirements: &[String]| -> Result<(), String> {
        let normal = !path.is_empty() && path.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
        if !normal {
            return Err(format!(
                "{path:?}: expected paths are relative and normalised (no leading or trailing `/`, no `.` or `..`)"
            ));
        }
        if requirements.is_empty() {
            return Err(format!("{path}: name the requirements a mismatch here violates"));
        }
        if let Some(id) = requirements.iter().find(|id| !ids.contains(id.as_str())) {
            return Err(format!("{path}: {id} is not among the case's requirements"));
        }
        Ok(())
    };
    let mut seen = BTreeSet::new();
    let mut groups: BTreeMap<&str, usize> = BTreeMap::new();
    let mut present = Vec::new();
    for p in &case.present {
        check_path(&p.path, &p.requirements)?;
        if !seen.insert(p.path.as_str()) {
            return Err(format!("{}: listed twice", p.path));
        }
        if let Some(mode) = &p.mode {
            if p.kind == Kind::Symlink {
                return Err(format!("{}: the mode of a symbolic link is not checked", p.path));
            }
            if mode.len() != 4 {
                return Err(format!("{}: write the mode with four octal digits", p.path));
            }
            case::parse_mode(mode).map_err(|e| format!("{}: {e}", p.path))?;
        }
        if (p.content.is_some() || p.content_of.is_some()) && p.kind != Kind::File {
            return Err(format!("{}: only a regular file has content", p.path));
        }
        if p.content.is_some() && p.content_of.is_some() {
            return Err(format!("{}: give `content` or `contentOf`, not both", p.path));
        }
        if p.target.is_some() && p.kind != Kind::Symlink {
            return Err(format!("{}: only a symbolic link has a target", p.path));
        }
        if let Some(g) = &p.hardlink_group {
            *groups.entry(g).or_default() += 1;
        }
        let sha256 = match (&p.content, &p.content_of) {
            (Some(c), _) => Some(sha256(&case::decode_value(c).map_err(|e| format!("{}: {e}", p.path))?)),
            (None, Some(name)) => Some(sha256(&content_of(case, name).map_err(|e| format!("{}: {e}", p.path))?)),
            (None, None) => None,
        };
        present.push(Present {
            path: p.path.clone(),
            kind: p.kind,
            mode: p.mode.clone(),
            sha256,
            target: p.target.clone(),
            hardlink_group: p.hardlink_group.clone(),
            mtime: p.mtime,
            xattrs: p.xattrs.clone(),
            xattrs_absent: p.xattrs_absent.clone(),
            requirements: p.requirements.clone(),
        });
    }
    if let Some((g, _)) = groups.iter().find(|(_, n)| **n < 2) {
        return Err(format!("hardlink group {g:?} has a single member"));
    }
    for a in &case.absent {
        check_path(&a.path, &a.requirements)?;
        if !seen.insert(a.path.as_str()) {
            return Err(format!("{}: listed twice, or both present and absent", a.path));
        }
    }
    for id in &case.needs {
        if !ids.contains(id.as_str()) {
            return Err(format!("needs: {id} is not among the case's requirements"));
        }
    }
    let effective_value = effective_value(&case.annotation);
    let consent = effective_value == Flattening::Caution;
    if consent != (case.outcome == Outcome::RefuseThenUnpack)
        && matches!(case.outcome, Outcome::Unpack | Outcome::RefuseThenUnpack)
    {
        return Err(format!(
            "the effective value is {}, so the outcome is {}",
            effective_value.name(),
            if consent { "refuse-then-unpack" } else { "unpack" }
        ));
    }
    let expected = Expectation {
        case: name.to_string(),
        description: case.description.clone(),
        reference: name.to_string(),
        requirements: case.requirements.clone(),
        outcome: case.outcome,
        effective_value,
        needs: case.needs.clone(),
        assumes: case.assumes.clone(),
        allowances: case.allowances.clone(),
        present,
        absent: case.absent.clone(),
    };
    crate::harness::attribution_problems(&expected).map_or(Ok(expected), Err)
}

/// The effective value a consumer must derive from the case's annotation,
/// as the spec's "Determining the effective value" lays it out: every
/// value under either key at every place, empty ones dropped, none left
/// meaning `allowed`, an unknown one counting as `caution`, the most
/// cautious winning. A key that is neither the provisional nor the
/// reserved one is another annotation and counts for nothing.
pub fn effective_value(a: &case::Annotation) -> Flattening {
    let key = a.key.as_deref().unwrap_or(KEY);
    let mut values: Vec<&String> = Vec::new();
    if key == KEY || key == RESERVED_KEY {
        values.extend([&a.manifest, &a.label, &a.index].into_iter().flatten());
    }
    values.extend([&a.reserved.manifest, &a.reserved.label, &a.reserved.index].into_iter().flatten());
    values
        .into_iter()
        .filter(|v| !v.is_empty())
        .map(|v| match v.as_str() {
            "flattened" => Flattening::Flattened,
            "allowed" => Flattening::Allowed,
            _ => Flattening::Caution,
        })
        .max()
        .unwrap_or(Flattening::Allowed)
}

/// What the last entry named `name` in the case's layers unpacks to: a
/// regular file's content, a sparse entry expanded. Names compare as
/// normalised relative paths (no leading `/`, no `.` components, no
/// trailing `/`).
fn content_of(case: &Case, name: &str) -> Result<Vec<u8>, String> {
    fn normal(p: &str) -> Vec<&str> {
        p.split('/').filter(|c| !c.is_empty() && *c != ".").collect()
    }
    let want = normal(name);
    let entry = case
        .layers
        .iter()
        .flat_map(|l| &l.entries)
        .rev()
        .find(|e| normal(&e.path) == want)
        .ok_or_else(|| format!("contentOf: no entry named {name:?}"))?;
    if !matches!(entry.kind, EntryType::File | EntryType::Sparse) {
        return Err(format!("contentOf: the last entry named {name:?} is a {}, not a file", entry.kind));
    }
    entry.expanded().map_err(|e| format!("contentOf {name:?}: {e}"))
}

pub fn sha256(bytes: &[u8]) -> String {
    let digest = sha2::Sha256::digest(bytes);
    let mut out = String::from("sha256:");
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn compress(tar: &[u8], compression: Compression) -> Result<Vec<u8>, String> {
    match compression {
        Compression::None => Ok(tar.to_vec()),
        Compression::Gzip => {
            // No name, no timestamp, a fixed OS byte: the same bytes everywhere.
            let mut e = flate2::GzBuilder::new()
                .mtime(0)
                .operating_system(255)
                .write(Vec::new(), flate2::Compression::default());
            e.write_all(tar).map_err(|e| e.to_string())?;
            e.finish().map_err(|e| e.to_string())
        }
        Compression::Zstd => zstd::encode_all(tar, 3).map_err(|e| e.to_string()),
    }
}

/// JSON with every object's keys in sorted order, whatever serde_json's
/// map type is in this build.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// A blob: compact JSON, sorted keys.
fn canonical_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(&sorted(v)).expect("a JSON value serialises")
}

/// A file people read: pretty JSON, sorted keys, a final newline.
fn pretty_bytes(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(&sorted(v)).expect("a JSON value serialises");
    out.push(b'\n');
    out
}

// ---------------------------------------------------------------------
// Tar

const BLOCK: usize = 512;
/// Largest value of an octal field of `width` bytes (digits and a NUL).
const fn octal_max(width: usize) -> u64 {
    (1u64 << (3 * (width as u32 - 1))) - 1
}

/// The ustar header fields of one entry.
struct Header<'a> {
    name: &'a [u8],
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    typeflag: u8,
    link: &'a [u8],
    uname: &'a [u8],
    gname: &'a [u8],
    major: u32,
    minor: u32,
    /// An old-GNU sparse header (typeflag `S`): its map and real size.
    gnu_sparse: Option<(&'a [[u64; 2]], u64)>,
}

/// Map entries in an old-GNU sparse header, and in each extension block.
const GNU_SPARSE_IN_HEADER: usize = 4;
const GNU_SPARSE_PER_EXTENSION: usize = 21;

impl Header<'_> {
    /// The header block, followed for an old-GNU sparse entry with more
    /// than four regions by its extension blocks.
    fn blocks(&self) -> Result<Vec<u8>, String> {
        let mut out = self.block()?.to_vec();
        if let Some((map, _)) = self.gnu_sparse {
            let rest: Vec<&[[u64; 2]]> =
                map.get(GNU_SPARSE_IN_HEADER..).unwrap_or_default().chunks(GNU_SPARSE_PER_EXTENSION).collect();
            for (i, chunk) in rest.iter().enumerate() {
                let mut b = [0u8; BLOCK];
                put_sparse_map(&mut b[..GNU_SPARSE_PER_EXTENSION * 24], chunk)?;
                b[504] = u8::from(i + 1 < rest.len());
                out.extend_from_slice(&b);
            }
        }
        Ok(out)
    }

    fn block(&self) -> Result<[u8; BLOCK], String> {
        let mut b = [0u8; BLOCK];
        put_bytes(&mut b[0..100], self.name, "name")?;
        put_octal(&mut b[100..108], u64::from(self.mode), "mode")?;
        put_octal(&mut b[108..116], self.uid, "uid")?;
        put_octal(&mut b[116..124], self.gid, "gid")?;
        put_octal(&mut b[124..136], self.size, "size")?;
        put_octal(&mut b[136..148], self.mtime, "mtime")?;
        b[156] = self.typeflag;
        put_bytes(&mut b[157..257], self.link, "linkname")?;
        put_bytes(&mut b[265..297], self.uname, "uname")?;
        put_bytes(&mut b[297..329], self.gname, "gname")?;
        put_octal(&mut b[329..337], u64::from(self.major), "devmajor")?;
        put_octal(&mut b[337..345], u64::from(self.minor), "devminor")?;
        match self.gnu_sparse {
            None => {
                b[257..263].copy_from_slice(b"ustar\0");
                b[263..265].copy_from_slice(b"00");
            }
            Some((map, real_size)) => {
                // The old GNU header: magic "ustar  \0"; atime, ctime,
                // offset and longnames left zero; four map entries at 386,
                // the extension flag at 482, the real size at 483.
                b[257..265].copy_from_slice(b"ustar  \0");
                let head = &map[..map.len().min(GNU_SPARSE_IN_HEADER)];
                put_sparse_map(&mut b[386..482], head)?;
                b[482] = u8::from(map.len() > GNU_SPARSE_IN_HEADER);
                put_octal(&mut b[483..495], real_size, "realsize")?;
            }
        }
        // The checksum is computed with its own field read as spaces, and
        // written as six octal digits, a NUL and a space.
        b[148..156].fill(b' ');
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
        b[148..154].copy_from_slice(format!("{sum:06o}").as_bytes());
        b[154] = 0;
        b[155] = b' ';
        Ok(b)
    }
}

fn put_bytes(field: &mut [u8], value: &[u8], what: &str) -> Result<(), String> {
    if value.len() > field.len() {
        return Err(format!("{what} {:?} is longer than its header field", String::from_utf8_lossy(value)));
    }
    field[..value.len()].copy_from_slice(value);
    Ok(())
}

/// Old-GNU sparse map entries: a 12-byte octal offset and a 12-byte octal
/// length each.
fn put_sparse_map(area: &mut [u8], map: &[[u64; 2]]) -> Result<(), String> {
    for (slot, [off, len]) in area.chunks_mut(24).zip(map) {
        put_octal(&mut slot[..12], *off, "sparse offset")?;
        put_octal(&mut slot[12..], *len, "sparse length")?;
    }
    Ok(())
}

fn put_octal(field: &mut [u8], value: u64, what: &str) -> Result<(), String> {
    let width = field.len();
    if value > octal_max(width) {
        return Err(format!("{what} {value} does not fit its header field"));
    }
    let digits = format!("{value:0w$o}", w = width - 1);
    field[..width - 1].copy_from_slice(digits.as_bytes());
    field[width - 1] = 0;
    Ok(())
}

/// One PAX extended-header record, `LEN KEY=VALUE\n`, where LEN counts the
/// whole record including its own digits.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = 1 + key.len() + 1 + value.len() + 1;
    let mut len = rest + 1;
    loop {
        let total = rest + len.to_string().len();
        if total == len {
            break;
        }
        len = total;
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    debug_assert_eq!(out.len(), len);
    out
}

/// A whole uncompressed layer: every entry, then two zero blocks.
pub fn tar_stream(entries: &[Entry]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for e in entries {
        write_entry(&mut out, e).map_err(|err| format!("entry {:?}: {err}", e.path))?;
    }
    out.extend_from_slice(&[0u8; 2 * BLOCK]);
    Ok(out)
}

fn pad(out: &mut Vec<u8>) {
    let rem = out.len() % BLOCK;
    if rem != 0 {
        out.resize(out.len() + BLOCK - rem, 0);
    }
}

fn write_entry(out: &mut Vec<u8>, e: &Entry) -> Result<(), String> {
    let kind = e.kind;
    if e.content.is_some() && !matches!(kind, EntryType::File | EntryType::Sparse | EntryType::Raw(_)) {
        return Err(format!("a {kind} entry has no content"));
    }
    if (kind == EntryType::Sparse) != e.sparse.is_some() {
        return Err(if kind == EntryType::Sparse {
            "a sparse entry needs `sparse`".to_string()
        } else {
            format!("a {kind} entry has no `sparse`")
        });
    }
    let mut data = e.stored_data()?;
    let needs_link = matches!(kind, EntryType::Symlink | EntryType::Hardlink);
    if needs_link != e.link.is_some() {
        return Err(if needs_link {
            format!("a {kind} entry needs `link`")
        } else {
            format!("a {kind} entry has no `link`")
        });
    }
    if !matches!(kind, EntryType::Char | EntryType::Block) && (e.major != 0 || e.minor != 0) {
        return Err(format!("a {kind} entry has no device numbers"));
    }
    let mode = match &e.mode {
        Some(m) => case::parse_mode(m)?,
        None => kind.default_mode(),
    };
    let mtime = e.mtime.unwrap_or(case::DEFAULT_MTIME);
    if e.path.is_empty() {
        return Err("an empty name".into());
    }
    let link = e.link.as_deref().unwrap_or_default().as_bytes();

    // A sparse entry's own PAX records come first, in the order GNU tar
    // writes them; its header may carry a placeholder name, a map before
    // the data (PAX 1.0) or the map itself (old GNU, typeflag `S`).
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    let mut header_name = e.path.clone();
    let mut typeflag = kind.typeflag();
    let mut gnu_sparse = None;
    if let Some(sp) = &e.sparse {
        let stored: u64 = sp.map.iter().map(|[_, len]| len).sum();
        if stored != data.len() as u64 {
            return Err(format!("the sparse map's regions hold {stored} bytes, the content {}", data.len()));
        }
        // GNU tar reads each region's data from a fresh 512-byte block;
        // libarchive, Go's archive/tar and Python's tarfile read the
        // regions back to back. They agree only when every region but the
        // last one holding data is a whole number of blocks, as GNU tar
        // writes them.
        let holding: Vec<u64> = sp.map.iter().map(|[_, len]| *len).filter(|len| *len > 0).collect();
        if let Some(len) = holding.iter().rev().skip(1).find(|len| *len % BLOCK as u64 != 0) {
            return Err(format!(
                "a sparse region of {len} bytes before the last one: readers disagree on where the next region's data starts unless it is a multiple of 512"
            ));
        }
        // GNU tar 1.34 extends the file to its real size only through a
        // final zero-length region at the real size, which it always
        // writes; without it, a file that ends in a hole comes out short.
        let end = sp.map.iter().map(|[off, len]| off + len).max().unwrap_or(0);
        if end < sp.real_size && sp.map.last() != Some(&[sp.real_size, 0]) {
            return Err(format!(
                "the file ends in a hole: end the map with [{}, 0], as GNU tar does (GNU tar extracts it short otherwise)",
                sp.real_size
            ));
        }
        let placeholder = || {
            sp.placeholder.clone().unwrap_or_else(|| {
                let trimmed = e.path.trim_end_matches('/');
                match trimmed.rsplit_once('/') {
                    Some((dir, base)) => format!("{dir}/GNUSparseFile.0/{base}"),
                    None => format!("GNUSparseFile.0/{trimmed}"),
                }
            })
        };
        let mut rec = |k: &str, v: String| pax.push((k.to_string(), v.into_bytes()));
        match sp.format {
            SparseFormat::Gnu => {
                if sp.placeholder.is_some() {
                    return Err("only the PAX 0.1 and 1.0 formats write a placeholder name".into());
                }
                typeflag = b'S';
                gnu_sparse = Some((sp.map.as_slice(), sp.real_size));
            }
            SparseFormat::Pax00 => {
                if sp.placeholder.is_some() {
                    return Err("only the PAX 0.1 and 1.0 formats write a placeholder name".into());
                }
                rec("GNU.sparse.size", sp.real_size.to_string());
                rec("GNU.sparse.numblocks", sp.map.len().to_string());
                for [off, len] in &sp.map {
                    rec("GNU.sparse.offset", off.to_string());
                    rec("GNU.sparse.numbytes", len.to_string());
                }
            }
            SparseFormat::Pax01 => {
                rec("GNU.sparse.size", sp.real_size.to_string());
                rec("GNU.sparse.numblocks", sp.map.len().to_string());
                rec("GNU.sparse.name", e.path.clone());
                let map: Vec<String> = sp.map.iter().flat_map(|[o, l]| [o.to_string(), l.to_string()]).collect();
                rec("GNU.sparse.map", map.join(","));
                header_name = placeholder();
            }
            SparseFormat::Pax10 => {
                rec("GNU.sparse.major", "1".into());
                rec("GNU.sparse.minor", "0".into());
                rec("GNU.sparse.name", e.path.clone());
                rec("GNU.sparse.realsize", sp.real_size.to_string());
                header_name = placeholder();
                let mut map = format!("{}\n", sp.map.len()).into_bytes();
                for [off, len] in &sp.map {
                    map.extend_from_slice(format!("{off}\n{len}\n").as_bytes());
                }
                pad(&mut map);
                map.extend_from_slice(&data);
                data = map;
            }
        }
    }
    let path = header_name.as_bytes();

    // Whatever does not fit the ustar header goes into a PAX record, and
    // the header field is left zero or empty (PRODUCER-PAX-CONSISTENT).
    let name: &[u8] = if path.len() > 100 {
        if gnu_sparse.is_some() {
            return Err("an old-GNU sparse entry's name must fit the header (no GNU long names are written)".into());
        }
        pax.push(("path".into(), path.to_vec()));
        &path[..100]
    } else {
        path
    };
    let linkname: &[u8] = if link.len() > 100 {
        pax.push(("linkpath".into(), link.to_vec()));
        b""
    } else {
        link
    };
    let mut number = |key: &str, value: u64, width: usize| -> u64 {
        if value > octal_max(width) {
            pax.push((key.into(), value.to_string().into_bytes()));
            0
        } else {
            value
        }
    };
    let uid = number("uid", e.uid, 8);
    let gid = number("gid", e.gid, 8);
    let header_mtime = number("mtime", mtime, 12);
    let mut text = |key: &str, value: &str| -> Vec<u8> {
        if value.len() > 31 {
            pax.push((key.into(), value.as_bytes().to_vec()));
            Vec::new()
        } else {
            value.as_bytes().to_vec()
        }
    };
    let uname = text("uname", &e.uname);
    let gname = text("gname", &e.gname);
    for (k, v) in &e.xattrs {
        pax.push((format!("SCHILY.xattr.{k}"), case::decode_value(v)?));
    }
    for (k, v) in &e.pax {
        if pax.iter().any(|(key, _)| key == k) {
            return Err(format!("the PAX record {k} is written by the generator already"));
        }
        pax.push((k.clone(), case::decode_value(v)?));
    }

    if !pax.is_empty() {
        let records: Vec<u8> = pax.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        let base = path.split(|b| *b == b'/').rev().find(|c| !c.is_empty() && *c != b"." && *c != b"..");
        let mut pax_name = b"PaxHeaders/".to_vec();
        pax_name.extend_from_slice(base.unwrap_or(b"entry"));
        pax_name.truncate(100);
        let h = Header {
            name: &pax_name,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: records.len() as u64,
            mtime: header_mtime,
            typeflag: b'x',
            link: b"",
            uname: b"",
            gname: b"",
            major: 0,
            minor: 0,
            gnu_sparse: None,
        };
        out.extend_from_slice(&h.blocks()?);
        out.extend_from_slice(&records);
        pad(out);
    }
    let h = Header {
        name,
        mode,
        uid,
        gid,
        size: data.len() as u64,
        mtime: header_mtime,
        typeflag,
        link: linkname,
        uname: &uname,
        gname: &gname,
        major: e.major,
        minor: e.minor,
        gnu_sparse,
    };
    out.extend_from_slice(&h.blocks()?);
    out.extend_from_slice(&data);
    pad(out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        assert_eq!(pax_record("uid", b"5000000000"), b"18 uid=5000000000\n");
        assert_eq!(pax_record("a", b"b"), b"6 a=b\n");
        // 98 bytes besides the length: two digits would make 100, so three.
        let value = vec![b'x'; 92];
        let r = pax_record("key", &value);
        assert_eq!(r.len(), 101);
        assert!(r.starts_with(b"101 key="));
        let value = vec![b'x'; 1000];
        let r = pax_record("SCHILY.xattr.user.big", &value);
        assert!(r.starts_with(format!("{} ", r.len()).as_bytes()));
    }

    fn entry(json: &str) -> Entry {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_tar_crate_reads_back_what_is_written() {
        let long = format!("dir/{}", "n".repeat(120));
        let entries = [
            entry(r#"{"path": "dir/", "type": "dir", "mode": "2775"}"#),
            entry(
                r#"{"path": "dir/big-ids", "uid": 4294967296, "gid": 3000000, "content": "x",
                      "xattrs": {"user.a": "b", "security.capability": "base64:AAE="}}"#,
            ),
            entry(&format!(
                r#"{{"path": "{long}", "type": "symlink", "link": "{long}", "uname": "{}"}}"#,
                "u".repeat(40)
            )),
            entry(r#"{"path": "dev/null", "type": "char", "major": 1, "minor": 3, "mtime": 0}"#),
            entry(r#"{"path": "odd", "type": "Z", "content": "data"}"#),
        ];
        let bytes = tar_stream(&entries).unwrap();
        assert_eq!(bytes.len() % BLOCK, 0);
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let h = e.header().clone();
            let pax: Vec<(String, Vec<u8>)> = match e.pax_extensions().unwrap() {
                Some(p) => {
                    p.map(|r| r.unwrap()).map(|r| (r.key().unwrap().to_string(), r.value_bytes().to_vec())).collect()
                }
                None => Vec::new(),
            };
            seen.push((path, h.entry_type().as_byte(), h.mode().unwrap(), pax));
        }
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[0].0, "dir/");
        assert_eq!((seen[0].1, seen[0].2), (b'5', 0o2775));
        assert_eq!(seen[1].0, "dir/big-ids");
        let keys: Vec<&str> = seen[1].3.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["uid", "gid", "SCHILY.xattr.security.capability", "SCHILY.xattr.user.a"]);
        assert_eq!(seen[1].3[0].1, b"4294967296");
        assert_eq!(seen[1].3[2].1, [0, 1]);
        assert_eq!(seen[2].0, long);
        assert_eq!(seen[2].1, b'2');
        assert_eq!(seen[3].1, b'3');
        assert_eq!(seen[4], ("odd".to_string(), b'Z', 0o644, Vec::new()));
    }

    #[test]
    fn sparse_entries_are_written_as_gnu_tar_writes_them() {
        let map = "[[512, 512], [2048, 1024], [4096, 512], [5000, 512], [8192, 100], [10000, 0]]";
        let gnu = entry(&format!(
            r#"{{"path": "opt/gnu", "type": "sparse", "sparse": {{"format": "gnu", "map": {map}, "realSize": 10000}}}}"#
        ));
        let bytes = tar_stream(std::slice::from_ref(&gnu)).unwrap();
        // Header, one extension block holding the last two map entries,
        // then the 2660 stored bytes in six blocks.
        assert_eq!(bytes[156], b'S');
        assert_eq!(&bytes[257..265], b"ustar  \0");
        assert_eq!(&bytes[386..398], b"00000001000\0");
        assert_eq!(bytes[482], 1);
        assert_eq!(&bytes[483..495], b"00000023420\0");
        assert_eq!(&bytes[512..524], b"00000020000\0");
        assert_eq!(&bytes[512 + 48..512 + 60], &[0u8; 12]);
        assert_eq!(bytes[512 + 504], 0);
        assert_eq!(bytes.len(), 2 * BLOCK + 6 * BLOCK + 2 * BLOCK);
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut e = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.header().entry_type(), tar::EntryType::GNUSparse);
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut content).unwrap();
        assert_eq!(content, gnu.expanded().unwrap());

        let pax = entry(
            r#"{"path": "opt/pax", "type": "sparse", "sparse": {"format": "pax-1.0", "map": [[512, 1024], [4096, 10], [5000, 0]], "realSize": 5000}}"#,
        );
        let bytes = tar_stream(std::slice::from_ref(&pax)).unwrap();
        let records =
            b"22 GNU.sparse.major=1\n22 GNU.sparse.minor=0\n27 GNU.sparse.name=opt/pax\n28 GNU.sparse.realsize=5000\n";
        assert_eq!(&bytes[BLOCK..BLOCK + records.len()], records);
        let header = &bytes[2 * BLOCK..3 * BLOCK];
        assert!(header.starts_with(b"opt/GNUSparseFile.0/pax\0"));
        assert_eq!(&header[124..136], format!("{:011o}\0", BLOCK + 1034).as_bytes());
        assert!(bytes[3 * BLOCK..].starts_with(b"3\n512\n1024\n4096\n10\n5000\n0\n\0"));

        let unaligned = entry(
            r#"{"path": "f", "type": "sparse", "sparse": {"format": "pax-0.1", "map": [[0, 100], [1000, 10], [2000, 0]], "realSize": 2000}}"#,
        );
        assert!(tar_stream(&[unaligned]).unwrap_err().contains("multiple of 512"));
        let short = entry(
            r#"{"path": "f", "type": "sparse", "sparse": {"format": "pax-0.0", "map": [[0, 512]], "realSize": 2000}}"#,
        );
        assert!(tar_stream(&[short]).unwrap_err().contains("[2000, 0]"));
    }

    #[test]
    fn octal_fields_are_nul_terminated() {
        let mut f = [0xffu8; 8];
        put_octal(&mut f, 0o755, "mode").unwrap();
        assert_eq!(&f, b"0000755\0");
        assert!(put_octal(&mut f, 0o10000000, "uid").is_err());
        assert_eq!(octal_max(8), 0o7777777);
        assert_eq!(octal_max(12), 0o77777777777);
    }
}
