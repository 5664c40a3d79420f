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

# The cases, in order: name (CASES selects by name or function),
# command, description.
# shellcheck disable=SC2016 # the commands expand when they run
XFRM_TESTS=(
	bug_stock_path case_bug_stock_path
		"packet offload, stock path (stock_path=1): 48.0.0.1 FAILED on p0, the report's bug"
	hook_forward 'with_hook "$XDT_MODULE" case_forward'
		'packet offload, Rust hook: 16.0.0.1 -> 48.0.0.1 direct'
	hook_reverse 'with_hook "$XDT_MODULE" case_reverse'
		'packet offload, Rust hook: 48.0.0.1 -> 16.0.0.1, NIC decrypts'
	transport_param case_transport_param
		'packet offload, Rust hook: transport mode, direct_transport off then on'
	transport_param6 'case_transport_param 6'
		'packet offload, Rust hook: IPv6 transport mode, direct_transport off then on'
	hook_family6in6 'with_hook "$XDT_MODULE" case_family 6 6'
		'packet offload, Rust hook: IPv6 in IPv6'
	hook_family4in6 'with_hook "$XDT_MODULE" case_family 4 6'
		'packet offload, Rust hook: IPv4 in IPv6'
	hook_family6in4 'with_hook "$XDT_MODULE" case_family 6 4'
		'packet offload, Rust hook: IPv6 in IPv4'
	hook_udp6 'with_hook "$XDT_MODULE" case_udp 6 6'
		'packet offload, Rust hook: UDP over IPv6'
	gw_local case_local
		"packet offload, Rust hook: GW's own traffic declined, stock path (bug stays)"
	hook_pmtu 'with_hook "$XDT_MODULE" case_pmtu'
		'packet offload, Rust hook: larger than the tunnel MTU, PMTU feedback'
	hook_pmtu6 'with_hook "$XDT_MODULE" case_pmtu6'
		'packet offload, Rust hook: IPv6 larger than the tunnel MTU, Packet Too Big'
	hook_long_flow 'with_hook "$XDT_MODULE" case_long_flow'
		'packet offload, Rust hook: a ping flood and a TCP flow'
	hook_tcp6 'with_hook "$XDT_MODULE" case_tcp 6 6'
		'packet offload, Rust hook: a TCP flow over IPv6'
	hook_two_flows 'with_hook "$XDT_MODULE" case_two_flows'
		'packet offload, Rust hook: two TCP flows on two queues, GSO, MTU on the wire'
	netfilter_hook case_netfilter_hook
		'packet offload, Rust hook: an output chain rule counts, then drops'
	hook_lifetime 'with_hook "$XDT_MODULE" case_lifetime'
		'packet offload, Rust hook: soft then hard packet limit under forwarded traffic'
	xmit_error case_xmit_error
		'packet offload, Rust hook: a failed transmit counted in xmit_error'
	check_fails_on_stock_path case_check_fails_on_stock_path
		'the checks fail with stock_path=1'
	hook_checks_can_fail 'with_hook "$XDT_MODULE" case_checks_can_fail'
		'the checks fail with the Rust hook and the NIC dropping or not encrypting'
	load_cycles case_load_cycles
		'module: load/unload cycles, no leak'
	counters_file_pins_module case_counters_file_pins_module
		'module: an open counters file refuses rmmod until closed'
	kunit case_kunit
		'KUnit: decision tests (module) and sk_buff tests (kernel crate)'
)

cleanup() {
	defer_scopes_cleanup
	modules_unload
	topo_cleanup
}
trap cleanup EXIT
CASE_CLEANUP=hook_case_cleanup

# The report's bug, on demand: the module's stock_path=1 takes every
# packet and sends it through the stock path, as kernels before 6.14 did,
# which resolves a neighbour for the *inner* destination on the offload
# port. The case passes only if the bug is there, and every request went
# through the stock path.
case_bug_stock_path() {
	local m=$XDT_MODULE stock0 stock1 ret
	modules_unload || return 1
	offload_setup || return
	module_load "$m" stock_path=1 || return
	stock0=$(hook_counter "$m" stock)
	check_bug "$NS0" "$T_SRC" "$T_DST"
	ret=$?
	stock1=$(hook_counter "$m" stock)
	module_unload "$m" || return 1
	echo "# stock: $stock0 -> $stock1"
	[ "$ret" -eq 0 ] || return 1
	delta "packets through the stock path" "$stock0" "$stock1" 3
}

# bug_gone FROM_NS SRC DST: check_bug does not find the report's bug.
bug_gone() {
	! check_bug "$@"
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

# transport_cold_neigh MODULE SRC DST: with no neighbour entry for DST on
# $GW's p0, one request from ns0 is answered, declined by the hook for
# want of a neighbour and sent by the stock path.
transport_cold_neigh() {
	local m=$1 nn0 nn1 direct0 direct1
	ip -n "$GW" neigh flush dev p0 to "$3"
	nn0=$(hook_counter "$m" declined_no_neigh)
	direct0=$(hook_counter "$m" direct)
	run ip netns exec "$NS0" ping -q -c 1 -W 5 -I "$2" "$3" >/dev/null
	local ret=$?
	nn1=$(hook_counter "$m" declined_no_neigh)
	direct1=$(hook_counter "$m" direct)
	echo "# cold next hop: declined_no_neigh $nn0 -> $nn1, direct $direct0 -> $direct1"
	[ "$ret" -eq 0 ] &&
		delta "declined_no_neigh" "$nn0" "$nn1" 1 &&
		delta "direct" "$direct0" "$direct1" 0
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
	# shellcheck disable=SC2086 # GW_OFFLOAD: words for ip
	run ip -n "$GW" xfrm state add src "$src" dst "$dst" proto esp spi 0x3000 \
		reqid 3 mode transport flag esn replay-window 0 aead "$AEAD_ALG" "$KEY_OUT" 128 \
		$GW_OFFLOAD dir out || return 1
	# shellcheck disable=SC2086 # GW_OFFLOAD: words for ip
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
		# A next hop not resolved yet: the first packet is declined
		# (declined_no_neigh) to the stock path, which resolves it.
		[ "$value" = 0 ] || transport_cold_neigh "$m" "$src" "$dst" || {
			ret=1
			module_unload "$m"
			break
		}
		sent=$((sent + value))
		declined0=$(hook_counter "$m" declined_transport)
		direct0=$(hook_counter "$m" direct)
		run ping_routed "$NS0" "$src" "$dst" || { ret=1; module_unload "$m"; break; }
		sent=$((sent + PING_SENT))
		declined1=$(hook_counter "$m" declined_transport)
		direct1=$(hook_counter "$m" direct)
		module_unload "$m" || return 1
		echo "# direct_transport=$value: declined_transport" \
			"$declined0 -> $declined1, direct $direct0 -> $direct1"
		if [ "$value" = 0 ]; then
			delta "declined (stock path)" "$declined0" "$declined1" "$PING_SENT" &&
				delta "direct" "$direct0" "$direct1" 0 || ret=1
		else
			delta "direct" "$direct0" "$direct1" "$PING_SENT" &&
				delta "declined" "$declined0" "$declined1" 0 || ret=1
		fi
	done
	exactly "NE transport SA packets" "$(xfrm_packets "$NE" "$src" "$dst" 0x3000)" \
		"$sent" || ret=1
	return "$ret"
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
	xfail_unless "the gateway's own traffic takes the stock path, which resolves" \
		"the inner destination on p0 (the report's bug, left to locally generated" \
		"packets)" -- bug_gone "$GW" 16.0.0.254 48.0.0.1
	ret=$?
	local1=$(hook_counter "$m" declined_local)
	direct1=$(hook_counter "$m" direct)
	tx1=$(nsim_sa_packets "$NSIM_GW_ID" out "$SPI_OUT")
	echo "# declined_local: $local0 -> $local1, direct: $direct0 -> $direct1," \
		"NIC SA $SPI_OUT tx: $tx0 -> $tx1"
	module_unload "$m" || return 1
	[ "$ret" -eq 0 ] || return 1
	delta "declined_local" "$local0" "$local1" 3 || return 1
	delta "direct" "$direct0" "$direct1" 0 || return 1
	delta "NIC out SA packets" "$tx0" "$tx1" 0
}

# A transmit that fails is counted (xmit_error) and fails the checks: a
# pfifo of limit 0 on p0 drops every packet the hook queues, with
# NET_XMIT_DROP, before the NIC. Without it, check_direct passes.
case_xmit_error() {
	local m=$XDT_MODULE e0
	offload_setup || return
	hook_load "$m" || return
	run tc -n "$GW" qdisc add dev p0 root pfifo limit 0 || return 1
	e0=$(hook_counter "$m" xmit_error)
	PING_DEADLINE=3 checks_fail_as "a qdisc dropping every packet" "ping peer nic drops" \
		check_direct "$NS0" 16.0.0.1 48.0.0.1 || return 1
	delta "xmit_error" "$e0" "$(hook_counter "$m" xmit_error)" "$PING_SENT" || return 1
	run tc -n "$GW" qdisc del dev p0 root || return 1
	check_direct "$NS0" 16.0.0.1 48.0.0.1
}

# check_direct can fail on the path itself: with stock_path=1 (the bug)
# every one of its checks fails; with the module loaded as it is by
# default, on the same topology, it passes.
case_check_fails_on_stock_path() {
	offload_setup || return
	hook_load "$XDT_MODULE" stock_path=1 || return
	PING_DEADLINE=3 checks_fail_as "stock_path=1" "ping neigh path peer nic" \
		check_direct "$NS0" 16.0.0.1 48.0.0.1 || return 1
	modules_unload || return 1
	hook_load "$XDT_MODULE" || return
	check_direct "$NS0" 16.0.0.1 48.0.0.1
}

# case_netfilter with the hook in front: the module runs LOCAL_OUT itself
# and counts each packet a rule took as local_out_consumed, none as
# direct.
case_netfilter_hook() {
	local m=$XDT_MODULE c0 c1 ret
	modules_unload || return 1
	hook_load "$m" || return
	c0=$(hook_counter "$m" local_out_consumed)
	NF_DROPPED=
	case_netfilter
	ret=$?
	c1=$(hook_counter "$m" local_out_consumed)
	modules_unload || return 1
	[ "$ret" -eq 0 ] || return "$ret"
	delta "local_out_consumed" "$c0" "$c1" "$NF_DROPPED"
}

# Load, read the counters, unload; repeatedly. kmemleak, if the kernel
# has it, must find nothing new.
case_load_cycles() {
	local i cycles=$LOAD_CYCLES
	modules_unload || return 1
	kmemleak_clear
	for i in $(seq "$cycles"); do
		module_load "$XDT_MODULE" || { echo "# FAILED: load $i"; return 1; }
		[ -n "$(hook_counter "$XDT_MODULE" direct)" ] ||
			{ echo "# FAILED: no counters at cycle $i"; return 1; }
		rmmod "$(basename "$XDT_MODULE" .ko)" || { echo "# FAILED: unload $i"; return 1; }
	done
	echo "# $cycles load/read/unload cycles"
	! kmemleak_available || kmemleak_check
}

# An open counters file holds the module: rmmod is refused until it is
# closed (the file's operations name the module as their owner), and
# reading after a refused rmmod still works.
case_counters_file_pins_module() {
	local m=$XDT_MODULE name fd ret=0 line
	modules_unload || return 1
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
	return "$ret"
}

# KUnit in the guest: the module's decision suite runs when it loads, the
# kernel crate's sk_buff suite at boot; every test of both passed.
case_kunit() {
	local m=$XDT_MODULE suite results ret=0 n
	if [ ! -d /sys/kernel/debug/kunit ]; then
		echo "# SKIP: no KUnit results in debugfs (CONFIG_KUNIT, CONFIG_KUNIT_DEBUGFS)"
		return "$KSFT_SKIP"
	fi
	modules_unload || return 1
	module_load "$m" || return
	for suite in xfrm_direct_tx_decision:5 rust_net_skbuff:3; do
		n=${suite#*:} suite=${suite%:*}
		results=$(cat "/sys/kernel/debug/kunit/$suite/results" 2>/dev/null)
		# A skipped KUnit test is "ok N name # SKIP": not a pass.
		echo "# $suite: $(grep -Ec '^ +ok [0-9]+ [^#]*$' <<<"$results") passed," \
			"$(grep -c 'not ok' <<<"$results") failed," \
			"$(grep -Ec '^ +ok [0-9]+ .*# SKIP' <<<"$results") skipped"
		exactly "$suite: passed tests" "$(grep -Ec '^ +ok [0-9]+ [^#]*$' <<<"$results")" \
			"$n" || ret=1
		exactly "$suite: failed tests" "$(grep -c 'not ok' <<<"$results")" 0 || ret=1
		exactly "$suite: skipped tests" \
			"$(grep -Ec '^ +ok [0-9]+ .*# SKIP' <<<"$results")" 0 || ret=1
	done
	module_unload "$m" || return 1
	return "$ret"
}

require_cmds ip ping tcpdump modprobe insmod rmmod socat ss python3 tc ethtool taskset
debugfs_mount

run_tests
