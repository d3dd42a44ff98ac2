#!/usr/bin/env bash
# What a shard budget costs in speed (issue 21): FIXED-128 and ESAPN on a
# stream at P ranks, without a budget, under one that binds and under one that
# never binds, interleaved round by round so the machine's drift hits all
# alike. Prints records/s per run and each budget's ratio to no budget (median
# over rounds).
#
#   scripts/bench-budget-speed.sh --data STREAM [--ranks 2] [--binding MIB] [--loose MIB]
#                                 [--rounds 3] [--models "fixed esapn"] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
data="" ranks=2 binding=1.24 loose=1000 rounds=3 models="fixed esapn" out=${TMPDIR:-/tmp}/esapn-budget-speed
while (($#)); do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --binding) binding=$2; shift 2 ;;
    --loose) loose=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "bench-budget-speed.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -f "$data" ] || { echo "bench-budget-speed.sh: --data STREAM: '$data' is not a stream" >&2; exit 2; }
B=${ESAPN_BIN:-$PWD/.build/release/esapn}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$out"
for round in $(seq 1 "$rounds"); do
  for model in $models; do
    for budget in none "$binding" "$loose"; do
      extra=(); [ "$budget" = none ] || extra=(--shard-budget "$budget")
      dir="$out/$model-$budget-r$round"
      rm -rf "$dir"
      mpirun --oversubscribe -np "$ranks" "$B" train --data "$data" --model "$model" "${extra[@]}" --quiet --output "$dir" >/dev/null
    done
  done
done
python3 - "$out" "$rounds" "$models" "$binding" "$loose" <<'PY'
import json, statistics, sys
out, rounds, models, binding, loose = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4], sys.argv[5]
for model in models:
    rate = {b: [json.load(open(f"{out}/{model}-{b}-r{r}/results.json"))["throughput"]["records_per_second"]
                for r in range(1, rounds + 1)] for b in ("none", binding, loose)}
    line = f"{model}: no budget " + "/".join(f"{x:.0f}" for x in rate["none"]) + " records/s"
    for b, name in ((binding, "binding"), (loose, "never binding")):
        ratios = [x / y for x, y in zip(rate[b], rate["none"])]
        line += f"; {name} {b} MiB " + "/".join(f"{x:.0f}" for x in rate[b]) + f" = {statistics.median(ratios):.3f}x"
    print(line)
PY
