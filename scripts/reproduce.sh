#!/usr/bin/env bash
# Reproduces the paper's comparison: FIXED, DARTS, AutoEmb and ESAPN on the
# binary and multiclass tasks, on real MovieLens-100k (time order, last 20%
# of the stream as the "test" part) and on a prefix of the synthetic ml-20m
# preset, with NP MPI ranks. Writes OUT/<dataset>/<model>-<task>/ run
# folders, OUT/report.md (Table 1, Table 2, memory per shard) and OUT/plots/.
#
#   scripts/reproduce.sh [--out DIR] [--ranks NP] [--synthetic-records N] [--seeds "0 1 2"] [--skip-synthetic]
set -euo pipefail
cd "$(dirname "$0")/.."

out=results
ranks=2
synthetic_records=1000000
seeds="0"
synthetic=1
while (($#)); do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --synthetic-records) synthetic_records=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --skip-synthetic) synthetic=0; shift ;;
    *) echo "reproduce.sh: unknown option '$1' (see the header of this script)" >&2; exit 2 ;;
  esac
done

bash scripts/setup.sh
bin=.build/release/esapn
mkdir -p "$out"

ml100k=data/ml-100k/ml-100k.stream
[ -f "$ml100k" ] || "$bin" prepare data/ml-100k/ml-100k.inter --output "$ml100k"
datasets=("ml-100k:$ml100k:20000")
if ((synthetic)); then
  synth=data/synth-ml-20m-$synthetic_records.stream
  [ -f "$synth" ] || "$bin" synth --preset ml-20m --records "$synthetic_records" --seed 1 --output "$synth"
  datasets+=("synth-ml-20m:$synth:$((synthetic_records / 5))")
fi

runs=()
for entry in "${datasets[@]}"; do
  IFS=: read -r name stream test_last <<<"$entry"
  for task in binary multiclass; do
    for model in fixed darts autoemb esapn; do
      for seed in $seeds; do
        dir="$out/$name/$model-$task-seed$seed"
        echo "== $name: $model, $task, seed $seed, $ranks ranks"
        bash launch/local.sh "$ranks" --data "$stream" --model "$model" --task "$task" --seed "$seed" \
          --test-last "$test_last" --output "$dir" --save-sizes --quiet
        runs+=("$dir")
      done
    done
  done
done

"$bin" report "${runs[@]}" --output "$out/report.md"
python3 scripts/plot.py "${runs[@]}" --output "$out/plots"
echo "wrote $out/report.md and $out/plots/"
