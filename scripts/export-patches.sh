#!/usr/bin/env bash
# Re-export patches/ from a kernel git tree where the series is worked on
# (commits on top of the `base` tag that `make kernel` made):
#
#   git -C ~/.cache/xfrm-direct-tx/src worktree add ../dev series
#   ... edit, commit -s, rebase -i base ...
#   scripts/export-patches.sh ~/.cache/xfrm-direct-tx/dev
#
# Debian's tarball .gitignore ignores every top-level path: new files need
# `git add -f`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
tree=${1:?usage: $0 KERNEL_GIT_TREE}
git -C "$tree" rev-parse -q --verify refs/tags/base >/dev/null || die "$tree has no 'base' tag"
rm -f "$TOP"/patches/[0-9]*.patch
git -C "$tree" format-patch -q -o "$TOP/patches" base..HEAD
ls "$TOP"/patches/[0-9]*.patch
