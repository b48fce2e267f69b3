using ILGPU;

namespace NativeReasoner.Kernels.Ilgpu;

/// <summary>
/// Shape and strides of a rank ≤ 8 layout, padded on the left with size-1 axes (stride 0) so that every
/// kernel unravels exactly 8 axes with straight-line code. Passed by value as a kernel argument.
/// </summary>
internal struct Layout8
{
    public long D0, D1, D2, D3, D4, D5, D6, D7;

    public static Layout8 FromShape(ReadOnlySpan<int> shape)
    {
        Span<long> d = stackalloc long[8];
        d.Fill(1);
        for (int a = 0; a < shape.Length; a++) d[8 - shape.Length + a] = shape[a];
        return new Layout8 { D0 = d[0], D1 = d[1], D2 = d[2], D3 = d[3], D4 = d[4], D5 = d[5], D6 = d[6], D7 = d[7] };
    }
}

/// <summary>Element strides matching a <see cref="Layout8"/> (left-padded with 0).</summary>
internal struct Strides8
{
    public long S0, S1, S2, S3, S4, S5, S6, S7;

    public static Strides8 From(ReadOnlySpan<long> strides)
    {
        Span<long> s = stackalloc long[8];
        for (int a = 0; a < strides.Length; a++) s[8 - strides.Length + a] = strides[a];
        return new Strides8 { S0 = s[0], S1 = s[1], S2 = s[2], S3 = s[3], S4 = s[4], S5 = s[5], S6 = s[6], S7 = s[7] };
    }
}

/// <summary>Helpers inlined into the kernels.</summary>
internal static class DeviceMath
{
    /// <summary>Slots in the shared scratch of a group reduction: one per warp.</summary>
    public const int MaxWarps = 64;

    /// <summary>Element offset of row-major flat index <paramref name="flat"/> of <paramref name="d"/> under strides <paramref name="s"/>.</summary>
    public static long Offset(long flat, in Layout8 d, in Strides8 s)
    {
        long off = 0, q;
        q = flat / d.D7; off += (flat - q * d.D7) * s.S7; flat = q;
        q = flat / d.D6; off += (flat - q * d.D6) * s.S6; flat = q;
        q = flat / d.D5; off += (flat - q * d.D5) * s.S5; flat = q;
        q = flat / d.D4; off += (flat - q * d.D4) * s.S4; flat = q;
        q = flat / d.D3; off += (flat - q * d.D3) * s.S3; flat = q;
        q = flat / d.D2; off += (flat - q * d.D2) * s.S2; flat = q;
        q = flat / d.D1; off += (flat - q * d.D1) * s.S1; flat = q;
        off += flat * s.S0; // flat < D0 here
        return off;
    }

    /// <summary>
    /// Sum of <paramref name="v"/> over the group, returned to every thread. Warp shuffles reduce each warp,
    /// one value per warp goes through shared memory. Must be reached by every thread of the group.
    /// </summary>
    public static float GroupSum(float v, ArrayView<float> scratch)
    {
        for (int off = Warp.WarpSize / 2; off > 0; off >>= 1) v += Warp.ShuffleDown(v, off);
        if (Warp.IsFirstLane) scratch[Warp.WarpIdx] = v;
        Group.Barrier();
        int warps = (Group.DimX + Warp.WarpSize - 1) / Warp.WarpSize;
        float s = 0;
        for (int w = 0; w < warps; w++) s += scratch[w];
        // The scratch is reused by the next reduction: nobody may overwrite it before all have read it.
        Group.Barrier();
        return s;
    }

    /// <summary>Double-precision <see cref="GroupSum"/> (for sums whose terms cancel).</summary>
    public static double GroupSumD(double v, ArrayView<double> scratch)
    {
        for (int off = Warp.WarpSize / 2; off > 0; off >>= 1) v += Warp.ShuffleDown(v, off);
        if (Warp.IsFirstLane) scratch[Warp.WarpIdx] = v;
        Group.Barrier();
        int warps = (Group.DimX + Warp.WarpSize - 1) / Warp.WarpSize;
        double s = 0;
        for (int w = 0; w < warps; w++) s += scratch[w];
        Group.Barrier();
        return s;
    }

    /// <summary>Maximum over the group (NaN propagates), returned to every thread.</summary>
    public static float GroupMax(float v, ArrayView<float> scratch)
    {
        for (int off = Warp.WarpSize / 2; off > 0; off >>= 1) v = MaxNaN(v, Warp.ShuffleDown(v, off));
        if (Warp.IsFirstLane) scratch[Warp.WarpIdx] = v;
        Group.Barrier();
        int warps = (Group.DimX + Warp.WarpSize - 1) / Warp.WarpSize;
        float m = float.NegativeInfinity;
        for (int w = 0; w < warps; w++) m = MaxNaN(m, scratch[w]);
        Group.Barrier();
        return m;
    }

    /// <summary>max with NaN propagation (a NaN on either side gives NaN).</summary>
    public static float MaxNaN(float a, float b) => float.IsNaN(a) || float.IsNaN(b) ? float.NaN : (a > b ? a : b);

    /// <summary>
    /// True when (a at index ia) ranks before (b at index ib) in "largest first" order: NaN before every
    /// number, larger before smaller, equal values by lower index. The order of Max/argmax and top-k.
    /// </summary>
    public static bool RanksBefore(float a, int ia, float b, int ib)
    {
        bool na = float.IsNaN(a), nb = float.IsNaN(b);
        if (na != nb) return na;
        if (!na && a != b) return a > b;
        return ia < ib;
    }

    /// <summary>
    /// The (value, index) pair that ranks first over the group (see <see cref="RanksBefore"/>), to every
    /// thread. An empty slot is (−∞, int.MaxValue), which every real element ranks before.
    /// </summary>
    public static void GroupArgBest(ref float v, ref int i, ArrayView<float> sv, ArrayView<int> si)
    {
        for (int off = Warp.WarpSize / 2; off > 0; off >>= 1)
        {
            float ov = Warp.ShuffleDown(v, off);
            int oi = Warp.ShuffleDown(i, off);
            if (RanksBefore(ov, oi, v, i)) { v = ov; i = oi; }
        }
        if (Warp.IsFirstLane) { sv[Warp.WarpIdx] = v; si[Warp.WarpIdx] = i; }
        Group.Barrier();
        int warps = (Group.DimX + Warp.WarpSize - 1) / Warp.WarpSize;
        v = sv[0];
        i = si[0];
        for (int w = 1; w < warps; w++)
            if (RanksBefore(sv[w], si[w], v, i)) { v = sv[w]; i = si[w]; }
        Group.Barrier();
    }
}
