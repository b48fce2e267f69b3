using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NativeReasoner.Kernels.Cpu;

/// <summary>
/// Fused one-pass kernels: each reads its inputs once and writes its outputs once, where the unfused graph
/// would write and re-read whole intermediates (silu(gate), the [rows, V] log-softmax).
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SiluMulBody(void* state, long start, long end)
    {
        var st = (FusedState*)state;
        // σ(gate) goes through a stack chunk (L1-resident) because y may alias gate or up.
        float* s = stackalloc float[TempChunk];
        for (long c = start; c < end; c += TempChunk)
        {
            int len = (int)Math.Min(TempChunk, end - c);
            TensorPrimitives.Sigmoid(new ReadOnlySpan<float>(st->A + c, len), new Span<float>(s, len));
            SimdMap.Map3(new SiluMulOp(), st->A + c, s, st->B + c, st->Out + c, len);
        }
    }

    private struct SiluMulOp : IMap3 // (g, σ(g), u) → g·σ(g)·u
    {
        public float Apply(float g, float s, float u) => g * s * u;
        public Vector256<float> Apply(Vector256<float> g, Vector256<float> s, Vector256<float> u) => g * s * u;
        public Vector512<float> Apply(Vector512<float> g, Vector512<float> s, Vector512<float> u) => g * s * u;
    }

    public void SiluMulBackward(float* gate, float* up, float* dy, float* dgate, float* dup, long n)
    {
        var st = new FusedState { A = gate, B = up, Dy = dy, Da = dgate, Db = dup };
        CpuParallel.For(n, ElementwiseMinChunk, &SiluMulBackwardBody, &st);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SiluMulBackwardBody(void* state, long start, long end)
    {
        var st = (FusedState*)state;
        float* sg = stackalloc float[TempChunk];
        for (long c = start; c < end; c += TempChunk)
        {
            int len = (int)Math.Min(TempChunk, end - c);
            float* g = st->A + c, u = st->B + c, d = st->Dy + c, dg = st->Da + c, du = st->Db + c;
            TensorPrimitives.Sigmoid(new ReadOnlySpan<float>(g, len), new Span<float>(sg, len));
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var one = Vector512<float>.One;
                for (; i <= len - 16; i += 16)
                {
                    // All loads of a lane happen before its stores: exact aliasing with any input is safe.
                    var vg = Vector512.Load(g + i); var vu = Vector512.Load(u + i);
                    var vd = Vector512.Load(d + i); var vs = Vector512.Load(sg + i);
                    var ds = vd * vs;
                    Vector512.Store(ds * vu * Vector512.FusedMultiplyAdd(vg, one - vs, one), dg + i);
                    Vector512.Store(ds * vg, du + i);
                }
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var one = Vector256<float>.One;
                for (; i <= len - 8; i += 8)
                {
                    var vg = Vector256.Load(g + i); var vu = Vector256.Load(u + i);
                    var vd = Vector256.Load(d + i); var vs = Vector256.Load(sg + i);
                    var ds = vd * vs;
                    Vector256.Store(ds * vu * Vector256.FusedMultiplyAdd(vg, one - vs, one), dg + i);
                    Vector256.Store(ds * vg, du + i);
                }
            }
            for (; i < len; i++)
            {
                float gi = g[i], ui = u[i], s = sg[i], ds = d[i] * s;
                dg[i] = ds * ui * (1f + gi * (1f - s));
                du[i] = ds * gi;
            }
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
        // exp(z − max) is summed chunk by chunk from an L1-resident buffer: the row is read twice, never written.
        float* tmp = stackalloc float[TempChunk];
        for (long r = start; r < end; r++)
        {
            float* row = st->A + r * V;
            // invT > 0, so the max of z is invT · max(logits); NaN propagates.
            float max = TensorPrimitives.Max(new ReadOnlySpan<float>(row, V)) * invT;
            double l;
            if (float.IsNaN(max) || float.IsNegativeInfinity(max)) l = max;
            else
            {
                double sum = 0;
                for (int c = 0; c < V; c += TempChunk)
                {
                    int len = Math.Min(TempChunk, V - c);
                    var t = new Span<float>(tmp, len);
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(row + c, len), invT, t);
                    TensorPrimitives.Add(t, -max, t);
                    TensorPrimitives.Exp(t, t);
                    sum += TensorPrimitives.Sum(t);
                }
                l = max + Math.Log(sum);
            }
            st->Lse[r] = (float)l;
            st->Out[r] = (float)(row[st->Ids[r]] * invT - l);
        }
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
            var d = new Span<float>(st->Da + r * V, V);
            float g = st->Dy[r] * invT;
            // d = −g · exp(z − lse), then + g at the id: a few vector passes over a row that stays in cache.
            TensorPrimitives.Multiply(new ReadOnlySpan<float>(st->A + r * V, V), invT, d);
            TensorPrimitives.Add(d, -st->Lse[r], d);
            TensorPrimitives.Exp(d, d);
            TensorPrimitives.Multiply(d, -g, d);
            d[(int)st->Ids[r]] += g;
        }
    }
}
