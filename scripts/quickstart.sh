#!/usr/bin/env bash
# The main job on the embedded default: sets everything up (scripts/setup.sh),
# prepares real MovieLens-100k in time order, trains FIXED and ESAPN on the
# binary and multiclass tasks with 2 MPI ranks (last 20% of the stream as the
# "test" part), and prints the paper's Table 1 and Table 2 for these runs.
# Runs land in runs/quickstart/; `python3 scripts/plot.py runs/quickstart/* --output runs/quickstart/plots`
# draws the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bin=.build/release/esapn
stream=data/ml-100k/ml-100k.stream
[ -f "$stream" ] || "$bin" prepare data/ml-100k/ml-100k.inter --output "$stream"
"$bin" inspect "$stream"
echo
out=runs/quickstart
mkdir -p "$out"
for task in binary multiclass; do
  for model in fixed esapn; do
    echo "== $model, $task, 2 ranks"
    bash launch/local.sh 2 --data "$stream" --model "$model" --task "$task" --test-last 20000 \
      --output "$out/$model-$task" --quiet
  done
done
echo
"$bin" report "$out"/fixed-binary "$out"/esapn-binary "$out"/fixed-multiclass "$out"/esapn-multiclass
