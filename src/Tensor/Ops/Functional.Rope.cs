namespace NativeReasoner;

public static unsafe partial class Functional
{
    /// <summary>
    /// Rotary position embedding on interleaved pairs (x[2i], x[2i+1]) of the last axis D (even).
    /// Axis <paramref name="seqDim"/> of x is the sequence axis T (any axis but the last, so both
    /// [B, T, H, D] and [B, H, T, D] work); cos and sin are [T, D/2] for the positions of that axis
    /// (see <see cref="RopeTables"/>) and are constants (no gradient flows into them).
    /// </summary>
    public static Tensor Rope(Tensor x, Tensor cos, Tensor sin, int seqDim)
    {
        const string op = "rope";
        RequireFloatOn(x, x, op, "x");
        RequireFloatOn(cos, x, op, "cos");
        RequireFloatOn(sin, x, op, "sin");
        if (x.Rank < 2)
            throw new ArgumentException($"{op}: x needs a sequence axis and a last axis, got shape {Tensor.FormatShape(x.Shape)}");
        int s = Tensor.NormalizeDim(seqDim, x.Rank, op);
        if (s == x.Rank - 1)
            throw new ArgumentException($"{op}: seqDim {seqDim} is the last axis of {Tensor.FormatShape(x.Shape)}, which holds the rotated pairs");
        int D = x.Shape[^1];
        if (D % 2 != 0)
            throw new ArgumentException($"{op}: the last axis of x {Tensor.FormatShape(x.Shape)} must be even (interleaved pairs), got {D}");
        int T = x.Shape[s];
        ReadOnlySpan<int> table = [T, D / 2];
        if (!cos.Shape.SequenceEqual(table) || !sin.Shape.SequenceEqual(table))
            throw new ArgumentException(
                $"{op}: cos and sin must be {Tensor.FormatShape(table)} for x {Tensor.FormatShape(x.Shape)} with seqDim {s}, got {Tensor.FormatShape(cos.Shape)} and {Tensor.FormatShape(sin.Shape)}");
        // x, y: [outer, T, mid, D]
        int outer = Product(x.Shape, 0, s);
        int mid = Product(x.Shape, s + 1, x.Rank - 1);
        var cc = cos.ContiguousNoGrad();
        var sc = sin.ContiguousNoGrad();
        var y = Tensor.Empty(x.Shape, Kernels.DType.Float32, x.Device);
        using (var xc = x.ContiguousNoGrad())
            if (y.Numel > 0) x.Device.Kernels.Rope(xc.Data, cc.Data, sc.Data, y.Data, outer, T, mid, D, inverse: false);
        if (!Tensor.NeedsGrad(x))
        {
            cc.Dispose();
            sc.Dispose();
            return y;
        }
        var result = Tensor.Record(y, op, [x], g =>
        {
            // A rotation's transpose is the rotation by the negated angle.
            using var gc = g.ContiguousNoGrad();
            var dx = Tensor.Empty(gc.Shape, Kernels.DType.Float32, g.Device);
            if (dx.Numel > 0) g.Device.Kernels.Rope(gc.Data, cc.Data, sc.Data, dx.Data, outer, T, mid, D, inverse: true);
            return [dx];
        }, cc, sc);
        // Freed when the node that saved them is released.
        cc.Dispose();
        sc.Dispose();
        return result;
    }

    /// <summary>
    /// Plain rotary tables for <paramref name="positions"/> consecutive positions starting at
    /// <paramref name="startPosition"/>: inv_freq_i = theta^(−2i/dim), angle = pos · inv_freq_i,
    /// Cos, Sin: [positions, dim/2]. Computed in double and rounded once, so long positions stay exact.
    /// </summary>
    public static (Tensor Cos, Tensor Sin) RopeTables(int positions, int dim, float theta = 10000f, int startPosition = 0)
    {
        const string op = "rope_tables";
        if (positions < 0) throw new ArgumentOutOfRangeException(nameof(positions), $"{op}: positions must be ≥ 0, got {positions}");
        if (dim <= 0 || dim % 2 != 0) throw new ArgumentOutOfRangeException(nameof(dim), $"{op}: dim must be positive and even, got {dim}");
        if (!(theta > 0f) || float.IsInfinity(theta)) throw new ArgumentOutOfRangeException(nameof(theta), $"{op}: theta must be positive and finite, got {theta}");
        if (startPosition < 0) throw new ArgumentOutOfRangeException(nameof(startPosition), $"{op}: startPosition must be ≥ 0, got {startPosition}");
        int half = dim / 2;
        var invFreq = new double[half];
        for (int i = 0; i < half; i++) invFreq[i] = Math.Pow(theta, -2.0 * i / dim);
        var cosData = new float[(long)positions * half];
        var sinData = new float[cosData.Length];
        for (int p = 0; p < positions; p++)
        {
            double pos = (double)startPosition + p;
            for (int i = 0; i < half; i++)
            {
                double angle = pos * invFreq[i];
                cosData[(long)p * half + i] = (float)Math.Cos(angle);
                sinData[(long)p * half + i] = (float)Math.Sin(angle);
            }
        }
        return (Tensor.FromArray(cosData, positions, half), Tensor.FromArray(sinData, positions, half));
    }
}
