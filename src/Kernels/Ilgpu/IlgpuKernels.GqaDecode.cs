// Source: GQA (arXiv:2305.13245) decode against per-sequence K/V caches, in the layout of HF's cache_utils.py;
// the online softmax of FlashAttention (arXiv:2205.14135).
using ILGPU;
using ILGPU.Runtime;

namespace NativeReasoner.Kernels.Ilgpu;

// Batched grouped-query decode: one thread per (sequence, query head) walks the first lengths[b] rows of its K/V
// head once with an online softmax (running max m, running sum l, rescaled accumulator), so no [capacity] score
// buffer and no row past the length is read. Decode has one query per head, so a thread per row is the natural
// unit; the cache rows are read straight from global memory (each K/V head is read by Hq / Hkv threads of
// neighbouring rows, which the caches serve).
public sealed unsafe partial class IlgpuKernels : IGqaDecodeAttention
{
    internal struct GqaDecodeArgs
    {
        public int Batch, Hq, Hkv, Capacity, Dk, Dv;
        public float Scale;
    }

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
        ArrayView<float>, ArrayView<float>, GqaDecodeArgs>? _gqaDecode;

    /// <inheritdoc/>
    public void GqaDecodeAttention(float* q, float* kCache, float* vCache, int* lengths, float* o, float* lse,
        int batch, int Hq, int Hkv, int capacity, int Dk, int Dv, float scale)
    {
        IGqaDecodeAttention.Validate(nameof(GqaDecodeAttention), lengths, batch, Hq, Hkv, capacity, Dk, Dv);
        if (Dv > MaxHeadDim)
            throw new NotSupportedException($"ILGPU GqaDecodeAttention takes Dv up to {MaxHeadDim}, got {Dv}");
        long rows = (long)batch * Hq;
        if (rows == 0) return;
        KernelDispatchCounters.Count("ilgpu_gqa_decode");
        var a = new GqaDecodeArgs
        {
            Batch = batch, Hq = Hq, Hkv = Hkv, Capacity = capacity, Dk = Dk, Dv = Dv, Scale = scale,
        };
        lock (_backend.Sync)
        {
            // lengths are host ints (the caller's per-sequence lengths); the kernel reads them from a scratch copy.
            using var lens = Scratch<int>(batch);
            ArrayView<int> lensView = lens.View;
            lensView.SubView(0, batch).CopyFromCPU(_acc.DefaultStream, ref *lengths, batch);
            // Zero-size caches or heads: pass o's view where nothing is read (ILGPU has no view of 0 bytes).
            bool noKeys = capacity == 0 || Dk == 0;
            var kv = noKeys ? F(o) : F(kCache);
            var qv = noKeys ? F(o) : F(q);
            var vv = capacity == 0 || Dv == 0 ? F(lse) : F(vCache);
            var ov = Dv == 0 ? F(lse) : F(o);
            int group = Math.Min(64, _acc.MaxNumThreadsPerGroup);
            var cfg = new KernelConfig((int)Math.Max(1, Math.Min((rows + group - 1) / group, 65535)), group);
            (_gqaDecode ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
                ArrayView<float>, ArrayView<float>, GqaDecodeArgs>(GqaDecodeKernel))(cfg, qv, kv, vv, lensView, ov,
                F(lse), a);
            _acc.DefaultStream.Synchronize(); // the scratch lengths are freed when this scope ends
        }
    }

    /// <summary>
    /// q: [batch, Hq, Dk], kCache: [batch, Hkv, capacity, Dk], vCache: [batch, Hkv, capacity, Dv], lengths: [batch]
    /// → o: [batch, Hq, Dv], lse: [batch, Hq]. A sequence of length 0 gets o = 0 and lse = −∞.
    /// </summary>
    private static void GqaDecodeKernel(ArrayView<float> q, ArrayView<float> kCache, ArrayView<float> vCache,
        ArrayView<int> lengths, ArrayView<float> o, ArrayView<float> lse, GqaDecodeArgs a)
    {
        var acc = LocalMemory.Allocate<float>(MaxHeadDim);
        int group = a.Hq / a.Hkv;
        long rows = (long)a.Batch * a.Hq;
        for (long row = Grid.GlobalIndex.X; row < rows; row += (long)Grid.DimX * Group.DimX)
        {
            int b = (int)(row / a.Hq), h = (int)(row - (long)b * a.Hq);
            int len = lengths[b];
            long kvHead = (long)b * a.Hkv + h / group;
            long kBase = kvHead * a.Capacity * a.Dk, vBase = kvHead * a.Capacity * a.Dv, qBase = row * a.Dk;
            for (int d = 0; d < a.Dv; d++) acc[d] = 0f;
            float m = float.NegativeInfinity, l = 0f;
            for (int j = 0; j < len; j++)
            {
                float s = 0f;
                for (int d = 0; d < a.Dk; d++) s += q[qBase + d] * kCache[kBase + (long)j * a.Dk + d];
                s *= a.Scale;
                float mNew = DeviceMath.MaxNaN(m, s);
                float corr = MathF.Exp(m - mNew); // 0 on the first row (m = −∞)
                float p = MathF.Exp(s - mNew);
                l = l * corr + p;
                for (int d = 0; d < a.Dv; d++) acc[d] = acc[d] * corr + p * vCache[vBase + (long)j * a.Dv + d];
                m = mNew;
            }
            float inv = len > 0 ? 1f / l : 0f;
            for (int d = 0; d < a.Dv; d++) o[row * a.Dv + d] = acc[d] * inv;
            lse[row] = len > 0 ? m + MathF.Log(l) : float.NegativeInfinity;
        }
    }
}
