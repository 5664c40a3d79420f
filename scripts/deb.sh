#!/usr/bin/env bash
# `make deb`: Debian kernel packages (bindeb-pkg) for the two gateways of
# the report: x86_64 defconfig plus scripts/kconfig/gateway.config (mlx5
# with IPsec packet offload and eswitch, xfrm offload, Rust, the module
# as =m), built from the series of `make patches`, release 7.3.4-xdt so
# that it installs beside the distribution's kernel.
#
#   scripts/deb.sh            the packages, into $CACHE_DIR/deb/, then
#                             --boot
#   scripts/deb.sh --config   only resolve the config and check that
#                             olddefconfig kept every option the fragment
#                             asks for (the gate in make check)
#   scripts/deb.sh --boot     only check the packages: list what the image
#                             package holds (dpkg -c), unpack it, boot its
#                             kernel on the guest root with its own modules,
#                             load mlx5_core and the module, and run the
#                             emulation's selftest from the series' tree
#   GATEWAY_CONFIG=FILE       another fragment instead of gateway.config
#
# Not part of make check: a full defconfig kernel takes long on 2 cores.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mode=${1:-build}
case $mode in build | --config | --boot) ;; *) die "usage: $0 [--config | --boot]" ;; esac
FRAGMENT=${GATEWAY_CONFIG:-$TOP/scripts/kconfig/gateway.config}
[ -f "$FRAGMENT" ] || die "no config fragment $FRAGMENT"
require_tools
WT=$CACHE_DIR/outgoing
BUILD=$CACHE_DIR/build-gateway
OUT=$CACHE_DIR/deb

# boot_packages: the checks of --boot, on the packages in $OUT.
boot_packages() {
	local image unpacked root out version
	image=$(find "$OUT" -maxdepth 1 -name 'linux-image-*.deb' ! -name '*-dbg_*' | sort | sed -n 1p)
	[ -n "$image" ] || die "no linux-image package in $OUT: run 'make deb'"
	[ -f "$CACHE_DIR/deb-src/Makefile" ] || die "no series tree at $CACHE_DIR/deb-src: run 'make deb'"
	log "$(basename "$image"): $(du -h "$image" | cut -f1), what it must hold (dpkg -c):"
	dpkg -c "$image" >"$OUT/contents.txt"
	local want
	for want in '/boot/vmlinuz-' '/mlx5/core/mlx5_core.ko' '/net/xfrm/direct_tx/xfrm_direct_tx.ko' \
		'/drivers/net/netdevsim/netdevsim.ko'; do
		grep -F "$want" "$OUT/contents.txt" | awk '{ print "  " $3, $6 }' >&2
		grep -qF "$want" "$OUT/contents.txt" || die "$(basename "$image") holds no *$want*"
	done
	unpacked=$CACHE_DIR/deb-unpacked
	rm -rf "$unpacked"
	dpkg -x "$image" "$unpacked"
	version=$(find "$unpacked/boot" -name 'vmlinuz-*' | sed -n 's|.*/vmlinuz-||p' | sed -n 1p)
	root=$("$TOP/scripts/guest-root.sh") || die "no guest root (scripts/guest-root.sh)"
	out=$CACHE_DIR/deb-boot
	rm -rf "$out"
	mkdir -p "$out/tmp"
	log "booting the packaged kernel $version on the guest root"
	# Without overlayfs (not in defconfig, not needed on a gateway),
	# virtme-ng leaves the guest's /tmp read-only: temporary files go to
	# the writable output folder.
	VM_ROOT=$root VM_PACKAGE=$unpacked VM_SRC=$CACHE_DIR/deb-src "$TOP/scripts/vm.sh" -t 1800 -o "$out" -- "
		set -e
		export TMPDIR=$out/tmp
		[ \"\$(uname -r)\" = $version ] || { echo \"running \$(uname -r), not $version\"; exit 1; }
		echo \"# uname -r: \$(uname -r)\"
		modprobe mlx5_core
		modprobe xfrm_direct_tx
		lsmod | grep -E '^(mlx5_core|xfrm_direct_tx) ' | sed 's/^/# loaded: /'
		make -s -C $CACHE_DIR/deb-src/tools/testing/selftests TARGETS=net/xfrm \
			TEST_PROGS=nsim_packet_offload.sh run_tests" ||
		die "the packaged kernel failed its boot check (log: $out/out.log, console: $out/console.log)"
	grep -q '^# not ok ' "$out/out.log" && die "a selftest failed on the packaged kernel ($out/out.log)"
	log "the packaged kernel $version boots, loads mlx5_core and xfrm_direct_tx," \
		"and passes nsim_packet_offload.sh ($(grep -c '^# ok ' "$out/out.log") cases)"
}
if [ "$mode" = --boot ]; then
	boot_packages
	exit 0
fi

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
rm -f "$OUT"/linux-*
# bindeb-pkg writes the packages next to the build folder.
find "$CACHE_DIR" -maxdepth 1 -name 'linux-*' -newer "$stamp" \
	\( -name '*.deb' -o -name '*.buildinfo' -o -name '*.changes' \) -exec mv -t "$OUT/" {} +
rm -f "$stamp"
ls "$OUT"/linux-image-*.deb >/dev/null 2>&1 || die "bindeb-pkg wrote no linux-image package"
log "packages in $OUT after $((SECONDS - t0)) s:"
ls -l "$OUT" >&2
boot_packages
