#!/usr/bin/env python3
"""bursts_report: the table of fragbench's bursts scenario.

Reads, in --dir, per arm X and sequence S: bursts-X-sSS-bNN.json (fragload run, one per burst),
bursts-X-sSS.tsv (fragload sample, 1 s, the whole sequence), bursts-X-sSS-hugepages.json (the
nr_hugepages probe) and bursts-X-sSS.fragtuned-cpu-ms. Prints a Markdown table on stdout: per arm,
the sum over all bursts and over bursts 2..N of each stall signal (median [min-max] over
sequences), the per-burst range over bursts 2..N, the high-order probe and the cost columns; and
writes every figure to --json. Standard library only (the bench needs no package of its own).
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys

SIGNALS = [
    ("psi_some_ms", "PSI memory some during the probes (ms)"),
    ("compact_stall", "compact_stall"),
    ("allocstall", "allocstall (direct reclaim entries)"),
    ("thp_fault_fallback", "thp_fault_fallback"),
    ("pgscan_direct", "pgscan_direct (pages)"),
]
ARM_NAMES = {
    "a": "(a) kernel defaults",
    "b": "(b) static advice",
    "c": "(c) fragtuned",
    "d": "(d) defrag_mode=1",
    "e": "(e) fragtuned + defrag_mode=1",
}


def probe_value(burst, key):
    p = burst["probe"]
    if key == "psi_some_ms":
        return p["psi_some_usec"] / 1000.0
    return float(p.get(key, 0))


def tsv_columns(path):
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    cols = {h: [] for h in header}
    for r in rows:
        if len(r) != len(header):
            continue  # a line cut by the sampler's stop
        for h, v in zip(header, r):
            cols[h].append(float(v))
    return cols


def fmt(v):
    if v is None:
        return "n/a"
    if abs(v) >= 100 or v == int(v):
        return f"{v:.0f}"
    return f"{v:.3g}"


def med_range(values):
    if not values:
        return "n/a"
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.median(values))} [{fmt(min(values))}-{fmt(max(values))}]"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--arms", required=True)
    ap.add_argument("--bursts", type=int, required=True)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()

    result = {"bursts": a.bursts, "arms": {}}
    for arm in a.arms:
        seqs = sorted(
            {
                m.group(1)
                for f in glob.glob(os.path.join(a.dir, f"bursts-{arm}-s*-b*.json"))
                if (m := re.search(r"-s(\d+)-b\d+\.json$", f))
            }
        )
        arm_r = {"sequences": []}
        for s in seqs:
            stem = os.path.join(a.dir, f"bursts-{arm}-s{s}")
            bursts = []
            for n in range(1, a.bursts + 1):
                path = f"{stem}-b{n:02d}.json"
                if os.path.exists(path):
                    with open(path) as f:
                        bursts.append(json.load(f))
            if len(bursts) != a.bursts:
                print(f"bursts_report: {stem}: {len(bursts)} of {a.bursts} bursts", file=sys.stderr)
                continue
            seq = {"per_burst": {}, "sum_all": {}, "sum_2_n": {}}
            for key, _ in SIGNALS:
                v = [probe_value(b, key) for b in bursts]
                seq["per_burst"][key] = v
                seq["sum_all"][key] = sum(v)
                seq["sum_2_n"][key] = sum(v[1:])
            trial = [b["trial"] for b in bursts]
            seq["pgscan_kswapd"] = sum(t.get("pgscan_kswapd", 0) for t in trial)
            seq["workingset_refaults"] = sum(
                t.get("workingset_refault_file", 0) + t.get("workingset_refault_anon", 0)
                for t in trial
            )
            seq["thp_share_permille"] = [b["probe"]["thp_share_permille"] for b in bursts]
            cols = tsv_columns(stem + ".tsv")
            mf, gap = cols.get("min_free_kbytes", []), cols.get("watermark_gap_kib", [])
            seq["mean_min_free_kib"] = statistics.mean(mf) if mf else None
            # zoneinfo's high = min + (high - min): summed over zones, min is min_free_kbytes.
            seq["mean_high_wmark_kib"] = (
                statistics.mean(x + y for x, y in zip(mf, gap)) if mf and gap else None
            )
            kc = cols.get("kcompactd_cpu_ms", [])
            seq["kcompactd_cpu_ms"] = (kc[-1] - kc[0]) if len(kc) > 1 else None
            try:
                with open(stem + ".fragtuned-cpu-ms") as f:
                    seq["fragtuned_cpu_ms"] = float(f.read().strip() or 0)
            except OSError:
                seq["fragtuned_cpu_ms"] = None
            try:
                with open(stem + "-hugepages.json") as f:
                    hp = json.load(f)
                seq["hugepages"] = hp
                seq["hugepage_success"] = hp["got"] / hp["requested"] if hp["requested"] else None
            except (OSError, ValueError, KeyError):
                seq["hugepage_success"] = None
            arm_r["sequences"].append(seq)
        result["arms"][arm] = arm_r

    arms = [x for x in a.arms if result["arms"].get(x, {}).get("sequences")]
    head = "| metric | " + " | ".join(
        f"{ARM_NAMES.get(x, x)}, n={len(result['arms'][x]['sequences'])}" for x in arms
    ) + " |"
    print(head)
    print("|---" * (len(arms) + 1) + "|")

    def row(label, fn):
        cells = []
        for x in arms:
            vals = [v for v in (fn(s) for s in result["arms"][x]["sequences"]) if v is not None]
            cells.append(med_range(vals))
        print(f"| {label} | " + " | ".join(cells) + " |")

    for key, label in SIGNALS:
        row(f"{label}: sum over bursts 1..{a.bursts}", lambda s, k=key: s["sum_all"][k])
        row(f"{label}: sum over bursts 2..{a.bursts}", lambda s, k=key: s["sum_2_n"][k])
    # Per-burst range over bursts 2..N (all sequences pooled).
    for key, label in SIGNALS[:4]:
        cells = []
        for x in arms:
            pooled = [v for s in result["arms"][x]["sequences"] for v in s["per_burst"][key][1:]]
            cells.append(med_range(pooled))
        print(f"| {label}: per burst, bursts 2..{a.bursts} | " + " | ".join(cells) + " |")
    row(
        "probe backed by THP, bursts 2..N (%, median)",
        lambda s: statistics.median(s["thp_share_permille"][1:]) / 10,
    )
    row(
        "nr_hugepages probe: share of the request the kernel got (%)",
        lambda s: None if s["hugepage_success"] is None else 100 * s["hugepage_success"],
    )
    row("mean min_free_kbytes (KiB)", lambda s: s["mean_min_free_kib"])
    row("mean high watermark, summed over zones (KiB)", lambda s: s["mean_high_wmark_kib"])
    row("pgscan_kswapd over the bursts (pages)", lambda s: s["pgscan_kswapd"])
    row("workingset refaults over the bursts", lambda s: s["workingset_refaults"])
    row("kcompactd CPU over the sequence (ms)", lambda s: s["kcompactd_cpu_ms"])
    row("fragtuned CPU over the sequence (ms)", lambda s: s["fragtuned_cpu_ms"])

    # Verdicts against the defaults (arm a), medians of the sums.
    if "a" in arms:
        print()
        base = result["arms"]["a"]["sequences"]
        for x in arms:
            if x == "a":
                continue
            parts = []
            for key, _ in SIGNALS[:4]:
                for rng, name in (("sum_2_n", f"2..{a.bursts}"), ("sum_all", "all")):
                    d = statistics.median(s[rng][key] for s in base)
                    v = statistics.median(s[rng][key] for s in result["arms"][x]["sequences"])
                    parts.append(
                        f"{key} {name}: " + ("n/a" if d == 0 else f"{100 * (1 - v / d):.0f}%")
                    )
            print(f"{ARM_NAMES.get(x, x)} removes, of the defaults' median: " + "; ".join(parts))
            print()
    with open(a.json, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
