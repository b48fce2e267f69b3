// Source: PyTorch's multi-tensor (foreach) AdamW (torch/optim/adamw.py, _multi_tensor_adamw) and apex's
//         multi_tensor_apply: many tensors per launch in fixed-size lists.
using ILGPU;
using ILGPU.Runtime;

namespace NativeReasoner.Kernels.Ilgpu;

/// <summary>
/// <see cref="IMultiTensorAdamW"/> on ILGPU: one launch updates up to <see cref="AdamWSlots"/> tensors, so a model's
/// hundreds of tiny parameters (norm weights, biases, expert matrices) cost a launch per eight tensors instead of one
/// each. ILGPU hands a kernel typed views, not raw device pointers, and every allocation is its own buffer, so the
/// tensors of a launch travel as a fixed set of view slots (apex's multi_tensor_apply lists): thread i finds its
/// tensor from the running element counts and applies <see cref="IKernels.AdamWStep"/>'s arithmetic.
/// </summary>
public sealed unsafe partial class IlgpuKernels : IMultiTensorAdamW
{
    /// <summary>Tensors per launch (the view slots of <see cref="AdamWChunk"/>).</summary>
    internal const int AdamWSlots = 8;

    /// <summary>
    /// The tensors of one launch: slot s holds p, g, m, v of one tensor, and End_s the number of elements of slots
    /// 0..s together (the unused slots repeat the last tensor's views and the total, so no thread selects them).
    /// </summary>
    internal struct AdamWChunk
    {
        public ArrayView<float> P0, G0, M0, V0;
        public ArrayView<float> P1, G1, M1, V1;
        public ArrayView<float> P2, G2, M2, V2;
        public ArrayView<float> P3, G3, M3, V3;
        public ArrayView<float> P4, G4, M4, V4;
        public ArrayView<float> P5, G5, M5, V5;
        public ArrayView<float> P6, G6, M6, V6;
        public ArrayView<float> P7, G7, M7, V7;
        public long End0, End1, End2, End3, End4, End5, End6, End7;
    }

    private Action<Index1D, AdamWChunk, AdamWArgs>? _adamwMulti;

    public void AdamWStepMulti(int count, float** p, float** g, float** m, float** v, long* n, float lr, float beta1,
        float beta2, float eps, float weightDecay, float bias1, float bias2)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        for (int t = 0; t < count; t++)
            if (n[t] < 0) throw new ArgumentException($"AdamWStepMulti: tensor {t} has a negative size {n[t]}");
        var args = new AdamWArgs
        {
            Lr = lr, Beta1 = beta1, Beta2 = beta2, Eps = eps, WeightDecay = weightDecay, Bias1 = bias1, Bias2 = bias2,
        };
        lock (_backend.Sync)
        {
            var kernel = _adamwMulti ??=
                _acc.LoadAutoGroupedStreamKernel<Index1D, AdamWChunk, AdamWArgs>(AdamWMultiKernel);
            var chunk = default(AdamWChunk);
            int used = 0;
            long total = 0;
            for (int t = 0; t < count; t++)
            {
                if (n[t] == 0) continue;   // empty tensors: nothing to update (their pointers may not be mapped)
                Assign(ref chunk, used++, F(p[t]), F(g[t]), F(m[t]), F(v[t]), total += n[t]);
                if (used == AdamWSlots)
                {
                    kernel(Extent(total), chunk, args);
                    used = 0;
                    total = 0;
                }
            }
            if (used > 0)
            {
                // Pad with the last tensor's views and the total: the padding slots are never selected.
                var (lp, lg, lm, lv) = Slot(chunk, used - 1);
                for (int s = used; s < AdamWSlots; s++) Assign(ref chunk, s, lp, lg, lm, lv, total);
                kernel(Extent(total), chunk, args);
            }
        }
    }

    private static void Assign(ref AdamWChunk c, int slot, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m,
        ArrayView<float> v, long end)
    {
        switch (slot)
        {
            case 0: c.P0 = p; c.G0 = g; c.M0 = m; c.V0 = v; c.End0 = end; break;
            case 1: c.P1 = p; c.G1 = g; c.M1 = m; c.V1 = v; c.End1 = end; break;
            case 2: c.P2 = p; c.G2 = g; c.M2 = m; c.V2 = v; c.End2 = end; break;
            case 3: c.P3 = p; c.G3 = g; c.M3 = m; c.V3 = v; c.End3 = end; break;
            case 4: c.P4 = p; c.G4 = g; c.M4 = m; c.V4 = v; c.End4 = end; break;
            case 5: c.P5 = p; c.G5 = g; c.M5 = m; c.V5 = v; c.End5 = end; break;
            case 6: c.P6 = p; c.G6 = g; c.M6 = m; c.V6 = v; c.End6 = end; break;
            case 7: c.P7 = p; c.G7 = g; c.M7 = m; c.V7 = v; c.End7 = end; break;
            default: throw new ArgumentOutOfRangeException(nameof(slot), slot, $"0..{AdamWSlots - 1}");
        }
    }

    private static (ArrayView<float> P, ArrayView<float> G, ArrayView<float> M, ArrayView<float> V) Slot(
        AdamWChunk c, int slot) =>
        slot switch
        {
            0 => (c.P0, c.G0, c.M0, c.V0),
            1 => (c.P1, c.G1, c.M1, c.V1),
            2 => (c.P2, c.G2, c.M2, c.V2),
            3 => (c.P3, c.G3, c.M3, c.V3),
            4 => (c.P4, c.G4, c.M4, c.V4),
            5 => (c.P5, c.G5, c.M5, c.V5),
            6 => (c.P6, c.G6, c.M6, c.V6),
            7 => (c.P7, c.G7, c.M7, c.V7),
            _ => throw new ArgumentOutOfRangeException(nameof(slot), slot, $"0..{AdamWSlots - 1}"),
        };

    /// <summary>Thread i: the slot whose element range holds i, then element i − (start of that slot).</summary>
    private static void AdamWMultiKernel(Index1D index, AdamWChunk c, AdamWArgs a)
    {
        long i = index;
        if (i < c.End0) AdamWElement(c.P0, c.G0, c.M0, c.V0, i - 0, a);
        else if (i < c.End1) AdamWElement(c.P1, c.G1, c.M1, c.V1, i - c.End0, a);
        else if (i < c.End2) AdamWElement(c.P2, c.G2, c.M2, c.V2, i - c.End1, a);
        else if (i < c.End3) AdamWElement(c.P3, c.G3, c.M3, c.V3, i - c.End2, a);
        else if (i < c.End4) AdamWElement(c.P4, c.G4, c.M4, c.V4, i - c.End3, a);
        else if (i < c.End5) AdamWElement(c.P5, c.G5, c.M5, c.V5, i - c.End4, a);
        else if (i < c.End6) AdamWElement(c.P6, c.G6, c.M6, c.V6, i - c.End5, a);
        else if (i < c.End7) AdamWElement(c.P7, c.G7, c.M7, c.V7, i - c.End6, a);
    }

    /// <summary>Element k of one tensor: AdamWKernel's arithmetic (PyTorch AdamW), operation for operation.</summary>
    private static void AdamWElement(ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v,
        long k, AdamWArgs a)
    {
        float pi = p[k], gi = g[k];
        pi -= a.Lr * a.WeightDecay * pi;
        float mi = a.Beta1 * m[k] + (1f - a.Beta1) * gi;
        float vi = a.Beta2 * v[k] + (1f - a.Beta2) * gi * gi;
        pi -= a.Lr * (mi / a.Bias1) / (MathF.Sqrt(vi / a.Bias2) + a.Eps);
        m[k] = mi;
        v[k] = vi;
        p[k] = pi;
    }
}
