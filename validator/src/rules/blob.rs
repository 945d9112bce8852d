//! Blob presence and integrity (OCI-BLOB-PRESENT, OCI-BLOB-INTEGRITY).

use std::io::{self, Read};

use oci_spec::image::Descriptor;

use super::{
    BLOB_DIGEST, BLOB_FOREIGN, BLOB_MISSING, BLOB_NOT_FILE, BLOB_SIZE, BLOB_UNREADABLE, DESCRIPTOR_DATA,
    DIGEST_UNSUPPORTED, DOCUMENT_INVALID,
};
use crate::diagnostic::{Findings, Location};
use crate::digest::{Hasher, HashingReader};
use crate::layout::{Layout, OpenError, ReadError, blob_path, read_bounded};

/// `loc`, pointed at the blob `desc` references.
fn at(desc: &Descriptor, loc: &Location) -> Location {
    Location {
        blob: Some(desc.digest().to_string()),
        file: Some(blob_path(desc.digest())),
        pointer: None,
        ..loc.clone()
    }
}

/// An opened blob, hashing as it is read (unless its digest algorithm is
/// unknown, which has been reported already).
pub struct OpenBlob {
    /// The blob's bytes, hashed with the descriptor's algorithm as they
    /// are read.
    pub reader: HashingReader<Box<dyn Read + Send>>,
    /// The blob's size as stored in the layout.
    pub len: u64,
}

/// Opens the blob `desc` points at, reporting why when it cannot.
pub fn open(layout: &Layout, desc: &Descriptor, loc: &Location, f: &mut Findings) -> Option<OpenBlob> {
    let path = blob_path(desc.digest());
    let loc = at(desc, loc);
    let member = match layout.open(&path) {
        Ok(m) => m,
        Err(OpenError::Missing) if desc.urls().as_ref().is_some_and(|u| !u.is_empty()) => {
            f.push(
                &BLOB_FOREIGN,
                loc,
                format!("blob {} is not in the layout; its descriptor lists urls to fetch it from", desc.digest()),
            );
            return None;
        }
        Err(OpenError::Missing) => {
            f.push(&BLOB_MISSING, loc, format!("blob {} is referenced but not present", desc.digest()));
            return None;
        }
        Err(e @ OpenError::NotFile(_)) => {
            f.push(&BLOB_NOT_FILE, loc, format!("{path} {e}"));
            return None;
        }
        Err(OpenError::Io(e)) => {
            f.push(&BLOB_UNREADABLE, loc, format!("cannot open {path}: {e}"));
            return None;
        }
    };
    let hasher = Hasher::new(desc.digest().algorithm());
    if hasher.is_none() {
        f.push(
            &DIGEST_UNSUPPORTED,
            loc,
            format!(
                "digest algorithm `{}` is not one this tool computes; blob not verified",
                desc.digest().algorithm()
            ),
        );
    }
    Some(OpenBlob { reader: HashingReader::new(member.reader, hasher), len: member.len })
}

impl OpenBlob {
    /// After the blob has been read to its end: do size and digest match?
    pub fn check(self, desc: &Descriptor, loc: &Location, f: &mut Findings) -> bool {
        let loc = at(desc, loc);
        let (found, count) = self.reader.finish();
        if count != desc.size() {
            f.push(&BLOB_SIZE, loc, format!("descriptor says {} bytes, blob has {count}", desc.size()));
            return false;
        }
        match found {
            Some(found) if found != desc.digest().as_ref() => {
                f.push(&BLOB_DIGEST, loc, format!("content hashes to {found}, not {}", desc.digest()));
                false
            }
            _ => true,
        }
    }
}

/// Loads a small JSON document blob whose integrity holds. Returns `None`
/// (with findings) when it is absent, too large, or not what its digest says.
pub fn load_document(layout: &Layout, desc: &Descriptor, loc: &Location, f: &mut Findings) -> Option<Vec<u8>> {
    let file_loc = at(desc, loc);
    // Manifests, indexes and configs are read into memory; registries cap
    // manifests at 4 MiB (the default), and no real config comes near it.
    let limit = layout.limits.max_json_bytes;
    if desc.size() > limit {
        f.push(
            &DOCUMENT_INVALID,
            file_loc,
            format!(
                "descriptor size {} exceeds the {limit}-byte limit for JSON documents (--max-json-bytes raises it)",
                desc.size()
            ),
        );
        return None;
    }
    let mut blob = open(layout, desc, loc, f)?;
    let bytes = match read_bounded(&mut blob.reader, blob.len, limit) {
        Ok(b) => b,
        Err(ReadError::TooLarge { len, limit }) => {
            f.push(
                &DOCUMENT_INVALID,
                file_loc,
                format!("blob is {len} bytes, more than the {limit}-byte limit for JSON documents"),
            );
            return None;
        }
        Err(e) => {
            f.push(&BLOB_UNREADABLE, file_loc, format!("read failed: {e}"));
            return None;
        }
    };
    blob.check(desc, loc, f).then_some(bytes)
}

/// Streams a large blob (a layer) through its hash without keeping it.
pub fn verify_stream(layout: &Layout, desc: &Descriptor, loc: &Location, f: &mut Findings) -> bool {
    let Some(mut blob) = open(layout, desc, loc, f) else {
        return false;
    };
    if let Err(e) = io::copy(&mut blob.reader, &mut io::sink()) {
        f.push(&BLOB_UNREADABLE, at(desc, loc), format!("read failed after {} bytes: {e}", blob.reader.count()));
        return false;
    }
    blob.check(desc, loc, f)
}

/// OCI-BLOB-INTEGRITY for a descriptor's embedded `data`: a consumer that
/// takes the bytes from `data` and one that fetches the blob must read the
/// same content, so `data` must decode to the descriptor's size and digest.
/// `at` points at the descriptor; the finding points at its `data`.
pub fn check_data(desc: &Descriptor, at: &Location, f: &mut Findings) {
    use base64::Engine;
    let Some(data) = desc.data() else { return };
    let pointer = format!("{}/data", at.pointer.as_deref().unwrap_or(""));
    let loc = Location { pointer: Some(pointer), ..at.clone() };
    let bytes = match base64::engine::general_purpose::STANDARD.decode(data) {
        Ok(bytes) => bytes,
        Err(e) => {
            f.push(&DESCRIPTOR_DATA, loc, format!("embedded data of {} is not base64: {e}", desc.digest()));
            return;
        }
    };
    if bytes.len() as u64 != desc.size() {
        let message = format!(
            "embedded data of {} decodes to {} bytes; the descriptor says {}",
            desc.digest(),
            bytes.len(),
            desc.size()
        );
        f.push(&DESCRIPTOR_DATA, loc, message);
        return;
    }
    // An unknown algorithm is reported where the blob is read.
    let Some(mut hasher) = Hasher::new(desc.digest().algorithm()) else { return };
    hasher.update(&bytes);
    let found = hasher.finish();
    if found != desc.digest().as_ref() {
        f.push(&DESCRIPTOR_DATA, loc, format!("embedded data hashes to {found}, not {}", desc.digest()));
    }
}
