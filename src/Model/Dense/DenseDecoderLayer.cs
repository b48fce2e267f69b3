// Source: HF transformers models/qwen2/modeling_qwen2.py Qwen2DecoderLayer (same shape in llama, qwen3, qwen3_moe).
using NativeReasoner.Nn;

namespace NativeReasoner.Model.Dense;

/// <summary>
/// One pre-norm block: h += self_attn(input_layernorm h); h += mlp(post_attention_layernorm h), where mlp is a
/// SwiGLU, or in Qwen3-MoE's sparse layers the <see cref="SparseMoeBlock"/>.
/// </summary>
public sealed class DenseDecoderLayer : Module
{
    public int Index { get; }
    public GroupedQueryAttention SelfAttn { get; }
    public SwiGluMlp? Mlp { get; }
    public SparseMoeBlock? Moe { get; }
    public RmsNormLayer InputLayerNorm { get; }
    public RmsNormLayer PostAttentionLayerNorm { get; }

    public DenseDecoderLayer(DenseConfig c, int index, Generator gen, Device? device = null)
    {
        Index = index;
        float eps = (float)c.RmsNormEps;
        SelfAttn = RegisterModule("self_attn", new GroupedQueryAttention(c, gen, device));
        if (c.IsMoeLayer(index)) Moe = RegisterModule("mlp", new SparseMoeBlock(c, gen, device));
        else Mlp = RegisterModule("mlp", new SwiGluMlp(c.HiddenSize, c.IntermediateSize, gen, device));
        InputLayerNorm = RegisterModule("input_layernorm", new RmsNormLayer(c.HiddenSize, eps, device));
        PostAttentionLayerNorm = RegisterModule("post_attention_layernorm",
            new RmsNormLayer(c.HiddenSize, eps, device));
    }

    private Tensor MlpForward(Tensor x) => Moe != null ? Moe.Forward(x) : Mlp!.Forward(x);

    /// <summary>Full causal pass from position 0 (training, prefill). h: [B, T, D] → [B, T, D].</summary>
    public Tensor Forward(Tensor h, Tensor cos, Tensor sin, GqaKvCache? cache)
    {
        h = h + SelfAttn.Forward(InputLayerNorm.Forward(h), cos, sin, cache, Index);
        return h + MlpForward(PostAttentionLayerNorm.Forward(h));
    }

    /// <summary>Cached pass (decode). h: [B, S, D] → [B, S, D].</summary>
    public Tensor ForwardCached(Tensor h, Tensor cos, Tensor sin, GqaKvCache cache, ReadOnlySpan<int> starts) =>
        ForwardCached(h, cos, sin, cache, starts, CacheRows.Identity(h.Shape[0]));

    /// <summary>Cached pass with input sequence b in cache row rows[b]. h: [B, S, D] → [B, S, D].</summary>
    public Tensor ForwardCached(Tensor h, Tensor cos, Tensor sin, GqaKvCache cache, ReadOnlySpan<int> starts,
        ReadOnlySpan<int> rows)
    {
        h = h + SelfAttn.ForwardCached(InputLayerNorm.Forward(h), cos, sin, cache, Index, starts, rows);
        return h + MlpForward(PostAttentionLayerNorm.Forward(h));
    }
}
