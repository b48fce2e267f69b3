using NativeReasoner.Kernels;

namespace NativeReasoner;

public static unsafe partial class Functional
{
    /// <summary>
    /// softmax(q·kᵀ · scale [+ causal mask]) · v without materialising the Tq×Tk scores.
    /// q: [..., Hq, Tq, Dk], k: [..., Hkv, Tk, Dk], v: [..., Hkv, Tk, Dv] → [..., Hq, Tq, Dv]. The axes before
    /// the heads axis are the same for all three; Hq = Hkv is multi-head attention, and Hq a multiple of Hkv
    /// is grouped-query attention (GQA, arXiv:2305.13245; MQA with Hkv = 1): query head h reads K/V head
    /// h / (Hq / Hkv), the order of HF's repeat_kv, without the repeated K/V ever being materialised.
    /// scale defaults to 1/sqrt(Dk). With causal, query i sits at absolute position Tk − Tq + i and sees keys
    /// 0..Tk − Tq + i (bottom-right aligned: a decode step with Tq = 1 sees the whole cache). Differentiable
    /// in q, k and v (dk, dv sum over the query heads of each group). Inside <see cref="Autocast.Bf16"/> on a device
    /// with bf16 flash kernels (CUDA) it runs those (see <see cref="ScaledDotProductAttentionBf16"/>).
    /// </summary>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, bool causal, float? scale = null)
    {
        const string op = "scaled_dot_product_attention";
        RequireFloatOn(q, q, op, "q");
        RequireFloatOn(k, q, op, "k");
        RequireFloatOn(v, q, op, "v");
        if (q.Rank < 2 || k.Rank != q.Rank || v.Rank != q.Rank
            || (q.Rank > 2 && !q.Shape[..^3].SequenceEqual(k.Shape[..^3]))
            || !k.Shape[..^2].SequenceEqual(v.Shape[..^2])
            || k.Shape[^1] != q.Shape[^1] || v.Shape[^2] != k.Shape[^2])
            throw new ArgumentException(
                $"{op}: expected q [..., Hq, Tq, Dk], k [..., Hkv, Tk, Dk], v [..., Hkv, Tk, Dv] with the same axes " +
                $"before the heads, got q {Tensor.FormatShape(q.Shape)}, k {Tensor.FormatShape(k.Shape)}, " +
                $"v {Tensor.FormatShape(v.Shape)}");
        // Without a heads axis (rank 2) there is one head each.
        int Hq = q.Rank > 2 ? q.Shape[^3] : 1, Hkv = k.Rank > 2 ? k.Shape[^3] : 1;
        if (Hkv == 0 ? Hq != 0 : Hq == 0 || Hq % Hkv != 0)
            throw new ArgumentException(
                $"{op}: the query heads Hq = {Hq} must be a positive multiple of the K/V heads Hkv = {Hkv} (q " +
                $"{Tensor.FormatShape(q.Shape)}, k {Tensor.FormatShape(k.Shape)})");
        int kvGroup = Hkv == 0 ? 1 : Hq / Hkv;
        int Tq = q.Shape[^2], Dk = q.Shape[^1], Tk = k.Shape[^2], Dv = v.Shape[^1];
        int BH = Product(q.Shape, 0, q.Rank - 2);
        float s = scale ?? (Dk > 0 ? 1f / MathF.Sqrt(Dk) : 1f);
        if (UsesBf16FlashAttention(q.Device, Tq, Tk, Dk, Dv, out var flash))
            return ScaledDotProductAttentionBf16(q, k, v, causal, s, flash, BH, Tq, Tk, Dk, Dv, kvGroup);

        // qc: [BH, Tq, Dk]; kc: [BH / kvGroup, Tk, Dk]; vc: [BH / kvGroup, Tk, Dv]; o: [BH, Tq, Dv] laid out as
        // [..., Hq, Tq, Dv];
        // lse: [BH, Tq] (saved for the backward with o).
        var qc = q.ContiguousNoGrad();
        var kc = k.ContiguousNoGrad();
        var vc = v.ContiguousNoGrad();
        var outShape = q.Shape.ToArray();
        outShape[^1] = Dv;
        var o = Tensor.Empty(outShape, DType.Float32, q.Device);
        var lse = Tensor.Empty([BH, Tq], DType.Float32, q.Device);
        if (o.Numel > 0 || lse.Numel > 0)
            q.Device.Kernels.AttentionForward(qc.Data, kc.Data, vc.Data, o.Data, lse.Data, BH, Tq, Tk, Dk, Dv, s,
                causal, kvGroup);
        if (!Tensor.NeedsGrad(q) && !Tensor.NeedsGrad(k) && !Tensor.NeedsGrad(v))
        {
            qc.Dispose();
            kc.Dispose();
            vc.Dispose();
            lse.Dispose();
            return o;
        }
        // o is the output itself; the contiguous operands and lse are saved.
        var result = Tensor.Record(o, op, [q, k, v], g =>
        {
            using var gc = g.ContiguousNoGrad();
            var dq = Tensor.Empty(q.Shape, DType.Float32, g.Device);
            var dk = Tensor.Empty(k.Shape, DType.Float32, g.Device);
            var dv = Tensor.Empty(v.Shape, DType.Float32, g.Device);
            if (dq.Numel > 0 || dk.Numel > 0 || dv.Numel > 0)
                g.Device.Kernels.AttentionBackward(qc.Data, kc.Data, vc.Data, o.Data, lse.Data, gc.Data,
                    dq.Data, dk.Data, dv.Data, BH, Tq, Tk, Dk, Dv, s, causal, kvGroup);
            return [KeepIf(q.RequiresGrad, dq), KeepIf(k.RequiresGrad, dk), KeepIf(v.RequiresGrad, dv)];
        }, qc, kc, vc, lse);
        // Freed when the node that saved them is released.
        qc.Dispose();
        kc.Dispose();
        vc.Dispose();
        lse.Dispose();
        return result;
    }
}
