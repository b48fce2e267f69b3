#!/usr/bin/env python3
"""Tabulates `nr train` runs of several seeds from their summary.json files (Markdown on stdout).

Usage: train-seeds-table.py SEED=RUN_DIR[,PRETRAIN_RUN_DIR] ...
A run started with --init-from takes its pre-training time from PRETRAIN_RUN_DIR's summary.json (the
`--steps 0` run that wrote the model); a one-command run needs none. Each RUN_DIR may hold load.txt, the
1-minute load averages sampled during the run, one number a line.
"""
import json
import os
import statistics
import sys


def load(path):
    with open(os.path.join(path, "summary.json")) as f:
        return json.load(f)


def pct(x):
    return "–" if x is None else f"{100 * x:.1f}"


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def main(args):
    rows = []
    for arg in args:
        seed, dirs = arg.split("=", 1)
        run, _, pre = dirs.partition(",")
        s = load(run)
        k = s["after_rl"]["sampled"]["samples"]
        levels = sorted(s["after_rl"]["sampled"]["by_difficulty"], key=int)
        pre_s = load(pre)["timings"]["pretrain_s"] if pre else s["timings"].get("pretrain_s", 0)
        total = pre_s + s["timings"]["total_s"] - s["timings"].get("pretrain_s", 0)
        loads = []
        load_file = os.path.join(run, "load.txt")
        if os.path.exists(load_file):
            loads = [float(x) for x in open(load_file).read().split()]
        u = s.get("unseen_level", {})
        rows.append({
            "seed": seed,
            "pass1": [s["after_rl"]["sampled"]["by_difficulty"][lv]["pass@1"] for lv in levels],
            "pass1_all": s["after_rl"]["sampled"]["pass@1"],
            "greedy": s["after_rl"]["accuracy"],
            "greedy_before": s["after_pretraining"]["accuracy"],
            "passk_before": s["after_pretraining"].get("sampled", {}).get(f"pass@{k}"),
            "passk_after": s["after_rl"]["sampled"][f"pass@{k}"],
            "pass1_before": s["after_pretraining"].get("sampled", {}).get("pass@1"),
            "l6_before": u.get("after_pretraining", {}).get("accuracy"),
            "l6_after": u.get("after_rl", {}).get("accuracy"),
            "l6_p1_before": u.get("after_pretraining", {}).get("sampled", {}).get("pass@1"),
            "l6_p1_after": u.get("after_rl", {}).get("sampled", {}).get("pass@1"),
            "l6_pk_before": u.get("after_pretraining", {}).get("sampled", {}).get(f"pass@{k}"),
            "l6_pk_after": u.get("after_rl", {}).get("sampled", {}).get(f"pass@{k}"),
            "minutes": (pre_s / 60, (total - pre_s) / 60),
            "load": (min(loads), statistics.median(loads), max(loads)) if loads else None,
        })
    head = " | ".join(f"L{lv} pass@1" for lv in levels)
    print(f"| seed | {head} | pass@1 all | greedy all | pass@{k} before → after | "
          f"L6 greedy before → after | L6 pass@1 before → after | L6 pass@{k} before → after | "
          "wall min (pre-train + GRPO) | load min/median/max |")
    print("|" + "---|" * (len(levels) + 9))
    for r in rows:
        load_text = "–" if r["load"] is None else "/".join(f"{x:.0f}" for x in r["load"])
        print(f"| {r['seed']} | " + " | ".join(pct(p) for p in r["pass1"]) +
              f" | {pct(r['pass1_all'])} | {pct(r['greedy'])} | {pct(r['passk_before'])} → {pct(r['passk_after'])}"
              f" | {pct(r['l6_before'])} → {pct(r['l6_after'])}"
              f" | {pct(r['l6_p1_before'])} → {pct(r['l6_p1_after'])}"
              f" | {pct(r['l6_pk_before'])} → {pct(r['l6_pk_after'])}"
              f" | {r['minutes'][0]:.1f} + {r['minutes'][1]:.1f} | {load_text} |")
    cols = [mean_std([r["pass1"][i] for r in rows]) for i in range(len(levels))]
    print("| mean ± std | " + " | ".join(cols) +
          f" | {mean_std([r['pass1_all'] for r in rows])} | {mean_std([r['greedy'] for r in rows])}"
          f" | {mean_std([r['passk_before'] for r in rows])} → {mean_std([r['passk_after'] for r in rows])}"
          f" | {mean_std([r['l6_before'] for r in rows])} → {mean_std([r['l6_after'] for r in rows])}"
          f" | {mean_std([r['l6_p1_before'] for r in rows])} → {mean_std([r['l6_p1_after'] for r in rows])}"
          f" | {mean_std([r['l6_pk_before'] for r in rows])} → {mean_std([r['l6_pk_after'] for r in rows])} | | |")


if __name__ == "__main__":
    main(sys.argv[1:])
