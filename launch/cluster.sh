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
#
#   ESAPN_STARTUP_TIMEOUT  seconds the start-up check may take (default 60; 0 skips it)
#
# A lost node ends the job, never hangs it. mpirun waits without limit for a
# node's daemon to call back, so before the job a start-up check runs
# `esapn mpi-smoke` on the same hosts and ranks under a time limit: a node that
# cannot be reached, cannot reach this one, or lacks the binary is named
# within ESAPN_STARTUP_TIMEOUT seconds instead of hanging the launch. During
# the job, a rank that dies is seen at once.
# A node that stops answering (its link down, its kernel gone) is seen by TCP
# keepalive on mpirun's connection to that node's daemon: here after 10 s
# idle, then 3 probes 5 s apart, so the job ends within about 30 s with
# "ORTE has lost communication with a remote daemon" and a non-zero exit
# (Open MPI's default would wait 300 s + 9 × 20 s). Set
# OMPI_MCA_oob_tcp_keepalive_{time,intvl,probes} to choose otherwise.
# scripts/netns-hosts.sh makes hosts on one machine to try all this.
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

# Every host must resolve here (or be an IP address); mpirun's own error for a
# bad name is obscure.
hosts=0
line_number=0
while IFS= read -r line || [[ -n $line ]]; do
    line_number=$((line_number + 1))
    line=${line%%#*}
    read -r host _ <<<"$line" || true
    [[ -n ${host:-} ]] || continue
    hosts=$((hosts + 1))
    if ! is_ip_address "$host" && ! getent hosts "$host" >/dev/null; then
        fail "host '$host' ($hostfile line $line_number) does not resolve: fix its name in the hostfile, or add it to DNS or /etc/hosts on this machine"
    fi
done <"$hostfile"
(( hosts > 0 )) || fail "hostfile '$hostfile' names no host (one 'host slots=N' a line)"

require_mpirun
bin=$(esapn_binary)
subcommand=${ESAPN_SUBCOMMAND:-train}
common_mpirun_args
export OMPI_MCA_oob_tcp_keepalive_time=${OMPI_MCA_oob_tcp_keepalive_time:-10}
export OMPI_MCA_oob_tcp_keepalive_intvl=${OMPI_MCA_oob_tcp_keepalive_intvl:-5}
export OMPI_MCA_oob_tcp_keepalive_probes=${OMPI_MCA_oob_tcp_keepalive_probes:-3}

startup_timeout=${ESAPN_STARTUP_TIMEOUT:-60}
[[ $startup_timeout =~ ^[0-9]+$ ]] || fail "ESAPN_STARTUP_TIMEOUT must be a number of seconds (0 skips the check), got '$startup_timeout'"
if (( startup_timeout > 0 )) && [[ $subcommand != mpi-smoke ]]; then
    check_log=$(mktemp "${TMPDIR:-/tmp}/esapn-startup.XXXXXX")
    status=0
    timeout -k 5 "$startup_timeout" mpirun --hostfile "$hostfile" -np "$np" "${mpirun_args[@]}" "$bin" mpi-smoke \
        >"$check_log" 2>&1 || status=$?
    if (( status != 0 )); then
        cat "$check_log" >&2
        rm -f "$check_log"
        if (( status == 124 || status == 137 )); then
            fail "the start-up check (esapn mpi-smoke on $np ranks of $hostfile) did not finish in $startup_timeout s: a host is unreachable, cannot reach this machine back (firewall, or the wrong interface: set --mca oob_tcp_if_include and btl_tcp_if_include in ESAPN_MPIRUN_ARGS), or is too slow to start (raise ESAPN_STARTUP_TIMEOUT)"
        fi
        fail "the start-up check (esapn mpi-smoke on $np ranks of $hostfile) failed with status $status (its output is above): fix it before training (is $bin on every host?)"
    fi
    rm -f "$check_log"
fi
exec mpirun --hostfile "$hostfile" -np "$np" "${mpirun_args[@]}" "$bin" "$subcommand" "$@"
