// Source: SwiGLU (arXiv:2002.05202); the per-token log-prob gather of TRL trainer/grpo_trainer.py.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NativeReasoner.Kernels.Cpu;

/// <summary>
/// Fused one-pass kernels: each reads its inputs once and writes its outputs once, with the transcendental
/// (vector exp) in registers, where the unfused graph would write and re-read whole intermediates
/// (silu(gate), the [rows, V] log-softmax).
/// </summary>
public sealed unsafe partial class CpuKernels
{
    private struct FusedState
    {
        public float* A, B, Dy, Da, Db, Lse, Out;
        public long* Ids;
        public int V;
        public float InvT;
    }

    public void SiluMul(float* gate, float* up, float* y, long n)
    {
        var st = new FusedState { A = gate, B = up, Out = y };
        CpuParallel.For(n, ElementwiseMinChunk, &SiluMulBody, &st);
    }

    /// <summary>
    /// y = g·σ(g)·u, evaluated as (g · (1 / (1 + exp(−g)))) · u: the operations, in the order and vector width, of
    /// the unfused graph silu(g) (TensorPrimitives.Sigmoid, then a multiply) followed by · u, so the inference
    /// path's fused product is bit-identical to what training computes (<c>SwiGluMlp</c>). The last elements
    /// of a chunk (fewer than a vector) go through the same vector formula on a stack copy, as TensorPrimitives
    /// treats its tails, rather than a scalar exp that would round differently (TensorPrimitives itself takes the
    /// scalar exp only for a span shorter than 4: there the two may differ by an ulp).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SiluMulBody(void* state, long start, long end)
    {
        var st = (FusedState*)state;
        float* g = st->A, u = st->B, y = st->Out;
        // y may alias g or u: each lane is loaded before it is stored.
        long i = start;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= end - 16; i += 16)
                Vector512.Store(SiluMul(Vector512.Load(g + i), Vector512.Load(u + i)), y + i);
            if (i < end)
            {
                int rest = (int)(end - i);
                float* tail = stackalloc float[32];
                new Span<float>(tail, 32).Clear();
                Buffer.MemoryCopy(g + i, tail, 64, rest * 4);
                Buffer.MemoryCopy(u + i, tail + 16, 64, rest * 4);
                Vector512.Store(SiluMul(Vector512.Load(tail), Vector512.Load(tail + 16)), tail);
                Buffer.MemoryCopy(tail, y + i, rest * 4, rest * 4);
                i = end;
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= end - 8; i += 8)
                Vector256.Store(SiluMul(Vector256.Load(g + i), Vector256.Load(u + i)), y + i);
            if (i < end)
            {
                int rest = (int)(end - i);
                float* tail = stackalloc float[16];
                new Span<float>(tail, 16).Clear();
                Buffer.MemoryCopy(g + i, tail, 32, rest * 4);
                Buffer.MemoryCopy(u + i, tail + 8, 32, rest * 4);
                Vector256.Store(SiluMul(Vector256.Load(tail), Vector256.Load(tail + 8)), tail);
                Buffer.MemoryCopy(tail, y + i, rest * 4, rest * 4);
                i = end;
            }
        }
        for (; i < end; i++) y[i] = g[i] / (1f + MathF.Exp(-g[i])) * u[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> SiluMul(Vector512<float> g, Vector512<float> u) =>
        g * (Vector512<float>.One / (Vector512<float>.One + Vector512.Exp(-g))) * u;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> SiluMul(Vector256<float> g, Vector256<float> u) =>
        g * (Vector256<float>.One / (Vector256<float>.One + Vector256.Exp(-g))) * u;

    public void SiluMulBackward(float* gate, float* up, float* dy, float* dgate, float* dup, long n)
    {
        var st = new FusedState { A = gate, B = up, Dy = dy, Da = dgate, Db = dup };
        CpuParallel.For(n, ElementwiseMinChunk, &SiluMulBackwardBody, &st);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SiluMulBackwardBody(void* state, long start, long end)
    {
        var st = (FusedState*)state;
        float* g = st->A, u = st->B, d = st->Dy, dg = st->Da, du = st->Db;
        long i = start;
        // All loads of a lane happen before its stores: exact aliasing with any input is safe.
        if (Vector512.IsHardwareAccelerated)
        {
            var one = Vector512<float>.One;
            for (; i <= end - 16; i += 16)
            {
                var vg = Vector512.Load(g + i);
                var vs = one / (one + Vector512.Exp(-vg));
                var ds = Vector512.Load(d + i) * vs;
                var vu = Vector512.Load(u + i);
                Vector512.Store(ds * vu * Vector512.FusedMultiplyAdd(vg, one - vs, one), dg + i);
                Vector512.Store(ds * vg, du + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var one = Vector256<float>.One;
            for (; i <= end - 8; i += 8)
            {
                var vg = Vector256.Load(g + i);
                var vs = one / (one + Vector256.Exp(-vg));
                var ds = Vector256.Load(d + i) * vs;
                var vu = Vector256.Load(u + i);
                Vector256.Store(ds * vu * Vector256.FusedMultiplyAdd(vg, one - vs, one), dg + i);
                Vector256.Store(ds * vg, du + i);
            }
        }
        for (; i < end; i++)
        {
            float gi = g[i], ui = u[i], s = 1f / (1f + MathF.Exp(-gi)), ds = d[i] * s;
            dg[i] = ds * ui * (1f + gi * (1f - s));
            du[i] = ds * gi;
        }
    }

    public void LogSoftmaxGather(float* logits, long* ids, float* logp, float* lse, int rows, int V, float invTemperature)
    {
        // logits: [rows, V]; ids, logp, lse: [rows]
        var st = new FusedState { A = logits, Ids = ids, Out = logp, Lse = lse, V = V, InvT = invTemperature };
        CpuParallel.For(rows, RowsMinChunk(V), &LogSoftmaxGatherBody, &st);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LogSoftmaxGatherBody(void* state, long start, long end)
    {
        var st = (FusedState*)state;
        int V = st->V;
        float invT = st->InvT;
        for (long r = start; r < end; r++)
        {
            float* row = st->A + r * V;
            // Two read-only passes over the row: the max, then Σ exp(z − max) with the exp in registers.
            // invT > 0, so the max of z is invT · max(logits); NaN propagates.
            float max = TensorPrimitives.Max(new ReadOnlySpan<float>(row, V)) * invT;
            double l;
            if (float.IsNaN(max) || float.IsNegativeInfinity(max)) l = max;
            else l = max + Math.Log(SumExp(row, V, invT, max));
            st->Lse[r] = (float)l;
            st->Out[r] = (float)(row[st->Ids[r]] * invT - l);
        }
    }

    /// <summary>Σ exp(row[c]·invT − shift): lane-wise float sums (each of ≤ V/16 terms ≤ 1) reduced in double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double SumExp(float* row, int n, float invT, float shift)
    {
        int c = 0;
        double sum = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vt = Vector512.Create(invT);
            var vs = Vector512.Create(-shift);
            Vector512<float> a0 = default, a1 = default;
            // Two accumulators: the adds of consecutive vectors do not wait on each other.
            for (; c <= n - 32; c += 32)
            {
                a0 += Vector512.Exp(Vector512.FusedMultiplyAdd(Vector512.Load(row + c), vt, vs));
                a1 += Vector512.Exp(Vector512.FusedMultiplyAdd(Vector512.Load(row + c + 16), vt, vs));
            }
            for (; c <= n - 16; c += 16) a0 += Vector512.Exp(Vector512.FusedMultiplyAdd(Vector512.Load(row + c), vt, vs));
            sum = Vector512.Sum(a0 + a1);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vt = Vector256.Create(invT);
            var vs = Vector256.Create(-shift);
            Vector256<float> a0 = default;
            for (; c <= n - 8; c += 8) a0 += Vector256.Exp(Vector256.FusedMultiplyAdd(Vector256.Load(row + c), vt, vs));
            sum = Vector256.Sum(a0);
        }
        for (; c < n; c++) sum += MathF.Exp(row[c] * invT - shift);
        return sum;
    }

    public void LogSoftmaxGatherBackward(float* logits, long* ids, float* lse, float* dlogp, float* dlogits,
        int rows, int V, float invTemperature)
    {
        var st = new FusedState { A = logits, Ids = ids, Lse = lse, Dy = dlogp, Da = dlogits, V = V, InvT = invTemperature };
        CpuParallel.For(rows, RowsMinChunk(V), &LogSoftmaxGatherBackwardBody, &st);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LogSoftmaxGatherBackwardBody(void* state, long start, long end)
    {
        var st = (FusedState*)state;
        int V = st->V;
        float invT = st->InvT;
        for (long r = start; r < end; r++)
        {
            float* x = st->A + r * V, d = st->Da + r * V;
            float g = st->Dy[r] * invT, l = st->Lse[r];
            // One pass: d = −g · exp(z − lse), then + g at the id.
            int c = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var vt = Vector512.Create(invT);
                var vl = Vector512.Create(-l);
                var vg = Vector512.Create(-g);
                for (; c <= V - 16; c += 16)
                    Vector512.Store(Vector512.Exp(Vector512.FusedMultiplyAdd(Vector512.Load(x + c), vt, vl)) * vg, d + c);
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var vt = Vector256.Create(invT);
                var vl = Vector256.Create(-l);
                var vg = Vector256.Create(-g);
                for (; c <= V - 8; c += 8)
                    Vector256.Store(Vector256.Exp(Vector256.FusedMultiplyAdd(Vector256.Load(x + c), vt, vl)) * vg, d + c);
            }
            for (; c < V; c++) d[c] = -g * MathF.Exp(x[c] * invT - l);
            d[st->Ids[r]] += g;
        }
    }
}
