namespace NativeReasoner.Model.Dense;

/// <summary>
/// Rotary frequencies and tables of the dense families, following HF's modeling_rope_utils
/// (<c>_compute_default_rope_parameters</c>, <c>_compute_linear_scaling_rope_parameters</c>,
/// <c>_compute_llama3_parameters</c>, <c>_compute_yarn_parameters</c>) and the rotate-half application of
/// modeling_llama's <c>apply_rotary_pos_emb</c>. Unlike DeepSeek's interleaved pairs, dim i pairs with dim i + D/2.
/// Rotate-half on x equals the interleaved rotation on x with its halves interleaved ([x₀, x_{D/2}, x₁, …]) and the
/// same D/2 frequencies, so <see cref="Apply"/> permutes into that order and uses the shared Rope kernel.
/// Attention only needs q·k, which is unchanged when q and k are permuted alike, so the rotated vectors are
/// left in the interleaved order (and the GQA cache stores keys in it); values are never permuted.
/// </summary>
public sealed class RotateHalfRope
{
    private readonly float[] _invFreq;
    private readonly float _attentionFactor;
    private readonly Device? _device;

    public RotateHalfRope(RopeParameters rope, int headDim, Device? device = null)
    {
        (_invFreq, _attentionFactor) = InverseFrequencies(rope, headDim);
        _device = device;
    }

    /// <summary>The D/2 frequencies θ'_j (radians per position).</summary>
    public ReadOnlySpan<float> Frequencies => _invFreq;

    /// <summary>The factor cos and sin are multiplied by (yarn's attention factor; 1 otherwise).</summary>
    public float AttentionFactor => _attentionFactor;

    /// <summary>HF's inverse frequencies (float32 like torch) and attention factor for a head dim.</summary>
    public static (float[] InvFreq, float AttentionFactor) InverseFrequencies(RopeParameters rope, int dim)
    {
        int half = dim / 2;
        var baseFreq = new float[half];
        // 1 / (base ** (arange(0, dim, 2).float() / dim)), every step in float32 as torch does it.
        for (int j = 0; j < half; j++)
        {
            float exponent = (float)(2 * j) / dim;
            baseFreq[j] = 1f / (float)Math.Pow((float)rope.Theta, exponent);
        }
        switch (rope.Type)
        {
            case "default":
                return (baseFreq, 1f);
            case "linear":
                for (int j = 0; j < half; j++) baseFreq[j] /= (float)rope.Factor;
                return (baseFreq, 1f);
            case "llama3":
                return (Llama3(rope, baseFreq), 1f);
            case "yarn":
                return Yarn(rope, dim);
            default:
                throw new ModelConfigException($"config: rope type '{rope.Type}' is not supported");
        }
    }

    /// <summary>Llama 3.1: keep high frequencies, divide low ones by factor, blend the band between.</summary>
    private static float[] Llama3(RopeParameters r, float[] invFreq)
    {
        float factor = (float)r.Factor, low = (float)r.LowFreqFactor, high = (float)r.HighFreqFactor;
        float oldContext = r.OriginalMaxPositionEmbeddings;
        float lowFreqWavelen = oldContext / low, highFreqWavelen = oldContext / high;
        var result = new float[invFreq.Length];
        for (int j = 0; j < invFreq.Length; j++)
        {
            float f = invFreq[j];
            float wavelen = 2f * MathF.PI / f;
            float scaled = wavelen > lowFreqWavelen ? f / factor : f;
            if (!(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen))
            {
                float smooth = (oldContext / wavelen - low) / (high - low);
                scaled = (1 - smooth) * scaled / factor + smooth * scaled;
            }
            result[j] = scaled;
        }
        return result;
    }

    /// <summary>mscale(s, m) = 0.1·m·ln(s) + 1 for s > 1, else 1.</summary>
    private static double GetMscale(double scale, double m = 1) => scale <= 1 ? 1.0 : 0.1 * m * Math.Log(scale) + 1.0;

    /// <summary>
    /// YaRN as HF computes it for Qwen: interpolated (θ/factor) and extrapolated (θ) frequencies blended by a
    /// linear ramp over the correction range of the original length; cos/sin scaled by the attention factor.
    /// The factor is rope_scaling.factor as written (Qwen's configs give it with the original length; some
    /// transformers releases derive it from max_position_embeddings / original_max_position_embeddings instead,
    /// which agrees whenever max_position_embeddings was raised to the extended length).
    /// </summary>
    private static (float[], float) Yarn(RopeParameters r, int dim)
    {
        double factor = r.Factor;
        double attention = r.AttentionFactor
            ?? (r.Mscale is { } m && m != 0 && r.MscaleAllDim is { } ma && ma != 0
                ? GetMscale(factor, m) / GetMscale(factor, ma)
                : GetMscale(factor));
        double theta = r.Theta;
        double CorrectionDim(double rotations) =>
            dim * Math.Log(r.OriginalMaxPositionEmbeddings / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
        double low = CorrectionDim(r.BetaFast), high = CorrectionDim(r.BetaSlow);
        if (r.Truncate)
        {
            low = Math.Floor(low);
            high = Math.Ceiling(high);
        }
        low = Math.Max(low, 0);
        high = Math.Min(high, dim - 1);
        if (low == high) high += 0.001;   // HF's guard against a zero-width ramp
        int half = dim / 2;
        var result = new float[half];
        for (int j = 0; j < half; j++)
        {
            float posFreq = (float)Math.Pow((float)theta, (float)(2 * j) / dim);
            float extrapolation = 1f / posFreq;
            float interpolation = 1f / ((float)factor * posFreq);
            float ramp = (float)Math.Clamp((j - (float)low) / (float)(high - low), 0.0, 1.0);
            float extrapolationWeight = 1f - ramp;
            result[j] = interpolation * (1 - extrapolationWeight) + extrapolation * extrapolationWeight;
        }
        return (result, (float)attention);
    }

    /// <summary>cos/sin tables [count, D/2] (times the attention factor) for positions start … start+count−1.</summary>
    public (Tensor Cos, Tensor Sin) Range(int start, int count)
    {
        var pos = new int[count];
        for (int i = 0; i < count; i++) pos[i] = start + i;
        return For(pos);
    }

    /// <summary>Row i of each table holds the angles of position positions[i]: [positions.Length, D/2].</summary>
    public (Tensor Cos, Tensor Sin) For(ReadOnlySpan<int> positions)
    {
        int half = _invFreq.Length;
        var cos = new float[positions.Length * half];
        var sin = new float[positions.Length * half];
        for (int t = 0; t < positions.Length; t++)
        {
            float p = positions[t];
            for (int j = 0; j < half; j++)
            {
                // A float32 product as HF's inv_freq @ position_ids forms it; cos/sin rounded once, then scaled.
                float angle = p * _invFreq[j];
                cos[t * half + j] = (float)Math.Cos(angle) * _attentionFactor;
                sin[t * half + j] = (float)Math.Sin(angle) * _attentionFactor;
            }
        }
        int[] shape = [positions.Length, half];
        return (Tensor.FromArray(cos, shape, _device), Tensor.FromArray(sin, shape, _device));
    }

    /// <summary>
    /// Rotates x: [..., T, H, D] (seqDim = the T axis) with tables [T, D/2]; the result is in the interleaved
    /// order (see the class summary) — apply it to q and k alike.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin, int seqDim)
    {
        int d = x.Shape[^1];
        var shape = x.Shape.ToArray();
        var split = shape[..^1].Concat(new[] { 2, d / 2 }).ToArray();
        // [..., 2, D/2] → [..., D/2, 2]: element 2j is x_j, element 2j+1 is x_{j + D/2}.
        var interleaved = x.Reshape(split).Transpose(-1, -2).Reshape(shape);
        return Functional.Rope(interleaved, cos, sin, seqDim);
    }
}
