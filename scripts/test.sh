#!/usr/bin/env bash
# The whole test suite: sets up (packages, release build with tests, ml-100k),
# then runs every test against the release binary. Options go to `swift test`
# (e.g. --filter ContractTests).
#
# ESAPN_TEST_BLAS_CORES="Haswell SkylakeX default" runs the suite once per
# OpenBLAS kernel (OPENBLAS_CORETYPE; "default" unsets it, so the library picks;
# "all" is every kernel this CPU runs, from scripts/blas-cores.sh). A test that
# compares floats across ranks or runs must pass under each: .ci/run runs the
# contract tests under the two fastest kernel families this way.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export ESAPN_BIN="$PWD/.build/release/esapn"
cores="${ESAPN_TEST_BLAS_CORES:-}"
if [ -z "$cores" ]; then
  exec swift test -c release --skip-build --disable-swift-testing "$@"
fi
[ "$cores" = all ] && cores="$(bash scripts/blas-cores.sh)"
failed=()
for core in $cores; do
  if [ "$core" = default ]; then
    echo "test.sh: OpenBLAS kernel: the library's choice (OPENBLAS_CORETYPE unset)"
    env -u OPENBLAS_CORETYPE swift test -c release --skip-build --disable-swift-testing "$@" || failed+=("$core")
  else
    echo "test.sh: OpenBLAS kernel: OPENBLAS_CORETYPE=$core"
    OPENBLAS_CORETYPE="$core" swift test -c release --skip-build --disable-swift-testing "$@" || failed+=("$core")
  fi
done
if ((${#failed[@]})); then
  echo "test.sh: failed under OPENBLAS_CORETYPE: ${failed[*]}" >&2
  exit 1
fi
echo "test.sh: passed under OPENBLAS_CORETYPE: $cores"
