#!/usr/bin/env bash
# Runs every test of the workspace. The tests drive real third-party tools
# (umoci, skopeo, GNU tar, bsdtar, Go's archive/tar, Charliecloud,
# debootstrap); when one is missing this script installs the Debian packages
# if it runs as root, and otherwise stops with the list to install. It never
# skips a test because a tool is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

# command:debian-package
required=(umoci:umoci skopeo:skopeo npm:npm tar:tar bsdtar:libarchive-tools go:golang-go zstd:zstd
  debootstrap:debootstrap ch-image:charliecloud docker-registry:docker-registry curl:curl openssl:openssl
  /usr/bin/python3:python3 /usr/bin/time:time unshare:util-linux buildah:buildah podman:podman
  jq:jq groff:groff-base)

missing=()
for pair in "${required[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
# scripts/no-openat2 needs libseccomp's bindings for the system Python.
/usr/bin/python3 -c 'import seccomp' 2>/dev/null || missing+=(python3-seccomp)
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
/usr/bin/python3 -c 'import seccomp' 2>/dev/null || { echo "error: the Python module seccomp is still missing after installing python3-seccomp" >&2; exit 1; }

# The official SARIF 2.1.0 schema, for the tests that check --format sarif.
# npm is the only registry that ships it (inside @microsoft/jest-sarif); the
# file is pinned by checksum and cached under target/.
sarif_schema=target/test-data/sarif-2.1.0-rtm.5.json
sarif_sha256=2d99159ae54a3eea97f81781cff48780548657c35949f4b7f25e99a2ba4de4f8
if ! echo "$sarif_sha256  $sarif_schema" | sha256sum -c --status 2>/dev/null; then
  command -v npm >/dev/null || { echo "error: npm is needed to fetch the SARIF schema (Debian package npm)" >&2; exit 1; }
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent @microsoft/jest-sarif@1.0.0-beta.0 >/dev/null && tar -xzf ./*.tgz package/lib/schemas/sarif-2.1.0-rtm.5.json)
  mkdir -p "$(dirname "$sarif_schema")"
  mv "$work/package/lib/schemas/sarif-2.1.0-rtm.5.json" "$sarif_schema"
  rm -rf "$work"
  echo "$sarif_sha256  $sarif_schema" | sha256sum -c --status || { echo "error: the fetched SARIF schema does not match its pinned checksum" >&2; exit 1; }
fi
export SINGLE_ID_SARIF_SCHEMA=$PWD/$sarif_schema

# Microsoft's SARIF validator, whose GitHub code scanning rules every SARIF
# log the tests write must pass: the npm package of its self-contained
# Linux build, pinned by checksum and cached under target/.
multitool_dir=target/test-data/sarif-multitool-5.7.0
multitool_tgz=target/test-data/microsoft-sarif-multitool-linux-5.7.0.tgz
multitool_sha256=27d8e3e96dde578a23b7c45035b8d741fece5731e2700aa068015b8c44d1514e
if [[ ! -x $multitool_dir/Sarif.Multitool ]]; then
  if ! echo "$multitool_sha256  $multitool_tgz" | sha256sum -c --status 2>/dev/null; then
    mkdir -p target/test-data
    (cd target/test-data && npm pack --silent @microsoft/sarif-multitool-linux@5.7.0 >/dev/null)
    echo "$multitool_sha256  $multitool_tgz" | sha256sum -c --status || { echo "error: the fetched SARIF multitool does not match its pinned checksum" >&2; exit 1; }
  fi
  rm -rf "$multitool_dir" && mkdir -p "$multitool_dir"
  tar -xzf "$multitool_tgz" -C "$multitool_dir" --strip-components=1
  chmod +x "$multitool_dir/Sarif.Multitool"
fi
DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 "$multitool_dir/Sarif.Multitool" --version >/dev/null 2>&1 || { echo "error: Microsoft's SARIF validator ($multitool_dir/Sarif.Multitool) does not run here" >&2; exit 1; }
export SINGLE_ID_SARIF_MULTITOOL=$PWD/$multitool_dir/Sarif.Multitool

# Every test once; then unpack's tests and the conformance suite's single-id
# adapter again with openat2 refused by a real seccomp filter (ENOSYS, as on
# RHEL 8's Linux 4.18), so unpack notices and resolves names itself, and
# again with that resolution forced by SINGLE_ID_RESOLVE=portable. The last
# line totals every test binary's "test result" line, so that a reader (or
# CI) sees one count for the whole run.
# (Filters of the one integration-test binary, validator/tests/it/.)
unpack_tests=(unpack:: unpack_tree:: adversarial:: limits:: properties:: regressions::)
set -o pipefail
{
  status=0
  cargo test --workspace --locked --all-targets --no-fail-fast "$@" || status=1
  # --all-targets leaves out doctests: the library's documented examples.
  cargo test --workspace --locked --doc --no-fail-fast || status=1
  # The reruns run the integration-test binary the first cargo test built,
  # from the package directory as cargo would: cargo itself, started under
  # the filter or with other flags, rebuilt it (minutes of CI time).
  it_bin=$(cargo test --workspace --locked --all-targets --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "it" and .executable != null) | .executable' | tail -n 1)
  if [[ -x $it_bin ]]; then
    (cd validator && ../scripts/no-openat2 "$it_bin" "${unpack_tests[@]}") || status=1
    (cd validator && SINGLE_ID_RESOLVE=portable "$it_bin" "${unpack_tests[@]}") || status=1
  else
    echo "error: the integration tests' binary was not found after cargo test" >&2
    status=1
  fi
  # The first cargo test built both binaries (target/debug); building them
  # again with `cargo build` would unify other features and rebuild.
  for bin in single-id single-id-conformance; do
    [[ -x target/debug/$bin ]] || { echo "error: target/debug/$bin was not built by cargo test" >&2; status=1; }
  done
  for mode in no-openat2 portable; do
    echo "conformance: single-id adapter, names resolved without openat2 ($mode)"
    if [[ $mode == no-openat2 ]]; then
      SINGLE_ID_BIN=$PWD/target/debug/single-id scripts/no-openat2 \
        target/debug/single-id-conformance run --adapter conformance/adapters/single-id || status=1
    else
      SINGLE_ID_BIN=$PWD/target/debug/single-id SINGLE_ID_RESOLVE=portable \
        target/debug/single-id-conformance run --adapter conformance/adapters/single-id || status=1
    fi
  done
  exit $status
} 2>&1 | awk '
  { print }
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  END { printf "\ntotal: %d passed, %d failed\n", p, f }'
