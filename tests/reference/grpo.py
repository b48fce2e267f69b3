#!/usr/bin/python3
"""PyTorch oracle for NativeReasoner's GRPO loss (src/RL/GrpoLoss.cs, src/RL/Advantages.cs).

Usage:
    /usr/bin/python3 tests/reference/grpo.py --seed 1234 --out tests/fixtures

Writes <out>/grpo.safetensors. The loss follows TRL's GRPOTrainer._compute_loss and the advantages
_generate_and_score_completions (definitions summarised in the project's research notes), computed in
float64 from float32 inputs; results are rounded to float32 once.

Per case C (attrs JSON in metadata key "C"; case names in metadata "cases"):
  C.in.logps, C.in.ref, C.in.mask        F32 [B, T]
  C.in.old                               F32 [B, T]   (absent: old = logps.detach(), i.e. mu = 1)
  C.in.rewards                           F32 [B]      (NaN = a skipped reward)
  C.in.truncated                         F32 [B]      (1 = completion hit the length limit)
  C.out.advantages                       F32 [B]
  C.out.loss                             F32 []
  C.out.grad                             F32 [B, T]   d loss / d logps
  C.out.kl, C.out.clip_low, C.out.clip_high, C.out.clip_region   F32 []  (kl NaN when beta = 0)
attrs: loss_type, scale_rewards, beta, epsilon_low, epsilon_high, num_generations,
       max_completion_length, mask_truncated_completions, num_items_in_batch (or null),
       importance_sampling_level (token | sequence: GSPO, arXiv 2507.18071),
       advantage_estimator (grpo | rloo | reinforce_pp: REINFORCE++-baseline, arXiv 2501.03262).
"""

import argparse
import json
import os
import struct
from collections import OrderedDict

import numpy as np
import torch

_DTYPE_NAME = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}


def safetensors_bytes(tensors, metadata):
    """tensors: ordered mapping name -> np.ndarray (float32 or int64); same layout as ops.py."""
    header = OrderedDict()
    header["__metadata__"] = OrderedDict((k, str(v)) for k, v in metadata.items())
    chunks = []
    offset = 0
    for name, arr in tensors.items():
        arr = np.array(arr, order="C", copy=False)
        dt = _DTYPE_NAME[arr.dtype]
        data = arr.tobytes(order="C")
        header[name] = OrderedDict([("dtype", dt), ("shape", list(arr.shape)), ("data_offsets", [offset, offset + len(data)])])
        chunks.append(data)
        offset += len(data)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((-len(hbytes)) % 8)
    return struct.pack("<Q", len(hbytes)) + hbytes + b"".join(chunks)


def advantages(rewards, G, scale):
    """TRL: group mean, std with Bessel's correction (nan-aware), + 1e-4; NaN advantages -> 0."""
    r = rewards.view(-1, G)
    ok = ~torch.isnan(r)
    cnt = ok.sum(1, keepdim=True).to(r.dtype)
    mean = torch.where(ok, r, torch.zeros_like(r)).sum(1, keepdim=True) / cnt
    dev = torch.where(ok, (r - mean) ** 2, torch.zeros_like(r)).sum(1, keepdim=True)
    std_g = torch.sqrt(dev / (cnt - 1))
    mean_rep = mean.expand_as(r).reshape(-1)
    if scale == "group":
        a = (rewards - mean_rep) / (std_g.expand_as(r).reshape(-1) + 1e-4)
    elif scale == "batch":
        flat = rewards[~torch.isnan(rewards)]
        a = (rewards - mean_rep) / (flat.std() + 1e-4)
    else:
        a = rewards - mean_rep
    return torch.nan_to_num(a, nan=0.0)


def rloo_advantages(rewards, G, scale):
    """Leave-one-out baseline: R_i - mean of the group's other defined rewards, then the scale_rewards divisor."""
    r = rewards.view(-1, G)
    ok = ~torch.isnan(r)
    cnt = ok.sum(1, keepdim=True).to(r.dtype)
    total = torch.where(ok, r, torch.zeros_like(r)).sum(1, keepdim=True)
    a = r - (total - r) / (cnt - 1)
    mean = total / cnt
    dev = torch.where(ok, (r - mean) ** 2, torch.zeros_like(r)).sum(1, keepdim=True)
    if scale == "group":
        a = a / (torch.sqrt(dev / (cnt - 1)) + 1e-4)
    elif scale == "batch":
        a = a / (rewards[~torch.isnan(rewards)].std() + 1e-4)
    return torch.nan_to_num(a.reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)


def reinforce_pp_advantages(rewards, G):
    """REINFORCE++-baseline: subtract the group mean, then scale by the batch's std (Bessel, + 1e-4).
    The batch mean of group-centred rewards is zero in exact arithmetic, so it is not subtracted: in float it is
    a rounding residue whose sign would decide whether a zero-variance group's advantages are +0 or -1e-9, and
    with it the clip metrics, which count tokens by the sign of their advantage."""
    r = rewards.view(-1, G)
    ok = ~torch.isnan(r)
    mean = torch.where(ok, r, torch.zeros_like(r)).sum(1, keepdim=True) / ok.sum(1, keepdim=True).to(r.dtype)
    c = (r - mean).reshape(-1)
    flat = c[~torch.isnan(c)]
    return torch.nan_to_num(c / (flat.std() + 1e-4), nan=0.0)


def estimate_advantages(rewards, a):
    est = a["advantage_estimator"]
    if est == "grpo":
        return advantages(rewards, a["num_generations"], a["scale_rewards"])
    if est == "rloo":
        return rloo_advantages(rewards, a["num_generations"], a["scale_rewards"])
    if est == "reinforce_pp":
        return reinforce_pp_advantages(rewards, a["num_generations"])
    raise ValueError(est)


def grpo_loss(logps, old, ref, A, mask, a):
    if old is None:
        old = logps.detach()
    log_ratio = logps - old
    if a["importance_sampling_level"] == "sequence":
        # GSPO as TRL: the masked mean log-ratio per completion, shape [B, 1].
        log_ratio = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
    coef_1 = torch.exp(log_ratio)
    coef_2 = torch.clamp(coef_1, 1 - a["epsilon_low"], 1 + a["epsilon_high"])
    l1 = coef_1 * A.unsqueeze(1)
    l2 = coef_2 * A.unsqueeze(1)
    per_token = -torch.min(l1, l2)
    kl = torch.tensor(float("nan"), dtype=logps.dtype)
    if a["beta"] != 0.0:
        k3 = torch.exp(ref - logps) - (ref - logps) - 1
        per_token = per_token + a["beta"] * k3
        kl = (k3 * mask).sum() / mask.sum().clamp(min=1.0)
    lt = a["loss_type"]
    if lt == "grpo":
        loss = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    elif lt == "bnpo":
        loss = (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    elif lt == "dr_grpo":
        loss = (per_token * mask).sum() / (per_token.size(0) * a["max_completion_length"])
    elif lt == "dapo":
        n = a["num_items_in_batch"] if a["num_items_in_batch"] is not None else mask.sum()
        loss = (per_token * mask).sum() / n
    else:
        raise ValueError(lt)
    low = ((coef_1 < 1 - a["epsilon_low"]) & (A.unsqueeze(1) < 0)).to(mask.dtype)
    high = ((coef_1 > 1 + a["epsilon_high"]) & (A.unsqueeze(1) > 0)).to(mask.dtype)
    region = ((low + high) > 0).to(mask.dtype)
    if coef_1.shape[1] == 1:  # sequence level: TRL's masked_batch_mean is the plain mean over completions
        return loss, kl, low.mean(), high.mean(), region.mean()
    den = mask.sum().clamp(min=1.0)
    return loss, kl, (low * mask).sum() / den, (high * mask).sum() / den, (region * mask).sum() / den


CASES = [
    # name, attrs overrides, data options
    ("grpo_group_sym", dict(loss_type="grpo", scale_rewards="group", beta=0.04, epsilon_low=0.2, epsilon_high=0.2), {}),
    ("grpo_mu1", dict(loss_type="grpo", scale_rewards="group", beta=0.04, epsilon_low=0.2, epsilon_high=0.2), {"no_old": True}),
    ("bnpo_batch", dict(loss_type="bnpo", scale_rewards="batch", beta=0.04, epsilon_low=0.2, epsilon_high=0.2), {}),
    ("dr_grpo_none", dict(loss_type="dr_grpo", scale_rewards="none", beta=0.04, epsilon_low=0.2, epsilon_high=0.2), {}),
    ("dapo_asym_beta0", dict(loss_type="dapo", scale_rewards="group", beta=0.0, epsilon_low=0.2, epsilon_high=0.28), {}),
    ("dapo_numitems", dict(loss_type="dapo", scale_rewards="none", beta=0.01, epsilon_low=0.1, epsilon_high=0.3, num_items_in_batch=57.0), {}),
    ("dapo_mask_truncated", dict(loss_type="dapo", scale_rewards="group", beta=0.02, epsilon_low=0.2, epsilon_high=0.28, mask_truncated_completions=True), {}),
    ("bnpo_nan_reward", dict(loss_type="bnpo", scale_rewards="group", beta=0.0, epsilon_low=0.2, epsilon_high=0.2), {"nan": True}),
    ("dr_grpo_batch_asym", dict(loss_type="dr_grpo", scale_rewards="batch", beta=0.1, epsilon_low=0.15, epsilon_high=0.25), {}),
    # GSPO: sequence-level ratios (a narrow clip range so whole completions get clipped), with and without KL.
    ("gspo_grpo", dict(loss_type="grpo", scale_rewards="group", beta=0.0, epsilon_low=0.1, epsilon_high=0.15,
                       importance_sampling_level="sequence"), {}),
    ("gspo_dapo_kl", dict(loss_type="dapo", scale_rewards="group", beta=0.04, epsilon_low=0.1, epsilon_high=0.12,
                          importance_sampling_level="sequence", mask_truncated_completions=True), {}),
    ("gspo_mu1", dict(loss_type="grpo", scale_rewards="none", beta=0.02, epsilon_low=0.2, epsilon_high=0.2,
                      importance_sampling_level="sequence"), {"no_old": True}),
    ("rloo_group", dict(loss_type="grpo", scale_rewards="group", beta=0.0, epsilon_low=0.2, epsilon_high=0.2,
                        advantage_estimator="rloo"), {}),
    ("rloo_none_nan", dict(loss_type="bnpo", scale_rewards="none", beta=0.0, epsilon_low=0.2, epsilon_high=0.2,
                           advantage_estimator="rloo"), {"nan": True}),
    ("rloo_batch", dict(loss_type="dapo", scale_rewards="batch", beta=0.01, epsilon_low=0.2, epsilon_high=0.28,
                        advantage_estimator="rloo"), {}),
    ("reinforce_pp", dict(loss_type="dapo", scale_rewards="group", beta=0.0, epsilon_low=0.2, epsilon_high=0.28,
                          advantage_estimator="reinforce_pp"), {}),
    ("reinforce_pp_nan", dict(loss_type="grpo", scale_rewards="none", beta=0.04, epsilon_low=0.2, epsilon_high=0.2,
                              advantage_estimator="reinforce_pp"), {"nan": True}),
]


def make_case(rng, attrs, opts, G=4, groups=3, T=12):
    B = G * groups
    logps = -rng.gamma(1.5, 0.8, size=(B, T)).astype(np.float32)
    old = (logps + rng.normal(0, 0.35, size=(B, T))).astype(np.float32)  # ratios spread around 1: clipping fires
    ref = (logps + rng.normal(0, 0.3, size=(B, T))).astype(np.float32)
    lengths = rng.integers(1, T + 1, size=B)
    lengths[2] = 0  # an empty completion: exercises clamp(min=1)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.float32)
    rewards = rng.integers(0, 3, size=B).astype(np.float32) * 0.5
    rewards[G:2 * G] = 1.0  # one group with zero std: advantages 0
    if opts.get("nan"):
        rewards[1] = np.nan
        rewards[2 * G + 3] = np.nan
    truncated = (lengths == T).astype(np.float32)
    truncated[0] = 1.0
    return logps, (None if opts.get("no_old") else old), ref, mask, rewards, truncated


def build(seed):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    tensors = OrderedDict()
    meta = OrderedDict(format="1", seed=str(seed), torch=torch.__version__)
    names = []
    for name, over, opts in CASES:
        attrs = dict(num_generations=4, max_completion_length=16, mask_truncated_completions=False,
                     num_items_in_batch=None,
                     importance_sampling_level="token", advantage_estimator="grpo")
        attrs.update(over)
        logps, old, ref, mask, rewards, truncated = make_case(rng, attrs, opts)
        d = lambda x: torch.tensor(x, dtype=torch.float64)
        lp = d(logps).requires_grad_(True)
        m = d(mask)
        if attrs["mask_truncated_completions"]:
            m = m * (1 - d(truncated)).unsqueeze(1)
        A = estimate_advantages(d(rewards), attrs)
        loss, kl, cl, ch, cr = grpo_loss(lp, None if old is None else d(old), d(ref), A, m, attrs)
        loss.backward()
        f = lambda t: np.asarray(t.detach().numpy(), dtype=np.float32)
        tensors[f"{name}.in.logps"] = logps
        if old is not None:
            tensors[f"{name}.in.old"] = old
        tensors[f"{name}.in.ref"] = ref
        tensors[f"{name}.in.mask"] = mask
        tensors[f"{name}.in.rewards"] = rewards
        tensors[f"{name}.in.truncated"] = truncated
        tensors[f"{name}.out.advantages"] = f(A)
        tensors[f"{name}.out.loss"] = f(loss)
        tensors[f"{name}.out.grad"] = f(lp.grad)
        tensors[f"{name}.out.kl"] = f(kl)
        tensors[f"{name}.out.clip_low"] = f(cl)
        tensors[f"{name}.out.clip_high"] = f(ch)
        tensors[f"{name}.out.clip_region"] = f(cr)
        meta[name] = json.dumps(attrs)
        names.append(name)
    meta["cases"] = json.dumps(names)
    return safetensors_bytes(tensors, meta)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--out", default="tests/fixtures")
    args = p.parse_args()
    data = build(args.seed)
    path = os.path.join(args.out, "grpo.safetensors")
    with open(path, "wb") as fh:
        fh.write(data)
    print(f"wrote {path} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
