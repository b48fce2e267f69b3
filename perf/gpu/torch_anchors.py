#!/usr/bin/env python3
"""PyTorch anchors for `nr-gpubench`: the same ops at the same sizes on the same card, in one run.

    python3 perf/gpu/torch_anchors.py [--device cuda|cpu] [--smoke] [--only NAME ...] > torch.jsonl

One JSON object per line on stdout, in `nr-gpubench --json`'s format with "impl": "torch":
  {"op": "device", ...}                                        the card, torch and CUDA versions
  {"op": OP, "shape": [...], "dtype": ..., "status": "ok", "ms": median, "tflops" | "gbps": ..., "variant": ...}
Protocol (as ours): warm-up (>= 2 calls and >= 100 ms), then >= 10 timed calls until 1 s has passed (at most 200),
the median reported. On CUDA every call is bracketed by torch.cuda.Event pairs; on the CPU by perf_counter.
Rates use the same work counts as ours: TFLOP/s = useful flops (causal pairs only for attention, backward = 2.5x
forward), GB/s = the fewest bytes the op must move (so the PyTorch-ops RMSNorm, which makes several passes, shows
its effective rate). An op that fails (no SDPA, out of memory) is a row with "status": "error"; the run goes on.

Ops (names match ours so perf/gpu/compare_table.py can pair them):
  copy               dst.copy_(src), 1 GiB of bytes (GB/s counts read + write)
  gemm_fp32          torch.matmul fp32, TF32 off (cuBLAS SGEMM: the target of our SIMT kernel)
  gemm_tf32          torch.matmul fp32, TF32 on (shown for reference)
  gemm_bf16          torch.matmul bf16 (cuBLAS on tensor cores)
  softmax            torch.softmax over the last axis
  rmsnorm            variant "ops": x * rsqrt(mean(x^2) + eps) * w; variant "F.rms_norm" where torch has it
  silu_mul           F.silu(gate) * up
  adamw              torch.optim.AdamW.step on one parameter (fused=True where available, else foreach)
  attention_bf16_*   F.scaled_dot_product_attention bf16, causal: fwd (no grad), bwd (backward of a saved forward),
                     fwd_bwd
  attention_fp32_*   the same in fp32 (fwd, bwd)
  train_step         a PyTorch AMP (bf16 autocast, fp32 master weights) training step of the ~110M DeepSeek-V3 config of
                     nr-gpubench's train (perf/anchor_model.py's model: forward, cross-entropy, backward, AdamW, router
                     bias update); dtype "bf16-autocast", paired with `nr-gpubench --bf16`
  train_step_dense   the same for the Qwen2.5-0.5B-shaped dense model of train_dense (perf/gpu/torch_models.py)
  moe_fwd, moe_fwd_bwd
                     a straightforward PyTorch MoE layer at DeepSeek-V3 routing: sigmoid scores + bias, group-limited
                     top-k (group score = sum of its top-2), weights = unbiased scores normalised x 2.5; token-slots
                     sorted by expert, one SwiGLU (three matmuls) per expert on its rows, weighted scatter back
                     (index_add_). fp32 with TF32 off, like our engine. No shared expert (ours has none in this test).
"""
import argparse
import json
import math
import sys
import time
import traceback

import torch
import torch.nn.functional as F

import torch_models  # perf/gpu/torch_models.py (this script's folder is on sys.path)

# The sizes of src/Cli/GpuBenchSizes.cs (keep them in step: rows are paired by op, shape and dtype).
FULL = dict(copy_bytes=1 << 30, gemm=4096, rows=16384, cols=4096, elements=1 << 26,
            flash_bf16=(8, 16, 4096, 128), attention_fp32=(8, 16, 2048, 128),
            moe=(8192, 1024, 256, 256, 8, 8, 4), train=(8, 1024), train_dense=(4, 1024),
            warmup_calls=2, warmup_ms=100.0, budget_ms=1000.0, min_reps=10, max_reps=200)
SMOKE = dict(copy_bytes=1 << 20, gemm=64, rows=64, cols=256, elements=1 << 14,
             flash_bf16=(1, 2, 64, 32), attention_fp32=(1, 2, 48, 32),
             moe=(64, 32, 16, 16, 4, 8, 4), train=(2, 8), train_dense=(2, 8),
             warmup_calls=1, warmup_ms=0.0, budget_ms=0.0, min_reps=10, max_reps=200)


class Bench:
    def __init__(self, device, sizes):
        self.device = device
        self.s = sizes
        self.cuda = device.type == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def time(self, fn):
        s = self.s
        t0 = time.perf_counter()
        n = 0
        while n < s["warmup_calls"] or (time.perf_counter() - t0) * 1e3 < s["warmup_ms"]:
            fn()
            n += 1
        self.sync()
        samples = []
        t0 = time.perf_counter()
        while len(samples) < s["min_reps"] or ((time.perf_counter() - t0) * 1e3 < s["budget_ms"] and len(samples) < s["max_reps"]):
            if self.cuda:
                a = torch.cuda.Event(enable_timing=True)
                b = torch.cuda.Event(enable_timing=True)
                a.record()
                fn()
                b.record()
                b.synchronize()
                samples.append(a.elapsed_time(b))
            else:
                t = time.perf_counter()
                fn()
                samples.append((time.perf_counter() - t) * 1e3)
        samples.sort()
        k = len(samples)
        med = samples[k // 2] if k % 2 else 0.5 * (samples[k // 2 - 1] + samples[k // 2])
        return med, samples[0], k, "cuda_event" if self.cuda else "perf_counter"

    def row(self, op, shape, dtype, fn, flops=0.0, nbytes=0.0, tokens=0.0, **extra):
        r = {"op": op, "impl": "torch", "device": str(self.device), "shape": list(shape), "dtype": dtype}
        try:
            ms, best, reps, timer = self.time(fn)
            r.update(status="ok", ms=ms)
            sec = ms / 1e3
            if flops:
                r["tflops"] = flops / sec / 1e12
            if nbytes:
                r["gbps"] = nbytes / sec / 1e9
            if tokens:
                r["tokens_per_s"] = tokens / sec
            r.update(min_ms=best, reps=reps, timer=timer)
        except Exception as e:  # an op that cannot run here is a row, not the end of the run
            r.update(status="error", error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        r.update(extra)
        print(json.dumps(r), flush=True)
        return r

    def rand(self, *shape, dtype=torch.float32, lo=-1.0, hi=1.0, grad=False):
        t = torch.empty(*shape, device=self.device, dtype=torch.float32).uniform_(lo, hi).to(dtype)
        return t.requires_grad_(grad) if grad else t

    def release(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------------------ ops

def bench_copy(b):
    n = b.s["copy_bytes"]
    src = torch.randint(0, 256, (n,), dtype=torch.uint8, device=b.device)
    dst = torch.empty_like(src)
    b.row("copy", [n], "u8", lambda: dst.copy_(src), nbytes=2.0 * n)


def bench_gemm(b):
    n = b.s["gemm"]
    a, c = b.rand(n, n), b.rand(n, n)
    flops = 2.0 * n ** 3
    if b.cuda:
        old = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        b.row("gemm_fp32", [n, n, n], "fp32", lambda: torch.matmul(a, c), flops=flops, variant="cublas, tf32 off")
        torch.backends.cuda.matmul.allow_tf32 = True
        b.row("gemm_tf32", [n, n, n], "tf32", lambda: torch.matmul(a, c), flops=flops, variant="cublas, tf32 on")
        torch.backends.cuda.matmul.allow_tf32 = old
    else:
        b.row("gemm_fp32", [n, n, n], "fp32", lambda: torch.matmul(a, c), flops=flops)
    a16, c16 = a.bfloat16(), c.bfloat16()
    b.row("gemm_bf16", [n, n, n], "bf16", lambda: torch.matmul(a16, c16), flops=flops)


def bench_softmax(b):
    r, c = b.s["rows"], b.s["cols"]
    x = b.rand(r, c, lo=-4, hi=4)
    b.row("softmax", [r, c], "fp32", lambda: torch.softmax(x, -1), nbytes=2.0 * r * c * 4)


def bench_rmsnorm(b):
    r, c = b.s["rows"], b.s["cols"]
    x = b.rand(r, c)
    w = b.rand(c, lo=0.5, hi=1.5)
    nbytes = (2.0 * r * c + c + r) * 4
    eps = 1e-6

    def ops():
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    b.row("rmsnorm", [r, c], "fp32", ops, nbytes=nbytes, variant="ops")
    if hasattr(F, "rms_norm"):
        b.row("rmsnorm", [r, c], "fp32", lambda: F.rms_norm(x, (c,), w, eps), nbytes=nbytes, variant="F.rms_norm")


def bench_silu_mul(b):
    n = b.s["elements"]
    g, u = b.rand(n, lo=-4, hi=4), b.rand(n)
    b.row("silu_mul", [n], "fp32", lambda: F.silu(g) * u, nbytes=3.0 * n * 4)


def bench_adamw(b):
    n = b.s["elements"]
    p = torch.nn.Parameter(b.rand(n))
    p.grad = b.rand(n)
    opt, variant = None, None
    for kw, name in (({"fused": True}, "fused"), ({"foreach": True}, "foreach"), ({}, "default")):
        try:
            opt = torch.optim.AdamW([p], lr=1e-4, weight_decay=0.01, **kw)
            opt.step()  # fails here when the variant is not supported on this device
            variant = name
            break
        except (TypeError, RuntimeError, ValueError):
            opt = None
    b.row("adamw", [n], "fp32", opt.step, nbytes=7.0 * n * 4, variant=variant)


def attention(q, k, v):
    """Causal SDPA; torch < 2.0 has none, so the math form (only the smoke test meets that)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    t = q.shape[-2]
    s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    return torch.softmax(s.float().masked_fill(mask, float("-inf")), -1).to(q.dtype) @ v


def bench_attention(b, name, shape, dtype, with_fwd_bwd):
    B, H, T, D = shape
    flops = 4.0 * B * H * D * (T * (T + 1) / 2)
    tag = "bf16" if dtype == torch.bfloat16 else "fp32"
    variant = "sdpa" if hasattr(F, "scaled_dot_product_attention") else "math (torch has no SDPA)"
    q, k, v = (b.rand(B, H, T, D, dtype=dtype, grad=True) for _ in range(3))
    dO = b.rand(B, H, T, D, dtype=dtype)

    def fwd():
        with torch.no_grad():
            attention(q, k, v)

    b.row(f"{name}_fwd", shape, tag, fwd, flops=flops, variant=variant)
    out = attention(q, k, v)

    def bwd():
        out.backward(dO, retain_graph=True)
        q.grad = k.grad = v.grad = None

    b.row(f"{name}_bwd", shape, tag, bwd, flops=2.5 * flops, variant=variant)
    del out
    if with_fwd_bwd:
        def fwd_bwd():
            attention(q, k, v).backward(dO)
            q.grad = k.grad = v.grad = None

        b.row(f"{name}_fwd_bwd", shape, tag, fwd_bwd, flops=3.5 * flops, variant=variant)


class TorchMoe(torch.nn.Module):
    """DeepSeek-V3's routed MoE written the straightforward way (see the module docstring)."""

    def __init__(self, hidden, width, experts, topk, groups, kept, device):
        super().__init__()
        self.e, self.k, self.g, self.kept = experts, topk, groups, kept
        p = lambda *s: torch.nn.Parameter(torch.randn(*s, device=device) * 0.02)
        self.gate = p(experts, hidden)
        self.register_buffer("bias", torch.zeros(experts, device=device))
        self.w_gate = p(experts, width, hidden)
        self.w_up = p(experts, width, hidden)
        self.w_down = p(experts, hidden, width)

    def forward(self, x):  # x: [n, hidden]
        n = x.shape[0]
        scores = torch.sigmoid(x @ self.gate.t())                          # [n, E]
        sel = scores.detach() + self.bias
        group_score = sel.view(n, self.g, -1).topk(2, -1).values.sum(-1)    # [n, G]
        keep = group_score.topk(self.kept, -1).indices
        group_mask = torch.zeros(n, self.g, dtype=torch.bool, device=x.device).scatter_(1, keep, True)
        sel = sel.masked_fill(~group_mask.repeat_interleave(self.e // self.g, 1), float("-inf"))
        idx = sel.topk(self.k, -1).indices                                  # [n, k]
        w = scores.gather(1, idx)
        w = w / w.sum(-1, keepdim=True) * 2.5
        flat = idx.reshape(-1)
        order = torch.sort(flat, stable=True).indices                       # slots in expert order
        counts = torch.bincount(flat, minlength=self.e).tolist()            # the one host sync (ours has it too)
        token = order // self.k
        xs = x[token]                                                       # [n*k, hidden]
        outs, start = [], 0
        for e, c in enumerate(counts):
            if c == 0:
                continue
            xe = xs[start:start + c]
            h = F.silu(xe @ self.w_gate[e].t()) * (xe @ self.w_up[e].t())
            outs.append(h @ self.w_down[e].t())
            start += c
        ys = torch.cat(outs) * w.reshape(-1)[order].unsqueeze(1)
        return torch.zeros_like(x).index_add_(0, token, ys)


def bench_moe(b):
    tokens, hidden, width, experts, topk, groups, kept = b.s["moe"]
    shape = [tokens, hidden, width, experts, topk, groups, kept]
    old = torch.backends.cuda.matmul.allow_tf32 if b.cuda else None
    if b.cuda:
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 like our engine
    torch.manual_seed(7)
    layer = TorchMoe(hidden, width, experts, topk, groups, kept, b.device)
    x = b.rand(tokens, hidden, grad=True)
    dy = b.rand(tokens, hidden)
    flops = 2.0 * tokens * experts * hidden + 6.0 * tokens * topk * hidden * width

    def fwd():
        with torch.no_grad():
            layer(x)

    def fwd_bwd():
        layer(x).backward(dy)
        for p in layer.parameters():
            p.grad = None
        x.grad = None

    b.row("moe_fwd", shape, "fp32", fwd, flops=flops, tokens=tokens, variant="per-expert loop")
    b.row("moe_fwd_bwd", shape, "fp32", fwd_bwd, flops=3 * flops, tokens=tokens, variant="per-expert loop")
    if b.cuda:
        torch.backends.cuda.matmul.allow_tf32 = old


def bench_train_amp(b, name, model, vocab, batch, seq, moe):
    """One AMP step: bf16 autocast forward and loss, fp32 backward into fp32 master weights, AdamW."""
    model = model.to(b.device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(2)
    tok = torch.randint(0, vocab, (batch, seq + 1), generator=g).to(b.device)
    inp, tgt = tok[:, :-1], tok[:, 1:].reshape(-1)
    active = torch_models.active_parameters(model)

    def step():
        with torch.autocast(device_type=b.device.type, dtype=torch.bfloat16):
            logits = model(inp, 0, all_logits=True) if moe else model(inp)
            loss = F.cross_entropy(logits.reshape(-1, vocab).float(), tgt)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if moe:
            model.update_gate_biases(1e-3)

    tokens = float(batch * seq)
    b.row(name, [batch, seq], "bf16-autocast", step, flops=6.0 * active * tokens, tokens=tokens,
          variant="torch.autocast bf16, AdamW", params_active=active)


def bench_train(b):
    batch, seq = b.s["train"]
    smoke = b.s is SMOKE
    model = torch_models.deepseek_v3(smoke, batch, seq)
    bench_train_amp(b, "train_step", model, model.args.vocab_size, batch, seq, True)


def bench_train_dense(b):
    batch, seq = b.s["train_dense"]
    smoke = b.s is SMOKE
    c = torch_models.DENSE_SMOKE if smoke else torch_models.QWEN25_HALF_B
    bench_train_amp(b, "train_step_dense", torch_models.dense(smoke), c["vocab"], batch, seq, False)


BENCHES = [
    ("copy", bench_copy),
    ("gemm", bench_gemm),
    ("softmax", bench_softmax),
    ("rmsnorm", bench_rmsnorm),
    ("silu_mul", bench_silu_mul),
    ("adamw", bench_adamw),
    ("attention_bf16", lambda b: bench_attention(b, "attention_bf16", b.s["flash_bf16"], torch.bfloat16, True)),
    ("attention_fp32", lambda b: bench_attention(b, "attention_fp32", b.s["attention_fp32"], torch.float32, False)),
    ("moe", bench_moe),
    ("train", bench_train),
    ("train_dense", bench_train_dense),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks this script in seconds; the numbers mean nothing")
    ap.add_argument("--only", nargs="*", default=[], help="names or prefixes: " + ", ".join(n for n, _ in BENCHES))
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"torch_anchors: torch {torch.__version__} sees no CUDA device", file=sys.stderr)
        return 2
    wanted = [w for o in args.only for w in o.split(",") if w]
    # "gemm_bf16" picks the gemm group (all three GEMMs run together: they share inputs).
    picked = [(n, f) for n, f in BENCHES if not wanted or any(n.startswith(w) or w.startswith(n) for w in wanted)]
    if wanted and not picked:
        print(f"torch_anchors: nothing matches {wanted}; known: {', '.join(n for n, _ in BENCHES)}", file=sys.stderr)
        return 2
    b = Bench(device, SMOKE if args.smoke else FULL)
    info = {"op": "device", "impl": "torch", "device": str(device), "torch": torch.__version__, "smoke": args.smoke,
            "date": time.strftime("%Y-%m-%d", time.gmtime())}
    if b.cuda:
        info.update(card=torch.cuda.get_device_name(0), cuda=torch.version.cuda,
                    sms=torch.cuda.get_device_properties(0).multi_processor_count)
    else:
        info.update(card="cpu", threads=torch.get_num_threads())
    print(json.dumps(info), flush=True)
    failed = 0
    for name, fn in picked:
        try:
            fn(b)
        except Exception as e:  # setup failed (out of memory, say): one row under the group's name
            failed += 1
            print(json.dumps({"op": name, "impl": "torch", "device": str(device), "shape": [], "dtype": "-", "status": "error",
                              "error": f"{type(e).__name__}: {e}"}), flush=True)
            traceback.print_exc(file=sys.stderr)
        finally:
            b.release()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
