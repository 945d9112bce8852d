#!/usr/bin/env bash
# Runs every test of the workspace. The tests drive real third-party tools
# (umoci, skopeo); when one is missing this script installs the Debian
# packages if it runs as root, and otherwise stops with the list to install.
# It never skips a test because a tool is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

# command:debian-package
required=(umoci:umoci skopeo:skopeo)

missing=()
for pair in "${required[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing test tools: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    echo "error: the tests need these Debian packages: ${missing[*]}" >&2
    echo "       install them (sudo apt-get install ${missing[*]}) and run again" >&2
    exit 1
  fi
fi
for pair in "${required[@]}"; do
  command -v "${pair%%:*}" >/dev/null || { echo "error: ${pair%%:*} is still missing after installing ${pair#*:}" >&2; exit 1; }
done

# The last line totals every test binary's "test result" line, so that a
# reader (or CI) sees one count for the whole run.
set -o pipefail
cargo test --workspace --locked --all-targets "$@" 2>&1 | awk '
  { print }
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  END { printf "\ntotal: %d passed, %d failed\n", p, f }'
