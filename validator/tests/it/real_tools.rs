//! Images made by real third-party tools (umoci, skopeo), not by our own
//! test writer, so that validate is held to what the field produces.
//! These tools are required: a missing one fails the test (.ci/run installs them).

use crate::support;

use support::{KEY, TestDir, schema};

/// A one-layer image made by umoci, declared flattened in both places.
/// (unpack/repack, not `umoci insert`, whose 0.4.7 layers are truncated.)
fn umoci_image(t: &TestDir) {
    t.tool("umoci", &["init", "--layout", "img"]);
    t.tool("umoci", &["new", "--image", "img:latest"]);
    t.tool("umoci", &["unpack", "--rootless", "--image", "img:latest", "bundle"]);
    std::fs::create_dir_all(t.join("bundle/rootfs/etc")).unwrap();
    std::fs::write(t.join("bundle/rootfs/etc/hello"), "hello\n").unwrap();
    t.tool("umoci", &["repack", "--image", "img:latest", "bundle"]);
    let ann = format!("{KEY}=flattened");
    t.tool("umoci", &["config", "--image", "img:latest", "--manifest.annotation", &ann, "--config.label", &ann]);
}

fn validate_json(t: &TestDir, image: &str) -> (i32, serde_json::Value) {
    let r = t.run(&["validate", "--format", "json", image]);
    let doc = r.json();
    schema::assert_valid("validate-report.schema.json", &doc);
    (r.code(), doc)
}

#[test]
fn umoci_layout_and_skopeo_archive_validate_clean() {
    let t = TestDir::new();
    umoci_image(&t);
    let (code, doc) = validate_json(&t, "img");
    assert_eq!((code, &doc["summary"]["errors"], &doc["summary"]["warnings"]), (0, &0.into(), &0.into()), "{doc:#}");
    assert_eq!(doc["images"][0]["idFlattening"]["effective"], "flattened");

    t.tool("skopeo", &["copy", "-q", "oci:img:latest", "oci-archive:img.tar:latest"]);
    let (code, doc) = validate_json(&t, "oci-archive:img.tar:latest");
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["findings"], serde_json::json!([]));
}

#[test]
fn skopeo_zstd_layers_validate_clean() {
    let t = TestDir::new();
    umoci_image(&t);
    t.tool(
        "skopeo",
        &["copy", "-q", "--dest-compress", "--dest-compress-format", "zstd", "oci:img:latest", "oci:z:latest"],
    );
    let manifest_digest = {
        let index: serde_json::Value = serde_json::from_slice(&std::fs::read(t.join("z/index.json")).unwrap()).unwrap();
        index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string()
    };
    let manifest = std::fs::read_to_string(t.join("z/blobs/sha256").join(manifest_digest)).unwrap();
    assert!(manifest.contains("tar+zstd"), "skopeo did not write a zstd layer: {manifest}");
    let (code, doc) = validate_json(&t, "z");
    assert_eq!((code, doc["summary"]["errors"].as_u64()), (0, Some(0)), "{doc:#}");
}

#[test]
fn umoci_label_change_makes_a_conflict() {
    let t = TestDir::new();
    umoci_image(&t);
    let caution = format!("{KEY}=caution");
    t.tool("umoci", &["config", "--image", "img:latest", "--config.label", &caution]);
    let (code, doc) = validate_json(&t, "img");
    assert_eq!(code, 1);
    let rules: Vec<&str> = doc["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["annotation-conflict"]);
    assert_eq!(doc["images"][0]["idFlattening"]["effective"], "caution");
}

/// Docker v2 schema 2 has no manifest annotations: converting drops the
/// declaration from the manifest and only the Label survives, which is why
/// the spec asks for both, and why a Label is a complete declaration on a
/// Docker schema 2 image (ANNOTATION-DOCKER; Charliecloud pushes these).
/// Docker layer media types are read like OCI ones.
#[test]
fn skopeo_v2s2_conversion_keeps_only_the_label_which_is_enough() {
    let t = TestDir::new();
    umoci_image(&t);
    t.tool("skopeo", &["copy", "-q", "--format", "v2s2", "oci:img:latest", "oci:v2:latest"]);
    let (code, doc) = validate_json(&t, "v2");
    let rules: Vec<&str> = doc["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert_eq!((code, rules), (0, vec![]), "{doc:#}");
    assert_eq!(doc["images"][0]["idFlattening"]["effective"], "flattened");
}

/// umoci 0.4.7's `insert` writes a layer whose tar stream stops short of
/// its last padding and end-of-archive blocks; the layer check notices.
#[test]
fn umoci_insert_layers_are_reported_truncated() {
    let t = TestDir::new();
    std::fs::write(t.join("hello"), "hello\n").unwrap();
    t.tool("umoci", &["init", "--layout", "img"]);
    t.tool("umoci", &["new", "--image", "img:latest"]);
    t.tool("umoci", &["insert", "--image", "img:latest", "hello", "/etc/hello"]);
    let (code, doc) = validate_json(&t, "img");
    let rules: Vec<&str> = doc["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"layer-unreadable"), "{doc:#}");
    assert_eq!(code, 1);
}
