#!/usr/bin/python3
"""PyTorch reference for the deepseek_v2 family (DeepSeek-V2-Lite's MLA + DeepSeekMoE with the V2 router).

Usage:
    /usr/bin/python3 tests/reference/deepseek_v2.py --variant greedy  --out tests/fixtures/deepseek-v2-ref-greedy
    /usr/bin/python3 tests/reference/deepseek_v2.py --variant grouped --out tests/fixtures/deepseek-v2-ref-grouped

The attention, YaRN, dense and shared-expert parts are those of deepseek_v3.py (DeepSeek-V2's MLA is the same
computation; with mscale == mscale_all_dim the cos/sin factor of the V2 remote code is 1). The router follows
the V2 checkpoints' own modeling_deepseek.py MoEGate, written independently:
  scores = softmax(x @ Wg^T) over all experts; there is no e_score_correction_bias;
  greedy:               idx = topk(scores, k) over all experts (n_group / topk_group unused);
  group_limited_greedy: group score = max of the group's scores, keep the topk_group best groups, the other
                        experts are masked out, idx = topk(masked, k);
  weights = scores[idx] / sum  if norm_topk_prob and k > 1,  else  scores[idx] * routed_scaling_factor
                        (V2 never does both: with renormalisation the scale is not applied).
Variants: "greedy" has V2-Lite's settings (q_lora_rank null, norm_topk_prob false, 2 shared experts) with
n_group 4 / topk_group 1 present in the config, so a router that wrongly used the groups would pick other experts;
"grouped" has group_limited_greedy with norm_topk_prob true and routed_scaling_factor 16 (unused by that rule).

Writes config.json, model.safetensors (F32, HF names, no e_score_correction_bias) and expected.safetensors:
input_ids, targets, logits [B, T, V], ce_loss, balance_loss (sequence-wise, alpha from the metadata; V2's
seq_aux loss is this formula, softmax scores already sum to 1), grad.<name> for every parameter,
expert_load.<layer>. Metadata: alpha, min_margin (the smallest routing gap, so float32 cannot flip a choice).
The greedy variant also holds the golden case of `nr grpo-grad` (the layout of dense_families.py's qwen2 case:
grpo_input.safetensors, grpo_expected.safetensors, grpo_settings.json; TRL's loss, no balance loss; no grad.
entry for an expert that no token reached).
"""

import argparse
import json
import os
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_v3 as v3  # noqa: E402
from grpo import advantages, grpo_loss  # noqa: E402  (TRL's loss and advantages, as the GRPO oracle has them)

COMMON = OrderedDict(
    architectures=["DeepseekV2ForCausalLM"],
    model_type="deepseek_v2",
    vocab_size=64,
    hidden_size=16,
    intermediate_size=24,
    moe_intermediate_size=4,
    num_hidden_layers=3,
    first_k_dense_replace=1,
    moe_layer_freq=1,
    num_attention_heads=2,
    num_key_value_heads=2,
    n_routed_experts=16,
    n_shared_experts=2,
    num_experts_per_tok=3,
    scoring_func="softmax",
    q_lora_rank=None,
    kv_lora_rank=8,
    qk_nope_head_dim=4,
    qk_rope_head_dim=4,
    v_head_dim=6,
    hidden_act="silu",
    rms_norm_eps=1e-6,
    rope_theta=10000.0,
    max_position_embeddings=128,
    attention_bias=False,
    tie_word_embeddings=False,
    aux_loss_alpha=0.001,
    seq_aux=True,
    bos_token_id=0,
    eos_token_id=1,
    torch_dtype="float32",
    rope_scaling=OrderedDict(
        type="yarn", factor=4.0, original_max_position_embeddings=16,
        beta_fast=32, beta_slow=1, mscale=0.707, mscale_all_dim=0.707),
)
VARIANTS = {
    "greedy": dict(topk_method="greedy", n_group=4, topk_group=1, norm_topk_prob=False, routed_scaling_factor=1.5),
    "grouped": dict(topk_method="group_limited_greedy", n_group=4, topk_group=2, norm_topk_prob=True,
                    routed_scaling_factor=16.0),
}
B, T = 2, 20
ALPHA = 0.01
GRPO = OrderedDict(loss_type="grpo", scale_rewards="group", beta=0.04, epsilon_low=0.2, epsilon_high=0.2,
                   num_generations=2, max_completion_length=9, temperature=0.9, num_items_in_batch=None)
NG, TG = 4, 9


def route_v2(c, x, p, W, margins):
    """Returns (weights [N,k] with grad, idx [N,k], scores [N,E] with grad)."""
    E, k = c["n_routed_experts"], c["num_experts_per_tok"]
    scores = F.linear(x, W[p + "gate.weight"]).softmax(-1)
    with torch.no_grad():
        sc = scores.clone()
        if c["topk_method"] == "group_limited_greedy":
            G, KG = c["n_group"], c["topk_group"]
            gs = sc.view(-1, G, E // G).max(-1)[0]
            gsorted = gs.sort(-1, descending=True)[0]
            if KG < G:
                margins.append((gsorted[:, KG - 1] - gsorted[:, KG]).min().item())
            keep = gs.topk(KG, dim=-1)[1]
            mask = torch.ones_like(gs, dtype=torch.bool).scatter_(1, keep, False)
            sc = sc.masked_fill(mask.repeat_interleave(E // G, dim=1), 0.0)
        ssorted = sc.sort(-1, descending=True)[0]
        margins.append((ssorted[:, k - 1] - ssorted[:, k]).min().item())
        idx = sc.topk(k, dim=-1)[1]
    w = scores.gather(1, idx)
    if c["norm_topk_prob"] and k > 1:
        return w / (w.sum(-1, keepdim=True) + 1e-20), idx, scores
    return w * c["routed_scaling_factor"], idx, scores


def build_grpo(c, weights, seed, out_dir):
    """The loss of `nr grpo-grad` on the model of out_dir and its gradient for every weight."""
    while True:
        rng = np.random.default_rng(seed)
        W = OrderedDict((k, torch.tensor(v, dtype=torch.float64, requires_grad=True)) for k, v in weights.items())
        ids = torch.from_numpy(rng.integers(0, c["vocab_size"], size=(NG, TG)).astype(np.int64))
        margins = []
        logits = v3.forward(c, W, ids, margins, {}, []) / GRPO["temperature"]
        if min(margins) > 1e-4:
            break
        seed += 1
    prompt = np.array([3, 4, 2, 5])
    mask = (np.arange(TG)[None, :] >= prompt[:, None]).astype(np.float32)
    rewards = np.array([1.0, 0.0, 0.5, 0.25], dtype=np.float32)
    lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    logps = torch.cat([torch.zeros(NG, 1, dtype=lp.dtype), lp], 1)                     # [N, TG]
    ref = (logps.detach().numpy() + rng.normal(0, 0.2, size=(NG, TG))).astype(np.float32) * mask
    A = advantages(torch.tensor(rewards, dtype=torch.float64), GRPO["num_generations"], GRPO["scale_rewards"])
    m = torch.tensor(mask, dtype=torch.float64)
    loss = grpo_loss(logps, None, torch.tensor(ref, dtype=torch.float64), A, m, GRPO)[0]
    loss.backward()
    inp = OrderedDict(input_ids=ids.numpy(), completion_mask=mask, rewards=rewards, ref_per_token_logps=ref)
    with open(os.path.join(out_dir, "grpo_input.safetensors"), "wb") as f:
        f.write(v3.safetensors_bytes(inp, {}))
    exp = OrderedDict()
    exp["loss"] = np.array([loss.item()], dtype=np.float32)
    exp["per_token_logps"] = logps.detach().float().numpy()
    exp["advantages"] = A.float().numpy()
    for k, v in W.items():
        # An expert no token was routed to is not in the graph; nr grpo-grad writes no entry for it either.
        if v.grad is not None:
            exp["grad." + k] = v.grad.float().numpy()
    for k, v in exp.items():
        assert np.all(np.isfinite(v)), k
    with open(os.path.join(out_dir, "grpo_expected.safetensors"), "wb") as f:
        f.write(v3.safetensors_bytes(exp, {"seed": seed, "min_margin": "%.6g" % min(margins)}))
    with open(os.path.join(out_dir, "grpo_settings.json"), "w") as f:
        json.dump(GRPO, f, indent=2)
        f.write("\n")
    print("%s: grpo loss %.6f (seed %d, min routing margin %.3g)" % (out_dir, loss.item(), seed, min(margins)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="greedy")
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args()
    out = args.out or "tests/fixtures/deepseek-v2-ref-" + args.variant
    c = OrderedDict(COMMON)
    c.update(VARIANTS[args.variant])
    v3.ALPHA = ALPHA
    v3.route = route_v2
    seed = args.seed
    while True:
        rng = np.random.default_rng(seed)
        weights = v3.make_weights(c, rng)
        for n in [n for n in weights if n.endswith("e_score_correction_bias")]:
            del weights[n]
        ids = rng.integers(0, c["vocab_size"], size=(B, T), dtype=np.int64)
        targets = rng.integers(0, c["vocab_size"], size=(B, T), dtype=np.int64)
        W = OrderedDict((n, torch.tensor(a, dtype=torch.float64, requires_grad=True)) for n, a in weights.items())
        margins, loads, bal = [], {}, []
        logits = v3.forward(c, W, torch.tensor(ids), margins, loads, bal)
        if min(margins) > 1e-4:
            break
        print("seed %d: routing margin %.3g too small, trying the next seed" % (seed, min(margins)))
        seed += 1
    ce = F.cross_entropy(logits.view(-1, c["vocab_size"]), torch.tensor(targets).view(-1))
    bl = sum(bal)
    (ce + bl).backward()

    exp = OrderedDict()
    exp["input_ids"] = ids
    exp["targets"] = targets
    exp["logits"] = logits.detach().numpy().astype(np.float32)
    exp["ce_loss"] = np.array([ce.item()], dtype=np.float32)
    exp["balance_loss"] = np.array([bl.item()], dtype=np.float32)
    for n, t in W.items():
        g = t.grad if t.grad is not None else torch.zeros_like(t)
        exp["grad." + n] = g.numpy().astype(np.float32)
    for l, load in loads.items():
        exp["expert_load.%d" % l] = load.numpy().astype(np.float32)

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(v3.safetensors_bytes(weights, {"format": "pt", "seed": seed}))
    meta = {"alpha": ALPHA, "min_margin": "%.6g" % min(margins), "seed": seed, "torch": torch.__version__}
    with open(os.path.join(out, "expected.safetensors"), "wb") as f:
        f.write(v3.safetensors_bytes(exp, meta))
    print("wrote %s (seed %d, min routing margin %.3g, ce %.6f, balance %.6g)"
          % (out, seed, min(margins), ce.item(), bl.item()))
    if args.variant == "greedy":
        build_grpo(c, weights, seed + 100, out)


if __name__ == "__main__":
    main()
