using NativeReasoner.Kernels;

namespace NativeReasoner;

public static unsafe partial class Functional
{
    /// <summary>
    /// softmax(q·kᵀ · scale [+ causal mask]) · v without materialising the Tq×Tk scores.
    /// q: [..., Tq, Dk], k: [..., Tk, Dk], v: [..., Tk, Dv] with identical leading axes (flattened to one
    /// batch·heads axis BH) → [..., Tq, Dv]. scale defaults to 1/sqrt(Dk). With causal, query i sits at
    /// absolute position Tk − Tq + i and sees keys 0..Tk − Tq + i (bottom-right aligned: a decode step
    /// with Tq = 1 sees the whole cache). Differentiable in q, k and v.
    /// </summary>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, bool causal, float? scale = null)
    {
        const string op = "scaled_dot_product_attention";
        // BEGIN branch-local GQA (families): k/v [B, Hkv, Tk, D] with Hkv dividing Hq are repeated to Hq heads
        // (query head h reads K/V head h / (Hq / Hkv), as HF's repeat_kv). The gqa branch maps heads natively.
        if (q.Rank == 4 && k.Rank == 4 && v.Rank == 4 && k.Shape[1] != q.Shape[1] && k.Shape[1] > 0
            && v.Shape[1] == k.Shape[1] && q.Shape[1] % k.Shape[1] == 0 && q.Shape[0] == k.Shape[0] && q.Shape[0] == v.Shape[0])
        {
            int groups = q.Shape[1] / k.Shape[1];
            Tensor Repeat(Tensor x) => x.Unsqueeze(2).Expand(x.Shape[0], x.Shape[1], groups, x.Shape[2], x.Shape[3])
                .Reshape(x.Shape[0], x.Shape[1] * groups, x.Shape[2], x.Shape[3]);
            return ScaledDotProductAttention(q, Repeat(k), Repeat(v), causal, scale);
        }
        // END branch-local GQA
        RequireFloatOn(q, q, op, "q");
        RequireFloatOn(k, q, op, "k");
        RequireFloatOn(v, q, op, "v");
        if (q.Rank < 2 || k.Rank != q.Rank || v.Rank != q.Rank
            || !q.Shape[..^2].SequenceEqual(k.Shape[..^2]) || !q.Shape[..^2].SequenceEqual(v.Shape[..^2])
            || k.Shape[^1] != q.Shape[^1] || v.Shape[^2] != k.Shape[^2])
            throw new ArgumentException(
                $"{op}: expected q [..., Tq, Dk], k [..., Tk, Dk], v [..., Tk, Dv] with the same leading axes, got q {Tensor.FormatShape(q.Shape)}, k {Tensor.FormatShape(k.Shape)}, v {Tensor.FormatShape(v.Shape)}");
        int Tq = q.Shape[^2], Dk = q.Shape[^1], Tk = k.Shape[^2], Dv = v.Shape[^1];
        int BH = Product(q.Shape, 0, q.Rank - 2);
        float s = scale ?? (Dk > 0 ? 1f / MathF.Sqrt(Dk) : 1f);

        // qc: [BH, Tq, Dk]; kc: [BH, Tk, Dk]; vc: [BH, Tk, Dv]; o: [BH, Tq, Dv] laid out as [..., Tq, Dv];
        // lse: [BH, Tq] (saved for the backward with o).
        var qc = q.ContiguousNoGrad();
        var kc = k.ContiguousNoGrad();
        var vc = v.ContiguousNoGrad();
        var outShape = q.Shape.ToArray();
        outShape[^1] = Dv;
        var o = Tensor.Empty(outShape, DType.Float32, q.Device);
        var lse = Tensor.Empty([BH, Tq], DType.Float32, q.Device);
        if (o.Numel > 0 || lse.Numel > 0)
            q.Device.Kernels.AttentionForward(qc.Data, kc.Data, vc.Data, o.Data, lse.Data, BH, Tq, Tk, Dk, Dv, s, causal);
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
                    dq.Data, dk.Data, dv.Data, BH, Tq, Tk, Dk, Dv, s, causal);
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
