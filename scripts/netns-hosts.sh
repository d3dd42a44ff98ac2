#!/usr/bin/env bash
# Hosts on one machine, for a real multi-host MPI run without a cluster: N
# network namespaces esapn-h1…esapn-hN, each joined by a veth link to a
# bridge (esapn-br, 10.77.0.1/24) in this namespace, with the addresses
# 10.77.0.2…10.77.0.N+1. mpirun reaches them through scripts/netns-rsh.sh, a
# remote-shell agent that enters a host's network namespace and a new UTS
# namespace named after it: ranks on different hosts share no network stack
# and no hostname, so Open MPI can neither use shared memory between them nor
# loopback, and all their traffic crosses the veth links as TCP.
#
#   scripts/netns-hosts.sh up N DIR        create the hosts; write DIR/hostfile (one
#                                          address per host, slots=1) and
#                                          DIR/mpirun-args (for ESAPN_MPIRUN_ARGS)
#   scripts/netns-hosts.sh link K up|down  bring host K's link up or down (a lost host)
#   scripts/netns-hosts.sh rate RATE|off   shape every host's link to RATE each way (tc tbf,
#                                          e.g. 1gbit, 10gbit), or remove the shaping
#   scripts/netns-hosts.sh down            kill what runs in the hosts and remove them
#
# Then: ESAPN_MPIRUN_ARGS="$(cat DIR/mpirun-args)" launch/cluster.sh DIR/hostfile N train-args…
# Needs root, iproute2 (ip) and util-linux (unshare); Tests/TrainingTests/MultiHostTests.swift uses it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prefix=esapn-h bridge=esapn-br subnet=10.77.0

fail() { echo "netns-hosts.sh: $1" >&2; exit 1; }
need() {
  [ "$(id -u)" -eq 0 ] || fail "network namespaces need root (run as root or with sudo)"
  command -v ip >/dev/null || fail "ip not found: install iproute2 (apt-get install iproute2)"
  command -v unshare >/dev/null || fail "unshare not found: install util-linux"
}

down() {
  local ns pid link
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix[0-9]*$" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns"
  done
  # A namespace outlives its name while a process (a zombie daemon) holds it:
  # delete the links here too, so that `up` can make them again at once.
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep "^${prefix}v[0-9]*$" || true); do
    ip link del "$link" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
}

case "${1:-}" in
  up)
    [ $# -eq 3 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] && (( $2 <= 250 )) || fail "usage: netns-hosts.sh up N DIR (N from 1 to 250)"
    need
    n=$2 dir=$3
    mkdir -p "$dir"
    down
    ip link add "$bridge" type bridge 2>/dev/null \
      || fail "cannot create the bridge $bridge (is the kernel's bridge module available? try: modprobe bridge)"
    ip addr add "$subnet.1/24" dev "$bridge"
    ip link set "$bridge" up
    : >"$dir/hostfile"
    for k in $(seq 1 "$n"); do
      ns=$prefix$k
      ip netns add "$ns" || fail "cannot create the network namespace $ns"
      ip link add "${prefix}v$k" type veth peer name eth0 netns "$ns" \
        || fail "cannot create the veth link of $ns (is the veth module available?)"
      ip link set "${prefix}v$k" master "$bridge" up
      ip -n "$ns" addr add "$subnet.$((k + 1))/24" dev eth0
      ip -n "$ns" link set eth0 up
      ip -n "$ns" link set lo up
      echo "$subnet.$((k + 1)) slots=1" >>"$dir/hostfile"
    done
    # No binding: every "host" is this machine, and Open MPI would bind each
    # host's first rank to the same core.
    echo "--bind-to none --mca plm_rsh_agent $here/netns-rsh.sh --mca plm_rsh_no_tree_spawn 1" \
         "--mca btl tcp,self --mca btl_tcp_if_include $subnet.0/24 --mca oob_tcp_if_include $subnet.0/24" >"$dir/mpirun-args"
    echo "netns-hosts.sh: $n hosts ($subnet.2-$subnet.$((n + 1))); hostfile $dir/hostfile"
    ;;
  link)
    [ $# -eq 3 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] && [[ $3 == up || $3 == down ]] || fail "usage: netns-hosts.sh link K up|down"
    need
    ip link set "${prefix}v$2" "$3" || fail "host $2 has no link (${prefix}v$2): run netns-hosts.sh up first"
    ;;
  rate)
    [ $# -eq 2 ] || fail "usage: netns-hosts.sh rate RATE|off (RATE as tc writes it: 1gbit, 500mbit)"
    need
    command -v tc >/dev/null || fail "tc not found: install iproute2 (apt-get install iproute2)"
    hosts=$(ip netns list | awk '{print $1}' | grep "^$prefix[0-9]*$" | sed "s/^$prefix//" | sort -n || true)
    [ -n "$hosts" ] || fail "no hosts: run netns-hosts.sh up N DIR first"
    for k in $hosts; do
      # Both directions: the bridge's end shapes what reaches the host, the host's end what leaves it.
      tc qdisc del dev "${prefix}v$k" root 2>/dev/null || true
      ip netns exec "$prefix$k" tc qdisc del dev eth0 root 2>/dev/null || true
      if [ "$2" != off ]; then
        # A burst of one 64 kB segment (no more: a real link has no credit to spend after an idle gap) and up to 50 ms of queue.
        tc qdisc add dev "${prefix}v$k" root tbf rate "$2" burst 64kb latency 50ms \
          || fail "tc cannot shape ${prefix}v$k to '$2' (is the kernel's sch_tbf module available?)"
        ip netns exec "$prefix$k" tc qdisc add dev eth0 root tbf rate "$2" burst 64kb latency 50ms
      fi
    done
    echo "netns-hosts.sh: links of hosts $(echo $hosts | tr ' ' ',') shaped: $2"
    ;;
  down)
    need
    down
    ;;
  *) sed -n '2,21p' "$0" >&2; exit 2 ;;
esac
