# Shared helpers for the project's scripts. Source, do not run.
# shellcheck shell=bash

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Build trees and ccache live outside the repository so that a fresh clone
# reuses them and `git status` stays clean.
CACHE_DIR=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/xfrm-direct-tx}

# rustup's and pyenv's tools, when the caller's shell did not set them up
# (CI runs non-interactive shells that skip ~/.bashrc).
for d in "$HOME/.cargo/bin" "$HOME/.pyenv/shims" "$HOME/.pyenv/bin"; do
	case ":$PATH:" in *":$d:"*) ;; *) [ -d "$d" ] && PATH=$d:$PATH ;; esac
done
export PATH

# Only make patches SIGNOFF=1 signs (scripts/patches.sh sets it): never
# one from the caller's environment, into patches/ or the kernel tree.
unset SIGNOFF_IDENT

log() { printf '>>> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

export CCACHE_DIR=${CCACHE_DIR:-$CACHE_DIR/ccache}
# clang, lld and llvm 22: the LLVM major of rustc 1.95, which
# CONFIG_RUST_INLINE_HELPERS needs (C helpers are inlined as LLVM bitcode).
LLVM_SUFFIX=${LLVM_SUFFIX:--22}
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm${LLVM_SUFFIX}/lib}
KMAKE_FLAGS=(LLVM="$LLVM_SUFFIX" CC="ccache clang$LLVM_SUFFIX")

# The kernel tree and build folder that `make kernel` made (symlinks).
kernel_src() { echo "$CACHE_DIR/src"; }
kernel_build() { echo "$CACHE_DIR/build-${FLAVOUR:-vm}"; }
# The modules are built in a copy of the repository per kernel flavour,
# so that builds for different kernels neither collide nor leave output
# in the repository. module_ko NAME: the path of a built module.
module_dir() { echo "$CACHE_DIR/module-${FLAVOUR:-vm}"; }
module_ko() {
	case $1 in
	xfrm_direct_tx) echo "$(module_dir)/rust/xfrm_direct_tx.ko" ;;
	xfrm_direct_tx_cref) echo "$(module_dir)/bench/cref/xfrm_direct_tx_cref.ko" ;;
	xfrm_direct_tx_micro) echo "$(module_dir)/bench/micro/xfrm_direct_tx_micro.ko" ;;
	*) die "unknown module $1" ;;
	esac
}

# Stop with the name of the first missing tool and how to get it.
require_tools() {
	local t
	for t in git make rsync ccache "clang$LLVM_SUFFIX" "ld.lld$LLVM_SUFFIX" rustc bindgen bc flex bison; do
		command -v "$t" >/dev/null || die "'$t' not found: run 'make deps'"
	done
}

# config_missing CONFIG FRAGMENT...: each option a fragment sets that
# CONFIG does not have as asked, as "CONFIG_X=want (got have)".
config_missing() {
	local config=$1 line opt val got
	shift
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			opt=${line%%=*} val=${line#*=}
			[ "$val" != n ] || val=
			;;
		"# CONFIG_"*" is not set")
			opt=${line#\# } opt=${opt%% *} val=
			;;
		*) continue ;;
		esac
		got=$(grep -E "^$opt=" "$config" | cut -d= -f2- || true)
		[ "$got" = "$val" ] || echo "$opt=${val:-n} (got ${got:-n})"
	done < <(cat "$@")
}

# checkpatch_patch TREE PATCH [OPTION...]: `checkpatch.pl --strict` from
# TREE on PATCH, with OPTIONs (--ignore TYPE) added.
# Two message types get an answer instead of a warning:
# - UNKNOWN_COMMIT_ID, only when TREE has no history to look commits up in
#   (Debian's source tarball);
# - FILE_PATH_CHANGES ("does MAINTAINERS need updating?"): every file the
#   patch adds must be covered by a MAINTAINERS entry in TREE.
checkpatch_patch() {
	local tree=$1 patch=$2 f rc=0 ignore=(--ignore FILE_PATH_CHANGES)
	shift 2
	[ "$(git -C "$tree" rev-list --count base)" -gt 1 ] || ignore+=(--ignore UNKNOWN_COMMIT_ID)
	"$tree/scripts/checkpatch.pl" --strict --no-tree "${ignore[@]}" "$@" "$patch" || rc=1
	for f in $(sed -n 's/^+++ b\///p' "$patch"); do
		grep -q "^--- /dev/null" <(grep -B1 "^+++ b/$f\$" "$patch") || continue
		if ! (cd "$tree" && ./scripts/get_maintainer.pl --no-git --no-rolestats --nol -f "$f" |
			grep -v "torvalds@" | grep -q .); then
			echo "$f: added, and no MAINTAINERS entry covers it"
			rc=1
		fi
	done
	return $rc
}

# patch_field FIELD PATCH: Author, Email, Subject or Date of a
# format-patch file, as git mailinfo reads it (folded lines joined).
patch_field() {
	git mailinfo /dev/null /dev/null <"$2" | sed -n "s/^$1: //p"
}

# attribution_check FILE...: the patches' trailers are what
# coding-assistants.rst asks for: Assisted-by: on each, and no
# Signed-off-by: but the submitter's (SIGNOFF_IDENT, "Name <email>",
# also their From:); none at all without it.
attribution_check() {
	local p rc=0 line
	for p in "$@"; do
		case $(basename "$p") in 0000-cover-letter.patch) continue ;; esac
		grep -q '^Assisted-by: ' "$p" || { echo "$p: no Assisted-by: trailer"; rc=1; }
		while IFS= read -r line; do
			[ -n "${SIGNOFF_IDENT:-}" ] && [ "$line" = "Signed-off-by: $SIGNOFF_IDENT" ] && continue
			if [ -n "${SIGNOFF_IDENT:-}" ]; then
				echo "$p: $line (the submitter is $SIGNOFF_IDENT)"
			else
				echo "$p: $line (no SIGNOFF=1: no Signed-off-by at all)"
			fi
			rc=1
		done < <(grep -i '^signed-off-by:' "$p")
		if [ -n "${SIGNOFF_IDENT:-}" ]; then
			grep -qFx "Signed-off-by: $SIGNOFF_IDENT" "$p" || { echo "$p: not signed off"; rc=1; }
			[ "$(patch_field Author "$p") <$(patch_field Email "$p")>" = "$SIGNOFF_IDENT" ] ||
				{ echo "$p: From: is not $SIGNOFF_IDENT"; rc=1; }
		fi
	done
	return $rc
}

# series_dirs: patches/<N-name>/, one per series, in apply order.
series_dirs() {
	find "$TOP/patches" -mindepth 1 -maxdepth 1 -type d -name '[0-9]-*' | sort
}

# hand_kept_patches: the kernel patches of every series, in apply order.
hand_kept_patches() {
	local d
	for d in $(series_dirs); do
		find "$d" -maxdepth 1 -name '0*.patch' | sort
	done
}

# series_state: a digest of what the series are made of: their patches,
# manifests and the repository files those name.
series_state() {
	local d
	{
		cat "$TOP/scripts/series.py"
		for d in $(series_dirs); do
			find "$d" -maxdepth 1 -name '0*.patch' -o -maxdepth 1 -name files | sort | xargs cat
			(cd "$TOP" && "$TOP/scripts/series.py" files "$d" | xargs -r cat)
		done
	} | sha256sum | cut -c1-16
}

# series_digest DIR: what the patches of a series say, without what
# changes each time it is regenerated (commit ids, dates) and without the
# cover letter, which builds nothing. Two series with the same digest are
# the same patches.
series_digest() {
	find "$1" -maxdepth 1 -name '0*.patch' ! -name '0000-cover-letter.patch' | sort |
		xargs cat | grep -Ev '^(From [0-9a-f]{40} |Date: )' | sha256sum | cut -d' ' -f1
}

# outgoing_lock: one user at a time of the outgoing worktree (make
# patches, make patches-check); held until the caller exits.
outgoing_lock() {
	[ -z "${XDT_OUTGOING_LOCKED:-}" ] || return 0
	exec {OUTGOING_LOCK_FD}>"$CACHE_DIR/outgoing.lock"
	if ! flock -n "$OUTGOING_LOCK_FD"; then
		log "waiting for $CACHE_DIR/outgoing (make patches or patches-check running)"
		flock "$OUTGOING_LOCK_FD"
	fi
}
