#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 60), two at a
# time (FUZZ_JOBS), starting from the committed seeds in corpus/<target>/.
# Exits non-zero on any crash, timeout or out-of-memory, naming the input
# that caused it; prints the executions per target.
#
#   bash fuzz/run.sh [SECONDS]
#
# Works on a stable toolchain: cargo-fuzz passes -Z flags to rustc, which
# RUSTC_BOOTSTRAP=1 allows. No sanitizer by default (FUZZ_SANITIZER=address
# turns AddressSanitizer on: it works too, at about a fifth of the speed,
# and the library has almost no unsafe code for it to watch). Debug
# assertions and overflow checks are on either way.
#
# New inputs go to fuzz/work/<target>/ (ignored by git), crashes to
# fuzz/artifacts/<target>/. Reproduce one with
#   fuzz/target/<triple>/release/<target> fuzz/artifacts/<target>/crash-...
# (SINGLE_ID_FUZZ_DUMP=DIR also writes the layer tars it built to DIR).
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-60}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: fuzz/run.sh [SECONDS]" >&2; exit 2; }
jobs=${FUZZ_JOBS:-2}
sanitizer=${FUZZ_SANITIZER:-none}
targets=(layout_json layer_entries unpack flatten_validate)
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: cargo-fuzz is missing; installing it (cargo install cargo-fuzz --locked)" >&2
  cargo install cargo-fuzz --locked || {
    echo "error: cargo-fuzz is not installed and could not be installed" >&2
    exit 1
  }
fi
cargo fuzz --version

start=$(date +%s)
mkdir -p work
# Scratch directories of this run (tmpfs when there is one), removed at the
# end, crashes' leftovers included.
scratch_base=/dev/shm
[[ -d $scratch_base && -w $scratch_base ]] || scratch_base=${TMPDIR:-/tmp}
SINGLE_ID_FUZZ_TMP=$(mktemp -d "$scratch_base/single-id-fuzz-run.XXXXXX")
export SINGLE_ID_FUZZ_TMP
trap 'rm -rf "$SINGLE_ID_FUZZ_TMP"' EXIT
if ! cargo fuzz build --sanitizer "$sanitizer" >work/build.log 2>&1; then
  tail -n 40 work/build.log >&2
  echo "error: the fuzz targets did not build (cargo fuzz build --sanitizer $sanitizer; log in fuzz/work/build.log)" >&2
  exit 1
fi
host=$(rustc -vV | sed -n 's/^host: //p')
bin=target/$host/release
for t in "${targets[@]}"; do
  [[ -x $bin/$t ]] || { echo "error: the fuzz target $t was not built" >&2; exit 1; }
done
echo "built in $(($(date +%s) - start)) s; running each target for $seconds s, $jobs at a time" >&2

max_len() {
  case $1 in
    layout_json) echo 16384 ;;
    *) echo 32768 ;;
  esac
}
dict() {
  case $1 in
    layout_json) echo dict/json.dict ;;
    *) echo dict/tar.dict ;;
  esac
}

run_one() {
  local t=$1 rc=0
  mkdir -p "work/$t" "artifacts/$t"
  # The first directory receives new inputs; the seeds are only read.
  "$bin/$t" "work/$t" "corpus/$t" \
    -max_total_time="$seconds" -max_len="$(max_len "$t")" -dict="$(dict "$t")" \
    -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" >"work/$t.log" 2>&1 || rc=$?
  echo "$rc" >"work/$t.rc"
}

pids=()
for t in "${targets[@]}"; do
  rm -f "work/$t.rc"
  run_one "$t" &
  pids+=($!)
  if ((${#pids[@]} >= jobs)); then
    wait "${pids[0]}"
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p"; done

status=0
printf '%-18s %12s %8s  %s\n' target executions exec/s result
for t in "${targets[@]}"; do
  log=work/$t.log
  rc=$(cat "work/$t.rc" 2>/dev/null || echo '?')
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  if [[ $rc == 0 ]]; then
    printf '%-18s %12s %8s  %s\n' "$t" "${runs:-?}" "${speed:-?}" ok
  else
    printf '%-18s %12s %8s  %s\n' "$t" "${runs:-?}" "${speed:-?}" "FAILED (exit $rc)"
    status=1
  fi
done
for t in "${targets[@]}"; do
  [[ $(cat "work/$t.rc" 2>/dev/null) == 0 ]] && continue
  log=work/$t.log
  echo >&2
  echo "=== $t FAILED; full log: fuzz/$log" >&2
  grep -E -B2 -A14 'panicked at|^==[0-9]+== ERROR' "$log" | head -n 60 >&2 || tail -n 30 "$log" >&2
  for i in $(grep -oE 'Test unit written to [^ ]+' "$log" | awk '{print $NF}'); do
    echo "crashing input: fuzz/$i" >&2
    echo "reproduce:      fuzz/$bin/$t fuzz/$i" >&2
  done
done
echo "fuzzing took $(($(date +%s) - start)) s in total" >&2
exit $status
