#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Faults under load, in the report's topology (routed_lib.sh) with packet
# offload on IPSEC-GW and the Rust hook loaded: while ns0 floods 48.0.0.1,
# the configuration breaks and comes back. Each case then checks that
# traffic resumes through the hook, that the counters add up, and that the
# kernel logged no oops, WARN, KASAN, lockdep or refcount report.

lib_dir=$(dirname "$(readlink -f "$0")")
source "$lib_dir/routed_lib.sh"
source "$lib_dir/direct_tx_lib.sh"

# The cases, in order: name (CASES selects by name or function),
# command, description.
# shellcheck disable=SC2016 # the commands expand when they run
XFRM_TESTS=(
	sa_readd case_sa_readd
		'under load: out SA deleted and re-added'
	sa_readd6 'case_sa_readd 6 6'
		'under load, IPv6: out SA deleted and re-added'
	port_delete case_port_delete
		'under load: offload port deleted and recreated'
	port_delete6 'case_port_delete 6 6'
		'under load, IPv6: offload port deleted and recreated'
	module_reload case_module_reload
		'under load: module unloaded and reloaded'
	route_change case_route_change
		'under load: route to the peer moves to a dead next hop, and back'
)

FLOOD_SECONDS=${FLOOD_SECONDS:-300}
FLOOD_INTERVAL=${FLOOD_INTERVAL:-0.01}
FLOOD_WARMUP=${FLOOD_WARMUP:-20}
FLOOD_OUT= # the flood's output (flood_start)
PING_COUNT=${PING_COUNT:-5}
GW_OFFLOAD="offload packet dev p0"

cleanup() {
	defer_scopes_cleanup
	modules_unload
	topo_cleanup
}
trap cleanup EXIT
CASE_CLEANUP=hook_case_cleanup

# setup [INNER OUTER]: the tunnel's families (tunnel_select), 4 4 by
# default.
setup() {
	modules_unload || return 1
	tunnel_select "${1:-4}" "${2:-4}"
	topo_create || return
	prime_peer_neigh || { echo "# FAILED: no neighbour on the ciphered segment"; return 1; }
	xfrm_setup "$GW_OFFLOAD" || return 1
	hook_load "$XDT_MODULE" || return
	klog_mark
}

# ne_decrypted: packets the NE's SA from $GW has decrypted.
ne_decrypted() {
	xfrm_packets "$NE" "$T_GW" "$T_NE" "$SPI_OUT"
}

# flood_start: a flood from ns0 in the background, returning once
# FLOOD_WARMUP of its packets went through the tunnel, so that the fault
# comes under load. It runs until flood_stop, FLOOD_SECONDS at most.
flood_start() {
	tmpfile FLOOD_OUT || return 1
	ip netns exec "$NS0" ping -q -i "$FLOOD_INTERVAL" -w "$FLOOD_SECONDS" \
		-I "$T_SRC" "$T_DST" >"$FLOOD_OUT" 2>&1 &
	FLOOD_PID=$!
	case_defer bg_stop "$FLOOD_PID"
	slowwait_for_counter 10 "$FLOOD_WARMUP" ne_decrypted >/dev/null ||
		{ echo "# FAILED: the flood did not get $FLOOD_WARMUP packets through"; return 1; }
}

# flood_running: the fault came while the flood still ran; a fault after
# its deadline would test nothing.
flood_running() {
	kill -0 "$FLOOD_PID" 2>/dev/null && return 0
	echo "# FAILED: the flood ended before the fault was over (FLOOD_SECONDS=$FLOOD_SECONDS)"
	return 1
}

# flood_through: the flood, still running, gets FLOOD_WARMUP packets
# through the tunnel again after the fault (the NE's SA counts them).
flood_through() {
	flood_running || return 1
	slowwait_for_counter 10 "$FLOOD_WARMUP" ne_decrypted >/dev/null ||
		{ echo "# FAILED: the flood did not get through again"; return 1; }
}

# flood_stop: the flood ends; FLOOD_SENT and FLOOD_GOT are its totals.
flood_stop() {
	flood_running || return 1
	# ping prints its summary on SIGINT.
	kill -INT "$FLOOD_PID"
	wait "$FLOOD_PID"
	FLOOD_PID=
	read -r FLOOD_SENT FLOOD_GOT <<<"$(sed -n \
		's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1 \2/p' "$FLOOD_OUT")"
	echo "# flood: ${FLOOD_SENT:-?} sent, ${FLOOD_GOT:-?} answered"
	[ -n "$FLOOD_GOT" ] || { echo "# FAILED: no ping summary"; return 1; }
}

# After the fault: a fresh ping goes through the hook with no neighbour
# for the inner destination, the NIC's SA and the NE's SA count the same
# packets, and the kernel log is clean.
check_resumed() {
	local tx ne
	# Entries the stock path made while the hook was away do not count.
	ip -n "$GW" neigh flush dev p0 to "$T_DST"
	check_offload_path "gw_neigh p0 $T_DST" \
		"nsim_sa_packets $NSIM_GW_ID out $SPI_OUT" \
		"xfrm_packets $NE $T_GW $T_NE $SPI_OUT" \
		ping_routed "$NS0" "$T_SRC" "$T_DST" || return 1
	# Every packet the NIC encrypted for the live SA was decrypted by
	# the NE: nothing is in flight once the pings are answered.
	tx=$(nsim_sa_packets "$NSIM_GW_ID" out "$SPI_OUT")
	ne=$(xfrm_packets "$NE" "$T_GW" "$T_NE" "$SPI_OUT")
	exactly "NE decrypted (= NIC SA tx)" "$ne" "$tx" || return 1
	klog_check
}

# Both ends forget the tunnel's SAs and policies and install them again,
# as a restarted IKE daemon would (the NE must reset its replay window).
rekey() {
	ip -n "$GW" xfrm policy flush
	ip -n "$GW" xfrm state flush
	ip -n "$NE" xfrm policy flush
	ip -n "$NE" xfrm state flush
	xfrm_setup "$GW_OFFLOAD"
}

# [INNER OUTER] as for setup.
case_sa_readd() {
	local nostates
	setup "$@" || return
	flood_start || return 1
	run ip -n "$GW" xfrm state delete src "$T_GW" dst "$T_NE" proto esp \
		spi "$SPI_OUT" || return 1
	# The flood's packets now find the policy and no state.
	nostates=$(slowwait_for_counter 10 10 xfrm_mib "$GW" XfrmOutNoStates) ||
		{ echo "# FAILED: XfrmOutNoStates did not rise with the out SA gone"; return 1; }
	echo "# out SA deleted: XfrmOutNoStates $nostates"
	run rekey || return 1
	flood_through || return 1
	flood_stop || return 1
	check_resumed
}

# offloaded_left WHAT: $GW's offloaded states or policies.
offloaded_left() {
	count_matching offload ip -n "$GW" xfrm "$1"
}

# [INNER OUTER] as for setup.
case_port_delete() {
	local direct0 direct1
	setup "$@" || return
	flood_start || return 1
	direct0=$(hook_counter "$XDT_MODULE" direct)
	nsim_del "$NSIM_GW_ID"
	# The device's unregistration flushes what was offloaded to it.
	slowwait 10 prints 0 offloaded_left state
	exactly "offloaded states left on GW after the port went" "$(offloaded_left state)" 0 ||
		return 1
	exactly "offloaded policies left on GW after the port went" \
		"$(offloaded_left policy)" 0 || return 1
	run gw_port_create || return 1
	run prime_peer_neigh || return 1
	run rekey || return 1
	flood_through || return 1
	flood_stop || return 1
	direct1=$(hook_counter "$XDT_MODULE" direct)
	echo "# direct during the flood: $direct0 -> $direct1"
	check_resumed
}

case_module_reload() {
	local i cycles=$LOAD_CYCLES ne0 ne1
	setup || return
	ne0=$(ne_decrypted)
	flood_start || return 1
	for i in $(seq "$cycles"); do
		module_unload "$XDT_MODULE" || { echo "# FAILED: unload $i"; return 1; }
		# The flood goes on without the hook (the kernel's direct output)...
		slowwait_for_counter 10 1 ne_decrypted >/dev/null || {
			echo "# FAILED: no packet through after unload $i"
			flood_running
			return 1
		}
		hook_load "$XDT_MODULE" || { echo "# FAILED: load $i"; return 1; }
		# ... and through the hook once it is back.
		slowwait_for_counter 10 1 hook_counter "$XDT_MODULE" direct >/dev/null || {
			echo "# FAILED: no packet through the hook after load $i"
			flood_running
			sed 's/^/# /' "/sys/kernel/debug/$(basename "$XDT_MODULE" .ko)/counters"
			return 1
		}
	done
	echo "# $cycles unload/load cycles under the flood"
	flood_through || return 1
	flood_stop || return 1
	ne1=$(ne_decrypted)
	# Answers need the NE to have decrypted the request.
	delta "NE decrypted during the flood" "$ne0" "$ne1" "$FLOOD_GOT" at_least || return 1
	check_resumed
}

# The route to the SA peer moves to a next hop that does not answer, then
# back. The NIC, as mlx5's, keeps the next hop it took when the SA was
# added and follows no route: the flood goes on to the NE, nothing is
# dropped for want of a neighbour, and the stack resolves nothing for the
# dead next hop (the hook skips the neighbour layer).
case_route_change() {
	local ne_mac sa_mac nn0 nn1
	setup || return
	ne_mac=$(ip -n "$NE" -br link show dev p0 | awk '{ print $3 }')
	nn0=$(nsim_port_counter "$NSIM_GW_ID" tx_no_neigh)
	flood_start || return 1
	run ip -n "$GW" route add "$NE_ADDR/32" via 192.168.101.99 dev p0 || return 1
	flood_through || return 1
	flood_running || return 1
	sa_mac=$(nsim_sa_field "$NSIM_GW_ID" out "$SPI_OUT" next_hop)
	nn1=$(nsim_port_counter "$NSIM_GW_ID" tx_no_neigh)
	echo "# route via 192.168.101.99: the NIC sends to $sa_mac (NE p0 $ne_mac)," \
		"tx_no_neigh $nn0 -> $nn1"
	exactly "NIC SA next hop (the NE's p0)" "$sa_mac" "$ne_mac" || return 1
	exactly "NIC drops for want of a neighbour" "$nn1" "$nn0" || return 1
	! ip -n "$GW" neigh show dev p0 to 192.168.101.99 | grep -q . ||
		{ echo "# FAILED: the stack resolved the dead next hop"; return 1; }
	run ip -n "$GW" route del "$NE_ADDR/32" || return 1
	flood_through || return 1
	flood_stop || return 1
	check_resumed
}

require_cmds ip ping modprobe insmod rmmod
debugfs_mount
# NIPA scans kmemleak after each script itself; this names the script.
! kmemleak_available ||
	XFRM_TESTS+=(kmemleak kmemleak_check "no kmemleak report after the faults")

run_tests
