//! The JSON documents of the output: canonical bytes, and the edits that
//! make a config, manifest or index describe a `flattened` image (the
//! declaration, retargeted descriptors, the history entry).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::errors::refusal;
use super::report::Changes;
use crate::annotation::{KEY, KEYS, RESERVED_KEY};
use crate::diagnostic::Location;
use crate::error::Result;
use crate::rules::LIMIT_EXCEEDED;

// Every output index, manifest and config is OCI; Docker lists and
// manifests are read as their OCI counterparts.
pub(super) use crate::spec::media_type::{DOCKER_LIST, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};

/// `created_by` of the history entry flatten appends.
pub const HISTORY_CREATED_BY: &str = "single-id flatten";

/// JSON with object keys sorted and no white space: the same document
/// always gives the same bytes, whatever order maps were built in.
pub(super) fn canonical_json(v: &Value) -> Vec<u8> {
    fn write(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(map) => {
                let sorted: BTreeMap<&String, &Value> = map.iter().collect();
                out.push(b'{');
                for (i, (k, v)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&serde_json::to_vec(k).expect("a string serialises"));
                    out.push(b':');
                    write(v, out);
                }
                out.push(b'}');
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(item, out);
                }
                out.push(b']');
            }
            scalar => out.extend_from_slice(&serde_json::to_vec(scalar).expect("a scalar serialises")),
        }
    }
    let mut out = Vec::new();
    write(v, &mut out);
    out
}

/// `old` pointing at a new blob: other members (annotations, platform)
/// kept; `urls` and embedded `data` removed, since they described the old.
pub(super) fn retarget(old: &Value, media_type: &str, digest: &str, size: u64) -> Value {
    let mut d = match old {
        Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    d.remove("urls");
    d.remove("data");
    d.insert("mediaType".into(), json!(media_type));
    d.insert("digest".into(), json!(digest));
    d.insert("size".into(), json!(size));
    Value::Object(d)
}

/// Sets `doc[member][KEY]` to `flattened`, creating the map if needed, and
/// drops the reserved key (ANNOTATION-RESERVED-KEY).
pub(super) fn declare(doc: &mut Value, member: &str) {
    if let Some(obj) = doc.as_object_mut() {
        let map = obj.entry(member).or_insert_with(|| json!({}));
        if !map.is_object() {
            *map = json!({});
        }
        if let Some(m) = map.as_object_mut() {
            m.remove(RESERVED_KEY);
            m.insert(KEY.into(), json!("flattened"));
        }
    }
}

/// Removes both id-flattening keys from `doc.annotations`, where they mean
/// nothing (ANNOTATION-PLACES): config and layer descriptors, an index's
/// own annotations.
pub(super) fn undeclare(doc: &mut Value) {
    if let Some(m) = doc.get_mut("annotations").and_then(Value::as_object_mut) {
        for key in KEYS {
            m.remove(key);
        }
    }
}

/// What flatten adds (a history entry, a Label, an annotation) can take a
/// document within the JSON limit past it; every reader that applies the
/// limit would then refuse the output, so flatten refuses, naming the limit
/// (LIMIT-EXCEEDED, at the input document `at`).
pub(super) fn within_limit(bytes: &[u8], what: &str, limit: u64, at: Location) -> Result<()> {
    if bytes.len() as u64 > limit {
        let message = format!(
            "the flattened {what} would be {} bytes, more than the {limit}-byte limit for JSON documents that validate and unpack apply (--max-json-bytes raises it, for flatten and for every later reader)",
            bytes.len()
        );
        return Err(refusal(&LIMIT_EXCEEDED, at, message.clone(), message));
    }
    Ok(())
}

/// The annotations that name an image's base.
const BASE_KEYS: [&str; 2] = ["org.opencontainers.image.base.digest", "org.opencontainers.image.base.name"];

/// Removes the base annotations from `map`; returns the keys removed.
pub(super) fn drop_base(map: Option<&mut Value>) -> Vec<String> {
    let Some(m) = map.and_then(Value::as_object_mut) else { return Vec::new() };
    BASE_KEYS.iter().filter(|k| m.remove(**k).is_some()).map(|k| k.to_string()).collect()
}

/// `secs` since the epoch as an RFC 3339 UTC timestamp.
pub(super) fn rfc3339(secs: u64) -> String {
    // Days to a civil date (proleptic Gregorian), after H. Hinnant's
    // public-domain algorithm.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The `comment` of the history entry: what flattening changed, in words.
pub(super) fn history_comment(c: &Changes, user: Option<&str>) -> String {
    // The same count the report gives: entries whose owner changed.
    let mut parts =
        vec![format!("every entry owned by 0:0 root/root ({} of {} changed)", c.owners_replaced, c.written)];
    for (n, what) in [
        (c.setid_cleared.count, "set-ID bits cleared"),
        (c.devices_dropped.count, "devices dropped"),
        (c.hardlinks_dropped.count, "hardlinks to dropped entries dropped"),
        (c.paths_dropped.count, "entries dropped (outside the root, unknown type or invalid whiteout)"),
        (
            c.capabilities_removed.count + c.owner_xattrs_removed.count + c.acls_removed.count,
            "ID-bearing xattrs or ACLs removed",
        ),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    if let Some(u) = user {
        parts.push(format!("config.User {u:?} reset"));
    }
    format!("flattened user and group IDs ({KEY}=flattened): {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v: Value = serde_json::from_str(r#"{"b":1,"a":{"d":[1,"x"],"c":null}}"#).unwrap();
        assert_eq!(canonical_json(&v), br#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#);
    }
}
