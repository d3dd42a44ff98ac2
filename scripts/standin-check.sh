#!/usr/bin/env bash
# Is the synthetic stand-in faithful where ESAPN's decisions come from?
# Trains FIXED and ESAPN (binary, time order, the last 20,000 records as the
# test part, model seeds 0 1 2) on real ml-100k and on ml-100k-sized streams
# of the `small` preset, and prints, as means over the runs: test accuracy of
# each model and ESAPN's dims ratio per side (dims held / 128 per ID).
# The generator is tuned on `esapn inspect --diagnose` only (docs/stand-in.md);
# this is the check, not a knob.
#
#   scripts/standin-check.sh [--generator-seeds "11 12 13"] [--model-seeds "0 1 2"] [--out DIR]
#
# Needs scripts/setup.sh to have run (binary, ml-100k).
set -euo pipefail
cd "$(dirname "$0")/.."

generator_seeds="11 12 13"
model_seeds="0 1 2"
out=""
while (($#)); do
  case "$1" in
    --generator-seeds) generator_seeds="$2"; shift 2 ;;
    --model-seeds) model_seeds="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "standin-check.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
B="$PWD/.build/release/esapn"
[ -x "$B" ] || { echo "standin-check.sh: $B is missing: run scripts/setup.sh first" >&2; exit 1; }
[ -f data/ml-100k/ml-100k.inter ] || { echo "standin-check.sh: data/ml-100k is missing: run scripts/setup.sh first" >&2; exit 1; }
out="${out:-$(mktemp -d /tmp/esapn-standin-XXXXXX)}"
mkdir -p "$out"
export OPENBLAS_NUM_THREADS=1

"$B" prepare data/ml-100k/ml-100k.inter --output "$out/real.stream" >/dev/null
streams=(real)
for g in $generator_seeds; do
  "$B" synth --preset small --seed "$g" --output "$out/small-$g.stream" >/dev/null
  streams+=("small-$g")
done
for stream in "${streams[@]}"; do
  for model in fixed esapn; do
    for seed in $model_seeds; do
      "$B" train --data "$out/$stream.stream" --model "$model" --task binary --test-last 20000 --seed "$seed" \
        --quiet --output "$out/runs/$stream-$model-$seed" >/dev/null
    done
  done
done

python3 - "$out" <<'EOF'
import glob, json, os, statistics, sys
out = sys.argv[1]
def ratio(sizes):
    ids = sum(sizes.values())
    return sum(int(w) * c for w, c in sizes.items()) / (128 * ids) if ids else 0
rows = {}
for path in sorted(glob.glob(os.path.join(out, "runs", "*", "results.json"))):
    r = json.load(open(path))
    name = os.path.basename(os.path.dirname(path))
    stream = "real" if name.startswith("real-") else "stand-in"
    rows.setdefault((stream, r["model"]), []).append(
        (100 * r["test"]["accuracy"], 100 * ratio(r["sizes"]["users"]), 100 * ratio(r["sizes"]["items"]), 100 * r["memory"]["ratio"]))
def mean(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0)
print("| stream | runs | FIXED test acc | ESAPN test acc | ESAPN users' dims | ESAPN items' dims | ESAPN all dims |")
print("| --- | --: | --: | --: | --: | --: | --: |")
for stream in ("real", "stand-in"):
    f, e = rows.get((stream, "fixed"), []), rows.get((stream, "esapn"), [])
    def cell(values, i):
        m, s = mean([v[i] for v in values])
        return f"{m:.2f} ± {s:.2f}"
    print(f"| {stream} | {len(e)} | {cell(f, 0)} | {cell(e, 0)} | {cell(e, 1)}% | {cell(e, 2)}% | {cell(e, 3)}% |")
real_e, real_f = rows[("real", "esapn")], rows[("real", "fixed")]
stand_e, stand_f = rows[("stand-in", "esapn")], rows[("stand-in", "fixed")]
checks = [
    ("FIXED test accuracy within 1.5 points", abs(mean([v[0] for v in stand_f])[0] - mean([v[0] for v in real_f])[0]), 1.5),
    ("ESAPN test accuracy within 1.5 points", abs(mean([v[0] for v in stand_e])[0] - mean([v[0] for v in real_e])[0]), 1.5),
    ("ESAPN users' dims ratio within 15 points", abs(mean([v[1] for v in stand_e])[0] - mean([v[1] for v in real_e])[0]), 15),
    ("ESAPN items' dims ratio within 15 points", abs(mean([v[2] for v in stand_e])[0] - mean([v[2] for v in real_e])[0]), 15),
]
print()
failed = 0
for name, delta, bound in checks:
    ok = delta <= bound
    failed += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {name}: |Δ| = {delta:.2f}")
print(f"runs: {out}/runs")
sys.exit(1 if failed else 0)
EOF
