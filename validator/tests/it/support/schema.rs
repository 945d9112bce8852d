//! The JSON Schemas under `schema/`, compiled offline.

use std::fs;

use serde_json::Value;

use super::repo_root;

pub fn load(name: &str) -> Value {
    let path = repo_root().join("schema").join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// File names of every schema.
pub fn names() -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(repo_root().join("schema"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".schema.json"))
        .collect();
    out.sort();
    out
}

/// A validator for `name` (e.g. `annotations.schema.json`), with every
/// other schema registered so that relative `$ref`s resolve offline.
pub fn validator(name: &str) -> jsonschema::Validator {
    let resources: Vec<(String, jsonschema::Resource)> = names()
        .iter()
        .map(|n| {
            let doc = load(n);
            let id = doc["$id"].as_str().unwrap_or_else(|| panic!("{n} has no $id")).to_string();
            (id, jsonschema::Resource::from_contents(doc))
        })
        .collect();
    let registry = jsonschema::Registry::new().extend(resources).unwrap().prepare().unwrap();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .offline()
        .with_registry(&registry)
        .build(&load(name))
        .unwrap_or_else(|e| panic!("{name} does not compile: {e}"))
}

/// Panics with every error when `doc` does not validate against `name`.
pub fn assert_valid(name: &str, doc: &Value) {
    let v = validator(name);
    let errors: Vec<String> = v.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "not valid against {name}:\n{}\n{doc:#}", errors.join("\n"));
}

/// The official SARIF 2.1.0 schema (draft-04), which `scripts/test.sh`
/// fetches and pins; its path comes in `SINGLE_ID_SARIF_SCHEMA`.
pub fn sarif_validator() -> jsonschema::Validator {
    let path = std::env::var("SINGLE_ID_SARIF_SCHEMA").unwrap_or_else(|_| {
        panic!(
            "SINGLE_ID_SARIF_SCHEMA is not set: run the tests through scripts/test.sh, which fetches the SARIF schema"
        )
    });
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // The published file's pattern for `language` has a stray `]` that
    // makes it an invalid regex, and the whole schema fails to compile; we
    // never emit `language`, so put the evidently intended pattern in its place.
    let bad = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
    assert!(text.contains(bad), "the SARIF schema changed; revisit this workaround");
    let text = text.replace(bad, r#""^[a-zA-Z]{2}(-[a-zA-Z]{2})?$""#);
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .offline()
        .build(&schema)
        .unwrap_or_else(|e| panic!("the SARIF schema does not compile: {e}"))
}

/// Valid against the SARIF schema, and clean under Microsoft's SARIF
/// validator with its SARIF and GitHub code scanning rules: no error and no
/// warning (its notes are advice on optional properties).
pub fn assert_valid_sarif(doc: &Value) {
    let v = sarif_validator();
    let errors: Vec<String> = v.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "not valid SARIF 2.1.0:\n{}", errors.join("\n"));
    assert_multitool_clean(doc);
}

fn doc_has_no_docs_url(doc: &Value) -> bool {
    doc["runs"].as_array().into_iter().flatten().all(|r| r["tool"]["driver"].get("informationUri").is_none())
}

/// Runs `Sarif.Multitool validate --rule-kind Gh;Sarif` (the npm package
/// @microsoft/sarif-multitool-linux, which `scripts/test.sh` fetches and
/// pins; its path comes in `SINGLE_ID_SARIF_MULTITOOL`).
fn assert_multitool_clean(doc: &Value) {
    let problems = multitool_problems(doc);
    assert!(
        problems.is_empty(),
        "Microsoft's SARIF validator (GitHub rules) objects:\n{}\n{doc:#}",
        problems.join("\n")
    );
}

/// The errors and warnings of Microsoft's SARIF validator on `doc`.
pub fn multitool_problems(doc: &Value) -> Vec<String> {
    let tool = std::env::var("SINGLE_ID_SARIF_MULTITOOL").unwrap_or_else(|_| {
        panic!("SINGLE_ID_SARIF_MULTITOOL is not set: run the tests through scripts/test.sh, which fetches Microsoft's SARIF validator")
    });
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("log.sarif"), dir.path().join("validation.sarif"));
    fs::write(&input, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let run = std::process::Command::new(&tool)
        .args(["validate", "--rule-kind", "Gh;Sarif", "--output"])
        .arg(&output)
        .arg(&input)
        // The tool needs ICU unless told that invariant culture will do.
        .env("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1")
        .env("DOTNET_CLI_TELEMETRY_OPTOUT", "1")
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    let validation: Value = fs::read(&output)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| panic!("the SARIF validator wrote no results: {}", String::from_utf8_lossy(&run.stdout)));
    validation["runs"][0]["results"]
        .as_array()
        .into_iter()
        .flatten()
        // A result without a level is a warning (SARIF's default).
        .filter(|r| matches!(r["level"].as_str(), None | Some("error" | "warning")))
        // The tool has no public home page yet: informationUri is written
        // only from --docs-url, never as a link that would be broken.
        .filter(|r| !(r["message"]["id"] == "Warning_ProvideToolnformationUri" && doc_has_no_docs_url(doc)))
        .map(|r| format!("{} {}: {}", r["ruleId"], r["level"], r["message"]))
        .collect()
}
