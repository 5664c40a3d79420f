#!/usr/bin/env bash
# The project's test command (`make check`, run by .ci/run).
#
#   check.sh all         every phase below, in order
#   check.sh unit        host unit tests of the decision logic (cargo test)
#   check.sh rustfmt     rustfmt --check of rust/
#   check.sh inline      the inlining gate on the built module
#   check.sh checkpatch  checkpatch.pl --strict on patches/*/0*.patch and the files
#                        the series add, attribution, make patches and its reports
#   check.sh selftests   boot the built kernel on the guest root
#                        (scripts/guest-root.sh), run TARGETS=net/xfrm
#                        (SELFTESTS="a.sh b.sh": only those scripts)
#
# Prints KTAP: one line per unit test, gate and selftest case, then
# "N passed, N failed, N skipped". Exits non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

PASS=0 FAIL=0 SKIP=0 XFAIL=0 N=0
OUT=${CHECK_OUT:-$CACHE_DIR/check-${FLAVOUR:-vm}}
mkdir -p "$OUT"

result() { # result ok|fail|skip|xfail NAME [DETAIL]
	N=$((N + 1))
	case $1 in
	ok) PASS=$((PASS + 1)); echo "ok $N $2${3:+ # $3}" ;;
	skip) SKIP=$((SKIP + 1)); echo "ok $N $2 # SKIP ${3:-}" ;;
	xfail) XFAIL=$((XFAIL + 1)); echo "ok $N $2 # XFAIL ${3:-}" ;;
	*) FAIL=$((FAIL + 1)); echo "not ok $N $2${3:+ # $3}" ;;
	esac
}

# gate NAME LOGFILE COMMAND...: one result for a command, its output kept
# and shown only on failure.
gate() {
	local name=$1 logf=$2 t0=$SECONDS
	shift 2
	if "$@" >"$logf" 2>&1; then
		result ok "$name" "$((SECONDS - t0))s"
	else
		sed 's/^/# /' "$logf" | tail -n 60
		result fail "$name" "$((SECONDS - t0))s, log: $logf"
		return 1
	fi
}

phase_unit() {
	local logf=$OUT/unit.log line
	echo "# unit: cargo test (rust/)"
	CARGO_TARGET_DIR=$CACHE_DIR/cargo cargo test --manifest-path "$TOP/rust/Cargo.toml" \
		>"$logf" 2>&1
	local rc=$?
	while IFS= read -r line; do
		case "$line" in
		"test "*" ... ok") line=${line#test }; result ok "unit: ${line% ... ok}" ;;
		"test "*" ... ignored") line=${line#test }; result skip "unit: ${line% ... ignored}" ;;
		"test "*" ... FAILED") line=${line#test }; result fail "unit: ${line% ... FAILED}" ;;
		esac
	done <"$logf"
	if [ "$rc" -ne 0 ] && ! grep -q '\.\.\. FAILED' "$logf"; then
		sed 's/^/# /' "$logf" | tail -n 40
		result fail "unit: cargo test did not run" "log: $logf"
	fi
}

phase_rustfmt() {
	gate "rustfmt --check rust/" "$OUT/rustfmt.log" \
		rustfmt --check --color never --config-path "$TOP/rust/.rustfmt.toml" "$TOP"/rust/*.rs "$TOP"/rust/host/*.rs \
			"$TOP"/rust/kernel/net/*.rs
}

run_checkpatch() {
	local src p rc=0
	src=$(readlink -f "$(kernel_src)")
	[ -x "$src/scripts/checkpatch.pl" ] || die "no kernel tree at $src: run 'make kernel' first"
	for p in $(hand_kept_patches); do
		echo "== ${p#"$TOP"/}"
		# A patch that only adds files is checked whole in make patches.
		grep -q '^diff --git ' "$p" || { echo "message only"; continue; }
		checkpatch_patch "$src" "$p" --ignore MISSING_SIGN_OFF || rc=1
	done
	# The files the series add, which the patches above do not hold.
	for p in $(for d in $(series_dirs); do "$TOP/scripts/series.py" files "$d"; done |
		grep -E '\.(c|h|rs)$' | sort -u); do
		echo "== $p"
		"$src/scripts/checkpatch.pl" --strict --no-tree -q -f "$TOP/$p" || rc=1
	done
	# The test and benchmark modules are kernel C too, outside the series.
	for p in "$TOP"/bench/*/*.c; do
		echo "== ${p#"$TOP"/}"
		"$src/scripts/checkpatch.pl" --strict --no-tree -q -f "$p" || rc=1
	done
	return $rc
}

# The rst page parses without warnings, and kernel-doc has nothing to say
# about the hook API (it prints warnings but always exits 0).
run_docs() {
	local src out
	src=$(kernel_src)
	python3 - "$TOP/Documentation/networking/xfrm/xfrm_direct_tx.rst" <<'PY' || return 1
import sys
import docutils.core
docutils.core.publish_doctree(open(sys.argv[1]).read(), source_path=sys.argv[1],
                              settings_overrides={"report_level": 2, "halt_level": 2})
PY
	out=$(cd "$src" && { scripts/kernel-doc -none -Wall -function xfrm_dev_output_hook \
		include/net/xfrm.h; scripts/kernel-doc -none -Wall \
		-function xfrm_dev_output_hook_register -function xfrm_dev_output_hook_unregister \
		net/xfrm/xfrm_output.c; } 2>&1)
	[ -z "$out" ] || { echo "$out"; return 1; }
}

# reports_check OUT: each patch of a security series is in a report of
# its own, addressed as security-bugs.rst says, and in no public series.
reports_check() {
	local out=$1 d name p q r n=0 subject
	for d in $(series_dirs); do
		name=$(basename "$d")
		grep -q '^KIND=security$' "$d/series.conf" || continue
		for p in "$out/$name"/0*.patch; do
			n=$((n + 1))
			subject=$(patch_field Subject "$p")
			r=$out/$name/$(basename "$p" | cut -c1-4)-report.txt
			grep -q '^  Cc: security@kernel.org$' "$r" || { echo "$r: not to the security team"; return 1; }
			grep -qF "Subject: $subject" "$r" || { echo "$r: not about $subject"; return 1; }
			for q in "$out"/[0-9]-*/v*/0*.patch; do
				[ "$(patch_field Subject "$q")" != "$subject" ] ||
					{ echo "$subject: in a public series, $q"; return 1; }
			done
			echo "$(basename "$r"): $subject"
		done
	done
	[ "$n" -gt 0 ] || { echo "no security report"; return 1; }
}

phase_checkpatch() {
	gate "docs: rst parses, kernel-doc clean on the hook API" "$OUT/docs.log" run_docs
	gate "NIPA's patch checks on the selftests: shellcheck, check_selftest, pylint" \
		"$OUT/nipa-check.log" "$TOP/scripts/nipa-check.sh"
	gate "checkpatch.pl --strict patches/*/ bench/" "$OUT/checkpatch.log" run_checkpatch
	gate "patches/: no Signed-off-by (coding-assistants.rst), Assisted-by on each" \
		"$OUT/attribution.log" env SIGNOFF_IDENT= bash -c \
		". '$TOP/scripts/lib.sh' && attribution_check \$(hand_kept_patches)"
	rm -rf "$OUT/outgoing"
	gate "make patches: the series apply to the base, checkpatch --strict clean" \
		"$OUT/patches.log" env -u SIGNOFF PATCHES_OUT="$OUT/outgoing" "$TOP/scripts/patches.sh" ||
		return 0
	gate "make patches: reports for the vulnerabilities, no public patch series of them" \
		"$OUT/reports.log" reports_check "$OUT/outgoing"
	gate "make deb's gateway config resolves on the series (mlx5 IPsec, eswitch, Rust, module =m)" \
		"$OUT/gateway-config.log" env XDT_SERIES_READY=1 "$TOP/scripts/deb.sh" --config
}

phase_build() {
	gate "make deps" "$OUT/deps.log" "$TOP/scripts/deps.sh" || return 1
	gate "make kernel" "$OUT/kernel.log" "$TOP/scripts/kernel.sh" || return 1
	gate "make module CLIPPY=1 W=1" "$OUT/module.log" env CLIPPY=1 W=1 "$TOP/scripts/module.sh" ||
		return 1
	inline_gate || return 1
	# The selftests' userspace (strongSwan with packet offload among it).
	# Without it they still run, on the host's root, and the strongSwan
	# cases skip.
	gate "guest root: pinned Debian trixie userspace with strongSwan" "$OUT/guest-root.log" \
		"$TOP/scripts/guest-root.sh"
	return 0
}

# CONFIG_RUST_INLINE_HELPERS: the module's per-packet path (everything its
# xfrm hook callback reaches inside the module) calls no rust_helper_*.
# The list of functions and outside calls is printed as diagnostics.
inline_gate() {
	local logf=$OUT/inline.log
	gate "inlining: no rust_helper_* call on the Rust hook's per-packet path" "$logf" \
		"$TOP/scripts/inline-check.py" "$(module_ko xfrm_direct_tx)" output_callback \
		"llvm-objdump$LLVM_SUFFIX"
	local rc=$?
	[ "$rc" -ne 0 ] || sed 's/^/# /' "$logf"
	return $rc
}

# selftest_list PROGS|FILES: the entries of the suite Makefile's
# TEST_<what>, one a line.
selftest_list() {
	sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$TOP/selftests/net/xfrm/Makefile" |
		sed -n "s/^TEST_$1 [:+]= //p" | sed 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d'
}

selftest_progs() { selftest_list PROGS; }

# SELFTESTS names scripts of the suite, or the project's cref_hook.sh:
# a typo would otherwise run nothing and pass.
selftests_valid() {
	local s known
	known=" $(selftest_progs | xargs) cref_hook.sh "
	for s in ${SELFTESTS:-}; do
		[[ $known == *" $s "* ]] ||
			die "SELFTESTS: no script '$s' in net/xfrm (scripts:$known)"
	done
}

# selftests_install TREE DIR: `make install` of TARGETS=net/xfrm into
# DIR, which then holds every program and file the Makefile lists, and
# the libraries it includes.
selftests_install() {
	local tree=$1 dir=$2 f missing=0
	make -s -C "$tree/tools/testing/selftests" TARGETS=net/xfrm INSTALL_PATH="$dir" install ||
		return 1
	for f in $(selftest_list PROGS; selftest_list FILES); do
		[ -f "$dir/net/xfrm/$f" ] || { echo "not installed: net/xfrm/$f"; missing=1; }
	done
	for f in net/lib.sh kselftest/ktap_helpers.sh; do
		[ -f "$dir/$f" ] || { echo "not installed: $f"; missing=1; }
	done
	return $missing
}

phase_selftests() {
	local logf=$OUT/selftests.log vmout=$OUT/vm src rc line
	src=$(kernel_src)
	echo "# selftests: TARGETS=net/xfrm in the VM"
	rm -rf "$vmout"
	# The debug kernel (KASAN, lockdep) runs the same tests 5-10 times
	# slower under TCG: it gets a larger budget, per script and in all.
	# It also gets shorter floods and flows: it is there to catch splats,
	# leaks and refcount errors on every path, which a 200-packet flood
	# and a 2 MB flow exercise as well as the sizes of make check.
	local total=1800 per_script= sizes=()
	if [ "${FLAVOUR:-vm}" = debug ]; then
		total=14400 per_script=7200
		sizes=(FLOOD_COUNT="${FLOOD_COUNT:-200}" LONG_FLOW_MB="${LONG_FLOW_MB:-2}"
			LOAD_CYCLES="${LOAD_CYCLES:-5}")
	fi
	# make check-long: the long sizes (10,000 pings, 100 MB of TCP, 100
	# module reloads), with the budget to match.
	if [ "${XFRM_LONG:-0}" = 1 ]; then
		total=$((total * 3)) per_script=3600
		sizes+=(XFRM_LONG=1)
	fi
	local root
	if root=$("$TOP/scripts/guest-root.sh" 2>/dev/null); then
		echo "# guest root: $root"
	else
		echo "# no guest root: the selftests run on the host's root"
		root=
	fi
	# The in-tree suite as a kernel developer runs it; the project's own
	# check of the C reference module (cref_hook.sh, not in the series),
	# from the same folder; then, from a `make install` of the suite, the
	# script that sources every library through another script of the
	# suite (its results are named "installed: ..."). The install runs
	# here, on the build host, as it does for a test machine: lib.mk
	# installs with rsync, which the guest root does not have.
	local env run inst=$vmout/ksft guest_cmd want_scripts
	run="make -s -C $(printf %q "$src/tools/testing/selftests") TARGETS=net/xfrm"
	mkdir -p "$vmout"
	gate "selftests: make install TARGETS=net/xfrm, every file of the Makefile installed" \
		"$OUT/install.log" selftests_install "$src" "$inst" || return 0
	env=$(printf '%q ' kselftest_override_timeout="${KSFT_TIMEOUT:-$per_script}" "${sizes[@]}" \
		XDT_MODULE="$(module_ko xfrm_direct_tx)" \
		XDT_CREF_MODULE="$(module_ko xfrm_direct_tx_cref)")
	if [ -n "${SELFTESTS:-}" ]; then
		# make check[-debug] SELFTESTS="a.sh b.sh": those scripts only.
		guest_cmd="$env $run TEST_PROGS=$(printf %q "$SELFTESTS") run_tests"
		want_scripts=$(wc -w <<<"$SELFTESTS")
	else
		guest_cmd="rc=0; $env $run run_tests || rc=\$?
		$env $run TEST_PROGS=cref_hook.sh run_tests || rc=\$?
		echo '## installed copy'
		cd $(printf %q "$inst") && $env ./run_kselftest.sh \
			-t net/xfrm:direct_tx_hosts_nsim.sh || rc=\$?
		exit \$rc"
		# In-tree scripts, cref_hook.sh, and the one from the installed copy.
		want_scripts=$(($(selftest_progs | wc -l) + 2))
	fi
	VM_ROOT=$root "$TOP/scripts/vm.sh" -t "${SELFTEST_TIMEOUT:-$total}" -o "$vmout" -- \
		"$guest_cmd" 2>&1 | sed 's/^/# /'
	rc=${PIPESTATUS[0]}
	# The runner's own KTAP is shown as diagnostics above, as it grew; its
	# cases are numbered into this document below, from the guest's own
	# copy of the log (the live view, a tail -F over 9p, has been seen to
	# repeat a stretch when the guest exits).
	cp "$vmout/out.log" "$logf" 2>/dev/null || : >"$logf"
	# Each case of each script is a result, named after its script; a
	# script that failed without a failing case (timeout, crash) is one
	# more. This guest has every tool and feature the suite needs, so a
	# skip is a lost check, and a failure here: but for the cases CASES
	# leaves out, and the scripts EXPECTED_SKIPS names, with the reason.
	local script_failed=0 case_failed=0 scripts=0 what=selftest script=
	while IFS= read -r line; do
		case "$line" in
		"## installed copy") what="selftest: installed" ;;
		"# selftests: net/xfrm: "*) script=${line##* } ;;
		"# ok "*"# SKIP not in CASES"*)
			line=${line#\# ok }
			result skip "$what: $script: ${line%% # SKIP*}" "not in CASES" ;;
		"# ok "*"# SKIP"*)
			line=${line#\# ok }
			result fail "$what: $script: ${line%% # SKIP*}" "skipped: a lost check" ;;
		"# ok "*"# XFAIL"*) line=${line#\# ok }; result xfail "$what: $script: ${line%% # XFAIL*}" ;;
		"# ok "*) result ok "$what: $script: ${line#\# ok }" ;;
		"# not ok "*) case_failed=1; result fail "$what: $script: ${line#\# not ok }" ;;
		"ok "*" selftests: "*"# SKIP"*)
			scripts=$((scripts + 1))
			expected_skip "${line##*selftests: net/xfrm: }" "$what" ;;
		"ok "*" selftests: "*) scripts=$((scripts + 1)) ;;
		"not ok "*) scripts=$((scripts + 1)) script_failed=1 ;;
		esac
	done <"$logf"
	[ "$scripts" -eq "$want_scripts" ] ||
		result fail "selftests: every script ran" "$scripts of $want_scripts; log: $logf"
	if [ "$rc" -ne 0 ] || { [ "$script_failed" = 1 ] && [ "$case_failed" = 0 ]; }; then
		[ "$case_failed" = 1 ] && [ "$rc" -eq 0 ] ||
			result fail "selftests: run (exit $rc)" "log: $logf, console: $vmout/console.log"
	fi
}

# The scripts that skip as a whole in make check, and why; any other
# script that skips is a failure. The in-tree direct_tx_hosts.sh has no
# two hosts configured here: its netdevsim stand-in runs it, installed.
EXPECTED_SKIPS="direct_tx_hosts.sh"

# expected_skip "SCRIPT # SKIP" WHAT: a script that skipped as a whole.
expected_skip() {
	local s=${1%% *}
	if [[ " $EXPECTED_SKIPS " == *" $s "* ]] && [ "$2" = selftest ]; then
		result skip "$2: $s" "no two hosts configured (net.config)"
	else
		result fail "$2: $s" "skipped as a whole: a lost script"
	fi
}

summary() {
	echo "1..$N"
	# Expected failures (known bugs, each named above) are neither.
	echo "# $XFAIL xfail"
	echo "$PASS passed, $FAIL failed, $SKIP skipped"
	[ "$FAIL" -eq 0 ]
}

selftests_valid
echo "TAP version 13"
case "${1:-all}" in
unit) phase_unit ;;
inline) inline_gate ;;
rustfmt) phase_rustfmt ;;
checkpatch) phase_checkpatch ;;
selftests) phase_selftests ;;
all)
	t0=$SECONDS
	phase_unit
	phase_rustfmt
	if phase_build; then
		phase_checkpatch
		phase_selftests
	fi
	echo "# total time: $((SECONDS - t0))s"
	;;
*) die "unknown phase '$1'" ;;
esac
summary
