// Source: HF transformers models/deepseek_v3/modeling_deepseek_v3.py DeepseekV3DecoderLayer; official DeepSeek-V3
//         inference/model.py Block.
using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>
/// One pre-norm block: h += self_attn(input_layernorm h); h += mlp(post_attention_layernorm h), where mlp
/// is a dense SwiGLU for the first first_k_dense_replace layers and a <see cref="MoeLayer"/> after.
/// </summary>
public sealed class DeepseekV3DecoderLayer : Module
{
    public int Index { get; }
    public MultiHeadLatentAttention SelfAttn { get; }
    public SwiGluMlp? DenseMlp { get; }
    public MoeLayer? Moe { get; }
    public RmsNormLayer InputLayerNorm { get; }
    public RmsNormLayer PostAttentionLayerNorm { get; }

    public DeepseekV3DecoderLayer(DeepseekV3Config c, int index, Generator gen, Device? device = null)
    {
        Index = index;
        float eps = (float)c.RmsNormEps;
        SelfAttn = RegisterModule("self_attn", new MultiHeadLatentAttention(c, gen, device));
        if (c.IsMoeLayer(index)) Moe = RegisterModule("mlp", new MoeLayer(c, gen, device));
        else DenseMlp = RegisterModule("mlp", new SwiGluMlp(c.HiddenSize, c.IntermediateSize, gen, device));
        InputLayerNorm = RegisterModule("input_layernorm", new RmsNormLayer(c.HiddenSize, eps, device));
        PostAttentionLayerNorm = RegisterModule("post_attention_layernorm", new RmsNormLayer(c.HiddenSize, eps, device));
    }

    private Tensor Mlp(Tensor x) => Moe != null ? Moe.Forward(x) : DenseMlp!.Forward(x);

    /// <summary>Full causal pass from position 0 (training, prefill). h: [B, T, D] → [B, T, D].</summary>
    public Tensor Forward(Tensor h, Tensor cos, Tensor sin, MlaCache? cache)
    {
        h = h + SelfAttn.Forward(InputLayerNorm.Forward(h), cos, sin, cache, Index);
        return h + Mlp(PostAttentionLayerNorm.Forward(h));
    }

    /// <summary>Cached pass through the absorbed attention (decode). h: [B, S, D] → [B, S, D].</summary>
    public Tensor ForwardCached(Tensor h, Tensor cos, Tensor sin, MlaCache cache, ReadOnlySpan<int> starts) =>
        ForwardCached(h, cos, sin, cache, starts, CacheRows.Identity(h.Shape[0]));

    /// <summary>Cached pass with input sequence b in cache row rows[b]. h: [B, S, D] → [B, S, D].</summary>
    public Tensor ForwardCached(Tensor h, Tensor cos, Tensor sin, MlaCache cache, ReadOnlySpan<int> starts,
        ReadOnlySpan<int> rows)
    {
        h = h + SelfAttn.ForwardAbsorbed(InputLayerNorm.Forward(h), cos, sin, cache, Index, starts, rows);
        return h + Mlp(PostAttentionLayerNorm.Forward(h));
    }
}
