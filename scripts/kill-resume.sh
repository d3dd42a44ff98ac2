#!/usr/bin/env bash
# Fault trials: a training run on P ranks with checkpoints is killed with
# SIGKILL (one rank, at a random moment after its first checkpoint); mpirun
# tears the job down; the run is resumed from the newest complete checkpoint
# and must end bit-identical to an uninterrupted run (batches.csv,
# by_frequency.csv, final_sizes.csv; results.json but throughput and memory).
#
#   scripts/kill-resume.sh [--trials 10] [--np 2] [--model esapn] [--data STREAM] [--work DIR] [--seed S]
#
# The default stream is real ml-100k (scripts/setup.sh fetches it). Prints one
# line per trial and exits non-zero if any fails.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=10 np=2 model=esapn data="" work=${TMPDIR:-/tmp}/esapn-kill-resume seed=$RANDOM
while (($#)); do
  case "$1" in
    --trials) trials=$2; shift 2 ;;
    --np) np=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "kill-resume.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
bin=${ESAPN_BIN:-$PWD/.build/release/esapn}
[ -x "$bin" ] || { echo "kill-resume.sh: no esapn at $bin: run scripts/setup.sh" >&2; exit 1; }
rm -rf "$work"; mkdir -p "$work"
if [ -z "$data" ]; then
  [ -f data/ml-100k/ml-100k.inter ] || { echo "kill-resume.sh: data/ml-100k/ml-100k.inter is missing: run scripts/setup.sh" >&2; exit 1; }
  data=$work/ml-100k.stream
  "$bin" prepare data/ml-100k/ml-100k.inter --output "$data" >/dev/null
fi
root=(); [ "$(id -u)" -ne 0 ] || root=(--allow-run-as-root)
over=(); (( np <= $(nproc) )) || over=(--oversubscribe)
train=(train --data "$data" --model "$model" --test-last 20000 --save-sizes --quiet)
mpi() { mpirun "${root[@]}" "${over[@]}" -np "$np" -x OPENBLAS_NUM_THREADS=1 "$bin" "$@"; }

mpi "${train[@]}" --output "$work/reference" >/dev/null
same() {  # same RUN: bit-identical to the reference
  for f in batches.csv by_frequency.csv final_sizes.csv; do cmp -s "$work/reference/$f" "$1/$f" || { echo "$f differs"; return 1; }; done
  python3 - "$work/reference/results.json" "$1/results.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
strip = lambda r: {k: v for k, v in r.items() if k not in ("throughput", "memory")}
sys.exit(0 if strip(a) == strip(b) else "results.json differs")
PY
}
RANDOM=$seed
failed=0
for t in $(seq 1 "$trials"); do
  run=$work/trial-$t ck=$work/trial-$t-checkpoints
  mpi "${train[@]}" --output "$run" --checkpoint-dir "$ck" --checkpoint-every 7 >"$run.log" 2>&1 &
  job=$!
  # Wait for the first complete checkpoint, then a random 0–1.5 s more.
  for _ in $(seq 1 600); do ls "$ck"/checkpoint-*/manifest.json >/dev/null 2>&1 && break; sleep 0.05; done
  sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", r % 150 / 100 }')"
  # The ranks (argv[0] is the binary; mpirun's command line is not matched).
  victim=$(pgrep -f "^$bin train .*--output $run( |$)" | sort -n | sed -n "$((RANDOM % np + 1))p" || true)
  if [ -z "$victim" ]; then
    wait "$job" || true
    echo "trial $t: the run ended before it could be killed (not counted as a failure; rerun with a larger stream)"
    continue
  fi
  kill -9 "$victim"
  start=$(date +%s)
  status=0; wait "$job" || status=$?
  down=$(( $(date +%s) - start ))
  newest=$(ls -d "$ck"/checkpoint-* | sort | tail -1)
  if [ "$status" -eq 0 ] || [ -f "$run/results.json" ]; then
    echo "trial $t: FAIL: the killed run exited $status and/or wrote results"; failed=$((failed + 1)); continue
  fi
  mpi "${train[@]}" --output "$run-resumed" --resume "$ck" >/dev/null 2>"$run-resumed.log" || {
    echo "trial $t: FAIL: resume failed: $(tail -2 "$run-resumed.log")"; failed=$((failed + 1)); continue; }
  if why=$(same "$run-resumed"); then
    echo "trial $t: killed rank pid $victim, job down in ${down} s, resumed from $(basename "$newest"): bit-identical"
  else
    echo "trial $t: FAIL: $why"; failed=$((failed + 1))
  fi
done
echo "kill-resume: $((trials - failed)) of $trials trials passed ($np ranks, $model, seed $seed)"
exit $(( failed > 0 ))
