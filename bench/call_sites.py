#!/usr/bin/env python3
"""Where in a hook's output function its profile samples fell: how many
sit on the instruction right after a call.

Under TCG a return is an indirect jump that the emulator resolves before
running on, and a pending timer interrupt is taken there, so the samples
of a function that makes many out-of-line calls pile up on its return
sites. This tells how much of a hook's cost is the calls it makes rather
than its own work.

usage: call_sites.py PROFILE.hook MODULE.ko FUNCTION-SUFFIX
(PROFILE.hook: "count symbol+0xoffset" lines, from bench/guest.sh)
"""
import re
import subprocess
import sys

hook_file, module, suffix = sys.argv[1:4]
disassembly = subprocess.run(["objdump", "-d", "--no-show-raw-insn", module],
                             capture_output=True, text=True, check=True).stdout

start, returns, calls, after_call = None, set(), 0, False
for line in disassembly.splitlines():
    head = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
    if head:
        if start is not None:
            break
        if head.group(2).endswith(suffix):
            start = int(head.group(1), 16)
        continue
    insn = re.match(r"^\s+([0-9a-f]+):\s+(\S+)", line)
    if start is None or not insn:
        continue
    if after_call:
        returns.add(int(insn.group(1), 16) - start)
    after_call = insn.group(2).startswith("call")
    calls += after_call
if start is None:
    sys.exit(f"call_sites.py: no function ending in {suffix} in {module}")

total = on_return = 0
for line in open(hook_file):
    count, where = line.split()
    name, _, offset = where.partition("+")
    if not name.endswith(suffix) or not offset:
        continue
    total += int(count)
    on_return += int(count) if int(offset, 16) in returns else 0
share = f"{100 * on_return / total:.0f} %" if total else "-"
print(f"{suffix}: {calls} call instructions; of its {total} samples, {on_return} ({share})"
      " on the instruction after a call")
