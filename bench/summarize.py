#!/usr/bin/env python3
"""Median and spread per variant and size, and the Rust/C and direct/stock
ratios, from the runs bench/guest.sh recorded (one JSON object a line):
macro runs (pktgen through the gateway) and micro runs (timed calls of the
output path on synthetic skbs)."""
import json
import os
import platform
import statistics
import sys
from collections import defaultdict

runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
macro, micro, profile = defaultdict(list), defaultdict(list), defaultdict(dict)
# (variant, size, sas) -> {boot: guest instructions per call}
insns = defaultdict(dict)
# (nsim, fail_tx, size) -> [guest instructions per packet, a round each]
emulation = defaultdict(list)
for r in runs:
    if r.get("bench") == "emulation":
        emulation[(r["nsim"], r["fail_tx"], r["size"])].append(r["median_ps"] / 1000)
        continue
    if r.get("bench") == "insns":
        # -icount shift=0: one guest nanosecond per retired instruction; the
        # median 64-call batch leaves out the batches a timer tick hit.
        insns[(r["variant"], r["size"], r["sas"])][r.get("boot", 1)] = r["median_ps"] / 1000
        continue
    if r.get("bench") == "profile":
        profile[r["round"]][r["variant"]] = r
        continue
    key = (r["mode"], r["variant"], r["size"])
    if r.get("bench", "macro") == "micro":
        # the run's 10th percentile batch: the host preempting or sharing
        # the vCPU only ever adds time (see bench/micro)
        micro[key].append(r["p10_ps"] / 1000)
        continue
    secs = r["ns"] / 1e9
    pps = r["packets"] / secs if secs else 0
    # jiffies are 1/USER_HZ (100) seconds of busy CPU, all CPUs together
    ns_per_pkt = r["cpu_jiffies"] * 1e7 / r["packets"] if r["packets"] else float("nan")
    macro[key].append((pps, ns_per_pkt))


def stat(vals):
    """Median and spread ((max - min) / median, in %) of the runs that
    measured something (a macro run that delivered nothing has no cost)."""
    vals = [v for v in vals if v == v]
    if not vals:
        return None, None
    med = statistics.median(vals)
    spread = (max(vals) - min(vals)) / med * 100 if med else None
    return med, spread


def rnd(v, digits=0):
    return None if v is None else round(v, digits) if digits else round(v)


table = []
for (mode, variant, size), vals in sorted(macro.items()):
    pps, spp = stat([v[0] for v in vals])
    cpu, cspread = stat([v[1] for v in vals])
    table.append(dict(mode=mode, variant=variant, size=size, runs=len(vals),
                      pps_median=rnd(pps), pps_spread_pct=rnd(spp, 1),
                      cpu_ns_per_pkt_median=rnd(cpu), cpu_spread_pct=rnd(cspread, 1)))
micro_table = []
for (mode, variant, size), vals in sorted(micro.items()):
    ns, spread = stat(vals)
    micro_table.append(dict(mode=mode, variant=variant, size=size, runs=len(vals),
                            ns_per_call_median=rnd(ns, 1), spread_pct=rnd(spread, 1)))


def find(rows, mode, variant, size):
    return next((t for t in rows if (t["mode"], t["variant"], t["size"]) == (mode, variant, size)), None)


def ratio(rows, field, num, den):
    if not num or not den or not num[field] or not den[field]:
        return None
    return round(num[field] / den[field], 3)


ratios = []
for size in sorted({t["size"] for t in table + micro_table}):
    row = {"size": size}
    for rows, field, name in ((micro_table, "ns_per_call_median", "micro_ns"),
                              (table, "cpu_ns_per_pkt_median", "cpu"),
                              (table, "pps_median", "pps")):
        rust, cref = find(rows, "tunnel", "rust", size), find(rows, "tunnel", "cref", size)
        stock, direct = find(rows, "transport", "stock", size), find(rows, "transport", "direct", size)
        row[f"rust_over_c_{name}"] = ratio(rows, field, rust, cref)
        row[f"direct_over_stock_{name}"] = ratio(rows, field, direct, stock)
    ratios.append(row)



def hook_samples(r):
    """Samples in the hook: its module, and for Rust the C helpers it calls
    out of line."""
    return r["hook_module_samples"] + r["rust_helper_samples"]


def path_samples(r):
    """Samples on the path after the hook's decision (None in older runs)."""
    return r.get("path_samples")


def cost_ratio(num, den, part):
    """Per-call cost ratio of two variants that differ in one part of the
    call, and the ratio of that part alone. The rest of the timed samples is
    the same code in both and is the yardstick, which the host's speed
    changes between runs do not move: (t_num / rest_num) / (t_den / rest_den)
    with t the timed samples, and (part_num / rest_num) / (part_den /
    rest_den). (None, None) when a run lacks the count or has no rest."""
    p_num, p_den = part(num), part(den)
    if p_num is None or p_den is None:
        return None, None
    rest_num, rest_den = num["timed_samples"] - p_num, den["timed_samples"] - p_den
    if rest_num <= 0 or rest_den <= 0:
        return None, None
    whole = (num["timed_samples"] / rest_num) / (den["timed_samples"] / rest_den)
    alone = (p_num / rest_num) / (p_den / rest_den) if p_den else None
    return round(whole, 4), rnd(alone, 4)


def part_pct(r, part):
    return round(100 * part(r) / r["timed_samples"], 2)


# Direct output (the Rust hook's, and the C hook's where profiled) against
# the stock path, transport mode: they differ from xfrm_output() to the
# device's transmit (the path samples).
direct_rounds = []
for rnd_no, by_variant in sorted(profile.items()):
    if "stock" in by_variant and "direct" in by_variant:
        d, st = by_variant["direct"], by_variant["stock"]
        row = dict(round=rnd_no, stock_path_pct=part_pct(st, path_samples),
                   direct_path_pct=part_pct(d, path_samples))
        row["direct_over_stock"], row["direct_over_stock_path"] = cost_ratio(d, st, path_samples)
        if "cref_direct" in by_variant:
            c = by_variant["cref_direct"]
            row["c_direct_path_pct"] = part_pct(c, path_samples)
            row["c_direct_over_stock"], row["c_direct_over_stock_path"] = \
                cost_ratio(c, st, path_samples)
        direct_rounds.append(row)

# Rust/C per round from the hook's samples, and from the path samples as a
# check of both.
profile_rounds = []
for rnd_no, by_variant in sorted(profile.items()):
    if "rust" not in by_variant or "cref" not in by_variant:
        continue
    rust, cref = by_variant["rust"], by_variant["cref"]
    outside = sum(v["hook_samples_outside"] for v in by_variant.values())
    inside = sum(hook_samples(v) for v in by_variant.values())
    row = dict(round=rnd_no, rust_hook_pct=part_pct(rust, hook_samples),
               rust_helpers_pct=part_pct(rust, lambda r: r["rust_helper_samples"]),
               c_hook_pct=part_pct(cref, hook_samples),
               rust_over_c=cost_ratio(rust, cref, hook_samples)[0],
               rust_over_c_by_path=cost_ratio(rust, cref, path_samples)[0],
               hook_samples_unwound_pct=round(100 * inside / (inside + outside), 1)
               if inside + outside else None)
    if "rust_base" in by_variant:
        row["rust_base_hook_pct"] = part_pct(by_variant["rust_base"], hook_samples)
        row["rust_over_rust_base"] = cost_ratio(rust, by_variant["rust_base"], hook_samples)[0]
    profile_rounds.append(row)
profile_summary = None
if profile_rounds or direct_rounds:
    profile_summary = dict(rounds=len(profile_rounds), direct_rounds=len(direct_rounds))
    for key in ("rust_hook_pct", "c_hook_pct", "rust_base_hook_pct"):
        vals = [p[key] for p in profile_rounds if key in p]
        if vals:
            profile_summary[key + "_median"] = rnd(statistics.median(vals), 2)
    for rows, keys in ((profile_rounds, ("rust_over_c", "rust_over_c_by_path", "rust_over_rust_base")),
                       (direct_rounds, ("direct_over_stock", "direct_over_stock_path",
                                        "c_direct_over_stock", "c_direct_over_stock_path"))):
        for key in keys:
            med, spread = stat([p[key] for p in rows if p.get(key) is not None])
            if med is not None:
                profile_summary[key + "_median"] = round(med, 4)
                profile_summary[key + "_spread_pct"] = rnd(spread, 2)

# Instructions per call: per variant, size and number of SAs, each boot's
# figure and their spread; the ratios at 64 bytes and the report's one SA.
insns_table = []
for (variant, size, sas), by_boot in sorted(insns.items()):
    vals = [by_boot[b] for b in sorted(by_boot)]
    med, spread = stat(vals)
    insns_table.append(dict(variant=variant, size=size, sas=sas, boots=vals,
                            insns_per_call=rnd(med, 1), boot_spread_pct=rnd(spread, 3)))


def insns_of(variant, size=64, sas=1):
    t = next((t for t in insns_table
              if (t["variant"], t["size"], t["sas"]) == (variant, size, sas)), None)
    return t["insns_per_call"] if t else None


def insns_ratio(num, den, floor=None):
    """num/den, or with a floor (num - floor)/(den - floor)."""
    if num is None or den is None or (floor is not None and den == floor):
        return None
    f = floor or 0
    return round((num - f) / (den - f), 4)


insns_summary = None
if insns_table:
    rust, cref, up, floor = (insns_of(v) for v in ("rust", "cref", "upstream", "floor"))
    stock, direct, c_direct = (insns_of(v) for v in ("stock", "direct", "cref_direct"))
    insns_summary = dict(
        rust_over_c_insns=insns_ratio(rust, cref),
        rust_over_upstream_insns=insns_ratio(rust, up),
        direct_over_stock_insns=insns_ratio(direct, stock),
        c_direct_over_stock_insns=insns_ratio(c_direct, stock),
        # The whole call over the floor, and what the hook path adds above
        # it against what the kernel's own direct output adds.
        hook_over_floor_insns=insns_ratio(rust, floor),
        hook_above_floor_over_upstream_above_floor_insns=insns_ratio(rust, up, floor),
        rust_above_floor_insns=rnd(rust - floor, 1) if None not in (rust, floor) else None,
        upstream_above_floor_insns=rnd(up - floor, 1) if None not in (up, floor) else None,
        boot_spread_pct_max=max((t["boot_spread_pct"] or 0) for t in insns_table),
        boots=max(len(t["boots"]) for t in insns_table))

# The emulated NIC's transmit per packet, the base build of netdevsim and
# this one: the whole floor (classify, encrypt, put on the wire), what
# stops at the SA lookup (fail_tx), and the part after the lookup.
emulation_table = []
for size in sorted({k[2] for k in emulation}):
    row = dict(size=size)
    for nsim in ("base", "current"):
        whole, lookup = (stat(emulation[(nsim, f, size)])[0] if emulation[(nsim, f, size)] else None
                         for f in (0, 1))
        row[nsim] = dict(whole=rnd(whole, 1), to_lookup=rnd(lookup, 1),
                         after_lookup=rnd(whole - lookup, 1) if None not in (whole, lookup) else None,
                         spread_pct=rnd(max(stat(emulation[(nsim, f, size)])[1] or 0
                                            for f in (0, 1)), 3))
    for part in ("whole", "to_lookup", "after_lookup"):
        row[f"{part}_current_over_base"] = insns_ratio(row["current"][part], row["base"][part])
    emulation_table.append(row)

machine = dict(host=platform.node(), cpus=os.cpu_count(), kernel_host=platform.release(),
               cpu_model=next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                               if l.startswith("model name")), "?"),
               accel=os.environ.get("VM_ACCEL", "probe"))
json.dump(dict(machine=machine, insns=dict(per_call=insns_table, ratios=insns_summary),
               emulation=emulation_table,
               **(insns_summary or {}), micro=micro_table, macro=table, ratios=ratios,
               profile=dict(rounds=profile_rounds, direct_rounds=direct_rounds,
                            summary=profile_summary)),
          open(sys.argv[2], "w"), indent=1)


def show(v):
    return "-" if v is None else v


print(f"machine: {machine}")
if insns_table:
    print("\ninsns: guest instructions per call (QEMU -icount shift=0), each boot and the spread")
    print(f"{'variant':12} {'size':>5} {'SAs':>6} {'insns/call':>11} {'boots':>24} {'spread %':>9}")
    for t in insns_table:
        print(f"{t['variant']:12} {t['size']:>5} {t['sas']:>6} {show(t['insns_per_call']):>11} "
              f"{' '.join(str(round(b, 1)) for b in t['boots']):>24} {show(t['boot_spread_pct']):>9}")
    print("\ninsns ratios (64 bytes, 1 SA; goals: Rust/C <= 1.00, Rust/upstream <= 1.02,"
          " direct/stock < 1)")
    for k, v in insns_summary.items():
        print(f"  {k:48} {show(v)}")
if emulation_table:
    print("\nemulation: guest instructions per packet of the emulated NIC's transmit (-icount),"
          " base netdevsim and this one; median over rounds")
    print(f"{'size':>5} {'part':13} {'base':>9} {'current':>9} {'current/base':>13}")
    for row in emulation_table:
        for part in ("whole", "to_lookup", "after_lookup"):
            print(f"{row['size']:>5} {part:13} {show(row['base'][part]):>9} "
                  f"{show(row['current'][part]):>9} {show(row[part + '_current_over_base']):>13}")
if micro_table:
    print("\nmicro: ns per dst_output() call on IPSEC-GW (hook + xfrm output + device xmit),"
          " 10th percentile batch of each run, median over runs")
    print(f"{'mode':9} {'variant':7} {'size':>5} {'runs':>4} {'ns/call':>9} {'±%':>6}")
    for t in micro_table:
        print(f"{t['mode']:9} {t['variant']:7} {t['size']:>5} {t['runs']:>4} "
              f"{show(t['ns_per_call_median']):>9} {show(t['spread_pct']):>6}")
if table:
    print("\nmacro: pktgen from ns0 through IPSEC-GW to Simulated-NE")
    print(f"{'mode':9} {'variant':7} {'size':>5} {'runs':>4} {'pps':>9} {'±%':>6} "
          f"{'cpu ns/pkt':>10} {'±%':>6}")
    for t in table:
        print(f"{t['mode']:9} {t['variant']:7} {t['size']:>5} {t['runs']:>4} {show(t['pps_median']):>9} "
              f"{show(t['pps_spread_pct']):>6} {show(t['cpu_ns_per_pkt_median']):>10} "
              f"{show(t['cpu_spread_pct']):>6}")
cols = [("rust_over_c_micro_ns", "Rust/C micro"), ("rust_over_c_cpu", "Rust/C cpu"),
        ("rust_over_c_pps", "Rust/C pps"), ("direct_over_stock_micro_ns", "dir/stock micro"),
        ("direct_over_stock_cpu", "dir/stock cpu"), ("direct_over_stock_pps", "dir/stock pps")]
if ratios:
    print("\nratios (medians; Rust/C <= 1.02 is the goal, direct/stock < 1 is cheaper)")
    print(f"{'size':>5} " + " ".join(f"{h:>15}" for _, h in cols))
for r in ratios:
    print(f"{r['size']:>5} " + " ".join(f"{show(r.get(k)):>15}" for k, _ in cols))
if profile_rounds:
    base = "rust_over_rust_base" in profile_rounds[0]
    print("\nprofile: share of the samples inside the timed calls (64 bytes) spent in the hook;"
          " per-call cost ratio Rust/C = (1 - C share) / (1 - Rust share)")
    print(f"{'round':>5} {'Rust %':>7} {'of it helpers %':>15} {'C %':>6} {'Rust/C':>7} {'by path':>7}"
          + (f" {'base %':>7} {'Rust/base':>9}" if base else "") + f" {'unwound %':>9}")
    for p in profile_rounds:
        print(f"{p['round']:>5} {p['rust_hook_pct']:>7} {p['rust_helpers_pct']:>15} {p['c_hook_pct']:>6} "
              f"{p['rust_over_c']:>7} {show(p.get('rust_over_c_by_path')):>7}"
              + (f" {show(p.get('rust_base_hook_pct')):>7} {show(p.get('rust_over_rust_base')):>9}"
                 if base else "")
              + f" {show(p['hook_samples_unwound_pct']):>9}")
    ps = profile_summary
    print(f"median Rust/C {ps['rust_over_c_median']} (spread {show(ps['rust_over_c_spread_pct'])} %)"
          f" over {ps['rounds']} rounds"
          + (f"; from the path samples {ps['rust_over_c_by_path_median']}"
             if "rust_over_c_by_path_median" in ps else ""))
    if "rust_over_rust_base_median" in ps:
        print(f"median Rust/base {ps['rust_over_rust_base_median']}"
              f" (spread {show(ps['rust_over_rust_base_spread_pct'])} %): the Rust hook against"
              " the other build given as BENCH_RUST_BASE_KO")
if direct_rounds:
    ps = profile_summary
    print("\nprofile, transport mode: share of the timed samples (64 bytes) on the path from"
          " xfrm_output() to the device's transmit; per-call cost ratio direct/stock,"
          " and of that path alone; direct by the Rust hook, and by the C hook")
    print(f"{'round':>5} {'stock %':>8} {'direct %':>8} {'direct/stock':>12} {'path only':>9}"
          f" {'C direct %':>10} {'C dir/stock':>11} {'path only':>9}")
    for p in direct_rounds:
        print(f"{p['round']:>5} {p['stock_path_pct']:>8} {p['direct_path_pct']:>8} "
              f"{show(p['direct_over_stock']):>12} {show(p['direct_over_stock_path']):>9}"
              f" {show(p.get('c_direct_path_pct')):>10} {show(p.get('c_direct_over_stock')):>11}"
              f" {show(p.get('c_direct_over_stock_path')):>9}")
    for who, pre in (("Rust", ""), ("C", "c_")):
        if pre + "direct_over_stock_median" in ps:
            print(f"median direct/stock ({who} hook) {ps[pre + 'direct_over_stock_median']}"
                  f" (spread {show(ps[pre + 'direct_over_stock_spread_pct'])} %), path alone"
                  f" {show(ps.get(pre + 'direct_over_stock_path_median'))}"
                  f" (spread {show(ps.get(pre + 'direct_over_stock_path_spread_pct'))} %)"
                  f" over {ps['direct_rounds']} rounds")
if profile_rounds:
    if any(p["hook_samples_unwound_pct"] is not None and p["hook_samples_unwound_pct"] < 98
           for p in profile_rounds):
        print("warning: more than 2 % of the hook's samples had no micro_output_batch under them"
              " (call chains lost): the shares above undercount the hook")
