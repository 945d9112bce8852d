#!/usr/bin/python3
"""One-defect test adapters: the reference consumer (adapters/single-id),
then one change to DEST or to the policy that a real consumer with one
particular defect would make. Each adapter script in this directory runs
`defects.py NAME LAYOUT REF DEST`; its header names the requirement the
defect violates. The defects work on any fixture: they read the image's
layers to find the entries they concern and leave every other fixture as
the reference consumer left it.

Runs as the adapter's user (65534 when the harness is root), so it uses
/usr/bin/python3 and nothing outside the standard library."""

import io
import json
import os
import posixpath
import stat
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "..", "adapters", "single-id")
KEYS = ("io.github.supercontainers.id-flattening", "org.opencontainers.image.id-flattening")


def blob(layout, digest):
    return os.path.join(layout, "blobs", *digest.split(":", 1))


def image(layout, ref):
    """(index descriptor, manifest, config) of REF."""
    index = json.load(open(os.path.join(layout, "index.json")))
    desc = next(d for d in index["manifests"] if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref)
    manifest = json.load(open(blob(layout, desc["digest"])))
    config = json.load(open(blob(layout, manifest["config"]["digest"])))
    return desc, manifest, config


def layers(layout, ref):
    """Every layer as a list of (TarInfo, data), lowest first; a layer
    that cannot be read completely gives what could be read."""
    _, manifest, _ = image(layout, ref)
    out = []
    for l in manifest["layers"]:
        raw = open(blob(layout, l["digest"]), "rb").read()
        if l["mediaType"].endswith("+zstd"):
            raw = subprocess.run(["zstd", "-dc"], input=raw, capture_output=True).stdout
        entries = []
        try:
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as t:
                for m in t:
                    known = m.type in tarfile.SUPPORTED_TYPES
                    data = t.extractfile(m).read() if m.isfile() or not known else b""
                    entries.append((m, data))
        except (tarfile.TarError, EOFError, OSError, Exception):
            pass
        out.append(entries)
    return out


def entries(layout, ref):
    return [e for layer in layers(layout, ref) for e in layer]


def norm(name):
    parts = []
    for c in name.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(c)
    return "/".join(parts)


def inside(dest, name):
    n = norm(name)
    return None if n is None else os.path.join(dest, n)


def writable(path, f):
    """Runs f() with the parent directory of path made writable for a
    moment, as a consumer working around read-only directories would."""
    parent = os.path.dirname(path)
    mode = os.lstat(parent).st_mode
    os.chmod(parent, stat.S_IMODE(mode) | 0o700)
    try:
        f()
    finally:
        os.chmod(parent, stat.S_IMODE(mode))


def walk(dest):
    for root, dirs, files in os.walk(dest):
        for n in dirs + files:
            yield os.path.join(root, n)


def values(layout, ref):
    """Every value under either key at every place, as a consumer reads them."""
    desc, manifest, config = image(layout, ref)
    places = [desc.get("annotations", {}), manifest.get("annotations", {}), (config.get("config") or {}).get("Labels") or {}]
    return [p[k] for p in places for k in KEYS if k in p]


def refuse(why):
    print(f"refusing: {why}; naming the key {KEYS[0]}", file=sys.stderr)
    sys.exit(1)


def main():
    name, layout, ref, dest = sys.argv[1:5]
    env = dict(os.environ)
    consent = env.get("SINGLE_ID_CONFIRM") == "1"

    # Defects of the policy: decided before unpacking.
    if name == "ignores-annotation":
        env["SINGLE_ID_CONFIRM"] = "1"
    elif name == "asks-always" and not consent:
        refuse("this consumer asks before flattening any image")
    elif name == "empty-is-unknown" and not consent and any(v == "" for v in values(layout, ref)):
        refuse("an empty value of the annotation, read as an unknown value")
    elif name == "unmarked-is-caution" and not consent and not [v for v in values(layout, ref) if v]:
        refuse("no annotation, read as caution")
    elif name == "key-case-insensitive" and not consent:
        desc, manifest, config = image(layout, ref)
        places = [desc.get("annotations", {}), manifest.get("annotations", {}), (config.get("config") or {}).get("Labels") or {}]
        if any(k.lower() == KEYS[1] and v == "caution" for p in places for k, v in p.items()):
            refuse("caution under a key that matches the annotation's but for case")
    elif name == "no-zstd":
        _, manifest, _ = image(layout, ref)
        if any(l["mediaType"].endswith("+zstd") for l in manifest["layers"]):
            print("error: zstd layers are not supported", file=sys.stderr)
            sys.exit(1)
    elif name == "aborts-on-device-links":
        es = entries(layout, ref)
        devices = {norm(m.name) for m, _ in es if m.ischr() or m.isblk()}
        if any(m.islnk() and norm(m.linkname) in devices for m, _ in es):
            print("error: a hard link to a device", file=sys.stderr)
            sys.exit(1)

    status = subprocess.run([REFERENCE, layout, ref, dest], env=env).returncode
    if name == "exits-zero":
        sys.exit(0)
    if status != 0:
        sys.exit(status)
    if name in ("ignores-annotation", "asks-always", "empty-is-unknown", "unmarked-is-caution",
                "key-case-insensitive", "no-zstd", "aborts-on-device-links"):
        sys.exit(0)

    es = entries(layout, ref)
    if name == "escapes":
        open(os.path.join(dest, "..", "canary", "pwned"), "w").write("pwned\n")
    elif name == "applies-umask":
        for p in walk(dest):
            if not os.path.islink(p):
                os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) & ~0o022)
    elif name == "keeps-setid":
        for m, _ in es:
            p = inside(dest, m.name)
            if m.isfile() and m.mode & 0o6000 and p and os.path.isfile(p) and not os.path.islink(p):
                os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) | (m.mode & 0o6000))
    elif name == "drops-sticky":
        for p in walk(dest):
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) & ~0o1000)
    elif name == "directories-0755":
        for p in walk(dest):
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o755)
    elif name == "resets-mtime":
        for p in walk(dest):
            if os.path.isfile(p) and not os.path.islink(p):
                os.utime(p)
    elif name == "device-placeholders":
        for m, _ in es:
            p = inside(dest, m.name)
            if (m.ischr() or m.isblk()) and p and os.path.isdir(os.path.dirname(p)) and not os.path.lexists(p):
                writable(p, lambda: open(p, "w").close())
    elif name == "fifo-placeholders":
        for m, _ in es:
            p = inside(dest, m.name)
            if m.isfifo() and p and os.path.isdir(os.path.dirname(p)):
                def put():
                    if os.path.lexists(p):
                        os.unlink(p)
                    open(p, "w").close()
                writable(p, put)
    elif name == "skips-fifos":
        for p in walk(dest):
            if stat.S_ISFIFO(os.lstat(p).st_mode):
                writable(p, lambda: os.unlink(p))
    elif name == "keeps-whiteouts":
        for m, _ in es:
            p = inside(dest, m.name)
            base = posixpath.basename(m.name.rstrip("/"))
            if base.startswith(".wh.") and p and os.path.isdir(os.path.dirname(p)) and not os.path.lexists(p):
                writable(p, lambda: open(p, "w").close())
    elif name == "ignores-opaque":
        ls = layers(layout, ref)
        for i, layer in enumerate(ls):
            for m, _ in layer:
                if posixpath.basename(m.name) != ".wh..wh..opq":
                    continue
                d = norm(posixpath.dirname(m.name))
                for lower in ls[:i]:
                    for lm, data in lower:
                        n = norm(lm.name)
                        p = os.path.join(dest, n) if n else None
                        if lm.isfile() and n and n.startswith(d + "/") and os.path.isdir(os.path.dirname(p)) and not os.path.lexists(p):
                            writable(p, lambda: open(p, "wb").write(data))
    elif name == "copies-hardlinks":
        for m, _ in es:
            p = inside(dest, m.name)
            if m.islnk() and p and os.path.lexists(p) and not os.path.islink(p) and os.path.isfile(p):
                def copy():
                    data = open(p, "rb").read() if os.access(p, os.R_OK) else b""
                    mode = stat.S_IMODE(os.lstat(p).st_mode)
                    os.unlink(p)
                    open(p, "wb").write(data)
                    os.chmod(p, mode)
                writable(p, copy)
    elif name == "rewrites-absolute-symlinks":
        for p in walk(dest):
            if os.path.islink(p) and os.readlink(p).startswith("/"):
                rel = os.path.relpath(os.path.join(dest, os.readlink(p).lstrip("/")), os.path.dirname(p))
                writable(p, lambda: (os.unlink(p), os.symlink(rel, p)))
    elif name == "drops-dangling-symlinks":
        for p in list(walk(dest)):
            if os.path.islink(p) and not os.path.exists(p):
                writable(p, lambda: os.unlink(p))
    elif name == "drops-absolute-names":
        for m, _ in es:
            p = inside(dest, m.name)
            if m.name.startswith("/") and p and os.path.lexists(p) and not os.path.isdir(p):
                writable(p, lambda: os.unlink(p))
    elif name == "drops-dotdot-names":
        for m, _ in es:
            p = inside(dest, m.name)
            if ".." in m.name.split("/") and p and os.path.lexists(p) and not os.path.isdir(p):
                writable(p, lambda: os.unlink(p))
    elif name == "strips-dotdot":
        for m, data in es:
            if m.isfile() and norm(m.name) is None:
                n = "/".join(c for c in m.name.split("/") if c not in ("", ".", ".."))
                p = os.path.join(dest, n)
                if n and os.path.isdir(os.path.dirname(p)):
                    writable(p, lambda: open(p, "wb").write(data))
    elif name == "drops-large-ids":
        for m, _ in es:
            p = inside(dest, m.name)
            if (m.uid > 0o7777777 or m.gid > 0o7777777) and p and os.path.lexists(p) and not os.path.isdir(p):
                writable(p, lambda: os.unlink(p))
    elif name == "empties-readonly-files":
        for m, _ in es:
            p = inside(dest, m.name)
            if m.isfile() and not m.mode & 0o200 and p and os.path.isfile(p) and not os.path.islink(p):
                mode = stat.S_IMODE(os.lstat(p).st_mode)
                os.chmod(p, mode | 0o600)
                open(p, "w").close()
                os.chmod(p, mode)
    elif name == "truncates-sparse":
        for m, data in es:
            p = inside(dest, m.name)
            if m.issparse() and p and os.path.isfile(p):
                sparse_data = sum(n for _, n in (m.sparse or []))
                os.truncate(p, sparse_data)
    elif name == "unknown-as-files":
        # What GNU tar and Python's tarfile do with a typeflag they do not know.
        for m, data in es:
            p = inside(dest, m.name)
            if m.type not in tarfile.SUPPORTED_TYPES and p and os.path.isdir(os.path.dirname(p)):
                writable(p, lambda: open(p, "wb").write(data))
    elif name in ("applies-excluded-xattrs", "applies-acls", "drops-user-xattrs", "applies-capability"):
        for m, _ in es:
            p = inside(dest, m.name)
            if not p or not os.path.lexists(p) or os.path.islink(p):
                continue
            for k, v in m.pax_headers.items():
                if not k.startswith("SCHILY.xattr."):
                    continue
                attr = k[len("SCHILY.xattr."):]
                value = v.encode("utf-8", "surrogateescape")
                if name == "applies-excluded-xattrs" and attr.startswith("user."):
                    os.setxattr(p, attr, value)
                elif name == "applies-acls" and attr.startswith("system.posix_acl"):
                    os.setxattr(p, attr, value)
                elif name == "applies-capability" and attr == "security.capability":
                    # Only root in a user namespace may set it: what podman
                    # does in its single-ID namespace.
                    subprocess.run(["unshare", "-U", "-r", "/usr/bin/python3", "-c",
                                    "import os,sys; os.setxattr(sys.argv[1], 'security.capability', bytes.fromhex(sys.argv[2]))",
                                    p, value.hex()], check=True)
        if name == "drops-user-xattrs":
            for p in walk(dest):
                if not os.path.islink(p):
                    for a in os.listxattr(p, follow_symlinks=False):
                        if a.startswith("user."):
                            os.removexattr(p, a, follow_symlinks=False)
    elif name != "reference":
        print(f"defects.py: unknown defect {name}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
