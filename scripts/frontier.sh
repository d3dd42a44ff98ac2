#!/usr/bin/env bash
# Accuracy against memory per shard (issue 21, docs/budget.md): on one stream
# at P ranks, over seeds, runs FIXED at every candidate width, FIXED-W under
# the shard budgets (eviction only, as HierarchicalKV and TorchRec bound a
# table), ESAPN without a budget and under them, and DARTS; then prints
# `esapn report`'s frontier table and draws it (scripts/plot.py:
# frontier.png, MiB per shard on a log axis, seed bands; memory_over_stream.png,
# ESAPN's resident bytes per batch with and without a budget).
#
#   scripts/frontier.sh --data STREAM [--ranks 2] [--seeds "0 1 2"] [--percent "5 10 20"]
#                       [--budgets "MIB …"] [--widths "2 4 8 16 64 128"] [--fixed-widths "2 4 8 16 32 64 128"]
#                       [--fixed-budgeted "128"]
#                       [--models "fixed esapn darts"] [--test-last N] [--limit N] [--out DIR]
#
# --widths are ESAPN's and DARTS' candidates; FIXED runs at every --fixed-widths
# width, and each --fixed-budgeted width under every budget. Budgets: by default --percent of FIXED-128's unbudgeted shard (its largest
# rank's peak resident bytes, seed of the first run), CIESS's 5, 10 and 20%;
# --budgets gives MiB instead. A budget too small for a model's batch is
# refused by esapn at once: the script notes it and goes on. Run folders that
# hold results.json are kept (run again with the same --out to finish).
set -euo pipefail
cd "$(dirname "$0")/.."

data="" ranks=2 seeds="0 1 2" percent="5 10 20" budgets="" widths="2 4 8 16 64 128" fixed_widths="2 4 8 16 32 64 128" fixed_budgeted="128"
models="fixed esapn darts" test_last="" limit="" out=${TMPDIR:-/tmp}/esapn-frontier
while (($#)); do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --percent) percent=$2; shift 2 ;;
    --budgets) budgets=$2; shift 2 ;;
    --widths) widths=$2; shift 2 ;;
    --fixed-widths) fixed_widths=$2; shift 2 ;;
    --fixed-budgeted) fixed_budgeted=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --test-last) test_last=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "frontier.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$data" ] || { echo "frontier.sh: --data STREAM is required (a stream from esapn prepare or esapn synth)" >&2; exit 2; }
[ -f "$data" ] || { echo "frontier.sh: $data: no such stream; make one with esapn prepare or esapn synth" >&2; exit 2; }
B=${ESAPN_BIN:-$PWD/.build/release/esapn}
[ -x "$B" ] || { echo "frontier.sh: $B is not an executable esapn; run scripts/setup.sh or set ESAPN_BIN" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$out/runs"
common=(--data "$data" --task binary --quiet)
[ -n "$test_last" ] && common+=(--test-last "$test_last")
[ -n "$limit" ] && common+=(--limit "$limit")
widest=${widths##* }

run() {  # name args…
  local name=$1; shift
  local dir="$out/runs/$name"
  [ -f "$dir/results.json" ] && return 0
  rm -rf "$dir"
  local cmd=("$B" train "${common[@]}" "$@" --output "$dir")
  [ "$ranks" = 1 ] || cmd=(mpirun --oversubscribe -np "$ranks" "${cmd[@]}")
  if ! "${cmd[@]}" >/dev/null 2>"$out/$name.err"; then
    echo "frontier: $name refused: $(grep -m1 -o 'error: .*' "$out/$name.err" | cut -c1-160)"
    rm -rf "$dir"
  fi
}

echo "frontier: FIXED at widths $fixed_widths, $ranks ranks, seeds $seeds"
for seed in $seeds; do
  for w in $fixed_widths; do run "fixed-$w-s$seed" --model fixed --sizes "$w" --seed "$seed"; done
done
if [ -z "$budgets" ]; then
  first=${seeds%% *}
  budgets=$(python3 - "$out/runs/fixed-$widest-s$first/results.json" "$percent" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
shard = max(m.get("peak_resident_bytes", m["resident_bytes"]) for m in r["memory"]["per_rank"])
print(" ".join(f"{shard * float(p) / 100 / 2**20:.3f}" for p in sys.argv[2].split()))
PY
)
  echo "frontier: budgets $budgets MiB (${percent// /, }% of FIXED-$widest's shard)"
fi
for seed in $seeds; do
  for model in $models; do
    case $model in
      fixed)
        for w in $fixed_budgeted; do
          for b in $budgets; do run "fixed-$w-b$b-s$seed" --model fixed --sizes "$w" --seed "$seed" --shard-budget "$b"; done
        done ;;
      esapn)
        run "esapn-s$seed" --model esapn --sizes "${widths// /,}" --seed "$seed"
        for b in $budgets; do run "esapn-b$b-s$seed" --model esapn --sizes "${widths// /,}" --seed "$seed" --shard-budget "$b"; done ;;
      *)
        run "$model-s$seed" --model "$model" --sizes "${widths// /,}" --seed "$seed"
        for b in $budgets; do run "$model-b$b-s$seed" --model "$model" --sizes "${widths// /,}" --seed "$seed" --shard-budget "$b"; done ;;
    esac
  done
done

"$B" report "$out"/runs/* --output "$out/report.md"
python3 - "$out/report.md" <<'PY'
import sys
text = open(sys.argv[1]).read()
start = text.find("## Accuracy against memory per shard")
end = text.find("\n## ", start + 1)
print(text[start:end if end > 0 else None].strip())
PY
python3 scripts/plot.py "$out"/runs/* --output "$out/plots" --frontier >/dev/null
echo "frontier: report $out/report.md; figures $out/plots/frontier.png, $out/plots/memory_over_stream.png"
