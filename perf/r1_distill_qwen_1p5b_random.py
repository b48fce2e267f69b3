#!/usr/bin/env python3
"""Writes a random-weight bfloat16 checkpoint with the exact config of DeepSeek-R1-Distill-Qwen-1.5B.

The weights are random (normal, std 0.02; norms at 1): the point is the real shapes and file size (~3.6 GB), to
measure loading (bf16 kept as stored), resident memory and prefill/decode speed with `nr generate`. The tokenizer is
the Qwen2.5 vocabulary from tests/fixtures/tokenizers/qwen3. The safetensors file is written by hand (an 8-byte
header length, the JSON header, then each tensor's little-endian bytes), one tensor at a time, so the script never
holds more than one tensor in memory and needs no safetensors package.

Usage: /usr/bin/python3 perf/r1_distill_qwen_1p5b_random.py OUT_DIR   (write it under /tmp; delete it after)
"""
import gzip
import json
import os
import shutil
import struct
import sys

import torch

# config.json of deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B as released (also in tests/Model/CausalLMRegistryTests.cs).
CONFIG = {
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 1536, "initializer_range": 0.02,
    "intermediate_size": 8960, "max_position_embeddings": 131072, "max_window_layers": 21, "model_type": "qwen2",
    "num_attention_heads": 12, "num_hidden_layers": 28, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
    "rope_theta": 10000, "sliding_window": 4096, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.44.0", "use_cache": True, "use_mrope": False, "use_sliding_window": False,
    "vocab_size": 151936,
}


def tensor_shapes(c):
    """(name, shape, is_norm) in HF Qwen2ForCausalLM naming."""
    h, inter, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    head_dim = h // c["num_attention_heads"]
    kv = c["num_key_value_heads"] * head_dim
    yield "model.embed_tokens.weight", (v, h), False
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        yield p + "input_layernorm.weight", (h,), True
        yield p + "self_attn.q_proj.weight", (h, h), False
        yield p + "self_attn.q_proj.bias", (h,), False
        yield p + "self_attn.k_proj.weight", (kv, h), False
        yield p + "self_attn.k_proj.bias", (kv,), False
        yield p + "self_attn.v_proj.weight", (kv, h), False
        yield p + "self_attn.v_proj.bias", (kv,), False
        yield p + "self_attn.o_proj.weight", (h, h), False
        yield p + "post_attention_layernorm.weight", (h,), True
        yield p + "mlp.gate_proj.weight", (inter, h), False
        yield p + "mlp.up_proj.weight", (inter, h), False
        yield p + "mlp.down_proj.weight", (h, inter), False
    yield "model.norm.weight", (h,), True
    yield "lm_head.weight", (v, h), False


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    specs = list(tensor_shapes(CONFIG))
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, _ in specs:
        n = 1
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + 2 * n]}
        offset += 2 * n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    gen = torch.Generator().manual_seed(0)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape, is_norm in specs:
            if is_norm:
                t = torch.ones(shape)
            else:
                t = torch.randn(shape, generator=gen) * 0.02
            f.write(t.to(torch.bfloat16).view(torch.int16).numpy().tobytes())
            del t
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    fixtures = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "tokenizers",
                            "qwen3")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        with gzip.open(os.path.join(fixtures, name + ".gz"), "rb") as src, open(os.path.join(out, name), "wb") as dst:
            shutil.copyfileobj(src, dst)
    params = offset // 2
    print(f"{out}: {params:,} parameters, {offset + 8 + len(text):,} bytes of safetensors")


if __name__ == "__main__":
    main()
