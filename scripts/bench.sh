#!/usr/bin/env bash
# Benchmark: `single-id validate`, `unpack` and `flatten` against standard
# tools (gzip, pigz, zstd, bsdtar, GNU tar, umoci, and skopeo copy from a
# local registry for validate docker://), measured side by side in one run,
# so the ratios hold even though absolute times drift on a shared machine.
#
#   bash scripts/bench.sh          build, generate data (or reuse it), measure
#   bash scripts/bench.sh clean    remove the work directory
#
# Environment:
#   BENCH_DIR    work directory for the test data. Default
#                /dev/shm/single-id-bench when /dev/shm has room (tmpfs, so
#                disk speed stays out of the numbers), else
#                /tmp/single-id-bench. Data is reused while the marker file
#                .complete in it matches the scale and the generator.
#   BENCH_RUNS   runs of every command (default 3); the table shows the
#                median wall and CPU time and the largest peak RSS.
#   BENCH_SCALE  multiplier on the data size (default 1.0: a 1 GiB layer with
#                200,000 small files, and a 4 x 256 MiB layer image).
#                BENCH_SCALE=0.05 is a quick smoke run.
#
# Needs gzip, pigz, zstd, bsdtar (Debian libarchive-tools), GNU tar, python3,
# /usr/bin/time (Debian time), umoci, skopeo, docker-registry, curl and
# cargo. Missing Debian packages are installed when running as root,
# otherwise the script stops and names them.
#
# Exit status: 0 when every measurement ran, even if a target is missed (this
# measures, it does not test); non-zero when a tool is missing or a command
# fails.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
gen=$repo/scripts/bench/gen.py

die() { echo "bench: error: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }

# --- options -----------------------------------------------------------------

scale=${BENCH_SCALE:-1.0}
runs=${BENCH_RUNS:-3}
if ! [[ $scale =~ ^[0-9]*\.?[0-9]+$ ]] || ! awk -v s="$scale" 'BEGIN { exit !(s > 0) }'; then
  die "BENCH_SCALE must be a positive number, not '$scale'"
fi
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, not '$runs'"

# Scaled integer: scaled BASE -> round(BASE * scale), at least 1.
scaled() { awk -v b="$1" -v s="$scale" 'BEGIN { v = int(b * s + 0.5); print (v < 1 ? 1 : v) }'; }

# Room wanted for the data: ~1.2 GiB of compressed layers at scale 1, with margin.
# Data, plus room for one unpacked copy of the main layer, and the main
# layer twice more: in the local registry and in skopeo's copy of it.
need_kib=$(scaled $((4 * 1024 * 1024)))
if [[ -n ${BENCH_DIR:-} ]]; then
  dir=$BENCH_DIR
elif [[ -d /dev/shm ]] && (($(df -Pk /dev/shm | awk 'NR == 2 { print $4 }') > need_kib)); then
  dir=/dev/shm/single-id-bench
else
  dir=/tmp/single-id-bench
fi

if [[ ${1:-} == clean ]]; then
  say "removing $dir"
  rm -rf -- "$dir"
  exit 0
fi
[[ $# == 0 ]] || die "unknown argument '$1' (usage: bash scripts/bench.sh [clean])"

# --- tools -------------------------------------------------------------------

# command:debian-package; /usr/bin/time by path, since bash's `time` keyword
# cannot report peak memory.
required=(gzip:gzip pigz:pigz zstd:zstd bsdtar:libarchive-tools tar:tar python3:python3 /usr/bin/time:time umoci:umoci
  skopeo:skopeo docker-registry:docker-registry curl:curl)
have() { if [[ $1 == /* ]]; then [[ -x $1 ]]; else command -v "$1" >/dev/null 2>&1; fi; }
missing=()
for pair in "${required[@]}"; do
  have "${pair%%:*}" || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing: ${missing[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    die "missing Debian packages: ${missing[*]} (install them: sudo apt-get install ${missing[*]})"
  fi
fi
for pair in "${required[@]}"; do
  have "${pair%%:*}" || die "${pair%%:*} is still missing after installing ${pair#*:}"
done
tar --version 2>/dev/null | grep -q 'GNU tar' || die "tar is not GNU tar (Debian package tar)"
command -v cargo >/dev/null || die "cargo is missing (install Rust)"
gz=(pigz -n -6)

# --- build -------------------------------------------------------------------

say "building the release binary"
cargo build --release --locked -p single-id >&2
bin=$repo/target/release/single-id
[[ -x $bin ]] || die "no binary at $bin after the build"

# --- data --------------------------------------------------------------------

gz_type=application/vnd.oci.image.layer.v1.tar+gzip
zst_type=application/vnd.oci.image.layer.v1.tar+zstd
main_size=$(scaled $((1 << 30)))  main_files=$(scaled 200000)
part_size=$(scaled $((1 << 28)))  part_files=$(scaled 50000)
# The marker names everything the data depends on; any change regenerates.
marker="scale=$scale gz=${gz[0]} gen=$(sha256sum "$gen" | cut -c1-16)"

# layer SEED SIZE FILES LARGE NAME [zstd]: one tar stream, piped straight into
# the compressor(s); the tar itself is never stored.
layer() {
  local seed=$1 size=$2 files=$3 large=$4 name=$5 with_zstd=${6:-}
  local out=$dir/layers/$name
  say "  layer $name: $(awk -v b="$size" 'BEGIN { printf "%.0f", b / 1048576 }') MiB tar, $files small files"
  if [[ -n $with_zstd ]]; then
    rm -f "$out.fifo" && mkfifo "$out.fifo"
    zstd -3 -q -c <"$out.fifo" >"$out.tar.zst" &
    local zpid=$!
    python3 "$gen" layer --seed "$seed" --size "$size" --files "$files" --large "$large" \
      --stats "$out.json" | tee "$out.fifo" | "${gz[@]}" >"$out.tar.gz"
    wait "$zpid" || die "zstd failed on $name"
    rm -f "$out.fifo"
  else
    python3 "$gen" layer --seed "$seed" --size "$size" --files "$files" --large "$large" \
      --stats "$out.json" | "${gz[@]}" >"$out.tar.gz"
  fi
}

gen_start=$SECONDS
if [[ -f $dir/.complete && $(<"$dir/.complete") == "$marker" ]]; then
  say "reusing data in $dir"
  gen_note="reused"
else
  say "generating data in $dir (scale $scale)"
  mkdir -p "$dir"
  rm -rf -- "$dir/.complete" "$dir/layers" "$dir/images"
  mkdir -p "$dir/layers" "$dir/images"
  layer 1 "$main_size" "$main_files" 5 main zstd
  for p in 1 2 3 4; do
    layer $((10 + p)) "$part_size" "$part_files" 2 "part$p"
  done
  L=$dir/layers I=$dir/images
  python3 "$gen" layout "$I/gzip-1" --layer "$L/main.tar.gz:$gz_type:$L/main.json"
  python3 "$gen" layout "$I/zstd-1" --layer "$L/main.tar.zst:$zst_type:$L/main.json"
  parts=()
  for p in 1 2 3 4; do
    parts+=(--layer "$L/part$p.tar.gz:$gz_type:$L/part$p.json")
    python3 "$gen" layout "$I/gzip-4-part$p" --layer "$L/part$p.tar.gz:$gz_type:$L/part$p.json"
  done
  python3 "$gen" layout "$I/gzip-4" "${parts[@]}"
  echo "$marker" >"$dir/.complete"
  gen_note="$((SECONDS - gen_start)) s"
  say "generated in $gen_note"
fi

# --- measuring ---------------------------------------------------------------

tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT
declare -A walls cpus rss   # key -> space-separated values, one per run
keys=()                     # table order
warnings=()

# timed KEY KIND CMD...: run CMD once under /usr/bin/time with its output
# discarded, and record wall, user+sys CPU and peak RSS. KIND "tool" must exit
# 0; KIND "validate" may exit 0 or 1 (findings), warns on 2 (could not run)
# and fails on anything else (a crash).
timed() {
  local key=$1 kind=$2; shift 2
  local status=0
  /usr/bin/time -f '%e %U %S %M' -o "$tmp/time" "$@" >/dev/null 2>"$tmp/stderr" || status=$?
  if [[ $kind == tool && $status != 0 ]] || [[ $kind == validate && $status -gt 2 ]]; then
    cat "$tmp/stderr" >&2
    die "'$*' exited with status $status"
  fi
  if [[ $kind == validate && $status == 2 ]]; then
    warnings+=("WARNING: '$key' exited with status 2 (could not run): $(head -c 300 "$tmp/stderr")")
  fi
  # GNU time puts a "Command exited with non-zero status" line first; the
  # numbers are on the last line.
  local e u s m
  read -r e u s m < <(tail -n 1 "$tmp/time")
  LAST_WALL=$e LAST_CPU=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }') LAST_RSS=$m
  record "$key" "$LAST_WALL" "$LAST_CPU" "$LAST_RSS"
}

record() {
  local key=$1
  [[ -v walls[$key] ]] || keys+=("$key")
  walls[$key]+="$2 " cpus[$key]+="$3 " rss[$key]+="$4 "
}

median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END {
  printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxof() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | tail -n 1; }

L=$dir/layers I=$dir/images
# Layer paths shown in the table, relative to the work directory.
gzf=layers/main.tar.gz zsf=layers/main.tar.zst

# One untimed validation per image first: catches a broken layout before
# minutes of timing, and shows what the validator reported.
say "checking the images"
summaries=()
for img in gzip-1 zstd-1 gzip-4 gzip-4-part1 gzip-4-part2 gzip-4-part3 gzip-4-part4; do
  status=0
  "$bin" validate "$I/$img" >"$tmp/out" 2>"$tmp/err" || status=$?
  ((status <= 2)) || { cat "$tmp/err" >&2; die "single-id validate $img crashed (status $status)"; }
  ((status < 2)) || warnings+=("WARNING: validate $img exited with status 2 (could not run): $(head -c 300 "$tmp/err")")
  summaries+=("$img: exit $status, $(grep -v '^[[:space:]]*$' "$tmp/out" | tail -n 1)")
done

# A registry on a free loopback port (plain HTTP: TLS would cost both sides
# alike), holding gzip-1, for validate docker:// against skopeo copy.
reg_dir=$dir/registry
rm -rf "$reg_dir"; mkdir -p "$reg_dir"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$reg_dir" "$port" >"$reg_dir/config.yml"
docker-registry serve "$reg_dir/config.yml" >"$reg_dir/log" 2>&1 &
reg_pid=$!
trap 'kill "$reg_pid" 2>/dev/null; rm -rf -- "$tmp" "$reg_dir"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/v2/" >/dev/null || { cat "$reg_dir/log" >&2; die "the local registry did not start"; }
remote=docker://127.0.0.1:$port/bench:gzip-1
say "pushing gzip-1 to $remote"
skopeo copy -q --dest-tls-verify=false "oci:$I/gzip-1:latest" "$remote" >&2

bench_start=$SECONDS
# Runs are interleaved (every command once per round) so drift on the shared
# machine hits all commands alike.
for ((run = 1; run <= runs; run++)); do
  say "round $run of $runs"
  timed "gzip -dc $gzf" tool gzip -dc "$L/main.tar.gz"
  if have pigz; then timed "pigz -dc $gzf" tool pigz -dc "$L/main.tar.gz"; fi
  timed "zstd -dc $zsf" tool zstd -dc "$L/main.tar.zst"
  timed "bsdtar -tvf $gzf" tool bsdtar -tvf "$L/main.tar.gz"
  timed "tar -tvzf $gzf" tool tar -tvzf "$L/main.tar.gz"
  timed "tar --zstd -tvf $zsf" tool tar --zstd -tvf "$L/main.tar.zst"
  timed "sha256sum $gzf" tool sha256sum "$L/main.tar.gz"
  timed "single-id validate gzip-1" validate "$bin" validate "$I/gzip-1"
  timed "single-id validate zstd-1" validate "$bin" validate "$I/zstd-1"
  timed "single-id validate gzip-4" validate "$bin" validate "$I/gzip-4"
  # The four one-layer images back to back: the cost of validating the
  # layers one after another, for the parallelism ratio.
  sw=0 sc=0 sr=0
  for p in 1 2 3 4; do
    timed "single-id validate gzip-4-part$p" validate "$bin" validate "$I/gzip-4-part$p"
    sw=$(awk -v a="$sw" -v b="$LAST_WALL" 'BEGIN { print a + b }')
    sc=$(awk -v a="$sc" -v b="$LAST_CPU" 'BEGIN { print a + b }')
    if ((LAST_RSS > sr)); then sr=$LAST_RSS; fi
  done
  record "single-id validate gzip-4-part1..4 (sum)" "$sw" "$sc" "$sr"
  # Unpacking the main layer into the same tmpfs, each into a fresh
  # directory, removed (untimed) after each run.
  out=$dir/unpacked
  rm -rf "$out"; mkdir "$out"
  timed "tar -xzf $gzf" tool tar -xzf "$L/main.tar.gz" -C "$out"
  rm -rf "$out"
  timed "single-id unpack gzip-1" tool "$bin" unpack "$I/gzip-1" "$out"
  rm -rf "$out"
  timed "umoci unpack --rootless gzip-1" tool umoci unpack --rootless --image "$I/gzip-1:latest" "$out"
  rm -rf "$out"
  # From the registry: validate reads the stream once; skopeo copy only
  # stores it (verifying its digest), which is the least any check that
  # first copies the image must spend.
  timed "skopeo copy docker:// oci: (gzip-1)" tool skopeo copy -q --src-tls-verify=false "$remote" "oci:$out:latest"
  rm -rf "$out"
  timed "single-id validate docker:// (gzip-1)" validate "$bin" validate --tls-verify=false "$remote"
  rm -rf "$out"; mkdir "$out"
  timed "tar --zstd -xf $zsf" tool tar --zstd -xf "$L/main.tar.zst" -C "$out"
  rm -rf "$out"
  timed "single-id unpack zstd-1" tool "$bin" unpack "$I/zstd-1" "$out"
  rm -rf "$out"
  # Flattening: recompressing the main layer with the standard tools, to a
  # file on the same tmpfs as flatten writes its layout to.
  mkdir "$out"
  timed "pigz -dc | pigz -c ($gzf)" tool sh -c 'pigz -dc "$1" | pigz -c >"$2"' - "$L/main.tar.gz" "$out/l"
  timed "gzip -dc | gzip -c ($gzf)" tool sh -c 'gzip -dc "$1" | gzip -c >"$2"' - "$L/main.tar.gz" "$out/l"
  timed "gzip -dc | zstd -T0 -c ($gzf)" tool sh -c 'gzip -dc "$1" | zstd -q -T0 -c >"$2"' - "$L/main.tar.gz" "$out/l"
  timed "zstd -dc | zstd -T0 -c ($zsf)" tool sh -c 'zstd -dc "$1" | zstd -q -T0 -c >"$2"' - "$L/main.tar.zst" "$out/l"
  rm -rf "$out"
  flat() { timed "$1" tool "$bin" flatten "${@:2}" "$out"; rm -rf "$out"; }
  flat "single-id flatten gzip-1 (to gzip)" "$I/gzip-1"
  flat "single-id flatten gzip-1 (to zstd)" --compression zstd "$I/gzip-1"
  flat "single-id flatten zstd-1 (to zstd)" "$I/zstd-1"
  flat "single-id flatten gzip-4" "$I/gzip-4"
  sw=0 sc=0 sr=0
  for p in 1 2 3 4; do
    flat "single-id flatten gzip-4-part$p" "$I/gzip-4-part$p"
    sw=$(awk -v a="$sw" -v b="$LAST_WALL" 'BEGIN { print a + b }')
    sc=$(awk -v a="$sc" -v b="$LAST_CPU" 'BEGIN { print a + b }')
    if ((LAST_RSS > sr)); then sr=$LAST_RSS; fi
  done
  record "single-id flatten gzip-4-part1..4 (sum)" "$sw" "$sc" "$sr"
done
bench_secs=$((SECONDS - bench_start))

# --- report ------------------------------------------------------------------

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
json() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
size_mib() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }

cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
fstype=$(stat -f -c %T "$dir")
main_tar=$(json "$L/main.json" size)
main_gz=$(stat -c %s "$L/main.tar.gz") main_zst=$(stat -c %s "$L/main.tar.zst")
part_tar=$(json "$L/part1.json" size) part_gz=$(stat -c %s "$L/part1.tar.gz")

echo
echo "## single-id validate, unpack and flatten benchmark"
echo
echo "Machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}, $mem_gib GiB RAM, Linux $(uname -r);" \
  "work dir $dir on $fstype$([[ $fstype == tmpfs ]] && echo ' (tmpfs)' || echo ' (not tmpfs)')."
echo "Data (scale $scale): main layer $(size_mib "$main_tar") MiB tar," \
  "$(json "$L/main.json" files) files ($(json "$L/main.json" other_owner) not owned by 0:0)," \
  "gzip $(size_mib "$main_gz") MiB ($(awk -v a="$main_tar" -v b="$main_gz" 'BEGIN { printf "%.2f", a / b }')x, ${gz[*]})," \
  "zstd $(size_mib "$main_zst") MiB ($(awk -v a="$main_tar" -v b="$main_zst" 'BEGIN { printf "%.2f", a / b }')x, zstd -3);" \
  "gzip-4: 4 layers of $(size_mib "$part_tar") MiB tar, $(json "$L/part1.json" files) files each, ~$(size_mib "$part_gz") MiB gzip each."
echo "Times: median of $runs interleaved runs; CPU is user+sys; RSS is the largest peak of the runs."
echo
echo "| command | wall s | CPU s | peak RSS MiB |"
echo "| --- | ---: | ---: | ---: |"
for key in "${keys[@]}"; do
  [[ $key == *gzip-4-part[1-4] ]] && continue  # shown as their sum
  echo "| \`${key//|/\\|}\` | $(median "${walls[$key]}") | $(median "${cpus[$key]}") | $(mib "$(maxof "${rss[$key]}")") |"
done

# ratio LABEL NUMERATOR-KEY DENOMINATOR-KEY TARGET: one row of the targets table.
ratio() {
  local a b v verdict
  a=$(median "${walls[$2]}") b=$(median "${walls[$3]}")
  v=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  if [[ -z ${4:-} ]]; then
    echo "| ${1//|/\\|} | $v | (none) | |"  # measured for the record
    return
  fi
  verdict=$(awk -v v="$v" -v t="$4" 'BEGIN { print (v <= t ? "PASS" : "FAIL") }')
  echo "| ${1//|/\\|} | $v | <= $4 | $verdict |"
}
echo
echo "| target | measured | goal | result |"
echo "| --- | ---: | ---: | --- |"
ratio "validate gzip-1 / gzip -dc" "single-id validate gzip-1" "gzip -dc $gzf" 1.0
ratio "validate zstd-1 / zstd -dc" "single-id validate zstd-1" "zstd -dc $zsf" 1.5
ratio "validate gzip-4 / sum(validate gzip-4-part1..4)" "single-id validate gzip-4" \
  "single-id validate gzip-4-part1..4 (sum)" 0.65
ratio "validate docker:// / skopeo copy docker:// oci: (gzip-1)" "single-id validate docker:// (gzip-1)" \
  "skopeo copy docker:// oci: (gzip-1)" 1.0
ratio "unpack gzip-1 / tar -xzf" "single-id unpack gzip-1" "tar -xzf $gzf"
ratio "unpack zstd-1 / tar --zstd -xf" "single-id unpack zstd-1" "tar --zstd -xf $zsf" 0.6
ratio "flatten gzip-1 to gzip / pigz -dc | pigz -c" "single-id flatten gzip-1 (to gzip)" "pigz -dc | pigz -c ($gzf)" 0.8
ratio "flatten gzip-1 to gzip / gzip -dc | gzip -c" "single-id flatten gzip-1 (to gzip)" "gzip -dc | gzip -c ($gzf)"
ratio "flatten gzip-1 to zstd / gzip -dc | zstd -T0 -c" "single-id flatten gzip-1 (to zstd)" \
  "gzip -dc | zstd -T0 -c ($gzf)" 1.0
ratio "flatten zstd-1 / zstd -dc | zstd -T0 -c" "single-id flatten zstd-1 (to zstd)" "zstd -dc | zstd -T0 -c ($zsf)"
ratio "flatten gzip-4 / sum(flatten gzip-4-part1..4)" "single-id flatten gzip-4" \
  "single-id flatten gzip-4-part1..4 (sum)" 0.6
ratio "unpack gzip-1 / umoci unpack --rootless" "single-id unpack gzip-1" "umoci unpack --rootless gzip-1"
for key in "${keys[@]}"; do
  [[ $key == single-id* && $key != *"(sum)" ]] || continue
  m=$(mib "$(maxof "${rss[$key]}")")
  verdict=$(awk -v m="$m" 'BEGIN { print (m <= 64 ? "PASS" : "FAIL") }')
  echo "| peak RSS \`${key#single-id }\` | $m MiB | <= 64 MiB | $verdict |"
done

echo
echo "Validator results (untimed check run):"
printf -- '- %s\n' "${summaries[@]}"
echo
echo "Generation: $gen_note; timed runs: $bench_secs s ($runs rounds)."
if ((${#warnings[@]})); then
  echo
  printf '%s\n' "${warnings[@]}" | sort -u
fi
