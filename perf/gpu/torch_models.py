"""The models of the training-step anchors in perf/gpu/torch_anchors.py, at the configs of perf/gpu/GpuBenchTraining.cs
and perf/gpu/GpuBenchDense.cs (keep them in step).

  deepseek_v3(smoke)  the ~110M DeepSeek-V3-architecture model (MLA, 32 routed experts top-4 of 8 groups / 4 kept, one
                      shared expert, one dense layer) as perf/anchor_model.py writes it in the official model.py's
                      structure.
  DenseGqa            a Qwen2-style dense decoder written the way HF's modeling_qwen2 computes it: RMSNorm, q/k/v
                      projections with bias, rotate-half RoPE, grouped K/V heads (SDPA with the K/V heads repeated),
                      SwiGLU MLP, tied embedding head. dense(smoke) builds it at Qwen2.5-0.5B's shapes.
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import anchor_model  # noqa: E402  (perf/anchor_model.py)


def deepseek_v3(smoke: bool, batch: int, seq: int) -> "anchor_model.Transformer":
    """GpuBenchTraining.Config100M (or ConfigSmoke); caches sized for [batch, seq] (the absorb path writes them)."""
    if smoke:
        a = anchor_model.ModelArgs(max_batch_size=batch, max_seq_len=max(seq, 64), vocab_size=128, dim=32, inter_dim=64,
                                   moe_inter_dim=16, n_layers=2, n_dense_layers=1, n_heads=2, n_routed_experts=16,
                                   n_shared_experts=1, n_activated_experts=4, n_expert_groups=8, n_limited_groups=4,
                                   q_lora_rank=16, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4,
                                   v_head_dim=8)
    else:
        a = anchor_model.ModelArgs(max_batch_size=batch, max_seq_len=seq, vocab_size=32768, dim=512, inter_dim=1536,
                                   moe_inter_dim=192, n_layers=8, n_dense_layers=1, n_heads=8, n_routed_experts=32,
                                   n_shared_experts=1, n_activated_experts=4, n_expert_groups=8, n_limited_groups=4,
                                   q_lora_rank=256, kv_lora_rank=128, qk_nope_head_dim=64, qk_rope_head_dim=32,
                                   v_head_dim=64)
    return anchor_model.build(a)


class RmsNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        # HF computes the norm in fp32 and casts back before the weight.
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def causal_attention(q, k, v):
    """Causal SDPA (flash on a recent GPU torch); torch < 2.0 has none, so the math form (only the CPU smoke test)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    t = q.shape[-2]
    s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    return torch.softmax(s.float().masked_fill(mask, float("-inf")), -1).to(q.dtype) @ v


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, hd = c["hidden"], c["head_dim"]
        self.hq, self.hkv, self.hd = c["heads"], c["kv_heads"], hd
        self.input_norm = RmsNorm(h, c["eps"])
        self.post_norm = RmsNorm(h, c["eps"])
        self.q = nn.Linear(h, self.hq * hd, bias=True)
        self.k = nn.Linear(h, self.hkv * hd, bias=True)
        self.v = nn.Linear(h, self.hkv * hd, bias=True)
        self.o = nn.Linear(self.hq * hd, h, bias=False)
        self.gate = nn.Linear(h, c["intermediate"], bias=False)
        self.up = nn.Linear(h, c["intermediate"], bias=False)
        self.down = nn.Linear(c["intermediate"], h, bias=False)

    def forward(self, x, cos, sin):
        # x: [B, T, C]; cos, sin: [T, hd]
        b, t, _ = x.shape
        y = self.input_norm(x)
        q = self.q(y).view(b, t, self.hq, self.hd).transpose(1, 2)     # [B, Hq, T, hd]
        k = self.k(y).view(b, t, self.hkv, self.hd).transpose(1, 2)    # [B, Hkv, T, hd]
        v = self.v(y).view(b, t, self.hkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.hq // self.hkv
        k = k.repeat_interleave(rep, dim=1)                            # HF's repeat_kv order
        v = v.repeat_interleave(rep, dim=1)
        a = causal_attention(q, k, v)                                  # [B, Hq, T, hd]
        x = x + self.o(a.transpose(1, 2).reshape(b, t, self.hq * self.hd))
        y = self.post_norm(x)
        return x + self.down(F.silu(self.gate(y)) * self.up(y))


class DenseGqa(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c["vocab"], c["hidden"])
        self.layers = nn.ModuleList([Layer(c) for _ in range(c["layers"])])
        self.norm = RmsNorm(c["hidden"], c["eps"])
        hd = c["head_dim"]
        inv = 1.0 / (c["theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        self.register_buffer("inv_freq", inv, persistent=False)

    def forward(self, tokens):
        t = tokens.shape[1]
        angles = torch.outer(torch.arange(t, device=tokens.device, dtype=torch.float32), self.inv_freq)
        emb = torch.cat((angles, angles), dim=-1)                       # [T, hd]
        cos, sin = emb.cos(), emb.sin()
        h = self.embed(tokens)
        for layer in self.layers:
            h = layer(h, cos.to(h.dtype), sin.to(h.dtype))
        return F.linear(self.norm(h), self.embed.weight)               # tied head


QWEN25_HALF_B = dict(vocab=151936, hidden=896, intermediate=4864, layers=24, heads=14, kv_heads=2, head_dim=64,
                     eps=1e-6, theta=1000000.0)
DENSE_SMOKE = dict(vocab=96, hidden=32, intermediate=48, layers=2, heads=4, kv_heads=2, head_dim=8, eps=1e-6,
                   theta=10000.0)


def dense(smoke: bool) -> DenseGqa:
    torch.manual_seed(1)
    m = DenseGqa(DENSE_SMOKE if smoke else QWEN25_HALF_B)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.02)
    return m


def active_parameters(model) -> int:
    """Parameters a token's forward multiplies with, counted as ours do (GpuBench*.CountParameters)."""
    total = sum(p.numel() for p in model.parameters())
    if isinstance(model, DenseGqa):
        return total  # tied: the table is the head
    a = model.args
    inactive = model.embed.weight.numel()
    inactive += len(model.moe_layers()) * (a.n_routed_experts - a.n_activated_experts) * 3 * a.dim * a.moe_inter_dim
    return total - inactive
