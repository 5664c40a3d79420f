#!/usr/bin/env bash
# `make patches-check`: the outgoing series are bisectable, and the
# netdevsim series stands without the hook. Every prefix of the series
# builds (bzImage and modules, the C files each patch touches again with
# W=1, no warning allowed), with the in-tree Rust module enabled
# (CONFIG_XFRM_DIRECT_TX=m) from the patch that adds it on. The kernel of
# the ipsec fix and the netdevsim series (base + 0-cross-family +
# 1-netdevsim, no hook, no Rust) then boots and passes that series'
# selftests, TARGETS=net/xfrm from its own tree, on the guest root.
#
# It regenerates the series (as `make patches` does, into a temporary
# folder) in the outgoing worktree of the cache, then checks out each
# commit there and builds it in a build folder of its own,
# build-<base>-series. The first run is a full kernel build (20-25 min on
# 2 cores); later runs rebuild only what the patches touch. Prints KTAP.
# It holds the worktree's lock throughout: a `make patches` (or the gate
# in `make check`) started meanwhile waits for it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

WT=$CACHE_DIR/outgoing
VM_BUILD=$(readlink -f "$(FLAVOUR=vm kernel_build)" 2>/dev/null) ||
	die "no kernel build yet: run 'make kernel' first"
BUILD=${VM_BUILD%-vm}-series
LOGDIR=$CACHE_DIR/check-series
mkdir -p "$LOGDIR"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
outgoing_lock
log "regenerating the series in $WT"
XDT_OUTGOING_LOCKED=1 SIGNOFF='' PATCHES_OUT=$tmp "$TOP/scripts/patches.sh" >"$LOGDIR/patches.log" 2>&1 ||
	die "make patches failed (log: $LOGDIR/patches.log)"
mapfile -t commits < <(git -C "$WT" rev-list --reverse base..HEAD)
[ "${#commits[@]}" -gt 0 ] || die "no commits on top of base in $WT"
head=$(git -C "$WT" rev-parse HEAD)
first=$(git -C "$WT" rev-parse outgoing/1-netdevsim)

kmake() { make -C "$WT" O="$BUILD" "${KMAKE_FLAGS[@]}" "$@"; }

# The project's VM config, plus the module once Kconfig knows it.
configure() {
	local has_module=0
	grep -q '^config XFRM_DIRECT_TX$' "$WT/net/xfrm/Kconfig" && has_module=1
	local frags=("$TOP/scripts/kconfig/vm.config" "$TOP/selftests/net/xfrm/config") hash
	# Configured again when a fragment changed: the build folder outlives
	# the fragments it was made from.
	hash=$(cat "${frags[@]}" | sha256sum | cut -c1-16)
	if [ ! -f "$BUILD/.config" ] || [ "$(cat "$BUILD/.xdt-config" 2>/dev/null)" != "$hash" ]; then
		mkdir -p "$BUILD"
		kmake -s tinyconfig >/dev/null
		"$WT/scripts/kconfig/merge_config.sh" -m -O "$BUILD" "$BUILD/.config" \
			"${frags[@]}" >/dev/null
		echo "$hash" >"$BUILD/.xdt-config"
	fi
	[ "$has_module" = 0 ] || "$WT/scripts/config" --file "$BUILD/.config" --module XFRM_DIRECT_TX
	kmake -s olddefconfig >/dev/null
	if [ "$has_module" = 1 ] && ! grep -q '^CONFIG_XFRM_DIRECT_TX=m$' "$BUILD/.config"; then
		echo "CONFIG_XFRM_DIRECT_TX=m did not stick (dependencies?)"
		return 1
	fi
}

# w1_objects COMMIT: the C files COMMIT adds or changes, built again
# with W=1 (NIPA's per-patch build): any warning in them fails. A header
# is checked through the files of the commit that include it.
w1_objects() {
	local objs=() f out
	for f in $(git -C "$WT" diff --name-only --diff-filter=AM "$1^" "$1" -- '*.c'); do
		case $f in rust/helpers/*) continue ;; esac  # bitcode helpers: rust/ builds them
		[ -f "$BUILD/${f%.c}.o" ] && objs+=("${f%.c}.o")
	done
	[ "${#objs[@]}" -gt 0 ] || return 0
	for f in "${objs[@]}"; do touch "$WT/${f%.o}.c"; done
	out=$(kmake W=1 "${objs[@]}" 2>&1) || { echo "$out"; return 1; }
	echo "$out"
	! grep -E '(warning|error):' <<<"$out" || { echo "W=1 warnings in ${objs[*]} (above)"; return 1; }
}

# first_series_selftests N: result N, the kernel just built (base and
# the first series) booted on the guest root, running the first series'
# selftests from its tree. A failure shows the failing cases.
first_series_selftests() {
	local n=$1 root out=$LOGDIR/first-series start
	start=$(date +%s)
	rm -rf "$out"
	if ! root=$("$TOP/scripts/guest-root.sh" 2>"$LOGDIR/guest-root.log"); then
		echo "not ok $n netdevsim series, no hook: selftests # no guest root (log: $LOGDIR/guest-root.log)"
		return 1
	fi
	if VM_ROOT=$root VM_KERNEL=$BUILD VM_SRC=$WT "$TOP/scripts/vm.sh" -t 2400 -o "$out" -- \
		make -s -C "$WT/tools/testing/selftests" TARGETS=net/xfrm run_tests \
		>"$LOGDIR/first-series.log" 2>&1 &&
		! grep -q '^# not ok ' "$out/out.log"; then
		echo "ok $n netdevsim series, no hook: boots, its selftests pass" \
			"($(grep -c '^# ok ' "$out/out.log") cases," \
			"$(grep -c '^# ok .*# SKIP' "$out/out.log") skipped) # $(($(date +%s) - start))s"
	else
		echo "not ok $n netdevsim series, no hook: boots, its selftests pass # log: $out/out.log"
		grep -E '^# not ok |^not ok ' "$out/out.log" 2>/dev/null | sed 's/^/# /'
		tail -n 5 "$LOGDIR/first-series.log" | sed 's/^/# /'
		return 1
	fi
}

check_series() {
	local d
	echo "TAP version 13"
	echo "1..$((${#commits[@]} + 1))"
	for d in "$tmp"/*/v*; do
		echo "# series digest $(basename "$(dirname "$d")"): $(series_digest "$d")"
	done
	echo "# base: $(git -C "$WT" rev-parse base), $(nproc) CPUs, $(date -u +%FT%TZ)"
	i=0 failed=0
	for c in "${commits[@]}"; do
		i=$((i + 1))
		subject=$(git -C "$WT" log -1 --format=%s "$c")
		logf=$LOGDIR/$(printf %02d "$i").log
		start=$(date +%s)
		git -C "$WT" checkout -q -f --detach "$c" ||
			{ echo "Bail out! cannot check out $c in $WT"; return 1; }
		if { configure && kmake -j"$(nproc)" bzImage modules && w1_objects "$c"; } >"$logf" 2>&1; then
			echo "ok $i $subject # $(($(date +%s) - start))s"
		else
			echo "not ok $i $subject # log: $logf"
			tail -n 15 "$logf" | sed 's/^/# /'
			failed=$((failed + 1))
		fi
		[ "$c" != "$first" ] || first_series_selftests "$((i + 1))" || failed=$((failed + 1))
		[ "$c" != "$first" ] || i=$((i + 1))
	done
	git -C "$WT" checkout -q -f --detach "$head"
	echo "# $((${#commits[@]} + 1 - failed)) passed, $failed failed"
	[ "$failed" -eq 0 ]
}

# The log goes next to each series it checked, when that series is the
# one in out/ (make patches).
set +e
check_series | tee "$LOGDIR/bisect.log"
rc=${PIPESTATUS[0]}
set -e
for d in "$tmp"/*/v*; do
	rel=${d#"$tmp"/}
	series=${PATCHES_OUT:-$TOP/out}/$rel
	if [ -d "$series" ] && [ "$(series_digest "$series")" = "$(series_digest "$d")" ]; then
		cp "$LOGDIR/bisect.log" "$series/bisect.log"
		log "bisect log: $series/bisect.log"
	else
		log "$series is not this series: run 'make patches' to update it, then this (log: $LOGDIR/bisect.log)"
	fi
done
exit "$rc"
