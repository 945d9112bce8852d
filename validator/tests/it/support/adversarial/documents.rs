//! JSON documents: index fan-out, annotations that conflict across index
//! descriptors, member names Go's encoding/json matches without regard to
//! case (PRODUCER-UNAMBIGUOUS (a)), duplicate members, and consent to
//! flatten a `caution` image (POLICY-CAUTION).

use std::path::Path;

use serde_json::{Value, json};

use super::{Case, case, inspect, manifest_text, outcome, unpack_fails, validate, with_ref};
use crate::support::layers::{file, layer};
use crate::support::{Compression, KEY, OciDir, REF, sha256};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// A layout with one gzip layer holding `f`, whose config is `config` (JSON
/// text with `{DIFF_IDS}` where the diff_ids array goes) and whose manifest
/// has the annotations `annotations` (JSON text); the manifest descriptor
/// in index.json is `desc` applied to the plain descriptor.
fn hand_written(at: &Path, config: &str, annotations: &str, desc: impl Fn(Value) -> Vec<Value>) {
    let oci = OciDir::create(at.join("layout"));
    let tar = layer(&[file("f", b"x")]);
    let layer_desc = oci.blob(Compression::Gzip.media_type(), &Compression::Gzip.compress(&tar));
    let config = config.replace("{DIFF_IDS}", &format!("[\"{}\"]", sha256(&tar)));
    let config_desc = oci.blob(CONFIG, config.as_bytes());
    let text = manifest_text(&config_desc, &[layer_desc], annotations);
    let manifest = oci.blob(MANIFEST, text.as_bytes());
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": desc(manifest)});
    std::fs::write(oci.root.join("index.json"), serde_json::to_string(&index).unwrap()).unwrap();
}

/// A config with `config` (JSON text) as its `config` member.
fn config_with(config: &str) -> String {
    format!(
        r#"{{"architecture":"amd64","os":"linux","config":{config},"rootfs":{{"type":"layers","diff_ids":{{DIFF_IDS}}}}}}"#
    )
}

fn annotated(value: &str) -> String {
    format!(r#"{{"{KEY}":"{value}"}}"#)
}

/// Document ambiguity: an error, and unpack and flatten refuse the image.
fn ambiguous_document(more: &[&str], says: &str) -> Value {
    let mut rules = vec!["document-ambiguous"];
    rules.extend_from_slice(more);
    outcome(validate(1, &rules), inspect(1), unpack_fails(says), super::flatten_fails(says))
}

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "index-fan-out",
            "index.json lists a nested index ten times (each descriptor with its own annotation, the first naming the image), which lists the next ten times, four levels down to one manifest: 100,000 paths through 6 documents. Every distinct document is read once; the layout is valid.",
            |at| {
                let mut oci = OciDir::create(at.join("layout"));
                let spec = crate::support::ImageSpec::declared("latest", Some("flattened"));
                let mut target = oci.image(&spec);
                target.as_object_mut().unwrap().remove("annotations");
                for level in 0..4 {
                    let copies: Vec<Value> = (0..10)
                        .map(|i| {
                            let mut d = target.clone();
                            d["annotations"] = json!({"org.example.copy": format!("{level}.{i}")});
                            d
                        })
                        .collect();
                    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": copies});
                    target = oci.json_blob(INDEX, &index);
                }
                for i in 0..10 {
                    let mut d = target.clone();
                    d["annotations"] = json!({"org.example.copy": format!("top.{i}")});
                    if i == 0 {
                        d["annotations"][REF] = json!("latest");
                    }
                    oci.add(d);
                }
            },
            json!({
                "validate": validate(0, &[]),
                "inspect": inspect(0),
                "unpack": {"exit": 0, "present": [super::f("etc/hostname", "test\n")]},
                // umoci resolves the tag through the nested indexes to
                // 10,000 descriptors of one manifest and calls it ambiguous,
                // of the input as of flatten's output, which keeps the indexes.
                "flatten": super::known_rejections(
                    super::flatten_clean(),
                    &[("umoci", "umoci calls the tag ambiguous: it reaches the manifest by 10,000 paths; flatten keeps the nested indexes")],
                ),
                "max_seconds": 20,
                "max_rss_mib": {"validate": 64, "inspect": 64},
            }),
        ),
        case(
            "index-descriptor-values-conflict",
            "index.json lists one manifest twice under the same name, once declared `flattened` and once `caution` in the descriptor's annotations: the declarations conflict, the effective value is `caution`.",
            |at| {
                let mut oci = OciDir::create(at.join("layout"));
                let desc = oci.image(&crate::support::ImageSpec::declared("latest", None));
                for value in ["flattened", "caution"] {
                    let mut d = desc.clone();
                    d["annotations"] = json!({REF: "latest", KEY: value});
                    oci.add(d);
                }
            },
            outcome(
                validate(1, &["annotation-conflict", "annotation-manifest-missing"]),
                inspect(0),
                json!({"exit": [1, 2], "stderr_contains": ["caution"], "absent": [""]}),
                json!({"exit": [1, 2], "stderr_contains": ["caution"]}),
            ),
        ),
        case(
            "json-manifest-annotations-case",
            "A manifest with `annotations` declaring `flattened` and `ANNOTATIONS` declaring `caution`: Go's encoding/json reads both into Annotations (the last wins), serde only the first.",
            |at| {
                let annotations = format!(r#"{},"ANNOTATIONS":{}"#, annotated("flattened"), annotated("caution"));
                hand_written(at, &config_with(r#"{"User":""}"#), &annotations, |d| vec![with_ref(d)]);
            },
            ambiguous_document(&["annotation-conflict", "annotation-label-missing"], "ANNOTATIONS"),
        ),
        case(
            "json-config-labels-case",
            "A config with `Labels` declaring `flattened` and `LABELS` declaring `caution`.",
            |at| {
                let config =
                    format!(r#"{{"User":"","Labels":{},"LABELS":{}}}"#, annotated("flattened"), annotated("caution"));
                hand_written(at, &config_with(&config), &annotated("flattened"), |d| vec![with_ref(d)]);
            },
            ambiguous_document(&["annotation-conflict"], "LABELS"),
        ),
        case(
            "json-config-lone-lowercase-labels",
            "A config whose only labels are under `labels` (lower case), declaring `caution`, under a manifest declaring `flattened`: Go reads them as Labels, serde not at all.",
            |at| {
                let config = format!(r#"{{"User":"","labels":{}}}"#, annotated("caution"));
                hand_written(at, &config_with(&config), &annotated("flattened"), |d| vec![with_ref(d)]);
            },
            ambiguous_document(&["annotation-conflict"], "labels"),
        ),
        case(
            "json-config-user-lowercase",
            "A config with `\"user\": \"postgres\"` beside `\"User\": \"\"`: Go's encoding/json sets User to `postgres` (the last match wins), serde to empty.",
            |at| {
                let config =
                    r#"{"User":"","user":"postgres","Labels":{"io.github.supercontainers.id-flattening":"flattened"}}"#;
                hand_written(at, &config_with(config), &annotated("flattened"), |d| vec![with_ref(d)]);
            },
            ambiguous_document(&[], "user"),
        ),
        case(
            "json-descriptor-digest-case",
            "A layer descriptor with `digest` and `DIGEST` naming two different blobs: Go follows the last, serde the first.",
            |at| {
                let oci = OciDir::create(at.join("layout"));
                let tar = layer(&[file("f", b"x")]);
                let other = layer(&[file("../canary/other", b"other")]);
                let layer_desc = oci.blob(Compression::Gzip.media_type(), &Compression::Gzip.compress(&tar));
                let other_desc = oci.blob(Compression::Gzip.media_type(), &Compression::Gzip.compress(&other));
                let config = config_with(&format!(r#"{{"User":"","Labels":{}}}"#, annotated("flattened")))
                    .replace("{DIFF_IDS}", &format!("[\"{}\"]", sha256(&tar)));
                let config_desc = oci.blob(CONFIG, config.as_bytes());
                let layer_text = serde_json::to_string(&layer_desc).unwrap();
                let layer_text = layer_text.replacen(
                    '}',
                    &format!(r#","DIGEST":"{}"}}"#, other_desc["digest"].as_str().unwrap()),
                    1,
                );
                let text = format!(
                    r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{},"layers":[{layer_text}],"annotations":{}}}"#,
                    serde_json::to_string(&config_desc).unwrap(),
                    annotated("flattened")
                );
                let manifest = oci.blob(MANIFEST, text.as_bytes());
                let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [with_ref(manifest)]});
                std::fs::write(oci.root.join("index.json"), serde_json::to_string(&index).unwrap()).unwrap();
            },
            ambiguous_document(&[], "DIGEST"),
        ),
        case(
            "json-duplicate-labels",
            "A config whose Labels hold the id-flattening key twice, `caution` first and `flattened` last.",
            |at| {
                let config = format!(r#"{{"User":"","Labels":{{"{KEY}":"caution","{KEY}":"flattened"}}}}"#);
                hand_written(at, &config_with(&config), &annotated("flattened"), |d| vec![with_ref(d)]);
            },
            ambiguous_document(&["annotation-conflict"], "appears more than once"),
        ),
        case(
            "json-duplicate-index-annotation",
            "An index.json descriptor whose annotations hold the id-flattening key twice, `caution` first and `flattened` last, over a manifest and config declaring `flattened`.",
            |at| {
                let config = format!(r#"{{"User":"","Labels":{}}}"#, annotated("flattened"));
                hand_written(at, &config_with(&config), &annotated("flattened"), |d| vec![d]);
                let path = at.join("layout/index.json");
                let text = std::fs::read_to_string(&path).unwrap();
                let dup = format!(r#""annotations":{{"{REF}":"latest","{KEY}":"caution","{KEY}":"flattened"}},"#);
                let text = text.replacen(r#""digest""#, &format!(r#"{dup}"digest""#), 1);
                std::fs::write(&path, text).unwrap();
            },
            ambiguous_document(&["annotation-conflict"], "appears more than once"),
        ),
        case(
            "json-duplicate-index-descriptor-member",
            "An index.json descriptor with its `annotations` member twice, the first declaring `caution`, the second `flattened` and naming the image: index.json cannot be read as an index at all (the typed reader refuses a duplicate field), which is an error.",
            |at| {
                let config = format!(r#"{{"User":"","Labels":{}}}"#, annotated("flattened"));
                hand_written(at, &config_with(&config), &annotated("flattened"), |d| vec![d]);
                let path = at.join("layout/index.json");
                let text = std::fs::read_to_string(&path).unwrap();
                let dup = format!(
                    r#""annotations":{},"annotations":{{"{REF}":"latest","{KEY}":"flattened"}},"#,
                    annotated("caution")
                );
                let text = text.replacen(r#""digest""#, &format!(r#"{dup}"digest""#), 1);
                std::fs::write(&path, text).unwrap();
            },
            json!({
                "validate": validate(1, &["layout-index"]),
                "inspect": inspect(1),
                "unpack": {"exit": 2, "stderr_contains": ["duplicate field `annotations`"], "absent": [""]},
                "flatten": {"exit": [1, 2], "stderr_contains": ["duplicate field `annotations`"]},
            }),
        ),
        case(
            "flatten-caution-without-consent",
            "A valid image declared `caution` in the manifest and the Label: without --confirm-flatten, unpack and flatten refuse, name the key and value, and write nothing.",
            |at| {
                let mut oci = OciDir::create(at.join("layout"));
                oci.add_image(&crate::support::ImageSpec::declared("latest", Some("caution")));
            },
            outcome(
                validate(0, &[]),
                inspect(0),
                json!({"exit": [1, 2], "stderr_contains": [KEY, "caution", "--confirm-flatten"], "absent": [""]}),
                json!({"exit": [1, 2], "stderr_contains": [KEY, "caution", "--confirm-flatten"]}),
            ),
        ),
    ]
}
