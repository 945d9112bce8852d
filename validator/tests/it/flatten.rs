//! `single-id flatten` through the real binary on real layouts: the output
//! validates clean as `flattened`, its layers hold what the spec predicts,
//! it is byte-for-byte reproducible, real tools (umoci, skopeo) accept it,
//! and broken inputs or outputs fail cleanly. Reports are snapshotted and
//! the JSON one checked against its schema.

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::layers::{Spec, char_device, dir, fifo, file, global, hardlink, layer, symlink};
use support::{Compression, ImageSpec, KEY, OciDir, REF, TestDir, schema};

/// A name longer than a ustar name field, so it travels as a PAX record.
fn long_name() -> String {
    format!("usr/share/{}/data.txt", "long-directory-name-".repeat(6))
}

/// Three layers (gzip, zstd, plain) with everything flatten changes or keeps.
fn main_layers() -> Vec<(Vec<u8>, Compression)> {
    let base = layer(&[
        global(&[("comment", b"made by a test")]),
        dir("./"),
        dir("etc/"),
        file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n").names("root", "root"),
        hardlink("etc/passwd-link", "/etc/passwd"),
        symlink("etc/alt", "/etc/passwd"),
        dir("usr/"),
        dir("usr/bin/"),
        file("usr/bin/passwd", b"\x7fELF passwd").mode(0o4755),
        file("usr/bin/ping", b"\x7fELF ping")
            .mode(0o755)
            .pax("SCHILY.xattr.security.capability", b"\x01\x00\x00\x02\x00\x20\x00\x00")
            .pax("SCHILY.xattr.user.origin", "test"),
        dir("var/"),
        dir("var/mail/").mode(0o2775).owner(0, 8).names("root", "mail"),
        dir("tmp/").mode(0o1777),
        dir("dev/"),
        char_device("dev/null", 1, 3),
        hardlink("dev/null-link", "dev/null"),
        dir("run/"),
        fifo("run/initctl").mode(0o600),
        dir("home/"),
        file("home/big-id", b"owned by a 33-bit uid").pax("uid", "4294967296").pax("gid", "5"),
        dir("srv/"),
        file("srv/acl", b"acl").pax("SCHILY.acl.access", "user::rw-,group::r--,other::---"),
        file("srv/rootless", b"r").pax("SCHILY.xattr.user.rootlesscontainers", "\x08\x01"),
        file("/srv/data", b"absolute"),
        file("../escape", b"outside"),
        file("placeholder", long_name().as_bytes()).pax("path", long_name()),
        dir("var/lib/"),
        dir("var/lib/db/").mode(0o700).owner(999, 999).names("postgres", "postgres"),
    ]);
    let middle = layer(&[
        dir("etc/"),
        file("etc/.wh.motd", b""),
        dir("opt/"),
        file("opt/.wh..wh..opq", b""),
        file("opt/new", b"new\n").owner(1000, 1000).names("alice", "alice"),
        hardlink("usr/bin/ping2", "usr/bin/ping"),
        hardlink("dev/null2", "dev/null"),
        file("srv/acl2", b"a").pax("SCHILY.xattr.system.posix_acl_access", "\x02\x00\x00\x00"),
    ]);
    let top = layer(&[
        file("etc/motd", b"hello\n").mode(0o2644).owner(0, 42).names("", "shadow"),
        char_device("dev/zero", 1, 5),
        file("dev/null", b"a file where the device was\n"),
        hardlink("dev/null3", "dev/null"),
    ]);
    vec![(base, Compression::Gzip), (middle, Compression::Zstd), (top, Compression::None)]
}

/// Declared `caution` everywhere, running as `postgres`: all of it must go.
fn main_image(t: &TestDir) -> OciDir {
    let mut oci = OciDir::create(t.join("image"));
    let mut spec = ImageSpec::declared("db", Some("caution"));
    spec.index_value = Some("caution".into());
    spec.layers = main_layers();
    let desc = oci.image(&spec);
    let config = oci.rewrite(&oci.read(&desc)["config"], |c| {
        c["config"]["User"] = json!("postgres");
        c["config"]["Env"] = json!(["PATH=/usr/bin"]);
        c["history"] = json!([{"created_by": "layer 0"}, {"created_by": "layer 1"}, {"created_by": "layer 2"}]);
    });
    let desc = oci.rewrite(&desc, |m| {
        m["config"] = config;
        m["annotations"]["org.opencontainers.image.title"] = json!("db");
        m["annotations"]["org.opencontainers.image.base.name"] = json!("registry.example/debian:12");
        m["annotations"]["org.opencontainers.image.base.digest"] = json!(format!("sha256:{}", "0".repeat(64)));
    });
    oci.add(desc);
    oci
}

/// What a test looks at in one output entry.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    path: String,
    kind: char,
    mode: u32,
    link: String,
    xattrs: Vec<String>,
    data: Vec<u8>,
}

fn seen(path: &str, kind: char, mode: u32) -> Seen {
    Seen { path: path.into(), kind, mode, link: String::new(), xattrs: Vec::new(), data: Vec::new() }
}

impl Seen {
    fn link(mut self, l: &str) -> Self {
        self.link = l.into();
        self
    }
    fn xattrs(mut self, x: &[&str]) -> Self {
        self.xattrs = x.iter().map(|s| s.to_string()).collect();
        self
    }
    fn data(mut self, d: &[u8]) -> Self {
        self.data = d.to_vec();
        self
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

/// The manifest of the first image in `layout`'s index.json.
fn first_manifest(layout: &Path) -> Value {
    let index = read_json(&layout.join("index.json"));
    read_json(&blob(layout, index["manifests"][0]["digest"].as_str().unwrap()))
}

/// Every entry of every layer of `manifest`, decompressed by media type
/// and read with the tar crate; also checks each owner is 0:0 root/root.
fn layer_entries(layout: &Path, manifest: &Value) -> Vec<Vec<Seen>> {
    let mut out = Vec::new();
    for l in manifest["layers"].as_array().unwrap() {
        let bytes = fs::read(blob(layout, l["digest"].as_str().unwrap())).unwrap();
        let tar = match l["mediaType"].as_str().unwrap() {
            "application/vnd.oci.image.layer.v1.tar+gzip" => {
                let mut v = Vec::new();
                flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut v).unwrap();
                v
            }
            "application/vnd.oci.image.layer.v1.tar+zstd" => zstd::decode_all(&bytes[..]).unwrap(),
            "application/vnd.oci.image.layer.v1.tar" => bytes,
            other => panic!("unexpected layer media type {other}"),
        };
        let mut archive = tar::Archive::new(&tar[..]);
        let mut entries = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header();
            let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0), "{path}");
            assert_eq!((h.username_bytes(), h.groupname_bytes()), (Some(&b"root"[..]), Some(&b"root"[..])), "{path}");
            assert_eq!(h.mtime().unwrap(), support::layers::MTIME, "{path}");
            let kind = h.entry_type().as_byte() as char;
            let mode = h.mode().unwrap();
            let link = e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default();
            let mut xattrs = Vec::new();
            if let Some(pax) = e.pax_extensions().unwrap() {
                for r in pax {
                    let r = r.unwrap();
                    let key = r.key().unwrap();
                    assert!(!["uid", "gid", "uname", "gname"].contains(&key), "{path}: PAX {key}");
                    if let Some(name) = key.strip_prefix("SCHILY.") {
                        xattrs.push(format!("{name}={}", String::from_utf8_lossy(r.value_bytes())));
                    }
                }
            }
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            entries.push(Seen { path, kind, mode, link, xattrs, data });
        }
        out.push(entries);
    }
    out
}

/// Runs `single-id ARGS`, asserting the exit status.
fn run(t: &TestDir, args: &[&str], code: i32) -> support::Run {
    let r = t.run(args);
    assert_eq!(r.code(), code, "single-id {args:?}: stderr: {}\nstdout: {}", r.stderr(), r.stdout());
    r
}

/// `validate --strict --format json` finds nothing at all in `image`.
fn assert_validates_clean(t: &TestDir, image: &str) -> Value {
    let r = run(t, &["validate", "--strict", "--format", "json", image], 0);
    let doc = r.json();
    assert_eq!(doc["findings"], json!([]), "{doc:#}");
    for img in doc["images"].as_array().unwrap() {
        assert_eq!(img["idFlattening"]["effective"], "flattened", "{doc:#}");
    }
    doc
}

#[test]
fn multi_layer_image_flattens_to_what_the_spec_predicts() {
    let t = TestDir::new();
    main_image(&t);
    let human = run(&t, &["flatten", "--confirm-flatten", "image", "out"], 0);
    insta::assert_snapshot!("main.human", human.stdout());
    let validated = assert_validates_clean(&t, "out");
    assert_eq!(validated["images"][0]["name"], "db");

    let out = t.join("out");
    let manifest = first_manifest(&out);
    let types: Vec<&str> =
        manifest["layers"].as_array().unwrap().iter().map(|l| l["mediaType"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.oci.image.layer.v1.tar"
        ]
    );
    // The base annotations name the unflattened base: dropped, and said so.
    assert_eq!(manifest["annotations"], json!({KEY: "flattened", "org.opencontainers.image.title": "db"}));
    let index = read_json(&out.join("index.json"));
    assert_eq!(index["manifests"][0]["annotations"], json!({KEY: "flattened", REF: "db"}));
    let config = read_json(&blob(&out, manifest["config"]["digest"].as_str().unwrap()));
    assert_eq!(config["config"]["User"], "");
    assert_eq!(config["config"]["Env"], json!(["PATH=/usr/bin"]));
    assert_eq!(config["config"]["Labels"], json!({KEY: "flattened"}));
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.len(), 4);
    let last = &history[3];
    assert_eq!(last["created_by"], "single-id flatten");
    assert_eq!(last["empty_layer"], true);
    // No `created` in the input config: the newest mtime of the layers,
    // so that the same input gives the same bytes (umoci stat needs one).
    assert_eq!(last["created"], "2023-11-14T22:13:20Z", "{last}");
    let comment = last["comment"].as_str().unwrap();
    assert!(comment.contains("config.User \"postgres\" reset"), "{comment}");
    assert!(comment.contains("2 devices dropped"), "{comment}");

    let layers = layer_entries(&out, &manifest);
    let long = long_name();
    let expected_base = vec![
        seen("./", '5', 0o755),
        seen("etc/", '5', 0o755),
        seen("etc/passwd", '0', 0o644).data(b"root:x:0:0::/root:/bin/sh\n"),
        seen("etc/passwd-link", '1', 0o644).link("etc/passwd"),
        seen("etc/alt", '2', 0o777).link("/etc/passwd"),
        seen("usr/", '5', 0o755),
        seen("usr/bin/", '5', 0o755),
        seen("usr/bin/passwd", '0', 0o755).data(b"\x7fELF passwd"),
        seen("usr/bin/ping", '0', 0o755).xattrs(&["xattr.user.origin=test"]).data(b"\x7fELF ping"),
        seen("var/", '5', 0o755),
        seen("var/mail/", '5', 0o775),
        seen("tmp/", '5', 0o1777),
        seen("dev/", '5', 0o755),
        seen("run/", '5', 0o755),
        seen("run/initctl", '6', 0o600),
        seen("home/", '5', 0o755),
        seen("home/big-id", '0', 0o644).data(b"owned by a 33-bit uid"),
        seen("srv/", '5', 0o755),
        seen("srv/acl", '0', 0o644).data(b"acl"),
        seen("srv/rootless", '0', 0o644).data(b"r"),
        seen("srv/data", '0', 0o644).data(b"absolute"),
        seen(&long, '0', 0o644).data(long.as_bytes()),
        seen("var/lib/", '5', 0o755),
        seen("var/lib/db/", '5', 0o700),
    ];
    assert_eq!(layers[0], expected_base);
    let expected_middle = vec![
        seen("etc/", '5', 0o755),
        seen("etc/.wh.motd", '0', 0o644),
        seen("opt/", '5', 0o755),
        seen("opt/.wh..wh..opq", '0', 0o644),
        seen("opt/new", '0', 0o644).data(b"new\n"),
        seen("usr/bin/ping2", '1', 0o644).link("usr/bin/ping"),
        seen("srv/acl2", '0', 0o644).data(b"a"),
    ];
    assert_eq!(layers[1], expected_middle);
    // A file replaces the device: a hardlink to it is valid again.
    let expected_top = vec![
        seen("etc/motd", '0', 0o644).data(b"hello\n"),
        seen("dev/null", '0', 0o644).data(b"a file where the device was\n"),
        seen("dev/null3", '1', 0o644).link("dev/null"),
    ];
    assert_eq!(layers[2], expected_top);

    let j = run(&t, &["flatten", "--confirm-flatten", "--format", "json", "image", "out-json"], 0);
    let doc = j.json();
    schema::assert_valid("flatten-report.schema.json", &doc);
    insta::assert_snapshot!("main.json", j.stdout());
    let img = &doc["images"][0];
    assert_eq!(img["configUser"], "postgres");
    assert_eq!(img["configUserReset"], true);
    assert_eq!(
        img["baseAnnotationsDropped"],
        json!(["org.opencontainers.image.base.digest", "org.opencontainers.image.base.name"])
    );
    let total = &img["total"];
    assert_eq!(total["entries"], 39);
    assert_eq!(total["written"], 34);
    assert_eq!(total["devicesDropped"]["count"], 2);
    assert_eq!(total["hardlinksDropped"]["count"], 2);
    assert_eq!(total["pathsDropped"]["count"], 1);
    assert_eq!(total["pathsDropped"]["examples"][0]["path"], "../escape");
    assert_eq!(total["setidCleared"]["count"], 3);
    assert_eq!(total["capabilitiesRemoved"]["count"], 1);
    assert_eq!(total["ownerXattrsRemoved"]["count"], 1);
    assert_eq!(total["aclsRemoved"]["count"], 2);
    assert_eq!(total["absoluteStripped"]["count"], 2);
    assert_eq!(total["globalHeadersDropped"], 1);
    assert_eq!(total["ownersReplaced"], 5);
    assert_eq!(total["namesReplaced"], 4);
    let owners: Vec<(u64, u64)> = total["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["uid"].as_u64().unwrap(), o["gid"].as_u64().unwrap()))
        .collect();
    assert_eq!(owners, [(0, 0), (0, 8), (0, 42), (999, 999), (1000, 1000), (4294967296, 5)]);
    // The second run wrote the same layout as the first.
    assert_eq!(tree(&t.join("out")), tree(&t.join("out-json")));
}

/// Every file under `root`, by relative path, with its bytes.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(path.strip_prefix(root).unwrap().display().to_string(), fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn output_is_reproducible() {
    let t = TestDir::new();
    main_image(&t);
    run(&t, &["flatten", "--confirm-flatten", "image", "a"], 0);
    run(&t, &["flatten", "--confirm-flatten", "image", "b"], 0);
    let a = tree(&t.join("a"));
    assert_eq!(a, tree(&t.join("b")));
    // index.json, oci-layout, 3 layers, a config and a manifest; no temporary files.
    assert_eq!(a.len(), 7, "{:?}", a.keys().collect::<Vec<_>>());
    run(&t, &["flatten", "--confirm-flatten", "--compression", "zstd", "image", "z1"], 0);
    run(&t, &["flatten", "--confirm-flatten", "--compression", "zstd", "image", "z2"], 0);
    let z = tree(&t.join("z1"));
    assert_eq!(z, tree(&t.join("z2")));
    assert_ne!(a, z);
    let manifest = first_manifest(&t.join("z1"));
    for l in manifest["layers"].as_array().unwrap() {
        assert_eq!(l["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd");
    }
    assert_validates_clean(&t, "z1");
    // Flattening the same layers with another compression gives the same
    // uncompressed layers.
    let diff_ids = |dir: &str| {
        let m = first_manifest(&t.join(dir));
        read_json(&blob(&t.join(dir), m["config"]["digest"].as_str().unwrap()))["rootfs"]["diff_ids"].clone()
    };
    assert_eq!(diff_ids("a"), diff_ids("z1"));
    run(&t, &["flatten", "--confirm-flatten", "--compression", "none", "image", "plain"], 0);
    assert_eq!(diff_ids("a"), diff_ids("plain"));
    // Flattening a flattened image changes only the history.
    run(&t, &["flatten", "--confirm-flatten", "plain", "again"], 0);
    assert_eq!(diff_ids("plain"), diff_ids("again"));
}

/// Text-like bytes that compress about threefold, as a layer's files do.
fn compressible(len: usize, seed: u64) -> Vec<u8> {
    let words: [&[u8]; 8] = [b"usr ", b"lib ", b"share ", b"root ", b"0644 ", b"config\n", b"ELF ", b"single-id "];
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if state % 4 == 0 {
            out.extend_from_slice(&state.to_le_bytes()[..3]);
        } else {
            out.extend_from_slice(words[(state >> 32) as usize % words.len()]);
        }
    }
    out.truncate(len);
    out
}

/// An image of three layers large enough to span many gzip blocks (256 KiB)
/// and several zstd jobs (4 MiB), with a device in the lowest, so that the
/// layers above it are flattened again knowing what it dropped.
fn large_image(t: &TestDir) {
    let mut oci = OciDir::create(t.join("image"));
    let mut spec = ImageSpec::declared("big", None);
    let big = |name: &str, len: usize, seed: u64| file(name, &compressible(len, seed)).owner(1000, 1000);
    spec.layers = vec![
        (layer(&[dir("dev/"), char_device("dev/fuse", 10, 229), big("a", 6 << 20, 1)]), Compression::Gzip),
        (layer(&[big("b", 10 << 20, 2), hardlink("dev/fuse-link", "dev/fuse")]), Compression::Zstd),
        (layer(&[big("c", 3 << 20, 3), big("d", 1 << 20, 4)]), Compression::Gzip),
    ];
    oci.add_image(&spec);
}

/// Compression runs on as many threads as there are cores, and layers are
/// flattened side by side: neither may change a byte of the output. Run
/// on one core and on two (taskset), and read back by GNU gzip, zstd and
/// umoci (Go's compress/gzip), which must agree with the diff_ids.
#[test]
fn output_does_not_depend_on_the_cores() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(cores >= 2, "this test compares one core with two, and this machine has {cores}");
    let t = TestDir::new();
    large_image(&t);
    let bin = env!("CARGO_BIN_EXE_single-id");
    for compression in ["input", "gzip", "zstd"] {
        let mut trees = Vec::new();
        for cpus in ["0", "0,1"] {
            let out = format!("{compression}-{}", cpus.len());
            let mut args = vec!["-c", cpus, bin, "flatten", "--confirm-flatten", "image", &out];
            if compression != "input" {
                args.extend(["--compression", compression]);
            }
            t.tool("taskset", &args);
            trees.push(tree(&t.join(&out)));
        }
        assert!(trees[0] == trees[1], "--compression {compression}: one core and two wrote different layouts");
        // index.json, oci-layout, a config, a manifest and three layers:
        // no blob of a layer flattened on the wrong guess is left.
        assert_eq!(trees[0].len(), 7, "{:?}", trees[0].keys().collect::<Vec<_>>());
    }
    let layout = t.join("input-3");
    let manifest = first_manifest(&layout);
    let config = read_json(&blob(&layout, manifest["config"]["digest"].as_str().unwrap()));
    for (i, l) in manifest["layers"].as_array().unwrap().iter().enumerate() {
        let file = blob(&layout, l["digest"].as_str().unwrap());
        let decompressor = if l["mediaType"].as_str().unwrap().ends_with("zstd") { "zstd" } else { "gzip" };
        let tar = t.tool(decompressor, &["-dc", file.to_str().unwrap()]).stdout;
        assert!(tar.len() > 1 << 20, "layer {i}");
        assert_eq!(support::sha256(&tar), config["rootfs"]["diff_ids"][i], "layer {i}");
    }
    let entries = layer_entries(&layout, &manifest);
    assert!(entries[1].iter().all(|e| e.path != "dev/fuse-link"), "{:?}", entries[1]);
    t.tool("umoci", &["unpack", "--rootless", "--image", "gzip-3:big", "bundle"]);
    assert_eq!(fs::read(t.join("bundle/rootfs/c")).unwrap(), compressible(3 << 20, 3));
}

#[test]
fn umoci_and_skopeo_accept_the_output() {
    let t = TestDir::new();
    main_image(&t);
    run(&t, &["flatten", "--confirm-flatten", "image", "out"], 0);
    // umoci 0.4.7 reads no zstd layers at all, so it gets a gzip flattening.
    run(&t, &["flatten", "--confirm-flatten", "--compression", "gzip", "image", "gz"], 0);
    t.tool("umoci", &["unpack", "--rootless", "--image", "gz:db", "bundle"]);
    let rootfs = t.join("bundle/rootfs");
    assert_eq!(fs::read(rootfs.join("etc/motd")).unwrap(), b"hello\n");
    assert_eq!(fs::read(rootfs.join(long_name())).unwrap(), long_name().as_bytes());
    assert_eq!(fs::read(rootfs.join("opt/new")).unwrap(), b"new\n");
    assert_eq!(fs::read(rootfs.join("dev/null3")).unwrap(), b"a file where the device was\n");
    assert!(!rootfs.join("dev/zero").exists());
    assert!(!rootfs.join("dev/null-link").exists());
    assert!(!t.path().join("escape").exists());
    // umoci 0.4.7's stat dereferenced a history entry without `created`.
    let stat = t.tool("umoci", &["stat", "--image", "gz:db", "--json"]);
    let stat: Value = serde_json::from_slice(&stat.stdout).unwrap();
    assert_eq!(stat["history"].as_array().map(Vec::len), Some(4), "{stat:#}");
    let inspected = t.tool("skopeo", &["inspect", "oci:out:db"]);
    let doc: Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(doc["Labels"][KEY], "flattened");
    assert_eq!(doc["Layers"].as_array().unwrap().len(), 3);

    run(&t, &["flatten", "--confirm-flatten", "image", "oci-archive:out.tar"], 0);
    let inspected = t.tool("skopeo", &["inspect", "oci-archive:out.tar:db"]);
    let doc: Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(doc["Labels"][KEY], "flattened");
    assert_validates_clean(&t, "oci-archive:out.tar");
    // Nothing is left beside the archive.
    let mut names: Vec<String> =
        fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["bundle", "gz", "image", "out", "out.tar"]);
    // A path ending in .tar is an archive too, byte-identical to the first.
    run(&t, &["flatten", "--confirm-flatten", "image", "again.tar"], 0);
    assert_eq!(fs::read(t.join("out.tar")).unwrap(), fs::read(t.join("again.tar")).unwrap());
}

#[test]
fn nested_index_keeps_its_structure_and_names() {
    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let tar =
        |owner: u64| layer(&[dir("srv/").owner(owner, owner), file("srv/a", b"a").mode(0o4755).owner(owner, owner)]);
    let mut amd = ImageSpec::declared("unused", None);
    amd.ref_name = None;
    amd.layers = vec![(tar(1), Compression::Gzip), (tar(2), Compression::Zstd)];
    let mut arm = amd.clone();
    arm.layers = vec![(tar(3), Compression::None)];
    let mut amd_desc = oci.image(&amd);
    amd_desc["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let mut arm_desc = oci.image(&arm);
    arm_desc["platform"] = json!({"architecture": "arm64", "os": "linux", "variant": "v8"});
    // An artifact beside the images: copied as it is.
    let config = oci.blob("application/vnd.example.config+json", b"{}");
    let payload = oci.blob("application/vnd.example.payload", b"payload");
    let artifact = oci.json_blob(
        "application/vnd.oci.image.manifest.v1+json",
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config, "layers": [payload]}),
    );
    let inner = oci.json_blob(
        "application/vnd.oci.image.index.v1+json",
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [amd_desc, arm_desc, artifact.clone()], "annotations": {"org.example": "kept"}}),
    );
    let mut top = inner.clone();
    top["annotations"] = json!({REF: "multi", KEY: "allowed"});
    oci.add(top);
    let mut single = oci.image(&ImageSpec::declared("single", None));
    single["annotations"][KEY] = json!("caution");
    oci.add(single);

    let doc = run(&t, &["flatten", "--confirm-flatten", "--format", "json", "image", "out"], 0).json();
    schema::assert_valid("flatten-report.schema.json", &doc);
    let names: Vec<&str> = doc["images"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["multi (linux/amd64)", "multi (linux/arm64/v8)", "single"]);
    let copied: Vec<&str> = doc["copied"].as_array().unwrap().iter().map(|c| c["digest"].as_str().unwrap()).collect();
    assert_eq!(copied.len(), 3);
    for d in [&artifact, &config, &payload] {
        let digest = d["digest"].as_str().unwrap();
        assert!(copied.contains(&digest), "{digest} not copied: {copied:?}");
        assert_eq!(fs::read(blob(&t.join("out"), digest)).unwrap(), fs::read(blob(&t.join("image"), digest)).unwrap());
    }

    let index = read_json(&t.join("out/index.json"));
    let top = &index["manifests"];
    assert_eq!(top.as_array().unwrap().len(), 2);
    assert_eq!(top[0]["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(top[0]["annotations"], json!({REF: "multi", KEY: "flattened"}));
    assert_eq!(top[1]["annotations"], json!({REF: "single", KEY: "flattened"}));
    let nested = read_json(&blob(&t.join("out"), top[0]["digest"].as_str().unwrap()));
    assert_eq!(nested["annotations"], json!({"org.example": "kept"}));
    let children = nested["manifests"].as_array().unwrap();
    assert_eq!(children.len(), 3);
    assert_eq!(children[0]["platform"], json!({"architecture": "amd64", "os": "linux"}));
    assert_eq!(children[1]["platform"]["variant"], "v8");
    assert_eq!(children[0]["annotations"], json!({KEY: "flattened"}));
    assert_eq!(children[2], artifact);

    // Only the artifact is left unchecked; everything else is clean.
    let r = run(&t, &["validate", "--strict", "--format", "json", "out"], 0);
    let report = r.json();
    let rules: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["descriptor-skipped"], "{report:#}");
    assert_eq!(report["images"].as_array().unwrap().len(), 3);

    // --ref keeps one image: the nested index, whole.
    run(&t, &["flatten", "--confirm-flatten", "--ref", "multi", "image", "one"], 0);
    let index = read_json(&t.join("one/index.json"));
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(index["manifests"][0]["digest"], top[0]["digest"]);
    run(&t, &["flatten", "--confirm-flatten", "oci:image:single", "two"], 0);
    let two = assert_validates_clean(&t, "two");
    assert_eq!(two["images"][0]["name"], "single");
}

/// OCI-SUBJECT: what refers to a flattened manifest is re-pointed at the
/// new one, in whatever order the index lists it; a subject stored
/// elsewhere is left as it is.
#[test]
fn referrers_follow_their_flattened_subject() {
    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let base = oci.image(&ImageSpec::declared("base", Some("allowed")));
    let mut subject = base.clone();
    subject.as_object_mut().unwrap().remove("annotations");
    // An image that is itself a referrer of `base`, listed before it.
    let mut derived = oci.image(&ImageSpec::declared("derived", Some("allowed")));
    let mut manifest = read_json(&blob(&t.join("image"), derived["digest"].as_str().unwrap()));
    manifest["subject"] = subject.clone();
    let annotations = derived["annotations"].clone();
    derived = oci.json_blob("application/vnd.oci.image.manifest.v1+json", &manifest);
    derived["annotations"] = annotations;
    let empty = oci.blob("application/vnd.oci.empty.v1+json", b"{}");
    let signature = oci.blob("application/vnd.example.signature", b"signed old digest");
    let artifact = |subject: &Value| {
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "artifactType": "application/vnd.example.signature", "config": empty,
               "layers": [signature], "subject": subject})
    };
    let signed = oci.json_blob("application/vnd.oci.image.manifest.v1+json", &artifact(&subject));
    let mut elsewhere = subject.clone();
    elsewhere["digest"] = json!(format!("sha256:{}", "ab".repeat(32)));
    let foreign = oci.json_blob("application/vnd.oci.image.manifest.v1+json", &artifact(&elsewhere));
    for d in [&derived, &signed, &base, &foreign] {
        oci.add(d.clone());
    }

    let doc = run(&t, &["flatten", "--format", "json", "image", "out"], 0).json();
    schema::assert_valid("flatten-report.schema.json", &doc);
    let out = t.join("out");
    let index = read_json(&out.join("index.json"));
    let entries = index["manifests"].as_array().unwrap();
    let new_base = &entries[2];
    let new_subject = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                             "digest": new_base["digest"], "size": new_base["size"]});
    for (i, old) in [(0, &derived), (1, &signed)] {
        assert_ne!(entries[i]["digest"], old["digest"], "entry {i} still names the old document");
        let doc = read_json(&blob(&out, entries[i]["digest"].as_str().unwrap()));
        assert_eq!(doc["subject"], new_subject, "entry {i}");
    }
    assert_eq!(entries[1]["artifactType"], json!(null), "the index entry keeps its own members only");
    assert_eq!(entries[3], foreign, "a subject stored elsewhere is not touched");
    let re = doc["resubjected"].as_array().unwrap();
    let pairs: Vec<(&str, &str)> =
        re.iter().map(|r| (r["digest"].as_str().unwrap(), r["outputSubject"].as_str().unwrap())).collect();
    let new_base_digest = new_base["digest"].as_str().unwrap();
    assert_eq!(
        pairs,
        [(derived["digest"].as_str().unwrap(), new_base_digest), (signed["digest"].as_str().unwrap(), new_base_digest)]
    );
    assert_eq!(re[1]["artifactType"], "application/vnd.example.signature");
    assert!(re.iter().all(|r| r["subject"] == base["digest"]), "{re:#?}");
    let human = run(&t, &["flatten", "image", "out-text"], 0);
    assert!(human.stdout().contains("re-pointed at the flattened manifest: 2 document(s)"), "{}", human.stdout());

    // The output's subjects all resolve; only the foreign one is noted.
    let v = run(&t, &["validate", "--format", "json", "out"], 0).json();
    let subject_rules: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["rule"].as_str().filter(|r| r.starts_with("subject-")))
        .collect();
    assert_eq!(subject_rules, ["subject-missing"], "{v:#}");
}

#[test]
fn bundled_example_flattens_clean() {
    let t = TestDir::new();
    let example = support::repo_root().join("examples/hello");
    let r = run(&t, &["flatten", "--confirm-flatten", example.to_str().unwrap(), "out"], 0);
    assert!(r.stdout().contains("image latest"), "{}", r.stdout());
    assert_validates_clean(&t, "out");
    t.tool("skopeo", &["inspect", "oci:out:latest"]);
}

#[test]
fn docker_media_types_become_oci() {
    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let l = layer(&[dir("etc/"), file("etc/hostname", b"h").owner(5, 5)]);
    let gz = Compression::Gzip.compress(&l);
    let layer_desc = oci.blob("application/vnd.docker.image.rootfs.diff.tar.gzip", &gz);
    let config = oci.json_blob(
        "application/vnd.docker.container.image.v1+json",
        &json!({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [support::sha256(&l)]}}),
    );
    let mut manifest = oci.json_blob(
        "application/vnd.docker.distribution.manifest.v2+json",
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": config, "layers": [layer_desc]}),
    );
    manifest["annotations"] = json!({REF: "docker"});
    oci.add(manifest);
    run(&t, &["flatten", "--confirm-flatten", "image", "out"], 0);
    let m = first_manifest(&t.join("out"));
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
    assert_eq!(m["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    assert_validates_clean(&t, "out");
}

/// The output declares `flattened`, so every later consumer flattens it
/// without asking: flattening a `caution` image (or one with a value this
/// tool does not know) needs the consent unpacking it would (POLICY-CAUTION),
/// and without it nothing is written. With it, the notice is still shown.
#[test]
fn caution_images_need_consent() {
    let t = TestDir::new();
    main_image(&t);
    let r = run(&t, &["flatten", "image", "out"], 1);
    assert!(r.stderr().contains("refused") && r.stderr().contains("\"caution\""), "{}", r.stderr());
    assert!(r.stderr().contains("--confirm-flatten"), "{}", r.stderr());
    assert!(!t.join("out").exists(), "a refused flatten wrote something");
    let r = run(&t, &["flatten", "--confirm-flatten", "--format", "json", "image", "out"], 0);
    assert!(r.stderr().contains("warning") && r.stderr().contains("\"caution\""), "{}", r.stderr());
    assert_eq!(r.json()["notices"].as_array().map(Vec::len), Some(1));
}

#[test]
fn output_that_is_not_empty_is_refused() {
    let t = TestDir::new();
    main_image(&t);
    fs::create_dir(t.join("out")).unwrap();
    fs::write(t.join("out/keep"), b"mine").unwrap();
    let r = run(&t, &["flatten", "--confirm-flatten", "image", "out"], 2);
    assert!(r.stderr().contains("out: output exists and is not empty"), "{}", r.stderr());
    assert_eq!(tree(&t.join("out")).into_keys().collect::<Vec<_>>(), ["keep"]);
    fs::write(t.join("out.tar"), b"mine").unwrap();
    let r = run(&t, &["flatten", "--confirm-flatten", "image", "out.tar"], 2);
    assert!(r.stderr().contains("exists already"), "{}", r.stderr());
    assert_eq!(fs::read(t.join("out.tar")).unwrap(), b"mine");
    // An empty directory is fine, and stays where it was.
    fs::create_dir(t.join("empty")).unwrap();
    run(&t, &["flatten", "--confirm-flatten", "image", "empty"], 0);
    assert_validates_clean(&t, "empty");
}

#[test]
fn bad_arguments_and_unreadable_images_cannot_start() {
    let t = TestDir::new();
    main_image(&t);
    let r = run(&t, &["flatten", "--confirm-flatten", "missing", "out"], 2);
    assert!(r.stderr().contains("missing"), "{}", r.stderr());
    fs::create_dir(t.join("not-a-layout")).unwrap();
    let r = run(&t, &["flatten", "--confirm-flatten", "not-a-layout", "out"], 2);
    assert!(r.stderr().contains("index.json"), "{}", r.stderr());
    let r = run(&t, &["flatten", "--confirm-flatten", "--ref", "nope", "image", "out"], 2);
    assert!(r.stderr().contains("no image named `nope`"), "{}", r.stderr());
    run(&t, &["flatten", "--confirm-flatten", "--compression", "lz4", "image", "out"], 2);
    run(&t, &["flatten", "--confirm-flatten", "--format", "sarif", "image", "out"], 2);
    let r = run(&t, &["flatten", "--confirm-flatten", "image", "oci:out:latest"], 2);
    assert!(r.stderr().contains("OUTPUT takes no"), "{}", r.stderr());
    assert!(!t.join("out").exists());
    assert!(!r.stderr().contains("panicked"));
}

/// Layer 1's blob bytes changed under its descriptor.
fn corrupt_layer(t: &TestDir) -> String {
    let oci = main_image(t);
    let manifest = oci.read(&read_json(&t.join("image/index.json"))["manifests"][0]);
    let digest = manifest["layers"][1]["digest"].as_str().unwrap().to_string();
    let path = oci.blob_file(&digest);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    digest
}

#[test]
fn corrupt_layer_fails_and_leaves_nothing() {
    let t = TestDir::new();
    let digest = corrupt_layer(&t);
    for output in ["out", "oci-archive:out.tar"] {
        let r = run(&t, &["flatten", "--confirm-flatten", "image", output], 1);
        let err = r.stderr();
        assert!(err.contains(&format!("layer 1 ({digest})")), "{err}");
        assert!(err.contains("content hashes to"), "{err}");
        assert!(err.contains("nothing was written"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        let names: Vec<String> =
            fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["image"], "{output}");
    }
    // An empty directory given as OUTPUT is emptied again, not removed.
    fs::create_dir(t.join("empty")).unwrap();
    run(&t, &["flatten", "--confirm-flatten", "image", "empty"], 1);
    assert!(fs::read_dir(t.join("empty")).unwrap().next().is_none());
}

#[test]
fn wrong_diff_id_fails() {
    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let desc = oci.image(&ImageSpec::declared("x", None));
    let config = oci.rewrite(&oci.read(&desc)["config"], |c| {
        c["rootfs"]["diff_ids"][0] = json!(format!("sha256:{}", "0".repeat(64)));
    });
    let desc = oci.rewrite(&desc, |m| m["config"] = config);
    oci.add(desc);
    let r = run(&t, &["flatten", "--confirm-flatten", "image", "out"], 1);
    assert!(r.stderr().contains("but the config says sha256:0000"), "{}", r.stderr());
    assert!(!t.join("out").exists());
}

#[test]
fn truncated_layer_fails() {
    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let big: Vec<u8> = (0..50_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let l = layer(&[file("a", &big), file("b", &big)]);
    let mut spec = ImageSpec::declared("x", None);
    spec.layers = vec![(l.clone(), Compression::Gzip)];
    let desc = oci.image(&spec);
    let gz = Compression::Gzip.compress(&l);
    let cut = oci.blob(Compression::Gzip.media_type(), &gz[..gz.len() / 2]);
    let desc = oci.rewrite(&desc, |m| m["layers"][0] = cut);
    oci.add(desc);
    let r = run(&t, &["flatten", "--confirm-flatten", "image", "out"], 1);
    assert!(r.stderr().contains("cannot be read to its end"), "{}", r.stderr());
    assert!(!t.join("out").exists());
}

/// Layers shared by two images are written once, and a device dropped in
/// a shared base does not leak into an image where it was replaced.
#[test]
fn shared_layers_are_written_once() {
    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let base = layer(&[dir("dev/"), char_device("dev/console", 5, 1), file("etc/a", b"a")]);
    let link = layer(&[hardlink("dev/tty", "dev/console")]);
    let mut one = ImageSpec::declared("one", None);
    one.layers = vec![(base.clone(), Compression::Gzip), (link.clone(), Compression::Gzip)];
    let mut two = ImageSpec::declared("two", None);
    let replaced = layer(&[file("dev/console", b"c")]);
    two.layers = vec![(base, Compression::Gzip), (replaced, Compression::Gzip), (link, Compression::Gzip)];
    oci.add_image(&one);
    oci.add_image(&two);
    let doc = run(&t, &["flatten", "--confirm-flatten", "--format", "json", "image", "out"], 0).json();
    let imgs = doc["images"].as_array().unwrap();
    assert_eq!(imgs[0]["layers"][0]["outputDigest"], imgs[1]["layers"][0]["outputDigest"]);
    assert_eq!(imgs[0]["total"]["hardlinksDropped"]["count"], 1);
    assert_eq!(imgs[1]["total"]["hardlinksDropped"]["count"], 0);
    assert_ne!(imgs[0]["layers"][1]["outputDigest"], imgs[1]["layers"][2]["outputDigest"]);
    assert_validates_clean(&t, "out");
}

/// Two layers that differ only in their owners, each with a hardlink to a
/// device a lower layer holds: flattened side by side on the guess that
/// nothing below was dropped, both give the same wrong bytes; flattened
/// again knowing it, both give the same right ones. The wrong blob is
/// removed once, and the run succeeds.
#[test]
fn wrong_guesses_with_the_same_bytes_are_removed_once() {
    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let mut spec = ImageSpec::declared("same", None);
    let upper = |uid| layer(&[hardlink("dev/d-link", "dev/d"), file("etc/a", b"a\n").owner(uid, uid)]);
    spec.layers = vec![
        (layer(&[dir("dev/"), char_device("dev/d", 1, 3)]), Compression::Gzip),
        (upper(1000), Compression::Gzip),
        (upper(2000), Compression::Gzip),
    ];
    oci.add_image(&spec);
    let doc = run(&t, &["flatten", "--confirm-flatten", "--format", "json", "image", "out"], 0).json();
    let layers = doc["images"][0]["layers"].as_array().unwrap();
    assert_eq!(layers[1]["outputDigest"], layers[2]["outputDigest"]);
    assert_eq!(doc["images"][0]["total"]["hardlinksDropped"]["count"], 2);
    // index.json, oci-layout, a config, a manifest and two layer blobs.
    let files = tree(&t.join("out"));
    assert_eq!(files.len(), 6, "{:?}", files.keys().collect::<Vec<_>>());
    assert_validates_clean(&t, "out");
}

/// Names exactly at and beyond the ustar limits, and a link target over
/// 100 bytes, round-trip through our validator, umoci and the tar crate.
#[test]
fn long_names_and_link_targets_survive() {
    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let exact = "x".repeat(100);
    let deep = format!("{}/{}", "d".repeat(150), "f".repeat(150));
    let specs: Vec<Spec> = vec![
        file(&exact, b"100"),
        file("p1", b"deep").pax("path", &deep),
        symlink("p2", "t").pax("path", "long-link").pax("linkpath", &deep),
        hardlink("p3", "h").pax("path", "hard-long").pax("linkpath", &deep),
    ];
    let mut spec = ImageSpec::declared("x", None);
    spec.layers = vec![(layer(&specs), Compression::Gzip)];
    oci.add_image(&spec);
    run(&t, &["flatten", "--confirm-flatten", "image", "out"], 0);
    assert_validates_clean(&t, "out");
    let entries = layer_entries(&t.join("out"), &first_manifest(&t.join("out")));
    let expected = vec![
        seen(&exact, '0', 0o644).data(b"100"),
        seen(&deep, '0', 0o644).data(b"deep"),
        seen("long-link", '2', 0o777).link(&deep),
        seen("hard-long", '1', 0o644).link(&deep),
    ];
    assert_eq!(entries[0], expected);
    t.tool("umoci", &["unpack", "--rootless", "--image", "out:x", "bundle"]);
    assert_eq!(fs::read(t.join("bundle/rootfs").join(&deep)).unwrap(), b"deep");
}
