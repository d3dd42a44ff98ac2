#!/usr/bin/env bash
# Runs `esapn train ARGS…` as NP MPI ranks on the hosts of HOSTFILE.
#
#   launch/cluster.sh HOSTFILE NP [ARGS…]
#
# HOSTFILE is an Open MPI hostfile (`host slots=N` per line, # comments; see
# hostfiles/example). The esapn executable must exist at the same path on
# every node (a shared file system, or the same checkout and build on each),
# and so must the data and output paths in ARGS. Nodes must reach each other
# by ssh without a password.
#
# Environment:
#   ESAPN_BIN          the esapn executable (default: <repo>/.build/release/esapn)
#   ESAPN_SUBCOMMAND   run this subcommand instead of train (e.g. mpi-smoke)
#   ESAPN_MPIRUN_ARGS  extra mpirun arguments, split on spaces
#                      (e.g. "--mca btl_tcp_if_include eth0")
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
    cat >&2 <<'USAGE'
usage: launch/cluster.sh HOSTFILE NP [ARGS…]
  Runs `esapn train ARGS…` as NP MPI ranks on the hosts listed in HOSTFILE
  (NP a positive integer). The esapn binary must be at the same path on every node.
USAGE
    exit 2
}

[[ $# -ge 2 ]] || usage
hostfile=$1
np=$2
shift 2
is_positive_integer "$np" || { echo "cluster.sh: NP must be a positive integer, got '$np'" >&2; usage; }

[[ -e $hostfile ]] || fail "hostfile '$hostfile' does not exist (see hostfiles/example for the format)"
[[ -f $hostfile && -r $hostfile ]] || fail "hostfile '$hostfile' is not a readable file"

# Every host must resolve here; mpirun's own error for a bad name is obscure.
hosts=0
line_number=0
while IFS= read -r line || [[ -n $line ]]; do
    line_number=$((line_number + 1))
    line=${line%%#*}
    read -r host _ <<<"$line" || true
    [[ -n ${host:-} ]] || continue
    hosts=$((hosts + 1))
    if ! getent hosts "$host" >/dev/null; then
        fail "host '$host' ($hostfile line $line_number) does not resolve: fix its name in the hostfile, or add it to DNS or /etc/hosts on this machine"
    fi
done <"$hostfile"
(( hosts > 0 )) || fail "hostfile '$hostfile' names no host (one 'host slots=N' a line)"

require_mpirun
bin=$(esapn_binary)
subcommand=${ESAPN_SUBCOMMAND:-train}
common_mpirun_args

exec mpirun --hostfile "$hostfile" -np "$np" "${mpirun_args[@]}" "$bin" "$subcommand" "$@"
