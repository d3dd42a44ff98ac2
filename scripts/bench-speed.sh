#!/usr/bin/env bash
# Training speed, measured so that figures from a shared, noisy machine can
# be trusted: each binary, model and launch path is run REPS times,
# interleaved (so drift in the machine's load hits every variant alike), and
# the median records/s is reported, with the ratio to a baseline binary when
# one is given. Then one `--profile` run per model prints where a batch's
# time goes (phases, collectives and bytes per batch, achieved GFLOP/s, peak
# RSS per rank), beside the sgemm ceiling `esapn bench` measures.
#
#   scripts/bench-speed.sh [--baseline BIN] [--models "fixed esapn"] [--ranks 2]
#                          [--records 2000000] [--reps 3] [--paths "local mpirun"] [--work DIR]
#                          [--exact "2 4"]
#
# Paths: `local` is launch/local.sh NP; `mpirun` is a plain `mpirun -np NP
# esapn train` with OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS unset, so the
# binary's own set-up is what runs (a baseline binary without that set-up
# gets the machine's environment as it is). The stream is the first RECORDS
# records of the ml-latest preset (seed 1), binary task. --exact C… adds, per
# C, the current binary with --deterministic --logical-ranks C beside it (the
# cost of the exact mode: its ratio is to the current binary's plain run).
set -euo pipefail
cd "$(dirname "$0")/.."

baseline=""
models="fixed esapn"
ranks="2"
records=2000000
reps=3
paths="local mpirun"
work=${TMPDIR:-/tmp}/esapn-bench-speed
exact=""
while (($#)); do
  case "$1" in
    --baseline) baseline=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --records) records=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --paths) paths=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --exact) exact=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "bench-speed.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
bin=${ESAPN_BIN:-$PWD/.build/release/esapn}
[ -x "$bin" ] || { echo "bench-speed.sh: no esapn at $bin: run scripts/setup.sh or set ESAPN_BIN" >&2; exit 1; }
if [ -n "$baseline" ] && [ ! -x "$baseline" ]; then
  echo "bench-speed.sh: --baseline $baseline is not an executable" >&2; exit 1
fi
mkdir -p "$work"
stream=$work/ml-latest-$records.stream
[ -f "$stream" ] || "$bin" synth --preset ml-latest --records "$records" --seed 1 --output "$stream" >/dev/null
root=(); [ "$(id -u)" -ne 0 ] || root=(--allow-run-as-root)

run() {  # run BIN MODEL NP PATH OUT [EXTRA…]: one training run
  local b=$1 model=$2 np=$3 path=$4 out=$5; shift 5
  local over=(); (( np <= $(nproc) )) || over=(--oversubscribe)
  case $path in
    local) ESAPN_BIN=$b bash launch/local.sh "$np" --data "$stream" --model "$model" --task binary --quiet --output "$out" "$@" ;;
    mpirun) env -u OPENBLAS_CORETYPE -u OPENBLAS_NUM_THREADS mpirun "${root[@]}" "${over[@]}" -np "$np" \
              "$b" train --data "$stream" --model "$model" --task binary --quiet --output "$out" "$@" ;;
  esac
}

echo "## machine"
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## sgemm ceiling (esapn bench)"
"$bin" bench | head -4
echo "## records/s, median of $reps interleaved runs, first $records records of the ml-latest preset"
variants=("current:$bin")
[ -z "$baseline" ] || variants=("baseline:$baseline" "${variants[@]}")
for c in $exact; do variants+=("exact-C=$c:$bin"); done
results=$work/speeds.tsv
: > "$results"
for rep in $(seq 1 "$reps"); do
  for model in $models; do
    for np in $ranks; do
      for path in $paths; do
        for v in "${variants[@]}"; do
          name=${v%%:*} b=${v#*:}
          out=$work/run-$name-$model-p$np-$path
          rm -rf "$out"
          extra=()
          [[ $name == exact-C=* ]] && extra=(--deterministic --logical-ranks "${name#exact-C=}")
          (( ${#extra[@]} == 0 )) || (( np <= ${name#exact-C=} )) || continue
          run "$b" "$model" "$np" "$path" "$out" "${extra[@]}" >/dev/null
          rate=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['throughput']['records_per_second'])" "$out/results.json")
          printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$model" "$np" "$path" "$rate" >> "$results"
          echo "  rep $rep: $name $model P=$np $path: $(printf '%.0f' "$rate") records/s"
        done
      done
    done
  done
done
python3 - "$results" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, model, np, path, rate = line.split("\t")
    rows[(model, int(np), path, name)].append(float(rate))
print("| model | P | path | median records/s (current) | baseline | current / baseline |")
print("| --- | --: | --- | --: | --: | --: |")
for (model, np, path) in sorted({k[:3] for k in rows}):
    cur = statistics.median(rows[(model, np, path, "current")])
    base = rows.get((model, np, path, "baseline"))
    b = statistics.median(base) if base else None
    print(f"| {model} | {np} | {path} | {cur:,.0f} | {f'{b:,.0f}' if b else '—'} | {f'{cur / b:.2f}×' if b else '—'} |")
exact = sorted(k for k in rows if k[3].startswith("exact-"))
if exact:
    print("\n| model | P | path | --deterministic | median records/s | / plain run |")
    print("| --- | --: | --- | --- | --: | --: |")
    for (model, np, path, name) in exact:
        e = statistics.median(rows[(model, np, path, name)])
        cur = statistics.median(rows[(model, np, path, "current")])
        print(f"| {model} | {np} | {path} | --logical-ranks {name[len('exact-C='):]} | {e:,.0f} | {e / cur:.2f}× |")
PY
echo "## where the time goes (current binary, --profile, launch/local.sh)"
for model in $models; do
  for np in $ranks; do
    out=$work/profile-$model-p$np
    rm -rf "$out"
    run "$bin" "$model" "$np" local "$out" --profile | sed -n '/^profile/,$p'
  done
done
