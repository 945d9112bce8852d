//! What a CI job sets around validate: rule levels (`--allow`, `--warn`,
//! `--deny` and `single-id.toml`), `--output`, `-q` and `--color`, through
//! the real binary on real layouts. Every JSON and SARIF document is held
//! to its schema, including the ones written when the run cannot start.

use crate::support;

use std::fs;

use serde_json::Value;
use support::{ImageSpec, OciDir, TestDir, schema};

/// A layout at `t/image` whose one finding is the warning
/// `annotation-label-missing`, and a blob that is the wrong size, an error.
fn image_with_warning(t: &TestDir) {
    let mut oci = OciDir::create(t.join("image"));
    let mut spec = ImageSpec::declared("latest", Some("flattened"));
    spec.label_value = None;
    oci.add_image(&spec);
}

fn rules(doc: &Value) -> Vec<(String, String)> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap().to_string(), f["severity"].as_str().unwrap().to_string()))
        .collect()
}

fn json_run(t: &TestDir, args: &[&str], code: i32) -> Value {
    let mut all = vec!["validate", "--format", "json"];
    all.extend(args);
    let r = t.run(&all);
    assert_eq!(r.code(), code, "{all:?}: {}\n{}", r.stderr(), r.stdout());
    let doc = r.json();
    schema::assert_valid("validate-report.schema.json", &doc);
    doc
}

#[test]
fn levels_from_the_command_line() {
    let t = TestDir::new();
    image_with_warning(&t);
    let warning = ("annotation-label-missing".to_string(), "warning".to_string());
    assert_eq!(rules(&json_run(&t, &["image"], 0)), std::slice::from_ref(&warning));
    assert_eq!(rules(&json_run(&t, &["--strict", "image"], 1)), [warning]);

    // allow: gone, counted, and recorded; --strict passes.
    let doc = json_run(&t, &["--strict", "--allow", "annotation-label-missing", "image"], 0);
    assert_eq!(rules(&doc), []);
    assert_eq!(doc["summary"]["allowed"], 1);
    assert_eq!(doc["overrides"][0]["level"], "allow");
    assert_eq!(doc["overrides"][0]["source"], "command line");

    // deny: an error, which fails without --strict.
    let doc = json_run(&t, &["--deny", "annotation-label-missing,annotation-absent", "image"], 1);
    assert_eq!(rules(&doc), [("annotation-label-missing".to_string(), "error".to_string())]);
    assert_eq!(doc["summary"]["errors"], 1);

    // SARIF says what the configuration changed, and stays valid.
    let s = t.run(&["validate", "--format", "sarif", "--deny", "annotation-label-missing", "image"]);
    assert_eq!(s.code(), 1, "{}", s.stderr());
    let log = s.json();
    schema::assert_valid_sarif(&log);
    assert_eq!(log["runs"][0]["results"][0]["level"], "error");
    let o = &log["runs"][0]["invocations"][0]["ruleConfigurationOverrides"][0];
    assert_eq!(o["descriptor"]["id"], "annotation-label-missing");
    assert_eq!(o["configuration"]["level"], "error");

    // A typo is refused with the closest rule; one rule with two levels too.
    let r = t.run(&["validate", "--allow", "annotation-label-mising", "image"]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("did you mean `annotation-label-missing`"), "{}", r.stderr());
    let r = t.run(&["validate", "--allow", "blob-size", "--deny", "blob-size", "image"]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("set to both"), "{}", r.stderr());
}

#[test]
fn levels_from_the_configuration_file() {
    let t = TestDir::new();
    image_with_warning(&t);
    // Read from the current directory; the command line wins over it.
    fs::write(t.join("single-id.toml"), "[rules]\ndeny = [\"annotation-label-missing\"]\n").unwrap();
    let doc = json_run(&t, &["image"], 1);
    assert_eq!(doc["overrides"][0]["source"], "single-id.toml");
    let doc = json_run(&t, &["--warn", "annotation-label-missing", "image"], 0);
    assert_eq!(doc["overrides"][0]["source"], "command line");
    // Named explicitly, from elsewhere.
    fs::write(t.join("other.toml"), "[rules]\nallow = [\"annotation-label-missing\"]\n").unwrap();
    let doc = json_run(&t, &["--strict", "--config", "other.toml", "image"], 0);
    assert_eq!(doc["summary"]["allowed"], 1);

    // Mistakes name the file and what is wrong, and exit 2.
    for (text, expected) in [
        ("[rules]\nallow = [\"no-such-rule\"]\n", "unknown rule `no-such-rule`"),
        ("[rules]\nignore = [\"blob-size\"]\n", "unknown field `ignore`"),
        ("[rule]\n", "unknown field `rule`"),
        ("[rules]\nallow = \"blob-size\"\n", "invalid type"),
        ("[rules\n", "single-id.toml"),
    ] {
        fs::write(t.join("single-id.toml"), text).unwrap();
        let r = t.run(&["validate", "image"]);
        assert_eq!(r.code(), 2, "{text}: {}", r.stderr());
        assert!(r.stderr().contains("single-id.toml") && r.stderr().contains(expected), "{text}: {}", r.stderr());
    }
    let r = t.run(&["validate", "--config", "absent.toml", "image"]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("absent.toml"), "{}", r.stderr());
}

/// The examples in docs/configuration.md are valid files, by the schema and
/// by the tool.
#[test]
fn documented_configuration_is_valid() {
    let doc = fs::read_to_string(support::repo_root().join("docs/configuration.md")).unwrap();
    let mut checked = 0;
    for block in doc.split("```toml\n").skip(1) {
        let text = &block[..block.find("```").unwrap()];
        let value: toml::Value = toml::from_str(text).unwrap();
        let as_json = serde_json::to_value(&value).unwrap();
        schema::assert_valid("config.schema.json", &as_json);
        let t = TestDir::new();
        image_with_warning(&t);
        fs::write(t.join("single-id.toml"), text).unwrap();
        let r = t.run(&["validate", "image"]);
        assert!(r.code() < 2, "{text}: {}", r.stderr());
        checked += 1;
    }
    assert!(checked >= 1, "no toml example in docs/configuration.md");
}

#[test]
fn output_quiet_and_color() {
    let t = TestDir::new();
    image_with_warning(&t);
    // --output: the report in the file, nothing on stdout.
    let r = t.run(&["validate", "--format", "sarif", "--output", "out.sarif", "image"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(r.stdout(), "");
    schema::assert_valid_sarif(&serde_json::from_slice(&fs::read(t.join("out.sarif")).unwrap()).unwrap());
    // A run that cannot start still leaves a valid log saying why.
    let r = t.run(&["validate", "--format", "sarif", "-o", "failed.sarif", "missing"]);
    assert_eq!(r.code(), 2);
    let log: Value = serde_json::from_slice(&fs::read(t.join("failed.sarif")).unwrap()).unwrap();
    schema::assert_valid_sarif(&log);
    let invocation = &log["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    assert!(invocation["toolExecutionNotifications"][0]["message"]["text"].as_str().unwrap().contains("missing"));
    let r = t.run(&["validate", "--format", "json", "missing"]);
    assert_eq!(r.code(), 2);
    let doc = r.json();
    schema::assert_valid("failure-report.schema.json", &doc);
    assert_eq!((doc["command"].as_str(), doc["outcome"].as_str()), (Some("validate"), Some("usage")));
    // An output that cannot be written is exit 2, and leaves nothing.
    let r = t.run(&["validate", "-o", "no/such/dir/report", "image"]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("no/such/dir/report"), "{}", r.stderr());

    // -q: silent when the run passes, the whole report when it fails.
    let r = t.run(&["validate", "-q", "image"]);
    assert_eq!((r.code(), r.stdout()), (0, String::new()));
    let r = t.run(&["validate", "-q", "--strict", "image"]);
    assert_eq!(r.code(), 1);
    assert!(r.stdout().contains("annotation-label-missing"), "{}", r.stdout());

    // --color: forced either way, whatever stdout is.
    let coloured = t.run(&["validate", "--color", "always", "image"]).stdout();
    assert!(coloured.contains("\x1b["), "{coloured}");
    let plain = t.run(&["validate", "--color", "never", "image"]).stdout();
    assert!(!plain.contains("\x1b["), "{plain}");
}

/// `rules --format json` lists the registry, and matches its schema.
#[test]
fn rules_as_json() {
    let t = TestDir::new();
    let r = t.run(&["rules", "--format", "json"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let doc = r.json();
    schema::assert_valid("rules.schema.json", &doc);
    let ids: Vec<&str> = doc["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    let registry: Vec<&str> = single_id::rules::ALL.iter().map(|r| r.id).collect();
    assert_eq!(ids, registry);
    let text = t.run(&["rules"]).stdout();
    // Aligned: every summary starts in the same column.
    let columns: std::collections::BTreeSet<usize> = text
        .lines()
        .zip(single_id::rules::ALL)
        .map(|(line, rule)| line.find(rule.summary).expect("each line ends with its summary"))
        .collect();
    assert_eq!(columns.len(), 1, "{text}");
}

/// Code scanning keeps an alert open across builds only if its
/// fingerprint and location stay the same: two builds of one image whose
/// blobs differ (other file content, so other digests) give the same
/// fingerprints and locations, and a different finding a different one.
#[test]
fn sarif_fingerprints_and_locations_survive_a_rebuild() {
    use support::Compression;
    use support::layers::{file, layer};
    let results = |content: &[u8]| -> Vec<Value> {
        let t = TestDir::new();
        let mut oci = OciDir::create(t.join("image"));
        let mut spec = ImageSpec::declared("latest", Some("flattened"));
        spec.label_value = None;
        spec.layers = vec![(
            layer(&[file("usr/bin/su", content).mode(0o4755), file("etc/motd", content).owner(1000, 1000)]),
            Compression::Gzip,
        )];
        oci.add_image(&spec);
        let r = t.run(&["validate", "--format", "sarif", "image"]);
        assert_eq!(r.code(), 1, "{}", r.stderr());
        let log = r.json();
        schema::assert_valid_sarif(&log);
        log["runs"][0]["results"].as_array().unwrap().clone()
    };
    let (first, second) = (results(b"build 1"), results(b"build 2, other bytes"));
    assert!(first.len() >= 3, "{first:#?}");
    let stable = |r: &Value| (r["ruleId"].clone(), r["partialFingerprints"].clone(), r["locations"].clone());
    assert_eq!(first.iter().map(stable).collect::<Vec<_>>(), second.iter().map(stable).collect::<Vec<_>>());
    // The blob files did change, and are only a property.
    assert_ne!(first[0]["properties"]["file"], second[0]["properties"]["file"]);
    let prints: std::collections::BTreeSet<String> =
        first.iter().map(|r| r["partialFingerprints"]["singleIdFinding/v1"].as_str().unwrap().to_string()).collect();
    assert_eq!(prints.len(), first.len(), "two findings share a fingerprint: {first:#?}");
    // A relative layout stays a relative reference; an absolute one is a file URI.
    assert_eq!(first[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "image");
    let t = TestDir::new();
    image_with_warning(&t);
    let abs = t.join("image");
    let log = t.run(&["validate", "--format", "sarif", abs.to_str().unwrap()]).json();
    let uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].clone();
    assert_eq!(uri, format!("file://{}", abs.display()));
}
