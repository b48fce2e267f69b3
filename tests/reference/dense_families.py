#!/usr/bin/python3
"""PyTorch reference for the dense families: qwen2, llama (llama3 RoPE scaling), qwen3 (tied embeddings).

Usage:
    /usr/bin/python3 tests/reference/dense_families.py --out tests/fixtures

Writes one model directory per family under the output directory (qwen2-tiny-ref, llama-tiny-ref,
qwen3-tiny-ref, qwen3-moe-tiny-ref), each holding:
  config.json          HF field names for the family (one of the three RoPE config spellings each:
                       qwen2 rope_scaling keyed by "type" (yarn), llama by "rope_type" (llama3),
                       qwen3 transformers >= 5's rope_parameters (linear))
  model.safetensors    F32 random weights under HF names (qwen3: no lm_head.weight, the head is tied)
  expected.safetensors
    input_ids I64 [B, T], targets I64 [B, T]
    logits F32 [B, T, V]                 full causal forward
    decode_logits F32 [B, T - P, V]      prefill of P tokens into a K/V cache, then one token at a time
    loss F32 [1]                         mean cross-entropy of logits vs targets
    grad.<name> F32                      d(loss)/d(weight) for every parameter (zeros for an unchosen expert)
  metadata: prefill (P).
qwen2-tiny-ref also holds the golden case of `nr grpo-grad` on a dense model:
  grpo_input.safetensors     input_ids I64 [N, TG], completion_mask F32 [N, TG], rewards F32 [N],
                             ref_per_token_logps F32 [N, TG]
  grpo_expected.safetensors  loss [1], per_token_logps [N, TG] (position t scores token t given 0..t-1;
                             position 0 holds 0), advantages [N], grad.<name> for every weight
  grpo_settings.json         the loss settings (TRL's GRPOTrainer._compute_loss; old = logps.detach())

The modules are written from Hugging Face's modeling_llama.py, modeling_qwen2.py, modeling_qwen3.py,
modeling_qwen3_moe.py (sparse MLP: softmax router, top-k, norm_topk_prob, mlp_only_layers) and
modeling_rope_utils.py (default, linear, llama3 and yarn inverse frequencies, rotate_half, repeat_kv,
the yarn attention factor on cos/sin). The transformers package is not needed. Inverse frequencies and
cos/sin are computed in float32 as HF does; everything after that runs in float64 from the float32 weights.
"""

import argparse
import json
import math
import os
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deepseek_v3 import safetensors_bytes  # noqa: E402  (the same writer as the DeepSeek reference)
from grpo import advantages, grpo_loss  # noqa: E402  (TRL's loss and advantages, as the GRPO oracle has them)

B, T, P = 2, 12, 5

FAMILIES = OrderedDict(
    qwen2=OrderedDict(
        architectures=["Qwen2ForCausalLM"], model_type="qwen2", vocab_size=64, hidden_size=32,
        intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        hidden_act="silu", max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=10000.0,
        rope_scaling=OrderedDict(type="yarn", factor=4.0, original_max_position_embeddings=16),
        tie_word_embeddings=False, use_sliding_window=False, sliding_window=4096, max_window_layers=28,
        bos_token_id=1, eos_token_id=2, torch_dtype="float32"),
    llama=OrderedDict(
        architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=64, hidden_size=32,
        intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
        hidden_act="silu", max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=500000.0,
        rope_scaling=OrderedDict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                 original_max_position_embeddings=16),
        attention_bias=False, mlp_bias=False, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
        torch_dtype="float32"),
    qwen3=OrderedDict(
        architectures=["Qwen3ForCausalLM"], model_type="qwen3", vocab_size=64, hidden_size=32,
        intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=12,
        hidden_act="silu", max_position_embeddings=64, rms_norm_eps=1e-6,
        rope_parameters=OrderedDict(rope_type="linear", factor=2.0, rope_theta=1000000.0),
        attention_bias=False, tie_word_embeddings=True, use_sliding_window=False, sliding_window=None,
        max_window_layers=28, bos_token_id=1, eos_token_id=[2, 3], torch_dtype="float32"),
    qwen3_moe=OrderedDict(
        architectures=["Qwen3MoeForCausalLM"], model_type="qwen3_moe", vocab_size=64, hidden_size=32,
        intermediate_size=48, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
        hidden_act="silu", max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=1000000.0,
        rope_scaling=None, attention_bias=False, tie_word_embeddings=False, use_sliding_window=False,
        sliding_window=None, max_window_layers=28, num_experts=8, num_experts_per_tok=2, moe_intermediate_size=12,
        norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[0], bos_token_id=1, eos_token_id=2,
        torch_dtype="float32"),
)


# ---------------------------------------------------------------- config

def head_dim(c):
    return c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]


def rope_block(c):
    """(type, theta, block) from either spelling, as modeling_rope_utils reads it."""
    if c.get("rope_parameters") is not None:
        rp = c["rope_parameters"]
        return rp.get("rope_type", "default"), rp.get("rope_theta", c.get("rope_theta", 10000.0)), rp
    rs = c.get("rope_scaling")
    theta = c.get("rope_theta", 10000.0)
    if rs is None:
        return "default", theta, {}
    return rs.get("rope_type", rs.get("type")), theta, rs


def family_flags(c):
    """(q/k/v bias, o_proj bias, q/k norm) of the family."""
    mt = c["model_type"]
    if mt == "qwen2":
        return True, False, False
    bias = bool(c.get("attention_bias", False))
    return bias, bias, mt in ("qwen3", "qwen3_moe")


def is_moe_layer(c, l):
    """Qwen3MoeDecoderLayer's rule."""
    return (c.get("num_experts", 0) > 0 and l not in c.get("mlp_only_layers", [])
            and (l + 1) % c.get("decoder_sparse_step", 1) == 0)


# ---------------------------------------------------------------- RoPE (modeling_rope_utils)

def inv_freq_and_attention_factor(c):
    kind, base, rs = rope_block(c)
    dim = head_dim(c)
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    if kind == "default":
        return inv_freq, 1.0
    if kind == "linear":
        return inv_freq / rs["factor"], 1.0
    if kind == "llama3":
        factor = rs["factor"]
        low_freq_factor = rs["low_freq_factor"]
        high_freq_factor = rs["high_freq_factor"]
        old_context_len = rs["original_max_position_embeddings"]
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
        is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        return torch.where(is_medium, smoothed, inv_freq_llama), 1.0
    if kind == "yarn":
        factor = rs["factor"]
        original = rs.get("original_max_position_embeddings") or c["max_position_embeddings"]

        def get_mscale(scale, mscale=1.0):
            return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0

        attention_factor = rs.get("attention_factor")
        if attention_factor is None:
            m, mad = rs.get("mscale"), rs.get("mscale_all_dim")
            attention_factor = get_mscale(factor, m) / get_mscale(factor, mad) if m and mad else get_mscale(factor)
        beta_fast = rs.get("beta_fast") or 32
        beta_slow = rs.get("beta_slow") or 1

        def correction_dim(rotations):
            return (dim * math.log(original / (rotations * 2 * math.pi))) / (2 * math.log(base))

        low, high = correction_dim(beta_fast), correction_dim(beta_slow)
        if rs.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
        pos_freqs = base ** (torch.arange(0, dim, 2).float() / dim)
        extrapolation = 1.0 / pos_freqs
        interpolation = 1.0 / (factor * pos_freqs)
        extrapolation_factor = 1 - ramp
        inv = interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor
        return inv, attention_factor
    raise ValueError(kind)


def cos_sin(c, positions):
    """HF's RotaryEmbedding.forward: float32 angles, cat(freqs, freqs), times the attention factor."""
    inv_freq, attention = inv_freq_and_attention_factor(c)
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos() * attention).double(), (emb.sin() * attention).double()


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x, cos, sin):
    """x: [B, H, S, D]; cos/sin: [B, S, D] (per-sequence positions)."""
    return x * cos[:, None] + rotate_half(x) * sin[:, None]


# ---------------------------------------------------------------- model

def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def linear(x, W, name, bias):
    y = x @ W[name + ".weight"].t()
    return y + W[name + ".bias"] if bias else y


def repeat_kv(x, groups):
    b, h, s, d = x.shape
    return x if groups == 1 else x[:, :, None].expand(b, h, groups, s, d).reshape(b, h * groups, s, d)


def attention(c, W, p, x, cos, sin, cache, start):
    """x: [B, S, D] at positions start..start+S-1; cache: dict with 'k', 'v' [B, Hkv, L, hd] or None."""
    qkv_bias, o_bias, qk_norm = family_flags(c)
    hq, hkv, hd = c["num_attention_heads"], c["num_key_value_heads"], head_dim(c)
    b, s, _ = x.shape
    q = linear(x, W, p + "q_proj", qkv_bias).view(b, s, hq, hd)
    k = linear(x, W, p + "k_proj", qkv_bias).view(b, s, hkv, hd)
    v = linear(x, W, p + "v_proj", qkv_bias).view(b, s, hkv, hd)
    if qk_norm:
        q = rms_norm(q, W[p + "q_norm.weight"], c["rms_norm_eps"])
        k = rms_norm(k, W[p + "k_norm.weight"], c["rms_norm_eps"])
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    if cache is not None:
        if "k" in cache:
            k = torch.cat([cache["k"], k], 2)
            v = torch.cat([cache["v"], v], 2)
        cache["k"], cache["v"] = k, v
    groups = hq // hkv
    k, v = repeat_kv(k, groups), repeat_kv(v, groups)
    scores = (q @ k.transpose(-1, -2)) * hd ** -0.5                           # [B, Hq, S, L]
    L = k.shape[2]
    qpos = torch.arange(start, start + s)[:, None]
    kpos = torch.arange(L)[None, :]
    scores = scores.masked_fill(kpos > qpos, float("-inf"))
    o = torch.softmax(scores, -1) @ v                                          # [B, Hq, S, hd]
    o = o.transpose(1, 2).reshape(b, s, hq * hd)
    return linear(o, W, p + "o_proj", o_bias)


def swiglu(W, m, x):
    return linear(F.silu(linear(x, W, m + "gate_proj", False)) * linear(x, W, m + "up_proj", False),
                  W, m + "down_proj", False)


def sparse_moe(c, W, m, x, margins):
    """Qwen3MoeSparseMoeBlock: softmax over all experts, top-k, renormalised with norm_topk_prob."""
    b, s, d = x.shape
    flat = x.reshape(-1, d)
    probs = torch.softmax(flat @ W[m + "gate.weight"].t(), dim=1)
    k = c["num_experts_per_tok"]
    top, chosen = torch.topk(probs, k + 1, dim=-1)
    if margins is not None:
        margins.append((top[:, k - 1] - top[:, k]).min().item())   # how far the k-th choice is from the next
    weights, chosen = top[:, :k], chosen[:, :k]
    if c["norm_topk_prob"]:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    out = torch.zeros_like(flat)
    for e in range(c["num_experts"]):
        rows, slot = torch.where(chosen == e)
        if rows.numel() == 0:
            continue
        y = swiglu(W, m + "experts.%d." % e, flat[rows])
        out = out.index_add(0, rows, y * weights[rows, slot, None])
    return out.view(b, s, d)


def forward(c, W, ids, caches=None, start=0, margins=None):
    """ids: [B, S] at positions start..start+S-1 → logits [B, S, V]."""
    b, s = ids.shape
    eps = c["rms_norm_eps"]
    positions = torch.arange(start, start + s)
    cos, sin = cos_sin(c, positions)
    cos, sin = cos[None].expand(b, s, -1), sin[None].expand(b, s, -1)
    h = W["model.embed_tokens.weight"][ids]
    for l in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % l
        a = attention(c, W, p + "self_attn.", rms_norm(h, W[p + "input_layernorm.weight"], eps), cos, sin,
                      None if caches is None else caches[l], start)
        h = h + a
        x = rms_norm(h, W[p + "post_attention_layernorm.weight"], eps)
        h = h + (sparse_moe(c, W, p + "mlp.", x, margins) if is_moe_layer(c, l) else swiglu(W, p + "mlp.", x))
    h = rms_norm(h, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if c["tie_word_embeddings"] else W["lm_head.weight"]
    return h @ head.t()


def make_weights(c, rng):
    """name -> float32 numpy array, HF names in HF module order."""
    qkv_bias, o_bias, qk_norm = family_flags(c)
    D, I, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    hq, hkv, hd = c["num_attention_heads"], c["num_key_value_heads"], head_dim(c)
    w = OrderedDict()

    def lin(name, out_f, in_f, bias):
        w[name + ".weight"] = (rng.standard_normal((out_f, in_f)) / math.sqrt(in_f)).astype(np.float32)
        if bias:
            w[name + ".bias"] = (0.1 * rng.standard_normal(out_f)).astype(np.float32)

    def norm(name, n):
        w[name + ".weight"] = (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w["model.embed_tokens.weight"] = rng.standard_normal((V, D)).astype(np.float32)
    for l in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % l
        lin(p + "self_attn.q_proj", hq * hd, D, qkv_bias)
        lin(p + "self_attn.k_proj", hkv * hd, D, qkv_bias)
        lin(p + "self_attn.v_proj", hkv * hd, D, qkv_bias)
        lin(p + "self_attn.o_proj", D, hq * hd, o_bias)
        if qk_norm:
            norm(p + "self_attn.q_norm", hd)
            norm(p + "self_attn.k_norm", hd)
        if is_moe_layer(c, l):
            w[p + "mlp.gate.weight"] = rng.standard_normal((c["num_experts"], D)).astype(np.float32)
            for e in range(c["num_experts"]):
                lin(p + "mlp.experts.%d.gate_proj" % e, c["moe_intermediate_size"], D, False)
                lin(p + "mlp.experts.%d.up_proj" % e, c["moe_intermediate_size"], D, False)
                lin(p + "mlp.experts.%d.down_proj" % e, D, c["moe_intermediate_size"], False)
        else:
            lin(p + "mlp.gate_proj", I, D, False)
            lin(p + "mlp.up_proj", I, D, False)
            lin(p + "mlp.down_proj", D, I, False)
        norm(p + "input_layernorm", D)
        norm(p + "post_attention_layernorm", D)
    norm("model.norm", D)
    if not c["tie_word_embeddings"]:
        lin("lm_head", V, D, False)
    return w


class RoutingTooClose(Exception):
    pass


def build(c, seed, out_dir):
    rng = np.random.default_rng(seed)
    weights = make_weights(c, rng)
    ids = torch.from_numpy(rng.integers(0, c["vocab_size"], size=(B, T)).astype(np.int64))
    targets = torch.from_numpy(rng.integers(0, c["vocab_size"], size=(B, T)).astype(np.int64))
    W = OrderedDict((k, torch.tensor(v, dtype=torch.float64, requires_grad=True)) for k, v in weights.items())

    margins = []
    logits = forward(c, W, ids, margins=margins)
    # float32 rounding must not flip an expert choice between this oracle and the engine.
    if margins and min(margins) < 2e-5:
        raise RoutingTooClose(min(margins))
    loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1))
    loss.backward()

    with torch.no_grad():
        caches = [dict() for _ in range(c["num_hidden_layers"])]
        forward(c, W, ids[:, :P], caches, 0)
        steps = [forward(c, W, ids[:, t:t + 1], caches, t) for t in range(P, T)]
        decode = torch.cat(steps, 1)
        gap = (decode - logits[:, P:]).abs().max().item()
        assert gap < 1e-9, "cached decode disagrees with the full forward: %g" % gap

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "model.safetensors"), "wb") as f:
        f.write(safetensors_bytes(weights, {"format": "pt"}))
    exp = OrderedDict()
    exp["input_ids"] = ids.numpy()
    exp["targets"] = targets.numpy()
    exp["logits"] = logits.detach().float().numpy()
    exp["decode_logits"] = decode.float().numpy()
    exp["loss"] = np.array([loss.item()], dtype=np.float32)
    for k, v in W.items():
        # An expert that no token chose has no gradient: zeros.
        exp["grad." + k] = (v.grad if v.grad is not None else torch.zeros_like(v)).detach().float().numpy()
    for k, v in exp.items():
        assert np.all(np.isfinite(v)), k
    with open(os.path.join(out_dir, "expected.safetensors"), "wb") as f:
        f.write(safetensors_bytes(exp, {"prefill": P}))
    print("%s: loss %.6f, %d parameters, logits |max| %.3f" % (out_dir, loss.item(), len(W), logits.abs().max().item()))


GRPO = OrderedDict(loss_type="grpo", scale_rewards="group", beta=0.04, epsilon_low=0.2, epsilon_high=0.2,
                   num_generations=2, max_completion_length=9, temperature=0.9, num_items_in_batch=None)
NG, TG = 4, 9


def build_grpo(c, seed, out_dir):
    """The loss of `nr grpo-grad` on the model of out_dir and its gradient for every weight."""
    rng = np.random.default_rng(seed)
    weights = make_weights(c, np.random.default_rng(seed - 100))   # the same draw as build() made
    W = OrderedDict((k, torch.tensor(v, dtype=torch.float64, requires_grad=True)) for k, v in weights.items())
    ids = torch.from_numpy(rng.integers(0, c["vocab_size"], size=(NG, TG)).astype(np.int64))
    prompt = np.array([3, 4, 2, 5])
    mask = (np.arange(TG)[None, :] >= prompt[:, None]).astype(np.float32)
    rewards = np.array([1.0, 0.0, 0.5, 0.25], dtype=np.float32)
    logits = forward(c, W, ids) / GRPO["temperature"]
    lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    logps = torch.cat([torch.zeros(NG, 1, dtype=lp.dtype), lp], 1)                     # [N, TG]
    ref = (logps.detach().numpy() + rng.normal(0, 0.2, size=(NG, TG))).astype(np.float32) * mask
    A = advantages(torch.tensor(rewards, dtype=torch.float64), GRPO["num_generations"], GRPO["scale_rewards"])
    m = torch.tensor(mask, dtype=torch.float64)
    loss = grpo_loss(logps, None, torch.tensor(ref, dtype=torch.float64), A, m, GRPO)[0]
    loss.backward()
    inp = OrderedDict(input_ids=ids.numpy(), completion_mask=mask, rewards=rewards, ref_per_token_logps=ref)
    with open(os.path.join(out_dir, "grpo_input.safetensors"), "wb") as f:
        f.write(safetensors_bytes(inp, {}))
    exp = OrderedDict()
    exp["loss"] = np.array([loss.item()], dtype=np.float32)
    exp["per_token_logps"] = logps.detach().float().numpy()
    exp["advantages"] = A.float().numpy()
    for k, v in W.items():
        exp["grad." + k] = v.grad.float().numpy()
    for k, v in exp.items():
        assert np.all(np.isfinite(v)), k
    with open(os.path.join(out_dir, "grpo_expected.safetensors"), "wb") as f:
        f.write(safetensors_bytes(exp, {}))
    with open(os.path.join(out_dir, "grpo_settings.json"), "w") as f:
        json.dump(GRPO, f, indent=2)
        f.write("\n")
    print("%s: grpo loss %.6f" % (out_dir, loss.item()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="directory that receives <family>-tiny-ref/")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    for i, (name, c) in enumerate(FAMILIES.items()):
        # A MoE model's seed is moved on until no token's k-th expert is within 2e-5 of the next one.
        for attempt in range(100):
            try:
                build(c, args.seed + i + 1000 * attempt, os.path.join(args.out, name.replace("_", "-") + "-tiny-ref"))
                break
            except RoutingTooClose as e:
                print("%s: seed %d has a routing gap of %g, trying the next" % (name, args.seed + i + 1000 * attempt, e.args[0]))
    build_grpo(FAMILIES["qwen2"], args.seed + 100, os.path.join(args.out, "qwen2-tiny-ref"))


if __name__ == "__main__":
    main()
