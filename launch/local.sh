#!/usr/bin/env bash
# Runs `esapn train ARGS…` as NP MPI ranks on this machine.
#
#   launch/local.sh NP [ARGS…]
#
# Environment:
#   ESAPN_BIN          the esapn executable (default: <repo>/.build/release/esapn)
#   ESAPN_TRANSPORT    shm (default; shared memory) or tcp (TCP over loopback:
#                      the network path multi-node runs take)
#   ESAPN_SUBCOMMAND   run this subcommand instead of train (e.g. mpi-smoke)
#   ESAPN_MPIRUN_ARGS  extra mpirun arguments, split on spaces
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
    cat >&2 <<'USAGE'
usage: launch/local.sh NP [ARGS…]
  Runs `esapn train ARGS…` as NP MPI ranks on this machine (NP a positive integer).
  ESAPN_TRANSPORT=tcp uses TCP on loopback instead of shared memory;
  ESAPN_SUBCOMMAND=NAME runs `esapn NAME ARGS…` instead of train.
USAGE
    exit 2
}

[[ $# -ge 1 ]] || usage
case $1 in -h|--help) usage ;; esac
np=$1
shift
is_positive_integer "$np" || { echo "local.sh: NP must be a positive integer, got '$np'" >&2; usage; }

require_mpirun
bin=$(esapn_binary)
subcommand=${ESAPN_SUBCOMMAND:-train}

common_mpirun_args
cores=$(nproc)
if (( np > cores )); then
    mpirun_args+=(--oversubscribe)
fi
case ${ESAPN_TRANSPORT:-shm} in
    shm) ;;
    tcp) mpirun_args+=(--mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo) ;;
    *) fail "ESAPN_TRANSPORT must be shm or tcp, got '${ESAPN_TRANSPORT}'" 2 ;;
esac

exec mpirun -np "$np" "${mpirun_args[@]}" "$bin" "$subcommand" "$@"
