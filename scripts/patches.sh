#!/usr/bin/env bash
# `make patches`: the netdev series, from the project's sources.
#
# patches/<N-name>/ is one series, applied in the order of N:
#   0-cross-family [PATCH ipsec]        two packet offload fixes: the child
#                 route of cross-family tunnels, no software decryption
#                 of ESP for packet offload states
#   1-netdevsim   [PATCH net-next]      the netdevsim packet offload
#                 emulation, and the selftests that need nothing else
#   2-direct-tx   [RFC PATCH net-next]  the xfrm output hook, the Rust
#                 abstractions and module, the hook's selftests, the
#                 documentation
# Each holds its hand-kept kernel patches (0*.patch, exported from a
# kernel tree by scripts/export-patches.sh), series.conf (subject prefix,
# version), cover.txt (none for a single patch) and the messages of the
# patches made here from the
# repository: selftests from selftests/ (series 1: all but direct_tx*),
# the Rust module from rust/ (in tree under net/xfrm/direct_tx/),
# Documentation/.
#
# Output: patches/outgoing/<N-name>/vVERSION/ with a cover letter, To/Cc
# from get_maintainer.pl, checkpatch.log (and `make patches-check`'s
# bisect.log, kept while the patches are the same). The outgoing worktree
# of the cache keeps the result: one branch per series, the last checked
# out (branches outgoing/<series>).
#
#   PATCHES_OUT=  write the series there instead (make check uses a
#                 temporary folder, so a check never changes the repo)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SRC=$(readlink -f "$(kernel_src)")
[ -d "$SRC/.git" ] || die "no kernel tree at $SRC: run 'make kernel' first"
OUT_ROOT=${PATCHES_OUT:-$TOP/patches/outgoing}
WT=$CACHE_DIR/outgoing
XFRM_TESTS=tools/testing/selftests/net/xfrm
MODULE_RS=(xfrm_direct_tx.rs counters.rs decision.rs)

# The commits made here are the hand-kept patches' author's, whoever
# runs this: the output is the same everywhere (make check compares it).
ident=()
g() { git -C "$WT" "${ident[@]}" "$@"; }
set_ident() {
	local p name email
	p=$(hand_kept_patches | sed -n 1p)
	[ -n "$p" ] || die "no hand-kept patch in patches/*/"
	name=$(git -C "$WT" mailinfo /dev/null /dev/null <"$p" | sed -n 's/^Author: //p')
	email=$(git -C "$WT" mailinfo /dev/null /dev/null <"$p" | sed -n 's/^Email: //p')
	ident=(-c "user.name=$name" -c "user.email=$email")
}

# edit FILE ANCHOR TEXT [before]: TEXT inserted after (or before) the
# first ANCHOR line in the worktree's FILE.
edit() {
	python3 - "$WT/$1" "$2" "$3" "${4:-after}" <<'PY'
import sys
path, anchor, text, where = sys.argv[1:]
s = open(path).read()
if anchor not in s:
    sys.exit(f"{path}: anchor not found: {anchor!r}")
s = s.replace(anchor, anchor + text if where == "after" else text + anchor, 1)
open(path, "w").write(s)
PY
}

# apply_hand_kept DIR: the series' own kernel patches.
apply_hand_kept() {
	local p
	for p in "$1"/0*.patch; do
		[ -e "$p" ] || continue
		g am -q "$p" || { g am --abort; die "patch ${p#"$TOP"/} does not apply"; }
	done
}

# commit_selftests MESSAGE [FILTER]: selftests/net/xfrm/ as the series
# has it. FILTER=first: without the hook's tests (direct_tx*), and
# without what only they need in the Makefile and config fragment.
commit_selftests() {
	local d=$WT/$XFRM_TESTS
	rm -rf "$d"
	mkdir -p "$d"
	cp -a "$TOP/selftests/net/xfrm/." "$d/"
	# The project's own check of its C reference module stays out.
	rm -f "$d"/cref_*
	if [ "${2:-}" = first ]; then
		rm -f "$d"/direct_tx*
		sed -i '/direct_tx/d' "$d/Makefile"
		sed -i '/^CONFIG_\(RUST\|XFRM_DIRECT_TX\|KUNIT\|KUNIT_DEBUGFS\)=/d' "$d/config"
		! grep -rlE 'direct_tx|XDT_|CONFIG_RUST' "$d" ||
			die "the first series' selftests mention the hook (files above)"
	fi
	grep -q '^TARGETS += net/xfrm$' "$WT/tools/testing/selftests/Makefile" ||
		sed -i 's|^TARGETS += net/tcp_ao$|&\nTARGETS += net/xfrm|' \
			"$WT/tools/testing/selftests/Makefile"
	grep -q '^TARGETS += net/xfrm$' "$WT/tools/testing/selftests/Makefile" ||
		die "could not add net/xfrm to tools/testing/selftests/Makefile"
	g add -A -f tools/testing/selftests MAINTAINERS
	g commit -q -s -F "$1"
}

commit_module() {
	local f
	mkdir -p "$WT/net/xfrm/direct_tx"
	for f in "${MODULE_RS[@]}"; do cp "$TOP/rust/$f" "$WT/net/xfrm/direct_tx/$f"; done
	cat >"$WT/net/xfrm/direct_tx/Makefile" <<-'MK'
	# SPDX-License-Identifier: GPL-2.0

	obj-$(CONFIG_XFRM_DIRECT_TX) += xfrm_direct_tx.o
	MK
	edit net/xfrm/Kconfig "config XFRM_IPCOMP"$'\n' "config XFRM_DIRECT_TX
	tristate \"Direct output for IPsec packet offload (Rust)\"
	depends on RUST && XFRM_OFFLOAD
	help
	  Send forwarded tunnel mode packets of packet offload states
	  straight to the offload device, which writes the outer headers,
	  instead of resolving a neighbour for the inner destination.
	  Without it, IPsec packet offload gateways drop traffic to routed
	  networks.

	  See Documentation/networking/xfrm/xfrm_direct_tx.rst.

	  If unsure, say N.

" before
	edit net/xfrm/Makefile 'obj-$(CONFIG_XFRM_IPCOMP) += xfrm_ipcomp.o'$'\n' \
		'obj-$(CONFIG_XFRM_DIRECT_TX) += direct_tx/'$'\n'
	edit MAINTAINERS "XFS FILESYSTEM"$'\n' "XFRM PACKET OFFLOAD DIRECT OUTPUT [RUST]
L:	netdev@vger.kernel.org
L:	rust-for-linux@vger.kernel.org
S:	Maintained
F:	Documentation/networking/xfrm/xfrm_direct_tx.rst
F:	net/xfrm/direct_tx/
F:	$XFRM_TESTS/direct_tx*

" before
	g add -A -f net/xfrm MAINTAINERS
	g commit -q -s -F "$1"
}

commit_documentation() {
	cp "$TOP/Documentation/networking/xfrm/xfrm_direct_tx.rst" "$WT/Documentation/networking/xfrm/"
	sed -i 's|^   xfrm_device$|&\n   xfrm_direct_tx|' "$WT/Documentation/networking/xfrm/index.rst"
	grep -q '^   xfrm_direct_tx$' "$WT/Documentation/networking/xfrm/index.rst" ||
		die "could not add xfrm_direct_tx to Documentation/networking/xfrm/index.rst"
	cat >>"$WT/Documentation/networking/xfrm/xfrm_device.rst" <<-'RST'

	A hook that a module can register to take packet offload skbs before
	the kernel's own output handling, and the module using it, are
	described in Documentation/networking/xfrm/xfrm_direct_tx.rst.
	RST
	g add -A -f Documentation
	g commit -q -s -F "$1"
}

# get_maintainer PATCHES... -- OPTIONS: addresses, one per line. The base
# tree has no upstream history, so the authors of the commits a Fixes:
# tag names cannot be looked up (--no-fixes): series.conf lists them
# (FIXES_CC).
get_maintainer() {
	(cd "$WT" && ./scripts/get_maintainer.pl --no-git --no-git-fallback --no-fixes --no-rolestats \
		--no-multiline --separator $'\n' "$@") | grep -v '^$' | sort -u
}

# emit NAME FROM: the commits FROM..HEAD as series NAME, from the
# worktree as it is now (the files the series adds and its MAINTAINERS
# entries exist there, for checkpatch and get_maintainer.pl).
emit() {
	local name=$1 from=$2 dir=$TOP/patches/$1 out cover p rc=0 bisect_log=
	local SUBJECT_PREFIX VERSION FIXES_CC=() prefix to cc args=()
	# shellcheck source=/dev/null
	. "$dir/series.conf"
	out=$OUT_ROOT/$name/v$VERSION
	# "v1" is not written: a first posting has no version in its subject.
	prefix=$SUBJECT_PREFIX
	[ "$VERSION" = 1 ] || prefix+=" v$VERSION"
	[ ! -f "$out/bisect.log" ] || bisect_log=$(cat "$out/bisect.log")
	rm -rf "$out"
	mkdir -p "$out"
	g format-patch -q --no-signature --subject-prefix="$prefix" -o "$out" "$from..HEAD"
	mapfile -t to < <(get_maintainer --nol --nor "$out"/0*.patch)
	mapfile -t cc < <({ get_maintainer --nom "$out"/0*.patch; printf '%s\n' "${FIXES_CC[@]}"; } |
		grep -v '^$' | grep -vxF -f <(printf '%s\n' "${to[@]}") | sort -u)
	for p in "${to[@]}"; do args+=(--to="$p"); done
	for p in "${cc[@]}"; do args+=(--cc="$p"); done
	rm -f "$out"/0*.patch
	cover=$out/0000-cover-letter.patch
	[ -f "$dir/cover.txt" ] && args+=(--cover-letter)
	g format-patch -q --no-signature --subject-prefix="$prefix" \
		"${args[@]}" -o "$out" "$from..HEAD"
	[ ! -f "$dir/cover.txt" ] || python3 - "$cover" "$dir/cover.txt" <<-'PY'
	import sys
	cover, text = sys.argv[1], open(sys.argv[2]).read()
	subject, body = text.split("\n", 1)
	s = open(cover).read()
	s = s.replace("*** SUBJECT HERE ***", subject).replace("*** BLURB HERE ***", body.strip())
	open(cover, "w").write(s)
	PY
	# From the series' tree, where checkpatch looks commit ids up; the
	# log names each patch by its file name, wherever the series is.
	for p in "$out"/0*.patch; do
		[ "$p" != "$cover" ] || continue
		echo "== $(basename "$p")"
		(cd "$WT" && checkpatch_patch "$WT" "$p") || echo "checkpatch: FAILED"
	done 2>&1 | sed "s|$out/||" >"$out/checkpatch.log"
	! grep -q '^checkpatch: FAILED$' "$out/checkpatch.log" || rc=1
	grep -E '^(total|== )' "$out/checkpatch.log" | sed "s|^|$name: |" >&2
	[ "$rc" -eq 0 ] || die "checkpatch found problems: $out/checkpatch.log"
	if [ -n "$bisect_log" ] &&
		[ "$(sed -n "s/^# series digest $name: //p" <<<"$bisect_log")" = "$(series_digest "$out")" ]; then
		echo "$bisect_log" >"$out/bisect.log"
	fi
	g branch -q -f "outgoing/$name" HEAD
	log "$name: $out ($(ls "$out"/0*.patch | wc -l) files, To ${#to[@]}, Cc ${#cc[@]})"
}

outgoing_lock
log "preparing $WT at base"
git -C "$SRC" worktree prune
[ -d "$WT/.git" ] || [ -f "$WT/.git" ] || git -C "$SRC" worktree add -q --detach "$WT" base
g am --abort >/dev/null 2>&1 || true
g checkout -q -f --detach base
g clean -fdxq
set_ident

S0=$TOP/patches/0-cross-family S1=$TOP/patches/1-netdevsim S2=$TOP/patches/2-direct-tx
apply_hand_kept "$S0"
emit 0-cross-family base

apply_hand_kept "$S1"
# The selftests' folder goes to the IPsec entry, with the ipsec.c test.
edit MAINTAINERS "F:	tools/testing/selftests/net/ipsec.c"$'\n' "F:	$XFRM_TESTS/"$'\n'
commit_selftests "$S1/selftests.txt" first
emit 1-netdevsim outgoing/0-cross-family

apply_hand_kept "$S2"
commit_module "$S2/rust-module.txt"
commit_selftests "$S2/selftests.txt"
commit_documentation "$S2/documentation.txt"
emit 2-direct-tx outgoing/1-netdevsim
