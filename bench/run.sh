#!/usr/bin/env bash
# `make bench`: one boot, interleaved variants, median and spread; prints
# a text table and writes bench/results/latest.{json,txt} (BENCH_NAME).
#
#   BENCH_ROUNDS=5 BENCH_SECONDS=3 BENCH_SIZES="64 512 1400"
#   BENCH_PARTS="macro micro profile insns" BENCH_CALLS=20000 (skbs per micro run)
#   insns: guest instructions per call, in BENCH_INSNS_BOOTS=2 boots of
#   their own with the guest clock counting instructions (VM_ICOUNT=1),
#   at BENCH_INSNS_SIZES="64 512 1400 9000" and BENCH_INSNS_SAS="100 10000"
#   BENCH_RUST_BASE_KO=path/to/xfrm_direct_tx.ko: another build of the Rust
#   hook, profiled beside this one (variant rust_base)
#   emulation (not in the default parts): guest instructions per packet
#   of the emulated NIC's transmit, this kernel's netdevsim beside the one
#   bench/nsim-base.sh builds (BENCH_NSIM_BASE=revision of this repository,
#   default 5f693dc), in an icount boot of its own, BENCH_ROUNDS rounds
#   BENCH_TIMEOUT=seconds for the whole boot (default from the above)
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
SRC=$(kernel_src)
RES=$TOP/bench/results
mkdir -p "$RES"
raw=$(mktemp -d "${TMPDIR:-/tmp}/xdt-bench.XXXXXX")
rounds=${BENCH_ROUNDS:-5} secs=${BENCH_SECONDS:-3} calls=${BENCH_CALLS:-20000}
# Per round: 3 sizes x 4 variants of macro and micro runs, and 5 profiled
# variants of 25 x calls each (about a minute per 500,000 calls here).
limit=${BENCH_TIMEOUT:-$((rounds * (3 * 4 * (secs + 20 + calls / 500) + 5 * calls / 160) + 300))}

parts=${BENCH_PARTS:-macro micro profile insns}
# The profile samples with the base kernel's own perf (scripts/perf.sh).
perf=perf
if grep -qw profile <<<"$parts"; then
	perf=$("$TOP/scripts/perf.sh")
fi
timed_parts=$(tr ' ' '\n' <<<"$parts" | { grep -vxE 'insns|emulation' || true; } | xargs)
# guest VM_SH_ARGS...: one boot of bench/guest.sh running $part into $out.
guest() {
	"$TOP/scripts/vm.sh" "$@" -- \
		env BENCH_ROUNDS="$rounds" BENCH_SECONDS="$secs" BENCH_SIZES="${BENCH_SIZES:-64 512 1400}" \
		BENCH_CALLS="$calls" BENCH_RUST_BASE_KO="${BENCH_RUST_BASE_KO:-}" \
		BENCH_NSIM_BASE_KO="${BENCH_NSIM_BASE_KO:-}" \
		BENCH_INSNS_SIZES="${BENCH_INSNS_SIZES:-64 512 1400 9000}" \
		BENCH_INSNS_SAS="${BENCH_INSNS_SAS:-100 10000}" BENCH_PARTS="$part" BENCH_PERF="$perf" \
		bash "$TOP/bench/guest.sh" "$SRC/tools/testing/selftests/net/xfrm" \
		"$(module_ko xfrm_direct_tx)" "$(module_ko xfrm_direct_tx_cref)" \
		"$(module_ko xfrm_direct_tx_micro)" "$out"
}
: >"$raw/runs.jsonl"
if [ -n "$timed_parts" ]; then
	part=$timed_parts out=$raw/timed/runs.jsonl
	guest -t "$limit" -o "$raw/timed"
	cat "$out" >>"$raw/runs.jsonl"
fi
if grep -qw insns <<<"$parts"; then
	# One CPU: with -icount the vCPUs take turns anyway, and a second one
	# only adds its idle loop to what the clock counts.
	for boot in $(seq "${BENCH_INSNS_BOOTS:-2}"); do
		part=insns out=$raw/insns-$boot/runs.jsonl
		VM_ICOUNT=1 VM_CPUS=1 guest -t "${BENCH_INSNS_TIMEOUT:-3600}" -o "$raw/insns-$boot"
		sed "s/^{/{\"boot\":$boot,/" "$out" >>"$raw/runs.jsonl"
	done
fi
if grep -qw emulation <<<"$parts"; then
	BENCH_NSIM_BASE_KO=$("$TOP/bench/nsim-base.sh")
	part=emulation out=$raw/emulation/runs.jsonl
	VM_ICOUNT=1 VM_CPUS=1 guest -t "${BENCH_INSNS_TIMEOUT:-3600}" -o "$raw/emulation"
	cat "$out" >>"$raw/runs.jsonl"
fi

# The results' name: emulation.* for a run of that part alone, so that
# it does not replace the last full run's.
name=${BENCH_NAME:-$([ "$parts" = emulation ] && echo emulation || echo latest)}
! grep -qw profile <<<"$parts" || rm -f "$RES"/profile-*
python3 "$TOP/bench/summarize.py" "$raw/runs.jsonl" "$RES/$name.json" | tee "$RES/$name.txt"
cp "$raw/runs.jsonl" "$RES/$name-runs.jsonl"
for prof in "$raw"/timed/profile-*.txt; do
	[ -f "$prof" ] || continue
	variant=$(basename "$prof" .txt) variant=${variant#profile-}
	# The hook module the guest profiled for this variant, and its hook.
	ko=$(cat "${prof%.txt}.ko")
	case $ko in
	*_cref.ko) fn=cref_output ;;
	*) fn=Hook6output ;;
	esac
	cp "$prof" "${prof%.txt}.hook" "$RES/"
	echo; echo "== profile $variant (perf, cpu-clock samples, 64-byte micro run, last round)"
	cat "$prof"
	python3 "$TOP/bench/call_sites.py" "${prof%.txt}.hook" "$ko" "$fn"
done | tee -a "$RES/latest.txt"
