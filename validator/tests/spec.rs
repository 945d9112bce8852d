//! The spec is normative and machine-checked: its requirement identifiers
//! are well-formed and listed once, every rule and schema cites one that
//! exists, and every JSON example in spec/ parses and validates.

mod support;

use std::collections::BTreeMap;
use std::fs;

use support::{repo_root, schema};

const SPEC: &str = "spec/single-id-images.md";
const LEVELS: [&str; 5] = ["MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY"];

fn read(path: &str) -> String {
    fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `| `ID` | LEVEL | ...` rows of the identifier table: the rows under
/// its header, up to the first line that is not a table row.
fn table(spec: &str) -> BTreeMap<String, String> {
    const HEADER: &str = "| Identifier | Level | Section | Summary |";
    let mut out = BTreeMap::new();
    let start = spec.lines().position(|l| l.trim() == HEADER).expect("the spec has no identifier table");
    for line in spec.lines().skip(start + 2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(cells.len() >= 4 && cells[1].starts_with('`'), "identifier table row without an identifier: {line}");
        let id = cells[1].trim_matches('`').to_string();
        assert!(
            ["MUST", "SHOULD", "MAY"].contains(&cells[2]),
            "{id}: table level {:?} is not MUST, SHOULD or MAY",
            cells[2]
        );
        assert!(out.insert(id.clone(), cells[2].to_string()).is_none(), "{id} is listed twice in the table");
    }
    out
}

/// `**ID (LEVEL).**` definitions in the body, each after its anchor line.
fn definitions(spec: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let lines: Vec<&str> = spec.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("**") else { continue };
        let Some(inner) = rest.strip_suffix(").**") else { continue };
        let Some((id, level)) = inner.split_once(" (") else { continue };
        assert!(LEVELS.contains(&level), "{id}: level {level:?} is not an RFC 2119 keyword");
        let anchor = format!("<a id=\"{}\"></a>", id.to_ascii_lowercase());
        assert_eq!(
            i.checked_sub(1).map(|p| lines[p].trim()),
            Some(anchor.as_str()),
            "{id}: the line before its definition must be {anchor}"
        );
        let level = level.trim_end_matches(" NOT").to_string();
        assert!(out.insert(id.to_string(), level).is_none(), "{id} is defined twice");
    }
    out
}

#[test]
fn identifiers_are_defined_once_and_tabled_with_their_level() {
    let spec = read(SPEC);
    let table = table(&spec);
    let defs = definitions(&spec);
    assert!(table.len() >= 40, "the identifier table has only {} rows", table.len());
    assert_eq!(
        table.keys().collect::<Vec<_>>(),
        defs.keys().collect::<Vec<_>>(),
        "table and body define different identifiers"
    );
    for (id, level) in &defs {
        assert_eq!(&table[id], level, "{id}: body and table disagree on the level");
        assert!(id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-'), "{id}: not UPPER-KEBAB");
    }
}

#[test]
fn every_rule_and_schema_cites_an_existing_clause() {
    let table = table(&read(SPEC));
    for rule in single_id::rules::ALL {
        assert!(
            table.contains_key(rule.clause),
            "rule {} cites {}, which the spec does not define",
            rule.id,
            rule.clause
        );
    }
    for name in schema::names() {
        let text = read(&format!("schema/{name}"));
        for cited in text.split("spec: ").skip(1) {
            for id in cited.split([')', '"']).next().unwrap().split(", ") {
                assert!(table.contains_key(id), "schema/{name} cites {id:?}, which the spec does not define");
            }
        }
    }
}

/// Runs every fenced JSON example of `path`; returns how many there were.
fn check_examples(path: &str) -> usize {
    let text = read(path);
    let mut count = 0;
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```json") else { continue };
        let words: Vec<&str> = info.split_whitespace().collect();
        let kind = words.iter().find_map(|w| w.strip_prefix("example=")).unwrap_or_else(|| {
            panic!("{path}:{}: a JSON block must say which schema it is an example of (```json example=KIND)", n + 1)
        });
        let expect_valid = !words.contains(&"invalid");
        let body: Vec<&str> = lines.by_ref().map(|(_, l)| l).take_while(|l| l.trim_start() != "```").collect();
        let at = format!("{path}:{} (example={kind})", n + 1);
        let doc: serde_json::Value =
            serde_json::from_str(&body.join("\n")).unwrap_or_else(|e| panic!("{at}: not JSON: {e}"));
        let schema_name = match kind {
            "annotations" => "annotations.schema.json",
            "manifest" => "image-manifest.schema.json",
            "config" => "image-config.schema.json",
            "index" => "image-index.schema.json",
            "report" => "validate-report.schema.json",
            other => panic!("{at}: unknown example kind {other:?}"),
        };
        let errors: Vec<String> = schema::validator(schema_name).iter_errors(&doc).map(|e| e.to_string()).collect();
        assert_eq!(errors.is_empty(), expect_valid, "{at}: schema {schema_name} said {errors:?}");
        if expect_valid {
            let typed = match kind {
                "manifest" => serde_json::from_value::<oci_spec::image::ImageManifest>(doc).map(drop),
                "config" => serde_json::from_value::<oci_spec::image::ImageConfiguration>(doc).map(drop),
                "index" => serde_json::from_value::<oci_spec::image::ImageIndex>(doc).map(drop),
                _ => Ok(()),
            };
            typed.unwrap_or_else(|e| panic!("{at}: oci-spec rejects it: {e}"));
        }
        count += 1;
    }
    count
}

#[test]
fn spec_examples_validate() {
    let n = check_examples(SPEC);
    assert!(n >= 5, "{SPEC} has only {n} tested JSON examples");
}

#[test]
fn proposal_examples_validate() {
    check_examples("spec/oci-proposal.md");
}

#[test]
fn rules_doc_is_current() {
    let path = repo_root().join("docs/rules.md");
    let expected = single_id::rules::markdown();
    if std::env::var_os("SINGLE_ID_BLESS").is_some() {
        fs::write(&path, &expected).unwrap();
    }
    let found = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        found == expected,
        "docs/rules.md is out of date; regenerate it with SINGLE_ID_BLESS=1 cargo test --test spec"
    );
}

/// Every requirement identifier that code or tests mention exists in the
/// spec, so a renamed or mistyped clause cannot linger in a comment or an
/// output line.
#[test]
fn every_identifier_cited_in_code_exists() {
    let table = table(&read(SPEC));
    let prefixes = ["ANNOTATION-", "PRODUCER-", "CONSUMER-", "POLICY-", "OCI-"];
    let mut cited = 0;
    for dir in ["validator/src", "validator/tests"] {
        for entry in walkdir::WalkDir::new(repo_root().join(dir)) {
            let entry = entry.unwrap();
            if entry.path().extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = fs::read_to_string(entry.path()).unwrap();
            for (i, _) in text.match_indices(|c: char| c.is_ascii_uppercase()) {
                let rest = &text[i..];
                if i > 0 && text.as_bytes()[i - 1].is_ascii_alphanumeric()
                    || !prefixes.iter().any(|p| rest.starts_with(p))
                {
                    continue;
                }
                let id: String =
                    rest.chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '-').collect();
                let id = id.trim_end_matches('-');
                if id.matches('-').count() == 0 {
                    continue;
                }
                assert!(
                    table.contains_key(id),
                    "{} cites {id}, which the spec does not define",
                    entry.path().display()
                );
                cited += 1;
            }
        }
    }
    assert!(cited > 50, "only {cited} citations found; is the scan broken?");
}
