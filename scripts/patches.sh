#!/usr/bin/env bash
# `make patches`: the series of patches/, ready to send, into out/.
#
# patches/<N-name>/ is one series, applied in the order of its name:
#   0-cross-family [PATCH ipsec]        the child route of cross-family
#                 packet offload tunnels (a regular bug: public)
#   0-security    reports to the maintainers and the security team
#                 (Documentation/process/security-bugs.rst), one per
#                 vulnerability, each with its fix; not a public series
#   1-netdevsim   [PATCH net-next]      the netdevsim packet offload
#                 emulation and the selftests that need nothing else
#   2-direct-tx   [RFC PATCH net-next]  the xfrm output hook, the Rust
#                 abstractions and module, its selftests, documentation
# Each has its commits as 0*.patch (message, and edits to files the base
# has), the files they add in `files` (scripts/series.py), series.conf
# and, for more than one patch, cover.txt. A security series has, per
# patch NNNN, NNNN.report: the report's text.
#
# Output: out/<N-name>/vVERSION/ (out/0-security/ for the reports), with
# To/Cc from get_maintainer.pl and checkpatch.log; make patches-check adds
# bisect.log. The outgoing worktree of the cache keeps the commits: one
# branch per series (outgoing/<N-name>), the last checked out.
#
#   SIGNOFF=1     From: and Signed-off-by: of the submitter, from their
#                 git identity (git config user.name, user.email); without
#                 it the patches carry no Signed-off-by (coding-assistants.rst)
#   PATCHES_OUT=  write the series there instead of out/
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SRC=$(readlink -f "$(kernel_src)")
[ -d "$SRC/.git" ] || die "no kernel tree at $SRC: run 'make kernel' first"
OUT_ROOT=${PATCHES_OUT:-$TOP/out}
WT=$CACHE_DIR/outgoing
SIGNOFF_IDENT=
if [ "${SIGNOFF:-0}" = 1 ]; then
	name=$(git -C "$TOP" config user.name || true)
	email=$(git -C "$TOP" config user.email || true)
	if [ -z "$name" ] || [ -z "$email" ]; then
		die "SIGNOFF=1 signs with your git identity: set git config user.name and user.email"
	fi
	SIGNOFF_IDENT="$name <$email>"
	log "signing off as $SIGNOFF_IDENT"
fi
export SIGNOFF_IDENT

g() { git -C "$WT" "$@"; }

# get_maintainer PATCHES... -- OPTIONS: addresses, one per line. The base
# tree has no upstream history, so the authors of the commits a Fixes:
# tag names cannot be looked up (--no-fixes): series.conf lists them
# (FIXES_CC).
get_maintainer() {
	(cd "$WT" && ./scripts/get_maintainer.pl --no-git --no-git-fallback --no-fixes --no-rolestats \
		--no-multiline --separator $'\n' "$@") | grep -v '^$' | sort -u
}

# checkpatch_series DIR LOG: checkpatch --strict on DIR's patches, into
# LOG; fails on any finding. Without SIGNOFF=1 a missing Signed-off-by is
# what coding-assistants.rst asks for, and the one finding not counted.
checkpatch_series() {
	local dir=$1 logf=$2 p rc=0 ignore=()
	[ -n "$SIGNOFF_IDENT" ] || ignore=(--ignore MISSING_SIGN_OFF)
	for p in "$dir"/0*.patch; do
		[ "$(basename "$p")" != 0000-cover-letter.patch ] || continue
		echo "== $(basename "$p")"
		(cd "$WT" && checkpatch_patch "$WT" "$p" "${ignore[@]}") || echo "checkpatch: FAILED"
	done 2>&1 | sed "s|$dir/||" >"$logf"
	grep -E '^(total|== )' "$logf" | sed "s|^|$(basename "$(dirname "$dir")"): |" >&2
	! grep -q '^checkpatch: FAILED$' "$logf" || rc=1
	[ "$rc" -eq 0 ] || die "checkpatch found problems: $logf"
}

# emit NAME FROM: the commits FROM..HEAD as series NAME, from the
# worktree as it is now (the files the series adds and its MAINTAINERS
# entries exist there, for checkpatch and get_maintainer.pl).
emit() {
	local name=$1 from=$2 dir=$TOP/patches/$1 out cover p bisect_log=
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
	checkpatch_series "$out" "$out/checkpatch.log"
	attribution_check "$out"/0*.patch || die "attribution of $name (above)"
	if [ -n "$bisect_log" ] &&
		[ "$(sed -n "s/^# series digest $name: //p" <<<"$bisect_log")" = "$(series_digest "$out")" ]; then
		echo "$bisect_log" >"$out/bisect.log"
	fi
	log "$name: $out ($(ls "$out"/0*.patch | wc -l) files, To ${#to[@]}, Cc ${#cc[@]})"
}

# emit_reports NAME FROM: one report per commit of FROM..HEAD, as
# security-bugs.rst asks: plain text to the maintainers of the files the
# fix touches (get_maintainer.pl, maintainers only, finest level first),
# Cc the security team when they are two or fewer; it starts with a
# section the reporter removes before sending: the recipients, and what to
# check first. The fix is the report's last part, as git format-patch
# writes it, and a file of its own for the list.
emit_reports() {
	local name=$1 from=$2 dir=$TOP/patches/$1 out c i=0 p report files to cc
	local SUBJECT_PREFIX VERSION FIXES_CC=()
	# shellcheck source=/dev/null
	. "$dir/series.conf"
	out=$OUT_ROOT/$name
	rm -rf "$out"
	mkdir -p "$out"
	for c in $(g rev-list --reverse "$from..HEAD"); do
		i=$((i + 1))
		p=$(g format-patch --no-signature --subject-prefix="$SUBJECT_PREFIX" \
			--start-number="$i" -o "$out" -1 "$c")
		report=$dir/$(printf %04d "$i").report
		[ -f "$report" ] || die "no report text $report for $(basename "$p")"
		mapfile -t files < <(g diff --name-only "$c^" "$c")
		mapfile -t to < <(get_maintainer --nol --nor --pattern-depth 1 -f "${files[@]}")
		[ "${#to[@]}" -gt 0 ] || mapfile -t to < <(get_maintainer --nol --nor -f "${files[@]}")
		# Two or fewer maintainers, or a first report: the security team too.
		cc=("${FIXES_CC[@]}" "security@kernel.org")
		mapfile -t list < <(get_maintainer --nom --nor -f "${files[@]}")
		{
			echo "=== Remove this section before sending ==="
			echo "This report goes by plain-text e-mail, without attachments"
			echo "(Documentation/process/email-clients.rst: check that your"
			echo "mailer sends it as it is), from the address you want in"
			echo "Reported-by:, and only once you can answer the maintainers'"
			echo "questions and run more tests for them."
			echo
			echo "Report and reproducer, maintainers only:"
			printf '  To: %s\n' "${to[@]}"
			printf '  Cc: %s\n' "${cc[@]}"
			echo "The patch, maintainers and list (security-bugs.rst: a bug"
			echo "found with AI assistance is treated as public; its"
			echo "reproducer is not posted), after the report:"
			echo "  $(basename "$p"), to the above and"
			printf '  %s\n' "${list[@]}"
			echo "=== End of the section to remove ==="
			echo
			echo "Subject: $(g log -1 --format=%s "$c")"
			echo
			cat "$report"
			echo
			echo "Proposed fix (also $(basename "$p")):"
			echo
			cat "$p"
		} >"$out/$(printf %04d "$i")-report.txt"
		! grep -nE '^(#{1,6} |```|\*\*)' "$out/$(printf %04d "$i")-report.txt" ||
			die "$report: Markdown in a report (security-bugs.rst: plain text only)"
	done
	checkpatch_series "$out" "$out/checkpatch.log"
	attribution_check "$out"/0*.patch || die "attribution of $name (above)"
	log "$name: $out ($i reports)"
}

outgoing_lock
log "preparing $WT at base"
git -C "$SRC" worktree prune
[ -d "$WT/.git" ] || [ -f "$WT/.git" ] || git -C "$SRC" worktree add -q --detach "$WT" base
g am --abort >/dev/null 2>&1 || true
g checkout -q -f --detach base
g clean -fdxq

from=base
for dir in $(series_dirs); do
	name=$(basename "$dir")
	head=$("$TOP/scripts/series.py" apply "$WT" "$from" "$dir") ||
		die "series $name does not apply (above)"
	g checkout -q -f --detach "$head"
	# The netdevsim series stands without the hook: nothing of it there.
	if [ "$name" = 1-netdevsim ] && g grep -lE 'direct_tx|XDT_|CONFIG_RUST' -- \
		tools/testing/selftests/net/xfrm; then
		die "the netdevsim series' selftests mention the hook (files above)"
	fi
	(
		# shellcheck source=/dev/null
		. "$dir/series.conf"
		if [ "${KIND:-}" = security ]; then
			emit_reports "$name" "$from"
		else
			emit "$name" "$from"
		fi
	)
	g branch -q -f "outgoing/$name" HEAD
	from=$head
done
