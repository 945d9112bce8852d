//! The spec is normative and machine-checked: its requirement identifiers
//! are well-formed and listed once (retired ones kept and marked), every
//! rule and schema cites one that exists, the requirement index's "Verified
//! by" column is what the rules and conformance cases say, every internal
//! link resolves, and every JSON example in spec/ parses and validates.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use support::{repo_root, schema};

const SPEC: &str = "spec/single-id-images.md";
const PROPOSAL: &str = "spec/oci-proposal.md";
const LEVELS: [&str; 5] = ["MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY"];
const INDEX_HEADER: &str = "| Identifier | Level | Section | Summary | Verified by |";
const INDEX_RULE: &str = "|---|---|---|---|---|";
/// The level cell of a retired requirement.
const RETIRED_LEVEL: &str = "—";
/// The "Verified by" cell of a retired requirement.
const RETIRED_VERIFIED: &str = "retired";
/// Ends the "Verified by" cell of every MAY requirement.
const MAY_NOTE: &str = "MAY: reported as implemented or not, never scored as a failure";
const BLESS: &str = "SINGLE_ID_BLESS";

fn read(path: &str) -> String {
    fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One row of the requirement index.
#[derive(Clone, Debug)]
struct Row {
    /// 0-based line number in the spec.
    line: usize,
    id: String,
    /// `MUST`, `SHOULD`, `MAY`, or [`RETIRED_LEVEL`].
    level: String,
    section: String,
    summary: String,
    verified: String,
}

impl Row {
    fn retired(&self) -> bool {
        self.level == RETIRED_LEVEL
    }

    fn render(&self, verified: &str) -> String {
        format!("| `{}` | {} | {} | {} | {} |", self.id, self.level, self.section, self.summary, verified)
    }
}

/// The rows of the requirement index: every line under its header and
/// separator, up to the first line that is not a table row.
fn index(spec: &str) -> Vec<Row> {
    let lines: Vec<&str> = spec.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == INDEX_HEADER)
        .unwrap_or_else(|| panic!("the spec has no requirement index with the header {INDEX_HEADER:?}"));
    assert_eq!(
        lines.get(start + 1).map(|l| l.trim()),
        Some(INDEX_RULE),
        "the index header must be followed by {INDEX_RULE}"
    );
    let mut rows = Vec::new();
    let mut seen = BTreeSet::new();
    for (n, line) in lines.iter().enumerate().skip(start + 2).take_while(|(_, l)| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(
            cells.len() == 7 && cells[0].is_empty() && cells[6].is_empty(),
            "{SPEC}:{}: an index row has five cells: {line}",
            n + 1
        );
        let id = cells[1]
            .strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .unwrap_or_else(|| panic!("{SPEC}:{}: index row without an identifier: {line}", n + 1))
            .to_string();
        assert!(
            ["MUST", "SHOULD", "MAY", RETIRED_LEVEL].contains(&cells[2]),
            "{id}: index level {:?} is not MUST, SHOULD, MAY or {RETIRED_LEVEL} (retired)",
            cells[2]
        );
        assert!(seen.insert(id.clone()), "{id} is listed twice in the index");
        rows.push(Row {
            line: n,
            id,
            level: cells[2].to_string(),
            section: cells[3].to_string(),
            summary: cells[4].to_string(),
            verified: cells[5].to_string(),
        });
    }
    rows
}

/// `ID -> level` for every requirement in force (retired rows left out).
fn table(spec: &str) -> BTreeMap<String, String> {
    index(spec).into_iter().filter(|r| !r.retired()).map(|r| (r.id, r.level)).collect()
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
    let rows = index(&spec);
    let table = table(&spec);
    let defs = definitions(&spec);
    assert!(table.len() >= 40, "the requirement index has only {} rows in force", table.len());
    assert_eq!(
        table.keys().collect::<Vec<_>>(),
        defs.keys().collect::<Vec<_>>(),
        "the index and the body define different identifiers"
    );
    for (id, level) in &defs {
        assert_eq!(&table[id], level, "{id}: body and index disagree on the level");
        assert!(id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-'), "{id}: not UPPER-KEBAB");
    }
    // A retired identifier keeps its row and its anchor (old links still
    // land somewhere), but no definition.
    for row in rows.iter().filter(|r| r.retired()) {
        assert!(row.summary.starts_with("Retired"), "{}: a retired row's summary starts with \"Retired\"", row.id);
        assert!(!defs.contains_key(&row.id), "{} is retired but still defined in the body", row.id);
        let anchor = format!("<a id=\"{}\"></a>", row.id.to_ascii_lowercase());
        assert!(spec.lines().any(|l| l.trim() == anchor), "{}: a retired identifier keeps its anchor {anchor}", row.id);
    }
}

#[test]
fn every_rule_and_schema_cites_an_existing_clause() {
    let spec = read(SPEC);
    let table = table(&spec);
    let retired: BTreeSet<String> = index(&spec).into_iter().filter(Row::retired).map(|r| r.id).collect();
    for rule in single_id::rules::ALL {
        assert!(!retired.contains(rule.clause), "rule {} cites {}, which the spec has retired", rule.id, rule.clause);
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

// ---------------------------------------------------------------------------
// The "Verified by" column

/// Case name -> the requirement identifiers its `requirements` list, for
/// every `conformance/cases/*.json`.
fn conformance_cases() -> BTreeMap<String, Vec<String>> {
    let dir = repo_root().join("conformance/cases");
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        let ids = doc["requirements"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no `requirements` array", path.display()))
            .iter()
            .map(|r| {
                r["id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: a requirement without an `id`", path.display()))
                    .to_string()
            })
            .collect();
        out.insert(name, ids);
    }
    assert!(!out.is_empty(), "no conformance cases under {}", dir.display());
    out
}

/// What the "Verified by" cell of `row` must say, computed from the rule
/// registry and the conformance cases; `None` when nothing verifies the
/// requirement, so that the cell must give the reason.
fn computed_verified_by(row: &Row, cases: &BTreeMap<String, Vec<String>>) -> Option<String> {
    if row.retired() {
        return Some(RETIRED_VERIFIED.to_string());
    }
    let mut parts: Vec<String> =
        single_id::rules::ALL.iter().filter(|r| r.clause == row.id).map(|r| format!("`{}`", r.id)).collect();
    parts.extend(
        cases
            .iter()
            .filter(|(_, ids)| ids.contains(&row.id))
            .map(|(name, _)| format!("[fixture {name}](../conformance/cases/{name}.json)")),
    );
    let mut cell = parts.join(", ");
    if row.level == "MAY" {
        cell = if cell.is_empty() { MAY_NOTE.to_string() } else { format!("{cell}; {MAY_NOTE}") };
    }
    (!cell.is_empty()).then_some(cell)
}

/// Whether a cell is in the form [`computed_verified_by`] writes, as
/// opposed to a sentence giving the reason why nothing verifies a row.
fn looks_computed(cell: &str) -> bool {
    cell.is_empty()
        || cell.starts_with('`')
        || cell.starts_with("[fixture ")
        || cell.starts_with("MAY:")
        || cell == RETIRED_VERIFIED
}

/// Writes `text` to `path` through a temporary file, so that another test
/// reading the spec at the same moment never sees half of it.
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("md.bless-tmp");
    fs::write(&tmp, text).unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The "Verified by" column lists, for every requirement, the validator
/// rules that cite it and the conformance fixtures that list it; a
/// requirement that neither verifies carries a sentence saying why.
/// `SINGLE_ID_BLESS=1` rewrites every computed cell and keeps the reasons.
#[test]
fn requirement_index_verified_by_is_current() {
    let path = repo_root().join(SPEC);
    let spec = read(SPEC);
    let rows = index(&spec);
    let cases = conformance_cases();

    let known: BTreeSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    for (name, ids) in &cases {
        for id in ids {
            assert!(known.contains(id.as_str()), "conformance case {name} lists {id}, which the spec does not define");
        }
    }

    let mut wanted: BTreeMap<usize, String> = BTreeMap::new();
    let mut need_reason = Vec::new();
    let mut unverified = Vec::new();
    for row in &rows {
        match computed_verified_by(row, &cases) {
            Some(cell) => {
                wanted.insert(row.line, cell);
            }
            None => {
                unverified.push(format!("{} ({}): {}", row.id, row.level, row.verified));
                if looks_computed(&row.verified) {
                    need_reason.push(row.id.clone());
                } else {
                    wanted.insert(row.line, row.verified.clone());
                }
            }
        }
    }
    if !unverified.is_empty() {
        eprintln!("requirements that no rule or fixture verifies:\n  {}", unverified.join("\n  "));
    }

    let bless = std::env::var_os(BLESS).is_some();
    let mut stale = Vec::new();
    let mut lines: Vec<String> = spec.lines().map(str::to_string).collect();
    for row in &rows {
        let Some(cell) = wanted.get(&row.line) else { continue };
        if *cell != row.verified {
            stale.push(format!("{}: {:?} should be {:?}", row.id, row.verified, cell));
            lines[row.line] = row.render(cell);
        }
    }
    if bless && !stale.is_empty() {
        let mut text = lines.join("\n");
        if spec.ends_with('\n') {
            text.push('\n');
        }
        write_atomically(&path, &text);
    }
    assert!(
        need_reason.is_empty(),
        "nothing verifies {need_reason:?}: add a validator rule or a conformance fixture, or write in the \
         \"Verified by\" cell one sentence saying why no machine can check it"
    );
    assert!(
        bless || stale.is_empty(),
        "the \"Verified by\" column of {SPEC} is out of date; regenerate it with \
         {BLESS}=1 cargo test -p single-id --test it spec::requirement_index:\n  {}",
        stale.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// Headings, links and spelling

/// The anchor GitHub gives a heading: lower case, punctuation other than
/// `-` and `_` dropped, spaces turned into `-`.
fn slug(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c.to_lowercase().next().unwrap()),
            _ => None,
        })
        .collect()
}

/// Headings of `text` outside code fences, as (level, title).
fn headings(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let level = line.chars().take_while(|&c| c == '#').count();
        if level > 0 && line[level..].starts_with(' ') {
            out.push((level, line[level + 1..].trim().to_string()));
        }
    }
    out
}

/// Every anchor a link into `text` may name: heading slugs (with GitHub's
/// `-1`, `-2` suffixes for repeats) and explicit `<a id>` anchors.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, title) in headings(text) {
        let s = slug(&title);
        let n = counts.entry(s.clone()).or_default();
        out.insert(if *n == 0 { s.clone() } else { format!("{s}-{n}") });
        *n += 1;
    }
    for part in text.split("<a id=\"").skip(1) {
        out.insert(part.split('"').next().unwrap().to_string());
    }
    out
}

/// Link targets in `text` outside code fences: inline `](target)` and
/// reference definitions `[name]: target`.
fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        for part in line.split("](").skip(1) {
            out.push((n + 1, part.split(')').next().unwrap().to_string()));
        }
        if let Some(rest) = line.strip_prefix('[')
            && let Some((_, target)) = rest.split_once("]: ")
        {
            out.push((n + 1, target.trim().to_string()));
        }
    }
    out
}

#[test]
fn every_internal_link_resolves() {
    let texts: BTreeMap<&str, String> = [SPEC, PROPOSAL].iter().map(|&d| (d, read(d))).collect();
    let parsed: BTreeMap<&str, BTreeSet<String>> = texts.iter().map(|(&d, t)| (d, anchors(t))).collect();
    let mut broken = Vec::new();
    for (&doc, text) in &texts {
        for (line, target) in link_targets(text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target.as_str(), ""));
            // The document the link lands in, relative to the repository.
            let dest = if file.is_empty() {
                doc.to_string()
            } else {
                let joined = Path::new(doc).parent().unwrap().join(file);
                let mut parts: Vec<String> = Vec::new();
                for c in joined.components() {
                    match c {
                        std::path::Component::ParentDir => {
                            parts.pop();
                        }
                        std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
                        _ => {}
                    }
                }
                parts.join("/")
            };
            if !repo_root().join(&dest).exists() {
                broken.push(format!("{doc}:{line}: {target} (no file {dest})"));
                continue;
            }
            if anchor.is_empty() {
                continue;
            }
            // Anchors are checked in the documents this test parses.
            if let Some(set) = parsed.get(dest.as_str())
                && !set.contains(anchor)
            {
                broken.push(format!("{doc}:{line}: {target} (no such anchor in {dest})"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n  {}", broken.join("\n  "));
}

/// The table of contents lists every section, and the index's Section
/// column names one.
#[test]
fn sections_are_listed_and_cited_by_name() {
    let spec = read(SPEC);
    let sections: Vec<String> = headings(&spec)
        .into_iter()
        .filter(|(l, _)| *l == 2)
        .map(|(_, t)| t)
        .filter(|t| t != "Table of contents")
        .collect();
    for title in &sections {
        let entry = format!("- [{title}](#{})", slug(title));
        assert!(spec.lines().any(|l| l.trim() == entry), "the table of contents lacks {entry}");
    }
    for row in index(&spec) {
        assert!(sections.contains(&row.section), "{}: section {:?} is not a section of the spec", row.id, row.section);
    }
}

/// image-spec writes American English; so do we.
#[test]
fn spelling_is_american() {
    const BRITISH: [&str; 16] = [
        "normalis",
        "behaviour",
        "recognis",
        "honour",
        "organis",
        "summaris",
        "capitalis",
        "serialis",
        "initialis",
        "authoris",
        "prioritis",
        "standardis",
        "utilis",
        "favour",
        "colour",
        "artefact",
    ];
    for doc in [SPEC, PROPOSAL] {
        for (n, line) in read(doc).lines().enumerate() {
            let lower = line.to_lowercase();
            for word in BRITISH {
                assert!(!lower.contains(word), "{doc}:{}: British spelling {word:?}: {line}", n + 1);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// JSON examples

/// Decodes `s` as a URL query value: `+` is a space, `%XX` a byte.
fn query_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3).ok_or_else(|| format!("truncated escape in {s:?}"))?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape %{hex} in {s:?}"))?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} does not decode to UTF-8"))
}

/// The schema for a fence's media type, and whether oci-spec parses it too.
fn schema_for(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "application/vnd.oci.image.manifest.v1+json" => "image-manifest.schema.json",
        "application/vnd.oci.image.config.v1+json" => "image-config.schema.json",
        "application/vnd.oci.image.index.v1+json" => "image-index.schema.json",
        "application/vnd.single-id.annotations+json" => "annotations.schema.json",
        "application/vnd.single-id.validate-report+json" => "validate-report.schema.json",
        _ => return None,
    })
}

/// Runs every fenced JSON example of `path`; returns how many there were.
///
/// A JSON block is fenced in image-spec's form,
/// ```` ```json,title=Short%20title&mediatype=application/vnd.oci.image.manifest.v1%2Bjson ````,
/// with `&valid=false` for a counter-example, which must fail its schema.
fn check_examples(path: &str) -> usize {
    let text = read(path);
    let mut count = 0;
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```json") else { continue };
        let at = format!("{path}:{}", n + 1);
        let query = info.strip_prefix(',').unwrap_or_else(|| {
            panic!(
                "{at}: a JSON block is fenced as ```json,title=TITLE&mediatype=MEDIA%2BTYPE (image-spec's form), \
                 not {line:?}"
            )
        });
        let mut params = BTreeMap::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or_else(|| panic!("{at}: {pair:?} is not KEY=VALUE"));
            let value = query_decode(value).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert!(params.insert(key, value).is_none(), "{at}: {key} given twice");
        }
        for key in params.keys() {
            assert!(["title", "mediatype", "valid"].contains(key), "{at}: unknown fence parameter {key:?}");
        }
        assert!(params.get("title").is_some_and(|t| !t.trim().is_empty()), "{at}: the fence needs a title");
        let media_type = params.get("mediatype").unwrap_or_else(|| panic!("{at}: the fence needs a mediatype"));
        let expect_valid = match params.get("valid").map(String::as_str) {
            None => true,
            Some("false") => false,
            Some(other) => panic!("{at}: valid={other:?}; only valid=false is meaningful"),
        };
        let schema_name = schema_for(media_type).unwrap_or_else(|| {
            panic!("{at}: media type {media_type:?} has no schema here (write `+` as %2B in the fence)")
        });
        let body: Vec<&str> = lines.by_ref().map(|(_, l)| l).take_while(|l| l.trim_start() != "```").collect();
        let at = format!("{at} ({media_type})");
        let doc: serde_json::Value =
            serde_json::from_str(&body.join("\n")).unwrap_or_else(|e| panic!("{at}: not JSON: {e}"));
        let errors: Vec<String> = schema::validator(schema_name).iter_errors(&doc).map(|e| e.to_string()).collect();
        assert_eq!(
            errors.is_empty(),
            expect_valid,
            "{at}: expected {} against {schema_name}, which said {errors:?}",
            if expect_valid { "valid" } else { "invalid" }
        );
        if expect_valid {
            let typed = match schema_name {
                "image-manifest.schema.json" => serde_json::from_value::<oci_spec::image::ImageManifest>(doc).map(drop),
                "image-config.schema.json" => {
                    serde_json::from_value::<oci_spec::image::ImageConfiguration>(doc).map(drop)
                }
                "image-index.schema.json" => serde_json::from_value::<oci_spec::image::ImageIndex>(doc).map(drop),
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
    check_examples(PROPOSAL);
}

#[test]
fn fence_parameters_decode_as_a_query() {
    assert_eq!(
        query_decode("application/vnd.oci.image.manifest.v1%2Bjson").unwrap(),
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(query_decode("A%20short+title").unwrap(), "A short title");
    assert_eq!(
        query_decode("application/vnd.oci.image.manifest.v1+json").unwrap(),
        "application/vnd.oci.image.manifest.v1 json"
    );
    assert!(query_decode("%2").is_err());
    assert_eq!(slug("Changes since 0.1"), "changes-since-01");
    assert_eq!(slug("No \"do not flatten\" value"), "no-do-not-flatten-value");
    assert_eq!(slug("Why `caution`"), "why-caution");
}

// ---------------------------------------------------------------------------
// Generated documentation and citations in code

#[test]
fn rules_doc_is_current() {
    let path = repo_root().join("docs/rules.md");
    let expected = single_id::rules::markdown();
    if std::env::var_os(BLESS).is_some() {
        fs::write(&path, &expected).unwrap();
    }
    let found = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        found == expected,
        "docs/rules.md is out of date; regenerate it with SINGLE_ID_BLESS=1 cargo test -p single-id --test it spec::"
    );
}

/// Every requirement identifier that code or tests mention exists in the
/// spec, so a renamed or mistyped clause cannot linger in a comment or an
/// output line.
#[test]
fn every_identifier_cited_in_code_exists() {
    let spec = read(SPEC);
    let table: BTreeSet<String> = index(&spec).into_iter().map(|r| r.id).collect();
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
                assert!(table.contains(id), "{} cites {id}, which the spec does not define", entry.path().display());
                cited += 1;
            }
        }
    }
    assert!(cited > 50, "only {cited} citations found; is the scan broken?");
}

/// Every rule that points producers at the guide points at a section that
/// exists, and every rule about declaring the value (`annotation-*`) has one.
#[test]
fn fix_links_reach_the_producer_guide() {
    let guide = read("docs/producers.md");
    let mut linked = 0;
    for rule in single_id::rules::ALL {
        if rule.id.starts_with("annotation-") {
            assert!(rule.fix.is_some(), "{} does not point producers at the guide", rule.id);
        }
        let Some(anchor) = rule.fix else { continue };
        assert!(
            guide.contains(&format!("<a id=\"{anchor}\"></a>")),
            "{} points at docs/producers.md#{anchor}, which the guide does not define",
            rule.id
        );
        linked += 1;
    }
    assert!(linked >= 9, "only {linked} rules link to the guide");
}
