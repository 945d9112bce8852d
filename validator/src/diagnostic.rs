//! Diagnostics: the rules a finding can come from, where a finding is, and
//! the finding itself. Rules, renderers and every command share these
//! types; the registry of rules is in [`crate::rules`], the report that
//! collects findings in [`crate::report`].

use serde::Serialize;

/// How bad a finding is. Ordered from least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Information only; never fails a run.
    Note,
    /// Worth fixing, though the image is usable; fails only
    /// `validate --strict`.
    Warning,
    /// The image breaks a requirement; fails `validate`.
    Error,
}

impl Severity {
    /// The lower-case name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One kind of finding.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    /// Stable, kebab-case identifier.
    pub id: &'static str,
    /// How bad its findings are.
    pub severity: Severity,
    /// The identifier of the requirement in `spec/single-id-images.md`.
    pub clause: &'static str,
    /// One sentence: what the rule checks.
    pub summary: &'static str,
    /// The anchor of the section of `docs/producers.md` that shows how to
    /// fix its findings with each build tool, for rules a producer fixes
    /// in the build.
    pub fix: Option<&'static str>,
}

impl Rule {
    /// Link to the clause, relative to the repository root.
    pub fn spec_link(&self) -> String {
        format!("spec/single-id-images.md#{}", self.clause.to_ascii_lowercase())
    }

    /// Link to the producer guide's section on fixing it, relative to the
    /// repository root.
    pub fn fix_link(&self) -> Option<String> {
        self.fix.map(|anchor| format!("docs/producers.md#{anchor}"))
    }
}

/// Where a finding is. Fields are filled from the outside in: the image,
/// then the file in the layout, then the place inside that file.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// The image, by `ref.name` (with platform when reached through a
    /// nested index), or by manifest digest when it has no name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Digest of the image manifest the finding belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// Digest of the blob at fault, when it is not the manifest itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// Path of the file at fault, relative to the layout root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// JSON pointer into that file, when the fault is one value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Position of the layer in the manifest, counting from 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    /// Path inside the layer, escaped (the first example of a group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl Location {
    /// A location that is only a layout-relative file.
    pub fn file(file: impl Into<String>) -> Self {
        Location { file: Some(file.into()), ..Location::default() }
    }

    /// The same location, narrowed to one value of its file.
    pub fn with_pointer(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = Some(pointer.into());
        self
    }
}

/// One problem found, or a group of alike problems in one layer.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// The rule broken; serialised as its id.
    #[serde(rename = "rule", serialize_with = "rule_id")]
    pub rule: &'static Rule,
    /// The rule's severity.
    pub severity: Severity,
    /// The spec requirement the rule enforces.
    pub clause: &'static str,
    /// What is wrong, in one sentence for a person.
    pub message: String,
    /// Where it is; for a group, at its first example.
    pub location: Location,
    /// How many occurrences this finding stands for (layer findings are
    /// grouped per rule and layer; everything else counts 1).
    pub count: u64,
    /// Some of the paths concerned, at most `--max-examples`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Example>,
}

/// One path a grouped finding concerns.
#[derive(Clone, Debug, Serialize)]
pub struct Example {
    /// The path inside the layer, escaped.
    pub path: String,
    /// What is particular to this path, when the message does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn rule_id<S: serde::Serializer>(rule: &&'static Rule, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(rule.id)
}

impl Finding {
    /// One occurrence of `rule` at `location`, with the rule's severity
    /// and clause.
    pub fn new(rule: &'static Rule, location: Location, message: impl Into<String>) -> Self {
        Finding {
            rule,
            severity: rule.severity,
            clause: rule.clause,
            message: message.into(),
            location,
            count: 1,
            examples: Vec::new(),
        }
    }
}

/// Collects findings while the pipeline runs.
#[derive(Debug, Default)]
pub struct Findings(Vec<Finding>);

impl Findings {
    /// Records one occurrence of `rule` at `location`.
    pub fn push(&mut self, rule: &'static Rule, location: Location, message: impl Into<String>) {
        self.0.push(Finding::new(rule, location, message));
    }

    /// Records a finding built elsewhere (a group, with its count and examples).
    pub fn push_finding(&mut self, finding: Finding) {
        self.0.push(finding);
    }

    /// Appends the findings of `other`, in their order.
    pub fn extend(&mut self, other: Findings) {
        self.0.extend(other.0);
    }

    /// Only the findings of error severity: what makes unpack and flatten
    /// refuse an image the walk has read.
    pub fn into_errors(self) -> Vec<Finding> {
        self.0.into_iter().filter(|x| x.severity == Severity::Error).collect()
    }

    /// The findings, in the order they were recorded.
    pub fn into_vec(self) -> Vec<Finding> {
        self.0
    }
}

/// Groups per-entry findings by rule and message so that a layer with
/// 200,000 offending entries yields one finding with a count and a few
/// example paths: memory is bounded by the number of distinct messages.
pub struct Groups {
    max_examples: usize,
    groups: Vec<Finding>,
    index: std::collections::HashMap<(&'static str, String), usize>,
}

impl Groups {
    /// No groups yet; each will keep at most `max_examples` example paths.
    pub fn new(max_examples: usize) -> Self {
        Groups { max_examples, groups: Vec::new(), index: Default::default() }
    }

    /// Counts one occurrence at `path`; `message` must not name the path
    /// (it is the grouping key), `detail` may.
    pub fn add(&mut self, rule: &'static Rule, at: &Location, message: String, path: String, detail: Option<String>) {
        self.add_maybe_named(rule, at, message, Some((path, detail)));
    }

    /// As [`Groups::add`], for an offender whose name was not kept: it is
    /// counted, and given as an example only if it is named.
    pub fn add_maybe_named(
        &mut self,
        rule: &'static Rule,
        at: &Location,
        message: String,
        named: Option<(String, Option<String>)>,
    ) {
        let key = (rule.id, message);
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                let location = Location { path: named.as_ref().map(|(p, _)| p.clone()), ..at.clone() };
                self.groups.push(Finding {
                    rule,
                    severity: rule.severity,
                    clause: rule.clause,
                    message: key.1.clone(),
                    location,
                    count: 0,
                    examples: Vec::new(),
                });
                self.index.insert(key, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let g = &mut self.groups[i];
        g.count += 1;
        if let Some((path, detail)) = named.filter(|_| g.examples.len() < self.max_examples) {
            if g.location.path.is_none() {
                g.location.path = Some(path.clone());
            }
            g.examples.push(Example { path, detail });
        }
    }

    /// One finding per group, in the order each group first occurred.
    pub fn into_findings(self) -> Vec<Finding> {
        self.groups
    }
}
