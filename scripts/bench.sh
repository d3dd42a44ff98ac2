#!/usr/bin/env bash
# Benchmarks behind BENCHMARKS.md: per-batch kernels, data preparation at
# ml-latest scale (throughput and peak RSS), and trainer throughput and
# memory on a prefix of the ml-latest preset at 1 and 2 ranks.
#
#   scripts/bench.sh [--work DIR] [--records N] [--models "fixed esapn"] [--skip-scale]
#
# Needs /usr/bin/time (Debian package `time`) for peak RSS; installs it if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

work=${TMPDIR:-/tmp}/esapn-bench
records=2000000
models="fixed esapn"
scale=1
while (($#)); do
  case "$1" in
    --work) work=$2; shift 2 ;;
    --records) records=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --skip-scale) scale=0; shift ;;
    *) echo "bench.sh: unknown option '$1' (see the header of this script)" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh --no-data >/dev/null
if [ ! -x /usr/bin/time ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get install -y -qq time >/dev/null
fi
bin=$PWD/.build/release/esapn
mkdir -p "$work"
export OPENBLAS_NUM_THREADS=1
# The same OpenBLAS kernels for 1 rank as launch/local.sh picks for P ranks
# (ESAPN_KEEP_BLAS_CORE=1 keeps the library's own choice).
source launch/common.sh
choose_blas_core

measure() {  # measure LABEL COMMAND…: wall seconds and peak RSS of one command
  local label=$1; shift
  /usr/bin/time -f "$label: %e s wall, %M KiB peak RSS" "$@" 2> >(grep -v "^$" | tail -1 >&2)
}

echo "## machine"
echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## kernels"
"$bin" bench

if ((scale)); then
  echo "## data at ml-latest scale"
  measure "synth ml-latest (27,753,444 records) + csv" "$bin" synth --preset ml-latest --seed 1 \
    --output "$work/ml-latest.stream" --csv "$work/ml-latest.csv"
  measure "prepare ml-latest ratings.csv" "$bin" prepare "$work/ml-latest.csv" --output "$work/ml-latest-prepared.stream"
  measure "inspect ml-latest (checksum + statistics)" "$bin" inspect "$work/ml-latest-prepared.stream" >/dev/null
  rm -f "$work/ml-latest.csv" "$work/ml-latest-prepared.stream"
fi

echo "## training on the first $records records of the ml-latest preset"
stream=$work/ml-latest-$records.stream
[ -f "$stream" ] || "$bin" synth --preset ml-latest --records "$records" --seed 1 --output "$stream" >/dev/null
for model in $models; do
  for np in 1 2; do
    out=$work/run-$model-p$np
    if ((np == 1)); then
      measure "$model, 1 rank" "$bin" train --data "$stream" --model "$model" --quiet --output "$out" >/dev/null
    else
      measure "$model, $np ranks (whole mpirun)" bash launch/local.sh "$np" --data "$stream" --model "$model" --quiet --output "$out" >/dev/null
    fi
    python3 - "$out/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = r["memory"]
per = ", ".join(f"rank {p['rank']} {p['resident_bytes'] / 2**20:.1f} MiB" for p in m["per_rank"])
print(f"  {r['model']} P={r['ranks']}: {r['throughput']['records_per_second']:.0f} records/s, "
      f"test accuracy {100 * r['test']['accuracy']:.2f}%, dims {100 * m['ratio']:.1f}% of FIXED, resident {per}")
PY
  done
done
