//! `single-id validate` on real layouts written to disk: directory and
//! archive forms, nested indexes, gzip/zstd/plain layers, and broken ones.
//! Human and JSON output are snapshotted; JSON is checked against its schema.

use crate::support;

use std::fs;

use serde_json::json;
use support::{Compression, ImageSpec, KEY, OciDir, REF, TestDir, schema, tar_of};

/// Runs validate in all three formats, checks the exit status of each,
/// checks the JSON against our schema and the SARIF against the official
/// one, and snapshots every output.
fn check(t: &TestDir, args: &[&str], code: i32, name: &str) -> serde_json::Value {
    let mut human = vec!["validate"];
    human.extend(args);
    let h = t.run(&human);
    assert_eq!(h.code(), code, "human exit status; stderr: {}\n{}", h.stderr(), h.stdout());
    insta::assert_snapshot!(format!("{name}.human"), h.stdout());
    let mut js = human.clone();
    js.extend(["--format", "json"]);
    let j = t.run(&js);
    assert_eq!(j.code(), code, "json exit status; stderr: {}", j.stderr());
    let doc = j.json();
    schema::assert_valid("validate-report.schema.json", &doc);
    insta::assert_snapshot!(format!("{name}.json"), j.stdout());
    let mut sarif = human.clone();
    sarif.extend(["--format", "sarif"]);
    let s = t.run(&sarif);
    assert_eq!(s.code(), code, "sarif exit status; stderr: {}", s.stderr());
    let log = s.json();
    schema::assert_valid_sarif(&log);
    assert_eq!(log["runs"][0]["results"].as_array().unwrap().len(), doc["findings"].as_array().unwrap().len());
    // The rule metadata is the same in every log (snapshotted once below).
    let results = serde_json::to_string_pretty(&log["runs"][0]["results"]).unwrap();
    insta::assert_snapshot!(format!("{name}.sarif-results"), results);
    doc
}

#[test]
fn sarif_log_describes_every_rule() {
    let t = TestDir::new();
    layout(&t).add_image(&ImageSpec::declared("latest", Some("flattened")));
    let r = t.run(&["validate", "--format", "sarif", "image"]);
    assert_eq!(r.code(), 0);
    let log = r.json();
    schema::assert_valid_sarif(&log);
    let rules = log["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), single_id::rules::ALL.len());
    // Help is embedded; without --docs-url no link is written, since one
    // relative to this repository would be broken in the user's.
    for rule in rules {
        let clause = rule["properties"]["specClause"].as_str().unwrap();
        let markdown = rule["help"]["markdown"].as_str().unwrap();
        assert!(markdown.contains(&format!("`{clause}`")), "{markdown}");
        assert!(!markdown.contains("](") && rule.get("helpUri").is_none(), "{rule:#}");
    }
    insta::assert_snapshot!("sarif-full-log", r.stdout());
    // With it, every rule links to its clause, and the tool to its README.
    let base = "https://example.org/single-id/blob/v0.1.0";
    let linked = t.run(&["validate", "--format", "sarif", "--docs-url", &format!("{base}/"), "image"]).json();
    schema::assert_valid_sarif(&linked);
    assert_eq!(linked["runs"][0]["tool"]["driver"]["informationUri"], format!("{base}/README.md"));
    for rule in linked["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap() {
        let clause = rule["properties"]["specClause"].as_str().unwrap().to_lowercase();
        let uri = format!("{base}/spec/single-id-images.md#{clause}");
        assert_eq!(rule["helpUri"], uri.as_str());
        assert!(rule["help"]["markdown"].as_str().unwrap().contains(&format!("]({uri})")), "{rule:#}");
    }
}

#[test]
fn sarif_schema_check_is_not_vacuous() {
    let t = TestDir::new();
    let mut dir = layout(&t);
    let mut spec = ImageSpec::declared("latest", Some("flattened"));
    spec.label_value = Some("caution".into());
    dir.add_image(&spec);
    let mut log = t.run(&["validate", "--format", "sarif", "image"]).json();
    schema::assert_valid_sarif(&log);
    log["runs"][0]["results"][0]["level"] = json!("fatal");
    let broken = std::panic::catch_unwind(|| schema::assert_valid_sarif(&log));
    assert!(broken.is_err(), "a SARIF result with level \"fatal\" passed the schema");
    // Valid against the schema, but a result GitHub cannot place.
    log["runs"][0]["results"][0]["level"] = json!("error");
    log["runs"][0]["results"][0]["locations"] = json!([]);
    let problems = schema::multitool_problems(&log);
    assert!(
        problems.iter().any(|p| p.contains("GH")),
        "Microsoft's validator let an unplaceable result pass: {problems:?}"
    );
}

fn rules_of(doc: &serde_json::Value) -> Vec<String> {
    doc["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap().to_string()).collect()
}

fn layout(t: &TestDir) -> OciDir {
    OciDir::create(t.join("image"))
}

#[test]
fn flattened_image_is_clean() {
    let t = TestDir::new();
    layout(&t).add_image(&ImageSpec::declared("latest", Some("flattened")));
    let doc = check(&t, &["image"], 0, "flattened");
    assert_eq!(doc["images"][0]["idFlattening"]["effective"], "flattened");
    assert!(rules_of(&doc).is_empty());
}

#[test]
fn archive_form_and_references() {
    let t = TestDir::new();
    let mut dir = layout(&t);
    dir.add_image(&ImageSpec::declared("one", Some("allowed")));
    dir.add_image(&ImageSpec::declared("two", Some("caution")));
    dir.archive(&t.join("image.tar"));
    let all = check(&t, &["image.tar"], 0, "archive");
    assert_eq!(all["summary"]["images"], 2);
    let one = check(&t, &["oci-archive:image.tar:two"], 0, "archive-ref");
    assert_eq!(one["images"][0]["name"], "two");
    assert_eq!(one["images"][0]["idFlattening"]["effective"], "caution");
    // --ref on a directory selects the same way.
    let r = t.run(&["validate", "--ref", "one", "--format", "json", "oci:image"]);
    assert_eq!(r.json()["images"].as_array().unwrap().len(), 1);
}

#[test]
fn nested_index_with_gzip_zstd_and_plain_layers() {
    let t = TestDir::new();
    let mut dir = layout(&t);
    let tar = |name: &str| tar_of(&[("srv/", b""), (name, b"content")], 0, 0);
    let mut amd = ImageSpec::declared("unused", Some("flattened"));
    amd.ref_name = None;
    amd.layers = vec![(tar("srv/a"), Compression::Gzip), (tar("srv/b"), Compression::Zstd)];
    let mut arm = amd.clone();
    arm.layers = vec![(tar("srv/c"), Compression::None)];
    let mut amd_desc = dir.image(&amd);
    amd_desc["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let mut arm_desc = dir.image(&arm);
    arm_desc["platform"] = json!({"architecture": "arm64", "os": "linux", "variant": "v8"});
    let inner = dir.json_blob(
        "application/vnd.oci.image.index.v1+json",
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [amd_desc, arm_desc]}),
    );
    let mut top = inner.clone();
    top["annotations"] = json!({REF: "multi", KEY: "flattened"});
    dir.add(top);
    let doc = check(&t, &["image"], 0, "nested");
    let names: Vec<&str> = doc["images"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["multi (linux/amd64)", "multi (linux/arm64/v8)"]);
    assert_eq!(doc["images"][0]["idFlattening"]["declared"].as_array().unwrap().len(), 3);
}

#[test]
fn corrupted_layer_blob() {
    let t = TestDir::new();
    let mut dir = layout(&t);
    let desc = dir.add_image(&ImageSpec::declared("latest", Some("flattened")));
    let layer = dir.read(&desc)["layers"][0]["digest"].as_str().unwrap().to_string();
    let path = dir.blob_file(&layer);
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    let doc = check(&t, &["image"], 1, "corrupted-layer");
    assert_eq!(rules_of(&doc), ["blob-digest", "layer-unreadable"]);
    assert_eq!(doc["findings"][0]["location"]["blob"], layer);
}

#[test]
fn wrong_size_in_descriptor() {
    let t = TestDir::new();
    let mut dir = layout(&t);
    let desc = dir.image(&ImageSpec::declared("latest", Some("flattened")));
    let desc = dir.rewrite(&desc, |m| m["layers"][0]["size"] = json!(m["layers"][0]["size"].as_u64().unwrap() + 1));
    dir.add(desc);
    let doc = check(&t, &["image"], 1, "wrong-size");
    assert_eq!(rules_of(&doc), ["blob-size"]);
}

#[test]
fn conflicting_declarations() {
    let t = TestDir::new();
    let mut dir = layout(&t);
    let mut spec = ImageSpec::declared("latest", Some("flattened"));
    spec.label_value = Some("caution".into());
    spec.index_value = Some("allowed".into());
    dir.add_image(&spec);
    let doc = check(&t, &["image"], 1, "conflict");
    assert_eq!(rules_of(&doc), ["annotation-conflict"]);
    assert_eq!(doc["images"][0]["idFlattening"]["effective"], "caution");
}

#[test]
fn unknown_and_empty_values() {
    let t = TestDir::new();
    let mut dir = layout(&t);
    dir.add_image(&ImageSpec::declared("capital", Some("Flattened")));
    dir.add_image(&ImageSpec::declared("empty", Some("")));
    let doc = check(&t, &["image"], 1, "unknown-value");
    // An unknown value is an error and means caution; an empty one means
    // absent (ANNOTATION-EMPTY): a note at each place, and `allowed`.
    assert_eq!(
        rules_of(&doc),
        ["annotation-value", "annotation-value", "annotation-empty", "annotation-empty", "annotation-absent"]
    );
    let effective: Vec<&str> =
        doc["images"].as_array().unwrap().iter().map(|i| i["idFlattening"]["effective"].as_str().unwrap()).collect();
    assert_eq!(effective, ["caution", "allowed"]);
}

/// Until image-spec adopts `org.opencontainers.image.id-flattening`, an
/// image that writes it breaks annotations.md's reservation (an error),
/// yet consumers read it like the provisional key: here it says caution
/// and the provisional key flattened, so the image is caution, and the two
/// disagree (ANNOTATION-CONSISTENT).
#[test]
fn the_reserved_key_is_read_and_reported() {
    let t = TestDir::new();
    let mut oci = layout(&t);
    let desc = oci.image(&ImageSpec::declared("latest", Some("flattened")));
    let desc = oci.rewrite(&desc, |m| {
        m["annotations"]["org.opencontainers.image.id-flattening"] = json!("caution");
    });
    oci.add(desc);
    let doc = check(&t, &["image"], 1, "reserved-key");
    assert_eq!(rules_of(&doc), ["annotation-reserved-key", "annotation-conflict"]);
    assert_eq!(doc["images"][0]["idFlattening"]["effective"], "caution");
}

/// A Docker schema 2 manifest has no annotations: its config Label is a
/// complete declaration (ANNOTATION-DOCKER), and without one the index
/// descriptor's value alone is an error.
#[test]
fn docker_manifests_declare_through_the_label() {
    let t = TestDir::new();
    let mut oci = layout(&t);
    for (name, label, index) in [("label", Some("flattened"), None), ("index-only", None, Some("caution"))] {
        let mut spec = ImageSpec::declared(name, None);
        spec.label_value = label.map(str::to_string);
        spec.index_value = index.map(str::to_string);
        let desc = oci.image(&spec);
        let docker = "application/vnd.docker.distribution.manifest.v2+json";
        let mut desc = oci.rewrite(&desc, |m| {
            m["mediaType"] = json!(docker);
            m["config"]["mediaType"] = json!("application/vnd.docker.container.image.v1+json");
        });
        desc["mediaType"] = json!(docker);
        oci.add(desc);
    }
    let doc = check(&t, &["image"], 1, "docker");
    assert_eq!(rules_of(&doc), ["annotation-docker-label-missing"]);
    assert_eq!(doc["findings"][0]["location"]["image"], "index-only");
    let effective: Vec<&str> =
        doc["images"].as_array().unwrap().iter().map(|i| i["idFlattening"]["effective"].as_str().unwrap()).collect();
    assert_eq!(effective, ["flattened", "caution"]);
}

/// The key means nothing on config or layer descriptors or in an index's
/// own annotations (ANNOTATION-PLACES): a warning where it appears.
#[test]
fn misplaced_declarations_are_warned_about() {
    let t = TestDir::new();
    let mut oci = layout(&t);
    let desc = oci.image(&ImageSpec::declared("latest", Some("allowed")));
    let desc = oci.rewrite(&desc, |m| {
        m["config"]["annotations"] = json!({KEY: "caution"});
        m["layers"][0]["annotations"] = json!({KEY: "flattened"});
    });
    oci.add(desc);
    let doc = check(&t, &["image"], 0, "misplaced");
    assert_eq!(rules_of(&doc), ["annotation-misplaced", "annotation-misplaced"]);
    assert_eq!(doc["images"][0]["idFlattening"]["effective"], "allowed");
}

#[test]
fn missing_label_warns_and_strict_fails() {
    let t = TestDir::new();
    let mut spec = ImageSpec::declared("latest", Some("flattened"));
    spec.label_value = None;
    layout(&t).add_image(&spec);
    let doc = check(&t, &["image"], 0, "missing-label");
    assert_eq!(rules_of(&doc), ["annotation-label-missing"]);
    assert_eq!(t.run(&["validate", "--strict", "image"]).code(), 1);
}

#[test]
fn label_or_index_without_manifest_and_absent_value() {
    let t = TestDir::new();
    let mut dir = layout(&t);
    let mut label_only = ImageSpec::declared("label-only", None);
    label_only.label_value = Some("flattened".into());
    dir.add_image(&label_only);
    dir.add_image(&ImageSpec::declared("absent", None));
    let doc = check(&t, &["image"], 1, "placement");
    assert_eq!(rules_of(&doc), ["annotation-manifest-missing", "annotation-absent"]);
    assert_eq!(doc["images"][1]["idFlattening"]["effective"], "allowed");
}

#[test]
fn missing_and_foreign_blobs() {
    let t = TestDir::new();
    let mut dir = layout(&t);
    let desc = dir.image(&ImageSpec::declared("latest", Some("flattened")));
    let m = dir.read(&desc);
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    fs::remove_file(dir.blob_file(&layer)).unwrap();
    dir.add(desc.clone());
    let doc = check(&t, &["image"], 1, "missing-blob");
    assert_eq!(rules_of(&doc), ["blob-missing"]);

    // The same absence with urls is the image-spec's foreign layer: a note.
    let t2 = TestDir::new();
    let mut dir2 = layout(&t2);
    let desc = dir2.image(&ImageSpec::declared("latest", Some("flattened")));
    let layer = dir2.read(&desc)["layers"][0]["digest"].as_str().unwrap().to_string();
    fs::remove_file(dir2.blob_file(&layer)).unwrap();
    let desc = dir2.rewrite(&desc, |m| m["layers"][0]["urls"] = json!(["https://example.com/layer.tar.gz"]));
    dir2.add(desc);
    let doc = check(&t2, &["image"], 0, "foreign-blob");
    assert_eq!(rules_of(&doc), ["blob-foreign"]);
}

#[test]
fn broken_layout_files() {
    let t = TestDir::new();
    let dir = layout(&t);
    fs::remove_file(dir.root.join("oci-layout")).unwrap();
    fs::write(dir.root.join("index.json"), b"{\"schemaVersion\": 2, \"manifests\": [").unwrap();
    let doc = check(&t, &["image"], 1, "broken-layout");
    assert_eq!(rules_of(&doc), ["layout-file", "layout-index"]);

    fs::write(dir.root.join("oci-layout"), br#"{"imageLayoutVersion": "2.0.0"}"#).unwrap();
    fs::remove_file(dir.root.join("index.json")).unwrap();
    let doc = check(&t, &["image"], 1, "wrong-layout-version");
    assert_eq!(rules_of(&doc), ["layout-file", "layout-index"]);
}

#[test]
fn malformed_documents_and_media_type_mismatch() {
    let t = TestDir::new();
    let mut dir = layout(&t);
    // A manifest blob that is not JSON, with a correct digest.
    let mut bad = dir.blob("application/vnd.oci.image.manifest.v1+json", b"{\"schemaVersion\": 2, \"layers\": 7}");
    bad["annotations"] = json!({REF: "not-json"});
    dir.add(bad);
    // A manifest whose descriptor says index.
    let desc = dir.image(&ImageSpec::declared("mismatch", Some("flattened")));
    let mut wrong = desc.clone();
    wrong["mediaType"] = json!("application/vnd.oci.image.index.v1+json");
    dir.add(wrong);
    // A config that is not an image config.
    let desc = dir.image(&ImageSpec::declared("bad-config", Some("flattened")));
    let cfg = dir.blob("application/vnd.oci.image.config.v1+json", b"{\"os\": \"linux\"}");
    let desc = dir.rewrite(&desc, |m| m["config"] = cfg);
    dir.add(desc);
    let doc = check(&t, &["image"], 1, "malformed");
    assert_eq!(rules_of(&doc), ["document-invalid", "media-type-mismatch", "document-invalid"]);
}

#[test]
fn artifacts_are_skipped_not_failed() {
    let t = TestDir::new();
    let mut dir = layout(&t);
    let empty = dir.blob("application/vnd.oci.empty.v1+json", b"{}");
    let sig = dir.json_blob(
        "application/vnd.oci.image.manifest.v1+json",
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": "application/example", "config": empty, "layers": []}),
    );
    dir.add(sig);
    let thing = dir.blob("application/vnd.example.thing", b"x");
    dir.add(thing.clone());
    let doc = check(&t, &["image"], 0, "artifacts");
    assert_eq!(rules_of(&doc), ["descriptor-skipped", "descriptor-skipped"]);
    // Not interpreted, but still required to be present and intact.
    fs::write(dir.blob_file(thing["digest"].as_str().unwrap()), b"y").unwrap();
    let doc = t.run(&["validate", "--format", "json", "image"]).json();
    assert_eq!(rules_of(&doc), ["descriptor-skipped", "descriptor-skipped", "blob-digest"]);
}

#[test]
fn symlinked_blob_is_refused() {
    let t = TestDir::new();
    let mut dir = layout(&t);
    let desc = dir.add_image(&ImageSpec::declared("latest", Some("flattened")));
    let layer = dir.read(&desc)["layers"][0]["digest"].as_str().unwrap().to_string();
    let path = dir.blob_file(&layer);
    fs::rename(&path, t.join("outside")).unwrap();
    std::os::unix::fs::symlink(t.join("outside"), &path).unwrap();
    let doc = check(&t, &["image"], 1, "symlinked-blob");
    assert_eq!(rules_of(&doc), ["blob-not-file"]);
}

#[test]
fn deep_nesting_is_bounded() {
    let t = TestDir::new();
    let mut dir = layout(&t);
    let mut desc = dir.image(&ImageSpec::declared("x", Some("flattened")));
    desc.as_object_mut().unwrap().remove("annotations");
    for _ in 0..10 {
        desc =
            dir.json_blob("application/vnd.oci.image.index.v1+json", &json!({"schemaVersion": 2, "manifests": [desc]}));
    }
    desc["annotations"] = json!({REF: "deep"});
    dir.add(desc);
    let doc = t.run(&["validate", "--format", "json", "image"]).json();
    assert_eq!(rules_of(&doc), ["index-nesting"]);
}

#[test]
fn could_not_run_is_exit_2() {
    let t = TestDir::new();
    layout(&t).add_image(&ImageSpec::declared("latest", Some("flattened")));
    let cases: [(&[&str], &str); 5] = [
        (&["validate", "no-such-dir"], "no-such-dir: No such file or directory"),
        (&["validate", "--ref", "nope", "image"], "no image named `nope` in index.json; it names: latest"),
        (&["validate", "oci:image:a", "--ref", "b"], "the reference names image `a` but --ref names `b`"),
        (&["validate", "--format", "yaml", "image"], "invalid value 'yaml'"),
        (&["validate", "image/oci-layout"], "image/oci-layout: not a readable OCI archive (tar)"),
    ];
    for (args, message) in cases {
        let r = t.run(args);
        assert_eq!(r.code(), 2, "{args:?}: {}", r.stderr());
        assert!(r.stderr().contains(message), "{args:?}: stderr lacks {message:?}: {}", r.stderr());
        assert!(r.stdout().is_empty(), "{args:?} wrote a report although it could not run");
    }
}

#[test]
fn compressed_archive_gets_a_clear_error() {
    let t = TestDir::new();
    let dir = layout(&t);
    dir.archive(&t.join("image.tar"));
    let tar = fs::read(t.join("image.tar")).unwrap();
    fs::write(t.join("image.tar.gz"), Compression::Gzip.compress(&tar)).unwrap();
    let r = t.run(&["validate", "image.tar.gz"]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("image.tar.gz: the archive is compressed"), "{}", r.stderr());
}

#[test]
fn bundled_example_validates_clean() {
    let t = TestDir::new();
    let example = support::repo_root().join("examples/hello");
    let r = t.run(&["validate", "--strict", "--format", "json", example.to_str().unwrap()]);
    let doc = r.json();
    assert_eq!(r.code(), 0, "{doc:#}");
    assert_eq!(doc["images"][0]["idFlattening"]["effective"], "flattened");
    assert_eq!(doc["findings"], json!([]));
}

/// Colour is for people at a terminal: run under a pseudo-terminal with
/// util-linux `script`, with and without NO_COLOR, and through a pipe.
#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let t = TestDir::new();
    let mut spec = ImageSpec::declared("latest", Some("flattened"));
    spec.label_value = Some("caution".into());
    layout(&t).add_image(&spec);
    let bin = env!("CARGO_BIN_EXE_single-id");
    let on_tty = |no_color: Option<&str>| {
        let mut c = std::process::Command::new("script");
        c.args(["-qec", &format!("{bin} validate image"), "/dev/null"]).current_dir(t.path()).env_remove("NO_COLOR");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        let out = c.output().expect("util-linux `script` is required for this test");
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(on_tty(None).contains("\x1b[1;31merror[annotation-conflict]\x1b[0m"), "{}", on_tty(None));
    assert!(!on_tty(Some("1")).contains('\x1b'));
    assert!(!t.run(&["validate", "image"]).stdout().contains('\x1b'));
}

/// A descriptor's embedded `data` (image-spec descriptor.md) must be the
/// blob: a reader that uses `data` and one that fetches the blob would
/// otherwise see different bytes. Checked on layer, config and index
/// descriptors; unpack and flatten refuse what validate reports.
#[test]
fn descriptor_data_must_match_the_blob() {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    // (case, the data for the first layer, the expected rules)
    type Data = Box<dyn Fn(&[u8]) -> String>;
    let cases: Vec<(&str, Data, &[&str])> = vec![
        ("same bytes", Box::new(move |blob: &[u8]| b64(blob)), &[]),
        (
            "other bytes of the same length",
            Box::new(move |blob: &[u8]| b64(&blob.iter().map(|b| b ^ 1).collect::<Vec<u8>>())),
            &["descriptor-data"],
        ),
        ("fewer bytes", Box::new(move |blob: &[u8]| b64(&blob[1..])), &["descriptor-data"]),
        ("not base64", Box::new(|_: &[u8]| "not base64!".to_string()), &["descriptor-data"]),
    ];
    for (case, data, expected) in cases {
        let t = TestDir::new();
        let mut dir = layout(&t);
        let desc = dir.image(&ImageSpec::declared("latest", Some("flattened")));
        let layer = dir.read(&desc)["layers"][0]["digest"].as_str().unwrap().to_string();
        let blob = fs::read(dir.blob_file(&layer)).unwrap();
        let desc = dir.rewrite(&desc, |m| m["layers"][0]["data"] = json!(data(&blob)));
        dir.add(desc);
        let v = t.run(&["validate", "image", "--format", "json"]);
        let doc = v.json();
        schema::assert_valid("validate-report.schema.json", &doc);
        assert_eq!(rules_of(&doc), expected, "{case}: {}", v.stdout());
        if expected.is_empty() {
            assert_eq!(v.code(), 0, "{case}");
            continue;
        }
        assert_eq!(v.code(), 1, "{case}");
        assert_eq!(doc["findings"][0]["location"]["pointer"], "/layers/0/data", "{case}");
        let u = t.run(&["unpack", "image", "root", "--format", "json"]);
        assert_eq!(u.code(), 1, "{case}: unpack: {}", u.stderr());
        let failure = u.json();
        schema::assert_valid("failure-report.schema.json", &failure);
        assert_eq!(failure["findings"][0]["rule"], "descriptor-data", "{case}");
        assert!(!t.join("root").exists(), "{case}");
        let f = t.run(&["flatten", "image", "flat"]);
        assert_eq!(f.code(), 1, "{case}: flatten: {}", f.stderr());
        assert!(f.stderr().contains("descriptor-data") || f.stderr().contains("embedded data"), "{}", f.stderr());
        assert!(!t.join("flat").exists(), "{case}");
    }

    // On the index descriptor of the manifest, and on the config's.
    let t = TestDir::new();
    let mut dir = layout(&t);
    let mut desc = dir.image(&ImageSpec::declared("latest", Some("flattened")));
    let desc2 = dir.rewrite(&desc, |m| m["config"]["data"] = json!(b64(b"{}")));
    desc = desc2;
    desc["data"] = json!(b64(b"not the manifest"));
    dir.add(desc);
    let doc = t.run(&["validate", "image", "--format", "json"]).json();
    let at: Vec<(String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap().to_string(), f["location"]["pointer"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        at,
        [
            ("descriptor-data".to_string(), "/manifests/0/data".to_string()),
            ("descriptor-data".into(), "/config/data".into())
        ]
    );
}

/// OCI-SUBJECT: an artifact's `subject` that names a manifest of the
/// layout has its size and media type; one naming a manifest stored
/// elsewhere is a note.
#[test]
fn subjects_are_followed_within_the_layout() {
    // (case, how the subject is changed, the subject findings expected)
    type Change = fn(&mut serde_json::Value);
    let cases: [(&str, Change, &[&str]); 4] = [
        ("matches", |_| {}, &[]),
        ("size", |s| s["size"] = json!(s["size"].as_u64().unwrap() + 1), &["subject-mismatch"]),
        ("media type", |s| s["mediaType"] = json!("application/vnd.oci.image.index.v1+json"), &["subject-mismatch"]),
        ("elsewhere", |s| s["digest"] = json!(format!("sha256:{}", "ab".repeat(32))), &["subject-missing"]),
    ];
    for (case, change, expected) in cases {
        let t = TestDir::new();
        let mut dir = layout(&t);
        let image = dir.add_image(&ImageSpec::declared("latest", Some("flattened")));
        let mut subject = image.clone();
        subject.as_object_mut().unwrap().remove("annotations");
        change(&mut subject);
        let empty = dir.blob("application/vnd.oci.empty.v1+json", b"{}");
        let signature = dir.blob("application/vnd.example.signature", b"signed");
        let artifact = dir.json_blob(
            "application/vnd.oci.image.manifest.v1+json",
            &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "artifactType": "application/vnd.example.signature", "config": empty,
                    "layers": [signature], "subject": subject}),
        );
        dir.add(artifact);
        let v = t.run(&["validate", "--format", "json", "image"]);
        let doc = v.json();
        schema::assert_valid("validate-report.schema.json", &doc);
        let found: Vec<String> = rules_of(&doc).into_iter().filter(|r| r.starts_with("subject-")).collect();
        assert_eq!(found, expected, "{case}: {}", v.stdout());
        let failing = expected.contains(&"subject-mismatch");
        assert_eq!(v.code(), i32::from(failing), "{case}: {}", v.stdout());
        if let Some(f) =
            doc["findings"].as_array().unwrap().iter().find(|f| f["rule"] == expected.first().copied().unwrap_or(""))
        {
            assert!(f["location"]["pointer"].as_str().unwrap().starts_with("/subject"), "{case}: {f}");
        }
    }
}

/// CONSUMER-SYMLINK-PARENT across layers: a lower layer's looping or empty
/// link that a higher layer's entries lie under is warned about on the
/// higher layer, unless that layer replaces or removes a link of the
/// chain; unpack, run unprivileged, rejects exactly the entries warned about.
#[test]
fn lower_layer_links_that_cannot_resolve_are_warned_about() {
    use support::layers::{dir, file, layer, symlink};
    use support::unprivileged::{run_as_user, user_dir};
    let base = || vec![dir("srv/"), symlink("a", "b"), symlink("b", "/a"), symlink("e", ""), symlink("ok", "srv")];
    // (case, the higher layer, links warned about, paths unpack creates, paths it rejects)
    type Case = (
        &'static str,
        Vec<support::layers::Spec>,
        &'static [&'static str],
        &'static [&'static str],
        &'static [&'static str],
    );
    let cases: Vec<Case> = vec![
        (
            "loop and empty target",
            vec![file("a/x", b"x"), file("e/y", b"y"), file("ok/z", b"z")],
            &["a", "e"],
            // No consumer creates `e`: `e/y` lands in a new directory.
            &["srv/z", "e/y"],
            &["a/x", "b/x"],
        ),
        ("a directory breaks the loop", vec![dir("b/"), file("a/x", b"x")], &[], &["b/x"], &[]),
        ("a whiteout removes the link", vec![file(".wh.a", b""), file("a/x", b"x")], &[], &["a/x"], &[]),
        ("not used as a parent", vec![file("srv/w", b"w")], &[], &["srv/w"], &[]),
    ];
    for (case, top, warned, created, rejected) in cases {
        let t = user_dir();
        let mut oci = OciDir::create(t.join("image"));
        let mut spec = ImageSpec::declared("latest", Some("allowed"));
        spec.layers = vec![(layer(&base()), Compression::Gzip), (layer(&top), Compression::Zstd)];
        oci.add_image(&spec);
        let v = t.run(&["validate", "--format", "json", "image"]);
        let doc = v.json();
        schema::assert_valid("validate-report.schema.json", &doc);
        let found: Vec<(&str, u64)> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "layer-parent-unresolvable")
            .flat_map(|f| {
                let layer = f["location"]["layer"].as_u64().unwrap();
                f["examples"].as_array().unwrap().iter().map(move |e| (e["path"].as_str().unwrap(), layer))
            })
            .collect();
        let expected: Vec<(&str, u64)> = warned.iter().map(|p| (*p, 1)).collect();
        assert_eq!(found, expected, "{case}: {doc:#}");

        let r = run_as_user(&t, &["unpack", "image", "root"]);
        assert_eq!(r.code(), 0, "{case}: {}\n{}", r.stdout(), r.stderr());
        for p in created {
            assert!(t.join("root").join(p).is_file(), "{case}: unpack did not create {p}: {}", r.stderr());
        }
        for p in rejected {
            assert!(fs::symlink_metadata(t.join("root").join(p)).is_err(), "{case}: unpack created {p}");
        }
    }
}
