#!/usr/bin/python3
"""The PyTorch anchor for the bench-tiny model rows of perf/compare-cpu.sh.

A CPU fp32 DeepSeek-V3 written in the structure of the official `deepseek-ai/DeepSeek-V3` inference/model.py
(ModelArgs, RMSNorm, complex freqs_cis with interleaved RoPE, MLA with q compression and the "absorb" attention over
the compressed caches kv_cache/pe_cache, the sigmoid group-limited Gate with a selection-only bias, MoE as a ModuleList
of Expert MLPs run by the official per-expert loop, a shared expert, one dense MLP layer, untied head), at the
bench-tiny config. It is our own code: what makes it an anchor is that it does the same work the same way as the
official code, so "N× the official PyTorch code" means something.

Two measurements, one JSON line each on stdout:
  {"op": "model_train", "shape": [16, 128], "ms": median step ms, "tokens_per_s": ..., "threads": N, "impl": ...}
      forward of the full sequence with autograd on (the official prefill path at start_pos 0, which is "absorb":
      the official attn_impl is a module-wide switch that defaults to "absorb" for prefill and decode alike),
      cross-entropy on the next tokens, backward, AdamW(lr 1e-3) step, zero_grad, then the aux-loss-free gate bias
      update b += 1e-3 * sign(mean_load - load) (not a gradient: the C# side does the same).
  {"op": "model_decode", "shape": [16, 32, 96], "ms": ms per decode step, "tokens_per_s": ..., ...}
      16 prompts of 32 random tokens (prefill, untimed), then 96 greedy steps of one token per sequence through the
      compressed cache under torch.inference_mode(); best of --rounds runs after one warm-up run.
--check runs a correctness smoke test instead and prints what it checks.
"""
import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelArgs:
    """bench-tiny (src/Model/DeepseekV3Config.cs, preset "bench-tiny"), named as in the official ModelArgs."""
    max_batch_size: int = 16
    max_seq_len: int = 2048          # max_position_embeddings; no rope_scaling, so no YaRN terms below
    vocab_size: int = 128
    dim: int = 128
    inter_dim: int = 384
    moe_inter_dim: int = 32
    n_layers: int = 4
    n_dense_layers: int = 1
    n_heads: int = 4
    n_routed_experts: int = 256
    n_shared_experts: int = 1
    n_activated_experts: int = 8
    n_expert_groups: int = 8
    n_limited_groups: int = 4
    score_func: str = "sigmoid"
    route_scale: float = 2.5
    q_lora_rank: int = 64
    kv_lora_rank: int = 64
    qk_nope_head_dim: int = 32
    qk_rope_head_dim: int = 16
    v_head_dim: int = 32
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6
    attn_impl: str = "absorb"        # the official default; "naive" is the reference path of --check


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        # torch 1.13 has no F.rms_norm (the official code calls it); these are the same three ops it fuses.
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def precompute_freqs_cis(args: ModelArgs) -> torch.Tensor:
    # Plain RoPE: max_seq_len does not exceed an original length here, so the official YaRN correction is a no-op.
    d = args.qk_rope_head_dim
    inv_freq = 1.0 / (args.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    angles = torch.outer(torch.arange(args.max_seq_len, dtype=torch.float32), inv_freq)
    return torch.polar(torch.ones_like(angles), angles)


def apply_rotary_emb(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    # Interleaved pairs (x0, x1), (x2, x3), ... as complex numbers, as the official code does; freqs_cis is
    # [seqlen, d/2] and broadcasts over the head axis x has at dim 2.
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    fc = freqs_cis.view(1, xc.size(1), 1, xc.size(-1))
    return torch.view_as_real(xc * fc).flatten(3).type_as(x)


def linear(in_f: int, out_f: int) -> nn.Linear:
    # The official Linear has no bias anywhere in the model.
    return nn.Linear(in_f, out_f, bias=False)


class MLA(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.n_heads = args.n_heads
        self.kv_lora_rank = args.kv_lora_rank
        self.qk_nope_head_dim = args.qk_nope_head_dim
        self.qk_rope_head_dim = args.qk_rope_head_dim
        self.qk_head_dim = args.qk_nope_head_dim + args.qk_rope_head_dim
        self.v_head_dim = args.v_head_dim
        self.wq_a = linear(args.dim, args.q_lora_rank)
        self.q_norm = RMSNorm(args.q_lora_rank, args.norm_eps)
        self.wq_b = linear(args.q_lora_rank, self.n_heads * self.qk_head_dim)
        self.wkv_a = linear(args.dim, self.kv_lora_rank + self.qk_rope_head_dim)
        self.kv_norm = RMSNorm(self.kv_lora_rank, args.norm_eps)
        self.wkv_b = linear(self.kv_lora_rank, self.n_heads * (self.qk_nope_head_dim + self.v_head_dim))
        self.wo = linear(self.n_heads * self.v_head_dim, args.dim)
        self.softmax_scale = self.qk_head_dim ** -0.5
        B, S = args.max_batch_size, args.max_seq_len
        if args.attn_impl == "naive":
            self.register_buffer("k_cache", torch.zeros(B, S, self.n_heads, self.qk_head_dim), persistent=False)
            self.register_buffer("v_cache", torch.zeros(B, S, self.n_heads, self.v_head_dim), persistent=False)
        else:
            # The compressed cache: one latent row and one rotary key per token, shared by all heads.
            self.register_buffer("kv_cache", torch.zeros(B, S, self.kv_lora_rank), persistent=False)
            self.register_buffer("pe_cache", torch.zeros(B, S, self.qk_rope_head_dim), persistent=False)

    def forward(self, x, start_pos: int, freqs_cis, mask: Optional[torch.Tensor]):
        bsz, seqlen, _ = x.shape
        end_pos = start_pos + seqlen
        q = self.wq_b(self.q_norm(self.wq_a(x))).view(bsz, seqlen, self.n_heads, self.qk_head_dim)
        q_nope, q_pe = torch.split(q, [self.qk_nope_head_dim, self.qk_rope_head_dim], dim=-1)
        q_pe = apply_rotary_emb(q_pe, freqs_cis)
        kv, k_pe = torch.split(self.wkv_a(x), [self.kv_lora_rank, self.qk_rope_head_dim], dim=-1)
        k_pe = apply_rotary_emb(k_pe.unsqueeze(2), freqs_cis)
        # With autograd on (the training step) the step must not read its keys back out of the persistent cache
        # buffers: an in-place write would chain every step's graph to the previous one's. At start_pos 0 the cache
        # rows [0, end_pos) are exactly this call's keys, so reading the fresh tensors is the same computation.
        use_cache = not torch.is_grad_enabled()
        if self.args.attn_impl == "naive":
            q = torch.cat([q_nope, q_pe], dim=-1)
            kvb = self.wkv_b(self.kv_norm(kv)).view(bsz, seqlen, self.n_heads, self.qk_nope_head_dim + self.v_head_dim)
            k_nope, v = torch.split(kvb, [self.qk_nope_head_dim, self.v_head_dim], dim=-1)
            k = torch.cat([k_nope, k_pe.expand(-1, -1, self.n_heads, -1)], dim=-1)
            if use_cache:
                self.k_cache[:bsz, start_pos:end_pos] = k
                self.v_cache[:bsz, start_pos:end_pos] = v
                k, v = self.k_cache[:bsz, :end_pos], self.v_cache[:bsz, :end_pos]
            scores = torch.einsum("bshd,bthd->bsht", q, k) * self.softmax_scale
        else:
            # Absorb: wkv_b's key half is folded into the query, so scores are taken against the latent directly.
            wkv_b = self.wkv_b.weight.view(self.n_heads, -1, self.kv_lora_rank)
            q_nope = torch.einsum("bshd,hdc->bshc", q_nope, wkv_b[:, :self.qk_nope_head_dim])
            kv_c, pe = self.kv_norm(kv), k_pe.squeeze(2)
            if use_cache:
                self.kv_cache[:bsz, start_pos:end_pos] = kv_c
                self.pe_cache[:bsz, start_pos:end_pos] = pe
                kv_c, pe = self.kv_cache[:bsz, :end_pos], self.pe_cache[:bsz, :end_pos]
            scores = (torch.einsum("bshc,btc->bsht", q_nope, kv_c) +
                      torch.einsum("bshr,btr->bsht", q_pe, pe)) * self.softmax_scale
        if mask is not None:
            scores = scores + mask.unsqueeze(1)
        scores = scores.softmax(dim=-1, dtype=torch.float32).type_as(x)
        if self.args.attn_impl == "naive":
            out = torch.einsum("bsht,bthd->bshd", scores, v)
        else:
            # ... and its value half is applied after the weighted sum of latents.
            out = torch.einsum("bsht,btc->bshc", scores, kv_c)
            out = torch.einsum("bshc,hdc->bshd", out, wkv_b[:, -self.v_head_dim:])
        return self.wo(out.flatten(2))


class MLP(nn.Module):
    """SwiGLU: the dense layer-0 MLP, each routed Expert and the shared expert."""

    def __init__(self, dim: int, inter_dim: int):
        super().__init__()
        self.w1 = linear(dim, inter_dim)
        self.w2 = linear(inter_dim, dim)
        self.w3 = linear(dim, inter_dim)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


Expert = MLP


class Gate(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.topk = args.n_activated_experts
        self.n_groups = args.n_expert_groups
        self.topk_groups = args.n_limited_groups
        self.route_scale = args.route_scale
        self.weight = nn.Parameter(torch.empty(args.n_routed_experts, args.dim))
        # Load-balancing bias: steers selection only and is moved by the sign rule, never by a gradient.
        self.register_buffer("bias", torch.zeros(args.n_routed_experts))

    def forward(self, x):
        original = torch.matmul(x, self.weight.t()).sigmoid()
        scores = original + self.bias
        grouped = scores.view(x.size(0), self.n_groups, -1)
        group_scores = grouped.topk(2, dim=-1)[0].sum(dim=-1)
        keep = group_scores.topk(self.topk_groups, dim=-1)[1]
        # -inf (not 0) for the dropped groups: biased scores can be below zero.
        dropped = torch.ones_like(group_scores, dtype=torch.bool).scatter_(1, keep, False)
        scores = grouped.masked_fill(dropped.unsqueeze(-1), float("-inf")).flatten(1)
        indices = scores.topk(self.topk, dim=-1)[1]
        weights = original.gather(1, indices)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        return (weights * self.route_scale).type_as(x), indices


class MoE(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.dim = args.dim
        self.n_routed_experts = args.n_routed_experts
        self.gate = Gate(args)
        self.experts = nn.ModuleList([Expert(args.dim, args.moe_inter_dim) for _ in range(args.n_routed_experts)])
        self.shared_experts = MLP(args.dim, args.n_shared_experts * args.moe_inter_dim)
        self.last_counts = None  # tokens per expert in the last forward: the load of the bias update

    def forward(self, x):
        shape = x.size()
        x = x.view(-1, self.dim)
        weights, indices = self.gate(x)
        y = torch.zeros_like(x)
        counts_t = torch.bincount(indices.flatten(), minlength=self.n_routed_experts)
        self.last_counts = counts_t
        counts = counts_t.tolist()
        # The official per-expert loop: one small gather / three GEMMs / scatter-add per expert that got tokens.
        for i in range(self.n_routed_experts):
            if counts[i] == 0:
                continue
            idx, top = torch.where(indices == i)
            y[idx] += self.experts[i](x[idx]) * weights[idx, top, None]
        z = self.shared_experts(x)
        return (y + z).view(shape)


class Block(nn.Module):
    def __init__(self, layer_id: int, args: ModelArgs):
        super().__init__()
        self.attn = MLA(args)
        self.ffn = MLP(args.dim, args.inter_dim) if layer_id < args.n_dense_layers else MoE(args)
        self.attn_norm = RMSNorm(args.dim, args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, args.norm_eps)

    def forward(self, x, start_pos, freqs_cis, mask):
        x = x + self.attn(self.attn_norm(x), start_pos, freqs_cis, mask)
        return x + self.ffn(self.ffn_norm(x))


class Transformer(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.embed = nn.Embedding(args.vocab_size, args.dim)
        self.layers = nn.ModuleList([Block(i, args) for i in range(args.n_layers)])
        self.norm = RMSNorm(args.dim, args.norm_eps)
        self.head = linear(args.dim, args.vocab_size)
        self.register_buffer("freqs_cis", precompute_freqs_cis(args), persistent=False)

    def forward(self, tokens, start_pos: int = 0, all_logits: bool = False):
        # The official forward is wrapped in inference_mode and returns the last position only; the training step
        # needs autograd and every position, so both are the caller's choice here.
        seqlen = tokens.size(1)
        h = self.embed(tokens)
        freqs_cis = self.freqs_cis[start_pos:start_pos + seqlen]
        mask = None
        if seqlen > 1:
            # Causal within the new tokens; with start_pos > 0 (not used here) the official code has the same shape.
            mask = torch.full((seqlen, seqlen), float("-inf"), device=tokens.device).triu_(1)
        for layer in self.layers:
            h = layer(h, start_pos, freqs_cis, mask)
        h = self.norm(h)
        return self.head(h if all_logits else h[:, -1])

    def moe_layers(self):
        return [layer.ffn for layer in self.layers if isinstance(layer.ffn, MoE)]

    @torch.no_grad()
    def update_gate_biases(self, rate: float = 1e-3):
        # Aux-loss-free balancing: raise the bias of under-loaded experts, lower it for over-loaded ones.
        for moe in self.moe_layers():
            load = moe.last_counts.float()
            moe.gate.bias += rate * torch.sign(load.mean() - load)


def build(args: ModelArgs, seed: int = 1) -> Transformer:
    torch.manual_seed(seed)
    model = Transformer(args)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.02)  # every weight matrix, the embedding and the gates; norms stay ones
    return model


def tokens(seed: int, *shape) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, ModelArgs.vocab_size, shape, generator=g)


# --------------------------------------------------------------------------------------------------- measurements
def train_step(model, opt, inp, tgt):
    logits = model(inp, 0, all_logits=True)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1))
    loss.backward()
    opt.step()
    opt.zero_grad()
    model.update_gate_biases(1e-3)
    return loss.item()


def bench_train(threads, batch, seq, warmup_steps, steps):
    model = build(ModelArgs())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = tokens(2, batch, seq + 1)
    inp, tgt = ids[:, :-1], ids[:, 1:]  # the same batch every step, as the C# probe does

    def timed():
        t0 = time.perf_counter()
        train_step(model, opt, inp, tgt)
        return time.perf_counter() - t0

    # Warm up until steady: at least --warmup-steps, then on until two steps in a row agree within 10%
    # (allocator and OpenBLAS buffers settle in the first steps), capped at three times that.
    prev = None
    for i in range(max(1, 3 * warmup_steps)):
        t = timed()
        if i + 1 >= warmup_steps and prev is not None and abs(t - prev) <= 0.1 * prev:
            break
        prev = t
    times = [timed() for _ in range(steps)]
    med = statistics.median(times)
    return {"op": "model_train", "shape": [batch, seq], "ms": round(med * 1e3, 3),
            "tokens_per_s": round(batch * seq / med, 1), "threads": threads,
            "impl": "torch %s fp32, official DeepSeek-V3 model.py structure, MLA absorb prefill (autograd on), "
                    "per-expert loop, AdamW" % torch.__version__}


@torch.inference_mode()
def generate(model, prompt, new_tokens):
    """Greedy decode as the official generate(): prefill the prompt, then one token per sequence per step."""
    p = prompt.size(1)
    logits = model(prompt, 0)
    nxt = logits.argmax(-1, keepdim=True)
    t0 = time.perf_counter()
    for s in range(new_tokens):
        logits = model(nxt, p + s)
        nxt = logits.argmax(-1, keepdim=True)
    return time.perf_counter() - t0


def bench_decode(threads, batch, prompt_len, new_tokens, rounds):
    model = build(ModelArgs(max_batch_size=batch))
    prompt = tokens(3, batch, prompt_len)
    generate(model, prompt, new_tokens)  # warm-up run of the same length
    best = min(generate(model, prompt, new_tokens) for _ in range(rounds))
    return {"op": "model_decode", "shape": [batch, prompt_len, new_tokens], "ms": round(best / new_tokens * 1e3, 3),
            "tokens_per_s": round(batch * new_tokens / best, 1), "threads": threads,
            "impl": "torch %s fp32, official DeepSeek-V3 model.py structure, MLA absorb with kv_cache/pe_cache, "
                    "per-expert loop, inference_mode, best of %d" % (torch.__version__, rounds)}


# --------------------------------------------------------------------------------------------------------- check
def check():
    ok = True
    batch, p = 4, 32
    absorb = build(ModelArgs(max_batch_size=batch))
    naive = build(ModelArgs(max_batch_size=batch, attn_impl="naive"))
    naive.load_state_dict(absorb.state_dict())
    prompt = tokens(3, batch, p)
    with torch.inference_mode():
        first = absorb(prompt, 0).argmax(-1, keepdim=True)    # prefill through the compressed cache
        cached = absorb(first, p)                             # the first decode step reads the cache
        full = naive(torch.cat([prompt, first], 1), 0, all_logits=True)[:, -1]  # no cache, full keys and values
    rel = ((cached - full).abs().max() / full.abs().max()).item()
    good = rel <= 1e-4
    ok &= good
    print(f"check 1: logits of the first decode step (absorb, compressed kv_cache/pe_cache, start_pos {p}) vs the "
          f"naive full-sequence forward at position {p} (batch {batch}): max |diff| / max |logit| = {rel:.2e} "
          f"(≤ 1e-4: {'ok' if good else 'FAILED'})")

    model = build(ModelArgs())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = tokens(2, 16, 129)
    losses = [train_step(model, opt, ids[:, :-1], ids[:, 1:]) for _ in range(6)]
    good = losses[-1] < losses[0] and all(math.isfinite(x) for x in losses)
    ok &= good
    bias_moved = any(m.gate.bias.abs().max().item() > 0 for m in model.moe_layers())
    ok &= bias_moved
    print("check 2: training loss over 6 steps on one 16x128 batch (AdamW lr 1e-3): "
          + " ".join(f"{x:.4f}" for x in losses) + f" (decreases: {'ok' if good else 'FAILED'}; "
          f"ln(128) = {math.log(128):.4f}); gate biases moved by the sign rule: {'ok' if bias_moved else 'FAILED'}")
    print(f"check: {'all ok' if ok else 'FAILED'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup-steps", type=int, default=3, help="training steps before timing (at least)")
    ap.add_argument("--steps", type=int, default=10, help="timed training steps (median)")
    ap.add_argument("--rounds", type=int, default=3, help="timed decode runs after one warm-up run (best)")
    ap.add_argument("--check", action="store_true", help="correctness smoke check instead of timing")
    ap.add_argument("--only", choices=["train", "decode"], help="one measurement only")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.check:
        sys.exit(0 if check() else 1)
    if a.only != "decode":
        print(json.dumps(bench_train(a.threads, 16, 128, a.warmup_steps, a.steps)), flush=True)
    if a.only != "train":
        print(json.dumps(bench_decode(a.threads, 16, 32, 96, a.rounds)), flush=True)


if __name__ == "__main__":
    main()
