//! What Go's encoding/json makes of case-variant and duplicate members,
//! asked of the real skopeo on layouts written byte by byte, next to what
//! `single_id::json` says of the same bytes: every value skopeo takes must
//! be among the readings, and the members that make it differ from serde
//! must be reported. skopeo is required (.ci/run installs it).

use crate::support;

use serde_json::{Value, json};
use single_id::annotation::Value::{Allowed, Caution};
use single_id::json::{ambiguities, values_at, values_in_each};
use support::{Compression, KEY, OciDir, REF, TestDir, sha256, tar_of};

const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The bytes of one image written to a layout, tagged `t`.
struct Image {
    dir: String,
    config: Vec<u8>,
    manifest: Vec<u8>,
}

/// Writes layout `dir` with one image: `config_members` are raw JSON
/// members of the image config's `config` object, `manifest_members` raw
/// members appended to the manifest (each starting with a comma).
fn image(t: &TestDir, dir: &str, config_members: &str, manifest_members: &str) -> Image {
    let mut oci = OciDir::create(t.join(dir));
    let tar = tar_of(&[("etc/", b""), ("etc/hostname", b"test\n")], 0, 0);
    let layer = oci.blob(Compression::Gzip.media_type(), &Compression::Gzip.compress(&tar));
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}},"config":{{{config_members}}}}}"#,
        sha256(&tar)
    );
    let config_desc = oci.blob(CONFIG, config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{config_desc},"layers":[{layer}]{manifest_members}}}"#
    );
    let mut desc = oci.blob(MANIFEST, manifest.as_bytes());
    desc["annotations"] = json!({REF: "t"});
    oci.add(desc);
    Image { dir: dir.into(), config: config.into_bytes(), manifest: manifest.into_bytes() }
}

/// `config.config` as skopeo reads it.
fn skopeo_config(t: &TestDir, image: &Image) -> Value {
    let out = t.tool("skopeo", &["inspect", "--config", &format!("oci:{}:t", image.dir)]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["config"].clone()
}

/// The manifest's annotations as skopeo reads them: a copy that
/// recompresses the layer makes skopeo write the manifest it decoded.
fn skopeo_manifest_annotations(t: &TestDir, image: &Image) -> Value {
    let out = format!("{}-copy", image.dir);
    t.tool(
        "skopeo",
        &[
            "copy",
            "-q",
            "--dest-compress",
            "--dest-compress-format",
            "zstd",
            &format!("oci:{}:t", image.dir),
            &format!("oci:{out}:t"),
        ],
    );
    let read = |path: std::path::PathBuf| -> Value { serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap() };
    let index = read(t.join(&out).join("index.json"));
    let digest = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let manifest = read(t.join(&out).join("blobs/sha256").join(digest));
    assert!(manifest.to_string().contains("tar+zstd"), "skopeo did not rewrite the manifest: {manifest}");
    manifest["annotations"].clone()
}

fn labels(bytes: &[u8]) -> single_id::json::Readings {
    values_at(bytes, &["config", "Labels"], KEY).unwrap()
}

fn pointers(bytes: &[u8]) -> Vec<String> {
    ambiguities(bytes).unwrap().into_iter().map(|a| a.pointer).collect()
}

#[test]
fn a_lone_lower_case_labels_is_the_labels_for_go() {
    let t = TestDir::new();
    let img = image(&t, "lone", &format!(r#""labels":{{"{KEY}":"caution"}}"#), "");
    assert_eq!(skopeo_config(&t, &img)["Labels"][KEY], "caution");
    assert_eq!(labels(&img.config).values, ["caution"]);
    assert_eq!(labels(&img.config).most_cautious(), Caution);
    assert_eq!(pointers(&img.config), ["/config"]);
}

#[test]
fn of_case_variant_labels_go_takes_the_last() {
    let t = TestDir::new();
    for (dir, variant) in [("upper", "LABELS"), ("long-s", "Label\u{17f}")] {
        let members = format!(r#""Labels":{{"{KEY}":"flattened"}},"{variant}":{{"{KEY}":"caution"}}"#);
        let img = image(&t, dir, &members, "");
        assert_eq!(skopeo_config(&t, &img)["Labels"][KEY], "caution", "{variant}");
        assert_eq!(labels(&img.config).values, ["flattened", "caution"]);
        assert_eq!(labels(&img.config).most_cautious(), Caution);
        assert_eq!(pointers(&img.config), ["/config"]);
    }
}

#[test]
fn of_duplicate_label_keys_go_takes_the_last() {
    let t = TestDir::new();
    let img = image(&t, "dup", &format!(r#""Labels":{{"{KEY}":"flattened","{KEY}":"caution"}}"#), "");
    assert_eq!(skopeo_config(&t, &img)["Labels"][KEY], "caution");
    assert_eq!(labels(&img.config).values, ["flattened", "caution"]);
    assert_eq!(pointers(&img.config), ["/config/Labels"]);
}

#[test]
fn label_keys_differing_in_case_are_two_keys_for_go() {
    let t = TestDir::new();
    let upper = KEY.to_uppercase();
    let img = image(&t, "keys", &format!(r#""Labels":{{"{KEY}":"flattened","{upper}":"caution"}}"#), "");
    let seen = skopeo_config(&t, &img);
    assert_eq!((&seen["Labels"][KEY], &seen["Labels"][&upper]), (&json!("flattened"), &json!("caution")));
    assert_eq!(labels(&img.config).values, ["flattened"]);
    assert_eq!(pointers(&img.config), Vec::<String>::new());
}

#[test]
fn case_variants_of_other_members_reach_go_too() {
    let t = TestDir::new();
    let img = image(&t, "user", r#""user":"postgres","Wor\u212aingDir":"/kelvin""#, "");
    let seen = skopeo_config(&t, &img);
    assert_eq!((&seen["User"], &seen["WorkingDir"]), (&json!("postgres"), &json!("/kelvin")));
    assert_eq!(pointers(&img.config), ["/config", "/config"]);
    // Go pins dotless i to itself: no field, and nothing to report.
    let img = image(&t, "dotless", "\"Work\u{131}ngDir\":\"/dotless\"", "");
    assert_eq!(skopeo_config(&t, &img).get("WorkingDir"), None);
    assert_eq!(pointers(&img.config), Vec::<String>::new());
}

#[test]
fn case_variant_annotations_merge_for_go() {
    let t = TestDir::new();
    let members =
        format!(r#","annotations":{{"{KEY}":"flattened","a":"1"}},"ANNOTATIONS":{{"{KEY}":"caution","b":"2"}}"#);
    let img = image(&t, "merge", "", &members);
    assert_eq!(skopeo_manifest_annotations(&t, &img), json!({KEY: "caution", "a": "1", "b": "2"}));
    let readings = values_at(&img.manifest, &["annotations"], KEY).unwrap();
    assert_eq!(readings.values, ["flattened", "caution"]);
    assert!(!readings.may_be_absent);
    assert_eq!(pointers(&img.manifest), [""]);
}

#[test]
fn a_null_case_variant_empties_the_annotations_for_go() {
    let t = TestDir::new();
    let img = image(&t, "null", "", &format!(r#","annotations":{{"{KEY}":"flattened"}},"Annotations":null"#));
    assert_eq!(skopeo_manifest_annotations(&t, &img), Value::Null);
    let readings = values_at(&img.manifest, &["annotations"], KEY).unwrap();
    assert_eq!(readings.values, ["flattened"]);
    assert!(readings.may_be_absent);
    assert_eq!(readings.most_cautious(), Allowed);
    assert_eq!(pointers(&img.manifest), [""]);
}

#[test]
fn an_index_descriptor_names_its_image_under_any_case() {
    let t = TestDir::new();
    let img = image(&t, "index", "", "");
    let path = t.join("index/index.json");
    let index = std::fs::read_to_string(&path).unwrap().replace(r#""annotations""#, r#""Annotations""#);
    std::fs::write(&path, &index).unwrap();
    // skopeo still finds the image named `t`.
    t.tool("skopeo", &["inspect", &format!("oci:{}:t", img.dir)]);
    let each = values_in_each(index.as_bytes(), &["manifests"], &["annotations"], REF).unwrap();
    assert_eq!(each.len(), 1);
    assert_eq!(each[0].values, ["t"]);
    assert_eq!(pointers(index.as_bytes()), ["/manifests/0"]);
}

/// End to end: for each way Go reads a declaration serde does not, the
/// validator reports the members (document-ambiguous, an error), the
/// value a consumer acts on is at least as cautious as what skopeo reads,
/// and `unpack` refuses the image, whose reading is in doubt.
#[test]
fn the_validator_and_unpack_act_on_the_most_cautious_reading() {
    let t = TestDir::new();
    let f = format!(r#"{{"{KEY}":"flattened"}}"#);
    let c = format!(r#"{{"{KEY}":"caution"}}"#);
    let cases = [
        ("lone-labels", format!(r#""labels":{c}"#), String::new()),
        ("labels-twice", format!(r#""Labels":{f},"LABELS":{c}"#), format!(r#","annotations":{f}"#)),
        (
            "label-key-twice",
            format!(r#""Labels":{{"{KEY}":"flattened","{KEY}":"caution"}}"#),
            format!(r#","annotations":{f}"#),
        ),
        ("annotations-twice", format!(r#""Labels":{f}"#), format!(r#","annotations":{f},"ANNOTATIONS":{c}"#)),
        ("annotations-long-s", format!(r#""Labels":{f}"#), format!(",\"annotations\":{f},\"annotation\u{17f}\":{c}")),
    ];
    for (dir, config, manifest) in &cases {
        image(&t, dir, config, manifest);
        let run = t.run(&["validate", "--format", "json", dir]);
        let doc = run.json();
        let rules: Vec<&str> = doc["findings"].as_array().unwrap().iter().filter_map(|f| f["rule"].as_str()).collect();
        assert!(rules.contains(&"document-ambiguous"), "{dir}: {rules:?}");
        assert_eq!(run.code(), 1, "{dir}");
        assert_eq!(doc["images"][0]["idFlattening"]["effective"], "caution", "{dir}: {doc:#}");
        let unpack = t.run(&["unpack", dir, &format!("{dir}-root")]);
        assert_eq!(unpack.code(), 1, "{dir}: unpack went ahead: {}", unpack.stderr());
        assert!(unpack.stderr().contains("is not valid"), "{dir}: {}", unpack.stderr());
        assert!(!t.join(&format!("{dir}-root")).exists(), "{dir}: a refused unpack wrote something");
    }
    // Go reads no value at all where serde reads `flattened`: `allowed`.
    image(&t, "nulled", &format!(r#""Labels":{f}"#), &format!(r#","annotations":{f},"ANNOTATIONS":null"#));
    let doc = t.run(&["validate", "--format", "json", "nulled"]).json();
    assert_eq!(doc["images"][0]["idFlattening"]["effective"], "flattened", "the Label still says flattened: {doc:#}");
}
