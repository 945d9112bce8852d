//! Reader differentials (PRODUCER-UNAMBIGUOUS): layers that GNU tar,
//! bsdtar and Go's archive/tar read differently. `tests/differential.rs`
//! lists each with all three and with single-id; here each is run through
//! the four commands: validate reports an error, unpack and flatten refuse.

use std::path::Path;

use serde_json::json;

use super::{ALLOWED, Case, case, gz_raw, image, inspect, outcome, unpack_fails, validate};
use crate::support::layers;
use crate::support::rawtar::{self, GNU, end, entry, file, header, long, pax};

/// An image of one gzip layer holding `tar`.
fn one(at: &Path, tar: Vec<u8>) {
    image(at, ALLOWED, vec![gz_raw(tar)]);
}

/// The outcome of an entry readers disagree about: validate's error
/// `layer-ambiguous` (plus `more` rules), and unpack and flatten stop at
/// it, saying why.
fn ambiguous(more: &[&str], says: &str) -> serde_json::Value {
    let mut rules = vec!["layer-ambiguous"];
    rules.extend_from_slice(more);
    json!({
        "validate": {"exit": 1, "rules": sorted(&rules), "messages_contain": ["tar readers disagree"]},
        "inspect": inspect(0),
        "unpack": {"exit": 1, "stderr_contains": ["tar readers disagree", says], "absent": [""]},
        "flatten": {"exit": 1, "stderr_contains": ["tar readers disagree", says]},
    })
}

fn sorted(rules: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = rules.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// A PAX 1.0 sparse entry (the map opens the data) named by
/// `GNU.sparse.name`, with a harmless placeholder in the header, as GNU tar
/// writes them: 4 bytes stored at offset 0 of an 8-byte file, the map
/// closed by an empty region at the real size.
fn sparse_named(name: &[u8]) -> Vec<u8> {
    let mut data = b"2\n0\n4\n8\n0\n".to_vec();
    data.resize(512, 0);
    data.extend_from_slice(b"data");
    [
        pax(
            b'x',
            &[
                (b"GNU.sparse.major", b"1"),
                (b"GNU.sparse.minor", b"0"),
                (b"GNU.sparse.name", name),
                (b"GNU.sparse.realsize", b"8"),
            ],
        ),
        entry(&header(b"GNUSparseFile.0/placeholder", b'0', data.len() as u64), &data),
    ]
    .concat()
}

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "sparse-name-dotdot",
            "A PAX 1.0 sparse entry whose header name is harmless and whose `GNU.sparse.name` is `../../../../canary/sparse`: GNU tar, bsdtar and Go all take the name from the record, so the entry climbs out of the root for every reader, and every command must see that.",
            |at| one(at, [sparse_named(b"../../../../canary/sparse"), file(b"after", b"a"), end()].concat()),
            outcome(
                validate(1, &["layer-path-escape", "layer-sparse"]),
                inspect(0),
                json!({"exit": 0, "present": [super::f("after", "a")], "absent": ["canary", "GNUSparseFile.0"]}),
                super::flatten_refuse_or_clean(),
            ),
        ),
        case(
            "sparse-name-whiteout",
            "A sparse entry whose `GNU.sparse.name` is `etc/.wh.passwd`, over a lower layer holding `etc/passwd`: every reader takes the record's name, so it is a whiteout (with content) and removes the file; nothing named `GNUSparseFile.0` appears.",
            |at| {
                let base =
                    layers::layer(&[layers::dir("etc/"), layers::file("etc/passwd", b"root:x:0:0::/:/bin/sh\n")]);
                let top = [sparse_named(b"etc/.wh.passwd"), file(b"etc/group", b"root:x:0:\n"), end()].concat();
                image(at, ALLOWED, vec![gz_raw(base), gz_raw(top)]);
            },
            outcome(
                validate(0, &["layer-sparse", "layer-whiteout-content"]),
                inspect(0),
                json!({"exit": 0, "present": [super::f("etc/group", "root:x:0:\n")],
                       "absent": ["etc/passwd", "etc/.wh.passwd", "GNUSparseFile.0"]}),
                super::flatten_clean(),
            ),
        ),
        case(
            "gnu-long-name-vs-pax-path",
            "A GNU long-name header (`L`) naming `../canary/gnu-name`, then a PAX `path` of `pax-name`, then the entry: GNU tar takes the PAX path, bsdtar and Go the long name, which climbs out of the root.",
            |at| {
                one(
                    at,
                    [
                        long(b'L', b"../canary/gnu-name"),
                        pax(b'x', &[(b"path", b"pax-name")]),
                        file(b"header-name", b"x"),
                        end(),
                    ]
                    .concat(),
                )
            },
            ambiguous(&[], "GNU long name"),
        ),
        case(
            "gnu-long-link-vs-pax-linkpath",
            "A symlink with a GNU long-link header (`K`) of `/etc/shadow` and a PAX `linkpath` of `harmless`: GNU tar links to the PAX target, bsdtar and Go to the long link.",
            |at| {
                one(
                    at,
                    [
                        long(b'K', b"/etc/shadow"),
                        pax(b'x', &[(b"linkpath", b"harmless")]),
                        entry(&header(b"link", b'2', 0).link(b"header-target"), b""),
                        file(b"after", b"a"),
                        end(),
                    ]
                    .concat(),
                )
            },
            ambiguous(&[], "GNU long link"),
        ),
        case(
            "pax-path-nul",
            "A PAX `path` of `etc/passwd\\0.orig`: GNU tar and bsdtar cut it at the NUL and write `etc/passwd`, Go rejects the header.",
            |at| one(at, [pax(b'x', &[(b"path", b"etc/passwd\0.orig")]), file(b"innocent", b"x"), end()].concat()),
            ambiguous(&[], "NUL"),
        ),
        case(
            "pax-key-nul",
            "A PAX record whose key holds a NUL (`SCHILY.xattr.security.capability\\0x`): GNU tar and bsdtar call the header malformed and go on, Go rejects it.",
            |at| {
                one(
                    at,
                    [
                        pax(b'x', &[(b"SCHILY.xattr.security.capability\0x", b"\x01\x00\x00\x02")]),
                        file(b"capable", b"x"),
                        end(),
                    ]
                    .concat(),
                )
            },
            ambiguous(&[], "NUL"),
        ),
        case(
            "header-only-types-with-size",
            "Five layers, each with an entry of a type that carries no data (symlink, hardlink, directory, FIFO, character device) recording 512 bytes of data, which hold the header of a set-ID file climbing out of the root: GNU tar skips those bytes for some types, Go and bsdtar read them as the next header.",
            |at| {
                let hidden = layers::layer_without_end(&[layers::file("../canary/hidden", b"h").mode(0o4755)]);
                let with = |h: rawtar::Header| [entry(&h, &hidden[..512]), file(b"after", b"a"), end()].concat();
                let layers = vec![
                    gz_raw(with(header(b"symlink", b'2', 512).link(b"target"))),
                    gz_raw(with(header(b"hardlink", b'1', 512).link(b"after"))),
                    gz_raw(with(header(b"dir/", b'5', 512))),
                    gz_raw(with(header(b"fifo", b'6', 512))),
                    gz_raw(with(header(b"null", b'3', 512).device(1, 3))),
                ];
                image(at, ALLOWED, layers);
            },
            ambiguous(&["layer-ambiguous"; 4], "records 512 bytes of data"),
        ),
        case(
            "unknown-typeflags",
            "Two layers: an entry of typeflag `Z` (GNU tar lists it as unknown and extracts a regular file, bsdtar makes a regular file, Go hands it on as is) and one of typeflag `X` (GNU tar takes it for an old Solaris extended header and swallows it, the others see an entry). Validate reports both; a consumer creates nothing for either (CONSUMER-UNKNOWN-TYPES), so unpack skips them and flatten drops them, and every reader skips their data alike.",
            |at| {
                let typed = |t: u8| [entry(&header(b"typed", t, 4), b"data"), file(b"after", b"a"), end()].concat();
                image(at, ALLOWED, vec![gz_raw(typed(b'Z')), gz_raw(typed(b'X'))]);
            },
            json!({
                "validate": {"exit": 1, "rules": ["layer-ambiguous", "layer-ambiguous"], "messages_contain": ["tar readers disagree"]},
                "inspect": inspect(0),
                "unpack": {"exit": 0, "present": [super::f("after", "a")], "absent": ["typed"],
                           "stdout_contains": ["skipped entries of unknown type: 2"]},
                "flatten": super::flatten_clean(),
            }),
        ),
        case(
            "regular-file-named-as-directory",
            "A regular file (typeflag `0`) named `dir/`: GNU tar and bsdtar make a directory, Go a file whose name ends in a slash.",
            |at| one(at, [entry(&header(b"dir/", b'0', 0), b""), file(b"dir/inner", b"i"), end()].concat()),
            ambiguous(&[], "name ends in"),
        ),
        case(
            "pax-global-header-fields",
            "A PAX global header setting `path`, `size` and `uid`: GNU tar renames every later entry, gives it 3 bytes and UID 7; bsdtar and Go ignore the fields. Validate reports it, and unpack and flatten refuse it.",
            |at| {
                one(
                    at,
                    [
                        pax(b'g', &[(b"path", b"../canary/global"), (b"size", b"3"), (b"uid", b"7")]),
                        file(b"first", b"first"),
                        file(b"second", b"second"),
                        end(),
                    ]
                    .concat(),
                )
            },
            ambiguous(&[], "global header"),
        ),
        case(
            "extended-headers-twice",
            "Three layers, each with two extended headers of one kind before one entry: two PAX `x` headers (bsdtar fails), two GNU `L` long names, two GNU `K` long links.",
            |at| {
                let x = [
                    pax(b'x', &[(b"path", b"first-x")]),
                    pax(b'x', &[(b"path", b"second-x")]),
                    file(b"header-name", b"x"),
                    end(),
                ]
                .concat();
                let l = [long(b'L', b"first-l"), long(b'L', b"second-l"), file(b"header-name", b"x"), end()].concat();
                let k = [
                    long(b'K', b"first-k"),
                    long(b'K', b"second-k"),
                    entry(&header(b"link", b'2', 0).link(b"header-target"), b""),
                    end(),
                ]
                .concat();
                image(at, ALLOWED, vec![gz_raw(x), gz_raw(l), gz_raw(k)]);
            },
            ambiguous(&["layer-ambiguous", "layer-ambiguous"], "two PAX extended headers in a row"),
        ),
        case(
            "pax-header-at-end",
            "A PAX `x` header as the last thing in the layer, with no entry after it: GNU tar and Go end quietly, bsdtar calls the archive damaged.",
            |at| one(at, [file(b"only", b"x"), pax(b'x', &[(b"path", b"dangling")]), end()].concat()),
            outcome(
                validate(1, &["layer-unreadable"]),
                inspect(1),
                unpack_fails("not followed by an entry"),
                super::flatten_fails("not followed by an entry"),
            ),
        ),
        case(
            "extended-headers-without-magic",
            "`L`, `K` and `x` headers with no ustar magic at all: GNU tar, bsdtar and Go apply them all the same, so the entries are the long name, the long link and the PAX path, and every command must read them so.",
            |at| {
                let bare =
                    |t: u8, body: &[u8]| entry(&header(b"././@LongLink", t, body.len() as u64).magic(&[0; 8]), body);
                let records = b"17 path=pax-name\n";
                one(
                    at,
                    [
                        bare(b'L', b"long-name\0"),
                        file(b"header-name-1", b"1"),
                        bare(b'K', b"long-target\0"),
                        entry(&header(b"link", b'2', 0).link(b"header-target"), b""),
                        bare(b'x', records),
                        file(b"header-name-2", b"2"),
                        end(),
                    ]
                    .concat(),
                )
            },
            outcome(
                validate(0, &[]),
                inspect(0),
                json!({"exit": 0, "present": [super::f("long-name", "1"), super::l("link", "long-target"),
                       super::f("pax-name", "2")], "absent": ["header-name-1", "header-name-2"]}),
                super::flatten_clean(),
            ),
        ),
        case(
            "pax-linkpath-not-utf8",
            "A symlink and a hardlink whose PAX `linkpath` is not UTF-8 (no `hdrcharset`), with empty header link fields: GNU tar and Go link to the raw bytes; bsdtar (libarchive 3.6) cannot convert the target, lists the symlink without one, extracts it as an empty regular file, and exits 1. An error; unpack and flatten refuse.",
            |at| {
                one(
                    at,
                    [
                        file(b"target-\xff", b"t"),
                        pax(b'x', &[(b"linkpath", b"target-\xff")]),
                        entry(&header(b"symlink", b'2', 0), b""),
                        pax(b'x', &[(b"linkpath", b"target-\xff")]),
                        entry(&header(b"hardlink", b'1', 0), b""),
                        end(),
                    ]
                    .concat(),
                )
            },
            ambiguous(&[], "PAX linkpath is not UTF-8"),
        ),
        case(
            "pax-path-not-utf8",
            "A file whose PAX `path` is not UTF-8 (no `hdrcharset`): every reader names it with the raw bytes, but bsdtar warns that it cannot convert the name and exits 1. An error; unpack and flatten refuse.",
            |at| one(at, [pax(b'x', &[(b"path", b"name-\xff")]), file(b"header-name", b"x"), end()].concat()),
            ambiguous(&[], "PAX path is not UTF-8"),
        ),
        case(
            "pax-path-binary-charset",
            "The same name, with `hdrcharset=BINARY` in the PAX header (what GNU tar and Python write for a name that is not UTF-8): every reader, bsdtar included, takes the raw bytes and succeeds, so it is no finding.",
            |at| {
                one(
                    at,
                    [
                        pax(b'x', &[(b"hdrcharset", b"BINARY"), (b"path", b"name-\xff")]),
                        file(b"header-name", b"x"),
                        end(),
                    ]
                    .concat(),
                )
            },
            outcome(
                validate(0, &[]),
                inspect(0),
                json!({"exit": 0, "present": [super::f("name-\\xff", "x")]}),
                super::flatten_clean(),
            ),
        ),
        case(
            "gnu-sparse-named-as-directory",
            "A GNU sparse entry (`S`) named `sparse-dir/`: GNU tar and bsdtar make a directory and skip its data, Go (and single-id today) a sparse regular file, which unpack creates. An error (PRODUCER-UNAMBIGUOUS covers typeflags `0`, `7` and `S`); unpack and flatten refuse.",
            |at| {
                one(
                    at,
                    [rawtar::gnu_sparse(b"sparse-dir/", &[(0, 4), (8, 0)], 8, b"data"), file(b"after", b"a"), end()]
                        .concat(),
                )
            },
            ambiguous(&["layer-sparse"], "whose name ends in `/`"),
        ),
        case(
            "contiguous-file-named-as-directory",
            "A contiguous file (typeflag `7`, a regular file to every reader) named `dir/`, then `dir/inner`: bsdtar makes a directory, Go a regular file whose name ends in a slash, GNU tar lists a contiguous file. An error; unpack and flatten refuse.",
            |at| one(at, [entry(&header(b"dir/", b'7', 0), b""), file(b"dir/inner", b"i"), end()].concat()),
            ambiguous(&[], "whose name ends in `/`"),
        ),
        case(
            "star-trailer-prefix",
            "A ustar header with the star trailer `tar\\0` at byte 508, a 131-byte prefix with no NUL, and octal atime and ctime fields after it: Go reads it as star and takes only the 131 bytes as the prefix; GNU tar and bsdtar read a 155-byte ustar prefix that runs on into the atime field, so the name differs. An error; unpack and flatten refuse.",
            |at| {
                let mut h = header(b"name", b'0', 1);
                h.set(345, &[b'p'; 131]);
                h.set(476, b"00000000000\0");
                h.set(488, b"00000000000\0");
                h.set(508, b"tar\0");
                one(at, [entry(&h, b"x"), end()].concat())
            },
            ambiguous(&[], "star's trailer"),
        ),
        case(
            "pax-size-not-decimal",
            "Two layers with a PAX `size` that is not a plain decimal number, over a header size of 0: `+1024` (Go reads 1024 and swallows the next entry, GNU tar rejects the record, bsdtar ignores it) and ` 512` (bsdtar reads 512, GNU tar rejects it, Go rejects the header).",
            |at| {
                let hidden = layers::layer_without_end(&[layers::file("../canary/hidden", b"h").mode(0o4755)]);
                let layer = |size: &[u8]| {
                    [
                        pax(b'x', &[(b"size", size)]),
                        entry(&header(b"cover", b'0', 0), b""),
                        hidden.clone(),
                        file(b"after", b"a"),
                        end(),
                    ]
                    .concat()
                };
                image(at, ALLOWED, vec![gz_raw(layer(b"+1024")), gz_raw(layer(b" 512"))]);
            },
            outcome(
                validate(1, &["layer-header-field", "layer-header-field", "layer-path-escape", "layer-path-escape"]),
                inspect(0),
                json!({"exit": [0, 1]}),
                super::flatten_refuse_or_clean(),
            ),
        ),
        case(
            "pax-record-twice",
            "A PAX header with `path` twice (`first`, then `../canary/second`): GNU tar, bsdtar and Go take the last; a reader keeping the first would not.",
            |at| {
                one(
                    at,
                    [
                        pax(b'x', &[(b"path", b"first"), (b"path", b"../canary/second")]),
                        file(b"header-name", b"x"),
                        end(),
                    ]
                    .concat(),
                )
            },
            ambiguous(&["layer-path-escape"], "appears twice"),
        ),
        case(
            "gnu-magic-prefix-field",
            "A GNU-magic header whose atime field (bytes 345-356, where a ustar header has its prefix) holds the text `prefix-dir`: GNU tar and bsdtar ignore it; Go, which reads GNU headers with unparsable times as written by its own writer before Go 1.8, takes bytes 345-500 for a ustar prefix and names the entry `prefix-dir/name`. An error; unpack and flatten refuse.",
            |at| {
                let mut h = header(b"name", b'0', 1).magic(GNU);
                h.set(345, b"prefix-dir");
                one(at, [entry(&h, b"x"), end()].concat())
            },
            ambiguous(&[], "time fields hold text"),
        ),
    ]
}
