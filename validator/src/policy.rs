//! Whether a single-ID consumer may flatten an image (spec "Policy by
//! value"), for every command that flattens: `unpack` applies the layers
//! as one user, `flatten` writes an image that tells every later consumer
//! to do so without asking, so both need the same consent.

use crate::annotation::{Declarations, Value};
use crate::error::Error;

/// What flattening means to the command asking, for the messages.
#[derive(Clone, Copy, Debug)]
pub struct Asking<'a> {
    /// What flattening the image does here ("unpacking it as a single user
    /// gives every file to you").
    pub doing: &'a str,
    /// What a refusal leaves and how to consent ("Nothing was unpacked;
    /// run again with --confirm-flatten to unpack it anyway").
    pub refused: &'a str,
}

/// POLICY-FLATTENED, POLICY-ALLOWED, POLICY-CAUTION, POLICY-UNKNOWN:
/// `Ok(None)` to go ahead silently, `Ok(Some(notice))` to go ahead with
/// consent given in advance (`confirm`), still showing the notice, and
/// [`Error::Refused`] without consent.
pub fn decide(image: &str, d: &Declarations, confirm: bool, asking: Asking<'_>) -> Result<Option<String>, Error> {
    let doing = asking.doing;
    if d.effective != Value::Caution {
        return Ok(None);
    }
    // Each (key, value) once, with the places that say it.
    let mut found: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for x in d.declared.iter().filter(|x| !x.value.is_empty()) {
        match found.iter_mut().find(|(k, v, _)| *k == x.key && *v == x.value) {
            Some((_, _, places)) if !places.contains(&x.place) => places.push(x.place),
            Some(_) => {}
            None => found.push((x.key, &x.value, vec![x.place])),
        }
    }
    let found: Vec<String> =
        found.iter().map(|(k, v, places)| format!("{k}={v:?} (in the {})", places.join(", "))).collect();
    let mut msg = format!(
        "image {image} declares {}: its user and group IDs carry meaning, and {doing}, which may break it",
        found.join(", ")
    );
    if d.declared.iter().any(|x| !x.value.is_empty() && Value::parse(&x.value).is_none()) {
        msg.push_str(" (a value this tool does not know counts as \"caution\")");
    }
    if found.is_empty() {
        // Only another JSON reader's view says caution (PRODUCER-UNAMBIGUOUS).
        msg = format!("image {image} is caution for some JSON readers: {doing}, which may break it");
    }
    if confirm { Ok(Some(msg)) } else { Err(Error::Refused { message: format!("{msg}. {}", asking.refused) }) }
}
