#!/usr/bin/env bash
# The patch checks netdev's CI (NIPA) runs on a series' selftest files,
# on selftests/net/xfrm as the series puts it in the kernel tree:
#
#   - shellcheck: "shellcheck -x -e SC2317 -e SC2329", from the folder,
#     on each .sh file; every finding counts (style and info too: NIPA
#     counts all of them in a file the series adds);
#   - format: config and .gitignore sorted, Makefile assignments one value
#     a line, sorted, closed by a comment (scripts/selftest_format.py);
#     also each earlier version a series manifest makes with drop=ERE;
#   - makefile: each .sh and .py file a series adds is named in the
#     Makefile of that series (a .c file, without its suffix, in the
#     Makefile and .gitignore);
#   - pylint: pylint on each .py file, with the kernel tree's .pylintrc;
#     every message counts (C, R, W, E, F).
#
#   nipa-check.sh [DIR]   check DIR (a copy of selftests/net/xfrm)
#                         instead of selftests/net/xfrm
#
# The files checked are those of DIR that patches/*/files puts in
# tools/testing/selftests/net/xfrm/. They are copied into a scratch
# tools/testing/selftests with the kernel tree's net/lib.sh, net/lib/
# and kselftest/ktap_helpers.sh (what the scripts source), so that the
# sources "shellcheck -x" follows are those of the kernel tree.
#
# Prints "ok CHECK FILE" or "not ok CHECK FILE: N findings" and the
# findings ("# ..."), then "nipa-check: N findings". Exit 0 with none,
# 1 with any, 2 if shellcheck, pylint or python3 is missing.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

DIR=${1:-$TOP/selftests/net/xfrm}
[ $# -le 1 ] || die "usage: $0 [DIR]"
[ -d "$DIR" ] || die "$DIR: no such directory"
DIR=$(cd "$DIR" && pwd)

for tool in shellcheck:shellcheck pylint:pylint python3:python3; do
	command -v "${tool%%:*}" >/dev/null || {
		printf 'error: %s not found: install the %s package (apt-get install %s)\n' \
			"${tool%%:*}" "${tool#*:}" "${tool#*:}" >&2
		exit 2
	}
done

SRC=$(kernel_src)
KSFT=$SRC/tools/testing/selftests
for f in net/lib.sh net/lib kselftest/ktap_helpers.sh; do
	[ -e "$KSFT/$f" ] || die "no kernel tree at $SRC (no tools/testing/selftests/$f): run make kernel"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
REL=tools/testing/selftests/net/xfrm
XFRM=$tmp/$REL
mkdir -p "$XFRM" "$tmp/tools/testing/selftests/kselftest" "$tmp/series"
cp "$KSFT/net/lib.sh" "$tmp/tools/testing/selftests/net/"
cp -r "$KSFT/net/lib" "$tmp/tools/testing/selftests/net/"
cp "$KSFT/kselftest/ktap_helpers.sh" "$tmp/tools/testing/selftests/kselftest/"
[ ! -f "$SRC/.pylintrc" ] || cp "$SRC/.pylintrc" "$tmp/"

# The series' entries for the folder, one a line, in series order:
# "SERIES NAME [DROP-ERE]".
MANIFEST=$tmp/manifest
for d in $(series_dirs); do
	[ -f "$d/files" ] || continue
	awk -v series="$(basename "$d")" -v dir="$REL/" '
		/^[ \t]*(#|$)/ { next }
		index($2, dir) == 1 && !index(substr($2, length(dir) + 1), "/") {
			drop = ""
			if ($NF ~ /^drop=/) drop = substr($NF, 6)
			print series, substr($2, length(dir) + 1), drop
		}' "$d/files"
done >"$MANIFEST"

# The files of DIR a series adds, into the scratch folder.
for f in "$DIR"/* "$DIR"/.[!.]*; do
	[ -f "$f" ] || continue
	name=$(basename "$f")
	if awk -v n="$name" '$2 == n { found = 1 } END { exit !found }' "$MANIFEST"; then
		cp "$f" "$XFRM/"
	else
		echo "# skipped $name: in no series (patches/*/files)"
	fi
done

TOTAL=0
# report CHECK WHAT FINDINGS-FILE: one result line, and the findings.
report() {
	local n
	n=$(grep -c . "$3")
	TOTAL=$((TOTAL + n))
	if [ "$n" -eq 0 ]; then
		echo "ok $1 $2"
	else
		echo "not ok $1 $2: $n finding$([ "$n" -eq 1 ] || echo s)"
		sed 's/^/# /' "$3"
	fi
}

# status_line FILE RC TOOL: a command's failure with no finding printed
# is one finding.
status_line() {
	[ "$2" -eq 0 ] || grep -q . "$1" || echo "$3 failed (exit $2)" >>"$1"
}

out=$tmp/out
cd "$XFRM" || die "cd $XFRM"

# Both shellcheck and pylint take seconds a file: they run first, nproc at a
# time, each into $tmp/jobs/CHECK.FILE (its output, then its exit code
# in .rc); their results are printed in order when they are done. A
# result is kept in $CACHE_DIR/nipa-check, under a digest of the tool's
# version, its command line and every file it can read, and used again
# while none of them changes (one unused for 30 days is deleted).
mkdir -p "$tmp/jobs"
RESULTS=$CACHE_DIR/nipa-check
mkdir -p "$RESULTS" 2>/dev/null || RESULTS=
[ -z "$RESULTS" ] || find "$RESULTS" -type f -mtime +30 -delete 2>/dev/null
JOBS=0
MAXJOBS=$(nproc 2>/dev/null || echo 2)
# job CHECK FILE DIR DIGEST COMMAND...: COMMAND run from DIR in the
# background, unless the cache has its result for DIGEST.
job() {
	local log=$tmp/jobs/$1.$2 dir=$3 kept=${RESULTS:+$RESULTS/$4}
	shift 4
	if [ -n "$kept" ] && [ -f "$kept.rc" ]; then
		cp "$kept" "$log" && cp "$kept.rc" "$log.rc" && touch "$kept" "$kept.rc" && return 0
	fi
	if [ "$JOBS" -ge "$MAXJOBS" ]; then
		wait -n
		JOBS=$((JOBS - 1))
	fi
	(
		cd "$dir" && "$@" >"$log" 2>&1
		echo $? >"$log.rc"
		[ -z "$kept" ] || { cp "$log" "$kept.$$" && mv "$kept.$$" "$kept" &&
			cp "$log.rc" "$kept.rc.$$" && mv "$kept.rc.$$" "$kept.rc"; } 2>/dev/null
	) &
	JOBS=$((JOBS + 1))
}

# digest LINE FILE...: a digest of LINE (the tool and its command line)
# and the names and contents of FILEs.
digest() {
	local line=$1
	shift
	{
		echo "$line"
		for f in "$@"; do
			echo "${f#"$tmp"/}"
			sha256sum <"$f"
		done
	} | sha256sum | cut -d' ' -f1
}

# sc_reads FILE: the files shellcheck -x may read for FILE: FILE, every
# file of the scratch tree whose name FILE or one of those files holds
# as a word (shellcheck follows a source only to a path written in the
# script: a name in it), and the .shellcheckrc files it looks up.
find "$tmp/tools" -type f | sort >"$tmp/tree"
sc_reads() {
	local todo=("$(realpath "$1")") seen=$tmp/seen f
	: >"$seen"
	while [ ${#todo[@]} -gt 0 ]; do
		f=${todo[0]}
		todo=("${todo[@]:1}")
		grep -qxF -- "$f" "$seen" && continue
		echo "$f" >>"$seen"
		mapfile -t -O "${#todo[@]}" todo < <(grep -oE '[A-Za-z0-9_.+-]+' "$f" | sort -u |
			awk 'NR == FNR { want[$0] = 1; next }
				{ n = $0; sub(/.*\//, "", n) } n in want' - "$tmp/tree")
	done
	sort "$seen"
	f=$(dirname "$(realpath "$1")")
	while :; do
		[ ! -f "$f/.shellcheckrc" ] || echo "$f/.shellcheckrc"
		[ "$f" != / ] || break
		f=$(dirname "$f")
	done
	for f in "$HOME/.shellcheckrc" "${XDG_CONFIG_HOME:-$HOME/.config}/shellcheckrc"; do
		[ ! -f "$f" ] || echo "$f"
	done
}

# The kernel tree's .shellcheckrc files above the folder, if it has any.
d=tools/testing/selftests/net
while :; do
	[ ! -f "$SRC/$d/.shellcheckrc" ] || cp "$SRC/$d/.shellcheckrc" "$tmp/$d/"
	[ "$d" != . ] || break
	d=$(dirname "$d")
done

SC=(shellcheck -x -e SC2317 -e SC2329 -f gcc)
sc_version=$(shellcheck --version | tr '\n' ' ')
for f in *.sh; do
	[ -f "$f" ] || continue
	mapfile -t reads < <(sc_reads "$f")
	job shellcheck "$f" "$XFRM" "$(digest "$sc_version ${SC[*]} $f" "${reads[@]}")" "${SC[@]}" "$f"
done
# pylint as NIPA runs it: from the top of the tree, on the in-tree path,
# so that the kernel's .pylintrc applies.
PYLINT=(pylint --persistent=n --score=n)
[ -f "$tmp/.pylintrc" ] || PYLINT+=(--rcfile=/dev/null)
py_version=$(pylint --version 2>&1 | tr '\n' ' ')
for f in *.py; do
	[ -f "$f" ] || continue
	reads=("$XFRM"/*.py)
	[ ! -f "$tmp/.pylintrc" ] || reads+=("$tmp/.pylintrc")
	job pylint "$f" "$tmp" "$(digest "$py_version ${PYLINT[*]} $REL/$f" "${reads[@]}")" \
		"${PYLINT[@]}" "$REL/$f"
done

# format DIR NAME LABEL: scripts/selftest_format.py on DIR/NAME, from DIR.
format() {
	(cd "$1" && python3 "$TOP/scripts/selftest_format.py" "$2") >"$out" 2>&1
	status_line "$out" $? selftest_format.py
	report format "$3" "$out"
}

for f in config .gitignore Makefile; do
	[ ! -f "$f" ] || format . "$f" "$f"
done

# version SERIES NAME: the file NAME as SERIES has it (the entry of the
# latest series up to SERIES that lists it, its drop=ERE applied), into
# $tmp/series/SERIES/NAME; fails if no series up to SERIES lists it.
version() {
	local entry drop dst=$tmp/series/$1/$2
	entry=$(awk -v s="$1" -v n="$2" '$2 == n { e = $0 } $1 == s { last = e } END { print last }' \
		"$MANIFEST")
	[ -n "$entry" ] && [ -f "$2" ] || return 1
	drop=$(cut -d' ' -f3- <<<"$entry")
	mkdir -p "$tmp/series/$1"
	if [ -n "$drop" ]; then
		grep -Ev -- "$drop" "$2" >"$dst"
	else
		cp "$2" "$dst"
	fi
}

# The earlier versions the manifests make of the formatted files.
while read -r series name drop; do
	if [ -z "$drop" ] || [ ! -f "$name" ]; then
		continue
	fi
	case $name in config | .gitignore | Makefile) ;; *) continue ;; esac
	version "$series" "$name" || continue
	format "$tmp/series/$series" "$name" "$name ($series: drop=$drop)"
done <"$MANIFEST"

# named FILE NAME: NAME is a word of FILE (a path ending in NAME counts),
# comments left out.
named() {
	sed 's/#.*//; s/\\/ /g' "$1" | tr -s '[:space:]' '\n' | sed 's|.*/||' | grep -qxF -- "$2"
}

# Each .sh, .py and .c file in the Makefile (and .gitignore) of the
# series that adds it.
while read -r series name _; do
	[ -f "$name" ] || continue
	case $name in
	*.sh | *.py) needles=("$name:Makefile") ;;
	*.bpf.c) continue ;;
	*.c) needles=("${name%.c}:Makefile" "${name%.c}:.gitignore") ;;
	*) continue ;;
	esac
	: >"$out"
	for n in "${needles[@]}"; do
		if ! version "$series" "${n#*:}"; then
			echo "no ${n#*:} in $series" >>"$out"
		elif ! named "$tmp/series/$series/${n#*:}" "${n%%:*}"; then
			echo "${n%%:*} is not named in the ${n#*:} of $series" >>"$out"
		fi
	done
	report makefile "$name ($series)" "$out"
done < <(awk '!seen[$2]++' "$MANIFEST")

wait
for f in *.sh; do
	[ -f "$f" ] || continue
	log=$tmp/jobs/shellcheck.$f
	cp "$log" "$out"
	rc=$(cat "$log.rc")
	[ "$rc" -le 1 ] || status_line "$out" "$rc" shellcheck
	report shellcheck "$f" "$out"
done
for f in *.py; do
	[ -f "$f" ] || continue
	log=$tmp/jobs/pylint.$f
	rc=$(cat "$log.rc")
	grep -E ': [CRWEF][0-9]{4}: ' "$log" | sed "s|^$REL/||" >"$out"
	# A crash or a usage error (no message lines) is a finding too.
	if [ $((rc & (1 | 32))) -ne 0 ] && ! grep -q . "$out"; then
		sed "s|^$REL/||" "$log" >"$out"
		status_line "$out" "$rc" pylint
	fi
	report pylint "$f" "$out"
done

echo "nipa-check: $TOTAL finding$([ "$TOTAL" -eq 1 ] || echo s)"
[ "$TOTAL" -eq 0 ]
