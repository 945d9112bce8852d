//! The harness itself: it must pass the reference consumer and catch
//! broken ones. Each adapter in tests/adapters/ wraps the reference
//! consumer and then breaks exactly one requirement; the harness must
//! report exactly that requirement failing and every other one passing.
//! The fixtures these tests use are written at test time
//! (tests/fixtures/mod.rs); the last test runs the suite's own fixtures.
//!
//! Tests run the real binaries. `single-id` must be built
//! (`cargo build -p single-id`); when the tests run as root the harness
//! drops adapters to 65534:65534, as it does for everyone.

#[path = "fixtures/mod.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The single-id binary: $SINGLE_ID_BIN, else the one cargo built beside
/// this test (same target directory and profile; `cargo test --workspace`
/// builds it, as does `cargo build -p single-id`).
fn single_id_bin() -> PathBuf {
    let p = match std::env::var_os("SINGLE_ID_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().unwrap();
            // target/<profile>/deps/harness-<hash> -> target/<profile>/single-id
            exe.parent().and_then(Path::parent).unwrap().join("single-id")
        }
    };
    assert!(
        p.is_file(),
        "{} is missing: set SINGLE_ID_BIN, or build it with `cargo build -p single-id` (same profile) first",
        p.display()
    );
    p.canonicalize().unwrap()
}

/// A test adapter (tests/adapters/NAME) or a suite adapter (adapters/NAME).
fn adapter(path: &str) -> String {
    let p = manifest_dir().join(path);
    assert!(p.is_file(), "{} is missing", p.display());
    format!("'{}'", p.display())
}

fn test_adapter(name: &str) -> String {
    adapter(&format!("tests/adapters/{name}"))
}

fn reference() -> String {
    adapter("adapters/single-id")
}

struct Fixtures {
    dir: tempfile::TempDir,
}

impl Fixtures {
    fn new() -> Fixtures {
        let dir = tempfile::tempdir().unwrap();
        fixtures::all(dir.path());
        Fixtures { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Edits one fixture's expected.json.
    fn edit(&self, case: &str, f: impl FnOnce(&mut Value)) {
        let p = self.path().join(case).join("expected.json");
        let mut v: Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        f(&mut v);
        fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }
}

struct Run {
    out: Output,
}

impl Run {
    fn code(&self) -> i32 {
        self.out.status.code().expect("the harness was killed")
    }
    fn stdout(&self) -> String {
        String::from_utf8(self.out.stdout.clone()).expect("the harness wrote invalid UTF-8")
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout(), self.stderr()))
    }
}

fn harness(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_single-id-conformance"))
        .args(args)
        .env("SINGLE_ID_BIN", single_id_bin())
        .env_remove("SINGLE_ID_CONFIRM")
        .output()
        .unwrap();
    Run { out }
}

/// `run --adapter CMD --fixtures DIR --format json EXTRA...`.
fn run_json(cmd: &str, fixtures: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["run", "--adapter", cmd, "--fixtures", fixtures.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    let r = harness(&args);
    assert!(r.code() == 0 || r.code() == 1, "exit {}: {}", r.code(), r.stderr());
    (r.code(), r.json())
}

/// requirement id -> (status, the whole result) for one fixture.
fn results(report: &Value, case: &str) -> BTreeMap<String, (String, Value)> {
    let f = report["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["case"] == case)
        .unwrap_or_else(|| panic!("no fixture {case} in the report"));
    f["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r["requirement"].as_str().unwrap().to_string(), (r["status"].as_str().unwrap().to_string(), r.clone()))
        })
        .collect()
}

/// Every requirement of `case` passes except `failing`, which fail.
fn assert_exactly_failing(report: &Value, case: &str, failing: &[&str]) {
    let res = results(report, case);
    for f in failing {
        assert!(res.contains_key(*f), "{case} does not list {f}");
    }
    for (id, (status, r)) in &res {
        let want = if failing.contains(&id.as_str()) { "fail" } else { "pass" };
        assert_eq!(status, want, "{case}: {id} is {status}, expected {want}: {r:#}\nwhole report: {report:#}");
    }
}

fn differences(report: &Value, case: &str, id: &str) -> Vec<Value> {
    results(report, case)[id].1["differences"].as_array().cloned().unwrap_or_default()
}

#[test]
fn the_reference_consumer_passes_every_test_fixture() {
    let fx = Fixtures::new();
    let (code, report) = run_json(&reference(), fx.path(), &[]);
    for case in ["basic", "caution", "escape"] {
        assert_exactly_failing(&report, case, &[]);
    }
    assert_eq!(code, 0);
    assert_eq!(report["summary"]["conformant"], true);
    assert_eq!(report["fixtures"].as_array().unwrap().len(), 3);
    // CONSUMER-CONTAINED is added where the fixture does not list it.
    let contained = &results(&report, "caution")["CONSUMER-CONTAINED"].1;
    assert_eq!(contained["listed"], false);
    assert_eq!(contained["level"], "MUST");
    // refuse-then-unpack runs the adapter twice, the second time with consent.
    let caution = report["fixtures"].as_array().unwrap().iter().find(|f| f["case"] == "caution").unwrap();
    let runs = caution["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0]["consent"].clone(), runs[1]["consent"].clone()), (Value::Bool(false), Value::Bool(true)));
    assert_ne!(runs[0]["exitCode"], 0);
    assert_eq!(runs[1]["exitCode"], 0);
}

#[test]
fn keeping_setuid_bits_fails_setid_cleared_only() {
    let fx = Fixtures::new();
    let (code, report) = run_json(&test_adapter("keeps-setid"), fx.path(), &["--case", "basic"]);
    assert_exactly_failing(&report, "basic", &["CONSUMER-SETID-CLEARED"]);
    assert_eq!(code, 1);
    let d = differences(&report, "basic", "CONSUMER-SETID-CLEARED");
    assert!(
        d.iter().any(|d| d["path"] == "usr/bin/passwd" && d["expected"] == "0755" && d["found"] == "4755"),
        "{d:#?}"
    );
}

#[test]
fn applying_a_umask_fails_mode_only() {
    let fx = Fixtures::new();
    let (code, report) = run_json(&test_adapter("applies-umask"), fx.path(), &["--case", "basic"]);
    assert_exactly_failing(&report, "basic", &["CONSUMER-MODE"]);
    assert_eq!(code, 1);
    let d = differences(&report, "basic", "CONSUMER-MODE");
    let paths: Vec<&str> = d.iter().map(|d| d["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["tmp", "shared", "shared/notes"], "{d:#?}");
    assert!(d.iter().any(|d| d["path"] == "tmp" && d["expected"] == "1777" && d["found"] == "1755"));
}

#[test]
fn ignoring_an_opaque_whiteout_fails_opaque_only() {
    let fx = Fixtures::new();
    let (code, report) = run_json(&test_adapter("ignores-opaque"), fx.path(), &["--case", "basic"]);
    assert_exactly_failing(&report, "basic", &["CONSUMER-OPAQUE"]);
    assert_eq!(code, 1);
    let d = differences(&report, "basic", "CONSUMER-OPAQUE");
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!((d[0]["path"].as_str(), d[0]["check"].as_str()), (Some("opq/lower"), Some("absent")));
}

#[test]
fn writing_outside_dest_fails_contained_only() {
    let fx = Fixtures::new();
    let (code, report) = run_json(&test_adapter("escapes"), fx.path(), &[]);
    for case in ["basic", "caution", "escape"] {
        assert_exactly_failing(&report, case, &["CONSUMER-CONTAINED"]);
    }
    assert_eq!(code, 1);
    let d = differences(&report, "basic", "CONSUMER-CONTAINED");
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0]["path"], "../canary/pwned");
    assert_eq!(d[0]["check"], "outside-dest");
    // refuse-then-unpack: the adapter stops when the consumer refuses, and
    // writes the canary only in the consented run, which is watched too.
    let runs: Vec<u64> =
        differences(&report, "caution", "CONSUMER-CONTAINED").iter().map(|d| d["run"].as_u64().unwrap()).collect();
    assert_eq!(runs, [1]);
}

#[test]
fn device_placeholders_fail_devices_only() {
    let fx = Fixtures::new();
    let (code, report) = run_json(&test_adapter("device-placeholders"), fx.path(), &["--case", "basic"]);
    assert_exactly_failing(&report, "basic", &["CONSUMER-DEVICES"]);
    assert_eq!(code, 1);
    let d = differences(&report, "basic", "CONSUMER-DEVICES");
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0]["path"], "dev/null");
    assert!(d[0]["found"].as_str().unwrap().starts_with("file"), "{d:#?}");
}

#[test]
fn whiteouts_left_on_disk_fail_whiteout_only() {
    let fx = Fixtures::new();
    let (code, report) = run_json(&test_adapter("keeps-whiteouts"), fx.path(), &["--case", "basic"]);
    assert_exactly_failing(&report, "basic", &["CONSUMER-WHITEOUT"]);
    assert_eq!(code, 1);
    let d = differences(&report, "basic", "CONSUMER-WHITEOUT");
    let paths: Vec<&str> = d.iter().map(|d| d["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["etc/.wh.motd", "opq/.wh..wh..opq"], "{d:#?}");
    assert!(d.iter().all(|d| d["check"] == "whiteout"));
}

#[test]
fn a_should_failure_is_reported_but_not_fatal() {
    let fx = Fixtures::new();
    let (code, report) = run_json(&test_adapter("resets-mtime"), fx.path(), &["--case", "basic"]);
    assert_exactly_failing(&report, "basic", &["CONSUMER-MTIME"]);
    assert_eq!(code, 0, "a SHOULD failure must not fail the run");
    assert_eq!(report["summary"]["checks"]["SHOULD"]["fail"], 1);
    assert_eq!(report["summary"]["requirements"]["SHOULD"]["fail"], 1);
    assert_eq!(report["summary"]["conformant"], true);
}

#[test]
fn ignoring_caution_fails_policy_caution_only() {
    let fx = Fixtures::new();
    let (code, report) = run_json(&test_adapter("ignores-annotation"), fx.path(), &[]);
    assert_exactly_failing(&report, "caution", &["POLICY-CAUTION"]);
    assert_exactly_failing(&report, "basic", &[]);
    assert_eq!(code, 1);
    let d = differences(&report, "caution", "POLICY-CAUTION");
    let checks: Vec<&str> = d.iter().map(|d| d["check"].as_str().unwrap()).collect();
    assert_eq!(checks, ["exit-status", "dest-empty"], "{d:#?}");
    assert!(d.iter().all(|d| d["run"] == 0));
}

#[test]
fn owner_raise_is_accepted_only_where_the_fixture_allows_it() {
    let fx = Fixtures::new();
    let (_, report) = run_json(&test_adapter("raises-owner-bits"), fx.path(), &["--case", "basic"]);
    assert_exactly_failing(&report, "basic", &["CONSUMER-MODE", "CONSUMER-READONLY-DIR"]);
    fx.edit("basic", |v| v["allowances"]["ownerRaise"] = Value::Bool(true));
    let (code, report) = run_json(&test_adapter("raises-owner-bits"), fx.path(), &["--case", "basic"]);
    assert_exactly_failing(&report, "basic", &[]);
    assert_eq!(code, 0);
    // The allowance covers owner bits only: group and other stay exact.
    let (_, report) = run_json(&test_adapter("applies-umask"), fx.path(), &["--case", "basic"]);
    assert_exactly_failing(&report, "basic", &["CONSUMER-MODE"]);
}

#[test]
fn a_failing_adapter_fails_the_tree_requirements_with_a_reason() {
    let fx = Fixtures::new();
    let (code, report) = run_json(&test_adapter("fails-fixtures"), fx.path(), &[]);
    assert_eq!(code, 1);
    // outcome unpack: everything but containment fails, with the reason.
    for (id, (status, r)) in results(&report, "basic") {
        if id == "CONSUMER-CONTAINED" {
            assert_eq!(status, "pass");
        } else {
            assert_eq!(status, "fail", "{id}");
            assert!(r["reason"].as_str().unwrap().contains("exited with status 1"), "{r:#}");
        }
    }
    // refuse-then-unpack: the refusal is right, but the message does not
    // name the key and the consented run fails too.
    let caution = results(&report, "caution");
    assert_eq!(caution["POLICY-CAUTION"].0, "fail");
    let checks: Vec<String> = differences(&report, "caution", "POLICY-CAUTION")
        .iter()
        .map(|d| format!("{}@{}", d["check"].as_str().unwrap(), d["run"]))
        .collect();
    assert_eq!(checks, ["notice@0", "exit-status@1"]);
    assert_eq!(caution["CONSUMER-MODE"].0, "fail");
    // outcome any: a failure is allowed; present paths are not checked, the
    // global checks and containment still are.
    let escape = results(&report, "escape");
    assert_eq!(escape["CONSUMER-SYMLINK"].0, "skip");
    assert!(escape["CONSUMER-SYMLINK"].1["reason"].as_str().unwrap().contains("which this fixture allows"));
    assert_eq!(escape["CONSUMER-WHITEOUT"].0, "pass");
    assert_eq!(escape["CONSUMER-CONTAINED"].0, "pass");
}

#[test]
fn only_restricts_requirements_and_fixtures() {
    let fx = Fixtures::new();
    let (code, report) =
        run_json(&test_adapter("keeps-setid"), fx.path(), &["--only", "CONSUMER-SETID-CLEARED", "CONSUMER-OWNER"]);
    assert_eq!(code, 1);
    let cases: Vec<&str> = report["fixtures"].as_array().unwrap().iter().map(|f| f["case"].as_str().unwrap()).collect();
    assert_eq!(cases, ["basic"], "only fixtures listing a selected requirement run");
    for (id, (status, r)) in results(&report, "basic") {
        match id.as_str() {
            "CONSUMER-SETID-CLEARED" => assert_eq!(status, "fail"),
            "CONSUMER-OWNER" => assert_eq!(status, "pass"),
            _ => {
                assert_eq!(status, "skip", "{id}");
                assert_eq!(r["reason"], "not selected by --only");
            }
        }
    }
    let (code, _) = run_json(&test_adapter("keeps-setid"), fx.path(), &["--case", "basic", "--only", "CONSUMER-MODE"]);
    assert_eq!(code, 0, "CONSUMER-MODE passes; the set-ID failure is not selected");
}

#[test]
fn usage_errors_exit_2() {
    let fx = Fixtures::new();
    let fixtures = fx.path().to_str().unwrap();
    let r = harness(&["run", "--fixtures", fixtures]);
    assert_eq!(r.code(), 2, "no --adapter");
    let r = harness(&["run", "--adapter", "true", "--fixtures", "/nonexistent/fixtures"]);
    assert_eq!(r.code(), 2, "missing fixtures directory");
    assert!(r.stderr().contains("/nonexistent/fixtures"), "{}", r.stderr());
    let r = harness(&["run", "--adapter", "true", "--fixtures", fixtures, "--case", "no-such-case"]);
    assert_eq!(r.code(), 2, "unknown case");
    let r = harness(&["run", "--adapter", "true", "--fixtures", fixtures, "--only", "NO-SUCH-REQUIREMENT"]);
    assert_eq!(r.code(), 2, "--only matching nothing");
    let empty = tempfile::tempdir().unwrap();
    let r = harness(&["run", "--adapter", "true", "--fixtures", empty.path().to_str().unwrap()]);
    assert_eq!(r.code(), 2, "no fixtures");
    // A broken expectation is the suite's fault, not the adapter's.
    fx.edit("basic", |v| v["present"][0]["requirements"] = serde_json::json!(["NOT-LISTED"]));
    let r = harness(&["run", "--adapter", "true", "--fixtures", fixtures]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("NOT-LISTED"), "{}", r.stderr());
}

/// Every character a format writes is printable, a newline or a tab (JSON
/// may carry DEL and C1 characters unescaped; its parsers cope).
fn assert_no_raw_controls(format: &str, text: &str) {
    for (i, c) in text.char_indices() {
        let allowed = c == '\n' || c == '\t' || (format == "json" && c >= '\u{7f}');
        assert!(!c.is_control() || allowed, "{format}: raw control character {c:?} at byte {i}:\n{text}");
    }
}

fn render(cmd: &str, fx: &Fixtures, format: &str) -> Run {
    let r = harness(&["run", "--adapter", cmd, "--fixtures", fx.path().to_str().unwrap(), "--format", format]);
    assert!(r.code() == 0 || r.code() == 1, "{format}: exit {}: {}", r.code(), r.stderr());
    r
}

#[test]
fn every_format_carries_adapter_user_and_output_escaped() {
    let fx = Fixtures::new();
    let cmd = test_adapter("fails-fixtures");
    let (_, report) = run_json(&cmd, fx.path(), &[]);
    let (adapter_uid, adapter_gid) = (report["adapter"]["uid"].to_string(), report["adapter"]["gid"].to_string());
    let tests: usize =
        report["fixtures"].as_array().unwrap().iter().map(|f| f["results"].as_array().unwrap().len()).sum();
    for format in ["human", "tap", "junit", "json", "markdown"] {
        let r = render(&cmd, &fx, format);
        let out = r.stdout();
        assert_eq!(r.code(), 1, "{format}");
        assert_no_raw_controls(format, &out);
        assert!(out.contains("tests/adapters/fails"), "{format}: no adapter command:\n{out}");
        assert!(out.contains(&adapter_uid) && out.contains(&adapter_gid), "{format}: no uid/gid:\n{out}");
        assert!(out.contains("not a directive"), "{format}: the adapter's stdout is missing:\n{out}");
        assert!(out.contains("red"), "{format}: the adapter's stderr is missing:\n{out}");
    }

    let tap = render(&cmd, &fx, "tap").stdout();
    assert!(tap.starts_with("TAP version 13\n"));
    assert!(tap.contains(&format!("\n1..{tests}\n")), "{tap}");
    let points = tap.lines().filter(|l| l.starts_with("ok ") || l.starts_with("not ok ")).count();
    assert_eq!(points, tests);
    assert!(tap.contains("escape: CONSUMER-SYMLINK (MUST) # SKIP"), "{tap}");
    assert!(tap.contains("\n  ---\n") && tap.contains("\n  ...\n"));
    assert!(tap.contains(r#"stdout: "<failure> & \"quotes\" 'single' ]]> ```fence``` # not a directive"#), "{tap}");

    let junit = render(&cmd, &fx, "junit").stdout();
    assert!(junit.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
    assert_eq!(junit.matches("<testsuite ").count(), 3);
    assert_eq!(junit.matches("<testcase ").count(), tests);
    assert!(junit.contains("&lt;failure&gt; &amp; &quot;quotes&quot; &apos;single&apos; ]]&gt;"), "{junit}");
    assert!(!junit.contains("<failure>"), "adapter output must be escaped");
    assert!(junit.contains("<skipped message="));
    assert!(junit.trim_end().ends_with("</testsuites>"));

    let md = render(&cmd, &fx, "markdown").stdout();
    assert!(md.contains("| Requirement | Level | `basic` | `caution` | `escape` |"), "{md}");
    assert!(
        md.contains(
            "| [`CONSUMER-SYMLINK`](<spec/single-id-images.md#consumer-symlink>) | MUST | **FAIL** |  | skip |"
        ),
        "{md}"
    );
    assert!(md.contains("````text\n"), "a fence longer than the ``` in the output:\n{md}");
}

#[test]
fn json_report_is_valid_against_its_schema() {
    let schema: Value = serde_json::from_str(
        &fs::read_to_string(manifest_dir().join("../schema/conformance-report.schema.json")).unwrap(),
    )
    .unwrap();
    let v = jsonschema::options().with_draft(jsonschema::Draft::Draft202012).build(&schema).unwrap();
    let fx = Fixtures::new();
    for cmd in
        [reference(), test_adapter("fails-fixtures"), test_adapter("ignores-annotation"), test_adapter("escapes")]
    {
        let (_, report) = run_json(&cmd, fx.path(), &[]);
        let errors: Vec<String> = v.iter_errors(&report).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{cmd}: {errors:#?}\n{report:#}");
    }
    let (_, report) = run_json(&reference(), fx.path(), &["--only", "CONSUMER-MODE"]);
    assert!(v.is_valid(&report), "{report:#}");
}

#[test]
fn output_is_truncated_to_max_output() {
    let fx = Fixtures::new();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("loud");
    let probe =
        format!("case $2 in probe-*) exec '{}' \"$@\" ;; esac\n", manifest_dir().join("adapters/single-id").display());
    fs::write(&script, format!("#!/bin/sh\n{probe}head -c 100000 /dev/zero | tr '\\0' x\necho END\nexit 1\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let cmd = format!("'{}'", script.display());
    let (_, report) = run_json(&cmd, fx.path(), &["--case", "basic", "--max-output", "1000"]);
    let stdout = &report["fixtures"][0]["runs"][0]["stdout"];
    assert_eq!(stdout["truncated"], true);
    assert_eq!(stdout["bytes"], 100004);
    let text = stdout["text"].as_str().unwrap();
    assert!(text.len() < 1100, "{}", text.len());
    assert!(text.ends_with("END\n") && text.contains("bytes left out"), "{text}");
}

/// The suite's own fixtures, conformance/fixtures/: the reference consumer
/// passes every MUST and SHOULD requirement, and nothing is skipped.
#[test]
fn the_reference_consumer_passes_the_suite() {
    let dir = manifest_dir().join("fixtures");
    assert!(
        dir.is_dir(),
        "{} is missing: generate it with `cargo run -p single-id-conformance -- generate`",
        dir.display()
    );
    let (code, report) = run_json(&reference(), &dir, &[]);
    let mut problems = Vec::new();
    for f in report["fixtures"].as_array().unwrap() {
        for r in f["results"].as_array().unwrap() {
            let bad = matches!(
                (r["level"].as_str().unwrap(), r["status"].as_str().unwrap()),
                (_, "skip") | ("MUST" | "SHOULD", "fail")
            );
            if bad {
                problems.push(format!("{}: {r:#}", f["case"]));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(code, 0);
}

#[test]
fn a_hanging_adapter_is_killed_with_its_children() {
    let fx = Fixtures::new();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hangs");
    // A child in the background holds stdout open; both must go.
    let probe =
        format!("case $2 in probe-*) exec '{}' \"$@\" ;; esac\n", manifest_dir().join("adapters/single-id").display());
    fs::write(&script, format!("#!/bin/sh\n{probe}echo started\nsleep 60 &\nsleep 60\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let cmd = format!("'{}'", script.display());
    let start = std::time::Instant::now();
    let (code, report) = run_json(&cmd, fx.path(), &["--case", "basic", "--timeout", "1"]);
    assert!(start.elapsed().as_secs() < 20, "the harness waited for the adapter's children");
    assert_eq!(code, 1);
    let run = &report["fixtures"][0]["runs"][0];
    assert_eq!(run["timedOut"], true, "{run:#}");
    assert_eq!(run["exitCode"], Value::Null);
    assert_eq!(run["signal"], 9);
    assert_eq!(run["stdout"]["text"], "started\n");
    let mode = &results(&report, "basic")["CONSUMER-MODE"].1;
    assert!(mode["reason"].as_str().unwrap().contains("timed out"), "{mode:#}");
}

/// An adapter that cannot unpack anything is caught by the probe image
/// before any fixture is scored: exit 2, its stderr in the message, and no
/// report in any format.
#[test]
fn a_broken_adapter_stops_the_run_with_exit_2_and_no_report() {
    let fx = Fixtures::new();
    for format in ["human", "tap", "junit", "json", "markdown"] {
        let r = harness(&[
            "run",
            "--adapter",
            &test_adapter("unpacks-nothing"),
            "--fixtures",
            fx.path().to_str().unwrap(),
            "--format",
            format,
        ]);
        assert_eq!(r.code(), 2, "{format}: {}", r.stderr());
        assert!(r.stdout().is_empty(), "{format}: a table was written:\n{}", r.stdout());
        let err = r.stderr();
        assert!(err.contains("adapter is broken") && err.contains("probe image"), "{err}");
        assert!(err.contains("control: \\x01\\x02\\x1b[31m red \\x7f end"), "the adapter's stderr, escaped:\n{err}");
    }
}

/// The suite's own fixtures, run with `--case`.
fn suite(cmd: &str, cases: &[&str]) -> (i32, Value) {
    let mut extra = Vec::new();
    for c in cases {
        extra.extend(["--case", c]);
    }
    let dir = manifest_dir().join("fixtures");
    run_json(cmd, &dir, &extra)
}

#[test]
fn ignoring_the_annotation_fails_the_annotation_requirements_too() {
    let cases = ["policy-unknown", "policy-conflict", "policy-conflict-index", "annotation-two-keys"];
    let (code, report) = suite(&test_adapter("ignores-annotation"), &cases);
    assert_eq!(code, 1);
    assert_exactly_failing(&report, "policy-unknown", &["POLICY-UNKNOWN", "ANNOTATION-UNKNOWN"]);
    for case in &cases[1..] {
        assert_exactly_failing(&report, case, &["ANNOTATION-CONFLICT-CAUTIOUS", "POLICY-CAUTION"]);
    }
}

#[test]
fn misreading_the_annotation_of_an_unmarked_image_fails_the_annotation_requirement() {
    let (_, report) = suite(&test_adapter("unmarked-is-caution"), &["policy-unmarked", "policy-allowed"]);
    let res = results(&report, "policy-unmarked");
    assert_eq!(res["ANNOTATION-DEFAULT"].0, "fail", "{res:#?}");
    assert_eq!(res["POLICY-ALLOWED"].0, "not-implemented", "a MAY is never failed: {res:#?}");
    let (_, report) = suite(&test_adapter("empty-is-unknown"), &["annotation-empty", "annotation-empty-label"]);
    assert_eq!(results(&report, "annotation-empty")["ANNOTATION-EMPTY"].0, "fail");
    assert_eq!(results(&report, "annotation-empty-label")["ANNOTATION-EMPTY"].0, "fail");
    let (_, report) = suite(&test_adapter("key-case-insensitive"), &["annotation-key"]);
    assert_exactly_failing(&report, "annotation-key", &["ANNOTATION-KEY", "ANNOTATION-DEFAULT"]);
}

#[test]
fn may_requirements_are_reported_never_failed() {
    let (code, report) = suite(&test_adapter("asks-always"), &["policy-allowed", "policy-flattened", "modes"]);
    assert_eq!(code, 0, "asking for consent is allowed");
    assert_eq!(report["probes"][0]["withoutConsent"], false);
    assert_eq!(results(&report, "policy-allowed")["POLICY-ALLOWED"].0, "not-implemented");
    assert_eq!(results(&report, "policy-flattened")["POLICY-FLATTENED"].0, "not-implemented");
    // The adapter asks for flattened images, so the harness gives consent
    // on fixtures that are not about the policy: modes is checked.
    assert_exactly_failing_but_may(&report, "modes");
    let (_, report) = suite(&reference(), &["policy-allowed", "modes"]);
    assert_eq!(results(&report, "policy-allowed")["POLICY-ALLOWED"].0, "implemented");
    assert_eq!(report["summary"]["requirements"]["MAY"]["fail"], 0);
}

/// Every MUST and SHOULD of `case` passes; MAY ones are implemented or not.
fn assert_exactly_failing_but_may(report: &Value, case: &str) {
    for (id, (status, r)) in results(report, case) {
        if r["level"] == "MAY" {
            assert!(status == "implemented" || status == "not-implemented", "{case}: {id}: {r:#}");
        } else {
            assert_eq!(status, "pass", "{case}: {id}: {r:#}");
        }
    }
}

#[test]
fn a_missing_feature_blocks_the_requirements_it_hides() {
    let (_, report) = suite(&test_adapter("no-zstd"), &["compression"]);
    let res = results(&report, "compression");
    assert_eq!(res["CONSUMER-LAYER-ORDER"].0, "fail");
    assert_eq!(res["CONSUMER-MODE"].0, "blocked", "{res:#?}");
    assert_eq!(res["CONSUMER-CONTAINED"].0, "pass");
    // A placeholder for the device: the link to it says nothing.
    let (_, report) = suite(&test_adapter("device-placeholders"), &["devices", "devices-hardlink"]);
    assert_eq!(results(&report, "devices")["CONSUMER-DEVICES"].0, "fail");
    assert_eq!(results(&report, "devices-hardlink")["CONSUMER-HARDLINK"].0, "pass", "the alias is not even created");
    let (_, report) = suite(&test_adapter("aborts-on-device-links"), &["devices", "devices-hardlink"]);
    assert_exactly_failing(&report, "devices", &[]);
    assert_exactly_failing(&report, "devices-hardlink", &["CONSUMER-HARDLINK"]);
    // A umask is CONSUMER-MODE's, and nobody else's.
    let (_, report) = suite(&test_adapter("applies-umask"), &["symlink-replaced", "sticky"]);
    assert_exactly_failing(&report, "symlink-replaced", &["CONSUMER-MODE"]);
    assert_exactly_failing(&report, "sticky", &["CONSUMER-MODE"]);
}

#[test]
fn an_incomplete_unpack_must_be_reported() {
    let (_, report) = suite(&reference(), &["incomplete"]);
    assert_exactly_failing(&report, "incomplete", &[]);
    let (_, report) = suite(&test_adapter("exits-zero"), &["incomplete"]);
    assert_exactly_failing(&report, "incomplete", &["CONSUMER-INCOMPLETE"]);
}

/// The one-defect adapters of tests/adapters/ (all but the broken ones).
const DEFECTS: &[&str] = &[
    "applies-umask",
    "keeps-setid",
    "drops-sticky",
    "directories-0755",
    "resets-mtime",
    "device-placeholders",
    "fifo-placeholders",
    "skips-fifos",
    "keeps-whiteouts",
    "ignores-opaque",
    "copies-hardlinks",
    "rewrites-absolute-symlinks",
    "drops-dangling-symlinks",
    "drops-absolute-names",
    "drops-dotdot-names",
    "strips-dotdot",
    "drops-large-ids",
    "empties-readonly-files",
    "truncates-sparse",
    "unknown-as-files",
    "applies-excluded-xattrs",
    "applies-acls",
    "drops-user-xattrs",
    "applies-capability",
    "escapes",
    "ignores-annotation",
    "asks-always",
    "empty-is-unknown",
    "unmarked-is-caution",
    "key-case-insensitive",
    "no-zstd",
    "aborts-on-device-links",
    "exits-zero",
];

/// Mutation coverage: every fixture of the suite is failed, on a
/// requirement it lists, by at least one one-defect adapter; a fixture no
/// defect can fail tests nothing. A fixture that lists only MAY
/// requirements, which are never failed, must instead have its result
/// changed (implemented to not implemented) by some defect. Each defect,
/// in turn, must show somewhere.
#[test]
fn every_fixture_is_failed_by_some_one_defect_adapter() {
    let dir = manifest_dir().join("fixtures");
    let mut caught: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cases = Vec::new();
    let mut idle = Vec::new();
    for defect in DEFECTS {
        let (_, report) = run_json(&test_adapter(defect), &dir, &[]);
        let mut any = false;
        for f in report["fixtures"].as_array().unwrap() {
            let case = f["case"].as_str().unwrap().to_string();
            if !cases.contains(&case) {
                cases.push(case.clone());
            }
            let hit = f["results"].as_array().unwrap().iter().any(|r| {
                r["listed"] == true
                    && (r["status"] == "fail" || (r["level"] == "MAY" && r["status"] == "not-implemented"))
            });
            if hit {
                caught.entry(case).or_default().push(defect.to_string());
                any = true;
            }
        }
        if !any {
            idle.push(*defect);
        }
    }
    let uncaught: Vec<&String> = cases.iter().filter(|c| !caught.contains_key(*c)).collect();
    assert!(uncaught.is_empty(), "no one-defect adapter fails these fixtures: {uncaught:?}\ncaught: {caught:#?}");
    assert!(idle.is_empty(), "these defects fail no fixture: {idle:?}");
}

#[test]
fn list_and_describe_work_from_any_directory() {
    let out = Command::new(env!("CARGO_BIN_EXE_single-id-conformance")).arg("list").current_dir("/").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().any(|l| l.starts_with("devices-hardlink ") && l.ends_with(" CONSUMER-HARDLINK")), "{text}");
    assert!(text.contains("(embedded)"), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_single-id-conformance"))
        .args(["describe", "setid", "--spec-url", "https://example.org/spec.md"])
        .current_dir("/")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("CONSUMER-SETID-CLEARED (MUST): spec section \"Permission bits\", https://example.org/spec.md#consumer-setid-cleared"),
        "{text}"
    );
    assert!(text.contains("usr/bin/passwd  file, mode 0755"), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_single-id-conformance")).args(["describe", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Runs the embedded fixtures from `/`: no checkout needed.
#[test]
fn the_embedded_fixtures_run_from_any_directory() {
    let out = Command::new(env!("CARGO_BIN_EXE_single-id-conformance"))
        .args(["run", "--adapter", &reference(), "--case", "setid", "--format", "json"])
        .env("SINGLE_ID_BIN", single_id_bin())
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["fixturesDir"], "(embedded)");
}

/// Every failure, in every format, names its requirement's spec section
/// and links to it with the base given.
#[test]
fn every_failure_links_to_its_spec_section() {
    let fx = Fixtures::new();
    let base = "https://example.org/single-id.md";
    for format in ["human", "tap", "junit", "json", "markdown"] {
        let r = harness(&[
            "run",
            "--adapter",
            &test_adapter("keeps-setid"),
            "--fixtures",
            fx.path().to_str().unwrap(),
            "--case",
            "basic",
            "--spec-url",
            base,
            "--format",
            format,
        ]);
        assert_eq!(r.code(), 1);
        let out = r.stdout();
        assert!(out.contains(&format!("{base}#consumer-setid-cleared")), "{format}:\n{out}");
        assert!(out.contains("Permission bits"), "{format}:\n{out}");
    }
}
