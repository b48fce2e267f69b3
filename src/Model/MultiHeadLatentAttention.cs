// Source: DeepSeek-V2 (arXiv:2405.04434) §2.1 MLA; official DeepSeek-V3 inference/model.py MLA (naive and absorb
//         modes); HF modeling_deepseek_v3.py DeepseekV3Attention.
using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>
/// Multi-head latent attention (self_attn). Shapes: B batch, T tokens, H heads, n = qk_nope_head_dim,
/// r = qk_rope_head_dim, dv = v_head_dim, c = kv_lora_rank.
/// Query: q_proj x, or q_b_proj(q_a_layernorm(q_a_proj x)); per head [n nope | r rope].
/// Key/value: kv_a_proj_with_mqa x = [latent c | k_pe r] (latent FIRST); kv_a_layernorm on the latent
/// only; k_pe is rotated and shared by all heads. kv_b_proj is viewed per head as [k_nope n; v dv]
/// (rows grouped by head, deepseek-v3-notes 9).
/// Two equivalent paths: <see cref="Forward(Tensor, Tensor, Tensor, MlaCache?, int)"/> decompresses K and V per
/// head (training, prefill); <see cref="ForwardAbsorbed"/> attends in the latent space with kv_b_proj
/// absorbed into the query and the output, reading the compressed cache (decode); a one-token step on a device with
/// an MLA decode kernel (CUDA) runs the attention there.
/// </summary>
public sealed class MultiHeadLatentAttention : Module
{
    private readonly DeepseekV3Config _c;
    private readonly int _h, _n, _r, _dv, _rank;
    private readonly float _scale;

    public Linear? QProj { get; }
    public Linear? QAProj { get; }
    public RmsNormLayer? QALayerNorm { get; }
    public Linear? QBProj { get; }
    public Linear KvAProjWithMqa { get; }
    public RmsNormLayer KvALayerNorm { get; }
    public Linear KvBProj { get; }
    public Linear OProj { get; }

    public MultiHeadLatentAttention(DeepseekV3Config c, Generator gen, Device? device = null)
    {
        _c = c;
        _h = c.NumAttentionHeads;
        _n = c.QkNopeHeadDim;
        _r = c.QkRopeHeadDim;
        _dv = c.VHeadDim;
        _rank = c.KvLoraRank;
        _scale = c.SoftmaxScale;
        int d = c.HiddenSize, qk = c.QkHeadDim;
        // Registration order follows HF's module order (it is also the state-dict order).
        if (c.QLoraRank is { } qr)
        {
            QAProj = RegisterModule("q_a_proj", new Linear(d, qr, false, gen, device));
            // HF builds the two MLA-internal norms without rms_norm_eps (so 1e-6); so does the official code.
            QALayerNorm = RegisterModule("q_a_layernorm", new RmsNormLayer(qr, 1e-6f, device));
            QBProj = RegisterModule("q_b_proj", new Linear(qr, _h * qk, false, gen, device));
        }
        else QProj = RegisterModule("q_proj", new Linear(d, _h * qk, false, gen, device));
        KvAProjWithMqa = RegisterModule("kv_a_proj_with_mqa", new Linear(d, _rank + _r, false, gen, device));
        KvALayerNorm = RegisterModule("kv_a_layernorm", new RmsNormLayer(_rank, 1e-6f, device));
        KvBProj = RegisterModule("kv_b_proj", new Linear(_rank, _h * (_n + _dv), false, gen, device));
        OProj = RegisterModule("o_proj", new Linear(_h * _dv, d, false, gen, device));
    }

    /// <summary>x: [B, S, D] → q: [B, S, H, n + r] (not yet rotated).</summary>
    private Tensor Query(Tensor x)
    {
        int b = x.Shape[0], s = x.Shape[1];
        var q = QProj != null
            ? Tensor.Linear(x, QProj.Weight)
            : Tensor.Linear(QALayerNorm!.Forward(Tensor.Linear(x, QAProj!.Weight)), QBProj!.Weight);
        return q.View(b, s, _h, _n + _r);
    }

    /// <summary>x: [B, S, D] → normalised latent [B, S, c] and rotated k_pe [B, S, r].</summary>
    private (Tensor Latent, Tensor RopeKey) CompressedKv(Tensor x, Tensor cos, Tensor sin, int seqDim)
    {
        int b = x.Shape[0], s = x.Shape[1];
        var kvA = Tensor.Linear(x, KvAProjWithMqa.Weight);                 // [B, S, c + r]
        var latent = KvALayerNorm.Forward(kvA.Narrow(-1, 0, _rank));        // [B, S, c]
        var kPe = kvA.Narrow(-1, _rank, _r);                                // [B, S, r]
        kPe = seqDim == 1
            ? Functional.Rope(kPe, cos, sin, seqDim: 1)
            : Functional.Rope(kPe.Reshape(b * s, _r).Unsqueeze(1), cos, sin, seqDim: 0).View(b, s, _r);
        return (latent, kPe);
    }

    /// <summary>
    /// The naive (decompressing) path for B sequences of T tokens at positions 0..T−1, causal.
    /// x: [B, T, D]; cos/sin: [T, r/2] → [B, T, D]. With a cache, stores the compressed entries of
    /// positions 0..T−1 for this layer (a prefill).
    /// </summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, MlaCache? cache = null, int layer = -1)
    {
        int b = x.Shape[0], t = x.Shape[1];
        var q = Query(x);                                                    // [B, T, H, n + r]
        var qNope = q.Narrow(-1, 0, _n);
        var qPe = Functional.Rope(q.Narrow(-1, _n, _r), cos, sin, seqDim: 1);
        var (latent, kPe) = CompressedKv(x, cos, sin, seqDim: 1);
        if (cache != null) cache.Write(layer, latent, kPe, new int[b]);

        var kv = Tensor.Linear(latent, KvBProj.Weight).View(b, t, _h, _n + _dv);
        var kNope = kv.Narrow(-1, 0, _n);                                    // [B, T, H, n]
        var v = kv.Narrow(-1, _n, _dv);                                      // [B, T, H, dv]
        var kPeHeads = kPe.Unsqueeze(2).Expand(b, t, _h, _r);                // one RoPE key for all heads
        var k = Tensor.Cat([kNope, kPeHeads], -1);                           // [B, T, H, n + r]
        var qf = Tensor.Cat([qNope, qPe], -1);                               // [B, T, H, n + r]
        var o = Functional.ScaledDotProductAttention(
            qf.Transpose(1, 2), k.Transpose(1, 2), v.Transpose(1, 2), causal: true, scale: _scale); // [B, H, T, dv]
        var merged = o.Transpose(1, 2).Reshape(b, t, _h * _dv);
        return Tensor.Linear(merged, OProj.Weight);
    }

    /// <summary>
    /// The absorbed path over the compressed cache (inference; call under NoGrad). x: [B, S, D] holds S new
    /// tokens of each sequence b at positions starts[b] … starts[b]+S−1; cos/sin: [B·S, r/2] for exactly
    /// those positions (row b·S + s). Stores the new entries, then attends to positions 0 … starts[b]+s.
    /// q_lat = q_nope·W_UK (per head), scores = (q_lat·c_kvᵀ + q_pe·k_peᵀ)·scale,
    /// o = (P·c_kv)·W_UVᵀ — the same softmax scale as the naive path (deepseek-v3-notes 7), never 1/sqrt(c + r).
    /// </summary>
    public Tensor ForwardAbsorbed(Tensor x, Tensor cos, Tensor sin, MlaCache cache, int layer, ReadOnlySpan<int> starts)
        => ForwardAbsorbed(x, cos, sin, cache, layer, starts, CacheRows.Identity(x.Shape[0]));

    /// <summary>
    /// As above, with input sequence b held in cache row rows[b] (a decode step over some of the cache's sequences):
    /// those rows' latents and RoPE keys are gathered into [B, T, ·] before the products.
    /// </summary>
    public Tensor ForwardAbsorbed(Tensor x, Tensor cos, Tensor sin, MlaCache cache, int layer, ReadOnlySpan<int> starts,
        ReadOnlySpan<int> rows)
    {
        int b = x.Shape[0], s = x.Shape[1];
        var q = Query(x);
        var qNope = q.Narrow(-1, 0, _n);                                                       // [B, S, H, n]
        var qPe = Functional.Rope(q.Narrow(-1, _n, _r).Reshape(b * s, _h, _r), cos, sin, seqDim: 0)
            .View(b, s, _h, _r);                                                               // [B, S, H, r]
        var (latent, kPe) = CompressedKv(x, cos, sin, seqDim: 0);
        cache.Write(layer, latent, kPe, starts, rows);

        int tMax = 0;
        for (int i = 0; i < b; i++) tMax = Math.Max(tMax, starts[i] + s);
        var w = KvBProj.Weight.View(_h, _n + _dv, _rank);
        if (s == 1 && Functional.HasMlaDecodeKernel(x.Device, _rank, _r))
            return DecodeOnKernel(qNope, qPe, w, cache, layer, starts, rows);
        var wUk = w.Narrow(1, 0, _n);                                                           // [H, n, c]
        var wUv = w.Narrow(1, _n, _dv);                                                         // [H, dv, c]
        // Every product below has one batch axis that GEMM can stride over: the heads are folded into the
        // rows (per sequence) or the sequences into the rows (per head). Broadcasting the cache [B, 1, T, c]
        // over [B, H] instead cannot be expressed as one batch stride and would copy the cache H times per
        // layer and step.
        var qLat = qNope.Permute(2, 0, 1, 3).Reshape(_h, b * s, _n).MatMul(wUk)                // [H, B·S, c]
            .View(_h, b, s, _rank).Permute(1, 0, 2, 3).Reshape(b, _h * s, _rank);               // [B, H·S, c]
        var qRot = qPe.Permute(0, 2, 1, 3).Reshape(b, _h * s, _r);                              // [B, H·S, r]
        var cKv = CacheRowsOf(cache.Latent[layer], rows, tMax);                                 // [B, T, c]
        var pe = CacheRowsOf(cache.RopeKey[layer], rows, tMax);                                 // [B, T, r]
        var scores = qLat.MatMul(cKv.Transpose(-1, -2)) + qRot.MatMul(pe.Transpose(-1, -2));   // [B, H·S, T]
        scores = (scores * _scale).View(b, _h, s, tMax);                                        // [B, H, S, T]

        // Query s of sequence b sits at starts[b] + s and sees keys 0 … starts[b] + s.
        bool needMask = false;
        var mask = new float[b * s * tMax];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < s; j++)
                for (int t = starts[i] + j + 1; t < tMax; t++)
                {
                    mask[(i * s + j) * tMax + t] = 1f;
                    needMask = true;
                }
        if (needMask) scores = scores.MaskedFill(Tensor.FromArray(mask, [b, 1, s, tMax], x.Device), float.NegativeInfinity);
        var p = scores.Softmax(-1);
        var oLat = p.View(b, _h * s, tMax).MatMul(cKv)                                          // [B, H·S, c]
            .View(b, _h, s, _rank).Permute(1, 0, 2, 3).Reshape(_h, b * s, _rank);               // [H, B·S, c]
        var o = oLat.MatMul(wUv.Transpose(-1, -2));                                             // [H, B·S, dv]
        var merged = o.View(_h, b, s, _dv).Permute(1, 2, 0, 3).Reshape(b, s, _h * _dv);
        return Tensor.Linear(merged, OProj.Weight);
    }

    /// <summary>
    /// One new token per sequence on the device's MLA decode kernel (FlashMLA's layout: the kernel reads the cache
    /// slots in place, each to its own length). qNope: [B, 1, H, n], qPe: [B, 1, H, r] (rotated), w: kv_b_proj viewed
    /// [H, n + dv, c] → [B, 1, D]. The same absorbed products as the general path around it.
    /// </summary>
    private Tensor DecodeOnKernel(Tensor qNope, Tensor qPe, Tensor w, MlaCache cache, int layer,
        ReadOnlySpan<int> starts, ReadOnlySpan<int> rows)
    {
        int b = qNope.Shape[0];
        var wUk = w.Narrow(1, 0, _n);                                                           // [H, n, c]
        var wUv = w.Narrow(1, _n, _dv);                                                         // [H, dv, c]
        var qLat = qNope.Permute(2, 0, 1, 3).Reshape(_h, b, _n).MatMul(wUk);                   // [H, B, c]
        var q = Tensor.Cat([qLat.Permute(1, 0, 2), qPe.Reshape(b, _h, _r)], -1);               // [B, H, c + r]
        var lengths = new int[b];
        for (int i = 0; i < b; i++) lengths[i] = starts[i] + 1;
        var oLat = Functional.MlaDecodeAttention(q, cache.Entries[layer], rows, lengths, _rank, _scale); // [B, H, c]
        var o = oLat.Permute(1, 0, 2).MatMul(wUv.Transpose(-1, -2));                           // [H, B, dv]
        var merged = o.Permute(1, 0, 2).Reshape(b, 1, _h * _dv);
        return Tensor.Linear(merged, OProj.Weight);
    }

    /// <summary>
    /// Positions 0 … t−1 of the given rows of a cache tensor [capacity rows, ·, ·] → [rows, t, ·]: a view when the
    /// rows are the whole cache in order, otherwise one copy of those rows.
    /// </summary>
    private static Tensor CacheRowsOf(Tensor cached, ReadOnlySpan<int> rows, int t)
    {
        if (rows.Length == cached.Shape[0] && CacheRows.IsIdentity(rows)) return cached.Narrow(1, 0, t);
        var picked = new Tensor[rows.Length];
        for (int i = 0; i < rows.Length; i++) picked[i] = cached.Narrow(0, rows[i], 1).Narrow(1, 0, t);
        return Tensor.Cat(picked, 0);
    }
}
