#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# direct_tx_hosts.sh, the two-host test, against a stand-in: this host's
# offload port is a netdevsim port in the initial namespace, and the
# "remote host" is namespace xdt-remote with the linked netdevsim port
# (REMOTE_TYPE=netns), with the report's lab beside it (lab_add). Checks
# the two-host test itself on any machine.

lib_dir=$(dirname "$(readlink -f "$0")")
source "$lib_dir/routed_lib.sh"

LOCAL_ID=
REMOTE_ID=

stand_in_cleanup() {
	nsim_del "$LOCAL_ID" "$REMOTE_ID"
	LOCAL_ID='' REMOTE_ID=''
	ip netns del xdt-remote 2>/dev/null
	lab_del
}
trap stand_in_cleanup EXIT

# The report's lab on the same two hosts, as strongSwan and the report's
# commands leave it (software SAs and the CHILD_SA's policies for
# 16.0.0.0/8 <-> 48.0.0.0/8, IPSEC-GW's p1 address and routes), for the
# two-host test to leave alone (its case "untouched").
lab_add() {
	ip -batch - <<-EOF || return 1
	link add xdt-lab-p1 type dummy
	address add 10.0.0.254/24 dev xdt-lab-p1
	link set xdt-lab-p1 up
	route add 16.0.0.0/8 via 10.0.0.1
	EOF
	xfrm_tunnel - 192.168.101.10 192.168.101.11 16.0.0.0/8 48.0.0.0/8 \
		0x1000 "$KEY_OUT" 0x2000 "$KEY_IN" &&
		xfrm_tunnel xdt-remote 192.168.101.11 192.168.101.10 48.0.0.0/8 16.0.0.0/8 \
			0x2000 "$KEY_IN" 0x1000 "$KEY_OUT"
}

lab_del() {
	ip link del xdt-lab-p1 2>/dev/null
	ip xfrm policy delete src 16.0.0.0/8 dst 48.0.0.0/8 dir out 2>/dev/null
	ip xfrm policy delete src 48.0.0.0/8 dst 16.0.0.0/8 dir in 2>/dev/null
	ip xfrm policy delete src 48.0.0.0/8 dst 16.0.0.0/8 dir fwd 2>/dev/null
	ip xfrm state delete src 192.168.101.10 dst 192.168.101.11 proto esp spi 0x1000 2>/dev/null
	ip xfrm state delete src 192.168.101.11 dst 192.168.101.10 proto esp spi 0x2000 2>/dev/null
}

stand_in_create() {
	local fd_l fd_r idx_l idx_r
	# What a run that was killed may have left.
	ip netns del xdt-remote 2>/dev/null
	lab_del
	ip netns add xdt-remote || return 1
	LOCAL_ID=$(nsim_add - xdt-p0) || return 1
	REMOTE_ID=$(nsim_add xdt-remote xdt-p0) || return 1
	exec {fd_l}</proc/self/ns/net {fd_r}</run/netns/xdt-remote
	idx_l=$(cat /sys/class/net/xdt-p0/ifindex)
	idx_r=$(ip netns exec xdt-remote cat /sys/class/net/xdt-p0/ifindex)
	echo "$fd_l:$idx_l $fd_r:$idx_r" >"$NSIM_SYS/link_device" || return 1
	exec {fd_l}<&- {fd_r}<&-
	# IPv4 only: no IPv6 autoconfiguration still going on when the test
	# takes its picture of the hosts.
	sysctl -qw net/ipv6/conf/xdt-p0/disable_ipv6=1 &&
		ip netns exec xdt-remote sysctl -qw net/ipv6/conf/xdt-p0/disable_ipv6=1 ||
		return 1
	ip address add 192.168.101.10/24 dev xdt-p0
	ip link set xdt-p0 up
	ip -n xdt-remote address add 192.168.101.11/24 dev xdt-p0
	ip -n xdt-remote link set xdt-p0 up
	ip -n xdt-remote link set lo up
}

debugfs_mount
nsim_why=$(nsim_ready)
case $? in
0) ;;
"$KSFT_SKIP") xfrm_header; ktap_skip_all "${nsim_why#\# SKIP: }"; exit "$KSFT_SKIP" ;;
*) xfrm_header; ktap_exit_fail_msg "${nsim_why#\# FAILED: }" ;;
esac
if ! stand_in_create || ! lab_add; then
	xfrm_header
	ktap_exit_fail_msg "cannot build the netdevsim stand-in for two hosts"
fi
NETIF=xdt-p0 LOCAL_V4=192.168.101.10 REMOTE_V4=192.168.101.11 \
	REMOTE_NETIF=xdt-p0 REMOTE_TYPE=netns REMOTE_ARGS=xdt-remote \
	"$lib_dir/direct_tx_hosts.sh"
