//! Compressed streams and document sizes at their limits: a gzip bomb
//! (where the limit says it stopped), gzip members with long header fields
//! (what the decoder does with them), and a config just under the JSON
//! limit that flatten must still carry.

use std::io::Write;

use serde_json::{Value, json};

use super::{ALLOWED, Case, case, image, image_with_blob, inspect, large_case, outcome, unpack_fails, validate};
use crate::support::layers::{file, layer};
use crate::support::{Compression, ImageSpec, OciDir};

/// A gzip member of `data` whose header carries the comment `comment`.
fn gzip_with_comment(data: &[u8], comment: Vec<u8>) -> Vec<u8> {
    let mut e = flate2::GzBuilder::new().comment(comment).write(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// What every command does with a gzip member flate2 refuses to read.
fn unreadable(says: &str) -> Value {
    json!({
        "validate": {"exit": 1, "rules": ["layer-unreadable"], "messages_contain": [says]},
        "inspect": inspect(1),
        "unpack": unpack_fails(says),
        "flatten": super::flatten_fails(says),
    })
}

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "gzip-bomb",
            "A gzip layer of 16 KiB holding one file of 16 MiB of zeros: the expansion limit (100-fold past 8 MiB) stops it, and the message names an uncompressed byte position near the 8 MiB where it stopped, not the end of the stream.",
            |at| {
                let tar = layer(&[file("zeros", &vec![0u8; 16 << 20]), file("after", b"a")]);
                image(at, ALLOWED, vec![(tar, Compression::Gzip)]);
            },
            json!({
                "validate": {"exit": 1, "rules": ["limit-exceeded"], "messages_contain": ["--max-ratio"],
                             "message_byte_between": [8 << 20, (8 << 20) + (1 << 20)]},
                "inspect": inspect(1),
                "unpack": unpack_fails("--max-ratio"),
                "flatten": super::flatten_fails("--max-ratio"),
                "max_seconds": 10,
            }),
        ),
        case(
            "gzip-header-comment-1k",
            "A gzip member whose header carries a comment of 1,000 bytes: gzip(1), GNU tar, bsdtar and single-id read it; Go's compress/gzip (umoci, skopeo) refuses any header string of 512 bytes or more, so validate calls the layer ambiguous and unpack refuses it; flatten writes a gzip header without a comment.",
            |at| {
                let tar = layer(&[file("f", b"x")]);
                let blob = gzip_with_comment(&tar, vec![b'c'; 1000]);
                image_with_blob(at, ALLOWED, &tar, &blob, Compression::Gzip.media_type());
            },
            outcome(
                validate(1, &["layer-ambiguous"]),
                inspect(0),
                unpack_fails("Go's compress/gzip refuses"),
                super::flatten_clean(),
            ),
        ),
        large_case(
            "gzip-header-comment-70k",
            "A gzip member whose header carries a comment of 70,000 bytes (gzip(1) reads it): the decoder (flate2) reads header fields up to 65,535 bytes, so the layer is unreadable, an error naming that limit (Go refuses it too).",
            |at| {
                let tar = layer(&[file("f", b"x")]);
                let blob = gzip_with_comment(&tar, vec![b'c'; 70_000]);
                image_with_blob(at, ALLOWED, &tar, &blob, Compression::Gzip.media_type());
            },
            unreadable("more than single-id's gzip decoder reads"),
        ),
        large_case(
            "config-4mib-minus-1",
            "A clean image whose config is 4 MiB - 1 bytes (a long label), just under --max-json-bytes: validate passes it, but what flatten adds (233 bytes) would take the config past 4 MiB, which validate and unpack refuse under the default limits, so flatten refuses, naming the limit and its flag, and writes nothing.",
            |at| {
                let mut oci = OciDir::create(at.join("layout"));
                let mut spec = ImageSpec::declared("latest", Some("flattened"));
                spec.layers = vec![(layer(&[file("f", b"x")]), Compression::Gzip)];
                let desc = oci.image(&spec);
                let manifest = oci.read(&desc);
                let mut config = oci.read(&manifest["config"]);
                config["config"]["Labels"]["org.example.filler"] = json!("");
                let len = serde_json::to_vec(&config).unwrap().len();
                config["config"]["Labels"]["org.example.filler"] = json!("f".repeat((4 << 20) - 1 - len));
                let bytes = serde_json::to_vec(&config).unwrap();
                assert_eq!(bytes.len(), (4 << 20) - 1);
                let config_desc = oci.blob("application/vnd.oci.image.config.v1+json", &bytes);
                let new = oci.rewrite(&desc, |m| m["config"] = config_desc);
                oci.add(new);
                super::remove_unreferenced(&oci);
            },
            outcome(
                validate(0, &[]),
                inspect(0),
                json!({"exit": 0, "present": [super::f("f", "x")]}),
                super::flatten_fails("--max-json-bytes raises it"),
            ),
        ),
    ]
}
