#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The project's own check, not part of the series: the routed network
# cases with bench/cref/xfrm_direct_tx_cref.ko, a C module doing what the
# Rust one does behind the same hook (the benchmark's baseline), and the
# hook's single slot. make check runs it beside the in-tree suite:
#   make -C tools/testing/selftests TARGETS=net/xfrm TEST_PROGS=cref_hook.sh run_tests

lib_dir=$(dirname "$(readlink -f "$0")")
source "$lib_dir/routed_network.sh"
source "$lib_dir/direct_tx_lib.sh"

# The cases, in order: name (CASES selects by name or function),
# command, description.
# shellcheck disable=SC2016 # the commands expand when they run
XFRM_TESTS=(
	hook_forward 'with_hook "$XDT_CREF_MODULE" case_forward'
		'packet offload, C reference hook: 16.0.0.1 -> 48.0.0.1 direct'
	hook_reverse 'with_hook "$XDT_CREF_MODULE" case_reverse'
		'packet offload, C reference hook: 48.0.0.1 -> 16.0.0.1'
	second_registrant case_second_registrant
		'hook slot: second registrant gets -EBUSY'
)

XDT_CREF_MODULE=${XDT_CREF_MODULE:-xfrm_direct_tx_cref}

cleanup() {
	defer_scopes_cleanup
	module_unload "$XDT_CREF_MODULE" || return 1
	modules_unload
	topo_cleanup
}
trap cleanup EXIT
CASE_CLEANUP=hook_case_cleanup

# The hook is one slot: a second module is refused with -EBUSY.
case_second_registrant() {
	local out ret=0
	modules_unload || return 1
	module_available "$XDT_CREF_MODULE" || return
	module_load "$XDT_MODULE" || return
	if out=$(module_load "$XDT_CREF_MODULE" 2>&1); then
		echo "# FAILED: second registrant loaded"
		module_unload "$XDT_CREF_MODULE" || return 1
		ret=1
	else
		echo "# second registrant refused: $out"
		case "$out" in *busy*|*Busy*|*EBUSY*) ;; *) ret=1 ;; esac
	fi
	module_unload "$XDT_MODULE" || return 1
	return "$ret"
}

require_cmds ip ping tcpdump modprobe insmod rmmod
debugfs_mount

run_tests
