#!/bin/bash
# Runs inside the VM (scripts/demo.sh): the report's routed network
# scenario, first without the hook (the bug), then with the Rust module
# (the fix), printing what an operator would look at.
SELFTEST_DIR=$1
export XDT_MODULE=$2
source "$SELFTEST_DIR/routed_lib.sh"
PING_COUNT=5

trap topo_cleanup EXIT
debugfs_mount

section() { printf '\n=== %s ===\n' "$*"; }
show() { printf '%s$ %s\n' "${2:-}" "$1"; eval "$1" 2>&1 | sed 's/^/    /'; }

scenario() {
	topo_cleanup
	topo_create || exit 1
	prime_peer_neigh || exit 1
	xfrm_setup "offload packet dev p0" || exit 1
}

scenario
section "Topology (report: 'LAB Topology'), IPSEC-GW = $GW, Simulated-NE = $NE"
show "ip -n $GW -br address" "ipsec-gw:"
show "ip -n $GW route" "ipsec-gw:"
show "ip -n $GW xfrm state | grep -E '^src|offload|aead|mode'" "ipsec-gw:"
show "ip -n $GW xfrm policy | grep -E '^src|dir|offload|tmpl'" "ipsec-gw:"

section "1. Packet offload WITHOUT the hook (stock kernel path)"
show "ip netns exec $NS0 ping -c 3 -W 1 -I 16.0.0.1 48.0.0.1" "simulated-ne:"
show "ip -n $GW neigh" "ipsec-gw:"
bug_neigh=$(gw_neigh p0 48.0.0.1)

section "2. Packet offload WITH the Rust module ($XDT_MODULE)"
scenario
module_load "$XDT_MODULE" || exit 1
echo "simulated-ne:$ ip netns exec $NS0 ping -c $PING_COUNT -i 0.2 -W 2 -I 16.0.0.1 48.0.0.1"
out=$(ip netns exec "$NS0" ping -c "$PING_COUNT" -i 0.2 -W 2 -I 16.0.0.1 48.0.0.1 2>&1)
fix_rc=$?
printf '%s\n' "$out" | sed 's/^/    /'
show "ip -n $GW neigh" "ipsec-gw:"
show "cat /sys/kernel/debug/xfrm_direct_tx/counters" "ipsec-gw:"
show "cat /sys/kernel/debug/netdevsim/netdevsim$NSIM_GW_ID/ports/0/ipsec_packet" "ipsec-gw:"
show "ip -n $NE -s xfrm state | grep -E '^src|current|packets'" "simulated-ne:"
fix_neigh=$(gw_neigh p0 48.0.0.1)
module_unload "$XDT_MODULE"

section "Summary"
verdict=0
case "$bug_neigh" in
*FAILED* | *INCOMPLETE*) echo "without hook: bug reproduced ($bug_neigh)" ;;
*) echo "without hook: bug NOT reproduced (neighbour: ${bug_neigh:-none})"; verdict=1 ;;
esac
if [ "$fix_rc" -eq 0 ] && [ -z "$fix_neigh" ]; then
	echo "with hook: 16.0.0.1 reaches 48.0.0.1, no neighbour entry for 48.0.0.1"
else
	echo "with hook: FAILED (ping exit $fix_rc, neighbour: ${fix_neigh:-none})"
	verdict=1
fi
exit $verdict
