#!/usr/bin/env bash
# Shows that a change leaves a run's outputs as they were: runs every model x
# task on real ml-100k at 1 and 2 ranks with two binaries (e.g. a pinned build
# of the previous main, and this tree's), then compares batches.csv,
# by_frequency.csv, final_sizes.csv byte for byte, and results.json without
# the fields that describe the machine rather than the run (timing, RSS,
# hosts, the stream's path). --training-only compares what training decided
# and scored, leaving out the memory figures (results.json's memory section,
# batches.csv's resident_bytes column): for a change to how memory is held.
#
#   scripts/same-outputs.sh --before OLD_BINARY [--after NEW_BINARY] [--out DIR] [--training-only]
#                           [--models "fixed esapn darts autoemb"] [--tasks "binary multiclass"] [--ranks "1 2"]
#
# Prints one line per run and "N passed, N failed"; exits 1 on any difference.
set -euo pipefail
cd "$(dirname "$0")/.."

before="" after=".build/release/esapn" out="runs/same-outputs"
models="fixed esapn darts autoemb" tasks="binary multiclass" ranks="1 2" training_only=0
while (($#)); do
  case "$1" in
    --before) before="$2"; shift 2 ;;
    --after) after="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --tasks) tasks="$2"; shift 2 ;;
    --ranks) ranks="$2"; shift 2 ;;
    --training-only) training_only=1; shift ;;
    *) echo "same-outputs.sh: unknown option '$1' (known: --before --after --out --training-only --models --tasks --ranks)" >&2; exit 2 ;;
  esac
done
[ -n "$before" ] || { echo "same-outputs.sh: --before OLD_BINARY is required (a build of the version to compare with)" >&2; exit 2; }
for b in "$before" "$after"; do
  [ -x "$b" ] || { echo "same-outputs.sh: $b is not an executable esapn; build it first" >&2; exit 2; }
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
stream=data/ml-100k/ml-100k.stream
[ -f "$stream" ] || { bash scripts/fetch-ml100k.sh >/dev/null; "$after" prepare data/ml-100k/ml-100k.inter --output "$stream" >/dev/null; }
mkdir -p "$out"

# results.json without what describes the machine or the clock.
filter() {
  python3 - "$1" "$training_only" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r.pop("throughput", None); r.pop("profile", None)
if sys.argv[2] == "1": r.pop("memory", None)
r.get("options", {}).pop("stream_path", None)
for m in r.get("memory", {}).get("per_rank", []):
    for k in ("host", "rss_anon_bytes", "rss_anon_growth_bytes", "peak_rss_bytes", "resident_growth_bytes"):
        m.pop(k, None)
print(json.dumps(r, indent=1, sort_keys=True))
PY
}

run() {  # binary folder P model task
  local bin="$1" dir="$2" np="$3"; shift 3
  rm -rf "$dir"
  local args=(train --data "$stream" --model "$1" --task "$2" --test-last 20000 --save-sizes --quiet --output "$dir")
  if [ "$np" = 1 ]; then "$bin" "${args[@]}" >/dev/null
  else mpirun --allow-run-as-root --oversubscribe -np "$np" "$bin" "${args[@]}" >/dev/null; fi
}

passed=0 failed=0
for model in $models; do
  for task in $tasks; do
    for np in $ranks; do
      name="$model-$task-p$np"
      run "$before" "$out/before/$name" "$np" "$model" "$task"
      run "$after" "$out/after/$name" "$np" "$model" "$task"
      differ=()
      for f in by_frequency.csv final_sizes.csv; do
        cmp -s "$out/before/$name/$f" "$out/after/$name/$f" || differ+=("$f")
      done
      if [ "$training_only" = 1 ]; then
        cmp -s <(cut -d, -f1-5 "$out/before/$name/batches.csv") <(cut -d, -f1-5 "$out/after/$name/batches.csv") || differ+=("batches.csv")
      else
        cmp -s "$out/before/$name/batches.csv" "$out/after/$name/batches.csv" || differ+=("batches.csv")
      fi
      cmp -s <(filter "$out/before/$name/results.json") <(filter "$out/after/$name/results.json") || differ+=("results.json")
      if ((${#differ[@]})); then
        echo "DIFFERS   $name: ${differ[*]}"; failed=$((failed + 1))
      else
        echo "identical $name"; passed=$((passed + 1))
      fi
    done
  done
done
echo "same-outputs: $passed passed, $failed failed"
((failed == 0))
