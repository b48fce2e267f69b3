using NativeReasoner.Nn;

namespace NativeReasoner.Model.Dense;

/// <summary>
/// Grouped-query attention (self_attn) of the dense families, after HF's LlamaAttention / Qwen2Attention /
/// Qwen3Attention (GQA: arXiv 2305.13245). Shapes: B batch, T tokens, Hq query heads, Hkv K/V heads, hd head_dim.
/// q = q_proj x [+ b] → [B, T, Hq, hd]; k, v likewise with Hkv heads; Qwen3 normalises q and k per head (q_norm,
/// k_norm) before the rotate-half RoPE; softmax scale hd^-0.5; o_proj over the merged heads.
/// </summary>
public sealed class GroupedQueryAttention : Module
{
    private readonly int _hq, _hkv, _hd;
    private readonly float _scale;

    public Linear QProj { get; }
    public Linear KProj { get; }
    public Linear VProj { get; }
    public Linear OProj { get; }
    public RmsNormLayer? QNorm { get; }
    public RmsNormLayer? KNorm { get; }

    public GroupedQueryAttention(DenseConfig c, Generator gen, Device? device = null)
    {
        _hq = c.NumAttentionHeads;
        _hkv = c.NumKeyValueHeads;
        _hd = c.HeadDim;
        _scale = 1f / MathF.Sqrt(_hd);
        int d = c.HiddenSize;
        // Registration order is HF's module order (also the state-dict order).
        QProj = RegisterModule("q_proj", new Linear(d, _hq * _hd, c.QkvBias, gen, device));
        KProj = RegisterModule("k_proj", new Linear(d, _hkv * _hd, c.QkvBias, gen, device));
        VProj = RegisterModule("v_proj", new Linear(d, _hkv * _hd, c.QkvBias, gen, device));
        OProj = RegisterModule("o_proj", new Linear(_hq * _hd, d, c.OProjBias, gen, device));
        if (c.QkNorm)
        {
            QNorm = RegisterModule("q_norm", new RmsNormLayer(_hd, (float)c.RmsNormEps, device));
            KNorm = RegisterModule("k_norm", new RmsNormLayer(_hd, (float)c.RmsNormEps, device));
        }
    }

    /// <summary>x: [B, S, D] → q [B, S, Hq, hd], k and v [B, S, Hkv, hd] (q, k normalised, not yet rotated).</summary>
    private (Tensor Q, Tensor K, Tensor V) Project(Tensor x)
    {
        int b = x.Shape[0], s = x.Shape[1];
        var q = QProj.Forward(x).View(b, s, _hq, _hd);
        var k = KProj.Forward(x).View(b, s, _hkv, _hd);
        var v = VProj.Forward(x).View(b, s, _hkv, _hd);
        if (QNorm != null) q = QNorm.Forward(q);
        if (KNorm != null) k = KNorm!.Forward(k);
        return (q, k, v);
    }

    /// <summary>o: [B, Hq, S, hd] → [B, S, D].</summary>
    private Tensor Output(Tensor o, int b, int s) => OProj.Forward(o.Transpose(1, 2).Reshape(b, s, _hq * _hd));

    /// <summary>
    /// Causal attention of B sequences of T tokens at positions 0..T−1. x: [B, T, D]; cos/sin: [T, hd/2] → [B, T, D].
    /// With a cache, stores this layer's keys and values of positions 0..T−1 (a prefill).
    /// </summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, GqaKvCache? cache = null, int layer = -1)
    {
        int b = x.Shape[0], t = x.Shape[1];
        var (q, k, v) = Project(x);
        q = RotateHalfRope.Apply(q, cos, sin, seqDim: 1).Transpose(1, 2);   // [B, Hq, T, hd]
        k = RotateHalfRope.Apply(k, cos, sin, seqDim: 1).Transpose(1, 2);   // [B, Hkv, T, hd]
        v = v.Transpose(1, 2);                                              // [B, Hkv, T, hd]
        cache?.Write(layer, k, v, new int[b]);
        var o = Functional.ScaledDotProductAttention(q, k, v, causal: true, scale: _scale);   // [B, Hq, T, hd]
        return Output(o, b, t);
    }

    /// <summary>
    /// S new tokens of each sequence b at positions starts[b] … starts[b]+S−1 over the cache (inference; call under
    /// NoGrad). x: [B, S, D]; cos/sin: [B·S, hd/2] for exactly those positions (row b·S + s). Stores the new keys and
    /// values, then each query attends to its sequence's positions 0 … starts[b]+s.
    /// </summary>
    public Tensor ForwardCached(Tensor x, Tensor cos, Tensor sin, GqaKvCache cache, int layer, ReadOnlySpan<int> starts)
        => ForwardCached(x, cos, sin, cache, layer, starts, CacheRows.Identity(x.Shape[0]));

    /// <summary>
    /// As above, with input sequence b held in cache row rows[b] (a decode step over some of the cache's sequences).
    /// A one-token step on CUDA or ILGPU runs the batched grouped-query decode kernel (per-sequence lengths).
    /// </summary>
    public Tensor ForwardCached(Tensor x, Tensor cos, Tensor sin, GqaKvCache cache, int layer, ReadOnlySpan<int> starts,
        ReadOnlySpan<int> rows)
    {
        int b = x.Shape[0], s = x.Shape[1];
        var (q, k, v) = Project(x);
        // One table row per (sequence, token): rotate with the batch and token axes folded into the sequence axis.
        q = RotateHalfRope.Apply(q.Reshape(b * s, _hq, _hd), cos, sin, seqDim: 0).View(b, s, _hq, _hd).Transpose(1, 2);
        k = RotateHalfRope.Apply(k.Reshape(b * s, _hkv, _hd), cos, sin, seqDim: 0)
            .View(b, s, _hkv, _hd).Transpose(1, 2);
        cache.Write(layer, k, v.Transpose(1, 2), starts, rows);

        if (s == 1 && Functional.HasGqaDecodeKernel(x.Device))
        {
            // One new token per sequence on the device's decode kernel: every sequence to its own length, the cache
            // slots read in place.
            var lengths = new int[b];
            for (int i = 0; i < b; i++) lengths[i] = starts[i] + 1;
            var step = Functional.GqaDecodeAttention(q.Reshape(b, _hq, _hd), cache.Keys[layer], cache.Values[layer],
                rows, lengths, _scale);                                                       // [B, Hq, hd]
            return Output(step.Unsqueeze(2), b, s);
        }
        if (b == cache.Batch && CacheRows.IsIdentity(rows) && CacheRows.AllEqual(starts))
        {
            // Bottom-right causal alignment: query j sits at starts + j and sees keys 0 … starts + j.
            int len = starts[0] + s;
            var o = Functional.ScaledDotProductAttention(q, cache.Keys[layer].Narrow(2, 0, len),
                cache.Values[layer].Narrow(2, 0, len), causal: true, scale: _scale);
            return Output(o, b, s);
        }
        var outputs = new Tensor[b];
        for (int i = 0; i < b; i++)
        {
            int len = starts[i] + s;
            var keys = cache.Keys[layer].Narrow(0, rows[i], 1).Narrow(2, 0, len);
            var values = cache.Values[layer].Narrow(0, rows[i], 1).Narrow(2, 0, len);
            // [1, Hq, S, hd]
            outputs[i] = Functional.ScaledDotProductAttention(q.Narrow(0, i, 1), keys, values, causal: true,
                scale: _scale);
        }
        return Output(Tensor.Cat(outputs, 0), b, s);
    }
}
