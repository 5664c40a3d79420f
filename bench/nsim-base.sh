#!/usr/bin/env bash
# Builds the netdevsim module of another revision of this repository's
# netdevsim series (patches/1-netdevsim at BENCH_NSIM_BASE, default
# 5f693dc: the emulation before issue 15's review) against the current
# kernel build, for bench/'s emulation part; prints the module's path.
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
rev=${BENCH_NSIM_BASE:-5f693dc}
SRC=$(kernel_src) BUILD=$(kernel_build)
[ -f "$BUILD/Module.symvers" ] || die "no kernel build at $BUILD: run 'make kernel'"
git -C "$SRC" rev-parse -q --verify refs/tags/base >/dev/null ||
	die "$SRC has no 'base' tag: run 'make kernel'"
sha=$(git -C "$TOP" rev-parse --short "$rev^{commit}" 2>/dev/null) ||
	die "BENCH_NSIM_BASE=$rev is not a commit of $TOP"
dir=$CACHE_DIR/nsim-base-$sha
patch=$(git -C "$TOP" ls-tree --name-only "$sha" patches/1-netdevsim/ | grep -m1 '/0001-.*\.patch$') ||
	die "$sha has no patches/1-netdevsim/0001-*.patch"
rm -rf "$dir"
mkdir -p "$dir"
# The base's netdevsim, with that revision's patch.
git -C "$SRC" archive base drivers/net/netdevsim | tar -x -C "$dir"
git -C "$TOP" show "$sha:$patch" | git -C "$dir" apply --include='drivers/net/netdevsim/*' - ||
	die "$patch of $sha does not apply to the base's netdevsim"
log "building netdevsim of $sha against $BUILD"
make -s -C "$BUILD" "${KMAKE_FLAGS[@]}" M="$dir/drivers/net/netdevsim" modules >&2 ||
	die "building netdevsim of $sha failed"
echo "$dir/drivers/net/netdevsim/netdevsim.ko"
