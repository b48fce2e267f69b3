#!/usr/bin/python3
"""Renders perf/compare-cpu.sh's JSON lines as one markdown table.

usage: compare_table.py OURS.jsonl ANCHORS.jsonl [OURS_MEM.jsonl]
Each file may hold several rounds; per (op, shape, threads) the smallest median over the rounds is kept on
both sides (load from other processes only ever slows a round down, so this treats both sides alike).
ratio = anchor ms / ours ms (> 1: ours is faster). % peak = ours GFLOP/s over the measured FMA peak for the
same thread count (`nr bench peak`).
"""
import json
import sys

# op, shape → (ratio target, what the issue asks)
TARGETS = {
    ("gemm", (256, 256, 256)): 0.8,
    ("gemm", (1024, 1024, 1024)): 0.9,
    ("gemm", (2048, 2048, 2048)): 0.9,
    ("attention_fwd", (1, 8, 512, 64, 64)): 2.0,
    ("attention_fwd_bwd", (1, 8, 512, 64, 64)): 1.5,
}


def load(path):
    best, extra = {}, []
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if "ms" not in r or "shape" not in r:
            extra.append(r)
            continue
        key = (r["op"], tuple(r["shape"]), r.get("threads", 0))
        if key not in best or r["ms"] < best[key]["ms"]:
            best[key] = r
    return best, extra


def main():
    ours, _ = load(sys.argv[1])
    anchors, anchor_extra = load(sys.argv[2])
    peak = {1: None, "all": None}
    for (op, shape, _), r in ours.items():
        if op == "peak_1core":
            peak[1] = max(peak[1] or 0, r["gflops"])
        elif op == "peak":
            peak["all"] = max(peak["all"] or 0, r["gflops"])
            peak["threads"] = shape[0]
    print(f"measured fp32 FMA peak: 1 core {peak[1] or 0:.1f} GFLOP/s, all cores "
          f"({peak.get('threads', '?')}) {peak['all'] or 0:.1f} GFLOP/s (best of trials)\n")
    print("| op | shape | threads | ours ms | ours GFLOP/s | anchor ms | anchor GFLOP/s | ratio (anchor/ours) | ours % peak | target |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted(ours, key=lambda k: (not k[0].startswith("gemm"), k[0], k[2], k[1])):
        op, shape, threads = key
        if op.startswith("peak"):
            continue
        r = ours[key]
        a = anchors.get(key)
        pk = peak[1] if threads == 1 else peak["all"]
        pct = f"{100 * r['gflops'] / pk:.0f}%" if pk else "-"
        ratio = a["ms"] / r["ms"] if a else None
        tgt = TARGETS.get((op, shape)) if threads != 1 else None
        tgt_s = "-" if tgt is None else (f"≥{tgt}× {'met' if ratio and ratio >= tgt else 'NOT met'}")
        shape_s = "×".join(map(str, shape))
        name = op + ("_" + r["layout"] if r.get("layout", "NN") != "NN" else "")
        a_ms = f"{a['ms']:.3f}" if a else "-"
        a_gf = f"{a['gflops']:.1f}" if a else "-"
        ratio_s = f"{ratio:.2f}×" if ratio else "-"
        print(f"| {name} | {shape_s} | {threads} | {r['ms']:.3f} | {r['gflops']:.1f} | {a_ms} | {a_gf} | {ratio_s} | {pct} | {tgt_s} |")

    mem_ours = sorted((r for r in _all(sys.argv[3]) if r.get("op") == "attention_fwd"), key=lambda r: r["shape"][2]) \
        if len(sys.argv) > 3 else []
    mem_anchor = {r["shape"][2]: r for r in anchor_extra if r.get("op") == "attention_fwd_mem"}
    if mem_ours:
        print("\nAttention forward memory (causal, B=1, H=8, D=64): ours holds per-tile scratch only; the anchor "
              "materialises T×T scores.\n")
        print("| T | ours scratch KiB | ours tensors MiB | ours peak RSS MiB | ours ms | anchor peak RSS MiB |")
        print("|---|---|---|---|---|---|")
        for r in mem_ours:
            T = r["shape"][2]
            a = mem_anchor.get(T)
            a_s = f"{a['peak_rss_mb']:.0f}" if a and "peak_rss_mb" in a else ("failed" if a else "-")
            print(f"| {T} | {r['scratch_bytes'] / 1024:.0f} | {r['io_bytes'] / 1048576:.1f} | {r['peak_rss_mb']:.0f} | "
                  f"{r['ms']:.1f} | {a_s} |")


def _all(path):
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            yield json.loads(line)


if __name__ == "__main__":
    main()
