//! What ships around the binary: the GitHub Action (`action.yml`), the
//! examples in `examples/ci/` (a workflow, a Kubernetes Job and the script
//! that gathers its reports), the `Containerfile`, and the shell
//! completions and manual page the binary generates.
//!
//! None of them runs here as it would in production (no GitHub runner, no
//! cluster, no registry), so the tests hold them to what can be checked:
//! every YAML file parses with a real YAML parser; every `single-id`
//! command they run names a real subcommand and real flags, asked of the
//! binary itself; the pieces refer to each other correctly (the workflow
//! gives the action only inputs it declares, the Job's list is as long as
//! its completions, the Containerfile copies paths that exist); and the
//! parts that can run offline do: the Job's fetch script with skopeo on a
//! local layout, the Job's validate command on its copy, the aggregation
//! script on those reports through a stand-in kubectl, the completion
//! scripts in bash, the manual page through groff.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use yaml_rust2::{Yaml, YamlLoader};

use crate::support::{TestDir, repo_root};

const BIN: &str = env!("CARGO_BIN_EXE_single-id");
const ACTION: &str = "action.yml";
const WORKFLOW: &str = "examples/ci/github-workflow.yml";
const JOB: &str = "examples/ci/registry-job.yaml";
const AGGREGATE: &str = "examples/ci/aggregate.sh";
const CONTAINERFILE: &str = "Containerfile";
const SHELLS: [&str; 5] = ["bash", "zsh", "fish", "elvish", "powershell"];

fn read(rel: &str) -> String {
    let path = repo_root().join(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every document of a YAML file, parsed by yaml-rust2 (YAML 1.2, duplicate
/// keys rejected as GitHub and Kubernetes reject them).
fn yaml(rel: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"))
}

fn yaml_one(rel: &str) -> Yaml {
    let mut docs = yaml(rel);
    assert_eq!(docs.len(), 1, "{rel} should hold one YAML document");
    docs.remove(0)
}

fn text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn keys(y: &Yaml) -> BTreeSet<String> {
    y.as_hash().map(|h| h.keys().filter_map(text).collect()).unwrap_or_default()
}

fn list(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

/// Runs a program; panics, naming it, when it cannot start.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is required for this test and could not run: {e} (.ci/run installs it)"))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The files the repository tracks or adds, less build output: the YAML
/// files among them.
fn yaml_files() -> Vec<PathBuf> {
    let root = repo_root();
    let mut found: Vec<PathBuf> = walkdir::WalkDir::new(&root)
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            !(e.file_type().is_dir() && (name == "target" || name == ".git" || name == "node_modules"))
        })
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(&root).unwrap().to_path_buf())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    found.sort();
    found
}

#[test]
fn every_yaml_file_parses() {
    let files = yaml_files();
    for expected in [ACTION, WORKFLOW, JOB, "conformance/ci/github-actions.yml"] {
        assert!(files.iter().any(|f| f == Path::new(expected)), "{expected} not found among {files:?}");
    }
    for file in &files {
        let docs = yaml(file.to_str().unwrap());
        assert!(!docs.is_empty(), "{} holds no YAML document", file.display());
        for doc in &docs {
            assert!(doc.is_hash(), "{}: every document should be a mapping", file.display());
        }
    }
}

// --- command lines -----------------------------------------------------------

/// One command found in a script: the program's name as written (a path
/// is reduced to its last component), and the words that follow it up to
/// the end of the command.
#[derive(Debug)]
struct Invocation {
    source: String,
    program: String,
    words: Vec<String>,
}

impl Invocation {
    /// The first word, when it is a word (not an option, a path or a
    /// variable).
    fn subcommand(&self) -> Option<&str> {
        let first = self.words.first()?;
        let word = first.starts_with(|c: char| c.is_ascii_lowercase())
            && first.chars().all(|c| c.is_ascii_lowercase() || c == '-');
        word.then_some(first.as_str())
    }

    /// The long options used: `--name`, and `--name=value` as `--name`;
    /// inside `${VAR:+--name ...}` too. A bare `--` ends the options.
    fn flags(&self) -> BTreeSet<String> {
        let mut flags = BTreeSet::new();
        for word in &self.words {
            if word == "--" {
                break;
            }
            // `${VAR:+--name}`: the option inside the expansion.
            let word = match (word.strip_prefix("${"), word.find(":+")) {
                (Some(_), Some(i)) => &word[i + 2..],
                _ => word.as_str(),
            };
            if let Some(name) = word.strip_prefix("--") {
                let name: String = name.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                if !name.is_empty() {
                    flags.insert(format!("--{name}"));
                }
            }
        }
        flags
    }
}

/// The commands that `programs` run in a shell script: each occurrence of
/// one of their names as a command word (at the start of a line or after
/// `;`, `|`, `&`, `(`, `$(`, or a space), with its words to the end of the
/// command (a line, continued by a trailing backslash; `;`, `|`, `&&`,
/// `>` and `)` end it earlier).
fn invocations(source: &str, script: &str, programs: &[&str]) -> Vec<Invocation> {
    let joined = script.replace("\\\n", " ");
    let mut found = Vec::new();
    for line in joined.lines() {
        let line = line.trim_start().trim_start_matches('#').trim_start();
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, word) in words.iter().enumerate() {
            let bare = word.trim_start_matches(['(', '$']);
            let name = bare.rsplit('/').next().unwrap_or(bare);
            if !programs.contains(&name) || (bare.contains('/') && !bare.starts_with('/')) {
                continue;
            }
            let mut rest = Vec::new();
            for w in &words[i + 1..] {
                if [";", "|", "||", "&&", "&", ">", ">>", "2>", ")"].contains(w) || w.starts_with('>') {
                    break;
                }
                let end = w.ends_with(';') || w.ends_with(')') && !w.contains('(');
                rest.push(w.trim_end_matches([';', ')']).to_string());
                if end {
                    break;
                }
            }
            found.push(Invocation { source: source.to_string(), program: name.to_string(), words: rest });
        }
    }
    found
}

/// Every `run:` script of a workflow or composite action.
fn run_scripts(doc: &Yaml) -> Vec<String> {
    let mut steps: Vec<&Yaml> = list(&doc["runs"]["steps"]).iter().collect();
    for job in doc["jobs"].as_hash().into_iter().flat_map(|h| h.values()) {
        steps.extend(list(&job["steps"]));
    }
    steps.iter().filter_map(|s| text(&s["run"])).collect()
}

/// The containers of a pod template: (name, command and args as one list).
fn containers(pod: &Yaml) -> Vec<(String, Vec<String>)> {
    list(&pod["initContainers"])
        .iter()
        .chain(list(&pod["containers"]))
        .map(|c| {
            let words = list(&c["command"]).iter().chain(list(&c["args"])).filter_map(text).collect();
            (text(&c["name"]).unwrap_or_default(), words)
        })
        .collect()
}

fn job_docs() -> (Yaml, Yaml) {
    let docs = yaml(JOB);
    let find = |kind: &str| {
        docs.iter().find(|d| d["kind"].as_str() == Some(kind)).unwrap_or_else(|| panic!("{JOB} has no {kind}")).clone()
    };
    (find("ConfigMap"), find("Job"))
}

/// Every command the shipped files run with `single-id`, skopeo or buildah.
fn all_invocations() -> Vec<Invocation> {
    const PROGRAMS: &[&str] = &["single-id", "skopeo", "buildah"];
    let mut all = Vec::new();
    for file in [ACTION, WORKFLOW] {
        for script in run_scripts(&yaml_one(file)) {
            all.extend(invocations(file, &script, PROGRAMS));
        }
    }
    let (_, job) = job_docs();
    for (name, words) in containers(&job["spec"]["template"]["spec"]) {
        let source = format!("{JOB} container {name}");
        // A script run by a shell, or the container's own command.
        match words.iter().position(|w| w == "-c") {
            Some(i) => words[i + 1..].iter().for_each(|s| all.extend(invocations(&source, s, PROGRAMS))),
            None => all.extend(invocations(&source, &words.join(" "), PROGRAMS)),
        }
    }
    // The Containerfile's RUN lines, and the commands its header shows
    // (comment lines indented as examples).
    let containerfile = read(CONTAINERFILE);
    let examples: String = containerfile
        .lines()
        .filter(|l| l.starts_with("#   ") || !l.starts_with('#'))
        .map(|l| format!("{}\n", l.trim_start_matches('#')))
        .collect();
    all.extend(invocations(CONTAINERFILE, &examples, PROGRAMS));
    all
}

/// `PROGRAM SUBCOMMAND --help`, cached per command.
fn help(cache: &mut BTreeMap<(String, String), String>, program: &str, sub: &str) -> String {
    cache
        .entry((program.to_string(), sub.to_string()))
        .or_insert_with(|| {
            let exe = if program == "single-id" { BIN } else { program };
            let out = run(exe, &[sub, "--help"]);
            assert!(
                out.status.success(),
                "`{program} {sub} --help` failed, so `{sub}` is no subcommand of {program}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout(&out)
        })
        .clone()
}

#[test]
fn shipped_files_run_only_real_subcommands_and_flags() {
    let all = all_invocations();
    let mut cache = BTreeMap::new();
    let mut checked = BTreeSet::new();
    for inv in &all {
        let Some(sub) = inv.subcommand() else { continue };
        let text = help(&mut cache, &inv.program, sub);
        for flag in inv.flags() {
            let listed = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).any(|w| w == flag);
            assert!(
                listed,
                "{}: `{} {sub}` has no option {flag} (see `{} {sub} --help`)",
                inv.source, inv.program, inv.program
            );
            checked.insert(format!("{} {} {sub} {flag}", inv.source, inv.program));
        }
        checked.insert(format!("{} {} {sub}", inv.source, inv.program));
    }
    // The extraction found what the files are known to hold, so that a
    // change of layout cannot make this test check nothing.
    for expected in [
        "action.yml single-id validate --ref",
        "action.yml single-id validate --strict",
        "action.yml single-id validate --format",
        "action.yml single-id validate --max-examples",
        "examples/ci/github-workflow.yml single-id inspect --format",
        "examples/ci/github-workflow.yml buildah build --annotation",
        "examples/ci/github-workflow.yml buildah build --label",
        "examples/ci/github-workflow.yml buildah push",
        "examples/ci/registry-job.yaml container fetch skopeo copy --quiet",
        "examples/ci/registry-job.yaml container validate single-id validate --format",
        "Containerfile single-id validate --strict",
    ] {
        assert!(checked.contains(expected), "expected to check `{expected}`; checked: {checked:#?}");
    }
}

// --- the action and the workflow ---------------------------------------------

/// Every expression of a workflow or action: the `${{ ... }}` in any
/// string, and the values of `if:`, which are expressions without braces.
fn expressions(y: &Yaml, out: &mut Vec<String>) {
    match y {
        Yaml::Hash(h) => {
            for (k, v) in h {
                match (k.as_str(), text(v)) {
                    (Some("if"), Some(condition)) => out.push(condition),
                    _ => expressions(v, out),
                }
            }
        }
        Yaml::Array(a) => a.iter().for_each(|v| expressions(v, out)),
        Yaml::String(s) => {
            out.extend(s.split("${{").skip(1).filter_map(|e| e.split("}}").next()).map(str::to_owned));
        }
        _ => {}
    }
}

/// What the expressions of `doc` read of `name`: `x` for each `name.x`.
fn references(doc: &Yaml, name: &str) -> BTreeSet<String> {
    let needle = format!("{name}.");
    let mut found = BTreeSet::new();
    let mut all = Vec::new();
    expressions(doc, &mut all);
    for expr in &all {
        let mut rest = expr.as_str();
        while let Some(i) = rest.find(&needle) {
            let after = &rest[i + needle.len()..];
            let word: String =
                after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
            let preceded = rest[..i].chars().last().is_some_and(|c| c.is_ascii_alphanumeric() || c == '.');
            if !preceded && !word.is_empty() {
                found.insert(word);
            }
            rest = after;
        }
    }
    found
}

#[test]
fn action_is_a_composite_action_whose_references_resolve() {
    let source = read(ACTION);
    let action = yaml_one(ACTION);
    assert_eq!(action["runs"]["using"].as_str(), Some("composite"));
    for key in ["name", "description"] {
        assert!(text(&action[key]).is_some_and(|s| !s.is_empty()), "action.yml needs a {key}");
    }
    let inputs = keys(&action["inputs"]);
    for input in ["image", "ref", "format", "strict", "max-examples", "output", "upload", "install"] {
        assert!(inputs.contains(input), "action.yml has no input {input}");
    }
    for (name, input) in action["inputs"].as_hash().unwrap() {
        assert!(text(&input["description"]).is_some(), "input {name:?} has no description");
    }
    let used = references(&action, "inputs");
    assert_eq!(used, inputs, "the inputs action.yml uses and those it declares differ");

    let steps = list(&action["runs"]["steps"]);
    let ids: BTreeSet<String> = steps.iter().filter_map(|s| text(&s["id"])).collect();
    for step in steps {
        let name = text(&step["name"]).expect("every step has a name");
        assert!(
            text(&step["run"]).is_some() != text(&step["uses"]).is_some(),
            "step {name:?}: a step either runs a script or uses an action"
        );
        if text(&step["run"]).is_some() {
            // A composite action's run steps must name their shell.
            assert_eq!(text(&step["shell"]).as_deref(), Some("bash"), "step {name:?}");
        }
        if let Some(uses) = text(&step["uses"]) {
            let (_, version) = uses.split_once('@').unwrap_or_else(|| panic!("{uses} names no version"));
            assert!(version.starts_with('v'), "{uses}: use a released major version");
        }
    }
    for id in references(&action, "steps") {
        assert!(ids.contains(&id), "action.yml refers to step {id:?}, which no step has as id");
    }
    for (name, output) in action["outputs"].as_hash().unwrap() {
        let value = text(&output["value"]).unwrap_or_default();
        assert!(value.contains("${{"), "output {name:?} has no value expression");
    }
    assert!(
        steps.iter().any(|s| text(&s["uses"]).is_some_and(|u| u.starts_with("github/codeql-action/upload-sarif@"))),
        "action.yml uploads no SARIF"
    );
    // Built from the action's own checkout, with the lock file.
    assert!(source.contains(r#"cargo install --locked --path "$GITHUB_ACTION_PATH/validator""#));
    assert!(repo_root().join("validator/Cargo.toml").is_file());
}

#[test]
fn workflow_gives_the_action_only_inputs_it_declares() {
    let action = yaml_one(ACTION);
    let inputs = keys(&action["inputs"]);
    let outputs = keys(&action["outputs"]);
    let required: BTreeSet<String> = action["inputs"]
        .as_hash()
        .unwrap()
        .iter()
        .filter(|(_, v)| v["required"].as_bool() == Some(true))
        .filter_map(|(k, _)| text(k))
        .collect();
    let workflow = yaml_one(WORKFLOW);
    let on = keys(&workflow["on"]);
    assert!(on.contains("push") && on.contains("pull_request"), "the workflow should run on push and pull_request");
    assert_eq!(text(&workflow["permissions"]["security-events"]).as_deref(), Some("write"), "upload-sarif needs it");
    let steps: Vec<&Yaml> =
        workflow["jobs"].as_hash().unwrap().values().flat_map(|job| list(&job["steps"]).iter()).collect();
    let uses_action: Vec<&&Yaml> =
        steps.iter().filter(|s| text(&s["uses"]).is_some_and(|u| u.contains("/single-id@"))).collect();
    assert_eq!(uses_action.len(), 1, "the workflow should use the single-id action once");
    let step = uses_action[0];
    let given = keys(&step["with"]);
    assert!(
        given.is_subset(&inputs),
        "the workflow passes inputs the action lacks: {:?}",
        given.difference(&inputs).collect::<Vec<_>>()
    );
    assert!(
        required.is_subset(&given),
        "the workflow omits required inputs: {:?}",
        required.difference(&given).collect::<Vec<_>>()
    );
    let id = text(&step["id"]).expect("the action's step has an id");
    for used in references(&workflow, &format!("steps.{id}.outputs")) {
        assert!(outputs.contains(&used), "the workflow reads output {used:?}, which the action lacks");
    }
    // What it validates is what it built.
    let image = text(&step["with"]["image"]).unwrap();
    assert!(run_scripts(&workflow).iter().any(|s| s.contains(&image)), "no step writes {image}");
}

// --- the Kubernetes Job -------------------------------------------------------

#[test]
fn job_runs_one_image_per_pod_from_its_list() {
    let (configmap, job) = job_docs();
    let images: Vec<String> = text(&configmap["data"]["images.txt"])
        .expect("the ConfigMap holds images.txt")
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    assert_eq!(
        spec["completions"].as_i64(),
        Some(images.len() as i64),
        "completions should be the number of lines of images.txt"
    );
    assert!(spec["parallelism"].as_i64().is_some_and(|p| p >= 1));
    assert!(spec["backoffLimitPerIndex"].as_i64().is_some(), "FailIndex needs backoffLimitPerIndex");
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"].as_str(), Some("Never"), "a pod failure policy needs restartPolicy Never");
    let rules = list(&spec["podFailurePolicy"]["rules"]);
    assert!(
        rules.iter().any(|r| r["action"].as_str() == Some("FailIndex")
            && r["onExitCodes"]["containerName"].as_str() == Some("validate")
            && r["onExitCodes"]["operator"].as_str() == Some("In")
            && list(&r["onExitCodes"]["values"]).iter().any(|v| v.as_i64() == Some(1))),
        "exit status 1 of validate (findings) should fail its index without a retry"
    );
    // Every mount names a volume of the pod, and the ConfigMap is this one.
    let volumes: BTreeSet<String> = list(&pod["volumes"]).iter().filter_map(|v| text(&v["name"])).collect();
    for c in list(&pod["initContainers"]).iter().chain(list(&pod["containers"])) {
        for m in list(&c["volumeMounts"]) {
            assert!(volumes.iter().any(|v| Some(v.clone()) == text(&m["name"])), "mount {:?} has no volume", m["name"]);
        }
    }
    let cm = list(&pod["volumes"]).iter().find_map(|v| text(&v["configMap"]["name"]));
    assert_eq!(cm, text(&configmap["metadata"]["name"]));
    // The validate container runs the Containerfile's entrypoint.
    let entrypoint = read(CONTAINERFILE)
        .lines()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .map(|e| serde_json::from_str::<Vec<String>>(e).expect("ENTRYPOINT in exec form"))
        .expect("the Containerfile has an ENTRYPOINT");
    let (_, words) = containers(pod).into_iter().find(|(n, _)| n == "validate").expect("a container named validate");
    assert_eq!(words[..1], entrypoint[..], "the validate container should run the image's entrypoint");
    assert_eq!(words[1..3], ["validate", "--format"]);
    assert_eq!(words[3], "json", "the aggregation reads JSON reports");
}

/// The Job's fetch script, run with real skopeo on a local copy of
/// examples/hello in place of the registry, then its validate command on
/// what the script wrote, then the aggregation on the reports through a
/// stand-in kubectl that answers from them.
#[test]
fn job_scripts_and_aggregation_run_end_to_end() {
    let dir = TestDir::new();
    let (configmap, job) = job_docs();
    let pod = &job["spec"]["template"]["spec"];
    let all = containers(pod);
    let (_, fetch) = all.iter().find(|(n, _)| n == "fetch").expect("an init container named fetch");
    let script = fetch.last().unwrap().clone();
    assert!(script.contains(r#""docker://$image""#), "the fetch script copies docker://$image");
    assert!(script.contains("JOB_COMPLETION_INDEX"), "the fetch script picks its line by JOB_COMPLETION_INDEX");
    // The same script, on this directory and a local source.
    let hello = repo_root().join("examples/hello");
    let work = dir.join("work");
    let config = dir.join("config");
    fs::create_dir_all(&work).unwrap();
    fs::create_dir_all(&config).unwrap();
    fs::write(config.join("images.txt"), format!("{}:latest\n", hello.display())).unwrap();
    let local = script
        .replace(r#""docker://$image""#, r#""oci:$image""#)
        .replace("/config/", &format!("{}/", config.display()))
        .replace("oci:/work/", &format!("oci:{}/", work.display()));
    let fetch_at = |index: &str| {
        Command::new(&fetch[0])
            .args(&fetch[1..fetch.len() - 1])
            .arg(&local)
            .env("JOB_COMPLETION_INDEX", index)
            .env("TMPDIR", &work)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", fetch[0]))
    };
    let out = fetch_at("0");
    assert!(out.status.success(), "the fetch script failed: {}", String::from_utf8_lossy(&out.stderr));
    let out = fetch_at("1");
    assert_eq!(out.status.code(), Some(2), "an index past the list should fail: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("completions is larger than the list"));

    // The validate container's command, on the copy.
    let (_, validate) = all.iter().find(|(n, _)| n == "validate").unwrap();
    let args: Vec<String> =
        validate[1..].iter().map(|a| a.replace("oci:/work/", &format!("oci:{}/", work.display()))).collect();
    let out = Command::new(BIN).args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "validate {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("validate --format json writes JSON");

    // The aggregation, over three images: one passed (after a retry), one
    // failed, one whose pod never ended.
    let images = ["registry.example.org/a:1", "registry.example.org/b:2", "registry.example.org/c:3"];
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).unwrap();
    fs::write(logs.join("p0-new"), &out.stdout).unwrap();
    fs::write(logs.join("p0-old"), "single-id: error: could not read\n").unwrap();
    fs::write(logs.join("p1"), &out.stdout).unwrap();
    let pod_json = |name: &str, index: u32, created: &str, phase: &str, code: i64| {
        json!({
            "metadata": {"name": name, "creationTimestamp": created,
                         "annotations": {"batch.kubernetes.io/job-completion-index": index.to_string()}},
            "status": {"phase": phase, "containerStatuses": [
                {"name": "validate", "state": {"terminated": {"exitCode": code}}}]}
        })
    };
    let pods = json!({"items": [
        pod_json("p0-old", 0, "2026-01-01T00:00:00Z", "Failed", 2),
        pod_json("p0-new", 0, "2026-01-01T00:05:00Z", "Succeeded", 0),
        pod_json("p1", 1, "2026-01-01T00:00:00Z", "Failed", 1),
        {"metadata": {"name": "p2", "creationTimestamp": "2026-01-01T00:00:00Z",
                      "annotations": {"batch.kubernetes.io/job-completion-index": "2"}},
         "status": {"phase": "Running"}},
    ]});
    let cm_name = text(&configmap["metadata"]["name"]).unwrap();
    let job_name = text(&job["metadata"]["name"]).unwrap();
    fs::write(dir.join("configmap.json"), json!({"data": {"images.txt": images.join("\n") + "\n"}}).to_string())
        .unwrap();
    fs::write(dir.join("pods.json"), pods.to_string()).unwrap();
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let kubectl = bin.join("kubectl");
    fs::write(
        &kubectl,
        format!(
            r#"#!/usr/bin/env bash
set -eu
d={dir}
case "$*" in
  "get configmap {cm_name} -o json") cat "$d/configmap.json" ;;
  "get pods -l job-name={job_name} -o json") cat "$d/pods.json" ;;
  "logs "*" -c validate") cat "$d/logs/$2" ;;
  *) echo "kubectl stand-in: unexpected arguments: $*" >&2; exit 3 ;;
esac
"#,
            dir = dir.path().display()
        ),
    )
    .unwrap();
    fs::set_permissions(&kubectl, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg(repo_root().join(AGGREGATE))
        .arg(&job_name)
        .env("PATH", path)
        .output()
        .expect("bash runs the aggregation script");
    assert_eq!(out.status.code(), Some(2), "an image not checked makes exit status 2: {out:?}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the aggregation writes one JSON document ({e}): {}{}",
            stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(summary["job"], json!(job_name));
    assert_eq!(summary["counts"], json!({"images": 3, "pass": 1, "fail": 1, "error": 1}));
    let entries = summary["images"].as_array().unwrap();
    let status: Vec<&Value> = entries.iter().map(|e| &e["status"]).collect();
    assert_eq!(status, [&json!("pass"), &json!("fail"), &json!("error")]);
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry["index"], json!(i));
        assert_eq!(entry["image"], json!(images[i]));
    }
    assert_eq!(entries[0]["pod"], json!("p0-new"), "the newest pod of an index counts");
    assert_eq!(entries[0]["report"], report);
    assert_eq!(entries[1]["exit_code"], json!(1));
    assert_eq!(entries[2]["pod"], Value::Null);
    assert_eq!(entries[2]["report"], Value::Null);
}

// --- the Containerfile ----------------------------------------------------------

#[test]
fn containerfile_copies_what_the_repository_has() {
    let root = repo_root();
    let file = read(CONTAINERFILE);
    // Instructions, with continuation lines joined and comments dropped.
    let mut instructions: Vec<String> = Vec::new();
    let mut pending = String::new();
    for line in file.lines().filter(|l| !l.trim_start().starts_with('#')) {
        match line.strip_suffix('\\') {
            Some(part) => pending.push_str(part),
            None => {
                pending.push_str(line);
                if !pending.trim().is_empty() {
                    instructions.push(std::mem::take(&mut pending));
                }
                pending.clear();
            }
        }
    }
    let mut stages: Vec<String> = Vec::new();
    let mut last_from = String::new();
    let mut final_copies = Vec::new();
    for ins in &instructions {
        let words: Vec<&str> = ins.split_whitespace().collect();
        match words[0] {
            "FROM" => {
                last_from = words[1].to_string();
                if let Some(i) = words.iter().position(|w| w.eq_ignore_ascii_case("AS")) {
                    stages.push(words[i + 1].to_string());
                }
                final_copies.clear();
            }
            "COPY" => {
                let from = words.iter().find_map(|w| w.strip_prefix("--from="));
                let paths: Vec<&str> = words[1..].iter().filter(|w| !w.starts_with("--")).copied().collect();
                let (sources, dest) = paths.split_at(paths.len() - 1);
                match from {
                    Some(stage) => {
                        assert!(stages.iter().any(|s| s == stage), "COPY --from={stage}: no such stage before it");
                        final_copies.push((sources.to_vec(), dest[0].to_string()));
                    }
                    None => {
                        for s in sources {
                            assert!(root.join(s).exists(), "COPY {s}: no such path in the repository");
                        }
                    }
                }
            }
            _ => {}
        }
    }
    assert_eq!(last_from, "scratch", "the final stage should hold the binary alone");
    assert_eq!(final_copies.len(), 1, "the final stage copies one file");
    let (sources, dest) = &final_copies[0];
    // The build stage writes that file, with the package that has the binary.
    assert!(file.contains(&format!("install -D -m 0755 \"target/$target/release/single-id\" {}", sources[0])));
    assert!(file.contains("cargo build --release --locked -p single-id "));
    assert!(file.contains(&format!("ENTRYPOINT [\"{dest}\"]")));
    // The image declares a value, and the header builds it with the same
    // value in the manifest.
    let label = file
        .lines()
        .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix(&format!("{}=", single_id::annotation::KEY))));
    assert_eq!(label, Some("flattened"));
    assert!(file.contains(&format!("--annotation {}=flattened", single_id::annotation::KEY)));
    // Those are the workspace's: the members copied, and the package.
    let manifest = read("validator/Cargo.toml");
    assert!(manifest.contains("name = \"single-id\""));
    assert!(file.contains("COPY validator validator") && file.contains("COPY conformance conformance"));
    let dockerignore = read(".dockerignore");
    assert!(dockerignore.lines().any(|l| l.trim() == "target"), ".dockerignore keeps target/ out of the context");
}

// --- completions and the manual page ----------------------------------------------

/// The subcommands `single-id --help` lists (without `help`).
fn subcommands() -> Vec<String> {
    let out = run(BIN, &["--help"]);
    let text = stdout(&out);
    let section = text.split("Commands:").nth(1).expect("--help lists the commands");
    section
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// The long options `single-id SUBCOMMAND --help` lists.
fn long_options(sub: &str) -> BTreeSet<String> {
    let out = run(BIN, &[sub, "--help"]);
    assert!(out.status.success(), "{sub} --help");
    stdout(&out)
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .flat_map(|l| {
            l.split([' ', ',', '=', '<'])
                .filter(|w| w.starts_with("--") && w.len() > 2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn completions_are_generated_for_every_shell() {
    let subs = subcommands();
    for expected in ["validate", "completions", "man"] {
        assert!(subs.iter().any(|s| s == expected), "`single-id --help` lists no subcommand {expected}: {subs:?}");
    }
    for shell in SHELLS {
        let out = run(BIN, &["completions", shell]);
        assert!(out.status.success(), "completions {shell}: {}", String::from_utf8_lossy(&out.stderr));
        let script = stdout(&out);
        for sub in &subs {
            assert!(script.contains(sub.as_str()), "the {shell} completions miss the subcommand {sub}");
        }
        assert!(script.contains("max-examples"), "the {shell} completions miss validate's options");
    }
    let out = run(BIN, &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");

    // bash reads the script and registers a completion function; called as
    // bash would to complete `single-id va`, it offers validate.
    let dir = TestDir::new();
    let script = dir.join("single-id.bash");
    fs::write(&script, run(BIN, &["completions", "bash"]).stdout).unwrap();
    let probe = format!(
        r#"set -eu
source {script}
complete -p single-id
function=$(complete -p single-id | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
COMP_WORDS=(single-id va); COMP_CWORD=1; COMP_LINE="single-id va"; COMP_POINT=${{#COMP_LINE}}
"$function" single-id va single-id
printf 'offer %s\n' "${{COMPREPLY[@]}}"
"#,
        script = script.display()
    );
    let out = run("bash", &["-c", &probe]);
    let text = stdout(&out);
    assert!(out.status.success(), "bash could not load the completions: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("complete") && text.contains("single-id"), "{text}");
    assert!(text.lines().any(|l| l == "offer validate"), "completing `single-id va` should offer validate: {text}");
}

#[test]
fn manual_page_documents_every_subcommand_and_option_and_renders() {
    let out = run(BIN, &["man"]);
    assert!(out.status.success(), "single-id man: {}", String::from_utf8_lossy(&out.stderr));
    let page = stdout(&out);
    assert!(page.lines().any(|l| l.starts_with(".TH single-id 1 ")), "the page's title line: {page}");
    // Rendered as man(1) would, with warnings on.
    let dir = TestDir::new();
    let file = dir.join("single-id.1");
    fs::write(&file, &page).unwrap();
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-rLL=200n"])
        .arg(&file)
        .env("GROFF_NO_SGR", "1")
        .output()
        .expect("groff is required for this test (Debian groff-base; .ci/run installs it)");
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && warnings.trim().is_empty(), "groff: {warnings}");
    // Text without overstrike (bold is "c\bc").
    let rendered: String = {
        let raw = stdout(&out);
        let mut s = String::new();
        for c in raw.chars() {
            if c == '\u{8}' {
                s.pop();
            } else {
                s.push(c);
            }
        }
        s
    };
    for heading in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "VERSION"] {
        assert!(rendered.lines().any(|l| l.trim() == heading), "the page has no {heading} section");
    }
    for sub in subcommands() {
        let heading = format!("SINGLE-ID {}", sub.to_uppercase());
        assert!(rendered.lines().any(|l| l.trim() == heading), "the page has no section {heading}");
        for option in long_options(&sub) {
            assert!(rendered.contains(&option), "the page does not document {sub} {option}");
        }
    }
}
