#!/usr/bin/env bash
# `make demo`: the main job. Builds the patched kernel and the module (the
# Makefile does), boots it, and runs the report's scenario three ways:
# the stock path (the bug), no module (the base kernel's fix), the Rust module.
# IKE=1: strongSwan brings the tunnel up with the report's swanctl.conf
# files, in the guest root that has a packet-offload strongSwan.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SRC=$(kernel_src)
IKE=${IKE:-0}
if [ "$IKE" = 1 ]; then
	VM_ROOT=$("$TOP/scripts/guest-root.sh")
	export VM_ROOT
fi
exec "$TOP/scripts/vm.sh" -t "${DEMO_TIMEOUT:-900}" -- \
	env IKE="$IKE" bash "$TOP/scripts/demo-guest.sh" "$SRC/tools/testing/selftests/net/xfrm" \
	"$(module_ko xfrm_direct_tx)"
