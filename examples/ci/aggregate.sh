#!/usr/bin/env bash
# Gathers the reports of the Job in registry-job.yaml into one JSON document
# on stdout, once the Job has finished (condition Complete or Failed; see
# README.md beside this file):
#
#   bash examples/ci/aggregate.sh [JOB [CONFIGMAP]] > registry-report.json
#
# JOB defaults to single-id-registry and CONFIGMAP to single-id-images, in
# kubectl's current namespace. The document:
#
#   {"job": JOB,
#    "images": [{"index": N, "image": REF, "pod": NAME or null,
#                "exit_code": validate's exit status or null,
#                "status": "pass" | "fail" | "error",
#                "report": validate's JSON report or null,
#                "log": the container's log when it is not a report}],
#    "counts": {"images": N, "pass": N, "fail": N, "error": N}}
#
# Per index the newest pod that ended counts (earlier ones were retries).
# "pass" is exit status 0, "fail" 1 (errors found), "error" anything else:
# validate could not run, the fetch failed, or no pod ended.
#
# Exit status, as validate's: 0 every image passed, 1 some failed, 2 some
# could not be checked. Needs kubectl and jq.
set -euo pipefail
job=${1:-single-id-registry}
configmap=${2:-single-id-images}

images=$(kubectl get configmap "$configmap" -o json | jq -c '.data["images.txt"] | split("\n") | map(select(. != ""))')
# index TAB pod TAB exit code (empty when the container did not end), one
# line per index that has a pod that ended.
pods=$(kubectl get pods -l "job-name=$job" -o json | jq -r '
  .items
  | map(select(.status.phase == "Succeeded" or .status.phase == "Failed"))
  | group_by(.metadata.annotations["batch.kubernetes.io/job-completion-index"])
  | map(max_by(.metadata.creationTimestamp))[]
  | [.metadata.annotations["batch.kubernetes.io/job-completion-index"],
     .metadata.name,
     ((.status.containerStatuses // []) | map(select(.name == "validate"))[0].state.terminated.exitCode // "")]
  | @tsv')

tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT
entries=$tmp/entries
: > "$entries"
while IFS=$'\t' read -r index pod code; do
  [[ -n $index ]] || continue
  log=$(kubectl logs "$pod" -c validate 2>/dev/null || true)
  jq -n -c --argjson index "$index" --arg pod "$pod" --arg code "$code" --arg log "$log" '
    ($log | try fromjson catch null) as $report
    | {index: $index, pod: $pod,
       exit_code: (if $code == "" then null else ($code | tonumber) end),
       report: $report}
    + (if $report == null and $log != "" then {log: $log} else {} end)' >> "$entries"
done <<< "$pods"

jq -s --arg job "$job" --argjson images "$images" '
  (map({key: (.index | tostring), value: .}) | from_entries) as $by
  | [range(0; $images | length) as $i
     | ($by[$i | tostring] // {index: $i, pod: null, exit_code: null, report: null})
     | .image = $images[$i]
     | .status = (if .exit_code == 0 then "pass" elif .exit_code == 1 then "fail" else "error" end)]
  | {job: $job,
     images: .,
     counts: {images: length,
              pass: map(select(.status == "pass")) | length,
              fail: map(select(.status == "fail")) | length,
              error: map(select(.status == "error")) | length}}' "$entries" > "$tmp/summary"
cat -- "$tmp/summary"
exit "$(jq 'if .counts.error > 0 then 2 elif .counts.fail > 0 then 1 else 0 end' "$tmp/summary")"
