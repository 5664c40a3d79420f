#!/usr/bin/env bash
# `make demo`: the main job. Builds the patched kernel and the module (the
# Makefile does), boots it, and runs the report's scenario three ways:
# the stock path (the bug), no module (the base kernel's fix), the Rust module.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SRC=$(kernel_src)
exec "$TOP/scripts/vm.sh" -t "${DEMO_TIMEOUT:-900}" -- \
	bash "$TOP/scripts/demo-guest.sh" "$SRC/tools/testing/selftests/net/xfrm" \
	"$(module_ko xfrm_direct_tx)"
