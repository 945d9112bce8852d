//! The JSON documents of a layout: `index.json`, a manifest, a config and
//! `oci-layout`, taken from the input, then `validate` and `inspect` (every
//! output format rendered). Must not panic.
//!
//! Input: the parts separated by `\n%%\n`, in the order index.json,
//! manifest, config, oci-layout, layer. A missing `oci-layout` is the
//! standard one, a missing layer a small valid tar. Every part is written
//! as a blob named by its real sha256, and these tokens are replaced, so
//! that the walk reaches the documents whatever the fuzzer makes of them:
//! `$L`/`$l` the layer's digest/size, `$D` its diff_id (sha256 after
//! decompression by its magic bytes), `$C`/`$c` the config's, `$M`/`$m` the
//! manifest's (each token only in the parts written after what it names).
//! SARIF is rendered too when the input's length is a multiple of 8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use single_id_fuzz::{Codec, create_layout, default_tar, scratch, sha256, split_parts, validate_and_inspect};

pub const SEPARATOR: &[u8] = b"\n%%\n";

fn replace(doc: &[u8], tokens: &[(&[u8], Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(doc.len());
    let mut i = 0;
    'outer: while i < doc.len() {
        if doc[i] == b'$' {
            for (t, v) in tokens {
                if doc[i..].starts_with(t) {
                    out.extend_from_slice(v);
                    i += t.len();
                    continue 'outer;
                }
            }
        }
        out.push(doc[i]);
        i += 1;
    }
    out
}

fn codec_of(blob: &[u8]) -> Codec {
    if blob.starts_with(&[0x1f, 0x8b]) {
        Codec::Gzip
    } else if blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Codec::Zstd
    } else {
        Codec::None
    }
}

fuzz_target!(|data: &[u8]| {
    let parts = split_parts(data, SEPARATOR, 5);
    let part = |i: usize| parts.get(i).copied();
    let default_layer;
    let layer: &[u8] = match part(4) {
        Some(l) => l,
        None => {
            default_layer = default_tar();
            &default_layer
        }
    };
    let Some(expanded) = codec_of(layer).expand(layer) else { return };

    let dir = scratch();
    let layout = dir.path().join("layout");
    create_layout(&layout);
    let blob = |bytes: &[u8]| -> String {
        let digest = sha256(bytes);
        let path = layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
        std::fs::write(path, bytes).expect("writing a blob");
        digest
    };
    let mut tokens: Vec<(&[u8], Vec<u8>)> = vec![
        (b"$L", blob(layer).into_bytes()),
        (b"$l", layer.len().to_string().into_bytes()),
        (b"$D", sha256(&expanded).into_bytes()),
    ];
    let config = replace(part(2).unwrap_or(b""), &tokens);
    tokens.push((b"$C", blob(&config).into_bytes()));
    tokens.push((b"$c", config.len().to_string().into_bytes()));
    let manifest = replace(part(1).unwrap_or(b""), &tokens);
    tokens.push((b"$M", blob(&manifest).into_bytes()));
    tokens.push((b"$m", manifest.len().to_string().into_bytes()));
    let index = replace(part(0).unwrap_or(b""), &tokens);
    blob(&index);
    std::fs::write(layout.join("index.json"), &index).expect("writing index.json");
    if let Some(o) = part(3) {
        std::fs::write(layout.join("oci-layout"), o).expect("writing oci-layout");
    }
    validate_and_inspect(&layout, data.len().is_multiple_of(8));
});
