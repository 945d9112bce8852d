//! docs/producers.md, the producers' guide, run as written.
//!
//! Every fenced block of the guide is either a recipe (`recipe=NAME` in its
//! info string), which a test here runs with `bash -euo pipefail` in an empty
//! directory and then holds to the claims in the same info string (the image
//! it leaves, what validate says of it), or a block marked `not-run=NAME`,
//! which only the docker buildx section may hold. A recipe this file does
//! not list fails the test, so the guide cannot gain an unchecked recipe.
//!
//! The tools are real (buildah, podman, umoci, Charliecloud, skopeo,
//! docker-registry) and required: a missing one fails the test, as in
//! real_tools.rs (.ci/run installs them). Their state stays in each test's
//! temporary directory, set through the environment (CONTAINERS_STORAGE_CONF,
//! CONTAINERS_CONF, CH_IMAGE_STORAGE, TMPDIR) so that the guide shows the
//! commands a user types; only the containers/image blob-info cache under
//! /var/lib/containers/cache is shared, as with any run of those tools.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{TestDir, repo_root, schema};

/// Every recipe of the guide, by the tool whose test runs it; the tool is
/// also the anchor of the guide's section that holds the recipe.
const RECIPES: &[(&str, &[&str])] = &[
    ("buildah", &["buildah-declare", "buildah-docker-format", "buildah-flattened", "buildah-ci"]),
    ("podman", &["podman-declare", "podman-cached-build", "podman-flattened", "podman-derived", "podman-ci"]),
    ("umoci", &["umoci-declare", "umoci-flattened", "umoci-ci"]),
    ("charliecloud", &["charliecloud-push", "charliecloud-declare", "charliecloud-flattened", "charliecloud-ci"]),
];

/// The only section whose blocks may be marked `not-run`.
const NOT_RUN_SECTION: &str = "docker-buildx";

/// Anchors that validator messages and other documents link to: renaming
/// one breaks those links, so it must fail here first.
const ANCHORS: &[&str] = &[
    "what-to-write",
    "annotation-manifest-missing",
    "annotation-label-missing",
    "annotation-docker-label-missing",
    "annotation-conflict",
    "annotation-misplaced",
    "annotation-reserved-key",
    "annotation-value",
    "annotation-empty",
    "annotation-absent",
    "buildah",
    "buildah-declare",
    "buildah-docker-format",
    "buildah-flattened",
    "buildah-ci",
    "podman",
    "podman-declare",
    "podman-cached-build",
    "podman-flattened",
    "podman-derived",
    "podman-ci",
    "umoci",
    "umoci-declare",
    "umoci-flattened",
    "umoci-ci",
    "charliecloud",
    "charliecloud-push",
    "charliecloud-declare",
    "charliecloud-flattened",
    "charliecloud-ci",
    "docker-buildx",
    "docker-buildx-declare",
    "docker-buildx-flattened",
    "docker-buildx-ci",
    "ci",
    "how-tested",
];

/// The marks a recipe's info string may carry (docs/producers.md, "How
/// this guide is tested"); `strict` is the only one without a value.
const MARKS: &[&str] =
    &["recipe", "after", "values", "image", "exit", "effective", "annotations", "strict", "recommended", "sarif"];

/// Longest a recipe may run before it is killed and the test fails.
const RECIPE_TIMEOUT: Duration = Duration::from_secs(300);

/// One fenced block of the guide.
#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    /// Anchor of the `##` section it is in.
    section: Option<String>,
    /// The marks after the language word: `key=value`, or `key` alone.
    marks: BTreeMap<String, Option<String>>,
    body: String,
}

impl Block {
    fn mark(&self, key: &str) -> Option<&str> {
        self.marks.get(key).and_then(|v| v.as_deref())
    }

    fn need(&self, key: &str) -> &str {
        self.mark(key).unwrap_or_else(|| panic!("docs/producers.md:{}: the block has no `{key}=`", self.line))
    }

    fn name(&self) -> &str {
        self.mark("recipe").or(self.mark("not-run")).unwrap_or("?")
    }
}

fn guide_text() -> String {
    let path = repo_root().join("docs/producers.md");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fenced blocks of the guide, and the anchors (`<a id="...">`) in order.
fn parse(text: &str) -> (Vec<Block>, Vec<String>) {
    let mut blocks = Vec::new();
    let mut anchors = Vec::new();
    let mut section = None;
    let mut last_anchor: Option<String> = None;
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        if let Some(block) = open.as_mut() {
            if line.trim_end() == "```" {
                blocks.push(open.take().unwrap());
            } else {
                block.body.push_str(line);
                block.body.push('\n');
            }
            continue;
        }
        if let Some(info) = line.strip_prefix("```") {
            let mut words = info.split_whitespace();
            let _language = words.next();
            let mut marks = BTreeMap::new();
            for word in words {
                let (k, v) = match word.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (word.to_string(), None),
                };
                assert!(marks.insert(k, v).is_none(), "docs/producers.md:{}: a mark is repeated: {line}", i + 1);
            }
            open = Some(Block { line: i + 1, section: section.clone(), marks, body: String::new() });
            continue;
        }
        if let Some(rest) = line.strip_prefix("<a id=\"") {
            let id = rest.split('"').next().unwrap().to_string();
            anchors.push(id.clone());
            last_anchor = Some(id);
        } else if line.starts_with("## ") {
            section = last_anchor.take();
        } else if !line.trim().is_empty() {
            last_anchor = None;
        }
    }
    assert!(open.is_none(), "docs/producers.md: a fenced block is never closed");
    (blocks, anchors)
}

fn tool_of(recipe: &str) -> Option<&'static str> {
    RECIPES.iter().find(|(_, names)| names.contains(&recipe)).map(|(tool, _)| *tool)
}

/// The guide's structure: every block is a known recipe or a docker block,
/// every recipe makes checkable claims, and the linked anchors exist.
#[test]
fn every_block_is_a_known_recipe_or_an_untested_docker_block() {
    let (blocks, anchors) = parse(&guide_text());
    let mut seen = BTreeSet::new();
    for b in &blocks {
        let at = format!("docs/producers.md:{}", b.line);
        match (b.mark("recipe"), b.mark("not-run")) {
            (Some(name), None) => {
                let tool = tool_of(name).unwrap_or_else(|| {
                    panic!("{at}: recipe `{name}` is not known to validator/tests/it/producers.rs; add it to RECIPES so that it is run and checked")
                });
                assert!(seen.insert(name.to_string()), "{at}: recipe `{name}` appears twice");
                assert_eq!(b.section.as_deref(), Some(tool), "{at}: recipe `{name}` is outside the `{tool}` section");
                for (key, value) in &b.marks {
                    assert!(MARKS.contains(&key.as_str()), "{at}: unknown mark `{key}` (known: {MARKS:?})");
                    assert_eq!(
                        value.is_none(),
                        key == "strict",
                        "{at}: `strict` stands alone, every other mark is `{key}=VALUE`"
                    );
                }
                for key in ["image", "exit", "effective", "annotations"] {
                    b.need(key);
                }
                if let Some(values) = b.mark("values") {
                    let first = values.split(',').next().unwrap();
                    assert_eq!(first, b.need("effective"), "{at}: with `values`, `effective` is the first value");
                    let needle = format!("id-flattening={first}");
                    assert!(b.body.contains(&needle), "{at}: `values` needs `{needle}` in the recipe");
                }
                if let Some(after) = b.mark("after") {
                    assert!(
                        blocks.iter().any(|o| o.mark("recipe") == Some(after) && o.line < b.line),
                        "{at}: `after={after}` names no recipe above this one"
                    );
                }
                assert!(!b.body.trim().is_empty(), "{at}: the recipe is empty");
            }
            (None, Some(name)) => {
                assert_eq!(
                    b.section.as_deref(),
                    Some(NOT_RUN_SECTION),
                    "{at}: `not-run={name}` outside the docker buildx section; every other block must be a tested recipe"
                );
                assert!(name.starts_with("docker-buildx-"), "{at}: a not-run block is named docker-buildx-*");
                assert!(seen.insert(name.to_string()), "{at}: block `{name}` appears twice");
            }
            _ => panic!(
                "{at}: every fenced block is marked either `recipe=NAME` (run by the tests) or, in the docker buildx section, `not-run=NAME`"
            ),
        }
    }
    for (tool, names) in RECIPES {
        for name in *names {
            assert!(
                seen.contains(*name),
                "recipe `{name}` ({tool}) is no longer in docs/producers.md; remove it from RECIPES"
            );
        }
    }
    assert!(blocks.iter().any(|b| b.mark("not-run").is_some()), "the docker buildx blocks are gone");
    let mut unique = BTreeSet::new();
    for a in &anchors {
        assert!(unique.insert(a), "docs/producers.md: anchor `{a}` appears twice");
    }
    for a in ANCHORS {
        assert!(unique.contains(&a.to_string()), "docs/producers.md: anchor `{a}` is gone; links to it break");
    }
    // Every internal link of the guide leads to an anchor of the guide.
    for (i, line) in guide_text().lines().enumerate() {
        for part in line.split("](#").skip(1) {
            let target = part.split(')').next().unwrap();
            assert!(unique.contains(&target.to_string()), "docs/producers.md:{}: link to missing #{target}", i + 1);
        }
    }
}

/// A temporary directory for one run of a recipe: `work/`, where it runs,
/// and `state/`, where the tools keep theirs.
struct Sandbox {
    _dir: TestDir,
    work: PathBuf,
    state: PathBuf,
    env: Vec<(String, String)>,
}

fn sandbox(extra_env: &[(String, String)]) -> Sandbox {
    let dir = TestDir::new();
    let work = dir.join("work");
    let state = dir.join("state");
    // ch-image makes its storage directory itself, and refuses one it did not make.
    for d in [&work, &state.join("tmp"), &state.join("libpod")] {
        fs::create_dir_all(d).unwrap();
    }
    let s = state.display();
    fs::write(
        state.join("storage.conf"),
        format!("[storage]\ndriver = \"vfs\"\ngraphroot = \"{s}/storage\"\nrunroot = \"{s}/run\"\n"),
    )
    .unwrap();
    fs::write(state.join("containers.conf"), format!("[engine]\ntmp_dir = \"{s}/libpod\"\nevents_logger = \"none\"\n"))
        .unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_single-id")).parent().unwrap().display().to_string();
    // The system directories come before the inherited PATH: ch-image runs
    // `env python3` and needs the system Python, which has its parser (a
    // Python of a version manager earlier on PATH would not).
    let path = format!("{bin}:/usr/sbin:/usr/bin:/sbin:/bin:{}", std::env::var("PATH").unwrap_or_default());
    let mut env = vec![
        ("PATH".to_string(), path),
        ("CONTAINERS_STORAGE_CONF".to_string(), format!("{s}/storage.conf")),
        ("CONTAINERS_CONF".to_string(), format!("{s}/containers.conf")),
        ("CH_IMAGE_STORAGE".to_string(), format!("{s}/ch-image")),
        ("TMPDIR".to_string(), format!("{s}/tmp")),
    ];
    // ch-image refuses to run without $USER, which a CI container may lack.
    if std::env::var_os("USER").is_none() {
        let out = Command::new("id").arg("-un").output().unwrap();
        env.push(("USER".to_string(), String::from_utf8(out.stdout).unwrap().trim().to_string()));
    }
    env.extend(extra_env.iter().cloned());
    Sandbox { _dir: dir, work, state, env }
}

impl Sandbox {
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.work).stdin(Stdio::null());
        // Settings that would change what the tools write.
        for var in ["BUILDAH_FORMAT", "BUILDAH_LAYERS", "BUILDAH_ISOLATION", "CH_IMAGE_CACHE"] {
            c.env_remove(var);
        }
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs a script as the guide says: `bash -euo pipefail`, in `work/`.
    fn bash(&self, what: &str, script: &str) {
        let (out, err) = (self.state.join("recipe.out"), self.state.join("recipe.err"));
        let mut c = self.command("bash");
        c.args(["-euo", "pipefail", "-c", script])
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .process_group(0);
        let mut child = c.spawn().unwrap_or_else(|e| panic!("bash could not run: {e}"));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > RECIPE_TIMEOUT {
                // SAFETY: kill signals only the process group of our own child.
                unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
                let _ = child.wait();
                panic!("{what} still ran after {RECIPE_TIMEOUT:?}:\n{}", fs::read_to_string(&err).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "{what} failed ({status}):\n--- script\n{script}--- stdout\n{}--- stderr\n{}",
            fs::read_to_string(&out).unwrap_or_default(),
            fs::read_to_string(&err).unwrap_or_default()
        );
    }

    /// `single-id ARGS` in `work/`: exit status and stdout.
    fn single_id(&self, args: &[&str]) -> (i32, String) {
        let out = self.command(env!("CARGO_BIN_EXE_single-id")).args(args).output().unwrap();
        let code = out.status.code().expect("single-id was killed by a signal");
        assert_ne!(code, 2, "single-id {args:?} could not run: {}", String::from_utf8_lossy(&out.stderr));
        (code, String::from_utf8(out.stdout).unwrap())
    }

    /// Fails unless `program --version` runs here: the tools are required.
    fn require(&self, program: &str) {
        let out = self.command(program).arg("--version").output().unwrap_or_else(|e| {
            panic!("{program} is required by docs/producers.md's recipes and could not run: {e} (.ci/run installs it)")
        });
        assert!(
            out.status.success(),
            "{program} is required by docs/producers.md's recipes and does not work: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn recipe<'a>(blocks: &'a [Block], name: &str) -> &'a Block {
    blocks.iter().find(|b| b.mark("recipe") == Some(name)).unwrap_or_else(|| panic!("no recipe `{name}` in the guide"))
}

/// The recipe `name` and those it runs after, first to last.
fn chain<'a>(blocks: &'a [Block], name: &str) -> Vec<&'a Block> {
    let b = recipe(blocks, name);
    let mut out = b.mark("after").map(|a| chain(blocks, a)).unwrap_or_default();
    out.push(b);
    out
}

/// Runs recipe `name` once per value it declares (each time in a fresh
/// sandbox, after the recipes it follows) and checks its claims.
fn run_recipe(blocks: &[Block], name: &str, extra_env: &[(String, String)]) {
    let steps = chain(blocks, name);
    let (b, before) = steps.split_last().unwrap();
    let first = b.need("effective").to_string();
    let values: Vec<String> = match b.mark("values") {
        Some(v) => v.split(',').map(String::from).collect(),
        None => vec![first.clone()],
    };
    for value in values {
        let mut what = format!("recipe `{name}` (docs/producers.md:{})", b.line);
        if b.mark("values").is_some() {
            what += &format!(" declaring {value}");
        }
        let sb = sandbox(extra_env);
        for step in before {
            sb.bash(&format!("recipe `{}`, which `{name}` runs after", step.name()), &step.body);
        }
        let body = b.body.replace(&format!("id-flattening={first}"), &format!("id-flattening={value}"));
        sb.bash(&what, &body);
        check_claims(&sb, b, &value, &what);
    }
}

fn check_claims(sb: &Sandbox, b: &Block, effective: &str, what: &str) {
    let image = b.need("image");
    let (code, out) = sb.single_id(&["validate", "--format", "json", image]);
    let doc: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{what}: validate wrote no JSON ({e}): {out}"));
    schema::assert_valid("validate-report.schema.json", &doc);
    let exit: i32 = b.need("exit").parse().unwrap();
    assert_eq!(code, exit, "{what}: `single-id validate {image}` exits {code}, the guide says {exit}:\n{doc:#}");
    let images = doc["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{what}: {image} should hold one image:\n{doc:#}");
    assert_eq!(images[0]["idFlattening"]["effective"], effective, "{what}: effective value:\n{doc:#}");
    let found: BTreeSet<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .filter(|r| r.starts_with("annotation-"))
        .collect();
    let claimed: BTreeSet<&str> = match b.need("annotations") {
        "none" => BTreeSet::new(),
        list => list.split(',').collect(),
    };
    assert_eq!(found, claimed, "{what}: annotation-* findings:\n{doc:#}");
    if b.marks.contains_key("strict") {
        let (code, out) = sb.single_id(&["validate", "--strict", "--format", "json", image]);
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_eq!((code, &doc["findings"]), (0, &serde_json::json!([])), "{what}: validate --strict:\n{doc:#}");
    }
    if let Some(value) = b.mark("recommended") {
        let (code, out) = sb.single_id(&["inspect", "--format", "json", image]);
        let doc: Value = serde_json::from_str(&out).unwrap();
        schema::assert_valid("inspect-report.schema.json", &doc);
        assert_eq!(code, 0, "{what}: inspect:\n{doc:#}");
        assert_eq!(doc["images"][0]["recommendation"]["value"], value, "{what}: inspect's recommendation:\n{doc:#}");
    }
    if let Some(file) = b.mark("sarif") {
        let path = sb.work.join(file);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{what}: no {file}: {e}"));
        let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {file} is not JSON ({e})"));
        schema::assert_valid_sarif(&doc);
    }
}

/// Runs every recipe of `tool`'s section, after checking that `programs`
/// work.
fn run_tool(tool: &str, programs: &[&str], extra_env: &[(String, String)]) {
    let (blocks, _) = parse(&guide_text());
    let probe = sandbox(extra_env);
    for p in programs {
        probe.require(p);
    }
    let names = RECIPES.iter().find(|(t, _)| *t == tool).unwrap().1;
    for name in names {
        run_recipe(&blocks, name, extra_env);
    }
}

#[test]
fn buildah_recipes() {
    run_tool("buildah", &["buildah"], &[]);
}

#[test]
fn podman_recipes() {
    run_tool("podman", &["podman"], &[]);
}

#[test]
fn umoci_recipes() {
    run_tool("umoci", &["umoci"], &[]);
}

/// Charliecloud hands images on only by pushing them to a registry: this
/// test runs a registry of its own on a free loopback port, with a
/// certificate made for it that ch-image (Python requests) and skopeo (Go)
/// are told to trust through the environment.
#[test]
fn charliecloud_recipes() {
    let dir = TestDir::new();
    for (p, arg) in [("openssl", "version"), ("docker-registry", "--version")] {
        let status = Command::new(p).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "{p} is required by docs/producers.md's Charliecloud recipes and does not run: {status:?} (.ci/run installs it)"
        );
    }
    let registry = Registry::start(dir.path());
    let cert = registry.cert.display().to_string();
    let env = [
        ("REGISTRY".to_string(), registry.addr.clone()),
        ("REQUESTS_CA_BUNDLE".to_string(), cert.clone()),
        ("SSL_CERT_FILE".to_string(), cert),
    ];
    run_tool("charliecloud", &["ch-image", "skopeo", "umoci"], &env);
}

/// A docker-registry serving HTTPS on 127.0.0.1, stopped when dropped.
struct Registry {
    child: Child,
    addr: String,
    cert: PathBuf,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl req failed: {}", String::from_utf8_lossy(&out.stderr));
        // A free port: the kernel's choice, released just before the
        // registry binds it.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("registry.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n  tls:\n    certificate: {}\n    key: {}\n",
                dir.join("data").display(),
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let log = dir.join("registry.log");
        let log_file = fs::File::create(&log).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("docker-registry could not run: {e} (.ci/run installs it)"));
        let mut registry = Registry { child, addr, cert };
        let started = Instant::now();
        while TcpStream::connect(&registry.addr).is_err() {
            if let Some(status) = registry.child.try_wait().unwrap() {
                panic!("docker-registry stopped ({status}): {}", fs::read_to_string(&log).unwrap_or_default());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "docker-registry does not listen on {}",
                registry.addr
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
