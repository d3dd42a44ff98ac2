#!/usr/bin/env bash
# The benchmark the tool is for: the full ml-20m and ml-latest stand-ins
# (synthetic presets, seed 1) trained end to end with FIXED, ESAPN and DARTS,
# binary task, the last 5M records as the test part, at P = 2 and 4 ranks
# through launch/local.sh. Writes every run folder, `esapn report` (Table 1,
# Table 2, memory per shard with the ideal beside), the per-shard memory chart
# (scripts/plot.py), and a summary: test accuracy, rows per size, resident
# bytes of every rank beside FIXED-128 and soft-222, peak RSS per rank, wall
# time. Then it checks the memory report against the operating system: for
# every rank, the growth of RssAnon from the end of the first batch to the end
# must match the growth of the embedding bytes it reports within 5% (plus
# 1 MiB for page granularity and MPI's buffers, which only a short run
# notices); any mismatch fails the script.
#
#   scripts/bench-memory.sh [--presets "ml-20m ml-latest"] [--models "fixed esapn darts"]
#                           [--ranks "2 4"] [--limit N] [--shard-budget MIB] [--stream FILE] [--out DIR]
#
# --stream FILE trains on that stream instead of the presets (e.g. a prefix:
# esapn synth --preset ml-latest --records 2000000 --seed 1 --output FILE).
# --shard-budget MIB trains every run under that budget (docs/budget.md) and
# also checks that every rank's peak_resident_bytes stays at or under it: with
# the report matching RssAnon's growth, RssAnon then stops growing at the budget
# (its growth from the first batch must also stay within the budget + 1 MiB).
#
# --limit N trains on the first N records (test part: the last N/4) for a
# short version. The whole matrix takes hours on 2 cores, so a run folder that
# already holds results.json is kept, not run again: run the script again with
# the same --out to finish an interrupted matrix. ESAPN_BIN pins the binary
# (copy it out of .build first if you will rebuild while the matrix runs).
set -euo pipefail
cd "$(dirname "$0")/.."

presets="ml-20m ml-latest"
models="fixed esapn darts"
ranks="2 4"
limit=""
budget=""
stream_file=""
out=${TMPDIR:-/tmp}/esapn-bench-memory
while (($#)); do
  case "$1" in
    --presets) presets=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --shard-budget) budget=$2; shift 2 ;;
    --stream) stream_file=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "bench-memory.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "${ESAPN_BIN:-}" ]; then
  bash scripts/setup.sh --no-data >/dev/null
fi
B=${ESAPN_BIN:-$PWD/.build/release/esapn}
export ESAPN_BIN=$B
mkdir -p "$out/runs"
export OPENBLAS_NUM_THREADS=1

test_args=(--test-last 5000000)
limit_args=()
suffix=""
if [ -n "$budget" ]; then
  limit_args+=(--shard-budget "$budget")
  suffix="-b$budget"
fi
if [ -n "$limit" ]; then
  limit_args+=(--limit "$limit")
  test_args=(--test-last $((limit / 4)))
fi

if [ -n "$stream_file" ]; then
  [ -f "$stream_file" ] || { echo "bench-memory.sh: --stream $stream_file: no such file" >&2; exit 2; }
  presets=$(basename "$stream_file" .stream)
fi
for preset in $presets; do
  stream="$out/$preset.stream"
  [ -n "$stream_file" ] && stream=$stream_file
  if [ ! -f "$stream" ]; then
    echo "bench-memory: esapn synth --preset $preset --seed 1"
    "$B" synth --preset "$preset" --seed 1 --output "$stream" >/dev/null
  fi
  for model in $models; do
    for np in $ranks; do
      run="$out/runs/$preset-$model-p$np$suffix"
      if [ -f "$run/results.json" ]; then
        echo "bench-memory: $run has results.json; kept"
        continue
      fi
      rm -rf "$run"
      echo "bench-memory: launch/local.sh $np --data $stream --model $model --task binary ${test_args[*]} ${limit_args[*]}"
      launch/local.sh "$np" --data "$stream" --model "$model" --task binary "${test_args[@]}" "${limit_args[@]}" \
        --quiet --output "$run" >/dev/null
    done
  done
done

"$B" report "$out"/runs/* --output "$out/report.md"
python3 scripts/plot.py "$out"/runs/*ml-latest* --output "$out/plots" >/dev/null 2>&1 \
  || python3 scripts/plot.py "$out"/runs/* --output "$out/plots" >/dev/null

python3 - "$out" <<'EOF'
import glob, json, os, sys
out = sys.argv[1]
MiB = 1 << 20
# Page granularity (each slab ends in partly touched pages) and MPI's own
# buffers: negligible beside a full run's growth, visible in a --limit run.
SLACK = 1 * MiB
failed = []
print("| run | test acc | rows 2/4/8/16/64/128 | dims / FIXED | rank | resident | ideal | FIXED-128 | soft-222 | peak RSS | RssAnon growth / reported growth | wall |")
print("| --- | --: | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |")
for path in sorted(glob.glob(os.path.join(out, "runs", "*", "results.json"))):
    r = json.load(open(path))
    name = os.path.basename(os.path.dirname(path))
    sizes = {w: r["sizes"]["users"].get(w, 0) + r["sizes"]["items"].get(w, 0) for w in ["2", "4", "8", "16", "64", "128", "222"]}
    rows = "/".join(str(sizes[w]) for w in ["2", "4", "8", "16", "64", "128"]) + (f" (222: {sizes['222']})" if sizes["222"] else "")
    for i, m in enumerate(sorted(r["memory"]["per_rank"], key=lambda m: m["rank"])):
        growth, rss = m.get("resident_growth_bytes"), m.get("rss_anon_growth_bytes")
        if growth is None or rss is None:
            check = "not measured"
            failed.append(f"{name} rank {m['rank']}: no RssAnon figures")
        else:
            ratio = rss / growth if growth else float("inf")
            check = f"{ratio:.3f}"
            if abs(rss - growth) > 0.05 * growth + SLACK:
                failed.append(f"{name} rank {m['rank']}: RssAnon grew {rss / MiB:.1f} MiB, the report {growth / MiB:.1f} MiB")
        limit = (r.get("budget") or {}).get("limit_bytes")
        if limit is not None and m.get("peak_resident_bytes", 0) > limit:
            failed.append(f"{name} rank {m['rank']}: peak resident {m['peak_resident_bytes']} bytes over the budget {limit}")
        if limit is not None and rss is not None and rss > limit + SLACK:
            failed.append(f"{name} rank {m['rank']}: RssAnon grew {rss / MiB:.1f} MiB under a budget of {limit / MiB:.2f} MiB")
        peak = m.get("peak_rss_bytes")
        head = [name, f"{100 * r['test']['accuracy']:.2f}%", rows, f"{100 * r['memory']['ratio']:.1f}%"] if i == 0 else ["", "", "", ""]
        print("| " + " | ".join(head + [str(m["rank"]), f"{m['resident_bytes'] / MiB:.1f} MiB", f"{12 * m['value_floats'] / MiB:.1f} MiB",
              f"{m['fixed_resident_bytes'] / MiB:.1f} MiB", f"{m['soft_resident_bytes'] / MiB:.1f} MiB",
              f"{peak / MiB:.0f} MiB" if peak else "—", check,
              f"{r['throughput']['wall_seconds']:.0f} s" if i == 0 else ""]) + " |")
print(f"\nreport: {out}/report.md; plots: {out}/plots")
if failed:
    print("memory report does not match the operating system within 5%:\n  " + "\n  ".join(failed))
    sys.exit(1)
print("memory report matches the operating system within 5% (+1 MiB) on every rank")
EOF
