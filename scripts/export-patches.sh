#!/usr/bin/env bash
# Write the kernel tree where the series are worked on (scripts/dev-tree.sh
# makes it) back to patches/<series>/0*.patch, the edits to the base's
# files with the commit messages, and to the repository files that the
# series' `files` manifests name (scripts/series.py). One branch per
# series, named as its folder in patches/, each on top of the one before
# it, the first on the `base` tag.
#
#   scripts/export-patches.sh [TREE]   (default: $CACHE_DIR/dev)
#
# A commit that adds a file must list it in its series' `files` first;
# Debian's tarball .gitignore ignores every top-level path, so new files
# need `git add -f`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
tree=${1:-$CACHE_DIR/dev}
git -C "$tree" rev-parse -q --verify refs/tags/base >/dev/null || die "$tree has no 'base' tag"
from=base
for d in $(series_dirs); do
	name=$(basename "$d")
	git -C "$tree" rev-parse -q --verify "refs/heads/$name" >/dev/null ||
		die "$tree has no branch $name (scripts/dev-tree.sh makes one per series)"
	git -C "$tree" merge-base --is-ancestor "$from" "$name" ||
		die "branch $name is not on top of $from: rebase with --update-refs"
	"$TOP/scripts/series.py" export "$tree" "$from" "$name" "$d"
	echo "$name: $(git -C "$tree" rev-list --count "$from..$name") patches"
	from=$name
done
