#!/usr/bin/env python3
"""Merges `nr-gpubench --json` (ours) and perf/gpu/torch_anchors.py (torch) JSON lines into one markdown table.

    python3 perf/gpu/compare_table.py OURS.jsonl [TORCH.jsonl] [--check CHECK.jsonl] [--title TEXT]

Rows are paired by (op, shape, dtype); where torch has several variants of one op (RMSNorm as PyTorch ops and as
F.rms_norm) the fastest is compared. ratio = torch ms / ours ms: above 1 ours is faster. The targets are the
issues' (CUDA backend, #6/#7):
  gemm_fp32            >= 0.5x cuBLAS fp32 with TF32 off
  gemm_bf16            >= 0.7x cuBLAS bf16
  softmax, rmsnorm, silu_mul, adamw
                       >= 80% of the copy bandwidth (the best device-to-device copy either side measured)
  attention_bf16_fwd   >= 0.6x SDPA;   attention_bf16_bwd >= 0.5x SDPA (backward alone on both sides)
  mla_decode           >= 60% of the copy bandwidth (GB/s over the cache bytes)
  moe_fwd_bwd          >= 1x the PyTorch layer
  train_step, train_step_dense
                       >= 1x a PyTorch AMP training step (paired when ours ran with --bf16: dtype bf16-autocast)
An op with no number on our side (kernel not implemented, unsupported, error) does not meet its target.
Lines that are not JSON objects are ignored, so a log with other output can be passed as is.
"""
import argparse
import json
import sys

TARGETS = {
    "gemm_fp32": ("ratio", 0.5, "≥ 0.5× cuBLAS fp32 (TF32 off)"),
    "gemm_bf16": ("ratio", 0.7, "≥ 0.7× cuBLAS bf16"),
    "softmax": ("copy", 0.8, "≥ 80% of copy"),
    "rmsnorm": ("copy", 0.8, "≥ 80% of copy"),
    "silu_mul": ("copy", 0.8, "≥ 80% of copy"),
    "adamw": ("copy", 0.8, "≥ 80% of copy"),
    "attention_bf16_fwd": ("ratio", 0.6, "≥ 0.6× SDPA"),
    "attention_bf16_bwd": ("ratio", 0.5, "≥ 0.5× SDPA"),
    "mla_decode": ("copy", 0.6, "≥ 60% of copy"),
    "moe_fwd_bwd": ("ratio", 1.0, "≥ 1× PyTorch"),
    "train_step": ("ratio", 1.0, "≥ 1× PyTorch AMP"),
    "train_step_dense": ("ratio", 1.0, "≥ 1× PyTorch AMP"),
}

STATUS_WORDS = {"not_implemented": "not implemented", "unsupported": "unsupported", "error": "error"}


def read_lines(path):
    rows = []
    if not path:
        return rows
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except OSError as e:
        print(f"compare_table: cannot read {path}: {e}", file=sys.stderr)
        return rows
    with f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(r, dict):
                rows.append(r)
    return rows


def key(r):
    return r.get("op"), tuple(r.get("shape") or ()), r.get("dtype")


def split(rows):
    """(device line, ordered op rows by key). For a key seen twice the fastest ok row wins."""
    device, ops = None, {}
    for r in rows:
        if r.get("op") == "device":
            device = r
            continue
        if "op" not in r:
            continue
        k = key(r)
        old = ops.get(k)
        if old is None or (r.get("status") == "ok" and (old.get("status") != "ok" or r["ms"] < old["ms"])):
            ops[k] = r
    return device, ops


def rate(r):
    for name, unit in (("tflops", "TFLOP/s"), ("gbps", "GB/s"), ("tokens_per_s", "tok/s")):
        if isinstance(r.get(name), (int, float)):
            v = r[name]
            return f"{v:,.0f} {unit}" if v >= 1000 else f"{v:.3g} {unit}"
    return ""


def cell(r, ceiling):
    if r is None:
        return "-"
    if r.get("status") != "ok":
        return STATUS_WORDS.get(r.get("status"), r.get("status", "?"))
    parts = [f"{r['ms']:.3f} ms", rate(r)]
    if ceiling and isinstance(r.get("gbps"), (int, float)) and r.get("op") != "copy":
        parts.append(f"{100 * r['gbps'] / ceiling:.0f}% of copy")
    if r.get("variant") and r.get("impl") == "torch" and r["variant"] not in ("per-expert loop",):
        parts.append(f"({r['variant']})")
    if str(r.get("op", "")).startswith("train_step") and r.get("impl") != "torch":
        mfu = r.get("mfu")
        parts.append(f"MFU {100 * mfu:.1f}%" if isinstance(mfu, (int, float)) else "MFU unknown")
    return " · ".join(p for p in parts if p)


def judge(op, ours, torch, ceiling):
    """(target text, verdict) for an op with a target, else ("-", "-")."""
    t = TARGETS.get(op)
    if t is None:
        return "-", "-"
    kind, need, text = t
    if ours is None or ours.get("status") != "ok":
        return text, "NOT met (no number)"
    if kind == "ratio":
        if torch is None or torch.get("status") != "ok":
            return text, "? (no torch number)"
        got = torch["ms"] / ours["ms"]
        return text, ("met" if got >= need else "NOT met") + f" ({got:.2f}×)"
    if not ceiling or not isinstance(ours.get("gbps"), (int, float)):
        return text, "? (no copy number)"
    got = ours["gbps"] / ceiling
    return text, ("met" if got >= need else "NOT met") + f" ({100 * got:.0f}%)"


def check_summary(rows):
    checks = [r for r in rows if "check" in r]
    summary = next((r for r in rows if r.get("summary")), None)
    if not checks and not summary:
        return []
    bad = [r for r in checks if r.get("status") != "pass"]
    out = []
    if summary:
        out.append(f"Conformance (`nr check --device {summary.get('device')}`): {summary.get('passed')} passed, "
                   f"{summary.get('failed')} failed, {summary.get('missing')} not implemented, of {summary.get('checks')}.")
    else:
        out.append(f"Conformance: {len(checks) - len(bad)} of {len(checks)} checks passed (the run ended before its summary).")
    for r in bad[:40]:
        why = "; ".join(r.get("failures") or [])[:160]
        out.append(f"- {r['check']}: {r.get('status')} {why}".rstrip())
    if len(bad) > 40:
        out.append(f"- ... {len(bad) - 40} more")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ours")
    ap.add_argument("torch", nargs="?")
    ap.add_argument("--check", help="`nr check --json` output, summarised above the table")
    ap.add_argument("--title", default=None)
    a = ap.parse_args()

    ours_dev, ours = split(read_lines(a.ours))
    torch_dev, torch = split(read_lines(a.torch))
    copies = [r["gbps"] for r in list(ours.values()) + list(torch.values())
              if r.get("op") == "copy" and r.get("status") == "ok" and isinstance(r.get("gbps"), (int, float))]
    ceiling = max(copies) if copies else None

    card = (ours_dev or {}).get("card") or (torch_dev or {}).get("card") or "unknown card"
    date = (ours_dev or {}).get("date") or (torch_dev or {}).get("date") or ""
    print(f"# {a.title or f'GPU benchmarks: {card}, {date}'}\n")
    if ours_dev:
        print(f"- ours: `nr-gpubench` on {ours_dev.get('device')} ({ours_dev.get('kernels')})")
        pk = ours_dev.get("peak_bf16_tflops")
        print(f"- peaks (datasheet): " + (f"bf16 dense {pk}, fp32 {ours_dev.get('peak_fp32_tflops')} TFLOP/s" if pk else "unknown card"))
    if torch_dev:
        print(f"- torch {torch_dev.get('torch')}" + (f", CUDA {torch_dev['cuda']}" if torch_dev.get("cuda") else "")
              + f" on {torch_dev.get('card')}")
    else:
        print("- torch: no anchor numbers in this run")
    print(f"- copy ceiling: {ceiling:,.0f} GB/s (best device-to-device copy, bytes read + written)" if ceiling
          else "- copy ceiling: not measured")
    if (ours_dev or {}).get("smoke") or (torch_dev or {}).get("smoke"):
        print("- **smoke sizes**: this run checks the harness; its numbers mean nothing")
    print("- ratio = torch ms / ours ms (> 1: ours faster)\n")
    for line in check_summary(read_lines(a.check)):
        print(line)
    if a.check:
        print()

    print("| op | shape | dtype | ours | torch | ratio | target | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    met = total = 0
    for k, r in list(ours.items()) + [(k, None) for k in torch if k not in ours]:
        op, shape, dtype = k
        t = torch.get(k)
        ratio = "-"
        if r and t and r.get("status") == "ok" and t.get("status") == "ok":
            ratio = f"{t['ms'] / r['ms']:.2f}×"
        target, verdict = judge(op, r, t, ceiling) if r is not None else ("-", "-")
        if target != "-":
            total += 1
            met += verdict.startswith("met")
        shape_s = "×".join(map(str, shape)) if shape else "-"
        print(f"| {op} | {shape_s} | {dtype} | {cell(r, ceiling)} | {cell(t, ceiling)} | {ratio} | {target} | {verdict} |")
    print(f"\nTargets met: {met} of {total}.")
    errors = [r for r in list(ours.values()) + list(torch.values()) if r.get("status") in ("error", "not_implemented") and r.get("error")]
    if errors:
        print("\nWhy some rows have no number:\n")
        for r in errors:
            print(f"- {r.get('impl')} {r['op']}: {r['error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
