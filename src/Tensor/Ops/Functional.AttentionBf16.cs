// Source: FlashAttention-2 (arXiv:2307.08691) as PyTorch's autocast runs scaled_dot_product_attention: bf16 inputs,
//         fp32 accumulation and softmax, bf16 output and gradients.
using NativeReasoner.Kernels;

namespace NativeReasoner;

public static unsafe partial class Functional
{
    /// <summary>
    /// True when <see cref="ScaledDotProductAttention"/> takes the bf16 flash kernels: inside
    /// <see cref="Autocast.Bf16"/> on a device that has them (CUDA) for these head dims, with something to attend.
    /// </summary>
    private static bool UsesBf16FlashAttention(Device device, int Tq, int Tk, int Dk, int Dv,
        out IBf16FlashAttention flash)
    {
        flash = null!;
        if (!Autocast.IsBf16 || device.Kernels is not IBf16FlashAttention f || !f.SupportsBf16Attention(Dk, Dv)
            || Tq == 0 || Tk == 0) return false;
        flash = f;
        return true;
    }

    /// <summary>
    /// <see cref="ScaledDotProductAttention"/> on the bf16 flash kernels (same shapes, float32 tensors in and out):
    /// q, k, v are rounded to bf16, the kernels accumulate in fp32, o comes back as float32 widened from bf16. The
    /// backward rounds dO to bf16 and widens dq, dk, dv, so the gradient is that of the bf16 computation, as under
    /// PyTorch's autocast. The bf16 q, k, v, o and the fp32 lse are what the node saves.
    /// </summary>
    private static Tensor ScaledDotProductAttentionBf16(Tensor q, Tensor k, Tensor v, bool causal, float scale,
        IBf16FlashAttention flash, int BH, int Tq, int Tk, int Dk, int Dv, int kvGroup)
    {
        const string op = "scaled_dot_product_attention_bf16";
        var device = q.Device;
        // qb: [BH, Tq, Dk], kb: [BH / kvGroup, Tk, Dk], vb: [BH / kvGroup, Tk, Dv] bf16 (contiguous copies).
        var qb = q.ToDTypeNoGrad(DType.BFloat16);
        var kb = k.ToDTypeNoGrad(DType.BFloat16);
        var vb = v.ToDTypeNoGrad(DType.BFloat16);
        var outShape = q.Shape.ToArray();
        outShape[^1] = Dv;
        var ob = Tensor.Empty(outShape, DType.BFloat16, device);                 // [..., Hq, Tq, Dv] bf16
        var lse = Tensor.Empty([BH, Tq], DType.Float32, device);
        flash.AttentionForwardBf16(Bits(qb), Bits(kb), Bits(vb), Bits(ob), lse.Data, BH, Tq, Tk, Dk, Dv, scale, causal,
            kvGroup);
        var o = ob.ToDTypeNoGrad(DType.Float32);
        var result = Tensor.Record(o, op, [q, k, v], g =>
        {
            using var gb = g.ToDTypeNoGrad(DType.BFloat16);
            using var dqb = Tensor.Empty(q.Shape, DType.BFloat16, g.Device);
            using var dkb = Tensor.Empty(k.Shape, DType.BFloat16, g.Device);
            using var dvb = Tensor.Empty(v.Shape, DType.BFloat16, g.Device);
            flash.AttentionBackwardBf16(Bits(qb), Bits(kb), Bits(vb), Bits(ob), lse.Data, Bits(gb), Bits(dqb),
                Bits(dkb), Bits(dvb), BH, Tq, Tk, Dk, Dv, scale, causal, kvGroup);
            return
            [
                q.RequiresGrad ? dqb.ToDTypeNoGrad(DType.Float32) : null,
                k.RequiresGrad ? dkb.ToDTypeNoGrad(DType.Float32) : null,
                v.RequiresGrad ? dvb.ToDTypeNoGrad(DType.Float32) : null,
            ];
        }, qb, kb, vb, ob, lse);
        // Freed here without a graph, else when the node that saved them is released.
        qb.Dispose();
        kb.Dispose();
        vb.Dispose();
        ob.Dispose();
        lse.Dispose();
        return result;
    }

    private static ushort* Bits(Tensor bf16) => (ushort*)bf16.RawPointer;
}
