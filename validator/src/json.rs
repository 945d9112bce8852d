//! JSON documents that every reader reads the same way (issue 10, class 2).
//!
//! The validator reads index, manifest and config documents with serde,
//! which matches member names exactly, rejects a struct member given twice
//! and keeps the last of duplicate map keys. Go's `encoding/json` (skopeo,
//! umoci, podman, containerd, buildah) matches a member name to a struct
//! field without regard to case (the field name and the member name fold to
//! the same string), and decodes every matching member into that field in
//! document order. Other readers (Python, JavaScript, jq) take the last of
//! duplicate names and match exactly. An image can therefore declare one
//! thing to single-id and another to the tools that run it.
//!
//! What the Go side does, checked by hand with skopeo 1.9.3 and umoci 0.4.7
//! (both built with go1.19.8) on OCI layouts written byte by byte
//! (`skopeo inspect --config`, `skopeo inspect`, `umoci raw runtime-config`,
//! and the manifest that `umoci config` and `skopeo copy` write back after
//! decoding it):
//!
//! - config `{"labels": {K: "caution"}}`: both tools read the Label
//!   `caution`; serde (oci-spec) sees no Labels at all.
//! - `{"Labels": {K: "flattened"}, "LABELS": {K: "caution"}}`, and
//!   `{"Labels": ..., "Labelſ": ...}` (U+017F): `caution`, the last one.
//! - image config `{"config": {"Labels": ..flattened}, "CONFIG": {"Labels":
//!   ..caution}}`: `caution`.
//! - manifest `{"annotations": {K: "flattened"}, "ANNOTATIONS": {K:
//!   "caution"}}`, or `"annotationſ"`: both tools write back `caution`.
//! - the maps merge: `{"annotations": {K: "flattened", "a": "1"},
//!   "ANNOTATIONS": {"b": "2"}}` is read as `{K: "flattened", "a": "1",
//!   "b": "2"}`; the same with two exact `"annotations"` members, which
//!   serde rejects as a duplicate field and Python reads as `{"b": "2"}`.
//! - `"ANNOTATIONS": null` after the annotations empties them: the tools
//!   see no annotation where serde sees `flattened`.
//! - `{"config": {"user": "postgres"}}`: skopeo reports `"User":
//!   "postgres"` and umoci's runtime config runs the process as postgres
//!   (uid 999 from the image's `/etc/passwd`); serde sees no User. With
//!   `"User": "root", "user": "postgres"`, the tools take postgres.
//! - `"WorKingDir"` with the Kelvin sign U+212A fills WorkingDir; dotless
//!   `ı` (U+0131) and dotted `İ` (U+0130) fill nothing.
//! - duplicate keys in a map (`{K: "flattened", K: "caution"}`): `caution`.
//!   Keys differing in case are two keys for every reader.
//! - an index descriptor whose ref name sits under `"Annotations"`: skopeo
//!   finds the image by that name, single-id finds no such image; a config
//!   descriptor with `"digest": A, "DIGEST": B` makes skopeo read config B.
//!
//! [`ambiguities`] finds the members that make such readings possible;
//! [`values_at`] and [`values_in_each`] give every value any of these
//! readers could take for an annotation, so that the effective value can be
//! the most cautious of them.
//!
//! Each walks the document once with a streaming serde visitor (so
//! duplicates are seen, which `serde_json::Value` would drop), hashes each
//! member name once by its fold and compares names only within a hash
//! bucket: time is linear in the document (about as long as parsing it
//! into a `serde_json::Value`) and memory a small multiple of it. For
//! [`ambiguities`], nesting deeper than serde_json's recursion limit (128)
//! is an error.

use std::collections::HashMap;
use std::collections::hash_map::{Entry, RandomState};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::OnceLock;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::annotation;

/// One way two readers can read a document differently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ambiguity {
    /// JSON pointer (RFC 6901) of the object holding the members, escaped
    /// for a terminal: a backslash, a control character or another
    /// character Rust does not print is written as by `char::escape_debug`,
    /// and a path segment over [`MAX_SEGMENT_CHARS`] characters is cut,
    /// ending in `…`. Pointers through ordinary member names are unchanged.
    pub pointer: String,
    /// What is ambiguous, naming the members (quoted, with every character
    /// outside printable ASCII written as `\u{…}`, so `annotationſ` reads
    /// `"annotation\u{17f}"`, and cut after [`MAX_NAME_CHARS`] characters).
    pub message: String,
}

/// At most this many ambiguities are listed; one more entry, with pointer
/// `""`, then says how many were left out.
pub const MAX_AMBIGUITIES: usize = 100;

/// Member names in messages are cut after this many characters.
pub const MAX_NAME_CHARS: usize = 80;

/// Pointer segments are cut after this many characters.
pub const MAX_SEGMENT_CHARS: usize = 200;

/// Every member name the image-spec defines for index, manifest,
/// descriptor, platform, image config, `config.config`, `rootfs` and
/// `history` objects, with those Docker image manifest v2 schema 2 adds
/// (manifest list, image config, container config, healthcheck). One flat
/// set: no two of them fold to the same string (a test checks it), so a
/// name that folds to one of them without being it is suspicious anywhere.
pub const SPEC_MEMBER_NAMES: &[&str] = &[
    // index, manifest, descriptor (OCI and Docker)
    "schemaVersion",
    "mediaType",
    "artifactType",
    "manifests",
    "subject",
    "annotations",
    "config",
    "layers",
    "digest",
    "size",
    "urls",
    "data",
    "platform",
    // platform
    "architecture",
    "os",
    "os.version",
    "os.features",
    "variant",
    "features",
    // image config (OCI; Docker's V1Image adds the second line)
    "created",
    "author",
    "rootfs",
    "history",
    "id",
    "parent",
    "comment",
    "container",
    "container_config",
    "docker_version",
    // config.config (OCI ImageConfig, with the deprecated resource
    // members; Docker's container config adds the rest)
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "ArgsEscaped",
    "Memory",
    "MemorySwap",
    "CpuShares",
    "Healthcheck",
    "Hostname",
    "Domainname",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Image",
    "NetworkDisabled",
    "MacAddress",
    "OnBuild",
    "StopTimeout",
    "Shell",
    // Docker healthcheck
    "Test",
    "Interval",
    "Timeout",
    "StartPeriod",
    "StartInterval",
    "Retries",
    // rootfs
    "type",
    "diff_ids",
    // history
    "created_by",
    "empty_layer",
];

/// Members whose value is a map with free-form keys. Go decodes a map with
/// its keys as written, so inside one only exact duplicates are ambiguous.
const MAP_MEMBER_NAMES: &[&str] = &["annotations", "Labels", "ExposedPorts", "Volumes"];

/// `name` folded the way Go's `encoding/json` folds a member name before
/// comparing it with a field name: two names fold to the same string
/// exactly when Go's `bytes.EqualFold` holds for them (Unicode simple case
/// folding), up to the approximation described at [`fold_char`].
pub fn fold(name: &str) -> String {
    if name.is_ascii() {
        return name.to_ascii_uppercase();
    }
    name.chars().map(fold_char).collect()
}

/// One representative of `c`'s simple case-folding orbit: ASCII letters
/// upper-case, `ſ` (U+017F) to `S` and the Kelvin sign (U+212A) to `K`, as
/// Go does; other characters to the upper case of their lower case, each
/// taken only when it is one character (`ᾳ` → `ᾳ`, `ͅ` (U+0345) → `Ι`).
/// Dotted `İ` (U+0130) and dotless `ı` (U+0131) stay themselves, as in Go's
/// `caseOrbit` table.
///
/// The representative is not Go's (the smallest character of the orbit),
/// but the classes are the same: checked against go1.19's
/// `unicode.SimpleFold` for every character, they agree on all of Unicode
/// 13 (go1.19's version) and differ only in joining 95 case pairs that
/// Unicode added after it (Cyrillic Extended-C, Glagolitic, Latin
/// Extended-D, Vithkuqi, Garay, Beria Erfe), as Go does once its Unicode
/// tables have them. `ſ` and `K` are the only characters
/// outside ASCII that go1.19's encoding/json matches to an ASCII field
/// name (also checked for every character).
pub fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    if c == '\u{130}' || c == '\u{131}' {
        return c;
    }
    let lower = single(c.to_lowercase()).unwrap_or(c);
    single(lower.to_uppercase()).unwrap_or(lower)
}

fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
    let c = it.next()?;
    it.next().is_none().then_some(c)
}

/// The hasher of member names, one per process: keyed at random, so that
/// a document cannot be made of names that collide.
fn name_hasher() -> &'static RandomState {
    static STATE: OnceLock<RandomState> = OnceLock::new();
    STATE.get_or_init(RandomState::new)
}

/// A name, hashed by its fold without building the folded string.
struct FoldHash<'a>(&'a str);

impl Hash for FoldHash<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        let mut buf = [0u8; 64];
        let mut n = 0;
        for c in self.0.chars() {
            if n + 4 > buf.len() {
                h.write(&buf[..n]);
                n = 0;
            }
            n += fold_char(c).encode_utf8(&mut buf[n..]).len();
        }
        h.write(&buf[..n]);
    }
}

fn fold_hash(name: &str) -> u64 {
    name_hasher().hash_one(FoldHash(name))
}

/// Whether `a` and `b` fold to the same string.
fn folds_alike(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars().map(fold_char).eq(b.chars().map(fold_char))
}

/// Maps keyed by [`fold_hash`] values, which need no hashing again.
type ByHash<V> = HashMap<u64, V, BuildHasherDefault<Prehashed>>;

#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The spec's spelling of the spec name `name` folds to, if any.
fn spec_name(name: &str, hash: u64) -> Option<&'static str> {
    static NAMES: OnceLock<ByHash<Vec<&'static str>>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let mut names = ByHash::<Vec<&'static str>>::default();
        for n in SPEC_MEMBER_NAMES {
            names.entry(fold_hash(n)).or_default().push(n);
        }
        names
    });
    names.get(&hash)?.iter().find(|n| folds_alike(n, name)).copied()
}

fn is_map_member(name: &str) -> bool {
    MAP_MEMBER_NAMES.iter().any(|n| folds_alike(n, name))
}

/// Every ambiguity in `bytes`, a whole JSON document (index, manifest or
/// image config), in document order:
///
/// 1. an object with two members of the same name (in any object, maps
///    included: readers differ on which they take, and Go merges objects);
/// 2. outside free-form maps, two members whose names fold to the same
///    string ([`fold`]): Go decodes both into one field;
/// 3. outside free-form maps, a member whose name is not one of
///    [`SPEC_MEMBER_NAMES`] but folds to one of them (`Annotations`,
///    `labels`, `user`, `DIGEST`): Go reads it as that member, serde
///    ignores it.
///
/// Free-form maps are the values of `annotations`, `Labels`,
/// `ExposedPorts` and `Volumes` (found by folded name, as Go finds them):
/// their keys are matched exactly by every reader, so there only (1)
/// applies. Each member is reported at most once, by the first of these
/// that applies; the list stops at [`MAX_AMBIGUITIES`].
///
/// An error is serde_json's, for a document that is not JSON or nests
/// deeper than 128.
pub fn ambiguities(bytes: &[u8]) -> Result<Vec<Ambiguity>, serde_json::Error> {
    let mut scan = Scan::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Node { scan: &mut scan, kind: Kind::Struct, at: None }.deserialize(&mut de)?;
    de.end()?;
    if scan.left_out > 0 {
        let n = scan.left_out;
        let message = format!("{n} more ambiguit{} not listed", if n == 1 { "y" } else { "ies" });
        scan.found.push(Ambiguity { pointer: String::new(), message });
    }
    Ok(scan.found)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An object Go decodes into a struct (or ignores): names fold.
    Struct,
    /// An object Go decodes into a map: names are exact.
    Map,
}

#[derive(Default)]
struct Scan {
    found: Vec<Ambiguity>,
    left_out: usize,
}

impl Scan {
    fn report(&mut self, at: Option<&Link>, message: impl FnOnce() -> String) {
        if self.found.len() < MAX_AMBIGUITIES {
            self.found.push(Ambiguity { pointer: pointer(at), message: message() });
        } else {
            self.left_out += 1;
        }
    }
}

/// Where a value is: the path from the root, kept on the stack of the
/// walk (names are borrowed from the objects' tables, never copied).
struct Link<'a> {
    segment: Segment<'a>,
    up: Option<&'a Link<'a>>,
}

#[derive(Clone, Copy)]
enum Segment<'a> {
    Name(&'a str),
    Index(usize),
}

/// The value at `at`, read as `kind` if it is an object.
struct Node<'s, 'p> {
    scan: &'s mut Scan,
    kind: Kind,
    at: Option<&'p Link<'p>>,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// The members of one struct-like object whose names fold alike.
struct Group {
    /// The first spelling met.
    first: String,
    /// The first spelling's hash.
    hash: u64,
    /// The next group whose names have the same hash (all but never).
    next: Option<usize>,
    /// An exact duplicate of the first spelling has been reported.
    reported: bool,
    /// How Go reads the value of any of them if it is an object.
    child: Kind,
    /// Every other spelling met, each with whether an exact duplicate of
    /// it has been reported (rare: made only when a second spelling comes).
    others: Option<HashMap<String, bool>>,
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Node { scan, at, .. } = self;
        let mut i = 0usize;
        loop {
            let link = Link { segment: Segment::Index(i), up: at };
            if seq.next_element_seed(Node { scan: &mut *scan, kind: Kind::Struct, at: Some(&link) })?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        match self.kind {
            Kind::Map => map_members(self.scan, self.at, map),
            Kind::Struct => struct_members(self.scan, self.at, map),
        }
    }
}

/// The members of an object Go decodes into a map: only exact duplicates.
fn map_members<'de, A: MapAccess<'de>>(scan: &mut Scan, at: Option<&Link>, mut map: A) -> Result<(), A::Error> {
    // Every key met, with whether its duplicate has been reported.
    let mut seen: HashMap<String, bool> = HashMap::new();
    while let Some(name) = map.next_key::<String>()? {
        let entry = match seen.entry(name) {
            Entry::Occupied(mut e) => {
                if !*e.get() {
                    e.insert(true);
                    scan.report(at, || {
                        format!(
                            "key {} appears more than once in this map; readers differ on which value they take \
                             (most the last, some the first)",
                            quote(e.key())
                        )
                    });
                }
                e
            }
            Entry::Vacant(e) => e.insert_entry(false),
        };
        let link = Link { segment: Segment::Name(entry.key()), up: at };
        map.next_value_seed(Node { scan: &mut *scan, kind: Kind::Struct, at: Some(&link) })?;
    }
    Ok(())
}

/// The members of an object Go decodes into a struct (or would, if it
/// knew the names): exact duplicates, names that fold alike, and names
/// that fold to a spec name without being one.
fn struct_members<'de, A: MapAccess<'de>>(scan: &mut Scan, at: Option<&Link>, mut map: A) -> Result<(), A::Error> {
    let duplicate = |name: &str| {
        format!(
            "member {} appears more than once; readers differ on which they take (most the last; Go decodes \
             both, merging objects; serde rejects the document)",
            quote(name)
        )
    };
    // Groups in the order met, and the first group of each hash. Names are
    // hashed once, by their fold, and compared only within a hash.
    let mut groups: Vec<Group> = Vec::new();
    let mut heads: ByHash<usize> = ByHash::default();
    while let Some(name) = map.next_key::<String>()? {
        let hash = fold_hash(&name);
        let mut found = heads.get(&hash).copied();
        let mut last = None;
        while let Some(i) = found {
            let Some(g) = groups.get(i) else { break };
            if g.hash == hash && folds_alike(&g.first, &name) {
                break;
            }
            last = Some(i);
            found = g.next;
        }
        let (child, spelling) = match found.and_then(|i| groups.get_mut(i)) {
            None => {
                let child = if is_map_member(&name) { Kind::Map } else { Kind::Struct };
                if let Some(spec) = spec_name(&name, hash)
                    && spec != name
                {
                    scan.report(at, || {
                        format!(
                            "member {} is not an image-spec member name, but Go's encoding/json reads it as {}, \
                             which other readers do not",
                            quote(&name),
                            quote(spec)
                        )
                    });
                }
                let i = groups.len();
                match last.and_then(|l| groups.get_mut(l)) {
                    Some(l) => l.next = Some(i),
                    None => {
                        heads.insert(hash, i);
                    }
                }
                groups.push(Group { first: name, hash, next: None, reported: false, child, others: None });
                let first = groups.last().map_or("", |g| g.first.as_str());
                (child, first)
            }
            Some(group) => {
                if group.first == name {
                    if !group.reported {
                        group.reported = true;
                        scan.report(at, || duplicate(&name));
                    }
                } else {
                    let others = group.others.get_or_insert_with(HashMap::new);
                    match others.get_mut(&name) {
                        Some(reported) => {
                            if !*reported {
                                *reported = true;
                                scan.report(at, || duplicate(&name));
                            }
                        }
                        None => {
                            scan.report(at, || {
                                format!(
                                    "members {} and {} name the same field for Go's encoding/json, which decodes \
                                     both into it in order (the last wins, objects merge)",
                                    quote(&group.first),
                                    quote(&name)
                                )
                            });
                            others.insert(name.clone(), false);
                        }
                    }
                }
                (group.child, name.as_str())
            }
        };
        let link = Link { segment: Segment::Name(spelling), up: at };
        map.next_value_seed(Node { scan: &mut *scan, kind: child, at: Some(&link) })?;
    }
    Ok(())
}

/// `name` quoted for a message: printable ASCII as is (but `"` and `\`
/// escaped), everything else as `\u{…}`, cut after [`MAX_NAME_CHARS`].
fn quote(name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(4 * MAX_NAME_CHARS) + 2);
    out.push('"');
    for (i, c) in name.chars().enumerate() {
        if i == MAX_NAME_CHARS {
            out.push('…');
            break;
        }
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.extend(c.escape_unicode()),
        }
    }
    out.push('"');
    out
}

/// The RFC 6901 pointer of `at`, escaped for a terminal (see
/// [`Ambiguity::pointer`]).
fn pointer(at: Option<&Link>) -> String {
    let mut segments = Vec::new();
    let mut next = at;
    while let Some(link) = next {
        segments.push(link.segment);
        next = link.up;
    }
    let mut out = String::new();
    for segment in segments.iter().rev() {
        out.push('/');
        let name = match segment {
            Segment::Index(i) => {
                out.push_str(&i.to_string());
                continue;
            }
            Segment::Name(name) => name,
        };
        for (i, c) in name.chars().enumerate() {
            if i == MAX_SEGMENT_CHARS {
                out.push('…');
                break;
            }
            match c {
                '~' => out.push_str("~0"),
                '/' => out.push_str("~1"),
                // Quotes are printable; escape_debug would add a backslash.
                '"' | '\'' => out.push(c),
                _ => out.extend(c.escape_debug()),
            }
        }
    }
    out
}

/// Every reading of one annotation: each value some reader may take, and
/// whether some reader may find none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Readings {
    /// Every value found for the key, in document order: each member that
    /// folds to a path step is followed (Go decodes them all), and every
    /// duplicate of the key is taken. A value that is not a string is
    /// given as its JSON text (`null`, `5`, `true`), or `[…]`/`{…}`, which
    /// is no valid annotation value.
    pub values: Vec<String>,
    /// Some reader may find no value: a step or the map is missing, is not
    /// an object (`null` empties a map in Go), or one of several members
    /// that could be the map lacks the key (a reader taking only that one
    /// finds nothing). Always true when `values` is empty.
    pub may_be_absent: bool,
}

impl Readings {
    /// The most cautious of every reading, absence counting as the default
    /// (`allowed`) and an unknown value as `caution`.
    pub fn most_cautious(&self) -> annotation::Value {
        let present = annotation::resolve(self.values.iter().map(String::as_str));
        if self.may_be_absent { present.max(annotation::Value::Allowed) } else { present }
    }
}

/// Every value any major reader could take for annotation `key` in the map
/// reached from the document's root by `path`, whose steps match member
/// names as Go matches them (by [`fold`]) and, in an array, a decimal step
/// selects that element. Examples: `["annotations"]` (manifest, index),
/// `["config", "Labels"]` (image config), `["manifests", "0",
/// "annotations"]` (a descriptor of an index). Keys in the map match
/// exactly, as they do for every reader.
///
/// An error is serde_json's, for a document that is not JSON. What the
/// walk need not read is skipped without serde_json's checks of string
/// escapes and depth, so run it on documents already known well-formed.
pub fn values_at(bytes: &[u8], path: &[&str], key: &str) -> Result<Readings, serde_json::Error> {
    let steps = steps(path);
    let mut out = Out { slots: vec![Readings::default()], shortest: None };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Walk { steps: &steps, key, out: &mut out, slot: Some(0) }.deserialize(&mut de)?;
    de.end()?;
    Ok(out.slots.pop().unwrap_or_default())
}

/// [`values_at`] for every element of the array at `array` at once (one
/// pass, where calling [`values_at`] per element would read the document
/// once per element): the readings of element `i` are at index `i`, `path`
/// leading from the element to the map. Example: `(["manifests"],
/// ["annotations"])` for the descriptors of an index. If several members
/// fold to a step of `array`, element `i` of each array counts for `i`;
/// the result is as long as the longest array, and elements past the
/// shortest may be absent. Readings on the way to the array are not
/// counted: a reader that finds no array has no elements.
pub fn values_in_each(
    bytes: &[u8],
    array: &[&str],
    path: &[&str],
    key: &str,
) -> Result<Vec<Readings>, serde_json::Error> {
    let mut steps = steps(array);
    steps.push(Step::Each);
    steps.extend(self::steps(path));
    let mut out = Out::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Walk { steps: &steps, key, out: &mut out, slot: None }.deserialize(&mut de)?;
    de.end()?;
    let shortest = out.shortest.unwrap_or(0);
    for r in out.slots.iter_mut().skip(shortest) {
        r.may_be_absent = true;
    }
    Ok(out.slots)
}

enum Step {
    /// A member, by folded name, or (if `index` is set) an array element.
    Name { folded: String, index: Option<usize> },
    /// Every element of an array, each its own slot of the result.
    Each,
}

fn steps(path: &[&str]) -> Vec<Step> {
    path.iter()
        .map(|s| Step::Name {
            folded: fold(s),
            index: if s.bytes().all(|b| b.is_ascii_digit()) { s.parse().ok() } else { None },
        })
        .collect()
}

/// What a walk finds.
#[derive(Default)]
struct Out {
    slots: Vec<Readings>,
    /// The length of the shortest array of [`values_in_each`]: readers
    /// that take it see no element past it.
    shortest: Option<usize>,
}

/// The value reached so far; `steps` lead on to the map.
struct Walk<'a> {
    steps: &'a [Step],
    key: &'a str,
    out: &'a mut Out,
    /// Which result the walk feeds; none before the array of
    /// [`values_in_each`].
    slot: Option<usize>,
}

impl<'a> Walk<'a> {
    fn readings(&mut self) -> Option<&mut Readings> {
        let slot = self.slot?;
        let slots = &mut self.out.slots;
        if slots.len() <= slot {
            slots.resize_with(slot + 1, Readings::default);
        }
        slots.get_mut(slot)
    }

    fn absent(&mut self) {
        if let Some(r) = self.readings() {
            r.may_be_absent = true;
        }
    }

    fn value(&mut self, value: String) {
        if let Some(r) = self.readings() {
            r.values.push(value);
        }
    }

    fn next(&mut self, steps: &'a [Step], slot: Option<usize>) -> Walk<'_> {
        Walk { steps, key: self.key, out: &mut *self.out, slot }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(mut self, _: bool) -> Result<(), E> {
        self.absent();
        Ok(())
    }
    fn visit_i64<E>(mut self, _: i64) -> Result<(), E> {
        self.absent();
        Ok(())
    }
    fn visit_u64<E>(mut self, _: u64) -> Result<(), E> {
        self.absent();
        Ok(())
    }
    fn visit_f64<E>(mut self, _: f64) -> Result<(), E> {
        self.absent();
        Ok(())
    }
    fn visit_str<E>(mut self, _: &str) -> Result<(), E> {
        self.absent();
        Ok(())
    }
    fn visit_unit<E>(mut self) -> Result<(), E> {
        self.absent();
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let steps = self.steps;
        let (index, rest) = match steps.split_first() {
            Some((Step::Name { index: Some(n), .. }, rest)) => (Some(*n), rest),
            Some((Step::Each, rest)) => (None, rest),
            // The map, or a member, is an array here.
            _ => {
                self.absent();
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(());
            }
        };
        let each = index.is_none();
        let mut i = 0usize;
        loop {
            let more = if each {
                seq.next_element_seed(self.next(rest, Some(i)))?
            } else if index == Some(i) {
                let slot = self.slot;
                seq.next_element_seed(self.next(rest, slot))?
            } else {
                seq.next_element::<IgnoredAny>()?.map(drop)
            };
            if more.is_none() {
                break;
            }
            i += 1;
        }
        if index.is_some_and(|n| n >= i) {
            self.absent();
        }
        if each {
            self.out.shortest = Some(self.out.shortest.map_or(i, |s| s.min(i)));
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let steps = self.steps;
        let mut matched = false;
        match steps.split_first() {
            // The map itself: keys are exact.
            None => {
                while let Some(is_key) = map.next_key_seed(NameIs::Exactly(self.key))? {
                    if is_key {
                        matched = true;
                        let value = map.next_value_seed(Capture)?;
                        self.value(value);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Some((Step::Name { folded, .. }, rest)) => {
                while let Some(is_step) = map.next_key_seed(NameIs::Folding(folded))? {
                    if is_step {
                        matched = true;
                        let slot = self.slot;
                        map.next_value_seed(self.next(rest, slot))?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            // An object where the array should be.
            Some((Step::Each, _)) => while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {},
        }
        if !matched {
            self.absent();
        }
        Ok(())
    }
}

/// Reads a member name and says whether it is the one looked for, without
/// copying it.
#[derive(Clone, Copy)]
enum NameIs<'a> {
    Exactly(&'a str),
    /// A name that folds to this (already folded) one.
    Folding(&'a str),
}

impl<'de> DeserializeSeed<'de> for NameIs<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, name: &str) -> Result<bool, E> {
        Ok(match self {
            NameIs::Exactly(wanted) => name == wanted,
            NameIs::Folding(folded) => folds_to(name, folded),
        })
    }
}

/// Whether `fold(name) == folded`, without building `fold(name)`.
fn folds_to(name: &str, folded: &str) -> bool {
    if name.is_ascii() {
        return name.eq_ignore_ascii_case(folded);
    }
    let mut wanted = folded.chars();
    name.chars().all(|c| wanted.next() == Some(fold_char(c))) && wanted.next().is_none()
}

/// An annotation's value: the string, or the JSON text of anything else.
struct Capture;

impl<'de> DeserializeSeed<'de> for Capture {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Capture {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_unit<E>(self) -> Result<String, E> {
        Ok("null".into())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok("[…]".into())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<String, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok("{…}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const K: &str = "io.github.supercontainers.id-flattening";

    fn found(doc: &str) -> Vec<(String, String)> {
        ambiguities(doc.as_bytes()).unwrap().into_iter().map(|a| (a.pointer, a.message)).collect()
    }

    fn pointers(doc: &str) -> Vec<String> {
        found(doc).into_iter().map(|(p, _)| p).collect()
    }

    fn values(doc: &str, path: &[&str]) -> (Vec<String>, bool) {
        let r = values_at(doc.as_bytes(), path, K).unwrap();
        (r.values, r.may_be_absent)
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ascii_folds_without_regard_to_case() {
        assert_eq!(fold("annotations"), "ANNOTATIONS");
        assert_eq!(fold("Annotations"), fold("ANNOTATIONS"));
        assert_eq!(fold("diff_ids"), "DIFF_IDS");
        assert_eq!(fold("os.version"), fold("OS.Version"));
        assert_ne!(fold("diff_ids"), fold("diff-ids"));
        assert_ne!(fold("diffids"), fold("diff_ids"));
    }

    #[test]
    fn the_characters_go_folds_into_ascii() {
        // Long s and the Kelvin sign are the only non-ASCII characters whose
        // orbit holds an ASCII letter.
        assert_eq!(fold("annotation\u{17f}"), fold("annotations"));
        assert_eq!(fold("\u{17f}"), "S");
        assert_eq!(fold("Wor\u{212a}ingDir"), fold("WorkingDir"));
        assert_eq!(fold_char('\u{212a}'), 'K');
        assert_eq!(fold_char('k'), 'K');
        // Go pins dotted and dotless i to themselves (observed: neither
        // "WorkİngDir" nor "WorkıngDir" fills WorkingDir for umoci or skopeo).
        assert_ne!(fold("Work\u{130}ngDir"), fold("WorkingDir"));
        assert_ne!(fold("Work\u{131}ngDir"), fold("WorkingDir"));
        for c in ['\u{80}'..='\u{10ffff}'].into_iter().flatten() {
            if fold_char(c).is_ascii() {
                assert!(c == '\u{17f}' || c == '\u{212a}', "{c:?} folds into ASCII");
            }
        }
    }

    #[test]
    fn folds_to_agrees_with_fold() {
        let names =
            ["annotations", "ANNOTATIONS", "annotation\u{17f}", "annotation", "Wor\u{212a}ingDir", "workingdir"];
        let names = names.iter().chain(&["WorkingDir", "σς", "ΣΣ", "\u{131}", "I", "", "ſ", "s"]);
        for a in names.clone() {
            for b in names.clone() {
                assert_eq!(folds_to(a, &fold(b)), fold(a) == fold(b), "{a} {b}");
            }
        }
    }

    #[test]
    fn other_orbits_share_one_representative() {
        let same = |a: &str, b: &str| assert_eq!(fold(a), fold(b), "{a} ~ {b}");
        same("σ", "Σ");
        same("ς", "Σ");
        same("µ", "μ"); // micro sign, Greek mu
        same("Μ", "μ");
        same("\u{345}", "ι"); // ypogegrammeni, iota
        same("\u{1fbe}", "Ι");
        same("ϑ", "θ");
        same("ϴ", "Θ");
        same("ǅ", "Ǆ");
        same("ǆ", "ǅ");
        same("ẞ", "ß");
        same("Å", "å"); // Angstrom sign
        same("ᾈ", "ᾀ");
        same("ꭰ", "Ꭰ"); // Cherokee
        assert_ne!(fold("ß"), fold("ss"));
        assert_ne!(fold("\u{130}"), fold("i"));
    }

    #[test]
    fn spec_names_fold_apart() {
        let mut by_fold = HashMap::new();
        for n in SPEC_MEMBER_NAMES {
            if let Some(other) = by_fold.insert(fold(n), n) {
                panic!("{n} and {other} fold alike");
            }
        }
        for m in MAP_MEMBER_NAMES {
            assert!(SPEC_MEMBER_NAMES.contains(m));
        }
    }

    #[test]
    fn documents_as_written_by_tools_are_clean() {
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:aa","size":3}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:bb","size":4,
              "annotations":{{"a":"1","A":"2"}}}}],
            "annotations":{{"{K}":"flattened","org.opencontainers.image.created":"now"}}}}"#
        );
        assert_eq!(found(&manifest), []);
        let config = format!(
            r#"{{"created":"2024-01-01T00:00:00Z","architecture":"amd64","os":"linux","variant":"v8",
            "config":{{"User":"1000","Env":["PATH=/bin"],"Cmd":["sh"],"WorkingDir":"/",
              "ExposedPorts":{{"80/tcp":{{}},"80/TCP":{{}}}},"Volumes":{{"/data":{{}},"/DATA":{{}}}},
              "Labels":{{"{K}":"flattened","{}":"x"}}}},
            "rootfs":{{"type":"layers","diff_ids":["sha256:cc"]}},
            "history":[{{"created":"2024-01-01T00:00:00Z","created_by":"sh","empty_layer":true}}]}}"#,
            K.to_uppercase()
        );
        assert_eq!(found(&config), []);
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"m","digest":"sha256:dd","size":1,
            "platform":{{"architecture":"arm64","os":"linux","os.version":"1","os.features":["a"]}},
            "annotations":{{"org.opencontainers.image.ref.name":"t","{K}":"caution"}}}}]}}"#
        );
        assert_eq!(found(&index), []);
        // Docker schema 2 names.
        let docker = r#"{"container_config":{"Hostname":"h","Tty":false,"OnBuild":null,"Shell":["sh"],
            "Healthcheck":{"Test":["NONE"],"Interval":1,"StartPeriod":2}},"docker_version":"20","id":"x"}"#;
        assert_eq!(found(docker), []);
    }

    #[test]
    fn case_variants_of_a_struct_member() {
        let doc = format!(r#"{{"annotations":{{"{K}":"flattened"}},"ANNOTATIONS":{{"{K}":"caution"}}}}"#);
        assert_eq!(
            found(&doc),
            [(
                String::new(),
                "members \"annotations\" and \"ANNOTATIONS\" name the same field for Go's encoding/json, which \
                 decodes both into it in order (the last wins, objects merge)"
                    .to_string()
            )]
        );
        let doc = format!(r#"{{"config":{{"Labels":{{"{K}":"flattened"}},"LABELS":{{"{K}":"caution"}}}}}}"#);
        assert_eq!(pointers(&doc), ["/config"]);
        let doc = r#"{"config":{"digest":"sha256:a","DIGEST":"sha256:b","size":1}}"#;
        assert_eq!(pointers(doc), ["/config"]);
        let doc = r#"{"layers":[{},{"digest":"a","Digest":"b"}]}"#;
        assert_eq!(pointers(doc), ["/layers/1"]);
        // Even names no reader defines: Go would read both into one field
        // if it had one.
        let doc = r#"{"x-extension":1,"X-Extension":2}"#;
        assert_eq!(pointers(doc), [""]);
    }

    #[test]
    fn unicode_case_variants() {
        let doc = format!(r#"{{"annotations":{{"{K}":"flattened"}},"annotation\u017f":{{"{K}":"caution"}}}}"#);
        let f = found(&doc);
        assert_eq!(f.len(), 1);
        assert!(f[0].1.contains(r#"and "annotation\u{17f}" name the same field"#), "{}", f[0].1);
        let doc = "{\"config\":{\"WorkingDir\":\"/\",\"Wor\u{212a}ingDir\":\"/k\"}}";
        assert_eq!(pointers(doc), ["/config"]);
        // Dotless i does not fold to i for Go.
        let doc = "{\"config\":{\"WorkingDir\":\"/\",\"Work\u{131}ngDir\":\"/k\"}}";
        assert_eq!(found(doc), []);
    }

    #[test]
    fn a_lone_variant_of_a_spec_name() {
        let doc = format!(r#"{{"config":{{"labels":{{"{K}":"caution"}}}}}}"#);
        assert_eq!(
            found(&doc),
            [(
                "/config".to_string(),
                "member \"labels\" is not an image-spec member name, but Go's encoding/json reads it as \
                 \"Labels\", which other readers do not"
                    .to_string()
            )]
        );
        assert_eq!(pointers(r#"{"config":{"user":"postgres"}}"#), ["/config"]);
        assert_eq!(pointers(r#"{"Annotations":{}}"#), [""]);
        assert_eq!(pointers(r#"{"MediaType":"x"}"#), [""]);
        assert_eq!(pointers(r#"{"manifests":[{"Digest":"x"}]}"#), ["/manifests/0"]);
        assert_eq!(pointers("{\"config\":{\"Label\u{17f}\":{}}}"), ["/config"]);
        // A variant found first, the spec's spelling after it: both named.
        let f = found(r#"{"LABELS":{},"Labels":{}}"#);
        assert_eq!(f.len(), 2);
        assert!(f[0].1.starts_with("member \"LABELS\" is not"));
        assert!(f[1].1.starts_with("members \"LABELS\" and \"Labels\""));
    }

    #[test]
    fn exact_duplicates_anywhere() {
        let doc = format!(r#"{{"annotations":{{"{K}":"caution","{K}":"flattened"}}}}"#);
        let f = found(&doc);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].0, "/annotations");
        assert!(f[0].1.starts_with(&format!("key \"{K}\" appears more than once in this map")));
        let doc = r#"{"annotations":{},"annotations":{}}"#;
        let f = found(doc);
        assert_eq!(f.len(), 1);
        assert!(f[0].1.starts_with("member \"annotations\" appears more than once;"));
        // Reported once per name however often it repeats.
        assert_eq!(pointers(r#"{"a":1,"a":2,"a":3,"A":4}"#), ["", ""]);
        // Pointers name the spelling the finding is under.
        assert_eq!(pointers(r#"{"Labels":{},"LABELS":{"a":1,"a":2},"LABELS":{"b":1,"B":2}}"#), ["", "/LABELS", ""]);
        // Maps with free-form keys are found by folded name, as Go finds them.
        let doc = r#"{"config":{"LABELS":{"a":"1","A":"2","a":"3"}}}"#;
        assert_eq!(pointers(doc), ["/config", "/config/LABELS"]);
    }

    #[test]
    fn case_variant_keys_in_a_map_are_different_keys() {
        for map in ["annotations", "Labels", "ExposedPorts", "Volumes"] {
            let doc = format!(
                r#"{{"{map}":{{"{K}":"flattened","{}":"caution","Labels":"","labels":""}}}}"#,
                K.to_uppercase()
            );
            assert_eq!(found(&doc), [], "{map}");
        }
        // But an object inside a map value is no map.
        assert_eq!(pointers(r#"{"annotations":{"k":{"a":1,"A":2}}}"#), ["/annotations/k"]);
    }

    #[test]
    fn pointers_and_messages_are_escaped() {
        let doc = r#"{"a/b~c":{"x":1,"X":2}}"#;
        assert_eq!(pointers(doc), ["/a~1b~0c"]);
        let doc = r#"{"\u001b[31m\u202e":{"x\u0007":1,"X\u0007":2}}"#;
        let f = found(doc);
        assert_eq!(f[0].0, r"/\u{1b}[31m\u{202e}");
        assert!(f[0].1.contains(r#""x\u{7}" and "X\u{7}""#), "{}", f[0].1);
        assert!(!f[0].1.chars().any(char::is_control));
        let doc = r#"{"q\"\\":{"y":1,"Y":2},"Y\"":1,"y\"":2}"#;
        let f = found(doc);
        assert_eq!(f[0].0, r#"/q"\\"#);
        assert!(f[1].1.contains(r#"members "Y\"" and "y\"""#), "{}", f[1].1);
        let long = "n".repeat(1000);
        let doc = format!(r#"{{"{long}":{{"{long}":1,"{}":2}}}}"#, long.to_uppercase());
        let f = found(&doc);
        assert_eq!(f[0].0.chars().count(), 1 + MAX_SEGMENT_CHARS + 1);
        assert_eq!(f[0].1.matches('…').count(), 2, "{}", f[0].1);
        assert!(f[0].1.len() < 2 * MAX_NAME_CHARS + 200, "{}", f[0].1);
    }

    #[test]
    fn the_list_stops_at_its_limit() {
        let members: Vec<String> = (0..MAX_AMBIGUITIES + 7).map(|i| format!(r#""m{i}":1,"M{i}":2"#)).collect();
        let doc = format!("{{{}}}", members.join(","));
        let f = found(&doc);
        assert_eq!(f.len(), MAX_AMBIGUITIES + 1);
        assert_eq!(f[MAX_AMBIGUITIES], (String::new(), "7 more ambiguities not listed".to_string()));
    }

    #[test]
    fn malformed_and_deep_documents_are_errors() {
        for bad in ["", "{", r#"{"a":1,}"#, "[1] 2", r#"{"annotations":{"\ud800":1}}"#] {
            assert!(ambiguities(bad.as_bytes()).is_err(), "{bad:?}");
            assert!(values_at(bad.as_bytes(), &["annotations"], K).is_err(), "{bad:?}");
        }
        // values_at skips what it need not read (serde_json's IgnoredAny,
        // iterative) without checking surrogates or depth.
        for bad in [r#"{"a":"\ud800"}"#, r#"{"a":"\udc00"}"#, "{\"a\":\"\u{0}\"}"] {
            assert!(ambiguities(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(ambiguities(deep.as_bytes()).is_err());
        assert_eq!(values_at(deep.as_bytes(), &[], K).unwrap(), Readings { values: vec![], may_be_absent: true });
        assert_eq!(values_in_each(deep.as_bytes(), &[], &[], K).unwrap().len(), 1);
        let deep = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
        assert!(ambiguities(deep.as_bytes()).is_err());
        assert!(values_at(deep.as_bytes(), &["a", "a"], K).unwrap().may_be_absent);
        assert!(values_at(deep.as_bytes(), &["a"; 200], K).is_err());
        // Not objects at all: nothing ambiguous, nothing declared.
        for scalar in ["1", "null", "\"x\"", "[]", "{}"] {
            assert_eq!(found(scalar), []);
            assert_eq!(values(scalar, &["annotations"]), (vec![], true));
        }
    }

    #[test]
    fn values_follow_every_reading() {
        let at = ["annotations"];
        let doc = format!(r#"{{"annotations":{{"{K}":"flattened"}}}}"#);
        assert_eq!(values(&doc, &at), (strings(&["flattened"]), false));
        let doc = format!(r#"{{"annotations":{{"{K}":"flattened"}},"ANNOTATIONS":{{"{K}":"caution"}}}}"#);
        assert_eq!(values(&doc, &at), (strings(&["flattened", "caution"]), false));
        let doc = format!(r#"{{"annotation\u017f":{{"{K}":"caution"}}}}"#);
        assert_eq!(values(&doc, &at), (strings(&["caution"]), false));
        let doc = format!(r#"{{"annotations":{{"{K}":"caution","{K}":"flattened","{}":"x"}}}}"#, K.to_uppercase());
        assert_eq!(values(&doc, &at), (strings(&["caution", "flattened"]), false));
        let doc =
            format!(r#"{{"config":{{"Labels":{{"{K}":"flattened"}}}},"CONFIG":{{"labels":{{"{K}":"caution"}}}}}}"#);
        assert_eq!(values(&doc, &["config", "Labels"]), (strings(&["flattened", "caution"]), false));
        let doc = format!(r#"{{"config":{{"labels":{{"{K}":"caution"}}}}}}"#);
        assert_eq!(values(&doc, &["config", "Labels"]), (strings(&["caution"]), false));
    }

    #[test]
    fn values_that_some_reader_may_not_see() {
        let at = ["annotations"];
        assert_eq!(values("{}", &at), (vec![], true));
        assert_eq!(values(r#"{"annotations":{}}"#, &at), (vec![], true));
        assert_eq!(values(r#"{"annotations":null}"#, &at), (vec![], true));
        // Go empties the map on null; Python takes the second, empty one.
        let doc = format!(r#"{{"annotations":{{"{K}":"flattened"}},"ANNOTATIONS":null}}"#);
        assert_eq!(values(&doc, &at), (strings(&["flattened"]), true));
        let doc = format!(r#"{{"annotations":{{"{K}":"flattened"}},"annotations":{{"b":"2"}}}}"#);
        assert_eq!(values(&doc, &at), (strings(&["flattened"]), true));
        let r = values_at(doc.as_bytes(), &at, K).unwrap();
        assert_eq!(r.most_cautious(), annotation::Value::Allowed);
        let doc = format!(r#"{{"config":{{"Labels":{{"{K}":"flattened"}}}},"CONFIG":5}}"#);
        assert_eq!(values(&doc, &["config", "Labels"]), (strings(&["flattened"]), true));
        let doc = format!(r#"{{"config":[{{"Labels":{{"{K}":"flattened"}}}}]}}"#);
        assert_eq!(values(&doc, &["config", "Labels"]), (vec![], true));
    }

    #[test]
    fn values_that_are_not_strings() {
        let doc = format!(r#"{{"annotations":{{"{K}":null,"{K}":5,"{K}":1.5,"{K}":true,"{K}":[1],"{K}":{{"a":1}}}}}}"#);
        assert_eq!(values(&doc, &["annotations"]), (strings(&["null", "5", "1.5", "true", "[…]", "{…}"]), false));
        let r = values_at(doc.as_bytes(), &["annotations"], K).unwrap();
        assert_eq!(r.most_cautious(), annotation::Value::Caution);
    }

    #[test]
    fn the_most_cautious_reading() {
        let r = |values: &[&str], may_be_absent| Readings { values: strings(values), may_be_absent };
        assert_eq!(r(&[], true).most_cautious(), annotation::Value::Allowed);
        assert_eq!(r(&["flattened"], false).most_cautious(), annotation::Value::Flattened);
        assert_eq!(r(&["flattened"], true).most_cautious(), annotation::Value::Allowed);
        assert_eq!(r(&["flattened", "caution"], false).most_cautious(), annotation::Value::Caution);
        assert_eq!(r(&["caution"], true).most_cautious(), annotation::Value::Caution);
    }

    #[test]
    fn values_through_arrays() {
        let index = format!(
            r#"{{"manifests":[{{"annotations":{{"{K}":"flattened"}}}},{{"digest":"x"}},
            {{"annotations":{{"{K}":"allowed"}},"Annotations":{{"{K}":"caution"}}}}],
            "MANIFESTS":[{{}},{{"annotations":{{"{K}":"allowed"}}}}]}}"#
        );
        let each = values_in_each(index.as_bytes(), &["manifests"], &["annotations"], K).unwrap();
        let each: Vec<_> = each.into_iter().map(|r| (r.values, r.may_be_absent)).collect();
        assert_eq!(
            each,
            [
                (strings(&["flattened"]), true), // absent from MANIFESTS[0]
                (strings(&["allowed"]), true),
                (strings(&["allowed", "caution"]), true), // MANIFESTS has no third element
            ]
        );
        assert_eq!(values(&index, &["manifests", "2", "annotations"]), (strings(&["allowed", "caution"]), true));
        assert_eq!(values(&index, &["manifests", "1", "annotations"]), (strings(&["allowed"]), true));
        assert_eq!(values(&index, &["manifests", "9", "annotations"]), (vec![], true));
        assert_eq!(values_in_each(b"{}", &["manifests"], &["annotations"], K).unwrap(), []);
        assert_eq!(values_in_each(br#"{"manifests":{}}"#, &["manifests"], &["annotations"], K).unwrap(), []);
        // An array as the document itself.
        let each = values_in_each(format!(r#"[{{"{K}":"caution"}},5]"#).as_bytes(), &[], &[], K).unwrap();
        assert_eq!(
            each,
            [
                Readings { values: strings(&["caution"]), may_be_absent: false },
                Readings { values: vec![], may_be_absent: true }
            ]
        );
    }

    /// A document of about 4 MiB with 100k members in one object, then
    /// 100k duplicates of one annotation key, then 100k case variants in
    /// one struct: a quadratic comparison would take minutes here.
    fn big_documents() -> Vec<String> {
        let n = 100_000;
        let members: Vec<String> = (0..n).map(|i| format!(r#""member-{i:08}-{}":"{i}""#, "x".repeat(12))).collect();
        let wide = format!(r#"{{"annotations":{{"{K}":"flattened"}},"config":{{{}}}}}"#, members.join(","));
        let dups: Vec<String> = (0..n).map(|i| format!(r#""{K}":"v{i:010}""#)).collect();
        let dups = format!(r#"{{"annotations":{{{}}}}}"#, dups.join(","));
        let variants: Vec<String> = (0..n)
            .map(|i| {
                let name: String = format!("{i:017b}")
                    .chars()
                    .zip("annotationsabcdef".chars())
                    .map(|(bit, c)| if bit == '1' { c.to_ascii_uppercase() } else { c })
                    .collect();
                format!(r#""{name}":{{"{K}":"caution"}}"#)
            })
            .collect();
        let variants = format!("{{{}}}", variants.join(","));
        vec![wide, dups, variants]
    }

    #[test]
    fn time_is_linear() {
        let budget = if cfg!(debug_assertions) { Duration::from_secs(20) } else { Duration::from_secs(1) };
        for doc in big_documents() {
            assert!(doc.len() > 3 << 20, "{}", doc.len());
            let t = Instant::now();
            let found = ambiguities(doc.as_bytes()).unwrap().len();
            let (scan, t) = (t.elapsed(), Instant::now());
            let values = values_at(doc.as_bytes(), &["annotations"], K).unwrap().values.len();
            let (walk, t) = (t.elapsed(), Instant::now());
            let elements = values_in_each(doc.as_bytes(), &["config"], &[], K).unwrap().len();
            let each = t.elapsed();
            eprintln!(
                "{} bytes: ambiguities {scan:?} ({found}), values_at {walk:?} ({values}), \
                 values_in_each {each:?} ({elements})",
                doc.len()
            );
            assert!(scan + walk + each < budget, "{scan:?} {walk:?} {each:?}");
        }
    }
}
