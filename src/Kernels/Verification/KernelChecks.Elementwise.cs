// Source: ggml's test-backend-ops: every backend op checked against a reference at awkward sizes.
using NativeReasoner.Kernels.Cuda;

namespace NativeReasoner.Kernels.Verification;

// Checks of the memory / conversion / elementwise / broadcast / reduction / optimizer ops. Sizes: 1, 7, 31, 257,
// 1031 (odd, prime, not multiples of 4 or of a block) and 65543 or 70001 (more elements than the grid has
// threads on the emulator, so the grid-stride loops and the reduction splits run). Flat kernels are also run on
// pointers offset by one element (the scalar, non-float4 path) and in place where the contract allows it.
public static unsafe partial class KernelChecks
{
    private static readonly int[] EwSizes = [1, 7, 31, 257, 1031, 65543];

    static partial void AddElementwise(List<KernelCheck> list)
    {
        AddEwStridedCopy(list);
        AddEwConversions(list);
        AddEwUnary(list);
        AddEwBinary(list);
        AddEwWhere(list);
        AddEwAccumulate(list);
        AddEwReduce(list);
        AddEwOptimizers(list);
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>Floats equal bit for bit (so +0 ≠ −0), except that any NaN matches any NaN.</summary>
    private static void EwSameBits(KernelCheckContext ctx, ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, string what)
    {
        if (actual.Length != expected.Length)
        {
            ctx.Require(false, $"{what}: length {actual.Length}, expected {expected.Length}");
            return;
        }
        for (int i = 0; i < expected.Length; i++)
        {
            float a = actual[i], e = expected[i];
            bool same = float.IsNaN(e) ? float.IsNaN(a) : BitConverter.SingleToUInt32Bits(a) == BitConverter.SingleToUInt32Bits(e);
            if (!same)
            {
                ctx.Require(false, $"{what}: element {i} is {a} (0x{BitConverter.SingleToUInt32Bits(a):x8}), expected {e} (0x{BitConverter.SingleToUInt32Bits(e):x8})");
                return;
            }
        }
    }

    /// <summary>Σ index·stride over a shape: the largest offset a non-negative-stride view reaches, plus one.</summary>
    private static long EwExtent(int[] shape, long[] strides)
    {
        long e = 1;
        for (int a = 0; a < shape.Length; a++) e += (shape[a] - 1L) * Math.Abs(strides[a]);
        return e;
    }

    private static long EwCount(int[] shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        return n;
    }

    private static long[] EwContiguous(int[] shape)
    {
        var s = new long[shape.Length];
        long st = 1;
        for (int a = shape.Length - 1; a >= 0; a--)
        {
            s[a] = st;
            st *= shape[a];
        }
        return s;
    }

    private static string EwShapeName(int[] shape) => shape.Length == 0 ? "scalar" : string.Join("x", shape);

    // ---------------------------------------------------------------- memory

    private static void AddEwStridedCopy(List<KernelCheck> list)
    {
        // (name, shape, src strides, dst strides, src offset, dst offset): offsets let a stride run backwards.
        var cases = new (string Name, int[] Shape, long[] Src, long[] Dst, long SrcOff, long DstOff)[]
        {
            ("contiguous-1031", [1031], [1], [1], 0, 0),
            ("transpose-37x53", [37, 53], [1, 37], [53, 1], 0, 0),
            ("transpose-dst-45x19", [45, 19], [19, 1], [1, 45], 0, 0),
            ("transpose-batched-3x40x33", [3, 40, 33], [1320, 1, 40], [1320, 33, 1], 0, 0),
            ("transpose-257x300", [257, 300], [1, 257], [300, 1], 0, 0),
            ("permute-2x3x5x7", [2, 3, 5, 7], [1, 2, 6, 30], [105, 35, 7, 1], 0, 0),
            ("broadcast-5x4x7", [5, 4, 7], [7, 0, 1], [28, 7, 1], 0, 0),
            ("scalar", [], [], [], 0, 0),
            ("ones-1x1x1", [1, 1, 1], [5, 9, 2], [1, 1, 1], 0, 0),
            ("strided-dst-17x19", [17, 19], [19, 1], [40, 2], 0, 0),
            ("reversed-31", [31], [-1], [1], 30, 0),
            ("gather-70001", [70001], [2], [1], 0, 0),
            ("rank8", [2, 1, 3, 2, 1, 2, 3, 2], [1, 7, 2, 100, 3, 50, 17, 200], [144, 144, 48, 24, 24, 12, 4, 1], 0, 0),
        };
        foreach (var c in cases)
            foreach (int es in new[] { 1, 2, 4, 8 })
                list.Add(new KernelCheck($"memory/strided-copy/{c.Name}/e{es}", ctx =>
                {
                    long srcLen = EwExtent(c.Shape, c.Src) + c.SrcOff, dstLen = EwExtent(c.Shape, c.Dst) + c.DstOff;
                    var src = new byte[srcLen * es];
                    var dst = new byte[dstLen * es];
                    ctx.Rng.NextBytes(src);
                    ctx.Rng.NextBytes(dst);
                    byte* ds = ctx.Up(src), dd = ctx.Up(dst);
                    ctx.K.StridedCopy(ds + c.SrcOff * es, c.Src, dd + c.DstOff * es, c.Dst, c.Shape, es);
                    fixed (byte* hs = src, hd = dst)
                        ctx.Ref.StridedCopy(hs + c.SrcOff * es, c.Src, hd + c.DstOff * es, c.Dst, c.Shape, es);
                    // The whole destination buffer: the copy must not touch the gaps between its elements.
                    ctx.Exact<byte>(ctx.Down(dd, dst.Length), dst, "dst");
                }));
    }

    // ---------------------------------------------------------------- conversions

    /// <summary>Floats spread over many binades (subnormal to overflow for half), both signs.</summary>
    private static float[] EwWideFloats(KernelCheckContext ctx, long n, int minExp, int maxExp)
    {
        var x = new float[n];
        for (long i = 0; i < n; i++)
        {
            double m = 1 + ctx.Rng.NextDouble();
            int e = ctx.Rng.Next(minExp, maxExp + 1);
            x[i] = (float)(m * Math.Pow(2, e) * (ctx.Rng.Next(2) == 0 ? 1 : -1));
        }
        return x;
    }

    private static float EwF(uint bits) => BitConverter.UInt32BitsToSingle(bits);

    // Edge cases of float → bf16: NaN payloads (quiet and signalling), ±inf, ±0, overflow by rounding,
    // subnormals, and exact ties (round to even both ways).
    private static readonly uint[] EwBf16Edges =
    [
        0x7fc00000, 0x7f800001, 0xffbfffff, 0x7f800000, 0xff800000, 0x00000000, 0x80000000,
        0x7f7fffff, 0x7f7f8000, 0x7f7f7fff, 0xff7f8000, // max float, tie at the top (→ inf), just below the tie
        0x00000001, 0x00008000, 0x00018000, 0x0000ffff, 0x807fffff, // subnormals and subnormal ties
        0x3f808000, 0x3f818000, 0x3f808001, 0x3f817fff, 0xbf808000, // ties to even (down, up), just above/below
    ];

    // Edge cases of float → half: NaN, ±inf, the largest half and the rounding boundary to inf, the normal /
    // subnormal boundary, the smallest subnormal and the ties around it, ties in the normal range.
    private static readonly float[] EwHalfEdges =
    [
        float.NaN, EwF(0x7f800001), EwF(0xffc01234), float.PositiveInfinity, float.NegativeInfinity, 0f, -0f,
        65504f, -65504f, 65519.996f, 65520f, -65520f, 1e10f, float.MaxValue, -float.Epsilon,
        6.1035156e-5f /* 2^-14 */, 6.1035152e-5f, 6.0975552e-5f /* largest subnormal */, 6.100535e-5f,
        5.9604645e-8f /* 2^-24 */, 2.9802322e-8f /* 2^-25: tie → 0 */, 2.9802326e-8f, 8.940697e-8f /* 1.5·2^-24 tie → 2 */,
        1.1920929e-7f /* 2·2^-24 */, 1.4901161e-7f /* 2.5·2^-24 tie → 2 */, 1e-30f,
        1.00048828125f /* 1 + 2^-11: tie → 1 */, 1.00146484375f /* 1 + 3·2^-11: tie → 1 + 2^-9 */, -1.00048828125f,
        1024.5f, 1025.5f, 2047.5f, 0.1f, -3.14159f,
    ];

    private static bool EwHalfIsNaN(ushort h) => (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;

    private static void AddEwConversions(List<KernelCheck> list)
    {
        foreach (int n in new[] { 1, 7, 31, 257, 1031, 70001 })
        {
            list.Add(new KernelCheck($"convert/f32-bf16/{n}", ctx =>
            {
                var x = EwWideFloats(ctx, n, -140, 127);
                for (int i = 0; i < EwBf16Edges.Length && i < n; i++) x[i] = EwF(EwBf16Edges[i]);
                // Exact ties at random binades as well (low 16 bits 0x8000).
                for (int i = EwBf16Edges.Length; i < n; i += 5) x[i] = EwF(BitConverter.SingleToUInt32Bits(x[i]) & 0xffff0000u | 0x8000u);
                var expected = new ushort[n];
                fixed (float* hx = x) fixed (ushort* hy = expected) ctx.Ref.FloatToBFloat16(hx, hy, n);
                ushort* y = ctx.Garbage<ushort>(n);
                ctx.K.FloatToBFloat16(ctx.Up(x), y, n);
                ctx.Exact<ushort>(ctx.Down(y, n), expected, "bf16 bits");
                // Unaligned pointers take the scalar path.
                var x1 = new float[n + 1];
                Array.Copy(x, 0, x1, 1, n);
                ushort* y1 = ctx.Garbage<ushort>(n + 1);
                ctx.K.FloatToBFloat16(ctx.Up(x1) + 1, y1 + 1, n);
                ctx.Exact<ushort>(ctx.Down(y1, n + 1).AsSpan(1), expected, "bf16 bits (unaligned)");
            }));
            list.Add(new KernelCheck($"convert/f32-f16/{n}", ctx =>
            {
                var x = EwWideFloats(ctx, n, -27, 17);
                for (int i = 0; i < EwHalfEdges.Length && i < n; i++) x[i] = EwHalfEdges[i];
                // Exact ties of normal halves at random binades (the 13 dropped bits = 0x1000).
                for (int i = EwHalfEdges.Length; i < n; i += 5)
                {
                    uint b = BitConverter.SingleToUInt32Bits(x[i]);
                    if ((b & 0x7f800000) >= 0x38800000 && (b & 0x7f800000) < 0x47000000) x[i] = EwF(b & 0xffffe000u | 0x1000u);
                }
                var expected = new ushort[n];
                fixed (float* hx = x) fixed (ushort* hy = expected) ctx.Ref.FloatToHalf(hx, hy, n);
                foreach (bool aligned in new[] { true, false })
                {
                    int o = aligned ? 0 : 1;
                    var xs = new float[n + o];
                    Array.Copy(x, 0, xs, o, n);
                    ushort* y = ctx.Garbage<ushort>(n + o);
                    ctx.K.FloatToHalf(ctx.Up(xs) + o, y + o, n);
                    var actual = ctx.Down(y, n + o).AsSpan(o).ToArray();
                    var exp = (ushort[])expected.Clone();
                    // The NaN payload is not part of the contract: any NaN matches any NaN.
                    for (int i = 0; i < n; i++)
                        if (EwHalfIsNaN(exp[i]) && EwHalfIsNaN(actual[i])) exp[i] = actual[i];
                    ctx.Exact<ushort>(actual, exp, aligned ? "half bits" : "half bits (unaligned)");
                }
            }));
        }
        // Every 16-bit pattern (plus a wrap-around tail, so the grid-stride loop runs on the emulator).
        foreach (bool half in new[] { false, true })
            list.Add(new KernelCheck($"convert/{(half ? "f16" : "bf16")}-f32/all-65543", ctx =>
            {
                const int n = 65543;
                var x = new ushort[n];
                for (int i = 0; i < n; i++) x[i] = (ushort)i;
                var expected = new float[n];
                fixed (ushort* hx = x) fixed (float* hy = expected)
                {
                    if (half) ctx.Ref.HalfToFloat(hx, hy, n);
                    else ctx.Ref.BFloat16ToFloat(hx, hy, n);
                }
                foreach (int o in new[] { 0, 1 })
                {
                    var xs = new ushort[n + o];
                    Array.Copy(x, 0, xs, o, n);
                    float* y = ctx.Garbage<float>(n + o);
                    if (half) ctx.K.HalfToFloat(ctx.Up(xs) + o, y + o, n);
                    else ctx.K.BFloat16ToFloat(ctx.Up(xs) + o, y + o, n);
                    EwSameBits(ctx, ctx.Down(y, n + o).AsSpan(o), expected, o == 0 ? "float bits" : "float bits (unaligned)");
                }
            }));
        foreach (int n in new[] { 1, 7, 257, 70001 })
        {
            list.Add(new KernelCheck($"convert/i64-f32/{n}", ctx =>
            {
                long[] edges = [0, -1, long.MaxValue, long.MinValue, (1L << 24) + 1, (1L << 24) + 3, (1L << 53) + 1, -(1L << 40) - 12345, 16777217L * 1024];
                var x = new long[n];
                for (int i = 0; i < n; i++) x[i] = i < edges.Length ? edges[i] : ctx.Rng.NextInt64(long.MinValue, long.MaxValue) >> ctx.Rng.Next(0, 63);
                var expected = new float[n];
                fixed (long* hx = x) fixed (float* hy = expected) ctx.Ref.Int64ToFloat(hx, hy, n);
                float* y = ctx.Garbage<float>(n);
                ctx.K.Int64ToFloat(ctx.Up(x), y, n);
                EwSameBits(ctx, ctx.Down(y, n), expected, "float");
            }));
            list.Add(new KernelCheck($"convert/f32-i64/{n}", ctx =>
            {
                float[] edges = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, 1e19f, -1e19f, 9.223372e18f, -9.223372e18f,
                    9.2233715e18f, 1.5f, -1.5f, -0.99f, 0.99f, -0f, 123456.7f, 16777216f];
                var x = new float[n];
                for (int i = 0; i < n; i++) x[i] = i < edges.Length ? edges[i] : (float)((ctx.Rng.NextDouble() * 2 - 1) * Math.Pow(2, ctx.Rng.Next(0, 64)));
                var expected = new long[n];
                fixed (float* hx = x) fixed (long* hy = expected) ctx.Ref.FloatToInt64(hx, hy, n);
                long* y = ctx.Garbage<long>(n);
                ctx.K.FloatToInt64(ctx.Up(x), y, n);
                ctx.Exact<long>(ctx.Down(y, n), expected, "int64");
            }));
            list.Add(new KernelCheck($"convert/i32-i64/{n}", ctx =>
            {
                var x = new int[n];
                for (int i = 0; i < n; i++) x[i] = i switch { 0 => int.MinValue, 1 => int.MaxValue, 2 => -1, _ => ctx.Rng.Next(int.MinValue, int.MaxValue) };
                var expected = new long[n];
                fixed (int* hx = x) fixed (long* hy = expected) ctx.Ref.Int32ToInt64(hx, hy, n);
                long* y = ctx.Garbage<long>(n);
                ctx.K.Int32ToInt64(ctx.Up(x), y, n);
                ctx.Exact<long>(ctx.Down(y, n), expected, "int64");
            }));
            list.Add(new KernelCheck($"convert/i64-i32/{n}", ctx =>
            {
                var x = new long[n];
                for (int i = 0; i < n; i++)
                    x[i] = i switch { 0 => long.MinValue, 1 => long.MaxValue, 2 => -1, 3 => (1L << 32) + 5, _ => ctx.Rng.NextInt64(long.MinValue, long.MaxValue) >> ctx.Rng.Next(0, 40) };
                var expected = new int[n];
                fixed (long* hx = x) fixed (int* hy = expected) ctx.Ref.Int64ToInt32(hx, hy, n);
                int* y = ctx.Garbage<int>(n);
                ctx.K.Int64ToInt32(ctx.Up(x), y, n);
                ctx.Exact<int>(ctx.Down(y, n), expected, "int32");
            }));
        }
    }

    // ---------------------------------------------------------------- unary

    private static float EwAlpha(UnaryOp op) => op switch
    {
        UnaryOp.Pow => 1.7f,
        UnaryOp.Scale => -0.75f,
        UnaryOp.AddScalar => 0.3f,
        _ => 0f,
    };

    /// <summary>Inputs inside the op's domain (positive for log, sqrt, rsqrt, pow).</summary>
    private static float[] EwUnaryInputs(KernelCheckContext ctx, UnaryOp op, long n) =>
        op is UnaryOp.Log or UnaryOp.Sqrt or UnaryOp.Rsqrt or UnaryOp.Pow ? ctx.Rand(n, 0.05f, 4f) : ctx.Rand(n, -6f, 6f);

    // Values where IEEE special cases decide the result (NaN, ±inf, ±0, overflow, the edges of the domain).
    private static readonly float[] EwUnarySpecials =
        [float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f, 1f, -1f, 2.5f, -2.5f, 1e-30f, 1e30f, -1e30f, 100f, -100f, 30f, -30f];

    private static void AddEwUnary(List<KernelCheck> list)
    {
        foreach (var op in Enum.GetValues<UnaryOp>())
        {
            list.Add(new KernelCheck($"elementwise/unary/{op}", ctx =>
            {
                float alpha = EwAlpha(op);
                foreach (int n in EwSizes)
                {
                    var x = EwUnaryInputs(ctx, op, n);
                    var expected = new float[n];
                    fixed (float* hx = x, hy = expected) ctx.Ref.Unary(op, hx, hy, n, alpha);
                    float* dx = ctx.Up(x), y = ctx.Garbage<float>(n);
                    ctx.K.Unary(op, dx, y, n, alpha);
                    // fp32 library functions (≤ 2 ulp) against the double reference rounded once.
                    ctx.Close(ctx.Down(y, n), expected, 1e-5, $"n={n}");
                    ctx.K.Unary(op, dx, dx, n, alpha); // in place
                    ctx.Close(ctx.Down(dx, n), expected, 1e-5, $"n={n} in place");
                }
                {
                    const int n = 1031;
                    var x = new float[n + 1];
                    Array.Copy(EwUnaryInputs(ctx, op, n), 0, x, 1, n);
                    var expected = new float[n];
                    fixed (float* hx = x, hy = expected) ctx.Ref.Unary(op, hx + 1, hy, n, alpha);
                    float* y = ctx.Garbage<float>(n + 1);
                    ctx.K.Unary(op, ctx.Up(x) + 1, y + 1, n, alpha);
                    ctx.Close(ctx.Down(y, n + 1).AsSpan(1), expected, 1e-5, "unaligned");
                }
                {
                    var x = EwUnarySpecials;
                    int n = x.Length;
                    var expected = new float[n];
                    fixed (float* hx = x, hy = expected) ctx.Ref.Unary(op, hx, hy, n, alpha);
                    float* y = ctx.Garbage<float>(n);
                    ctx.K.Unary(op, ctx.Up(x), y, n, alpha);
                    ctx.Close(ctx.Down(y, n), expected, 1e-5, "special values");
                }
            }));
            list.Add(new KernelCheck($"elementwise/unary-backward/{op}", ctx =>
            {
                float alpha = EwAlpha(op);
                foreach (int n in EwSizes)
                {
                    var x = EwUnaryInputs(ctx, op, n);
                    if (op is UnaryOp.Relu or UnaryOp.Abs)
                        for (int i = 0; i < n; i += 7) x[i] = 0f; // the kink: derivative 0 there (as the reference)
                    var y = new float[n];
                    var dy = ctx.Rand(n);
                    var expected = new float[n];
                    fixed (float* hx = x, hy = y, hdy = dy, he = expected)
                    {
                        ctx.Ref.Unary(op, hx, hy, n, alpha);
                        ctx.Ref.UnaryBackward(op, hx, hy, hdy, he, n, alpha);
                    }
                    float* dxp = ctx.Up(x), dyp = ctx.Up(y), ddy = ctx.Up(dy), grad = ctx.Garbage<float>(n);
                    ctx.K.UnaryBackward(op, dxp, dyp, ddy, grad, n, alpha);
                    ctx.Close(ctx.Down(grad, n), expected, 1e-5, $"n={n}");
                    ctx.K.UnaryBackward(op, dxp, dyp, ddy, ddy, n, alpha); // dx aliases dy
                    ctx.Close(ctx.Down(ddy, n), expected, 1e-5, $"n={n} dx = dy");
                }
                {
                    const int n = 257;
                    var x = new float[n + 1];
                    Array.Copy(EwUnaryInputs(ctx, op, n), 0, x, 1, n);
                    var y = new float[n + 1];
                    var dy = ctx.Rand(n + 1);
                    var expected = new float[n];
                    fixed (float* hx = x, hy = y, hdy = dy, he = expected)
                    {
                        ctx.Ref.Unary(op, hx + 1, hy + 1, n, alpha);
                        ctx.Ref.UnaryBackward(op, hx + 1, hy + 1, hdy + 1, he, n, alpha);
                    }
                    float* grad = ctx.Garbage<float>(n + 1);
                    ctx.K.UnaryBackward(op, ctx.Up(x) + 1, ctx.Up(y) + 1, ctx.Up(dy) + 1, grad + 1, n, alpha);
                    ctx.Close(ctx.Down(grad, n + 1).AsSpan(1), expected, 1e-5, "unaligned");
                }
                {
                    var x = EwUnarySpecials;
                    int n = x.Length;
                    var y = new float[n];
                    var dy = ctx.Rand(n, 0.5f, 1.5f);
                    var expected = new float[n];
                    fixed (float* hx = x, hy = y, hdy = dy, he = expected)
                    {
                        ctx.Ref.Unary(op, hx, hy, n, alpha);
                        ctx.Ref.UnaryBackward(op, hx, hy, hdy, he, n, alpha);
                    }
                    float* grad = ctx.Garbage<float>(n);
                    ctx.K.UnaryBackward(op, ctx.Up(x), ctx.Up(y), ctx.Up(dy), grad, n, alpha);
                    ctx.Close(ctx.Down(grad, n), expected, 1e-5, "special values");
                }
            }));
        }
    }

    // ---------------------------------------------------------------- binary and where

    // (name, shape, a strides, b strides): contiguous, scalar broadcast, general broadcast, rank 0, transposed.
    private static readonly (string Name, int[] Shape, long[] A, long[] B)[] EwBroadcastCases =
    [
        ("flat-1", [1], [1], [1]),
        ("flat-7", [7], [1], [1]),
        ("flat-257", [257], [1], [1]),
        ("flat-65543", [65543], [1], [1]),
        ("scalar-a-1031", [1031], [0], [1]),
        ("scalar-b-31x33", [31, 33], [33, 1], [0, 0]),
        ("3x1x7-by-1x5x1", [3, 5, 7], [7, 0, 1], [0, 1, 0]),
        ("row-bias-257x33", [257, 33], [33, 1], [0, 1]),
        ("row-bias-37x64", [37, 64], [64, 1], [0, 1]),          // float4 rows
        ("3x1x8-by-1x5x1", [3, 5, 8], [8, 0, 1], [0, 1, 0]),    // float4 rows, one operand broadcast along them
        ("pitch-35-9x32", [9, 32], [35, 1], [0, 1]),            // rows a multiple of 4 but a misaligned pitch
        ("column-33x257", [33, 257], [257, 1], [1, 0]),
        ("scalar", [], [], []),
        ("ones-1x1", [1, 1], [0, 0], [1, 1]),
        ("transposed-31x17", [31, 17], [1, 31], [17, 1]),
        ("bcast-300x257", [300, 257], [257, 1], [0, 1]),
        ("rank8", [2, 3, 1, 2, 3, 1, 2, 5], [180, 60, 60, 30, 10, 10, 5, 1], [0, 1, 0, 3, 0, 0, 6, 0]),
    ];

    private static float[] EwOperand(KernelCheckContext ctx, int[] shape, long[] strides)
    {
        var a = ctx.Rand(EwExtent(shape, strides), -2f, 2f);
        // A few exact ties, zeros of both signs and NaN, so maximum/minimum meet their special cases.
        for (int i = 0; i < a.Length; i += 11) a[i] = 0.5f;
        for (int i = 3; i < a.Length; i += 13) a[i] = (i & 1) == 0 ? 0f : -0f;
        for (int i = 5; i < a.Length; i += 97) a[i] = float.NaN;
        return a;
    }

    private static void AddEwBinary(List<KernelCheck> list)
    {
        foreach (var op in Enum.GetValues<BinaryOp>())
            list.Add(new KernelCheck($"elementwise/binary/{op}", ctx =>
            {
                foreach (var c in EwBroadcastCases)
                {
                    long n = EwCount(c.Shape);
                    var a = EwOperand(ctx, c.Shape, c.A);
                    var b = EwOperand(ctx, c.Shape, c.B);
                    if (op == BinaryOp.Div)
                        for (int i = 7; i < b.Length; i += 17) b[i] = 0f; // x/0 = ±inf, 0/0 = NaN
                    var expected = new float[n];
                    fixed (float* ha = a, hb = b, he = expected) ctx.Ref.Binary(op, ha, c.A, hb, c.B, he, c.Shape);
                    float* y = ctx.Garbage<float>(n);
                    ctx.K.Binary(op, ctx.Up(a), c.A, ctx.Up(b), c.B, y, c.Shape);
                    // Correctly rounded IEEE operations: bit-exact, including the sign of zero of maximum/minimum.
                    EwSameBits(ctx, ctx.Down(y, n), expected, c.Name);
                }
                {
                    // In place: c aliases a (contiguous, exactly the shape), b a broadcast row (scalar and float4 rows).
                    foreach (int cols in new[] { 41, 44 })
                    {
                        int[] shape = [37, cols];
                        long[] sa = [cols, 1], sb = [0, 1];
                        var a = EwOperand(ctx, shape, sa);
                        var b = EwOperand(ctx, shape, sb);
                        var expected = new float[a.Length];
                        fixed (float* ha = a, hb = b, he = expected) ctx.Ref.Binary(op, ha, sa, hb, sb, he, shape);
                        float* da = ctx.Up(a);
                        ctx.K.Binary(op, da, sa, ctx.Up(b), sb, da, shape);
                        EwSameBits(ctx, ctx.Down(da, a.Length), expected, $"in place (c = a), 37x{cols}");
                    }
                    // c aliases b, flat.
                    var a2 = EwOperand(ctx, [1031], [1]);
                    var b2 = EwOperand(ctx, [1031], [1]);
                    var expected2 = new float[1031];
                    fixed (float* ha = a2, hb = b2, he = expected2) ctx.Ref.Binary(op, ha, [1], hb, [1], he, [1031]);
                    float* db2 = ctx.Up(b2);
                    ctx.K.Binary(op, ctx.Up(a2), [1], db2, [1], db2, [1031]);
                    EwSameBits(ctx, ctx.Down(db2, 1031), expected2, "in place (c = b)");
                }
                {
                    // Unaligned flat operands (scalar path).
                    const int n = 1031;
                    var a = EwOperand(ctx, [n + 1], [1]);
                    var b = EwOperand(ctx, [n + 1], [1]);
                    var expected = new float[n];
                    fixed (float* ha = a, hb = b, he = expected) ctx.Ref.Binary(op, ha + 1, [1], hb + 1, [1], he, [n]);
                    float* y = ctx.Garbage<float>(n + 1);
                    ctx.K.Binary(op, ctx.Up(a) + 1, [1], ctx.Up(b) + 1, [1], y + 1, [n]);
                    EwSameBits(ctx, ctx.Down(y, n + 1).AsSpan(1), expected, "unaligned");
                }
            }));
    }

    private static void AddEwWhere(List<KernelCheck> list)
    {
        var cases = new (string Name, int[] Shape, long[] C, long[] A, long[] B)[]
        {
            ("flat-1", [1], [1], [1], [1]),
            ("flat-1031", [1031], [1], [1], [1]),
            ("flat-65543", [65543], [1], [1], [1]),
            ("scalar-cond-257", [257], [0], [1], [1]),
            ("scalar-a-b-31", [31], [1], [0], [0]),
            ("3x1x7-by-1x5x1-by-3x5x7", [3, 5, 7], [7, 0, 1], [0, 1, 0], [35, 7, 1]),
            ("scalar", [], [], [], []),
            ("transposed-31x17", [31, 17], [17, 1], [1, 31], [0, 1]),
            ("bcast-300x257", [300, 257], [0, 1], [257, 1], [1, 0]),
        };
        foreach (var c in cases)
            list.Add(new KernelCheck($"elementwise/where/{c.Name}", ctx =>
            {
                long n = EwCount(c.Shape);
                var cond = new float[EwExtent(c.Shape, c.C)];
                // 0, −0 (false), NaN and other numbers (true).
                for (int i = 0; i < cond.Length; i++)
                    cond[i] = ctx.Rng.Next(5) switch { 0 => 0f, 1 => -0f, 2 => float.NaN, 3 => 1f, _ => -3.5f };
                var a = EwOperand(ctx, c.Shape, c.A);
                var b = EwOperand(ctx, c.Shape, c.B);
                var expected = new float[n];
                fixed (float* hc = cond, ha = a, hb = b, he = expected) ctx.Ref.Where(hc, c.C, ha, c.A, hb, c.B, he, c.Shape);
                float* y = ctx.Garbage<float>(n);
                ctx.K.Where(ctx.Up(cond), c.C, ctx.Up(a), c.A, ctx.Up(b), c.B, y, c.Shape);
                EwSameBits(ctx, ctx.Down(y, n), expected, "where");
                if (c.Shape.Length == 1 && c.C[0] == 1 && c.A[0] == 1 && c.B[0] == 1)
                {
                    // Unaligned flat operands.
                    var c1 = new float[n + 1];
                    var a1 = new float[n + 1];
                    var b1 = new float[n + 1];
                    Array.Copy(cond, 0, c1, 1, n);
                    Array.Copy(a, 0, a1, 1, n);
                    Array.Copy(b, 0, b1, 1, n);
                    float* y1 = ctx.Garbage<float>(n + 1);
                    ctx.K.Where(ctx.Up(c1) + 1, c.C, ctx.Up(a1) + 1, c.A, ctx.Up(b1) + 1, c.B, y1 + 1, c.Shape);
                    EwSameBits(ctx, ctx.Down(y1, n + 1).AsSpan(1), expected, "where (unaligned)");
                }
            }));
    }

    // ---------------------------------------------------------------- reductions

    private static void AddEwAccumulate(List<KernelCheck> list)
    {
        // (name, shape of src, dst strides (0 = summed away)).
        var cases = new (string Name, int[] Shape, long[] Dst)[]
        {
            ("bias-257x33", [257, 33], [0, 1]),
            ("rows-33x257", [33, 257], [1, 0]),
            ("3x5x7-to-3x1x7", [3, 5, 7], [7, 0, 1]),
            ("3x5x7-to-1x5x1", [3, 5, 7], [0, 1, 0]),
            ("3x4x5x6-to-3x1x5x1", [3, 4, 5, 6], [5, 0, 1, 0]),
            ("all-70001", [70001], [0]),
            ("bias-70001x3", [70001, 3], [0, 1]),
            ("rows-3x40000", [3, 40000], [1, 0]),
            ("none-7x9", [7, 9], [9, 1]),
            ("strided-dst-4x6x5", [4, 6, 5], [20, 2, 0]),
            ("scalar", [], []),
            ("one-1", [1], [0]),
            ("rank8", [2, 1, 3, 2, 2, 1, 3, 2], [0, 0, 12, 6, 0, 0, 2, 1]),
            ("overlap-4x5", [4, 5], [1, 1]), // dst[i + j]: kept axes collide (the atomic path)
        };
        foreach (var c in cases)
            list.Add(new KernelCheck($"elementwise/accumulate-strided/{c.Name}", ctx =>
            {
                long n = EwCount(c.Shape);
                // Positive terms: long sums do not cancel, so fp32 accumulation stays well inside 1e-5 of the
                // reference's double sum (the error grows like √n·2^-24 relative to the sum).
                var src = ctx.Rand(n, 0.1f, 1f);
                var dst = ctx.Rand(EwExtent(c.Shape, c.Dst), -1f, 1f);
                var expected = (float[])dst.Clone();
                fixed (float* hs = src, he = expected) ctx.Ref.AccumulateStrided(hs, c.Shape, he, c.Dst);
                float* dd = ctx.Up(dst);
                ctx.K.AccumulateStrided(ctx.Up(src), c.Shape, dd, c.Dst);
                ctx.Close(ctx.Down(dd, dst.Length), expected, 1e-5, "dst");
            }));
    }

    private static void AddEwReduce(List<KernelCheck> list)
    {
        var shapes = new (int Outer, int Dim, int Inner)[]
        {
            (1, 1, 1), (7, 1, 1), (1, 7, 1), (1, 1, 7), (3, 5, 7), (31, 257, 1), (257, 31, 1), (4, 33, 257),
            (1, 70001, 1), (2, 40000, 3), (5, 1031, 2), (1031, 3, 1), (2, 3, 9001),
        };
        foreach (var op in Enum.GetValues<ReduceOp>())
            foreach (var (outer, dim, inner) in shapes)
                list.Add(new KernelCheck($"reduce/{op}/{outer}x{dim}x{inner}", ctx =>
                {
                    long n = (long)outer * dim * inner, m = (long)outer * inner;
                    bool extreme = op is ReduceOp.Max or ReduceOp.Min;
                    foreach (bool withNaN in new[] { false, true })
                    {
                        float[] x;
                        if (extreme)
                        {
                            // Few distinct values: many ties, so "first extreme index" is really tested.
                            x = new float[n];
                            for (long i = 0; i < n; i++) x[i] = ctx.Rng.Next(-8, 9) * 0.25f;
                        }
                        else x = ctx.Rand(n, -0.5f, 1.5f); // mean 0.5: no catastrophic cancellation in long sums
                        if (withNaN)
                        {
                            // NaN in about a third of the outputs' columns, at one or two random positions.
                            for (long q = 0; q < m; q += 3)
                            {
                                long o = q / inner, i = q % inner;
                                for (int t = 0; t < 1 + (int)(q % 2); t++)
                                    x[(o * dim + ctx.Rng.Next(dim)) * inner + i] = float.NaN;
                            }
                        }
                        var expected = new float[m];
                        var expectedArg = new int[m];
                        fixed (float* hx = x, hy = expected) fixed (int* ha = expectedArg)
                            ctx.Ref.Reduce(op, hx, hy, outer, dim, inner, extreme ? ha : null);
                        string tag = withNaN ? "with NaN" : "finite";
                        float* dx = ctx.Up(x);
                        float* y = ctx.Garbage<float>(m);
                        ctx.K.Reduce(op, dx, y, outer, dim, inner, null);
                        if (extreme) EwSameBits(ctx, ctx.Down(y, m), expected, $"{tag}, no argIndex");
                        // fp32 tree sums against the double reference; inputs with mean 0.5 keep this ≤ 1e-6 or so.
                        else ctx.Close(ctx.Down(y, m), expected, 1e-5, tag);
                        if (extreme)
                        {
                            float* y2 = ctx.Garbage<float>(m);
                            int* arg = ctx.Garbage<int>(m);
                            ctx.K.Reduce(op, dx, y2, outer, dim, inner, arg);
                            EwSameBits(ctx, ctx.Down(y2, m), expected, $"{tag}, values");
                            ctx.Exact<int>(ctx.Down(arg, m), expectedArg, $"{tag}, argIndex");
                        }
                    }
                }));
        list.Add(new KernelCheck("reduce/empty-dim", ctx =>
        {
            float* y = ctx.Garbage<float>(6);
            ctx.K.Reduce(ReduceOp.Sum, ctx.Up(new float[1]), y, 2, 0, 3, null);
            ctx.Exact<float>(ctx.Down(y, 6), new float[6], "sum over an empty axis is 0");
            ctx.K.Reduce(ReduceOp.Mean, ctx.Up(new float[1]), y, 2, 0, 3, null);
            ctx.Require(ctx.Down(y, 6).All(float.IsNaN), "mean over an empty axis is NaN");
        }));
        foreach (int n in new[] { 1, 7, 31, 257, 1031, 70001 })
            list.Add(new KernelCheck($"reduce/sum-of-squares/{n}", ctx =>
            {
                var x = ctx.Rand(n + 1, -3f, 3f);
                foreach (int o in new[] { 0, 1 })
                {
                    double expected;
                    fixed (float* hx = x) expected = ctx.Ref.SumOfSquares(hx + o, n);
                    double actual = ctx.K.SumOfSquares(ctx.Up(x) + o, n);
                    // CUDA: exact squares summed in double in another order, so agreement to ~n·2^-53. The CPU
                    // backend sums 4096-element runs in float (TensorPrimitives) before its double total, so it
                    // only meets an fp32-level bound.
                    double tol = ctx.K is CudaKernels ? 1e-12 : 1e-6;
                    double err = Math.Abs(actual - expected) / expected;
                    ctx.Require(err <= tol, $"offset {o}: {actual} vs {expected} (relative error {err:E2} > {tol:E0})");
                }
            }));
    }

    // ---------------------------------------------------------------- optimizers

    /// <summary>Relative error of the parameter updates (p_new − p_old), which a comparison of p itself would hide.</summary>
    private static void EwCloseUpdate(KernelCheckContext ctx, float[] before, ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double tol, string what)
    {
        var da = new float[before.Length];
        var de = new float[before.Length];
        for (int i = 0; i < before.Length; i++)
        {
            da[i] = (float)((double)actual[i] - before[i]);
            de[i] = (float)((double)expected[i] - before[i]);
        }
        ctx.Close(da, de, tol, what);
    }

    private static void AddEwOptimizers(List<KernelCheck> list)
    {
        // lr is large enough that the update is far above the rounding of p (so the update check is meaningful).
        const float lr = 0.05f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.1f;
        float bias1 = 1 - MathF.Pow(b1, 3), bias2 = 1 - MathF.Pow(b2, 3);
        foreach (int n in new[] { 1, 7, 31, 257, 1031, 70001 })
            list.Add(new KernelCheck($"optim/adamw/{n}", ctx =>
            {
                foreach (int o in new[] { 0, 1 })
                {
                    int len = n + o;
                    var p = ctx.Rand(len);
                    var g = ctx.Rand(len);
                    var m = ctx.Rand(len, -0.1f, 0.1f);
                    var v = ctx.Rand(len, 0f, 0.01f);
                    float[] ep = (float[])p.Clone(), em = (float[])m.Clone(), ev = (float[])v.Clone();
                    fixed (float* hp = ep, hg = g, hm = em, hv = ev)
                        ctx.Ref.AdamWStep(hp + o, hg + o, hm + o, hv + o, n, lr, b1, b2, eps, wd, bias1, bias2);
                    float* dp = ctx.Up(p), dm = ctx.Up(m), dv = ctx.Up(v);
                    ctx.K.AdamWStep(dp + o, ctx.Up(g) + o, dm + o, dv + o, n, lr, b1, b2, eps, wd, bias1, bias2);
                    string tag = o == 0 ? "" : " (unaligned)";
                    EwCloseUpdate(ctx, p, ctx.Down(dp, len), ep, 1e-5, "p update" + tag);
                    ctx.Close(ctx.Down(dm, len), em, 1e-6, "m" + tag);
                    ctx.Close(ctx.Down(dv, len), ev, 1e-6, "v" + tag);
                }
            }));
        // Sizes around the 16384-element CUDA chunk and the 32768-element CPU chunk, an empty tensor, one tensor on
        // unaligned pointers; then 700 small tensors, so that every CPU chunk spans many tensors (a MoE model's experts).
        foreach (var (name, unaligned) in new[] { ("9-tensors", 7), ("700-small", 250) })
            list.Add(new KernelCheck($"optim/adamw-multi/{name}", ctx =>
            {
                long[] sizes = [1, 7, 16384, 16385, 0, 31, 40000, 257, 1031];
                if (name == "700-small")
                {
                    sizes = new long[700];
                    for (int t = 0; t < sizes.Length; t++) sizes[t] = t % 97 == 3 ? 0 : 1 + ctx.Rng.Next(400);
                }
                int count = sizes.Length;
                var ps = new float[count][];
                var gs = new float[count][];
                var ms = new float[count][];
                var vs = new float[count][];
                var dp = new nint[count];
                var dg = new nint[count];
                var dm = new nint[count];
                var dv = new nint[count];
                for (int t = 0; t < count; t++)
                {
                    int o = t == unaligned ? 1 : 0;
                    long len = sizes[t] + o;
                    ps[t] = ctx.Rand(len);
                    gs[t] = ctx.Rand(len);
                    ms[t] = ctx.Rand(len, -0.1f, 0.1f);
                    vs[t] = ctx.Rand(len, 0f, 0.01f);
                    dp[t] = (nint)(ctx.Up(ps[t]) + o);
                    dg[t] = (nint)(ctx.Up(gs[t]) + o);
                    dm[t] = (nint)(ctx.Up(ms[t]) + o);
                    dv[t] = (nint)(ctx.Up(vs[t]) + o);
                }
                fixed (nint* pp = dp, pg = dg, pm = dm, pv = dv) fixed (long* pn = sizes)
                {
                    if (ctx.K is IMultiTensorAdamW multi)
                        multi.AdamWStepMulti(count, (float**)pp, (float**)pg, (float**)pm, (float**)pv, pn, lr, b1, b2, eps, wd, bias1, bias2);
                    else
                    {
                        // The optional op's fallback: one AdamWStep per tensor (what AdamW does on such a backend).
                        ctx.UsedFallback(Fallback.OptionalOp.MultiTensorAdamW);
                        for (int t = 0; t < count; t++)
                            ctx.K.AdamWStep((float*)dp[t], (float*)dg[t], (float*)dm[t], (float*)dv[t], sizes[t], lr, b1, b2, eps, wd, bias1, bias2);
                    }
                }
                for (int t = 0; t < count; t++)
                {
                    int o = t == unaligned ? 1 : 0;
                    long n = sizes[t];
                    float[] ep = (float[])ps[t].Clone(), em = (float[])ms[t].Clone(), ev = (float[])vs[t].Clone();
                    fixed (float* hp = ep, hg = gs[t], hm = em, hv = ev)
                        ctx.Ref.AdamWStep(hp + o, hg + o, hm + o, hv + o, n, lr, b1, b2, eps, wd, bias1, bias2);
                    long len = n + o;
                    // The whole buffers: the element before an unaligned tensor must stay untouched.
                    EwCloseUpdate(ctx, ps[t], ctx.Down((float*)dp[t] - o, len), ep, 1e-5, $"tensor {t} (n={n}) p update");
                    ctx.Close(ctx.Down((float*)dm[t] - o, len), em, 1e-6, $"tensor {t} m");
                    ctx.Close(ctx.Down((float*)dv[t] - o, len), ev, 1e-6, $"tensor {t} v");
                }
            }));
        var sgd = new (string Name, float Momentum, float Dampening, float Wd, bool Nesterov, bool First)[]
        {
            ("plain", 0f, 0f, 0f, false, false),
            ("wd", 0f, 0f, 0.01f, false, true),
            ("momentum-first", 0.9f, 0.1f, 0.01f, false, true),
            ("momentum", 0.9f, 0.1f, 0.01f, false, false),
            ("nesterov", 0.9f, 0f, 0.01f, true, false),
        };
        foreach (var s in sgd)
            foreach (int n in new[] { 7, 1031, 70001 })
                list.Add(new KernelCheck($"optim/sgd/{s.Name}/{n}", ctx =>
                {
                    foreach (int o in new[] { 0, 1 })
                    {
                        int len = n + o;
                        var p = ctx.Rand(len);
                        var g = ctx.Rand(len);
                        var buf = ctx.Rand(len);
                        if (s.First) for (int i = 0; i < len; i += 5) buf[i] = float.NaN; // never read on the first step
                        float[] ep = (float[])p.Clone(), eb = (float[])buf.Clone();
                        fixed (float* hp = ep, hg = g, hb = eb)
                            ctx.Ref.SgdStep(hp + o, hg + o, hb + o, n, 0.1f, s.Momentum, s.Dampening, s.Wd, s.Nesterov, s.First);
                        float* dp = ctx.Up(p), db = ctx.Up(buf);
                        ctx.K.SgdStep(dp + o, ctx.Up(g) + o, db + o, n, 0.1f, s.Momentum, s.Dampening, s.Wd, s.Nesterov, s.First);
                        string tag = o == 0 ? "" : " (unaligned)";
                        EwCloseUpdate(ctx, p, ctx.Down(dp, len), ep, 1e-5, "p update" + tag);
                        if (s.Momentum == 0) EwSameBits(ctx, ctx.Down(db, len), eb, "momentum buffer untouched" + tag);
                        else
                        {
                            var actualBuf = ctx.Down(db, len);
                            ctx.Close(actualBuf.AsSpan(o), eb.AsSpan(o), 1e-6, "momentum buffer" + tag);
                            if (o == 1) EwSameBits(ctx, actualBuf.AsSpan(0, 1), eb.AsSpan(0, 1), "element before the buffer");
                        }
                    }
                }));
    }
}
