#!/usr/bin/env bash
# Rebuilds the seed corpus in fuzz/corpus/<target>/ from the conformance
# fixtures (conformance/fixtures/*/layout) plus a few hand-made inputs for
# what the fixtures do not show (PAX and GNU extensions, a nested index,
# Docker media types, unpack escapes aimed at the fixed canary).
#
# The input formats are described at the top of each fuzz_targets/*.rs.
# Needs python3 and the zstd command (for the zstd layer of a fixture).
# Output is deterministic: the same fixtures give the same files.
set -euo pipefail
cd "$(dirname "$0")"
command -v python3 >/dev/null || { echo "seed.sh: python3 is required" >&2; exit 1; }
command -v zstd >/dev/null || { echo "seed.sh: the zstd command is required (apt-get install zstd)" >&2; exit 1; }
rm -rf corpus
mkdir -p corpus/layout_json corpus/layer_entries corpus/unpack corpus/flatten_validate

python3 - <<'PY'
import gzip, hashlib, io, json, os, struct, subprocess, tarfile

FIX = "../conformance/fixtures"
SEP = b"\n%%\n"


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def blob(layout, digest):
    with open(os.path.join(layout, "blobs", *digest.split(":")), "rb") as f:
        return f.read()


def expand(media_type, raw):
    if media_type.endswith("gzip"):
        return gzip.decompress(raw)
    if media_type.endswith("zstd"):
        return subprocess.run(["zstd", "-dcq"], input=raw, capture_output=True, check=True).stdout
    return raw


def fixture(name):
    """(index.json bytes, manifest bytes, config bytes, [(media type, blob, tar)])"""
    layout = os.path.join(FIX, name, "layout")
    with open(os.path.join(layout, "index.json"), "rb") as f:
        index = f.read()
    desc = json.loads(index)["manifests"][0]
    manifest = blob(layout, desc["digest"])
    m = json.loads(manifest)
    config = blob(layout, m["config"]["digest"])
    layers = []
    for l in m["layers"]:
        raw = blob(layout, l["digest"])
        layers.append((l["mediaType"], raw, expand(l["mediaType"], raw)))
    return index, manifest, config, layers


def write(target, name, data):
    with open(os.path.join("corpus", target, name), "wb") as f:
        f.write(data)


def tokens(doc, pairs):
    for real, token in pairs:
        doc = doc.replace(real.encode(), token.encode())
    return doc


# layout_json: the fixture's documents with the digests and sizes of the
# manifest, config and first layer replaced by tokens, and that layer's blob.
for name in ["annotation-key", "compression", "policy-caution", "policy-conflict", "annotation-empty",
             "annotation-two-keys", "annotation-reserved-key", "incomplete", "devices", "xattr-capability",
             "xattr-excluded", "unknown-types", "sparse"]:
    index, manifest, config, layers = fixture(name)
    _, raw, tar = layers[0]
    m = json.loads(manifest)
    pairs = [(sha(raw), "$L"), ('"size": %d' % len(raw), '"size": $l'), ('"size":%d' % len(raw), '"size":$l'),
             (sha(tar), "$D")]
    config_t = tokens(config, pairs)
    pairs += [(m["config"]["digest"], "$C"), ('"size": %d' % m["config"]["size"], '"size": $c'),
              ('"size":%d' % m["config"]["size"], '"size":$c')]
    manifest_t = tokens(manifest, pairs)
    pairs += [(sha(manifest), "$M"), ('"size": %d' % len(manifest), '"size": $m')]
    index_t = tokens(index, pairs)
    # The size tokens must have found their targets, or the seed is useless.
    assert b"$M" in index_t and b"$m" in index_t and b"$C" in manifest_t and b"$L" in manifest_t, name
    write("layout_json", name + ".json", SEP.join([index_t, manifest_t, config_t, b'{"imageLayoutVersion":"1.0.0"}', raw]))

# A nested index: index.json -> index (manifest slot) -> manifest (config
# slot) whose config is the JSON in the layer slot; the image has no layers.
nested_config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"User": "0:0"},
                            "rootfs": {"type": "layers", "diff_ids": []}}).encode()
nested = SEP.join([
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":'
    b'"application/vnd.oci.image.index.v1+json","digest":"$M","size":$m,"annotations":'
    b'{"org.opencontainers.image.ref.name":"nested"}}]}',
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":'
    b'"application/vnd.oci.image.manifest.v1+json","digest":"$C","size":$c,"platform":{"os":"linux",'
    b'"architecture":"arm64","variant":"v8"},"annotations":{"org.opencontainers.image.id-flattening":"flattened"}}]}',
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":'
    b'"application/vnd.oci.image.config.v1+json","digest":"$L","size":$l},"layers":[],"annotations":'
    b'{"org.opencontainers.image.id-flattening":"flattened"}}',
    b'{"imageLayoutVersion":"1.0.0"}',
    nested_config,
])
write("layout_json", "nested-index.json", nested)

# Docker media types, a foreign layer with urls, and an artifact descriptor.
docker = SEP.join([
    b'{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
    b'"digest":"$M","size":$m},{"mediaType":"application/vnd.example.artifact","digest":"$L","size":$l}]}',
    b'{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":'
    b'"application/vnd.docker.container.image.v1+json","digest":"$C","size":$c},"layers":[{"mediaType":'
    b'"application/vnd.docker.image.rootfs.diff.tar","digest":"$L","size":$l},{"mediaType":'
    b'"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"sha256:'
    + b"0" * 64 + b'","size":1,"urls":["https://example.invalid/x"]}]}',
    b'{"architecture":"amd64","os":"linux","config":{"User":"daemon","Labels":'
    b'{"org.opencontainers.image.id-flattening":"allowed"}},"rootfs":{"type":"layers","diff_ids":["$D","$D"]}}',
])
write("layout_json", "docker.json", docker)

# Members Go's encoding/json reads where serde does not: case variants of
# member names, and repeated members and keys (0.2's document-ambiguous).
K = b"io.github.supercontainers.id-flattening"
ambiguous = SEP.join([
    b'{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$M",'
    b'"size":$m,"annotations":{"org.opencontainers.image.ref.name":"amb","' + K + b'":"flattened","' + K + b'":"caution"},'
    b'"Annotations":{"' + K + b'":"allowed"}}]}',
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":'
    b'"application/vnd.oci.image.config.v1+json","digest":"$C","size":$c,"DIGEST":"$L"},"layers":[{"mediaType":'
    b'"application/vnd.oci.image.layer.v1.tar","digest":"$L","size":$l}],"annotations":{"' + K + b'":"flattened"},'
    b'"ANNOTATIONS":{"' + K + b'":"caution"},"annotation\u017f":null}',
    b'{"architecture":"amd64","os":"linux","config":{"User":"","user":"postgres","Labels":{"' + K + b'":"flattened"},'
    b'"LABELS":{"' + K + b'":"caution"}},"CONFIG":{"labels":{}},"rootfs":{"type":"layers","diff_ids":["$D"]}}',
    b'{"imageLayoutVersion":"1.0.0"}',
    fixture("compression")[3][0][2],
])
write("layout_json", "ambiguous-members.json", ambiguous)


# Hand-made layers.
def tar_bytes(members, fmt=tarfile.PAX_FORMAT, pax_headers=None):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt, pax_headers=pax_headers or {}) as t:
        for info, data in members:
            info.mtime = info.mtime or 1700000000
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return trim(out.getvalue())


def trim(tar):
    """The tar without the padding past its two end-of-archive blocks."""
    body = tar.rstrip(b"\0")
    end = -(-len(body) // 512) * 512
    return tar[:end] + b"\0" * 1024


def member(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, link="", uid=0, gid=0, pax=None, uname="", gname=""):
    i = tarfile.TarInfo(name)
    i.type = kind
    i.mode = mode
    i.linkname = link
    i.uid, i.gid, i.uname, i.gname = uid, gid, uname, gname
    i.size = len(data) if kind == tarfile.REGTYPE else 0
    if pax:
        i.pax_headers = pax
    return (i, data if kind == tarfile.REGTYPE else None)


CANARY = "/dev/shm/single-id-fuzz-canary"
escape = tar_bytes([
    member("abs", tarfile.SYMTYPE, link=CANARY, mode=0o777),
    member("abs/file", data=b"overwritten\n"),
    member("abs/dir/new", data=b"new\n"),
    member("hard", tarfile.LNKTYPE, link=CANARY + "/file"),
    member("up", tarfile.SYMTYPE, link="../canary", mode=0o777),
    member("up/file", data=b"overwritten\n"),
    member("../canary/dir/x", data=b"x\n"),
    member("d", tarfile.DIRTYPE, mode=0o755),
    member("d/.wh...", data=b""),
    member("up/.wh.file", data=b""),
    member("abs/.wh..wh..opq", data=b""),
])
escape2 = tar_bytes([
    member("up/dir/.wh.inner", data=b""),
    member("abs", tarfile.DIRTYPE, mode=0o4755),
    member("abs/.wh.file", data=b""),
    member("hard2", tarfile.LNKTYPE, link="hard"),
    member("d", tarfile.SYMTYPE, link="/", mode=0o777),
    member("d/dev/null", tarfile.CHRTYPE),
    member("fifo", tarfile.FIFOTYPE, mode=0o6644),
])

pax = tar_bytes([
    member("long/" + "n" * 150, data=b"long name\n", uid=1000, gid=1000, uname="user", gname="group",
           pax={"SCHILY.xattr.user.note": "v", "SCHILY.xattr.security.capability": "\x01\x00\x00\x02",
                "LIBARCHIVE.xattr.user.b%3Dx": "aGVsbG8=", "SCHILY.acl.access": "user::rwx",
                "uname": "other", "size": "10"}),
    member("link-" + "l" * 120, tarfile.SYMTYPE, link="t/" + "x" * 140, mode=0o777),
    member("hl", tarfile.LNKTYPE, link="long/" + "n" * 150, uid=4294967295),
    member("setid", data=b"#!/bin/sh\n", mode=0o6755, uid=0, gid=0,
           pax={"SCHILY.xattr.user.rootlesscontainers": "x", "mtime": "1700000000.5"}),
], pax_headers={"comment": "global", "uid": "7"})
gnu = tar_bytes([
    member("g/" + "L" * 130, data=b"gnu long\n", uid=8 ** 8 + 1, gid=2),
    member("g/sym", tarfile.SYMTYPE, link="/" + "K" * 120),
    member("/abs/name", data=b"abs\n"),
    member("blk", tarfile.BLKTYPE),
], fmt=tarfile.GNU_FORMAT)

# layer_entries: flag byte, then the layer (see fuzz_targets/layer_entries.rs).
entries = [
    ("absolute-names", 0, 0x00), ("devices", 1, 0x08), ("escape-hardlink", 0, 0x00), ("hardlinks", 0, 0x40),
    ("unknown-types", 1, 0x00), ("incomplete", 1, 0x00), ("setid", 0, 0x08), ("xattr-capability", 0, 0x08),
    ("fifo", 0, 0x02), ("whiteouts", 1, 0x40),
]
for name, i, flag in entries:
    write("layer_entries", name + ".bin", bytes([flag]) + fixture(name)[3][i][2])
for mt, raw, _ in fixture("compression")[3]:
    if mt.endswith("gzip"):
        write("layer_entries", "compression-gzip.bin", bytes([0x03]) + raw)
    elif mt.endswith("zstd"):
        write("layer_entries", "compression-zstd.bin", bytes([0x07]) + raw)
write("layer_entries", "pax.bin", bytes([0x08]) + pax)
write("layer_entries", "gnu.bin", bytes([0x00]) + gnu)



# unpack: flag byte, [u16 length of the first layer], the layers.
def two(flag, a, b):
    assert len(a) < 65536
    return bytes([flag | 1]) + struct.pack(">H", len(a)) + a + b


for name, flag in [("escape-dotdot", 0x00), ("escape-hardlink", 0x00), ("escape-symlink-absolute", 0x00),
                   ("escape-symlink-relative", 0x02), ("opaque", 0x00), ("hardlink-to-symlink", 0x00),
                   ("replace-in-place", 0x04), ("fifo-skipped", 0x18)]:
    layers = fixture(name)[3]
    if len(layers) == 2:
        write("unpack", name + ".bin", two(flag, layers[0][2], layers[1][2]))
    else:
        write("unpack", name + ".bin", bytes([flag]) + layers[0][2])
write("unpack", "canary.bin", two(0x00, escape, escape2))
write("unpack", "pax.bin", bytes([0x00]) + pax)
write("unpack", "gnu.bin", bytes([0x00]) + gnu)

# flatten_validate: flag byte, then the layer.
for name, i, flag in [("devices", 1, 0x00), ("setid", 0, 0x08), ("xattr-capability", 0, 0x10),
                      ("absolute-names", 0, 0x18), ("hardlinks", 0, 0x20),
                      ("unknown-types", 1, 0x00), ("fifo", 0, 0x01), ("policy-caution", 0, 0xe0)]:
    write("flatten_validate", name + ".bin", bytes([flag]) + fixture(name)[3][i][2])
write("flatten_validate", "pax.bin", bytes([0x00]) + pax)
write("flatten_validate", "gnu.bin", bytes([0x02]) + gnu)
# Raw headers for what tar writers will not produce: the shapes readers
# disagree on (0.2's layer-ambiguous).
def raw_header(name, typeflag, size=0, link=b"", magic=b"ustar\x0000"):
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"14533000000\0"
    h[156] = typeflag
    h[157:157 + len(link)] = link
    h[257:265] = magic
    h[148:156] = b"        "
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def padded(data):
    return data + b"\0" * (-len(data) % 512)


def raw_entry(name, typeflag, data=b"", link=b"", magic=b"ustar\x0000"):
    return raw_header(name, typeflag, len(data), link, magic) + padded(data)


def records(pairs):
    out = b""
    for k, v in pairs:
        body = b" " + k + b"=" + v + b"\n"
        n = len(body) + 1
        while len(str(n)) + len(body) != n:
            n += 1
        out += str(n).encode() + body
    return out


differentials = b"".join([
    raw_entry(b"././@LongLink", ord("L"), b"long/gnu-name\0"),
    raw_entry(b"PaxHeaders/x", ord("x"), records([(b"path", b"long/pax-name")])),
    raw_entry(b"short", ord("0"), b"data\n"),
    raw_entry(b"././@LongLink", ord("K"), b"/etc/shadow\0"),
    raw_entry(b"PaxHeaders/y", ord("x"), records([(b"linkpath", b"target")])),
    raw_entry(b"link", ord("2"), link=b"t"),
    raw_entry(b"PaxHeaders/z", ord("x"), records([(b"path", b"etc/passwd\0.orig"),
                                                (b"SCHILY.xattr.security.capability\0x", b"\1")])),
    raw_entry(b"nul", ord("0"), b"x"),
    raw_entry(b"pax_global", ord("g"), records([(b"path", b"everything"), (b"uid", b"7")])),
    raw_entry(b"PaxHeaders/a", ord("x"), records([(b"uid", b"1")])),
    raw_entry(b"PaxHeaders/b", ord("x"), records([(b"uid", b"2")])),
    raw_entry(b"twice", ord("0"), b""),
    raw_entry(b"dir-with-data/", ord("5"), b"not a directory's data"),
    raw_entry(b"slash/", ord("0"), b"file or directory?"),
    raw_entry(b"odd", ord("Z"), b"unknown type"),
    raw_entry(b"smuggled", ord("L"), b"renamed\0", magic=b"\0" * 8),
    raw_entry(b"innocent", ord("0"), b"hi\n"),
]) + b"\0" * 1024
write("layer_entries", "differentials.bin", bytes([0x00]) + differentials)
write("flatten_validate", "differentials.bin", bytes([0x00]) + differentials)
write("unpack", "differentials.bin", bytes([0x00]) + differentials)
for i, (mt, raw, tar) in enumerate(fixture("sparse")[3]):
    write("layer_entries", "sparse-%d.bin" % i, bytes([0x00]) + tar)
    write("unpack", "sparse-%d.bin" % i, bytes([0x00]) + tar)
    write("flatten_validate", "sparse-%d.bin" % i, bytes([0x00]) + tar)
for name in ["whiteout-invalid", "symlink-parent", "xattr-excluded"]:
    layers = fixture(name)[3]
    if len(layers) == 2:
        write("unpack", name + ".bin", two(0x00, layers[0][2], layers[1][2]))
    write("layer_entries", name + ".bin", bytes([0x00]) + layers[-1][2])
PY

count=$(find corpus -type f | wc -l)
size=$(du -cb corpus | tail -n 1 | cut -f1)
echo "seed corpus: $count files, $size bytes"
