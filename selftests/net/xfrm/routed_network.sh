#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# IPsec tunnel between two gateways, each in front of a routed network
# (see routed_lib.sh for the topology). Each case builds the topology
# afresh and is one KTAP result.

source "$(dirname "$(readlink -f "$0")")/routed_lib.sh"

PING_COUNT=${PING_COUNT:-5}

cleanup() {
	[ -z "${CAPTURE_PID:-}" ] || kill "$CAPTURE_PID" 2>/dev/null
	topo_cleanup
}
trap cleanup EXIT

# Software IPsec on both gateways: the control case the packet offload
# cases are compared with. 16.0.0.1 reaches 48.0.0.1 and back, only ESP
# crosses the ciphered segment, and both SAs on $GW count the packets.
case_software() {
	local cap out_before in_before out_after in_after esp icmp
	topo_create || return
	xfrm_setup || return 1
	cap=$(mktemp)

	out_before=$(xfrm_packets "$GW" "$GW_ADDR" "$NE_ADDR" "$SPI_OUT")
	in_before=$(xfrm_packets "$GW" "$NE_ADDR" "$GW_ADDR" "$SPI_IN")
	capture_start "$NE" p0 "$cap"
	run ip netns exec "$NS0" ping -q -c "$PING_COUNT" -i 0.2 -W 2 -I 16.0.0.1 48.0.0.1 ||
		{ capture_stop; rm -f "$cap"; return 1; }
	capture_stop
	out_after=$(xfrm_packets "$GW" "$GW_ADDR" "$NE_ADDR" "$SPI_OUT")
	in_after=$(xfrm_packets "$GW" "$NE_ADDR" "$GW_ADDR" "$SPI_IN")

	esp=$(capture_count "$cap" esp)
	icmp=$(capture_count "$cap" icmp)
	rm -f "$cap"
	echo "# ESP on the ciphered segment: $esp, clear ICMP: $icmp"
	echo "# GW SA $SPI_OUT: $out_before -> $out_after packets, SA $SPI_IN: $in_before -> $in_after"
	[ "$esp" -ge $((2 * PING_COUNT)) ] || { echo "# FAILED: expected >= $((2 * PING_COUNT)) ESP packets"; return 1; }
	[ "$icmp" -eq 0 ] || { echo "# FAILED: clear ICMP on the ciphered segment"; return 1; }
	[ $((out_after - out_before)) -ge "$PING_COUNT" ] || { echo "# FAILED: GW out SA did not count"; return 1; }
	[ $((in_after - in_before)) -ge "$PING_COUNT" ] || { echo "# FAILED: GW in SA did not count"; return 1; }
}

run_case() {
	local name=$1 ret
	shift
	"$@"
	ret=$?
	topo_cleanup
	case $ret in
	0) ktap_test_pass "$name" ;;
	"$KSFT_SKIP") ktap_test_skip "$name" ;;
	*) ktap_test_fail "$name" ;;
	esac
}

require_cmds ip ping tcpdump modprobe

ktap_print_header
ktap_set_plan 1
run_case "software IPsec, routed networks: 16.0.0.1 <-> 48.0.0.1 over ESP" case_software
ktap_finished
