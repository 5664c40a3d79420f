#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# direct_tx_hosts.sh, the two-host test, against a stand-in: this host's
# offload port is a netdevsim port in the initial namespace, and the
# "remote host" is namespace xdt-remote with the linked netdevsim port
# (REMOTE_TYPE=netns). Checks the two-host test itself on any machine.

lib_dir=$(dirname "$(readlink -f "$0")")
source "$lib_dir/routed_lib.sh"

LOCAL_ID=
REMOTE_ID=

stand_in_cleanup() {
	nsim_del "$LOCAL_ID" "$REMOTE_ID"
	ip netns del xdt-remote 2>/dev/null
}
trap stand_in_cleanup EXIT

stand_in_create() {
	local fd_l fd_r idx_l idx_r
	ip netns add xdt-remote || return 1
	LOCAL_ID=$(nsim_add - xdt-p0) || return 1
	REMOTE_ID=$(nsim_add xdt-remote xdt-p0) || return 1
	exec {fd_l}</proc/self/ns/net {fd_r}</run/netns/xdt-remote
	idx_l=$(cat /sys/class/net/xdt-p0/ifindex)
	idx_r=$(ip netns exec xdt-remote cat /sys/class/net/xdt-p0/ifindex)
	echo "$fd_l:$idx_l $fd_r:$idx_r" >"$NSIM_SYS/link_device" || return 1
	exec {fd_l}<&- {fd_r}<&-
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
if ! stand_in_create; then
	xfrm_header
	ktap_exit_fail_msg "cannot build the netdevsim stand-in for two hosts"
fi
NETIF=xdt-p0 LOCAL_V4=192.168.101.10 REMOTE_V4=192.168.101.11 \
	REMOTE_NETIF=xdt-p0 REMOTE_TYPE=netns REMOTE_ARGS=xdt-remote \
	"$lib_dir/direct_tx_hosts.sh"
