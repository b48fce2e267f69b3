#!/usr/bin/python3
"""PyTorch oracle for NativeReasoner.

PyTorch is used only here, offline, to produce fixtures that the C# tests read.
It is never a dependency of the engine.

Usage:
    /usr/bin/python3 tests/reference/ops.py --seed 1234 --out tests/fixtures
    /usr/bin/python3 tests/reference/ops.py --seed 1234 --out tests/fixtures --check

Writes <out>/ops.safetensors and <out>/optim.safetensors. See README.md in this
directory for the exact file layout and the formulas that the C# side mirrors.

Numerics: every input is drawn as float32. The reference is computed in float64
from those exact float32 values and the results are rounded to float32 once, at
the end, so the fixtures are as accurate as a float32 file can be.
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
import torch.nn.functional as F

FORMAT_VERSION = "1"

# ----------------------------------------------------------------------------
# safetensors I/O (own minimal implementation; no dependency on the package)
# ----------------------------------------------------------------------------

_DTYPE_NAME = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
_NAME_DTYPE = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8")}


def safetensors_bytes(tensors, metadata):
    """tensors: ordered mapping name -> np.ndarray (float32 or int64)."""
    header = OrderedDict()
    header["__metadata__"] = OrderedDict((k, str(v)) for k, v in metadata.items())
    chunks = []
    offset = 0
    for name, arr in tensors.items():
        arr = np.array(arr, order="C", copy=False)  # (ascontiguousarray would turn shape [] into [1])
        dt = _DTYPE_NAME[arr.dtype]
        data = arr.astype(_NAME_DTYPE[dt], copy=False).tobytes(order="C")
        header[name] = OrderedDict(
            [("dtype", dt), ("shape", list(arr.shape)), ("data_offsets", [offset, offset + len(data)])]
        )
        chunks.append(data)
        offset += len(data)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((-len(hbytes)) % 8)  # pad header to 8-byte alignment
    return struct.pack("<Q", len(hbytes)) + hbytes + b"".join(chunks)


def read_safetensors(path):
    """Returns (metadata dict, ordered dict name -> np.ndarray). Validates layout."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("file too short")
    (hlen,) = struct.unpack("<Q", blob[:8])
    if 8 + hlen > len(blob):
        raise ValueError("header length beyond end of file")
    header = json.loads(blob[8 : 8 + hlen].decode("utf-8"), object_pairs_hook=OrderedDict)
    data = blob[8 + hlen :]
    meta = header.pop("__metadata__", {})
    out = OrderedDict()
    expected = 0
    for name, info in header.items():
        dt = _NAME_DTYPE[info["dtype"]]
        begin, end = info["data_offsets"]
        if begin != expected:
            raise ValueError("%s: non-contiguous data (begin %d, expected %d)" % (name, begin, expected))
        n = int(np.prod(info["shape"], dtype=np.int64))
        if end - begin != n * dt.itemsize:
            raise ValueError("%s: byte size %d does not match shape %s" % (name, end - begin, info["shape"]))
        out[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(info["shape"])
        expected = end
    if expected != len(data):
        raise ValueError("trailing bytes after last tensor")
    return meta, out


# ----------------------------------------------------------------------------
# Input generators (float32 / int64 numpy)
# ----------------------------------------------------------------------------


class Gen:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def normal(self, *shape, scale=1.0):
        return np.asarray(self.rng.standard_normal(shape) * scale).astype(np.float32)

    def well_conditioned_sum(self, *shape, dims=(), kappa=20.0):
        """A normal draw whose sum over dims does not cancel: float32 sums are accurate to about eps times
        sum(|x|), so a draw whose sum is near zero would fail a relative tolerance through no fault of the
        engine (a sum of 120 normals once came to -0.0101). Redraws until ||sum |x| ||_2 / ||sum x||_2 <= kappa."""
        axes = tuple(dims) if dims else None
        while True:
            x = self.normal(*shape)
            magnitude = np.linalg.norm(np.abs(x).astype(np.float64).sum(axis=axes))
            total = np.linalg.norm(x.astype(np.float64).sum(axis=axes))
            if magnitude <= kappa * total:
                return x

    def positive(self, *shape, lo=0.2, hi=3.0):
        return self.rng.uniform(lo, hi, size=shape).astype(np.float32)

    def away_from_zero(self, *shape):
        x = self.rng.standard_normal(shape)
        return (np.sign(x) * (0.5 + np.abs(x))).astype(np.float32)

    def mask(self, *shape, p=0.5):
        return (self.rng.uniform(size=shape) < p).astype(np.float32)

    def ints(self, lo, hi, *shape):
        return self.rng.integers(lo, hi, size=shape, dtype=np.int64)

    def ints_with_repeats(self, lo, hi, *shape):
        """Random ints in [lo, hi) guaranteed to contain at least one repeat."""
        x = self.ints(lo, hi, *shape)
        flat = x.reshape(-1)
        if flat.size >= 2 and len(np.unique(flat)) == flat.size:
            flat[-1] = flat[0]
        return x

    def ints_with_row_repeats(self, lo, hi, *shape):
        """Like ints_with_repeats, but every row along the last dim repeats a value."""
        x = self.ints(lo, hi, *shape)
        rows = x.reshape(-1, shape[-1])
        for r in rows:
            if len(np.unique(r)) == r.size:
                r[-1] = r[0]
        return x


# ----------------------------------------------------------------------------
# Op reference implementations (operate on float64 torch tensors)
# ----------------------------------------------------------------------------


def _reduce(fn_all, fn_dim):
    def f(t, a):
        x = t["x"]
        dims = a["dims"]
        if len(dims) == 0:
            return fn_all(x)
        return fn_dim(x, dims, a["keepdim"])

    return f


def _maxmin(which):
    def f(t, a):
        x = t["x"]
        dims = a["dims"]
        if len(dims) != 1:
            raise ValueError("max/min fixtures are single-dim")
        vals = getattr(torch, which)(x, dim=dims[0], keepdim=a["keepdim"])
        return vals.values

    return f


def _matmul(t, a):
    x, y = t["a"], t["b"]
    if a["transpose_a"]:
        x = x.transpose(-1, -2)
    if a["transpose_b"]:
        y = y.transpose(-1, -2)
    return torch.matmul(x, y)


def _linear(t, a):
    return F.linear(t["x"], t["weight"], t["bias"] if a["bias"] else None)


def _rms_norm(t, a):
    x, w = t["x"], t["weight"]
    return x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + a["eps"]) * w


def _rope(t, a):
    x, cos, sin = t["x"], t["cos"], t["sin"]
    # cos/sin are [T, D/2]; broadcast to the layout's T axis.
    if a["layout"] == "BTHD":
        c, s = cos[None, :, None, :], sin[None, :, None, :]
    elif a["layout"] == "BHTD":
        c, s = cos[None, None, :, :], sin[None, None, :, :]
    else:
        raise ValueError(a["layout"])
    x0 = x[..., 0::2]
    x1 = x[..., 1::2]
    o0 = x0 * c - x1 * s
    o1 = x0 * s + x1 * c
    return torch.stack([o0, o1], dim=-1).reshape(x.shape)


def _sdpa(t, a):
    q, k, v = t["q"], t["k"], t["v"]
    hq, hkv = q.shape[-3], k.shape[-3]
    if hq != hkv:
        # grouped-query attention: each K/V head serves hq / hkv consecutive query heads; repeat_interleave on
        # the heads axis is the layout HF's repeat_kv produces, and autograd sums the copies' gradients back
        assert hq % hkv == 0, (hq, hkv)
        k = k.repeat_interleave(hq // hkv, dim=-3)
        v = v.repeat_interleave(hq // hkv, dim=-3)
    scores = torch.matmul(q, k.transpose(-1, -2)) * a["scale"]
    if a["causal"]:
        tq, tk = scores.shape[-2], scores.shape[-1]
        # bottom-right aligned, as after a cached prefix: query i sits at absolute position
        # tk - tq + i and may attend keys j <= tk - tq + i (same as top-left when tq == tk)
        keep = torch.ones(tq, tk, dtype=torch.bool).tril(diagonal=tk - tq)
        scores = scores.masked_fill(~keep, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


OPS = {
    "add": lambda t, a: t["a"] + t["b"],
    "sub": lambda t, a: t["a"] - t["b"],
    "mul": lambda t, a: t["a"] * t["b"],
    "div": lambda t, a: t["a"] / t["b"],
    "neg": lambda t, a: -t["x"],
    "exp": lambda t, a: torch.exp(t["x"]),
    "log": lambda t, a: torch.log(t["x"]),
    "sqrt": lambda t, a: torch.sqrt(t["x"]),
    "rsqrt": lambda t, a: torch.rsqrt(t["x"]),
    "pow": lambda t, a: torch.pow(t["x"], a["exponent"]),
    "silu": lambda t, a: F.silu(t["x"]),
    "sigmoid": lambda t, a: torch.sigmoid(t["x"]),
    "tanh": lambda t, a: torch.tanh(t["x"]),
    "matmul": _matmul,
    "linear": _linear,
    "sum": _reduce(lambda x: x.sum(), lambda x, d, k: x.sum(dim=d, keepdim=k)),
    "mean": _reduce(lambda x: x.mean(), lambda x, d, k: x.mean(dim=d, keepdim=k)),
    "max": _maxmin("max"),
    "min": _maxmin("min"),
    "softmax": lambda t, a: torch.softmax(t["x"], dim=a["dim"]),
    "log_softmax": lambda t, a: torch.log_softmax(t["x"], dim=a["dim"]),
    "embedding": lambda t, a: F.embedding(t["ids"], t["weight"]),
    "gather": lambda t, a: torch.gather(t["x"], a["dim"], t["index"]),
    "index_select": lambda t, a: torch.index_select(t["x"], a["dim"], t["index"]),
    "scatter_add": lambda t, a: t["x"].scatter_add(a["dim"], t["index"], t["src"]),
    "cat": lambda t, a: torch.cat([t[n] for n in t], dim=a["dim"]),
    "stack": lambda t, a: torch.stack([t[n] for n in t], dim=a["dim"]),
    "split": lambda t, a: tuple(torch.split(t["x"], a["sizes"], dim=a["dim"])),
    "where": lambda t, a: torch.where(t["cond"] != 0, t["a"], t["b"]),
    "masked_fill": lambda t, a: t["x"].masked_fill(t["mask"] != 0, a["value"]),
    "rms_norm": _rms_norm,
    "rope": _rope,
    "cross_entropy": lambda t, a: F.cross_entropy(t["logits"], t["targets"], ignore_index=a["ignore_index"]),
    "sdpa": _sdpa,
    "topk": lambda t, a: tuple(torch.topk(t["x"], a["k"], dim=-1, largest=True, sorted=True)),
}


# ----------------------------------------------------------------------------
# Case definitions
# ----------------------------------------------------------------------------


class Case:
    def __init__(self, name, op, inputs, attrs=None, grads=None):
        self.name = name
        self.op = op
        self.inputs = OrderedDict(inputs)  # name -> np array, call order
        self.attrs = attrs or {}
        if grads is None:  # default: every float input
            grads = [n for n, v in self.inputs.items() if v.dtype == np.float32]
        self.grads = grads


def rope_tables(T, D, theta=10000.0):
    inv_freq = theta ** (-2.0 * np.arange(D // 2, dtype=np.float64) / D)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv_freq[None, :]
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def tie_free(x, axis=-1):
    s = np.sort(x, axis=axis)
    return bool(np.all(np.diff(s, axis=axis) != 0))


def build_cases(g):
    C = []

    # --- elementwise binary with broadcasting
    for op in ("add", "sub", "mul", "div"):
        bgen = g.away_from_zero if op == "div" else g.normal
        C.append(Case(op + "_same", op, [("a", g.normal(7, 13)), ("b", bgen(7, 13))]))
        C.append(Case(op + "_bcast", op, [("a", g.normal(5, 1, 7)), ("b", bgen(3, 1))]))
        C.append(Case(op + "_scalar", op, [("a", g.normal(1)), ("b", bgen(4, 6))]))
    # div by a broadcast [1] divisor (grad of b reduces over everything)
    C.append(Case("div_scalar_b", "div", [("a", g.normal(4, 6)), ("b", g.away_from_zero(1))]))

    # --- unary
    C.append(Case("neg", "neg", [("x", g.normal(3, 17))]))
    C.append(Case("exp", "exp", [("x", g.normal(3, 17))]))
    C.append(Case("log", "log", [("x", g.positive(3, 17))]))
    C.append(Case("sqrt", "sqrt", [("x", g.positive(3, 17))]))
    C.append(Case("rsqrt", "rsqrt", [("x", g.positive(3, 17))]))
    C.append(Case("pow_2_5", "pow", [("x", g.positive(3, 17))], {"exponent": 2.5}))
    C.append(Case("pow_3", "pow", [("x", g.normal(3, 17))], {"exponent": 3.0}))
    C.append(Case("silu", "silu", [("x", g.normal(3, 17, scale=3.0))]))
    C.append(Case("sigmoid", "sigmoid", [("x", g.normal(3, 17, scale=3.0))]))
    C.append(Case("tanh", "tanh", [("x", g.normal(3, 17, scale=2.0))]))

    # --- matmul (inputs stored in their stored layout; transpose flags = views)
    def mm(name, a, b, ta=False, tb=False):
        C.append(Case(name, "matmul", [("a", a), ("b", b)], {"transpose_a": ta, "transpose_b": tb}))

    mm("matmul_2d", g.normal(5, 7), g.normal(7, 3))
    mm("matmul_bcast_b", g.normal(2, 3, 5, 7), g.normal(7, 4))
    mm("matmul_batched", g.normal(3, 5, 7), g.normal(3, 7, 2))
    mm("matmul_tb", g.normal(5, 7), g.normal(3, 7), tb=True)  # a[5,7] @ b[3,7]^T
    mm("matmul_ta", g.normal(7, 5), g.normal(7, 3), ta=True)  # a[7,5]^T @ b[7,3]
    mm("matmul_batched_ta_tb", g.normal(3, 7, 5), g.normal(3, 2, 7), ta=True, tb=True)
    mm("matmul_bcast_tb", g.normal(2, 3, 5, 7), g.normal(4, 7), tb=True)

    # --- linear
    C.append(Case("linear", "linear",
                  [("x", g.normal(2, 5, 11)), ("weight", g.normal(6, 11)), ("bias", g.normal(6))],
                  {"bias": True}))
    C.append(Case("linear_nobias", "linear",
                  [("x", g.normal(2, 5, 11)), ("weight", g.normal(6, 11))], {"bias": False}))

    # --- reductions
    for op in ("sum", "mean"):
        for suffix, dims, keep in (("_d1", [1], False), ("_d02_keep", [0, 2], True), ("_dlast", [-1], False), ("_all", [], False)):
            x = g.well_conditioned_sum(4, 5, 6, dims=dims)
            C.append(Case(op + suffix, op, [("x", x)], {"dims": dims, "keepdim": keep}))
    for op in ("max", "min"):
        for suffix, dims, keep in (("_d1", [1], False), ("_dlast_keep", [-1], True), ("_d0", [0], False)):
            x = g.normal(4, 5, 6)
            assert tie_free(x, axis=dims[0])
            C.append(Case(op + suffix, op, [("x", x)], {"dims": dims, "keepdim": keep}))

    # --- softmax / log_softmax
    for op in ("softmax", "log_softmax"):
        C.append(Case(op + "_last", op, [("x", g.normal(4, 10))], {"dim": -1}))
        C.append(Case(op + "_d1", op, [("x", g.normal(3, 4, 5))], {"dim": 1}))
        C.append(Case(op + "_large", op, [("x", g.normal(4, 10, scale=100.0))], {"dim": -1}))

    # --- indexing
    C.append(Case("embedding", "embedding",
                  [("ids", g.ints_with_repeats(0, 11, 3, 5)), ("weight", g.normal(11, 8))], {},
                  grads=["weight"]))
    C.append(Case("gather", "gather",
                  [("x", g.normal(4, 6)), ("index", g.ints_with_row_repeats(0, 6, 4, 3))], {"dim": 1}))
    C.append(Case("gather_d0", "gather",
                  [("x", g.normal(4, 6)), ("index", g.ints_with_repeats(0, 4, 3, 6))], {"dim": 0}))
    C.append(Case("index_select", "index_select",
                  [("x", g.normal(5, 4, 3)), ("index", g.ints_with_repeats(0, 4, 6))], {"dim": 1}))
    C.append(Case("index_select_d0", "index_select",
                  [("x", g.normal(5, 4, 3)), ("index", g.ints_with_repeats(0, 5, 7))], {"dim": 0}))
    C.append(Case("scatter_add", "scatter_add",
                  [("x", g.normal(4, 6)), ("index", g.ints_with_row_repeats(0, 6, 4, 5)), ("src", g.normal(4, 5))],
                  {"dim": 1}))

    # --- shape ops
    C.append(Case("cat", "cat",
                  [("a", g.normal(2, 3, 4)), ("b", g.normal(2, 5, 4)), ("c", g.normal(2, 1, 4))], {"dim": 1}))
    C.append(Case("cat_last", "cat", [("a", g.normal(3, 2)), ("b", g.normal(3, 5))], {"dim": -1}))
    for suffix, d in (("_d0", 0), ("_d1", 1), ("_d2", 2), ("_dneg1", -1)):
        C.append(Case("stack" + suffix, "stack", [("a", g.normal(3, 4)), ("b", g.normal(3, 4))], {"dim": d}))
    C.append(Case("split", "split", [("x", g.normal(3, 10))], {"sizes": [3, 5, 2], "dim": 1}))
    C.append(Case("split_d0", "split", [("x", g.normal(6, 4))], {"sizes": [2, 4], "dim": 0}))

    # --- masking
    C.append(Case("where", "where",
                  [("cond", g.mask(4, 1, 5)), ("a", g.normal(4, 3, 5)), ("b", g.normal(1, 3, 1))], {},
                  grads=["a", "b"]))
    C.append(Case("masked_fill", "masked_fill", [("x", g.normal(4, 6)), ("mask", g.mask(4, 6))],
                  {"value": -1e9}, grads=["x"]))
    C.append(Case("masked_fill_bcast", "masked_fill", [("x", g.normal(4, 6)), ("mask", g.mask(1, 6))],
                  {"value": 0.5}, grads=["x"]))

    # --- transformer pieces
    C.append(Case("rms_norm", "rms_norm", [("x", g.normal(3, 5, 16)), ("weight", g.normal(16))], {"eps": 1e-6}))
    cos, sin = rope_tables(5, 8)
    C.append(Case("rope_bthd", "rope", [("x", g.normal(2, 5, 3, 8)), ("cos", cos), ("sin", sin)],
                  {"layout": "BTHD"}, grads=["x"]))
    C.append(Case("rope_bhtd", "rope", [("x", g.normal(2, 3, 5, 8)), ("cos", cos), ("sin", sin)],
                  {"layout": "BHTD"}, grads=["x"]))

    t = g.ints(0, 11, 6)
    t[2] = -100
    C.append(Case("cross_entropy_ignore", "cross_entropy", [("logits", g.normal(6, 11)), ("targets", t)],
                  {"ignore_index": -100}, grads=["logits"]))
    C.append(Case("cross_entropy", "cross_entropy", [("logits", g.normal(6, 7)), ("targets", g.ints(0, 7, 6))],
                  {"ignore_index": -100}, grads=["logits"]))
    C.append(Case("cross_entropy_large", "cross_entropy",
                  [("logits", g.normal(4, 9, scale=50.0)), ("targets", g.ints(0, 9, 4))],
                  {"ignore_index": -100}, grads=["logits"]))

    sc = 1.0 / math.sqrt(8.0)
    C.append(Case("sdpa_causal", "sdpa",
                  [("q", g.normal(2, 3, 9, 8)), ("k", g.normal(2, 3, 9, 8)), ("v", g.normal(2, 3, 9, 6))],
                  {"causal": True, "scale": sc}))
    C.append(Case("sdpa", "sdpa",
                  [("q", g.normal(2, 3, 9, 8)), ("k", g.normal(2, 3, 9, 8)), ("v", g.normal(2, 3, 9, 6))],
                  {"causal": False, "scale": sc}))
    C.append(Case("sdpa_t1", "sdpa",
                  [("q", g.normal(2, 3, 1, 8)), ("k", g.normal(2, 3, 1, 8)), ("v", g.normal(2, 3, 1, 6))],
                  {"causal": True, "scale": sc}))
    C.append(Case("sdpa_causal_cached_prefix", "sdpa",
                  [("q", g.normal(2, 3, 4, 8)), ("k", g.normal(2, 3, 9, 8)), ("v", g.normal(2, 3, 9, 6))],
                  {"causal": True, "scale": sc}))

    x = g.normal(4, 13)
    assert tie_free(x, axis=-1)
    C.append(Case("topk", "topk", [("x", x)], {"k": 5}, grads=[]))

    # Grouped-query attention (fewer K/V heads than query heads), appended last so the inputs drawn for the
    # cases above stay what they were.
    C.append(Case("sdpa_gqa", "sdpa",
                  [("q", g.normal(2, 6, 9, 8)), ("k", g.normal(2, 2, 9, 8)), ("v", g.normal(2, 2, 9, 6))],
                  {"causal": False, "scale": sc}))
    C.append(Case("sdpa_gqa_causal", "sdpa",
                  [("q", g.normal(1, 4, 7, 8)), ("k", g.normal(1, 2, 7, 8)), ("v", g.normal(1, 2, 7, 6))],
                  {"causal": True, "scale": sc}))
    C.append(Case("sdpa_gqa_causal_cached_prefix", "sdpa",
                  [("q", g.normal(1, 6, 4, 8)), ("k", g.normal(1, 3, 9, 8)), ("v", g.normal(1, 3, 9, 6))],
                  {"causal": True, "scale": sc}))
    C.append(Case("sdpa_mqa_decode", "sdpa",
                  [("q", g.normal(2, 7, 1, 8)), ("k", g.normal(2, 1, 11, 8)), ("v", g.normal(2, 1, 11, 8))],
                  {"causal": True, "scale": sc}))

    names = [c.name for c in C]
    assert len(names) == len(set(names)), "duplicate case names"
    return C


def run_case(c):
    """Returns (outs list of np arrays, gouts list (None for int outputs), grads dict)."""
    tin = OrderedDict()
    for n, v in c.inputs.items():
        if v.dtype == np.float32:
            tt = torch.from_numpy(v.astype(np.float64))
            if n in c.grads:
                tt.requires_grad_(True)
        else:
            tt = torch.from_numpy(v.copy())
        tin[n] = tt
    res = OPS[c.op](tin, c.attrs)
    outs = list(res) if isinstance(res, tuple) else [res]
    return tin, outs


def generate_ops(seed):
    torch.manual_seed(seed)
    g = Gen(seed)
    cases = build_cases(g)
    # upstream gradients come from a separate stream so adding a case's inputs
    # does not shift the gradients of other cases more than necessary
    gg = Gen(seed + 1)
    tensors = OrderedDict()
    meta_cases = []
    for c in cases:
        tin, outs = run_case(c)
        multi = len(outs) > 1
        loss = None
        gouts = []
        for k, o in enumerate(outs):
            if o.dtype == torch.float64 and c.grads:
                gout = gg.normal(*o.shape)
                gouts.append(gout)
                term = (o * torch.from_numpy(gout.astype(np.float64))).sum()
                loss = term if loss is None else loss + term
            else:
                gouts.append(None)
        for n, v in c.inputs.items():
            tensors["%s.in.%s" % (c.name, n)] = v
        for k, gout in enumerate(gouts):
            if gout is not None:
                tensors[("%s.gout.%d" % (c.name, k)) if multi else ("%s.gout" % c.name)] = gout
        for k, o in enumerate(outs):
            arr = o.detach().numpy()
            arr = arr.astype(np.float32) if arr.dtype == np.float64 else arr.astype(np.int64)
            tensors[("%s.out.%d" % (c.name, k)) if multi else ("%s.out" % c.name)] = arr
        if c.grads:
            loss.backward()
            for n in c.grads:
                gr = tin[n].grad
                if gr is None:
                    gr = torch.zeros_like(tin[n])
                tensors["%s.grad.%s" % (c.name, n)] = gr.numpy().astype(np.float32)
        meta_cases.append(OrderedDict([
            ("name", c.name), ("op", c.op), ("inputs", list(c.inputs.keys())), ("attrs", c.attrs),
            ("outputs", len(outs)), ("grads", list(c.grads)),
        ]))
    metadata = OrderedDict([
        ("format", FORMAT_VERSION),
        ("seed", str(seed)),
        ("torch", torch.__version__),
        ("cases", json.dumps(meta_cases, separators=(",", ":"))),
    ])
    return safetensors_bytes(tensors, metadata), meta_cases


# ----------------------------------------------------------------------------
# Optimizers, gradient clipping, LR schedule
# ----------------------------------------------------------------------------

PARAM_SHAPES = OrderedDict([("a", (37,)), ("b", (5, 3))])
STEPS = 10

ADAMW = OrderedDict([("lr", 1e-2), ("betas", [0.9, 0.999]), ("eps", 1e-8), ("weight_decay", 0.1),
                     ("amsgrad", False), ("maximize", False)])
SGD_BASE = OrderedDict([("lr", 0.05), ("momentum", 0.9), ("dampening", 0.0), ("weight_decay", 0.01)])

LR_SCHED = OrderedDict([
    ("base_lr", 1e-2), ("min_lr_ratio", 0.1), ("warmup_steps", 10), ("total_steps", 100),
    ("formula",
     "s = 0..total_steps-1 (0-based step index); "
     "if s < warmup_steps: lr = base_lr * (s + 1) / warmup_steps; "
     "else: p = min(1, (s - warmup_steps) / (total_steps - warmup_steps)); "
     "lr = min_lr + (base_lr - min_lr) * 0.5 * (1 + cos(pi * p)), min_lr = min_lr_ratio * base_lr"),
])


def lr_at(step, s=LR_SCHED):
    """Learning rate at the 0-based step index `step` (the argument of CosineDecay.LearningRate)."""
    base = s["base_lr"]
    min_lr = s["min_lr_ratio"] * base
    w, T = s["warmup_steps"], s["total_steps"]
    if step < w:
        return base * (step + 1) / w
    p = min(1.0, (step - w) / (T - w))
    return min_lr + (base - min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))


def optimizer_trajectory(prefix, make_opt, g, tensors):
    """Runs STEPS steps in float64 starting from float32-exact init/grads.
    Stores init, grads and params after each step (rounded to float32)."""
    p0 = OrderedDict((n, g.normal(*s)) for n, s in PARAM_SHAPES.items())
    params = OrderedDict((n, torch.nn.Parameter(torch.from_numpy(v.astype(np.float64)))) for n, v in p0.items())
    opt = make_opt(list(params.values()))
    for n, v in p0.items():
        tensors["%s.param.0.%s" % (prefix, n)] = v
    for step in range(1, STEPS + 1):
        for n, p in params.items():
            gr = g.normal(*p.shape)
            tensors["%s.grad.%d.%s" % (prefix, step, n)] = gr
            p.grad = torch.from_numpy(gr.astype(np.float64))
        opt.step()
        for n, p in params.items():
            tensors["%s.param.%d.%s" % (prefix, step, n)] = p.detach().numpy().astype(np.float32)


def generate_optim(seed):
    torch.manual_seed(seed)
    g = Gen(seed + 2)
    tensors = OrderedDict()

    optimizer_trajectory(
        "adamw",
        lambda ps: torch.optim.AdamW(ps, lr=ADAMW["lr"], betas=tuple(ADAMW["betas"]), eps=ADAMW["eps"],
                                     weight_decay=ADAMW["weight_decay"], amsgrad=False),
        g, tensors)
    sgd_cases = OrderedDict()
    for prefix, nesterov in (("sgd", False), ("sgd_nesterov", True)):
        hp = OrderedDict(SGD_BASE)
        hp["nesterov"] = nesterov
        sgd_cases[prefix] = hp
        optimizer_trajectory(
            prefix,
            lambda ps, hp=hp: torch.optim.SGD(ps, lr=hp["lr"], momentum=hp["momentum"], dampening=hp["dampening"],
                                              weight_decay=hp["weight_decay"], nesterov=hp["nesterov"]),
            g, tensors)

    clip_meta = OrderedDict()
    for prefix, scale in (("clip", 1.0), ("clip_noop", 0.05)):
        shapes = [(10,), (4, 5), (3,)]
        grads = [g.normal(*s, scale=scale) for s in shapes]
        ts = []
        for i, gr in enumerate(grads):
            tensors["%s.grad.%d" % (prefix, i)] = gr
            p = torch.nn.Parameter(torch.zeros(gr.shape, dtype=torch.float64))
            p.grad = torch.from_numpy(gr.astype(np.float64))
            ts.append(p)
        total = torch.nn.utils.clip_grad_norm_(ts, max_norm=1.0, norm_type=2.0)
        for i, p in enumerate(ts):
            tensors["%s.clipped.%d" % (prefix, i)] = p.grad.numpy().astype(np.float32)
        tensors["%s.total_norm" % prefix] = np.array(float(total), dtype=np.float32).reshape(())
        clip_meta[prefix] = OrderedDict([("max_norm", 1.0), ("norm_type", 2.0), ("count", len(shapes)),
                                         ("total_norm", float(total))])

    lrs = [lr_at(step) for step in range(LR_SCHED["total_steps"])]
    tensors["lr_schedule.values"] = np.array(lrs, dtype=np.float32)
    sched = OrderedDict(LR_SCHED)
    sched["values"] = lrs

    params_meta = OrderedDict((n, list(s)) for n, s in PARAM_SHAPES.items())
    metadata = OrderedDict([
        ("format", FORMAT_VERSION),
        ("seed", str(seed)),
        ("torch", torch.__version__),
        ("steps", str(STEPS)),
        ("params", json.dumps(params_meta)),
        ("adamw", json.dumps(ADAMW)),
        ("sgd", json.dumps(sgd_cases["sgd"])),
        ("sgd_nesterov", json.dumps(sgd_cases["sgd_nesterov"])),
        ("clip", json.dumps(clip_meta)),
        ("lr_schedule", json.dumps(sched)),
    ])
    return safetensors_bytes(tensors, metadata)


# ----------------------------------------------------------------------------
# Self-check
# ----------------------------------------------------------------------------


def check_ops_file(path):
    meta, ts = read_safetensors(path)
    cases = json.loads(meta["cases"])
    seen = set()
    for c in cases:
        name = c["name"]
        for n in c["inputs"]:
            key = "%s.in.%s" % (name, n)
            assert key in ts, key
            seen.add(key)
        k = c["outputs"]
        outs = ["%s.out" % name] if k == 1 else ["%s.out.%d" % (name, i) for i in range(k)]
        gouts = ["%s.gout" % name] if k == 1 else ["%s.gout.%d" % (name, i) for i in range(k)]
        for o, go in zip(outs, gouts):
            assert o in ts, o
            seen.add(o)
            if c["grads"] and ts[o].dtype == np.float32:
                assert go in ts, go
                assert ts[go].shape == ts[o].shape, go
                seen.add(go)
            if ts[o].dtype == np.float32:
                assert np.all(np.isfinite(ts[o])), o
        for n in c["grads"]:
            key = "%s.grad.%s" % (name, n)
            assert key in ts, key
            assert ts[key].shape == ts["%s.in.%s" % (name, n)].shape, key
            assert np.all(np.isfinite(ts[key])), key
            seen.add(key)
    extra = set(ts) - seen
    assert not extra, "tensors not described by cases: %s" % sorted(extra)
    return len(cases), len(ts)


def check_optim_file(path):
    meta, ts = read_safetensors(path)
    for key in ("adamw", "sgd", "sgd_nesterov", "clip", "lr_schedule", "params"):
        json.loads(meta[key])
    steps = int(meta["steps"])
    params = json.loads(meta["params"])
    for prefix in ("adamw", "sgd", "sgd_nesterov"):
        for n, shape in params.items():
            for s in range(steps + 1):
                assert list(ts["%s.param.%d.%s" % (prefix, s, n)].shape) == shape
                if s > 0:
                    assert list(ts["%s.grad.%d.%s" % (prefix, s, n)].shape) == shape
    sched = json.loads(meta["lr_schedule"])
    vals = ts["lr_schedule.values"]
    assert vals.shape == (sched["total_steps"],)
    for step in range(sched["total_steps"]):
        assert abs(vals[step] - lr_at(step, sched)) <= 1e-6 * sched["base_lr"]
    return len(ts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", default="tests/fixtures")
    ap.add_argument("--check", action="store_true",
                    help="do not write; re-read the files in --out, validate them and compare with a fresh "
                         "in-memory regeneration")
    args = ap.parse_args(argv)

    ops_path = os.path.join(args.out, "ops.safetensors")
    optim_path = os.path.join(args.out, "optim.safetensors")
    ops_bytes, _ = generate_ops(args.seed)
    optim_bytes = generate_optim(args.seed)

    if not args.check:
        os.makedirs(args.out, exist_ok=True)
        with open(ops_path, "wb") as f:
            f.write(ops_bytes)
        with open(optim_path, "wb") as f:
            f.write(optim_bytes)
        print("wrote %s (%d bytes), %s (%d bytes)" % (ops_path, len(ops_bytes), optim_path, len(optim_bytes)))

    ncases, nt = check_ops_file(ops_path)
    nopt = check_optim_file(optim_path)
    print("ok: %s: %d cases, %d tensors; %s: %d tensors" % (ops_path, ncases, nt, optim_path, nopt))
    if args.check:
        same = True
        for path, fresh in ((ops_path, ops_bytes), (optim_path, optim_bytes)):
            with open(path, "rb") as f:
                if f.read() != fresh:
                    same = False
                    print("note: %s differs from a fresh regeneration with seed %d "
                          "(other seed or torch/BLAS version?)" % (path, args.seed))
        if same:
            print("ok: files are byte-identical to a fresh regeneration with seed %d" % args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
