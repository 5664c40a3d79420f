#!/usr/bin/env bash
# Boot the kernel that `make kernel` built and run one command in it.
#
#   scripts/vm.sh [-t SECONDS] [-o OUTDIR] -- COMMAND [ARGS...]
#
# A single COMMAND argument is shell code (`-- 'a; b'`); with ARGS it is run
# as that command with those arguments.
#
# The guest shares the host's root (read-only) through virtme-ng, with the
# repository, the kernel tree and OUTDIR writable. KVM is probed once per
# host boot with a short timeout; nested KVM hangs on these machines, so the
# fallback is TCG. The run fails (non-zero) when:
#   - the guest command fails (its exit status is returned),
#   - the time limit hits (exit 124),
#   - the console shows an oops, panic, BUG, WARNING, KASAN, kmemleak or
#     refcount report (exit 125; the excerpt is printed).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TIMEOUT=${VM_TIMEOUT:-1800}
OUTDIR=
while [ $# -gt 0 ]; do
	case "$1" in
	-t) TIMEOUT=$2; shift 2 ;;
	-o) OUTDIR=$2; shift 2 ;;
	--) shift; break ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || die "usage: $0 [-t SECONDS] [-o OUTDIR] -- COMMAND..."

# VM_KERNEL=BUILD_DIR, VM_SRC=TREE: another kernel build and its tree
# (make patches-check boots the first series alone this way).
# VM_PACKAGE=DIR: a packaged kernel instead, a linux-image .deb unpacked
# there (dpkg -x): its boot/vmlinuz-* with its own modules, on VM_ROOT
# (make deb checks its packages this way).
BUILD=${VM_KERNEL:-$(kernel_build)}
SRC=${VM_SRC:-$(kernel_src)}
if [ -n "${VM_PACKAGE:-}" ]; then
	[ -n "${VM_ROOT:-}" ] || die "VM_PACKAGE needs VM_ROOT (scripts/guest-root.sh)"
	IMAGE=$(find "$VM_PACKAGE/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | sort | sed -n 1p)
	[ -n "$IMAGE" ] || die "no boot/vmlinuz-* in VM_PACKAGE=$VM_PACKAGE"
	PACKAGE_MODULES=$VM_PACKAGE/usr/lib/modules
	[ -d "$PACKAGE_MODULES" ] || PACKAGE_MODULES=$VM_PACKAGE/lib/modules
	[ -d "$PACKAGE_MODULES" ] || die "no lib/modules in VM_PACKAGE=$VM_PACKAGE"
else
	[ -f "$BUILD/arch/x86/boot/bzImage" ] || die "no kernel in $BUILD: run 'make kernel' first"
	IMAGE=$(readlink -f "$BUILD")
fi
command -v vng >/dev/null || die "'vng' (virtme-ng) not found: run 'make deps'"
command -v qemu-system-x86_64 >/dev/null || die "'qemu-system-x86_64' not found: run 'make deps'"

OUTDIR=${OUTDIR:-$(mktemp -d "${TMPDIR:-/tmp}/xdt-vm.XXXXXX")}
mkdir -p "$OUTDIR"
OUTDIR=$(realpath "$OUTDIR")
CONSOLE=$OUTDIR/console.log

# no5lvl: QEMU's TCG CPU offers LA57, and in the 7.3 base (as in 6.12)
# pgtable_l5_enabled() outside early boot code is
# cpu_feature_enabled(X86_FEATURE_LA57) (pgtable_64_types.h), while
# identify_cpu() memsets c->x86_capability before generic_identify() ->
# get_cpu_cap() sets the bit again (cpu/common.c). An interrupt in that
# window takes the kernel's 5-level addresses for wild ones: KASAN reported
# it once in four debug boots on 6.12 (do_raw_spin_lock from
# handle_edge_irq, under identify_cpu). The code is unchanged in 7.3, so
# guests run with 4-level paging.
VNG=(vng --run "$IMAGE" --user root --cpus "${VM_CPUS:-2}" --memory "${VM_MEMORY:-3G}"
	--append no5lvl --verbose)
# VM_ROOT=DIR (scripts/guest-root.sh): the guest boots on that root instead
# of the host's. It sees the kernel's modules (installed for it into the
# cache folder), the repository, the kernel tree, the built modules and
# OUTDIR at their host paths; their mount points are made in the root.
if [ -n "${VM_ROOT:-}" ]; then
	[ -x "$VM_ROOT/usr/lib/ipsec/charon" ] || die "VM_ROOT=$VM_ROOT is not a guest root: see scripts/guest-root.sh"
	if [ -n "${VM_PACKAGE:-}" ]; then
		mods=$PACKAGE_MODULES
	else
		mods=$CACHE_DIR/guest-modules-$(basename "$(readlink -f "$BUILD")")
		rm -rf "$mods"
		make -s -C "$BUILD" "${KMAKE_FLAGS[@]}" INSTALL_MOD_PATH="$mods" modules_install ||
			die "installing the kernel's modules for the guest root failed"
		mods=$mods/lib/modules
	fi
	VNG+=(--root "$VM_ROOT" --rodir "/usr/lib/modules=$mods")
	for dir in $(readlink -f "$TOP" "$(module_dir)" "$PWD" | sort -u); do
		mkdir -p "$VM_ROOT/$dir"
		VNG+=(--rodir "$dir=$dir")
	done
	for dir in "$OUTDIR" "$(readlink -f "$SRC")"; do
		mkdir -p "$VM_ROOT/$dir"
		VNG+=(--rwdir "$dir=$dir")
	done
	# Callers name the kernel tree by its symlink in the cache folder.
	if [ -L "$SRC" ]; then
		mkdir -p "$VM_ROOT/$(dirname "$SRC")"
		ln -sfn "$(readlink -f "$SRC")" "$VM_ROOT/$SRC"
	fi
else
	VNG+=(--rwdir "$OUTDIR" --rwdir "$(readlink -f "$SRC")")
fi
# VM_ICOUNT=1: the guest clock counts the instructions the guest retires
# (one nanosecond each, no sleeping ahead: deterministic, and TCG only),
# for bench/'s instruction counts.
[ "${VM_ICOUNT:-0}" = 0 ] || VNG+=(--qemu-opts="-icount shift=0,sleep=off")

accel_args() {
	local probe=$CACHE_DIR/kvm-probe.$(cat /proc/sys/kernel/random/boot_id)
	[ "${VM_ICOUNT:-0}" = 0 ] || { echo --disable-kvm; return; }
	if [ -n "${VM_ACCEL:-}" ]; then
		[ "$VM_ACCEL" = kvm ] || echo --disable-kvm
		return
	fi
	if [ ! -f "$probe" ]; then
		if [ -w /dev/kvm ] && timeout -k 5 45 "${VNG[@]}" --exec true >/dev/null 2>&1; then
			echo kvm >"$probe"
		else
			echo tcg >"$probe"
		fi
		log "KVM probe: $(cat "$probe")"
	fi
	[ "$(cat "$probe")" = kvm ] || echo --disable-kvm
}

# Console lines that fail the run whatever the command's status.
SPLAT='(Kernel panic|Oops[: ]|\bBUG[: ]|WARNING: |general protection fault|KASAN:|UBSAN:|kmemleak: [0-9]+ new suspected|unreferenced object|refcount_t: |ref_tracker: |Call Trace:|rcu: INFO|soft lockup|hung_task|possible circular locking)'

mapfile -t ACCEL < <(accel_args)
printf '%s\n' "$*" >"$OUTDIR/cmd"
# The guest writes its exit status itself: that tells a command that
# failed from a guest that never got to run it.
# The kernel log is saved too: the console may be quieter than dmesg.
# With --verbose the guest's stdout is the console: the command writes to
# out.log instead, which is shown here as it grows.
# One argument is shell code; several are a command and its arguments.
if [ $# -eq 1 ]; then
	CMD=$1
else
	CMD=$(printf '%q ' "$@")
fi
# The command goes to the guest as a script in OUTDIR: vng would pass it on
# the kernel command line, base64-encoded, and x86's 2048 bytes are soon
# full (the kernel then loses root= and panics: "Unable to mount root fs").
GUEST_SH=$OUTDIR/guest.sh
{
	printf 'cd %q || exit\n' "$PWD"
	printf '( %s\n) > %q 2>&1\n' "$CMD" "$OUTDIR/out.log"
	printf 'rc=$?\n'
	printf 'dmesg > %q\n' "$OUTDIR/dmesg.log"
	printf 'echo $rc > %q\n' "$OUTDIR/rc"
} >"$GUEST_SH"
GUEST="bash $(printf %q "$GUEST_SH")"
rm -f "$OUTDIR/rc" "$OUTDIR/dmesg.log"
: >"$OUTDIR/out.log"
log "booting $(basename "$IMAGE") (${ACCEL[*]:-kvm}, limit ${TIMEOUT}s)"
tail -n +1 -F "$OUTDIR/out.log" 2>/dev/null &
tail_pid=$!
# An interrupted run must not leave the follower behind: it would keep
# the caller's descriptors, the outgoing worktree's lock among them.
trap 'kill "$tail_pid" 2>/dev/null || true' EXIT
set +e
timeout -k 15 "$TIMEOUT" "${VNG[@]}" "${ACCEL[@]}" --exec "$GUEST" >"$CONSOLE" 2>&1 </dev/null
vng_rc=$?
set -e
sleep 0.5
kill "$tail_pid" 2>/dev/null
wait "$tail_pid" 2>/dev/null || true

for log in "$CONSOLE" "$OUTDIR/dmesg.log"; do
	[ -f "$log" ] && grep -Eq "$SPLAT" "$log" && break
	log=
done
if [ -n "$log" ]; then
	echo "---- kernel report in the guest log ($log) ----" >&2
	grep -E -B2 -A25 "$SPLAT" "$log" | head -n 80 >&2
	echo "----" >&2
	echo "error: the guest kernel reported a problem (see above)" >&2
	exit 125
fi
if [ "$vng_rc" -eq 124 ] || [ "$vng_rc" -eq 137 ]; then
	tail -n 20 "$CONSOLE" >&2
	printf 'error: guest command timed out after %ss: %s\n' "$TIMEOUT" "$*" >&2
	exit 124
fi
if [ ! -f "$OUTDIR/rc" ]; then
	tail -n 40 "$CONSOLE" >&2
	die "the guest did not run the command (vng exited $vng_rc; console: $CONSOLE)"
fi
exit "$(cat "$OUTDIR/rc")"
