#!/usr/bin/env bash
# The multi-rank contract as a matrix: for each OpenBLAS kernel, task and
# seed, a 1-rank run of MODEL on real ml-100k, then P-rank runs under mpirun,
# each compared with the 1-rank run by `esapn compare`. Prints one row per
# comparison and, at the end, the worst figure of each kind over the matrix:
# this is where the contract tests' ESAPN bounds come from
# (Tests/TrainingTests/ContractTests.swift). With --faults, it also runs the
# planted bugs (ESAPN_INJECT_FAULT=NAME, Sources/Embeddings/FaultSeam.swift) at the first P, and prints how far
# they land beyond the bounds.
#
#   scripts/contract-matrix.sh [--kernels "Haswell SkylakeX"] [--ranks "2 3 4"] [--seeds "0 1 2"]
#                              [--tasks "binary multiclass"] [--model esapn] [--transport shm|tcp]
#                              [--faults] [--out DIR]
#
# Kernels default to every OpenBLAS core type this CPU can run (see
# scripts/blas-cores.sh); "default" means OPENBLAS_CORETYPE unset. Needs
# scripts/setup.sh to have run (binary, ml-100k).
set -euo pipefail
cd "$(dirname "$0")/.."

kernels=""
ranks="2 3 4"
seeds="0 1 2"
tasks="binary multiclass"
model=esapn
transport=shm
faults=0
out=""
while (($#)); do
  case "$1" in
    --kernels) kernels="$2"; shift 2 ;;
    --ranks) ranks="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --tasks) tasks="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --transport) transport="$2"; shift 2 ;;
    --faults) faults=1; shift ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "contract-matrix.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$transport" in
  shm) mca=() ;;
  tcp) mca=(--mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo) ;;
  *) echo "contract-matrix.sh: --transport is shm or tcp, got '$transport'" >&2; exit 2 ;;
esac
[ -n "$kernels" ] || kernels="$(bash scripts/blas-cores.sh)"
B="$PWD/.build/release/esapn"
[ -x "$B" ] || { echo "contract-matrix.sh: $B is missing: run scripts/setup.sh first" >&2; exit 1; }
[ -f data/ml-100k/ml-100k.inter ] || { echo "contract-matrix.sh: data/ml-100k is missing: run scripts/setup.sh first" >&2; exit 1; }
out="${out:-$(mktemp -d /tmp/esapn-contract-XXXXXX)}"
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
stream="$out/ml-100k.stream"
[ -f "$stream" ] || "$B" prepare data/ml-100k/ml-100k.inter --output "$stream" >/dev/null

cores=$(nproc)
rows="$out/comparisons.tsv"
printf 'kernel\ttask\tseed\tranks\tfault\tjson\n' > "$rows"
# kernel_env KERNEL: the environment prefix that selects it.
kernel_env() { if [ "$1" = default ]; then echo "env -u OPENBLAS_CORETYPE"; else echo "env OPENBLAS_CORETYPE=$1"; fi; }
train() { # train KERNEL NP OUTPUT ARGS…
  local kernel=$1 np=$2 output=$3; shift 3
  local args=(train --data "$stream" --model "$model" --test-last 20000 --save-sizes --quiet --output "$output" "$@")
  if [ "$np" = 1 ]; then
    $(kernel_env "$kernel") "$B" "${args[@]}" >/dev/null
  else
    local over=(); ((np > cores)) && over=(--oversubscribe)
    $(kernel_env "$kernel") mpirun -np "$np" "${over[@]}" "${mca[@]}" -x OPENBLAS_NUM_THREADS -x OPENBLAS_CORETYPE \
      "$B" "${args[@]}" >/dev/null
  fi
}
compare() { # compare KERNEL TASK SEED NP FAULT RUN REFERENCE
  local json
  json=$("$B" compare "$6" "$7" --json | tr -d '\n ')
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$json" >> "$rows"
  echo "$1 $2 seed $3 P=$4 ${5/none/}: $json" | cut -c1-200
}

first_rank="${ranks%% *}"
for kernel in $kernels; do
  for task in $tasks; do
    for seed in $seeds; do
      dir="$out/$kernel/$task-$seed"
      mkdir -p "$dir"
      train "$kernel" 1 "$dir/p1" --task "$task" --seed "$seed"
      for np in $ranks; do
        train "$kernel" "$np" "$dir/p$np" --task "$task" --seed "$seed"
        compare "$kernel" "$task" "$seed" "$np" none "$dir/p$np" "$dir/p1"
      done
      if ((faults)); then
        for fault in action-keyed-by-local-id owner-drops-last-ranks-losses owner-drops-later-ranks-frequency; do
          ESAPN_INJECT_FAULT="$fault" train "$kernel" "$first_rank" "$dir/p$first_rank-$fault" --task "$task" --seed "$seed"
          compare "$kernel" "$task" "$seed" "$first_rank" "$fault" "$dir/p$first_rank-$fault" "$dir/p1"
        done
      fi
    done
  done
done

python3 - "$rows" "${kernels%% *}" <<'EOF'
# The summary, in Markdown: per figure, the worst over each kernel's runs,
# the bound derived from the first kernel's (3x its worst, rounded up to one
# significant digit), and the least a planted bug reaches.
import json, math, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])][1:]
derive_on = sys.argv[2]
data = [(k, t, s, p, f, json.loads(j)) for k, t, s, p, f, j in rows]
natural = [d for d in data if d[4] == "none"]
faulty = [d for d in data if d[4] != "none"]
kernels = list(dict.fromkeys(d[0] for d in natural))
metrics = [
    ("loss share before the first size divergence", lambda c: c["max_loss_share_before_divergence"]),
    ("correct records per batch before it", lambda c: c["max_correct_delta_before_divergence"]),
    ("test accuracy (points)", lambda c: abs(c["test_accuracy_delta_points"])),
    ("overall accuracy (points)", lambda c: abs(c["overall_accuracy_delta_points"])),
    ("test loss", lambda c: abs(c["test_loss_delta"])),
    ("overall loss", lambda c: abs(c["overall_loss_delta"])),
    ("share of IDs at another final size", lambda c: c["ids_with_other_final_size"] / c["ids"]),
]
def round_up(x):
    if x <= 0:
        return 0
    e = math.floor(math.log10(x))
    return math.ceil(x / 10 ** e - 1e-9) * 10 ** e
def worst(items, key):
    return max((key(d[5]) for d in items), default=float("nan"))
print(f"\n| worst \\|Δ\\| over {len(natural)} comparisons | bound (3× worst on {derive_on}) | "
      + " | ".join(kernels) + " |")
print("| --- | --: | " + " | ".join("--:" for _ in kernels) + " |")
failed = []
bounds = {}
for name, key in metrics:
    bound = bounds[name] = round_up(3 * worst([d for d in natural if d[0] == derive_on], key))
    cells = []
    for k in kernels:
        w = worst([d for d in natural if d[0] == k], key)
        cells.append(f"{w:.3g}" + ("" if w <= bound else " **over**"))
        if w > bound:
            failed.append(f"{name} on {k}")
    print(f"| {name} | {bound:g} | " + " | ".join(cells) + " |")
diverged = [d[5]["first_size_divergence"] for d in natural if d[5].get("first_size_divergence") is not None]
print(f"\nsizes diverged in {len(diverged)} of {len(natural)} comparisons; earliest at batch {min(diverged) if diverged else '-'}")
if faulty:
    firsts = [d[5].get("first_size_divergence") for d in faulty]
    print(f"with a planted bug: sizes diverged in {sum(f is not None for f in firsts)} of {len(faulty)}; "
          f"latest first divergence at batch {max((f for f in firsts if f is not None), default='-')}")
    # How far each planted bug lands beyond the bounds: its largest figure / bound.
    def beyond(d):
        return max((key(d[5]) / bounds[name], name) for name, key in metrics if bounds[name] > 0)
    print("\n| planted bug | least over the matrix: × a bound | binary, seed 0 (the contract test's), per kernel |")
    print("| --- | --: | --- |")
    for fault in dict.fromkeys(d[4] for d in faulty):
        runs = [d for d in faulty if d[4] == fault]
        ratio, name = min(beyond(d) for d in runs)
        test = ", ".join(f"{d[0]} {beyond(d)[0]:.1f}×" for d in runs if d[1] == "binary" and d[2] == "0")
        print(f"| {fault} | {ratio:.1f}× ({name}) | {test} |")
print(f"rows: {sys.argv[1]}")
if failed:
    print("over the bound: " + "; ".join(failed))
EOF
