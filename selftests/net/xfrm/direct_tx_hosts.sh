#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The report's routed-network scenario on two real hosts: this one is
# IPSEC-GW, with a packet offload NIC (ConnectX-7 or any other); the remote
# one is Simulated-NE, with software IPsec. Skipped unless configured.
#
# Configure in the environment or in net.config next to this script, in
# the style of tools/testing/selftests/drivers/net:
#
#   NETIF=enp1s0f0np0        # this host's offload port (the report's p0)
#   LOCAL_V4=192.168.101.10  # its address on the ciphered segment
#   REMOTE_V4=192.168.101.11 # the remote host's address there
#   REMOTE_NETIF=enp1s0f0np0 # the remote host's port on that segment
#   REMOTE_TYPE=ssh          # ssh, or netns for a namespace on this host
#   REMOTE_ARGS=root@ne-host # ssh destination (key login), or netns name
#
# NETIF and REMOTE_NETIF must already be up with those addresses on one
# L2 segment. The test adds, and removes again, only its own objects:
# namespace xdt-ns0, veth xdt-veth0 and dummy xdt-mgmt here, dummies
# xdt-rnet and xdt-mgmt there, SPIs 0x7d1/0x7d2 with reqids 2001/2002,
# and their policies for 198.18.16.0/24 <-> 198.18.48.0/24, the report's
# routed networks moved to addresses no lab uses (RFC 2544's range).
#
#   198.18.16.1 (xdt-ns0) -- GW: NETIF == ESP == REMOTE_NETIF :NE (198.18.48.1)

lib_dir=$(dirname "$(readlink -f "$0")")
source "$lib_dir/routed_lib.sh"
source "$lib_dir/direct_tx_lib.sh"

# The environment wins over net.config.
# shellcheck source=/dev/null # the lab's own file, if any
[ -n "${NETIF:-}" ] || [ ! -f "$lib_dir/net.config" ] || source "$lib_dir/net.config"

PING_COUNT=${PING_COUNT:-5}
SPI_OUT=0x7d1
SPI_IN=0x7d2
# Networks of the benchmarking range (RFC 2544), not the report's
# 16.0.0.0/8 and 48.0.0.0/8: on the report's gateways those are the lab's
# own, strongSwan's policies among them, which this test leaves alone.
H_LNET=198.18.16.0/24 H_SRC=198.18.16.1
H_RNET=198.18.48.0/24 H_DST=198.18.48.1
HOSTS_VARS="NETIF LOCAL_V4 REMOTE_V4 REMOTE_NETIF REMOTE_TYPE REMOTE_ARGS"

xfrm_header

missing=
for v in $HOSTS_VARS; do
	[ -n "${!v:-}" ] || missing="$missing $v"
done
if [ -n "$missing" ]; then
	ktap_skip_all "two-host mode not configured (unset:$missing; see the" \
		"header of $0 or Documentation/networking/xfrm/xfrm_direct_tx.rst)"
	exit "$KSFT_SKIP"
fi

# remote SHELL_CODE: run on the remote host (or in its namespace).
remote() {
	case $REMOTE_TYPE in
	ssh) ssh -o BatchMode=yes -o ConnectTimeout=10 "$REMOTE_ARGS" "$1" ;;
	netns) ip netns exec "$REMOTE_ARGS" sh -c "$1" ;;
	*) echo "# REMOTE_TYPE must be ssh or netns, not '$REMOTE_TYPE'" >&2; return 2 ;;
	esac
}

if ! remote true; then
	ktap_exit_fail_msg "cannot run commands on the remote host ($REMOTE_TYPE $REMOTE_ARGS)"
fi
if ! ip link show dev "$NETIF" >/dev/null 2>&1; then
	ktap_exit_fail_msg "no local interface $NETIF"
fi

# sa_args SRC DST SPI REQID WINDOW KEY SEL_SRC SEL_DST: one side's state,
# as the report's, quoted for a shell (eval here, sh -c there).
sa_args() {
	echo "src $1 dst $2 proto esp spi $3 reqid $4 mode tunnel flag esn" \
		"replay-window $5 aead '$AEAD_ALG' $6 $ICV_BITS" \
		"sel src $7 dst $8"
}

hosts_cleanup() {
	ip xfrm policy delete src "$H_LNET" dst "$H_RNET" dir out 2>/dev/null
	ip xfrm policy delete src "$H_RNET" dst "$H_LNET" dir in 2>/dev/null
	ip xfrm policy delete src "$H_RNET" dst "$H_LNET" dir fwd 2>/dev/null
	ip xfrm state delete src "$LOCAL_V4" dst "$REMOTE_V4" proto esp spi "$SPI_OUT" 2>/dev/null
	ip xfrm state delete src "$REMOTE_V4" dst "$LOCAL_V4" proto esp spi "$SPI_IN" 2>/dev/null
	ip netns del xdt-ns0 2>/dev/null
	ip link del xdt-mgmt 2>/dev/null
	ip neigh del "$H_DST" dev "$NETIF" 2>/dev/null
	remote "ip xfrm policy delete src $H_RNET dst $H_LNET dir out
		ip xfrm policy delete src $H_LNET dst $H_RNET dir in
		ip xfrm policy delete src $H_LNET dst $H_RNET dir fwd
		ip xfrm state delete src $REMOTE_V4 dst $LOCAL_V4 proto esp spi $SPI_IN
		ip xfrm state delete src $LOCAL_V4 dst $REMOTE_V4 proto esp spi $SPI_OUT
		ip link del xdt-rnet; ip link del xdt-mgmt" 2>/dev/null
	[ "${XDT_PRELOADED:-0}" = 1 ] || module_unload "$XDT_MODULE"
}
trap 'hosts_cleanup; sysctls_restore' EXIT

# A module this host was already running stays loaded, as it was: the
# cases that need it unloaded or reloaded skip, and nothing unloads it.
XDT_PRELOADED=0
! grep -q "^$(basename "$XDT_MODULE" .ko) " /proc/modules || XDT_PRELOADED=1
module_ours() {
	[ "$XDT_PRELOADED" = 0 ] && return 0
	echo "# SKIP: $(basename "$XDT_MODULE" .ko) was loaded before the test;" \
		"the test leaves it alone"
	return "$KSFT_SKIP"
}

# This host: xdt-ns0 (H_SRC) behind a veth, and IPSEC-GW's SAs and
# policies offloaded to NETIF; H_RNET is routed to a dummy, as
# routed_lib.sh explains, so that forwarding has a route before xfrm
# replaces it. The remote: software SAs, and H_DST on a dummy of its
# own (only this host's forwarding is under test), not answered for on
# REMOTE_NETIF (arp_ignore=1): seen from this host, H_RNET is a
# routed network, reachable only through the tunnel, as in the report.
hosts_setup() {
	local off="offload packet dev $NETIF"
	hosts_cleanup
	ip netns add xdt-ns0 || return 1
	ip link add xdt-veth0 type veth peer name xdt-veth1 netns xdt-ns0 || return 1
	ip address add 198.18.0.1/30 dev xdt-veth0
	ip link set xdt-veth0 up
	ip -n xdt-ns0 address add 198.18.0.2/30 dev xdt-veth1
	ip -n xdt-ns0 address add "$H_SRC/24" dev xdt-veth1
	ip -n xdt-ns0 link set xdt-veth1 up
	ip -n xdt-ns0 route add "$H_RNET" via 198.18.0.1
	ip route add "$H_LNET" via 198.18.0.2
	ip link add xdt-mgmt type dummy
	ip link set xdt-mgmt up
	ip route add "$H_RNET" dev xdt-mgmt
	sysctl -qw net.ipv4.ip_forward=1
	# Learn the peer's MAC, as IKE would have.
	run ping -q -c 1 -W 2 "$REMOTE_V4" >/dev/null || return 1

	run eval "ip xfrm state add $(sa_args "$LOCAL_V4" "$REMOTE_V4" "$SPI_OUT" 2001 0 \
		"$KEY_OUT" "$H_LNET" "$H_RNET") $off dir out" || return 1
	run eval "ip xfrm state add $(sa_args "$REMOTE_V4" "$LOCAL_V4" "$SPI_IN" 2002 \
		"$REPLAY" "$KEY_IN" "$H_RNET" "$H_LNET") $off dir in" || return 1
	# shellcheck disable=SC2086 # $off: words for ip
	run ip xfrm policy add src "$H_LNET" dst "$H_RNET" dir out \
		tmpl src "$LOCAL_V4" dst "$REMOTE_V4" proto esp reqid 2001 mode tunnel $off ||
		return 1
	# shellcheck disable=SC2086 # $off: words for ip
	run ip xfrm policy add src "$H_RNET" dst "$H_LNET" dir in \
		tmpl src "$REMOTE_V4" dst "$LOCAL_V4" proto esp reqid 2002 mode tunnel $off ||
		return 1
	run ip xfrm policy add src "$H_RNET" dst "$H_LNET" dir fwd \
		tmpl src "$REMOTE_V4" dst "$LOCAL_V4" proto esp reqid 2002 mode tunnel ||
		return 1

	remote "set -e
		ip link add xdt-rnet type dummy
		ip address add $H_DST/24 dev xdt-rnet
		ip link set xdt-rnet up
		ip link add xdt-mgmt type dummy
		ip link set xdt-mgmt up
		ip route add $H_LNET dev xdt-mgmt
		sysctl -qw net.ipv4.conf.all.rp_filter=0
		sysctl -qw net/ipv4/conf/$REMOTE_NETIF/rp_filter=0
		sysctl -qw net/ipv4/conf/$REMOTE_NETIF/arp_ignore=1
		ip xfrm state add $(sa_args "$REMOTE_V4" "$LOCAL_V4" "$SPI_IN" 2002 "$REPLAY" \
			"$KEY_IN" "$H_RNET" "$H_LNET")
		ip xfrm state add $(sa_args "$LOCAL_V4" "$REMOTE_V4" "$SPI_OUT" 2001 "$REPLAY" \
			"$KEY_OUT" "$H_LNET" "$H_RNET")
		ip xfrm policy add src $H_RNET dst $H_LNET dir out \
			tmpl src $REMOTE_V4 dst $LOCAL_V4 proto esp reqid 2002 mode tunnel
		ip xfrm policy add src $H_LNET dst $H_RNET dir in \
			tmpl src $LOCAL_V4 dst $REMOTE_V4 proto esp reqid 2001 mode tunnel
		ip xfrm policy add src $H_LNET dst $H_RNET dir fwd \
			tmpl src $LOCAL_V4 dst $REMOTE_V4 proto esp reqid 2001 mode tunnel" ||
		{ echo "# FAILED: remote setup"; return 1; }
	sysctl -qw net.ipv4.conf.all.rp_filter=0
	sysctl -qw "net/ipv4/conf/$NETIF/rp_filter=0"
}

# The sysctls the test changes, saved once and put back at exit.
LOCAL_SYSCTLS=(net.ipv4.ip_forward net.ipv4.conf.all.rp_filter "net/ipv4/conf/$NETIF/rp_filter")
REMOTE_SYSCTLS="net.ipv4.conf.all.rp_filter net/ipv4/conf/$REMOTE_NETIF/rp_filter"
REMOTE_SYSCTLS+=" net/ipv4/conf/$REMOTE_NETIF/arp_ignore"
LOCAL_SAVED=()
sysctls_save() {
	mapfile -t LOCAL_SAVED < <(sysctl "${LOCAL_SYSCTLS[@]}" | tr -d ' ')
	REMOTE_SAVED=$(remote "sysctl $REMOTE_SYSCTLS" | tr -d ' ' | tr '\n' ' ')
}

sysctls_restore() {
	[ "${#LOCAL_SAVED[@]}" -eq 0 ] || sysctl -qw "${LOCAL_SAVED[@]}"
	[ -z "${REMOTE_SAVED:-}" ] || remote "sysctl -qw $REMOTE_SAVED"
}

# A driver that reports no SA counts is not held to them, but netdevsim,
# the stand-in's, does report them.
NIC_COUNT_OPTIONAL=1
[ "$(basename "$(readlink "/sys/class/net/$NETIF/device/driver")")" != netdevsim ] ||
	NIC_COUNT_OPTIONAL=0

# sa_packets_of: the packets of the SA that `ip -s xfrm state get`
# printed on stdin, from its "lifetime current" line.
sa_packets_of() {
	sed -n '/lifetime current:/{n;s/.*[^0-9]\([0-9][0-9]*\)(packets).*/\1/p;q}'
}

# Packets the remote host's software SA from this host has decrypted.
remote_decrypted() {
	remote "ip -s xfrm state get src $LOCAL_V4 dst $REMOTE_V4 proto esp spi $SPI_OUT" |
		sa_packets_of
}

# Packets this host's offloaded out SA has sent, as the driver reports.
local_sent() {
	ip -s xfrm state get src "$LOCAL_V4" dst "$REMOTE_V4" proto esp spi "$SPI_OUT" |
		sa_packets_of
}

local_neigh() {
	ip neigh show dev "$NETIF" to "$H_DST"
}

# The report's bug on demand: the module's stock_path=1 sends every
# packet through the stock path, as kernels before 6.14 did.
case_bug() {
	local neigh ret=0
	module_ours || return
	module_unload "$XDT_MODULE"
	hosts_setup || return 1
	module_load "$XDT_MODULE" stock_path=1 || return
	if ip netns exec xdt-ns0 ping -q -c 3 -i 0.3 -W 1 -I "$H_SRC" "$H_DST" >/dev/null; then
		echo "# FAILED: $H_DST answered through the stock path: the bug did not reproduce"
		ret=1
	fi
	slowwait 10 sh -c "ip neigh show dev $NETIF to $H_DST | grep -q FAILED"
	neigh=$(local_neigh)
	module_unload "$XDT_MODULE"
	[ "$ret" -eq 0 ] || return 1
	echo "# neighbour table on $NETIF: ${neigh:-<none>}"
	case "$neigh" in
	*FAILED*) return 0 ;;
	*) echo "# FAILED: expected $H_DST FAILED on $NETIF"; return 1 ;;
	esac
}

# No module: the kernel's own direct output reaches the routed network.
case_no_module() {
	module_ours || return
	module_unload "$XDT_MODULE"
	hosts_setup || return 1
	check_offload_path local_neigh local_sent remote_decrypted \
		ping_routed xdt-ns0 "$H_SRC" "$H_DST"
}

# The fix: 0% loss, no neighbour for H_DST, and every count rose.
# Drivers report the offloaded SA's packets when asked (mlx5 does, so does
# netdevsim); one that does not is not held to them.
case_fixed() {
	hosts_setup || return 1
	if [ "$XDT_PRELOADED" = 1 ]; then
		hook_counts "$XDT_MODULE"
	else
		hook_load "$XDT_MODULE" || return
	fi
	check_offload_path local_neigh local_sent remote_decrypted \
		ping_routed xdt-ns0 "$H_SRC" "$H_DST"
	local ret=$?
	PATH_COUNTERS=()
	[ "${XDT_PRELOADED:-0}" = 1 ] || module_unload "$XDT_MODULE"
	return "$ret"
}

# host_state: what the two hosts hold, for the last case to compare with
# what they held before the test: xfrm states (addresses, SPI, reqid, not
# their counters) and policies, addresses and routes, here and there.
# IPv6 link-local ones are left out: the kernel makes them when it likes
# (a device of the test's would show as a device of its own).
host_state() {
	local show='ip xfrm state list | grep -E "^src|proto esp"
		ip xfrm policy list | grep -E "^src|dir |tmpl src"
		ip -br address | sed "s/ fe80::[^ ]*//"
		ip route show table all | grep -v "^[a-z]* *fe80::"'
	eval "$show"
	remote "$show"
}

# Every state, policy, address and route the hosts had before the test
# is there afterwards, unchanged, and nothing of the test's is left. On
# the report's gateways these are the lab's own, strongSwan's tunnel
# among them; direct_tx_hosts_nsim.sh puts the report's lab beside the
# stand-in for this case to find.
case_untouched() {
	local now
	now=$(host_state)
	[ "$now" = "$HOST_STATE0" ] && return 0
	echo "# FAILED: the hosts' xfrm states, policies, addresses or routes changed:"
	diff <(echo "$HOST_STATE0") <(echo "$now") | sed 's/^/#   /'
	return 1
}

require_cmds ip ping modprobe insmod rmmod
debugfs_mount
sysctls_save
HOST_STATE0=$(host_state)

CASE_CLEANUP=hosts_cleanup
XFRM_TESTS=(
	bug case_bug
		"two hosts, stock path (stock_path=1): the inner destination FAILED (the bug)"
	no_module case_no_module
		"two hosts, no module: the kernel's direct output reaches the routed network"
	fixed case_fixed
		"two hosts, Rust hook: direct through the offload port"
	untouched case_untouched
		"two hosts: what the hosts had before the test is there, unchanged"
)
echo "# $NETIF ($LOCAL_V4) -> $REMOTE_NETIF ($REMOTE_V4) over $REMOTE_TYPE $REMOTE_ARGS"
run_tests
