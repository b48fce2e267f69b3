#!/usr/bin/python3
"""Reference values of the unbiased pass@k estimator (Chen et al., arXiv 2107.03374, section 2.1).

pass@k = 1 - C(n - c, k) / C(n, k), evaluated here with exact integer binomials (math.comb) and exact
rationals (fractions.Fraction), so the fixture is the true value to double precision; the C# estimator uses a
product form and is checked against it. Also the expected pass@1 averaged over samples and the unbiased
estimate's mean over a few problems, to check the aggregation, with torch as the mean.

Usage: /usr/bin/python3 tests/reference/pass_at_k.py --out tests/fixtures/pass_at_k.json
"""
import argparse
import json
from fractions import Fraction
from math import comb

import torch


def pass_at_k(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    return float(1 - Fraction(comb(n - c, k), comb(n, k)))


def cases():
    # Small hand-checkable cases, the edges (c = 0, c = n, k = n), and large n where naive binomials overflow doubles.
    out = []
    for n in (1, 2, 5, 8, 16):
        for c in range(n + 1):
            for k in range(1, n + 1):
                out.append((n, c, k))
    large = ((64, 1, 1), (64, 1, 64), (64, 13, 8), (200, 3, 100), (1000, 7, 500), (1000, 999, 1), (2000, 1, 1999))
    for n, c, k in large:
        out.append((n, c, k))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rows = [{"n": n, "c": c, "k": k, "pass_at_k": pass_at_k(n, c, k)} for n, c, k in cases()]
    # A level of four problems with 8 samples each: the mean over problems of each problem's estimate, k = 1..8.
    correct = [0, 3, 8, 5]
    level = [
        torch.tensor([pass_at_k(8, c, k) for c in correct], dtype=torch.float64).mean().item()
        for k in range(1, 9)
    ]
    # One case per line, so a diff of the fixture reads as a list of cases.
    with open(args.out, "w") as f:
        f.write('{"level": ' + json.dumps({"n": 8, "correct": correct, "pass_at_k": level}) + ',\n "cases": [\n')
        f.write(",\n".join("  " + json.dumps(r) for r in rows))
        f.write("\n ]}\n")


if __name__ == "__main__":
    main()
