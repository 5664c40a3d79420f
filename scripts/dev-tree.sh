#!/usr/bin/env bash
# `make dev-tree`: a git worktree of the base kernel with the series of
# patches/ applied (scripts/series.py), one branch per series, named as
# its folder, the last checked out: where the edits to the base's files
# are made. scripts/export-patches.sh writes the tree back to patches/
# and to the repository files the series add.
#
#   scripts/dev-tree.sh [DIR]   (default: $CACHE_DIR/dev)
#
# An existing tree is left alone when it has work that patches/ does not:
# uncommitted changes, or branches whose trees differ from patches/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SRC=$(readlink -f "$(kernel_src)")
[ -d "$SRC/.git" ] || die "no kernel tree at $SRC: run 'make kernel' first"
tree=${1:-$CACHE_DIR/dev}
if [ -e "$tree/.git" ]; then
	[ -z "$(git -C "$tree" status --porcelain --untracked-files=no)" ] ||
		die "$tree has uncommitted changes: commit them and export, or remove the tree"
	from=base
	for d in $(series_dirs); do
		name=$(basename "$d")
		want=$("$TOP/scripts/series.py" apply "$tree" "$from" "$d") || die "$name does not apply"
		git -C "$tree" diff --quiet "$want" "$name" 2>/dev/null ||
			die "branch $name in $tree differs from patches/$name: export it (scripts/export-patches.sh) or remove the tree"
		from=$want
	done
	log "$tree is up to date with patches/"
	exit 0
fi
git -C "$SRC" worktree prune
git -C "$SRC" worktree add -q --detach "$tree" base
from=base
for d in $(series_dirs); do
	name=$(basename "$d")
	from=$("$TOP/scripts/series.py" apply "$tree" "$from" "$d") || die "$name does not apply"
	git -C "$tree" branch -q -f "$name" "$from"
done
git -C "$tree" checkout -q "$name"
# shellcheck disable=SC2046
"$TOP/scripts/series.py" record "$tree" $(series_dirs)
log "$tree: $(for d in $(series_dirs); do basename "$d"; done | paste -sd' ') (checked out: $name)"
