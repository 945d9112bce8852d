//! SARIF 2.1.0, as GitHub code scanning reads it: one reporting descriptor
//! per rule, one result per finding, located by the file in the layout and,
//! logically, by image, layer and path.

use serde::Serialize;
use serde_json::{Value, json};

use crate::diagnostic::Finding;
use crate::diagnostic::{Rule, Severity};
use crate::levels::Level;
use crate::report::Report;
use crate::rules::ALL;

#[derive(Serialize)]
struct Log {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<Value>,
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

/// Where the repository's documentation is published, when the user says
/// so (`--docs-url`): links are written only then, since a link relative
/// to this repository would be broken in the user's.
#[derive(Clone, Copy, Debug, Default)]
pub struct Docs<'a>(pub Option<&'a str>);

impl Docs<'_> {
    fn link(&self, page: &str) -> Option<String> {
        self.0.map(|base| format!("{}/{page}", base.trim_end_matches('/')))
    }
}

fn descriptor(r: &Rule, docs: Docs) -> Value {
    let severity = level(r.severity);
    let fix = match r.fix {
        Some(_) => {
            " The producer guide (docs/producers.md in the single-id repository) shows the fix for buildah, podman, umoci, Charliecloud and docker buildx."
        }
        None => "",
    };
    let text = format!(
        "{} This is a {severity} by default, and enforces clause {} of the single-ID images specification (`single-id rules` lists every rule).{fix}",
        r.summary, r.clause
    );
    let mut markdown = format!(
        "**{}**\n\n{}\n\n- Default level: {severity}\n- Specification clause: `{}`\n- Change its level with `--allow`, `--warn` or `--deny {}`, or in `single-id.toml`.",
        r.id, r.summary, r.clause, r.id
    );
    if let Some(spec) = docs.link(&r.spec_link()) {
        markdown.push_str(&format!("\n- [The clause in the specification]({spec})"));
    }
    match r.fix_link().and_then(|f| docs.link(&f)) {
        Some(fix) => markdown.push_str(&format!("\n- [How to fix it with your build tool]({fix})")),
        None if r.fix.is_some() => {
            markdown.push_str("\n- The producer guide (`docs/producers.md`) shows the fix for each build tool.")
        }
        None => {}
    }
    let mut d = json!({
        "id": r.id,
        "shortDescription": {"text": r.summary},
        "fullDescription": {"text": text},
        "help": {"text": text, "markdown": markdown},
        "defaultConfiguration": {"level": severity},
        "properties": {"specClause": r.clause, "tags": [r.clause]},
    });
    if let Some(uri) = docs.link(&r.spec_link()) {
        d["helpUri"] = json!(uri);
    }
    d
}

/// The URI of the layout directory or archive, the one physical location
/// of every result: blob files are named by digest, which changes with
/// every rebuild, and code scanning would then close and reopen every
/// alert. An absolute path becomes a `file://` URI; a relative one stays a
/// relative reference, which GitHub resolves against the repository.
fn layout_uri(layout: &str) -> String {
    // A URI reference: escape what would end or change the path part.
    let escaped: String = layout
        .trim_end_matches('/')
        .chars()
        .map(|c| match c {
            '%' | ' ' | '#' | '?' | '[' | ']' => format!("%{:02X}", c as u32),
            c if c.is_control() => c.to_string().bytes().map(|b| format!("%{b:02X}")).collect(),
            c => c.to_string(),
        })
        .collect();
    if escaped.starts_with('/') { format!("file://{escaped}") } else { escaped }
}

/// What identifies a finding across rebuilds of the same image: its rule,
/// image name, layer, path and JSON pointer, never a digest or a message.
fn fingerprint(f: &Finding) -> String {
    let loc = &f.location;
    let path = f.examples.first().map(|e| e.path.as_str()).or(loc.path.as_deref()).unwrap_or_default();
    let parts = [
        f.rule.id,
        loc.image.as_deref().unwrap_or_default(),
        &loc.layer.map(|l| l.to_string()).unwrap_or_default(),
        path,
        loc.pointer.as_deref().unwrap_or_default(),
    ];
    let digest = crate::digest::sha256_of(parts.join("\0").as_bytes());
    digest.trim_start_matches("sha256:").to_string()
}

fn result(layout: &str, f: &Finding, rule_index: usize) -> Value {
    let loc = &f.location;
    let mut logical = Vec::new();
    let mut name = Vec::new();
    if let Some(image) = &loc.image {
        name.push(format!("image {image}"));
    }
    if let Some(layer) = loc.layer {
        name.push(format!("layer {layer}"));
    }
    if let Some(path) = &loc.path {
        name.push(path.clone());
    }
    if !name.is_empty() {
        logical.push(json!({"fullyQualifiedName": name.join(" / "), "kind": "resource"}));
    }
    let mut text = f.message.clone();
    if f.count > 1 {
        let shown: Vec<&str> = f.examples.iter().map(|e| e.path.as_str()).collect();
        text.push_str(&format!(" ({} entries, e.g. {})", f.count, shown.join(", ")));
    } else if let Some(p) = &loc.path {
        text.push_str(&format!(" ({p})"));
    }
    let mut properties = json!({"specClause": f.clause, "count": f.count});
    if let Some(p) = &loc.pointer {
        properties["jsonPointer"] = json!(p);
    }
    if let Some(m) = &loc.manifest {
        properties["manifest"] = json!(m);
    }
    if let Some(file) = &loc.file {
        // The blob, for a reader; not part of the location, which must
        // not change between rebuilds.
        properties["file"] = json!(file);
    }
    json!({
        "ruleId": f.rule.id,
        "ruleIndex": rule_index,
        "level": level(f.severity),
        "message": {"text": text},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": {"uri": layout_uri(layout)},
                "region": {"startLine": 1}
            },
            "logicalLocations": logical,
        }],
        "partialFingerprints": {"singleIdFinding/v1": fingerprint(f)},
        "properties": properties,
    })
}

/// `layout` is the path of the layout directory or archive as given.
pub fn render(report: &Report, layout: &str, docs: Docs) -> String {
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let index = ALL.iter().position(|r| r.id == f.rule.id).expect("every finding's rule is registered");
            result(layout, f, index)
        })
        .collect();
    // What the configuration changed, where SARIF readers look for it.
    let overrides: Vec<Value> = report
        .overrides
        .iter()
        .map(|o| {
            let index = ALL.iter().position(|r| r.id == o.rule).expect("an override names a registered rule");
            let configuration = match o.level {
                Level::Allow => json!({"enabled": false}),
                Level::Warn => json!({"level": "warning"}),
                Level::Deny => json!({"level": "error"}),
            };
            json!({
                "descriptor": {"id": o.rule, "index": index},
                "configuration": configuration,
                "properties": {"source": o.source},
            })
        })
        .collect();
    let mut invocation = json!({"executionSuccessful": true});
    if !overrides.is_empty() {
        invocation["ruleConfigurationOverrides"] = json!(overrides);
    }
    let run = json!({
        "tool": tool(docs),
        "invocations": [invocation],
        "results": results,
        "columnKind": "unicodeCodePoints",
    });
    log(run)
}

/// The SARIF log of a run that could not read the image (exit 2): no
/// results, and the reason as a tool execution notification, so that an
/// upload step finds a valid log that says what went wrong.
pub fn render_failure(message: &str, docs: Docs) -> String {
    let run = json!({
        "tool": tool(docs),
        "invocations": [{
            "executionSuccessful": false,
            "toolExecutionNotifications": [{"level": "error", "message": {"text": message}}],
        }],
        "results": [],
        "columnKind": "unicodeCodePoints",
    });
    log(run)
}

fn tool(docs: Docs) -> Value {
    let rules: Vec<Value> = ALL.iter().map(|r| descriptor(r, docs)).collect();
    let mut driver = json!({
        "name": "single-id",
        "version": env!("CARGO_PKG_VERSION"),
        "semanticVersion": env!("CARGO_PKG_VERSION"),
        "rules": rules,
    });
    if let Some(uri) = docs.link("README.md") {
        driver["informationUri"] = json!(uri);
    }
    json!({"driver": driver})
}

fn log(run: Value) -> String {
    let log = Log { schema: "https://json.schemastore.org/sarif-2.1.0.json", version: "2.1.0", runs: vec![run] };
    let mut out = serde_json::to_string_pretty(&log).expect("a SARIF log always serialises");
    out.push('\n');
    out
}
