namespace NativeReasoner;

/// <summary>
/// A seeded random source (xoshiro256**), so runs are reproducible. Not thread-safe: one per stream.
/// </summary>
public sealed class Generator
{
    private ulong _s0, _s1, _s2, _s3;
    private float? _spareNormal;

    public Generator(ulong seed)
    {
        // SplitMix64 expands the seed into four well-mixed words (xoshiro must not start all-zero).
        ulong x = seed;
        _s0 = SplitMix(ref x);
        _s1 = SplitMix(ref x);
        _s2 = SplitMix(ref x);
        _s3 = SplitMix(ref x);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n).</summary>
    public int NextInt(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        return (int)((NextUInt64() >> 33) % (ulong)n);
    }

    /// <summary>Standard normal (Box–Muller, pairs cached).</summary>
    public float NextNormal()
    {
        if (_spareNormal is float spare)
        {
            _spareNormal = null;
            return spare;
        }
        double u1, u2;
        do u1 = NextDouble(); while (u1 <= double.Epsilon);
        u2 = NextDouble();
        double r = Math.Sqrt(-2.0 * Math.Log(u1));
        _spareNormal = (float)(r * Math.Sin(2 * Math.PI * u2));
        return (float)(r * Math.Cos(2 * Math.PI * u2));
    }

    /// <summary>
    /// The whole state as words (the four xoshiro words, then whether a cached normal is pending and its bits), so a
    /// checkpoint can continue this exact stream with <see cref="FromState"/>.
    /// </summary>
    public ulong[] GetState() =>
        [_s0, _s1, _s2, _s3, _spareNormal.HasValue ? 1UL : 0UL,
         _spareNormal is float f ? BitConverter.SingleToUInt32Bits(f) : 0UL];

    /// <summary>The generator that continues the stream of the one that gave <paramref name="state"/>.</summary>
    public static Generator FromState(IReadOnlyList<ulong> state)
    {
        if (state.Count != 6) throw new ArgumentException($"generator state must have 6 words, got {state.Count}");
        if ((state[0] | state[1] | state[2] | state[3]) == 0)
            throw new ArgumentException("generator state must not be all zero (xoshiro would only draw zeros)");
        if (state[4] > 1)
            throw new ArgumentException($"generator state word 4 (pending normal) must be 0 or 1, got {state[4]}");
        var g = new Generator(0) { _s0 = state[0], _s1 = state[1], _s2 = state[2], _s3 = state[3] };
        if (state[4] == 1) g._spareNormal = BitConverter.UInt32BitsToSingle((uint)state[5]);
        return g;
    }

    public void FillUniform(Span<float> values, float low, float high)
    {
        for (int i = 0; i < values.Length; i++) values[i] = (float)(low + (high - low) * NextDouble());
    }

    public void FillNormal(Span<float> values, float mean, float std)
    {
        for (int i = 0; i < values.Length; i++) values[i] = mean + std * NextNormal();
    }
}
