#!/usr/bin/env bash
# The remote-shell agent for hosts made by scripts/netns-hosts.sh: called by
# mpirun as `netns-rsh.sh HOST COMMAND…`, like ssh. It finds the network
# namespace that holds HOST's address, enters it and a new UTS namespace whose
# hostname is the namespace's name, and runs COMMAND there with sh.
set -euo pipefail
[ $# -ge 2 ] || { echo "netns-rsh.sh: usage: netns-rsh.sh HOST COMMAND…" >&2; exit 255; }
host=$1
shift
for ns in $(ip netns list | awk '{print $1}'); do
  if ip -n "$ns" -o -4 addr show 2>/dev/null | grep -q " inet $host/"; then
    exec ip netns exec "$ns" unshare --uts sh -c 'hostname "$0" && eval "$1"' "$ns" "$*"
  fi
done
echo "netns-rsh.sh: no network namespace holds the address $host (scripts/netns-hosts.sh up makes them)" >&2
exit 255
