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

# ping_routed FROM_NS SRC DST [PING_ARGS...]: PING_COUNT requests, and
# every reply within the deadline, or fail (-c with -w).
ping_routed() {
	local ns=$1 src=$2 dst=$3
	shift 3
	ip netns exec "$ns" ping -q -c "$PING_COUNT" -i 0.2 -w $((PING_COUNT + 10)) "$@" \
		-I "$src" "$dst"
}

# The report's bug, on demand: the module's stock_path=1 takes every
# packet and sends it through the stock path, as kernels before 6.14 did,
# which resolves a neighbour for the *inner* destination on the offload
# port. The case passes only if the bug is there, and every request went
# through the stock path.
case_bug_stock_path() {
	local m=$XDT_MODULE stock0 stock1 ret
	modules_unload
	offload_setup || return
	module_load "$m" stock_path=1 || return
	stock0=$(hook_counter "$m" stock)
	check_bug "$NS0" "$T_SRC" "$T_DST"
	ret=$?
	stock1=$(hook_counter "$m" stock)
	module_unload "$m"
	echo "# stock: $stock0 -> $stock1"
	[ $ret -eq 0 ] || return 1
	exactly "packets through the stock path" $((stock1 - stock0)) 3
}

# check_bug FROM_NS SRC DST: no answer to 3 requests, and $GW's neighbour
# entry for the inner destination on the offload port turns FAILED, as in
# the report, once its solicitations run out.
check_bug() {
	local neigh
	if ip netns exec "$1" ping -q -c 3 -i 0.3 -W 1 -I "$2" "$3" >/dev/null; then
		echo "# FAILED: $3 answered: the bug did not reproduce"
		return 1
	fi
	slowwait 10 sh -c "ip -n $GW neigh show dev p0 to $3 | grep -q FAILED"
	neigh=$(gw_neigh p0 "$3")
	echo "# GW neighbour table on p0: ${neigh:-<none>}"
	case "$neigh" in
	*FAILED*) return 0 ;;
	*) echo "# FAILED: expected $3 FAILED on p0"; return 1 ;;
	esac
}

# No module: the kernel's own C direct output (upstream 5eddd76ec2fd)
# sends forwarded tunnel traffic to the offload device; the routed
# network is reached and nothing resolves 48.0.0.1.
case_no_module() {
	modules_unload
	offload_setup || return
	check_direct "" "$NS0" "$T_SRC" "$T_DST"
}

# With the hook: forwarded tunnel traffic goes straight to the offload
# port, and nothing on $GW tries to resolve 48.0.0.1.
# check_direct MODULE FROM_NS SRC DST [PING_ARGS...]
check_direct() {
	local m=$1 from=$2 src=$3 dst=$4
	shift 4
	# Only what this run creates counts (an earlier step may have left one).
	ip -n "$GW" neigh flush dev p0 to "$dst"
	check_hook_path "$m" "gw_neigh p0 $dst" \
		"nsim_sa_packets $NSIM_GW_ID out $SPI_OUT" \
		"xfrm_packets $NE $T_GW $T_NE $SPI_OUT" \
		ping_routed "$from" "$src" "$dst" "$@"
}

case_fixed_with_hook() {
	local m=$1
	modules_unload
	offload_setup || return
	module_load "$m" || return
	check_direct "$m" "$NS0" "$T_SRC" "$T_DST"
	local ret=$?
	module_unload "$m"
	return $ret
}

# ns1 -> ns0: $NE encrypts in software, $GW's NIC decrypts; $GW's replies
# are forwarded tunnel traffic again, so they take the hook.
case_reverse() {
	local m=$1 rx0 rx1 ret
	offload_setup || return
	module_load "$m" || return
	rx0=$(nsim_sa_packets "$NSIM_GW_ID" in "$SPI_IN")
	check_direct "$m" "$NS1" 48.0.0.1 16.0.0.1
	ret=$?
	rx1=$(nsim_sa_packets "$NSIM_GW_ID" in "$SPI_IN")
	echo "# NIC SA $SPI_IN rx: $rx0 -> $rx1"
	[ $ret -ne 0 ] || exactly "NIC in SA packets" $((rx1 - rx0)) "$PING_COUNT" || ret=1
	module_unload "$m"
	return $ret
}

# Forwarded transport mode (16.0.0.1 -> Simulated-NE itself, ESP from
# IPSEC-GW's NIC): the stock path with direct_transport=0, direct output
# with direct_transport=1 (the module is reloaded: its parameters are
# read at load time); both deliver, every packet on the path asked.
case_transport_param() {
	local m=$1 value declined0 declined1 direct0 direct1 ret=0
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
	for value in 0 1; do
		module_load "$m" "direct_transport=$value" || return
		declined0=$(hook_counter "$m" declined_transport)
		direct0=$(hook_counter "$m" direct)
		run ping_routed "$NS0" 16.0.0.1 "$NE_ADDR" || { ret=1; break; }
		declined1=$(hook_counter "$m" declined_transport)
		direct1=$(hook_counter "$m" direct)
		module_unload "$m"
		echo "# direct_transport=$value: declined_transport" \
			"$declined0 -> $declined1, direct $direct0 -> $direct1"
		if [ "$value" = 0 ]; then
			exactly "declined (stock path)" $((declined1 - declined0)) "$PING_COUNT" &&
				exactly "direct" $((direct1 - direct0)) 0 || ret=1
		else
			exactly "direct" $((direct1 - direct0)) "$PING_COUNT" &&
				exactly "declined" $((declined1 - declined0)) 0 || ret=1
		fi
	done
	exactly "NE transport SA packets" "$(xfrm_packets "$NE" 16.0.0.1 "$NE_ADDR" 0x3000)" \
		$((2 * PING_COUNT)) || ret=1
	return $ret
}

# The hook is one slot: a second module is refused with -EBUSY.
case_second_registrant() {
	local out ret=0
	modules_unload
	module_available "$XDT_CREF_MODULE" || return
	module_load "$XDT_MODULE" || return
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

# link_tx NS DEV: packets DEV has sent.
link_tx() {
	ip netns exec "$1" cat "/sys/class/net/$2/statistics/tx_packets"
}

# No module, a cross-family tunnel: say where the packets went, assert
# that none left in the clear, and skip (with the reason) when the stack
# could not send them to the offload device: for 4-in-6 it cannot build
# the bundle (XfrmOutBundleGenError), for 6-in-4 it builds it on the
# route to the outer address looked up in the inner family, which is not
# the offload device, and xfrm_dev_offload_ok() drops every packet
# (XfrmOutError). Each count must be exactly the 3 packets sent.
check_cross_family() {
	local gen0 gen1 err0 err1 cap clear
	cap=$(mktemp)
	gen0=$(xfrm_mib "$GW" XfrmOutBundleGenError)
	err0=$(xfrm_mib "$GW" XfrmOutError)
	capture_start "$GW" mgmt "$cap" -Q out
	# -W without -w: exactly 3 requests, answered or not.
	ip netns exec "$NS0" ping -q -c 3 -i 0.3 -W 1 -I "$T_SRC" "$T_DST" >/dev/null
	local answered=$?
	capture_stop
	gen1=$(xfrm_mib "$GW" XfrmOutBundleGenError)
	err1=$(xfrm_mib "$GW" XfrmOutError)
	clear=$(capture_count "$cap" "dst host $T_DST")
	rm -f "$cap"
	echo "# no module: XfrmOutBundleGenError $gen0 -> $gen1, XfrmOutError $err0 -> $err1;" \
		"$clear packets in the clear to $T_DST on GW's default route (mgmt)"
	exactly "packets in the clear" "$clear" 0 || return 1
	[ $answered -eq 0 ] && return 0
	if [ $((gen1 - gen0)) = 3 ]; then
		echo "# SKIP: the stack cannot build this cross-family packet offload bundle"
		return "$KSFT_SKIP"
	fi
	if [ $((err1 - err0)) = 3 ]; then
		echo "# SKIP: the stack builds this cross-family bundle on a route that is not" \
			"the offload device's, and xfrm_dev_offload_ok() drops each packet"
		return "$KSFT_SKIP"
	fi
	echo "# FAILED: no answer, and not for either known reason"
	return 1
}

# IPv6 inside and outside, and the two cross-family tunnels, in the same
# topology: the kernel's own direct output with no module, then direct
# output with the Rust one.
#
# Cross-family packet offload tunnels trip over xfrm_bundle_create(): it
# keeps the inner family for packet offload states and looks the outer
# addresses up in it. For 4-in-6 that finds no route
# (XfrmOutBundleGenError); for 6-in-4 it finds the IPv6 default route,
# which 6.12 then used to send the inner packets in the clear, and which
# 7.3's xfrm_dev_offload_ok() refuses (XfrmOutError). Either is skipped
# with its reason, after asserting that nothing went out in the clear; the
# case runs in full once the stack builds the bundle on the offload
# device.
case_family() {
	local inner=$1 outer=$2 m=$XDT_MODULE ret
	modules_unload
	tunnel_select "$inner" "$outer"
	offload_setup || return
	if [ "$inner" = "$outer" ]; then
		check_direct "" "$NS0" "$T_SRC" "$T_DST" || return 1
	else
		check_cross_family || return
	fi
	module_load "$m" || return
	check_direct "$m" "$NS0" "$T_SRC" "$T_DST"
	ret=$?
	module_unload "$m"
	return $ret
}

# Traffic $GW sends itself, from 16.0.0.254 (an address of $GW inside the
# protected network), is offered to the hook and declined: the module
# leaves locally generated packets to the stock path, as upstream's direct
# output did, since the device may need the L2 header only that path
# writes. In the report's routed topology the stock path resolves the
# inner destination on the offload port, so for such packets the report's
# bug remains, by design: no answer, 48.0.0.1 FAILED/INCOMPLETE on p0,
# nothing for the NIC's SA. Gateways forward; they do not originate
# traffic into routed networks behind a packet offload tunnel.
case_local() {
	local m=$XDT_MODULE local0 local1 direct0 direct1 tx0 tx1 ret
	offload_setup || return
	run ip -n "$GW" address add 16.0.0.254/32 dev lo || return 1
	module_load "$m" || return
	local0=$(hook_counter "$m" declined_local)
	direct0=$(hook_counter "$m" direct)
	tx0=$(nsim_sa_packets "$NSIM_GW_ID" out "$SPI_OUT")
	check_bug "$GW" 16.0.0.254 48.0.0.1
	ret=$?
	local1=$(hook_counter "$m" declined_local)
	direct1=$(hook_counter "$m" direct)
	tx1=$(nsim_sa_packets "$NSIM_GW_ID" out "$SPI_OUT")
	echo "# declined_local: $local0 -> $local1, direct: $direct0 -> $direct1," \
		"NIC SA $SPI_OUT tx: $tx0 -> $tx1"
	module_unload "$m"
	[ $ret -eq 0 ] || return 1
	at_least "declined_local" $((local1 - local0)) 3 || return 1
	at_most "direct" $((direct1 - direct0)) 0 || return 1
	at_most "NIC out SA packets" $((tx1 - tx0)) 0
}

# ns0's learned path MTU towards 48.0.0.1 ("" when none).
ns0_pmtu() {
	ip -n "$NS0" route get 48.0.0.1 from 16.0.0.1 2>/dev/null |
		sed -n 's/.* mtu \([0-9]*\).*/\1/p'
}

# Packets larger than the tunnel MTU. Without DF, the stack cannot hand a
# packet offload device more than the tunnel MTU (xfrm_dev_offload_ok())
# and has no software fallback: each is dropped before the hook and
# counted in XfrmOutError; none goes out in the clear. With DF, as TCP
# sends, $GW answers "fragmentation needed" with the tunnel MTU before
# xfrm sees the packet; ns0 learns it, and what fits goes out directly.
case_pmtu() {
	local m=$XDT_MODULE err0 err1 out mtu
	offload_setup || return
	module_load "$m" || return
	err0=$(xfrm_mib "$GW" XfrmOutError)
	if ip netns exec "$NS0" ping -q -M dont -s 1472 -c 3 -i 0.3 -W 1 \
		-I 16.0.0.1 48.0.0.1 >/dev/null; then
		echo "# FAILED: 1500 byte packets without DF crossed the tunnel"
		return 1
	fi
	err1=$(xfrm_mib "$GW" XfrmOutError)
	echo "# without DF: XfrmOutError $err0 -> $err1"
	at_least "XfrmOutError" $((err1 - err0)) 3 || return 1

	out=$(ip netns exec "$NS0" ping -M do -s 1472 -c 2 -i 0.3 -W 1 \
		-I 16.0.0.1 48.0.0.1 2>&1)
	mtu=$(ns0_pmtu)
	echo "# with DF: $(echo "$out" | grep -m1 -i 'frag\|too long'), ns0's PMTU: ${mtu:-none}"
	[ -n "$mtu" ] || { echo "# FAILED: ns0 learned no path MTU"; return 1; }
	at_most "path MTU" "$mtu" 1499 || return 1
	at_least "path MTU" "$mtu" 1280 || return 1
	check_direct "$m" "$NS0" 16.0.0.1 48.0.0.1 -M do -s $((mtu - 28))
	local ret=$?
	module_unload "$m"
	return $ret
}

# ping_stats OUTPUT: "TRANSMITTED RECEIVED" from ping's summary.
ping_stats() {
	sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1 \2/p' <<<"$1"
}

# A long flow through the hook: FLOOD_COUNT echo requests back to back,
# then a TCP transfer of LONG_FLOW_MB from ns0 to ns1. Nothing may be
# lost: adaptive ping (-A) keeps one request in flight, however slow the
# kernel (ping -f sends at least 100 a second, which a debug kernel under
# TCG cannot turn around: its replies queued up and came after ping had
# given up), and -w waits for every reply; TCP retransmits.
case_long_flow() {
	local m=$XDT_MODULE count=${FLOOD_COUNT:-10000} mb=${LONG_FLOW_MB:-100}
	local direct0 direct1 ne0 ne1 out sent got bytes t0 t1 rx
	offload_setup || return
	module_load "$m" || return
	direct0=$(hook_counter "$m" direct)
	ne0=$(xfrm_packets "$NE" "$GW_ADDR" "$NE_ADDR" "$SPI_OUT")
	out=$(ip netns exec "$NS0" ping -q -A -c "$count" -w $((count / 10 + 60)) \
		-I 16.0.0.1 48.0.0.1)
	read -r sent got <<<"$(ping_stats "$out")"
	direct1=$(hook_counter "$m" direct)
	ne1=$(xfrm_packets "$NE" "$GW_ADDR" "$NE_ADDR" "$SPI_OUT")
	echo "# ping -A: $sent sent, $got received; direct $direct0 -> $direct1," \
		"NE decrypted $ne0 -> $ne1"
	exactly "echo replies" "$got" "$count" || return 1
	exactly "direct" $((direct1 - direct0)) "$count" || return 1
	exactly "NE decrypted" $((ne1 - ne0)) "$count" || return 1
	ne0=$ne1

	rx=$(mktemp)
	# Bounded: a transfer that stalls ends the case, not the script.
	ip netns exec "$NS1" timeout $((mb * 10 + 60)) socat -u TCP-LISTEN:5001,reuseaddr - >"$rx" &
	local listener=$!
	slowwait 5 sh -c "ip netns exec $NS1 ss -ltn | grep -q ':5001 '"
	t0=$(date +%s.%N)
	ip netns exec "$NS0" timeout $((mb * 10 + 60)) sh -c "head -c ${mb}M /dev/zero |
		socat -u - TCP:48.0.0.1:5001,bind=16.0.0.1,connect-timeout=5"
	wait "$listener"
	t1=$(date +%s.%N)
	bytes=$(stat -c %s "$rx")
	rm -f "$rx"
	direct0=$direct1
	direct1=$(hook_counter "$m" direct)
	ne1=$(xfrm_packets "$NE" "$GW_ADDR" "$NE_ADDR" "$SPI_OUT")
	echo "# TCP: $bytes bytes in $(echo "$t1 - $t0" | bc) s; direct $direct0 -> $direct1," \
		"NE decrypted $ne0 -> $ne1"
	module_unload "$m"
	exactly "bytes received" "$bytes" $((mb * 1024 * 1024)) || return 1
	# The flow went through the hook: every ESP packet NE decrypted was
	# handed to the NIC by it, as one skb or as a part of a GSO one.
	at_least "TCP skbs through the hook" $((direct1 - direct0)) 1 || return 1
	at_least "TCP packets NE decrypted, per skb through the hook" $((ne1 - ne0)) \
		$((direct1 - direct0))
}

# The checks can fail: check_direct must report a failure when direct
# output is off (stock_path=1: the bug), when the emulated NIC drops what
# the hook hands it, and when it sends the payload unencrypted.
case_checks_can_fail() {
	local m=$XDT_MODULE fault
	modules_unload
	offload_setup || return
	module_load "$m" stock_path=1 || return
	if check_direct "$m" "$NS0" 16.0.0.1 48.0.0.1; then
		echo "# FAILED: check_direct passed with stock_path=1"
		return 1
	fi
	echo "# with stock_path=1: check_direct failed, as it must"
	module_unload "$m"
	module_load "$m" || return
	for fault in fail_tx fail_encrypt; do
		nsim_fault "$NSIM_GW_ID" "$fault" 1 || return 1
		if check_direct "$m" "$NS0" 16.0.0.1 48.0.0.1; then
			echo "# FAILED: check_direct passed with the emulation's $fault"
			return 1
		fi
		echo "# with the emulation's $fault: check_direct failed, as it must"
		nsim_fault "$NSIM_GW_ID" "$fault" 0 || return 1
	done
	echo "# NE: XfrmInStateProtoError $(xfrm_mib "$NE" XfrmInStateProtoError)" \
		"(the unencrypted packets failed the ICV check)"
	# And with the faults off again, it passes.
	check_direct "$m" "$NS0" 16.0.0.1 48.0.0.1
	local ret=$?
	module_unload "$m"
	return $ret
}


# Load, read the counters, unload; repeatedly. kmemleak, if the kernel
# has it, must find nothing new.
case_load_cycles() {
	local i cycles=${LOAD_CYCLES:-100}
	modules_unload
	kmemleak_clear
	for i in $(seq "$cycles"); do
		module_load "$XDT_MODULE" || { echo "# FAILED: load $i"; return 1; }
		[ -n "$(hook_counter "$XDT_MODULE" direct)" ] ||
			{ echo "# FAILED: no counters at cycle $i"; return 1; }
		rmmod "$(basename "$XDT_MODULE" .ko)" || { echo "# FAILED: unload $i"; return 1; }
	done
	echo "# $cycles load/read/unload cycles"
	if kmemleak_available; then
		kmemleak_check
	else
		echo "# no kmemleak in this kernel: leaks not checked"
	fi
}


# An open counters file holds the module: rmmod is refused until it is
# closed (the file's operations name the module as their owner), and
# reading after a refused rmmod still works.
case_counters_file_pins_module() {
	local m=$XDT_MODULE name fd ret=0 line
	modules_unload
	name=$(basename "$m" .ko)
	module_load "$m" || return
	exec {fd}<"/sys/kernel/debug/$name/counters"
	if rmmod "$name" 2>/dev/null; then
		echo "# FAILED: rmmod succeeded while the counters file was open"
		ret=1
	else
		read -r line <&"$fd"
		echo "# rmmod refused while open; first line read after it: $line"
		case "$line" in "direct "*) ;; *) ret=1 ;; esac
	fi
	exec {fd}<&-
	module_unload "$m" || ret=1
	grep -q "^$name " /proc/modules && { echo "# FAILED: $name still loaded"; ret=1; }
	return $ret
}

# KUnit in the guest: the module's decision suite runs when it loads, the
# kernel crate's sk_buff suite at boot; every test of both passed.
case_kunit() {
	local m=$XDT_MODULE suite results ret=0 n
	modules_unload
	module_load "$m" || return
	for suite in xfrm_direct_tx_decision:5 rust_net_skbuff:3; do
		n=${suite#*:} suite=${suite%:*}
		results=$(cat "/sys/kernel/debug/kunit/$suite/results" 2>/dev/null)
		echo "# $suite: $(grep -Ec '^ +ok [0-9]+ ' <<<"$results") tests ok," \
			"$(grep -c 'not ok' <<<"$results") not ok"
		exactly "$suite: passed tests" "$(grep -Ec '^ +ok [0-9]+ ' <<<"$results")" "$n" ||
			ret=1
		exactly "$suite: failed tests" "$(grep -c 'not ok' <<<"$results")" 0 || ret=1
	done
	module_unload "$m"
	return $ret
}

require_cmds ip ping tcpdump modprobe insmod rmmod socat ss bc
debugfs_mount

ktap_print_header
ktap_set_plan 19
run_case "software IPsec: 16.0.0.1 <-> 48.0.0.1 over ESP" case_software
run_case "packet offload, stock path (stock_path=1): 48.0.0.1 FAILED on p0 (the report's bug)" \
	case_bug_stock_path
run_case "packet offload, no module: the kernel's direct output reaches 48.0.0.1" \
	case_no_module
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
run_case "packet offload, Rust hook: IPv6 in IPv6" case_family 6 6
run_case "packet offload, Rust hook: IPv4 in IPv6" case_family 4 6
run_case "packet offload, Rust hook: IPv6 in IPv4" case_family 6 4
run_case "packet offload, Rust hook: GW's own traffic declined, stock path (bug stays)" \
	case_local
run_case "packet offload, Rust hook: larger than the tunnel MTU, PMTU feedback" case_pmtu
long_flow="${FLOOD_COUNT:-10000} pings, ${LONG_FLOW_MB:-100} MB of TCP"
run_case "packet offload, Rust hook: $long_flow" case_long_flow
run_case "the checks fail without the hook and with the NIC dropping or not encrypting" \
	case_checks_can_fail
run_case "hook slot: second registrant gets -EBUSY" case_second_registrant
run_case "module: ${LOAD_CYCLES:-100} load/unload cycles, no leak" case_load_cycles
run_case "module: an open counters file refuses rmmod until closed" \
	case_counters_file_pins_module
run_case "KUnit: decision tests (module) and sk_buff tests (kernel crate)" case_kunit
script_time
ktap_finished
