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

FLOOD_SECONDS=${FLOOD_SECONDS:-20}
FLOOD_INTERVAL=${FLOOD_INTERVAL:-0.01}
PING_COUNT=${PING_COUNT:-5}
GW_OFFLOAD="offload packet dev p0"

cleanup() {
	[ -z "${FLOOD_PID:-}" ] || kill "$FLOOD_PID" 2>/dev/null
	modules_unload
	topo_cleanup
}
trap cleanup EXIT

setup() {
	modules_unload
	topo_create || return
	prime_peer_neigh || { echo "# FAILED: no neighbour on the ciphered segment"; return 1; }
	xfrm_setup "$GW_OFFLOAD" || return 1
	hook_load "$XDT_MODULE" || return
	klog_mark
}

# Flood from ns0 for FLOOD_SECONDS in the background.
flood_start() {
	FLOOD_OUT=$(mktemp)
	ip netns exec "$NS0" ping -q -i "$FLOOD_INTERVAL" -w "$FLOOD_SECONDS" \
		-I 16.0.0.1 48.0.0.1 >"$FLOOD_OUT" 2>&1 &
	FLOOD_PID=$!
	# Let it run before the fault.
	sleep 3
}

# Wait for the flood to end; FLOOD_SENT and FLOOD_GOT are its totals.
flood_wait() {
	wait "$FLOOD_PID"
	FLOOD_PID=
	read -r FLOOD_SENT FLOOD_GOT <<<"$(sed -n \
		's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1 \2/p' "$FLOOD_OUT")"
	rm -f "$FLOOD_OUT"
	echo "# flood: ${FLOOD_SENT:-?} sent, ${FLOOD_GOT:-?} answered"
	[ -n "$FLOOD_GOT" ] || { echo "# FAILED: no ping summary"; return 1; }
}

# After the fault: a fresh ping goes through the hook with no neighbour
# for 48.0.0.1, the NIC's SA and the NE's SA count the same packets, and
# the kernel log is clean.
check_resumed() {
	local tx ne
	# Entries the stock path made while the hook was away do not count.
	ip -n "$GW" neigh flush dev p0 to 48.0.0.1
	check_offload_path "gw_neigh p0 48.0.0.1" \
		"nsim_sa_packets $NSIM_GW_ID out $SPI_OUT" \
		"xfrm_packets $NE $GW_ADDR $NE_ADDR $SPI_OUT" \
		ip netns exec "$NS0" ping -q -c "$PING_COUNT" -i 0.2 -w $((PING_COUNT + 10)) \
		-I 16.0.0.1 48.0.0.1 ||
		return 1
	# Every packet the NIC encrypted for the live SA was decrypted by
	# the NE: nothing is in flight once the pings are answered.
	tx=$(nsim_sa_packets "$NSIM_GW_ID" out "$SPI_OUT")
	ne=$(xfrm_packets "$NE" "$GW_ADDR" "$NE_ADDR" "$SPI_OUT")
	at_least "NE decrypted (= NIC SA tx)" "$ne" "$tx" || return 1
	at_most "NE decrypted (= NIC SA tx)" "$ne" "$tx" || return 1
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

case_sa_readd() {
	setup || return
	flood_start
	run ip -n "$GW" xfrm state delete src "$GW_ADDR" dst "$NE_ADDR" proto esp \
		spi "$SPI_OUT" || return 1
	sleep 2
	echo "# out SA deleted: XfrmOutNoStates $(xfrm_mib "$GW" XfrmOutNoStates)"
	run rekey || return 1
	flood_wait || return 1
	at_least "flood answers" "$FLOOD_GOT" 1 || return 1
	check_resumed
}

case_port_delete() {
	local direct0 direct1
	setup || return
	flood_start
	direct0=$(hook_counter "$XDT_MODULE" direct)
	nsim_del "$NSIM_GW_ID"
	sleep 2
	echo "# GW port deleted: $(ip -n "$GW" xfrm state | grep -c '^src') states," \
		"$(ip -n "$GW" xfrm policy | grep -c '^src') policies left on GW"
	run gw_port_create || return 1
	run prime_peer_neigh || return 1
	run rekey || return 1
	flood_wait || return 1
	direct1=$(hook_counter "$XDT_MODULE" direct)
	echo "# direct during the flood: $direct0 -> $direct1"
	check_resumed
}

case_module_reload() {
	local i cycles=${RELOAD_CYCLES:-20} ne0 ne1
	setup || return
	ne0=$(xfrm_packets "$NE" "$GW_ADDR" "$NE_ADDR" "$SPI_OUT")
	flood_start
	for i in $(seq "$cycles"); do
		module_unload "$XDT_MODULE" || { echo "# FAILED: unload $i"; return 1; }
		sleep 0.2
		hook_load "$XDT_MODULE" || { echo "# FAILED: load $i"; return 1; }
		sleep 0.2
	done
	echo "# $cycles unload/load cycles under the flood"
	flood_wait || return 1
	ne1=$(xfrm_packets "$NE" "$GW_ADDR" "$NE_ADDR" "$SPI_OUT")
	# Answers need the NE to have decrypted the request.
	at_least "NE decrypted during the flood" $((ne1 - ne0)) "$FLOOD_GOT" || return 1
	check_resumed
}

# The route to the SA peer moves to another next hop on p0 (the NE's
# second address: traffic goes on), then to a next hop that does not
# answer (the NIC cannot resolve it: drops, counted), then back.
case_route_change() {
	local nn0 nn1
	setup || return
	run ip -n "$NE" address add 192.168.101.1/24 dev p0 || return 1
	flood_start
	run ip -n "$GW" route add "$NE_ADDR/32" via 192.168.101.1 dev p0 || return 1
	sleep 2
	nn0=$(nsim_port_counter "$NSIM_GW_ID" tx_no_neigh)
	run ip -n "$GW" route replace "$NE_ADDR/32" via 192.168.101.99 dev p0 || return 1
	sleep 2
	nn1=$(nsim_port_counter "$NSIM_GW_ID" tx_no_neigh)
	run ip -n "$GW" route del "$NE_ADDR/32" || return 1
	echo "# next hop 192.168.101.99: NIC tx_no_neigh $nn0 -> $nn1"
	flood_wait || return 1
	at_least "NIC drops for the dead next hop" $((nn1 - nn0)) 1 || return 1
	check_resumed
}

case_kmemleak() {
	kmemleak_check
}

require_cmds ip ping modprobe insmod rmmod
debugfs_mount

ktap_print_header
ktap_set_plan 5
run_case "under load: out SA deleted and re-added" case_sa_readd
run_case "under load: offload port deleted and recreated" case_port_delete
run_case "under load: module unloaded and reloaded ${RELOAD_CYCLES:-20} times" \
	case_module_reload
run_case "under load: route to the peer changes, dead next hop, back" case_route_change
CASE_CLEANUP=true run_case "no kmemleak report after the faults" case_kmemleak
script_time
ktap_finished
