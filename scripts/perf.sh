#!/usr/bin/env bash
# perf from the base kernel's own tools/perf, built once into the cache
# folder; prints its path. Debian 12's perf (6.1) does not map samples to
# the modules of the 7.3 guest (they land on another module's addresses),
# so bench/'s profile uses the perf of the kernel it profiles.
#
# Only what the profile needs is built: cpu-clock samples with frame
# pointer call chains, `perf script` and `perf report --stdio`, and kallsyms
# symbols (libelf). Scripting, TUI, BPF and the Rust test workload (which
# needs an LLVM archiver that GNU ar cannot read) are left out.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SRC=$(readlink -f "$(kernel_src)")
[ -d "$SRC/tools/perf" ] || die "no kernel tree at $SRC: run 'make kernel' first"
out=$CACHE_DIR/perf-$(basename "$SRC")
bin=$out/perf
if [ ! -x "$bin" ] || [ "$SRC/Makefile" -nt "$bin" ]; then
	log "building perf from $SRC/tools/perf (about a minute)"
	mkdir -p "$out"
	make -s -C "$SRC/tools/perf" O="$out" -j"$(nproc)" NO_RUST=1 NO_LIBTRACEEVENT=1 \
		NO_LIBPYTHON=1 NO_LIBPERL=1 NO_JEVENTS=1 NO_LIBBPF=1 NO_BPF_SKEL=1 NO_SLANG=1 \
		NO_GTK2=1 NO_LIBUNWIND=1 NO_LIBBABELTRACE=1 >"$out/build.log" 2>&1 ||
		{ tail -n 20 "$out/build.log" >&2; die "building perf failed (log: $out/build.log)"; }
fi
"$bin" --version >/dev/null || die "$bin does not run"
echo "$bin"
