# SPDX-License-Identifier: GPL-2.0
#
# The xfrm output hook's module in the routed network tests: the Rust
# direct output module (xfrm_direct_tx). Sourced after routed_lib.sh.

# Path to the module (.ko) or its name for modprobe.
XDT_MODULE=${XDT_MODULE:-xfrm_direct_tx}

# Module load/unload cycles, idle and under load; XFRM_LONG=1: 100.
LOAD_CYCLES=${LOAD_CYCLES:-$([ "${XFRM_LONG:-0}" = 1 ] && echo 100 || echo 10)}

# module_load NAME|PATH [PARAMS...]: returns $KSFT_SKIP, saying so, when
# the module is not there at all (not built, or a kernel without it);
# any other failure to load is a failure.
module_load() {
	local m=$1 out
	shift
	module_available "$m" || return
	if [ -f "$m" ]; then
		out=$(insmod "$m" "$@" 2>&1)
	else
		out=$(modprobe "$m" "$@" 2>&1)
	fi || { echo "# FAILED: loading $m $*: $out"; return 1; }
}

# module_available NAME|PATH: as module_load, without loading it.
module_available() {
	[ -f "$1" ] || modprobe -q -n "$1" 2>/dev/null && return 0
	echo "# SKIP: module $1 not found"
	return "$KSFT_SKIP"
}

module_unload() {
	local name
	name=$(basename "$1" .ko)
	! grep -q "^$name " /proc/modules || rmmod "$name"
}

# The module not loaded, no path counter: the base kernel's path.
modules_unload() {
	module_unload "$XDT_MODULE"
	PATH_COUNTERS=()
}

# hook_counter MODULE NAME: a counter of the direct output module.
hook_counter() {
	local name
	name=$(basename "$1" .ko)
	sed -n "s/^$2 //p" "/sys/kernel/debug/$name/counters" 2>/dev/null
}

# hook_counts MODULE: MODULE's direct counter a path counter: every
# packet the NIC's out SA sends goes through the hook.
hook_counts() {
	PATH_COUNTERS=("$(basename "$1" .ko) direct=hook_counter $1 direct")
}

# hook_load MODULE [PARAMS...]: MODULE loaded, and counted (hook_counts).
hook_load() {
	module_load "$@" || return
	hook_counts "$1"
}

# with_hook MODULE CASE [ARGS...]: a case of the routed network tests with
# MODULE's hook in front of the kernel's direct output.
with_hook() {
	local m=$1 ret
	shift
	modules_unload
	hook_load "$m" || return
	"$@"
	ret=$?
	module_unload "$m"
	modules_unload
	return $ret
}
