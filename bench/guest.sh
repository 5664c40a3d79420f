#!/bin/bash
# Runs inside the VM (bench/run.sh). One boot, variants interleaved:
# tunnel mode with the Rust hook and with the C reference hook, and
# transport mode with the stock path and with direct output.
#
# macro: pktgen in ns0 floods through IPSEC-GW; delivered packets are
# counted by the software SA on Simulated-NE, CPU time from /proc/stat.
# micro: xfrm_direct_tx_micro times dst_output() on synthetic forwarded
# skbs on IPSEC-GW, the netdevsim port dropping them once it has looked up
# their SA (ipsec_packet_fail_tx), so the time is the hook's, the xfrm
# output path's and the device's transmit, and nothing downstream.

SELFTEST_DIR=$1 RUST_KO=$2 CREF_KO=$3 MICRO_KO=$4 OUT=$5
# Optional: another build of the Rust hook (say, of the previous commit),
# profiled beside the current one to judge a change in one boot.
RUST_BASE_KO=${BENCH_RUST_BASE_KO:-}
# The emulation part: another build of netdevsim (bench/nsim-base.sh).
NSIM_BASE_KO=${BENCH_NSIM_BASE_KO:-}
ROUNDS=${BENCH_ROUNDS:-5}
SECONDS_PER_RUN=${BENCH_SECONDS:-3}
SIZES=${BENCH_SIZES:-64 512 1400}
PARTS=${BENCH_PARTS:-macro micro profile}
CALLS=${BENCH_CALLS:-20000}
export XDT_MODULE=$RUST_KO XDT_CREF_MODULE=$CREF_KO
source "$SELFTEST_DIR/routed_lib.sh"
source "$SELFTEST_DIR/direct_tx_lib.sh"
trap topo_cleanup EXIT
debugfs_mount
# The test kernel tracks every allocation for kmemleak (make check's leak
# cases): that bookkeeping would be much of what is measured here. Off for
# the rest of this boot.
[ -w /sys/kernel/debug/kmemleak ] && echo off >/sys/kernel/debug/kmemleak
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
	# The peer's neighbour entry on GW stays as it is: a REACHABLE entry
	# going STALE during a run would change the stock path's instructions
	# (neigh_resolve_output() instead of the cached header) between boots.
	ip -n "$GW" neigh replace "$NE_ADDR" dev p0 nud permanent \
		lladdr "$(ip -n "$NE" -br link show p0 | awk '{print $3}')" || exit 1
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

# macro VARIANT MODE SIZE: one run; appends a JSON line.
macro() {
	local variant=$1 mode=$2 size=$3 spi dst p0 p1 c0 c1 t0 t1
	if [ "$mode" = tunnel ]; then spi=$SPI_OUT dst=48.0.0.1; else spi=$TR_SPI_OUT dst=$NE_ADDR; fi
	p0=$(xfrm_packets "$NE" "$([ "$mode" = tunnel ] && echo "$GW_ADDR" || echo 16.0.0.1)" "$NE_ADDR" "$spi")
	c0=$(cpu_jiffies) t0=$(date +%s%N)
	flood "$dst" "$size"
	sleep 0.3
	t1=$(date +%s%N) c1=$(cpu_jiffies)
	p1=$(xfrm_packets "$NE" "$([ "$mode" = tunnel ] && echo "$GW_ADDR" || echo 16.0.0.1)" "$NE_ADDR" "$spi")
	printf '{"bench":"macro","variant":"%s","mode":"%s","size":%s,"packets":%s,"ns":%s,"cpu_jiffies":%s}\n' \
		"$variant" "$mode" "$size" $((p1 - p0)) $((t1 - t0)) $((c1 - c0)) | tee -a "$OUT"
}

micro_run() { # DST SIZE CALLS [WRAPPER...], e.g. a perf record command line
	# MICRO_MODE=floor: the floor instead of dst_output().
	"${@:4}" nsenter --net="/run/netns/$GW" sh -c \
		"echo '16.0.0.1 $1 $2 $3${MICRO_MODE:+ $MICRO_MODE}' > /sys/kernel/debug/xfrm_direct_tx_micro/run" && return
	echo "micro: $variant $mode $size: writing the run failed" >&2
	return 1
}

# counted_run LABEL DST SIZE COUNTER...: one timed stream of CALLS skbs
# to DST, warmed up first (under TCG, code runs slowly the first time
# after a module load: translation, which is not the code's cost).
# MICRO_MODE as micro_run. Each COUNTER (a command line) must rise by
# exactly CALLS. Prints the JSON fields of the run, from "size" on.
counted_run() {
	local label=$1 dst=$2 size=$3 counter before=() i=0 now res
	shift 3
	micro_run "$dst" "$size" $((CALLS / 10 + 1)) || exit 1
	for counter in "$@"; do
		before+=("$($counter)")
	done
	micro_run "$dst" "$size" "$CALLS" || exit 1
	res=$(cat /sys/kernel/debug/xfrm_direct_tx_micro/run)
	for counter in "$@"; do
		now=$($counter)
		[ $((now - before[i])) -eq "$CALLS" ] || {
			echo "$label $size: $counter: ${before[i]} -> $now, expected +$CALLS" >&2
			exit 1
		}
		i=$((i + 1))
	done
	set -- $res
	printf '"size":%s,"calls":%s,"ns":%s,"median_ps":%s,"p10_ps":%s}\n' \
		"$size" "$2" "$4" "$6" "$8"
}

# measure BENCH VARIANT SIZE JSON: counted_run of the variant; appends a
# JSON line, with JSON (more fields) in it. Every call must reach the
# emulated NIC's SA lookup and be dropped there (its tx_drop rises by
# exactly CALLS), and raise the hook's counter by one.
measure() {
	local bench=$1 variant=$2 size=$3 json=$4 counters mode= fields
	counters=("nsim_port_counter $NSIM_GW_ID tx_drop")
	[ -z "$(variant_counter "$variant")" ] ||
		counters+=("hook_counter $(variant_ko "$variant") $(variant_counter "$variant")")
	[ "$variant" = floor ] && mode=floor
	fields=$(MICRO_MODE=$mode counted_run "$bench: $variant" "$(variant_dst "$variant")" \
		"$size" "${counters[@]}") || exit 1
	printf '{"bench":"%s","variant":"%s",%s%s\n' "$bench" "$variant" "$json" "$fields" |
		tee -a "$OUT"
}

# micro VARIANT MODE SIZE: TCG time per call.
micro() { measure micro "$1" "$3" "\"mode\":\"$2\","; }

# The variants: rust, rust_base and cref are tunnel mode (16.0.0.1 ->
# 48.0.0.1) with that hook; stock and direct are transport mode (16.0.0.1
# -> NE) with the Rust hook loaded, declining (direct_transport=0) or not;
# cref_direct is direct with the C hook (profile and insns). upstream is
# tunnel mode with no module (the kernel's own direct output), floor the
# same skbs handed to dev_queue_xmit() with no xfrm work (insns only).
variant_ko() { # the hook module of a variant
	case $1 in
	rust | stock | direct) echo "$RUST_KO" ;;
	rust_base) echo "$RUST_BASE_KO" ;;
	cref | cref_direct) echo "$CREF_KO" ;;
	esac
}

variant_dst() { case $1 in stock | *direct) echo "$NE_ADDR" ;; *) echo 48.0.0.1 ;; esac; }

# The hook counter every call of the variant must raise (none without a
# module).
variant_counter() {
	case $1 in
	upstream | floor) ;;
	stock) echo declined_transport ;;
	*) echo direct ;;
	esac
}

use() { # use VARIANT|none
	local ko
	ko=$(variant_ko "$1")
	module_unload "$RUST_KO"
	module_unload "$CREF_KO"
	[ -z "$ko" ] || module_load "$ko" "direct_transport=$(case $1 in *direct) echo 1 ;; *) echo 0 ;; esac)" ||
		{ echo "cannot load $ko"; exit 1; }
}

: >"$OUT"
setup
# variants macro|micro SIZE: the four variants, back to back.
variants() {
	use rust; $1 rust tunnel "$2"
	use cref; $1 cref tunnel "$2"
	use stock; $1 stock transport "$2"
	use direct; $1 direct transport "$2"
}
# profile VARIANT ROUND: where the time of a long micro run goes (perf,
# sampled on the cpu-clock: TCG has no PMU, so no cycle counts), 64-byte
# packets. Appends a JSON line with the samples inside the timed calls
# (micro_output_batch on the stack) and, of those, the ones in the hook: its
# module's code and, for Rust, the C helpers it calls out of line; and the
# ones on the path after the hook's decision: under xfrm_output() (hook,
# stock path) or xfrm_output_resume() (which xfrm_output() may tail-call),
# but not in the device's transmit (__dev_queue_xmit()), which both paths
# end in. A share of samples compares two ways of doing a part of the same
# calls without the run-to-run drift of the host that makes timings here
# noisy: what is outside that part is the same code in both.
profile() {
	local variant=$1 round=$2 size=64 calls=$((CALLS * 25)) counts ko counter c0 c1
	local prof=${OUT%/*}/profile-$variant
	# perf's data stays in the guest (its /tmp is a tmpfs overlay): 7.3's
	# 9p answers perf record's writes from its ring buffer with EFAULT.
	local data=$PERF_DIR/profile-$variant.data
	ko=$(variant_ko "$variant") counter=$(variant_counter "$variant")
	c0=$(hook_counter "$ko" "$counter")
	micro_run "$(variant_dst "$variant")" "$size" "$calls" \
		"$PERF" record -q -g -e cpu-clock -F 10000 -a -o "$data" -- || return 1
	c1=$(hook_counter "$ko" "$counter")
	[ -n "$c0" ] && [ -n "$c1" ] && [ $((c1 - c0)) -eq "$calls" ] ||
		{ echo "profile $variant: $counter '$c0' -> '$c1', expected +$calls"; return 1; }
	# The writer's samples only: building the skbs and the timed calls.
	# Also, in $prof.hook, where in the hook (function+offset) and in
	# which helpers the timed samples fell, most frequent first.
	rm -f "$prof.where"
	counts=$("$PERF" script -i "$data" --kallsyms /proc/kallsyms --comms sh -F comm,ip,sym,symoff,dso \
		2>/dev/null | awk -v where="$prof.where" '
		function flush() {
			if (leaf == "") return
			hook = leaf ~ /\(\[xfrm_direct_tx(_cref)?\]\)$/
			helper = leaf ~ /^[0-9a-f]+ rust_helper_/
			if (timed) { t++; m += hook; h += helper; p += path && !xmit }
			else if (hook || helper) u++
			if (timed && (hook || helper)) { split(leaf, f, " "); print f[2] >where }
			leaf = ""; timed = path = xmit = 0
		}
		/^[^ \t]/ { flush(); next }
		/^[ \t]+[0-9a-f]+ / {
			sub(/^[ \t]+/, "")
			if (leaf == "") leaf = $0
			if ($2 ~ /^micro_output_batch\+/) timed = 1
			if ($2 ~ /^xfrm_output(_resume)?\+/) path = 1
			if ($2 ~ /^__dev_queue_xmit\+/) xmit = 1
			next
		}
		/^$/ { flush() }
		END { flush(); printf "%d %d %d %d %d\n", t, m, h, u, p }')
	set -- $counts
	[ "${1:-0}" -gt 0 ] || { echo "profile $variant: no samples under micro_output_batch"; return 1; }
	# Every variant goes through xfrm_output(): none there means the call
	# chains lost it (or it was renamed), and the path ratios would be 1.
	[ "${5:-0}" -gt 0 ] || { echo "profile $variant: no samples under xfrm_output()"; return 1; }
	# Every variant has a hook module loaded and running (its counter rose
	# by every call): none of its samples means perf did not attribute
	# samples to the module (seen with Debian 12's perf 6.1 on the 7.3
	# guest: they land on another module's addresses, "[pktgen] 0x8fb1";
	# hence the kernel's own perf, BENCH_PERF).
	[ $((${2:-0} + ${3:-0} + ${4:-0})) -gt 0 ] ||
		{ echo "profile $variant: no samples in the hook module $ko: perf cannot map it"; return 1; }
	sort "$prof.where" 2>/dev/null | uniq -c | sort -rn >"$prof.hook"
	echo "$ko" >"$prof.ko"
	printf '{"bench":"profile","variant":"%s","round":%s,"size":%s,"calls":%s,"timed_samples":%s,"hook_module_samples":%s,"rust_helper_samples":%s,"hook_samples_outside":%s,"path_samples":%s}\n' \
		"$variant" "$round" "$size" "$calls" "$1" "$2" "$3" "$4" "$5" | tee -a "$OUT"
	# The flat profile of the last round, for reading.
	"$PERF" report -q -i "$data" --kallsyms /proc/kallsyms --comms sh --no-children -g none \
		--percentage relative --sort dso,sym --stdio 2>/dev/null | grep -v '^$' >"$prof.all"
	{
		head -n 25 "$prof.all"
		awk '$2 ~ /^\[xfrm_direct_tx(_cref)?\]$/ { m += $1 } $4 ~ /^rust_helper_/ { h += $1 }
			END { printf "# hook module: %.2f%%, Rust helpers: %.2f%% of the writer'"'"'s samples\n", m, h }' \
			"$prof.all"
	} >"$prof.txt"
}

# insns VARIANT SIZE SAS: guest instructions per call, in a boot where the
# guest clock counts retired instructions (QEMU -icount shift=0: 1 ns per
# instruction), so the micro run's median batch time per call is the
# instruction count.
insns() { measure insns "$1" "$2" "\"sas\":$3,"; }

# more_sas N: N offloaded tunnel SAs and out policies on GW besides the
# report's, for other networks (17.x.y.z/32 -> 49.x.y.z/32), added before
# it so that a lookup that walks a list meets them first.
more_sas() {
	local n=$1 i a b f
	[ "$n" -gt 0 ] || return 0
	f=$(mktemp)
	for i in $(seq "$n"); do
		a=$((i / 256 % 256)) b=$((i % 256))
		echo "xfrm state add src $GW_ADDR dst $NE_ADDR proto esp spi $((0x100000 + i))" \
			"reqid $((1000 + i)) mode tunnel flag esn replay-window 0" \
			"aead $AEAD_ALG $KEY_OUT $ICV_BITS sel src 17.0.$a.$b/32 dst 49.0.$a.$b/32" \
			"offload packet dev p0 dir out"
		echo "xfrm policy add src 17.0.$a.$b/32 dst 49.0.$a.$b/32 dir out" \
			"tmpl src $GW_ADDR dst $NE_ADDR proto esp reqid $((1000 + i)) mode tunnel" \
			"offload packet dev p0"
	done >"$f"
	ip -n "$GW" -batch "$f" || exit 1
	rm -f "$f"
}

# use_nsim current|base: that build of netdevsim loaded (this kernel's, or
# NSIM_BASE_KO), and the topology built again on it.
use_nsim() {
	topo_cleanup
	module_unload netdevsim || exit 1
	if [ "$1" = base ]; then
		insmod "$NSIM_BASE_KO" || exit 1
	else
		modprobe netdevsim || exit 1
	fi
	setup
}

# emulation_count FAIL_TX: what emulation counts.
emulation_count() {
	if [ "$1" = 1 ]; then
		nsim_port_counter "$NSIM_GW_ID" tx_drop
	else
		nsim_sa_packets "$NSIM_GW_ID" out "$SPI_OUT"
	fi
}

# emulation NSIM SIZE FAIL_TX: guest instructions per packet of the floor
# (the report's forwarded skbs handed to dev_queue_xmit() on p0, no xfrm
# work), which the emulated NIC classifies by its offloaded policy and
# then encrypts and puts on the wire (FAIL_TX 0: its out SA counts every
# one), or drops at the SA lookup (1: its tx_drop counts every one).
# Appends a JSON line.
emulation() {
	local nsim=$1 size=$2 fail=$3 fields
	nsim_fault "$NSIM_GW_ID" fail_tx "$fail"
	fields=$(MICRO_MODE=floor counted_run "emulation: $nsim fail_tx=$fail" 48.0.0.1 "$size" \
		"emulation_count $fail") || exit 1
	nsim_fault "$NSIM_GW_ID" fail_tx 0
	printf '{"bench":"emulation","nsim":"%s","fail_tx":%s,%s\n' "$nsim" "$fail" "$fields" |
		tee -a "$OUT"
}

PERF_DIR=$(mktemp -d /tmp/xdt-perf.XXXXXX)
PERF=${BENCH_PERF:-perf}

micro_start() {
	module_load "$MICRO_KO" || exit 1
	nsim_fault "$NSIM_GW_ID" fail_tx 1
}

micro_stop() {
	nsim_fault "$NSIM_GW_ID" fail_tx 0
	module_unload "$MICRO_KO"
}

for part in $PARTS; do
	case $part in
	macro | micro)
		[ "$part" = macro ] || micro_start
		for round in $(seq "$ROUNDS"); do
			for size in $SIZES; do
				variants "$part" "$size"
			done
			echo "$part: round $round done" >&2
		done
		[ "$part" = macro ] || micro_stop
		;;
	profile)
		command -v "$PERF" >/dev/null || { echo "profile: no perf at '$PERF' (scripts/perf.sh builds it)"; exit 1; }
		micro_start
		for round in $(seq "$ROUNDS"); do
			for variant in rust cref ${RUST_BASE_KO:+rust_base} stock direct cref_direct; do
				use "$variant"
				micro_run "$(variant_dst "$variant")" 64 $((CALLS / 10 + 1)) &&
					profile "$variant" "$round" || exit 1
			done
			echo "profile: round $round done" >&2
		done
		micro_stop
		;;
	insns)
		# Sizes and variants at the report's single SA, then the Rust hook
		# and the kernel's own direct output with more SAs installed. Jumbo
		# frames on the ciphered segment for the 9000-byte packets.
		ip -n "$GW" link set p0 mtu 9216 && ip -n "$NE" link set p0 mtu 9216 || exit 1
		micro_start
		for size in ${BENCH_INSNS_SIZES:-64 512 1400 9000}; do
			for variant in rust cref upstream stock direct cref_direct floor; do
				use "$variant"
				insns "$variant" "$size" 1
			done
		done
		for sas in ${BENCH_INSNS_SAS:-100 10000}; do
			micro_stop
			setup
			more_sas $((sas - 1))
			micro_start
			for variant in rust upstream floor; do
				use "$variant"
				insns "$variant" 64 "$sas"
			done
		done
		micro_stop
		;;
	emulation)
		[ -f "$NSIM_BASE_KO" ] || { echo "emulation: no BENCH_NSIM_BASE_KO ('$NSIM_BASE_KO')"; exit 1; }
		module_load "$MICRO_KO" || exit 1
		# Rounds interleave the two builds; the sizes fit the MTU.
		for round in $(seq "$ROUNDS"); do
			for nsim in base current; do
				use_nsim "$nsim"
				for size in ${BENCH_EMULATION_SIZES:-64 512 1400}; do
					emulation "$nsim" "$size" 0
					emulation "$nsim" "$size" 1
				done
			done
			echo "emulation: round $round done" >&2
		done
		module_unload "$MICRO_KO"
		use_nsim current
		;;
	*) echo "unknown BENCH_PARTS entry '$part' (macro, micro, profile, insns, emulation)"; exit 1 ;;
	esac
done
use none
