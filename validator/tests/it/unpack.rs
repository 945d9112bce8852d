//! `single-id unpack`, run as an unprivileged user on real multi-layer
//! images, checked with lstat: owners, modes, link identity, xattrs, and
//! the absence of whiteouts, devices and anything outside DEST. When the
//! tests run as root (CI), the child drops to 65534:65534 on a directory
//! that user owns, since unprivileged behaviour must be tested unprivileged.

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use support::layers::{self, MTIME, char_device, dir, fifo, file, hardlink, symlink};
use support::unprivileged::{run_as_user, user, user_dir};
use support::{Compression, ImageSpec, OciDir, TestDir};

fn image(t: &TestDir, value: Option<&str>, layers: Vec<(Vec<u8>, Compression)>) -> OciDir {
    let mut oci = OciDir::create(t.join("image"));
    let mut spec = ImageSpec::declared("latest", value);
    spec.layers = layers;
    oci.add_image(&spec);
    oci
}

fn meta(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn mode(p: &Path) -> u32 {
    meta(p).mode() & 0o7777
}

/// Every path under `root`, relative, with its lstat.
fn tree(root: &Path) -> BTreeMap<PathBuf, fs::Metadata> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            (e.path().strip_prefix(root).unwrap().to_path_buf(), e.metadata().unwrap())
        })
        .collect()
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::lgetxattr(p, name, &mut buf) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

/// Three layers (gzip, zstd, plain) touching every consumer requirement.
fn everything() -> Vec<(Vec<u8>, Compression)> {
    let cap = b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    let base = layers::layer(&[
        dir("etc/"),
        file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        file("etc/shadow", b"secret\n").mode(0o000).owner(0, 42),
        dir("srv/"),
        dir("srv/ro/").mode(0o555),
        file("srv/ro/a", b"a"),
        dir("srv/shared/").mode(0o2775).owner(0, 50),
        dir("tmp/").mode(0o1777),
        file("usr/bin/passwd", b"\x7fELF passwd").mode(0o4755),
        file("usr/bin/wall", b"\x7fELF wall").mode(0o2755).owner(0, 5),
        file("data/owned", b"mine").mode(0o640).owner(1000, 1000).pax("uid", "4000000000"),
        hardlink("usr/bin/passwd-link", "usr/bin/passwd"),
        symlink("bin", "usr/bin"),
        symlink("etc/abs", "/etc/passwd"),
        symlink("dangling", "nowhere"),
        char_device("dev/null", 1, 3),
        fifo("run/fifo").mode(0o620),
        file("x/attrs", b"x").pax("SCHILY.xattr.user.test", "hello").pax("SCHILY.xattr.security.capability", cap),
        file("old/gone", b"x"),
        dir("opq/"),
        file("opq/lower", b"x"),
        file("replaced/filedir", b"x"),
        dir("replaced/dirfile/"),
        file("replaced/dirfile/child", b"x"),
    ]);
    let middle = layers::layer(&[
        file("srv/ro/b", b"b"),
        hardlink("cross-link", "etc/passwd"),
        file("old/.wh.gone", b""),
        file("opq/new", b"new"),
        file("opq/.wh..wh..opq", b""),
        dir("replaced/filedir/"),
        file("replaced/filedir/inner", b"x"),
        file("replaced/dirfile", b"now a file"),
    ]);
    let top = layers::layer(&[file("tmp/later", b"later").mode(0o600)]);
    vec![(base, Compression::Gzip), (middle, Compression::Zstd), (top, Compression::None)]
}

#[test]
fn unpacks_as_the_spec_says() {
    let t = user_dir();
    image(&t, Some("allowed"), everything());
    let r = run_as_user(&t, &["unpack", "image", "root"]);
    assert_eq!(r.code(), 0, "{}\n{}", r.stdout(), r.stderr());
    let root = t.join("root");
    let (uid, gid) = user();

    // CONSUMER-OWNER: everything is the invoking user's.
    let all = tree(&root);
    for (p, m) in &all {
        assert_eq!((m.uid(), m.gid()), (uid, gid), "{} is not owned by the invoking user", p.display());
        // CONSUMER-SETID-CLEARED, everywhere.
        assert_eq!(m.mode() & 0o6000, 0, "{} kept a set-ID bit", p.display());
        // CONSUMER-WHITEOUT: no whiteout file remains.
        assert!(!p.to_string_lossy().contains(".wh."), "whiteout left on disk: {}", p.display());
    }
    // CONSUMER-MODE (no umask), CONSUMER-STICKY, CONSUMER-READONLY-DIR.
    assert_eq!(mode(&root.join("etc/shadow")), 0o000);
    assert_eq!(mode(&root.join("srv/ro")), 0o555);
    assert!(root.join("srv/ro/b").exists(), "a later layer could not write into a 0555 directory");
    assert_eq!(mode(&root.join("tmp")), 0o1777);
    assert_eq!(mode(&root.join("srv/shared")), 0o775);
    assert_eq!(mode(&root.join("usr/bin/passwd")), 0o755);
    assert_eq!(mode(&root.join("usr/bin/wall")), 0o755);
    assert_eq!(mode(&root.join("data/owned")), 0o640);
    assert_eq!(mode(&root.join("tmp/later")), 0o600);
    // CONSUMER-FIFO.
    assert!(meta(&root.join("run/fifo")).file_type().is_fifo());
    assert_eq!(mode(&root.join("run/fifo")), 0o620);
    // CONSUMER-HARDLINK, within and across layers.
    assert_eq!(meta(&root.join("usr/bin/passwd-link")).ino(), meta(&root.join("usr/bin/passwd")).ino());
    assert_eq!(meta(&root.join("cross-link")).ino(), meta(&root.join("etc/passwd")).ino());
    // CONSUMER-SYMLINK, CONSUMER-SYMLINK-TARGET: verbatim, even dangling.
    assert_eq!(fs::read_link(root.join("bin")).unwrap(), Path::new("usr/bin"));
    assert_eq!(fs::read_link(root.join("etc/abs")).unwrap(), Path::new("/etc/passwd"));
    assert_eq!(fs::read_link(root.join("dangling")).unwrap(), Path::new("nowhere"));
    // CONSUMER-DEVICES: nothing at the path.
    assert!(fs::symlink_metadata(root.join("dev/null")).is_err());
    // CONSUMER-XATTR-USER, CONSUMER-XATTR-CAPABILITY.
    assert_eq!(xattr(&root.join("x/attrs"), "user.test").as_deref(), Some(&b"hello"[..]));
    assert_eq!(xattr(&root.join("x/attrs"), "security.capability"), None);
    // CONSUMER-WHITEOUT, CONSUMER-OPAQUE (marker after its sibling).
    assert!(!root.join("old/gone").exists());
    assert!(!root.join("opq/lower").exists());
    assert_eq!(fs::read(root.join("opq/new")).unwrap(), b"new");
    // A file replaced by a directory and the reverse.
    assert!(meta(&root.join("replaced/filedir")).is_dir());
    assert!(root.join("replaced/filedir/inner").exists());
    assert_eq!(fs::read(root.join("replaced/dirfile")).unwrap(), b"now a file");
    // Contents, and CONSUMER-MTIME for files and symlinks.
    assert_eq!(fs::read(root.join("etc/passwd")).unwrap(), b"root:x:0:0::/root:/bin/sh\n");
    assert_eq!(meta(&root.join("etc/passwd")).mtime(), MTIME as i64);
    assert_eq!(meta(&root.join("bin")).mtime(), MTIME as i64);
    // The summary reports what was skipped and cleared.
    let out = r.stdout();
    assert!(out.contains("cleared setuid/setgid bits on 3"), "{out}");
    assert!(out.contains("skipped devices: 1 (dev/null"), "{out}");
    assert!(out.contains("did not apply security.capability on 1"), "{out}");
}

#[test]
fn escapes_write_nothing_outside_dest() {
    let t = user_dir();
    let outside = t.join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"untouched").unwrap();
    let (uid, gid) = user();
    std::os::unix::fs::chown(&outside, Some(uid), Some(gid)).unwrap();
    let abs_secret = outside.join("secret").to_string_lossy().into_owned();
    let hostile = [
        layers::layer(&[symlink("evil", "/"), symlink("up", "../../.."), dir("d/"), symlink("d/out", "../../outside")]),
        layers::layer(&[
            file("evil/written-through-absolute", b"x"),
            file("up/written-through-relative", b"x"),
            file("d/out/through-parent-link", b"x"),
            file("../escaped-dotdot", b"x"),
            file("d/../../escaped-dotdot-2", b"x"),
            hardlink("hl-passwd", "/etc/passwd"),
            hardlink("hl-secret", abs_secret.as_bytes()),
            hardlink("hl-climb", "../../outside/secret"),
            file("/absolute-name", b"x"),
        ]),
    ];
    image(&t, Some("flattened"), hostile.into_iter().map(|l| (l, Compression::Gzip)).collect());
    let before: Vec<PathBuf> = tree(t.path()).into_keys().collect();
    let r = run_as_user(&t, &["unpack", "image", "root"]);
    assert_eq!(r.code(), 0, "{}\n{}", r.stdout(), r.stderr());
    // Nothing new or changed outside DEST.
    let after: Vec<PathBuf> = tree(t.path()).into_keys().filter(|p| !p.starts_with("root")).collect();
    assert_eq!(after, before.into_iter().filter(|p| !p.starts_with("root")).collect::<Vec<_>>());
    assert_eq!(fs::read(outside.join("secret")).unwrap(), b"untouched");
    assert_eq!(meta(&outside.join("secret")).nlink(), 1, "a hardlink to a file outside DEST was made");
    // Links were followed as if DEST were /: the files landed inside.
    let root = t.join("root");
    assert!(root.join("written-through-absolute").exists());
    assert!(root.join("written-through-relative").exists());
    assert!(root.join("absolute-name").exists());
    let out = r.stdout();
    assert!(out.contains("rejected entries: 4"), "{out}");
    assert!(out.contains("skipped hardlinks whose target does not exist: 2"), "{out}");
}

#[test]
fn caution_and_unknown_values_need_consent() {
    for value in ["caution", "Flattened", " caution"] {
        let t = user_dir();
        image(&t, Some(value), vec![(layers::layer(&[file("f", b"x")]), Compression::Gzip)]);
        let r = run_as_user(&t, &["unpack", "image", "root"]);
        assert_eq!(r.code(), 1, "{value:?}: {}", r.stderr());
        let err = r.stderr();
        assert!(err.contains(single_id::annotation::KEY), "{err}");
        assert!(err.contains(&format!("{value:?}")), "the message must quote the value found: {err}");
        assert!(err.contains("--confirm-flatten"), "{err}");
        assert!(!t.join("root").exists(), "a refused unpack wrote something");

        let r = run_as_user(&t, &["unpack", "--confirm-flatten", "image", "root"]);
        assert_eq!(r.code(), 0, "{}", r.stderr());
        assert!(r.stderr().contains("warning") && r.stderr().contains(&format!("{value:?}")), "{}", r.stderr());
        assert_eq!(fs::read(t.join("root/f")).unwrap(), b"x");
    }
    // An empty value counts as absent (ANNOTATION-EMPTY).
    for value in [Some("flattened"), Some("allowed"), Some(""), None] {
        let t = user_dir();
        image(&t, value, vec![(layers::layer(&[file("f", b"x")]), Compression::Gzip)]);
        let r = run_as_user(&t, &["unpack", "image", "root"]);
        assert_eq!((r.code(), r.stderr()), (0, String::new()), "{value:?}");
    }
}

#[test]
fn dest_must_be_new_or_empty_and_failure_leaves_nothing() {
    let t = user_dir();
    let oci = image(&t, Some("flattened"), everything());
    fs::create_dir(t.join("full")).unwrap();
    fs::write(t.join("full/x"), b"x").unwrap();
    let r = run_as_user(&t, &["unpack", "image", "full"]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("full: destination exists and is not empty"), "{}", r.stderr());
    assert_eq!(fs::read(t.join("full/x")).unwrap(), b"x");

    // A corrupt last layer: found only after earlier layers were written.
    let manifest = oci.read(
        &serde_json::from_str::<serde_json::Value>(&fs::read_to_string(oci.root.join("index.json")).unwrap()).unwrap()
            ["manifests"][0],
    );
    let last = manifest["layers"][2]["digest"].as_str().unwrap().to_string();
    let path = oci.blob_file(&last);
    let mut bytes = fs::read(&path).unwrap();
    bytes[600] ^= 1;
    fs::write(&path, bytes).unwrap();
    let r = run_as_user(&t, &["unpack", "image", "root"]);
    assert_eq!(r.code(), 1);
    let err = r.stderr();
    assert!(err.contains("layer 2") && err.contains(&last), "the error must name the layer: {err}");
    assert!(!t.join("root").exists(), "a failed unpack left {}", t.join("root").display());

    let r = run_as_user(&t, &["unpack", "--keep-partial", "image", "kept"]);
    assert_eq!(r.code(), 1);
    assert!(t.join("kept/etc/passwd").exists(), "--keep-partial removed the tree");
}

/// Run as whoever runs the tests (root in CI): ownership goes to that user
/// too, which for root is 0:0, with set-ID bits cleared all the same.
#[test]
fn as_the_invoking_user_whoever_it_is() {
    let t = TestDir::new();
    image(&t, Some("flattened"), everything());
    let r = t.run(&["unpack", "image", "root"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    // SAFETY: geteuid/getegid cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    for (p, m) in tree(&t.join("root")) {
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o6000), (uid, gid, 0), "{}", p.display());
    }
}

/// A directory removed by a whiteout and made again implicitly (for a file
/// beneath it) gets the default 0755, not the removed one's recorded mode.
#[test]
fn recreated_directory_does_not_inherit_a_removed_mode() {
    let t = user_dir();
    let layers = vec![
        (layers::layer(&[dir("gone/").mode(0o500), file("gone/x", b"x")]), Compression::Gzip),
        (layers::layer(&[file(".wh.gone", b""), file("gone/y", b"y")]), Compression::Gzip),
    ];
    image(&t, Some("flattened"), layers);
    let r = run_as_user(&t, &["unpack", "image", "root"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(mode(&t.join("root/gone")), 0o755);
    assert!(!t.join("root/gone/x").exists());
    assert_eq!(fs::read(t.join("root/gone/y")).unwrap(), b"y");
}
