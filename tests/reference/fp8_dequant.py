#!/usr/bin/python3
"""Reference for DeepSeek-V3's block-scaled FP8 weights (float8_e4m3fn, one float32 scale per 128x128 block).

Usage:
    /usr/bin/python3 tests/reference/fp8_dequant.py --out tests/fixtures
    /usr/bin/python3 tests/reference/fp8_dequant.py --out tests/fixtures --check

Writes, into the output directory:
  fp8_dequant.safetensors   per case C (metadata "cases" lists them with their block size):
                              C.q          F8_E4M3 [M, N]   codes; case "all_codes" holds each of the 256 codes
                              C.scale      F32 [ceil(M/b), ceil(N/b)]
                              C.expected   F32 [M, N]       weight_dequant(q, scale) in float32
                              C.expected_bf16 BF16 [M, N]   the same rounded to bfloat16 (torch's rounding)
                            and "codes" F32 [256]: every code decoded.
  deepseek-v3-fp8/          a tiny DeepSeek-V3 checkpoint as the official FP8 release stores it: config.json with
                            quantization_config, two shards and an index (some weights' scales sit in the other
                            shard), quantised linear weights as F8_E4M3 + <name>_scale_inv, the rest BF16
                            (e_score_correction_bias F32), plus one multi-token-prediction layer
                            (num_nextn_predict_layers = 1) that a loader must skip.
  deepseek-v3-fp8-dequant/  the same model with every weight dequantised to F32 (config without quantization).

torch 1.13 has no float8 dtype, so the codes are decoded here by the e4m3fn definition (bias 7, no infinities,
S.1111.111 = NaN, max 448), in float32. weight_dequant below is a port of weight_dequant / weight_dequant_kernel
in the official inference/kernel.py of deepseek-ai/DeepSeek-V3: the grid walks the blocks, each block loads its
codes as float32 and its one scale, and stores x * s (a float32 multiply), here into a float32 result.
With --check nothing is written: the files are regenerated in memory and compared byte for byte.
"""

import argparse
import json
import math
import os
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_v3  # noqa: E402  (make_weights: HF names and shapes of a tiny model)

BLOCK = 128


def e4m3fn_value(code):
    """The float value of one byte by the float8_e4m3fn definition."""
    sign = -1.0 if code & 0x80 else 1.0
    exponent = (code >> 3) & 0xF
    mantissa = code & 0x7
    if exponent == 0xF and mantissa == 0x7:
        return float("nan")
    if exponent == 0:
        return sign * (mantissa / 8.0) * 2.0 ** (1 - 7)
    return sign * (1.0 + mantissa / 8.0) * 2.0 ** (exponent - 7)


CODE_TABLE = np.array([e4m3fn_value(c) for c in range(256)], dtype=np.float32)


def weight_dequant(q, s, block_size=BLOCK):
    """Port of the official weight_dequant: q uint8 [M, N], s float32 [ceil(M/b), ceil(N/b)] -> float32 [M, N]."""
    M, N = q.shape
    n = (N + block_size - 1) // block_size
    x_all = torch.from_numpy(CODE_TABLE[q])  # x.to(tl.float32): exact widening of each code
    s_flat = torch.from_numpy(np.ascontiguousarray(s)).reshape(-1)
    y = torch.empty((M, N), dtype=torch.float32)
    for pid_m in range((M + block_size - 1) // block_size):
        for pid_n in range(n):
            rows = slice(pid_m * block_size, min((pid_m + 1) * block_size, M))  # the kernel's mask
            cols = slice(pid_n * block_size, min((pid_n + 1) * block_size, N))
            x = x_all[rows, cols]
            scale = s_flat[pid_m * n + pid_n]
            y[rows, cols] = x * scale
    return y


def to_bf16_bits(y):
    return y.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


def quantize(w, rng_unused=None):
    """float32 [M, N] -> (codes uint8, scale float32): scale = block amax / 448, codes = nearest e4m3fn value."""
    M, N = w.shape
    sm, sn = (M + BLOCK - 1) // BLOCK, (N + BLOCK - 1) // BLOCK
    scale = np.empty((sm, sn), dtype=np.float32)
    q = np.empty((M, N), dtype=np.uint8)
    finite = np.array([c for c in range(0x7F)], dtype=np.int64)  # 0x00..0x7E: the non-negative finite codes
    values = CODE_TABLE[finite].astype(np.float64)
    for i in range(sm):
        for j in range(sn):
            blk = w[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK].astype(np.float64)
            s = np.float32(max(np.abs(blk).max(), 1e-12) / 448.0)
            scale[i, j] = s
            mag = np.abs(blk) / np.float64(s)
            idx = np.clip(np.searchsorted(values, mag), 1, len(values) - 1)
            lo, hi = values[idx - 1], values[idx]
            pick = np.where(mag - lo <= hi - mag, idx - 1, idx)
            codes = finite[pick].astype(np.uint8) | np.where(blk < 0, 0x80, 0).astype(np.uint8)
            q[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK] = codes
    return q, scale


DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64", np.dtype(np.uint8): "F8_E4M3",
          np.dtype(np.uint16): "BF16"}


def safetensors_bytes(tensors, metadata):
    """uint8 arrays are written as F8_E4M3 and uint16 arrays as BF16 bits."""
    header = OrderedDict()
    header["__metadata__"] = OrderedDict((k, str(v)) for k, v in metadata.items())
    chunks, offset = [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        data = arr.tobytes(order="C")
        header[name] = OrderedDict(dtype=DTYPES[arr.dtype], shape=list(arr.shape),
                                   data_offsets=[offset, offset + len(data)])
        chunks.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(chunks)


def dequant_cases(rng):
    files = OrderedDict()
    cases = []
    out = OrderedDict()
    out["codes"] = CODE_TABLE.copy()
    # Partial blocks on both axes (260 = 2*128 + 4, 140 = 128 + 12); one block smaller than a block; one full
    # block row with a partial column block.
    for name, (M, N) in [("all_codes", (260, 140)), ("single_partial", (5, 3)), ("row_exact", (128, 131))]:
        q = rng.integers(0, 256, size=(M, N), dtype=np.uint8)
        if name == "all_codes":
            q.reshape(-1)[:256] = np.arange(256, dtype=np.uint8)
            q.reshape(-1)[-256:] = np.arange(256, dtype=np.uint8)[::-1]
        sm, sn = (M + BLOCK - 1) // BLOCK, (N + BLOCK - 1) // BLOCK
        # Scales as the release has them: small positive floats with full mantissas (not powers of two), so the
        # product really rounds.
        s = (np.exp2(rng.integers(-12, -2, size=(sm, sn))) * rng.uniform(1.0, 2.0, size=(sm, sn))).astype(np.float32)
        y = weight_dequant(q, s)
        out[name + ".q"] = q
        out[name + ".scale"] = s
        out[name + ".expected"] = y.numpy()
        out[name + ".expected_bf16"] = to_bf16_bits(y)
        cases.append(OrderedDict(name=name, rows=M, cols=N, block=BLOCK))
    meta = OrderedDict(format="1", torch=torch.__version__, cases=json.dumps(cases))
    files["fp8_dequant.safetensors"] = safetensors_bytes(out, meta)
    return files


CONFIG = OrderedDict(deepseek_v3.CONFIG)
CONFIG.update(
    intermediate_size=136,  # two column blocks (128 + 8) in the dense MLP's down_proj, two row blocks in gate/up
    n_routed_experts=8, num_experts_per_tok=2, n_group=2, topk_group=1,
    num_nextn_predict_layers=1,
    torch_dtype="bfloat16",
)
QUANT = OrderedDict(activation_scheme="dynamic", fmt="e4m3", quant_method="fp8", weight_block_size=[BLOCK, BLOCK])
UNQUANTISED = ("embed_tokens", "norm", "layernorm", "mlp.gate.", "lm_head", "enorm", "hnorm", "shared_head")


def is_quantised(name):
    return name.endswith(".weight") and not any(part in name for part in UNQUANTISED)


def fp8_model(rng):
    c = CONFIG
    weights = deepseek_v3.make_weights(c, rng)
    L, D = c["num_hidden_layers"], c["hidden_size"]
    # The multi-token-prediction layer (index num_hidden_layers), as the release stores it.
    mtp = "model.layers.%d." % L
    weights[mtp + "enorm.weight"] = np.ones(D, dtype=np.float32)
    weights[mtp + "hnorm.weight"] = np.ones(D, dtype=np.float32)
    weights[mtp + "eh_proj.weight"] = (rng.standard_normal((D, 2 * D)) / math.sqrt(2 * D)).astype(np.float32)
    weights[mtp + "self_attn.o_proj.weight"] = weights["model.layers.0.self_attn.o_proj.weight"].copy()
    weights[mtp + "shared_head.norm.weight"] = np.ones(D, dtype=np.float32)
    weights[mtp + "shared_head.head.weight"] = weights["lm_head.weight"].copy()

    stored, dequant = OrderedDict(), OrderedDict()
    for name, w in weights.items():
        if is_quantised(name):
            q, s = quantize(w)
            stored[name] = q
            stored[name + "_scale_inv"] = s
            dequant[name] = weight_dequant(q, s).numpy()
        elif name.endswith("e_score_correction_bias"):
            stored[name] = w
            dequant[name] = w
        else:
            bits = to_bf16_bits(torch.from_numpy(w))
            stored[name] = bits
            dequant[name] = torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16).float().numpy()
    for name in [n for n in dequant if n.startswith(mtp)]:
        del dequant[name]

    # Two shards; the scales of layer 0's attention weights go to the shard the weight is not in.
    names = list(stored)
    half = len(names) // 2
    shard_of = OrderedDict((n, 1 if i < half else 2) for i, n in enumerate(names))
    for n in names:
        if n.startswith("model.layers.0.self_attn.") and n.endswith("_scale_inv"):
            shard_of[n] = 3 - shard_of[n[:-len("_scale_inv")]]
    shard_names = {k: "model-%05d-of-00002.safetensors" % k for k in (1, 2)}
    fp8 = OrderedDict()
    meta = OrderedDict(format="pt")
    total = 0
    for k in (1, 2):
        part = OrderedDict((n, stored[n]) for n in names if shard_of[n] == k)
        fp8[shard_names[k]] = safetensors_bytes(part, meta)
        total += sum(np.ascontiguousarray(a).nbytes for a in part.values())
    index = OrderedDict(metadata=OrderedDict(total_size=total),
                        weight_map=OrderedDict((n, shard_names[shard_of[n]]) for n in sorted(names)))
    fp8["model.safetensors.index.json"] = (json.dumps(index, indent=2) + "\n").encode()
    cfg = OrderedDict(c)
    cfg["quantization_config"] = QUANT
    fp8["config.json"] = (json.dumps(cfg, indent=2) + "\n").encode()

    ref = OrderedDict()
    ref["model.safetensors"] = safetensors_bytes(dequant, meta)
    cfg = OrderedDict(c)
    cfg["num_nextn_predict_layers"] = 0
    cfg["torch_dtype"] = "float32"
    ref["config.json"] = (json.dumps(cfg, indent=2) + "\n").encode()
    return fp8, ref


def generate(seed):
    rng = np.random.default_rng(seed)
    out = OrderedDict()
    for name, data in dequant_cases(rng).items():
        out[name] = data
    fp8, ref = fp8_model(rng)
    for name, data in fp8.items():
        out[os.path.join("deepseek-v3-fp8", name)] = data
    for name, data in ref.items():
        out[os.path.join("deepseek-v3-fp8-dequant", name)] = data
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    files = generate(args.seed)
    # The decoder by definition must give the format's landmarks.
    assert CODE_TABLE[0x7E] == 448.0 and CODE_TABLE[0xFE] == -448.0 and CODE_TABLE[0x01] == 2.0 ** -9
    assert np.isnan(CODE_TABLE[0x7F]) and np.isnan(CODE_TABLE[0xFF]) and np.isnan(CODE_TABLE).sum() == 2
    bad = 0
    for rel, data in files.items():
        path = os.path.join(args.out, rel)
        if args.check:
            same = os.path.exists(path) and open(path, "rb").read() == data
            print("%s %s" % ("ok     " if same else "DIFFERS", path))
            bad += not same
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            print("wrote %s (%d bytes)" % (path, len(data)))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
