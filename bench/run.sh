#!/usr/bin/env bash
# `make bench`: one boot, interleaved variants, median and spread; prints
# a text table and writes bench/results/latest.{json,txt}.
#
#   BENCH_ROUNDS=5 BENCH_SECONDS=3 BENCH_SIZES="64 512 1400"
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
SRC=$(kernel_src)
RES=$TOP/bench/results
mkdir -p "$RES"
raw=$(mktemp -d "${TMPDIR:-/tmp}/xdt-bench.XXXXXX")
rounds=${BENCH_ROUNDS:-5} secs=${BENCH_SECONDS:-3}
limit=$((rounds * 3 * 4 * (secs + 20) + 300))

"$TOP/scripts/vm.sh" -t "$limit" -o "$raw" -- \
	env BENCH_ROUNDS="$rounds" BENCH_SECONDS="$secs" BENCH_SIZES="${BENCH_SIZES:-64 512 1400}" \
	bash "$TOP/bench/guest.sh" "$SRC/tools/testing/selftests/net/xfrm" \
	"$(module_ko xfrm_direct_tx)" "$(module_ko xfrm_direct_tx_cref)" "$raw/runs.jsonl"

python3 "$TOP/bench/summarize.py" "$raw/runs.jsonl" "$RES/latest.json" | tee "$RES/latest.txt"
cp "$raw/runs.jsonl" "$RES/latest-runs.jsonl"
