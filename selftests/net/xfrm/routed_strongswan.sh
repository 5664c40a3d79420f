#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The report's lab brought up by strongSwan, as its readers run it: one
# charon on IPSEC-GW ($GW) and one on Simulated-NE ($NE), loaded with the
# report's two swanctl.conf files (swanctl-ipsec-gw.conf and
# swanctl-simulated-ne.conf: the report's text, trailing blanks removed),
# `swanctl --load-all` on both and `swanctl -i --child gw` on the GW. Only
# the GW's CHILD_SA has hw_offload = packet, so its SAs and its in and out
# policies are offloaded to p0, the emulated NIC. Needs strongSwan 5.9.10 or
# later (packet offload); skips without it.

source "$(dirname "$(readlink -f "$0")")/routed_lib.sh"

PING_COUNT=${PING_COUNT:-5}
# The re-key case: REKEY_PINGS requests at REKEY_INTERVAL, with the GW's
# CHILD_SA re-keyed every REKEY_SECONDS (once within the flood).
REKEY_PINGS=${REKEY_PINGS:-200}
REKEY_INTERVAL=${REKEY_INTERVAL:-0.05}
REKEY_SECONDS=${REKEY_SECONDS:-10}
GW_CONF=$lib_dir/swanctl-ipsec-gw.conf
NE_CONF=$lib_dir/swanctl-simulated-ne.conf
MONITOR_PID=

lab_cleanup() {
	[ -z "$MONITOR_PID" ] || kill "$MONITOR_PID" 2>/dev/null
	MONITOR_PID=
	swan_stop
	modules_unload
	topo_cleanup
	[ -z "$SWAN_DIR" ] || rm -rf "$SWAN_DIR"
	SWAN_DIR=
}
CASE_CLEANUP=lab_cleanup
trap lab_cleanup EXIT

# lab_up [GW_SWANCTL_CONF]: the topology, both charons loaded, the GW
# initiates the CHILD_SA gw; SPI_OUT and SPI_IN are then its SPIs.
lab_up() {
	swan_available || return
	topo_create || return
	swan_start "$NE" "$NE_CONF" || return 1
	swan_start "$GW" "${1:-$GW_CONF}" || return 1
	swan "$GW" --initiate --child gw >"$SWAN_DIR/initiate.log" ||
		{ sed 's/^/#   /' "$SWAN_DIR/initiate.log"; return 1; }
	SPI_OUT=$(esp_spi "$GW" "$GW_ADDR" "$NE_ADDR")
	SPI_IN=$(esp_spi "$GW" "$NE_ADDR" "$GW_ADDR")
	[ -n "$SPI_OUT" ] && [ -n "$SPI_IN" ] ||
		{ echo "# FAILED: no CHILD_SA SPIs on the GW ('$SPI_OUT', '$SPI_IN')"; return 1; }
}

# esp_spi NS SRC DST: the SPI of the newest ESP SA from SRC to DST.
esp_spi() {
	ip -n "$1" xfrm state list src "$2" dst "$3" proto esp |
		sed -n 's/^\tproto esp spi \(0x[0-9a-f]*\) .*/\1/p' | tail -n1
}

# xfrm_records NS state|policy: one line per SA or policy.
xfrm_records() {
	ip -n "$1" xfrm "$2" | awk '/^[^ \t]/ && r != "" { print r; r = "" }
		{ sub(/^[ \t]+/, ""); r = r (r == "" ? "" : " | ") $0 } END { if (r != "") print r }'
}

# count_records NS state|policy REGEX: how many records match.
count_records() {
	xfrm_records "$1" "$2" | grep -Ec "$3"
}

# check_offloaded: what strongSwan installed on the GW is what the report
# asks for. Its two SAs are packet-offloaded to p0, one per direction; of
# the CHILD_SA's policies, out and in are offloaded and the two fwd are
# not; the emulated NIC holds the two SAs and two policies. $NE has
# nothing offloaded.
check_offloaded() {
	local gw_nsim=/sys/kernel/debug/netdevsim/netdevsim$NSIM_GW_ID/ports/0/ipsec_packet
	local child='^src (16|48)\.0\.0\.0/8 dst (16|48)\.0\.0\.0/8'
	local offload='crypto offload parameters: dev p0'
	exactly "GW ESP SAs" "$(count_records "$GW" state '^src .* proto esp ')" 2 &&
	exactly "GW SAs offloaded out" "$(count_records "$GW" state "$offload dir out mode packet")" 1 &&
	exactly "GW SAs offloaded in" "$(count_records "$GW" state "$offload dir in mode packet")" 1 &&
	exactly "GW out policies offloaded" \
		"$(count_records "$GW" policy "$child .*dir out .*$offload mode packet")" 1 &&
	exactly "GW in policies offloaded" \
		"$(count_records "$GW" policy "$child .*dir in .*$offload mode packet")" 1 &&
	exactly "GW fwd policies" "$(count_records "$GW" policy "$child .*dir fwd ")" 2 &&
	exactly "GW fwd policies offloaded" \
		"$(count_records "$GW" policy "$child .*dir fwd .*offload")" 0 &&
	exactly "emulated NIC SAs" "$(grep -c '^packet sa ' "$gw_nsim")" 2 &&
	exactly "emulated NIC policies" "$(grep -c '^packet policy ' "$gw_nsim")" 2 &&
	exactly "NE offloaded SAs and policies" \
		$(($(count_records "$NE" state offload) + $(count_records "$NE" policy offload))) 0
}

case_offloaded() {
	lab_up || return
	check_offloaded
}

# A GW configuration without hw_offload = packet (software IPsec) fails
# check_offloaded: the check sees what strongSwan installed.
case_offload_check_can_fail() {
	local conf
	swan_available || return
	conf=$(mktemp)
	sed '/hw_offload = packet/d' "$GW_CONF" >"$conf"
	lab_up "$conf"
	local ret=$?
	rm -f "$conf"
	[ $ret -eq 0 ] || return $ret
	if check_offloaded >/dev/null; then
		echo "# FAILED: check_offloaded passed without hw_offload"
		return 1
	fi
	echo "# check_offloaded fails without hw_offload, as it must"
}

# The report's "ping -I 16.0.0.1 48.0.0.1" with the module's stock path
# (stock_path=1, what kernels before 6.14 did): the report's output.
case_report_stock_path() {
	local m=$XDT_MODULE out stock0 stock1 neigh
	lab_up || return
	module_load "$m" stock_path=1 || return
	stock0=$(hook_counter "$m" stock)
	out=$(ip netns exec "$NS0" ping -c 5 -w 8 -I 16.0.0.1 48.0.0.1 2>&1)
	stock1=$(hook_counter "$m" stock)
	echo "simulated-ne:$ ip netns exec ns0 ping -I 16.0.0.1 48.0.0.1" | sed 's/^/# /'
	sed 's/^/#   /' <<<"$out"
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
	exactly "requests through the stock path" $((stock1 - stock0)) \
		"$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' <<<"$out")"
}

# check_lab_direct MODULE: the report's ping gets every answer, through
# the kernel's direct output (MODULE empty) or MODULE's hook, with exact
# counts on the NIC's and the peer's SA and no neighbour for 48.0.0.1.
check_lab_direct() {
	check_hook_path "$1" "gw_neigh p0 48.0.0.1" \
		"nsim_sa_packets $NSIM_GW_ID out $SPI_OUT" \
		"xfrm_packets $NE $GW_ADDR $NE_ADDR $SPI_OUT" \
		ip netns exec "$NS0" ping -q -c "$PING_COUNT" -i 0.2 -w $((PING_COUNT + 10)) \
		-I 16.0.0.1 48.0.0.1
}

case_no_module() {
	lab_up || return
	check_lab_direct ""
}

case_rust_module() {
	lab_up || return
	module_load "$XDT_MODULE" || return
	check_lab_direct "$XDT_MODULE"
}

# monitor_record FILE REGEX: the first event in FILE (`ip -ts -s xfrm
# monitor`) that matches REGEX, on one line, without its stamp, after the
# time of day it was received in seconds. Fails when there is none.
monitor_record() {
	awk -v re="$2" '
		function check() { if (!done && r ~ re) { print t, r; done = 1 } }
		/^\[/ { check(); split(substr($1, 13, 15), f, ":"); t = f[1] * 3600 + f[2] * 60 + f[3]
			r = substr($0, index($0, "] ") + 2); next }
		{ sub(/^[ \t]+/, ""); r = r " " $0 }
		END { check(); exit !done }' "$1"
}

# An IKE re-key of the CHILD_SA under a flood (rekey_time in a copy of the
# GW's configuration, short enough for one re-key within the flood and the
# next one after it): the new SAs are installed before the old ones go,
# so no request is lost; the old and the new CHILD_SA together carry
# every request, each a part of them, all through the Rust hook; the old
# SA leaves the NIC.
case_rekey() {
	local m=$XDT_MODULE conf mon out direct0 direct1 sent recv old_spi new_spi
	local old_del new_add old_pkts new_pkts gw_nsim
	swan_available || return
	conf=$(mktemp)
	sed "s/^\(        hw_offload = packet\)$/\1\n        rekey_time = ${REKEY_SECONDS}s/" \
		"$GW_CONF" >"$conf"
	lab_up "$conf"
	local ret=$?
	rm -f "$conf"
	[ $ret -eq 0 ] || return $ret
	gw_nsim=/sys/kernel/debug/netdevsim/netdevsim$NSIM_GW_ID/ports/0/ipsec_packet
	module_load "$m" || return
	old_spi=$SPI_OUT
	mon=$SWAN_DIR/monitor
	ip -ts -s -n "$NE" xfrm monitor >"$mon" 2>&1 &
	MONITOR_PID=$!
	direct0=$(hook_counter "$m" direct)
	out=$(ip netns exec "$NS0" timeout $((REKEY_SECONDS * 3 + 60)) ping -q -c "$REKEY_PINGS" \
		-i "$REKEY_INTERVAL" -w $((REKEY_SECONDS * 3 + 30)) -I 16.0.0.1 48.0.0.1 2>&1)
	# Read at once: the next re-key is due REKEY_SECONDS after this one.
	direct1=$(hook_counter "$m" direct)
	new_spi=$(esp_spi "$GW" "$GW_ADDR" "$NE_ADDR")
	new_pkts=$(xfrm_packets "$NE" "$GW_ADDR" "$NE_ADDR" "$new_spi")
	# charon deletes the old inbound SA on $NE up to 5 s after the re-key
	# (it delays closing it for packets in flight).
	local deleted="^Deleted src $GW_ADDR dst $NE_ADDR .*spi $old_spi"
	slowwait 20 monitor_record "$mon" "$deleted" >/dev/null
	kill "$MONITOR_PID" 2>/dev/null
	wait "$MONITOR_PID" 2>/dev/null
	MONITOR_PID=
	grep '^\[' "$mon" | grep -v 'Async event' | cut -c1-90 | sed 's/^/#   xfrm monitor on NE: /'
	old_del=$(monitor_record "$mon" "$deleted")
	new_add=$(monitor_record "$mon" "^(Updated )?src $GW_ADDR dst $NE_ADDR .*spi $new_spi")
	old_pkts=$(grep -Eo 'lifetime current: [0-9]+\(bytes\), [0-9]+\(packets\)' <<<"$old_del" |
		sed 's/.* \([0-9]*\)(packets)/\1/')
	sed -n 's/.*transmitted.*/# &/p' <<<"$out"
	sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' <<<"$out")
	recv=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$out")
	echo "# CHILD_SA out SPI $old_spi -> $new_spi; NE decrypted ${old_pkts:-?} (old) +" \
		"${new_pkts:-?} (new); direct $direct0 -> $direct1"
	[ -z "$old_del" ] || [ -z "$new_add" ] ||
		echo "# switch window on NE (new SA installed -> old SA deleted):" \
			"$(bc <<<"${old_del%% *} - ${new_add%% *}") s"
	exactly "requests sent" "${sent:-0}" "$REKEY_PINGS" || return 1
	exactly "requests lost" $((sent - ${recv:-0})) 0 || return 1
	[ "$new_spi" != "$old_spi" ] || { echo "# FAILED: no re-key within the flood"; return 1; }
	[ -n "$old_del" ] || { echo "# FAILED: NE never deleted the old SA $old_spi"; return 1; }
	at_least "requests over the old CHILD_SA" "${old_pkts:-0}" 1 || return 1
	at_least "requests over the new CHILD_SA" "${new_pkts:-0}" 1 || return 1
	exactly "requests decrypted by NE, old and new SA" $((old_pkts + new_pkts)) "$REKEY_PINGS" ||
		return 1
	exactly "module direct counter" $((direct1 - direct0)) "$REKEY_PINGS" || return 1
	slowwait 10 sh -c "! grep -q 'spi=$old_spi ' $gw_nsim"
	exactly "old out SA on the emulated NIC" "$(grep -c "spi=$old_spi " "$gw_nsim")" 0
}

# swanctl --terminate leaves no SA and no CHILD_SA policy on either side
# and nothing on the emulated NIC; when charon stops, its IKE socket
# policies go too.
case_terminate() {
	local gw_nsim ns
	lab_up || return
	gw_nsim=/sys/kernel/debug/netdevsim/netdevsim$NSIM_GW_ID/ports/0/ipsec_packet
	swan "$GW" --terminate --ike B-TO-B >/dev/null || return 1
	for ns in "$GW" "$NE"; do
		exactly "$ns SAs" "$(count_records "$ns" state .)" 0 || return 1
		xfrm_records "$ns" policy | grep -Ev ' \| socket (in|out) ' | sed 's/^/#   left: /'
		exactly "$ns policies other than charon's sockets" \
			"$(xfrm_records "$ns" policy | grep -Evc ' \| socket (in|out) ')" 0 || return 1
	done
	exactly "emulated NIC SAs" "$(grep -c '^packet sa ' "$gw_nsim")" 0 || return 1
	exactly "emulated NIC policies" "$(grep -c '^packet policy ' "$gw_nsim")" 0 || return 1
	swan_stop
	for ns in "$GW" "$NE"; do
		exactly "$ns policies after charon stopped" "$(count_records "$ns" policy .)" 0 ||
			return 1
	done
}

require_cmds ip ping modprobe insmod rmmod bc
debugfs_mount

ktap_print_header
ktap_set_plan 7
run_case "strongSwan: the report's configs, SAs and in/out policies offloaded to p0, fwd not" \
	case_offloaded
run_case "strongSwan: the offload check fails on a GW config without hw_offload" \
	case_offload_check_can_fail
run_case "strongSwan: stock path (stock_path=1): the report's output, 48.0.0.1 FAILED" \
	case_report_stock_path
run_case "strongSwan: no module: the kernel's direct output reaches 48.0.0.1" case_no_module
run_case "strongSwan: Rust hook: 16.0.0.1 -> 48.0.0.1 direct, exact counts" case_rust_module
run_case "strongSwan: IKE re-key under $REKEY_PINGS requests: none lost, both CHILD_SAs direct" \
	case_rekey
run_case "strongSwan: swanctl --terminate leaves no SA, policy or emulated SA" case_terminate
ktap_finished
