//! `flatten` of a one-layer image. When it succeeds, `validate` of the
//! output must find nothing, and flattening the same input again must give
//! the same output (README: "The output is reproducible ... `single-id
//! validate --strict` finds nothing in it"). When it fails, it must leave
//! no output, and the input must have been at fault: an input in which
//! `validate` finds nothing (not even a warning) must flatten.
//!
//! The README's promise is taken literally: no finding of warning level or
//! above. With `SINGLE_ID_FUZZ_LENIENT=1` in the environment only errors
//! count, and not those that a streaming rewrite carries over from its
//! input (duplicate paths, dangling hardlinks, invalid whiteouts) when
//! `validate` reports the same rule for the input.
//!
//! Input: a flag byte, then the layer.
//! - bits 0-1: 0 the rest is a plain tar; 1 or 2 a tar this target
//!   compresses with gzip or zstd (every header checksum of the tar is
//!   rewritten first, so that mutated headers reach the parser); 3 it is
//!   already compressed (gzip, or zstd when bit 2 is set).
//! - bits 3-4: `--compression`: keep the input's, gzip, zstd, none.
//! - bits 5-6: the id-flattening value (none, flattened, allowed, caution).
//! - bit 7: `config.User` is "1000" instead of "".
#![no_main]

use libfuzzer_sys::fuzz_target;
use single_id::flatten::{self, Codec as Out};
use single_id::diagnostic::Severity;
use single_id_fuzz::{
    Codec, ImageSpec, Layer, dump_layers, fix_checksums, reference, rules_at, scratch, sha256, validate_options,
    value_of, write_image,
};

/// Rules whose findings a streaming rewrite carries over from its input.
const INHERITED: &[&str] = &["layer-duplicate", "layer-hardlink", "layer-whiteout", "layer-whiteout-content"];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut tar = rest.to_vec();
    fix_checksums(&mut tar);
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
    if flags & 3 != 3 {
        dump_layers(&[&tar]);
    }
    let compression = match (flags >> 3) & 3 {
        0 => None,
        1 => Some(Out::Gzip),
        2 => Some(Out::Zstd),
        _ => Some(Out::None),
    };
    let spec = ImageSpec {
        layers: vec![layer],
        value: value_of(flags >> 5),
        user: if flags & 0x80 != 0 { "1000".into() } else { String::new() },
    };
    let dir = scratch();
    let input = dir.path().join("in");
    write_image(&input, &spec);
    let options = flatten::Options { compression, confirm_flatten: true, max_examples: 5, limits: Default::default(), progress: Default::default() };
    let flatten_to = |name: &str| {
        let out = dir.path().join(name);
        let arg = out.to_str().expect("a UTF-8 scratch path").to_string();
        (flatten::flatten(&reference(&input), "in".into(), &arg, &options), out)
    };
    let (first, out) = flatten_to("out");
    let report = match first {
        Ok(report) => report,
        Err(failure) => {
            assert!(!out.exists(), "a failed flatten left its output directory");
            if let Ok(r) = single_id::validate::validate(&reference(&input), "in".into(), &validate_options()) {
                let faults = rules_at(&r, Severity::Warning);
                assert!(!faults.is_empty(), "flatten refused an input in which validate finds nothing: {failure:?}");
            }
            return;
        }
    };
    std::hint::black_box(single_id::render::flatten::render(&report));

    let lenient = std::env::var_os("SINGLE_ID_FUZZ_LENIENT").is_some_and(|v| v == "1");
    let validated = single_id::validate::validate(&reference(&out), "out".into(), &validate_options())
        .unwrap_or_else(|e| panic!("the output of flatten cannot be validated: {e}"));
    let input_errors = match lenient {
        true => match single_id::validate::validate(&reference(&input), "in".into(), &validate_options()) {
            Ok(r) => rules_at(&r, Severity::Error),
            Err(_) => Vec::new(),
        },
        false => Vec::new(),
    };
    let bad: Vec<_> = validated
        .findings
        .iter()
        .filter(|f| {
            if !lenient {
                return f.severity >= Severity::Warning;
            }
            f.severity == Severity::Error && !(INHERITED.contains(&f.rule.id) && input_errors.contains(&f.rule.id))
        })
        .collect();
    assert!(bad.is_empty(), "validate finds problems in the output of flatten: {bad:#?}");
    for image in &validated.images {
        assert_eq!(
            image.id_flattening.effective,
            single_id::annotation::Value::Flattened,
            "an image flatten wrote is not declared flattened"
        );
    }

    let (again, _) = flatten_to("again");
    let again = again.unwrap_or_else(|e| panic!("flatten succeeded once, then failed on the same input: {e:?}"));
    let outputs = |r: &flatten::FlattenReport| r.images.iter().map(|i| i.output_manifest.clone()).collect::<Vec<_>>();
    assert_eq!(outputs(&report), outputs(&again), "flatten is not reproducible");
});
