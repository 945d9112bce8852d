//! The committed fixtures are exactly what `single-id-conformance generate`
//! makes of the committed cases; every `expected.json` is a valid
//! `Expectation`; every requirement it cites exists in the spec with the
//! same level; and together the cases test every consumer and policy
//! requirement that unpacking can test.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use single_id_conformance::expect::{Expectation, Level};

const SPEC: &str = "spec/single-id-images.md";
const REGENERATE: &str =
    "regenerate them with `cargo run -p single-id-conformance -- generate` from the repository root";
/// Requirements about what a consumer's user may choose or what an
/// ID-preserving consumer does: no single-ID unpack can show them.
const NOT_TESTABLE_BY_UNPACKING: [&str; 3] = ["POLICY-OVERRIDE", "POLICY-PRESERVING", "CONSUMER-LIMITS"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the crate lives in the workspace").to_path_buf()
}

fn fixtures_dir() -> PathBuf {
    repo_root().join("conformance/fixtures")
}

/// Every regular file under `dir`, by path relative to it.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                walk(base, &path, out);
            } else {
                assert!(meta.is_file(), "{} is neither a file nor a directory", path.display());
                out.insert(path.strip_prefix(base).unwrap().to_path_buf(), fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Every fixture's expectation, by fixture name.
fn expectations() -> BTreeMap<String, (Value, Expectation)> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(fixtures_dir()).expect("conformance/fixtures exists") {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let path = dir.join("expected.json");
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let parsed: Expectation = serde_json::from_value(doc.clone())
            .unwrap_or_else(|e| panic!("{}: not an Expectation: {e}", path.display()));
        out.insert(name, (doc, parsed));
    }
    assert!(out.len() >= 20, "only {} fixtures", out.len());
    out
}

/// The schema helper the validator's tests use: every schema under
/// `schema/`, compiled offline with the others registered.
#[allow(dead_code)]
#[path = "../../validator/tests/it/support/schema.rs"]
mod schema;

fn schema_validator(name: &str) -> jsonschema::Validator {
    schema::validator(name)
}

fn schema_errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc).map(|e| format!("{e} at {}", e.instance_path())).collect()
}

/// `ID -> level` from the spec's requirement index: the rows between its
/// header (`| Identifier | Level | Section | Summary |`, with or without a
/// further `Verified by` column) and the first line that is not a table
/// row. Retired rows (level `—`) are left out: nothing may cite them.
fn spec_table() -> BTreeMap<String, Level> {
    const HEADER: &str = "| Identifier | Level | Section | Summary |";
    let text = fs::read_to_string(repo_root().join(SPEC)).unwrap();
    let start = text.lines().position(|l| l.trim().starts_with(HEADER)).expect("the spec has a requirement index");
    let mut out = BTreeMap::new();
    for line in text.lines().skip(start + 2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let id = cells[1].trim_matches('`').to_string();
        let level = match cells[2] {
            "MUST" => Level::Must,
            "SHOULD" => Level::Should,
            "MAY" => Level::May,
            "—" => continue,
            other => panic!("{id}: level {other:?} in the spec's table"),
        };
        out.insert(id, level);
    }
    assert!(out.len() >= 40, "the spec's table has only {} rows", out.len());
    out
}

#[test]
fn committed_fixtures_are_exactly_what_the_generator_makes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fixtures");
    let run = Command::new(env!("CARGO_BIN_EXE_single-id-conformance"))
        .arg("generate")
        .arg("--cases")
        .arg(repo_root().join("conformance/cases"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "generate failed: {}", String::from_utf8_lossy(&run.stderr));
    let fresh = files_under(&out);
    let committed = files_under(&fixtures_dir());
    let mut problems = Vec::new();
    for (path, bytes) in &fresh {
        match committed.get(path) {
            None => problems.push(format!("missing: conformance/fixtures/{}", path.display())),
            Some(b) if b != bytes => problems.push(format!("differs: conformance/fixtures/{}", path.display())),
            Some(_) => {}
        }
    }
    for path in committed.keys().filter(|p| !fresh.contains_key(*p)) {
        problems.push(format!("not generated from any case: conformance/fixtures/{}", path.display()));
    }
    assert!(problems.is_empty(), "the committed fixtures are out of date; {REGENERATE}:\n{}", problems.join("\n"));

    // The generator is deterministic: a second run writes the same bytes.
    let again = tmp.path().join("again");
    let run = Command::new(env!("CARGO_BIN_EXE_single-id-conformance"))
        .args(["generate", "--cases"])
        .arg(repo_root().join("conformance/cases"))
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert!(run.status.success());
    assert!(files_under(&again) == fresh, "two runs of generate wrote different bytes");
}

#[test]
fn fixtures_are_small() {
    for (path, bytes) in files_under(&fixtures_dir()) {
        assert!(bytes.len() <= 16 * 1024, "{}: {} bytes; keep fixtures small", path.display(), bytes.len());
    }
}

#[test]
fn every_expectation_parses_and_validates_against_its_schema() {
    let v = schema_validator("conformance-expectation.schema.json");
    for (name, (doc, parsed)) in expectations() {
        let errors = schema_errors(&v, &doc);
        assert!(errors.is_empty(), "{name}/expected.json: {}", errors.join("; "));
        assert_eq!(parsed.case, name, "{name}/expected.json names another case");
        let layout = fixtures_dir().join(&name).join("layout/index.json");
        let index: Value = serde_json::from_str(&fs::read_to_string(&layout).unwrap()).unwrap();
        let refs: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["annotations"]["org.opencontainers.image.ref.name"].as_str())
            .collect();
        assert_eq!(refs, [parsed.reference.as_str()], "{name}: index.json's ref name is not the expectation's");
    }
}

#[test]
fn every_case_validates_against_its_schema() {
    let v = schema_validator("conformance-case.schema.json");
    let dir = repo_root().join("conformance/cases");
    let mut n = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let doc: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let errors = schema_errors(&v, &doc);
        assert!(errors.is_empty(), "{}: {}", path.display(), errors.join("; "));
        n += 1;
    }
    assert!(n >= 20, "only {n} cases");
}

#[test]
fn requirements_are_the_specs_with_their_levels() {
    let table = spec_table();
    for (name, (_, e)) in expectations() {
        let listed: BTreeSet<&str> = e.requirements.iter().map(|r| r.id.as_str()).collect();
        for r in &e.requirements {
            let level = table.get(&r.id).unwrap_or_else(|| panic!("{name}: {} is not in the spec's table", r.id));
            assert_eq!(&r.level, level, "{name}: {} has level {:?} in the spec", r.id, level);
        }
        let paths = e.present.iter().map(|p| (&p.path, &p.requirements));
        for (path, ids) in paths.chain(e.absent.iter().map(|a| (&a.path, &a.requirements))) {
            for id in ids {
                assert!(listed.contains(id.as_str()), "{name}: {path} cites {id}, which the fixture does not list");
            }
        }
    }
}

#[test]
fn cases_cover_every_consumer_and_policy_requirement() {
    let table = spec_table();
    let tested: BTreeSet<String> =
        expectations().values().flat_map(|(_, e)| e.requirements.iter().map(|r| r.id.clone())).collect();
    let untested: Vec<&String> = table
        .keys()
        .filter(|id| id.starts_with("CONSUMER-") || id.starts_with("POLICY-"))
        .filter(|id| !NOT_TESTABLE_BY_UNPACKING.contains(&id.as_str()))
        .filter(|id| !tested.contains(*id))
        .collect();
    assert!(untested.is_empty(), "no case tests {untested:?}");
    let readme = fs::read_to_string(repo_root().join("conformance/cases/README.md")).unwrap();
    for id in NOT_TESTABLE_BY_UNPACKING {
        assert!(table.contains_key(id), "{id} is no longer in the spec");
        assert!(readme.contains(id), "conformance/cases/README.md does not say why {id} has no case");
    }
}

/// Charliecloud's `ch-image` treats an image whose entries all lie under
/// one top-level directory (that is not a standard one such as `etc` or
/// `usr`) as a tarball wrapped in a directory and strips that directory
/// from every name, so a fixture with one top-level directory would test
/// Charliecloud on names the image does not have. Every case therefore has
/// at least two top-level names, and never exactly one top-level directory
/// (a name counts as a directory, as Charliecloud counts it, when a
/// directory entry has it or an entry lies beneath it). Names that climb
/// above the root are left out: Charliecloud refuses them anyway.
#[test]
fn every_case_has_two_top_level_entries() {
    let cases = single_id_conformance::generate::load_cases(&repo_root().join("conformance/cases")).unwrap();
    let mut problems = Vec::new();
    for (name, case) in &cases {
        let mut names = BTreeSet::new();
        let mut dirs = BTreeSet::new();
        for entry in case.layers.iter().flat_map(|l| &l.entries) {
            let parts: Vec<&str> = entry.path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
            let Some(first) = parts.first().filter(|c| **c != "..") else { continue };
            names.insert(first.to_string());
            if parts.len() > 1 || entry.kind == single_id_conformance::case::EntryType::Dir {
                dirs.insert(first.to_string());
            }
        }
        if names.len() < 2 || dirs.len() == 1 {
            problems.push(format!("{name}: top-level names {names:?}, of which directories {dirs:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "give these cases a second top-level directory (Charliecloud strips a single one):\n{}",
        problems.join("\n")
    );
}

/// The layer blobs of a fixture's image, lowest first.
fn layer_blobs(name: &str) -> Vec<PathBuf> {
    let layout = fixtures_dir().join(name).join("layout");
    let blob = |digest: &str| layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let read = |path: PathBuf| -> Value { serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap() };
    let index = read(layout.join("index.json"));
    let manifest = read(blob(index["manifests"][0]["digest"].as_str().unwrap()));
    manifest["layers"].as_array().unwrap().iter().map(|l| blob(l["digest"].as_str().unwrap())).collect()
}

/// Sparse entries are easy to get subtly wrong (GNU tar reads each
/// region's data from a fresh block where other readers do not, and
/// extends a file to its real size only through a final empty region), so
/// the fixtures that test CONSUMER-SPARSE are extracted with GNU tar and
/// bsdtar, where installed (`.ci/run` installs both), and each must
/// produce the expected content at every expected path and nothing at the
/// absent ones.
#[test]
fn sparse_fixtures_extract_as_expected_with_gnu_tar_and_bsdtar() {
    let mut checked = 0;
    for (name, (_, e)) in expectations() {
        if !e.requirements.iter().any(|r| r.id == "CONSUMER-SPARSE") {
            continue;
        }
        for tool in ["tar", "bsdtar"] {
            if Command::new(tool).arg("--version").output().is_err() {
                eprintln!("{name}: {tool} is not installed; not checked with it");
                continue;
            }
            let dest = tempfile::tempdir().unwrap();
            for blob in layer_blobs(&name) {
                let run = Command::new(tool).arg("-xf").arg(&blob).arg("-C").arg(dest.path()).output().unwrap();
                assert!(
                    run.status.success(),
                    "{name}: {tool} -xf {} failed: {}",
                    blob.display(),
                    String::from_utf8_lossy(&run.stderr)
                );
            }
            for p in &e.present {
                let Some(want) = &p.sha256 else { continue };
                let bytes = fs::read(dest.path().join(&p.path))
                    .unwrap_or_else(|err| panic!("{name}: {tool} left no readable {}: {err}", p.path));
                let found = single_id_conformance::generate::sha256(&bytes);
                assert_eq!(&found, want, "{name}: {tool} extracted {} with other content", p.path);
            }
            for a in &e.absent {
                assert!(
                    fs::symlink_metadata(dest.path().join(&a.path)).is_err(),
                    "{name}: {tool} created {}, which must be absent",
                    a.path
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0 || Command::new("tar").arg("--version").output().is_err(), "no sparse fixture was checked");
}

/// The harness's copy of the requirement index (src/spec_index.rs), which
/// reports use to name each requirement's section, is the spec's: every
/// requirement that is not retired, with its level and the heading of the
/// subsection holding its anchor.
#[test]
fn the_harness_requirement_table_is_the_specs() {
    let text = fs::read_to_string(repo_root().join(SPEC)).unwrap();
    let mut sections: BTreeMap<String, String> = BTreeMap::new();
    let mut heading = String::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("### ").or_else(|| line.strip_prefix("## ")) {
            heading = h.trim().to_string();
        }
        if let Some(rest) = line.strip_prefix("<a id=\"") {
            if let Some(id) = rest.split('"').next() {
                sections.insert(id.to_ascii_uppercase(), heading.clone());
            }
        }
    }
    let table = spec_table();
    let ours: BTreeMap<&str, &single_id_conformance::spec_index::Requirement> =
        single_id_conformance::spec_index::INDEX.iter().map(|r| (r.id, r)).collect();
    let mut problems = Vec::new();
    for (id, level) in &table {
        match ours.get(id.as_str()) {
            None => problems.push(format!("{id} is missing")),
            Some(r) => {
                if r.level != *level {
                    problems.push(format!("{id}: level {:?}, the spec says {level:?}", r.level));
                }
                if Some(&r.section.to_string()) != sections.get(id) {
                    problems.push(format!("{id}: section {:?}, the spec says {:?}", r.section, sections.get(id)));
                }
            }
        }
    }
    for id in ours.keys() {
        if !table.contains_key(*id) {
            problems.push(format!("{id} is not in the spec's index"));
        }
    }
    assert!(
        problems.is_empty(),
        "conformance/src/spec_index.rs is out of date with {SPEC}; update it:\n  {}",
        problems.join("\n  ")
    );
}

/// The Containerfile and the GitHub Actions workflow a runtime copies are
/// checked for their structure: every Containerfile line is an instruction,
/// a continuation or a comment, the harness is built and is the
/// entrypoint; the workflow is indented YAML whose job runs the harness
/// with JUnit output and uploads it.
#[test]
fn the_containerfile_and_the_workflow_parse() {
    let text = fs::read_to_string(repo_root().join("conformance/Containerfile")).unwrap();
    const INSTRUCTIONS: [&str; 9] = ["FROM", "RUN", "COPY", "WORKDIR", "ENTRYPOINT", "CMD", "ENV", "ARG", "LABEL"];
    let mut continued = false;
    let mut seen = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if !continued {
            let word = t.split_whitespace().next().unwrap();
            assert!(INSTRUCTIONS.contains(&word), "Containerfile line {}: {word} is not an instruction", n + 1);
            seen.insert(word.to_string());
        }
        continued = t.ends_with('\\');
    }
    assert!(!continued, "the Containerfile ends in a continuation");
    assert!(seen.contains("FROM") && seen.contains("ENTRYPOINT"), "{seen:?}");
    assert!(text.contains("cargo build --release --locked -p single-id-conformance"));
    assert!(text.contains("ENTRYPOINT [\"single-id-conformance\"]"));

    let yaml = fs::read_to_string(repo_root().join("conformance/ci/github-actions.yml")).unwrap();
    let mut keys = BTreeSet::new();
    for (n, line) in yaml.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        assert!(!line.contains('\t'), "workflow line {}: a tab", n + 1);
        let indent = line.len() - line.trim_start().len();
        assert!(indent % 2 == 0, "workflow line {}: indentation {indent} is not a multiple of two", n + 1);
        let t = line.trim_start().trim_start_matches("- ");
        if let Some((k, _)) = t.split_once(':') {
            if !k.contains(' ') {
                keys.insert(k.to_string());
            }
        }
    }
    for k in ["name", "on", "jobs", "runs-on", "steps", "uses", "run"] {
        assert!(keys.contains(k), "the workflow has no {k:?} key: {keys:?}");
    }
    assert!(yaml.contains("single-id-conformance run --adapter") && yaml.contains("--format junit"));
    assert!(yaml.contains("actions/upload-artifact"));
}
