//! Helpers shared by the fuzz targets: a scratch directory per run, OCI
//! layouts written blob by blob with real digests, the library's commands
//! called as `single-id` would call them, and tree snapshots for the
//! containment invariant of `unpack`.
//!
//! Nothing here may panic on fuzzer input: a panic is a crash report, so
//! only the invariants the targets check are allowed to panic.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use single_id::reference::Reference;
use single_id::report::Report;
use single_id::diagnostic::Severity;

pub use single_id::annotation::KEY;
pub const REF: &str = "org.opencontainers.image.ref.name";

/// Largest uncompressed layer a target builds itself (decompressing an
/// input that is already compressed, to compute its diff_id): inputs that
/// expand past it are skipped, so that no run is slow or large.
pub const MAX_EXPANDED: usize = 8 << 20;

/// A scratch directory for one run: under `$SINGLE_ID_FUZZ_TMP`, else
/// `/dev/shm` (tmpfs, fast) when it exists, else the system's temp dir.
pub fn scratch() -> tempfile::TempDir {
    let base = std::env::var_os("SINGLE_ID_FUZZ_TMP").map(PathBuf::from).unwrap_or_else(|| {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() }
    });
    tempfile::Builder::new().prefix("single-id-fuzz.").tempdir_in(base).expect("cannot create a scratch directory")
}

pub fn sha256(bytes: &[u8]) -> String {
    single_id::digest::sha256_of(bytes)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Zstd,
}

impl Codec {
    pub fn media_type(self) -> &'static str {
        match self {
            Codec::None => "application/vnd.oci.image.layer.v1.tar",
            Codec::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Codec::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// Compresses `tar` (fixed settings, so a seed always gives the same blob).
    pub fn compress(self, tar: &[u8]) -> Vec<u8> {
        match self {
            Codec::None => tar.to_vec(),
            Codec::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(tar).expect("writing to memory");
                e.finish().expect("writing to memory")
            }
            Codec::Zstd => zstd::encode_all(tar, 1).expect("writing to memory"),
        }
    }

    /// Decompresses `blob` as a layer reader would (gzip members one after
    /// another), up to the first error. `None` when it expands past
    /// [`MAX_EXPANDED`].
    pub fn expand(self, blob: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let reader: Box<dyn Read> = match self {
            Codec::None => return Some(blob.to_vec()),
            Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
            Codec::Zstd => match zstd::stream::read::Decoder::new(blob) {
                Ok(d) => Box::new(d),
                Err(_) => return Some(Vec::new()),
            },
        };
        let mut reader = reader.take(MAX_EXPANDED as u64 + 1);
        let mut buf = [0u8; 64 << 10];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        (out.len() <= MAX_EXPANDED).then_some(out)
    }
}

/// A layer blob as it goes into a layout.
#[derive(Clone, Debug)]
pub struct Layer {
    pub blob: Vec<u8>,
    pub media_type: String,
    /// What the config lists for it.
    pub diff_id: String,
}

impl Layer {
    /// `tar`, compressed with `codec`, with its true diff_id.
    pub fn of_tar(tar: &[u8], codec: Codec) -> Layer {
        Layer { blob: codec.compress(tar), media_type: codec.media_type().into(), diff_id: sha256(tar) }
    }
}

/// One image: its layers and what it declares.
#[derive(Clone, Debug, Default)]
pub struct ImageSpec {
    pub layers: Vec<Layer>,
    /// The id-flattening value, declared in the manifest and the Label.
    pub value: Option<String>,
    pub user: String,
}

/// Writes a blob under its sha256 and returns its descriptor.
pub fn write_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = sha256(bytes);
    let hex = digest.trim_start_matches("sha256:");
    fs::write(layout.join("blobs/sha256").join(hex), bytes).expect("writing a blob");
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// Creates `layout` with `oci-layout` and an empty `blobs/sha256/`.
pub fn create_layout(layout: &Path) {
    fs::create_dir_all(layout.join("blobs/sha256")).expect("creating a layout");
    fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("writing oci-layout");
}

/// Writes a well-formed layout holding one image named `latest`.
pub fn write_image(layout: &Path, spec: &ImageSpec) {
    create_layout(layout);
    let layers: Vec<Value> = spec.layers.iter().map(|l| write_blob(layout, &l.media_type, &l.blob)).collect();
    let diff_ids: Vec<&str> = spec.layers.iter().map(|l| l.diff_id.as_str()).collect();
    let mut config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"User": spec.user},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "layers": layers,
    });
    if let Some(v) = &spec.value {
        config["config"]["Labels"] = json!({KEY: v});
        manifest["annotations"] = json!({KEY: v});
    }
    let config = serde_json::to_vec(&config).expect("JSON to memory");
    manifest["config"] = write_blob(layout, "application/vnd.oci.image.config.v1+json", &config);
    let manifest = serde_json::to_vec(&manifest).expect("JSON to memory");
    let mut desc = write_blob(layout, "application/vnd.oci.image.manifest.v1+json", &manifest);
    desc["annotations"] = json!({REF: "latest"});
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [desc],
    });
    fs::write(layout.join("index.json"), serde_json::to_vec(&index).expect("JSON to memory")).expect("index.json");
}

/// The annotation value a flag byte picks (two bits).
pub fn value_of(bits: u8) -> Option<String> {
    match bits & 3 {
        0 => None,
        1 => Some("flattened".into()),
        2 => Some("allowed".into()),
        _ => Some("caution".into()),
    }
}

pub fn reference(layout: &Path) -> Reference {
    Reference::directory(layout)
}

pub fn validate_options() -> single_id::validate::Options {
    single_id::validate::Options::default()
}

/// `single-id validate` and `inspect` on `layout`, every output format
/// rendered (to nothing), as the binary would. Returns the validate report
/// when the layout could be opened.
/// SARIF is rendered only when `sarif` is set: it is the slowest part of a
/// run, and its code paths do not depend much on the input.
pub fn validate_and_inspect(layout: &Path, sarif: bool) -> Option<Report> {
    let r = reference(layout);
    let target = layout.display().to_string();
    let options = validate_options();
    let report = single_id::validate::validate(&r, target.clone(), &options).ok();
    if let Some(report) = &report {
        let human = single_id::render::human::render(report, false);
        if std::env::var_os("SINGLE_ID_FUZZ_VERBOSE").is_some() {
            eprintln!("{human}");
        }
        std::hint::black_box(single_id::render::json::render(report));
        if sarif {
            std::hint::black_box(single_id::render::sarif::render(report, &target, Default::default()));
        }
        let _ = report.worst();
    }
    if let Ok(inspected) = single_id::inspect::inspect(&r, target, &options) {
        std::hint::black_box(single_id::render::inspect::render(&inspected));
        std::hint::black_box(serde_json::to_string(&inspected).expect("a report serialises"));
    }
    report
}

/// Rule identifiers of the findings at `severity` or worse.
pub fn rules_at(report: &Report, severity: Severity) -> Vec<&'static str> {
    let mut ids: Vec<&'static str> =
        report.findings.iter().filter(|f| f.severity >= severity).map(|f| f.rule.id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// What a path is, as far as the containment invariant cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    File { mode: u32, sha256: String, ino: u64, nlink: u64 },
    Symlink { target: PathBuf },
    Other { mode: u32 },
}

/// Every path under `root` (relative, `root` itself as ""), not following
/// symlinks, skipping `exclude` and what is beneath it.
pub fn snapshot(root: &Path, exclude: &[&Path]) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, exclude, &mut out);
    out
}

fn walk(root: &Path, at: &Path, exclude: &[&Path], out: &mut BTreeMap<PathBuf, Node>) {
    if exclude.contains(&at) {
        return;
    }
    let rel = at.strip_prefix(root).expect("below the root").to_path_buf();
    let meta = match fs::symlink_metadata(at) {
        Ok(m) => m,
        Err(e) => panic!("{}: cannot lstat: {e}", at.display()),
    };
    let mode = meta.permissions().mode() & 0o7777;
    let t = meta.file_type();
    let node = if t.is_dir() {
        let mut names: Vec<PathBuf> = match fs::read_dir(at) {
            Ok(d) => d.map(|e| e.expect("reading a directory").path()).collect(),
            Err(e) => panic!("{}: cannot list: {e}", at.display()),
        };
        names.sort();
        for n in names {
            walk(root, &n, exclude, out);
        }
        Node::Dir { mode }
    } else if t.is_symlink() {
        Node::Symlink { target: fs::read_link(at).expect("reading a symlink") }
    } else if t.is_file() {
        let bytes = fs::read(at).unwrap_or_else(|e| panic!("{}: cannot read: {e}", at.display()));
        Node::File { mode, sha256: sha256(&bytes), ino: meta.ino(), nlink: meta.nlink() }
    } else {
        Node::Other { mode }
    };
    out.insert(rel, node);
}

/// Panics, listing the differences, when two snapshots differ.
pub fn assert_unchanged(what: &str, before: &BTreeMap<PathBuf, Node>, after: &BTreeMap<PathBuf, Node>) {
    if before == after {
        return;
    }
    let mut diffs = Vec::new();
    for (p, b) in before {
        match after.get(p) {
            None => diffs.push(format!("removed: {} (was {b:?})", p.display())),
            Some(a) if a != b => diffs.push(format!("changed: {} ({b:?} -> {a:?})", p.display())),
            _ => {}
        }
    }
    for (p, a) in after {
        if !before.contains_key(p) {
            diffs.push(format!("added: {} ({a:?})", p.display()));
        }
    }
    panic!("containment broken: {what} changed outside DEST:\n  {}", diffs.join("\n  "));
}

/// Splits the input at `sep` into at most `n` parts.
pub fn split_parts<'a>(data: &'a [u8], sep: &[u8], n: usize) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() + 1 < n {
        match rest.windows(sep.len()).position(|w| w == sep) {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + sep.len()..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

/// A small, valid tar layer: a directory and a file, owned by 0:0.
pub fn default_tar() -> Vec<u8> {
    let mut out = Vec::new();
    let mut add = |name: &str, typeflag: u8, mode: u32, data: &[u8]| {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |field: &mut [u8], v: u64| {
            let s = format!("{v:0w$o}", w = field.len() - 1);
            field[..s.len()].copy_from_slice(s.as_bytes());
        };
        octal(&mut h[100..108], u64::from(mode));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], data.len() as u64);
        octal(&mut h[136..148], 1_700_000_000);
        h[156] = typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    };
    add("etc/", b'5', 0o755, b"");
    add("etc/hostname", b'0', 0o644, b"fuzz\n");
    out.resize(out.len() + 1024, 0);
    out
}

/// Rewrites the checksum of every tar header in `tar`, following entry
/// sizes (and PAX `size` records) from header to header, so that mutated
/// headers get past the checksum and into the parser. Blocks of zeros are
/// skipped; a size that cannot be read counts as 0.
pub fn fix_checksums(tar: &mut [u8]) {
    let mut pos = 0usize;
    let mut pax_size: Option<u64> = None;
    while pos + 512 <= tar.len() {
        let block = &mut tar[pos..pos + 512];
        if block.iter().all(|b| *b == 0) {
            pos += 512;
            continue;
        }
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|b| u32::from(*b)).sum();
        let s = format!("{:06o}\0 ", sum & 0o777777);
        block[148..156].copy_from_slice(s.as_bytes());
        let typeflag = block[156];
        let mut size = read_number(&block[124..136]).unwrap_or(0);
        // A PAX size applies to the next entry that is not an extension.
        if !matches!(typeflag, b'x' | b'g' | b'L' | b'K')
            && let Some(p) = pax_size.take()
        {
            size = p;
        }
        let data_start = pos + 512;
        let len = usize::try_from(size).unwrap_or(usize::MAX);
        if typeflag == b'x' {
            let end = data_start.saturating_add(len).min(tar.len());
            pax_size = pax_record(&tar[data_start.min(end)..end], b"size").or(pax_size);
        }
        pos = data_start.saturating_add(len.div_ceil(512).saturating_mul(512));
    }
}

/// A numeric header field: octal (space or NUL terminated) or GNU base-256.
fn read_number(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(v);
    }
    let text: Vec<u8> =
        field.iter().copied().skip_while(|b| *b == b' ').take_while(|b| (b'0'..=b'7').contains(b)).collect();
    if text.is_empty() {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(&text).ok()?, 8).ok()
}

/// The value of the last PAX record `key` in `data`, as a number.
fn pax_record(data: &[u8], key: &[u8]) -> Option<u64> {
    let mut found = None;
    for line in data.split(|b| *b == b'\n') {
        let Some(space) = line.iter().position(|b| *b == b' ') else { continue };
        let record = &line[space + 1..];
        if let Some(value) = record.strip_prefix(key).and_then(|r| r.strip_prefix(b"=")) {
            found = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        }
    }
    found
}

/// With `SINGLE_ID_FUZZ_DUMP=DIR` in the environment, writes the layer
/// tars a target built (after checksum fixing) to `DIR/layer-N.tar`, to
/// turn a crashing input into a regression test.
pub fn dump_layers(tars: &[&[u8]]) {
    if let Some(dir) = std::env::var_os("SINGLE_ID_FUZZ_DUMP") {
        let dir = PathBuf::from(dir);
        fs::create_dir_all(&dir).expect("creating the dump directory");
        for (i, t) in tars.iter().enumerate() {
            fs::write(dir.join(format!("layer-{i}.tar")), t).expect("writing a dumped layer");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_see_every_kind_of_change() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("d")).unwrap();
        fs::write(root.join("d/f"), b"x").unwrap();
        std::os::unix::fs::symlink("d/f", root.join("s")).unwrap();
        let before = snapshot(root, &[]);
        let changed = |edit: &dyn Fn()| {
            edit();
            let after = snapshot(root, &[]);
            std::panic::catch_unwind(|| assert_unchanged("test", &before, &after)).is_err()
        };
        assert!(!changed(&|| {}));
        assert!(changed(&|| fs::write(root.join("d/f"), b"y").unwrap()));
        fs::write(root.join("d/f"), b"x").unwrap();
        assert!(changed(&|| fs::set_permissions(root.join("d/f"), fs::Permissions::from_mode(0o600)).unwrap()));
        fs::set_permissions(root.join("d/f"), fs::Permissions::from_mode(0o644)).unwrap();
        let before = snapshot(root, &[]);
        let changed = |edit: &dyn Fn()| {
            edit();
            let after = snapshot(root, &[]);
            std::panic::catch_unwind(|| assert_unchanged("test", &before, &after)).is_err()
        };
        assert!(changed(&|| fs::hard_link(root.join("d/f"), root.join("h")).unwrap()));
        fs::remove_file(root.join("h")).unwrap();
        assert!(changed(&|| {
            fs::remove_file(root.join("s")).unwrap();
            std::os::unix::fs::symlink("elsewhere", root.join("s")).unwrap();
        }));
        // What is excluded is not looked at.
        let excluded = root.join("d");
        let before = snapshot(root, &[&excluded]);
        fs::write(root.join("d/new"), b"n").unwrap();
        assert_eq!(before, snapshot(root, &[&excluded]));
    }

    #[test]
    fn checksums_are_fixed_header_by_header() {
        let mut tar = default_tar();
        let original = tar.clone();
        fix_checksums(&mut tar);
        assert_eq!(tar, original, "a valid tar is left as it is");
        tar[512 + 100] = b'1'; // the second header's mode
        fix_checksums(&mut tar);
        let mut archive = tar::Archive::new(&tar[..]);
        let modes: Vec<u32> = archive.entries().unwrap().map(|e| e.unwrap().header().mode().unwrap()).collect();
        assert_eq!(modes, [0o755, 0o1000644 & 0o7777777]);
    }

    #[test]
    fn parts() {
        assert_eq!(split_parts(b"a\n%%\nb\n%%\nc", b"\n%%\n", 5), [&b"a"[..], b"b", b"c"]);
        assert_eq!(split_parts(b"a\n%%\nb\n%%\nc", b"\n%%\n", 2), [&b"a"[..], b"b\n%%\nc"]);
        assert_eq!(split_parts(b"", b"\n%%\n", 5), [&b""[..]]);
    }
}
