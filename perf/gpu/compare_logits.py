#!/usr/bin/env python3
"""Compares `nr logits` outputs with the golden outputs of a family's reference code (the official DeepSeek-V3
code, HF's modeling files; the GPU logits must lie within 1e-4 relative error of the reference on the fp32 path).

    compare_logits.py GOLDEN.safetensors FULL.safetensors DECODE.safetensors [--label TEXT] [--limit X]
    compare_logits.py GOLDEN.safetensors --shape

DECODE may be "-" when the golden file has no decode_logits (no cached-decode reference). --shape prints
"T D": the sequence length of input_ids and the number of decoded positions (0 without decode_logits), so a
script can pass --decode-from T-D to `nr logits`.

Reads safetensors with the standard library only (no numpy or safetensors package needed).
Prints one line per comparison and exits 1 when an error is above 1e-4 or not finite.
"""
import array
import json
import math
import struct
import sys


def read_f32(path, name):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        if name not in header:
            raise SystemExit(f"{path}: no tensor '{name}' (has {', '.join(k for k in header if k != '__metadata__')})")
        info = header[name]
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: '{name}' is {info['dtype']}, expected F32")
        start, end = info["data_offsets"]
        f.seek(8 + n + start)
        values = array.array("f")
        values.frombytes(f.read(end - start))
        if sys.byteorder != "little":
            values.byteswap()
        return values


def rel(a, b):
    if len(a) != len(b):
        raise SystemExit(f"shapes differ: {len(a)} vs {len(b)} values")
    d = math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b)))
    r = math.sqrt(sum(float(y) ** 2 for y in b))
    return d / r if r > 0 else d


def shape_of(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    t = header["input_ids"]["shape"][-1]
    d = header["decode_logits"]["shape"][-2] if "decode_logits" in header else 0
    return t, d


def main():
    args = sys.argv[1:]
    if "--shape" in args:
        print("%d %d" % shape_of(args[0]))
        return
    golden, full, decode = args[0:3]
    tag = args[args.index("--label") + 1] + " " if "--label" in args else ""
    limit = float(args[args.index("--limit") + 1]) if "--limit" in args else 1e-4
    worst = 0.0
    pairs = [("full forward", full, "logits")]
    if decode != "-":
        pairs.append(("cached decode", decode, "decode_logits"))
    for label, path, key in pairs:
        e = rel(read_f32(path, "logits"), read_f32(golden, key))
        worst = max(worst, e) if math.isfinite(e) else float("inf")
        print(f"{tag}{label}: relative error {e:.3e} vs the official code (limit {limit:g})")
    sys.exit(0 if worst <= limit else 1)


if __name__ == "__main__":
    main()
