# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# The routed network topology of the IPsec packet offload report, built in
# network namespaces. Sourced by the tests in this folder.
#
#          16.0.0.0/8                                          48.0.0.0/8
#   ns0 ----------- [br-network] NE ~~~~~ ESP ~~~~~ GW p0 ...       ns1
#
#   $NS0  veth3 10.0.0.1/8, 16.0.0.1/8 ---+
#                                         | br-network (in $NE)
#   $NE   p1 (enslaved) ------------------+------ $GW p1 10.0.0.254/24
#   $NE   p0 192.168.101.11/24 ======= ciphered ======= $GW p0 192.168.101.10/24
#   $NE   veth0 11.0.0.254/24 --- $NS1 veth1 11.0.0.1/24, 48.0.0.1/8
#
# The same in IPv6, for the IPv6 and cross-family cases: 2001:db8:16::/48
# and 2001:db8:48::/48 are the routed networks, 2001:db8:101::/64 the
# ciphered segment, fd00:10::/64 and fd00:11::/64 the clear links.
#
# $GW is IPSEC-GW, the node under test: it forwards 16.0.0.0/8 <-> 48.0.0.0/8
# through an ESP tunnel to $NE (Simulated-NE), which runs software IPsec.
# 48.0.0.0/8 is a *routed* network for both: on $NE it is behind 11.0.0.1
# in $NS1, and $GW only knows it through the tunnel. The ciphered segment
# p0 <-> p0 is a pair of linked netdevsim ports, so that $GW's port can
# offload; the clear segment p1 <-> p1 is a veth pair.
#
# Routes the report leaves implicit: a forwarded packet needs a route
# before xfrm replaces it with the tunnel's, so the report's hosts route
# 48.0.0.0/8 (on $GW) and 16.0.0.0/8 (on $NE) somewhere other than the
# tunnel: their default route, on the management network. Here that is a
# dummy device "mgmt" with a default route on $GW and $NE. Nothing is ever
# sent there when IPsec works. Reverse path filtering is off, as the
# report's hosts have it, since decrypted traffic arrives on p0 from
# networks routed elsewhere.

lib_dir=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
source "$lib_dir/../lib.sh"
source "$lib_dir/../../kselftest/ktap_helpers.sh"

# The report's SA parameters: AES-GCM-128, 128-bit ICV, ESN, tunnel mode.
GW_ADDR=192.168.101.10
NE_ADDR=192.168.101.11
GW_ADDR6=2001:db8:101::10
NE_ADDR6=2001:db8:101::11
SPI_OUT=0x1000 # GW -> NE
SPI_IN=0x2000 # NE -> GW
KEY_OUT=0x0123456789abcdef0123456789abcdef01020304
KEY_IN=0xfedcba9876543210fedcba987654321004030201
AEAD_ALG="rfc4106(gcm(aes))"
ICV_BITS=128
REPLAY=128

# tunnel_select INNER OUTER: the addresses the cases use, for an inner
# and an outer family (4 or 6). The report's tunnel is "4 4".
# shellcheck disable=SC2034 # the T_ variables are for the cases
tunnel_select() {
	case $1 in
	4) T_SRC=16.0.0.1 T_DST=48.0.0.1 T_LNET=16.0.0.0/8 T_RNET=48.0.0.0/8 ;;
	6) T_SRC=2001:db8:16::1 T_DST=2001:db8:48::1
	   T_LNET=2001:db8:16::/48 T_RNET=2001:db8:48::/48 ;;
	*) return 1 ;;
	esac
	case $2 in
	4) T_GW=$GW_ADDR T_NE=$NE_ADDR ;;
	6) T_GW=$GW_ADDR6 T_NE=$NE_ADDR6 ;;
	*) return 1 ;;
	esac
}
tunnel_select 4 4

NSIM_SYS=/sys/bus/netdevsim
NSIM_GW_ID=
NSIM_NE_ID=

# The longest a capture or a monitor may run if its case never stops it
# (the case fails first: this only bounds what a broken case leaves).
BG_TIMEOUT=${BG_TIMEOUT:-600}
CAPTURE_PIDS= # the captures running (capture_start)

# Sizes of the floods and flows; XFRM_LONG=1 selects the long versions.
if [ "${XFRM_LONG:-0}" = 1 ]; then
	FLOOD_COUNT=${FLOOD_COUNT:-10000} LONG_FLOW_MB=${LONG_FLOW_MB:-100}
else
	FLOOD_COUNT=${FLOOD_COUNT:-500} LONG_FLOW_MB=${LONG_FLOW_MB:-5}
fi

# is_count VALUE: VALUE is a count (a non-negative integer). What a
# reader printed is checked before any arithmetic: in $(( )), an empty
# or unreadable value is 0, and a check of "rose by 0" would pass.
is_count() {
	[[ $1 =~ ^[0-9]+$ ]]
}

# at_least WHAT GOT MIN / at_most WHAT GOT MAX: a check that says why.
at_least() {
	is_count "$2" && [ "$2" -ge "$3" ] && return 0
	echo "# FAILED: $1: ${2:-none}, expected at least $3"
	return 1
}

at_most() {
	is_count "$2" && [ "$2" -le "$3" ] && return 0
	echo "# FAILED: $1: ${2:-none}, expected at most $3"
	return 1
}

# exactly WHAT GOT WANT: the namespaces are closed, so counts are exact.
exactly() {
	[ "${2:-none}" = "$3" ] && return 0
	echo "# FAILED: $1: ${2:-none}, expected $3"
	return 1
}

# delta WHAT BEFORE AFTER WANT [CHECK]: the counter WHAT, read as BEFORE
# and AFTER, rose by WANT: exactly, or CHECK (at_least, at_most). A
# reading that is not a count fails: a counter that cannot be read is a
# failure, never a 0.
delta() {
	if ! is_count "$2" || ! is_count "$3"; then
		echo "# FAILED: $1: cannot be read (${2:-none} -> ${3:-none})"
		return 1
	fi
	"${5:-exactly}" "$1" "$(($3 - $2))" "$4"
}

# sum_counts VALUE...: the sum of counts, or nothing if one is not a
# count (so that delta fails on it).
sum_counts() {
	local v sum=0
	for v in "$@"; do
		is_count "$v" || return 1
		sum=$((sum + v))
	done
	echo "$sum"
}

# count_matching ERE CMD...: how many lines CMD prints match ERE;
# nothing when CMD fails (a count of 0 would pass a check of 0).
count_matching() {
	local out
	out=$("${@:2}") || return 1
	grep -Ec -- "$1" <<<"$out"
}

# xfail_unless BUG... -- CHECK...: CHECK asserts what the stack should
# do where it has the known bug BUG. When CHECK fails, the case is an
# XFAIL naming BUG (return KSFT_XFAIL), and the rest of the case (what
# the bug makes of the traffic) is checked; when it passes, the bug is
# gone: the case fails, for the XFAIL to be removed.
xfail_unless() {
	local bug=()
	while [ "$1" != -- ]; do bug+=("$1"); shift; done
	shift
	if "$@"; then
		echo "# FAILED: passed where a known bug was expected: ${bug[*]}"
		return 1
	fi
	echo "# XFAIL: ${bug[*]}"
	XFAIL_PENDING=1
	return 0
}

# timing_check CHECK...: CHECK, which depends on timing; on a machine
# NIPA marks slow (KSFT_MACHINE_SLOW=yes), its failure is an XFAIL.
timing_check() {
	"$@" && return 0
	[ "${KSFT_MACHINE_SLOW:-}" = yes ] || return 1
	echo "# XFAIL: timing, on a slow machine (KSFT_MACHINE_SLOW)"
	XFAIL_PENDING=1
}

# A command's failure ends the case, not the script.
run() {
	"$@" || { echo "# FAILED: $*" >&2; return 1; }
}

# require_cmds CMD...: every CMD is there, or the whole script skips.
require_cmds() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null && continue
		xfrm_header
		ktap_skip_all "$c not found"
		exit "$KSFT_SKIP"
	done
}

# ns_exec NS CMD...: CMD in namespace NS; "-" is the one this runs in.
ns_exec() {
	local ns=$1
	shift
	if [ "$ns" = - ]; then "$@"; else ip netns exec "$ns" "$@"; fi
}

# nsim_port_name NS ID: the name of device ID's port, once it has one.
nsim_port_name() {
	local ns=$1 id=$2 port
	port=$(ns_exec "$ns" sh -c "ls $NSIM_SYS/devices/netdevsim$id/net/ 2>/dev/null" |
		head -n1)
	[ -n "$port" ] && echo "$port"
}

# nsim_add NS NAME [QUEUES]: a netdevsim device with one port, with
# QUEUES queues each way (1), in namespace NS ("-": this one), named NAME.
# Prints the device id.
nsim_add() {
	local ns=$1 name=$2 queues=${3:-1} id tries=0 port
	while :; do
		id=$((1000 + RANDOM % 8000))
		[ -e "$NSIM_SYS/devices/netdevsim$id" ] || break
		tries=$((tries + 1))
		[ "$tries" -lt 20 ] || return 1
	done
	ns_exec "$ns" sh -c "echo $id 1 $queues > $NSIM_SYS/new_device" || return 1
	# new_device returns before the port is registered (probe may be
	# deferred): wait for it, as upstream's nsim.py does.
	port=$(slowwait 10 nsim_port_name "$ns" "$id") || return 1
	ns_exec "$ns" ip link set "$port" name "$name" || return 1
	echo "$id"
}

nsim_link() {
	local ns_a=$1 dev_a=$2 ns_b=$3 dev_b=$4 fd_a fd_b idx_a idx_b ret
	exec {fd_a}<"/run/netns/$ns_a"
	exec {fd_b}<"/run/netns/$ns_b"
	idx_a=$(ip netns exec "$ns_a" cat "/sys/class/net/$dev_a/ifindex")
	idx_b=$(ip netns exec "$ns_b" cat "/sys/class/net/$dev_b/ifindex")
	ret=0
	echo "$fd_a:$idx_a $fd_b:$idx_b" >"$NSIM_SYS/link_device" || ret=1
	exec {fd_a}<&- {fd_b}<&-
	return "$ret"
}

nsim_del() {
	local id
	for id in "$@"; do
		[ -z "$id" ] || [ ! -e "$NSIM_SYS/devices/netdevsim$id" ] ||
			echo "$id" >"$NSIM_SYS/del_device"
	done
}

# nsim_ready: netdevsim is loaded and emulates IPsec packet offload, or
# says why not. A kernel without netdevsim (CONFIG_NETDEVSIM), or with a
# netdevsim whose ports have no ipsec_packet debugfs file, lacks the
# feature: SKIP. A netdevsim that is there but does not load, or whose
# probe port cannot be made, is a failure. Probed once per script.
NSIM_READY=
nsim_ready() {
	local out id
	[ -z "$NSIM_READY" ] || return "$NSIM_READY"
	NSIM_READY=1
	if [ ! -w "$NSIM_SYS/new_device" ]; then
		if ! modinfo netdevsim >/dev/null 2>&1; then
			echo "# SKIP: no netdevsim in this kernel (CONFIG_NETDEVSIM)"
			NSIM_READY=$KSFT_SKIP
			return "$NSIM_READY"
		fi
		out=$(modprobe netdevsim 2>&1) ||
			{ echo "# FAILED: netdevsim does not load: $out"; return 1; }
	fi
	id=$(nsim_add - xfrm-probe) || { echo "# FAILED: no netdevsim probe port"; return 1; }
	if [ -e "/sys/kernel/debug/netdevsim/netdevsim$id/ports/0/ipsec_packet" ]; then
		NSIM_READY=0
	else
		echo "# SKIP: this netdevsim does not emulate IPsec packet offload" \
			"(no ipsec_packet in its port's debugfs)"
		NSIM_READY=$KSFT_SKIP
	fi
	nsim_del "$id"
	return "$NSIM_READY"
}

# Each case starts from scratch, with the report's tunnel selected.
topo_cleanup() {
	tunnel_select 4 4
	cleanup_all_ns
	nsim_del "$NSIM_GW_ID" "$NSIM_NE_ID"
	NSIM_GW_ID='' NSIM_NE_ID=''
}

# IPSEC-GW's offload port p0, linked to Simulated-NE's p0: a netdevsim
# device of its own, so that a test can delete and recreate it. It has
# GW_QUEUES queues (1).
gw_port_create() {
	NSIM_GW_ID=$(nsim_add "$GW" p0 "${GW_QUEUES:-1}") || return 1
	nsim_link "$GW" p0 "$NE" p0 || return 1
	ip -n "$GW" -batch - <<-EOF
	link set dev p0 up
	address add $GW_ADDR/24 dev p0
	address add $GW_ADDR6/64 dev p0 nodad
	EOF
}

# Build the report's topology (without IPsec).
topo_create() {
	local ns
	nsim_ready || return
	setup_ns GW NE NS0 NS1 || return 1

	NSIM_NE_ID=$(nsim_add "$NE" p0) || return 1
	gw_port_create || return 1
	ip link add p1 netns "$GW" type veth peer name p1 netns "$NE" || return 1

	# The report's commands, one ip -batch per namespace and step: each
	# command is a process, and a process costs 0.1 s in a TCG guest.
	for ns in "$GW" "$NE"; do
		ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 \
			net.ipv6.conf.all.forwarding=1 || return 1
		ip -n "$ns" -batch - <<-EOF || return 1
		link add mgmt type dummy
		link set mgmt up
		route add default dev mgmt
		route add ::/0 dev mgmt
		EOF
	done

	# IPSEC-GW (report: "IPSEC-GW" configuration).
	ip -n "$GW" -batch - <<-EOF || return 1
	link set dev p1 up
	address add 10.0.0.254/24 dev p1
	route add 16.0.0.0/8 via 10.0.0.1
	address add fd00:10::254/64 dev p1 nodad
	route add 2001:db8:16::/48 via fd00:10::1
	EOF

	# Simulated-NE, its ns1 (routed network 48.0.0.0/8) and ns0 (routed
	# network 16.0.0.0/8) behind br-network.
	ip -n "$NE" -batch - <<-EOF || return 1
	link set dev p0 up
	address add $NE_ADDR/24 dev p0
	link add dev veth0 type veth peer name veth1 netns $NS1
	link set veth0 up
	address add 11.0.0.254/24 dev veth0
	route add 48.0.0.0/8 via 11.0.0.1
	address add $NE_ADDR6/64 dev p0 nodad
	address add fd00:11::254/64 dev veth0 nodad
	route add 2001:db8:48::/48 via fd00:11::1
	link add br-network type bridge
	link add dev veth2 type veth peer name veth3 netns $NS0
	link set veth2 up
	link set p1 master br-network
	link set veth2 master br-network
	link set dev br-network up
	link set dev p1 up
	EOF
	ip -n "$NS1" -batch - <<-EOF || return 1
	address add 11.0.0.1/24 dev veth1
	address add 48.0.0.1/8 dev veth1
	link set veth1 up
	route add 16.0.0.0/8 via 11.0.0.254
	address add fd00:11::1/64 dev veth1 nodad
	address add 2001:db8:48::1/48 dev veth1 nodad
	route add 2001:db8:16::/48 via fd00:11::254
	EOF
	ip -n "$NS0" -batch - <<-EOF || return 1
	address add 10.0.0.1/8 dev veth3
	address add 16.0.0.1/8 dev veth3
	link set veth3 up
	route add 48.0.0.0/8 via 10.0.0.254
	address add fd00:10::1/64 dev veth3 nodad
	address add 2001:db8:16::1/48 dev veth3 nodad
	route add 2001:db8:48::/48 via fd00:10::254
	EOF
}

# xfrm_tunnel NS LOCAL REMOTE LOCAL_NET REMOTE_NET SPI_OUT KEY_OUT SPI_IN KEY_IN [OFFLOAD_ARGS]
# (NS "-": this namespace)
# One tunnel endpoint: an out SA and an in SA (their selectors are the
# networks, as an IKE daemon sets them; cross-family tunnels need them),
# out/in/fwd policies.
# OFFLOAD_ARGS, e.g. "offload packet dev p0", offloads the SAs (with "dir
# out|in") and the out and in policies; fwd policies cannot be offloaded.
xfrm_tunnel() {
	local ns=$1 l=$2 r=$3 lnet=$4 rnet=$5 spi_o=$6 key_o=$7 spi_i=$8 key_i=$9
	local off=${10:-} off_out='' off_in='' out_window=$REPLAY
	if [ -n "$off" ]; then
		off_out="$off dir out"
		off_in="$off dir in"
		# An SA with a direction: no replay window on the sending side.
		out_window=0
	fi
	# One process for the five (a policy's offload takes its direction
	# from the policy); ip names the line that failed.
	ns_exec "$ns" ip -batch - <<-EOF || { echo "# FAILED: xfrm_tunnel in $ns"; return 1; }
	xfrm state add src $l dst $r proto esp spi $spi_o reqid 1 mode tunnel flag esn \
		replay-window $out_window aead $AEAD_ALG $key_o $ICV_BITS \
		sel src $lnet dst $rnet $off_out
	xfrm state add src $r dst $l proto esp spi $spi_i reqid 2 mode tunnel flag esn \
		replay-window $REPLAY aead $AEAD_ALG $key_i $ICV_BITS \
		sel src $rnet dst $lnet $off_in
	xfrm policy add src $lnet dst $rnet dir out \
		tmpl src $l dst $r proto esp reqid 1 mode tunnel $off
	xfrm policy add src $rnet dst $lnet dir in \
		tmpl src $r dst $l proto esp reqid 2 mode tunnel $off
	xfrm policy add src $rnet dst $lnet dir fwd \
		tmpl src $r dst $l proto esp reqid 2 mode tunnel
	EOF
}

# The report's SAs for the tunnel_select'ed addresses: $GW with
# GW_OFFLOAD (empty: software), $NE software. The receiving end first, as
# IKE does: no packet is encrypted for an SA the peer does not have yet.
xfrm_setup() {
	local gw_offload=${1:-}
	xfrm_tunnel "$NE" "$T_NE" "$T_GW" "$T_RNET" "$T_LNET" \
		"$SPI_IN" "$KEY_IN" "$SPI_OUT" "$KEY_OUT" || return 1
	xfrm_tunnel "$GW" "$T_GW" "$T_NE" "$T_LNET" "$T_RNET" \
		"$SPI_OUT" "$KEY_OUT" "$SPI_IN" "$KEY_IN" "$gw_offload" || return 1
}

# xfrm_mib NS NAME: a counter from /proc/net/xfrm_stat.
xfrm_mib() {
	# shellcheck disable=SC2016 # awk's fields
	ip netns exec "$1" awk -v k="$2" '$1 == k { print $2 }' /proc/net/xfrm_stat
}

# snmp_counter NS FILE LINE FIELD: a counter of /proc/net/snmp or
# /proc/net/netstat in NS (LINE: Ip, IpExt, Icmp, ...).
snmp_counter() {
	# shellcheck disable=SC2016 # awk's fields
	ip netns exec "$1" awk -v l="$3:" -v f="$4" '$1 == l {
		if (!n++) { for (i = 2; i <= NF; i++) if ($i == f) c = i } else print $c }' "$2"
}

# xfrm_packets NS SRC DST SPI: packets the SA has processed (its
# "lifetime current" line: "lifetime config" comes first, with the limits).
xfrm_packets() {
	ip -n "$1" -s xfrm state get src "$2" dst "$3" proto esp spi "$4" 2>/dev/null |
		sed -n '/lifetime current:/{n;s/.*[^0-9]\([0-9][0-9]*\)(packets).*/\1/p;q}'
}

# Neighbour entry for $2 on $GW device $1, if any ("" when none).
gw_neigh() {
	ip -n "$GW" neigh show dev "$1" to "$2" 2>/dev/null
}

# case_defer CMD...: CMD runs when the case ends (lib.sh's defer). A
# defer made in a subshell ($(...), a pipeline, a job) is lost when the
# subshell exits, and what it was to clean up stays: refused, loudly.
case_defer() {
	if [ "$BASH_SUBSHELL" -ne 0 ]; then
		echo "# BUG: ${FUNCNAME[1]} defers '$*' in a subshell, where it is lost" >&2
		return 1
	fi
	defer "$@"
}

# tmpfile VAR: a new temporary file, its name in VAR, removed when the
# case ends.
tmpfile() {
	local tmpfile_name # not a name a caller may pass as VAR
	tmpfile_name=$(mktemp) || return 1
	case_defer rm -f "$tmpfile_name" || { rm -f "$tmpfile_name"; return 1; }
	printf -v "$1" %s "$tmpfile_name"
}

# bg_stop PID: a background job of this shell stopped and reaped, if it
# still is one (once reaped, its PID may be someone else's).
bg_stop() {
	jobs -p | grep -qx "$1" || return 0
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# xfrm_monitor_start NS FILE EVENT: `ip xfrm monitor EVENT` of NS into
# FILE (MON_PID), once it is subscribed: NS then has a NETLINK_XFRM (6)
# socket in a multicast group. Stopped when the case ends, at the latest.
xfrm_monitor_start() {
	timeout "$BG_TIMEOUT" ip -n "$1" xfrm monitor "$3" >"$2" &
	MON_PID=$!
	case_defer bg_stop "$MON_PID"
	slowwait 10 sh -c "ip netns exec $1 awk '\$2 == 6 && \$4 != \"00000000\"' \
		/proc/net/netlink | grep -q ." || echo "# monitor not subscribed"
}

xfrm_monitor_stop() {
	bg_stop "$MON_PID"
	MON_PID=
}

# ping_stats OUTPUT: "TRANSMITTED RECEIVED" from ping's summary.
ping_stats() {
	sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1 \2/p' <<<"$1"
}

# lifetime_expires NS SRC DST SA_NS SA_SRC SA_DST SPI: 15 echo requests
# from SRC in NS to DST, 0.2 s apart, over the out SA (SA_NS, SA_SRC ->
# SA_DST, SPI) with packet limits soft 5 and hard 10: SA_NS's key manager
# hears exactly one soft expire and then one hard, the state is deleted,
# and exactly 10 requests are answered.
lifetime_expires() {
	local ns=$1 src=$2 dst=$3 sa_ns=$4 sa_src=$5 sa_dst=$6 spi=$7 mon out gone soft hard
	tmpfile mon || return 1
	xfrm_monitor_start "$sa_ns" "$mon" expire
	# -W without -w: exactly 15 requests, answered or not.
	out=$(ip netns exec "$ns" ping -q -c 15 -i 0.2 -W 1 -I "$src" "$dst")
	slowwait 10 sh -c "! ip -n $sa_ns xfrm state get src $sa_src dst $sa_dst \
		proto esp spi $spi >/dev/null 2>&1"
	gone=$?
	slowwait 5 grep -q 'hard 1' "$mon"
	xfrm_monitor_stop
	soft=$(grep -c 'hard 0' "$mon")
	hard=$(grep -c 'hard 1' "$mon")
	read -r PING_SENT PING_GOT <<<"$(ping_stats "$out")"
	echo "# ping: $PING_SENT sent, $PING_GOT received; expires heard: $soft soft, $hard hard"
	exactly "soft expires" "$soft" 1 &&
		exactly "hard expires" "$hard" 1 &&
		exactly "out state deleted (0: gone)" "$gone" 0 &&
		exactly "echo replies" "$PING_GOT" 10
}

# capture_start NS DEV FILE [TCPDUMP_ARGS...]: record packets into FILE,
# from when it returns: tcpdump says "listening on" once its socket, ring
# and filter are set up. Stopped by capture_stop with every other capture
# running, or when the case ends, at the latest.
# (Not the forwarding lib's tcpdump_start: that one captures ingress only,
# keys captures by device name where these capture p0 in two namespaces,
# sleeps a second instead of waiting for tcpdump, and is not bounded.)
capture_start() {
	local ns=$1 dev=$2 file=$3
	shift 3
	# Immediate mode: without it libpcap hands packets over a ring block
	# at a time, and the block being filled when tcpdump is stopped (up to
	# its 1 s timeout's worth) is lost: one ESP packet of ten was, once.
	ip netns exec "$ns" timeout "$BG_TIMEOUT" \
		tcpdump -i "$dev" -n -U --immediate-mode -w "$file" "$@" \
		2>"$file.log" &
	CAPTURE_PIDS+=" $!"
	case_defer bg_stop "$!"
	if ! slowwait 10 grep -q "listening on" "$file.log"; then
		echo "# FAILED: capture on $dev in $ns not listening: $(cat "$file.log")"
		rm -f "$file.log"
		return 1
	fi
	rm -f "$file.log"
}

# capture_stop: every capture running ends. tcpdump says nothing when it
# has read what the kernel queued to it, and drops what is still queued
# when it is killed; the half second before is for that (no packet was
# ever seen late by more than a few milliseconds here).
capture_stop() {
	local pid
	sleep 0.5
	for pid in $CAPTURE_PIDS; do
		bg_stop "$pid"
	done
	CAPTURE_PIDS=
}

# capture_count FILE FILTER: the packets of FILE that FILTER matches;
# nothing when tcpdump cannot read FILE (a capture that never ran holds
# no packet, and "0 leaked" must not follow from that).
capture_count() {
	local out
	out=$(tcpdump -n -r "$1" "$2" 2>/dev/null) || return 1
	[ -z "$out" ] && echo 0 && return 0
	wc -l <<<"$out"
}

# leak_watch_start DEV...: captures of what $GW hands each DEV (p0:
# before the NIC encrypts it; mgmt: its default route) while a case sends
# what must reach none of them. leak_watch_stop FILTER then sends each a
# control the capture must see (two requests: to the peer on p0, to
# 192.0.2.1 by the default route otherwise), stops the captures, and sets
# LEAKED to the packets FILTER matches in all. A watch that missed its
# control fails: a capture that never listened proves nothing.
LEAK_DEVS=()
LEAK_FILES=()
leak_watch_start() {
	local dev cap
	LEAK_DEVS=() LEAK_FILES=()
	for dev in "$@"; do
		tmpfile cap || return 1
		capture_start "$GW" "$dev" "$cap" -Q out || return 1
		LEAK_DEVS+=("$dev")
		LEAK_FILES+=("$cap")
	done
}

leak_control_dst() {
	if [ "$1" = p0 ]; then echo "$NE_ADDR"; else echo 192.0.2.1; fi
}

leak_watch_stop() {
	local i dst counts=()
	for dst in "${LEAK_DEVS[@]}"; do
		ip netns exec "$GW" ping -q -c 2 -i 0.2 -W 1 "$(leak_control_dst "$dst")" >/dev/null
	done
	capture_stop
	LEAKED=
	for i in "${!LEAK_DEVS[@]}"; do
		dst=$(leak_control_dst "${LEAK_DEVS[i]}")
		exactly "control requests the leak watch on ${LEAK_DEVS[i]} saw" \
			"$(capture_count "${LEAK_FILES[i]}" "icmp and dst host $dst")" 2 || return 1
		counts+=("$(capture_count "${LEAK_FILES[i]}" "$1")")
	done
	# shellcheck disable=SC2034 # the cases read it
	LEAKED=$(sum_counts "${counts[@]}")
}

# tunnel_mtu: the path MTU through the tunnel, for the selected outer
# family on a 1500 byte p0, as esp4_get_mtu() and esp6_get_mtu() compute
# it for the report's SA (tunnel mode, AES-GCM: 8 byte ESP header, 8 byte
# IV, 16 byte ICV, padding to 4 bytes, 2 byte trailer).
tunnel_mtu() {
	local outer=20
	[[ $T_GW != *:* ]] || outer=40
	echo $((((1500 - outer - 8 - 8 - 16) & ~3) - 2))
}

# prints VALUE CMD...: CMD prints VALUE (for slowwait).
prints() {
	[ "$("${@:2}")" = "$1" ]
}

# capture_has FILE FILTER: the capture so far holds a packet FILTER
# matches (for slowwait).
capture_has() {
	at_least packets "$(capture_count "$1" "$2")" 1 >/dev/null
}

# script_time: how long the script ran, as a diagnostic (the README's
# sizing table is made of these).
script_time() {
	echo "# $(basename "$0"): ${SECONDS} s"
}

# run_case NAME COMMAND...: one KTAP result named NAME; COMMAND returns
# 0, $KSFT_SKIP or anything else for a failure. What the case deferred
# runs when it returns, then CASE_CLEANUP (topo_cleanup), which sees the
# result in CASE_RET.
run_case() {
	local name=$1 ret
	shift
	defer_scope_push
	defer "${CASE_CLEANUP:-topo_cleanup}"
	XFAIL_PENDING=
	"$@"
	ret=$?
	CASE_RET=$ret defer_scope_pop
	CAPTURE_PIDS=
	[ "$ret" != 0 ] || [ -z "$XFAIL_PENDING" ] || ret=$KSFT_XFAIL
	case $ret in
	0) ktap_test_pass "$name" ;;
	"$KSFT_SKIP") ktap_test_skip "$name" ;;
	"$KSFT_XFAIL") ktap_test_xfail "$name" ;;
	*) ktap_test_fail "$name" ;;
	esac
}

# xfrm_header: the KTAP header, once (a skip of the whole script comes
# after it).
xfrm_header() {
	[ -z "${XFRM_HEADER_DONE:-}" ] || return 0
	XFRM_HEADER_DONE=1
	ktap_print_header
}

# case_selected NAME COMMAND: CASES is empty, or names NAME or the case
# function COMMAND runs.
case_selected() {
	local w
	[ -n "${CASES:-}" ] || return 0
	[[ " $CASES " != *" $1 "* ]] || return 0
	for w in $2; do
		[[ $w != case_* ]] || [[ " $CASES " != *" $w "* ]] || return 0
	done
	return 1
}

# run_tests: the cases of XFRM_TESTS, a table of NAME COMMAND DESCRIPTION
# at the top of each script, in order: the plan, the description as a
# diagnostic, one result named NAME per case, and kselftest's exit
# status: 4 when every case skipped. CASES="NAME..." runs only those
# cases (by name, or by the function their command runs).
run_tests() {
	local i name cmd
	xfrm_header
	ktap_set_plan $((${#XFRM_TESTS[@]} / 3))
	for ((i = 0; i < ${#XFRM_TESTS[@]}; i += 3)); do
		name=${XFRM_TESTS[i]} cmd=${XFRM_TESTS[i + 1]}
		echo "# $name: ${XFRM_TESTS[i + 2]}"
		if case_selected "$name" "$cmd"; then
			run_case "$name" eval "$cmd"
		else
			__ktap_test ok "$name" "SKIP not in CASES"
			KTAP_CNT_SKIP=$((KTAP_CNT_SKIP + 1))
		fi
	done
	script_time
	ktap_print_totals
	[ "$KTAP_CNT_FAIL" -eq 0 ] || exit "$KSFT_FAIL"
	[ "$KTAP_CNT_SKIP" -lt "$KSFT_NUM_TESTS" ] || exit "$KSFT_SKIP"
	[ $((KTAP_CNT_PASS + KTAP_CNT_SKIP + KTAP_CNT_XFAIL)) -eq "$KSFT_NUM_TESTS" ] ||
		exit "$KSFT_FAIL"
	exit "$KSFT_PASS"
}

# Learn the peer's MAC on the ciphered segment, as IKE traffic would have
# before any SA exists: the emulated NIC addresses ESP to it.
prime_peer_neigh() {
	local peer
	for peer in "$NE_ADDR" "$NE_ADDR6"; do
		ip netns exec "$GW" ping -q -c 1 -W 2 "$peer" >/dev/null || return 1
	done
	for peer in "$GW_ADDR" "$GW_ADDR6"; do
		ip netns exec "$NE" ping -q -c 1 -W 2 "$peer" >/dev/null || return 1
	done
}

debugfs_mount() {
	mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
	kmemleak_clear
}

# nsim_sa_field ID DIR SPI FIELD: one field of an emulated SA
# (next_hop, no_neigh, packets, ...).
nsim_sa_field() {
	local f=/sys/kernel/debug/netdevsim/netdevsim$1/ports/0/ipsec_packet
	local spi
	spi=$(printf 0x%08x "$3")
	sed -n "/^packet sa $2 spi=$spi /s/.* $4=\([^ ]*\).*/\1/p" "$f" 2>/dev/null | head -n1
}

# nsim_sa_packets ID DIR SPI: packets the emulated NIC processed for a SA.
nsim_sa_packets() {
	nsim_sa_field "$1" "$2" "$3" packets
}

# nsim_port_counter ID NAME: a port counter of the emulation.
nsim_port_counter() {
	sed -n "s/.* $2=\([0-9]*\).*/\1/p" \
		"/sys/kernel/debug/netdevsim/netdevsim$1/ports/0/ipsec_packet" | head -n1
}

# nsim_fault ID NAME 0|1: the emulation's fault switches
# (ipsec_packet_fail_tx, ipsec_packet_fail_encrypt).
nsim_fault() {
	echo "$3" >"/sys/kernel/debug/netdevsim/netdevsim$1/ports/0/ipsec_packet_$2"
}

# klog_mark / klog_check: what the kernel logged since the mark must hold
# no splat. vm.sh scans the whole log too; this names the case.
KLOG_PATTERN='WARNING:|BUG:|Oops|KASAN|UBSAN|refcount_t|ref_tracker|general protection'
KLOG_PATTERN+='|possible circular|suspicious RCU|suspected memory leak'
# The mark is a line of its own in the kernel log: counting lines would
# miss reports once the ring buffer wraps.
klog_mark() {
	KLOG_MARK="xfrm selftest mark $$.$RANDOM.$SECONDS"
	echo "$KLOG_MARK" >/dev/kmsg
}

klog_check() {
	local bad
	if ! dmesg | grep -qF "$KLOG_MARK"; then
		echo "# FAILED: kernel log mark lost (ring buffer wrapped)"
		return 1
	fi
	bad=$(dmesg | sed -n "/$KLOG_MARK/,\$p" | grep -E "$KLOG_PATTERN")
	[ -z "$bad" ] && return 0
	echo "# FAILED: kernel log:"
	echo "$bad" | head -n 20 | sed 's/^/#   /'
	return 1
}

KMEMLEAK=/sys/kernel/debug/kmemleak

kmemleak_available() {
	[ -w "$KMEMLEAK" ]
}

# kmemleak_clear: forget what earlier work left; each script calls it
# first, so that kmemleak_check judges what came after.
kmemleak_clear() {
	! kmemleak_available || echo clear >"$KMEMLEAK"
}

# kmemleak_check: a scan finds nothing (callers check kmemleak_available). kmemleak
# never reports an object younger than 5 s (its minimum age) and offers
# nothing to wait on for that, hence the sleep.
kmemleak_check() {
	local leaks
	kmemleak_available || { echo "# no kmemleak in this kernel"; return 1; }
	sleep 6
	echo scan >"$KMEMLEAK"
	leaks=$(grep -c "unreferenced object" "$KMEMLEAK")
	echo "# kmemleak: $leaks suspected leaks"
	[ "$leaks" -eq 0 ] && return 0
	head -n 30 "$KMEMLEAK" | sed 's/^/# /'
	return 1
}

# PATH_COUNTERS: counters of the output path under test, each a
# "NAME=COMMAND" that prints it, which rise by one per packet the gateway
# hands the offload device. None for the kernel's own path; a test that
# puts another path in front of it lists that path's counters.
PATH_COUNTERS=()
# PATH_DROP_COUNTERS: the same, for counters of the path's drops and
# failures, which do not move on a path that works.
# shellcheck disable=SC2034 # read through path_snapshot's nameref
PATH_DROP_COUNTERS=()

# path_snapshot [drops]: the values of PATH_COUNTERS (or of
# PATH_DROP_COUNTERS), space separated.
path_snapshot() {
	local c v out='' list=PATH_COUNTERS
	[ "${1:-}" != drops ] || list=PATH_DROP_COUNTERS
	local -n counters=$list
	for c in "${counters[@]}"; do
		v=$(eval "${c#*=}")
		out+="${v:--} " # "-": unread, and delta fails on it
	done
	echo "$out"
}

# path_rose SNAPSHOT CHECK N [drops]: each of PATH_COUNTERS (or of
# PATH_DROP_COUNTERS) rose from SNAPSHOT by exactly (CHECK exactly) or
# at least (at_least) N.
path_rose() {
	local -a before
	local c i=0 now list=PATH_COUNTERS
	[ "${4:-}" != drops ] || list=PATH_DROP_COUNTERS
	local -n counters=$list
	read -r -a before <<<"$1"
	for c in "${counters[@]}"; do
		now=$(eval "${c#*=}")
		delta "${c%%=*}" "${before[i]:-}" "$now" "$3" "$2" || return 1
		i=$((i + 1))
	done
}

# pings_answered NS SRC DST: PING_COUNT requests (-W without -w: exactly
# that many), every one answered.
pings_answered() {
	ip netns exec "$1" ping -q -c "$PING_COUNT" -i 0.2 -W 1 -I "$2" "$3" >/dev/null
}

# ping_routed FROM_NS SRC DST [PING_ARGS...]: PING_COUNT replies before
# the deadline, or fail. With -w, ping goes on sending until it has
# PING_COUNT replies (one late behind a neighbour resolution makes it
# send one more), so PING_SENT says what it sent: the counts of the path
# are compared with that. PING_DEADLINE shortens the wait where a failure
# is what the case expects.
ping_routed() {
	local ns=$1 src=$2 dst=$3 out got
	shift 3
	out=$(ip netns exec "$ns" ping -q -c "$PING_COUNT" -i 0.2 \
		-w "${PING_DEADLINE:-$((PING_COUNT + 10))}" "$@" -I "$src" "$dst")
	read -r PING_SENT got < <(sed -n \
		's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1 \2/p' <<<"$out")
	[ "${got:-0}" -ge "$PING_COUNT" ]
}

# check_offload_path NEIGH NIC PEER PING...: PING (ping_routed, or a
# command sending PING_COUNT requests, which fails unless every reply
# came back) gets every answer. NEIGH, NIC and PEER are shell code that
# print the gateway's neighbour entry for the inner destination, the
# packets of the NIC's out SA and of the peer's in SA. Afterwards there is
# no neighbour entry, and the NIC's SA, the peer's SA and each of
# PATH_COUNTERS rose by exactly the requests sent, and none of
# PATH_DROP_COUNTERS moved. Every check is made; CHECK_FAILED names those
# that failed (ping neigh path drops peer nic), for the cases that show
# each can fail. NIC_COUNT_OPTIONAL=1: a NIC whose
# driver reports no SA counts (0 throughout) is not held to them.
check_offload_path() {
	local neigh_cmd=$1 nic_cmd=$2 peer_cmd=$3 ret path0 drops0 tx0 tx1 peer0 peer1 neigh sent
	shift 3
	PING_SENT=
	CHECK_FAILED=()
	path0=$(path_snapshot)
	drops0=$(path_snapshot drops)
	tx0=$(eval "$nic_cmd")
	peer0=$(eval "$peer_cmd")
	run "$@" >/dev/null
	ret=$?
	sent=${PING_SENT:-$PING_COUNT}
	# With -w, ping may have sent one request more than it waited for,
	# still on its way when ping exits: the peer's count settles first.
	slowwait 2 rose_by "$peer_cmd" "$peer0" "$sent"
	tx1=$(eval "$nic_cmd")
	peer1=$(eval "$peer_cmd")
	neigh=$(eval "$neigh_cmd")
	[ -z "${PATH_COUNTERS[*]}" ] || echo "# path counters: $path0-> $(path_snapshot)"
	echo "# NIC SA tx: $tx0 -> $tx1, peer decrypted: $peer0 -> $peer1"
	if [ "$ret" -ne 0 ]; then
		echo "# FAILED: not every request was answered"
		CHECK_FAILED+=(ping)
	fi
	if [ -n "$neigh" ]; then
		echo "# FAILED: the gateway has a neighbour entry: $neigh"
		CHECK_FAILED+=(neigh)
	fi
	path_rose "$path0" exactly "$sent" || CHECK_FAILED+=(path)
	path_rose "$drops0" exactly 0 drops || CHECK_FAILED+=(drops)
	delta "peer in SA packets" "$peer0" "$peer1" "$sent" || CHECK_FAILED+=(peer)
	if [ "${NIC_COUNT_OPTIONAL:-0}" != 1 ] || [ "${tx1:-0}" != 0 ]; then
		delta "NIC out SA packets" "$tx0" "$tx1" "$sent" || CHECK_FAILED+=(nic)
	fi
	[ "${#CHECK_FAILED[@]}" -eq 0 ]
}

# rose_by CMD BEFORE N: what shell code CMD prints rose from BEFORE by N.
rose_by() {
	local now
	now=$(eval "$1")
	is_count "$now" && is_count "$2" && [ $((now - $2)) -eq "$3" ]
}

# checks_fail_as WHAT WANT CHECK...: CHECK (check_offload_path) fails, and
# exactly the checks WANT names ("nic peer", say) are those that failed.
# A check of the checks: each must fail when what it checks is broken.
checks_fail_as() {
	local what=$1 failing got
	read -ra failing <<<"$2"
	shift 2
	if "$@"; then
		echo "# FAILED: every check passed with $what"
		return 1
	fi
	got=$(printf '%s\n' "${CHECK_FAILED[@]}" | sort -u | xargs)
	echo "# with $what, as they must, these checks failed: $got"
	exactly "checks failing with $what" "$got" "$(printf '%s\n' "${failing[@]}" | sort | xargs)"
}

# strongSwan: one charon per namespace, as on the report's two hosts. Each
# has its own folder under $SWAN_DIR (strongswan.conf, swanctl.conf, vici
# socket, logs) and its own /run, where charon keeps its pid file.
SWAN_CHARON=${SWAN_CHARON:-/usr/lib/ipsec/charon}
SWAN_DIR=
declare -A SWAN_PID

# swan_available: charon and swanctl are there, and new enough for packet
# offload (strongSwan 5.9.10).
swan_available() {
	local v
	if [ ! -x "$SWAN_CHARON" ]; then
		echo "# SKIP: no charon at $SWAN_CHARON (SWAN_CHARON)"
		return "$KSFT_SKIP"
	fi
	if ! command -v swanctl >/dev/null; then
		echo "# SKIP: swanctl not found"
		return "$KSFT_SKIP"
	fi
	# "strongSwan 6.0.1" or "Linux strongSwan 6.0.1", depending on the build.
	v=$("$SWAN_CHARON" --version 2>/dev/null |
		awk '{ for (i = 1; i < NF; i++) if ($i == "strongSwan") { print $(i + 1); exit } }')
	[ -n "$v" ] || { echo "# FAILED: no version from $SWAN_CHARON --version"; return 1; }
	if [ "$(printf '%s\n5.9.10\n' "$v" | sort -V | head -n1)" != 5.9.10 ]; then
		echo "# SKIP: strongSwan $v has no packet offload (5.9.10 or later needed)"
		return "$KSFT_SKIP"
	fi
}

# swan_start NS SWANCTL_CONF: charon in NS, loaded with SWANCTL_CONF. The
# packaged defaults come first; what the lab needs overrides them.
swan_start() {
	local ns=$1 conf=$2 d
	[ -n "$SWAN_DIR" ] || SWAN_DIR=$(mktemp -d)
	d=$SWAN_DIR/$ns
	mkdir -p "$d"
	cp "$conf" "$d/swanctl.conf"
	cat >"$d/strongswan.conf" <<-CONF
	include /etc/strongswan.d/*.conf
	charon {
		load_modular = yes
		plugins {
			include /etc/strongswan.d/charon/*.conf
			vici {
				socket = unix://$d/charon.vici
			}
		}
		filelog {
			charon {
				path = $d/charon.log
				time_format = %T
				default = 1
				knl = 2
			}
		}
	}
	swanctl {
		socket = unix://$d/charon.vici
	}
	CONF
	# shellcheck disable=SC2016 # $1 of the inner shell
	ip netns exec "$ns" env STRONGSWAN_CONF="$d/strongswan.conf" unshare -m \
		sh -c 'mount -t tmpfs none /run && exec "$1"' sh "$SWAN_CHARON" >"$d/stdout" 2>&1 &
	SWAN_PID[$ns]=$!
	if ! slowwait 30 test -S "$d/charon.vici"; then
		echo "# FAILED: charon in $ns did not start:"
		tail -n 5 "$d/stdout" | sed 's/^/#   /'
		return 1
	fi
	swan "$ns" --load-all --file "$d/swanctl.conf" >"$d/load.log"
}

# swan NS ARGS...: swanctl against the charon of NS, bounded (an exchange
# nobody answers is retried for minutes). Its complaints about plugins
# and credential folders this lab does not use go to a log.
swan() {
	local ns=$1
	shift
	local log=$SWAN_DIR/$ns/swanctl.log
	if ! ip netns exec "$ns" env STRONGSWAN_CONF="$SWAN_DIR/$ns/strongswan.conf" \
		timeout 60 swanctl "$@" 2>>"$log"; then
		echo "# FAILED: swanctl $* in $ns:"
		tail -n 5 "$log" | sed 's/^/#   /'
		return 1
	fi
}

# swan_logs: the end of each charon's log, for a case that failed.
swan_logs() {
	local ns
	for ns in "${!SWAN_PID[@]}"; do
		echo "# charon log of $ns:"
		tail -n 30 "$SWAN_DIR/$ns/charon.log" 2>/dev/null | awk '{ print "#   " $0 }'
	done
}

# swan_lab_up NE_CONF GW_CONF: both charons loaded, NE's first, and the
# GW initiating the CHILD_SA gw, as in the report; swanctl's answer is in
# $SWAN_DIR/initiate.log.
swan_lab_up() {
	swan_start "$NE" "$1" || return 1
	swan_start "$GW" "$2" || return 1
	swan "$GW" --initiate --child gw >"$SWAN_DIR/initiate.log" ||
		{ sed 's/^/#   /' "$SWAN_DIR/initiate.log"; return 1; }
}

# swan_cleanup: charons stopped, namespaces and their folder gone.
swan_cleanup() {
	swan_stop
	topo_cleanup
	[ -z "$SWAN_DIR" ] || rm -rf "$SWAN_DIR"
	SWAN_DIR=
}

# swan_stop: every charon stopped (SIGTERM, then SIGKILL after 10 s).
swan_stop() {
	local ns pid
	for ns in "${!SWAN_PID[@]}"; do
		pid=${SWAN_PID[$ns]}
		kill "$pid" 2>/dev/null
		slowwait 10 sh -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		unset "SWAN_PID[$ns]"
	done
}
