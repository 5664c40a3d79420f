#!/usr/bin/env bash
# `make dev-tree`: a git worktree of the base kernel with the hand-kept
# patches of each series applied, one branch per series (named as its
# folder in patches/), the last checked out: where the kernel C is read
# and edited. Then scripts/export-patches.sh writes it back to patches/.
#
#   scripts/dev-tree.sh [DIR]   (default: $CACHE_DIR/dev)
#
# An existing tree is left alone when it has work that patches/ does not:
# uncommitted changes, or branches whose patches differ.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SRC=$(readlink -f "$(kernel_src)")
[ -d "$SRC/.git" ] || die "no kernel tree at $SRC: run 'make kernel' first"
tree=${1:-$CACHE_DIR/dev}
if [ -e "$tree/.git" ]; then
	[ -z "$(git -C "$tree" status --porcelain --untracked-files=no)" ] ||
		die "$tree has uncommitted changes: commit them and export, or remove the tree"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	from=base
	for d in $(series_dirs); do
		name=$(basename "$d")
		git -C "$tree" format-patch -q -o "$tmp/$name" "$from..$name" 2>/dev/null || true
		if ! diff -q -I '^From [0-9a-f]\{40\} ' <(cat "$d"/0*.patch) \
			<(cat "$tmp/$name"/0*.patch 2>/dev/null) >/dev/null; then
			die "branch $name in $tree differs from patches/$name: export it (scripts/export-patches.sh) or remove the tree"
		fi
		from=$name
	done
	log "$tree is up to date with patches/"
	exit 0
fi
git -C "$SRC" worktree prune
git -C "$SRC" worktree add -q --detach "$tree" base
for d in $(series_dirs); do
	name=$(basename "$d")
	for p in "$d"/0*.patch; do
		git -C "$tree" am -q "$p" || { git -C "$tree" am --abort; die "${p#"$TOP"/} does not apply"; }
	done
	git -C "$tree" branch -q -f "$name" HEAD
done
git -C "$tree" checkout -q "$name"
log "$tree: $(for d in $(series_dirs); do basename "$d"; done | paste -sd' ') (checked out: $name)"
