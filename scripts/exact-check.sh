#!/usr/bin/env bash
# The contract of --deterministic (issue 12), as a matrix: for each model and
# seed, a run on 1 process is the reference, and runs on every P of --ranks
# over every transport must give byte-identical batches.csv (every batch's
# loss and correct records), by_frequency.csv, final_sizes.csv and the
# metrics of results.json (test, overall, memory dims, sizes).
#
#   scripts/exact-check.sh [--data STREAM] [--models "esapn fixed darts autoemb"]
#       [--tasks binary] [--seeds "0 7 11"] [--ranks "2 3 4"] [--transports "shm tcp"]
#       [--logical-ranks 4] [--out DIR] [-- EXTRA TRAIN ARGUMENTS]
#
# Defaults: real ml-100k (data/ml-100k/ml-100k.stream; scripts/fetch-ml100k.sh),
# --test-last 20000. Prints one line per comparison; exits 1 if any differs.
set -euo pipefail
cd "$(dirname "$0")/.."

data=data/ml-100k/ml-100k.stream
models="esapn fixed darts autoemb"
tasks=binary
seeds="0 7 11"
ranks="2 3 4"
transports="shm tcp"
logical=4
out=${TMPDIR:-/tmp}/esapn-exact-check
extra=(--test-last 20000)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --tasks) tasks=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --transports) transports=$2; shift 2 ;;
    --logical-ranks) logical=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "exact-check.sh: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
done
for tr in $transports; do
  [[ $tr == shm || $tr == tcp ]] || { echo "exact-check.sh: --transports takes shm and/or tcp, got '$tr'" >&2; exit 2; }
done
[[ -f "$data" ]] || { echo "exact-check.sh: no stream at $data: run scripts/fetch-ml100k.sh, or pass --data" >&2; exit 2; }
bin=${ESAPN_BIN:-.build/release/esapn}
[[ -x "$bin" ]] || { echo "exact-check.sh: no esapn at $bin: swift build -c release (or set ESAPN_BIN)" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$out"

# Byte-identical outputs, or the first that differs.
compare() {
  python3 - "$1" "$2" <<'EOF'
import json, sys, filecmp, os
a, b = sys.argv[1:3]
for f in ["batches.csv", "by_frequency.csv", "final_sizes.csv"]:
    if not filecmp.cmp(os.path.join(a, f), os.path.join(b, f), shallow=False):
        print(f"{f} differs"); sys.exit(1)
ra, rb = (json.load(open(os.path.join(d, "results.json"))) for d in (a, b))
for k in ["test", "overall", "sizes", "records", "ranks"]:
    if ra[k] != rb[k]: print(f"results.json {k} differs: {ra[k]} vs {rb[k]}"); sys.exit(1)
for k in ["total_dims", "fixed_dims", "ratio", "resident_bytes"]:
    if ra["memory"][k] != rb["memory"][k]: print(f"results.json memory.{k} differs"); sys.exit(1)
print("identical")
EOF
}

failed=0; compared=0
printf '%-8s %-10s %-5s %-4s %-4s %s\n' model task seed P via result
for m in $models; do for t in $tasks; do for s in $seeds; do
  ref=$out/$m-$t-s$s-p1
  "$bin" train --data "$data" --model "$m" --task "$t" --seed "$s" --save-sizes --quiet \
    --deterministic --logical-ranks "$logical" --output "$ref" "${extra[@]}" >/dev/null
  for tr in $transports; do
    via=()
    [[ $tr == tcp ]] && via=(--mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
    for p in $ranks; do
      run=$out/$m-$t-s$s-p$p-$tr
      mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$p" "${via[@]}" -x OPENBLAS_NUM_THREADS=1 \
        "$bin" train --data "$data" --model "$m" --task "$t" --seed "$s" --save-sizes --quiet \
        --deterministic --logical-ranks "$logical" --output "$run" "${extra[@]}" >/dev/null
      result=$(compare "$ref" "$run") || failed=$((failed + 1))
      compared=$((compared + 1))
      printf '%-8s %-10s %-5s %-4s %-4s %s\n' "$m" "$t" "$s" "$p" "$tr" "$result"
    done
  done
done; done; done
echo "exact-check: $compared comparisons against 1 process, $failed differ (logical ranks $logical; $out)"
[[ $failed -eq 0 ]]
