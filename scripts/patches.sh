#!/usr/bin/env bash
# `make patches`: the netdev series, from the project's sources.
#
# patches/[0-9]*.patch (the hand-kept part: hook, bindings, netdevsim) is
# applied to the base, then the Rust module (in tree under
# net/xfrm/direct_tx/ with its Kconfig, Makefile and MAINTAINERS entry),
# the selftests and the documentation are committed from rust/,
# selftests/ and Documentation/, with the messages in patches/messages/.
# The C reference module is not part of it. Output: patches/outgoing/vN/
# with a cover letter and checkpatch.log (and `make patches-check`'s
# bisect.log, kept while the patches are the same).
#
#   VERSION=N     series version (default 1)
#   PATCHES_OUT=  write the series there instead (make check uses a
#                 temporary folder, so a check never changes the repo)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VERSION=${VERSION:-1}
SRC=$(readlink -f "$(kernel_src)")
[ -d "$SRC/.git" ] || die "no kernel tree at $SRC: run 'make kernel' first"
OUT=${PATCHES_OUT:-$TOP/patches/outgoing/v$VERSION}
WT=$CACHE_DIR/outgoing
MSG=$TOP/patches/messages
MODULE_RS=(xfrm_direct_tx.rs counters.rs decision.rs)

ident=(-c "user.name=$(git config user.name)" -c "user.email=$(git config user.email)")
g() { git -C "$WT" "${ident[@]}" "$@"; }

outgoing_lock
log "preparing $WT at base"
git -C "$SRC" worktree prune
[ -d "$WT/.git" ] || [ -f "$WT/.git" ] || git -C "$SRC" worktree add -q --detach "$WT" base
g am --abort >/dev/null 2>&1 || true
g checkout -q -f --detach base
g clean -fdxq

for p in "$TOP"/patches/[0-9]*.patch; do
	g am -q "$p" || { g am --abort; die "patch ${p#"$TOP"/} does not apply to the base"; }
done

# The Rust module, in tree.
mkdir -p "$WT/net/xfrm/direct_tx"
for f in "${MODULE_RS[@]}"; do cp "$TOP/rust/$f" "$WT/net/xfrm/direct_tx/$f"; done
cat >"$WT/net/xfrm/direct_tx/Makefile" <<'MK'
# SPDX-License-Identifier: GPL-2.0

obj-$(CONFIG_XFRM_DIRECT_TX) += xfrm_direct_tx.o
MK
python3 - "$WT" <<'PY'
import sys
wt = sys.argv[1]

def edit(path, anchor, text, after=True):
    p = f"{wt}/{path}"
    s = open(p).read()
    if anchor not in s:
        sys.exit(f"{path}: anchor not found: {anchor!r}")
    s = s.replace(anchor, anchor + text if after else text + anchor, 1)
    open(p, "w").write(s)

edit("net/xfrm/Kconfig", "config XFRM_IPCOMP\n", """config XFRM_DIRECT_TX
	tristate "Direct output for IPsec packet offload (Rust)"
	depends on RUST && XFRM_OFFLOAD
	help
	  Send forwarded tunnel mode packets of packet offload states
	  straight to the offload device, which writes the outer headers,
	  instead of resolving a neighbour for the inner destination.
	  Without it, IPsec packet offload gateways drop traffic to routed
	  networks.

	  See Documentation/networking/xfrm/xfrm_direct_tx.rst.

	  If unsure, say N.

""", after=False)
edit("net/xfrm/Makefile", "obj-$(CONFIG_XFRM_IPCOMP) += xfrm_ipcomp.o\n",
     "obj-$(CONFIG_XFRM_DIRECT_TX) += direct_tx/\n")
edit("MAINTAINERS", "XFS FILESYSTEM\n", """XFRM PACKET OFFLOAD DIRECT OUTPUT [RUST]
L:	netdev@vger.kernel.org
L:	rust-for-linux@vger.kernel.org
S:	Maintained
F:	Documentation/networking/xfrm/xfrm_direct_tx.rst
F:	net/xfrm/direct_tx/
F:	tools/testing/selftests/net/xfrm/

""", after=False)
PY
g add -A -f net/xfrm MAINTAINERS
g commit -q -s -F "$MSG/rust-module.txt"

# Selftests.
mkdir -p "$WT/tools/testing/selftests/net/xfrm"
cp -a "$TOP/selftests/net/xfrm/." "$WT/tools/testing/selftests/net/xfrm/"
sed -i 's|^TARGETS += net/tcp_ao$|&\nTARGETS += net/xfrm|' "$WT/tools/testing/selftests/Makefile"
grep -q '^TARGETS += net/xfrm$' "$WT/tools/testing/selftests/Makefile" ||
	die "could not add net/xfrm to tools/testing/selftests/Makefile"
g add -A -f tools/testing/selftests
g commit -q -s -F "$MSG/selftests.txt"

# Documentation.
cp "$TOP/Documentation/networking/xfrm/xfrm_direct_tx.rst" "$WT/Documentation/networking/xfrm/"
sed -i 's|^   xfrm_device$|&\n   xfrm_direct_tx|' "$WT/Documentation/networking/xfrm/index.rst"
grep -q '^   xfrm_direct_tx$' "$WT/Documentation/networking/xfrm/index.rst" ||
	die "could not add xfrm_direct_tx to Documentation/networking/xfrm/index.rst"
cat >>"$WT/Documentation/networking/xfrm/xfrm_device.rst" <<'RST'

A hook that a module can register to take packet offload skbs before
the kernel's own output handling, and the module using it, are
described in Documentation/networking/xfrm/xfrm_direct_tx.rst.
RST
g add -A -f Documentation
g commit -q -s -F "$MSG/documentation.txt"

# The bisect log of `make patches-check` stays while the patches it
# checked do.
bisect_log=
if [ -f "$OUT/bisect.log" ]; then
	bisect_log=$(cat "$OUT/bisect.log")
fi
rm -rf "$OUT"
mkdir -p "$OUT"
g format-patch -q --cover-letter --subject-prefix="PATCH net-next v$VERSION" -o "$OUT" base..HEAD
cover=$(ls "$OUT"/0000-cover-letter.patch)
python3 - "$cover" "$MSG/cover.txt" <<'PY'
import sys
cover, text = sys.argv[1], open(sys.argv[2]).read()
subject, body = text.split("\n", 1)
s = open(cover).read()
s = s.replace("*** SUBJECT HERE ***", subject).replace("*** BLURB HERE ***", body.strip())
open(cover, "w").write(s)
PY

rc=0
for p in "$OUT"/0*.patch; do
	[ "$(basename "$p")" != 0000-cover-letter.patch ] || continue
	echo "== $(basename "$p")"
	# From the series' own tree, where the added files and the new
	# MAINTAINERS entry exist.
	checkpatch_patch "$WT" "$p" || rc=1
done >"$OUT/checkpatch.log" 2>&1
grep -E '^(total|== )' "$OUT/checkpatch.log" >&2
[ "$rc" -eq 0 ] || die "checkpatch found problems: $OUT/checkpatch.log"
if [ -n "$bisect_log" ] &&
	[ "$(sed -n 's/^# series digest: //p' <<<"$bisect_log")" = "$(series_digest "$OUT")" ]; then
	echo "$bisect_log" >"$OUT/bisect.log"
fi
log "series: $OUT ($(ls "$OUT"/0*.patch | wc -l) files)"
