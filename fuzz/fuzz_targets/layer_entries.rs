//! One layer of a well-formed image (correct digests, diff_id computed from
//! the bytes), then `validate` and `inspect` with every output format
//! rendered. Must not panic.
//!
//! Input: a flag byte, then the layer.
//! - bits 0-1: 0 the rest is a plain tar; 1 or 2 it is a tar this target
//!   compresses with gzip or zstd; 3 it is already compressed, as gzip
//!   (bit 2 clear) or zstd (bit 2 set), and goes into the layout as it is.
//! - bits 3-4: the id-flattening value (none, flattened, allowed, caution).
//! - bit 5: `config.User` is "1000" instead of "".
//! - bit 6: the layer appears twice in the image (cross-layer checks), and
//!   `validate` runs a second time: the two JSON reports must be the same
//!   (layers are scanned in parallel; the output must not depend on it).
//! - bit 7: the tar goes in as it is; otherwise every header checksum is
//!   rewritten first, so that mutated headers reach the parser.
//!
//! SARIF is rendered too when the input's length is a multiple of 8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use single_id_fuzz::{
    Codec, ImageSpec, Layer, dump_layers, fix_checksums, scratch, sha256, validate_and_inspect, value_of, write_image,
};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut tar = rest.to_vec();
    if flags & 0x80 == 0 {
        fix_checksums(&mut tar);
    }
    let layer = match flags & 3 {
        0 => Layer::of_tar(&tar, Codec::None),
        1 => Layer::of_tar(&tar, Codec::Gzip),
        2 => Layer::of_tar(&tar, Codec::Zstd),
        _ => {
            let codec = if flags & 4 == 0 { Codec::Gzip } else { Codec::Zstd };
            let Some(expanded) = codec.expand(rest) else { return };
            Layer { blob: rest.to_vec(), media_type: codec.media_type().into(), diff_id: sha256(&expanded) }
        }
    };
    let layers = if flags & 0x40 != 0 { vec![layer.clone(), layer] } else { vec![layer] };
    let spec = ImageSpec {
        layers,
        value: value_of(flags >> 3),
        user: if flags & 0x20 != 0 { "1000".into() } else { String::new() },
    };
    if flags & 3 != 3 {
        dump_layers(&[&tar]);
    }
    let dir = scratch();
    let layout = dir.path().join("layout");
    write_image(&layout, &spec);
    let first = validate_and_inspect(&layout, data.len().is_multiple_of(8));
    if flags & 0x40 != 0 {
        let again = validate_and_inspect(&layout, false);
        let json = |r: &Option<single_id::report::Report>| r.as_ref().map(single_id::render::json::render);
        assert_eq!(json(&first), json(&again), "validate gave two different reports for the same image");
    }
});
