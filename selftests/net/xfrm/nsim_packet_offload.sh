#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# netdevsim IPsec packet offload emulation against a software IPsec peer.
#
#   $A: netdevsim p0, packet offload    $B: netdevsim p0, software IPsec
#   192.168.1.1/24, 2001:db8:1::1/64    192.168.1.2/24, 2001:db8:1::2/64
#   10.1.0.1, 2001:db8:a::1             10.2.0.1, 2001:db8:b::1
#
# Traffic is generated on $A, so it takes the stock packet offload path,
# which resolves a neighbour for the inner destination on p0: the inner
# addresses are on p0 too, so that resolution succeeds (the connected
# case; routed_network.sh has the routed one). Each case checks both
# directions and the counters on both sides: the emulated NIC's per-SA
# counters on $A, the software SAs' on $B.
#
# NSIM_FAULT=fail_tx|fail_encrypt turns that fault switch of $A's NIC on
# in every case: the traffic cases must then fail (a check of the checks).

source "$(dirname "$(readlink -f "$0")")/routed_lib.sh"

PING_COUNT=${PING_COUNT:-4}
A_ID= B_ID=

cleanup() {
	cleanup_all_ns
	nsim_del "$A_ID" "$B_ID"
	A_ID= B_ID=
}
trap cleanup EXIT
CASE_CLEANUP=cleanup

setup() {
	cleanup
	modprobe -q netdevsim 2>/dev/null
	[ -w "$NSIM_SYS/new_device" ] || return "$KSFT_SKIP"
	setup_ns A B || return 1
	A_ID=$(nsim_add "$A" p0) || return 1
	B_ID=$(nsim_add "$B" p0) || return 1
	nsim_link "$A" p0 "$B" p0 || return 1
	ip -n "$A" addr add 192.168.1.1/24 dev p0
	ip -n "$B" addr add 192.168.1.2/24 dev p0
	ip -n "$A" addr add 2001:db8:1::1/64 dev p0 nodad
	ip -n "$B" addr add 2001:db8:1::2/64 dev p0 nodad
	ip -n "$A" addr add 10.1.0.1/32 dev p0
	ip -n "$B" addr add 10.2.0.1/32 dev p0
	ip -n "$A" addr add 2001:db8:a::1/128 dev p0 nodad
	ip -n "$B" addr add 2001:db8:b::1/128 dev p0 nodad
	ip -n "$A" link set p0 up
	ip -n "$B" link set p0 up
	ip -n "$A" route add 10.2.0.1/32 via 192.168.1.2
	ip -n "$B" route add 10.1.0.1/32 via 192.168.1.1
	ip -n "$A" route add 2001:db8:b::1/128 via 2001:db8:1::2
	ip -n "$B" route add 2001:db8:a::1/128 via 2001:db8:1::1
	ip netns exec "$A" ping -q -c 1 -W 2 192.168.1.2 >/dev/null &&
		ip netns exec "$A" ping -q -c 1 -W 2 2001:db8:1::2 >/dev/null || return 1
	[ -z "${NSIM_FAULT:-}" ] || nsim_fault "$A_ID" "$NSIM_FAULT" 1
}

# sa_pair MODE OUTER_A OUTER_B INNER_A INNER_B [SEQ]: SAs and policies
# on both sides, packet offload on $A; SEQ starts every sequence number.
# The states' selectors name the inner addresses, which cross-family
# tunnels need (a state's selector is of its own family by default).
sa_pair() {
	local mode=$1 oa=$2 ob=$3 ia=$4 ib=$5 out=() in=()
	local off="offload packet dev p0"
	[ -z "${6:-}" ] || { out=(replay-oseq "$6"); in=(replay-seq "$6"); }
	run ip -n "$A" xfrm state add src "$oa" dst "$ob" proto esp spi 0x100 reqid 1 \
		mode "$mode" flag esn replay-window 0 aead "$AEAD_ALG" "$KEY_OUT" 128 \
		sel src "$ia" dst "$ib" "${out[@]}" $off dir out || return 1
	run ip -n "$A" xfrm state add src "$ob" dst "$oa" proto esp spi 0x200 reqid 2 \
		mode "$mode" flag esn replay-window 128 aead "$AEAD_ALG" "$KEY_IN" 128 \
		sel src "$ib" dst "$ia" "${in[@]}" $off dir in || return 1
	run ip -n "$A" xfrm policy add src "$ia" dst "$ib" dir out \
		tmpl src "$oa" dst "$ob" proto esp reqid 1 mode "$mode" $off || return 1
	run ip -n "$A" xfrm policy add src "$ib" dst "$ia" dir in \
		tmpl src "$ob" dst "$oa" proto esp reqid 2 mode "$mode" $off || return 1
	run ip -n "$B" xfrm state add src "$oa" dst "$ob" proto esp spi 0x100 reqid 1 \
		mode "$mode" flag esn replay-window 128 aead "$AEAD_ALG" "$KEY_OUT" 128 \
		sel src "$ia" dst "$ib" "${in[@]}" || return 1
	run ip -n "$B" xfrm state add src "$ob" dst "$oa" proto esp spi 0x200 reqid 2 \
		mode "$mode" flag esn replay-window 128 aead "$AEAD_ALG" "$KEY_IN" 128 \
		sel src "$ib" dst "$ia" "${out[@]}" || return 1
	run ip -n "$B" xfrm policy add src "$ib" dst "$ia" dir out \
		tmpl src "$ob" dst "$oa" proto esp reqid 2 mode "$mode" || return 1
	run ip -n "$B" xfrm policy add src "$ia" dst "$ib" dir in \
		tmpl src "$oa" dst "$ob" proto esp reqid 1 mode "$mode" || return 1
}

# traffic OUTER_A OUTER_B PING_SRC PING_DST: ping from $A, then check the
# NIC counters on $A and the software SA counters on $B.
traffic() {
	local oa=$1 ob=$2 src=$3 dst=$4 tx rx b_in b_out
	run ip netns exec "$A" ping -q -c "$PING_COUNT" -i 0.2 -W 2 -I "$src" "$dst" || return 1
	tx=$(nsim_sa_packets "$A_ID" out 0x100)
	rx=$(nsim_sa_packets "$A_ID" in 0x200)
	b_in=$(xfrm_packets "$B" "$oa" "$ob" 0x100)
	b_out=$(xfrm_packets "$B" "$ob" "$oa" 0x200)
	echo "# NIC tx $tx rx $rx; software peer decrypted $b_in, encrypted $b_out"
	at_least "NIC out SA packets" "$tx" "$PING_COUNT" &&
		at_least "NIC in SA packets" "$rx" "$PING_COUNT" &&
		at_least "peer in SA packets" "$b_in" "$PING_COUNT" &&
		at_least "peer out SA packets" "$b_out" "$PING_COUNT"
}

case_tunnel4() {
	setup || return
	sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 || return 1
	traffic 192.168.1.1 192.168.1.2 10.1.0.1 10.2.0.1
}

case_tunnel6() {
	setup || return
	sa_pair tunnel 2001:db8:1::1 2001:db8:1::2 2001:db8:a::1/128 2001:db8:b::1/128 ||
		return 1
	traffic 2001:db8:1::1 2001:db8:1::2 2001:db8:a::1 2001:db8:b::1
}

# Cross-family packet offload tunnels, from $A itself. The stack sends
# locally generated packets of a packet offload state through the route's
# own output, which is of the outer family, while the packet is still of
# the inner one: it refuses them, each counted in XfrmOutError, and none
# reaches the device. (Forwarded traffic takes direct output and goes
# through: routed_network.sh.)
cross_family() {
	local oa=$1 ob=$2 src=$3 dst=$4 gen0 gen1 err0 err1
	gen0=$(xfrm_mib "$A" XfrmOutBundleGenError)
	err0=$(xfrm_mib "$A" XfrmOutError)
	# -W without -w: exactly PING_COUNT requests, answered or not.
	if ip netns exec "$A" ping -q -c "$PING_COUNT" -i 0.2 -W 1 -I "$src" "$dst" >/dev/null; then
		echo "# FAILED: a locally generated cross-family packet was answered"
		return 1
	fi
	gen1=$(xfrm_mib "$A" XfrmOutBundleGenError)
	err1=$(xfrm_mib "$A" XfrmOutError)
	echo "# XfrmOutBundleGenError $gen0 -> $gen1, XfrmOutError $err0 -> $err1"
	exactly "XfrmOutBundleGenError" $((gen1 - gen0)) 0 &&
		exactly "XfrmOutError" $((err1 - err0)) "$PING_COUNT" &&
		exactly "NIC out SA packets" "$(nsim_sa_packets "$A_ID" out 0x100)" 0 &&
		exactly "peer in SA packets" "$(xfrm_packets "$B" "$oa" "$ob" 0x100)" 0
}

case_4in6() {
	setup || return
	sa_pair tunnel 2001:db8:1::1 2001:db8:1::2 10.1.0.1/32 10.2.0.1/32 || return 1
	cross_family 2001:db8:1::1 2001:db8:1::2 10.1.0.1 10.2.0.1
}

case_6in4() {
	setup || return
	sa_pair tunnel 192.168.1.1 192.168.1.2 2001:db8:a::1/128 2001:db8:b::1/128 || return 1
	cross_family 192.168.1.1 192.168.1.2 2001:db8:a::1 2001:db8:b::1
}

case_transport4() {
	setup || return
	sa_pair transport 192.168.1.1 192.168.1.2 192.168.1.1/32 192.168.1.2/32 || return 1
	traffic 192.168.1.1 192.168.1.2 192.168.1.1 192.168.1.2
}

case_transport6() {
	setup || return
	sa_pair transport 2001:db8:1::1 2001:db8:1::2 2001:db8:1::1/128 2001:db8:1::2/128 ||
		return 1
	traffic 2001:db8:1::1 2001:db8:1::2 2001:db8:1::1 2001:db8:1::2
}

# ESN: both out sequence numbers start just below 2^32, so the pings
# carry the high half over in both directions.
case_esn_wrap() {
	local seq
	setup || return
	sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 4294967294 || return 1
	traffic 192.168.1.1 192.168.1.2 10.1.0.1 10.2.0.1 || return 1
	seq=$(sed -n 's/^packet sa out spi=0x00000100 .* seq=\([0-9]*\) .*/\1/p' \
		"/sys/kernel/debug/netdevsim/netdevsim$A_ID/ports/0/ipsec_packet")
	echo "# NIC out sequence number now $seq"
	at_least "NIC out sequence number past 2^32" "$seq" 4294967297
}

# A replayed frame and one with a forged sequence number (so a bad ICV)
# reach $A's NIC: both dropped and counted, neither delivered.
case_replay_badicv() {
	local cap rx0 rx1 replay0 replay1 icv0 icv1 sa_replay= sa_icv=
	setup || return
	sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 || return 1
	cap=$(mktemp)
	# $B's own ESP (to $A's NIC): on receive a tap would also see $A's.
	# A loaded TCG guest may start tcpdump late: try again until it has
	# recorded one.
	local try
	for try in 1 2 3; do
		capture_start "$B" p0 "$cap" -Q out
		run ip netns exec "$A" ping -q -c 2 -i 0.2 -W 2 -I 10.1.0.1 10.2.0.1 ||
			{ capture_stop; rm -f "$cap"; return 1; }
		capture_stop
		[ "$(capture_count "$cap" esp)" -eq 0 ] || break
		echo "# capture $try recorded no ESP frame"
	done
	rx0=$(nsim_sa_packets "$A_ID" in 0x200)
	replay0=$(nsim_port_counter "$A_ID" rx_replay)
	icv0=$(nsim_port_counter "$A_ID" rx_bad_icv)
	ip netns exec "$B" python3 "$lib_dir/esp_inject.py" "$cap" p0 replay &&
		ip netns exec "$B" python3 "$lib_dir/esp_inject.py" "$cap" p0 badicv
	local ret=$?
	rm -f "$cap"
	[ $ret -eq 0 ] || { echo "# FAILED: could not inject"; return 1; }
	sleep 0.5
	rx1=$(nsim_sa_packets "$A_ID" in 0x200)
	replay1=$(nsim_port_counter "$A_ID" rx_replay)
	icv1=$(nsim_port_counter "$A_ID" rx_bad_icv)
	# "stats: replay-window W replay R failed F", as the NIC reported it
	read -r sa_replay sa_icv < <(ip -n "$A" -s xfrm state get src 192.168.1.2 \
		dst 192.168.1.1 proto esp spi 0x200 |
		sed -n 's/.*replay-window [0-9]* replay \([0-9]*\) failed \([0-9]*\).*/\1 \2/p')
	echo "# NIC rx: $rx0 -> $rx1, replay drops: $replay0 -> $replay1," \
		"bad ICV drops: $icv0 -> $icv1; SA stats: replay $sa_replay failed $sa_icv"
	at_most "packets delivered from injected frames" $((rx1 - rx0)) 0 &&
		at_least "replay drops" $((replay1 - replay0)) 1 &&
		at_least "bad ICV drops" $((icv1 - icv0)) 1 &&
		at_least "SA replay statistic" "$sa_replay" 1 &&
		at_least "SA integrity failure statistic" "$sa_icv" 1
}

# Deleting $A's device while its port has offloaded SAs and policies:
# unregistering the port flushes them through the driver's delete and
# free callbacks, and nothing of them may be left, in the stack or on the
# port (netdevsim WARNs on leftovers, the VM runner fails on any
# WARNING). Only this test's device goes: others on the system stay.
case_delete_with_sas() {
	setup || return
	sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 || return 1
	traffic 192.168.1.1 192.168.1.2 10.1.0.1 10.2.0.1 || return 1
	exactly "offloaded SAs on \$A before" \
		"$(ip -n "$A" xfrm state | grep -c 'offload')" 2 || return 1
	exactly "offloaded policies on \$A before" \
		"$(ip -n "$A" xfrm policy | grep -c 'offload')" 2 || return 1
	nsim_del "$A_ID"
	A_ID=
	exactly "SAs left on \$A" "$(ip -n "$A" xfrm state | grep -c '^src')" 0 || return 1
	exactly "policies left on \$A" "$(ip -n "$A" xfrm policy | grep -c '^src')" 0
}

require_cmds ip ping tcpdump python3
debugfs_mount

ktap_print_header
ktap_set_plan 10
run_case "tunnel, IPv4 in IPv4" case_tunnel4
run_case "tunnel, IPv6 in IPv6" case_tunnel6
run_case "tunnel, IPv4 in IPv6, locally generated: refused and counted" case_4in6
run_case "tunnel, IPv6 in IPv4, locally generated: refused and counted" case_6in4
run_case "transport, IPv4" case_transport4
run_case "transport, IPv6" case_transport6
run_case "ESN: sequence numbers cross 2^32 both ways" case_esn_wrap
run_case "RX: replayed and forged (bad ICV) frames dropped and counted" case_replay_badicv
run_case "teardown: device deleted with offloaded SAs and policies, all flushed" \
	case_delete_with_sas
CASE_CLEANUP=true run_case "no kmemleak report after the cases above" kmemleak_check
script_time
ktap_finished
