#!/usr/bin/env bash
# `make module`: build the out-of-tree modules (top-level Kbuild) against the
# kernel `make kernel` built. CLIPPY=1 and W=1 are passed through; any
# warning from the project's own sources fails the build.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BUILD=$(kernel_build)
[ -f "$BUILD/Module.symvers" ] || die "no kernel build in $BUILD: run 'make kernel' first"

extra=()
[ -z "${CLIPPY:-}" ] || extra+=(CLIPPY="$CLIPPY")
[ -z "${W:-}" ] || extra+=(W="$W")
MOD=$(module_dir)
mkdir -p "$MOD"
# Sources only; -c keeps unchanged files' times, so rebuilds stay incremental.
rsync -rtc --delete --exclude=.git --exclude=target --exclude='*.o' --exclude='*.ko' \
	--exclude='*.mod*' --exclude='.*.cmd' --exclude='*.rmeta' --exclude='*.d' \
	--exclude=modules.order --exclude=Module.symvers \
	"$TOP/Kbuild" "$TOP/rust" "$TOP/bench" "$MOD/"
log "building modules of $TOP in $MOD against $(readlink -f "$BUILD") ${extra[*]}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
# rust/Kbuild is the in-tree Makefile of net/xfrm/direct_tx/ too (the
# series' files manifest): here the option it tests is set by hand.
make -C "$BUILD" M="$MOD" "${KMAKE_FLAGS[@]}" "${extra[@]}" CONFIG_XFRM_DIRECT_TX=m \
	-j"$(nproc)" modules 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] || die "module build failed"
if grep -E '(warning|error)(\[[^]]*\])?:' "$out" | grep -v '^make' >/dev/null; then
	die "the module build printed warnings (above)"
fi
ls -l "$(module_ko xfrm_direct_tx)" "$(module_ko xfrm_direct_tx_cref)" \
	"$(module_ko xfrm_direct_tx_micro)" >&2
