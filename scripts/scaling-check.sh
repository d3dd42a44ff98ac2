#!/usr/bin/env bash
# Calibrates the scaling model (`esapn plan`) on links shaped here and checks
# it against measured runs at P = 2, 3 and 4: hosts made of network namespaces
# (scripts/netns-hosts.sh), every link shaped to RATE with tc tbf; on them
# `esapn bench-comm` measures α and β at each P, then FIXED and ESAPN train
# the first RECORDS records of the ml-latest preset with --profile. The model
# takes its compute from a 2-rank shared-memory run of the same records and
# predicts each measured run (all ranks share this machine's cores, hence
# --shared-cores). Needs root. Prints the predictions beside the measurements;
# run folders and calibration files stay in OUT.
#
#   scripts/scaling-check.sh [--rate 1gbit] [--records 500000] [--models "fixed esapn"] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

rate=1gbit records=500000 models="fixed esapn" out=${TMPDIR:-/tmp}/esapn-scaling
while (($#)); do
  case "$1" in
    --rate) rate=$2; shift 2 ;;
    --records) records=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "scaling-check.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "${ESAPN_BIN:-}" ]; then bash scripts/setup.sh --no-data >/dev/null; fi
B=${ESAPN_BIN:-$PWD/.build/release/esapn}
export ESAPN_BIN=$B OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$out"
stream=$out/ml-latest-2000000.stream
[ -f "$stream" ] || "$B" synth --preset ml-latest --records 2000000 --seed 1 --output "$stream" >/dev/null
train=(--data "$stream" --task binary --limit "$records" --test-last $((records / 5)) --quiet --profile)

bash scripts/netns-hosts.sh up 4 "$out/hosts"
trap 'bash scripts/netns-hosts.sh down' EXIT
bash scripts/netns-hosts.sh rate "$rate"
# The four "hosts" share two cores: ranks waiting in MPI must yield them.
net=($(cat "$out/hosts/mpirun-args") --mca mpi_yield_when_idle 1 --hostfile "$out/hosts/hostfile")

for P in 2 3 4; do
  mpirun "${net[@]}" -np "$P" "$B" bench-comm --name "veth $rate, $P hosts" --output "$out/calibration-p$P.json" | tail -1
done
for m in $models; do
  bash launch/local.sh 2 "${train[@]}" --model "$m" --output "$out/shm-$m-p2" >/dev/null
  for P in 2 3 4; do
    mpirun "${net[@]}" -np "$P" "$B" train "${train[@]}" --model "$m" --output "$out/net-$m-p$P" >/dev/null
  done
done
echo "scaling-check: measured on $rate links beside the model (compute from $out/shm-*-p2)"
for m in $models; do
  for P in 2 3 4; do
    "$B" plan --run "$out/shm-$m-p2" --calibration "$out/calibration-p$P.json" --ranks "$P" --shared-cores 2 \
      --compare "$out/net-$m-p$P" | grep -E "^ +$P |measured" | sed "s/^/$m: /"
  done
done
