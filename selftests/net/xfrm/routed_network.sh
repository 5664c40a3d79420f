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
	local cap_gw cap_ne out_before in_before out_after in_after esp icmp
	topo_create || return
	xfrm_setup || return 1
	cap_gw=$(mktemp)
	cap_ne=$(mktemp)

	out_before=$(xfrm_packets "$GW" "$GW_ADDR" "$NE_ADDR" "$SPI_OUT")
	in_before=$(xfrm_packets "$GW" "$NE_ADDR" "$GW_ADDR" "$SPI_IN")
	# What each side puts on the ciphered segment. (On receive, taps see
	# the ESP packet and then the decrypted one, hence egress only.)
	capture_start "$GW" p0 "$cap_gw" -Q out
	local gw_pid=$CAPTURE_PID
	capture_start "$NE" p0 "$cap_ne" -Q out
	run ip netns exec "$NS0" ping -q -c "$PING_COUNT" -i 0.2 -W 2 -I 16.0.0.1 48.0.0.1
	local ret=$?
	capture_stop
	CAPTURE_PID=$gw_pid
	capture_stop
	out_after=$(xfrm_packets "$GW" "$GW_ADDR" "$NE_ADDR" "$SPI_OUT")
	in_after=$(xfrm_packets "$GW" "$NE_ADDR" "$GW_ADDR" "$SPI_IN")

	esp=$(( $(capture_count "$cap_gw" esp) + $(capture_count "$cap_ne" esp) ))
	icmp=$(( $(capture_count "$cap_gw" icmp) + $(capture_count "$cap_ne" icmp) ))
	rm -f "$cap_gw" "$cap_ne"
	[ $ret -eq 0 ] || return 1
	echo "# ESP on the ciphered segment: $esp, clear ICMP: $icmp"
	echo "# GW SA $SPI_OUT: $out_before -> $out_after packets," \
		"SA $SPI_IN: $in_before -> $in_after"
	# The capture shows that ESP, and only ESP, crosses the segment; the
	# SA counters below give the exact numbers (a capture under TCG may
	# miss the first frame).
	at_least "ESP packets on the ciphered segment" "$esp" "$PING_COUNT" || return 1
	at_most "clear ICMP packets on the ciphered segment" "$icmp" 0 || return 1
	at_least "GW out SA packets" $((out_after - out_before)) "$PING_COUNT" || return 1
	at_least "GW in SA packets" $((in_after - in_before)) "$PING_COUNT"
}

GW_OFFLOAD="offload packet dev p0"

# The report's setup: packet offload on $GW, software on $NE.
offload_setup() {
	topo_create || return
	prime_peer_neigh || { echo "# FAILED: no neighbour on the ciphered segment"; return 1; }
	xfrm_setup "$GW_OFFLOAD" || return 1
}

# ping_routed FROM_NS SRC DST: 0% loss or fail.
ping_routed() {
	ip netns exec "$1" ping -q -c "$PING_COUNT" -i 0.2 -W 2 -I "$2" "$3"
}

# Without a hook, the stock path resolves a neighbour for the *inner*
# destination on the offload port: the report's bug. The case passes
# only if the bug is there.
case_bug_without_hook() {
	local neigh
	module_unload "$XDT_MODULE"
	module_unload "$XDT_CREF_MODULE"
	offload_setup || return
	if ip netns exec "$NS0" ping -q -c 3 -i 0.3 -W 1 -I 16.0.0.1 48.0.0.1 >/dev/null; then
		echo "# FAILED: 48.0.0.1 answered without the hook: the bug did not reproduce"
		return 1
	fi
	neigh=$(gw_neigh p0 48.0.0.1)
	echo "# GW neighbour table on p0: ${neigh:-<none>}"
	case "$neigh" in
	*FAILED* | *INCOMPLETE*) return 0 ;;
	*) echo "# FAILED: expected 48.0.0.1 FAILED/INCOMPLETE on p0"; return 1 ;;
	esac
}

# With the hook: forwarded tunnel traffic goes straight to the offload
# port, and nothing on $GW tries to resolve 48.0.0.1.
# check_direct MODULE FROM_NS SRC DST
check_direct() {
	local m=$1 from=$2 src=$3 dst=$4 direct0 direct1 tx0 tx1 ne0 ne1 neigh
	direct0=$(hook_counter "$m" direct)
	tx0=$(nsim_sa_packets "$NSIM_GW_ID" out "$SPI_OUT")
	ne0=$(xfrm_packets "$NE" "$GW_ADDR" "$NE_ADDR" "$SPI_OUT")
	run ping_routed "$from" "$src" "$dst" || return 1
	direct1=$(hook_counter "$m" direct)
	tx1=$(nsim_sa_packets "$NSIM_GW_ID" out "$SPI_OUT")
	ne1=$(xfrm_packets "$NE" "$GW_ADDR" "$NE_ADDR" "$SPI_OUT")
	neigh=$(gw_neigh p0 "$dst")
	echo "# direct: $direct0 -> $direct1, NIC SA $SPI_OUT tx: $tx0 -> $tx1," \
		"NE decrypted: $ne0 -> $ne1"
	[ -z "$neigh" ] || { echo "# FAILED: GW has a neighbour entry: $neigh"; return 1; }
	at_least "module direct counter" $((direct1 - direct0)) "$PING_COUNT" || return 1
	at_least "NIC out SA packets" $((tx1 - tx0)) "$PING_COUNT" || return 1
	at_least "NE in SA packets" $((ne1 - ne0)) "$PING_COUNT"
}

case_fixed_with_hook() {
	local m=$1
	module_unload "$XDT_MODULE"
	module_unload "$XDT_CREF_MODULE"
	offload_setup || return
	run module_load "$m" || return 1
	check_direct "$m" "$NS0" 16.0.0.1 48.0.0.1
	local ret=$?
	module_unload "$m"
	return $ret
}

# ns1 -> ns0: $NE encrypts in software, $GW's NIC decrypts; $GW's replies
# are forwarded tunnel traffic again, so they take the hook.
case_reverse() {
	local m=$1 rx0 rx1 ret
	offload_setup || return
	run module_load "$m" || return 1
	rx0=$(nsim_sa_packets "$NSIM_GW_ID" in "$SPI_IN")
	check_direct "$m" "$NS1" 48.0.0.1 16.0.0.1
	ret=$?
	rx1=$(nsim_sa_packets "$NSIM_GW_ID" in "$SPI_IN")
	echo "# NIC SA $SPI_IN rx: $rx0 -> $rx1"
	[ $ret -ne 0 ] || at_least "NIC in SA packets" $((rx1 - rx0)) "$PING_COUNT" || ret=1
	module_unload "$m"
	return $ret
}

# Forwarded transport mode (16.0.0.1 -> Simulated-NE itself, ESP from
# IPSEC-GW's NIC): the stock path while direct_transport is off, direct
# output once it is set at run time; both deliver.
case_transport_param() {
	local m=$1 param value declined0 declined1 direct0 direct1 ret=0
	offload_setup || return
	run ip -n "$GW" xfrm state add src 16.0.0.1 dst "$NE_ADDR" proto esp spi 0x3000 \
		reqid 3 mode transport flag esn replay-window 0 aead "$AEAD_ALG" "$KEY_OUT" 128 \
		$GW_OFFLOAD dir out || return 1
	run ip -n "$GW" xfrm policy add src 16.0.0.1/32 dst "$NE_ADDR/32" dir out \
		tmpl src 16.0.0.1 dst "$NE_ADDR" proto esp reqid 3 mode transport \
		$GW_OFFLOAD || return 1
	run ip -n "$NE" xfrm state add src 16.0.0.1 dst "$NE_ADDR" proto esp spi 0x3000 \
		reqid 3 mode transport flag esn replay-window 128 aead "$AEAD_ALG" "$KEY_OUT" 128 ||
		return 1
	run ip -n "$NE" xfrm policy add src 16.0.0.1/32 dst "$NE_ADDR/32" dir in \
		tmpl src 16.0.0.1 dst "$NE_ADDR" proto esp reqid 3 mode transport || return 1
	# ns0 reaches Simulated-NE through IPSEC-GW, which answers 16.0.0.1 in
	# the clear through IPSEC-GW.
	ip -n "$NS0" route add "$NE_ADDR/32" via 10.0.0.254
	ip -n "$NE" route add 16.0.0.0/8 via "$GW_ADDR"
	run module_load "$m" || return 1
	param=/sys/module/$(basename "$m" .ko)/parameters/direct_transport
	for value in 0 1; do
		echo "$value" >"$param" || { ret=1; break; }
		declined0=$(hook_counter "$m" declined_transport)
		direct0=$(hook_counter "$m" direct)
		run ping_routed "$NS0" 16.0.0.1 "$NE_ADDR" || { ret=1; break; }
		declined1=$(hook_counter "$m" declined_transport)
		direct1=$(hook_counter "$m" direct)
		echo "# direct_transport=$(cat "$param"): declined_transport" \
			"$declined0 -> $declined1, direct $direct0 -> $direct1"
		if [ "$value" = 0 ]; then
			at_least "declined (stock path)" $((declined1 - declined0)) "$PING_COUNT" &&
				at_most "direct" $((direct1 - direct0)) 0 || ret=1
		else
			at_least "direct" $((direct1 - direct0)) "$PING_COUNT" &&
				at_most "declined" $((declined1 - declined0)) 0 || ret=1
		fi
	done
	at_least "NE transport SA packets" "$(xfrm_packets "$NE" 16.0.0.1 "$NE_ADDR" 0x3000)" \
		$((2 * PING_COUNT)) || ret=1
	module_unload "$m"
	return $ret
}

# The hook is one slot: a second module is refused with -EBUSY.
case_second_registrant() {
	local out ret=0
	module_unload "$XDT_MODULE"
	module_unload "$XDT_CREF_MODULE"
	run module_load "$XDT_MODULE" || return 1
	if out=$(module_load "$XDT_CREF_MODULE" 2>&1); then
		echo "# FAILED: second registrant loaded"
		module_unload "$XDT_CREF_MODULE"
		ret=1
	else
		echo "# second registrant refused: $out"
		case "$out" in *busy*|*Busy*|*EBUSY*) ;; *) ret=1 ;; esac
	fi
	module_unload "$XDT_MODULE"
	return $ret
}

# Load, read the counters, unload; repeatedly. kmemleak, if the kernel
# has it, must find nothing new.
case_load_cycles() {
	local i cycles=${LOAD_CYCLES:-100} leaks
	module_unload "$XDT_MODULE"
	module_unload "$XDT_CREF_MODULE"
	[ ! -w /sys/kernel/debug/kmemleak ] || echo clear >/sys/kernel/debug/kmemleak
	for i in $(seq "$cycles"); do
		module_load "$XDT_MODULE" || { echo "# FAILED: load $i"; return 1; }
		[ -n "$(hook_counter "$XDT_MODULE" direct)" ] ||
			{ echo "# FAILED: no counters at cycle $i"; return 1; }
		rmmod "$(basename "$XDT_MODULE" .ko)" || { echo "# FAILED: unload $i"; return 1; }
	done
	echo "# $cycles load/read/unload cycles"
	if [ -w /sys/kernel/debug/kmemleak ]; then
		echo scan >/sys/kernel/debug/kmemleak
		leaks=$(grep -c "unreferenced object" /sys/kernel/debug/kmemleak)
		echo "# kmemleak: $leaks suspected leaks"
		[ "$leaks" -eq 0 ] ||
			{ head -n 30 /sys/kernel/debug/kmemleak | sed 's/^/# /'; return 1; }
	fi
}


require_cmds ip ping tcpdump modprobe insmod rmmod
debugfs_mount

ktap_print_header
ktap_set_plan 9
run_case "software IPsec: 16.0.0.1 <-> 48.0.0.1 over ESP" case_software
run_case "packet offload, no hook: 48.0.0.1 FAILED on p0 (the bug)" \
	case_bug_without_hook
run_case "packet offload, Rust hook: 16.0.0.1 -> 48.0.0.1 direct" \
	case_fixed_with_hook "$XDT_MODULE"
run_case "packet offload, Rust hook: 48.0.0.1 -> 16.0.0.1, NIC decrypts" \
	case_reverse "$XDT_MODULE"
run_case "packet offload, C reference hook: 16.0.0.1 -> 48.0.0.1 direct" \
	case_fixed_with_hook "$XDT_CREF_MODULE"
run_case "packet offload, C reference hook: 48.0.0.1 -> 16.0.0.1" \
	case_reverse "$XDT_CREF_MODULE"
run_case "packet offload, Rust hook: transport mode, direct_transport off then on" \
	case_transport_param "$XDT_MODULE"
run_case "hook slot: second registrant gets -EBUSY" case_second_registrant
run_case "module: ${LOAD_CYCLES:-100} load/unload cycles, no leak" case_load_cycles
ktap_finished
