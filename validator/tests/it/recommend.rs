//! `single-id inspect` recommends, for images made by real tools, the value
//! the spec's "Typical images" table gives for their kind:
//!
//! | image (scripts/real-images.sh)                          | value      |
//! |---------------------------------------------------------|------------|
//! | `base`: debootstrap --variant=minbase, packed by umoci  | `allowed`  |
//! | `base-apt`: base after apt ran (`_apt`'s 0700 dir)      | `allowed`  |
//! | `service`: base + svc (999) owning /var/lib/svc (0700)  | `caution`  |
//! | `user`: base + config.User 1000                         | `caution`  |
//! | `setgid-dirs`: /var/mail, /var/local 2775 and nothing else | `allowed` |
//! | `unprivileged`: built by Charliecloud as an ordinary user | `flattened` |
//!
//! The script builds the layouts once into target/test-data/real-images
//! (delete a layout there to rebuild it). It runs as root and needs
//! debootstrap, umoci, skopeo, Charliecloud, docker-registry and the Debian
//! mirror; a missing tool fails the test, naming it (.ci/run installs them).
//! Each test first checks, from the layout itself, that the image has the
//! features of its row, so a change in a tool cannot make the test vacuous.

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use support::{TestDir, repo_root, schema};

/// The directory of layouts, built on first use by this test binary (the
/// script itself skips layouts that exist and locks against other runs).
fn images() -> &'static Path {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = repo_root().join("target/test-data/real-images");
        let script = repo_root().join("scripts/real-images.sh");
        let run = Command::new("bash")
            .arg(&script)
            .arg(&out)
            .output()
            .map_err(|e| format!("bash could not run {}: {e}", script.display()))?;
        let log = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
        if !run.status.success() {
            return Err(format!("{} failed ({}):\n{log}", script.display(), run.status));
        }
        println!("{log}");
        Ok(out)
    });
    match built {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// One entry of a layer, as the layer records it.
#[derive(Debug)]
struct Entry {
    path: String,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
}

/// The one image of a layout: its `config.User` and every layer's entries
/// (whiteouts included, later layers last).
struct Image {
    name: &'static str,
    layout: PathBuf,
    user: String,
    entries: Vec<Entry>,
}

impl Image {
    fn load(name: &'static str) -> Image {
        let layout = images().join(name);
        let blob =
            |d: &Value| layout.join("blobs/sha256").join(d["digest"].as_str().unwrap().trim_start_matches("sha256:"));
        let json = |p: PathBuf| -> Value {
            serde_json::from_slice(&fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
        };
        let index = json(layout.join("index.json"));
        let manifests = index["manifests"].as_array().unwrap();
        assert_eq!(manifests.len(), 1, "{name}: one image per layout");
        let manifest = json(blob(&manifests[0]));
        let config = json(blob(&manifest["config"]));
        let user = config["config"]["User"].as_str().unwrap_or_default().to_string();
        let mut entries = Vec::new();
        for layer in manifest["layers"].as_array().unwrap() {
            let file = fs::File::open(blob(layer)).unwrap();
            let media_type = layer["mediaType"].as_str().unwrap();
            let stream: Box<dyn Read> = if media_type.ends_with("gzip") {
                Box::new(flate2::read::GzDecoder::new(file))
            } else if media_type.ends_with("zstd") {
                Box::new(zstd::Decoder::new(file).unwrap())
            } else {
                Box::new(file)
            };
            for e in tar::Archive::new(stream).entries().unwrap() {
                let e = e.unwrap();
                let h = e.header();
                let path =
                    e.path().unwrap().to_string_lossy().trim_start_matches("./").trim_end_matches('/').to_string();
                entries.push(Entry {
                    path,
                    kind: h.entry_type(),
                    mode: h.mode().unwrap(),
                    uid: h.uid().unwrap(),
                    gid: h.gid().unwrap(),
                });
            }
        }
        Image { name, layout, user, entries }
    }

    /// The last entry recorded for `path`.
    fn get(&self, path: &str) -> &Entry {
        self.entries.iter().rev().find(|e| e.path == path).unwrap_or_else(|| panic!("{}: no {path}", self.name))
    }

    fn owners(&self) -> BTreeMap<(u64, u64), usize> {
        let mut m = BTreeMap::new();
        for e in &self.entries {
            *m.entry((e.uid, e.gid)).or_default() += 1;
        }
        m
    }

    fn with_mode(&self, bits: u32) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.mode & bits != 0).collect()
    }

    fn devices(&self) -> usize {
        self.entries.iter().filter(|e| e.kind.is_character_special() || e.kind.is_block_special()).count()
    }

    /// Entries strictly beneath directory `dir`.
    fn beneath(&self, dir: &str) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.path.starts_with(&format!("{dir}/"))).collect()
    }

    /// Runs `single-id inspect --format json` (valid report, exit status 0)
    /// and asserts the value it recommends, showing its stated reason.
    fn assert_recommends(&self, value: &str) {
        let t = TestDir::new();
        let r = t.run(&["inspect", "--format", "json", self.layout.to_str().unwrap()]);
        assert_eq!(r.code(), 0, "{}: inspect exit status; stderr: {}", self.name, r.stderr());
        let doc = r.json();
        schema::assert_valid("inspect-report.schema.json", &doc);
        let rec = &doc["images"][0]["recommendation"];
        assert_eq!(rec["value"], value, "{}: inspect recommends {} because {}", self.name, rec["value"], rec["reason"]);
    }
}

/// A directory entry's mode, owner and type, for comparing in one go.
fn dir(e: &Entry) -> (u32, u64, u64, bool) {
    (e.mode & 0o7777, e.uid, e.gid, e.kind.is_dir())
}

/// What a Debian base system has: set-ID programs, system groups (shadow
/// 42, utmp 43, mail 8, staff 50), set-group-ID directories, devices.
fn assert_debian_base(img: &Image) {
    assert_eq!(img.get("usr/bin/passwd").mode & 0o7777, 0o4755, "{}", img.name);
    assert_eq!((img.get("usr/bin/chage").mode & 0o7777, img.get("usr/bin/chage").gid), (0o2755, 42));
    assert_eq!(dir(img.get("var/mail")), (0o2775, 0, 8, true));
    assert_eq!(dir(img.get("var/local")), (0o2775, 0, 50, true));
    assert_eq!(img.get("etc/shadow").gid, 42);
    assert_eq!(img.get("var/log/wtmp").gid, 43);
    assert!(img.devices() > 0, "{}: debootstrap makes /dev/null and friends", img.name);
}

#[test]
fn debootstrap_base_is_allowed() {
    let img = Image::load("base");
    assert_debian_base(&img);
    let uids: Vec<u64> = img.owners().keys().map(|(u, _)| *u).collect();
    assert!(uids.iter().all(|u| *u == 0), "{uids:?}");
    assert_eq!(img.user, "");
    img.assert_recommends("allowed");
}

/// apt's private download directory, 0700 and owned by `_apt` (42:0), is
/// empty: a non-root-owned private directory that guards nothing.
#[test]
fn base_after_apt_is_allowed() {
    let img = Image::load("base-apt");
    assert_debian_base(&img);
    let partial = "var/cache/apt/archives/partial";
    assert_eq!(dir(img.get(partial)), (0o700, 42, 0, true));
    assert!(img.beneath(partial).is_empty(), "{:?}", img.beneath(partial));
    assert_eq!(img.user, "");
    img.assert_recommends("allowed");
}

#[test]
fn service_owning_its_data_directory_deserves_caution() {
    let img = Image::load("service");
    assert_debian_base(&img);
    assert_eq!(dir(img.get("var/lib/svc")), (0o700, 999, 999, true));
    let inside = img.beneath("var/lib/svc");
    assert!(!inside.is_empty() && inside.iter().all(|e| (e.uid, e.gid) == (999, 999)), "{inside:?}");
    let start = img.get("usr/local/bin/svc-start");
    assert_eq!((start.uid, start.gid), (0, 0));
    assert_eq!(img.user, "", "the service drops privilege itself");
    img.assert_recommends("caution");
}

#[test]
fn config_user_deserves_caution() {
    let img = Image::load("user");
    assert_debian_base(&img);
    assert!(img.entries.iter().all(|e| e.uid != 1000 && e.gid != 1000), "user 1000 owns nothing");
    assert_eq!(img.user, "1000");
    img.assert_recommends("caution");
}

#[test]
fn setgid_directories_alone_are_allowed() {
    let img = Image::load("setgid-dirs");
    assert_eq!(dir(img.get("var/mail")), (0o2775, 0, 8, true));
    assert_eq!(dir(img.get("var/local")), (0o2775, 0, 50, true));
    let setid: Vec<&str> = img.with_mode(0o6000).iter().map(|e| e.path.as_str()).collect();
    assert_eq!(setid, ["var/local", "var/mail"]);
    let owners: Vec<(u64, u64)> = img.owners().into_keys().collect();
    assert_eq!(owners, [(0, 0), (0, 8), (0, 50)]);
    assert_eq!((img.devices(), img.user.as_str()), (0, ""));
    img.assert_recommends("allowed");
}

#[test]
fn unprivileged_build_is_flattened() {
    let img = Image::load("unprivileged");
    let owners: Vec<(u64, u64)> = img.owners().into_keys().collect();
    assert_eq!(owners, [(0, 0)], "ch-image push resets every owner to 0:0");
    assert!(img.with_mode(0o6000).is_empty(), "{:?}", img.with_mode(0o6000));
    assert_eq!((img.devices(), img.user.as_str()), (0, ""));
    // Built on the Debian base: its content, less what ch-image drops.
    assert_eq!(img.get("usr/bin/passwd").mode & 0o7777, 0o755);
    assert!(img.get("usr/local/bin/hello").kind.is_file());
    img.assert_recommends("flattened");
}

/// Declaring nothing is valid for an image that could declare `flattened`:
/// validate reports no error and exits 0.
#[test]
fn unprivileged_build_validates_undeclared() {
    let layout = images().join("unprivileged");
    let t = TestDir::new();
    let r = t.run(&["validate", "--format", "json", layout.to_str().unwrap()]);
    let doc = r.json();
    schema::assert_valid("validate-report.schema.json", &doc);
    assert_eq!(doc["images"][0]["idFlattening"]["effective"], "allowed", "{doc:#}");
    assert_eq!((r.code(), &doc["summary"]["errors"]), (0, &0.into()), "{doc:#}");
}
