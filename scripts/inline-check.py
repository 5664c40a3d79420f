#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The inlining gate: no rust_helper_* call on a module's per-packet path.

    inline-check.py MODULE.ko ENTRY_PATTERN [OBJDUMP]

Disassembles MODULE.ko (objdump -dr: calls in a relocatable object show
their target as a relocation), finds the functions whose symbol contains
ENTRY_PATTERN (the callback the kernel calls per packet), follows every
call they make into other functions of the module, and lists what that
path calls outside the module. Exit 1 if any of it is a rust_helper_*
function, whether an undefined symbol (helpers not inlined at all) or a
local copy that LLVM chose not to inline, or a Rust panic.
"""
import re
import subprocess
import sys


def disassemble(ko, objdump):
    out = subprocess.run([objdump, "-dr", "--no-show-raw-insn", ko],
                         check=True, capture_output=True, text=True).stdout
    funcs, calls, cur = {}, {}, None
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            cur = m.group(1)
            funcs[cur] = []
            calls[cur] = []
            continue
        if cur is None:
            continue
        funcs[cur].append(line)
        # A call's target: the relocation on the next line (PLT32/PC32 to
        # a symbol), or a direct in-section target "call ... <sym>".
        m = re.search(r"R_X86_64_(?:PLT32|PC32)\s+([^\s+-]+)", line)
        if m and funcs[cur][-2:-1] and re.search(r"\b(?:call|jmp)q?\s", funcs[cur][-2]):
            calls[cur].append(m.group(1))
            continue
        m = re.search(r"\b(?:call|jmp)q?\s+(?:0x)?[0-9a-f]+ <([^>+]+)(?:\+0x[0-9a-f]+)?>", line)
        if m and m.group(1) != cur:
            calls[cur].append(m.group(1))
    return funcs, calls


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    ko, pattern = sys.argv[1], sys.argv[2]
    objdump = sys.argv[3] if len(sys.argv) > 3 else "objdump"
    funcs, calls = disassemble(ko, objdump)
    entries = [f for f in funcs if pattern in f]
    if not entries:
        print(f"{ko}: no function matching {pattern!r}")
        return 1
    seen, todo, external = set(), list(entries), {}
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        for t in calls.get(f, []):
            if t in funcs:
                todo.append(t)
            else:
                external.setdefault(t, set()).add(f)
    helpers = sorted(f for f in seen if f.startswith("rust_helper_"))
    helpers += sorted(t for t in external if t.startswith("rust_helper_"))
    # A panic on the datapath is a bug of its own: Rust's panic entry
    # points and the slice bounds failures that lead there.
    panics = sorted(t for t in external if re.search(r"panic|slice_index|unwrap_failed|expect_failed", t))
    print(f"per-packet path of {ko}: {len(seen)} function(s) from {len(entries)} entry point(s)")
    for f in sorted(seen):
        print(f"  {f}")
    print("calls out of the module:")
    for t in sorted(external):
        print(f"  {t}")
    rc = 0
    if helpers:
        print("rust_helper_* calls on the per-packet path (not inlined):")
        for h in helpers:
            print(f"  {h}")
        rc = 1
    if panics:
        print("panics reachable from the per-packet path:")
        for p in panics:
            print(f"  {p}")
        rc = 1
    if rc == 0:
        print("no rust_helper_* call and no panic on the per-packet path")
    return rc


if __name__ == "__main__":
    sys.exit(main())
