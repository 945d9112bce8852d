//! Regressions found by fuzzing (`fuzz/`, see `fuzz/run.sh`). Each test
//! builds a real image around the minimised input (the layer tars are
//! committed under `tests/regressions/`, or generated here when a few specs
//! say it more plainly) and runs the real `single-id` binary on it,
//! asserting the correct behaviour: no panic (exit 0, 1 or 2), the right
//! outcome, and nothing written outside DEST or OUTPUT.

use crate::support;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::layers::{file, layer, symlink};
use support::{Compression, ImageSpec, OciDir, Run, TestDir};

/// A committed regression input.
fn input(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions").join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One image named `latest` in `t/image`, with these layers.
fn image(t: &TestDir, layers: Vec<(Vec<u8>, Compression)>) -> OciDir {
    let mut oci = OciDir::create(t.join("image"));
    let mut spec = ImageSpec::declared("latest", None);
    spec.layers = layers;
    oci.add_image(&spec);
    oci
}

/// The command ran to its end: an exit code the README documents, and no
/// panic message.
fn ran(run: &Run, what: &str) -> i32 {
    let code = run.0.status.code().unwrap_or_else(|| panic!("{what}: killed by a signal; stderr: {}", run.stderr()));
    assert!(
        (0..=2).contains(&code) && !run.stderr().contains("panicked"),
        "{what}: exit {code}, stderr: {}",
        run.stderr()
    );
    code
}

/// Every path under `root` with what it is, for "nothing else changed".
fn tree(root: &Path) -> Vec<(PathBuf, String)> {
    walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let t = e.file_type();
            let what = if t.is_symlink() {
                format!("-> {}", fs::read_link(e.path()).unwrap().display())
            } else if t.is_dir() {
                "dir".to_string()
            } else {
                format!("{:?}", fs::read(e.path()).unwrap())
            };
            (e.path().strip_prefix(root).unwrap().to_path_buf(), what)
        })
        .collect()
}

/// Flattens `t/image` into `t/out` and returns the run; the input layout
/// is left as it was.
fn flatten(t: &TestDir) -> Run {
    let before = tree(&t.join("image"));
    let run = t.run(&["flatten", "image", "out"]);
    ran(&run, "flatten");
    assert_eq!(tree(&t.join("image")), before, "flatten changed its input");
    run
}

/// flatten succeeds and its output validates with no error.
fn flattens_clean(t: &TestDir) {
    let run = flatten(t);
    assert_eq!(run.0.status.code(), Some(0), "flatten refused: {}", run.stderr());
    let check = t.run(&["validate", "--format", "json", "out"]);
    let code = ran(&check, "validate of the output");
    let report = check.json();
    let errors: Vec<&Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["severity"] == "error").collect();
    assert!(errors.is_empty() && code == 0, "the output of flatten does not validate: {errors:#?}");
}

/// flatten refuses (exit 1), saying `says`, and writes nothing.
fn flatten_refuses(t: &TestDir, says: &str) {
    let run = flatten(t);
    assert_eq!(run.0.status.code(), Some(1), "flatten did not refuse: {}", run.stderr());
    assert!(run.stderr().contains(says), "flatten's refusal does not say {says:?}: {}", run.stderr());
    assert!(!t.join("out").exists(), "a failed flatten left its output");
}

/// Entry names and link targets of the one layer of the one image in the
/// layout at `root`, as the `tar` crate reads them.
fn entries(root: &Path) -> Vec<(String, String)> {
    let read_json = |p: PathBuf| -> Value { serde_json::from_slice(&fs::read(p).unwrap()).unwrap() };
    let blob = |d: &Value| root.join("blobs/sha256").join(d["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    let index = read_json(root.join("index.json"));
    let manifest = read_json(blob(&index["manifests"][0]));
    let desc = &manifest["layers"][0];
    let raw = fs::read(blob(desc)).unwrap();
    let media_type = desc["mediaType"].as_str().unwrap();
    let mut tar = Vec::new();
    if media_type.ends_with("gzip") {
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut tar).unwrap();
    } else if media_type.ends_with("zstd") {
        tar = zstd::decode_all(&raw[..]).unwrap();
    } else {
        tar = raw;
    }
    let mut archive = tar::Archive::new(&tar[..]);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let link = e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default();
            (String::from_utf8_lossy(&e.path_bytes()).into_owned(), link)
        })
        .collect()
}

fn names(root: &Path) -> Vec<String> {
    entries(root).into_iter().map(|(name, _)| name).collect()
}

/// A header without ustar or GNU magic (zeroed), typed `typeflag`, holding
/// `data`. The `tar` crate read it as an entry of unknown type; GNU tar,
/// bsdtar and Go's archive/tar apply an `L`, `K` or `x` header whatever its
/// magic (checked by hand: `tar -tvf` and `bsdtar -tvf` list the next entry
/// renamed or retargeted), and so does the reader single-id uses since 0.2.
fn unrecognised(typeflag: u8, data: &[u8]) -> support::layers::Spec {
    file("smuggled", data).patch(156, &[typeflag]).patch(257, &[0u8; 8])
}

// Fuzzing found (flatten_validate): an entry typed `L` in a header without
// ustar magic, last in its layer. flatten's output could not be read at all
// (layer-unreadable). Input: the minimised layer.
#[test]
fn flatten_output_stays_readable_after_a_trailing_unrecognised_long_name_entry() {
    let t = TestDir::new();
    image(&t, vec![(input("flatten-trailing-unrecognised-longname.bin"), Compression::Zstd)]);
    // Since 0.2 the reader sees the magicless `L` as GNU tar does: a long
    // name with no entry after it, which validate reports and flatten refuses.
    let input = t.run(&["validate", "image"]);
    assert_eq!(ran(&input, "validate of the input"), 1, "{}", input.stdout());
    flatten_refuses(&t, "an extended header (x, L or K) is not followed by an entry");
}

// The same header followed by an entry. In 0.1 validate read `innocent`
// (as the tar crate does) while GNU tar reads `renamed`; flatten's output
// must name the entry as every major reader names it in the input.
#[test]
fn flatten_names_an_entry_after_a_magicless_long_name_as_tar_readers_do() {
    let t = TestDir::new();
    let tar = layer(&[unrecognised(b'L', b"renamed\0"), file("innocent", b"hi\n")]);
    image(&t, vec![(tar, Compression::Gzip)]);
    flattens_clean(&t);
    let names = names(&t.join("out"));
    assert!(names.contains(&"renamed".to_string()), "GNU tar reads the entry as `renamed`: {names:?}");
    assert!(!names.contains(&"innocent".to_string()), "the output names it otherwise: {names:?}");
}

// The same with `x`: its `path` climbs out of the root, which validate must
// now see in the input (0.1 did not) and flatten must drop.
#[test]
fn a_magicless_pax_header_applies_to_the_next_entry() {
    let t = TestDir::new();
    let pax = support::layers::pax_records(&[("path".to_string(), b"../../escaped".to_vec())]);
    let tar = layer(&[unrecognised(b'x', &pax), file("innocent", b"hi\n")]);
    image(&t, vec![(tar, Compression::None)]);
    let input = t.run(&["validate", "--format", "json", "image"]);
    assert!(input.stdout().contains("layer-path-escape"), "GNU tar reads the name ../../escaped: {}", input.stdout());
    flattens_clean(&t);
    let names = names(&t.join("out"));
    assert!(!names.iter().any(|n| n.contains("escaped") || n == "innocent"), "{names:?}");
}

// And with `K`: GNU tar reads the link as pointing at /etc/shadow, and so
// must the output (symlink targets are kept byte for byte).
#[test]
fn a_magicless_long_link_retargets_the_next_link_as_tar_readers_do() {
    let t = TestDir::new();
    let tar = layer(&[unrecognised(b'K', b"/etc/shadow\0"), symlink("link", "target")]);
    image(&t, vec![(tar, Compression::None)]);
    flattens_clean(&t);
    let out = entries(&t.join("out"));
    assert!(out.contains(&("link".to_string(), "/etc/shadow".to_string())), "{out:?}");
}

// Found while reducing a fuzzing crash (flatten_validate): a GNU base-256
// mtime of 2^63 or more is a valid header that `validate` reads without a
// finding, but flatten writes it back as a PAX `mtime` record, which the
// validator reads as an i64 and reports as "unreadable header field:
// mtime". Before flatten checked its own output this gave an output that
// did not validate; since, flatten refuses an input in which validate
// finds nothing, blaming the input. A clean input must flatten cleanly (or
// validate must report the mtime in the input already).
#[test]
fn flatten_accepts_a_clean_input_whose_mtime_is_past_i64() {
    let t = TestDir::new();
    let mut mtime = vec![0x80, 0, 0, 0];
    mtime.extend_from_slice(&(1u64 << 63).to_be_bytes());
    let tar = layer(&[file("future", b"hi\n").gnu().patch(support::layers::field::MTIME, &mtime)]);
    image(&t, vec![(tar, Compression::None)]);
    let input = t.run(&["validate", "--strict", "image"]);
    assert_eq!(ran(&input, "validate of the input"), 0, "{}", input.stdout());
    flattens_clean(&t);
    let strict = t.run(&["validate", "--strict", "out"]);
    assert_eq!(ran(&strict, "validate --strict of the output"), 0, "{}", strict.stdout());
}

/// Found by hand: `single-id rules | head` panicked on the closed pipe.
/// Every command's report goes through one writer that treats a reader
/// gone as the end of the output, never as a crash.
#[test]
fn a_closed_stdout_is_no_panic() {
    let hello = support::repo_root().join("examples/hello");
    let hello = hello.to_str().unwrap();
    for args in [vec!["rules"], vec!["validate", hello], vec!["inspect", hello]] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_single-id"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the child can have written anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(matches!(out.status.code(), Some(0..=2)), "{args:?}: {:?} {stderr}", out.status);
    }
}

/// Found by hand: a FIFO given as IMAGE, or standing in a layout for
/// `index.json`, `oci-layout` or a blob, made validate wait forever for a
/// writer (and a lone SIGTERM could not stop it). Now each is refused at
/// once: the IMAGE with exit 2, a layout file with its rule.
#[test]
fn fifos_are_refused_without_waiting() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let run = |t: &TestDir, args: &[&str]| -> (i32, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_single-id"))
            .args(args)
            .current_dir(t.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("single-id {args:?} still waits after 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap(), text)
    };
    let mkfifo = |p: &Path| {
        let _ = fs::remove_file(p);
        assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
    };

    let t = TestDir::new();
    mkfifo(&t.join("fifo"));
    for args in [&["validate", "fifo"][..], &["validate", "oci-archive:fifo"], &["unpack", "fifo", "root"]] {
        let (code, text) = run(&t, args);
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(text.contains("is a FIFO"), "{args:?}: {text}");
    }
    for (name, rule) in [("index.json", "layout-index"), ("oci-layout", "layout-file")] {
        let t = TestDir::new();
        image(&t, vec![(layer(&[file("etc/hello", b"hi")]), Compression::Gzip)]);
        mkfifo(&t.join("image").join(name));
        let (code, text) = run(&t, &["validate", "image"]);
        assert_eq!(code, 1, "{name}: {text}");
        assert!(text.contains(rule), "{name}: {text}");
    }
    // Any blob: the walk or the layer reader meets it.
    let t = TestDir::new();
    image(&t, vec![(layer(&[file("etc/hello", b"hi")]), Compression::Gzip)]);
    for blob in fs::read_dir(t.join("image/blobs/sha256")).unwrap() {
        mkfifo(&blob.unwrap().path());
    }
    let (code, text) = run(&t, &["validate", "image"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("blob-not-file"), "{text}");
}
