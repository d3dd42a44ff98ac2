#!/usr/bin/env bash
# The OpenBLAS core types (values of OPENBLAS_CORETYPE) this CPU can run,
# from its /proc/cpuinfo flags, one line, space-separated:
#   scripts/blas-cores.sh          every one, fastest first, then "default" (the variable unset)
#   scripts/blas-cores.sh --fast   the fastest of the two best instruction families (AVX-512, AVX2, …):
#                                  the pair CI runs the contract tests under
# OpenBLAS 0.3.21 picks its own when the variable is unset, and on CPUs it does
# not know that is the slow SSE3 "Prescott": "default" is listed last for that reason.
set -euo pipefail
mode=all
case "${1:-}" in
  "") ;;
  --fast) mode=fast ;;
  -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
  *) echo "blas-cores.sh: unknown option '$1' (known: --fast)" >&2; exit 2 ;;
esac
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
cores=()
if has avx512f avx512bw avx512vl avx512dq; then
  has avx512_bf16 && cores+=(Cooperlake)
  cores+=(SkylakeX)
fi
has avx2 fma && cores+=(Haswell Zen)
has avx && cores+=(Sandybridge)
has sse4_2 && cores+=(Nehalem)
cores+=(Prescott)
if [ "$mode" = fast ]; then
  # One of each instruction family: their sgemm kernels round differently (measured with
  # 0.3.21 on ESAPN's ml-100k run: Cooperlake, SkylakeX, Haswell, Sandybridge, Nehalem and
  # Prescott give six different batches.csv; Zen gives Haswell's bits).
  picked=()
  for c in "${cores[@]}"; do
    case "$c" in
      Cooperlake|SkylakeX) family=avx512 ;;
      Haswell|Zen) family=avx2 ;;
      *) family=$c ;;
    esac
    [[ " ${families:-} " == *" $family "* ]] && continue
    families="${families:-} $family"
    picked+=("$c")
    ((${#picked[@]} == 2)) && break
  done
  echo "${picked[*]}"
else
  echo "${cores[*]} default"
fi
