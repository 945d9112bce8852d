//! Every schema compiles offline, and its test vectors in
//! `schema/tests/<schema>/{valid,invalid}/` pass and fail as they should.

use crate::support;

use std::fs;

use support::{repo_root, schema};

#[test]
fn every_schema_compiles_and_every_vector_behaves() {
    let mut checked = 0;
    for name in schema::names() {
        let v = schema::validator(&name);
        let stem = name.trim_end_matches(".schema.json");
        let dir = repo_root().join("schema/tests").join(stem);
        for (expect_valid, sub) in [(true, "valid"), (false, "invalid")] {
            let entries = fs::read_dir(dir.join(sub))
                .unwrap_or_else(|e| panic!("{name}: no {sub} test vectors in {}: {e}", dir.display()));
            let mut n = 0;
            for e in entries {
                let path = e.unwrap().path();
                let doc: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
                assert_eq!(errors.is_empty(), expect_valid, "{}: expected {sub}, errors: {errors:?}", path.display());
                n += 1;
            }
            assert!(n > 0, "{name}: the {sub} vector directory is empty");
            checked += n;
        }
    }
    assert!(checked >= 30, "only {checked} vectors found");
}

#[test]
fn report_schema_lists_exactly_the_rules() {
    let doc = schema::load("validate-report.schema.json");
    let mut in_schema: Vec<&str> =
        doc["$defs"]["ruleId"]["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let mut in_code: Vec<&str> = single_id::rules::ALL.iter().map(|r| r.id).collect();
    in_schema.sort_unstable();
    in_code.sort_unstable();
    assert_eq!(in_schema, in_code, "schema/validate-report.schema.json and rules::ALL disagree");
}
