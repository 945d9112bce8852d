#!/usr/bin/env bash
# Runs every adapter over the fixtures and writes conformance/RESULTS.md
# (with conformance/RESULTS-NOTES.md, written by hand, appended).
# Needs the real tools (umoci, GNU tar, bsdtar, podman, buildah,
# oci-image-tool; charliecloud, skopeo and docker-registry for the ch-image
# adapter); .ci/run installs them. A missing tool fails loudly. Exits
# non-zero when an adapter is broken (the harness exits 2 at its probe
# image) and when the reference consumer (single-id) misses any MUST or
# SHOULD.
set -euo pipefail
cd "$(dirname "$0")/.."
# SINGLE_ID_BIN and CONFORMANCE_HARNESS name binaries already built (CI
# passes the ones its tests built, sparing a second, LTO build); otherwise
# both are built here in release.
if [[ -n ${SINGLE_ID_BIN:-} && -n ${CONFORMANCE_HARNESS:-} ]]; then
  harness=$CONFORMANCE_HARNESS
else
  cargo build --release --locked -q -p single-id -p single-id-conformance
  SINGLE_ID_BIN=$PWD/target/release/single-id
  harness=target/release/single-id-conformance
fi
export SINGLE_ID_BIN
out=target/conformance-results
mkdir -p "$out"

# First line of a tool's --version; never fails (a version is only shown).
version() { { "$@" 2>&1 || true; } | head -n 1 | tr -d '|' || true; }
declare -A versions=(
  [single-id]="$(version "$SINGLE_ID_BIN" --version)"
  [umoci]="$(version umoci --version)"
  [gnu-tar]="$(version tar --version)"
  [gnu-tar-p]="$(version tar --version)"
  [bsdtar]="$(version bsdtar --version)"
  [podman]="$(version podman --version)"
  [buildah]="$(version buildah --version)"
  [oci-image-tool]="$(version oci-image-tool --version)"
)
adapters=(single-id umoci gnu-tar gnu-tar-p bsdtar podman buildah oci-image-tool)
if [[ ${WITH_CH_IMAGE:-1} == 1 ]]; then
  adapters+=(ch-image)
  versions[ch-image]="ch-image $(USER=${USER:-nobody} version /usr/bin/python3 /usr/bin/ch-image --version)"
fi

args=()
for a in "${adapters[@]}"; do
  echo "conformance: running adapter $a" >&2
  status=0
  "$harness" run --adapter "conformance/adapters/$a" --fixtures conformance/fixtures \
    --spec-url ../spec/single-id-images.md --format json >"$out/$a.json" || status=$?
  ((status <= 1)) || { echo "error: adapter $a is broken or the harness could not run it (status $status; the message above says why)" >&2; exit 1; }
  args+=("$a=$out/$a.json=${versions[$a]}")
done
python3 conformance/results.py conformance/RESULTS.md conformance/RESULTS-NOTES.md "${args[@]}"
echo "conformance: wrote conformance/RESULTS.md" >&2

# The reference consumer must pass every MUST and SHOULD.
python3 - "$out/single-id.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
t = s["checks"]
bad = sum(t[l][k] for l in ("MUST", "SHOULD") for k in ("fail", "skip", "blocked"))
if bad:
    sys.exit(f"error: single-id fails or skips {bad} MUST/SHOULD results; see {sys.argv[1]}")
r = s["requirements"]
print(f"single-id: {r['MUST']['pass']} MUST and {r['SHOULD']['pass']} SHOULD requirements pass")
PY
