#!/usr/bin/env python3
"""Writes the tokenizer seeds of the reader fuzzers (tests/fixtures/fuzz/tokenizer-json/): each real tokenizer.json
of tests/fixtures/tokenizers cut down to its first 400 ids plus the merges among them, so a seed is a few KB yet keeps
the real file's normalizer, pre-tokenizer, post-processor, decoder and added tokens. Plus a non-byte-level BPE (the
Microsoft.ML.Tokenizers path). Run once; the outputs are committed."""
import gzip
import json
import os

ROOT = os.path.join(os.path.dirname(__file__), "..", "fixtures")
OUT = os.path.join(ROOT, "fuzz", "tokenizer-json")
KEEP_IDS = 400


def cut(name):
    with gzip.open(os.path.join(ROOT, "tokenizers", name, "tokenizer.json.gz"), "rt", encoding="utf-8") as f:
        tok = json.load(f)
    model = tok["model"]
    vocab = {t: i for t, i in model["vocab"].items() if i < KEEP_IDS}
    merges = []
    for m in model["merges"]:
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(m)
    model["vocab"] = vocab
    model["merges"] = merges
    tok["added_tokens"] = [dict(t, id=KEEP_IDS + k) for k, t in enumerate(tok["added_tokens"][:6])]
    with open(os.path.join(OUT, f"seed-{name}.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)


def plain_bpe():
    tok = {
        "version": "1.0",
        "added_tokens": [{"id": 9, "content": "</s>", "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"String": " "}, "behavior": "Isolated", "invert": False},
            {"type": "WhitespaceSplit"}]},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True,
                  "vocab": {"<unk>": 0, "a": 1, "b": 2, "c": 3, "ab": 4, "abc": 5, " ": 6},
                  "merges": ["a b", ["ab", "c"]]},
    }
    with open(os.path.join(OUT, "seed-plain-bpe.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for n in ("deepseek-v3", "llama3.1", "qwen3"):
        cut(n)
    plain_bpe()
