#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The xfrm output hook in the routed network of routed_network.sh: its
# cases again with the Rust direct output module (xfrm_direct_tx), each
# packet the NIC sends counted by the module; the module's own modes
# (stock_path, which reproduces the report's bug, and direct_transport);
# its lifetime.

lib_dir=$(dirname "$(readlink -f "$0")")
source "$lib_dir/routed_network.sh"
source "$lib_dir/direct_tx_lib.sh"

cleanup() {
	defer_scopes_cleanup
	modules_unload
	topo_cleanup
}
trap cleanup EXIT

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

# Forwarded transport mode (ns0 -> Simulated-NE itself, ESP from
# IPSEC-GW's NIC): the stock path with direct_transport=0, direct output
# with direct_transport=1 (the module is reloaded: its parameters are
# read at load time); both deliver, every packet on the path asked.
# [FAMILY]: 4 (default) or 6.
case_transport_param() {
	local m=$XDT_MODULE value declined0 declined1 direct0 direct1 ret=0 sent=0
	local src=16.0.0.1 dst=$NE_ADDR host=32 via=10.0.0.254 lnet=16.0.0.0/8 gw=$GW_ADDR
	if [ "${1:-4}" = 6 ]; then
		src=2001:db8:16::1 dst=$NE_ADDR6 host=128 via=fd00:10::254
		lnet=2001:db8:16::/48 gw=$GW_ADDR6
	fi
	offload_setup || return
	run ip -n "$GW" xfrm state add src "$src" dst "$dst" proto esp spi 0x3000 \
		reqid 3 mode transport flag esn replay-window 0 aead "$AEAD_ALG" "$KEY_OUT" 128 \
		$GW_OFFLOAD dir out || return 1
	run ip -n "$GW" xfrm policy add src "$src/$host" dst "$dst/$host" dir out \
		tmpl src "$src" dst "$dst" proto esp reqid 3 mode transport \
		$GW_OFFLOAD || return 1
	run ip -n "$NE" xfrm state add src "$src" dst "$dst" proto esp spi 0x3000 \
		reqid 3 mode transport flag esn replay-window 128 aead "$AEAD_ALG" "$KEY_OUT" 128 ||
		return 1
	run ip -n "$NE" xfrm policy add src "$src/$host" dst "$dst/$host" dir in \
		tmpl src "$src" dst "$dst" proto esp reqid 3 mode transport || return 1
	# ns0 reaches Simulated-NE through IPSEC-GW, which answers ns0 in the
	# clear through IPSEC-GW.
	ip -n "$NS0" route add "$dst/$host" via "$via"
	ip -n "$NE" route add "$lnet" via "$gw"
	for value in 0 1; do
		module_load "$m" "direct_transport=$value" || return
		declined0=$(hook_counter "$m" declined_transport)
		direct0=$(hook_counter "$m" direct)
		run ping_routed "$NS0" "$src" "$dst" || { ret=1; module_unload "$m"; break; }
		sent=$((sent + PING_SENT))
		declined1=$(hook_counter "$m" declined_transport)
		direct1=$(hook_counter "$m" direct)
		module_unload "$m"
		echo "# direct_transport=$value: declined_transport" \
			"$declined0 -> $declined1, direct $direct0 -> $direct1"
		if [ "$value" = 0 ]; then
			exactly "declined (stock path)" $((declined1 - declined0)) "$PING_SENT" &&
				exactly "direct" $((direct1 - direct0)) 0 || ret=1
		else
			exactly "direct" $((direct1 - direct0)) "$PING_SENT" &&
				exactly "declined" $((declined1 - declined0)) 0 || ret=1
		fi
	done
	exactly "NE transport SA packets" "$(xfrm_packets "$NE" "$src" "$dst" 0x3000)" \
		"$sent" || ret=1
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
	exactly "declined_local" $((local1 - local0)) 3 || return 1
	exactly "direct" $((direct1 - direct0)) 0 || return 1
	exactly "NIC out SA packets" $((tx1 - tx0)) 0
}

# check_direct can fail on the path itself: with stock_path=1 (the bug)
# it must report a failure.
case_check_fails_on_stock_path() {
	local ret=0
	offload_setup || return
	hook_load "$XDT_MODULE" stock_path=1 || return
	if PING_DEADLINE=3 check_direct "$NS0" 16.0.0.1 48.0.0.1; then
		echo "# FAILED: check_direct passed with stock_path=1"
		ret=1
	else
		echo "# with stock_path=1: check_direct failed, as it must"
	fi
	modules_unload
	return $ret
}

# case_netfilter with the hook in front: the module runs LOCAL_OUT itself
# and counts each packet a rule took as local_out_consumed, none as
# direct.
case_netfilter_hook() {
	local m=$XDT_MODULE c0 c1 ret
	modules_unload
	hook_load "$m" || return
	c0=$(hook_counter "$m" local_out_consumed)
	NF_DROPPED=
	case_netfilter
	ret=$?
	c1=$(hook_counter "$m" local_out_consumed)
	modules_unload
	[ $ret -eq 0 ] || return $ret
	exactly "local_out_consumed" $((c1 - c0)) "$NF_DROPPED"
}

# Load, read the counters, unload; repeatedly. kmemleak, if the kernel
# has it, must find nothing new.
case_load_cycles() {
	local i cycles=$LOAD_CYCLES
	modules_unload
	kmemleak_clear
	for i in $(seq "$cycles"); do
		module_load "$XDT_MODULE" || { echo "# FAILED: load $i"; return 1; }
		[ -n "$(hook_counter "$XDT_MODULE" direct)" ] ||
			{ echo "# FAILED: no counters at cycle $i"; return 1; }
		rmmod "$(basename "$XDT_MODULE" .ko)" || { echo "# FAILED: unload $i"; return 1; }
	done
	echo "# $cycles load/read/unload cycles"
	kmemleak_check
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
	if [ ! -d /sys/kernel/debug/kunit ]; then
		echo "# SKIP: no KUnit results in debugfs (CONFIG_KUNIT, CONFIG_KUNIT_DEBUGFS)"
		return "$KSFT_SKIP"
	fi
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

require_cmds ip ping tcpdump modprobe insmod rmmod socat ss bc python3 tc ethtool taskset
debugfs_mount

ktap_print_header
ktap_set_plan 22
run_case "packet offload, stock path (stock_path=1): 48.0.0.1 FAILED on p0 (the report's bug)" \
	case_bug_stock_path
run_case "packet offload, Rust hook: 16.0.0.1 -> 48.0.0.1 direct" \
	with_hook "$XDT_MODULE" case_forward
run_case "packet offload, Rust hook: 48.0.0.1 -> 16.0.0.1, NIC decrypts" \
	with_hook "$XDT_MODULE" case_reverse
run_case "packet offload, Rust hook: transport mode, direct_transport off then on" \
	case_transport_param
run_case "packet offload, Rust hook: IPv6 transport mode, direct_transport off then on" \
	case_transport_param 6
run_case "packet offload, Rust hook: IPv6 in IPv6" with_hook "$XDT_MODULE" case_family 6 6
run_case "packet offload, Rust hook: IPv4 in IPv6" with_hook "$XDT_MODULE" case_family 4 6
run_case "packet offload, Rust hook: IPv6 in IPv4" with_hook "$XDT_MODULE" case_family 6 4
run_case "packet offload, Rust hook: UDP over IPv6, ${UDP_COUNT:-300} datagrams" \
	with_hook "$XDT_MODULE" case_udp 6 6
run_case "packet offload, Rust hook: GW's own traffic declined, stock path (bug stays)" \
	case_local
run_case "packet offload, Rust hook: larger than the tunnel MTU, PMTU feedback" \
	with_hook "$XDT_MODULE" case_pmtu
run_case "packet offload, Rust hook: IPv6 larger than the tunnel MTU, Packet Too Big" \
	with_hook "$XDT_MODULE" case_pmtu6
run_case "packet offload, Rust hook: $FLOOD_COUNT pings, $LONG_FLOW_MB MB of TCP" \
	with_hook "$XDT_MODULE" case_long_flow
run_case "packet offload, Rust hook: $LONG_FLOW_MB MB of TCP over IPv6" \
	with_hook "$XDT_MODULE" case_tcp 6 6
run_case "packet offload, Rust hook: two TCP flows on two queues, GSO, MTU on the wire" \
	with_hook "$XDT_MODULE" case_two_flows
run_case "packet offload, Rust hook: an output chain rule counts, then drops" \
	case_netfilter_hook
run_case "packet offload, Rust hook: soft then hard packet limit under forwarded traffic" \
	with_hook "$XDT_MODULE" case_lifetime
run_case "the checks fail with stock_path=1" case_check_fails_on_stock_path
run_case "the checks fail with the Rust hook and the NIC dropping or not encrypting" \
	with_hook "$XDT_MODULE" case_checks_can_fail
run_case "module: $LOAD_CYCLES load/unload cycles, no leak" case_load_cycles
run_case "module: an open counters file refuses rmmod until closed" \
	case_counters_file_pins_module
run_case "KUnit: decision tests (module) and sk_buff tests (kernel crate)" case_kunit
script_time
ktap_finished
