#!/usr/bin/python3
"""PyTorch / OpenBLAS anchors for perf/compare-cpu.sh, one JSON object per line on stdout.

Same protocol as `nr bench`: warm up (>= --warmup seconds), then time single calls until --time seconds and
--min-reps runs have passed, report the median. Lines:
  {"op": "blas_info", ...}                          which BLAS torch calls and which OpenBLAS kernel it picked
  {"op": "gemm", "shape": [M, N, K], "ms": ..., "gflops": ...}            torch.matmul, fp32
  {"op": "attention_fwd" | "attention_fwd_bwd", "shape": [B, H, T, D, D], "ms": ..., "gflops": ...}
      causal softmax(Q Kᵀ/√d + mask) V written out in PyTorch ops (1.13 has no fused CPU SDPA)
  {"op": "attention_fwd_mem", "shape": [...], "peak_rss_mb": ...}          one fresh process per T
GFLOP/s counts the same useful flops as `nr bench` (causal pairs only; backward = 2.5x forward).
"""
import argparse
import ctypes
import json
import math
import os
import re
import resource
import subprocess
import sys
import time

import torch


def measure(fn, warmup, seconds, min_reps):
    t0 = time.perf_counter()
    while True:
        fn()
        if time.perf_counter() - t0 >= warmup:
            break
    samples = []
    t0 = time.perf_counter()
    while len(samples) < min_reps or (time.perf_counter() - t0 < seconds and len(samples) < 100000):
        s = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - s) * 1e3)
    samples.sort()
    n = len(samples)
    med = samples[n // 2] if n % 2 else 0.5 * (samples[n // 2 - 1] + samples[n // 2])
    return med, samples[0], n


def blas_info():
    """Which BLAS library torch has loaded, and for OpenBLAS the kernel its runtime dispatch chose."""
    a = torch.randn(64, 64)
    a @ a  # make sure the BLAS library is loaded
    info = {"op": "blas_info", "torch": torch.__version__, "threads": torch.get_num_threads()}
    cfg = torch.__config__.show()
    m = re.search(r"BLAS_INFO=([^,\s]+)", cfg)
    info["torch_blas_info"] = m.group(1) if m else "?"
    libs = sorted({line.split()[-1] for line in open("/proc/self/maps") if "blas" in line.lower() and "/" in line})
    info["loaded"] = libs
    for lib in libs:
        try:
            h = ctypes.CDLL(lib)
            h.openblas_get_corename.restype = ctypes.c_char_p
            h.openblas_get_config.restype = ctypes.c_char_p
            info["openblas_core"] = h.openblas_get_corename().decode()
            info["openblas_config"] = h.openblas_get_config().decode()
            break
        except (OSError, AttributeError):
            continue
    info["env_OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE")
    info["env_OPENBLAS_L2_SIZE"] = os.environ.get("OPENBLAS_L2_SIZE")
    try:
        import threadpoolctl  # optional: names the BLAS and its threads in its own words
        info["threadpoolctl"] = [{k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                                 for p in threadpoolctl.threadpool_info()]
    except ImportError:
        pass
    return info


def attention_inputs(B, H, T, D, grad):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.rand(B, H, T, D, generator=g) * 2 - 1 for _ in range(3))
    if grad:
        for t in (q, k, v):
            t.requires_grad_(True)
    mask = torch.full((T, T), float("-inf")).triu(1)
    return q, k, v, mask


def attention(q, k, v, mask):
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + mask
    return torch.softmax(s, dim=-1) @ v


def attn_flops(B, H, T, D, backward):
    return 2.0 * B * H * (T * (T + 1) / 2) * (2 * D) * (3.5 if backward else 1.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gemm", default="", help="M,N,K;M,N,K;...")
    ap.add_argument("--attention", default="", help="B,H,T,D;... (causal, forward and forward+backward)")
    ap.add_argument("--attn-mem", default="", help="B,H,T,D;... peak RSS of the forward, one process each")
    ap.add_argument("--mem-child", default="", help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--time", type=float, default=2.0)
    ap.add_argument("--min-reps", type=int, default=5)
    ap.add_argument("--info", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    if args.mem_child:
        B, H, T, D = map(int, args.mem_child.split(","))
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        with torch.no_grad():
            q, k, v, mask = attention_inputs(B, H, T, D, False)
            attention(q, k, v, mask)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(json.dumps({"op": "attention_fwd_mem", "shape": [B, H, T, D, D], "peak_rss_mb": peak,
                          "baseline_rss_mb": base}))
        return

    if args.info:
        print(json.dumps(blas_info()), flush=True)

    for spec in filter(None, args.gemm.split(";")):
        M, N, K = map(int, spec.split(","))
        a, b = torch.randn(M, K), torch.randn(K, N)
        c = torch.empty(M, N)
        med, best, n = measure(lambda: torch.matmul(a, b, out=c), args.warmup, args.time, args.min_reps)
        print(json.dumps({"op": "gemm", "shape": [M, N, K], "ms": med, "gflops": 2.0 * M * N * K / (med * 1e6),
                          "min_ms": best, "reps": n, "threads": args.threads, "impl": "torch.matmul"}), flush=True)

    for spec in filter(None, args.attention.split(";")):
        B, H, T, D = map(int, spec.split(","))
        q, k, v, mask = attention_inputs(B, H, T, D, False)
        with torch.no_grad():
            med, best, n = measure(lambda: attention(q, k, v, mask), args.warmup, args.time, args.min_reps)
        print(json.dumps({"op": "attention_fwd", "shape": [B, H, T, D, D], "ms": med,
                          "gflops": attn_flops(B, H, T, D, False) / (med * 1e6), "min_ms": best, "reps": n,
                          "threads": args.threads}), flush=True)
        q, k, v, mask = attention_inputs(B, H, T, D, True)
        do = torch.rand(B, H, T, D) * 2 - 1

        def step():
            for t in (q, k, v):
                t.grad = None
            attention(q, k, v, mask).backward(do)
        med, best, n = measure(step, args.warmup, args.time, args.min_reps)
        print(json.dumps({"op": "attention_fwd_bwd", "shape": [B, H, T, D, D], "ms": med,
                          "gflops": attn_flops(B, H, T, D, True) / (med * 1e6), "min_ms": best, "reps": n,
                          "threads": args.threads}), flush=True)

    for spec in filter(None, args.attn_mem.split(";")):
        # A fresh process per size: ru_maxrss is a high-water mark and never goes down.
        out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--mem-child", spec],
                             capture_output=True, text=True)
        if out.returncode == 0:
            print(out.stdout.strip(), flush=True)
        else:
            B, H, T, D = map(int, spec.split(","))
            print(json.dumps({"op": "attention_fwd_mem", "shape": [B, H, T, D, D], "error": out.stderr[-300:]}), flush=True)


if __name__ == "__main__":
    main()
