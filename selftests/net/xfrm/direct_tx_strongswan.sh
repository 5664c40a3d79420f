#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The strongSwan lab of routed_strongswan.sh (the report's own
# swanctl.conf files) with the xfrm output hook: the report's output
# through the Rust module's stock_path mode, and the lab's direct output
# and CHILD_SA re-key through the Rust hook, each packet the NIC sends
# counted by the module.

lib_dir=$(dirname "$(readlink -f "$0")")
source "$lib_dir/routed_strongswan.sh"
source "$lib_dir/direct_tx_lib.sh"

# The cases, in order: name (CASES selects by name or function),
# command, description.
# shellcheck disable=SC2016 # the commands expand when they run
XFRM_TESTS=(
	report_stock_path case_report_stock_path
		"strongSwan: stock path (stock_path=1): the report's output, 48.0.0.1 FAILED"
	hook_direct 'with_hook "$XDT_MODULE" case_direct'
		'strongSwan: Rust hook: 16.0.0.1 -> 48.0.0.1 direct, exact counts'
	hook_rekey 'with_hook "$XDT_MODULE" case_rekey'
		'strongSwan: CHILD_SA re-key under a ping flood, all through the Rust hook'
)

hook_lab_cleanup() {
	modules_unload || return 1
	lab_cleanup
}
CASE_CLEANUP=hook_lab_cleanup
trap 'defer_scopes_cleanup; hook_lab_cleanup' EXIT

# The report's "ping -I 16.0.0.1 48.0.0.1" with the module's stock path
# (stock_path=1, what kernels before 6.14 did): the report's output.
case_report_stock_path() {
	local m=$XDT_MODULE out stock0 stock1 neigh sent
	lab_up || return
	module_load "$m" stock_path=1 || return
	stock0=$(hook_counter "$m" stock)
	out=$(ip netns exec "$NS0" ping -c 5 -w 8 -I 16.0.0.1 48.0.0.1 2>&1)
	stock1=$(hook_counter "$m" stock)
	echo "# simulated-ne:$ ip netns exec ns0 ping -I 16.0.0.1 48.0.0.1"
	awk '{ print "#   " $0 }' <<<"$out"
	slowwait 10 sh -c "ip -n $GW neigh show dev p0 to 48.0.0.1 | grep -q FAILED"
	neigh=$(gw_neigh p0 48.0.0.1)
	echo "# ipsec-gw:$ ip neigh"
	ip -n "$GW" neigh | sed 's/^/#   /'
	grep -Eq '^From 10\.0\.0\.254 icmp_seq=[0-9]+ Destination Host Unreachable' <<<"$out" ||
		{ echo "# FAILED: no 'Destination Host Unreachable' from 10.0.0.254"; return 1; }
	grep -q ' 0 received' <<<"$out" || { echo "# FAILED: 48.0.0.1 answered"; return 1; }
	case "$neigh" in
	*FAILED*) ;;
	*) echo "# FAILED: expected 48.0.0.1 FAILED on p0, got '${neigh:-none}'"; return 1 ;;
	esac
	# ping stops early once every request sent has an answer or an error.
	sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' <<<"$out")
	at_least "requests sent" "${sent:-0}" 1 || return 1
	delta "requests through the stock path" "$stock0" "$stock1" "$sent"
}

require_cmds ip ping modprobe insmod rmmod timeout unshare mount
debugfs_mount

run_tests
