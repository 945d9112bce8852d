//! `single-id validate` on layouts whose layers are crafted tar streams:
//! clean layers with every legitimate extension, each producer rule of
//! `flattened` images alone, the OCI layer rules, broken streams, grouping
//! and escaping. Every JSON report is checked against its schema, and no
//! run may panic (the exit status is always 0, 1 or 2).

use crate::support;

use std::fs;

use serde_json::{Value, json};
use support::layers::{
    Spec, base256, block_device, char_device, dir, field, fifo, file, global, hardlink, layer, layer_without_end,
    symlink, typed,
};
use support::{Compression, ImageSpec, OciDir, TestDir, schema, sha256};

fn gz(specs: &[Spec]) -> (Vec<u8>, Compression) {
    (layer(specs), Compression::Gzip)
}

/// One image named `name` made of `layers`, declared `value` in the
/// manifest and the config Label.
fn spec(name: &str, value: Option<&str>, layers: Vec<(Vec<u8>, Compression)>) -> ImageSpec {
    let mut s = ImageSpec::declared(name, value);
    s.layers = layers;
    s
}

/// A layout at `image` holding one image `latest`.
fn single(t: &TestDir, value: Option<&str>, layers: Vec<(Vec<u8>, Compression)>) -> OciDir {
    let mut oci = OciDir::create(t.join("image"));
    oci.add_image(&spec("latest", value, layers));
    oci
}

/// Runs `single-id ARGS`, insisting that it did not panic.
fn run(t: &TestDir, args: &[&str]) -> support::Run {
    let r = t.run(args);
    assert!([0, 1, 2].contains(&r.code()), "{args:?} exited {} (a panic?); stderr:\n{}", r.code(), r.stderr());
    assert!(!r.stderr().contains("panicked"), "{args:?} panicked:\n{}", r.stderr());
    r
}

/// `validate --format json EXTRA... image`: exit status and the report,
/// checked against the schema.
fn validate(t: &TestDir, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["validate", "--format", "json"];
    args.extend(extra);
    args.push("image");
    let r = run(t, &args);
    let doc = r.json();
    schema::assert_valid("validate-report.schema.json", &doc);
    (r.code(), doc)
}

/// Both formats: exit status `code`, JSON valid, both snapshotted.
fn snapshot(t: &TestDir, name: &str, code: i32) -> Value {
    let h = run(t, &["validate", "image"]);
    assert_eq!(h.code(), code, "human exit status:\n{}", h.stdout());
    insta::assert_snapshot!(format!("{name}.human"), h.stdout());
    let j = run(t, &["validate", "--format", "json", "image"]);
    assert_eq!(j.code(), code, "json exit status");
    let doc = j.json();
    schema::assert_valid("validate-report.schema.json", &doc);
    insta::assert_snapshot!(format!("{name}.json"), j.stdout());
    doc
}

fn rules_of(doc: &Value) -> Vec<String> {
    doc["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap().to_string()).collect()
}

/// Validates and returns the rule ids and the report.
fn outcome(t: &TestDir) -> (i32, Vec<String>, Value) {
    let (code, doc) = validate(t, &[]);
    (code, rules_of(&doc), doc)
}

fn example_paths(finding: &Value) -> Vec<String> {
    finding["examples"]
        .as_array()
        .map(|a| a.iter().map(|e| e["path"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn messages(doc: &Value) -> Vec<String> {
    doc["findings"].as_array().unwrap().iter().map(|f| f["message"].as_str().unwrap().to_string()).collect()
}

/// Replaces the config of the image `desc` with an edited copy; returns
/// the new manifest descriptor.
fn edit_config(oci: &OciDir, desc: &Value, edit: impl FnOnce(&mut Value)) -> Value {
    let config = oci.rewrite(&oci.read(desc)["config"], edit);
    oci.rewrite(desc, |m| m["config"] = config)
}

/// Writes `bytes` as layer `i` of image `desc` (a correct descriptor for
/// whatever the bytes are), optionally with another media type.
fn replace_layer(oci: &OciDir, desc: &Value, i: usize, bytes: &[u8], media_type: Option<&str>) -> Value {
    let old = oci.read(desc)["layers"][i].clone();
    let mt = media_type.unwrap_or_else(|| old["mediaType"].as_str().unwrap());
    let new = oci.blob(mt, bytes);
    oci.rewrite(desc, |m| m["layers"][i] = new)
}

fn layer_blob(oci: &OciDir, desc: &Value, i: usize) -> Vec<u8> {
    fs::read(oci.blob_file(oci.read(desc)["layers"][i]["digest"].as_str().unwrap())).unwrap()
}

// ---------------------------------------------------------------------------
// Clean images

#[test]
fn clean_flattened_image_with_every_legitimate_extension() {
    let t = TestDir::new();
    let long = format!("usr/share/doc/{}/copyright", "a-package-with-a-very-long-name".repeat(4));
    let base = layer(&[
        dir("./"),
        dir("bin/"),
        dir("etc/"),
        dir("run/"),
        dir("tmp/").mode(0o1777),
        file("etc/hostname", b"clean\n").names("root", "root"),
        // PAX records that agree with the header, and an unprivileged xattr.
        file("etc/os-release", b"ID=test\n")
            .pax("uid", "0")
            .pax("gid", "0")
            .pax("uname", "root")
            .pax("gname", "root")
            .pax("mtime", "1700000000.25")
            .pax("SCHILY.xattr.user.foo", "bar"),
        // A name longer than the header holds, through PAX `path`.
        file("usr/share/doc/truncated", b"license\n").pax("path", &long),
        // GNU header with base-256 encodings of ordinary numbers.
        file("bin/busybox", b"\x7fELF")
            .mode(0o755)
            .gnu()
            .patch(field::UID, &base256(0, 8))
            .patch(field::GID, &base256(0, 8))
            .patch(field::MTIME, &base256(1_700_000_000, 12)),
        symlink("bin/sh", "busybox"),
        hardlink("bin/ls", "bin/busybox"),
        fifo("run/initctl"),
    ]);
    let upper = layer(&[
        dir("bin/"),
        // A hardlink to an object of the layer below.
        hardlink("bin/cat", "/bin/busybox"),
        // Whiteout and replacement of the same name in one layer.
        file("etc/.wh.hostname", b""),
        file("etc/hostname", b"replaced\n"),
        dir("var/"),
        dir("var/cache/"),
        file("var/cache/.wh..wh..opq", b""),
        file("var/cache/new", b"x"),
    ]);
    let top = layer(&[
        global(&[("comment", b"made by a test")]),
        dir("srv/"),
        // A PAX size that agrees with the header.
        file("srv/data", b"data").pax("size", "4"),
    ]);
    single(
        &t,
        Some("flattened"),
        vec![(base, Compression::Gzip), (upper, Compression::Zstd), (top, Compression::None)],
    );
    let doc = snapshot(&t, "clean", 0);
    assert_eq!(rules_of(&doc), Vec::<String>::new());
    assert_eq!(doc["images"][0]["idFlattening"]["effective"], "flattened");
    assert_eq!(run(&t, &["validate", "--strict", "image"]).code(), 0);
}

// ---------------------------------------------------------------------------
// Producer rules of flattened images, each alone

#[test]
fn flattened_two_uids_across_layers() {
    let t = TestDir::new();
    let base = gz(&[dir("etc/"), file("etc/a", b"a"), file("etc/b", b"b"), dir("srv/")]);
    let app = gz(&[file("srv/app", b"app").owner(1000, 1000), file("srv/conf", b"c").owner(1000, 1000)]);
    single(&t, Some("flattened"), vec![base, app]);
    let doc = snapshot(&t, "single-id", 1);
    assert_eq!(rules_of(&doc), ["flattened-single-id"]);
    let f = &doc["findings"][0];
    // Four entries are 0:0, two are 1000:1000: the two are the odd ones.
    assert_eq!(f["count"], 2);
    assert!(f["message"].as_str().unwrap().contains("2 UIDs (0, 1000)"), "{f}");
    let paths = example_paths(f);
    assert!(!paths.is_empty());
    for p in &paths {
        assert!(["srv/app", "srv/conf"].contains(&p.as_str()), "example {p} is not one of the minority entries");
    }
    assert_eq!(f["location"]["path"], "srv/app");
}

/// A finding that stands for N entries lists at most N examples, each a
/// different entry (the uid and gid of one entry are one occurrence).
#[test]
fn flattened_single_id_examples_do_not_outnumber_entries() {
    let t = TestDir::new();
    let base = gz(&[dir("etc/"), file("etc/a", b"a"), file("etc/b", b"b"), dir("srv/")]);
    let app = gz(&[file("srv/app", b"app").owner(1000, 1000), file("srv/conf", b"c").owner(1000, 1000)]);
    single(&t, Some("flattened"), vec![base, app]);
    let (_, doc) = validate(&t, &[]);
    let f = &doc["findings"][0];
    let paths = example_paths(f);
    let mut distinct = paths.clone();
    distinct.sort();
    distinct.dedup();
    assert!(
        paths.len() as u64 <= f["count"].as_u64().unwrap() && distinct.len() == paths.len(),
        "count {} but examples {paths:?}",
        f["count"]
    );
}

#[test]
fn flattened_single_non_root_owner() {
    let t = TestDir::new();
    single(&t, Some("flattened"), vec![gz(&[dir("home/").owner(1000, 1000), file("home/x", b"x").owner(1000, 1000)])]);
    let (code, rules, doc) = outcome(&t);
    assert_eq!(rules, ["flattened-root-ids"]);
    assert_eq!(code, 0, "a SHOULD is a warning");
    assert!(messages(&doc)[0].contains("every entry is 1000:1000"));
    assert_eq!(doc["findings"][0]["severity"], "warning");
}

#[test]
fn flattened_user_names_in_header_and_pax() {
    let t = TestDir::new();
    single(
        &t,
        Some("flattened"),
        vec![gz(&[
            dir("home/").names("root", ""),
            file("home/a", b"a").names("alice", ""),
            file("home/b", b"b").pax("uname", "alice"),
            file("home/c", b"c").pax("gname", "staff"),
        ])],
    );
    let (code, rules, doc) = outcome(&t);
    assert_eq!(code, 1);
    assert_eq!(rules, ["flattened-names", "flattened-names"]);
    let alice = &doc["findings"][0];
    assert_eq!(alice["message"], "entries name user \"alice\" and group \"\"; only \"\" and \"root\" are allowed");
    assert_eq!(alice["count"], 2);
    assert_eq!(example_paths(alice), ["home/a", "home/b"]);
    assert_eq!(
        doc["findings"][1]["message"],
        "entries name user \"\" and group \"staff\"; only \"\" and \"root\" are allowed"
    );
}

/// PRODUCER-NAMES binds the header and the PAX record alike; a header
/// name that PAX overrides still violates it, and the two disagree
/// (PRODUCER-PAX-CONSISTENT).
#[test]
fn flattened_header_name_hidden_by_pax_record() {
    let t = TestDir::new();
    single(&t, Some("flattened"), vec![gz(&[file("x", b"x").names("alice", "").pax("uname", "root")])]);
    let (_, mut rules, _) = outcome(&t);
    rules.sort();
    assert_eq!(rules, ["flattened-names", "layer-pax-mismatch"]);
}

#[test]
fn flattened_setuid_file_and_setgid_directory() {
    let t = TestDir::new();
    single(
        &t,
        Some("flattened"),
        vec![gz(&[
            dir("usr/"),
            dir("usr/bin/"),
            file("usr/bin/sudo", b"sudo").mode(0o4755),
            dir("var/mail/").mode(0o2775),
        ])],
    );
    let doc = snapshot(&t, "setid", 1);
    assert_eq!(rules_of(&doc), ["flattened-setid", "flattened-setid"]);
    assert_eq!(messages(&doc), ["entries have the setuid bit", "entries have the setgid bit"]);
    assert_eq!(example_paths(&doc["findings"][0]), ["usr/bin/sudo"]);
    assert_eq!(example_paths(&doc["findings"][1]), ["var/mail/"]);
    assert_eq!(doc["findings"][0]["location"]["layer"], 0);
}

#[test]
fn flattened_devices() {
    let t = TestDir::new();
    single(
        &t,
        Some("flattened"),
        vec![gz(&[dir("dev/"), char_device("dev/null", 1, 3), block_device("dev/sda", 8, 0), fifo("dev/fifo")])],
    );
    let (code, rules, doc) = outcome(&t);
    assert_eq!(code, 0, "a SHOULD NOT is a warning");
    assert_eq!(rules, ["flattened-devices"]);
    assert_eq!(doc["findings"][0]["count"], 2, "the FIFO is not a device");
    assert_eq!(example_paths(&doc["findings"][0]), ["dev/null", "dev/sda"]);
}

/// A `security.capability` v2 value granting CAP_NET_BIND_SERVICE.
const CAPABILITY: &[u8] = b"\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";

#[test]
fn flattened_id_bearing_xattrs() {
    let t = TestDir::new();
    single(
        &t,
        Some("flattened"),
        vec![gz(&[
            dir("bin/"),
            file("bin/ping", b"ping").pax("SCHILY.xattr.security.capability", CAPABILITY),
            file("bin/other", b"o").pax("LIBARCHIVE.xattr.security.capability", "AQAAAgAEAAA="),
            file("home", b"h").pax("SCHILY.xattr.user.rootlesscontainers", b"\x08\xe8\x07\x10\xe8\x07"),
            file("shared", b"s").pax("SCHILY.acl.access", "user::rw-,user:1000:rw-,group::r--,mask::rw-,other::r--"),
            file("plain", b"p").pax("SCHILY.xattr.user.foo", "bar"),
        ])],
    );
    let (code, rules, doc) = outcome(&t);
    // The owner record is a MUST NOT (PRODUCER-NO-OWNER-XATTRS), the others SHOULD NOTs.
    assert_eq!(code, 1);
    assert_eq!(rules, ["flattened-id-xattrs", "flattened-id-xattrs", "flattened-owner-xattrs"]);
    assert_eq!(
        messages(&doc),
        [
            "entries carry security.capability",
            "entries carry a POSIX ACL",
            "entries carry attributes that record owners or overlay state"
        ]
    );
    assert_eq!(example_paths(&doc["findings"][0]), ["bin/ping", "bin/other"]);
    assert_eq!(doc["findings"][0]["count"], 2);
}

/// Every `user.` attribute that records owners or overlay state for another
/// tool is kept out of a flattened image; other `user.` ones are fine.
#[test]
fn flattened_owner_and_overlay_xattrs() {
    let t = TestDir::new();
    single(
        &t,
        Some("flattened"),
        vec![gz(&[
            dir("d/"),
            file("d/a", b"a").pax("SCHILY.xattr.user.overlay.redirect", "/elsewhere"),
            file("d/b", b"b").pax("SCHILY.xattr.user.overlay.metacopy", ""),
            file("d/c", b"c").pax("SCHILY.xattr.user.containers.override_stat", "0:0:0755"),
            file("d/d", b"d").pax("SCHILY.xattr.user.fuseoverlayfs.override_stat", "0:0:0755"),
            file("d/e", b"e").pax("SCHILY.xattr.user.overlayish", "fine"),
        ])],
    );
    let (code, rules, doc) = outcome(&t);
    assert_eq!((code, rules), (1, vec!["flattened-owner-xattrs".to_string()]));
    assert_eq!(doc["findings"][0]["count"], 4);
    assert_eq!(example_paths(&doc["findings"][0]), ["d/a", "d/b", "d/c", "d/d"]);
}

/// xattr values are binary: a capability whose bytes include `\n` (here
/// CAP_DAC_OVERRIDE | CAP_FOWNER = 0x0a) is a well-formed PAX record, read
/// whole (0.1 used a tar crate that split PAX records at newlines and
/// left the rest of such an entry unchecked), and the capability is seen.
#[test]
fn binary_xattr_value_with_newline_is_read() {
    let t = TestDir::new();
    let cap = b"\x01\x00\x00\x02\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    single(
        &t,
        Some("flattened"),
        vec![gz(&[file("bin/tool", b"t").pax("SCHILY.xattr.security.capability", cap).pax("uname", "alice")])],
    );
    let (code, rules, doc) = outcome(&t);
    // Both records are read: the capability, and the name after it.
    assert_eq!(
        (code, rules),
        (1, vec!["flattened-names".to_string(), "flattened-id-xattrs".to_string()]),
        "{:#}",
        doc["findings"]
    );
}

#[test]
fn flattened_config_user() {
    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let desc = oci.image(&spec("latest", Some("flattened"), vec![gz(&[file("x", b"x")])]));
    let desc = edit_config(&oci, &desc, |c| c["config"]["User"] = json!("1000"));
    oci.add(desc);
    let (code, rules, doc) = outcome(&t);
    // A SHOULD since 0.2: a warning.
    assert_eq!(code, 0);
    assert_eq!(rules, ["flattened-config-user"]);
    assert_eq!(doc["findings"][0]["severity"], "warning");
    assert_eq!(doc["findings"][0]["location"]["pointer"], "/config/User");
}

#[test]
fn flattened_config_user_root_spellings_are_accepted() {
    for user in [
        json!(""),
        json!("root"),
        json!("0"),
        json!("0:0"),
        json!("root:root"),
        json!("0:root"),
        json!("root:0"),
        Value::Null,
    ] {
        let t = TestDir::new();
        let mut oci = OciDir::create(t.join("image"));
        let desc = oci.image(&spec("latest", Some("flattened"), vec![gz(&[file("x", b"x")])]));
        let desc = edit_config(&oci, &desc, |c| match &user {
            Value::Null => {
                c["config"].as_object_mut().unwrap().remove("User");
            }
            u => c["config"]["User"] = u.clone(),
        });
        oci.add(desc);
        assert_eq!(outcome(&t).1, Vec::<String>::new(), "config.User {user}");
    }
}

/// What breaks `flattened` is no fault in an `allowed` image. A non-root
/// `config.User` and a service account's private data directory make it a
/// `caution` candidate (a note); set-ID programs and set-group-ID
/// directories, as every distribution base system has, do not (the spec's
/// table of typical images); an empty private directory (apt's download
/// area) does not either; a `caution` image gets nothing at all.
#[test]
fn allowed_and_caution_images_get_only_caution_candidate() {
    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let setid = gz(&[file("usr/bin/sudo", b"s").mode(0o4755), dir("var/mail/").mode(0o2775)]);
    let rest = gz(&[
        file("a", b"a").owner(1000, 1000).names("alice", "alice"),
        file("b", b"b").owner(2000, 3000),
        char_device("dev/null", 1, 3),
        file("bin/ping", b"p").pax("SCHILY.xattr.security.capability", CAPABILITY),
        file("home", b"h").pax("SCHILY.xattr.user.rootlesscontainers", "x"),
        file("shared", b"s").pax("SCHILY.acl.access", "user::rw-"),
    ]);
    let plain = gz(&[file("x", b"x")]);
    oci.add_image(&spec("setid", Some("allowed"), vec![setid.clone()]));
    let user = oci.image(&spec("user", Some("allowed"), vec![plain]));
    let user = edit_config(&oci, &user, |c| c["config"]["User"] = json!("postgres"));
    oci.add(user.clone());
    oci.add_image(&spec("rest", Some("allowed"), vec![rest.clone()]));
    oci.add_image(&spec("undeclared-setid", None, vec![setid.clone()]));
    let service = gz(&[
        dir("var/lib/svc/").mode(0o700).owner(999, 999),
        file("var/lib/svc/data", b"d").mode(0o600).owner(999, 999),
        dir("var/cache/apt/archives/partial/").mode(0o700).owner(42, 0),
    ]);
    oci.add_image(&spec("service", Some("allowed"), vec![service]));
    let apt = gz(&[dir("var/cache/apt/archives/partial/").mode(0o700).owner(42, 0), file("x", b"x")]);
    oci.add_image(&spec("apt", Some("allowed"), vec![apt]));
    oci.add_image(&spec("caution", Some("caution"), vec![setid, rest]));
    let caution_user =
        edit_config(&oci, &oci.image(&spec("caution-user", Some("caution"), vec![gz(&[file("y", b"y")])])), |c| {
            c["config"]["User"] = json!("1000")
        });
    oci.add(caution_user);
    let (code, rules, doc) = outcome(&t);
    assert_eq!(code, 0);
    assert_eq!(rules, ["caution-candidate", "annotation-absent", "caution-candidate"]);
    let images: Vec<&str> =
        doc["findings"].as_array().unwrap().iter().map(|f| f["location"]["image"].as_str().unwrap()).collect();
    assert_eq!(images, ["user", "undeclared-setid", "service"]);
    let m = messages(&doc);
    assert!(m[0].contains("config.User is \"postgres\""), "{}", m[0]);
    assert!(m[2].contains("var/lib/svc/ (owned by UID 999, which owns var/lib/svc/data inside it)"), "{}", m[2]);
}

// ---------------------------------------------------------------------------
// OCI layer rules, for every image

#[test]
fn path_escape_in_names_and_hardlink_targets() {
    let t = TestDir::new();
    single(
        &t,
        Some("allowed"),
        vec![gz(&[
            file("../evil", b"x"),
            file("a/../../evil", b"x"),
            file("harmless", b"x").pax("path", "../../via-pax"),
            file("etc/passwd", b"root"),
            hardlink("link", "../etc/passwd"),
            // Climbs and comes back: stays inside.
            file("b/../c", b"fine"),
        ])],
    );
    let doc = snapshot(&t, "path-escape", 1);
    assert_eq!(rules_of(&doc), ["layer-path-escape", "layer-path-escape"]);
    let names = &doc["findings"][0];
    assert_eq!(names["message"], "entry name climbs above the root");
    assert_eq!(names["count"], 3);
    assert_eq!(example_paths(names), ["../evil", "a/../../evil", "../../via-pax"]);
    let link = &doc["findings"][1];
    assert_eq!(link["message"], "hardlink target climbs above the root");
    assert_eq!(link["examples"][0]["path"], "link");
    assert_eq!(link["examples"][0]["detail"], "target ../etc/passwd");
}

#[test]
fn absolute_names_are_a_warning() {
    let t = TestDir::new();
    single(
        &t,
        Some("allowed"),
        vec![gz(&[dir("/etc/"), file("/etc/passwd", b"root"), hardlink("etc/p2", "/etc/passwd")])],
    );
    let (code, rules, doc) = outcome(&t);
    assert_eq!(code, 0);
    assert_eq!(rules, ["layer-path-absolute"]);
    assert_eq!(doc["findings"][0]["count"], 2);
    assert_eq!(doc["findings"][0]["severity"], "warning");
    assert_eq!(run(&t, &["validate", "--strict", "image"]).code(), 1);
}

#[test]
fn duplicate_paths_after_normalisation() {
    let t = TestDir::new();
    single(
        &t,
        Some("allowed"),
        vec![gz(&[
            dir("etc/"),
            file("etc/passwd", b"one"),
            file("./etc//passwd", b"two"),
            dir("etc"),
            // A whiteout and the name it removes are different paths.
            file(".wh.opt", b""),
            dir("opt/"),
        ])],
    );
    let (code, rules, doc) = outcome(&t);
    assert_eq!(code, 1);
    assert_eq!(rules, ["layer-duplicate"]);
    assert_eq!(doc["findings"][0]["count"], 2);
    assert_eq!(example_paths(&doc["findings"][0]), ["./etc//passwd", "etc"]);
}

#[test]
fn hardlinks_within_a_layer_and_across_layers() {
    let t = TestDir::new();
    let base =
        gz(&[dir("etc/"), file("etc/passwd", b"root"), file("etc/group", b"root"), dir("bin/"), file("bin/sh", b"sh")]);
    let middle = gz(&[
        dir("etc/"),
        file("etc/.wh.passwd", b""),
        // Removed by this very layer's whiteout.
        hardlink("etc/passwd-", "etc/passwd"),
        // Present below: fine.
        hardlink("etc/group-", "etc/group"),
        hardlink("bin/sh2", "bin/sh"),
    ]);
    let top = gz(&[
        dir("bin/"),
        file("bin/.wh..wh..opq", b""),
        // Hidden by this layer's opaque whiteout.
        hardlink("bin/sh3", "bin/sh"),
        // A directory of a lower layer.
        hardlink("etc-link", "etc"),
        dir("d/"),
        hardlink("d-link", "d"),
        hardlink("self", "self"),
        hardlink("dangling", "nowhere"),
        // Created only later in the layer: not there when the link is reached.
        hardlink("early", "late"),
        file("late", b"late"),
    ]);
    single(&t, Some("allowed"), vec![base, middle, top]);
    let doc = snapshot(&t, "hardlinks", 1);
    assert!(rules_of(&doc).iter().all(|r| r == "layer-hardlink"), "{:?}", rules_of(&doc));
    let mut found: Vec<(u64, String, String)> = Vec::new();
    for f in doc["findings"].as_array().unwrap() {
        let layer = f["location"]["layer"].as_u64().unwrap();
        let message = f["message"].as_str().unwrap().to_string();
        if f["examples"].is_array() {
            for p in example_paths(f) {
                found.push((layer, message.clone(), p));
            }
        } else {
            found.push((layer, message, f["location"]["path"].as_str().unwrap().to_string()));
        }
    }
    found.sort();
    let missing = "hardlink target is not in this layer or any lower layer";
    let expected: Vec<(u64, String, String)> = vec![
        (1, missing.into(), "etc/passwd-".into()),
        (2, "hardlink names itself as its target".into(), "self".into()),
        (2, "hardlink targets a directory".into(), "d-link".into()),
        (2, "hardlink targets a directory".into(), "etc-link".into()),
        (2, missing.into(), "bin/sh3".into()),
        (2, missing.into(), "dangling".into()),
        (2, missing.into(), "early".into()),
    ];
    let mut expected = expected;
    expected.sort();
    assert_eq!(found, expected);
}

#[test]
fn invalid_whiteout_names() {
    let t = TestDir::new();
    single(
        &t,
        Some("allowed"),
        vec![gz(&[
            dir("a/"),
            file("a/.wh.", b""),
            file("a/.wh..wh.foo", b""),
            file("a/.wh..", b""),
            file("a/.wh...", b""),
            file("a/.wh.b/c", b"c"),
            // Valid ones.
            file("a/.wh.gone", b""),
            file("a/.wh..wh..opq", b""),
        ])],
    );
    let (code, rules, doc) = outcome(&t);
    assert_eq!(code, 1);
    assert_eq!(rules, ["layer-whiteout", "layer-whiteout"]);
    assert_eq!(messages(&doc), ["invalid whiteout name", "a `.wh.` name used as a directory"]);
    assert_eq!(example_paths(&doc["findings"][0]), ["a/.wh.", "a/.wh..wh.foo", "a/.wh..", "a/.wh..."]);
    let details: Vec<&str> =
        doc["findings"][0]["examples"].as_array().unwrap().iter().map(|e| e["detail"].as_str().unwrap()).collect();
    assert!(details[0].contains("bare"), "{details:?}");
    assert!(details[3].contains("`.` or `..`"), "{details:?}");
    assert_eq!(example_paths(&doc["findings"][1]), ["a/.wh.b/c"]);
}

#[test]
fn whiteouts_with_content_or_another_type() {
    let t = TestDir::new();
    single(
        &t,
        Some("allowed"),
        vec![gz(&[
            dir("a/"),
            file("a/.wh.x", b"not empty"),
            dir("a/.wh..wh..opq"),
            symlink("a/.wh.y", "target"),
            file("a/.wh.z", b"").mode(0o000),
        ])],
    );
    let (code, rules, doc) = outcome(&t);
    assert_eq!(code, 0, "a warning");
    assert_eq!(rules, ["layer-whiteout-content"]);
    let f = &doc["findings"][0];
    assert_eq!(f["count"], 3, "the mode of an empty file does not matter");
    let details: Vec<&str> = f["examples"].as_array().unwrap().iter().map(|e| e["detail"].as_str().unwrap()).collect();
    assert_eq!(details, ["regular file, 9 bytes", "directory, 0 bytes", "symbolic link, 0 bytes"]);
}

#[test]
fn ids_beyond_32_bits() {
    let t = TestDir::new();
    single(
        &t,
        Some("allowed"),
        vec![gz(&[
            file("pax", b"x").pax("uid", "5000000000"),
            file("gnu", b"x").gnu().owner(0, 4_294_967_295),
            // The largest ID Linux can give a file.
            file("edge", b"x").owner(4_294_967_294, 4_294_967_294),
        ])],
    );
    let (code, rules, doc) = outcome(&t);
    // GNU tar ignores a PAX uid past 32 bits where Go and bsdtar take it:
    // readers disagree about the owner (an error; unpack goes on, as the
    // owner is what a single-ID consumer replaces anyway).
    assert_eq!(code, 1);
    let mut rules = rules;
    rules.sort();
    assert_eq!(rules, ["layer-ambiguous", "layer-id-range"]);
    let findings = doc["findings"].as_array().unwrap();
    let ambiguous = findings.iter().find(|f| f["rule"] == "layer-ambiguous").unwrap();
    assert_eq!(ambiguous["count"], 1);
    assert_eq!(ambiguous["examples"][0]["path"], "pax");
    let f = findings.iter().find(|f| f["rule"] == "layer-id-range").unwrap();
    assert_eq!(f["count"], 2);
    assert_eq!(f["examples"][0], json!({"path": "pax", "detail": "5000000000:0"}));
    assert_eq!(f["examples"][1], json!({"path": "gnu", "detail": "0:4294967295"}));
}

/// A base-256 field whose sign bit is set holds a negative number, which
/// no ID, size or time can be.
#[test]
fn negative_base256_uid_is_unreadable_field() {
    let t = TestDir::new();
    single(&t, Some("allowed"), vec![gz(&[file("neg", b"x").gnu().patch(field::UID, &base256(-1, 8))])]);
    let (_, rules, doc) = outcome(&t);
    assert_eq!(rules, ["layer-header-field"], "{:#}", doc["findings"]);
}

#[test]
fn pax_size_disagreeing_with_the_header() {
    let t = TestDir::new();
    // Header says 5, PAX says 10; both round up to one block, so the
    // stream stays in step whichever a reader believes.
    single(
        &t,
        Some("allowed"),
        vec![gz(&[
            file("a", b"0123456789").pax("size", "10").size_field(5),
            // A zero header size is what PAX-aware writers put: fine.
            file("b", b"0123456789").pax("size", "10").size_field(0),
            file("c", b"after"),
        ])],
    );
    let (code, rules, doc) = outcome(&t);
    assert_eq!(code, 0);
    assert_eq!(rules, ["layer-pax-mismatch"]);
    let f = &doc["findings"][0];
    assert_eq!(f["message"], "a PAX record disagrees with the header: size");
    assert_eq!(f["examples"][0]["path"], "a");
    assert_eq!(f["examples"][0]["detail"], "PAX size 10 disagrees with the header's 5");
}

/// PRODUCER-PAX-CONSISTENT covers every field PAX overrides, not only size.
#[test]
fn garbled_octal_header_fields() {
    let t = TestDir::new();
    single(
        &t,
        Some("allowed"),
        vec![gz(&[
            file("bad-mode", b"x").patch(field::MODE, b"07x5\0\0\0\0"),
            file("bad-uid", b"x").patch(field::UID, b"12z4567\0"),
            file("good", b"x"),
        ])],
    );
    let doc = snapshot(&t, "header-fields", 1);
    assert_eq!(rules_of(&doc), ["layer-header-field", "layer-header-field"]);
    assert_eq!(messages(&doc), ["unreadable header field: mode", "unreadable header field: uid"]);
    assert_eq!(example_paths(&doc["findings"][0]), ["bad-mode"]);
    assert_eq!(example_paths(&doc["findings"][1]), ["bad-uid"]);
}

#[test]
fn garbled_pax_uid() {
    let t = TestDir::new();
    single(&t, Some("allowed"), vec![gz(&[file("a", b"a").pax("uid", "12abc")])]);
    let (code, rules, doc) = outcome(&t);
    assert_eq!(code, 1);
    assert_eq!(rules, ["layer-header-field"]);
    let detail = doc["findings"][0]["examples"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("12abc"), "{detail}");
}

#[test]
fn pax_global_header_setting_entry_fields() {
    let t = TestDir::new();
    single(
        &t,
        Some("allowed"),
        vec![gz(&[global(&[("uid", b"1000"), ("comment", b"x")]), file("a", b"a"), global(&[("comment", b"fine")])])],
    );
    let (code, rules, doc) = outcome(&t);
    // GNU tar applies a global uid to the entries after it, Go and bsdtar
    // do not: the readers see different owners (PRODUCER-UNAMBIGUOUS).
    assert_eq!(code, 1);
    assert_eq!(rules, ["layer-ambiguous"]);
    assert_eq!(doc["findings"][0]["count"], 1);
    let detail = doc["findings"][0]["examples"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("sets uid"), "{detail}");
}

// ---------------------------------------------------------------------------
// Broken streams

/// A layout with one image whose single layer blob is `bytes` (described
/// by a correct descriptor), and whose diff_id is that of `tar`.
fn with_blob(t: &TestDir, tar: &[u8], c: Compression, bytes: &[u8]) {
    let mut oci = OciDir::create(t.join("image"));
    let desc = oci.image(&spec("latest", Some("allowed"), vec![(tar.to_vec(), c)]));
    let desc = replace_layer(&oci, &desc, 0, bytes, None);
    oci.add(desc);
}

fn sample() -> Vec<u8> {
    let big: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    layer(&[dir("srv/"), file("srv/a", &big), file("srv/b", &big), file("srv/c", b"c")])
}

#[test]
fn gzip_truncated_in_the_middle() {
    let t = TestDir::new();
    let tar = sample();
    let gz = Compression::Gzip.compress(&tar);
    with_blob(&t, &tar, Compression::Gzip, &gz[..gz.len() / 2]);
    let doc = snapshot(&t, "gzip-truncated", 1);
    assert_eq!(rules_of(&doc), ["layer-unreadable"]);
}

#[test]
fn zstd_with_a_flipped_byte() {
    let tar = sample();
    let z = Compression::Zstd.compress(&tar);
    // In the compressed data: the frame has no checksum, so the decoder
    // yields other bytes without complaint, and the diff_id catches it.
    let t = TestDir::new();
    let mut data = z.clone();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    with_blob(&t, &tar, Compression::Zstd, &data);
    let (code, rules, doc) = outcome(&t);
    assert_eq!(code, 1);
    assert_eq!(rules, ["diff-id"]);
    assert_eq!(doc["findings"][0]["location"]["pointer"], "/rootfs/diff_ids/0");
    // In the frame's magic number: the decoder refuses.
    let t = TestDir::new();
    let mut magic = z;
    magic[0] ^= 0xff;
    with_blob(&t, &tar, Compression::Zstd, &magic);
    let (code, rules, _) = outcome(&t);
    assert_eq!(code, 1);
    assert_eq!(rules, ["layer-unreadable"]);
}

#[test]
fn tar_truncated_mid_entry() {
    let t = TestDir::new();
    let tar = sample();
    let cut = &tar[..512 * 3 + 100];
    single(&t, Some("allowed"), vec![(cut.to_vec(), Compression::None)]);
    let (code, rules, doc) = outcome(&t);
    assert_eq!(code, 1);
    assert_eq!(rules, ["layer-unreadable"]);
    assert!(messages(&doc)[0].contains("after entry srv/"), "{}", messages(&doc)[0]);
}

#[test]
fn garbage_after_end_of_archive() {
    let t = TestDir::new();
    let mut tar = layer(&[file("a", b"a")]);
    tar.extend_from_slice(&[0xa5; 512]);
    single(&t, Some("allowed"), vec![(tar.clone(), Compression::None)]);
    assert_eq!(outcome(&t).1, ["layer-trailing-data"]);
    // Zero padding to a record boundary, as tar(1) writes, is fine.
    let t = TestDir::new();
    let mut padded = layer(&[file("a", b"a")]);
    padded.resize(10240, 0);
    single(&t, Some("allowed"), vec![(padded, Compression::Gzip)]);
    assert_eq!(outcome(&t).1, Vec::<String>::new());
}

#[test]
fn stream_without_end_of_archive_marker() {
    let t = TestDir::new();
    single(
        &t,
        Some("allowed"),
        vec![gz(&[]), (layer_without_end(&[dir("srv/"), file("srv/a", b"a")]), Compression::Gzip)],
    );
    let (code, rules, doc) = outcome(&t);
    assert_eq!(code, 0);
    assert_eq!(rules, ["layer-end-marker"]);
    assert_eq!(doc["findings"][0]["location"]["layer"], 1);
}

/// POSIX ends an archive with two zero blocks; one alone is a stream that
/// stopped early (GNU tar warns about "a lone zero block").
#[test]
fn lone_zero_block_is_no_end_marker() {
    let t = TestDir::new();
    let mut tar = layer_without_end(&[file("a", b"a")]);
    tar.extend_from_slice(&[0; 512]);
    single(&t, Some("allowed"), vec![(tar, Compression::Gzip)]);
    assert_eq!(outcome(&t).1, ["layer-end-marker"]);
}

#[test]
fn wrong_diff_id_and_wrong_count() {
    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let layers = vec![gz(&[file("a", b"a")]), gz(&[file("b", b"b")])];
    let desc = oci.image(&spec("latest", Some("allowed"), layers.clone()));
    let wrong = sha256(b"something else");
    let desc = edit_config(&oci, &desc, |c| c["rootfs"]["diff_ids"][1] = json!(wrong));
    oci.add(desc);
    let (code, rules, doc) = outcome(&t);
    assert_eq!(code, 1);
    assert_eq!(rules, ["diff-id"]);
    assert_eq!(doc["findings"][0]["location"]["pointer"], "/rootfs/diff_ids/1");

    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let desc = oci.image(&spec("latest", Some("allowed"), layers));
    let desc =
        edit_config(&oci, &desc, |c| c["rootfs"]["diff_ids"].as_array_mut().unwrap().push(json!(sha256(b"extra"))));
    oci.add(desc);
    let (code, rules, doc) = outcome(&t);
    assert_eq!(code, 1);
    assert_eq!(rules, ["diff-id"]);
    assert_eq!(messages(&doc)[0], "config lists 3 diff_ids but the manifest has 2 layers");
}

#[test]
fn unknown_layer_media_type_is_verified_not_read() {
    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let desc = oci.image(&spec("latest", Some("flattened"), vec![gz(&[file("x", b"x").mode(0o4755)])]));
    let bytes = layer_blob(&oci, &desc, 0);
    let odd = "application/vnd.example.layer.v1.tar+lz4";
    let desc = replace_layer(&oci, &desc, 0, &bytes, Some(odd));
    oci.add(desc.clone());
    let (code, rules, _) = outcome(&t);
    assert_eq!(code, 0, "unread, so the setuid file inside is not seen");
    assert_eq!(rules, ["layer-media-type"]);
    // Still verified: a blob that does not match its digest is an error.
    let digest = oci.read(&desc)["layers"][0]["digest"].as_str().unwrap().to_string();
    let mut corrupt = bytes.clone();
    corrupt[10] ^= 1;
    fs::write(oci.blob_file(&digest), corrupt).unwrap();
    let (code, rules, _) = outcome(&t);
    assert_eq!(code, 1);
    assert_eq!(rules, ["layer-media-type", "blob-digest"]);
}

#[test]
fn docker_layer_media_type_is_read() {
    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let desc = oci.image(&spec("latest", Some("flattened"), vec![gz(&[file("x", b"x").mode(0o4755)])]));
    let bytes = layer_blob(&oci, &desc, 0);
    let desc = replace_layer(&oci, &desc, 0, &bytes, Some("application/vnd.docker.image.rootfs.diff.tar.gzip"));
    oci.add(desc);
    // The setuid file inside is seen, so the layer was read.
    assert_eq!(outcome(&t).1, ["flattened-setid"]);
}

// ---------------------------------------------------------------------------
// Grouping and escaping

#[test]
fn many_offenders_make_one_grouped_finding() {
    let t = TestDir::new();
    let mut specs = vec![dir("bin/")];
    for i in 0..300 {
        specs.push(file(format!("bin/tool{i:03}"), b"x").mode(0o4755));
    }
    single(&t, Some("flattened"), vec![gz(&specs)]);
    let doc = snapshot(&t, "grouped", 1);
    assert_eq!(rules_of(&doc), ["flattened-setid"]);
    let f = &doc["findings"][0];
    assert_eq!(f["count"], 300);
    assert_eq!(example_paths(f), ["bin/tool000", "bin/tool001", "bin/tool002", "bin/tool003", "bin/tool004"]);
    let (_, doc) = validate(&t, &["--max-examples", "2"]);
    assert_eq!(rules_of(&doc), ["flattened-setid"]);
    assert_eq!(doc["findings"][0]["count"], 300);
    assert_eq!(example_paths(&doc["findings"][0]), ["bin/tool000", "bin/tool001"]);
    let human = run(&t, &["validate", "--max-examples", "2", "image"]).stdout();
    assert!(human.contains("300 entries, 2 shown:"), "{human}");
}

/// Hardlinks resolved against lower layers are grouped like every other
/// layer finding: one finding per layer and problem, with a count.
#[test]
fn many_dangling_hardlinks_make_one_grouped_finding() {
    let t = TestDir::new();
    let specs: Vec<Spec> = (0..300).map(|i| hardlink(format!("link{i:03}"), format!("missing{i:03}"))).collect();
    single(&t, Some("allowed"), vec![gz(&[file("base", b"b")]), gz(&specs)]);
    let (_, rules, doc) = outcome(&t);
    assert!(rules.iter().all(|r| r == "layer-hardlink"), "{rules:?}");
    assert_eq!(rules.len(), 1, "one finding per broken hardlink instead of one group");
    assert_eq!(doc["findings"][0]["count"], 300);
    assert_eq!(example_paths(&doc["findings"][0]).len(), 5);
}

#[test]
fn hostile_names_are_escaped() {
    let t = TestDir::new();
    let name: &[u8] = b"bad\xff\x1b[31m\x07red\\";
    single(&t, Some("flattened"), vec![gz(&[file(name, b"x").mode(0o4755)])]);
    let doc = snapshot(&t, "escaped", 1);
    let escaped = "bad\\xff\\x1b[31m\\x07red\\\\";
    assert_eq!(doc["findings"][0]["location"]["path"], escaped);
    assert_eq!(example_paths(&doc["findings"][0]), [escaped]);
    let human = run(&t, &["validate", "image"]);
    assert!(human.0.stdout.iter().all(|b| *b == b'\n' || (0x20..0x7f).contains(b)), "raw control bytes in output");
    assert!(human.stdout().contains(escaped), "{}", human.stdout());
}

/// No producer rule covers FIFOs: a flattened image may contain them. An
/// unknown typeflag is another matter since 0.2: GNU tar extracts it as a
/// regular file, Go hands it on as is (umoci refuses it), so readers see
/// different types (PRODUCER-UNAMBIGUOUS).
#[test]
fn fifo_is_no_finding_and_an_unknown_typeflag_is_ambiguous() {
    let t = TestDir::new();
    single(&t, Some("flattened"), vec![gz(&[fifo("run/fifo")])]);
    assert_eq!(outcome(&t).1, Vec::<String>::new());
    single(&t, Some("flattened"), vec![gz(&[fifo("run/fifo"), typed("odd", b'Z')])]);
    assert_eq!(outcome(&t).1, ["layer-ambiguous"]);
}
