#!/usr/bin/env python3
"""Test data for scripts/bench.sh.

  gen.py layer --seed S --size BYTES --files N --large K --stats OUT.json
      writes one deterministic tar stream to stdout (pipe it into the
      compressors, so the uncompressed tar never touches the disk) and
      records its size, entry counts and sha256 (the diff_id) in OUT.json.

  gen.py layout DIR --layer FILE:MEDIATYPE:STATS.json [--layer ...]
      writes an OCI image layout whose layers are the given compressed
      files (hardlinked into blobs/ when possible, else copied).

Same arguments give byte-identical output: every random choice comes from
random.Random(seed), and timestamps are fixed.
"""

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import sys
import tarfile

BLOCK = 512
RECORD = 20 * BLOCK  # tar pads the archive to a whole record, like GNU tar
MTIME = 1_700_000_000


# ---------------------------------------------------------------------------
# Content pools. Files are slices of two pools built once per stream: word
# soup (compresses about 2.7x with gzip, like source code and text) and
# random bytes (incompressible, like already-compressed assets). Slicing
# keeps generation fast; the pools are bigger than gzip's 32 KiB window and
# zstd -3's 2 MiB window, so the slices do not make the data look repetitive.

def text_pool(rng, size):
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    freq = [12, 9, 8, 8, 7, 7, 6, 6, 4, 4, 3, 3, 2.5, 2.5, 2, 2, 2, 1.5, 1, 1,
            0.8, 0.8, 0.2, 0.2, 0.2, 0.1]
    vocab = ["".join(rng.choices(letters, freq, k=rng.randint(2, 10))) for _ in range(2048)]
    vocab += [str(rng.randint(0, 10 ** rng.randint(1, 6))) for _ in range(256)]
    zipf = [1 / (i + 1) for i in range(len(vocab))]  # a few words are common, most are rare
    seps = [" "] * 20 + ["\n", "_", ".", "(", ")", ", ", "=", "/", "-", ": "]
    n = size // 6 + 1
    words = rng.choices(vocab, zipf, k=n)
    gaps = rng.choices(seps, k=n)
    pool = "".join(w + g for w, g in zip(words, gaps)).encode()
    return pool[:size]


class Out:
    """Buffered stdout writer that hashes and counts what it writes."""

    def __init__(self, stream):
        self.stream = stream
        self.hash = hashlib.sha256()
        self.size = 0
        self.buf = bytearray()

    def write(self, data):
        self.buf += data
        if len(self.buf) >= 1 << 20:
            self.flush()

    def flush(self):
        if self.buf:
            self.hash.update(self.buf)
            self.stream.write(self.buf)
            self.size += len(self.buf)
            self.buf = bytearray()


def padded(n):
    return (n + BLOCK - 1) // BLOCK * BLOCK


def header(name, kind, size=0, mode=0o644, uid=0, gid=0, linkname="", mtime=MTIME):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = size
    ti.mode = mode
    ti.mtime = mtime
    ti.linkname = linkname
    ti.uid, ti.gid = uid, gid
    ti.uname = ti.gname = "root" if uid == 0 else ""
    return ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def gen_layer(args):
    rng = random.Random(args.seed)
    text = memoryview(text_pool(rng, 24 << 20))
    noise = memoryview(rng.randbytes(8 << 20))
    top = f"srv/bench{args.seed}"

    # Plan the small files first so the large ones can fill up to --size.
    # Sizes are log-uniform over 200 B .. 8 KiB (mean about 2.1 KiB).
    n = args.files
    small = [int(math.exp(rng.uniform(math.log(200), math.log(8192)))) for _ in range(n)]
    per_dir = 100
    ndirs = (n + per_dir - 1) // per_dir
    fanout = max(1, math.isqrt(ndirs))  # two levels: top/aNN/bNN/
    dirs = {f"{top}/a{d // fanout:03d}" for d in range(ndirs)} | {
        f"{top}/a{d // fanout:03d}/b{d % fanout:03d}" for d in range(ndirs)}
    links = n // 1000  # a symlink per 1000 files
    hard = n // 5000   # and a hardlink per 5000
    big_dir = f"{top}/big"
    used = (BLOCK * (len(dirs) + 3 + links + hard)  # srv, top, big_dir
            + sum(BLOCK + padded(s) for s in small) + 2 * BLOCK)
    k = args.large
    spare = max(0, args.size - used - BLOCK * k)
    shares = [rng.uniform(0.5, 1.5) for _ in range(k)]
    large = [padded(int(spare * s / sum(shares))) - rng.randrange(0, 400) for s in shares]
    # Large files go at evenly spaced points among the small ones.
    large_at = {(j + 1) * n // (k + 1): j for j in range(k)}

    out = Out(sys.stdout.buffer)
    counts = {"files": 0, "dirs": 0, "symlinks": 0, "hardlinks": 0, "other_owner": 0}

    def add_dir(path):
        out.write(header(path, tarfile.DIRTYPE, mode=0o755))
        counts["dirs"] += 1

    def add_file(path, size, mode, uid=0, binary=False):
        out.write(header(path, tarfile.REGTYPE, size=size, mode=mode, uid=uid, gid=uid))
        pool = noise if binary else text
        left = size
        while left:
            step = min(left, 1 << 16)
            off = rng.randrange(0, len(pool) - step)
            out.write(pool[off:off + step])
            left -= step
        out.write(bytes(padded(size) - size))
        counts["files"] += 1
        if uid:
            counts["other_owner"] += 1

    def add_large(j):
        if not counts.get("big_dir"):
            add_dir(big_dir)
            counts["big_dir"] = 1
        size = large[j]
        out.write(header(f"{big_dir}/blob{j}.bin", tarfile.REGTYPE, size=size))
        # 64 KiB chunks, one in eight incompressible: "semi-compressible".
        left = size
        while left:
            step = min(left, 1 << 16)
            pool = noise if rng.random() < 0.12 else text
            off = rng.randrange(0, len(pool) - step)
            out.write(pool[off:off + step])
            left -= step
        out.write(bytes(padded(size) - size))
        counts["files"] += 1

    add_dir("srv")
    add_dir(top)
    others = {(2 * j + 1) * n // 8 for j in range(4)}
    current = None
    last_file = None
    for i, size in enumerate(small):
        if i in large_at:
            add_large(large_at[i])
        d = i // per_dir
        a, b = f"{top}/a{d // fanout:03d}", f"{top}/a{d // fanout:03d}/b{d % fanout:03d}"
        if b != current:
            if current is None or not current.startswith(a + "/"):
                add_dir(a)
            add_dir(b)
            current = b
            last_file = None
        binary = i % 10 == 3
        name = f"{b}/f{i:06d}.{'bin' if binary else 'txt'}"
        mode = 0o755 if i % 11 == 0 else 0o644
        # Four files owned by someone else, at any scale (real images have some).
        uid = 1000 if i in others else 0
        add_file(name, size, mode, uid=uid, binary=binary)
        if i % 1000 == 500:
            out.write(header(f"{b}/link{i:06d}", tarfile.SYMTYPE, mode=0o777,
                             linkname=os.path.basename(name)))
            counts["symlinks"] += 1
        if i % 5000 == 2550 and last_file:
            out.write(header(f"{b}/hard{i:06d}", tarfile.LNKTYPE, linkname=last_file))
            counts["hardlinks"] += 1
        last_file = name
    for j in sorted(set(range(k)) - set(large_at.values())):
        add_large(j)  # only when there are fewer small files than large ones
    counts.pop("big_dir", None)

    # End of archive: two zero blocks, then pad to a whole record.
    out.write(bytes(2 * BLOCK))
    out.flush()
    tail = (-out.size) % RECORD
    out.write(bytes(tail))
    out.flush()
    sys.stdout.buffer.flush()
    stats = {"size": out.size, "diff_id": "sha256:" + out.hash.hexdigest(), **counts}
    with open(args.stats, "w") as f:
        json.dump(stats, f, indent=1)


# ---------------------------------------------------------------------------
# OCI layout

KEY = "io.github.supercontainers.id-flattening"


def put_blob(root, data=None, path=None):
    """Store a blob; from bytes, or by hardlinking an existing file."""
    blobs = os.path.join(root, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    if data is not None:
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        size = len(data)
    else:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        digest = h.hexdigest()
        dest = os.path.join(blobs, digest)
        if not os.path.exists(dest):
            try:
                os.link(path, dest)
            except OSError:
                shutil.copyfile(path, dest)
        size = os.path.getsize(path)
    return {"digest": "sha256:" + digest, "size": size}


def gen_layout(args):
    root = args.dir
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root)
    layers, diff_ids = [], []
    for spec in args.layer:
        path, media_type, stats = spec.split(":", 2)
        with open(stats) as f:
            diff_ids.append(json.load(f)["diff_id"])
        layers.append({"mediaType": media_type, **put_blob(root, path=path)})
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"User": "", "Labels": {KEY: "flattened"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    cfg = put_blob(root, data=json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
        "layers": layers,
        "annotations": {KEY: "flattened"},
    }
    man = put_blob(root, data=json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", **man,
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    }
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    lp = sub.add_parser("layer")
    lp.add_argument("--seed", type=int, required=True)
    lp.add_argument("--size", type=int, required=True, help="target tar size in bytes")
    lp.add_argument("--files", type=int, required=True, help="number of small files")
    lp.add_argument("--large", type=int, required=True, help="number of large files")
    lp.add_argument("--stats", required=True)
    op = sub.add_parser("layout")
    op.add_argument("dir")
    op.add_argument("--layer", action="append", required=True, metavar="FILE:MEDIATYPE:STATS")
    args = p.parse_args()
    if args.cmd == "layer":
        if sys.stdout.isatty():
            sys.exit("gen.py layer: refusing to write a tar stream to a terminal")
        gen_layer(args)
    else:
        gen_layout(args)


if __name__ == "__main__":
    main()
