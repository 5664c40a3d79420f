#!/bin/bash
# Runs inside the VM (bench/run.sh). One boot, variants interleaved:
# tunnel mode with the Rust hook and with the C reference hook, and
# transport mode with the stock path and with direct output. pktgen in
# ns0 floods through IPSEC-GW; delivered packets are counted by the
# software SA on Simulated-NE, CPU time from /proc/stat.

SELFTEST_DIR=$1 RUST_KO=$2 CREF_KO=$3 OUT=$4
ROUNDS=${BENCH_ROUNDS:-5}
SECONDS_PER_RUN=${BENCH_SECONDS:-3}
SIZES=${BENCH_SIZES:-64 512 1400}
export XDT_MODULE=$RUST_KO XDT_CREF_MODULE=$CREF_KO
source "$SELFTEST_DIR/routed_lib.sh"
trap topo_cleanup EXIT
debugfs_mount
modprobe pktgen || { echo "pktgen not available"; exit 1; }

# Transport mode: 16.0.0.1 -> NE's own address, an SA from 16.0.0.1 to NE.
TR_SPI_OUT=0x3000 TR_SPI_IN=0x4000

setup() {
	topo_cleanup
	topo_create || exit 1
	prime_peer_neigh || exit 1
	xfrm_setup "offload packet dev p0" || exit 1
	ip -n "$GW" xfrm state add src 16.0.0.1 dst "$NE_ADDR" proto esp spi $TR_SPI_OUT \
		reqid 3 mode transport flag esn replay-window 0 \
		aead "$AEAD_ALG" "$KEY_OUT" 128 offload packet dev p0 dir out || exit 1
	ip -n "$GW" xfrm policy add src 16.0.0.1/32 dst "$NE_ADDR/32" proto udp dir out \
		tmpl src 16.0.0.1 dst "$NE_ADDR" proto esp reqid 3 mode transport \
		offload packet dev p0 || exit 1
	ip -n "$NE" xfrm state add src 16.0.0.1 dst "$NE_ADDR" proto esp spi $TR_SPI_OUT \
		reqid 3 mode transport flag esn replay-window 128 aead "$AEAD_ALG" "$KEY_OUT" 128 ||
		exit 1
	ip -n "$NE" xfrm policy add src 16.0.0.1/32 dst "$NE_ADDR/32" proto udp dir in \
		tmpl src 16.0.0.1 dst "$NE_ADDR" proto esp reqid 3 mode transport || exit 1
	ip -n "$NE" route add 16.0.0.0/8 via "$GW_ADDR"
	GW_P1_MAC=$(ip -n "$GW" -br link show p1 | awk '{print $3}')
}

pg() { ip netns exec "$NS0" sh -c "echo '$2' > /proc/net/pktgen/$1"; }

# flood DST SIZE: pktgen from ns0 for SECONDS_PER_RUN seconds.
flood() {
	pg kpktgend_0 rem_device_all
	pg kpktgend_0 "add_device veth3"
	pg veth3 "count 0"
	pg veth3 "pkt_size $2"
	pg veth3 "dst $1"
	pg veth3 "src_min 16.0.0.1"
	pg veth3 "src_max 16.0.0.1"
	pg veth3 "dst_mac $GW_P1_MAC"
	pg veth3 "udp_dst_min 9"
	pg veth3 "udp_dst_max 9"
	pg veth3 "xmit_mode queue_xmit"
	pg veth3 "delay 0"
	ip netns exec "$NS0" sh -c "echo start > /proc/net/pktgen/pgctrl" &
	sleep "$SECONDS_PER_RUN"
	ip netns exec "$NS0" sh -c "echo stop > /proc/net/pktgen/pgctrl"
	wait
}

cpu_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }

# measure VARIANT MODE SIZE: one run; appends a JSON line.
measure() {
	local variant=$1 mode=$2 size=$3 spi dst p0 p1 c0 c1 t0 t1
	if [ "$mode" = tunnel ]; then spi=$SPI_OUT dst=48.0.0.1; else spi=$TR_SPI_OUT dst=$NE_ADDR; fi
	p0=$(xfrm_packets "$NE" "$([ "$mode" = tunnel ] && echo "$GW_ADDR" || echo 16.0.0.1)" "$NE_ADDR" "$spi")
	c0=$(cpu_jiffies) t0=$(date +%s%N)
	flood "$dst" "$size"
	sleep 0.3
	t1=$(date +%s%N) c1=$(cpu_jiffies)
	p1=$(xfrm_packets "$NE" "$([ "$mode" = tunnel ] && echo "$GW_ADDR" || echo 16.0.0.1)" "$NE_ADDR" "$spi")
	printf '{"variant":"%s","mode":"%s","size":%s,"packets":%s,"ns":%s,"cpu_jiffies":%s}\n' \
		"$variant" "$mode" "$size" $((p1 - p0)) $((t1 - t0)) $((c1 - c0)) | tee -a "$OUT"
}

use() { # use rust|cref|stock [direct_transport]
	module_unload "$RUST_KO"
	module_unload "$CREF_KO"
	case $1 in
	rust) module_load "$RUST_KO" "direct_transport=${2:-0}" ;;
	cref) module_load "$CREF_KO" "direct_transport=${2:-0}" ;;
	esac
}

: >"$OUT"
setup
for round in $(seq "$ROUNDS"); do
	for size in $SIZES; do
		use rust; measure rust tunnel "$size"
		use cref; measure cref tunnel "$size"
		use rust 0; measure stock transport "$size"
		use rust 1; measure direct transport "$size"
	done
	echo "round $round done" >&2
done
use none
