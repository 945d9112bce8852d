//! SIGINT and SIGTERM while `unpack` or `flatten` works through a large
//! layer (CONSUMER-INCOMPLETE): the command stops at the next entry,
//! removes DEST or OUTPUT (no `.partial-*` left), changes nothing beside
//! them, and exits non-zero (130, after the cleanup); a second signal ends
//! it at once, also with status 130, leaving what it wrote.
//! The commands run as the unprivileged user, beside a canary.

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use support::rawtar::{self, end, entry, header};
use support::unprivileged::{user, user_dir};
use support::{Compression, ImageSpec, OciDir, TestDir};

/// Entries in the layer: enough that unpack and flatten take seconds in a
/// debug build, so that a signal finds them at work.
const DIRS: usize = 200;
const FILES_PER_DIR: usize = 1000;

/// A tar of `DIRS` directories of `FILES_PER_DIR` one-byte files.
fn big_layer() -> &'static [u8] {
    static TAR: OnceLock<Vec<u8>> = OnceLock::new();
    TAR.get_or_init(|| {
        let mut tar = Vec::with_capacity(DIRS * (FILES_PER_DIR + 1) * 1024 + 1024);
        for d in 0..DIRS {
            tar.extend_from_slice(&entry(&header(format!("d{d:03}/").as_bytes(), b'5', 0).mode(0o755), b""));
            for f in 0..FILES_PER_DIR {
                tar.extend_from_slice(&rawtar::file(format!("d{d:03}/f{f:04}").as_bytes(), b"x"));
            }
        }
        tar.extend_from_slice(&end());
        tar
    })
}

/// A directory the unprivileged user owns, holding the binary, the image
/// (`image`, one uncompressed layer) and a canary (`canary/`).
fn work() -> TestDir {
    let t = user_dir();
    let mut oci = OciDir::create(t.join("image"));
    let mut spec = ImageSpec::declared("latest", Some("flattened"));
    spec.layers = vec![(big_layer().to_vec(), Compression::None)];
    oci.add_image(&spec);
    fs::create_dir(t.join("canary")).unwrap();
    fs::write(t.join("canary/file"), b"canary\n").unwrap();
    let (uid, gid) = user();
    for e in walkdir::WalkDir::new(t.path()).min_depth(1) {
        let e = e.unwrap();
        std::os::unix::fs::lchown(e.path(), Some(uid), Some(gid)).unwrap();
    }
    fs::set_permissions(t.join("canary"), fs::Permissions::from_mode(0o755)).unwrap();
    t
}

/// Everything in `root` but `skip`: path, kind, size, mode, mtime, and the
/// content of small files.
fn describe(root: &Path, skip: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let walk = walkdir::WalkDir::new(root).min_depth(1).into_iter().filter_entry(|e| e.file_name() != skip);
    for e in walk {
        let e = e.unwrap();
        let m = e.path().symlink_metadata().unwrap();
        let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
        // A directory's mtime changes when DEST or OUTPUT appears in it.
        let mtime = if m.is_dir() { 0 } else { m.mtime() };
        let content = if m.is_file() && m.len() < 4096 { fs::read(e.path()).unwrap() } else { Vec::new() };
        out.insert(rel, format!("{:o} {} {mtime} {:?}", m.mode(), m.len(), content));
    }
    out
}

/// `single-id ARGS` started as the unprivileged user in `t`, its output
/// collected by threads.
struct Running {
    child: Child,
    started: Instant,
    output: Vec<std::thread::JoinHandle<Vec<u8>>>,
}

fn start(t: &TestDir, args: &[&str]) -> Running {
    let (uid, gid) = user();
    let mut c = Command::new(t.join("single-id"));
    c.args(args).current_dir(t.path()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        c.uid(uid).gid(gid);
    }
    let mut tries = 0;
    let mut child = loop {
        match c.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => break other.unwrap(),
        }
    };
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let output = vec![drain(Box::new(child.stdout.take().unwrap())), drain(Box::new(child.stderr.take().unwrap()))];
    Running { child, started: Instant::now(), output }
}

impl Running {
    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill only sends a signal to our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as libc::pid_t, signal) }, 0);
    }

    /// Waits until `ready` holds (the command is at work), failing if the
    /// command ends first.
    fn wait_for(&mut self, what: &str, ready: impl Fn() -> bool) {
        while !ready() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the command ended ({status}) before {what}: make the layer larger");
            }
            assert!(self.started.elapsed() < Duration::from_secs(120), "still not {what} after two minutes");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the end; returns the status, the time since `since`, and
    /// stderr.
    fn finish(mut self, since: Instant) -> (std::process::ExitStatus, Duration, String) {
        let status = self.child.wait().unwrap();
        let took = since.elapsed();
        let mut output = self.output.drain(..);
        let _ = output.next().unwrap().join().unwrap();
        let stderr = String::from_utf8_lossy(&output.next().unwrap().join().unwrap()).into_owned();
        (status, took, stderr)
    }
}

fn name(signal: libc::c_int) -> &'static str {
    if signal == libc::SIGINT { "SIGINT" } else { "SIGTERM" }
}

/// How many entries a directory holds, 0 if it does not exist.
fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Unpack, once a few directories are written, then `signal`: it fails,
/// says so, removes DEST and nothing else changes.
fn unpack_stops_clean(signal: libc::c_int) {
    let t = work();
    let before = describe(t.path(), "dest");
    let mut r = start(&t, &["unpack", "image", "dest"]);
    let dest = t.join("dest");
    r.wait_for("it has written 5 directories", || count(&dest) >= 5);
    let at = Instant::now();
    r.signal(signal);
    let (status, took, stderr) = r.finish(at);
    eprintln!("unpack, {}: ended {took:.2?} after it, {status}", name(signal));
    // Non-zero (130, as for SIGINT, after the cleanup), not killed.
    assert!(status.code().is_some_and(|c| c != 0), "unpack after {}: {status}\n{stderr}", name(signal));
    assert!(stderr.contains("interrupted by a signal") && stderr.contains("nothing is left in dest"), "{stderr}");
    assert!(!dest.exists(), "DEST is left after {}:\n{stderr}", name(signal));
    assert_eq!(describe(t.path(), "dest"), before, "something beside DEST changed");
    assert!(took < Duration::from_secs(30), "unpack took {took:.2?} to stop and clean up");
}

/// Flatten, once OUTPUT has appeared, then `signal`: it fails, removes
/// OUTPUT with every `.partial-*` in it, and nothing else changes.
fn flatten_stops_clean(signal: libc::c_int) {
    let t = work();
    let before = describe(t.path(), "flat");
    let mut r = start(&t, &["flatten", "image", "flat"]);
    let flat = t.join("flat");
    // Into the layer: flatten writes its temporary blob as it reads.
    let blobs = flat.join("blobs/sha256");
    let partial = || {
        fs::read_dir(&blobs).into_iter().flatten().filter_map(Result::ok).any(|e| {
            e.file_name().to_string_lossy().starts_with(".partial-") && e.metadata().is_ok_and(|m| m.len() > 16 << 20)
        })
    };
    r.wait_for("it has written 16 MiB of the layer", partial);
    let at = Instant::now();
    r.signal(signal);
    let (status, took, stderr) = r.finish(at);
    eprintln!("flatten, {}: ended {took:.2?} after it, {status}", name(signal));
    assert!(status.code().is_some_and(|c| c != 0), "flatten after {}: {status}\n{stderr}", name(signal));
    assert!(stderr.contains("interrupted by a signal") && stderr.contains("nothing was written to flat"), "{stderr}");
    assert!(!flat.exists(), "OUTPUT is left after {}:\n{stderr}", name(signal));
    let partial: Vec<String> =
        describe(t.path(), "").into_keys().filter(|p| p.contains(".partial-") || p.starts_with("flat")).collect();
    assert!(partial.is_empty(), "left behind: {partial:?}");
    assert_eq!(describe(t.path(), "flat"), before, "something beside OUTPUT changed");
}

#[test]
fn sigint_stops_unpack_and_removes_dest() {
    unpack_stops_clean(libc::SIGINT);
}

#[test]
fn sigterm_stops_unpack_and_removes_dest() {
    unpack_stops_clean(libc::SIGTERM);
}

#[test]
fn sigint_stops_flatten_and_removes_output() {
    flatten_stops_clean(libc::SIGINT);
}

#[test]
fn sigterm_stops_flatten_and_removes_output() {
    flatten_stops_clean(libc::SIGTERM);
}

/// A second signal, while the first is being acted on (the stop and the
/// cleanup take a quarter of a second on this layer), ends the command at
/// once with status 130, without finishing the cleanup: what is left is
/// then the user's to remove.
#[test]
fn a_second_signal_exits_130_at_once() {
    for (command, out) in [("unpack", "dest"), ("flatten", "flat")] {
        for (first, second) in
            [(libc::SIGINT, libc::SIGINT), (libc::SIGTERM, libc::SIGINT), (libc::SIGINT, libc::SIGTERM)]
        {
            let t = work();
            let mut r = start(&t, &[command, "image", out]);
            let target = t.join(out);
            r.wait_for("it is at work", || count(&target) >= 2);
            std::thread::sleep(Duration::from_millis(200));
            r.signal(first);
            // Two signals sent together may be delivered as one.
            std::thread::sleep(Duration::from_millis(20));
            let at = Instant::now();
            r.signal(second);
            let (status, took, stderr) = r.finish(at);
            let what = format!("{command}, {} then {}", name(first), name(second));
            eprintln!("{what}: ended {took:.2?} after the second, {status}");
            assert_eq!(status.code(), Some(130), "{what}: {status} (signal {:?})\n{stderr}", status.signal());
            assert!(took < Duration::from_millis(500), "{what}: took {took:.2?} to end");
            // The first signal's orderly stop did not get to its end.
            assert!(
                !stderr.contains("nothing is left in") && !stderr.contains("nothing was written to"),
                "{what}: {stderr}"
            );
            let _ = Command::new("rm").arg("-rf").arg(&target).status();
        }
    }
}
