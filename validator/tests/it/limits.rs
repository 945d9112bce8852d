//! Resource limits (spec CONSUMER-LIMITS): each is enforced, reported as
//! `limit-exceeded` naming the flag that raises it, and raised by that flag.

use crate::support;

use std::fs;

use support::{Compression, ImageSpec, OciDir, TestDir, tar_of};

fn rules(t: &TestDir, args: &[&str]) -> (i32, Vec<String>, serde_json::Value) {
    let mut all = vec!["validate", "--format", "json"];
    all.extend(args);
    all.push("image");
    let r = t.run(&all);
    let doc = r.json();
    let rules = doc["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap().to_string()).collect();
    (r.code(), rules, doc)
}

fn image(t: &TestDir, layer: Vec<u8>) -> OciDir {
    let mut dir = OciDir::create(t.join("image"));
    let mut spec = ImageSpec::declared("latest", Some("flattened"));
    spec.layers = vec![(layer, Compression::Gzip)];
    dir.add_image(&spec);
    dir
}

#[test]
fn decompression_bomb_is_reported_and_refused() {
    let t = TestDir::new();
    // 24 MiB of zeros gzip to a few KiB: far past 100-fold and the floor.
    image(&t, tar_of(&[("zeros", &vec![0u8; 24 << 20])], 0, 0));
    let (code, found, doc) = rules(&t, &[]);
    assert_eq!((code, found.clone()), (1, vec!["limit-exceeded".to_string()]), "{doc:#}");
    let message = doc["findings"][0]["message"].as_str().unwrap();
    assert!(message.contains("--max-ratio") && message.contains("decompression bomb"), "{message}");

    // Raised, the layer is read to its end and is clean.
    let (code, found, _) = rules(&t, &["--max-ratio", "100000"]);
    assert_eq!((code, found), (0, vec![]));

    let r = t.run(&["unpack", "image", "root"]);
    assert_eq!(r.code(), 1);
    assert!(r.stderr().contains("--max-ratio"), "{}", r.stderr());
    assert!(!t.join("root").exists(), "a refused bomb left a partial tree");

    let r = t.run(&["flatten", "image", "out"]);
    assert_eq!(r.code(), 1);
    assert!(r.stderr().contains("--max-ratio"), "{}", r.stderr());
    assert!(!t.join("out").exists());
}

#[test]
fn layer_size_limit() {
    let t = TestDir::new();
    image(&t, tar_of(&[("f", &vec![7u8; 64 << 10])], 0, 0));
    let (code, found, doc) = rules(&t, &["--max-layer-bytes", "4096"]);
    assert_eq!((code, found), (1, vec!["limit-exceeded".to_string()]));
    assert!(doc["findings"][0]["message"].as_str().unwrap().contains("--max-layer-bytes"));
}

#[test]
fn json_document_size_limit() {
    let t = TestDir::new();
    let dir = image(&t, tar_of(&[("f", b"x")], 0, 0));
    // A valid index.json padded to 5 MiB.
    let index = fs::read_to_string(dir.root.join("index.json")).unwrap();
    let padded = format!("{}{}", index, " ".repeat(5 << 20));
    fs::write(dir.root.join("index.json"), padded).unwrap();
    let (code, found, doc) = rules(&t, &[]);
    assert_eq!((code, found), (1, vec!["limit-exceeded".to_string()]));
    assert!(doc["findings"][0]["message"].as_str().unwrap().contains("--max-json-bytes"));
    let (code, found, _) = rules(&t, &["--max-json-bytes", "8000000"]);
    assert_eq!((code, found), (0, vec![]));
}

#[test]
fn entry_count_limit() {
    let t = TestDir::new();
    let names: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    image(&t, tar_of(&files, 0, 0));
    let (code, found, doc) = rules(&t, &["--max-entries", "10"]);
    assert_eq!((code, found), (1, vec!["limit-exceeded".to_string()]));
    assert!(doc["findings"][0]["message"].as_str().unwrap().contains("--max-entries"));
    let r = t.run(&["unpack", "--max-entries", "10", "image", "root"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(r.stderr().contains("--max-entries"));
}

#[test]
fn path_limits_reject_the_entry_only() {
    let t = TestDir::new();
    let deep = "d/".repeat(20) + "f";
    image(&t, tar_of(&[("ok", b"x"), (deep.as_str(), b"y")], 0, 0));
    let (code, found, doc) = rules(&t, &["--max-path-depth", "10"]);
    assert_eq!((code, found), (1, vec!["limit-exceeded".to_string()]));
    assert_eq!(doc["findings"][0]["examples"][0]["path"], deep.as_str());
    let r = t.run(&["unpack", "--max-path-depth", "10", "image", "root"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(r.stdout().contains("rejected entries: 1") && r.stdout().contains("--max-path-depth"), "{}", r.stdout());
    assert!(t.join("root/ok").exists());
    assert!(!t.join("root/d").exists());
}

#[test]
fn pax_value_and_index_depth_limits() {
    use support::layers::{file, layer};
    let t = TestDir::new();
    let long = "v".repeat(2000);
    image(&t, layer(&[file("tagged", b"x").pax("SCHILY.xattr.user.note", long.as_bytes())]));
    let (code, found, doc) = rules(&t, &["--max-pax-bytes", "1000"]);
    assert_eq!((code, found), (1, vec!["limit-exceeded".to_string()]));
    assert!(doc["findings"][0]["message"].as_str().unwrap().contains("--max-pax-bytes"));
    let (code, found, _) = rules(&t, &[]);
    assert_eq!((code, found), (0, vec![]));

    // The image sits in an index nested once below index.json: refused when
    // no nesting is allowed, accepted by default.
    let t = TestDir::new();
    let mut dir = OciDir::create(t.join("image"));
    let mut desc = dir.image(&ImageSpec::declared("x", Some("flattened")));
    desc.as_object_mut().unwrap().remove("annotations");
    let mut nested = dir.json_blob(
        "application/vnd.oci.image.index.v1+json",
        &serde_json::json!({"schemaVersion": 2, "manifests": [desc]}),
    );
    nested["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "latest"});
    dir.add(nested);
    let (code, found, doc) = rules(&t, &["--max-index-depth", "0"]);
    assert_eq!((code, found), (1, vec!["index-nesting".to_string()]), "{doc:#}");
    assert!(doc["findings"][0]["message"].as_str().unwrap().contains("--max-index-depth"));
    let (code, _, _) = rules(&t, &[]);
    assert_eq!(code, 0);
}
