// Source: RoPE (arXiv:2104.09864) on interleaved pairs as official DeepSeek-V3 inference/model.py precompute_freqs_cis
//         / apply_rotary_emb.
namespace NativeReasoner.Model;

/// <summary>
/// cos/sin tables of the model's (YaRN) rotary frequencies for arbitrary positions, as [count, r/2]
/// tensors in the current scope (the layout Functional.Rope takes for its sequence axis).
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly float[] _freqs;

    private readonly Device? _device;

    public RotaryEmbedding(DeepseekV3Config c, Device? device = null)
    {
        _freqs = Yarn.InverseFrequencies(c);
        _device = device;
    }

    /// <summary>The d/2 frequencies θ'_j.</summary>
    public ReadOnlySpan<float> Frequencies => _freqs;

    /// <summary>Tables for positions start, start+1, …, start+count−1.</summary>
    public (Tensor Cos, Tensor Sin) Range(int start, int count)
    {
        var pos = new int[count];
        for (int i = 0; i < count; i++) pos[i] = start + i;
        return For(pos);
    }

    /// <summary>Row i of each table holds the angles of position positions[i].</summary>
    public (Tensor Cos, Tensor Sin) For(ReadOnlySpan<int> positions)
    {
        int half = _freqs.Length;
        var cos = new float[positions.Length * half];
        var sin = new float[positions.Length * half];
        for (int t = 0; t < positions.Length; t++)
        {
            float p = positions[t];
            for (int j = 0; j < half; j++)
            {
                // The angle is a float32 product, as torch.outer(arange, freqs) forms it.
                float angle = p * _freqs[j];
                cos[t * half + j] = (float)Math.Cos(angle);
                sin[t * half + j] = (float)Math.Sin(angle);
            }
        }
        return (Tensor.FromArray(cos, [positions.Length, half], _device), Tensor.FromArray(sin, [positions.Length, half], _device));
    }
}
