//! Sparse expansion (CONSUMER-SPARSE, CONSUMER-LIMITS): sparse entries of a
//! few KB that declare real sizes of 1 GiB and 1 TiB in each of the four
//! formats, and sparse maps no reader can follow. The holes count against
//! the expansion limits, so the huge ones are `limit-exceeded`, refused by
//! unpack and flatten within seconds (the runner caps file sizes, so a
//! command that started writing the zeros would be killed).

use serde_json::{Value, json};

use super::{ALLOWED, Case, case, gz_raw, image, inspect};
use crate::support::rawtar::{self, end, entry, file, header, pax};

const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// 4 KiB of stored data, a recognisable pattern.
fn stored() -> Vec<u8> {
    (0..4096u32).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A PAX sparse entry: `records` before a header named `name` whose data is
/// `data` (the stored regions, after the map for format 1.0).
fn pax_sparse(records: &[(&[u8], &[u8])], name: &[u8], data: &[u8]) -> Vec<u8> {
    [pax(b'x', records), entry(&header(name, b'0', data.len() as u64), data)].concat()
}

/// The PAX 1.0 map text, padded to a block, then `data`.
fn map_1_0(map: &[(u64, u64)], data: &[u8]) -> Vec<u8> {
    let mut text = format!("{}\n", map.len());
    for (o, n) in map {
        text.push_str(&format!("{o}\n{n}\n"));
    }
    let mut out = rawtar::padded(text.as_bytes());
    out.extend_from_slice(data);
    out
}

/// A layer: the sparse entry `sparse`, then a plain file.
fn layer(sparse: Vec<u8>) -> Vec<u8> {
    [sparse, file(b"after", b"after"), end()].concat()
}

/// What a sparse entry too large to expand gives: `limit-exceeded` (and the
/// `layer-sparse` warning, when the entry is read before the limit trips),
/// unpack and flatten refuse, naming the limit.
fn too_large(flag: &str) -> Value {
    json!({
        "validate": {"exit": 1, "rules": ["limit-exceeded"], "messages_contain": [flag]},
        "inspect": {"exit": [0, 1]},
        "unpack": {"exit": 1, "stderr_contains": [flag], "absent": [""]},
        "flatten": {"exit": 1, "stderr_contains": [flag]},
        "max_seconds": 10,
    })
}

/// A sparse map no reader can follow: validate reports the field, unpack
/// rejects the entry (and goes on), flatten refuses.
fn malformed(why: &str) -> Value {
    json!({
        "validate": {"exit": 1, "rules": ["layer-header-field", "layer-sparse"], "messages_contain": ["sparse map"]},
        "inspect": inspect(0),
        "unpack": {"exit": 0, "present": [super::f("after", "after")], "absent": ["sparse"],
                   "stdout_contains": ["rejected entries: 1", why]},
        "flatten": {"exit": 1, "stderr_contains": [why]},
    })
}

fn one(at: &std::path::Path, tar: Vec<u8>) {
    image(at, ALLOWED, vec![gz_raw(tar)]);
}

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "sparse-gnu-1tib",
            "A GNU sparse entry (`S`) of 4 KiB stored data that declares a real size of 1 TiB (the map closes with an empty region there).",
            |at| one(at, layer(rawtar::gnu_sparse(b"sparse", &[(0, 4096), (TIB, 0)], TIB, &stored()))),
            too_large("--max-ratio"),
        ),
        case(
            "sparse-gnu-1gib",
            "A GNU sparse entry of 4 KiB stored data that declares a real size of 1 GiB.",
            |at| one(at, layer(rawtar::gnu_sparse(b"sparse", &[(0, 4096), (GIB, 0)], GIB, &stored()))),
            too_large("--max-ratio"),
        ),
        case(
            "sparse-gnu-extended-map",
            "A GNU sparse entry whose map runs on through extension blocks: 1,000 regions of 4 bytes, one every MiB, in a real size of 1000 MiB.",
            |at| {
                let map: Vec<(u64, u64)> =
                    (0..1000u64).map(|i| (i << 20, 4)).chain(std::iter::once((1000 << 20, 0))).collect();
                let data: Vec<u8> = (0..4000u32).map(|i| b'0' + (i % 10) as u8).collect();
                one(at, layer(rawtar::gnu_sparse(b"sparse", &map, 1000 << 20, &data)))
            },
            too_large("--max-ratio"),
        ),
        case(
            "sparse-pax-1-0-1tib",
            "A PAX 1.0 sparse entry (map at the start of the data) of 4 KiB that declares a real size of 1 TiB.",
            |at| {
                let real = TIB.to_string();
                let records: [(&[u8], &[u8]); 4] = [
                    (b"GNU.sparse.major", b"1"),
                    (b"GNU.sparse.minor", b"0"),
                    (b"GNU.sparse.name", b"sparse"),
                    (b"GNU.sparse.realsize", real.as_bytes()),
                ];
                let data = map_1_0(&[(0, 4096), (TIB, 0)], &stored());
                one(at, layer(pax_sparse(&records, b"GNUSparseFile.0/sparse", &data)))
            },
            too_large("--max-ratio"),
        ),
        case(
            "sparse-pax-0-1-1tib",
            "A PAX 0.1 sparse entry (`GNU.sparse.numblocks` and `GNU.sparse.map`, as GNU tar writes them) of 4 KiB that declares a real size of 1 TiB.",
            |at| {
                let (real, map) = (TIB.to_string(), format!("0,4096,{TIB},0"));
                let records: [(&[u8], &[u8]); 4] = [
                    (b"GNU.sparse.numblocks", b"2"),
                    (b"GNU.sparse.map", map.as_bytes()),
                    (b"GNU.sparse.name", b"sparse"),
                    (b"GNU.sparse.size", real.as_bytes()),
                ];
                one(at, layer(pax_sparse(&records, b"GNUSparseFile.0/sparse", &stored())))
            },
            too_large("--max-ratio"),
        ),
        case(
            "sparse-pax-0-0-1tib",
            "A PAX 0.0 sparse entry (repeated `GNU.sparse.offset`/`GNU.sparse.numbytes`) of 4 KiB that declares a real size of 1 TiB.",
            |at| {
                let (real, end_at) = (TIB.to_string(), TIB.to_string());
                let records: [(&[u8], &[u8]); 6] = [
                    (b"GNU.sparse.size", real.as_bytes()),
                    (b"GNU.sparse.numblocks", b"2"),
                    (b"GNU.sparse.offset", b"0"),
                    (b"GNU.sparse.numbytes", b"4096"),
                    (b"GNU.sparse.offset", end_at.as_bytes()),
                    (b"GNU.sparse.numbytes", b"0"),
                ];
                one(at, layer(pax_sparse(&records, b"sparse", &stored())))
            },
            too_large("--max-ratio"),
        ),
        case(
            "sparse-pax-0-1-versioned",
            "A well-formed PAX 0.1 sparse entry (1 MiB, 4 KiB stored) that also carries `GNU.sparse.major=0` and `GNU.sparse.minor=1`: GNU tar and Go expand it; bsdtar expands it the same but reports an unrecognized sparse format and exits 1, so validate calls it ambiguous and unpack and flatten refuse it.",
            |at| {
                let records: [(&[u8], &[u8]); 6] = [
                    (b"GNU.sparse.major", b"0"),
                    (b"GNU.sparse.minor", b"1"),
                    (b"GNU.sparse.numblocks", b"2"),
                    (b"GNU.sparse.map", b"0,4096,1048576,0"),
                    (b"GNU.sparse.name", b"sparse"),
                    (b"GNU.sparse.size", b"1048576"),
                ];
                one(at, layer(pax_sparse(&records, b"GNUSparseFile.0/sparse", &stored())))
            },
            json!({
                "validate": {"exit": 1, "rules": ["layer-ambiguous", "layer-sparse"]},
                "inspect": inspect(0),
                "unpack": super::unpack_fails("GNU.sparse.major or minor"),
                "flatten": super::flatten_fails("GNU.sparse.major or minor"),
            }),
        ),
        case(
            "sparse-map-overlapping",
            "A GNU sparse entry whose regions overlap: (0, 512) and (256, 512) in a real size of 2048.",
            |at| {
                let data = [&stored()[..1024]].concat();
                one(at, layer(rawtar::gnu_sparse(b"sparse", &[(0, 512), (256, 512), (2048, 0)], 2048, &data)))
            },
            malformed("segments overlap or are out of order"),
        ),
        case(
            "sparse-map-unsorted",
            "A PAX 0.1 sparse entry whose regions are out of order: (1024, 512) before (0, 512).",
            |at| {
                let records: [(&[u8], &[u8]); 4] = [
                    (b"GNU.sparse.numblocks", b"3"),
                    (b"GNU.sparse.map", b"1024,512,0,512,2048,0"),
                    (b"GNU.sparse.name", b"sparse"),
                    (b"GNU.sparse.size", b"2048"),
                ];
                one(at, layer(pax_sparse(&records, b"GNUSparseFile.0/sparse", &stored()[..1024])))
            },
            malformed("segments overlap or are out of order"),
        ),
        case(
            "sparse-map-past-real-size",
            "A PAX 1.0 sparse entry with a region (4096, 512) past its real size of 2048.",
            |at| {
                let records: [(&[u8], &[u8]); 4] = [
                    (b"GNU.sparse.major", b"1"),
                    (b"GNU.sparse.minor", b"0"),
                    (b"GNU.sparse.name", b"sparse"),
                    (b"GNU.sparse.realsize", b"2048"),
                ];
                let data = map_1_0(&[(0, 512), (4096, 512)], &stored()[..1024]);
                one(at, layer(pax_sparse(&records, b"GNUSparseFile.0/sparse", &data)))
            },
            malformed("a segment reaches past the real size"),
        ),
        case(
            "sparse-map-not-adding-up",
            "A GNU sparse entry whose regions (0, 512) and (1024, 512) add up to 1024 bytes while 512 are stored.",
            |at| {
                one(
                    at,
                    layer(rawtar::gnu_sparse(b"sparse", &[(0, 512), (1024, 512), (2048, 0)], 2048, &stored()[..512])),
                )
            },
            malformed("the segments do not add up to the stored data"),
        ),
    ]
}
