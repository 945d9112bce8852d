#!/usr/bin/env bash
# Rebuilds examples/hello, the bundled example image, with umoci (run as
# root so every file is owned 0:0, as a flattened image requires).
# The committed copy is what README.md validates; rebuilding changes its
# digests (umoci records timestamps), so only do it to change the example.
set -euo pipefail
cd "$(dirname "$0")"
# The provisional key (spec: ANNOTATION-KEY), until image-spec adopts one.
key=io.github.supercontainers.id-flattening
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf hello
umoci init --layout hello
umoci new --image hello:latest
# unpack/repack rather than `umoci insert`: umoci 0.4.7's insert writes a
# layer whose tar stream stops short of its final padding and end blocks.
umoci unpack --image hello:latest "$work/bundle"
root=$work/bundle/rootfs
mkdir -p "$root/etc" "$root/usr/local/bin"
printf 'NAME="single-id example"\n' > "$root/etc/os-release"
printf '#!/bin/sh\necho "hello from a flattened image"\n' > "$root/usr/local/bin/hello"
chmod 0755 "$root/usr/local/bin/hello"
umoci repack --image hello:latest "$work/bundle"
umoci config --image hello:latest \
  --config.entrypoint /usr/local/bin/hello \
  --manifest.annotation "$key=flattened" \
  --config.label "$key=flattened"
umoci gc --layout hello
