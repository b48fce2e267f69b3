#!/usr/bin/env python3
"""Compares `nr logits` outputs with the golden outputs of the official DeepSeek-V3 code (the
GPU logits must lie within 1e-4 relative error of the reference on the fp32 path).

    compare_logits.py GOLDEN.safetensors FULL.safetensors DECODE.safetensors [--label TEXT] [--limit X]

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


def main():
    args = sys.argv[1:]
    golden, full, decode = args[0:3]
    tag = args[args.index("--label") + 1] + " " if "--label" in args else ""
    limit = float(args[args.index("--limit") + 1]) if "--limit" in args else 1e-4
    worst = 0.0
    for label, path, key in (("full forward", full, "logits"), ("cached decode", decode, "decode_logits")):
        e = rel(read_f32(path, "logits"), read_f32(golden, key))
        worst = max(worst, e) if math.isfinite(e) else float("inf")
        print(f"{tag}{label}: relative error {e:.3e} vs the official code (limit {limit:g})")
    sys.exit(0 if worst <= limit else 1)


if __name__ == "__main__":
    main()
