#!/usr/bin/env bash
# The whole test suite: sets up (packages, release build with tests, ml-100k),
# then runs every test against the release binary. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export ESAPN_BIN="$PWD/.build/release/esapn"
swift test -c release --skip-build --disable-swift-testing "$@"
