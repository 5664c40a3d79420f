# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# The xfrm output hook's module in the routed network tests: the Rust
# direct output module (xfrm_direct_tx). Sourced after routed_lib.sh.

# Path to the module (.ko) or its name for modprobe.
XDT_MODULE=${XDT_MODULE:-xfrm_direct_tx}

# Module load/unload cycles, idle and under load; XFRM_LONG=1: 100.
LOAD_CYCLES=${LOAD_CYCLES:-$([ "${XFRM_LONG:-0}" = 1 ] && echo 100 || echo 10)}

# module_load NAME|PATH [PARAMS...]: the module loaded now, with PARAMS.
# Returns $KSFT_SKIP, saying so, when a module NAME is not in this kernel
# (not built, or a kernel without it). A PATH that is not there, a module
# already loaded (its parameters would not be the ones asked for), and
# any other failure to load are failures.
module_load() {
	local m=$1 out
	shift
	module_available "$m" || return
	if [ -f "$m" ]; then
		out=$(insmod "$m" "$@" 2>&1)
	else
		out=$(modprobe --first-time "$m" "$@" 2>&1)
	fi || { echo "# FAILED: loading $m $*: $out"; return 1; }
}

# module_available NAME|PATH: as module_load, without loading it.
module_available() {
	case $1 in
	*/*)
		[ -f "$1" ] && return 0
		echo "# FAILED: no module at $1"
		return 1 ;;
	esac
	modprobe -q -n "$1" 2>/dev/null && return 0
	echo "# SKIP: no module $1 in this kernel"
	return "$KSFT_SKIP"
}

# module_unload NAME|PATH: the module is not loaded, or fails saying why.
module_unload() {
	local name out
	name=$(basename "$1" .ko)
	grep -q "^$name " /proc/modules || return 0
	out=$(rmmod "$name" 2>&1) && return 0
	echo "# FAILED: rmmod $name: $out"
	return 1
}

# The module not loaded, no path counter: the base kernel's path.
modules_unload() {
	PATH_COUNTERS=()
	PATH_DROP_COUNTERS=()
	module_unload "$XDT_MODULE"
}

# hook_counter MODULE NAME: a counter of the direct output module.
hook_counter() {
	local name
	name=$(basename "$1" .ko)
	sed -n "s/^$2 //p" "/sys/kernel/debug/$name/counters" 2>/dev/null
}

# hook_drops MODULE: the sum of the module's counters of drops and
# failures (drop_no_route, drop_no_device, drop_device_down,
# drop_headroom, xmit_error); nothing if it has none to read. One
# process: a TCG guest pays 0.1 s for each.
hook_drops() {
	local name
	name=$(basename "$1" .ko)
	awk '$1 ~ /^drop_/ || $1 == "xmit_error" { s += $2; n++ }
		END { if (n == 5) print s }' "/sys/kernel/debug/$name/counters" 2>/dev/null
}

# hook_counts MODULE: MODULE's direct counter a path counter: every
# packet the NIC's out SA sends goes through the hook; and its drop and
# failure counters, which do not move while the path works.
hook_counts() {
	local name
	name=$(basename "$1" .ko)
	# shellcheck disable=SC2034 # routed_lib.sh's path_snapshot reads them
	PATH_COUNTERS=("$name direct=hook_counter $1 direct")
	# shellcheck disable=SC2034
	PATH_DROP_COUNTERS=("$name drops and failures=hook_drops $1")
}

# hook_load MODULE [PARAMS...]: MODULE loaded, and counted (hook_counts).
hook_load() {
	module_load "$@" || return
	hook_counts "$1"
}

# hook_case_cleanup: after each case, the module unloaded (a case that
# fails may leave it loaded) and the topology gone.
hook_case_cleanup() {
	modules_unload
	topo_cleanup
}

# with_hook MODULE CASE [ARGS...]: a case of the routed network tests with
# MODULE's hook in front of the kernel's direct output.
with_hook() {
	local m=$1 ret
	shift
	modules_unload || return 1
	hook_load "$m" || return
	"$@"
	ret=$?
	# A module that cannot be unloaded after the traffic holds a
	# reference it should not: the case fails.
	module_unload "$m" || ret=1
	modules_unload || ret=1
	return "$ret"
}
