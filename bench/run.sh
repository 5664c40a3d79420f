#!/usr/bin/env bash
# `make bench`: one boot, interleaved variants, median and spread; prints
# a text table and writes bench/results/latest.{json,txt}.
#
#   BENCH_ROUNDS=5 BENCH_SECONDS=3 BENCH_SIZES="64 512 1400"
#   BENCH_PARTS="macro micro profile" BENCH_CALLS=20000 (skbs per micro run)
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
SRC=$(kernel_src)
RES=$TOP/bench/results
mkdir -p "$RES"
raw=$(mktemp -d "${TMPDIR:-/tmp}/xdt-bench.XXXXXX")
rounds=${BENCH_ROUNDS:-5} secs=${BENCH_SECONDS:-3}
limit=$((rounds * 3 * 4 * (secs + 20 + ${BENCH_CALLS:-20000} / 500) + 300))

"$TOP/scripts/vm.sh" -t "$limit" -o "$raw" -- \
	env BENCH_ROUNDS="$rounds" BENCH_SECONDS="$secs" BENCH_SIZES="${BENCH_SIZES:-64 512 1400}" \
	BENCH_PARTS="${BENCH_PARTS:-macro micro profile}" BENCH_CALLS="${BENCH_CALLS:-20000}" \
	bash "$TOP/bench/guest.sh" "$SRC/tools/testing/selftests/net/xfrm" \
	"$(module_ko xfrm_direct_tx)" "$(module_ko xfrm_direct_tx_cref)" \
	"$(module_ko xfrm_direct_tx_micro)" "$raw/runs.jsonl"

python3 "$TOP/bench/summarize.py" "$raw/runs.jsonl" "$RES/latest.json" | tee "$RES/latest.txt"
cp "$raw/runs.jsonl" "$RES/latest-runs.jsonl"
for prof in "$raw"/profile-*.txt; do
	[ -f "$prof" ] || continue
	cp "$prof" "$RES/"
	echo; echo "== $(basename "$prof" .txt) (perf, cpu-clock samples, 64-byte micro run)"; cat "$prof"
done | tee -a "$RES/latest.txt"
