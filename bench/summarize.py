#!/usr/bin/env python3
"""Median and spread per variant and size, and the Rust/C and direct/stock
ratios, from the runs bench/guest.sh recorded (one JSON object a line)."""
import json
import os
import platform
import statistics
import sys
from collections import defaultdict

runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups = defaultdict(list)
for r in runs:
    secs = r["ns"] / 1e9
    pps = r["packets"] / secs if secs else 0
    # jiffies are 1/USER_HZ (100) seconds of busy CPU, all CPUs together
    ns_per_pkt = r["cpu_jiffies"] * 1e7 / r["packets"] if r["packets"] else float("nan")
    groups[(r["mode"], r["variant"], r["size"])].append((pps, ns_per_pkt))

def stat(vals):
    vals = [v for v in vals if v == v]  # runs that delivered nothing have no cost
    if not vals:
        return float("nan"), float("nan")
    med = statistics.median(vals)
    spread = (max(vals) - min(vals)) / med * 100 if med else float("nan")
    return med, spread

table = []
for (mode, variant, size), vals in sorted(groups.items()):
    pps, spp = stat([v[0] for v in vals])
    cpu, cspread = stat([v[1] for v in vals])
    table.append(dict(mode=mode, variant=variant, size=size, runs=len(vals),
                      pps_median=round(pps), pps_spread_pct=round(spp, 1),
                      cpu_ns_per_pkt_median=cpu if cpu != cpu else round(cpu),
                      cpu_spread_pct=cspread if cspread != cspread else round(cspread, 1)))

def find(mode, variant, size):
    return next((t for t in table if (t["mode"], t["variant"], t["size"]) == (mode, variant, size)), None)

ratios = []
for size in sorted({t["size"] for t in table}):
    rust, cref = find("tunnel", "rust", size), find("tunnel", "cref", size)
    stock, direct = find("transport", "stock", size), find("transport", "direct", size)
    row = {"size": size}
    if rust and cref:
        row["rust_over_c_cpu"] = round(rust["cpu_ns_per_pkt_median"] / cref["cpu_ns_per_pkt_median"], 3)
        row["rust_over_c_pps"] = round(rust["pps_median"] / cref["pps_median"], 3)
    if stock and direct:
        row["direct_over_stock_cpu"] = round(direct["cpu_ns_per_pkt_median"] / stock["cpu_ns_per_pkt_median"], 3)
        row["direct_over_stock_pps"] = round(direct["pps_median"] / stock["pps_median"], 3)
    ratios.append(row)

machine = dict(host=platform.node(), cpus=os.cpu_count(), kernel_host=platform.release(),
               accel=os.environ.get("VM_ACCEL", "probe"))
json.dump(dict(machine=machine, table=table, ratios=ratios), open(sys.argv[2], "w"), indent=1)

print(f"machine: {machine}")
print(f"{'mode':9} {'variant':7} {'size':>5} {'runs':>4} {'pps':>9} {'±%':>6} {'cpu ns/pkt':>10} {'±%':>6}")
for t in table:
    print(f"{t['mode']:9} {t['variant']:7} {t['size']:>5} {t['runs']:>4} {t['pps_median']:>9} "
          f"{t['pps_spread_pct']:>6} {t['cpu_ns_per_pkt_median']:>10} {t['cpu_spread_pct']:>6}")
print()
print(f"{'size':>5} {'Rust/C cpu':>10} {'Rust/C pps':>10} {'direct/stock cpu':>16} {'direct/stock pps':>16}")
for r in ratios:
    print(f"{r['size']:>5} {r.get('rust_over_c_cpu', '-'):>10} {r.get('rust_over_c_pps', '-'):>10} "
          f"{r.get('direct_over_stock_cpu', '-'):>16} {r.get('direct_over_stock_pps', '-'):>16}")
