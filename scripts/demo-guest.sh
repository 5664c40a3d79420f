#!/bin/bash
# Runs inside the VM (scripts/demo.sh): the report's routed network
# scenario three ways, side by side, printing what an operator would look
# at:
#   1. the stock path (the module's stock_path=1, what kernels before 6.14
#      did): the report's bug, 48.0.0.1 FAILED on p0;
#   2. no module: the base kernel's own C direct output works;
#   3. the Rust module: works, with its counters.
# With IKE=1 strongSwan brings the tunnel up, as in the report: one charon
# per gateway with the report's swanctl.conf files, `swanctl --load-all`
# and `swanctl -i --child gw` on IPSEC-GW; otherwise `ip xfrm` installs the
# same SAs and policies.
SELFTEST_DIR=$1
export XDT_MODULE=$2
source "$SELFTEST_DIR/routed_lib.sh"
source "$SELFTEST_DIR/direct_tx_lib.sh"
PING_COUNT=5
IKE=${IKE:-0}

trap swan_cleanup EXIT
debugfs_mount
if [ "$IKE" = 1 ]; then
	swan_available || exit 1
fi

section() { printf '\n=== %s ===\n' "$*"; }
show() { printf '%s$ %s\n' "${2:-}" "$1"; eval "$1" 2>&1 | sed 's/^/    /'; }

scenario() {
	swan_cleanup
	topo_create || exit 1
	if [ "$IKE" = 1 ]; then
		echo "ipsec-gw:$ swanctl --load-all; swanctl -i --child gw"
		swan_lab_up "$SELFTEST_DIR/swanctl-simulated-ne.conf" \
			"$SELFTEST_DIR/swanctl-ipsec-gw.conf" || { swan_logs; exit 1; }
		grep -E 'established|completed' "$SWAN_DIR/initiate.log" | sed 's/^/    /'
		echo "ipsec-gw:$ swanctl --list-sas"
		swan "$GW" --list-sas | sed 's/^/    /'
	else
		prime_peer_neigh || exit 1
		xfrm_setup "offload packet dev p0" || exit 1
	fi
}

# ping_run: the report's ping from ns0; prints it, returns its status.
ping_run() {
	local out rc
	echo "simulated-ne:$ ip netns exec ns0 ping -c $PING_COUNT -I 16.0.0.1 48.0.0.1"
	out=$(ip netns exec "$NS0" ping -c "$PING_COUNT" -i 0.2 -w $((PING_COUNT + 10)) \
		-I 16.0.0.1 48.0.0.1 2>&1)
	rc=$?
	printf '%s\n' "$out" | sed 's/^/    /'
	return $rc
}

scenario
section "Topology (report: 'LAB Topology'), IPSEC-GW = $GW, Simulated-NE = $NE"
show "ip -n $GW -br address" "ipsec-gw:"
show "ip -n $GW route" "ipsec-gw:"
show "ip -n $GW xfrm state | grep -E '^src|offload|aead|mode'" "ipsec-gw:"
show "ip -n $GW xfrm policy | grep -E '^src|dir|offload|tmpl'" "ipsec-gw:"

section "1. The stock path (xfrm_direct_tx stock_path=1: kernels before 6.14)"
module_load "$XDT_MODULE" stock_path=1 || exit 1
echo "simulated-ne:$ ip netns exec ns0 ping -c 5 -I 16.0.0.1 48.0.0.1"
ip netns exec "$NS0" ping -c 5 -W 1 -I 16.0.0.1 48.0.0.1 2>&1 | sed 's/^/    /'
bug_rc=${PIPESTATUS[0]}
# The entry turns FAILED once its solicitations ran out, as in the report.
slowwait 10 sh -c "ip -n $GW neigh show dev p0 to 48.0.0.1 | grep -q FAILED"
show "ip -n $GW neigh" "ipsec-gw:"
show "cat /sys/kernel/debug/xfrm_direct_tx/counters | grep -E '^(stock|direct) '" "ipsec-gw:"
bug_neigh=$(gw_neigh p0 48.0.0.1)
module_unload "$XDT_MODULE"

section "2. No module: the base kernel's C direct output (upstream 5eddd76ec2fd)"
scenario
ping_run
base_rc=$?
show "ip -n $GW neigh" "ipsec-gw:"
show "ip -n $NE -s xfrm state | grep -E '^src|current|packets'" "simulated-ne:"
base_neigh=$(gw_neigh p0 48.0.0.1)

section "3. The Rust module ($XDT_MODULE)"
scenario
module_load "$XDT_MODULE" || exit 1
ping_run
fix_rc=$?
show "ip -n $GW neigh" "ipsec-gw:"
show "cat /sys/kernel/debug/xfrm_direct_tx/counters" "ipsec-gw:"
show "cat /sys/kernel/debug/netdevsim/netdevsim$NSIM_GW_ID/ports/0/ipsec_packet" "ipsec-gw:"
show "ip -n $NE -s xfrm state | grep -E '^src|current|packets'" "simulated-ne:"
fix_neigh=$(gw_neigh p0 48.0.0.1)
fix_direct=$(hook_counter "$XDT_MODULE" direct)
module_unload "$XDT_MODULE"

section "Summary"
verdict=0
case "$bug_rc:$bug_neigh" in
[1-9]*:*FAILED*) echo "1. stock path: bug reproduced ($bug_neigh)" ;;
*) echo "1. stock path: bug NOT reproduced (ping exit $bug_rc, neighbour: ${bug_neigh:-none})"; verdict=1 ;;
esac
if [ "$base_rc" -eq 0 ] && [ -z "$base_neigh" ]; then
	echo "2. no module: 16.0.0.1 reaches 48.0.0.1, no neighbour entry for 48.0.0.1"
else
	echo "2. no module: FAILED (ping exit $base_rc, neighbour: ${base_neigh:-none})"
	verdict=1
fi
if [ "$fix_rc" -eq 0 ] && [ -z "$fix_neigh" ] && [ "$fix_direct" = "$PING_COUNT" ]; then
	echo "3. Rust module: 16.0.0.1 reaches 48.0.0.1, $fix_direct packets direct, no neighbour entry"
else
	echo "3. Rust module: FAILED (ping exit $fix_rc, direct ${fix_direct:-none}, neighbour: ${fix_neigh:-none})"
	verdict=1
fi
exit $verdict
