#!/usr/bin/env bash
# `make demo`: the main job. Builds the patched kernel and the module (the
# Makefile does), boots it, and runs the report's scenario: the bug without
# the hook, the fix with it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SRC=$(kernel_src)
exec "$TOP/scripts/vm.sh" -t "${DEMO_TIMEOUT:-900}" -- \
	bash "$TOP/scripts/demo-guest.sh" "$SRC/tools/testing/selftests/net/xfrm" \
	"$(module_ko xfrm_direct_tx)"
