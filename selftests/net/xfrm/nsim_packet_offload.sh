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
# checks_can_fail shows, with the emulation's fault switches, that the
# traffic checks fail when the NIC drops or does not encrypt.

source "$(dirname "$(readlink -f "$0")")/routed_lib.sh"

# The cases, in order: name (CASES selects by name or function),
# command, description.
# shellcheck disable=SC2016 # the commands expand when they run
XFRM_TESTS=(
	tunnel4 case_tunnel4
		'tunnel, IPv4 in IPv4'
	tunnel6 case_tunnel6
		'tunnel, IPv6 in IPv6'
	4in6 case_4in6
		'tunnel, IPv4 in IPv6, locally generated'
	6in4 case_6in4
		'tunnel, IPv6 in IPv4, locally generated'
	transport4 case_transport4
		'transport, IPv4'
	transport6 case_transport6
		'transport, IPv6'
	transport_l2 case_transport_l2
		"transport: ESP keeps the frame's own L2 header"
	outer_header case_outer_header
		"tunnel: the outer header is mlx5's (no DSCP or ECN copied, no DF, TTL 64)"
	esn_wrap case_esn_wrap
		'ESN: sequence numbers cross 2^32 both ways'
	replay_badicv case_replay_badicv
		'RX: replayed and forged (bad ICV) frames dropped and counted'
	rx_replay_state case_rx_replay_state
		'RX: the inbound replay state stays on the device'
	oseq_wrap case_oseq_wrap
		'32 bit sequence numbers may wrap to 0 (oseq-may-wrap, no replay window)'
	tmpl_no_reqid case_tmpl_no_reqid
		'TX: a policy template without a reqid: no state, nothing sent'
	tmpl_wildcard_src case_tmpl_wildcard_src
		'TX: a tunnel template without a source address'
	ipv6_exthdr case_ipv6_exthdr
		'TX: IPv6 with an extension header: refused by the stack, classified by the NIC'
	acquire case_acquire
		'acquire: the placeholder state is accepted, one acquire heard'
	lifetime case_lifetime
		'lifetime: soft then hard packet limit under traffic, state deleted'
	mlx5_refusals case_mlx5_refusals
		'add: what mlx5 refuses, refused with its reason'
	vf_port case_vf_port
		'a VF port in switchdev mode sends traffic, offloads nothing'
	cold_neigh case_cold_neigh
		'next hop: cold peer neighbour, solicited when the SA is added'
	next_hop_peer case_next_hop_peer
		"next hop: the peer's new MAC followed (netevent for the SA's address)"
	next_hop_router case_next_hop_router
		"next hop: a router's new MAC not followed, as on mlx5; followed when asked"
	no_route4 'case_no_route 4'
		"next hop: no route to the peer, IPv4: ARP fallback, the peer's answer"
	no_route6 'case_no_route 6'
		'next hop: no route to the peer, IPv6: ARP for 4 bytes of it, drops until ND'
	rx_cleartext case_rx_cleartext
		'RX: cleartext towards an offloaded in policy dropped, counted'
	rx_inner_selector case_rx_inner_selector
		'RX: inner source outside the SA selector dropped'
	rx_malformed case_rx_malformed
		'RX: malformed frames at an offloaded SA, each dropped and counted'
	rx_flush_stress case_rx_flush_stress
		'RX: device flush under traffic at expiring in SAs, no splat'
	checks_can_fail case_checks_can_fail
		'the traffic checks fail with the NIC dropping or not encrypting'
	delete_with_sas case_delete_with_sas
		'teardown: device deleted with offloaded SAs and policies, all flushed'
)

PING_COUNT=${PING_COUNT:-4}
A_ID='' B_ID='' R_ID=''

cleanup() {
	cleanup_all_ns
	nsim_del "$A_ID" "$B_ID" "$R_ID"
	A_ID='' B_ID='' R_ID=''
}
trap 'defer_scopes_cleanup; cleanup' EXIT
CASE_CLEANUP=cleanup

setup() {
	cleanup
	nsim_ready || return
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
}

# sa_pair MODE OUTER_A OUTER_B INNER_A INNER_B [SEQ]: SAs and policies
# on both sides, packet offload on $A; SEQ starts every sequence number.
# The states' selectors name the inner addresses, which cross-family
# tunnels need (a state's selector is of its own family by default).
# SA_WRAP=1: no ESN, the out states may wrap (oseq-may-wrap) and the in
# states keep no replay window, so that 32 bit numbers wrap to 0.
# SA_A_OUT, SA_A_IN: more arguments for $A's out and in states (limits,
# say).
# shellcheck disable=SC2086 # $off and $win: words for ip
sa_pair() {
	local mode=$1 oa=$2 ob=$3 ia=$4 ib=$5 out=() in=()
	local off="offload packet dev p0" esn=(flag esn) win=128
	local a_out a_in
	read -ra a_out <<<"${SA_A_OUT:-}"
	read -ra a_in <<<"${SA_A_IN:-}"
	[ "${SA_WRAP:-0}" = 0 ] || { esn=() win=0 out=(extra-flag oseq-may-wrap); }
	[ -z "${6:-}" ] || { out+=(replay-oseq "$6"); in+=(replay-seq "$6"); }
	run ip -n "$A" xfrm state add src "$oa" dst "$ob" proto esp spi 0x100 reqid 1 \
		mode "$mode" "${esn[@]}" replay-window 0 aead "$AEAD_ALG" "$KEY_OUT" 128 \
		sel src "$ia" dst "$ib" "${out[@]}" "${a_out[@]}" $off dir out || return 1
	run ip -n "$A" xfrm state add src "$ob" dst "$oa" proto esp spi 0x200 reqid 2 \
		mode "$mode" "${esn[@]}" replay-window $win aead "$AEAD_ALG" "$KEY_IN" 128 \
		sel src "$ib" dst "$ia" "${in[@]}" "${a_in[@]}" $off dir in || return 1
	run ip -n "$A" xfrm policy add src "$ia" dst "$ib" dir out \
		tmpl src "$oa" dst "$ob" proto esp reqid 1 mode "$mode" $off || return 1
	run ip -n "$A" xfrm policy add src "$ib" dst "$ia" dir in \
		tmpl src "$ob" dst "$oa" proto esp reqid 2 mode "$mode" $off || return 1
	run ip -n "$B" xfrm state add src "$oa" dst "$ob" proto esp spi 0x100 reqid 1 \
		mode "$mode" "${esn[@]}" replay-window $win aead "$AEAD_ALG" "$KEY_OUT" 128 \
		sel src "$ia" dst "$ib" "${in[@]}" || return 1
	run ip -n "$B" xfrm state add src "$ob" dst "$oa" proto esp spi 0x200 reqid 2 \
		mode "$mode" "${esn[@]}" replay-window $win aead "$AEAD_ALG" "$KEY_IN" 128 \
		sel src "$ib" dst "$ia" "${out[@]}" || return 1
	run ip -n "$B" xfrm policy add src "$ib" dst "$ia" dir out \
		tmpl src "$ob" dst "$oa" proto esp reqid 2 mode "$mode" || return 1
	run ip -n "$B" xfrm policy add src "$ia" dst "$ib" dir in \
		tmpl src "$oa" dst "$ob" proto esp reqid 1 mode "$mode" || return 1
}

# traffic OUTER_A OUTER_B PING_SRC PING_DST: ping from $A, every request
# answered; the NIC's SAs on $A and the software SAs on $B each count
# exactly the requests sent. One request goes first: the stock path
# resolves the inner destination on p0 (the connected case), and in IPv6
# the peer's neighbour advertisement for it rides the tunnel.
# Every check is made: CHECK_FAILED names those that failed (ping, and
# nic_out nic_in peer_in peer_out of nic_counts).
traffic() {
	local base ret=0
	CHECK_FAILED=()
	run ip netns exec "$A" ping -q -c 1 -W 2 -I "$3" "$4" >/dev/null || CHECK_FAILED+=(ping)
	base=$(sa_packets "$1" "$2")
	ping_exact "$A" "$3" "$4" || CHECK_FAILED+=(ping)
	# ping -w may leave a request in flight as it exits: the NIC's in SA,
	# which counts the answers last, settles first.
	slowwait 2 rose_by "nsim_sa_packets $A_ID in 0x200" "$(cut -d' ' -f2 <<<"$base")" \
		"$PING_SENT"
	nic_counts "$1" "$2" "$PING_SENT" "$base" || ret=1
	[ "$ret" -eq 0 ] && [ "${#CHECK_FAILED[@]}" -eq 0 ]
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

# Cross-family packet offload tunnels, from $A itself: every request
# should be answered. The stack sends locally generated packets of a
# packet offload state through the route's own output, which is of the
# outer family, while the packet is still of the inner one: it refuses
# them, each counted in XfrmOutError, and none reaches the device (an
# XFAIL). Forwarded traffic takes direct output and goes through
# (routed_network.sh).
cross_family() {
	local oa=$1 ob=$2 src=$3 dst=$4 gen0 gen1 err0 err1
	gen0=$(xfrm_mib "$A" XfrmOutBundleGenError)
	err0=$(xfrm_mib "$A" XfrmOutError)
	# -W without -w: exactly PING_COUNT requests, answered or not.
	xfail_unless "locally generated cross-family packet offload traffic is refused:" \
		"xfrm_output() hands it to the outer family's output (XfrmOutError)" -- \
		pings_answered "$A" "$src" "$dst" || return 1
	gen1=$(xfrm_mib "$A" XfrmOutBundleGenError)
	err1=$(xfrm_mib "$A" XfrmOutError)
	echo "# XfrmOutBundleGenError $gen0 -> $gen1, XfrmOutError $err0 -> $err1"
	delta "XfrmOutBundleGenError" "$gen0" "$gen1" 0 &&
		delta "XfrmOutError" "$err0" "$err1" "$PING_COUNT" &&
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

# Transport mode keeps the frame's own L2 header, as mlx5's
# ADD_ESP_TRANSPORT reformat does: a frame addressed to a MAC that is not
# the peer's goes out, encrypted, to that MAC. The frame is handed to the
# device through a packet socket, as a transmit path that wrote a wrong
# L2 header would hand it.
case_transport_l2() {
	local cap mac other=02:00:00:00:00:99 esp clear
	setup || return
	sa_pair transport 192.168.1.1 192.168.1.2 192.168.1.1/32 192.168.1.2/32 || return 1
	mac=$(ip netns exec "$A" cat /sys/class/net/p0/address)
	# Without GRO, $B's tap sees the wire: ESP GRO would decrypt first.
	run ip netns exec "$B" ethtool -K p0 gro off || return 1
	tmpfile cap || return 1
	capture_start "$B" p0 "$cap" -Q in || return 1
	ip netns exec "$A" python3 -c '
import socket, struct, sys
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s & 0xffff) + (s >> 16)
    return ~(s + (s >> 16)) & 0xffff
payload = b"l2" * 16
udp = struct.pack("!HHHH", 4000, 4001, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                 socket.inet_aton("192.168.1.1"), socket.inet_aton("192.168.1.2"))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
eth = bytes.fromhex(sys.argv[1].replace(":", "")) + \
      bytes.fromhex(sys.argv[2].replace(":", "")) + b"\x08\x00"
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("p0", 0))
s.send(eth + ip + udp)' "$other" "$mac"
	local ret=$?
	slowwait 5 sh -c "[ \"\$(tcpdump -n -r $cap esp 2>/dev/null | wc -l)\" -ge 1 ]"
	capture_stop
	esp=$(capture_count "$cap" "ether dst $other and esp")
	clear=$(capture_count "$cap" "ether dst $other and not esp")
	echo "# frames to $other on \$B's wire: $esp ESP, $clear other;" \
		"ESP frames: $(tcpdump -n -e -r "$cap" esp 2>/dev/null | cut -d' ' -f2-4 | sort -u)"
	exactly "packet socket send" "$ret" 0 &&
		exactly "ESP frames to $other" "$esp" 1 &&
		exactly "clear frames to $other" "$clear" 0 &&
		exactly "NIC out SA packets" "$(nsim_sa_packets "$A_ID" out 0x100)" 1
}

# The outer header is mlx5's reformat header, fixed when the SA is added:
# an inner DSCP and ECN (ping -Q 0xb9: CS5, ECT(1)) are not copied, DF is
# not set, the TTL is 64.
case_outer_header() {
	local cap frames fixed hdrs
	setup || return
	sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 || return 1
	# Without GRO, $B's tap sees the wire: ESP GRO would decrypt first.
	run ip netns exec "$B" ethtool -K p0 gro off || return 1
	tmpfile cap || return 1
	capture_start "$B" p0 "$cap" -Q in || return 1
	run ping_routed "$A" 10.1.0.1 10.2.0.1 -Q 0xb9 >/dev/null
	local ret=$?
	capture_stop
	frames=$(capture_count "$cap" esp)
	# "IP (tos 0x0, ttl 64, id 0, offset 0, flags [none], proto ESP (50), ..."
	hdrs=$(tcpdump -n -v -r "$cap" esp 2>/dev/null | grep -o 'IP (tos .*, proto ESP')
	fixed=$(grep -c '^IP (tos 0x0, ttl 64, id [0-9]*, offset 0, flags \[none\], proto ESP$' \
		<<<"$hdrs")
	echo "# $frames ESP frames, $fixed with tos 0, TTL 64, no DF;" \
		"outer headers: $(sort -u <<<"$hdrs" | sed 's/, id [0-9]*//' | paste -sd';')"
	exactly "ping with DSCP and ECN set" "$ret" 0 &&
		exactly "ESP frames on \$B's wire" "$frames" "$PING_SENT" || return 1
	# RFC 6040: a tunnel's outer header carries the inner ECN field.
	xfail_unless "mlx5 builds the outer header with tos 0: the inner ECN" \
		"(RFC 6040) and DSCP are not copied" -- \
		exactly "ESP frames carrying the inner tos 0xb9" \
		"$(grep -c '^IP (tos 0xb9,' <<<"$hdrs")" "$PING_SENT" || return 1
	exactly "ESP frames with mlx5's outer header" "$fixed" "$PING_SENT"
}

# ESN: both out sequence numbers start just below 2^32, so the pings
# carry the high half over in both directions.
case_esn_wrap() {
	local seq
	setup || return
	sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 4294967294 || return 1
	traffic 192.168.1.1 192.168.1.2 10.1.0.1 10.2.0.1 || return 1
	seq=$(nsim_sa_field "$A_ID" out 0x100 seq)
	echo "# NIC out sequence number now $seq"
	at_least "NIC out sequence number past 2^32" "$seq" 4294967297 &&
		exactly "NIC out sequence number" "$seq" \
			$((4294967294 + $(nsim_sa_packets "$A_ID" out 0x100)))
}

# A replayed frame and one with a forged sequence number (so a bad ICV)
# reach $A's NIC: both dropped and counted, neither delivered.
case_replay_badicv() {
	local cap rx0 rx1 replay0 replay1 icv0 icv1 sa_replay='' sa_icv=''
	setup || return
	sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 || return 1
	tmpfile cap || return 1
	capture_peer_esp "$cap" || return 1
	rx0=$(nsim_sa_packets "$A_ID" in 0x200)
	replay0=$(nsim_port_counter "$A_ID" rx_replay)
	icv0=$(nsim_port_counter "$A_ID" rx_bad_icv)
	ip netns exec "$B" python3 "$lib_dir/esp_inject.py" "$cap" p0 replay &&
		ip netns exec "$B" python3 "$lib_dir/esp_inject.py" "$cap" p0 badicv
	local ret=$?
	[ "$ret" -eq 0 ] || { echo "# FAILED: could not inject"; return 1; }
	slowwait 20 prints $((icv0 + 1)) nsim_port_counter "$A_ID" rx_bad_icv
	rx1=$(nsim_sa_packets "$A_ID" in 0x200)
	replay1=$(nsim_port_counter "$A_ID" rx_replay)
	icv1=$(nsim_port_counter "$A_ID" rx_bad_icv)
	# "stats: replay-window W replay R failed F", as the NIC reported it
	read -r sa_replay sa_icv < <(ip -n "$A" -s xfrm state get src 192.168.1.2 \
		dst 192.168.1.1 proto esp spi 0x200 |
		sed -n 's/.*replay-window [0-9]* replay \([0-9]*\) failed \([0-9]*\).*/\1 \2/p')
	echo "# NIC rx: $rx0 -> $rx1, replay drops: $replay0 -> $replay1," \
		"bad ICV drops: $icv0 -> $icv1; SA stats: replay $sa_replay failed $sa_icv"
	delta "packets delivered from injected frames" "$rx0" "$rx1" 0 &&
		delta "replay drops" "$replay0" "$replay1" 1 &&
		delta "bad ICV drops" "$icv0" "$icv1" 1 &&
		exactly "SA replay statistic" "$sa_replay" 1 &&
		exactly "SA integrity failure statistic" "$sa_icv" 1
}

# capture_peer_esp FILE: ESP frames $B sends to $A's NIC, into FILE (on
# receive a tap would also see $A's). A loaded TCG guest may start tcpdump
# late: try again until it has recorded one.
capture_peer_esp() {
	local try
	for try in 1 2 3; do
		capture_start "$B" p0 "$1" -Q out || return 1
		run ip netns exec "$A" ping -q -c 2 -i 0.2 -W 2 -I 10.1.0.1 10.2.0.1 ||
			{ capture_stop; return 1; }
		capture_stop
		[ "$(capture_count "$1" esp)" -eq 0 ] || return 0
		echo "# capture $try recorded no ESP frame"
	done
	return 1
}

# ping_exact NS SRC DST: PING_COUNT replies (ping_routed), or fail;
# PING_SENT requests sent.
ping_exact() {
	run ping_routed "$1" "$2" "$3" >/dev/null
}

# sa_packets OUTER_A OUTER_B: the packets of the NIC's out and in SAs on
# $A and of the software in and out SAs on $B.
# ("-" for one that cannot be read).
sa_packets() {
	local v values=
	for v in "$(nsim_sa_packets "$A_ID" out 0x100)" "$(nsim_sa_packets "$A_ID" in 0x200)" \
		"$(xfrm_packets "$B" "$1" "$2" 0x100)" "$(xfrm_packets "$B" "$2" "$1" 0x200)"; do
		values+="${v:--} "
	done
	echo "$values"
}

# nic_counts OUTER_A OUTER_B WANT [BASE]: the four SAs of sa_packets each
# count exactly WANT packets, or WANT more than in BASE (sa_packets).
# Each that does not is added to CHECK_FAILED (nic_out, nic_in, ...).
nic_counts() {
	local want=$3 got base i ret=0
	local names=("NIC out SA" "NIC in SA" "peer in SA" "peer out SA")
	local ids=(nic_out nic_in peer_in peer_out)
	read -ra got <<<"$(sa_packets "$1" "$2")"
	read -ra base <<<"${4:-0 0 0 0}"
	for i in 0 1 2 3; do
		delta "${names[i]} packets" "${base[i]:-}" "${got[i]:-}" "$want" && continue
		CHECK_FAILED+=("${ids[i]}")
		ret=1
	done
	return "$ret"
}

# 32 bit sequence numbers that may wrap (XFRM_SA_XFLAG_OSEQ_MAY_WRAP)
# with no replay window: both ways the numbers go 2^32 - 1, 0, 1, 2. The
# NIC sends 0 after the wrap, as the stack does, and accepts it, as the
# stack does with a replay window of 0.
case_oseq_wrap() {
	setup || return
	SA_WRAP=1 sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 \
		4294967294 || return 1
	ping_exact "$A" 10.1.0.1 10.2.0.1 || return 1
	exactly "NIC out sequence number overflows" \
		"$(nsim_port_counter "$A_ID" tx_seq_overflow)" 0 &&
		exactly "NIC replay drops" "$(nsim_port_counter "$A_ID" rx_replay)" 0 &&
		nic_counts 192.168.1.1 192.168.1.2 "$PING_SENT"
}

# The inbound replay state (highest number and bitmap) lives on the
# device: as on mlx5, the driver leaves the xfrm state's copy alone
# rather than report a number without its bitmap.
case_rx_replay_state() {
	local seq
	setup || return
	sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 || return 1
	ping_exact "$A" 10.1.0.1 10.2.0.1 || return 1
	nic_counts 192.168.1.1 192.168.1.2 "$PING_SENT" || return 1
	# "seq-hi 0x0, seq 0x0, oseq-hi 0x0, oseq 0x0"
	seq=$(ip -n "$A" -s xfrm state get src 192.168.1.2 dst 192.168.1.1 proto esp spi 0x200 |
		sed -n 's/.*seq-hi 0x[0-9a-f]*, seq \(0x[0-9a-f]*\),.*/\1/p')
	echo "# in SA replay state as the driver reports it: seq ${seq:-none}"
	# $B numbered its requests' answers from 1: the highest is PING_SENT.
	xfail_unless "mlx5 keeps the inbound replay state on the device and reports" \
		"none of it: the xfrm state's replay seq stays 0" -- \
		exactly "in SA's replay seq in the xfrm state" "$seq" \
		"$(printf 0x%x "$PING_SENT")" || return 1
	exactly "in SA's replay seq in the xfrm state" "$seq" 0x0
}

# A template without a reqid: mlx5 would send what reaches it for such a
# policy in the clear (its policy rule marks no reqid, which no SA rule
# matches), and so does the emulation. But the stack never hands it any:
# xfrm_state_find() wants a state of the template's reqid, 0, and packet
# offload states always have one (mlx5 refuses them without). Each
# request waits for an acquire and is dropped (XfrmOutNoStates); nothing
# reaches the wire.
case_tmpl_no_reqid() {
	local cap nostates0 frames
	setup || return
	sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 || return 1
	run ip -n "$A" xfrm policy delete src 10.1.0.1/32 dst 10.2.0.1/32 dir out || return 1
	run ip -n "$A" xfrm policy add src 10.1.0.1/32 dst 10.2.0.1/32 dir out \
		tmpl src 192.168.1.1 dst 192.168.1.2 proto esp mode tunnel \
		offload packet dev p0 || return 1
	nostates0=$(xfrm_mib "$A" XfrmOutNoStates)
	tmpfile cap || return 1
	capture_start "$B" p0 "$cap" -Q in || return 1
	if pings_answered "$A" 10.1.0.1 10.2.0.1; then
		capture_stop
		echo "# FAILED: answered through a policy whose template has no reqid"
		return 1
	fi
	capture_stop
	frames=$(capture_count "$cap" "src host 10.1.0.1 or (src host 192.168.1.1 and esp)")
	echo "# frames on \$B's wire from the requests: $frames"
	exactly "requests' frames on \$B's wire" "$frames" 0 &&
		exactly "NIC out SA packets" "$(nsim_sa_packets "$A_ID" out 0x100)" 0 &&
		delta "XfrmOutNoStates on \$A" "$nostates0" "$(xfrm_mib "$A" XfrmOutNoStates)" \
			"$PING_COUNT"
}

# A tunnel template without a source address: the stack fills it in from
# the route and finds the state; the device links the policy to it by
# reqid, as mlx5 does, and encrypts.
case_tmpl_wildcard_src() {
	setup || return
	sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 || return 1
	run ip -n "$A" xfrm policy delete src 10.1.0.1/32 dst 10.2.0.1/32 dir out || return 1
	run ip -n "$A" xfrm policy add src 10.1.0.1/32 dst 10.2.0.1/32 dir out \
		tmpl dst 192.168.1.2 proto esp reqid 1 mode tunnel \
		offload packet dev p0 || return 1
	ping_exact "$A" 10.1.0.1 10.2.0.1 || return 1
	exactly "NIC tx without a state" "$(nsim_port_counter "$A_ID" tx_no_state)" 0 &&
		nic_counts 192.168.1.1 192.168.1.2 "$PING_SENT"
}

# Soft and hard packet limits on the NIC's out SA (5 and 10), under
# traffic: the device counts, and tells the stack as mlx5 does on its
# hardware's events, so the key manager hears a soft expire at the 5th
# packet and a hard one at the 10th; the state is then deleted, and
# exactly 10 requests reached the peer.
case_lifetime() {
	setup || return
	SA_A_OUT="limit packet-soft 5 limit packet-hard 10" \
		sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 || return 1
	lifetime_expires "$A" 10.1.0.1 10.2.0.1 "$A" 192.168.1.1 192.168.1.2 0x100 &&
		exactly "peer in SA packets" \
			"$(xfrm_packets "$B" 192.168.1.1 192.168.1.2 0x100)" 10
}

# Offloaded policies and no state yet: the first packet makes the stack
# add an acquire's placeholder state to the device, which accepts it
# (mlx5 does), and the key manager hears exactly one acquire.
case_acquire() {
	local mon ret
	setup || return
	run ip -n "$A" xfrm policy add src 10.1.0.1/32 dst 10.2.0.1/32 dir out \
		tmpl src 192.168.1.1 dst 192.168.1.2 proto esp reqid 1 mode tunnel \
		offload packet dev p0 || return 1
	tmpfile mon || return 1
	xfrm_monitor_start "$A" "$mon" acquire
	ip netns exec "$A" ping -q -c 1 -W 1 -I 10.1.0.1 10.2.0.1 >/dev/null 2>&1
	slowwait 5 grep -q '^acquire' "$mon"
	xfrm_monitor_stop
	ret=$(grep -c '^acquire' "$mon")
	exactly "acquires the key manager heard" "$ret" 1 &&
		exactly "placeholder states on \$A" \
			"$(count_matching '^src 192.168.1.1 dst 192.168.1.2' \
			ip -n "$A" xfrm state)" 1
}

# refused EXTACK CMD...: CMD fails, saying EXTACK.
refused() {
	local want=$1 err
	shift
	if err=$("$@" 2>&1); then
		echo "# FAILED: accepted: $*"
		return 1
	fi
	grep -qF "$want" <<<"$err" && return 0
	echo "# FAILED: $*: '$err', expected '$want'"
	return 1
}

# What mlx5 refuses when a state or policy is offloaded (its
# mlx5e_xfrm_validate_state() and _policy()), refused with its reason.
# (ip xfrm takes the SPI right after the protocol.)
case_mlx5_refusals() {
	local st=(ip -n "$A" xfrm state add src 192.168.1.1 dst 192.168.1.2 proto esp spi)
	local sa=(mode tunnel aead "$AEAD_ALG" "$KEY_OUT" 128)
	local sel=(sel src 10.1.0.1 dst 10.2.0.1)
	local pol=(ip -n "$A" xfrm policy add src 10.1.0.1/32 dst 10.2.0.1/32)
	local tmpl=(tmpl src 192.168.1.1 dst 192.168.1.2 proto esp reqid 1 mode tunnel)
	local off=(offload packet dev p0)
	setup || return
	refused "Cannot offload without reqid" \
		"${st[@]}" 0x101 "${sa[@]}" "${sel[@]}" "${off[@]}" dir out &&
	refused "upper protocol other than TCP/UDP" \
		"${st[@]}" 0x102 "${sa[@]}" reqid 1 "${sel[@]}" proto icmp "${off[@]}" dir out &&
	refused "Unsupported replay window size" \
		"${st[@]}" 0x103 "${sa[@]}" reqid 1 flag esn replay-window 100 \
		sel src 10.2.0.1 dst 10.1.0.1 "${off[@]}" dir in &&
	refused "Hard packet limit must be greater than soft one" \
		"${st[@]}" 0x104 "${sa[@]}" reqid 1 "${sel[@]}" \
		limit packet-soft 10 limit packet-hard 10 "${off[@]}" dir out &&
	refused "upper protocol other than TCP/UDP" \
		"${pol[@]}" proto icmp dir out "${tmpl[@]}" "${off[@]}" &&
	refused "reqid 0 without at least one of upper protocol" \
		ip -n "$A" xfrm policy add src 0.0.0.0/0 dst 0.0.0.0/0 dir out \
		tmpl src 192.168.1.1 dst 192.168.1.2 proto esp mode tunnel "${off[@]}" &&
	refused "requested policy priority" \
		"${pol[@]}" dir out priority 4294967295 "${tmpl[@]}" "${off[@]}" || return 1
	# Nothing of the above was half-added; what mlx5 takes, the device takes.
	exactly "states on \$A" "$(count_matching '^src' ip -n "$A" xfrm state)" 0 &&
		exactly "policies on \$A" "$(count_matching '^src' ip -n "$A" xfrm policy)" 0 &&
		run "${st[@]}" 0x106 "${sa[@]}" reqid 1 "${sel[@]}" proto udp "${off[@]}" dir out &&
		run "${pol[@]}" proto udp dir out "${tmpl[@]}" "${off[@]}"
}

# IPv6 with an extension header (destination options) under a policy
# for UDP to port 5000. The stack hands no such packet to an offload
# device (xfrm_dev_offload_ok()): from a socket it is refused and counted.
# A frame that reaches the device anyway, here through a packet socket,
# is classified on its upper layer, as the stack's selectors are, and
# encrypted: $B decrypts it and receives the datagram, which $B's policy
# would refuse in the clear.
case_ipv6_exthdr() {
	local out err0 err1 got a_mac b_mac sent
	setup || return
	sa_pair tunnel 2001:db8:1::1 2001:db8:1::2 2001:db8:a::1/128 2001:db8:b::1/128 ||
		return 1
	run ip -n "$A" xfrm policy delete src 2001:db8:a::1/128 dst 2001:db8:b::1/128 \
		dir out || return 1
	run ip -n "$A" xfrm policy add src 2001:db8:a::1/128 dst 2001:db8:b::1/128 \
		proto udp dport 5000 dir out tmpl src 2001:db8:1::1 dst 2001:db8:1::2 \
		proto esp reqid 1 mode tunnel offload packet dev p0 || return 1
	a_mac=$(ip netns exec "$A" cat /sys/class/net/p0/address)
	b_mac=$(ip netns exec "$B" cat /sys/class/net/p0/address)
	tmpfile out || return 1
	ip netns exec "$B" timeout 60 python3 -c '
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("2001:db8:b::1", 5000))
s.settimeout(20)
n = 0
try:
    s.recv(2048)
    n = 1
    s.settimeout(2)
    s.recv(2048)
    n = 2
except socket.timeout:
    pass
print(n)' >"$out" &
	local listener=$!
	slowwait 10 sh -c "ip netns exec $B ss -lun | grep -q ':5000 '"
	err0=$(xfrm_mib "$A" XfrmOutError)
	# IPV6_DSTOPTS (59): one destination options header, a PadN option.
	ip netns exec "$A" timeout 30 python3 -c '
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, 59, bytes([0, 0, 1, 4, 0, 0, 0, 0]))
s.bind(("2001:db8:a::1", 0))
s.sendto(b"x" * 64, ("2001:db8:b::1", 5000))' 2>/dev/null
	sent=$?
	err1=$(xfrm_mib "$A" XfrmOutError)
	ip netns exec "$A" python3 -c '
import socket, struct, sys
src = socket.inet_pton(socket.AF_INET6, "2001:db8:a::1")
dst = socket.inet_pton(socket.AF_INET6, "2001:db8:b::1")
payload = b"x" * 64
ulen = 8 + len(payload)
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff or 0xffff
pseudo = src + dst + struct.pack("!IxxxB", ulen, 17)
udp = struct.pack("!HHHH", 4000, 5000, ulen, 0) + payload
udp = udp[:6] + struct.pack("!H", csum(pseudo + udp)) + udp[8:]
dstopts = bytes([17, 0, 1, 4, 0, 0, 0, 0])
ip6 = struct.pack("!IHBB", 6 << 28, len(dstopts) + ulen, 60, 64) + src + dst
eth = bytes.fromhex(sys.argv[2].replace(":", "")) + \
      bytes.fromhex(sys.argv[1].replace(":", "")) + b"\x86\xdd"
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("p0", 0))
s.send(eth + ip6 + dstopts + udp)' "$a_mac" "$b_mac" || { echo "# FAILED: injecting"; return 1; }
	wait "$listener"
	got=$(cat "$out")
	echo "# from a socket: send rc $sent, XfrmOutError $err0 -> $err1;" \
		"through the device: \$B received ${got:-none}"
	exactly "socket send refused (rc 1)" "$sent" 1 &&
		delta "XfrmOutError" "$err0" "$err1" 1 &&
		exactly "datagrams received by \$B" "$got" 1 &&
		exactly "NIC out SA packets" "$(nsim_sa_packets "$A_ID" out 0x100)" 1 &&
		exactly "peer in SA packets" \
			"$(xfrm_packets "$B" 2001:db8:1::1 2001:db8:1::2 0x100)" 1
}

# A VF port (switchdev mode, one VF) shares the PF's transmit and receive
# functions but offloads nothing, as on mlx5, where only the uplink does
# IPsec: its frames go through untouched, and the emulation's state of
# the port, empty, is never in the way. A VF port has no peer to link to
# (netdevsim links PF ports only): each frame it sends is dropped after
# the emulation saw it, and counted. No IPv6 and a static neighbour, so
# that the pings are the only frames.
case_vf_port() {
	local dev vf drop0 drop1
	setup || return
	command -v devlink >/dev/null || { echo "# SKIP: devlink not found"; return "$KSFT_SKIP"; }
	dev=netdevsim$A_ID
	echo 1 >"$NSIM_SYS/devices/$dev/sriov_numvfs" || return 1
	run ip netns exec "$A" devlink dev eswitch set "netdevsim/$dev" mode switchdev || return 1
	vf=$(slowwait 10 nsim_vf_name "$A" "$A_ID") || { echo "# FAILED: no VF port"; return 1; }
	ip netns exec "$A" sysctl -qw "net.ipv6.conf.$vf.disable_ipv6=1"
	ip -n "$A" addr add 192.0.2.1/24 dev "$vf"
	ip -n "$A" neigh add 192.0.2.2 lladdr 02:00:00:00:00:02 dev "$vf"
	ip -n "$A" link set "$vf" up
	drop0=$(ip netns exec "$A" cat "/sys/class/net/$vf/statistics/tx_dropped")
	klog_mark
	# -W without -w: exactly PING_COUNT requests, none answered.
	ip netns exec "$A" ping -q -c "$PING_COUNT" -i 0.2 -W 1 -I 192.0.2.1 192.0.2.2 >/dev/null
	klog_check || return 1
	drop1=$(ip netns exec "$A" cat "/sys/class/net/$vf/statistics/tx_dropped")
	echo "# VF port $vf: $((drop1 - drop0)) frames sent (and dropped: no peer)"
	delta "frames through the VF port's transmit" "$drop0" "$drop1" "$PING_COUNT" &&
		refused "Invalid argument" \
			ip -n "$A" xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp \
			spi 0x300 reqid 3 mode tunnel aead "$AEAD_ALG" "$KEY_OUT" 128 \
			offload packet dev "$vf" dir out
}

# nsim_vf_name NS ID: the name of the first VF port of device ID.
nsim_vf_name() {
	local port name
	for port in $(ip netns exec "$1" ls "$NSIM_SYS/devices/netdevsim$2/net/"); do
		name=$(ip netns exec "$1" cat "/sys/class/net/$port/phys_port_name" 2>/dev/null)
		[ "$name" != pf0vf0 ] || { echo "$port"; return 0; }
	done
	return 1
}

# port_mac NS DEV
port_mac() {
	ip netns exec "$1" cat "/sys/class/net/$2/address"
}

# wait_next_hop MAC: $A's out SA comes to send to MAC, or fail saying where
# it sends.
wait_next_hop() {
	slowwait 20 prints "$1" nsim_sa_field "$A_ID" out 0x100 next_hop &&
		return 0
	echo "# FAILED: out SA's next hop $(nsim_sa_field "$A_ID" out 0x100 next_hop), not $1"
	return 1
}

# icmp_in_echos NS: echo requests the stack of NS delivered.
icmp_in_echos() {
	snmp_counter "$1" /proc/net/snmp Icmp InEchos
}

# neigh_cold: neither side knows the other's addresses any more. $B's
# entries go first: its entry for $A, stale since setup's ping, makes it
# probe $A by unicast 5 s after its reply, and $A learns the peer from
# that probe without soliciting it (seen on the debug kernel, whose case
# reaches the SA add that late).
neigh_cold() {
	run ip -n "$B" neigh flush dev p0 || return 1
	run ip -n "$A" neigh flush dev p0 || return 1
	exactly "neighbours on \$A's p0 after the flush" \
		"$(count_matching lladdr ip -n "$A" neigh show dev p0)" 0
}

# A cold peer neighbour: no frame went to the peer before the SAs. As on
# mlx5, adding the out SA takes a snapshot of the next hop, finds it
# unresolved and solicits it; the answer's netevent, keyed by the SA's
# peer address, gives the SA its address. Every request then gets through.
case_cold_neigh() {
	local t0 t1 peer_mac
	setup || return
	neigh_cold || return 1
	peer_mac=$(port_mac "$B" p0)
	t0=$(date +%s%N)
	sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 || return 1
	wait_next_hop "$peer_mac" || return 1
	t1=$(date +%s%N)
	echo "# next hop resolved within $(((t1 - t0) / 1000000)) ms of the first ip xfrm command"
	traffic 192.168.1.1 192.168.1.2 10.1.0.1 10.2.0.1
}

# No route to the peer when the SAs are added: mlx5 falls back to the ARP
# table, for both families. In IPv4 it solicits the peer, whose answer (a
# netevent for the SA's own address) gives the out SA its next hop, with
# no other traffic. In IPv6 it looks up and solicits the first four bytes
# of the peer's address as an IPv4 address (2001:db8:... is 32.1.13.184),
# which nobody answers: the SA drops until the peer's IPv6 neighbour turns
# valid, here through a ping to the peer outside the tunnel. Then every
# request gets through. FAMILY: 4 or 6.
case_no_route() {
	local oa ob ia ib host net target cap peer_mac arps
	if [ "$1" = 4 ]; then
		oa=192.168.1.1 ob=192.168.1.2 ia=10.1.0.1 ib=10.2.0.1 host=32
		net=192.168.1.0/24 target=192.168.1.2
	else
		oa=2001:db8:1::1 ob=2001:db8:1::2 ia=2001:db8:a::1 ib=2001:db8:b::1 host=128
		net=2001:db8:1::/64 target=32.1.13.184
	fi
	setup || return
	peer_mac=$(port_mac "$B" p0)
	run ip -n "$A" route del "$net" dev p0 || return 1
	neigh_cold || return 1
	tmpfile cap || return 1
	capture_start "$B" p0 "$cap" -Q in arp || return 1
	sa_pair tunnel "$oa" "$ob" "$ia/$host" "$ib/$host" || return 1
	slowwait 5 capture_has "$cap" "arp dst host $target"
	capture_stop
	arps=$(capture_count "$cap" "arp dst host $target")
	echo "# ARP requests for $target on \$B's wire: $arps;" \
		"out SA: next hop $(nsim_sa_field "$A_ID" out 0x100 next_hop)," \
		"no_neigh $(nsim_sa_field "$A_ID" out 0x100 no_neigh)"
	at_least "ARP requests for $target" "$arps" 1 || return 1
	run ip -n "$A" route add "$net" dev p0 || return 1
	if [ "$1" = 6 ]; then
		exactly "out SA dropping (no_neigh)" \
			"$(nsim_sa_field "$A_ID" out 0x100 no_neigh)" 1 || return 1
		run ip netns exec "$A" ping -q -c 1 -W 2 "$ob" >/dev/null || return 1
	fi
	wait_next_hop "$peer_mac" || return 1
	exactly "out SA dropping (no_neigh)" "$(nsim_sa_field "$A_ID" out 0x100 no_neigh)" 0 ||
		return 1
	traffic "$oa" "$ob" "$ia" "$ib"
}

# The peer's MAC address changes, and the peer announces it (arp_notify):
# $A's neighbour entry takes the new address, and its netevent, keyed by
# the SA's peer address, moves the NIC's snapshot, as on mlx5. Traffic
# goes on, every request answered.
case_next_hop_peer() {
	local mac=02:00:00:00:01:02 sent
	setup || return
	sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 || return 1
	ping_exact "$A" 10.1.0.1 10.2.0.1 || return 1
	sent=$PING_SENT
	ip netns exec "$B" sysctl -qw net.ipv4.conf.p0.arp_notify=1
	run ip -n "$B" link set p0 address "$mac" || return 1
	wait_next_hop "$mac" || return 1
	ping_exact "$A" 10.1.0.1 10.2.0.1 || return 1
	nic_counts 192.168.1.1 192.168.1.2 $((sent + PING_SENT))
}

# $A reaches the SA peer $B through a router $R:
#   $A p0 (netdevsim, offload) 192.168.1.1 -- 192.168.1.254 $R p0 (netdevsim)
#   $R r1 (veth) 192.168.2.254 -- 192.168.2.2 $B b1 (veth), software IPsec
setup_router() {
	cleanup
	nsim_ready || return
	setup_ns A B R || return 1
	A_ID=$(nsim_add "$A" p0) || return 1
	R_ID=$(nsim_add "$R" p0) || return 1
	nsim_link "$A" p0 "$R" p0 || return 1
	ip -n "$R" link add r1 type veth peer name b1 netns "$B" || return 1
	ip -n "$A" -batch - <<-EOF || return 1
	addr add 192.168.1.1/24 dev p0
	addr add 10.1.0.1/32 dev p0
	link set p0 up
	route add 192.168.2.0/24 via 192.168.1.254
	route add 10.2.0.1/32 via 192.168.1.254
	EOF
	ip -n "$R" -batch - <<-EOF || return 1
	addr add 192.168.1.254/24 dev p0
	addr add 192.168.2.254/24 dev r1
	link set p0 up
	link set r1 up
	EOF
	ip -n "$B" -batch - <<-EOF || return 1
	addr add 192.168.2.2/24 dev b1
	addr add 10.2.0.1/32 dev b1
	link set b1 up
	route add 192.168.1.0/24 via 192.168.2.254
	route add 10.1.0.1/32 via 192.168.2.254
	EOF
	ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$R" sysctl -qw net.ipv4.conf.p0.arp_notify=1
	# IKE's traffic would have resolved the router before the SAs.
	run ip netns exec "$A" ping -q -c 1 -W 2 192.168.2.2 >/dev/null
}

# r_mac_change MAC: $R's p0 takes MAC and announces it; wait until $A's
# neighbour entry for $R has it.
r_mac_change() {
	run ip -n "$R" link set p0 address "$1" || return 1
	slowwait 20 sh -c \
		"ip -n $A neigh show dev p0 to 192.168.1.254 | grep -q 'lladdr $1'" ||
		{ echo "# FAILED: \$A did not learn the router's new MAC $1"; return 1; }
}

router_answers() {
	PING_DEADLINE=3 ping_routed "$A" 10.1.0.1 10.2.0.1 >/dev/null
}

# The router in front of the peer changes its MAC address. $A's stack
# learns it, but mlx5 follows netevents for the SA's own addresses only,
# not for the router's: the NIC goes on sending to the old address, which
# the router drops. Exactly what ping sent leaves the NIC, to the old MAC,
# and nothing reaches the peer. ipsec_packet_follow_next_hop, the
# emulation's kinder switch, follows the router: traffic goes through.
case_next_hop_router() {
	local mac0 mac1=02:00:00:00:02:01 mac2=02:00:00:00:02:02 cap tx0 in0 old new base
	setup_router || return
	sa_pair tunnel 192.168.1.1 192.168.2.2 10.1.0.1/32 10.2.0.1/32 || return 1
	mac0=$(port_mac "$R" p0)
	exactly "out SA's next hop" "$(nsim_sa_field "$A_ID" out 0x100 next_hop)" "$mac0" &&
		ping_exact "$A" 10.1.0.1 10.2.0.1 &&
		nic_counts 192.168.1.1 192.168.2.2 "$PING_SENT" || return 1

	r_mac_change "$mac1" || return 1
	exactly "out SA's next hop after the router's change" \
		"$(nsim_sa_field "$A_ID" out 0x100 next_hop)" "$mac0" || return 1
	tx0=$(nsim_sa_packets "$A_ID" out 0x100)
	in0=$(xfrm_packets "$B" 192.168.1.1 192.168.2.2 0x100)
	tmpfile cap || return 1
	capture_start "$R" p0 "$cap" -Q in || return 1
	xfail_unless "mlx5 follows no netevent for a router in front of the SA's peer:" \
		"traffic goes to the router's old MAC" -- \
		router_answers || { capture_stop; return 1; }
	capture_stop
	old=$(capture_count "$cap" "ether dst $mac0 and esp")
	new=$(capture_count "$cap" "ether dst $mac1 and esp")
	echo "# $PING_SENT requests: $old ESP frames to the router's old MAC, $new to its new one"
	delta "NIC out SA packets" "$tx0" "$(nsim_sa_packets "$A_ID" out 0x100)" "$PING_SENT" &&
		exactly "ESP frames to the router's old MAC" "$old" "$PING_SENT" &&
		exactly "ESP frames to the router's new MAC" "$new" 0 &&
		exactly "peer in SA packets" \
			"$(xfrm_packets "$B" 192.168.1.1 192.168.2.2 0x100)" "$in0" || return 1

	echo 1 >"/sys/kernel/debug/netdevsim/netdevsim$A_ID/ports/0/ipsec_packet_follow_next_hop"
	r_mac_change "$mac2" || return 1
	wait_next_hop "$mac2" || return 1
	base=$(sa_packets 192.168.1.1 192.168.2.2)
	ping_exact "$A" 10.1.0.1 10.2.0.1 &&
		nic_counts 192.168.1.1 192.168.2.2 "$PING_SENT" "$base"
}

# What $A's stack makes of traffic towards its offloaded in policy
# (10.2.0.1/32 -> 10.1.0.1/32, tunnel, SA 0x200). mlx5 steers only ESP
# to its IPsec tables, so cleartext reaches the stack, which must drop
# it: the policy asks for ESP and the skb has no secpath (since "xfrm:
# do not take a missing secpath for device-checked packet offload"; it
# was delivered before). A packet the device decrypted gets no selector check
# in __xfrm_policy_check2(), which trusts the device, and mlx5 does not
# match the SA's selector on RX.
# rx_delivered SRC N: $B pings 10.1.0.1 from SRC, in whatever its
# policies make of it; exactly N requests reach $A's ICMP and the others
# are counted in XfrmInTmplMismatch.
rx_delivered() {
	local echos0 mism0
	echos0=$(icmp_in_echos "$A")
	mism0=$(xfrm_mib "$A" XfrmInTmplMismatch)
	# -W without -w: exactly PING_COUNT requests; $A may not answer.
	ip netns exec "$B" ping -q -c "$PING_COUNT" -i 0.2 -W 1 -I "$1" 10.1.0.1 >/dev/null
	delta "echo requests delivered on \$A" "$echos0" "$(icmp_in_echos "$A")" "$2" &&
		delta "XfrmInTmplMismatch on \$A" "$mism0" \
			"$(xfrm_mib "$A" XfrmInTmplMismatch)" $((PING_COUNT - $2))
}

# Cleartext towards an offloaded in policy: dropped by the stack, counted.
case_rx_cleartext() {
	setup || return
	sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 || return 1
	run ip -n "$B" xfrm policy delete src 10.2.0.1/32 dst 10.1.0.1/32 dir out || return 1
	rx_delivered 10.2.0.1 0 &&
		exactly "NIC in SA packets" "$(nsim_sa_packets "$A_ID" in 0x200)" 0
}

# An inner source outside the in SA's selector (10.2.0.99, the SA's is
# 10.2.0.1/32), sent by $B through that SA: the NIC decrypts it, and the
# stack should drop it. It delivers it, as with mlx5: a known bug.
case_rx_inner_selector() {
	setup || return
	sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 || return 1
	ip -n "$B" -batch - <<-EOF || return 1
	addr add 10.2.0.99/32 dev p0
	xfrm state delete src 192.168.1.2 dst 192.168.1.1 proto esp spi 0x200
	xfrm state add src 192.168.1.2 dst 192.168.1.1 proto esp spi 0x200 reqid 2 \
		mode tunnel flag esn replay-window 128 aead $AEAD_ALG $KEY_IN 128 \
		sel src 10.2.0.0/24 dst 10.1.0.1/32
	xfrm policy add src 10.2.0.99/32 dst 10.1.0.1/32 dir out \
		tmpl src 192.168.1.2 dst 192.168.1.1 proto esp reqid 2 mode tunnel
	EOF
	exactly "NIC in SA packets before" "$(nsim_sa_packets "$A_ID" in 0x200)" 0 || return 1
	xfail_unless "packet offload RX: the decrypted packet's inner addresses are not checked" \
		"against the SA selector (__xfrm_policy_check2() trusts the device)" -- \
		rx_delivered 10.2.0.99 0 || return
	exactly "NIC in SA packets" "$(nsim_sa_packets "$A_ID" in 0x200)" "$PING_COUNT"
}

# Where esp_inject.py says a malformed frame to $A ends (its docstring
# says what each place is), and the counter that counts it there.
RX_DROP_PLACES=(nic ip_hdr ip_trunc xfrm_hdr sw_esp frag)
rx_drop_count() {
	case $1 in
	nic) sum_counts "$(nsim_port_counter "$A_ID" rx_drop)" \
		"$(nsim_port_counter "$A_ID" rx_bad_icv)" \
		"$(nsim_port_counter "$A_ID" rx_replay)" ;;
	ip_hdr) snmp_counter "$A" /proc/net/snmp Ip InHdrErrors ;;
	ip_trunc) snmp_counter "$A" /proc/net/netstat IpExt InTruncatedPkts ;;
	xfrm_hdr) xfrm_mib "$A" XfrmInHdrError ;;
	sw_esp) xfrm_mib "$A" XfrmInStateInvalid ;;
	frag) snmp_counter "$A" /proc/net/snmp Ip ReasmTimeout ;;
	esac
}

# rx_drop_counts: rx_drop_count of each of RX_DROP_PLACES, in its order
# ("-" for one that cannot be read).
rx_drop_counts() {
	local place v
	for place in "${RX_DROP_PLACES[@]}"; do
		v=$(rx_drop_count "$place")
		echo "${v:--}"
	done | xargs
}

# rx_drops_are BASE WANT: rx_drop_counts rose from BASE by WANT (lists).
rx_drops_are() {
	local base want got i
	read -ra base <<<"$1"
	read -ra want <<<"$2"
	read -ra got <<<"$(rx_drop_counts)"
	for i in "${!RX_DROP_PLACES[@]}"; do
		delta "${RX_DROP_PLACES[i]} drops" "${base[i]}" "${got[i]}" "${want[i]}" \
			>/dev/null || return 1
	done
}

# Receive robustness: MALFORMED_COUNT malformed frames at the offloaded
# in SA, made from a valid one of $B's by esp_inject.py: cut at every
# length, ESP shorter than its header or than IV, trailer and ICV, bad
# IHL, version and total length, IP options, lone fragments, the valid
# packet replayed as two fragments, random bytes after a valid SPI.
# Nothing is delivered; each frame is dropped and counted exactly where
# esp_inject.py says (the NIC, or the stack's IPv4 or xfrm input, which
# see what the NIC does not steer to IPsec); the kernel logs no splat;
# the SA then carries traffic, counted exactly. Without "xfrm: do not
# decrypt ESP of packet offload states in software", the stack decrypts
# what the NIC left to it against a replay window that only the NIC
# keeps, and a replay is delivered.
case_rx_malformed() {
	local cap out seed=$RANDOM base want kv rx0 in0 echos0 msgs0 got
	local -A n
	setup || return
	sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 || return 1
	# Lone fragments are counted when reassembly gives up on them; GRO
	# (ESP GRO) decides where a frame the NIC leaves to the stack goes.
	ip netns exec "$A" sysctl -qw net.ipv4.ipfrag_time=1
	run ip netns exec "$A" ethtool -K p0 gro on || return 1
	tmpfile cap || return 1
	capture_peer_esp "$cap" || return 1
	base=$(rx_drop_counts)
	rx0=$(nsim_port_counter "$A_ID" rx)
	in0=$(nsim_sa_packets "$A_ID" in 0x200)
	echos0=$(icmp_in_echos "$A")
	msgs0=$(snmp_counter "$A" /proc/net/snmp Icmp InMsgs)
	klog_mark
	out=$(ip netns exec "$B" python3 "$lib_dir/esp_inject.py" "$cap" p0 malformed \
		"${MALFORMED_COUNT:-3000}" "$seed")
	local ret=$?
	[ "$ret" -eq 0 ] || { echo "# FAILED: esp_inject.py malformed (seed $seed)"; return 1; }
	echo "# seed $seed, sent: $out"
	for kv in $out; do
		n[${kv%%=*}]=${kv#*=}
	done
	# Every place esp_inject.py names is one this case counts, and back.
	exactly "places esp_inject.py names" "$(printf '%s\n' "${!n[@]}" | sort | xargs)" \
		"$(printf '%s\n' "${RX_DROP_PLACES[@]}" | sort | xargs)" || return 1
	for kv in "${RX_DROP_PLACES[@]}"; do
		want+="${n[$kv]} "
	done
	slowwait 10 rx_drops_are "$base" "$want"
	got=$(rx_drop_counts)
	echo "# dropped (${RX_DROP_PLACES[*]}): from $base to $got, want $want more"
	klog_check &&
		delta "NIC frames decrypted" "$rx0" "$(nsim_port_counter "$A_ID" rx)" 0 &&
		delta "NIC in SA packets" "$in0" "$(nsim_sa_packets "$A_ID" in 0x200)" 0 &&
		delta "ICMP messages delivered on \$A" "$msgs0" \
			"$(snmp_counter "$A" /proc/net/snmp Icmp InMsgs)" 0 &&
		delta "echo requests delivered on \$A" "$echos0" "$(icmp_in_echos "$A")" 0 ||
		return 1
	rx_drops_are "$base" "$want" ||
		{ echo "# FAILED: drops not where esp_inject.py says"; return 1; }
	traffic 192.168.1.1 192.168.1.2 10.1.0.1 10.2.0.1
}

# The device flush against RX (run it under KASAN: make check-debug): $B
# floods $A's offloaded in SA, whose tiny packet limits make the NIC's RX
# drive expiry, while $A's port goes down and up (NETDEV_DOWN flushes
# what is offloaded to it) and the SAs are added again, STRESS_CYCLES
# times. No splat; the NIC decrypted, at most its hard limit, each time.
case_rx_flush_stress() {
	local i cycles=${STRESS_CYCLES:-20} rx0 rx1
	setup || return
	klog_mark
	rx0=$(nsim_port_counter "$A_ID" rx)
	ip netns exec "$B" ping -q -i 0.01 -w "$BG_TIMEOUT" -I 10.2.0.1 10.1.0.1 \
		>/dev/null 2>&1 &
	case_defer bg_stop "$!"
	for i in $(seq "$cycles"); do
		SA_A_IN="limit packet-soft 2 limit packet-hard 4" \
			sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 ||
			{ echo "# FAILED: SAs of cycle $i"; return 1; }
		sleep 0.2
		if ! ip -n "$A" link set p0 down || ! ip -n "$A" link set p0 up ||
			! ip -n "$A" -batch - <<-EOF || ! ip -n "$B" -batch - <<-EOF; then
			xfrm state flush
			xfrm policy flush
			route replace 10.2.0.1/32 via 192.168.1.2
			EOF
			xfrm state flush
			xfrm policy flush
			EOF
			echo "# FAILED: flush of cycle $i"
			return 1
		fi
	done
	rx1=$(nsim_port_counter "$A_ID" rx)
	echo "# $cycles cycles: NIC rx $rx0 -> $rx1"
	# At most the hard limit per cycle; at least one (the flood never stops).
	klog_check &&
		delta "frames the NIC decrypted" "$rx0" "$rx1" "$((cycles * 4))" at_most &&
		delta "frames the NIC decrypted" "$rx0" "$rx1" "$cycles" at_least
}

# The checks of traffic fail, each that must: with ipsec_packet_fail_tx
# the NIC drops every packet of the out SA before counting it, so no SA
# on either side counts one; with ipsec_packet_fail_encrypt it sends them
# with a zero ICV, counted by the NIC's out SA and refused by $B's in SA
# (XfrmInStateProtoError, one per request). With both off, traffic
# passes.
case_checks_can_fail() {
	local proto0
	setup || return
	sa_pair tunnel 192.168.1.1 192.168.1.2 10.1.0.1/32 10.2.0.1/32 || return 1
	nsim_fault "$A_ID" fail_tx 1 || return 1
	PING_DEADLINE=3 checks_fail_as "the NIC dropping (fail_tx)" \
		"ping nic_out nic_in peer_in peer_out" \
		traffic 192.168.1.1 192.168.1.2 10.1.0.1 10.2.0.1 || return 1
	nsim_fault "$A_ID" fail_tx 0 || return 1
	nsim_fault "$A_ID" fail_encrypt 1 || return 1
	proto0=$(xfrm_mib "$B" XfrmInStateProtoError)
	PING_DEADLINE=3 checks_fail_as "the NIC not encrypting (fail_encrypt)" \
		"ping nic_in peer_in peer_out" \
		traffic 192.168.1.1 192.168.1.2 10.1.0.1 10.2.0.1 || return 1
	# One request more: traffic's first, unanswered too.
	delta "XfrmInStateProtoError on \$B" "$proto0" "$(xfrm_mib "$B" XfrmInStateProtoError)" \
		$((PING_SENT + 1)) || return 1
	nsim_fault "$A_ID" fail_encrypt 0 || return 1
	traffic 192.168.1.1 192.168.1.2 10.1.0.1 10.2.0.1
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
		"$(count_matching 'offload' ip -n "$A" xfrm state)" 2 || return 1
	exactly "offloaded policies on \$A before" \
		"$(count_matching 'offload' ip -n "$A" xfrm policy)" 2 || return 1
	nsim_del "$A_ID"
	A_ID=
	exactly "SAs left on \$A" "$(count_matching '^src' ip -n "$A" xfrm state)" 0 || return 1
	exactly "policies left on \$A" "$(count_matching '^src' ip -n "$A" xfrm policy)" 0
}

require_cmds ip ping tcpdump python3
debugfs_mount
# NIPA scans kmemleak after each script itself; this names the script.
! kmemleak_available ||
	XFRM_TESTS+=(kmemleak kmemleak_check "no kmemleak report after the cases above")

run_tests
