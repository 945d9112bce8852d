//! `single-id inspect` on real layouts: what the layers record, what a
//! single-ID consumer would change, and the value it recommends. Human and
//! JSON output are snapshotted; JSON is checked against its schema.

use crate::support;

use serde_json::{Value, json};
use support::layers::{char_device, dir, file, hardlink, layer, symlink};
use support::{Compression, ImageSpec, OciDir, TestDir, schema};

/// Runs inspect in both formats, checks the exit status of each (never a
/// panic), the JSON against the schema, and snapshots both outputs.
fn check(t: &TestDir, name: &str, code: i32) -> Value {
    let h = t.run(&["inspect", "image"]);
    assert_eq!(h.code(), code, "human exit status; stderr: {}\n{}", h.stderr(), h.stdout());
    insta::assert_snapshot!(format!("{name}.human"), h.stdout());
    let j = t.run(&["inspect", "--format", "json", "image"]);
    assert_eq!(j.code(), code, "json exit status; stderr: {}", j.stderr());
    let doc = j.json();
    schema::assert_valid("inspect-report.schema.json", &doc);
    insta::assert_snapshot!(format!("{name}.json"), j.stdout());
    doc
}

fn image(name: &str, value: Option<&str>, layers: Vec<Vec<u8>>) -> ImageSpec {
    let mut s = ImageSpec::declared(name, value);
    s.layers = layers.into_iter().map(|l| (l, Compression::Gzip)).collect();
    s
}

/// Replaces the config of image `desc` with an edited copy.
fn edit_config(oci: &OciDir, desc: &Value, edit: impl FnOnce(&mut Value)) -> Value {
    let config = oci.rewrite(&oci.read(desc)["config"], edit);
    oci.rewrite(desc, |m| m["config"] = config)
}

#[test]
fn clean_flattened_image() {
    let t = TestDir::new();
    let base = layer(&[
        dir("bin/"),
        file("bin/busybox", b"\x7fELF").mode(0o755),
        symlink("bin/sh", "busybox"),
        hardlink("bin/ls", "bin/busybox"),
        dir("tmp/").mode(0o1777),
        file("etc/os-release", b"ID=test\n").pax("SCHILY.xattr.user.origin", "test"),
    ]);
    let top = layer(&[dir("etc/"), file("etc/.wh.motd", b""), file("etc/hostname", b"box\n")]);
    OciDir::create(t.join("image")).add_image(&image("latest", Some("flattened"), vec![base, top]));
    let doc = check(&t, "clean", 0);
    assert_eq!(doc["findings"], json!([]));
    let img = &doc["images"][0];
    assert_eq!(img["recommendation"]["value"], "flattened");
    assert_eq!(img["idFlattening"]["effective"], "flattened");
    assert_eq!(img["total"]["entries"], 9);
    assert_eq!(
        img["total"]["owners"],
        json!([{"uid": 0, "gid": 0, "count": 9, "examples": img["total"]["owners"][0]["examples"]}])
    );
    assert_eq!(img["total"]["hardlinks"], 1);
    assert_eq!(img["total"]["symlinks"], 1);
    assert_eq!(img["total"]["whiteouts"], 1);
    assert_eq!(img["total"]["userXattrs"], 1);
    assert_eq!(img["total"]["stickyDirs"]["count"], 1);
    assert_eq!(img["onUnpack"]["ownersReplaced"], 9);
    assert_eq!(img["onUnpack"]["distinctOwners"], 1);
    assert_eq!(img["onUnpack"]["setidCleared"]["count"], 0);
    assert_eq!(img["onUnpack"]["userLosesMeaning"], false);
    assert_eq!(img["layers"].as_array().unwrap().len(), 2);
    assert_eq!(img["layers"][1]["stats"]["entries"], 3);
}

#[test]
fn image_that_deserves_caution() {
    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let l = layer(&[
        dir("usr/"),
        dir("usr/bin/"),
        file("usr/bin/passwd", b"passwd").mode(0o4755),
        dir("dev/"),
        char_device("dev/null", 1, 3),
        dir("var/lib/db/").owner(999, 999).names("postgres", "postgres"),
        file("bin/ping", b"p").pax("SCHILY.xattr.security.capability", b"\x01\x00\x00\x02\x00\x20\x00\x00"),
        file("srv/shared", b"s").pax("SCHILY.acl.access", "user::rw-,group::r--,other::---"),
    ]);
    let desc = oci.image(&image("db", None, vec![l]));
    let desc = edit_config(&oci, &desc, |c| c["config"]["User"] = json!("postgres"));
    oci.add(desc);
    let doc = check(&t, "caution", 0);
    let img = &doc["images"][0];
    assert_eq!(img["idFlattening"]["effective"], "allowed");
    assert_eq!(img["configUser"], "postgres");
    let r = &img["recommendation"];
    assert_eq!(r["value"], "caution");
    let reason = r["reason"].as_str().unwrap();
    // Set-ID programs alone are no reason for caution (the spec's table of
    // typical images); the dedicated account is.
    assert!(!reason.contains("setuid"), "{reason}");
    assert!(reason.contains("config.User is \"postgres\""), "{reason}");
    let a = &r["assessment"];
    assert_eq!(a["uids"], json!([0, 999]));
    assert_eq!(a["gids"], json!([0, 999]));
    assert_eq!(a["badNames"], 1);
    assert_eq!(a["setid"], 1);
    assert_eq!(a["devices"], 1);
    assert_eq!(a["idXattrs"], 2);
    assert_eq!(a["configUser"], "postgres");
    let u = &img["onUnpack"];
    assert_eq!(u["distinctOwners"], 2);
    assert_eq!(u["namesIgnored"], 1);
    assert_eq!(u["setidCleared"]["count"], 1);
    assert_eq!(u["setidCleared"]["examples"][0]["path"], "usr/bin/passwd");
    assert_eq!(u["devicesSkipped"]["count"], 1);
    assert_eq!(u["capabilitiesDropped"]["count"], 1);
    assert_eq!(u["privilegedXattrsDropped"]["count"], 1);
    assert_eq!(u["userLosesMeaning"], true);
}

#[test]
fn image_whose_ids_matter_only_a_little() {
    let t = TestDir::new();
    let l = layer(&[
        dir("home/"),
        dir("home/alice/").owner(1000, 1000).names("alice", "alice"),
        file("home/alice/notes", b"n").owner(1000, 1000).names("alice", "alice"),
        char_device("dev/null", 1, 3),
    ]);
    OciDir::create(t.join("image")).add_image(&image("home", Some("allowed"), vec![l]));
    let r = t.run(&["inspect", "--format", "json", "image"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let doc = r.json();
    schema::assert_valid("inspect-report.schema.json", &doc);
    let rec = &doc["images"][0]["recommendation"];
    assert_eq!(rec["value"], "allowed");
    assert!(rec["reason"].as_str().unwrap().contains("2 UID(s) and 2 GID(s)"), "{}", rec["reason"]);
    let human = t.run(&["inspect", "image"]).stdout();
    assert!(human.contains("recommended id-flattening: allowed"), "{human}");
    assert!(human.contains("ignore the user/group names of 2 entries"), "{human}");
}

#[test]
fn image_with_an_unreadable_layer() {
    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let good = layer(&[dir("etc/"), file("etc/hostname", b"h")]);
    let big: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let broken = layer(&[dir("srv/"), file("srv/a", &big), file("srv/b", &big).mode(0o4755)]);
    let desc = oci.image(&image("latest", Some("flattened"), vec![good, broken.clone()]));
    // The second layer's blob is a gzip stream cut in half, with a correct
    // descriptor: the blob is intact, the stream is not.
    let gz = Compression::Gzip.compress(&broken);
    let cut = oci.blob(Compression::Gzip.media_type(), &gz[..gz.len() / 2]);
    let desc = oci.rewrite(&desc, |m| m["layers"][1] = cut);
    oci.add(desc);
    let r = t.run(&["inspect", "--format", "json", "image"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    let doc = r.json();
    schema::assert_valid("inspect-report.schema.json", &doc);
    let rules: Vec<&str> = doc["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["layer-unreadable"]);
    assert_eq!(doc["findings"][0]["location"]["layer"], 1);
    let img = &doc["images"][0];
    // What could not be read is not described as if it had been: the
    // setuid file past the cut must not leave a "flattened" recommendation
    // that claims to know every entry.
    assert!(img["layers"][1].get("stats").is_none(), "partial statistics of layer 1: {}", img["layers"][1]);
    let reason = img["recommendation"]["reason"].as_str().unwrap();
    assert!(reason.contains("only 1 of 2 layers could be read"), "{reason}");
    check(&t, "unreadable-layer", 1);
}

#[test]
fn image_with_a_missing_layer() {
    let t = TestDir::new();
    let mut oci = OciDir::create(t.join("image"));
    let desc = oci.add_image(&image("latest", Some("flattened"), vec![layer(&[file("a", b"a")])]));
    let digest = oci.read(&desc)["layers"][0]["digest"].as_str().unwrap().to_string();
    std::fs::remove_file(oci.blob_file(&digest)).unwrap();
    let r = t.run(&["inspect", "--format", "json", "image"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    let doc = r.json();
    schema::assert_valid("inspect-report.schema.json", &doc);
    assert_eq!(doc["findings"][0]["rule"], "blob-missing");
    let img = &doc["images"][0];
    assert!(img["layers"][0].get("stats").is_none());
    let reason = img["recommendation"]["reason"].as_str().unwrap();
    assert!(reason.contains("only 0 of 1 layers could be read"), "{reason}");
    let human = t.run(&["inspect", "image"]).stdout();
    assert!(human.contains(": could not be read"), "{human}");
    assert!(human.contains("error[blob-missing]"), "{human}");
}
