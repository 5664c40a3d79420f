#!/usr/bin/env bash
# `make deb`: Debian kernel packages (bindeb-pkg) for the two gateways of
# the report: x86_64 defconfig plus scripts/kconfig/gateway.config (mlx5
# with IPsec packet offload and eswitch, xfrm offload, Rust, the module
# as =m), built from the series of `make patches`, release 7.3.4-xdt so
# that it installs beside the distribution's kernel.
#
#   scripts/deb.sh            the packages, into $CACHE_DIR/deb/
#   scripts/deb.sh --config   only resolve the config and check that
#                             olddefconfig kept every option the fragment
#                             asks for (the gate in make check)
#   GATEWAY_CONFIG=FILE       another fragment instead of gateway.config
#
# Not part of make check: a full defconfig kernel takes long on 2 cores.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mode=${1:-build}
case $mode in build | --config) ;; *) die "usage: $0 [--config]" ;; esac
FRAGMENT=${GATEWAY_CONFIG:-$TOP/scripts/kconfig/gateway.config}
[ -f "$FRAGMENT" ] || die "no config fragment $FRAGMENT"
require_tools
WT=$CACHE_DIR/outgoing
BUILD=$CACHE_DIR/build-gateway
OUT=$CACHE_DIR/deb

# The series' tree: make patches regenerates it; it stays ours (the lock)
# until this script exits.
outgoing_lock
export XDT_OUTGOING_LOCKED=1
# XDT_SERIES_READY=1: the caller just ran make patches (make check's gate).
if [ "${XDT_SERIES_READY:-0}" != 1 ]; then
	log "applying the series (make patches)"
	PATCHES_OUT=$(mktemp -d) "$TOP/scripts/patches.sh" >"$CACHE_DIR/deb-patches.log" 2>&1 || {
		tail -n 20 "$CACHE_DIR/deb-patches.log" >&2
		die "make patches failed (log: $CACHE_DIR/deb-patches.log)"
	}
fi
[ -f "$WT/net/xfrm/direct_tx/Makefile" ] || die "$WT does not hold the series: run 'make patches'"
if [ "$mode" = build ]; then
	# The long build runs in a worktree of its own at the series' commit,
	# so that make patches and make check need not wait for it.
	commit=$(git -C "$WT" rev-parse HEAD)
	tree=$CACHE_DIR/deb-src
	if [ -e "$tree/.git" ]; then
		git -C "$tree" checkout -q -f --detach "$commit"
	else
		git -C "$WT" worktree add -q --detach "$tree" "$commit"
	fi
	WT=$tree
	exec {OUTGOING_LOCK_FD}>&-
fi

kmake() {
	make -C "$WT" O="$BUILD" "${KMAKE_FLAGS[@]}" "$@"
}

log "configuring $BUILD: x86_64 defconfig + $(basename "$FRAGMENT")"
mkdir -p "$BUILD"
kmake -s x86_64_defconfig >/dev/null
"$WT/scripts/kconfig/merge_config.sh" -m -O "$BUILD" "$BUILD/.config" "$FRAGMENT" >/dev/null
kmake -s olddefconfig >/dev/null
mapfile -t missing < <(config_missing "$BUILD/.config" "$FRAGMENT")
if [ "${#missing[@]}" -gt 0 ]; then
	printf '  %s\n' "${missing[@]}" >&2
	die "the gateway config lost options $(basename "$FRAGMENT") asks for (above)"
fi
log "gateway config resolves: every option of $(basename "$FRAGMENT") kept"
[ "$mode" = build ] || exit 0

log "building the packages (bindeb-pkg, $(nproc) jobs; long on few cores)"
kmake -s syncconfig >/dev/null
t0=$SECONDS
stamp=$(mktemp "$CACHE_DIR/deb-start.XXXXXX")
kmake -j"$(nproc)" LOCALVERSION= bindeb-pkg >"$BUILD/deb.log" 2>&1 ||
	{ tail -n 30 "$BUILD/deb.log" >&2; die "bindeb-pkg failed (log: $BUILD/deb.log)"; }
mkdir -p "$OUT"
# bindeb-pkg writes the packages next to the build folder.
find "$CACHE_DIR" -maxdepth 1 -name 'linux-*' -newer "$stamp" \
	\( -name '*.deb' -o -name '*.buildinfo' -o -name '*.changes' \) -exec mv -t "$OUT/" {} +
rm -f "$stamp"
ls "$OUT"/linux-image-*.deb >/dev/null 2>&1 || die "bindeb-pkg wrote no linux-image package"
log "packages in $OUT after $((SECONDS - t0)) s:"
ls -l "$OUT" >&2
