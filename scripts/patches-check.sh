#!/usr/bin/env bash
# `make patches-check`: the outgoing series is bisectable. Every prefix of
# it builds (vmlinux and modules), with the in-tree Rust module enabled
# (CONFIG_XFRM_DIRECT_TX=m) from the patch that adds it on.
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
XDT_OUTGOING_LOCKED=1 PATCHES_OUT=$tmp "$TOP/scripts/patches.sh" >"$LOGDIR/patches.log" 2>&1 ||
	die "make patches failed (log: $LOGDIR/patches.log)"
mapfile -t commits < <(git -C "$WT" rev-list --reverse base..HEAD)
[ "${#commits[@]}" -gt 0 ] || die "no commits on top of base in $WT"
head=$(git -C "$WT" rev-parse HEAD)

kmake() { make -C "$WT" O="$BUILD" "${KMAKE_FLAGS[@]}" "$@"; }

# The project's VM config, plus the module once Kconfig knows it.
configure() {
	local has_module=0
	grep -q '^config XFRM_DIRECT_TX$' "$WT/net/xfrm/Kconfig" && has_module=1
	if [ ! -f "$BUILD/.config" ]; then
		mkdir -p "$BUILD"
		kmake -s tinyconfig >/dev/null
		"$WT/scripts/kconfig/merge_config.sh" -m -O "$BUILD" "$BUILD/.config" \
			"$TOP/scripts/kconfig/vm.config" "$TOP/selftests/net/xfrm/config" >/dev/null
	fi
	[ "$has_module" = 0 ] || "$WT/scripts/config" --file "$BUILD/.config" --module XFRM_DIRECT_TX
	kmake -s olddefconfig >/dev/null
	if [ "$has_module" = 1 ] && ! grep -q '^CONFIG_XFRM_DIRECT_TX=m$' "$BUILD/.config"; then
		echo "CONFIG_XFRM_DIRECT_TX=m did not stick (dependencies?)"
		return 1
	fi
}

check_series() {
	echo "TAP version 13"
	echo "1..${#commits[@]}"
	echo "# series digest: $(series_digest "$tmp")"
	echo "# base: $(git -C "$WT" rev-parse base), $(nproc) CPUs, $(date -u +%FT%TZ)"
	i=0 failed=0
	for c in "${commits[@]}"; do
		i=$((i + 1))
		subject=$(git -C "$WT" log -1 --format=%s "$c")
		logf=$LOGDIR/$(printf %02d "$i").log
		start=$(date +%s)
		git -C "$WT" checkout -q -f --detach "$c" ||
			{ echo "Bail out! cannot check out $c in $WT"; return 1; }
		if { configure && kmake -j"$(nproc)" vmlinux modules; } >"$logf" 2>&1; then
			echo "ok $i $subject # $(($(date +%s) - start))s"
		else
			echo "not ok $i $subject # log: $logf"
			tail -n 15 "$logf" | sed 's/^/# /'
			failed=$((failed + 1))
		fi
	done
	git -C "$WT" checkout -q -f --detach "$head"
	echo "# $((${#commits[@]} - failed)) passed, $failed failed"
	[ "$failed" -eq 0 ]
}

# The log goes next to the series it checked, when that series is the
# one in patches/outgoing/vN.
set +e
check_series | tee "$LOGDIR/bisect.log"
rc=${PIPESTATUS[0]}
set -e
SERIES=$TOP/patches/outgoing/v${VERSION:-1}
if [ -d "$SERIES" ] && [ "$(series_digest "$SERIES")" = "$(series_digest "$tmp")" ]; then
	cp "$LOGDIR/bisect.log" "$SERIES/bisect.log"
	log "bisect log: $SERIES/bisect.log"
else
	log "bisect log: $LOGDIR/bisect.log ($SERIES is not this series: run 'make patches' to update it, then this)"
fi
exit "$rc"
