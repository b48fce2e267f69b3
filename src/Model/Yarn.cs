namespace NativeReasoner.Model;

/// <summary>
/// RoPE frequencies with DeepSeek's YaRN context extension, as computed by the official
/// <c>precompute_freqs_cis</c> (and by HF's <c>_compute_yarn_parameters</c>, which agrees when
/// factor = max_position_embeddings / original_max_position_embeddings):
/// θ_j = base^(−2j/d); dims j below the "fast" correction point keep θ_j, dims above the "slow" one use
/// θ_j / factor, and a linear ramp blends the dims in between.
/// Differences from other YaRN implementations that this follows on purpose (docs/deepseek-v3-notes.md, notes 7–8 and "YaRN frequencies"):
/// the correction range uses original_max_position_embeddings (not max_position_embeddings); the factor
/// is rope_scaling.factor (the official ModelArgs.rope_factor; recent HF recomputes it from the two
/// lengths); cos/sin are NOT scaled by an attention factor (the official code has none — the mscale goes
/// into the softmax scale instead, squared, from mscale_all_dim).
/// </summary>
public static class Yarn
{
    /// <summary>mscale(s, m) = 0.1·m·ln(s) + 1 for s > 1, else 1.</summary>
    public static double Mscale(double factor, double mscale) =>
        factor <= 1 ? 1.0 : 0.1 * mscale * Math.Log(factor) + 1.0;

    /// <summary>qk_head_dim^-0.5 · mscale(factor, mscale_all_dim)² (the same for the naive and absorbed paths).</summary>
    public static double SoftmaxScale(DeepseekV3Config c)
    {
        double scale = 1.0 / Math.Sqrt(c.QkHeadDim);
        if (c.RopeScaling is { } rs && rs.MscaleAllDim != 0)
        {
            double m = Mscale(rs.Factor, rs.MscaleAllDim);
            scale *= m * m;
        }
        return scale;
    }

    /// <summary>The d/2 rotation frequencies θ'_j (radians per position), float32 like the official code.</summary>
    public static float[] InverseFrequencies(DeepseekV3Config c)
    {
        int d = c.QkRopeHeadDim;
        int half = d / 2;
        double theta = c.RopeTheta;
        var freqs = new float[half];
        // Official: 1 / (base ** (arange(0, d, 2, float32) / d)) in float32.
        for (int j = 0; j < half; j++)
        {
            float exponent = (float)(2 * j) / d;
            float p = (float)Math.Pow((float)theta, exponent);
            freqs[j] = 1f / p;
        }
        if (c.RopeScaling is not { } rs) return freqs;

        // Number of the dim at which a wavelength makes `rotations` full turns over the original length.
        double CorrectionDim(double rotations) =>
            d * Math.Log(rs.OriginalMaxPositionEmbeddings / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
        double low = Math.Max(Math.Floor(CorrectionDim(rs.BetaFast)), 0);
        double high = Math.Min(Math.Ceiling(CorrectionDim(rs.BetaSlow)), d - 1);
        if (low == high) high += 0.001; // avoid a division by zero, as the reference does
        float factor = (float)rs.Factor;
        for (int j = 0; j < half; j++)
        {
            float ramp = (float)Math.Clamp((j - low) / (high - low), 0.0, 1.0);
            float smooth = 1f - ramp;
            freqs[j] = freqs[j] / factor * (1f - smooth) + freqs[j] * smooth;
        }
        return freqs;
    }

    /// <summary>
    /// cos and sin of angle(p, j) = p·θ'_j for positions start..start+count−1, each [count, d/2] row-major
    /// (the layout Functional.Rope and the Rope kernel take). The angle is formed in float32 like
    /// torch.outer(arange, freqs); cos/sin are evaluated in double and rounded.
    /// </summary>
    public static (float[] Cos, float[] Sin) Tables(DeepseekV3Config c, int start, int count)
    {
        var freqs = InverseFrequencies(c);
        int half = freqs.Length;
        var cos = new float[count * half];
        var sin = new float[count * half];
        for (int t = 0; t < count; t++)
        {
            float pos = start + t;
            for (int j = 0; j < half; j++)
            {
                float angle = pos * freqs[j];
                cos[t * half + j] = (float)Math.Cos(angle);
                sin[t * half + j] = (float)Math.Sin(angle);
            }
        }
        return (cos, sin);
    }
}
