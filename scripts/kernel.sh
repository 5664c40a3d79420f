#!/usr/bin/env bash
# `make kernel`: base tree -> git tree in the cache -> patches/ applied in
# series order -> the project's in-tree files installed -> configured from
# the committed fragments -> built with ccache.
#
#   KDIR=/path/to/linux   use this kernel source tree as the base instead of
#                         Debian's linux-source-7.3
#   FLAVOUR=vm|debug      which config (and build folder) to use
set -euo pipefail
. "$(dirname "$0")/lib.sh"

FLAVOUR=${FLAVOUR:-vm}
DEBIAN_TARBALL=${DEBIAN_TARBALL:-/usr/src/linux-source-7.3.tar.xz}

# Where the base comes from, and the git tree made of it.
base_id() {
	if [ -n "${KDIR:-}" ]; then
		echo "kdir-$(realpath "$KDIR" | sha256sum | cut -c1-12)"
	else
		echo "debian-$(basename "$DEBIAN_TARBALL" .tar.xz)"
	fi
}

check_kdir() {
	local d=$1
	[ -d "$d" ] || die "KDIR=$d: no such directory"
	grep -qs '^VERSION = ' "$d/Makefile" && [ -f "$d/Kbuild" ] && [ -d "$d/net/xfrm" ] ||
		die "KDIR=$d is not a Linux kernel source tree (no top Makefile with VERSION, Kbuild or net/xfrm/)"
	[ -f "$d/rust/bindings/bindings_helper.h" ] ||
		die "KDIR=$d has no Rust support (rust/bindings/bindings_helper.h missing); 7.3 or a tree with its APIs is needed"
}

# Fill $1 (a new folder) with the base sources.
fetch_base() {
	local dst=$1
	if [ -n "${KDIR:-}" ]; then
		log "copying base from KDIR=$KDIR"
		rsync -a --exclude=.git --exclude='*.o' --exclude='*.ko' --exclude='*.cmd' \
			"$KDIR/" "$dst/"
		# A configured in-place tree refuses O= builds.
		[ ! -f "$dst/.config" ] || make -s -C "$dst" mrproper
	else
		[ -f "$DEBIAN_TARBALL" ] ||
			die "$DEBIAN_TARBALL not found: run 'make deps' (installs linux-source-7.3) or set KDIR="
		log "extracting $DEBIAN_TARBALL"
		tar -C "$dst" --strip-components=1 -xf "$DEBIAN_TARBALL"
	fi
}

prepare_base() {
	local id stamp_src tmp
	[ -z "${KDIR:-}" ] || check_kdir "$KDIR"
	id=$(base_id)
	SRC=$CACHE_DIR/src-$id
	if [ -n "${KDIR:-}" ]; then
		stamp_src=$(realpath "$KDIR")
	else
		stamp_src=$(stat -c '%s %Y' "$DEBIAN_TARBALL" 2>/dev/null || echo missing)
	fi
	if [ -d "$SRC/.git" ] && [ "$(cat "$SRC/.git/xdt-base" 2>/dev/null)" = "$stamp_src" ] &&
	   git -C "$SRC" rev-parse -q --verify refs/tags/base >/dev/null; then
		return 0
	fi
	mkdir -p "$CACHE_DIR"
	tmp=$(mktemp -d "$CACHE_DIR/.src.XXXXXX")
	fetch_base "$tmp"
	log "making a git tree of the base (once)"
	git -C "$tmp" init -q -b series
	git -C "$tmp" config user.name "xfrm-direct-tx"
	git -C "$tmp" config user.email "xfrm-direct-tx@localhost"
	git -C "$tmp" config gc.auto 0
	git -C "$tmp" add -A -f  # Debian's tarball ignores "/*"
	git -C "$tmp" commit -q -m "base: $(make -s -C "$tmp" kernelversion) ($id)"
	git -C "$tmp" tag base
	echo "$stamp_src" >"$tmp/.git/xdt-base"
	rm -rf "$SRC"
	mv "$tmp" "$SRC"
}

# Build the series as commits on `base` without touching the work tree
# (scripts/series.py: a scratch index), then check it out: git only
# rewrites the files that differ from what is checked out, so a changed
# patch or source file rebuilds what it touches and nothing else.
apply_series() {
	local hash dir commit
	hash=$(series_state)
	if [ "$(cat "$SRC/.git/xdt-series" 2>/dev/null)" = "$hash" ] &&
	   [ -z "$(git -C "$SRC" status --porcelain --untracked-files=no)" ]; then
		return 0
	fi
	rm -f "$SRC/.git/xdt-series"
	commit=base
	for dir in $(series_dirs); do
		commit=$("$TOP/scripts/series.py" apply "$SRC" "$commit" "$dir") ||
			die "series $(basename "$dir") does not apply to $(git -C "$SRC" log -1 --format=%s base) (above)"
	done
	git -C "$SRC" checkout -q -f -B series "$commit"
	echo "$hash" >"$SRC/.git/xdt-series"
	log "applied $(hand_kept_patches | wc -l) patches"
}

# The project's own selftest, not in the series (cref_hook.sh), beside
# the series' ones. rsync -c leaves unchanged files (and their mtimes)
# alone, so nothing rebuilds needlessly.
install_tree_files() {
	rsync -rc "$TOP/selftests/net/xfrm/" "$SRC/tools/testing/selftests/net/xfrm/"
}

# The selftests' fragment asks for the in-tree module (XFRM_DIRECT_TX),
# which only the generated series has (patches-check builds it); this tree
# carries the hand-kept patches and the module is built out of tree from
# rust/ (module.sh), so that one line is left out here.
fragments() {
	local tests=$CACHE_DIR/selftests-${FLAVOUR}.config
	grep -v '^CONFIG_XFRM_DIRECT_TX=' "$TOP/selftests/net/xfrm/config" >"$tests"
	echo "$TOP/scripts/kconfig/vm.config"
	echo "$tests"
	[ "$FLAVOUR" != debug ] || echo "$TOP/scripts/kconfig/debug.config"
}

kmake() {
	make -C "$SRC" O="$BUILD" "${KMAKE_FLAGS[@]}" "$@"
}

# Every option a fragment sets must survive olddefconfig: a silently
# dropped CONFIG_RUST or CONFIG_XFRM_OFFLOAD would make every test moot.
check_config() {
	local missing=()
	mapfile -t missing < <(config_missing "$BUILD/.config" $(fragments))
	if [ "${#missing[@]}" -gt 0 ]; then
		printf '  %s\n' "${missing[@]}" >&2
		if printf '%s\n' "${missing[@]}" | grep -q '^CONFIG_RUST='; then
			kmake rustavailable >&2 || true
		fi
		if printf '%s\n' "${missing[@]}" | grep -q '^CONFIG_RUST_INLINE_HELPERS='; then
			printf '  CONFIG_RUST_INLINE_HELPERS needs clang with the LLVM major of rustc (%s; clang: %s)\n' \
				"$(rustc -vV | sed -n 's/^LLVM version: //p')" \
				"$("clang$LLVM_SUFFIX" --version | head -n1)" >&2
		fi
		die "the config fragments ask for options the kernel did not take (above)"
	fi
}

configure() {
	local hash
	hash=$( (cat $(fragments); echo "$SRC") | sha256sum | cut -c1-16)
	if [ -f "$BUILD/.config" ] && [ "$(cat "$BUILD/.xdt-config" 2>/dev/null)" = "$hash" ]; then
		return 0
	fi
	log "configuring $BUILD (tinyconfig + $(fragments | xargs -n1 basename | tr '\n' ' '))"
	mkdir -p "$BUILD"
	kmake -s tinyconfig >/dev/null
	"$SRC/scripts/kconfig/merge_config.sh" -m -O "$BUILD" "$BUILD/.config" $(fragments) >/dev/null
	kmake -s olddefconfig >/dev/null
	check_config
	echo "$hash" >"$BUILD/.xdt-config"
}

tree_state() {
	{
		git -C "$SRC" rev-parse HEAD
		git -C "$SRC" status --porcelain --untracked-files=no
		(cd "$TOP" && find selftests -type f -print0 | sort -z | xargs -0 sha256sum)
		cat "$BUILD/.config"
		echo "${KMAKE_FLAGS[*]}"
	} | sha256sum | cut -c1-16
}

build() {
	local state
	state=$(tree_state)
	if [ -f "$BUILD/arch/x86/boot/bzImage" ] && [ "$(cat "$BUILD/.xdt-built" 2>/dev/null)" = "$state" ]; then
		log "kernel up to date: $BUILD"
		return 0
	fi
	rm -f "$BUILD/.xdt-built"
	log "building $(make -s -C "$SRC" kernelversion) in $BUILD (ccache: $CCACHE_DIR)"
	kmake -j"$(($(nproc) + 1))" all
	echo "$state" >"$BUILD/.xdt-built"
}

main() {
	require_tools
	prepare_base
	BUILD=$CACHE_DIR/build-$(base_id)-$FLAVOUR
	apply_series
	install_tree_files
	configure
	build
	ln -sfn "$SRC" "$CACHE_DIR/src"
	ln -sfn "$BUILD" "$CACHE_DIR/build-$FLAVOUR"
}

main "$@"
