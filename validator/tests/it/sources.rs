//! Images read where they live: a real registry with TLS and basic
//! authentication (`docker://`), real `podman save` archives and a
//! hand-made archive of Docker 25's format (`docker-archive:`), and a real
//! podman/buildah store (`containers-storage:`). Each must give the verdict
//! the same image gives as an OCI layout, or say why it cannot.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::registry::Registry;
use crate::support::{ImageSpec, KEY, OciDir, REF, TestDir, repo_root, sha256};

fn hello() -> String {
    format!("oci:{}:latest", repo_root().join("examples/hello").display())
}

/// Each finding as `severity rule`, sorted: what a verdict consists of.
fn verdict(report: &Value) -> Vec<String> {
    let mut v: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {}", f["severity"].as_str().unwrap(), f["rule"].as_str().unwrap()))
        .collect();
    v.sort();
    v
}

fn declared(report: &Value) -> Vec<Value> {
    report["images"].as_array().unwrap().iter().map(|i| i["idFlattening"]["effective"].clone()).collect()
}

fn validate(t: &TestDir, image: &str, extra: &[String]) -> crate::support::Run {
    let mut args = vec!["validate", "--format", "json", image];
    args.extend(extra.iter().map(String::as_str));
    t.run(&args)
}

#[test]
fn registry_images_are_read_with_tls_and_credentials() {
    let t = TestDir::new();
    let registry = Registry::start(&t.join("registry"));
    let pushed = registry.push(&hello(), "examples/hello:1", &[]);
    let local = t.run(&["validate", "--format", "json", &hello()]);
    assert_eq!(local.code(), 0, "{}", local.stderr());

    let remote = validate(&t, &pushed, &registry.options());
    assert_eq!(remote.code(), 0, "{}", remote.stderr());
    let (local, remote) = (local.json(), remote.json());
    assert_eq!(verdict(&remote), verdict(&local));
    assert_eq!(declared(&remote), declared(&local));
    assert_eq!(
        remote["images"][0]["manifest"], local["images"][0]["manifest"],
        "the registry's manifest, byte for byte"
    );

    // The same through the other commands, which share the pipeline.
    let inspected =
        t.run(&["inspect", &pushed, "--cert-dir", &registry.options()[1], "--authfile", &registry.options()[3]]);
    assert_eq!(inspected.code(), 0, "{}", inspected.stderr());
    assert!(inspected.stdout().contains("7 entries"), "{}", inspected.stdout());
    let mut flatten = vec!["flatten".to_string(), pushed.clone(), "out".into()];
    flatten.extend(registry.options());
    let flattened = t.run(&flatten.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(flattened.code(), 0, "{}", flattened.stderr());
    assert_eq!(t.run(&["validate", "out"]).code(), 0);

    // Without the CA, without credentials, and without TLS: exit 2 and a hint.
    let untrusted = validate(&t, &pushed, &registry.options()[2..]);
    assert_eq!(untrusted.code(), 2);
    assert!(untrusted.stderr().contains("--cert-dir"), "{}", untrusted.stderr());
    let anonymous = validate(&t, &pushed, &registry.options()[..2]);
    assert_eq!(anonymous.code(), 2);
    assert!(anonymous.stderr().contains("login"), "{}", anonymous.stderr());
    let missing = validate(&t, &format!("docker://{}/examples/nothing:1", registry.host), &registry.options());
    assert_eq!(missing.code(), 2, "{}", missing.stderr());
    assert!(missing.stderr().contains("nothing"), "{}", missing.stderr());
}

#[test]
fn docker_schema_2_images_are_judged_by_their_label() {
    let t = TestDir::new();
    let registry = Registry::start(&t.join("registry"));
    let pushed = registry.push(&hello(), "examples/hello:v2s2", &["--format", "v2s2"]);
    let run = validate(&t, &pushed, &registry.options());
    // Docker's manifest format has no annotations: the image is judged as
    // a Docker schema 2 image, by its config Label, which survived.
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let report = run.json();
    assert_eq!(verdict(&report), Vec::<String>::new());
    assert_eq!(declared(&report), [json!("flattened")]);
    assert!(
        report["images"][0]["idFlattening"]["declared"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["place"] == "config-label")
    );
}

#[test]
fn a_platform_is_chosen_from_a_multi_platform_index() {
    let t = TestDir::new();
    let registry = Registry::start(&t.join("registry"));
    let layout = OciDir::create(t.join("multi"));
    let mut platforms = Vec::new();
    for (arch, value) in [("amd64", "flattened"), ("arm64", "caution")] {
        let mut spec = ImageSpec::declared("unused", Some(value));
        spec.ref_name = None;
        let mut desc = layout.image(&spec);
        desc["platform"] = json!({"architecture": arch, "os": "linux"});
        platforms.push(desc);
    }
    let index =
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": platforms});
    let mut desc = layout.json_blob("application/vnd.oci.image.index.v1+json", &index);
    desc["annotations"] = json!({REF: "multi"});
    let mut layout = layout;
    layout.add(desc);
    let pushed = registry.push(&format!("oci:{}:multi", layout.root.display()), "multi:1", &["--all"]);
    for (platform, value) in [("linux/amd64", "flattened"), ("linux/arm64", "caution")] {
        let mut options = registry.options();
        options.extend(["--platform".to_string(), platform.to_string()]);
        let run = validate(&t, &pushed, &options);
        assert!(run.code() <= 1, "{}", run.stderr());
        assert_eq!(declared(&run.json()), [json!(value)], "{platform}");
    }
    let bad = validate(&t, &pushed, &["--platform".to_string(), "arm64".to_string()]);
    assert_eq!(bad.code(), 2);
    assert!(bad.stderr().contains("OS/ARCH"), "{}", bad.stderr());
}

/// A podman and buildah store in `dir` (vfs, as unprivileged CI allows).
struct Store {
    root: PathBuf,
    run: PathBuf,
    conf: PathBuf,
}

impl Store {
    fn new(dir: &Path) -> Store {
        let store = Store { root: dir.join("root"), run: dir.join("run"), conf: dir.join("containers.conf") };
        fs::create_dir_all(dir.join("tmp")).unwrap();
        fs::write(
            &store.conf,
            format!("[engine]\ntmp_dir = \"{}\"\nevents_logger = \"none\"\n", dir.join("tmp").display()),
        )
        .unwrap();
        store
    }

    /// Runs podman or buildah on this store; returns its stdout.
    fn tool(&self, program: &str, args: &[&str], cwd: &Path) -> String {
        let out = Command::new(program)
            .arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.run)
            .args(["--storage-driver", "vfs"])
            .args(args)
            .current_dir(cwd)
            .env("CONTAINERS_CONF", &self.conf)
            .env_remove("BUILDAH_FORMAT")
            .output()
            .unwrap_or_else(|e| panic!("{program} is required (.ci/run installs it): {e}"));
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn reference(&self, name: &str) -> String {
        format!("containers-storage:[vfs@{}+{}]{name}", self.root.display(), self.run.display())
    }
}

#[test]
fn images_in_a_podman_store_and_its_saved_archives() {
    let t = TestDir::new();
    let store = Store::new(&t.join("store"));
    let id = store.tool("podman", &["pull", "-q", &hello()], t.path());
    store.tool("podman", &["tag", &id, "localhost/examples/hello:latest"], t.path());
    let local = t.run(&["validate", "--format", "json", &hello()]).json();

    // Pulled: the store keeps the layers uncompressed, not the blobs the
    // manifest names; the verdict is still the layout's.
    let pulled = validate(&t, &store.reference("localhost/examples/hello:latest"), &[]);
    assert_eq!(pulled.code(), 0, "{}", pulled.stderr());
    assert_eq!(verdict(&pulled.json()), verdict(&local));
    assert_eq!(declared(&pulled.json()), declared(&local));

    // Built here by buildah, with the annotation and the Label.
    fs::create_dir_all(t.join("ctx")).unwrap();
    fs::write(t.join("ctx/f"), "hi\n").unwrap();
    fs::write(t.join("ctx/Containerfile"), format!("FROM scratch\nCOPY f /f\nLABEL {KEY}=flattened\n")).unwrap();
    let annotation = format!("{KEY}=flattened");
    store.tool("buildah", &["bud", "-q", "--annotation", &annotation, "-t", "localhost/built:1", "."], &t.join("ctx"));
    let built = validate(&t, &store.reference("localhost/built:1"), &[]);
    assert_eq!(built.code(), 0, "{}", built.stderr());
    assert_eq!(declared(&built.json()), [json!("flattened")]);
    let unknown = validate(&t, &store.reference("localhost/none:1"), &[]);
    assert_eq!(unknown.code(), 2, "{}", unknown.stderr());

    // `podman save`'s older docker format: no manifest, so no annotation;
    // judged as a Docker schema 2 image, by its Label; read by name, by
    // position and as a bare path.
    let saved = t.join("saved-docker.tar");
    store.tool(
        "podman",
        &["save", "-q", "--format", "docker-archive", "-o", saved.to_str().unwrap(), "localhost/examples/hello:latest"],
        t.path(),
    );
    for image in [
        saved.display().to_string(),
        format!("docker-archive:{}", saved.display()),
        format!("docker-archive:{}:localhost/examples/hello:latest", saved.display()),
        format!("docker-archive:{}:@0", saved.display()),
    ] {
        let run = validate(&t, &image, &[]);
        assert_eq!(run.code(), 0, "{image}: {}", run.stderr());
        assert_eq!(verdict(&run.json()), Vec::<String>::new(), "{image}");
        assert_eq!(declared(&run.json()), [json!("flattened")], "{image}");
    }
    let wrong = validate(&t, &format!("docker-archive:{}:other:1", saved.display()), &[]);
    assert_eq!(wrong.code(), 2);
    assert!(wrong.stderr().contains("localhost/examples/hello:latest"), "{}", wrong.stderr());

    // podman save's OCI archive holds the manifest, annotation and all.
    let oci = t.join("saved-oci.tar");
    store.tool(
        "podman",
        &["save", "-q", "--format", "oci-archive", "-o", oci.to_str().unwrap(), "localhost/examples/hello:latest"],
        t.path(),
    );
    let run = validate(&t, oci.to_str().unwrap(), &[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(verdict(&run.json()), verdict(&local));
}

/// Docker 25 and later save an OCI layout with `manifest.json` and
/// `repositories` beside it (Docker is not installable here, so the archive
/// is made by hand from examples/hello, as Docker lays it out).
#[test]
fn docker_25_archives_are_read_as_the_layout_they_embed() {
    let t = TestDir::new();
    let from = repo_root().join("examples/hello");
    let index: Value = serde_json::from_slice(&fs::read(from.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().to_string();
    let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let manifest: Value = serde_json::from_slice(&fs::read(from.join(blob(&manifest_digest))).unwrap()).unwrap();
    let listed = json!([{
        "Config": blob(manifest["config"]["digest"].as_str().unwrap()),
        "RepoTags": ["hello:latest"],
        "Layers": manifest["layers"].as_array().unwrap().iter().map(|l| blob(l["digest"].as_str().unwrap())).collect::<Vec<_>>(),
    }]);
    let archive = t.join("docker25.tar");
    let mut b = tar::Builder::new(fs::File::create(&archive).unwrap());
    b.mode(tar::HeaderMode::Deterministic);
    b.append_dir_all(".", &from).unwrap();
    for (name, bytes) in [
        ("manifest.json", serde_json::to_vec(&listed).unwrap()),
        ("repositories", format!(r#"{{"hello":{{"latest":"{}"}}}}"#, sha256(b"")).into_bytes()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, bytes.as_slice()).unwrap();
    }
    b.finish().unwrap();
    drop(b);
    let local = t.run(&["validate", "--format", "json", from.to_str().unwrap()]).json();
    for image in [archive.display().to_string(), format!("docker-archive:{}", archive.display())] {
        let run = validate(&t, &image, &[]);
        assert_eq!(run.code(), 0, "{image}: {}", run.stderr());
        assert_eq!(verdict(&run.json()), verdict(&local), "{image}");
        assert_eq!(declared(&run.json()), declared(&local), "{image}");
    }
}

#[test]
fn unknown_sources_exit_2_and_say_what_to_run() {
    let t = TestDir::new();
    for (image, says) in [
        ("dir:/var/tmp/x", "skopeo copy dir:"),
        ("docker-daemon:x:1", "docker save"),
        ("docker:x", "docker://"),
        ("podman:x", "containers-storage:"),
    ] {
        let run = t.run(&["validate", image]);
        assert_eq!(run.code(), 2, "{image}");
        assert!(run.stderr().contains(says), "{image}: {}", run.stderr());
    }
    // A tar that is neither an OCI archive nor a docker save archive.
    let mut b = tar::Builder::new(fs::File::create(t.join("other.tar")).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    b.append_data(&mut h, "notes.txt", &b"hi\n"[..]).unwrap();
    b.finish().unwrap();
    drop(b);
    let run = t.run(&["validate", "other.tar"]);
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("docker save"), "{}", run.stderr());
    let run = t.run(&["flatten", "other.tar", "docker://127.0.0.1:1/x:1"]);
    assert_eq!(run.code(), 2);
}

/// The older format by hand, as some tools write it: a gzip-compressed
/// layer file (hashed to name it), and a second image sharing that layer
/// through a symbolic link, as `docker save` shares identical layers.
#[test]
fn older_docker_archives_with_compressed_and_linked_layers() {
    let t = TestDir::new();
    let from = repo_root().join("examples/hello");
    let index: Value = serde_json::from_slice(&fs::read(from.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| from.join(format!("blobs/sha256/{}", d.trim_start_matches("sha256:")));
    let manifest: Value =
        serde_json::from_slice(&fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap()).unwrap();
    let config = fs::read(blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    let layer = fs::read(blob(manifest["layers"][0]["digest"].as_str().unwrap())).unwrap();
    let listed = json!([
        {"Config": "config.json", "RepoTags": ["hello:1"], "Layers": ["a/layer.tar"]},
        {"Config": "config2.json", "RepoTags": ["hello:2"], "Layers": ["b/layer.tar"]},
    ]);
    // Another config (one more byte) makes it another image.
    let config2 = [config.as_slice(), b"\n"].concat();
    let archive = t.join("older.tar");
    let mut b = tar::Builder::new(fs::File::create(&archive).unwrap());
    for (name, bytes) in [
        ("manifest.json", serde_json::to_vec(&listed).unwrap()),
        ("config.json", config),
        ("config2.json", config2),
        ("a/layer.tar", layer),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, bytes.as_slice()).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "b/layer.tar", "../a/layer.tar").unwrap();
    b.finish().unwrap();
    drop(b);
    let run = validate(&t, archive.to_str().unwrap(), &[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let report = run.json();
    // Both images, each read in full, declared by their Labels.
    assert_eq!(declared(&report), [json!("flattened"), json!("flattened")]);
    assert_eq!(verdict(&report), Vec::<String>::new());
    let names: Vec<&str> = report["images"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["hello:1", "hello:2"]);
    let inspected = t.run(&["inspect", &format!("docker-archive:{}:hello:2", archive.display())]);
    assert_eq!(inspected.code(), 0, "{}", inspected.stderr());
    assert!(inspected.stdout().contains("7 entries"), "{}", inspected.stdout());
}
